//! Who signs for a member: the seam that lets a signature key live in a
//! secure element (RFC 9420 §5.1.2 `SignWithLabel` needs only `Sign`).
//!
//! Everything the core signs (LeafNodes, KeyPackages, FramedContent,
//! GroupInfo) goes through [`Signer::sign`], so a member whose key stays in
//! a secure element (ATECC608, SE050, CryptoCell, a TPM) plugs in a handle
//! type that forwards `sign` to the device; the core never asks for the key.
//! [`SignaturePrivateKey`] is the signer whose key is in memory, and the
//! default everywhere. Dispatch is static: a [`crate::group::Group`] is
//! generic over its signer, so the default build pays nothing for the seam.

use super::CipherSuite;
use super::CryptoError;
use super::signature::{Signature, SignaturePrivateKey, SignaturePublicKey};

/// Signs with one signature key of a member.
///
/// `sign` takes `&self`: a handle to a shared device keeps its bus behind
/// interior mutability (a critical-section mutex on firmware).
pub trait Signer: Clone {
    /// A signer that holds no key: it fills empty group slots
    /// ([`crate::group::Group::EMPTY`]), and signing with it fails. Make it
    /// all zero bytes, so that an empty group is too (and costs no flash).
    const NONE: Self;

    /// The public key, as it appears in LeafNodes and KeyPackages.
    fn public_key(&self) -> SignaturePublicKey;

    /// `Signature.Sign` of `suite`'s scheme over the concatenation of
    /// `message_parts` (RFC 9420 §5.1.2: the parts are already the encoded
    /// `SignContent`), encoded as the suite requires (EdDSA `R || S`, ECDSA
    /// DER: RFC 8446 §4.2.3). A secure element that signs a digest hashes
    /// the parts with the scheme's hash first.
    fn sign(&self, suite: CipherSuite, message_parts: &[&[u8]]) -> Result<Signature, CryptoError>;

    /// What a store keeps of this signer so that a reboot finds it again. A
    /// key in memory stores itself, as the group's other secrets are stored;
    /// a key in a secure element stores its slot or handle, never the key.
    fn stored_form(&self) -> &[u8];

    /// The signer whose [`Self::stored_form`] is `stored`, for `suite`.
    fn from_stored_form(suite: CipherSuite, stored: &[u8]) -> Result<Self, CryptoError>;
}

impl Signer for SignaturePrivateKey {
    const NONE: Self = SignaturePrivateKey::ZERO;

    fn public_key(&self) -> SignaturePublicKey {
        SignaturePrivateKey::public_key(self)
    }

    fn sign(&self, suite: CipherSuite, message_parts: &[&[u8]]) -> Result<Signature, CryptoError> {
        SignaturePrivateKey::sign(self, suite, message_parts)
    }

    fn stored_form(&self) -> &[u8] {
        self.as_bytes()
    }

    fn from_stored_form(suite: CipherSuite, stored: &[u8]) -> Result<Self, CryptoError> {
        SignaturePrivateKey::from_slice(suite, stored)
    }
}
