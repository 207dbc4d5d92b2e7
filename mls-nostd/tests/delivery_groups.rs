//! `delivery::Inbox` with real group messages, delivered out of order and
//! twice as a QoS 1 broker may: a future-epoch application message waits for
//! its Commit and then opens, duplicates and stale messages are dropped, a
//! Commit from a device is refused; every member ends in one epoch. A device
//! waiting for its Welcome keeps what the group says meanwhile and opens it
//! once it joins.
use mls_nostd::delivery::{DeliveryError, DeliveryStats, Inbox, Outgoing, Policy, Verdict};
use mls_nostd::group::{DEPARTED_KEYS, ReceiveError};
use mls_nostd::prelude::*;
use mls_nostd::tree_math::LeafIndex;

type G = Group<8, 4096, 32, 4096>;

fn commit(g: &mut G, opts: &CommitOptions<'_>, now: u64, rng: &mut impl rand_core::CryptoRng) -> (Vec<u8>, Option<Vec<u8>>) {
    let (mut msg, mut w, mut gi) = (vec![0u8; 32 * 1024], vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    let out = g
        .commit_in_memory(opts, &NoPsks, now, rng, &Sequential, CommitBuffers { message: &mut msg, welcome: &mut w, group_info: &mut gi })
        .expect("commit");
    (out.commit.to_vec(), out.welcome.map(<[u8]>::to_vec))
}

fn app(g: &mut G, text: &[u8], rng: &mut impl rand_core::CryptoRng) -> Vec<u8> {
    let mut ct = [0u8; 512];
    g.protect_application_in_memory(text, b"", 0, rng, &mut ct).expect("protect").to_vec()
}

type SmallInbox = Inbox<4, 16384, 64>;

/// What a member does with a delivered message: the inbox sorts it; what is
/// due is processed, then whatever the buffer releases.
fn deliver(a: &mut G, inbox: &mut SmallInbox, opened: &mut Vec<Vec<u8>>, msg: &[u8]) -> Result<Verdict, DeliveryError> {
    let v = inbox.accept(msg, a.epoch())?;
    if matches!(v, Verdict::Process(_)) {
        process_and_release(a, inbox, opened, Some(msg.to_vec()));
    }
    Ok(v)
}

/// Processes `first` (if any), then whatever the buffer releases.
fn process_and_release(a: &mut G, inbox: &mut SmallInbox, opened: &mut Vec<Vec<u8>>, first: Option<Vec<u8>>) {
    let now = 1_793_491_200;
    let mut queue: Vec<Vec<u8>> = first.into_iter().collect();
    let mut buf = [0u8; 4096];
    if queue.is_empty()
        && let Some(n) = inbox.release(a.epoch(), &mut buf).expect("release")
    {
        queue.push(buf[..n].to_vec());
    }
    while let Some(mut m) = queue.pop() {
        match a.process_message_in_memory(&mut m, &NoPsks, now).expect("the inbox lets through only what opens") {
            Received::Application { data, .. } => opened.push(data.to_vec()),
            Received::Commit(_) => a.merge_staged_commit_in_memory().expect("merge"),
            Received::Proposal { .. } => {}
        }
        while let Some(n) = inbox.release(a.epoch(), &mut buf).expect("release") {
            queue.insert(0, buf[..n].to_vec());
        }
    }
}

#[test]
fn reordered_and_repeated_messages_of_real_groups() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let now = 1_793_491_200;
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);

    // The gateway (leaf 0, the committer) adds two devices.
    let (mut gateway, mut devices) = fleet(2, &mut rng);
    let policy = Policy { committer: gateway.own_leaf().0 };
    assert_eq!(gateway.epoch(), 1);

    // Epoch 1: the gateway sends data; device B proposes an Update.
    let data_1 = app(&mut gateway, b"epoch-1 from the gateway", &mut rng);
    let data_1_late = app(&mut gateway, b"epoch-1, delivered in epoch 3", &mut rng);
    let (b, b_key) = &mut devices[1];
    let public = b_key.public_key();
    let mut caps = [0u8; 8];
    let template = LeafTemplate {
        signature_key: public.as_bytes(),
        credential: Credential::Basic { identity: b"dev-1" },
        capabilities: default_capabilities(suite, &mut caps),
        extensions: Extensions::default(),
    };
    let mut out = [0u8; 4096];
    let update = b.propose_update(&template, WireFormatPolicy::Private, &mut rng, &mut out).expect("propose").to_vec();
    let mut m = update.clone();
    assert!(matches!(gateway.process_message_in_memory(&mut m, &NoPsks, now), Ok(Received::Proposal { .. })));
    // The gateway commits it (epoch 1 -> 2).
    let (c2, _) = commit(
        &mut gateway,
        &CommitOptions { include_pending: true, force_path: true, wire_format: WireFormatPolicy::Public, ..CommitOptions::DEFAULT },
        now,
        &mut rng,
    );
    gateway.merge_staged_commit_in_memory().expect("merge");
    // Device B processes it at once and sends in epoch 2.
    let mut m = c2.clone();
    assert!(matches!(b.process_message_in_memory(&mut m, &NoPsks, now), Ok(Received::Commit(_))));
    b.merge_staged_commit_in_memory().expect("merge");
    let data_2 = app(b, b"epoch-2 from dev-b", &mut rng);

    // A device's Commit (against the policy) in epoch 2.
    assert_eq!(policy.check_outgoing(b.own_leaf().0, Outgoing::Commit), Err(DeliveryError::NotCommitter));
    let (rogue, _) = commit(b, &CommitOptions { force_path: true, wire_format: WireFormatPolicy::Public, ..CommitOptions::DEFAULT }, now, &mut rng);
    b.discard_staged_commit();

    // Device A, still in epoch 1, gets everything out of order and twice.
    let (a, _) = &mut devices[0];
    let mut inbox: Box<SmallInbox> = Box::new(Inbox::new(policy));
    let mut opened: Vec<Vec<u8>> = Vec::new();
    // Epoch-2 data before its Commit: it waits.
    assert_eq!(deliver(a, &mut inbox, &mut opened, &data_2), Ok(Verdict::Buffered));
    assert_eq!(deliver(a, &mut inbox, &mut opened, &data_2), Ok(Verdict::Duplicate));
    assert!(matches!(deliver(a, &mut inbox, &mut opened, &update), Ok(Verdict::Process(_))));
    assert!(matches!(deliver(a, &mut inbox, &mut opened, &c2), Ok(Verdict::Process(_))));
    // The Commit took A to epoch 2 and released the data, which opened.
    assert_eq!(a.epoch(), 2);
    assert_eq!(opened, vec![b"epoch-2 from dev-b".to_vec()]);
    // Redeliveries of the Commit and the proposal: duplicates.
    assert_eq!(deliver(a, &mut inbox, &mut opened, &c2), Ok(Verdict::Duplicate));
    assert_eq!(deliver(a, &mut inbox, &mut opened, &update), Ok(Verdict::Duplicate));
    // Late data of epoch 1 still opens (the previous epoch's keys).
    assert!(matches!(deliver(a, &mut inbox, &mut opened, &data_1), Ok(Verdict::Process(_))));
    assert_eq!(opened.last().map(Vec::as_slice), Some(&b"epoch-1 from the gateway"[..]));
    // A device's Commit is refused before it reaches the group.
    assert_eq!(deliver(a, &mut inbox, &mut opened, &rogue), Err(DeliveryError::NotCommitter));
    assert_eq!(inbox.stats(), DeliveryStats { processed: 4, buffered: 1, released: 1, duplicates: 3, stale: 0, overflowed: 0, too_far_ahead: 0 });

    // The gateway's next Commit (epoch 2 -> 3): an epoch-2 proposal after it is stale.
    let (c3, _) = commit(&mut gateway, &CommitOptions { force_path: true, wire_format: WireFormatPolicy::Public, ..CommitOptions::DEFAULT }, now, &mut rng);
    gateway.merge_staged_commit_in_memory().expect("merge");
    let (b, b_key) = &mut devices[1];
    let mut m = c3.clone();
    assert!(matches!(b.process_message_in_memory(&mut m, &NoPsks, now), Ok(Received::Commit(_))));
    b.merge_staged_commit_in_memory().expect("merge");
    let _ = b_key;
    let (a, _) = &mut devices[0];
    assert!(matches!(deliver(a, &mut inbox, &mut opened, &c3), Ok(Verdict::Process(_))));
    assert_eq!(deliver(a, &mut inbox, &mut opened, &update), Ok(Verdict::Duplicate));
    // Two epochs late: no keys for it any more.
    assert_eq!(deliver(a, &mut inbox, &mut opened, &data_1_late), Ok(Verdict::Stale));
    assert_eq!(inbox.stats().stale, 1);
    assert_eq!(opened.len(), 2);
    for (d, _) in &devices {
        assert_eq!((d.epoch(), d.epoch_authenticator()), (3, gateway.epoch_authenticator()));
    }
}

