//! Creating a group (RFC 9420 §11): a one-member tree, epoch 0, a random
//! epoch secret, and the interim transcript hash from the confirmation tag
//! over the empty confirmed transcript hash.

use super::process::members_support;
use super::{CommitError, EpochState, Group, GroupConfig, GroupError, MAX_GROUP_CONTEXT_LEN};
use crate::crypto::signer::Signer;
use crate::capacity::Capacity;
use crate::codec::OwnedBytes;
use crate::credential::Credential;
use crate::crypto::hpke::derive_key_pair;
use crate::crypto::{CipherSuite, HashValue, Secret};
use crate::extensions::{Extensions, U16List};
use crate::key_schedule::EpochSecrets;
use crate::leaf_node::{Capabilities, LeafNode, LeafNodeFields, LeafNodeSource, Lifetime};
use crate::ratchet_tree::treekem::TreeKemPrivate;
use crate::transcript;
use crate::tree_math::LeafIndex;
use rand_core::CryptoRng;

/// What a new group starts with.
#[derive(Clone, Copy, Debug)]
pub struct CreateParams<'a> {
    /// The group's cipher suite.
    pub suite: CipherSuite,
    /// The group ID (random of `Nh` bytes is recommended, §11).
    pub group_id: &'a [u8],
    /// The creator's credential.
    pub credential: Credential<'a>,
    /// The creator's leaf lifetime.
    pub lifetime: Lifetime,
    /// The creator's capabilities (versions, suites, credential types...).
    pub capabilities: Capabilities<'a>,
    /// The GroupContext extensions.
    pub extensions: Extensions<'a>,
    /// Group settings.
    pub config: GroupConfig,
}

impl<'a> CreateParams<'a> {
    /// A group of `suite` with id `group_id`, created by `credential`, with
    /// the default capabilities ([`default_capabilities`]), no GroupContext
    /// extensions and the default [`GroupConfig`].
    pub fn new(suite: CipherSuite, group_id: &'a [u8], credential: Credential<'a>, lifetime: Lifetime) -> Self {
        Self {
            suite,
            group_id,
            credential,
            lifetime,
            capabilities: static_default_capabilities(suite),
            extensions: Extensions::default(),
            config: GroupConfig::default(),
        }
    }
}

/// [`default_capabilities`] of each suite (0x0001..=0x0007), for borrowers
/// that outlive any caller buffer.
static DEFAULT_CAPABILITIES: [[u8; 8]; 7] = [
    [0, 1, 0, 1, 0, 1, 0, 2],
    [0, 1, 0, 2, 0, 1, 0, 2],
    [0, 1, 0, 3, 0, 1, 0, 2],
    [0, 1, 0, 4, 0, 1, 0, 2],
    [0, 1, 0, 5, 0, 1, 0, 2],
    [0, 1, 0, 6, 0, 1, 0, 2],
    [0, 1, 0, 7, 0, 1, 0, 2],
];

/// [`default_capabilities`] without a buffer (empty for an unknown suite).
pub(crate) fn static_default_capabilities(suite: CipherSuite) -> Capabilities<'static> {
    let i = usize::from(suite.to_u16()).wrapping_sub(1);
    DEFAULT_CAPABILITIES.get(i).map_or_else(Capabilities::default, capabilities_of)
}

