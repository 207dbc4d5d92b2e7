//! The device side of the member scenario (cipher suite 3, or 2 with the
//! feature `suite-2`), shared by the
//! firmware, which runs it on the board, and by `board-scenario`, which runs
//! it on the host at build time to predict the firmware's output.
//!
//! Both sides execute the same [`Device::step`] with the same [`SeededRng`]
//! seed and the same inputs, so the KeyPackage, Commit and application
//! messages the firmware produces must equal, byte for byte, those of the
//! simulation, which the host members have already accepted.
#![no_std]

pub mod rng;

use mls_nostd::codec::CodecError;
use mls_nostd::credential::Credential;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::executor::Sequential;
use mls_nostd::extensions::{Extensions, U16List};
use mls_nostd::group::{
    CommitBuffers, CommitOptions, CreateCommitError, Group, GroupConfig, GroupError, JoinError, JoinParams,
    ReceiveError, Received, StagedCommitSummary, WireFormatPolicy, default_capabilities,
};
use mls_nostd::key_package::{KeyPackage, KeyPackageBuildError, KeyPackageParams, KeyPackagePrivateKeys};
use mls_nostd::leaf_node::Lifetime;
use mls_nostd::messages::{ReadWelcome, WelcomeError, WelcomeReader};
use mls_nostd::psk::NoPsks;
use mls_nostd::ratchet_tree::treekem::LeafTemplate;
use mls_nostd::store::durable::{DurableError, RecordBuffer, store_key_package};
use mls_nostd::store::{Storage, StoreError};

pub use rng::SeededRng;

/// The scenario's cipher suite: X25519, ChaCha20Poly1305, SHA-256, Ed25519.
#[cfg(not(feature = "suite-2"))]
pub const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
/// The scenario's cipher suite (feature `suite-2`): P-256, AES-128-GCM,
/// SHA-256, ECDSA P-256.
#[cfg(feature = "suite-2")]
pub const SUITE: CipherSuite = CipherSuite::P256Aes128GcmSha256P256;
/// The device's clock, in seconds since the Unix epoch. QEMU's boards have
/// no battery-backed clock the firmware could trust, so "now" is fixed; it
/// only decides whether KeyPackage lifetimes are valid.
pub const NOW: u64 = 1_800_000_000;
/// Lifetime of every KeyPackage of the scenario.
pub const LIFETIME: Lifetime = Lifetime { not_before: NOW - 3600, not_after: NOW + 30 * 86_400 };
/// The device's basic credential.
pub const DEVICE_IDENTITY: &[u8] = b"device-0042";
/// Seed of the device's RNG.
pub const DEVICE_SEED: u64 = 0x6d6c_732d_6465_7669;

/// Arena bytes per leaf: a LeafNode with a basic credential of up to 32
/// bytes and default capabilities encodes to about 200 bytes, plus the
/// arena's 8-byte record header.
#[cfg(not(feature = "suite-2"))]
pub const ARENA_PER_LEAF: usize = 224;
/// Arena bytes per leaf in suite 2: P-256 keys are 65 bytes (X25519 and
/// Ed25519: 32) and an ECDSA signature up to 72 in DER (Ed25519: 64), 81
/// bytes more per LeafNode.
#[cfg(feature = "suite-2")]
pub const ARENA_PER_LEAF: usize = 224 + 88;
/// Arena bytes a staged Commit needs beyond the leaf encodings: its new leaf
/// encodings and its undo log, whose parent entries are 206 bytes each (a
/// Commit with a path at 8 leaves overflowed an arena of `8 * ARENA_PER_LEAF`
/// in a group of 6). Enough for a path of up to 4 parents when the group is
/// full; fuller paths use the free leaf room of a group three quarters full.
/// A group of at most 4 leaves (the micro:bit's) has paths of at most 2
/// parents: half of it.
#[cfg(not(feature = "suite-2"))]
pub const fn stage_reserve(leaves: usize) -> usize {
    if leaves <= 4 { 768 } else { 1024 }
}
/// The stage reserve in suite 2: a parent's HPKE key is 65 bytes, 33 more
/// per undo-log entry.
#[cfg(feature = "suite-2")]
pub const fn stage_reserve(leaves: usize) -> usize {
    if leaves <= 4 { 768 + 2 * 64 } else { 1024 + 4 * 64 }
}