/// A device waiting for its Welcome hears the group before it can read it:
/// the Commit that adds it, the other devices' data of the epoch it joins,
/// the next Commit and data after it all come first (the gateway sends one
/// Welcome per new device, each with the tree; the others already speak).
/// The inbox keeps the newest epochs, drops (and counts) the oldest when
/// full, and after the join gives back, in order, everything of the join
/// epoch and after: the new device opens all of it and agrees.
#[test]
fn a_device_opens_what_came_before_its_welcome() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let now = 1_793_491_200;
    let lifetime = Lifetime { not_before: now - 60, not_after: now + 86_400 };
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let (mut gateway, mut devices) = fleet(2, &mut rng);
    let policy = Policy { committer: gateway.own_leaf().0 };
    let gw_commit = |g: &mut G, adds: &[Proposal<'_>], rng: &mut _| {
        let opts = CommitOptions { proposals: adds, force_path: true, wire_format: WireFormatPolicy::Public, ..CommitOptions::DEFAULT };
        let out = commit(g, &opts, now, rng);
        g.merge_staged_commit_in_memory().expect("merge");
        out
    };
    let process = |d: &mut G, m: &[u8]| {
        let mut m = m.to_vec();
        assert!(matches!(d.process_message_in_memory(&mut m, &NoPsks, now), Ok(Received::Commit(_))));
        d.merge_staged_commit_in_memory().expect("merge");
    };

    // The new device publishes its KeyPackage and waits.
    let (key, _) = SignaturePrivateKey::generate(suite, &mut rng);
    let mut buf = [0u8; 1024];
    let (kp, keys) = KeyPackage::generate(&KeyPackageParams::new(suite, Credential::Basic { identity: b"dev-new" }, lifetime), &key, &mut rng, &mut buf)
        .expect("KeyPackage");
    let kp = kp.to_vec();
    let mut new = Box::new(G::EMPTY);
    let mut inbox: Box<SmallInbox> = Box::new(Inbox::new(policy));
    inbox.await_welcome();

    // What the group says meanwhile, in the order the new device hears it.
    let mut heard = vec![app(&mut devices[0].0, b"epoch 1, before the add", &mut rng)];
    let add = [Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).expect("kp") })];
    let (c2, welcome) = gw_commit(&mut gateway, &add, &mut rng);
    heard.push(c2.clone());
    for (d, _) in devices.iter_mut() {
        process(d, &c2);
    }
    heard.push(app(&mut devices[0].0, b"epoch 2 from dev-0", &mut rng));
    heard.push(app(&mut devices[1].0, b"epoch 2 from dev-1", &mut rng));
    let (c3, _) = gw_commit(&mut gateway, &[], &mut rng);
    heard.push(c3.clone());
    for (d, _) in devices.iter_mut() {
        process(d, &c3);
    }
    heard.push(app(&mut devices[1].0, b"epoch 3 from dev-1", &mut rng));
    // And a redelivery.
    heard.push(heard[2].clone());

    let mut opened = Vec::new();
    let verdicts: Vec<_> = heard.iter().map(|m| deliver(&mut new, &mut inbox, &mut opened, m).expect("accepted")).collect();
    // Four slots: the epoch-3 data and the Commit to epoch 3 push out the
    // two oldest (the epoch-1 data, then the Commit that added us).
    assert_eq!(verdicts, [Verdict::Buffered; 6].into_iter().chain([Verdict::Duplicate]).collect::<Vec<_>>());
    assert_eq!((inbox.buffered(), inbox.stats().overflowed), (4, 2));
    assert!(opened.is_empty());

    // The Welcome: epoch 2. Everything of epoch 2 on comes out and opens.
    let welcome = welcome.expect("a Welcome");
    let mut wbuf = vec![0u8; welcome.len()];
    new.join_in_memory(&welcome, &JoinParams::new(&kp, &keys, &key), &mut wbuf).expect("join");
    assert_eq!(new.epoch(), 2);
    inbox.joined_at(new.epoch());
    process_and_release(&mut new, &mut inbox, &mut opened, None);
    let texts: Vec<&[u8]> = opened.iter().map(Vec::as_slice).collect();
    assert_eq!(texts, [&b"epoch 2 from dev-0"[..], b"epoch 2 from dev-1", b"epoch 3 from dev-1"]);
    assert_eq!(inbox.buffered(), 0);
    assert_eq!((new.epoch(), new.epoch_authenticator()), (3, gateway.epoch_authenticator()));
    let s = inbox.stats();
    assert_eq!((s.buffered, s.released, s.overflowed, s.duplicates, s.stale), (6, 4, 2, 1, 0));
}

