//! KeyPackages (RFC 9420 §10) and their validation (§10.1, with the
//! group-independent checks of §7.3 on their leaf).

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::crypto::labeled::{make_key_package_ref, sign_with_label_parts, verify_with_label_parts};
use crate::crypto::signature::{SignaturePublicKey};
use crate::crypto::signer::Signer;
use crate::crypto::{CipherSuite, CryptoError, HashValue};
use crate::extensions::Extensions;
use crate::group_context::PROTOCOL_VERSION_MLS10;
use crate::leaf_node::{LeafNode, LeafNodeError, LeafNodeSource};

/// Extension and proposal types that are "default" (§7.2): never listed in
/// capabilities, always supported.
pub const DEFAULT_EXTENSION_TYPES: [u16; 5] = [1, 2, 3, 4, 5];

/// The signed fields of a KeyPackage (`KeyPackageTBS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPackageTbs<'a> {
    /// `ProtocolVersion version`.
    pub version: u16,
    /// `CipherSuite cipher_suite` (raw: any suite decodes).
    pub cipher_suite: u16,
    /// `HPKEPublicKey init_key`.
    pub init_key: &'a [u8],
    /// The client's leaf.
    pub leaf_node: LeafNode<'a>,
    /// `Extension extensions<V>`.
    pub extensions: Extensions<'a>,
}
crate::tls_struct!(KeyPackageTbs<'a> { version, cipher_suite, init_key, leaf_node, extensions });

/// A KeyPackage (§10), viewed over its encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPackage<'a> {
    /// The signed fields.
    pub tbs: KeyPackageTbs<'a>,
    /// `opaque signature<V>` over `KeyPackageTBS`.
    pub signature: &'a [u8],
    tbs_bytes: &'a [u8],
    raw: &'a [u8],
}

impl Encode for KeyPackage<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        self.tbs.encode(w)?;
        w.write_opaque(self.signature)
    }
}

impl<'a> Decode<'a> for KeyPackage<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        let start = r.remaining();
        let tbs = KeyPackageTbs::decode(r)?;
        let tbs_bytes = r.consumed_since(start);
        let signature = r.read_opaque()?;
        Ok(Self { tbs, signature, tbs_bytes, raw: r.consumed_since(start) })
    }
}

/// Why a KeyPackage is refused (§10.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum KeyPackageError {
    /// Protocol version is not mls10 or differs from the group's.
    WrongVersion,
    /// Cipher suite differs from the group's.
    WrongCipherSuite,
    /// The leaf's source is not `key_package`.
    WrongLeafSource,
    /// `now` is outside the leaf's lifetime.
    Expired,
    /// The lifetime is longer than the application allows.
    LifetimeTooLong,
    /// `init_key` equals the leaf's `encryption_key`.
    InitKeyReused,
    /// A key has the wrong length for the suite, or the init key or the
    /// leaf's encryption key is not one a DH can use (a point of small
    /// order, or not on the curve: RFC 9180 §7.1.4).
    InvalidKey,
    /// The KeyPackage signature does not verify.
    InvalidSignature,
    /// The leaf's signature does not verify.
    InvalidLeafSignature,
    /// A leaf extension is not listed in the leaf's capabilities (§7.3).
    UnsupportedExtension,
    /// The leaf's credential type is not listed in its capabilities (§7.2).
    UnsupportedCredential,
    /// The group's cipher suite or version is not in the leaf's capabilities.
    UnsupportedCapabilities,
    /// The same extension type appears twice.
    DuplicateExtension,
    /// A cryptographic operation failed.
    Crypto(CryptoError),
}