/// The tree arena of a group of `leaves` leaves.
pub const fn arena_bytes(leaves: usize) -> usize {
    leaves * ARENA_PER_LEAF + stage_reserve(leaves)
}
/// Out-of-order message keys kept per group (secret tree): 16, and 2 in a
/// group of at most 4 leaves, whose device has 16 KiB of RAM (a key kept is
/// about 60 bytes; the scenario reads every message in order).
pub const fn skipped_keys(leaves: usize) -> usize {
    if leaves <= 4 { 2 } else { 16 }
}
/// Secrets of the epoch's secret tree a stored device holds at once (the
/// group's `E`, issue #14): twice the tree's depth, so a sender's path from
/// the root (depth + 1) and another sender's ratchets fit; its store keeps
/// the rest and reads a sender's back when it speaks. A direct tree holds
/// one per leaf (75 bytes each).
pub const fn secret_entries(leaves: usize) -> usize {
    let mut depth = 0;
    while (1usize << depth) < leaves {
        depth += 1;
    }
    if 2 * depth > depth + 1 { 2 * depth } else { depth + 1 }
}
/// Bytes of proposals received in one epoch, kept for a Commit: 2 KiB, and
/// 512 in a group of at most 4 leaves (one Update proposal with its leaf).
pub const fn proposal_bytes(leaves: usize) -> usize {
    if leaves <= 4 { 512 } else { 2048 }
}
/// Longest KeyPackage the device keeps (its own, with GREASE values).
pub const MAX_KEY_PACKAGE: usize = 512;

/// Bytes of a Welcome's piece as the device receives it (a radio frame).
pub const WELCOME_PIECE: usize = 64;

/// Scratch bytes a join needs to read a Welcome in pieces
/// (`WelcomeReader`): the encrypted GroupInfo, our GroupSecrets'
/// ciphertext (at most the longest of the Welcome's), room for the longest
/// `EncryptedGroupSecrets` entry and for a piece.
pub const fn welcome_scratch(group_info_len: usize, longest_ciphertext: usize, longest_entry: usize) -> usize {
    group_info_len + longest_ciphertext + longest_entry + WELCOME_PIECE
}

/// Scratch bytes the device's Commit with path needs, from the length of
/// the Commit (see the core's `CommitBuffers::message`): the core builds
/// the Commit where it is sent, each of its UpdatePath's HPKE ciphertexts
/// sealed in a job longer than the ciphertext (the recipient's key, an IKM
/// and the path secret in, `Npk + 2 Nh` bytes, against the ciphertext's
/// `Npk + Nh + 18`: 96 against 82 bytes with X25519 and SHA-256, 129
/// against 115 with P-256), so the path's ciphertexts, less than the
/// Commit, need that ratio more; and the path's length prefixes counted at
/// their longest (at most 256 bytes more). (Until December 5 the list, the
/// path and the jobs each had room of their own: 4.3 times the Commit; then
/// 2.3 with the ciphertexts written over their jobs; then 1.33, a third
/// being the worst suite's ratio, X448 with SHA-512; now the ratio of the
/// suite built.)
pub const fn commit_scratch(commit_len: usize) -> usize {
    let (npk, nh) = (SUITE.kem().public_len(), SUITE.hash_len());
    let job = npk + 2 * nh;
    let ciphertext = npk + nh + 18;
    commit_len + (commit_len * (job - ciphertext)).div_ceil(ciphertext) + 256
}

