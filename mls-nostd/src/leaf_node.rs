//! Leaf nodes (RFC 9420 §7.2): Capabilities, Lifetime, LeafNodeSource and the
//! signed LeafNode, decoded as a view over its encoding.

use crate::capacity::Capacity;
use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::credential::Credential;
use crate::crypto::labeled::{sign_with_label_parts, with_sign_content, VarintPrefix};
use crate::crypto::signature::{SignaturePublicKey};
use crate::crypto::signer::Signer;
use crate::crypto::{CipherSuite, CryptoError};
use crate::extensions::{Extensions, U16List};

/// `Capabilities` (§7.2): what a client supports besides the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Capabilities<'a> {
    /// `ProtocolVersion versions<V>`.
    pub versions: U16List<'a>,
    /// `CipherSuite cipher_suites<V>`.
    pub cipher_suites: U16List<'a>,
    /// `ExtensionType extensions<V>` (non-default ones).
    pub extensions: U16List<'a>,
    /// `ProposalType proposals<V>` (non-default ones).
    pub proposals: U16List<'a>,
    /// `CredentialType credentials<V>`.
    pub credentials: U16List<'a>,
}
crate::tls_struct!(Capabilities<'a> { versions, cipher_suites, extensions, proposals, credentials });

/// `Lifetime` (§7.2): seconds since the Unix epoch, both ends inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    /// First second of validity.
    pub not_before: u64,
    /// Last second of validity.
    pub not_after: u64,
}
crate::tls_struct!(Lifetime { not_before, not_after });

impl Lifetime {
    /// True if `now` lies within the lifetime.
    pub fn contains(&self, now: u64) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

/// `LeafNodeSource` with its `select` part (§7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafNodeSource<'a> {
    /// `key_package(1)`: the leaf came in a KeyPackage.
    KeyPackage(Lifetime),
    /// `update(2)`: the leaf came in an Update proposal.
    Update,
    /// `commit(3)`: the leaf came in a Commit's UpdatePath.
    Commit {
        /// The leaf's parent hash (§7.9).
        parent_hash: &'a [u8],
    },
}

impl LeafNodeSource<'_> {
    /// The `LeafNodeSource` value.
    pub fn value(&self) -> u8 {
        match self {
            Self::KeyPackage(_) => 1,
            Self::Update => 2,
            Self::Commit { .. } => 3,
        }
    }
}

impl Encode for LeafNodeSource<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.write_u8(self.value())?;
        match self {
            Self::KeyPackage(l) => l.encode(w),
            Self::Update => Ok(()),
            Self::Commit { parent_hash } => w.write_opaque(parent_hash),
        }
    }
}

impl<'a> Decode<'a> for LeafNodeSource<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        match r.read_u8()? {
            1 => Ok(Self::KeyPackage(Lifetime::decode(r)?)),
            2 => Ok(Self::Update),
            3 => Ok(Self::Commit { parent_hash: r.read_opaque()? }),
            _ => Err(CodecError::InvalidValue),
        }
    }
}

/// The fields of a LeafNode that its signature covers (`LeafNodeTBS` without
/// the group context), used to build a new leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafNodeFields<'a> {
    /// `HPKEPublicKey encryption_key`.
    pub encryption_key: &'a [u8],
    /// `SignaturePublicKey signature_key`.
    pub signature_key: &'a [u8],
    /// The member's credential.
    pub credential: Credential<'a>,
    /// What the member supports.
    pub capabilities: Capabilities<'a>,
    /// Where the leaf comes from.
    pub source: LeafNodeSource<'a>,
    /// `Extension extensions<V>`.
    pub extensions: Extensions<'a>,
}
crate::tls_struct!(LeafNodeFields<'a> { encryption_key, signature_key, credential, capabilities, source, extensions });

/// The group a leaf's signature is bound to (`update` and `commit` leaves).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafNodeContext<'a> {
    /// `opaque group_id<V>`.
    pub group_id: &'a [u8],
    /// The leaf's index in the tree.
    pub leaf_index: u32,
}

