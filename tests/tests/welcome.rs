//! welcome.json: every case of all seven suites (RFC 9420 §12.4.3.1, FORMAT.md
//! "Welcome"; the checks are in `mls_tests::vectors::welcome`), and round
//! trips of our own Welcomes: creation for several members with the
//! executor, processing by each, and every failure the joiner must detect.
use mls_nostd::codec::{CodecError, Decode, Encode, ListView, Writer};
use mls_nostd::crypto::hpke::{derive_key_pair, HpkePrivateKey, HpkePublicKey};
use mls_nostd::crypto::labeled::encrypt_with_label;
use mls_nostd::crypto::signature::{SignaturePrivateKey, SignaturePublicKey};
use mls_nostd::crypto::{CipherSuite, Secret};
use mls_nostd::executor::{Executor, Sequential};
use mls_nostd::extensions::Extensions;
use mls_nostd::group_context::GroupContext;
use mls_nostd::key_package::{KeyPackage, KeyPackageTbs};
use mls_nostd::key_schedule::{welcome_secret, EpochSecrets};
use mls_nostd::leaf_node::LeafNode;
use mls_nostd::messages::welcome::EncryptedGroupSecrets;
use mls_nostd::messages::welcome_reader;
use mls_nostd::messages::welcome_secrets::WELCOME_LABEL;
use mls_nostd::messages::{
    process_read_welcome, process_welcome, process_welcome_in_place, GroupInfo, GroupInfoError, GroupInfoTbs, HpkeCiphertext, MlsMessage, MlsMessageBody, NewMember,
    Welcome, WelcomeError, WelcomeParams, WelcomeReader, WireGroupContext,
};
use mls_nostd::psk::{psk_secret, NoPsks, PreSharedKeyId, Psk, PskStore, ResumptionPskUsage};
use mls_nostd::transcript::confirmation_tag;
use mls_tests::vectors::{Kind, run_file};
use mls_tests::{load, supported_cases, test_leaf, TestRng};

fn welcome_of(bytes: &[u8]) -> Welcome<'_> {
    match MlsMessage::decode_exact(bytes).expect("MLSMessage").body {
        MlsMessageBody::Welcome(w) => w,
        other => panic!("not a Welcome: {other:?}"),
    }
}

/// The checks of each case are in `mls_tests::vectors::welcome`.
#[test]
fn welcome_vectors() {
    let cases = load("welcome.json");
    let report = run_file(Kind::Welcome, &cases);
    report.finish("welcome.json", supported_cases(&cases));
    report.assert_passed_by_suite("welcome.json", &[(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1)]);
}

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

/// A client with a KeyPackage: its encoding and its init private key.
struct Client {
    key_package: Vec<u8>,
    init_priv: HpkePrivateKey,
}

impl Client {
    fn new(suite: CipherSuite, seed: u64) -> Self {
        let (leaf, sk) = test_leaf(suite, format!("member {seed}").as_bytes(), seed, None);
        let (init_priv, init_pub) = derive_key_pair(suite, &[seed as u8 ^ 0xa5; 32]).unwrap();
        let tbs = KeyPackageTbs {
            version: 1,
            cipher_suite: suite.to_u16(),
            init_key: init_pub.as_bytes(),
            leaf_node: LeafNode::decode_exact(&leaf).unwrap(),
            extensions: Extensions::default(),
        };
        let mut buf = vec![0u8; 2048];
        let n = KeyPackage::sign_into(suite, &tbs, &sk, &mut buf).unwrap().len();
        buf.truncate(n);
        KeyPackage::decode_exact(&buf).unwrap().validate(suite, 1_000, u64::MAX).unwrap();
        Self { key_package: buf, init_priv }
    }

    fn key_package(&self) -> KeyPackage<'_> {
        KeyPackage::decode_exact(&self.key_package).unwrap()
    }

    fn reference(&self, suite: CipherSuite) -> Vec<u8> {
        self.key_package().reference(suite).unwrap().as_bytes().to_vec()
    }
}

/// PSKs kept by the application, by ID.
#[derive(Default)]
struct Store {
    external: Vec<(Vec<u8>, Vec<u8>)>,
    resumption: Vec<(Vec<u8>, u64, Vec<u8>)>,
}

impl PskStore for Store {
    fn external_psk(&self, id: &[u8]) -> Option<&[u8]> {
        self.external.iter().find(|(i, _)| i == id).map(|(_, k)| k.as_slice())
    }
    fn resumption_psk(&self, group_id: &[u8], epoch: u64) -> Option<&[u8]> {
        self.resumption.iter().find(|(g, e, _)| g == group_id && *e == epoch).map(|(_, _, k)| k.as_slice())
    }
}

/// Runs the jobs on threads, one per chunk, to show the output does not
/// depend on order or thread.
struct Threads;

impl Executor for Threads {
    fn for_each_chunk(&self, buf: &mut [u8], chunk: usize, job: &(dyn Fn(usize, &mut [u8]) + Sync)) {
        std::thread::scope(|s| {
            for (i, c) in buf.chunks_exact_mut(chunk).enumerate().rev() {
                s.spawn(move || job(i, c));
            }
        });
    }
}