/// One thing the device is asked to do.
#[derive(Clone, Copy, Debug)]
pub enum Action<'a> {
    /// Generate a signature key (first call only) and a KeyPackage; keep its
    /// private keys.
    KeyPackage,
    /// Join from this Welcome with the KeyPackage generated before, the
    /// group's ratchet tree given out of band (RFC 9420 §12.4.3.3): the
    /// Welcome does not carry it, the device reads it where it was stored
    /// (here the firmware's flash), so no RAM holds its encoding.
    Join { welcome: &'a [u8], ratchet_tree: &'a [u8] },
    /// Process a handshake or application message of the group; a Commit
    /// is merged at once.
    Receive { message: &'a [u8] },
    /// Commit every proposal received this epoch (by reference), with an
    /// UpdatePath, as a PrivateMessage; merge it.
    Commit,
    /// Protect application data as a PrivateMessage.
    Protect { data: &'a [u8] },
}

/// What a step produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome<'o> {
    /// The encoded KeyPackage (to publish).
    KeyPackage(&'o [u8]),
    /// The group was joined.
    Joined,
    /// Application data received.
    Application { sender: u32, data: &'o [u8] },
    /// A proposal received and kept.
    Proposal,
    /// A Commit received and merged.
    Merged(StagedCommitSummary),
    /// Our Commit (to send to the group), merged.
    Committed(&'o [u8]),
    /// Our protected application message (to send).
    Protected(&'o [u8]),
}

/// Why a step failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StepError {
    KeyPackage(KeyPackageBuildError),
    Join(JoinError),
    Receive(ReceiveError),
    Commit(CreateCommitError),
    Merge(GroupError),
    /// The Welcome could not be read (in pieces, before the join).
    Welcome(WelcomeError),
    /// Join before any KeyPackage was generated.
    NoKeyPackage,
    /// The scratch buffer is too small for the input.
    Scratch(CodecError),
    /// The step's result could not be stored (a [`Stored`] group): nothing
    /// was returned.
    Store(StoreError),
}

/// Reads `welcome` as it arrives, in pieces of [`WELCOME_PIECE`] bytes,
/// into `buf`. Its own frame: the reader's is gone before the join.
#[inline(never)]
fn read_welcome<'b>(key_package: &[u8], welcome: &[u8], buf: &'b mut [u8]) -> Result<ReadWelcome<'b>, WelcomeError> {
    let mut reader = WelcomeReader::new(key_package, buf)?;
    for piece in welcome.chunks(WELCOME_PIECE) {
        reader.feed(piece)?;
    }
    reader.finish()
}

/// The group a device step runs on: [`Group`] itself, through its
/// `*_in_memory` operations (the measured runs, which have no store), or
/// [`Stored`], through [`StoredGroup`](mls_nostd::store::durable::StoredGroup) as a product uses it (each step
/// stored before it returns; the reboot run). A received or own Commit is
/// merged at once.
pub trait DeviceGroup {
    /// Processes `message` (decrypted in place).
    fn receive<'m>(&mut self, message: &'m mut [u8]) -> Result<Outcome<'m>, StepError>;
    /// Protects `data` into `out`.
    fn protect<'o>(&mut self, data: &[u8], rng: &mut SeededRng, out: &'o mut [u8]) -> Result<&'o [u8], StepError>;
    /// Joins from a Welcome read in pieces with `p`'s KeyPackage,
    /// decrypting what the reader kept where it lies.
    fn join(&mut self, welcome: &mut ReadWelcome<'_>, p: &JoinParams<'_>) -> Result<(), StepError>;
    /// Commits, merges, and returns the Commit.
    fn commit<'o>(&mut self, opts: &CommitOptions<'_>, rng: &mut SeededRng, bufs: CommitBuffers<'o>) -> Result<&'o [u8], StepError>;
    /// The group's epoch and epoch authenticator.
    fn epoch_and_authenticator(&self) -> (u64, &[u8]);
}

fn merged<'m>(received: Received<'m>, merge: impl FnOnce() -> Result<(), StepError>) -> Result<Outcome<'m>, StepError> {
    match received {
        Received::Application { sender, data, .. } => Ok(Outcome::Application { sender: sender.0, data }),
        Received::Proposal { .. } => Ok(Outcome::Proposal),
        Received::Commit(summary) => {
            merge()?;
            Ok(Outcome::Merged(summary))
        }
    }
}