impl core::fmt::Display for KeyPackageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::WrongVersion => f.write_str("KeyPackage protocol version is not mls10 or not the group's"),
            Self::WrongCipherSuite => f.write_str("KeyPackage cipher suite differs from the group's"),
            Self::WrongLeafSource => f.write_str("KeyPackage leaf source is not key_package"),
            Self::Expired => f.write_str("KeyPackage outside its lifetime"),
            Self::LifetimeTooLong => f.write_str("KeyPackage lifetime longer than the application allows"),
            Self::InitKeyReused => f.write_str("KeyPackage init_key equals its encryption_key"),
            Self::InvalidKey => f.write_str("KeyPackage key of the wrong length for the cipher suite, or not a usable point"),
            Self::InvalidSignature => f.write_str("KeyPackage signature does not verify"),
            Self::InvalidLeafSignature => f.write_str("KeyPackage leaf signature does not verify"),
            Self::UnsupportedExtension => f.write_str("KeyPackage leaf extension not in its capabilities"),
            Self::UnsupportedCredential => f.write_str("KeyPackage credential type not in its capabilities"),
            Self::UnsupportedCapabilities => f.write_str("KeyPackage capabilities lack the group's cipher suite or version"),
            Self::DuplicateExtension => f.write_str("KeyPackage extension type listed twice"),
            Self::Crypto(e) => write!(f, "KeyPackage: {e}"),
        }
    }
}

impl core::error::Error for KeyPackageError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Crypto(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CryptoError> for KeyPackageError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}

impl<'a> KeyPackage<'a> {
    /// The KeyPackage's encoding as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// `MakeKeyPackageRef` of this KeyPackage (§5.2).
    pub fn reference(&self, suite: CipherSuite) -> Result<HashValue, CryptoError> {
        make_key_package_ref(suite, self.raw)
    }

    /// Checks §10.1 for a group of `suite` at time `now` (seconds since the
    /// Unix epoch), with lifetimes capped at `max_lifetime` seconds.
    pub fn validate(&self, suite: CipherSuite, now: u64, max_lifetime: u64) -> Result<(), KeyPackageError> {
        self.validate_except_signatures(suite, now, max_lifetime)?;
        self.verify_signatures(suite)
    }

    /// The two signatures of [`Self::validate`]: its leaf's (§7.2) and its
    /// own (§10.1), by the leaf's signature key.
    pub(crate) fn verify_signatures(&self, suite: CipherSuite) -> Result<(), KeyPackageError> {
        self.tbs.leaf_node.verify_signature(suite, None).map_err(|e| match e {
            LeafNodeError::InvalidKey => KeyPackageError::InvalidKey,
            _ => KeyPackageError::InvalidLeafSignature,
        })?;
        let key = SignaturePublicKey::for_suite(suite, self.tbs.leaf_node.fields.signature_key)
            .map_err(|_| KeyPackageError::InvalidKey)?;
        verify_with_label_parts(suite, &key, b"KeyPackageTBS", &[self.tbs_bytes], self.signature)
            .map_err(|_| KeyPackageError::InvalidSignature)
    }