/// The committer's side of one epoch: what it signs and seals.
struct Epoch {
    suite: CipherSuite,
    signer: SignaturePrivateKey,
    group_id: Vec<u8>,
    epoch: u64,
    cth: Vec<u8>,
    gi_extensions: Vec<u8>,
    joiner: Secret,
    psk_ids: Vec<PreSharedKeyIdOwned>,
    psk_values: Vec<Vec<u8>>,
}

/// An owned PreSharedKeyID, for building test lists.
#[derive(Clone)]
enum PreSharedKeyIdOwned {
    External(Vec<u8>, Vec<u8>),
    Resumption(ResumptionPskUsage, Vec<u8>, u64, Vec<u8>),
}

impl PreSharedKeyIdOwned {
    fn view(&self) -> PreSharedKeyId<'_> {
        match self {
            Self::External(id, nonce) => PreSharedKeyId { psk: Psk::External { psk_id: id }, psk_nonce: nonce },
            Self::Resumption(usage, g, e, nonce) => PreSharedKeyId {
                psk: Psk::Resumption { usage: *usage, psk_group_id: g, psk_epoch: *e },
                psk_nonce: nonce,
            },
        }
    }
}

impl Epoch {
    fn new(suite: CipherSuite) -> Self {
        Self {
            suite,
            signer: mls_tests::signer(suite, &[7u8]),
            group_id: b"welcome round trip".to_vec(),
            epoch: 5,
            cth: vec![0x42; suite.hash_len()],
            gi_extensions: Vec::new(),
            joiner: Secret::from_slice(&vec![0x11; suite.hash_len()]).unwrap(),
            psk_ids: vec![PreSharedKeyIdOwned::External(b"ext psk".to_vec(), vec![3; suite.hash_len()])],
            psk_values: vec![b"the external psk value".to_vec()],
        }
    }

    fn store(&self) -> Store {
        let mut store = Store::default();
        for (id, v) in self.psk_ids.iter().zip(&self.psk_values) {
            match id {
                PreSharedKeyIdOwned::External(i, _) => store.external.push((i.clone(), v.clone())),
                PreSharedKeyIdOwned::Resumption(_, g, e, _) => store.resumption.push((g.clone(), *e, v.clone())),
            }
        }
        store
    }

    fn psk_secret(&self) -> Secret {
        let list: Vec<(PreSharedKeyId<'_>, &[u8])> =
            self.psk_ids.iter().zip(&self.psk_values).map(|(i, v)| (i.view(), v.as_slice())).collect();
        psk_secret(self.suite, &list).unwrap()
    }

    fn group_context(&self) -> GroupContext<'_> {
        GroupContext {
            cipher_suite: self.suite,
            group_id: &self.group_id,
            epoch: self.epoch,
            tree_hash: &[0x77; 32],
            confirmed_transcript_hash: &self.cth,
            extensions: &[],
        }
    }

    fn epoch_secrets(&self) -> EpochSecrets {
        let mut gc = vec![0u8; 512];
        let gc = self.group_context().encode_to(&mut gc).unwrap().to_vec();
        EpochSecrets::derive(self.suite, &self.joiner, &self.psk_secret(), &gc).unwrap()
    }

    /// The GroupInfo, signed by `key` and with `tag` (else the right ones).
    fn group_info_with(&self, key: Option<&SignaturePrivateKey>, tag: Option<&[u8]>) -> Vec<u8> {
        let gc = self.group_context();
        let right = confirmation_tag(self.suite, &self.epoch_secrets().confirmation_key, &self.cth);
        let tbs = GroupInfoTbs {
            group_context: WireGroupContext::from_group_context(&gc).unwrap(),
            extensions: Extensions::from_body(&self.gi_extensions).unwrap(),
            confirmation_tag: tag.unwrap_or(right.as_bytes()),
            signer: 3,
        };
        let mut out = vec![0u8; 1024 + self.gi_extensions.len()];
        let n = GroupInfo::sign_into(self.suite, &tbs, key.unwrap_or(&self.signer), &mut out).unwrap().len();
        out.truncate(n);
        out
    }

    fn group_info(&self) -> Vec<u8> {
        self.group_info_with(None, None)
    }