impl<const N: usize, const ARENA: usize, const K: usize, const P: usize, const E: usize> DeviceGroup
    for Group<N, ARENA, K, P, SignaturePrivateKey, E>
{
    fn receive<'m>(&mut self, message: &'m mut [u8]) -> Result<Outcome<'m>, StepError> {
        let received = self.process_message_in_memory(message, &NoPsks, NOW).map_err(StepError::Receive)?;
        merged(received, || self.merge_staged_commit_in_memory().map_err(StepError::Merge))
    }

    fn protect<'o>(&mut self, data: &[u8], rng: &mut SeededRng, out: &'o mut [u8]) -> Result<&'o [u8], StepError> {
        self.protect_application_in_memory(data, &[], 0, rng, out).map_err(StepError::Receive)
    }

    fn join(&mut self, welcome: &mut ReadWelcome<'_>, p: &JoinParams<'_>) -> Result<(), StepError> {
        self.join_read_in_memory(welcome, p).map_err(StepError::Join)
    }

    fn commit<'o>(&mut self, opts: &CommitOptions<'_>, rng: &mut SeededRng, bufs: CommitBuffers<'o>) -> Result<&'o [u8], StepError> {
        let out = self.commit_in_memory(opts, &NoPsks, NOW, rng, &Sequential, bufs).map_err(StepError::Commit)?;
        self.merge_staged_commit_in_memory().map_err(StepError::Merge)?;
        Ok(out.commit)
    }

    fn epoch_and_authenticator(&self) -> (u64, &[u8]) {
        (self.epoch(), self.epoch_authenticator())
    }
}

/// A group bound to group `slot` of `storage`: each step goes through
/// [`Group::stored`]'s [`StoredGroup`](mls_nostd::store::durable::StoredGroup).
pub struct Stored<'a, S: Storage, const N: usize, const ARENA: usize, const K: usize, const P: usize, const E: usize> {
    pub group: &'a mut Group<N, ARENA, K, P, SignaturePrivateKey, E>,
    pub storage: &'a mut S,
    pub slot: u8,
    pub buf: &'a mut RecordBuffer,
}

/// `DurableError` of an operation into a [`StepError`].
fn durable<E>(op: fn(E) -> StepError) -> impl Fn(DurableError<E>) -> StepError {
    move |e| match e {
        DurableError::Op(e) => op(e),
        DurableError::Store(e) => StepError::Store(e),
        _ => StepError::Store(StoreError::Corrupt),
    }
}

impl<S: Storage, const N: usize, const ARENA: usize, const K: usize, const P: usize, const E: usize> DeviceGroup
    for Stored<'_, S, N, ARENA, K, P, E>
{
    fn receive<'m>(&mut self, message: &'m mut [u8]) -> Result<Outcome<'m>, StepError> {
        let mut g = self.group.stored(self.storage, self.slot, self.buf);
        let received = g.process_message(message, NOW).map_err(durable(StepError::Receive))?;
        merged(received, || g.merge_staged_commit().map_err(durable(StepError::Merge)))
    }

    fn protect<'o>(&mut self, data: &[u8], rng: &mut SeededRng, out: &'o mut [u8]) -> Result<&'o [u8], StepError> {
        let mut g = self.group.stored(self.storage, self.slot, self.buf);
        g.protect_application(data, &[], 0, rng, out).map_err(durable(StepError::Receive))
    }

    /// Stores the KeyPackage's keys, then joins: the join removes them at
    /// its commit point.
    fn join(&mut self, welcome: &mut ReadWelcome<'_>, p: &JoinParams<'_>) -> Result<(), StepError> {
        use mls_nostd::codec::Decode;
        let reference = KeyPackage::decode_exact(p.key_package)
            .and_then(|kp| kp.reference(SUITE).map_err(|_| CodecError::InvalidValue))
            .map_err(StepError::Scratch)?;
        store_key_package(self.storage, SUITE, &reference, p.keys, p.signer, self.buf).map_err(StepError::Store)?;
        self.group.stored(self.storage, self.slot, self.buf).join_read(welcome, p).map_err(durable(StepError::Join))
    }

    fn commit<'o>(&mut self, opts: &CommitOptions<'_>, rng: &mut SeededRng, bufs: CommitBuffers<'o>) -> Result<&'o [u8], StepError> {
        let mut g = self.group.stored(self.storage, self.slot, self.buf);
        let out = g.commit(opts, &NoPsks, NOW, rng, &Sequential, bufs).map_err(durable(StepError::Commit))?;
        g.merge_staged_commit().map_err(durable(StepError::Merge))?;
        Ok(out.commit)
    }

    fn epoch_and_authenticator(&self) -> (u64, &[u8]) {
        (self.group.epoch(), self.group.epoch_authenticator())
    }
}

