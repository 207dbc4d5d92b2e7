//! User guide: a group's life, from creation to removal.
//!
//! Every size is fixed at compile time: a [`Group`](crate::group::Group) has
//! room for `N` leaves, `ARENA` bytes of leaf encodings, `K` out-of-order
//! message keys and `P` bytes of pending proposals. Keep groups in `static`s
//! (or, on a host, in a `Box`) starting from [`Group::EMPTY`](crate::group::Group::EMPTY),
//! so their state is never built on the stack. Randomness, time (`now`, in
//! seconds since the Unix epoch) and PSKs are passed in; messages are written
//! into buffers you provide.
//!
//! **On a device, use the group through its storage**: [`Group::stored`](crate::group::Group::stored)
//! binds it to a [`Storage`](crate::store::Storage) slot, and each operation
//! of the [`StoredGroup`](crate::store::durable::StoredGroup) saves before it
//! returns, so a reboot never reuses a key and nonce, forgets a Commit it
//! sent, or accepts a replayed message. `Group`'s own operations are named
//! `*_in_memory`: they are for hosts that save the group by other means (and
//! for tests). Below, Alice is a device (a RAM store stands in for flash) and
//! Bob a host.
//!
//! The example below runs as a test (`cargo test -p mls-nostd --doc`). Its
//! RNG is a toy to keep it self-contained: use a real CSPRNG, e.g.
//! `platform_std::os_rng()` on a host or the board's TRNG on a device.
//!
//! ```
//! use mls_nostd::prelude::*;
//!
//! # struct ToyRng(u64);
//! # impl rand_core::TryRng for ToyRng {
//! #     type Error = core::convert::Infallible;
//! #     fn try_next_u32(&mut self) -> Result<u32, Self::Error> { Ok(self.try_next_u64()? as u32) }
//! #     fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
//! #         self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
//! #         Ok(self.0 ^ (self.0 >> 31))
//! #     }
//! #     fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), Self::Error> {
//! #         for c in d.chunks_mut(8) { let v = self.try_next_u64()?.to_le_bytes(); c.copy_from_slice(&v[..c.len()]); }
//! #         Ok(())
//! #     }
//! # }
//! # impl rand_core::TryCryptoRng for ToyRng {}
//! // Up to 8 members, 4 KiB of leaf encodings, 32 skipped keys, 4 KiB of proposals.
//! type MyGroup = Group<8, 4096, 32, 4096>;
//! let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
//! let now = 1_800_000_000;
//! let lifetime = Lifetime { not_before: now - 60, not_after: now + 30 * 86_400 };
//! let mut rng = ToyRng(7);
//!
//! // 1. Alice creates the group.
//! let alice_key = SignaturePrivateKey::from_slice(suite, &[1; 32]).unwrap();
//! let mut alice = Box::new(MyGroup::EMPTY);
//! let mut caps = [0u8; 8];
//! alice.create(
//!     &CreateParams {
//!         suite,
//!         group_id: b"sensors-floor-3",
//!         credential: Credential::Basic { identity: b"alice" },
//!         lifetime,
//!         capabilities: default_capabilities(suite, &mut caps),
//!         extensions: Extensions::default(),
//!         config: GroupConfig::default(),
//!     },
//!     &alice_key,
//!     &mut rng,
//! ).unwrap();
//! // Her flash (here a RAM store), group slot 0, and a record buffer.
//! let mut flash = RamStorage::<64, { 64 * 1024 }>::EMPTY;
//! let mut record: RecordBuffer = [0; mls_nostd::store::MAX_RECORD_LEN];
//! alice.stored(&mut flash, 0, &mut record).save(Parts::ALL).unwrap();
//!
//! // 2. Bob publishes a KeyPackage; he keeps its private keys (in a
//! //    `key_store::KeyPackageStore` in real code).
//! let bob_key = SignaturePrivateKey::from_slice(suite, &[2; 32]).unwrap();
//! let mut kp_buf = [0u8; 1024];
//! let (bob_kp, bob_kp_keys) = KeyPackage::generate(
//!     &KeyPackageParams {
//!         suite,
//!         credential: Credential::Basic { identity: b"bob" },
//!         lifetime,
//!         leaf_extensions: Extensions::default(),
//!         extensions: Extensions::default(),
//!         supported_extensions: U16List::default(),
//!         supported_proposals: U16List::default(),
//!     },
//!     &bob_key,
//!     &mut rng,
//!     &mut kp_buf,
//! ).unwrap();
//!
//! // 3. Alice adds Bob: a Commit for the group and a Welcome for Bob.
//! let (mut msg, mut welcome, mut group_info) = (vec![0u8; 32 * 1024], vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
//! let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(bob_kp).unwrap() });
//! let out = alice.stored(&mut flash, 0, &mut record).commit(
//!     &CommitOptions { proposals: &[add], ..CommitOptions::DEFAULT },
//!     &NoPsks, now, &mut rng, &Sequential,
//!     CommitBuffers { message: &mut msg, welcome: &mut welcome, group_info: &mut group_info },
//! ).unwrap();
//! let welcome = out.welcome.unwrap().to_vec();
//! // Send out.commit to the group (nobody else yet) and the Welcome to Bob, then:
//! alice.stored(&mut flash, 0, &mut record).merge_staged_commit().unwrap();
//!
//! // 4. Bob joins from the Welcome (the tree travels inside it).
//! let mut bob = Box::new(MyGroup::EMPTY);
//! let mut join_buf = vec![0u8; welcome.len()];
//! bob.join_in_memory(&welcome, &JoinParams {
//!     key_package: bob_kp,
//!     keys: &bob_kp_keys,
//!     signer: &bob_key,
//!     ratchet_tree: None,
//!     psks: &NoPsks,
//!     config: GroupConfig::default(),
//! }, &mut join_buf).unwrap();
//! assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());
//!
//! // 5. Send and receive application data (PrivateMessage).
//! let mut ct = [0u8; 512];
//! let sent = alice.stored(&mut flash, 0, &mut record).protect_application(b"temp=21.5", b"", 0, &mut rng, &mut ct).unwrap().to_vec();
//! let mut incoming = sent.clone();
//! match bob.process_message_in_memory(&mut incoming, &NoPsks, now).unwrap() {
//!     Received::Application { data, .. } => assert_eq!(data, b"temp=21.5"),
//!     other => panic!("{other:?}"),
//! }
//!
//! // 6. Bob updates his keys: a Commit with a path (post-compromise security).
//! let bob_pub = bob_key.public_key();
//! let mut bob_caps = [0u8; 8];
//! let template = LeafTemplate {
//!     signature_key: bob_pub.as_bytes(),
//!     credential: Credential::Basic { identity: b"bob" },
//!     capabilities: default_capabilities(suite, &mut bob_caps),
//!     extensions: Extensions::default(),
//! };
//! let (mut msg, mut w, mut gi) = (vec![0u8; 32 * 1024], vec![0u8; 1024], vec![0u8; 1024]);
//! let out = bob.commit_in_memory(
//!     &CommitOptions {
//!         force_path: true, wire_format: WireFormatPolicy::Private, leaf: Some(template), ..CommitOptions::DEFAULT
//!     },
//!     &NoPsks, now, &mut rng, &Sequential,
//!     CommitBuffers { message: &mut msg, welcome: &mut w, group_info: &mut gi },
//! ).unwrap();
//! let mut commit = out.commit.to_vec();
//! bob.merge_staged_commit_in_memory().unwrap();
//! let mut alice_stored = alice.stored(&mut flash, 0, &mut record);
//! match alice_stored.process_message(&mut commit, &NoPsks, now).unwrap() {
//!     // Inspect what the commit does before accepting it.
//!     Received::Commit(summary) => assert_eq!(summary.updates + summary.adds + summary.removes, 0),
//!     other => panic!("{other:?}"),
//! }
//! alice_stored.merge_staged_commit().unwrap();
//! assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());
//!
//! // 7. Alice removes Bob.
//! let (mut msg, mut w, mut gi) = (vec![0u8; 32 * 1024], vec![0u8; 1024], vec![0u8; 1024]);
//! let mut alice_caps = [0u8; 8];
//! let alice_pub = alice_key.public_key();
//! let template = LeafTemplate {
//!     signature_key: alice_pub.as_bytes(),
//!     credential: Credential::Basic { identity: b"alice" },
//!     capabilities: default_capabilities(suite, &mut alice_caps),
//!     extensions: Extensions::default(),
//! };
//! let remove = Proposal::Remove(Remove { removed: 1 });
//! let out = alice.stored(&mut flash, 0, &mut record).commit(
//!     &CommitOptions { proposals: &[remove], leaf: Some(template), ..CommitOptions::DEFAULT },
//!     &NoPsks, now, &mut rng, &Sequential,
//!     CommitBuffers { message: &mut msg, welcome: &mut w, group_info: &mut gi },
//! ).unwrap();
//! let mut commit = out.commit.to_vec();
//! alice.stored(&mut flash, 0, &mut record).merge_staged_commit().unwrap();
//! match bob.process_message_in_memory(&mut commit, &NoPsks, now).unwrap() {
//!     Received::Commit(summary) => assert!(summary.removes_us),
//!     other => panic!("{other:?}"),
//! }
//! bob.merge_staged_commit_in_memory().unwrap();
//! assert!(bob.is_inactive());
//! ```
