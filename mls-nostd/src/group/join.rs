//! Joining a group from a Welcome (RFC 9420 §12.4.3.1), with every check:
//! our entry and its decryption, PSKs, the GroupInfo signature by a leaf of
//! the tree, the whole tree (signatures, parent hashes, unique keys, tree hash
//! equal to the GroupInfo's), our leaf identical to our KeyPackage's, the path
//! secret's keys equal to the tree's, the confirmation tag, and our leaf's
//! support of every extension of the GroupContext (§13.4). Not the group
//! ID's uniqueness among the client's groups (§12.4.3.1), which a group
//! cannot see: the application compares [`Group::group_id`] with its
//! other groups' before it uses a joined group.

use super::process::supports_group_extensions;
use super::{Group, GroupConfig};
use crate::crypto::signer::Signer;
use crate::codec::{CodecError, Decode};
use crate::crypto::labeled::derive_secret;
use crate::crypto::signature::{SignaturePrivateKey, SignaturePublicKey};
use crate::crypto::CryptoError;
use crate::extensions::{EXT_RATCHET_TREE, Extensions};
use crate::key_package::{KeyPackage, KeyPackagePrivateKeys};
use crate::messages::mls_message::{MlsMessage, MlsMessageBody};
use crate::messages::welcome_reader::ReadWelcome;
use crate::messages::welcome_secrets::{
    DecryptedWelcome, SignedWelcome, WelcomeError, process_read_welcome, process_welcome, process_welcome_in_place,
};
use crate::crypto::CipherSuite;
use crate::crypto::hpke::HpkePrivateKey;
use crate::psk::PskStore;
use crate::capacity::Capacity;
use crate::ratchet_tree::tree::{TreeError, decode_tree};
use crate::ratchet_tree::validate::{TreeCheck, TreeValidationError};
use crate::tree_math::{self, LeafIndex};

/// Why joining failed. The slot is left empty: a join replaces whatever
/// inactive group it held (one we were removed from, or that ended in a
/// ReInit), whether it succeeds or not, so join into another slot while
/// that group's state (e.g. its resumption PSK) is still needed. Errors
/// found before the join starts (`SlotInUse`, `SignatureKeyNotOurs`)
/// leave the slot as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum JoinError {
    /// The message is not a Welcome, or the KeyPackage is malformed.
    Malformed(CodecError),
    /// Decrypting or checking the Welcome failed (§12.4.3.1).
    Welcome(WelcomeError),
    /// The Welcome carries no ratchet tree and none was given.
    NoRatchetTree,
    /// The ratchet tree could not be imported.
    Tree(TreeError),
    /// The ratchet tree is invalid (§12.4.3.1).
    InvalidTree(TreeValidationError),
    /// The GroupInfo's signer is not a member of the tree.
    UnknownSigner,
    /// No leaf of the tree is our KeyPackage's leaf.
    NotInTree,
    /// A key derived from the path secret differs from the tree's.
    PathSecretMismatch,
    /// A group ID or extensions longer than the capacities, or an epoch
    /// counter at its end (which capacity is said).
    CapacityExceeded(Capacity),
    /// The slot holds an active group, which joining would replace (join
    /// into another slot, or empty this one with `Group::EMPTY`).
    SlotInUse,
    /// A cryptographic operation failed.
    Crypto(CryptoError),
    /// The GroupInfo has no `external_pub` extension (§12.4.3.2).
    NoExternalPub,
    /// The GroupInfo's signature does not verify (§12.4.3).
    InvalidGroupInfo,
    /// Building the external Commit failed; or a commit is staged in this
    /// slot ([`CommitError::CommitPending`](super::CommitError::CommitPending)):
    /// merge or discard it first.
    Commit(super::CommitError),
    /// A reinit or branch PSK names a group the PSK store does not know.
    UnknownLinkedGroup,
    /// The new group does not match the ReInit its old group committed (§11.2).
    ReInitMismatch,
    /// A branched group's version or cipher suite differs from its parent's (§11.3).
    BranchMismatch,
    /// Framing the external Commit failed (a buffer too small, among others).
    Protection(crate::messages::authenticated_content::ProtectionError),
    /// Our new leaf for an external Commit could not be signed (e.g. a
    /// credential larger than the leaf buffer).
    LeafNode(crate::leaf_node::LeafNodeError),
    /// The secret tree of the joined epoch could not be set up.
    SecretTree(crate::secret_tree::SecretTreeError),
    /// Our leaf's capabilities do not list an extension type of the
    /// group's GroupContext (§13.4: a joiner must support every one; the
    /// GroupInfo is treated as invalid).
    UnsupportedGroupExtensions,
    /// An external join's leaf template names a signature key that is not
    /// the signer's: the leaf would be signed with another key than the one
    /// it names, which every member refuses (§7.3, §12.4.3.2). Nothing is
    /// changed.
    SignatureKeyNotOurs,
}

