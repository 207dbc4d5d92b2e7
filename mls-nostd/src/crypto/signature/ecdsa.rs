//! ECDSA over P-256, P-384 and P-521 with the suite's hash (RFC 9420 §5.1.2:
//! DER-encoded signatures), generic over RustCrypto's curve crates. Signing
//! is deterministic (RFC 6979); verification takes strict DER only.
//!
//! The DER of `Ecdsa-Sig-Value` (RFC 3279 §2.2.3: a SEQUENCE of two
//! INTEGERs) is written and read here, not with the `der` crate: its generic
//! decoder and the OIDs it pulls cost about 5 KiB of flash on a Cortex-M4.

use crate::crypto::CryptoError;
use crate::crypto::nist::{self, NistCurve};
use ecdsa::DigestAlgorithm;
use ecdsa::elliptic_curve::ops::Invert;
use ecdsa::elliptic_curve::sec1::ModulusSize;
use ecdsa::elliptic_curve::{FieldBytes, FieldBytesSize, Scalar};
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
{
}

impl<C> EcdsaNist for C
where
    C: NistCurve + EcdsaCurve + DigestAlgorithm,
    FieldBytesSize<C>: ModulusSize,
    Scalar<C>: Invert<Output = CtOption<Scalar<C>>>,
{
}

/// DER tags of `Ecdsa-Sig-Value`.
const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;

/// Appends `b` at `*at` in `out`.
fn put(out: &mut [u8], at: &mut usize, b: &[u8]) -> Result<(), CryptoError> {
    let end = *at + b.len();
    out.get_mut(*at..end).ok_or(CryptoError::InvalidLength)?.copy_from_slice(b);
    *at = end;
    Ok(())
}

/// A DER length: one byte below 128, else `0x81` and one byte (the
/// longest here, P-521's sequence, is 138 bytes).
fn put_len(out: &mut [u8], at: &mut usize, len: usize) -> Result<(), CryptoError> {
    let len = u8::try_from(len).map_err(|_| CryptoError::InvalidLength)?;
    if len < 0x80 { put(out, at, &[len]) } else { put(out, at, &[0x81, len]) }
}

/// The minimal INTEGER content of the unsigned big-endian `v`: no leading
/// zero bytes, one `0x00` first if the top bit is set. (prefix, digits).
fn int_parts(v: &[u8]) -> (&'static [u8], &[u8]) {
    let start = v.iter().position(|b| *b != 0).unwrap_or(v.len().saturating_sub(1));
    let digits = v.get(start..).unwrap_or(&[]);
    let prefix: &'static [u8] = if digits.first().is_some_and(|b| b & 0x80 != 0) { &[0] } else { &[] };
    (prefix, digits)
}

/// Writes `Ecdsa-Sig-Value` in DER; returns its length.
fn encode_der<C: EcdsaNist>(sig: &Signature<C>, out: &mut [u8]) -> Result<usize, CryptoError>
where
    FieldBytesSize<C>: ModulusSize,
    Scalar<C>: Invert<Output = CtOption<Scalar<C>>>,
{
    let (r, s) = sig.split_bytes();
    let (r, s) = (int_parts(&r), int_parts(&s));
    let int_len = |(p, d): (&[u8], &[u8])| 2 + p.len() + d.len();
    let mut at = 0;
    put(out, &mut at, &[SEQUENCE])?;
    put_len(out, &mut at, int_len(r) + int_len(s))?;
    for (prefix, digits) in [r, s] {
        put(out, &mut at, &[INTEGER])?;
        put_len(out, &mut at, prefix.len() + digits.len())?;
        put(out, &mut at, prefix)?;
        put(out, &mut at, digits)?;
    }
    Ok(at)
}

/// A strict DER reader over a signature.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CryptoError> {
        if n > self.0.len() {
            return Err(CryptoError::InvalidSignature);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, CryptoError> {
        self.take(1)?.first().copied().ok_or(CryptoError::InvalidSignature)
    }

    /// A tag, then a length in its one DER form.
    fn header(&mut self, tag: u8) -> Result<usize, CryptoError> {
        if self.byte()? != tag {
            return Err(CryptoError::InvalidSignature);
        }
        match self.byte()? {
            n if n < 0x80 => Ok(usize::from(n)),
            0x81 => match self.byte()? {
                n if n >= 0x80 => Ok(usize::from(n)),
                _ => Err(CryptoError::InvalidSignature),
            },
            _ => Err(CryptoError::InvalidSignature),
        }
    }

    /// A minimal, non-negative INTEGER, left-padded to the field's size
    /// (longer values are refused; the range is checked by the caller).
    fn integer<C: EcdsaNist>(&mut self) -> Result<FieldBytes<C>, CryptoError>
    where
        FieldBytesSize<C>: ModulusSize,
        Scalar<C>: Invert<Output = CtOption<Scalar<C>>>,
    {
        let len = self.header(INTEGER)?;
        let v = self.take(len)?;
        let digits = match v {
            [] => return Err(CryptoError::InvalidSignature),
            [b, ..] if b & 0x80 != 0 => return Err(CryptoError::InvalidSignature),
            [0, next, ..] if next & 0x80 == 0 => return Err(CryptoError::InvalidSignature),
            [0, rest @ ..] if !rest.is_empty() => rest,
            _ => v,
        };
        let mut out = FieldBytes::<C>::default();
        let start = out.len().checked_sub(digits.len()).ok_or(CryptoError::InvalidSignature)?;
        out.get_mut(start..).ok_or(CryptoError::InvalidSignature)?.copy_from_slice(digits);
        Ok(out)
    }
}

/// Reads `Ecdsa-Sig-Value` in strict DER (one encoding per signature:
/// minimal lengths and integers, nothing after the sequence); `r` and `s`
/// must be in `[1, n - 1]`.
fn decode_der<C: EcdsaNist>(bytes: &[u8]) -> Result<Signature<C>, CryptoError>
where
    FieldBytesSize<C>: ModulusSize,
    Scalar<C>: Invert<Output = CtOption<Scalar<C>>>,
{
    let mut outer = Der(bytes);
    let len = outer.header(SEQUENCE)?;
    let mut inner = Der(outer.take(len)?);
    if !outer.0.is_empty() {
        return Err(CryptoError::InvalidSignature);
    }
    let r = inner.integer::<C>()?;
    let s = inner.integer::<C>()?;
    if !inner.0.is_empty() {
        return Err(CryptoError::InvalidSignature);
    }
    Signature::<C>::from_scalars(r, s).map_err(|_| CryptoError::InvalidSignature)
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
{
    let mut d = nist::secret::<C>(sk)?.to_nonzero_scalar();
    let mut h = <C as DigestAlgorithm>::Digest::new();
    for p in parts {
        Digest::update(&mut h, p);
    }
    let z = h.finalize();
    let (sig, _) = sign_prehashed_rfc6979::<C, <C as DigestAlgorithm>::Digest>(&d, &z, &[]);
    d.zeroize();
    encode_der(&sig, out)
}

/// Verifies a DER signature over the concatenation of `parts`.
pub(crate) fn verify<C: EcdsaNist>(pk: &[u8], parts: &[&[u8]], signature: &[u8]) -> Result<(), CryptoError>
where
    FieldBytesSize<C>: ModulusSize,
    Scalar<C>: Invert<Output = CtOption<Scalar<C>>>,
{
    let key = VerifyingKey::<C>::from(nist::parse_public::<C>(pk)?);
    let sig = decode_der::<C>(signature)?;
    key.multipart_verify(parts, &sig).map_err(|_| CryptoError::InvalidSignature)
}
