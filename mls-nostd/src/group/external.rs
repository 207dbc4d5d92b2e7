//! External joins (RFC 9420 §12.4.3.2, §8.3): a member publishes a GroupInfo
//! with the `external_pub` extension; a new client joins (or an old one
//! resyncs) by sending an external Commit built from it.

use super::process::{
    CommitError, EXTERNAL_INIT_LABEL, add_psk, check_staged_psk_bytes, confirmed_hash, leaf_fits_group, supports_group_extensions,
};
use super::{EpochState, Group, GroupConfig, GroupError, MAX_GROUP_CONTEXT_LEN, MAX_PSKS_PER_COMMIT};
use crate::crypto::signer::Signer;
use crate::capacity::Capacity;
use crate::codec::{CodecError, Decode, Encode, ListView, OwnedBytes, Reader, Writer};
use crate::crypto::hpke::{self, HpkePublicKey};
use crate::crypto::signature::SignaturePublicKey;
use crate::crypto::{HashValue, Secret};
use crate::executor::Executor;
use crate::extensions::{EXT_EXTERNAL_PUB, EXT_RATCHET_TREE, Extensions};
use crate::group_context::GroupContext;
use crate::identity::MemberIdentity;
use crate::key_schedule::{EpochSecrets, joiner_secret};
use crate::messages::authenticated_content::{EncodedGroupContext, ProtectionError};
use crate::messages::commit::Commit;
use crate::messages::framing::{Content, FramedContent, Sender};
use crate::messages::group_info::{GroupInfo, GroupInfoError, GroupInfoTbs, WireGroupContext};
use crate::messages::mls_message::{MlsMessage, MlsMessageBody};
use crate::messages::proposal::{ExternalInit, PreSharedKey, Proposal, ProposalOrRef, Remove};
use crate::psk::{PreSharedKeyId, PskStore, psk_secret};
use crate::messages::public_message;
use crate::ratchet_tree::tree::decode_tree;
use crate::ratchet_tree::treekem::{LeafTemplate, TreeKemPrivate};
use crate::ratchet_tree::update_path::UpdatePath;
use crate::ratchet_tree::validate::TreeCheck;
use crate::transcript;
use crate::tree_math::LeafIndex;
use rand_core::CryptoRng;

use super::join::JoinError;

/// `ProtocolVersion mls10` and `WireFormat mls_group_info`: an MLSMessage head.
const GROUP_INFO_MESSAGE_HEAD: [u8; 4] = [0, 1, 0, 4];