impl core::fmt::Display for JoinError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed Welcome or KeyPackage: {e}"),
            Self::Welcome(e) => write!(f, "{e}"),
            Self::NoRatchetTree => f.write_str("no ratchet tree in the Welcome and none given"),
            Self::Tree(e) => write!(f, "importing the ratchet tree: {e}"),
            Self::InvalidTree(e) => write!(f, "invalid ratchet tree: {e}"),
            Self::UnknownSigner => f.write_str("GroupInfo signer is not a member of the tree"),
            Self::NotInTree => f.write_str("our KeyPackage's leaf is not in the tree"),
            Self::PathSecretMismatch => f.write_str("a key derived from the path secret differs from the tree's"),
            Self::CapacityExceeded(c) => write!(f, "joining exceeds a capacity: {c}"),
            Self::SlotInUse => {
                f.write_str("the slot holds an active group: join into another slot or empty this one with Group::EMPTY")
            }
            Self::Crypto(e) => write!(f, "crypto: {e}"),
            Self::NoExternalPub => f.write_str("GroupInfo has no external_pub extension"),
            Self::InvalidGroupInfo => f.write_str("GroupInfo signature does not verify"),
            Self::Commit(e) => write!(f, "external commit: {e}"),
            Self::UnknownLinkedGroup => f.write_str("a reinit or branch PSK names a group the PSK store does not know"),
            Self::ReInitMismatch => f.write_str("the new group does not match the committed ReInit"),
            Self::BranchMismatch => f.write_str("a branch differs from its parent group in version or cipher suite"),
            Self::Protection(e) => write!(f, "framing the external commit: {e}"),
            Self::LeafNode(e) => write!(f, "our leaf: {e}"),
            Self::SecretTree(e) => write!(f, "secret tree: {e}"),
            Self::UnsupportedGroupExtensions => {
                f.write_str("our leaf's capabilities do not list every extension of the group's GroupContext")
            }
            Self::SignatureKeyNotOurs => {
                f.write_str("the leaf template's signature key is not the signer's (a new key needs a new signer)")
            }
        }
    }
}

impl core::error::Error for JoinError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Malformed(e) => Some(e),
            Self::Welcome(e) => Some(e),
            Self::Tree(e) => Some(e),
            Self::InvalidTree(e) => Some(e),
            Self::Crypto(e) => Some(e),
            Self::Commit(e) => Some(e),
            Self::Protection(e) => Some(e),
            Self::LeafNode(e) => Some(e),
            Self::SecretTree(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CodecError> for JoinError {
    fn from(e: CodecError) -> Self {
        Self::Malformed(e)
    }
}

impl From<WelcomeError> for JoinError {
    fn from(e: WelcomeError) -> Self {
        Self::Welcome(e)
    }
}

impl From<TreeError> for JoinError {
    fn from(e: TreeError) -> Self {
        Self::Tree(e)
    }
}

impl From<CryptoError> for JoinError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}

/// What joining needs besides the Welcome.
pub struct JoinParams<'a, Sig: Signer = SignaturePrivateKey> {
    /// Our KeyPackage, encoded (as published).
    pub key_package: &'a [u8],
    /// Its private keys (from the key store).
    pub keys: &'a KeyPackagePrivateKeys,
    /// Our signer (its key in memory, or in a secure element).
    pub signer: &'a Sig,
    /// The ratchet tree, if not in the Welcome's GroupInfo (out of band).
    pub ratchet_tree: Option<&'a [u8]>,
    /// External and resumption PSKs.
    pub psks: &'a dyn PskStore,
    /// Group settings, the identity policy among them.
    pub config: GroupConfig,
    /// Runs the tree's leaf-signature checks (most of a join's work):
    /// `Sequential`, or a thread pool on a host.
    pub executor: &'a dyn crate::executor::Executor,
}

