//! The MLS working group's interop scripts (`tests/data/interop-configs/`,
//! upstream `mlswg/mls-implementations/interop/configs`), run in process.
//!
//! Upstream, a Go test runner drives implementations over gRPC (the
//! `MlsClient` service); here the runner is [`run::run`] and each
//! implementation is a [`Client`], one instance per actor of a script, so
//! every actor has its own keys and storage. The meaning of every action,
//! and what passes, is in the configs' `FORMAT.md`; the interpreter follows
//! it step by step, including the checks (epoch authenticators after every
//! epoch change, plaintext and authenticated data after every unprotect).
//!
//! - [`config`] reads the JSON into typed steps.
//! - [`run`] runs one script for one assignment of libraries to its actors,
//!   one cipher suite and one handshake mode.
//! - [`matrix`] enumerates the runs (every assignment with ours in it, or a
//!   seeded sample), counts verdicts and prints the table.
//!
//! Adapters: ours is [`crate::ours::OursClient`]; OpenMLS and mls-rs are in
//! `tests/common/` (they are dev-dependencies).

pub mod config;
pub mod matrix;
pub mod run;
pub mod wire;

use std::fmt;

/// A byte string, as every value of the runner's cache is.
pub type Bytes = Vec<u8>;

/// The cipher suites the scripts run in (RFC 9420 §17.1 code points): 1
/// and 3 (X25519, Ed25519) and 2 (P-256, ECDSA). A suite joins the matrix
/// when ours supports it: add it here. The order matters twice: a ReInit
/// that changes the suite takes the first other one (1 -> 2, 2 and 3 -> 1),
/// and `deep_random`'s sample runs in the first.
pub const OUR_SUITES: &[u16] = &[0x0001, 0x0002, 0x0003];

/// The libraries a script actor can be played by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Library {
    /// mls-nostd.
    Ours,
    /// OpenMLS 0.9.
    OpenMls,
    /// mls-rs 0.57.
    MlsRs,
}

impl Library {
    /// Every library, in the order the matrix enumerates them.
    pub const ALL: [Library; 3] = [Library::Ours, Library::OpenMls, Library::MlsRs];

    /// Its short name.
    pub fn name(self) -> &'static str {
        match self {
            Library::Ours => "ours",
            Library::OpenMls => "openmls",
            Library::MlsRs => "mls-rs",
        }
    }

    /// One letter, for assignment labels (`o`, `O`, `R`).
    pub fn letter(self) -> char {
        match self {
            Library::Ours => 'o',
            Library::OpenMls => 'O',
            Library::MlsRs => 'R',
        }
    }

    /// The cipher suites it implements (of those the matrix may use).
    pub fn suites(self) -> &'static [u16] {
        match self {
            Library::Ours => OUR_SUITES,
            Library::OpenMls | Library::MlsRs => &[0x0001, 0x0002, 0x0003],
        }
    }
}

impl fmt::Display for Library {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a client call did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The call failed: a bug in some library, or a disagreement.
    Failed(String),
    /// The library has no way to do this (an API it lacks, or a documented
    /// limitation): the run counts as "not supported by" it, never as passed.
    Unsupported {
        /// The library that lacks the feature.
        library: Library,
        /// What it lacks.
        reason: String,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Failed(e) => f.write_str(e),
            Failure::Unsupported { library, reason } => write!(f, "not supported by {library}: {reason}"),
        }
    }
}

/// The result of a client call.
pub type Outcome<T> = Result<T, Failure>;

/// Wraps any library error as a [`Failure::Failed`] with `what` in front.
pub fn failed<E: fmt::Debug>(what: &str) -> impl FnOnce(E) -> Failure + '_ {
    move |e| Failure::Failed(format!("{what}: {e:?}"))
}

/// A KeyPackage a client made and keeps the private keys of (the runner's
/// transaction handle, `T(x)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tx(pub usize);

/// One GroupContext extension as the configs give it (the data is the
/// extension's TLS-encoded body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    /// `extension_type`.
    pub extension_type: u16,
    /// `extension_data`.
    pub extension_data: Bytes,
}

/// A proposal to make, with every reference of the config resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposalSpec {
    /// Add the holder of this KeyPackage (`MLSMessage`).
    Add(Bytes),
    /// Remove the member whose basic credential has this identity.
    Remove(Bytes),
    /// Inject the external PSK with this ID (a fresh nonce).
    ExternalPsk(Bytes),
    /// Inject this group's resumption PSK of this epoch (usage application).
    ResumptionPsk(u64),
    /// Replace the GroupContext extensions by this list.
    GroupContextExtensions(Vec<Extension>),
    /// Reinitialize into a new group.
    ReInit {
        /// The new group's ID.
        group_id: Bytes,
        /// The new group's cipher suite.
        suite: u16,
        /// The new group's GroupContext extensions.
        extensions: Vec<Extension>,
    },
}