    /// Hands `sink` signature `i` of the KeyPackage (0: its leaf's, 1: its
    /// own) for a batch check of an Ed25519 suite; false if the single
    /// check would refuse its encodings ([`crate::crypto::signature::ed25519::hand_to_batch`]).
    #[cfg(all(feature = "_ed25519", not(feature = "engine")))]
    pub(crate) fn hand_signature_to_batch(&self, i: usize, sink: &mut dyn FnMut(crate::executor::Ed25519Check<'_>)) -> bool {
        use crate::crypto::signature::ed25519::hand_to_batch;
        let leaf = &self.tbs.leaf_node;
        let key = leaf.fields.signature_key;
        let handed = match i {
            0 => leaf.with_signed_content(None, |m| hand_to_batch(key, leaf.signature, m, sink)).ok(),
            _ => crate::crypto::labeled::with_sign_content(b"KeyPackageTBS", &[self.tbs_bytes], |m| {
                hand_to_batch(key, self.signature, m, sink)
            })
            .ok(),
        };
        handed == Some(true)
    }

    /// [`Self::validate`] but its two signatures, which the caller had
    /// checked in a batch.
    pub(crate) fn validate_except_signatures(&self, suite: CipherSuite, now: u64, max_lifetime: u64) -> Result<(), KeyPackageError> {
        let tbs = &self.tbs;
        if tbs.version != PROTOCOL_VERSION_MLS10 {
            return Err(KeyPackageError::WrongVersion);
        }
        if tbs.cipher_suite != suite.to_u16() {
            return Err(KeyPackageError::WrongCipherSuite);
        }
        let leaf = &tbs.leaf_node.fields;
        let LeafNodeSource::KeyPackage(lifetime) = leaf.source else {
            return Err(KeyPackageError::WrongLeafSource);
        };
        if lifetime.not_after.saturating_sub(lifetime.not_before) > max_lifetime {
            return Err(KeyPackageError::LifetimeTooLong);
        }
        if !lifetime.contains(now) {
            return Err(KeyPackageError::Expired);
        }
        if tbs.init_key == leaf.encryption_key {
            return Err(KeyPackageError::InitKeyReused);
        }
        let caps = &leaf.capabilities;
        if !caps.versions.contains(PROTOCOL_VERSION_MLS10) || !caps.cipher_suites.contains(suite.to_u16()) {
            return Err(KeyPackageError::UnsupportedCapabilities);
        }
        if !caps.credentials.contains(leaf.credential.credential_type()) {
            return Err(KeyPackageError::UnsupportedCredential);
        }
        for ext in [leaf.extensions, tbs.extensions] {
            if ext.has_duplicates() {
                return Err(KeyPackageError::DuplicateExtension);
            }
        }
        if leaf
            .extensions
            .iter()
            .any(|e| !DEFAULT_EXTENSION_TYPES.contains(&e.extension_type) && !caps.extensions.contains(e.extension_type))
        {
            return Err(KeyPackageError::UnsupportedExtension);
        }
        // Of the suite's length (§5.1.1) and usable (RFC 9180 §7.1.4): every
        // Commit that adds it seals a Welcome to the one, and every
        // UpdatePath over the new leaf to the other (§12.4, §7.6).
        if crate::crypto::hpke::HpkePublicKey::for_suite(suite, tbs.init_key).is_err()
            || crate::crypto::hpke::HpkePublicKey::for_suite(suite, leaf.encryption_key).is_err()
        {
            return Err(KeyPackageError::InvalidKey);
        }
        Ok(())
    }

    /// Writes a signed KeyPackage for `tbs` into `out`; returns its encoding.
    pub fn sign_into<'o>(
        suite: CipherSuite,
        tbs: &KeyPackageTbs<'_>,
        key: &impl Signer,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], KeyPackageBuildError> {
        let mut w = Writer::new(out);
        tbs.encode(&mut w)?;
        let sig = sign_with_label_parts(suite, key, b"KeyPackageTBS", &[w.written()])?;
        w.write_opaque(&sig)?;
        let n = w.len();
        out.get(..n).ok_or(KeyPackageBuildError::Codec(CodecError::BufferTooSmall { needed: n }))
    }
}

/// Why a KeyPackage could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum KeyPackageBuildError {
    /// The output buffer is too small (or a field too long).
    Codec(CodecError),
    /// Signing failed.
    Crypto(CryptoError),
}

impl core::fmt::Display for KeyPackageBuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Codec(e) => write!(f, "writing the KeyPackage: {e}"),
            Self::Crypto(e) => write!(f, "signing the KeyPackage: {e}"),
        }
    }
}

impl core::error::Error for KeyPackageBuildError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Codec(e) => Some(e),
            Self::Crypto(e) => Some(e),
        }
    }
}

impl From<CodecError> for KeyPackageBuildError {
    fn from(e: CodecError) -> Self {
        Self::Codec(e)
    }
}

impl From<CryptoError> for KeyPackageBuildError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}

/// The private keys behind a KeyPackage (§10): the HPKE `init_key` and the
/// leaf's `encryption_key`. Zeroized on drop.
#[derive(Clone, Debug)]
pub struct KeyPackagePrivateKeys {
    /// Private key of `init_key` (used once, by the Welcome).
    pub init_key: crate::crypto::hpke::HpkePrivateKey,
    /// Private key of the leaf's `encryption_key`.
    pub encryption_key: crate::crypto::hpke::HpkePrivateKey,
}

