//! ECDSA over P-256, P-384 and P-521 with the suite's hash (RFC 9420 §5.1.2:
//! DER-encoded signatures), generic over RustCrypto's curve crates. Signing
//! is deterministic (RFC 6979); verification takes strict DER only.

use crate::crypto::CryptoError;
use crate::crypto::nist::{self, NistCurve};
use core::ops::Add;
use ecdsa::elliptic_curve::array::ArraySize;
use ecdsa::elliptic_curve::ops::Invert;
use ecdsa::elliptic_curve::sec1::ModulusSize;
use ecdsa::elliptic_curve::{FieldBytesSize, Scalar};
use ecdsa::DigestAlgorithm;
use ecdsa::hazmat::sign_prehashed_rfc6979;
use ecdsa::signature::MultipartVerifier;
use ecdsa::signature::digest::Digest;
use ecdsa::{EcdsaCurve, Signature, VerifyingKey};
use subtle::CtOption;
use zeroize::Zeroize;

/// The bounds of the curves ECDSA is used with here.
pub(crate) trait EcdsaNist: NistCurve + EcdsaCurve + DigestAlgorithm
where
    FieldBytesSize<Self>: ModulusSize,
    Scalar<Self>: Invert<Output = CtOption<Scalar<Self>>>,
    ecdsa::der::MaxSize<Self>: ArraySize,
    <FieldBytesSize<Self> as Add>::Output: Add<ecdsa::der::MaxOverhead> + ArraySize,
{
}

impl<C> EcdsaNist for C
where
    C: NistCurve + EcdsaCurve + DigestAlgorithm,
    FieldBytesSize<C>: ModulusSize,
    Scalar<C>: Invert<Output = CtOption<Scalar<C>>>,
    ecdsa::der::MaxSize<C>: ArraySize,
    <FieldBytesSize<C> as Add>::Output: Add<ecdsa::der::MaxOverhead> + ArraySize,
{
}

/// Signs the concatenation of `parts` (hashed piece by piece); writes the
/// DER signature into `out` and returns its length. RFC 6979's nonce, as
/// `ecdsa::SigningKey` signs, but from the scalar alone: a `SigningKey` also
/// computes its public key, one more scalar multiplication per signature
/// (on a Cortex-M4 that doubled the cost of a P-256 signature).
pub(crate) fn sign<C: EcdsaNist>(sk: &[u8], parts: &[&[u8]], out: &mut [u8]) -> Result<usize, CryptoError>
where
    FieldBytesSize<C>: ModulusSize,
    Scalar<C>: Invert<Output = CtOption<Scalar<C>>>,
    ecdsa::der::MaxSize<C>: ArraySize,
    <FieldBytesSize<C> as Add>::Output: Add<ecdsa::der::MaxOverhead> + ArraySize,
{
    let mut d = nist::secret::<C>(sk)?.to_nonzero_scalar();
    let mut h = <C as DigestAlgorithm>::Digest::new();
    for p in parts {
        Digest::update(&mut h, p);
    }
    let z = h.finalize();
    let (sig, _) = sign_prehashed_rfc6979::<C, <C as DigestAlgorithm>::Digest>(&d, &z, &[]);
    d.zeroize();
    let der = sig.to_der();
    let bytes = der.as_bytes();
    out.get_mut(..bytes.len()).ok_or(CryptoError::InvalidLength)?.copy_from_slice(bytes);
    Ok(bytes.len())
}

/// Verifies a DER signature over the concatenation of `parts`.
pub(crate) fn verify<C: EcdsaNist>(pk: &[u8], parts: &[&[u8]], signature: &[u8]) -> Result<(), CryptoError>
where
    FieldBytesSize<C>: ModulusSize,
    Scalar<C>: Invert<Output = CtOption<Scalar<C>>>,
    ecdsa::der::MaxSize<C>: ArraySize,
    <FieldBytesSize<C> as Add>::Output: Add<ecdsa::der::MaxOverhead> + ArraySize,
{
    let key = VerifyingKey::<C>::from(nist::parse_public::<C>(pk)?);
    let sig = Signature::<C>::from_der(signature).map_err(|_| CryptoError::InvalidSignature)?;
    // Strict DER: only the one encoding of (r, s) is accepted.
    if sig.to_der().as_bytes() != signature {
        return Err(CryptoError::InvalidSignature);
    }
    key.multipart_verify(parts, &sig).map_err(|_| CryptoError::InvalidSignature)
}