/// The device: its RNG, signature key and pending KeyPackage. The group
/// itself is passed to each step (it lives in a `static` on the board).
pub struct Device {
    rng: SeededRng,
    signer: Option<SignaturePrivateKey>,
    key_package: [u8; MAX_KEY_PACKAGE],
    key_package_len: usize,
    key_package_keys: Option<KeyPackagePrivateKeys>,
}

impl Device {
    /// A device whose every random draw follows from `seed`.
    pub const fn new(seed: u64) -> Self {
        Self {
            rng: SeededRng::new(seed),
            signer: None,
            key_package: [0; MAX_KEY_PACKAGE],
            key_package_len: 0,
            key_package_keys: None,
        }
    }

    /// Where the device's RNG is, for [`Device::resume`] after a reboot (a
    /// product reseeds from its TRNG instead; the scenario's expected bytes
    /// need the same stream).
    pub fn rng_state(&self) -> u64 {
        self.rng.state()
    }

    /// The device's signature key, once generated.
    pub fn signature_key(&self) -> Option<&SignaturePrivateKey> {
        self.signer.as_ref()
    }

    /// The device after a reboot: its group comes from the store, its RNG
    /// continues from `rng_state`, its signature key is `signer`. It holds no
    /// pending KeyPackage.
    pub fn resume(rng_state: u64, signer: Option<SignaturePrivateKey>) -> Self {
        let mut d = Self::new(rng_state);
        d.signer = signer;
        d
    }

    /// Runs one step on `group`, with `scratch` for messages and work areas;
    /// what it returns borrows `scratch`.
    pub fn step<'o>(
        &mut self,
        group: &mut impl DeviceGroup,
        action: &Action<'_>,
        scratch: &'o mut [u8],
    ) -> Result<Outcome<'o>, StepError> {
        match *action {
            Action::KeyPackage => self.key_package(scratch),
            Action::Join { welcome, ratchet_tree } => self.join(group, welcome, ratchet_tree, scratch),
            Action::Receive { message } => Self::receive(group, message, scratch),
            Action::Commit => self.commit(group, scratch),
            Action::Protect { data } => self.protect(group, data, scratch),
        }
    }

    fn signer(&mut self) -> &SignaturePrivateKey {
        let rng = &mut self.rng;
        self.signer.get_or_insert_with(|| SignaturePrivateKey::generate(SUITE, rng).0)
    }

    // Each operation is a function of its own, never inlined into `step`: a
    // single frame would have to hold the locals of all of them at once.

    #[inline(never)]
    fn receive<'o>(group: &mut impl DeviceGroup, message: &[u8], scratch: &'o mut [u8]) -> Result<Outcome<'o>, StepError> {
        let buf = scratch.get_mut(..message.len()).ok_or(StepError::Scratch(CodecError::BufferTooSmall { needed: message.len() }))?;
        buf.copy_from_slice(message);
        group.receive(buf)
    }

    #[inline(never)]
    fn protect<'o>(&mut self, group: &mut impl DeviceGroup, data: &[u8], scratch: &'o mut [u8]) -> Result<Outcome<'o>, StepError> {
        Ok(Outcome::Protected(group.protect(data, &mut self.rng, scratch)?))
    }

    /// Generates the signature key (first call only) and a KeyPackage;
    /// keeps its private keys for [`Action::Join`]. Also reachable without a
    /// group, for boards too small to hold one.
    #[inline(never)]
    pub fn key_package<'o>(&mut self, scratch: &'o mut [u8]) -> Result<Outcome<'o>, StepError> {
        let signer = self.signer().clone();
        let params = KeyPackageParams {
            suite: SUITE,
            credential: Credential::Basic { identity: DEVICE_IDENTITY },
            lifetime: LIFETIME,
            leaf_extensions: Extensions::default(),
            extensions: Extensions::default(),
            supported_extensions: U16List::default(),
            supported_proposals: U16List::default(),
        };
        let (bytes, keys) = KeyPackage::generate(&params, &signer, &mut self.rng, &mut self.key_package)
            .map_err(StepError::KeyPackage)?;
        self.key_package_len = bytes.len();
        self.key_package_keys = Some(keys);
        let bytes = self.key_package.get(..self.key_package_len).unwrap_or(&[]);
        // Returned in the scratch buffer like every other output.
        let out = scratch.get_mut(..bytes.len()).ok_or(StepError::Scratch(CodecError::BufferTooSmall { needed: bytes.len() }))?;
        out.copy_from_slice(bytes);
        Ok(Outcome::KeyPackage(out))
    }

    #[inline(never)]
    fn join<'o>(
        &mut self,
        group: &mut impl DeviceGroup,
        welcome: &[u8],
        ratchet_tree: &[u8],
        scratch: &'o mut [u8],
    ) -> Result<Outcome<'o>, StepError> {
        let keys = self.key_package_keys.take().ok_or(StepError::NoKeyPackage)?;
        let signer = self.signer.clone().ok_or(StepError::NoKeyPackage)?;
        let params = JoinParams {
            executor: &mls_nostd::executor::Sequential,
            key_package: self.key_package.get(..self.key_package_len).unwrap_or(&[]),
            keys: &keys,
            signer: &signer,
            ratchet_tree: (!ratchet_tree.is_empty()).then_some(ratchet_tree),
            psks: &NoPsks,
            config: GroupConfig::default(),
        };
        // The Welcome as received, in radio frames of WELCOME_PIECE bytes:
        // the reader keeps our GroupSecrets and the encrypted GroupInfo in
        // the scratch (not every joiner's entry), decrypted there.
        let mut read = read_welcome(params.key_package, welcome, scratch).map_err(StepError::Welcome)?;
        let joined = group.join(&mut read, &params);
        if joined.is_err() {
            // Keep the keys: the KeyPackage was not consumed.
            self.key_package_keys = Some(keys);
        }
        joined.map(|()| Outcome::Joined)
    }

    #[inline(never)]
    fn commit<'o>(
        &mut self,
        group: &mut impl DeviceGroup,
        scratch: &'o mut [u8],
    ) -> Result<Outcome<'o>, StepError> {
        let signer = self.signer().clone();
        let public = signer.public_key();
        let mut caps = [0u8; 8];
        let template = LeafTemplate {
            signature_key: public.as_bytes(),
            credential: Credential::Basic { identity: DEVICE_IDENTITY },
            capabilities: default_capabilities(SUITE, &mut caps),
            extensions: Extensions::default(),
        };
        let opts = CommitOptions {
            proposals: &[],
            include_pending: true,
            force_path: true,
            ratchet_tree_in_welcome: false,
            wire_format: WireFormatPolicy::Private,
            padding: 0,
            authenticated_data: &[],
            leaf: Some(template),
        };
        let bufs = CommitBuffers { message: scratch, welcome: &mut [], group_info: &mut [] };
        Ok(Outcome::Committed(group.commit(&opts, &mut self.rng, bufs)?))
    }
}