/// What a new KeyPackage says about its client.
#[derive(Clone, Copy, Debug)]
pub struct KeyPackageParams<'a> {
    /// The group's cipher suite.
    pub suite: CipherSuite,
    /// The client's credential.
    pub credential: crate::credential::Credential<'a>,
    /// Validity (seconds since the Unix epoch).
    pub lifetime: crate::leaf_node::Lifetime,
    /// Extensions of the leaf.
    pub leaf_extensions: Extensions<'a>,
    /// Extensions of the KeyPackage (e.g. `last_resort`).
    pub extensions: Extensions<'a>,
    /// Non-default extension types the client supports (§7.2).
    pub supported_extensions: crate::extensions::U16List<'a>,
    /// Non-default proposal types the client supports (§7.2).
    pub supported_proposals: crate::extensions::U16List<'a>,
}

impl<'a> KeyPackageParams<'a> {
    /// A KeyPackage of `suite` for `credential`, valid for `lifetime`, with
    /// no extensions and only the default extension and proposal types.
    pub fn new(suite: CipherSuite, credential: crate::credential::Credential<'a>, lifetime: crate::leaf_node::Lifetime) -> Self {
        Self {
            suite,
            credential,
            lifetime,
            leaf_extensions: Extensions::default(),
            extensions: Extensions::default(),
            supported_extensions: crate::extensions::U16List::default(),
            supported_proposals: crate::extensions::U16List::default(),
        }
    }
}

/// A GREASE value (§13.5): one of `0x0A0A`, `0x1A1A`, ..., `0xEAEA`, chosen by `rng`.
fn grease(rng: &mut impl rand_core::CryptoRng) -> [u8; 2] {
    let mut b = [0u8; 1];
    rng.fill_bytes(&mut b);
    let [x] = b;
    let n = ((x % 15) << 4) | 0x0a;
    [n, n]
}