impl<Sig: Signer> Clone for JoinParams<'_, Sig> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Sig: Signer> Copy for JoinParams<'_, Sig> {}

impl<'a, Sig: Signer> JoinParams<'a, Sig> {
    /// Joins with `key_package` (as published), its private `keys` and our
    /// `signer`; the tree in the Welcome, no PSKs, the default [`GroupConfig`],
    /// the signatures checked one after the other.
    pub fn new(key_package: &'a [u8], keys: &'a KeyPackagePrivateKeys, signer: &'a Sig) -> Self {
        Self {
            key_package,
            keys,
            signer,
            ratchet_tree: None,
            psks: &crate::psk::NoPsks,
            config: GroupConfig::default(),
            executor: &crate::executor::Sequential,
        }
    }
}

/// Where a join finds the Welcome and decrypts it. A type per way, so that
/// a firmware links only the way it joins (an enum matched in the join's
/// steps kept both: 612 bytes more flash on a Cortex-M4).
trait WelcomeInput<'w> {
    /// Opens our GroupSecrets and the GroupInfo (`process_welcome`).
    fn open(self, suite: CipherSuite, kp_ref: &[u8], init_key: &HpkePrivateKey, psks: &dyn PskStore)
    -> Result<DecryptedWelcome<'w>, JoinError>;
}

/// A Welcome decrypted into `buf`.
struct Copied<'w> {
    welcome: &'w [u8],
    buf: &'w mut [u8],
}

impl<'w> WelcomeInput<'w> for Copied<'w> {
    fn open(self, suite: CipherSuite, kp_ref: &[u8], init_key: &HpkePrivateKey, psks: &dyn PskStore)
    -> Result<DecryptedWelcome<'w>, JoinError> {
        let MlsMessageBody::Welcome(welcome) = MlsMessage::decode_exact(self.welcome)?.body else {
            return Err(JoinError::Malformed(CodecError::InvalidValue));
        };
        Ok(process_welcome(suite, kp_ref, init_key, &welcome, psks, self.buf)?)
    }
}

/// A Welcome decrypted where it lies.
struct InPlace<'w>(&'w mut [u8]);

impl<'w> WelcomeInput<'w> for InPlace<'w> {
    fn open(self, suite: CipherSuite, kp_ref: &[u8], init_key: &HpkePrivateKey, psks: &dyn PskStore)
    -> Result<DecryptedWelcome<'w>, JoinError> {
        Ok(process_welcome_in_place(suite, kp_ref, init_key, self.0, psks)?)
    }
}

/// A Welcome read in pieces, decrypted where the reader kept it.
struct Read<'w, 'b>(&'w mut ReadWelcome<'b>);

impl<'w> WelcomeInput<'w> for Read<'w, '_> {
    fn open(self, suite: CipherSuite, kp_ref: &[u8], init_key: &HpkePrivateKey, psks: &dyn PskStore)
    -> Result<DecryptedWelcome<'w>, JoinError> {
        Ok(process_read_welcome(suite, kp_ref, init_key, self.0, psks)?)
    }
}

impl<const N: usize, const ARENA: usize, const K: usize, const P: usize, Sig: Signer, const E: usize> Group<N, ARENA, K, P, Sig, E> {
    /// Joins from `welcome` (an encoded `MLSMessage(Welcome)`) into this
    /// slot, which must hold no active group; on failure it is left empty.
    /// The application then checks that no other group of its holds this
    /// group's ID (§12.4.3.1; [`Group::group_id`]) and leaves it if one does.
    /// `buf` receives the decrypted GroupInfo (the Welcome's length suffices).
    pub fn join_in_memory(&mut self, welcome: &[u8], p: &JoinParams<'_, Sig>, buf: &mut [u8]) -> Result<(), JoinError> {
        self.join_from(Copied { welcome, buf }, p)
    }

    /// [`Self::join_in_memory`] with the Welcome decrypted where it lies:
    /// our GroupSecrets and the GroupInfo (with the tree, if it came in the
    /// Welcome) are opened in place in `welcome`, so a device needs no
    /// second buffer of the GroupInfo's size. `welcome` is left holding
    /// plaintext (the GroupSecrets' secrets wiped): discard it afterwards,
    /// whether the join succeeded or not.
    pub fn join_in_place_in_memory(&mut self, welcome: &mut [u8], p: &JoinParams<'_, Sig>) -> Result<(), JoinError> {
        self.join_from(InPlace(welcome), p)
    }