impl<const N: usize, const ARENA: usize, const K: usize, const P: usize, Sig: Signer, const E: usize> Group<N, ARENA, K, P, Sig, E> {
    /// Writes an `MLSMessage(GroupInfo)` of the current epoch, signed by us,
    /// with the `external_pub` extension (§12.4.3.2) and, if `with_tree`, the
    /// `ratchet_tree` extension (§12.4.3.3). `scratch` holds the extensions.
    pub fn group_info<'o>(&mut self, with_tree: bool, out: &'o mut [u8], scratch: &mut [u8]) -> Result<&'o [u8], GroupError> {
        // A group we were removed from, or that a ReInit Commit ended, is
        // not used to send messages (§11.2, §12.4.2): an outsider would join
        // an epoch no member goes on with.
        if self.is_inactive() {
            return Err(GroupError::Inactive);
        }
        // The tree holds a staged Commit's changes: the current epoch's tree
        // cannot be exported until it is merged or discarded.
        if self.staged.is_some() {
            return Err(GroupError::CommitPending);
        }
        let suite = self.state.suite;
        let tree_hash = self.state.tree_hash;
        let (_, external_pub) = self.state.secrets.external_key_pair(suite).map_err(GroupError::Crypto)?;
        let mut w = Writer::new(scratch);
        w.write_u16(EXT_EXTERNAL_PUB)?;
        // extension_data = ExternalPub { HPKEPublicKey external_pub }: its
        // own length prefix is 1 byte for X25519 keys, 2 for P-256's 65.
        let mut counter = Writer::counter();
        counter.write_opaque(external_pub.as_bytes())?;
        w.write_varint(counter.len())?;
        w.write_opaque(external_pub.as_bytes())?;
        if with_tree {
            w.write_u16(EXT_RATCHET_TREE)?;
            let tree = self.tree_slices();
            let mut counter = Writer::counter();
            tree.export(&mut counter).map_err(GroupError::Tree)?;
            w.write_varint(counter.len())?;
            tree.export(&mut w).map_err(GroupError::Tree)?;
        }
        let ext_len = w.len();
        let extensions = Extensions::from_body(scratch.get(..ext_len).ok_or(CodecError::Truncated)?)?;
        let gc = GroupContext {
            cipher_suite: suite,
            group_id: self.state.group_id.as_slice(),
            epoch: self.state.epoch,
            tree_hash: tree_hash.as_bytes(),
            confirmed_transcript_hash: self.state.confirmed_transcript_hash.as_bytes(),
            extensions: self.state.extensions.as_slice(),
        };
        let tbs = GroupInfoTbs {
            group_context: WireGroupContext::from_group_context(&gc)?,
            extensions,
            confirmation_tag: self.state.confirmation_tag.as_bytes(),
            signer: self.state.private.leaf.0,
        };
        let head_len = GROUP_INFO_MESSAGE_HEAD.len();
        let (head, body) =
            out.split_at_mut_checked(head_len).ok_or(GroupError::Codec(CodecError::BufferTooSmall { needed: head_len }))?;
        head.copy_from_slice(&GROUP_INFO_MESSAGE_HEAD);
        let len = GroupInfo::sign_into(suite, &tbs, &self.signer, body)
            .map_err(|e| match e {
                GroupInfoError::Codec(c) => GroupError::Codec(c.at_offset(head_len)),
                other => GroupError::GroupInfo(other),
            })?
            .len();
        let needed = head_len + len;
        out.get(..needed).ok_or(GroupError::Codec(CodecError::BufferTooSmall { needed }))
    }

    /// Joins by external Commit (§12.4.3.2) from `group_info` (an
    /// `MLSMessage(GroupInfo)` with `external_pub`), with the tree from its
    /// extension or `ratchet_tree`. `resync` removes our old leaf. `psks`
    /// are injected as PreSharedKey proposals, in order (§12.4.3.2 allows
    /// them in an external Commit), each with a fresh nonce of `Nh` bytes
    /// the caller drew; `psk_store` holds their keys, which the members
    /// must hold too. Writes the Commit (a PublicMessage from
    /// `new_member_commit`) into `out`, which needs room for it twice plus
    /// 96 bytes per HPKE seal; the group is ours from then on (the Commit
    /// cannot be taken back once sent). On failure the slot is left empty
    /// ([`JoinError`]).
    #[allow(clippy::too_many_arguments)]
    pub fn join_external<'o>(
        &mut self,
        group_info: &[u8],
        ratchet_tree: Option<&[u8]>,
        leaf: &LeafTemplate<'_>,
        signer: &Sig,
        resync: Option<LeafIndex>,
        psks: &[PreSharedKeyId<'_>],
        psk_store: &dyn PskStore,
        config: GroupConfig,
        rng: &mut impl CryptoRng,
        executor: &impl Executor,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], JoinError> {
        // One tree buffer: a slot holding a group is not overwritten.
        if !self.is_inactive() {
            return Err(JoinError::SlotInUse);
        }
        // Our leaf is signed by `signer` and names its key (§7.3).
        if leaf.signature_key != signer.public_key().as_bytes() {
            return Err(JoinError::SignatureKeyNotOurs);
        }
        let result =
            self.join_external_inner(group_info, ratchet_tree, leaf, signer, resync, psks, psk_store, config, rng, executor, out);
        if result.is_err() {
            self.wipe();
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn join_external_inner<'o>(
        &mut self,
        group_info: &[u8],
        ratchet_tree: Option<&[u8]>,
        leaf: &LeafTemplate<'_>,
        signer: &Sig,
        resync: Option<LeafIndex>,
        psks: &[PreSharedKeyId<'_>],
        psk_store: &dyn PskStore,
        config: GroupConfig,
        rng: &mut impl CryptoRng,
        executor: &impl Executor,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], JoinError> {
        self.discard_staged_commit();
        let MlsMessageBody::GroupInfo(gi) = MlsMessage::decode_exact(group_info)?.body else {
            return Err(JoinError::Malformed(CodecError::InvalidValue));
        };
        let gc = gi.tbs.group_context.to_group_context().ok_or(JoinError::Malformed(CodecError::InvalidValue))?;
        // §13.4: no list of extensions holds a type twice.
        if gi.tbs.extensions.has_duplicates() || gi.tbs.group_context.extensions.has_duplicates() {
            return Err(JoinError::Malformed(CodecError::InvalidValue));
        }
        let suite = gc.cipher_suite;
        let external_pub = {
            let data = gi.tbs.extensions.find(EXT_EXTERNAL_PUB).ok_or(JoinError::NoExternalPub)?;
            // A key we can seal to (RFC 9180 §7.1.4): refused here, before the
            // tree's import and verification, rather than at the seal.
            HpkePublicKey::for_suite(suite, Reader::new(data).read_opaque()?)?
        };
        let tree_bytes = match gi.tbs.extensions.find(EXT_RATCHET_TREE) {
            Some(data) => data,
            None => ratchet_tree.ok_or(JoinError::NoRatchetTree)?,
        };

        // The current epoch's tree, checked as a joiner must.
        let mut tree = self.tree.slices();
        tree.import(suite, &decode_tree(tree_bytes)?)?;
        let signer_key = tree
            .signature_key(LeafIndex(gi.tbs.signer))
            .and_then(|k| SignaturePublicKey::from_slice(k).ok())
            .ok_or(JoinError::UnknownSigner)?;
        gi.verify_signature(suite, &signer_key).map_err(|_| JoinError::InvalidGroupInfo)?;
        // §13.4: our leaf supports every extension of the GroupContext (the
        // members would refuse it).
        if !supports_group_extensions(&leaf.capabilities, Extensions::from_body(gc.extensions)?) {
            return Err(JoinError::UnsupportedGroupExtensions);
        }
        let check = TreeCheck {
            group_id: gc.group_id,
            tree_hash: Some(gc.tree_hash),
            group_extensions: Extensions::from_body(gc.extensions)?,
            identity: config.identity,
        };
        let mut scratch_a = [0u32; N];
        let mut scratch_b = [0u32; N];
        tree.validate(&check, executor, &mut scratch_a, &mut scratch_b).map_err(JoinError::InvalidTree)?;

        // ExternalInit (§8.3): init_secret exported from an HPKE context to external_pub.
        let nh = suite.hash_len();
        let mut eph = Secret::zero(suite.hash_len())?;
        rng.fill_bytes(eph.as_mut_bytes());
        let info_hash = hpke::info_hash(suite, &[])?;
        let mut init_secret = Secret::zero(nh)?;
        let kem_output =
            hpke::export_base_sender(suite, &external_pub, &info_hash, EXTERNAL_INIT_LABEL, init_secret.as_mut_bytes(), eph.as_bytes())?;

        // The PSKs, checked as the members will (§8.4, §12.1.4).
        let mut psk_list: heapless::Vec<(PreSharedKeyId<'_>, &[u8]), MAX_PSKS_PER_COMMIT> = heapless::Vec::new();
        let mut link_seen = false;
        for id in psks {
            add_psk(&mut psk_list, *id, (suite, gc.epoch), &mut link_seen, psk_store).map_err(JoinError::Commit)?;
        }
        // The members keep the IDs while the Commit is staged, and refuse
        // it if they do not fit (§12.4.3.2 allows any number of PSKs).
        check_staged_psk_bytes(psk_list.iter().map(|(id, _)| *id)).map_err(JoinError::Commit)?;
        let psk_secret = psk_secret(suite, &psk_list)?;

        // The proposals: Remove (resync) first, the PSKs, then ExternalInit;
        // the list at the end of `out`.
        let write_list = |w: &mut Writer<'_>| {
            w.write_vector(|w| {
                if let Some(old) = resync {
                    ProposalOrRef::Proposal(Proposal::Remove(Remove { removed: old.0 })).encode(w)?;
                }
                for (id, _) in &psk_list {
                    ProposalOrRef::Proposal(Proposal::PreSharedKey(PreSharedKey { psk: *id })).encode(w)?;
                }
                ProposalOrRef::Proposal(Proposal::ExternalInit(ExternalInit { kem_output: kem_output.as_bytes() }))
                    .encode(w)
            })
        };
        let mut counter = Writer::counter();
        write_list(&mut counter)?;
        let list_len = counter.len();
        let list_start = out
            .len()
            .checked_sub(list_len)
            .ok_or(JoinError::Protection(ProtectionError::BufferTooSmall { needed: list_len }))?;
        let (out, list) = out.split_at_mut(list_start);
        write_list(&mut Writer::new(list))?;
        let proposals: ListView<'_, ProposalOrRef<'_>> = ListView::from_body(Reader::new(list).read_opaque()?)?;
        if let Some(old) = resync {
            let prior = tree.leaf_node(old).ok_or(JoinError::Commit(CommitError::RemoveOfBlankLeaf))?;
            // §12.2: our leaf must be a valid successor of the one removed
            // (the members refuse the Commit otherwise).
            let prior = MemberIdentity { credential: prior.fields.credential, signature_key: prior.fields.signature_key };
            let ours = MemberIdentity { credential: leaf.credential, signature_key: leaf.signature_key };
            if !config.identity.valid_resync(&prior, &ours) {
                return Err(JoinError::Commit(CommitError::InvalidSuccessor));
            }
            tree.remove_leaf(old)?;
        }
        // §7.3: signature keys are unique among the leaves (the members
        // refuse ours otherwise).
        if tree.has_signature_key(leaf.signature_key, None) {
            return Err(JoinError::Commit(CommitError::DuplicateKey));
        }

        // Our leaf at the leftmost blank leaf, then a path from it (§12.4.3.2).
        let mut placeholder_ikm = Secret::zero(suite.hash_len())?;
        rng.fill_bytes(placeholder_ikm.as_mut_bytes());
        let (placeholder_sk, _) = hpke::derive_key_pair(suite, placeholder_ikm.as_bytes())?;
        let mut leaf_buf = [0u8; 4096];
        let placeholder = {
            let (_, pk) = hpke::derive_key_pair(suite, placeholder_ikm.as_bytes())?;
            let fields = crate::leaf_node::LeafNodeFields {
                encryption_key: pk.as_bytes(),
                signature_key: leaf.signature_key,
                credential: leaf.credential,
                capabilities: leaf.capabilities,
                source: crate::leaf_node::LeafNodeSource::Update,
                extensions: leaf.extensions,
            };
            crate::leaf_node::LeafNode::unsigned_into(&fields, &mut leaf_buf).map_err(|e| JoinError::LeafNode(e.in_own_buffer()))?
        };
        let me = tree.add_leaf(placeholder)?;
        // §7.3, §11.1: our leaf fits the group as the members check it
        // (required capabilities, credential types).
        {
            let ours = tree.leaf_node(me).ok_or(JoinError::NotInTree)?;
            if !leaf_fits_group(tree.view(), &ours, None, Extensions::from_body(gc.extensions)?).map_err(JoinError::Commit)? {
                return Err(JoinError::Commit(CommitError::UnsupportedCapabilities));
            }
        }
        let next_epoch = gc.epoch.checked_add(1).ok_or(JoinError::CapacityExceeded(Capacity::Epochs))?;
        let provisional = GroupContext { epoch: next_epoch, ..gc };
        let mut path_gc = [0u8; MAX_GROUP_CONTEXT_LEN];
        let path_room =
            tree.update_path_room(me, Some(leaf), &|_| false).map_err(|e| JoinError::Commit(CommitError::InvalidPath(e)))?;
        let path_start = out
            .len()
            .checked_sub(path_room)
            .ok_or(JoinError::Protection(ProtectionError::BufferTooSmall { needed: path_room.saturating_add(list_len) }))?;
        let (head, path_area) = out.split_at_mut(path_start);
        let private = TreeKemPrivate::new(me, placeholder_sk);
        let outcome = tree
            .create_update_path(&private, Some(leaf), signer, &provisional, &mut path_gc, &|_| false, rng, executor, path_area)
            .map_err(|e| JoinError::Commit(CommitError::InvalidPath(e)))?;
        let path = UpdatePath::decode_exact(path_area.get(..outcome.update_path_len).ok_or(CodecError::Truncated)?)?;

        // Frame and sign with the GroupInfo's context (the old epoch's).
        let content = FramedContent {
            group_id: gc.group_id,
            epoch: gc.epoch,
            sender: Sender::NewMemberCommit,
            authenticated_data: &[],
            content: Content::Commit(Commit { proposals, path: Some(path) }),
        };
        let old_gc = EncodedGroupContext::new(gc)?;
        // `head` is `out` less the path area and the list at its end: a
        // shortfall in it is one of `out` by as much more.
        let in_out = |e: ProtectionError| match e {
            ProtectionError::BufferTooSmall { needed } => JoinError::Protection(ProtectionError::BufferTooSmall {
                needed: needed.saturating_add(path_room).saturating_add(list_len),
            }),
            e => JoinError::Protection(e),
        };
        let signed = public_message::sign(&old_gc, signer, &content, head).map_err(in_out)?;
        let interim = transcript::interim_transcript_hash(suite, gc.confirmed_transcript_hash, gi.tbs.confirmation_tag)?;
        let confirmed = confirmed_hash(
            suite,
            &interim,
            crate::messages::framing::WIRE_FORMAT_PUBLIC_MESSAGE,
            signed.content_bytes(),
            signed.signature(),
        )?;
        let tree_hash = tree.root_tree_hash()?;
        let mut new_gc_buf = [0u8; MAX_GROUP_CONTEXT_LEN];
        let new_gc = GroupContext {
            tree_hash: tree_hash.as_bytes(),
            confirmed_transcript_hash: confirmed.as_bytes(),
            ..provisional
        };
        let new_gc_bytes = new_gc.encode_to(&mut new_gc_buf)?;
        let joiner = joiner_secret(suite, &init_secret, &outcome.commit_secret, new_gc_bytes)?;
        let secrets = EpochSecrets::derive(suite, &joiner, &psk_secret, new_gc_bytes)?;
        let tag = transcript::confirmation_tag(suite, &secrets.confirmation_key, confirmed.as_bytes());
        let new_interim = transcript::interim_transcript_hash(suite, confirmed.as_bytes(), tag.as_bytes())?;
        let message = signed.finish(Some(tag.as_bytes()), None).map_err(in_out)?;

        let mut private = outcome.private.clone();
        private.prune(&tree);
        let state = EpochState {
            suite,
            group_id: OwnedBytes::from_slice(gc.group_id).map_err(|_| JoinError::CapacityExceeded(Capacity::GroupIdLen))?,
            epoch: new_gc.epoch,
            confirmed_transcript_hash: confirmed,
            interim_transcript_hash: new_interim,
            confirmation_tag: HashValue::from_slice(tag.as_bytes())?,
            tree_hash,
            extensions: OwnedBytes::from_slice(gc.extensions)
                .map_err(|_| JoinError::CapacityExceeded(Capacity::GroupExtensionsLen))?,
            secrets,
            private,
        };
        self.install(state, signer, config).map_err(JoinError::SecretTree)?;
        Ok(message)
    }
}