impl KeyPackage<'_> {
    /// Generates a KeyPackage (§10): fresh init and leaf keys from `rng`,
    /// capabilities listing mls10, the suite, basic and x509 credentials, the
    /// given extension and proposal types, and GREASE values (§13.5);
    /// signed with `signer`. Returns its encoding (in `out`) and the private
    /// keys, which the caller keeps in its key store.
    pub fn generate<'o>(
        params: &KeyPackageParams<'_>,
        signer: &impl Signer,
        rng: &mut impl rand_core::CryptoRng,
        out: &'o mut [u8],
    ) -> Result<(&'o [u8], KeyPackagePrivateKeys), KeyPackageBuildError> {
        Self::generate_inner(params, [None, None], signer, rng, out)
    }

    /// [`Self::generate`] with keys a crypto engine holds
    /// ([`crate::crypto::hpke::HpkePrivateKey::held`]: a secure element made
    /// the pair and keeps it): the init key (the Welcome is decapsulated in
    /// the element), the leaf's encryption key (UpdatePaths to this leaf
    /// are, until the member's first Commit with a path or Update replaces
    /// it with a key derived in software), or both; `None` makes that key
    /// from `rng`. Fails with [`CryptoError::InvalidKey`] on a given key
    /// that is not held.
    #[cfg(feature = "engine")]
    pub fn generate_with_held_keys<'o>(
        params: &KeyPackageParams<'_>,
        init_key: Option<crate::crypto::hpke::HpkePrivateKey>,
        encryption_key: Option<crate::crypto::hpke::HpkePrivateKey>,
        signer: &impl Signer,
        rng: &mut impl rand_core::CryptoRng,
        out: &'o mut [u8],
    ) -> Result<(&'o [u8], KeyPackagePrivateKeys), KeyPackageBuildError> {
        if [&init_key, &encryption_key].into_iter().flatten().any(|k| !k.is_held()) {
            return Err(KeyPackageBuildError::Crypto(CryptoError::InvalidKey));
        }
        Self::generate_inner(params, [init_key, encryption_key], signer, rng, out)
    }

    /// `keys`: the init and encryption keys given (held), or `None` for
    /// one made from `rng`.
    fn generate_inner<'o>(
        params: &KeyPackageParams<'_>,
        keys: [Option<crate::crypto::hpke::HpkePrivateKey>; 2],
        signer: &impl Signer,
        rng: &mut impl rand_core::CryptoRng,
        out: &'o mut [u8],
    ) -> Result<(&'o [u8], KeyPackagePrivateKeys), KeyPackageBuildError> {
        use crate::crypto::hpke::derive_key_pair;
        use crate::extensions::U16List;
        use crate::leaf_node::{Capabilities, LeafNodeFields};
        let suite = params.suite;
        let mut ikm = crate::crypto::Secret::zero(suite.hash_len())?;
        let [init, enc] = keys.map(|given| match given {
            Some(k) => {
                let pk = k.public_key(suite);
                Ok((k, pk))
            }
            None => {
                rng.fill_bytes(ikm.as_mut_bytes());
                derive_key_pair(suite, ikm.as_bytes())
            }
        });
        let ((init_sk, init_pk), (enc_sk, enc_pk)) = (init?, enc?);
        let sig_pk = signer.public_key();

        let s = suite.to_u16().to_be_bytes();
        let [g1, g2, g3] = [grease(rng), grease(rng), grease(rng)];
        let versions = [0u8, 1];
        let suites = [s[0], s[1], g1[0], g1[1]];
        let credentials = [0u8, 1, 0, 2, g2[0], g2[1]];
        // Listed types plus one GREASE value each, in caller-independent buffers.
        let mut ext_buf = [0u8; 66];
        let mut prop_buf = [0u8; 66];
        let ext = with_grease(params.supported_extensions, g3, &mut ext_buf)?;
        let props = with_grease(params.supported_proposals, g3, &mut prop_buf)?;
        let capabilities = Capabilities {
            versions: U16List::from_body(&versions)?,
            cipher_suites: U16List::from_body(&suites)?,
            extensions: ext,
            proposals: props,
            credentials: U16List::from_body(&credentials)?,
        };
        let fields = LeafNodeFields {
            encryption_key: enc_pk.as_bytes(),
            signature_key: sig_pk.as_bytes(),
            credential: params.credential,
            capabilities,
            source: crate::leaf_node::LeafNodeSource::KeyPackage(params.lifetime),
            extensions: params.leaf_extensions,
        };
        // The leaf is written first, after room for the KeyPackage header,
        // then the KeyPackage around it.
        let mut leaf_buf = [0u8; 2048];
        let leaf_len = LeafNode::sign_into(suite, &fields, None, signer, &mut leaf_buf)
            .map_err(|e| match e.in_own_buffer() {
                LeafNodeError::Codec(c) => KeyPackageBuildError::Codec(c),
                LeafNodeError::Crypto(c) => KeyPackageBuildError::Crypto(c),
                // A key of the wrong length (a context is not needed here).
                _ => KeyPackageBuildError::Crypto(CryptoError::InvalidKey),
            })?
            .len();
        let leaf_node = LeafNode::decode_exact(leaf_buf.get(..leaf_len).ok_or(CodecError::BufferTooSmall { needed: leaf_len })?)?;
        let tbs = KeyPackageTbs {
            version: PROTOCOL_VERSION_MLS10,
            cipher_suite: suite.to_u16(),
            init_key: init_pk.as_bytes(),
            leaf_node,
            extensions: params.extensions,
        };
        let encoded = KeyPackage::sign_into(suite, &tbs, signer, out)?;
        Ok((encoded, KeyPackagePrivateKeys { init_key: init_sk, encryption_key: enc_sk }))
    }
}

/// `types` followed by one GREASE value, written into `buf`.
fn with_grease<'b>(
    types: crate::extensions::U16List<'_>,
    grease: [u8; 2],
    buf: &'b mut [u8],
) -> Result<crate::extensions::U16List<'b>, CodecError> {
    let mut n = 0usize;
    let full = CodecError::CapacityExceeded(crate::capacity::Capacity::Container(buf.len() / 2));
    for t in types.iter().chain(core::iter::once(u16::from_be_bytes(grease))) {
        buf.get_mut(n..n + 2).ok_or(full)?.copy_from_slice(&t.to_be_bytes());
        n += 2;
    }
    crate::extensions::U16List::from_body(buf.get(..n).ok_or(full)?)
}