/// What a step must produce; compared by [`Expect::matches`] on the board
/// and in the build-time simulation alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect<'a> {
    /// These KeyPackage bytes.
    KeyPackage(&'a [u8]),
    /// A successful join.
    Joined,
    /// This application data from this leaf.
    Application { sender: u32, data: &'a [u8] },
    /// A proposal kept.
    Proposal,
    /// A received Commit with this effect, merged.
    Merged { adds: u32, removes: u32, has_path: bool, removes_us: bool },
    /// These Commit bytes.
    Committed(&'a [u8]),
    /// These PrivateMessage bytes.
    Protected(&'a [u8]),
}

impl Expect<'_> {
    /// True if `outcome` is what is expected.
    pub fn matches(&self, outcome: &Outcome<'_>) -> bool {
        match (*self, *outcome) {
            (Self::KeyPackage(want), Outcome::KeyPackage(got))
            | (Self::Committed(want), Outcome::Committed(got))
            | (Self::Protected(want), Outcome::Protected(got)) => want == got,
            (Self::Joined, Outcome::Joined) | (Self::Proposal, Outcome::Proposal) => true,
            (Self::Application { sender, data }, Outcome::Application { sender: s, data: d }) => sender == s && data == d,
            (Self::Merged { adds, removes, has_path, removes_us }, Outcome::Merged(m)) => {
                m.adds == adds && m.removes == removes && m.has_path == has_path && m.removes_us == removes_us
            }
            _ => false,
        }
    }
}

/// One step of the scenario: what the device is given, what it must
/// produce, and the host members' epoch and epoch authenticator afterwards
/// (empty once the device is removed).
#[derive(Clone, Copy, Debug)]
pub struct Step<'a> {
    /// Name printed by the firmware.
    pub name: &'a str,
    /// Name of the operation this step measures, if it is one of the
    /// measured ones (`keypackage`, `join`, `process-commit-path`,
    /// `create-commit-path`, `protect-1k`, `unprotect-1k`).
    pub measure: Option<&'a str>,
    pub action: Action<'a>,
    pub expect: Expect<'a>,
    pub epoch: u64,
    pub epoch_authenticator: &'a [u8],
    /// The primitives the step cannot do without (RFC 9420, RFC 9180): the
    /// public-key operations and KDF calls, counted by the generator from
    /// the tree, and the bytes its AEAD, signature and transcript hash must
    /// run over, from the message's length: the floor its cost is compared
    /// with (`boards/measure.sh`).
    pub floor: Floor,
}

/// Counts of the primitives an operation must run at the least.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Floor {
    /// Ed25519 key generation (a base-point multiplication).
    pub keygen: u32,
    /// Ed25519 signatures.
    pub sign: u32,
    /// Ed25519 verifications.
    pub verify: u32,
    /// X25519 Diffie-Hellman operations.
    pub dh: u32,
    /// HPKE DeriveKeyPair (a base-point multiplication).
    pub dkp: u32,
    /// HPKE GenerateKeyPair (RFC 9180 §4: a random scalar and a base-point
    /// multiplication): a fresh leaf key, an ephemeral key of a seal.
    pub keypair: u32,
    /// HMAC-based KDF calls keying their HMAC from a secret (`kdf`): the
    /// key schedule's (RFC 9420 §8), the secret tree's down to the sender's
    /// leaf (§9), the ratchet's and the sender data's (§6.3.2), the path
    /// secrets' (§7.4) and HPKE's (RFC 9180 §4.1, §5.1).
    pub kdf: u32,
    /// Further KDF calls from a secret already keyed (`kdf_more`: a node's
    /// second child, a ratchet's nonce after its key), or extractions with
    /// an empty salt (whose keyed state is fixed).
    pub kdf_more: u32,
    /// Bytes the suite's AEAD seals or opens (ChaCha20Poly1305 in suite 3;
    /// unit: the `aead_kib` primitive per 1,024 bytes).
    pub aead_bytes: u32,
    /// Bytes of signed content beyond the 100 the `sign` primitive signs:
    /// a signature hashes its whole message (Ed25519 twice, RFC 8032
    /// §5.1.6), so a long content costs more than one short signature
    /// (unit: the `sign_kib` primitive per 1,024 bytes).
    pub sign_bytes: u32,
    /// The same for verifications (`verify_kib`; Ed25519 hashes once).
    pub verify_bytes: u32,
    /// Bytes the suite's hash must run over, the transcript hash's input
    /// (RFC 9420 §8.2; unit: the `hash_kib` primitive per 1,024 bytes).
    pub hash_bytes: u32,
}