/// A LeafNode (§7.2), viewed over its encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafNode<'a> {
    /// The signed fields.
    pub fields: LeafNodeFields<'a>,
    /// `opaque signature<V>`.
    pub signature: &'a [u8],
    /// The encoding of `fields`, as received.
    tbs: &'a [u8],
    /// The whole encoding, as received.
    raw: &'a [u8],
}

impl<'a> LeafNode<'a> {
    /// The `encryption_key` and `signature_key` of an encoded LeafNode,
    /// read from its first two fields without decoding the rest. For the
    /// leaves a tree stores (each decoded whole when it entered): a joiner
    /// compares their keys O(N log N) times to check that they are unique
    /// (§7.3, §12.4.3.1).
    pub(crate) fn keys_of(encoding: &'a [u8]) -> Option<(&'a [u8], &'a [u8])> {
        let mut r = Reader::new(encoding);
        let encryption_key = r.read_opaque().ok()?;
        let signature_key = r.read_opaque().ok()?;
        Some((encryption_key, signature_key))
    }

    /// The credential type and the supported credential types
    /// (`capabilities.credentials`) of an encoded LeafNode, read past its
    /// keys, credential and first four capability lists without decoding
    /// them. For the leaves a tree stores: a Commit with path checks the new
    /// leaf against every member's types (§7.3), O(N) reads per Commit.
    pub(crate) fn credential_types_of(encoding: &'a [u8]) -> Option<(u16, U16List<'a>)> {
        let mut r = Reader::new(encoding);
        for _ in 0..2 {
            r.read_opaque().ok()?;
        }
        // Basic (identity) and X.509 (the chain) both carry one opaque body.
        let own = r.read_u16().ok()?;
        r.read_opaque().ok()?;
        for _ in 0..4 {
            r.read_opaque().ok()?;
        }
        Some((own, U16List::from_body(r.read_opaque().ok()?).ok()?))
    }

    /// Verifies the signature over `LeafNodeTBS` (§7.2) with the leaf's own
    /// signature key; `context` is required for `update` and `commit` leaves.
    pub fn verify_signature(&self, suite: CipherSuite, context: Option<LeafNodeContext<'_>>) -> Result<(), LeafNodeError> {
        let key = SignaturePublicKey::from_slice(self.fields.signature_key).map_err(|_| LeafNodeError::InvalidKey)?;
        self.with_signed_content(context, |parts| key.verify(suite, parts, self.signature))?
            .map_err(|_| LeafNodeError::InvalidSignature)
    }

    /// Calls `f` with the pieces of the `SignContent` the leaf's signature
    /// covers (§5.1.2, §7.2): `LeafNodeTBS`, with `context` for `update` and
    /// `commit` leaves.
    pub(crate) fn with_signed_content<R>(
        &self,
        context: Option<LeafNodeContext<'_>>,
        f: impl FnOnce(&[&[u8]]) -> R,
    ) -> Result<R, LeafNodeError> {
        let needs_context = !matches!(self.fields.source, LeafNodeSource::KeyPackage(_));
        match (needs_context, context) {
            (false, _) => Ok(with_sign_content(b"LeafNodeTBS", &[self.tbs], f)?),
            (true, Some(ctx)) => {
                let gid_len = VarintPrefix::new(ctx.group_id.len())?;
                let idx = ctx.leaf_index.to_be_bytes();
                Ok(with_sign_content(b"LeafNodeTBS", &[self.tbs, gid_len.as_bytes(), ctx.group_id, &idx], f)?)
            }
            (true, None) => Err(LeafNodeError::MissingContext),
        }
    }