    fn create(&self, group_info: &[u8], members: &[NewMember<'_>], seed: u64, executor: &impl Executor) -> Vec<u8> {
        self.create_with(group_info, members, seed, executor, &self.welcome_secret())
    }

    fn welcome_secret(&self) -> Secret {
        welcome_secret(self.suite, &self.joiner, &self.psk_secret()).unwrap()
    }

    fn create_with(
        &self,
        group_info: &[u8],
        members: &[NewMember<'_>],
        seed: u64,
        executor: &impl Executor,
        welcome_secret: &Secret,
    ) -> Vec<u8> {
        let ids: Vec<PreSharedKeyId<'_>> = self.psk_ids.iter().map(|p| p.view()).collect();
        let params =
            WelcomeParams { suite: self.suite, joiner_secret: &self.joiner, psks: &ids, welcome_secret, group_info };
        let sizes = params.sizes(members).unwrap();
        let mut out = vec![0xeeu8; sizes.buffer_len];
        let n = params.create(members, &mut TestRng(seed), executor, &mut out).unwrap().len();
        assert_eq!(n, sizes.message_len);
        // Nothing but zeros after the message (scratch space wiped).
        assert!(out[n..].iter().all(|b| *b == 0));
        out.truncate(n);
        out
    }
}

/// What a joiner gets: the epoch's secrets, the path secret, the PSK count.
type Joined = (EpochSecrets, Option<Vec<u8>>, usize);

/// What `client` gets from `welcome_bytes`.
fn join(
    suite: CipherSuite,
    client: &Client,
    welcome_bytes: &[u8],
    store: &dyn PskStore,
    signer: &SignaturePublicKey,
) -> Result<Joined, WelcomeError> {
    let welcome = welcome_of(welcome_bytes);
    let mut buf = vec![0u8; welcome_bytes.len()];
    let d = process_welcome(suite, &client.reference(suite), &client.init_priv, &welcome, store, &mut buf)?;
    let v = d.verify(signer)?;
    Ok((v.epoch_secrets.clone(), v.path_secret.as_ref().map(|s| s.as_bytes().to_vec()), v.psks.len()))
}

/// [`join`] with the Welcome decrypted where it lies (a copy of
/// `welcome_bytes`, returned after).
fn join_in_place(
    suite: CipherSuite,
    client: &Client,
    welcome_bytes: &[u8],
    store: &dyn PskStore,
    signer: &SignaturePublicKey,
) -> (Result<Joined, WelcomeError>, Vec<u8>) {
    let mut message = welcome_bytes.to_vec();
    let joined = process_welcome_in_place(suite, &client.reference(suite), &client.init_priv, &mut message, store)
        .and_then(|d| {
            let v = d.verify(signer)?;
            Ok((v.epoch_secrets.clone(), v.path_secret.as_ref().map(|s| s.as_bytes().to_vec()), v.psks.len()))
        });
    (joined, message)
}

/// [`join`] with the Welcome read in pieces of `piece` bytes into a buffer
/// of `room` bytes; the bytes the reader kept.
fn join_read(
    suite: CipherSuite,
    client: &Client,
    welcome_bytes: &[u8],
    (piece, room): (usize, usize),
    store: &dyn PskStore,
    signer: &SignaturePublicKey,
) -> Result<(Joined, usize), WelcomeError> {
    let mut buf = vec![0u8; room];
    let mut reader = WelcomeReader::new(&client.key_package, &mut buf)?;
    for p in welcome_bytes.chunks(piece) {
        reader.feed(p)?;
    }
    let mut read = reader.finish()?;
    let kept = read.kept_len();
    let d = process_read_welcome(suite, &client.reference(suite), &client.init_priv, &mut read, store)?;
    let v = d.verify(signer)?;
    Ok(((v.epoch_secrets.clone(), v.path_secret.as_ref().map(|s| s.as_bytes().to_vec()), v.psks.len()), kept))
}

/// A Welcome read in pieces of any length joins as the whole one does,
/// keeping only our GroupSecrets' ciphertext and the encrypted GroupInfo
/// (lengths taken from the decoded Welcome); a Welcome cut short, with a
/// byte too many, of another wire format, for someone else or in too small
/// a buffer is refused.
#[test]
fn welcome_read_in_pieces() {
    let mut joins = 0;
    for &suite in CipherSuite::ALL {
        let clients: Vec<Client> = (1..=4).map(|i| Client::new(suite, i)).collect();
        let e = Epoch::new(suite);
        let signer_pub = e.signer.public_key();
        let gi = e.group_info();
        let path = Secret::from_slice(&vec![0xb0; suite.hash_len()]).unwrap();
        let members: Vec<NewMember<'_>> = clients
            .iter()
            .enumerate()
            .map(|(i, c)| NewMember::from_key_package(suite, &c.key_package(), (i == 2).then_some(&path)).unwrap())
            .collect();
        let welcome = e.create(&gi, &members, 42, &Sequential);
        let w = welcome_of(&welcome);
        let store = e.store();
        let longest_entry = 4 + suite.hash_len() + 2 * 140 + 256;
        for c in &clients {
            let whole = join(suite, c, &welcome, &store, &signer_pub).unwrap();
            let ours = w.secrets_for(&c.reference(suite)).unwrap().encrypted_group_secrets.ciphertext.len();
            let expected_kept = ours + w.encrypted_group_info.len();
            assert!(expected_kept < welcome.len() - 3 * ours, "three other members' entries are not kept");
            for piece in [1, 2, 3, 7, 64, 300, welcome.len()] {
                let room = expected_kept + longest_entry + piece;
                let (joined, kept) = join_read(suite, c, &welcome, (piece, room), &store, &signer_pub).unwrap();
                assert_eq!(joined, whole, "{suite:?}: pieces of {piece}");
                assert_eq!(kept, expected_kept, "{suite:?}: pieces of {piece}");
                joins += 1;
            }
        }
        let c = &clients[0];
        let room = welcome.len();
        let read = |bytes: &[u8], client: &Client| join_read(suite, client, bytes, (5, room), &store, &signer_pub).err();
        assert_eq!(read(&welcome[..welcome.len() - 1], c), Some(WelcomeError::Malformed(CodecError::Truncated)));
        assert_eq!(read(&[&welcome[..], &[0]].concat(), c), Some(WelcomeError::Malformed(CodecError::TrailingBytes)));
        let mut not_welcome = welcome.clone();
        not_welcome[3] = 1;
        assert_eq!(read(&not_welcome, c), Some(WelcomeError::Malformed(CodecError::InvalidValue)));
        assert_eq!(read(&welcome, &Client::new(suite, 9)), Some(WelcomeError::NotForUs));
        // Read for one client, opened by another: not ours.
        let mut buf = vec![0u8; room];
        let mut reader = WelcomeReader::new(&clients[1].key_package, &mut buf).unwrap();
        reader.feed(&welcome).unwrap();
        let mut kept = reader.finish().unwrap();
        let other = process_read_welcome(suite, &c.reference(suite), &c.init_priv, &mut kept, &store);
        assert_eq!(other.err(), Some(WelcomeError::NotForUs));
        // A tampered GroupInfo: the context of the GroupSecrets, which fail.
        let mut tampered = welcome.clone();
        let last = tampered.len() - 20;
        tampered[last] ^= 1;
        assert_eq!(read(&tampered, c), Some(WelcomeError::GroupSecretsDecryptionFailed));
        // A failed feed is final: the rest of the Welcome does not revive
        // it (a reader told too little room, then given the Welcome again).
        let mut buf = vec![0u8; 40];
        let mut reader = WelcomeReader::new(&c.key_package, &mut buf).unwrap();
        assert!(matches!(reader.feed(&welcome), Err(WelcomeError::BufferTooSmall { .. })));
        assert_eq!(reader.feed(&welcome), Err(welcome_reader::FAILED));
        assert_eq!(reader.finish().err(), Some(welcome_reader::FAILED));
        // Too little room for what is kept.
        let ours = w.secrets_for(&c.reference(suite)).unwrap().encrypted_group_secrets.ciphertext.len();
        let kept = ours + w.encrypted_group_info.len();
        let small = join_read(suite, c, &welcome, (welcome.len(), kept - 1), &store, &signer_pub).err();
        assert!(matches!(small, Some(WelcomeError::BufferTooSmall { .. })), "{small:?}");
    }
    assert_eq!(joins, CipherSuite::ALL.len() * 4 * 7);
}

#[test]
fn welcome_round_trip() {
    // mls-tests enables all seven suites (Nh 32, 48 and 64 bytes).
    assert_eq!(CipherSuite::ALL.len(), 7);
    for &suite in CipherSuite::ALL {
        eprintln!("welcome_round_trip: {suite:?}");
        let clients: Vec<Client> = (1..=3).map(|i| Client::new(suite, i)).collect();
        let e = Epoch::new(suite);
        let signer_pub = e.signer.public_key();
        let gi = e.group_info();
        let path_b = Secret::from_slice(&vec![0xb0; suite.hash_len()]).unwrap();
        let path_c = Secret::from_slice(&vec![0xc0; suite.hash_len()]).unwrap();
        let paths = [None, Some(&path_b), Some(&path_c)];
        let members: Vec<NewMember<'_>> = clients
            .iter()
            .zip(paths)
            .map(|(c, p)| NewMember::from_key_package(suite, &c.key_package(), p).unwrap())
            .collect();

        let welcome = e.create(&gi, &members, 42, &Sequential);
        // Deterministic for a seed, whatever the executor; another seed differs.
        assert_eq!(e.create(&gi, &members, 42, &Sequential), welcome);
        assert_eq!(e.create(&gi, &members, 42, &Threads), welcome);
        assert_ne!(e.create(&gi, &members, 43, &Sequential), welcome);
        let w = welcome_of(&welcome);
        assert_eq!(w.cipher_suite, suite.to_u16());
        assert_eq!(w.secrets.len(), 3);
        let mut reencoded = vec![0u8; welcome.len()];
        assert_eq!(MlsMessage::decode_exact(&welcome).unwrap().encode_to(&mut reencoded).unwrap(), &welcome[..]);

        let expected = e.epoch_secrets();
        let store = e.store();
        for (c, p) in clients.iter().zip(paths) {
            let copied = join(suite, c, &welcome, &store, &signer_pub).unwrap();
            let (secrets, path, psks) = &copied;
            assert_eq!(secrets, &expected);
            assert_eq!(path, &p.map(|s| s.as_bytes().to_vec()));
            assert_eq!(*psks, 1);
            // In place: the same, and no secret of the GroupSecrets left in
            // the message (the GroupInfo is left there in clear).
            let (in_place, message) = join_in_place(suite, c, &welcome, &store, &signer_pub);
            assert_eq!(in_place.as_ref(), Ok(&copied));
            assert_ne!(message, welcome, "decrypted where it lies");
            for secret in std::iter::once(e.joiner.as_bytes()).chain(p.map(|s| s.as_bytes())) {
                assert!(!message.windows(secret.len()).any(|x| x == secret), "secret left in the message");
            }
        }

        // The joiner's buffer holds no secret of the GroupSecrets afterwards.
        let mut buf = vec![0u8; welcome.len()];
        {
            let c = &clients[1];
            let d = process_welcome(suite, &c.reference(suite), &c.init_priv, &w, &store, &mut buf).unwrap();
            let v = d.verify(&signer_pub).unwrap();
            assert_eq!(v.group_info.tbs.signer, 3);
            assert_eq!(v.group_context.epoch, 5);
            assert_eq!(v.group_context.group_id, b"welcome round trip");
        }
        for secret in [e.joiner.as_bytes(), path_b.as_bytes()] {
            assert!(!buf.windows(secret.len()).any(|x| x == secret), "secret left in the buffer");
        }

        // Not for us.
        let stranger = Client::new(suite, 9);
        assert_eq!(join(suite, &stranger, &welcome, &store, &signer_pub).err(), Some(WelcomeError::NotForUs));

        // A tampered encrypted_group_info: it is the HPKE context of every
        // GroupSecrets, so those fail first.
        let mut tampered = welcome.clone();
        let last = tampered.len() - 20;
        tampered[last] ^= 1;
        assert_eq!(
            join(suite, &clients[0], &tampered, &store, &signer_pub).err(),
            Some(WelcomeError::GroupSecretsDecryptionFailed)
        );
        assert_eq!(
            join_in_place(suite, &clients[0], &tampered, &store, &signer_pub).0.err(),
            Some(WelcomeError::GroupSecretsDecryptionFailed)
        );
        // A tampered GroupSecrets ciphertext.
        let mut tampered = welcome.clone();
        tampered[6 + 4 + 40] ^= 1;
        assert!(join(suite, &clients[0], &tampered, &store, &signer_pub).is_err());

        // A GroupInfo sealed under another welcome secret: GroupSecrets open,
        // the GroupInfo does not.
        let other_ws = Secret::from_slice(&vec![0x99; suite.hash_len()]).unwrap();
        let bad = e.create_with(&gi, &members, 42, &Sequential, &other_ws);
        assert_eq!(
            join(suite, &clients[0], &bad, &store, &signer_pub).err(),
            Some(WelcomeError::GroupInfoDecryptionFailed)
        );
        assert_eq!(
            join_in_place(suite, &clients[0], &bad, &store, &signer_pub).0.err(),
            Some(WelcomeError::GroupInfoDecryptionFailed)
        );
        // A joiner, welcome or path secret not Nh bytes long: refused before
        // anything is written (a joiner would refuse it anyway).
        let ids: Vec<PreSharedKeyId<'_>> = e.psk_ids.iter().map(|p| p.view()).collect();
        let short = Secret::from_slice(&vec![0x99; suite.hash_len() - 1]).unwrap();
        let ws = e.welcome_secret();
        let short_path = [NewMember { path_secret: Some(&short), ..members[0] }];
        let cases = [(&short, &ws, &members[..]), (&e.joiner, &short, &members[..]), (&e.joiner, &ws, &short_path[..])];
        for (i, (joiner_secret, welcome_secret, members)) in cases.into_iter().enumerate() {
            let params = WelcomeParams { suite, joiner_secret, psks: &ids, welcome_secret, group_info: &gi };
            let mut out = vec![0xeeu8; params.sizes(members).unwrap().buffer_len];
            assert_eq!(
                params.create(members, &mut TestRng(1), &Sequential, &mut out).err(),
                Some(WelcomeError::SecretLength { needed: suite.hash_len() }),
                "case {i}"
            );
            assert!(out.iter().all(|b| *b == 0xee), "case {i}: buffer written");
        }
        // The joiner lacks the PSK, or holds another value under its ID.
        assert_eq!(join(suite, &clients[0], &welcome, &NoPsks, &signer_pub).err(), Some(WelcomeError::UnknownPsk));
        let mut wrong_store = e.store();
        wrong_store.external[0].1 = b"another value".to_vec();
        assert_eq!(
            join(suite, &clients[0], &welcome, &wrong_store, &signer_pub).err(),
            Some(WelcomeError::GroupInfoDecryptionFailed)
        );

        // A GroupInfo signed by another key.
        let other = mls_tests::signer(suite, &[8u8]);
        let forged = e.create(&e.group_info_with(Some(&other), None), &members, 42, &Sequential);
        assert_eq!(
            join(suite, &clients[0], &forged, &store, &signer_pub).err(),
            Some(WelcomeError::InvalidGroupInfoSignature)
        );
        assert!(join(suite, &clients[0], &forged, &store, &other.public_key()).is_ok());
        // A wrong confirmation tag, correctly signed.
        let bad_tag = e.create(&e.group_info_with(None, Some(&vec![0u8; suite.hash_len()])), &members, 42, &Sequential);
        assert_eq!(
            join(suite, &clients[0], &bad_tag, &store, &signer_pub).err(),
            Some(WelcomeError::InvalidConfirmationTag)
        );
        // Joiner's buffer too small.
        let mut small = vec![0u8; 100];
        let r = process_welcome(suite, &clients[0].reference(suite), &clients[0].init_priv, &w, &store, &mut small);
        let needed = match r {
            Err(WelcomeError::BufferTooSmall { needed }) => needed,
            other => panic!("{:?}", other.err()),
        };
        assert!(needed > 100, "{needed}");
        let mut enough = vec![0u8; needed];
        let r = process_welcome(suite, &clients[0].reference(suite), &clients[0].init_priv, &w, &store, &mut enough);
        assert!(r.is_ok(), "a buffer of the size said is enough: {:?}", r.err());
    }
}

#[test]
fn welcome_creation_buffers_and_keys() {
    let suite = CipherSuite::X25519Aes128GcmSha256Ed25519;
    let clients: Vec<Client> = (1..=2).map(|i| Client::new(suite, i)).collect();
    let e = Epoch::new(suite);
    let gi = e.group_info();
    let ids: Vec<PreSharedKeyId<'_>> = e.psk_ids.iter().map(|p| p.view()).collect();
    let ws = e.welcome_secret();
    let params = WelcomeParams { suite, joiner_secret: &e.joiner, psks: &ids, welcome_secret: &ws, group_info: &gi };

    // Same-size entries need no scratch space; mixed sizes a little.
    let same: Vec<NewMember<'_>> =
        clients.iter().map(|c| NewMember::from_key_package(suite, &c.key_package(), None).unwrap()).collect();
    let sizes = params.sizes(&same).unwrap();
    assert_eq!(sizes.buffer_len, sizes.message_len);
    let ps = Secret::from_slice(&[1; 32]).unwrap();
    let mixed = [same[0], NewMember { path_secret: Some(&ps), ..same[1] }];
    let sizes = params.sizes(&mixed).unwrap();
    assert_eq!(sizes.buffer_len, sizes.message_len + 33 /* the smaller slot, by an optional path secret */);

    // Too small a buffer.
    let mut out = vec![0u8; sizes.buffer_len - 1];
    assert_eq!(
        params.create(&mixed, &mut TestRng(1), &Sequential, &mut out).err(),
        Some(WelcomeError::BufferTooSmall { needed: sizes.buffer_len })
    );

    // A low-order init key: refused, and nothing left in the buffer.
    let bad = [same[0], NewMember { init_key: HpkePublicKey::from_slice(&[0u8; 32]).unwrap(), ..same[1] }];
    let sizes = params.sizes(&bad).unwrap();
    let mut out = vec![0u8; sizes.buffer_len];
    assert_eq!(params.create(&bad, &mut TestRng(1), &Sequential, &mut out).err(), Some(WelcomeError::InvalidInitKey));
    assert!(out.iter().all(|b| *b == 0));

    // No members: a Welcome with no secrets (legal, useless).
    let sizes = params.sizes(&[]).unwrap();
    let mut out = vec![0u8; sizes.buffer_len];
    let w = params.create(&[], &mut TestRng(1), &Sequential, &mut out).unwrap().to_vec();
    assert!(welcome_of(&w).secrets.is_empty());

    // GroupInfo signing checks its suite.
    let gc = e.group_context();
    let mut wgc = WireGroupContext::from_group_context(&gc).unwrap();
    wgc.cipher_suite = 3;
    let tbs = GroupInfoTbs { group_context: wgc, extensions: Extensions::default(), confirmation_tag: &[0; 32], signer: 0 };
    let mut out = vec![0u8; 512];
    assert_eq!(GroupInfo::sign_into(suite, &tbs, &e.signer, &mut out).err(), Some(GroupInfoError::WrongCipherSuite));
    let mut tiny = [0u8; 10];
    let tbs = GroupInfoTbs { group_context: WireGroupContext::from_group_context(&gc).unwrap(), ..tbs };
    assert!(matches!(GroupInfo::sign_into(suite, &tbs, &e.signer, &mut tiny), Err(GroupInfoError::Codec(_))));
}

/// Many members and a large GroupInfo: 4-byte vector lengths, mixed entry
/// sizes, threads.
#[test]
fn welcome_large() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let clients: Vec<Client> = (1..=120).map(|i| Client::new(suite, i)).collect();
    let mut e = Epoch::new(suite);
    // One private-use GroupInfo extension of 64 KiB (a stand-in for a ratchet tree).
    let mut ext = Vec::new();
    let mut w_buf = vec![0u8; 70_000];
    let mut w = Writer::new(&mut w_buf);
    w.write_u16(0xff00).unwrap();
    w.write_opaque(&vec![0x5a; 65_536]).unwrap();
    ext.extend_from_slice(w.written());
    e.gi_extensions = ext;
    e.psk_ids.clear();
    e.psk_values.clear();
    let gi = e.group_info();
    let secrets: Vec<Secret> = (0..clients.len()).map(|i| Secret::from_slice(&[i as u8; 32]).unwrap()).collect();
    let members: Vec<NewMember<'_>> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| NewMember::from_key_package(suite, &c.key_package(), (i % 3 != 0).then(|| &secrets[i])).unwrap())
        .collect();
    let welcome = e.create(&gi, &members, 7, &Threads);
    assert_eq!(e.create(&gi, &members, 7, &Sequential), welcome);
    let expected = e.epoch_secrets();
    for (i, c) in clients.iter().enumerate().step_by(17) {
        let (s, path, _) = join(suite, c, &welcome, &NoPsks, &e.signer.public_key()).unwrap();
        assert_eq!(s, expected);
        assert_eq!(path, (i % 3 != 0).then(|| secrets[i].as_bytes().to_vec()));
    }
}

/// Builds a Welcome by hand (EncryptWithLabel of labeled.rs, not our
/// creation path) with the given GroupSecrets plaintext for `client`.
fn hand_welcome(suite: CipherSuite, e: &Epoch, client: &Client, group_secrets: &[u8]) -> Vec<u8> {
    let (key, nonce) = mls_nostd::key_schedule::welcome_key_nonce(suite, &e.welcome_secret()).unwrap();
    let mut egi = e.group_info();
    let tag = suite.aead_seal(key.as_bytes(), nonce.as_bytes(), &[], &mut egi).unwrap();
    egi.extend_from_slice(&tag);
    let init_pub = HpkePublicKey::from_slice(client.key_package().tbs.init_key).unwrap();
    let mut ct = group_secrets.to_vec();
    let sealed = encrypt_with_label(suite, &init_pub, WELCOME_LABEL, &egi, &mut ct, &mut TestRng(5)).unwrap();
    ct.extend_from_slice(&sealed.tag);
    let r = client.reference(suite);
    let entry = EncryptedGroupSecrets {
        new_member: &r,
        encrypted_group_secrets: HpkeCiphertext { kem_output: sealed.kem_output.as_bytes(), ciphertext: &ct },
    };
    let mut body = vec![0u8; 4096];
    let body = entry.encode_to(&mut body).unwrap().to_vec();
    let welcome = Welcome {
        cipher_suite: suite.to_u16(),
        secrets: ListView::from_body(&body).unwrap(),
        encrypted_group_info: &egi,
    };
    let msg = MlsMessage { version: 1, body: MlsMessageBody::Welcome(welcome) };
    let mut out = vec![0u8; 8192];
    msg.encode_to(&mut out).unwrap().to_vec()
}

fn group_secrets(joiner: &[u8], path: Option<&[u8]>, psks: &[PreSharedKeyIdOwned]) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let mut w = Writer::new(&mut buf);
    w.write_opaque(joiner).unwrap();
    match path {
        None => w.write_u8(0).unwrap(),
        Some(p) => {
            w.write_u8(1).unwrap();
            w.write_opaque(p).unwrap();
        }
    }
    let ids: Vec<PreSharedKeyId<'_>> = psks.iter().map(|p| p.view()).collect();
    w.write_vec(&ids).unwrap();
    w.written().to_vec()
}