/// A Commit a client created (`Commit` of the gRPC service).
#[derive(Clone, Debug, Default)]
pub struct CommitOut {
    /// The `MLSMessage` holding the Commit.
    pub commit: Bytes,
    /// The `MLSMessage(Welcome)`, empty if nobody was added.
    pub welcome: Bytes,
    /// The ratchet tree after the Commit, only when asked to keep it out of
    /// the Welcome; empty otherwise.
    pub ratchet_tree: Bytes,
}

/// A new group another client joins from a Welcome (branch, ReInit).
#[derive(Clone, Debug, Default)]
pub struct Welcomed {
    /// The `MLSMessage(Welcome)`.
    pub welcome: Bytes,
    /// The ratchet tree, only when kept out of the Welcome; empty otherwise.
    pub ratchet_tree: Bytes,
    /// The new group's epoch authenticator.
    pub epoch_authenticator: Bytes,
}

/// One actor of a script, played by one library: the gRPC `MlsClient`
/// service of the official runner, in process. The client holds its current
/// group state (`S(x)`), its pending KeyPackages ([`Tx`]), its PSKs, its
/// pending ReInit and its external-signer key; every message is an
/// `MLSMessage` encoding. Epoch authenticators are returned where the
/// runner compares them.
pub trait Client {
    /// Which library plays the actor.
    fn library(&self) -> Library;
    /// Creates a one-member group; `encrypt` sends handshakes as PrivateMessage.
    fn create_group(&mut self, group_id: &[u8], suite: u16, encrypt: bool) -> Outcome<()>;
    /// A fresh KeyPackage (`MLSMessage`) whose keys the client keeps.
    fn create_key_package(&mut self, suite: u16) -> Outcome<(Tx, Bytes)>;
    /// Joins from a Welcome with the KeyPackage `tx`; returns the epoch authenticator.
    fn join_group(&mut self, tx: Tx, welcome: &[u8], encrypt: bool, ratchet_tree: Option<&[u8]>) -> Outcome<Bytes>;
    /// Joins by external Commit from `group_info` (removing its old leaf,
    /// found by identity, if `remove_prior`), injecting the external PSKs
    /// `(id, secret)`; returns the Commit and the epoch authenticator.
    fn external_join(
        &mut self,
        group_info: &[u8],
        ratchet_tree: Option<&[u8]>,
        encrypt: bool,
        remove_prior: bool,
        psks: &[(Bytes, Bytes)],
    ) -> Outcome<(Bytes, Bytes)>;
    /// A GroupInfo (`MLSMessage`) with `external_pub`, and the ratchet tree
    /// if `external_tree` (else the tree is in the GroupInfo and the second
    /// value is empty).
    fn group_info(&mut self, external_tree: bool) -> Outcome<(Bytes, Bytes)>;
    /// Keeps an external PSK.
    fn store_psk(&mut self, id: &[u8], secret: &[u8]) -> Outcome<()>;
    /// Sends a proposal as a member (`AddProposal`, `RemoveProposal`, ...).
    fn propose(&mut self, proposal: &ProposalSpec) -> Outcome<Bytes>;
    /// Sends an Update proposal of its own leaf.
    fn propose_update(&mut self) -> Outcome<Bytes>;
    /// Commits the proposal messages `by_reference` (every one processed
    /// first, its own included) and `by_value`; the new epoch is pending
    /// until [`Client::handle_pending_commit`].
    fn commit(
        &mut self,
        by_reference: &[Bytes],
        by_value: &[ProposalSpec],
        force_path: bool,
        external_tree: bool,
    ) -> Outcome<CommitOut>;
    /// Moves to the epoch of its own pending Commit; returns its authenticator.
    fn handle_pending_commit(&mut self) -> Outcome<Bytes>;
    /// Processes `proposals` (skipping its own), then `commit`; returns the
    /// new epoch authenticator.
    fn handle_commit(&mut self, proposals: &[Bytes], commit: &[u8]) -> Outcome<Bytes>;
    /// Protects application data.
    fn protect(&mut self, authenticated_data: &[u8], plaintext: &[u8]) -> Outcome<Bytes>;
    /// Unprotects an application message: `(authenticated_data, plaintext)`.
    fn unprotect(&mut self, ciphertext: &[u8]) -> Outcome<(Bytes, Bytes)>;
    /// Commits the ReInit proposal messages `proposals` by reference.
    fn reinit_commit(&mut self, proposals: &[Bytes]) -> Outcome<Bytes>;
    /// Applies its own ReInit Commit: a KeyPackage for the new group and the
    /// old group's last epoch authenticator.
    fn handle_pending_reinit_commit(&mut self) -> Outcome<(Bytes, Bytes)>;
    /// Processes a ReInit Commit: a KeyPackage for the new group and the
    /// epoch authenticator.
    fn handle_reinit_commit(&mut self, proposals: &[Bytes], commit: &[u8]) -> Outcome<(Bytes, Bytes)>;
    /// Creates the new group of its ReInit with the holders of
    /// `key_packages`, linked by a reinit PSK.
    fn reinit_welcome(&mut self, key_packages: &[Bytes], force_path: bool, external_tree: bool) -> Outcome<Welcomed>;
    /// Joins the new group of its ReInit; returns the epoch authenticator.
    fn handle_reinit_welcome(&mut self, welcome: &[u8], ratchet_tree: Option<&[u8]>) -> Outcome<Bytes>;
    /// Branches a subgroup `group_id` of its group with the holders of
    /// `key_packages`, linked by a branch PSK; the subgroup becomes its state.
    fn create_branch(
        &mut self,
        group_id: &[u8],
        extensions: &[Extension],
        key_packages: &[Bytes],
        force_path: bool,
        external_tree: bool,
    ) -> Outcome<Welcomed>;
    /// Joins a subgroup branched from its group with the KeyPackage `tx`;
    /// returns the epoch authenticator.
    fn handle_branch(&mut self, tx: Tx, welcome: &[u8], ratchet_tree: Option<&[u8]>) -> Outcome<Bytes>;
    /// A new client's self-signed Add proposal (`new_member_proposal`) for
    /// the group of `group_info`; its KeyPackage is kept as `Tx`.
    fn new_member_add_proposal(&mut self, group_info: &[u8]) -> Outcome<(Tx, Bytes)>;
    /// Becomes an external signer: its `ExternalSender` (TLS-encoded).
    fn create_external_signer(&mut self, suite: u16) -> Outcome<Bytes>;
    /// Proposes (GroupContextExtensions) the current extensions with
    /// `external_sender` added to `external_senders`.
    fn add_external_signer(&mut self, external_sender: &[u8]) -> Outcome<Bytes>;
    /// As external signer, a proposal to the group of `group_info` (whose
    /// tree is `ratchet_tree`), from its own index in `external_senders`.
    fn external_signer_proposal(&mut self, group_info: &[u8], ratchet_tree: &[u8], proposal: &ProposalSpec)
    -> Outcome<Bytes>;
}

