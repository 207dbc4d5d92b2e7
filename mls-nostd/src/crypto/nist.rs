//! P-256, P-384 and P-521 keys, generic over RustCrypto's curve crates
//! (`p256`, `p384`, `p521`): ECDH for DHKEM (RFC 9180 §7.1) and the key
//! encodings ECDSA shares (RFC 9420 §5.1.1: uncompressed points).

use crate::crypto::CryptoError;
use elliptic_curve::sec1::{FromSec1Point, ModulusSize, ToSec1Point};
use elliptic_curve::group::{Curve as _, Group as _};
use elliptic_curve::point::AffineCoordinates;
use elliptic_curve::{AffinePoint, CurveArithmetic, FieldBytes, FieldBytesSize, PublicKey, SecretKey};

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
    // Written from the coordinates: `to_sec1_point` would link sec1's and
    // der's error formatting (about 1.6 KiB of Cortex-M4 flash).
    let point = secret::<C>(sk)?.public_key();
    let (x, y) = (point.as_affine().x(), point.as_affine().y());
    let (tag, xy) = out.split_first_mut().ok_or(CryptoError::InvalidKey)?;
    if xy.len() != x.len() + y.len() {
        return Err(CryptoError::InvalidKey);
    }
    *tag = 0x04;
    let (ox, oy) = xy.split_at_mut(x.len());
    ox.copy_from_slice(&x);
    oy.copy_from_slice(&y);
    Ok(())
}

/// A public key: only the uncompressed form (`0x04 || x || y`, RFC 9180
/// §7.1.1, RFC 9420 §5.1.1), `x` and `y` below p, on the curve, not the
/// identity. Read from the coordinates, not with `from_sec1_bytes`, whose
/// other forms (point decompression) cost about 3 KiB of Cortex-M4 flash.
pub(crate) fn parse_public<C: NistCurve>(pk: &[u8]) -> Result<PublicKey<C>, CryptoError>
where
    FieldBytesSize<C>: ModulusSize,
{
    let xy = pk.strip_prefix(&[0x04]).ok_or(CryptoError::InvalidKey)?;
    let n = FieldBytes::<C>::default().len();
    if xy.len() != 2 * n {
        return Err(CryptoError::InvalidKey);
    }
    let (x, y) = xy.split_at(n);
    let x = FieldBytes::<C>::try_from(x).map_err(|_| CryptoError::InvalidKey)?;
    let y = FieldBytes::<C>::try_from(y).map_err(|_| CryptoError::InvalidKey)?;
    let point = Option::<AffinePoint<C>>::from(AffinePoint::<C>::from_coordinates(&x, &y)).ok_or(CryptoError::InvalidKey)?;
    PublicKey::<C>::from_affine(point).map_err(|_| CryptoError::InvalidKey)
}

/// The x-coordinate of `sk * pk` (`Ndh` = `Nsk` bytes).
pub(crate) fn dh<C: NistCurve>(sk: &[u8], pk: &[u8], out: &mut [u8]) -> Result<(), CryptoError>
where
    FieldBytesSize<C>: ModulusSize,
{
    let pk = parse_public::<C>(pk)?;
    let sk = secret::<C>(sk)?;
    let shared = pk.to_projective() * *sk.to_nonzero_scalar();
    // The product of a valid point and a non-zero scalar is never the
    // identity on these prime-order curves; checked all the same.
    if bool::from(shared.is_identity()) {
        return Err(CryptoError::InvalidSharedSecret);
    }
    let x = shared.to_affine().x();
    out.get_mut(..).filter(|o| o.len() == x.len()).ok_or(CryptoError::InvalidKey)?.copy_from_slice(&x);
    Ok(())
}