    /// [`Self::join_in_memory`] from a Welcome read in pieces
    /// ([`WelcomeReader`]): a device that receives the Welcome in frames
    /// keeps only our GroupSecrets and the GroupInfo, opened where the
    /// reader kept them (discard its buffer afterwards).
    ///
    /// [`WelcomeReader`]: crate::messages::welcome_reader::WelcomeReader
    pub fn join_read_in_memory(&mut self, welcome: &mut ReadWelcome<'_>, p: &JoinParams<'_, Sig>) -> Result<(), JoinError> {
        self.join_from(Read(welcome), p)
    }

    fn join_from<'w>(&mut self, input: impl WelcomeInput<'w>, p: &JoinParams<'_, Sig>) -> Result<(), JoinError> {
        if !self.is_inactive() {
            return Err(JoinError::SlotInUse);
        }
        let result = self.join_inner(input, p);
        if result.is_err() {
            self.wipe();
        }
        result
    }

    /// §12.4.3.1 in three frames, one after the other: the Welcome opened
    /// and its GroupInfo verified, the tree's signatures and hashes checked,
    /// our keys derived. So no signature is verified under the decoded
    /// Welcome, KeyPackage and GroupInfo (2 KB of stack on a Cortex-M4,
    /// issue #14). The slot's state is written as the steps go; an error
    /// wipes it (`join_in_memory`).
    fn join_inner<'w>(&mut self, input: impl WelcomeInput<'w>, p: &JoinParams<'_, Sig>) -> Result<(), JoinError> {
        // The leaf signatures are checked in parallel after the Welcome is
        // opened and the GroupInfo verified: threads woken now are ready then.
        p.executor.prepare();
        let opened = self.join_welcome(input, p)?;
        self.join_check_tree(p)?;
        self.join_own_keys(p, opened)?;
        self.install_in_place(p.signer, p.config).map_err(JoinError::SecretTree)?;
        Ok(())
    }

    /// Decrypts the Welcome, verifies its GroupInfo's signature, then the
    /// rest. Its own frame: the Welcome's decryptions are not on the stack
    /// while the tree is checked.
    #[inline(never)]
    fn join_welcome<'w>(&mut self, input: impl WelcomeInput<'w>, p: &JoinParams<'_, Sig>) -> Result<Opened, JoinError> {
        // Read where `join_decrypt` wrote it: moved out of the `Result`,
        // the Welcome (208 bytes) took a second slot of this frame, which
        // lies under the GroupInfo's verification.
        let decrypted = self.join_decrypt(input, p);
        let decrypted = match decrypted {
            Err(e) => return Err(e),
            Ok(ref decrypted) => decrypted,
        };
        let signed = self.join_check_signature(decrypted)?;
        self.join_open(signed, p)
    }

    /// Verifies the GroupInfo's signature by its signer in the imported
    /// tree. Its own frame, small: the verified Welcome and the epoch's
    /// secrets of [`Self::join_open`] are not on the stack under the
    /// verification (2.2 KB on a Cortex-M4, issue #14).
    #[inline(never)]
    fn join_check_signature<'d, 'w>(&self, decrypted: &'d DecryptedWelcome<'w>) -> Result<SignedWelcome<'d, 'w>, JoinError> {
        let signer_key = self
            .tree
            .old()
            .signature_key(LeafIndex(decrypted.signer()))
            .and_then(|k| SignaturePublicKey::from_slice(k).ok())
            .ok_or(JoinError::UnknownSigner)?;
        Ok(decrypted.check_signature(&signer_key)?)
    }

    /// Checks the rest of the Welcome whose GroupInfo's signature verified
    /// (confirmation tag, PSKs, the groups a resumption PSK links to) and
    /// writes the joined epoch's GroupContext fields and secrets into the
    /// slot's state.
    #[inline(never)]
    fn join_open(&mut self, signed: SignedWelcome<'_, '_>, p: &JoinParams<'_, Sig>) -> Result<Opened, JoinError> {
        let verified = signed.verify()?;
        let signer = LeafIndex(verified.group_info.tbs.signer);
        let gc = verified.group_context;
        // §13.4: we support every extension of the GroupContext.
        let ours = KeyPackage::decode_exact(p.key_package)?.tbs.leaf_node;
        if !supports_group_extensions(&ours.fields.capabilities, Extensions::from_body(gc.extensions)?) {
            return Err(JoinError::UnsupportedGroupExtensions);
        }
        check_linked_groups(&verified.psks, &gc, p.psks)?;

        let state = &mut self.state;
        state.group_id.set(gc.group_id).map_err(|_| JoinError::CapacityExceeded(Capacity::GroupIdLen))?;
        state.epoch = gc.epoch;
        state.confirmed_transcript_hash = crate::crypto::HashValue::from_slice(gc.confirmed_transcript_hash)?;
        state.interim_transcript_hash = verified.interim_transcript_hash;
        state.confirmation_tag = crate::crypto::HashValue::from_slice(verified.group_info.tbs.confirmation_tag)?;
        state.tree_hash = crate::crypto::HashValue::from_slice(gc.tree_hash)?;
        state.extensions
            .set(gc.extensions)
            .map_err(|_| JoinError::CapacityExceeded(Capacity::GroupExtensionsLen))?;
        state.secrets = verified.epoch_secrets;
        Ok(Opened { signer, path_secret: verified.path_secret })
    }

    /// Decrypts `welcome`'s GroupSecrets and GroupInfo with our KeyPackage's
    /// keys and imports the ratchet tree (the GroupInfo's extension, or the
    /// one given); the suite goes into the slot's state. Its own frame: the
    /// decoded Welcome and KeyPackage are not on the stack while the
    /// GroupInfo's signature is verified.
    #[inline(never)]
    fn join_decrypt<'b>(&mut self, input: impl WelcomeInput<'b>, p: &JoinParams<'_, Sig>) -> Result<DecryptedWelcome<'b>, JoinError> {
        let kp = KeyPackage::decode_exact(p.key_package)?;
        let suite = CipherSuite::from_u16(kp.tbs.cipher_suite)
            .ok_or(JoinError::Welcome(WelcomeError::WrongCipherSuite))?;
        let kp_ref = kp.reference(suite)?;
        let decrypted = input.open(suite, kp_ref.as_bytes(), &p.keys.init_key, p.psks)?;
        let tree_bytes = match decrypted.group_info().tbs.extensions.find(EXT_RATCHET_TREE) {
            Some(data) => data,
            None => p.ratchet_tree.ok_or(JoinError::NoRatchetTree)?,
        };
        let view = decode_tree(tree_bytes)?;
        self.discard_staged_commit();
        self.tree.slices().import(suite, &view)?;
        self.state.suite = suite;
        Ok(decrypted)
    }

    /// Checks the imported tree (§12.4.3.1: signatures, parent and tree
    /// hashes, keys, credentials) against the GroupContext written by
    /// [`Self::join_open`]: the signatures in a frame of their own, then
    /// the rest with its scratch arrays (8 bytes a leaf), which are not on
    /// the stack under the signatures.
    #[inline(never)]
    fn join_check_tree(&mut self, p: &JoinParams<'_, Sig>) -> Result<(), JoinError> {
        self.join_check_leaves(p)?;
        self.join_check_keys_and_parents()
    }

    /// [`Self::join_check_tree`]'s tree hash and leaves.
    #[inline(never)]
    fn join_check_leaves(&mut self, p: &JoinParams<'_, Sig>) -> Result<(), JoinError> {
        let Self { tree, state, .. } = self;
        let check = TreeCheck {
            group_id: state.group_id.as_slice(),
            tree_hash: Some(state.tree_hash.as_bytes()),
            group_extensions: Extensions::from_body(state.extensions.as_slice())?,
            identity: p.config.identity,
        };
        tree.slices().validate_hash_and_leaves(&check, p.executor).map_err(JoinError::InvalidTree)
    }

    /// [`Self::join_check_tree`]'s unique keys and parent hashes.
    #[inline(never)]
    fn join_check_keys_and_parents(&mut self) -> Result<(), JoinError> {
        let mut scratch_a = [0u32; N];
        let mut scratch_b = [0u32; N];
        self.tree.slices().validate_keys_and_parents(&mut scratch_a, &mut scratch_b).map_err(JoinError::InvalidTree)
    }

    /// Finds our leaf (the one identical to our KeyPackage's) and derives
    /// the private keys of our path from the Welcome's path secret.
    #[inline(never)]
    fn join_own_keys(&mut self, p: &JoinParams<'_, Sig>, opened: Opened) -> Result<(), JoinError> {
        let kp = KeyPackage::decode_exact(p.key_package)?;
        let ours = kp.tbs.leaf_node.as_bytes();
        let Self { tree, state, .. } = self;
        let tree = tree.slices();
        let suite = state.suite;
        let me = (0..tree.n_leaves())
            .map(LeafIndex)
            .find(|l| tree.leaf_bytes(*l) == Some(ours))
            .ok_or(JoinError::NotInTree)?;
        let private = &mut state.private;
        private.reset(me, p.keys.encryption_key.clone());

        // The path secret is that of the lowest common ancestor of our leaf and
        // the signer's; its ancestors' follow by DeriveSecret(., "path").
        if let Some(ps) = &opened.path_secret {
            let lca = tree_math::common_ancestor(
                me.node().ok_or(JoinError::NotInTree)?,
                opened.signer.node().ok_or(JoinError::UnknownSigner)?,
            );
            let mut secret = ps.clone();
            let mut node = Some(lca);
            let mut first = true;
            while let Some(n) = node {
                if let Some(expected) = tree.encryption_key(n) {
                    if !first {
                        secret = derive_secret(suite, secret.as_bytes(), b"path")?;
                    }
                    first = false;
                    let pk = private.set_path_secret(suite, n, secret.as_bytes())?;
                    if pk.as_bytes() != expected {
                        return Err(JoinError::PathSecretMismatch);
                    }
                }
                node = tree_math::parent(n, tree.n_leaves());
            }
        }
        Ok(())
    }

    /// Joins from `welcome` with the private keys of `key_package` taken from
    /// `store`, and deletes them once joined: a KeyPackage is used once
    /// (§16.8). `p.keys` is ignored.
    pub fn join_with_store(
        &mut self,
        welcome: &[u8],
        p: &JoinParams<'_, Sig>,
        store: &mut dyn crate::key_store::KeyPackageStore,
        buf: &mut [u8],
    ) -> Result<(), JoinError> {
        let kp = KeyPackage::decode_exact(p.key_package)?;
        let suite = CipherSuite::from_u16(kp.tbs.cipher_suite)
            .ok_or(JoinError::Welcome(WelcomeError::WrongCipherSuite))?;
        let reference = kp.reference(suite)?;
        let keys = store.get(&reference).ok_or(JoinError::Welcome(WelcomeError::NotForUs))?;
        self.join_in_memory(welcome, &JoinParams { keys: &keys, ..*p }, buf)?;
        store.remove(&reference);
        Ok(())
    }
}