/// A maker of clients: one fresh client per actor (`name` is its identity).
pub trait Factory {
    /// A client of `library` for the actor `name`; `seed` is for whatever
    /// randomness the adapter draws itself (ours draws all of it).
    fn client(&self, library: Library, name: &str, seed: u64) -> Box<dyn Client>;
}

// ---------------------------------------------------------------------------
// TLS encodings the adapters share (RFC 9420 §2.1): QUIC-style varint
// lengths, extension lists, and the external_senders extension.
// ---------------------------------------------------------------------------

/// Appends `v` as a variable-length-vector length (§2.1.2).
pub fn write_varint(out: &mut Bytes, v: usize) {
    if v < 1 << 6 {
        out.push(v as u8);
    } else if v < 1 << 14 {
        out.extend_from_slice(&((v as u16) | 0x4000).to_be_bytes());
    } else {
        out.extend_from_slice(&((v as u32) | 0x8000_0000).to_be_bytes());
    }
}

/// Reads a variable-length-vector length from the front of `input`.
pub fn read_varint(input: &mut &[u8]) -> Option<usize> {
    let first = *input.first()?;
    let len = 1usize << (first >> 6);
    if len > 4 || input.len() < len {
        return None;
    }
    let mut v = usize::from(first & 0x3f);
    for b in &input[1..len] {
        v = (v << 8) | usize::from(*b);
    }
    *input = &input[len..];
    Some(v)
}

/// Appends `data` as `opaque data<V>`.
pub fn write_opaque(out: &mut Bytes, data: &[u8]) {
    write_varint(out, data.len());
    out.extend_from_slice(data);
}

/// Reads an `opaque data<V>` from the front of `input`.
pub fn read_opaque<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = read_varint(input)?;
    let (data, rest) = input.split_at_checked(n)?;
    *input = rest;
    Some(data)
}

/// The body (no length) of `Extension extensions<V>` of `list`.
pub fn extensions_body(list: &[Extension]) -> Bytes {
    let mut body = Vec::new();
    for e in list {
        body.extend_from_slice(&e.extension_type.to_be_bytes());
        write_opaque(&mut body, &e.extension_data);
    }
    body
}

/// `Extension extensions<V>` of `list`.
pub fn encode_extensions(list: &[Extension]) -> Bytes {
    let mut out = Vec::new();
    write_opaque(&mut out, &extensions_body(list));
    out
}