/// A gateway and `n` devices `dev-<i>`, all joined at epoch 1; each device with its signer.
fn fleet(n: usize, rng: &mut impl rand_core::CryptoRng) -> (Box<G>, Vec<(Box<G>, SignaturePrivateKey)>) {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let now = 1_793_491_200;
    let lifetime = Lifetime { not_before: now - 60, not_after: now + 86_400 };
    let (gw_key, _) = SignaturePrivateKey::generate(suite, rng);
    let mut gateway = Box::new(G::EMPTY);
    gateway.create(&CreateParams::new(suite, b"fleet", Credential::Basic { identity: b"gateway" }, lifetime), &gw_key, rng).expect("create");
    let mut kps = Vec::new();
    for i in 0..n {
        let name = format!("dev-{i}").into_bytes().leak();
        let (key, _) = SignaturePrivateKey::generate(suite, rng);
        let mut buf = [0u8; 1024];
        let (kp, keys) =
            KeyPackage::generate(&KeyPackageParams::new(suite, Credential::Basic { identity: name }, lifetime), &key, rng, &mut buf).expect("KeyPackage");
        kps.push((kp.to_vec(), keys, key));
    }
    let adds: Vec<Proposal<'_>> =
        kps.iter().map(|(kp, _, _)| Proposal::Add(Add { key_package: KeyPackage::decode_exact(kp).expect("kp") })).collect();
    let (_, welcome) = commit(&mut gateway, &CommitOptions { proposals: &adds, ..CommitOptions::DEFAULT }, now, rng);
    gateway.merge_staged_commit_in_memory().expect("merge");
    let welcome = welcome.expect("welcome");
    let devices = kps
        .into_iter()
        .map(|(kp, keys, key)| {
            let mut d = Box::new(G::EMPTY);
            let mut buf = vec![0u8; welcome.len()];
            d.join_in_memory(&welcome, &JoinParams::new(&kp, &keys, &key), &mut buf).expect("join");
            (d, key)
        })
        .collect();
    (gateway, devices)
}

