//! P-256, P-384 and P-521 keys, generic over RustCrypto's curve crates
//! (`p256`, `p384`, `p521`): ECDH for DHKEM (RFC 9180 §7.1) and the key
//! encodings ECDSA shares (RFC 9420 §5.1.1: uncompressed points).

use crate::crypto::CryptoError;
use elliptic_curve::sec1::{FromSec1Point, ModulusSize, ToSec1Point};
use elliptic_curve::group::Curve as _;
use elliptic_curve::{CurveArithmetic, FieldBytes, FieldBytesSize, PublicKey, SecretKey};

/// The bounds every NIST curve crate meets.
pub(crate) trait NistCurve: CurveArithmetic<AffinePoint: FromSec1Point<Self> + ToSec1Point<Self>>
where
    FieldBytesSize<Self>: ModulusSize,
{
}

impl<C> NistCurve for C
where
    C: CurveArithmetic<AffinePoint: FromSec1Point<C> + ToSec1Point<C>>,
    FieldBytesSize<C>: ModulusSize,
{
}

pub(crate) fn secret<C: NistCurve>(sk: &[u8]) -> Result<SecretKey<C>, CryptoError>
where
    FieldBytesSize<C>: ModulusSize,
{
    let bytes = <&FieldBytes<C>>::try_from(sk).map_err(|_| CryptoError::InvalidKey)?;
    SecretKey::<C>::from_bytes(bytes).map_err(|_| CryptoError::InvalidKey)
}

/// A scalar in `[1, order - 1]`, big-endian, of exactly `Nsk` bytes.
pub(crate) fn is_valid_private<C: NistCurve>(sk: &[u8]) -> bool
where
    FieldBytesSize<C>: ModulusSize,
{
    secret::<C>(sk).is_ok()
}

/// The uncompressed SEC1 encoding of `sk`'s public key.
pub(crate) fn public_key<C: NistCurve>(sk: &[u8], out: &mut [u8]) -> Result<(), CryptoError>
where
    FieldBytesSize<C>: ModulusSize,
{
    let point = secret::<C>(sk)?.public_key().as_affine().to_sec1_point(false);
    let bytes = point.as_bytes();
    out.get_mut(..).filter(|o| o.len() == bytes.len()).ok_or(CryptoError::InvalidKey)?.copy_from_slice(bytes);
    Ok(())
}

/// A public key: only the uncompressed form (`0x04 || x || y`, RFC 9180
/// §7.1.1), on the curve, not the identity.
pub(crate) fn parse_public<C: NistCurve>(pk: &[u8]) -> Result<PublicKey<C>, CryptoError>
where
    FieldBytesSize<C>: ModulusSize,
{
    if pk.first() != Some(&0x04) {
        return Err(CryptoError::InvalidKey);
    }
    PublicKey::<C>::from_sec1_bytes(pk).map_err(|_| CryptoError::InvalidKey)
}

/// The x-coordinate of `sk * pk` (`Ndh` = `Nsk` bytes).
pub(crate) fn dh<C: NistCurve>(sk: &[u8], pk: &[u8], out: &mut [u8]) -> Result<(), CryptoError>
where
    FieldBytesSize<C>: ModulusSize,
{
    let pk = parse_public::<C>(pk)?;
    let sk = secret::<C>(sk)?;
    let shared = (pk.to_projective() * *sk.to_nonzero_scalar()).to_affine().to_sec1_point(false);
    // The product of a valid point and a non-zero scalar is never the
    // identity on these prime-order curves; `x()` is `None` only for it.
    let x = shared.x().ok_or(CryptoError::InvalidSharedSecret)?;
    out.get_mut(..).filter(|o| o.len() == x.len()).ok_or(CryptoError::InvalidKey)?.copy_from_slice(x);
    Ok(())
}