    /// Writes a new signed LeafNode into `out` and returns its encoding.
    pub fn sign_into<'o>(
        suite: CipherSuite,
        fields: &LeafNodeFields<'_>,
        context: Option<LeafNodeContext<'_>>,
        key: &impl Signer,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], LeafNodeError> {
        let mut w = Writer::new(out);
        fields.encode(&mut w)?;
        let sig = {
            let tbs = w.written();
            match (&fields.source, context) {
                (LeafNodeSource::KeyPackage(_), _) => sign_with_label_parts(suite, key, b"LeafNodeTBS", &[tbs])?,
                (_, Some(ctx)) => {
                    let gid_len = VarintPrefix::new(ctx.group_id.len())?;
                    let idx = ctx.leaf_index.to_be_bytes();
                    sign_with_label_parts(suite, key, b"LeafNodeTBS", &[tbs, gid_len.as_bytes(), ctx.group_id, &idx])?
                }
                (_, None) => return Err(LeafNodeError::MissingContext),
            }
        };
        w.write_opaque(&sig)?;
        let n = w.len();
        out.get(..n).ok_or(LeafNodeError::Codec(CodecError::BufferTooSmall { needed: n }))
    }

    /// Writes `fields` with an empty signature into `out`: a placeholder that
    /// holds a tree position until an UpdatePath replaces it (an external
    /// joiner's leaf, §12.4.3.2), so the signer (maybe a slow secure
    /// element) signs only the LeafNode that is sent.
    pub(crate) fn unsigned_into<'o>(fields: &LeafNodeFields<'_>, out: &'o mut [u8]) -> Result<&'o [u8], LeafNodeError> {
        let mut w = Writer::new(out);
        fields.encode(&mut w)?;
        w.write_opaque(&[])?;
        let n = w.len();
        out.get(..n).ok_or(LeafNodeError::Codec(CodecError::BufferTooSmall { needed: n }))
    }

    /// The encoding of the signed fields (LeafNodeTBS without its context).
    pub fn tbs(&self) -> &'a [u8] {
        self.tbs
    }

    /// The whole encoding this leaf was decoded from.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }
}

impl Encode for LeafNode<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        self.fields.encode(w)?;
        w.write_opaque(self.signature)
    }
}

impl<'a> Decode<'a> for LeafNode<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        let start = r.remaining();
        let fields = LeafNodeFields::decode(r)?;
        let tbs = r.consumed_since(start);
        let signature = r.read_opaque()?;
        Ok(Self { fields, signature, tbs, raw: r.consumed_since(start) })
    }
}

/// Why a LeafNode is invalid (§7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LeafNodeError {
    /// Its encoding is malformed.
    Codec(CodecError),
    /// A key has the wrong length for the suite.
    InvalidKey,
    /// The signature does not verify.
    InvalidSignature,
    /// An `update`/`commit` leaf was checked without its group context.
    MissingContext,
    /// A cryptographic operation failed.
    Crypto(CryptoError),
}

impl core::fmt::Display for LeafNodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Codec(e) => write!(f, "malformed LeafNode: {e}"),
            Self::InvalidKey => f.write_str("LeafNode key of the wrong length for the cipher suite"),
            Self::InvalidSignature => f.write_str("LeafNode signature does not verify"),
            Self::MissingContext => f.write_str("update or commit LeafNode checked without its group context"),
            Self::Crypto(e) => write!(f, "crypto: {e}"),
        }
    }
}

impl core::error::Error for LeafNodeError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Codec(e) => Some(e),
            Self::Crypto(e) => Some(e),
            _ => None,
        }
    }
}

impl LeafNodeError {
    /// The error for a leaf signed into one of the core's own buffers: a
    /// buffer too small there is the [`Capacity::LeafLen`] capacity, not the
    /// caller's buffer.
    pub(crate) fn in_own_buffer(self) -> Self {
        match self {
            Self::Codec(CodecError::BufferTooSmall { .. }) => Self::Codec(CodecError::CapacityExceeded(Capacity::LeafLen)),
            other => other,
        }
    }
}

impl From<CodecError> for LeafNodeError {
    fn from(e: CodecError) -> Self {
        Self::Codec(e)
    }
}

impl From<CryptoError> for LeafNodeError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}
