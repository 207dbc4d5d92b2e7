//! Test helpers for the live interoperability tests in `tests/` (OpenMLS and
//! mls-rs against mls-nostd): a member of ours behind a small byte-oriented
//! API, a seeded RNG, and the wall clock.
//!
//! Every message crosses between libraries as its `MLSMessage` TLS encoding
//! (RFC 9420 §6), exactly as it would on a wire. The anchors themselves are
//! dev-dependencies and live in `tests/common/`.
#![deny(missing_docs)]

pub mod scenarios;

pub mod ours;
pub mod scripts;

pub use ours::{GREASE_EXTENSION, OurGroup, Ours, OursClient, OursExternal, PADDING, SUITES, is_private_message, reinit_suite};

/// Seconds since the Unix epoch: the anchors check lifetimes against the
/// wall clock, so ours must too.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// SplitMix64: a seeded, reproducible RNG for test keys (never for real keys).
#[derive(Clone, Debug)]
pub struct SeededRng(pub u64);

impl SeededRng {
    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        use rand_core::TryRng;
        let Ok(v) = self.try_next_u64();
        (v % n as u64) as usize
    }
}

impl rand_core::TryRng for SeededRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((self.try_next_u64()? >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for SeededRng {}

/// What an incoming handshake or application message was, in any library.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Application data and its `authenticated_data`.
    Application(Vec<u8>, Vec<u8>),
    /// A proposal, kept for a Commit by reference.
    Proposal,
    /// A Commit, merged; `removed_us` if it removed the receiver.
    Commit {
        /// The receiver is no longer a member.
        removed_us: bool,
    },
}

/// One member of a group, in any of the three libraries. Every message is
/// an `MLSMessage` encoding; leaves are RFC 9420 leaf indices.
pub trait Party {
    /// The identity of its basic credential.
    fn name(&self) -> &str;
    /// The library it runs on ("ours", "openmls", "mls-rs").
    fn library(&self) -> &'static str;
    /// Creates a one-member group.
    fn create(&mut self, group_id: &[u8]);
    /// A fresh KeyPackage (`MLSMessage`); its keys are kept for `join`.
    fn key_package(&mut self) -> Vec<u8>;
    /// Joins from a Welcome, with the ratchet tree out of band if given.
    fn join(&mut self, welcome: &[u8], ratchet_tree: Option<&[u8]>);
    /// The ratchet tree (`optional<Node> ratchet_tree<V>`), for out-of-band delivery.
    fn ratchet_tree(&mut self) -> Vec<u8>;
    /// Whether its Welcomes carry the ratchet tree extension.
    fn set_tree_in_welcome(&mut self, on: bool);
    /// True if its Welcomes carry the ratchet tree extension.
    fn tree_in_welcome(&self) -> bool;
    /// Whether its proposals and commits go out as PrivateMessage.
    fn set_private_handshake(&mut self, on: bool);
    /// Commits Adds of `key_packages` (with a path if `path`); merged at
    /// once. Returns the Commit and the Welcome.
    fn add(&mut self, key_packages: &[Vec<u8>], path: bool) -> (Vec<u8>, Vec<u8>);
    /// Commits the removal of `leaves` (with a path); merged at once.
    fn remove(&mut self, leaves: &[u32]) -> Vec<u8>;
    /// An empty Commit with a path (a full update); merged at once.
    fn update(&mut self) -> Vec<u8>;
    /// Commits every pending proposal by reference; merged at once. Returns
    /// the Commit and a Welcome if the proposals added anyone.
    fn commit_pending(&mut self) -> (Vec<u8>, Option<Vec<u8>>);
    /// Proposes to add the holder of `key_package`.
    fn propose_add(&mut self, key_package: &[u8]) -> Vec<u8>;
    /// Proposes to remove the member at `leaf`.
    fn propose_remove(&mut self, leaf: u32) -> Vec<u8>;
    /// Commits Adds of `key_packages` and Removes of `leaves` by value in one
    /// Commit (with every pending proposal); merged at once.
    fn add_and_remove(&mut self, key_packages: &[Vec<u8>], leaves: &[u32]) -> (Vec<u8>, Option<Vec<u8>>);
    /// Holds the external PSK `secret` under `id`.
    fn register_external_psk(&mut self, id: &[u8], secret: &[u8]);
    /// Proposes injecting the external PSK `id`.
    fn propose_external_psk(&mut self, id: &[u8]) -> Vec<u8>;
    /// Commits a PreSharedKey proposal of the external PSK `id` by value
    /// (with every pending proposal); merged at once. Returns the Commit and
    /// a Welcome if pending proposals added anyone.
    fn commit_external_psk(&mut self, id: &[u8]) -> (Vec<u8>, Option<Vec<u8>>);
    /// Commits a GroupContextExtensions proposal by value whose list is
    /// `extensions` (an `Extension extensions<V>` encoding); merged at once.
    fn commit_group_context_extensions(&mut self, extensions: &[u8]) -> Vec<u8>;
    /// Proposes an update of its own leaf, if the library can.
    fn propose_update(&mut self) -> Option<Vec<u8>>;
    /// Protects application data with `aad` as its `authenticated_data`.
    fn send(&mut self, data: &[u8], aad: &[u8]) -> Vec<u8>;
    /// Processes a group message; Commits are merged at once.
    fn process(&mut self, msg: &[u8]) -> Event;
    /// The epoch number.
    fn epoch(&self) -> u64;
    /// The epoch authenticator (§8.7).
    fn epoch_authenticator(&self) -> Vec<u8>;
    /// `MLS-Exporter(label, context, len)` (§8.5).
    fn export(&self, label: &[u8], context: &[u8], len: usize) -> Vec<u8>;
    /// The leaf of the member whose basic identity is `identity`.
    fn leaf_of(&mut self, identity: &[u8]) -> Option<u32>;
    /// Its own leaf.
    fn own_leaf(&self) -> u32;
    /// Number of members in its view of the group.
    fn member_count(&mut self) -> usize;
    /// Whether the last Commit it processed had an UpdatePath, where the
    /// library says (ours does).
    fn last_commit_had_path(&self) -> Option<bool> {
        None
    }
    /// A signed GroupInfo (`MLSMessage`) with the `external_pub` extension,
    /// for an external commit (RFC 9420 §12.4.3.2); with the `ratchet_tree`
    /// extension if `with_tree`.
    fn group_info(&mut self, with_tree: bool) -> Vec<u8>;
    /// Joins by external commit from `group_info` (the tree out of band if
    /// given); returns the Commit, already merged by the joiner.
    fn join_external(&mut self, group_info: &[u8], ratchet_tree: Option<&[u8]>) -> Vec<u8>;
}

/// Asserts that every member is in the same epoch with the same epoch
/// authenticator and exporter output.
pub fn agree(members: &[&dyn Party]) {
    let Some(first) = members.first() else { return };
    let (epoch, auth) = (first.epoch(), first.epoch_authenticator());
    let exported = first.export(b"interop", b"context", 32);
    for m in members {
        assert_eq!(m.epoch(), epoch, "{} ({}) epoch vs {} ({})", m.name(), m.library(), first.name(), first.library());
        assert_eq!(
            m.epoch_authenticator(),
            auth,
            "epoch {epoch}: epoch authenticator of {} ({}) differs from {} ({})",
            m.name(),
            m.library(),
            first.name(),
            first.library()
        );
        assert_eq!(m.export(b"interop", b"context", 32), exported, "epoch {epoch}: exporter of {} ({})", m.name(), m.library());
    }
}

/// The `ExternalSender` entry (RFC 9420 §12.1.8.1) of a signature key and a
/// basic credential with `identity`.
pub fn external_sender_entry(signature_key: &[u8], identity: &[u8]) -> Vec<u8> {
    scripts::external_sender(signature_key, identity)
}

/// A sender outside the group (RFC 9420 §12.1.8.1), listed in its
/// `external_senders` group context extension, in any library.
pub trait ExternalParty {
    /// The library it runs on.
    fn library(&self) -> &'static str;
    /// Its `ExternalSender` entry (signature key, basic credential).
    fn external_sender(&self) -> Vec<u8>;
    /// A PublicMessage proposal, as sender `index` of `external_senders`, to
    /// add the holder of `key_package` to the group that `group_info` (an
    /// `MLSMessage(GroupInfo)` with the ratchet tree) describes.
    fn propose_add(&mut self, group_info: &[u8], index: u32, key_package: &[u8]) -> Vec<u8>;
    /// Likewise, to remove the member at `leaf`.
    fn propose_remove(&mut self, group_info: &[u8], index: u32, leaf: u32) -> Vec<u8>;
}