/// The list in an `Extension extensions<V>` encoding.
pub fn decode_extensions(mut input: &[u8]) -> Option<Vec<Extension>> {
    let body = read_opaque(&mut input)?;
    if !input.is_empty() {
        return None;
    }
    decode_extensions_body(body)
}

/// The list in the body of an `Extension extensions<V>`.
pub fn decode_extensions_body(mut body: &[u8]) -> Option<Vec<Extension>> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let (t, rest) = body.split_at_checked(2)?;
        body = rest;
        let data = read_opaque(&mut body)?;
        out.push(Extension { extension_type: u16::from_be_bytes([t[0], t[1]]), extension_data: data.to_vec() });
    }
    Some(out)
}

/// The `external_senders` extension type (§12.1.8.1).
pub const EXTERNAL_SENDERS: u16 = 5;

/// `extensions` with `sender` (an encoded `ExternalSender`) appended to its
/// `external_senders` list, which is added if missing (`AddExternalSigner`).
pub fn with_external_sender(extensions: &[Extension], sender: &[u8]) -> Option<Vec<Extension>> {
    let mut out = extensions.to_vec();
    match out.iter_mut().find(|e| e.extension_type == EXTERNAL_SENDERS) {
        Some(e) => {
            let mut data = e.extension_data.as_slice();
            let mut list = read_opaque(&mut data)?.to_vec();
            if !data.is_empty() {
                return None;
            }
            list.extend_from_slice(sender);
            let mut new = Vec::new();
            write_opaque(&mut new, &list);
            e.extension_data = new;
        }
        None => {
            let mut data = Vec::new();
            write_opaque(&mut data, sender);
            out.push(Extension { extension_type: EXTERNAL_SENDERS, extension_data: data });
        }
    }
    Some(out)
}

/// The index of the external sender whose signature key is `signature_key`
/// in the `external_senders` extension among `extensions` (a signer finds
/// its own index: the runner never passes it).
pub fn external_sender_index(extensions: &[Extension], signature_key: &[u8]) -> Option<u32> {
    let e = extensions.iter().find(|e| e.extension_type == EXTERNAL_SENDERS)?;
    let mut data = e.extension_data.as_slice();
    let mut list = read_opaque(&mut data)?;
    let mut i = 0u32;
    while !list.is_empty() {
        let key = read_opaque(&mut list)?;
        // Credential: type, then (basic) an identity.
        let (t, rest) = list.split_at_checked(2)?;
        list = rest;
        if u16::from_be_bytes([t[0], t[1]]) != 1 {
            return None;
        }
        read_opaque(&mut list)?;
        if key == signature_key {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The `ExternalSender` of a signature key and a basic credential.
pub fn external_sender(signature_key: &[u8], identity: &[u8]) -> Bytes {
    let mut out = Vec::new();
    write_opaque(&mut out, signature_key);
    out.extend_from_slice(&1u16.to_be_bytes());
    write_opaque(&mut out, identity);
    out
}

/// Skips its own proposals when a list of proposal messages comes back with
/// a Commit (the runner sends every member the same list, and no library
/// takes its own message back; under PrivateMessage none could decrypt it).
#[derive(Debug, Default)]
pub struct SentProposals(Vec<Bytes>);

impl SentProposals {
    /// Remembers a proposal message it sent.
    pub fn sent(&mut self, message: &[u8]) {
        self.0.push(message.to_vec());
    }

    /// The messages of `proposals` it did not send.
    pub fn others<'a>(&self, proposals: &'a [Bytes]) -> Vec<&'a Bytes> {
        proposals.iter().filter(|p| !self.0.contains(p)).collect()
    }

    /// Forgets them (a new epoch).
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0usize, 1, 63, 64, 16383, 16384, 1 << 29] {
            let mut b = Vec::new();
            write_varint(&mut b, v);
            let mut s = b.as_slice();
            assert_eq!(read_varint(&mut s), Some(v));
            assert!(s.is_empty());
        }
    }

    #[test]
    fn external_senders_grow_and_are_found() {
        let a = external_sender(&[1; 32], b"ds1");
        let b = external_sender(&[2; 32], b"ds2");
        let req = Extension { extension_type: 3, extension_data: vec![0, 0, 0] };
        let one = with_external_sender(std::slice::from_ref(&req), &a).expect("list");
        let two = with_external_sender(&one, &b).expect("list");
        assert_eq!(two.len(), 2);
        assert_eq!(two[0], req);
        assert_eq!(external_sender_index(&two, &[1; 32]), Some(0));
        assert_eq!(external_sender_index(&two, &[2; 32]), Some(1));
        assert_eq!(external_sender_index(&two, &[3; 32]), None);
        assert_eq!(decode_extensions(&encode_extensions(&two)), Some(two));
    }
}