#[test]
fn welcome_group_secrets_checks() {
    let suite = CipherSuite::X25519Aes128GcmSha256Ed25519;
    let client = Client::new(suite, 1);
    let signer_pub = mls_tests::signer(suite, &[7u8]).public_key();
    let mut e = Epoch::new(suite);
    let joiner = e.joiner.as_bytes().to_vec();

    // The hand-made Welcome is accepted: our opening agrees with EncryptWithLabel.
    let ok = hand_welcome(suite, &e, &client, &group_secrets(&joiner, Some(&[4; 32]), &e.psk_ids));
    let (s, path, _) = join(suite, &client, &ok, &e.store(), &signer_pub).unwrap();
    assert_eq!(s, e.epoch_secrets());
    assert_eq!(path, Some(vec![4; 32]));

    // Malformed GroupSecrets: short joiner secret, short path secret,
    // trailing bytes, bad optional flag.
    let mut trailing = group_secrets(&joiner, None, &e.psk_ids);
    trailing.push(0);
    let mut bad_flag = group_secrets(&joiner, None, &e.psk_ids);
    bad_flag[33] = 2;
    for gs in [
        group_secrets(&joiner[..16], None, &e.psk_ids),
        group_secrets(&joiner, Some(&[4; 16]), &e.psk_ids),
        trailing,
        bad_flag,
    ] {
        let w = hand_welcome(suite, &e, &client, &gs);
        assert!(matches!(join(suite, &client, &w, &e.store(), &signer_pub), Err(WelcomeError::Malformed(_))));
    }

    // PSK nonce not Nh bytes; the same PSK twice.
    let short_nonce = [PreSharedKeyIdOwned::External(b"ext psk".to_vec(), vec![3; 16])];
    let w = hand_welcome(suite, &e, &client, &group_secrets(&joiner, None, &short_nonce));
    assert_eq!(join(suite, &client, &w, &e.store(), &signer_pub).err(), Some(WelcomeError::InvalidPsk));
    let twice = [e.psk_ids[0].clone(), e.psk_ids[0].clone()];
    let w = hand_welcome(suite, &e, &client, &group_secrets(&joiner, None, &twice));
    assert_eq!(join(suite, &client, &w, &e.store(), &signer_pub).err(), Some(WelcomeError::InvalidPsk));
    // Regression (interop with OpenMLS and mls-rs): the same PSK with two
    // fresh nonces is two PreSharedKeyIDs (§12.2), and joins.
    let saved = (e.psk_ids.clone(), e.psk_values.clone());
    e.psk_ids = vec![
        PreSharedKeyIdOwned::External(b"ext psk".to_vec(), vec![1; 32]),
        PreSharedKeyIdOwned::External(b"ext psk".to_vec(), vec![2; 32]),
    ];
    e.psk_values = vec![vec![0x77; 32], vec![0x77; 32]];
    let w = hand_welcome(suite, &e, &client, &group_secrets(&joiner, None, &e.psk_ids));
    let (s, _, _) = join(suite, &client, &w, &e.store(), &signer_pub).unwrap();
    assert_eq!(s, e.epoch_secrets());
    (e.psk_ids, e.psk_values) = saved;

    // Resumption PSKs: a branch PSK is fine at epoch 1 only; two
    // reinit/branch PSKs never.
    let branch = PreSharedKeyIdOwned::Resumption(ResumptionPskUsage::Branch, b"old group".to_vec(), 9, vec![6; 32]);
    let reinit = PreSharedKeyIdOwned::Resumption(ResumptionPskUsage::Reinit, b"old group".to_vec(), 8, vec![6; 32]);
    e.psk_ids = vec![branch.clone()];
    e.psk_values = vec![vec![0xbb; 32]];
    for (epoch, expected) in [(1, None), (5, Some(WelcomeError::InvalidPsk))] {
        e.epoch = epoch;
        let w = hand_welcome(suite, &e, &client, &group_secrets(&joiner, None, &e.psk_ids));
        assert_eq!(join(suite, &client, &w, &e.store(), &signer_pub).err(), expected, "epoch {epoch}");
    }
    e.psk_ids = vec![branch, reinit];
    e.psk_values = vec![vec![0xbb; 32], vec![0xcc; 32]];
    let w = hand_welcome(suite, &e, &client, &group_secrets(&joiner, None, &e.psk_ids));
    assert_eq!(join(suite, &client, &w, &e.store(), &signer_pub).err(), Some(WelcomeError::InvalidPsk));

    // More PSKs than the build holds.
    let many: Vec<PreSharedKeyIdOwned> =
        (0..17u8).map(|i| PreSharedKeyIdOwned::External(vec![i], vec![i; 32])).collect();
    e.psk_ids = many;
    e.psk_values = (0..17u8).map(|i| vec![i; 8]).collect();
    e.epoch = 5;
    let w = hand_welcome(suite, &e, &client, &group_secrets(&joiner, None, &e.psk_ids));
    assert_eq!(join(suite, &client, &w, &e.store(), &signer_pub).err(), Some(WelcomeError::TooManyPsks));
}