impl<const N: usize, const ARENA: usize, const K: usize, const P: usize, Sig: Signer, const E: usize> Group<N, ARENA, K, P, Sig, E> {
    /// Creates a one-member group (§11) in this slot, with `signer` as the
    /// creator's signature key and fresh keys from `rng`.
    pub fn create(
        &mut self,
        p: &CreateParams<'_>,
        signer: &Sig,
        rng: &mut impl CryptoRng,
    ) -> Result<(), GroupError> {
        // One tree buffer: a slot holding a group is not overwritten.
        if !self.is_inactive() {
            return Err(GroupError::SlotInUse);
        }
        let suite = p.suite;
        let nh = suite.hash_len();
        let mut ikm = Secret::zero(suite.hash_len()).map_err(GroupError::Crypto)?;
        rng.fill_bytes(ikm.as_mut_bytes());
        let (leaf_sk, leaf_pk) = derive_key_pair(suite, ikm.as_bytes()).map_err(GroupError::Crypto)?;
        let mut epoch_secret = Secret::zero(nh).map_err(GroupError::Crypto)?;
        rng.fill_bytes(epoch_secret.as_mut_bytes());

        let sig_pk = signer.public_key();
        let fields = LeafNodeFields {
            encryption_key: leaf_pk.as_bytes(),
            signature_key: sig_pk.as_bytes(),
            credential: p.credential,
            capabilities: p.capabilities,
            source: LeafNodeSource::KeyPackage(p.lifetime),
            extensions: Extensions::default(),
        };
        let mut leaf_buf = [0u8; 4096];
        let leaf = LeafNode::sign_into(suite, &fields, None, signer, &mut leaf_buf)
            .map_err(|e| GroupError::LeafNode(e.in_own_buffer()))?;

        // The slot is inactive: on error it stays so (its tree emptied).
        let mut tree = self.tree.slices();
        tree.clear(suite);
        tree.add_leaf(leaf).map_err(GroupError::Tree)?;
        // §11.1: the group's requirements hold for every member, the creator
        // included (issue #13: at 7208f14 a creator could require what its
        // own leaf does not support).
        if !members_support(tree.view(), p.extensions).map_err(|e| match e {
            CommitError::Codec(c) => GroupError::Codec(c),
            _ => GroupError::UnsupportedCapabilities,
        })? {
            return Err(GroupError::UnsupportedCapabilities);
        }
        let tree_hash = tree.root_tree_hash().map_err(GroupError::Tree)?;

        let secrets = EpochSecrets::from_epoch_secret(suite, &epoch_secret).map_err(GroupError::Crypto)?;
        let confirmed = HashValue::EMPTY;
        let tag = transcript::confirmation_tag(suite, &secrets.confirmation_key, confirmed.as_bytes());
        let interim =
            transcript::interim_transcript_hash(suite, confirmed.as_bytes(), tag.as_bytes()).map_err(GroupError::Crypto)?;
        let state = EpochState {
            suite,
            group_id: OwnedBytes::from_slice(p.group_id)
                .map_err(|_| GroupError::CapacityExceeded(Capacity::GroupIdLen))?,
            epoch: 0,
            confirmed_transcript_hash: confirmed,
            interim_transcript_hash: interim,
            confirmation_tag: tag,
            tree_hash,
            extensions: OwnedBytes::from_slice(p.extensions.body())
                .map_err(|_| GroupError::CapacityExceeded(Capacity::GroupExtensionsLen))?,
            secrets,
            private: TreeKemPrivate::new(LeafIndex(0), leaf_sk),
        };
        // The GroupContext must encode within its capacity.
        let mut gc = [0u8; MAX_GROUP_CONTEXT_LEN];
        state.group_context(state.tree_hash.as_bytes(), &mut gc).map_err(GroupError::Codec)?;
        self.install(state, signer, p.config).map_err(GroupError::SecretTree)?;
        Ok(())
    }
}

/// Capabilities listing mls10, `suite`, and basic and X.509 credentials,
/// written into `buf` (a helper for [`CreateParams::capabilities`]).
pub fn default_capabilities(suite: CipherSuite, buf: &mut [u8; 8]) -> Capabilities<'_> {
    let s = suite.to_u16().to_be_bytes();
    *buf = [0, 1, s[0], s[1], 0, 1, 0, 2];
    capabilities_of(buf)
}

/// `versions || cipher_suites || credentials`, one `u16` list of one or two
/// entries each, as [`Capabilities`].
fn capabilities_of(bytes: &[u8; 8]) -> Capabilities<'_> {
    let (versions, rest) = bytes.split_at(2);
    let (suites, credentials) = rest.split_at(2);
    Capabilities {
        versions: U16List::from_body(versions).unwrap_or_default(),
        cipher_suites: U16List::from_body(suites).unwrap_or_default(),
        extensions: U16List::default(),
        proposals: U16List::default(),
        credentials: U16List::from_body(credentials).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table behind `CreateParams::new` says what `default_capabilities`
    /// writes, for every suite of RFC 9420 §17.1 (built in or not).
    #[test]
    fn static_capabilities_are_the_default_ones() {
        let mut checked = 0;
        for id in 1..=7u16 {
            let Some(suite) = CipherSuite::from_u16(id) else { continue };
            let mut buf = [0u8; 8];
            assert_eq!(static_default_capabilities(suite), default_capabilities(suite, &mut buf), "suite {id}");
            checked += 1;
        }
        assert_eq!(checked, CipherSuite::ALL.len());
    }
}