/// What [`Group::join_open`] hands the last step of a join.
struct Opened {
    /// The GroupInfo's signer (the Commit's committer).
    signer: LeafIndex,
    /// `GroupSecrets.path_secret` (zeroized on drop).
    path_secret: Option<crate::crypto::Secret>,
}

/// §12.4.3.1: a Welcome resuming another group (reinit or branch PSK) must
/// match it: for a ReInit, the group ID, version, cipher suite and extensions
/// the old group's last Commit covered; for a branch, the cipher suite. (That
/// the members were members of the old group is the application's check.)
fn check_linked_groups(
    psks: &crate::codec::ListView<'_, crate::psk::PreSharedKeyId<'_>>,
    gc: &crate::group_context::GroupContext<'_>,
    store: &dyn PskStore,
) -> Result<(), JoinError> {
    use crate::psk::{Psk, ResumptionPskUsage};
    for id in psks.iter() {
        let Psk::Resumption { usage, psk_group_id, psk_epoch } = id.psk else { continue };
        if usage == ResumptionPskUsage::Application {
            continue;
        }
        let linked = store.linked_group(psk_group_id, psk_epoch).ok_or(JoinError::UnknownLinkedGroup)?;
        let suite = gc.cipher_suite.to_u16();
        match usage {
            ResumptionPskUsage::Reinit => {
                let (group_id, version, cipher_suite, extensions) = linked.reinit.ok_or(JoinError::ReInitMismatch)?;
                if group_id != gc.group_id
                    || version != crate::group_context::PROTOCOL_VERSION_MLS10
                    || cipher_suite != suite
                    || extensions != gc.extensions
                {
                    return Err(JoinError::ReInitMismatch);
                }
            }
            _ => {
                if linked.cipher_suite != suite {
                    return Err(JoinError::BranchMismatch);
                }
            }
        }
    }
    Ok(())
}