/// Cost of a Welcome to 1,000 members with a 340 KB GroupInfo (docs/architecture.md,
/// "Host performance": adding 1,023 members): run with
/// `cargo test --release -p mls-tests --test welcome -- --ignored --nocapture`.
#[test]
#[ignore]
fn welcome_1000_members_timing() {
    let suite = CipherSuite::X25519Aes128GcmSha256Ed25519;
    let mut e = Epoch::new(suite);
    let mut w_buf = vec![0u8; 350_000];
    let mut w = Writer::new(&mut w_buf);
    w.write_u16(0xff00).unwrap();
    w.write_opaque(&vec![0x5a; 340_000]).unwrap();
    e.gi_extensions = w.written().to_vec();
    let gi = e.group_info();
    let keys: Vec<(HpkePrivateKey, HpkePublicKey)> =
        (0..1000u32).map(|i| derive_key_pair(suite, &[i as u8, (i >> 8) as u8, 1, 2]).unwrap()).collect();
    let path = Secret::from_slice(&[1; 32]).unwrap();
    let members: Vec<NewMember<'_>> = keys
        .iter()
        .enumerate()
        .map(|(i, (_, pk))| NewMember {
            key_package_ref: mls_nostd::crypto::HashValue::from_slice(&[i as u8; 32]).unwrap(),
            init_key: *pk,
            path_secret: Some(&path),
        })
        .collect();
    let start = std::time::Instant::now();
    let welcome = e.create(&gi, &members, 1, &Sequential);
    let created = start.elapsed();
    let w = welcome_of(&welcome);
    let start = std::time::Instant::now();
    let mut buf = vec![0u8; welcome.len()];
    let d = process_welcome(suite, &[7u8; 32], &keys[7].0, &w, &e.store(), &mut buf).unwrap();
    d.verify(&e.signer.public_key()).unwrap();
    let joined = start.elapsed();
    // For comparison: EncryptWithLabel per member, hashing the encrypted
    // GroupInfo into each HPKE info.
    let start = std::time::Instant::now();
    let mut rng = TestRng(1);
    for (_, pk) in &keys {
        let mut pt = [0u8; 80];
        encrypt_with_label(suite, pk, WELCOME_LABEL, w.encrypted_group_info, &mut pt, &mut rng).unwrap();
    }
    println!(
        "Welcome to {} members, GroupInfo {} bytes, message {} bytes: created in {created:?} (sequential), \
         joined in {joined:?}; {} separate EncryptWithLabel calls: {:?}",
        members.len(),
        gi.len(),
        welcome.len(),
        keys.len(),
        start.elapsed()
    );
}