/// RFC 9420 §12.4.2 (a removed client "might keep the secret tree for a
/// short time to decrypt late messages in the previous epoch") seen from
/// the members that stay: a late application message of the previous epoch
/// from a member the Commit removed was sent while it was a member, and
/// opens with the sender's key of that epoch: whether its leaf is now blank
/// or given to a member added in the same Commit. Before the core kept those
/// keys, the first was refused with `UnknownSender` and the second failed
/// its signature check against the new member's key (a forgery, to the
/// core). Past `DEPARTED_KEYS` such members the message is refused as
/// `DepartedSender`, which the inbox's user counts as stale; and the kept
/// keys survive a save and a load.
#[test]
fn late_messages_of_removed_members_open() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let now = 1_793_491_200;
    let lifetime = Lifetime { not_before: now - 60, not_after: now + 86_400 };
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    // Leaves: gateway 0, devices 1..=6.
    let (mut gateway, devices) = fleet(6, &mut rng);
    let mut devices: Vec<Box<G>> = devices.into_iter().map(|(d, _)| d).collect();
    // Every device but device 0 (the one that stays) speaks in epoch 1.
    let late: Vec<Vec<u8>> = (1..6).map(|i| app(&mut devices[i], format!("epoch 1 from dev-{i}").as_bytes(), &mut rng)).collect();

    // First Commit (epoch 1 -> 2): remove dev-1 (leaf 2) and dev-5 (leaf 6,
    // trailing), add a new device that takes leaf 2.
    let (new_key, _) = SignaturePrivateKey::generate(suite, &mut rng);
    let mut buf = [0u8; 1024];
    let (kp, _) = KeyPackage::generate(&KeyPackageParams::new(suite, Credential::Basic { identity: b"dev-new" }, lifetime), &new_key, &mut rng, &mut buf)
        .expect("KeyPackage");
    let proposals = [
        Proposal::Remove(Remove { removed: 2 }),
        Proposal::Remove(Remove { removed: 6 }),
        Proposal::Add(Add { key_package: KeyPackage::decode_exact(kp).expect("kp") }),
    ];
    let (c2, _) = commit(&mut gateway, &CommitOptions { proposals: &proposals, wire_format: WireFormatPolicy::Public, ..CommitOptions::DEFAULT }, now, &mut rng);
    gateway.merge_staged_commit_in_memory().expect("merge");
    let stays = &mut devices[0];
    let mut m = c2.clone();
    assert!(matches!(stays.process_message_in_memory(&mut m, &NoPsks, now), Ok(Received::Commit(_))));
    stays.merge_staged_commit_in_memory().expect("merge");
    assert_eq!(stays.epoch(), 2);
    assert!(stays.tree().leaf_node(LeafIndex(2)).is_some_and(|l| matches!(l.fields.credential, Credential::Basic { identity: b"dev-new" })));

    // Saved and loaded again: the kept keys come back with the group.
    let mut flash: Box<RamStorage<64, { 64 * 1024 }>> = Box::new(RamStorage::EMPTY);
    let mut record = [0u8; MAX_RECORD_LEN];
    stays.save(&mut *flash, 0, Parts::ALL, &mut record).expect("save");
    let mut stays = Box::new(G::EMPTY);
    stays.load(&mut *flash, 0, &mls_nostd::identity::SAME_CREDENTIAL, &mut record).expect("load");

    // dev-1's (leaf now dev-new's) and dev-5's (leaf gone) late messages open,
    // for the gateway and for the device that stayed.
    for g in [&mut gateway, &mut stays] {
        for (i, text) in [(0, &b"epoch 1 from dev-1"[..]), (4, b"epoch 1 from dev-5")] {
            let mut m = late[i].clone();
            match g.process_message_in_memory(&mut m, &NoPsks, now) {
                Ok(Received::Application { data, sender, .. }) => {
                    assert_eq!(data, text);
                    assert_eq!(sender, LeafIndex(if i == 0 { 2 } else { 6 }));
                }
                other => panic!("late message of a removed member: {other:?}"),
            }
        }
        // A member that stayed: opens as before.
        let mut m = late[1].clone();
        assert!(matches!(g.process_message_in_memory(&mut m, &NoPsks, now), Ok(Received::Application { .. })));
    }

    // More removed members than keys kept: in a fresh group of 7, the
    // gateway removes 5 devices in one Commit (epoch 1 -> 2).
    let (mut gateway, devices) = fleet(6, &mut rng);
    let mut devices: Vec<Box<G>> = devices.into_iter().map(|(d, _)| d).collect();
    let late: Vec<Vec<u8>> = (0..6).map(|i| app(&mut devices[i], format!("epoch 1 from dev-{i}").as_bytes(), &mut rng)).collect();
    let removes: Vec<Proposal<'_>> = (2..=6).map(|l| Proposal::Remove(Remove { removed: l })).collect();
    let removed = removes.len();
    assert!(removed > DEPARTED_KEYS);
    let (_, _) = commit(&mut gateway, &CommitOptions { proposals: &removes, ..CommitOptions::DEFAULT }, now, &mut rng);
    gateway.merge_staged_commit_in_memory().expect("merge");
    let (mut opened, mut departed) = (0, 0);
    for m in &late[1..] {
        let mut m = m.clone();
        match gateway.process_message_in_memory(&mut m, &NoPsks, now) {
            Ok(Received::Application { .. }) => opened += 1,
            Err(ReceiveError::DepartedSender) => departed += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((opened, departed), (DEPARTED_KEYS, removed - DEPARTED_KEYS));
    // dev-0 (leaf 1) stayed: its late message opens.
    let mut m = late[0].clone();
    assert!(matches!(gateway.process_message_in_memory(&mut m, &NoPsks, now), Ok(Received::Application { .. })));
}
