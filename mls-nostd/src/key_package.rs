//! KeyPackages (RFC 9420 §10) and their validation (§10.1, with the
//! group-independent checks of §7.3 on their leaf).

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::crypto::labeled::{make_key_package_ref, sign_with_label_parts, verify_with_label_parts};
use crate::crypto::signature::{SignaturePrivateKey, SignaturePublicKey};
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
    /// A key has the wrong length for the suite.
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
        if crate::crypto::hpke::HpkePublicKey::from_slice(tbs.init_key).is_err()
            || crate::crypto::hpke::HpkePublicKey::from_slice(leaf.encryption_key).is_err()
        {
            return Err(KeyPackageError::InvalidKey);
        }
        tbs.leaf_node.verify_signature(suite, None).map_err(|e| match e {
            LeafNodeError::InvalidKey => KeyPackageError::InvalidKey,
            _ => KeyPackageError::InvalidLeafSignature,
        })?;
        let key = SignaturePublicKey::from_slice(leaf.signature_key).map_err(|_| KeyPackageError::InvalidKey)?;
        verify_with_label_parts(suite, &key, b"KeyPackageTBS", &[self.tbs_bytes], self.signature)
            .map_err(|_| KeyPackageError::InvalidSignature)
    }

    /// Writes a signed KeyPackage for `tbs` into `out`; returns its encoding.
    pub fn sign_into<'o>(
        suite: CipherSuite,
        tbs: &KeyPackageTbs<'_>,
        key: &SignaturePrivateKey,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], KeyPackageBuildError> {
        let mut w = Writer::new(out);
        tbs.encode(&mut w)?;
        let sig = sign_with_label_parts(suite, key, b"KeyPackageTBS", &[w.written()])?;
        w.write_opaque(&sig)?;
        let n = w.len();
        out.get(..n).ok_or(KeyPackageBuildError::Codec(CodecError::BufferTooSmall))
    }
}

/// Why a KeyPackage could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPackageBuildError {
    /// The output buffer is too small (or a field too long).
    Codec(CodecError),
    /// Signing failed.
    Crypto(CryptoError),
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