/// The whole scenario, as embedded in a firmware.
#[derive(Clone, Copy, Debug)]
pub struct Scenario<'a> {
    /// Leaves the device's group has room for.
    pub capacity: usize,
    /// Members of the group the device joins.
    pub members: usize,
    /// Seed of the device's RNG.
    pub seed: u64,
    /// Bytes of scratch buffer the device needs (largest input or output,
    /// or the Commit's work area).
    pub scratch: usize,
    pub steps: &'a [Step<'a>],
}

impl Scenario<'_> {
    /// Bytes of embedded inputs and expected outputs (test data, not part
    /// of a member's code).
    pub fn data_bytes(&self) -> usize {
        self.steps
            .iter()
            .map(|s| {
                let input = match s.action {
                    Action::Join { welcome, ratchet_tree } => welcome.len() + ratchet_tree.len(),
                    Action::Receive { message } => message.len(),
                    Action::Protect { data } => data.len(),
                    Action::KeyPackage | Action::Commit => 0,
                };
                let output = match s.expect {
                    Expect::KeyPackage(b) | Expect::Committed(b) | Expect::Protected(b) => b.len(),
                    Expect::Application { data, .. } => data.len(),
                    _ => 0,
                };
                input + output + s.epoch_authenticator.len()
            })
            .sum()
    }
}
