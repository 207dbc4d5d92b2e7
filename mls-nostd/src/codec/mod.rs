//! TLS presentation language codec with MLS variable-length vectors (RFC 9420 §2.1).
//!
//! Reading never copies: `opaque<V>` fields are borrowed from the input buffer.
//! Writing goes into a caller-provided slice, or into a counting [`Writer`] that
//! only measures. Every decoder returns a value or a [`CodecError`]; none panics
//! on any input, and no size computation can overflow (`usize` may be 32 bits).

mod list;

pub use list::ListView;

use heapless::Vec;

use crate::capacity::Capacity;

/// Largest value a variable-length integer may carry (§2.1.2: below 2^30).
pub const VARINT_MAX: u32 = (1 << 30) - 1;

/// Why an encoding could not be read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CodecError {
    /// The input ended before the structure did.
    Truncated,
    /// A variable-length integer used the reserved `0b11` prefix (§2.1.2).
    InvalidVarintPrefix,
    /// A variable-length integer was not in its shortest form (§2.1.2).
    NonMinimalVarint,
    /// A length does not fit the 30 bits of a variable-length integer.
    VarintTooLarge,
    /// More elements or bytes than a fixed capacity holds.
    CapacityExceeded(Capacity),
    /// Bytes remained after the structure (or vector element) ended.
    TrailingBytes,
    /// The output buffer is too small for the encoding: at least `needed`
    /// bytes are needed (the position of the write that did not fit plus its
    /// length; the rest of the encoding may need more).
    BufferTooSmall {
        /// Bytes the output needs at least.
        needed: usize,
    },
    /// A field held a value its type does not allow (e.g. an `optional` flag
    /// other than 0 or 1, or an unknown enum value where none is tolerated).
    InvalidValue,
}

impl core::fmt::Display for CodecError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated => f.write_str("input truncated"),
            Self::InvalidVarintPrefix => f.write_str("variable-length integer with reserved 0b11 prefix"),
            Self::NonMinimalVarint => f.write_str("variable-length integer not minimally encoded"),
            Self::VarintTooLarge => f.write_str("length too large for a variable-length integer (2^30 - 1 at most)"),
            Self::CapacityExceeded(c) => write!(f, "capacity exceeded: {c}"),
            Self::TrailingBytes => f.write_str("trailing bytes after structure"),
            Self::BufferTooSmall { needed } => write!(f, "output buffer too small: at least {needed} bytes needed"),
            Self::InvalidValue => f.write_str("invalid field value"),
        }
    }
}

impl core::error::Error for CodecError {}

impl CodecError {
    /// The same error for a writer that started `offset` bytes into the
    /// output: `BufferTooSmall` then counts from the output's start.
    #[must_use]
    pub const fn at_offset(self, offset: usize) -> Self {
        match self {
            Self::BufferTooSmall { needed } => Self::BufferTooSmall { needed: needed.saturating_add(offset) },
            other => other,
        }
    }
}

/// A cursor over an input buffer. Every read checks bounds.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from the start of `buf`.
    pub const fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not read yet.
    pub const fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    /// True when every byte has been read.
    pub const fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes read since the reader was at `start` (a previous
    /// [`Reader::remaining`]): the encoding of what was decoded in between.
    pub fn consumed_since(&self, start: &'a [u8]) -> &'a [u8] {
        let used = start.len().saturating_sub(self.buf.len());
        start.get(..used).unwrap_or(&[])
    }

    /// Fails with [`CodecError::TrailingBytes`] unless all input was read.
    pub fn finish(&self) -> Result<(), CodecError> {
        if self.buf.is_empty() { Ok(()) } else { Err(CodecError::TrailingBytes) }
    }

    /// Takes the next `n` bytes.
    pub fn read_bytes(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if n > self.buf.len() {
            return Err(CodecError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes the next `N` bytes as an array.
    pub fn read_array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let bytes = self.read_bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Reads a `uint8`.
    pub fn read_u8(&mut self) -> Result<u8, CodecError> {
        let [b] = self.read_array::<1>()?;
        Ok(b)
    }

    /// Reads a big-endian `uint16`.
    pub fn read_u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_be_bytes(self.read_array()?))
    }

    /// Reads a big-endian `uint32`.
    pub fn read_u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.read_array()?))
    }

    /// Reads a big-endian `uint64`.
    pub fn read_u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_be_bytes(self.read_array()?))
    }

    /// Reads an MLS variable-length integer (§2.1.2): 1, 2 or 4 bytes, minimal
    /// encoding, prefix `0b11` rejected.
    pub fn read_varint(&mut self) -> Result<u32, CodecError> {
        let first = *self.buf.first().ok_or(CodecError::Truncated)?;
        let (len, min) = match first >> 6 {
            0 => (1, 0),
            1 => (2, 1 << 6),
            2 => (4, 1 << 14),
            _ => return Err(CodecError::InvalidVarintPrefix),
        };
        let bytes = self.read_bytes(len)?;
        // The first byte without its two prefix bits, then the rest.
        let rest = bytes.get(1..).unwrap_or(&[]);
        let value = rest.iter().fold(u32::from(first & 0x3f), |acc, b| (acc << 8) | u32::from(*b));
        if value < min {
            return Err(CodecError::NonMinimalVarint);
        }
        Ok(value)
    }

    /// Reads the length prefix of a vector and returns a reader over its body.
    pub fn read_vector(&mut self) -> Result<Reader<'a>, CodecError> {
        let len = self.read_varint()?;
        let len = usize::try_from(len).map_err(|_| CodecError::Truncated)?;
        Ok(Reader::new(self.read_bytes(len)?))
    }

    /// Reads an `opaque<V>`, borrowed from the input.
    pub fn read_opaque(&mut self) -> Result<&'a [u8], CodecError> {
        Ok(self.read_vector()?.buf)
    }

    /// Reads a `T<V>` vector into a container of capacity `N`.
    pub fn read_vec<T: Decode<'a>, const N: usize>(&mut self) -> Result<Vec<T, N>, CodecError> {
        let mut body = self.read_vector()?;
        let mut out = Vec::new();
        while !body.is_empty() {
            out.push(T::decode(&mut body)?).map_err(|_| CodecError::CapacityExceeded(Capacity::Container(N)))?;
        }
        Ok(out)
    }
}

/// Where a [`Writer`]'s bytes go.
enum Output<'a> {
    /// Into a slice, from its start.
    Slice(&'a mut [u8]),
    /// Nowhere: only counted.
    Count,
    /// Into a consumer, e.g. a running hash: encodings of any size are
    /// hashed or signed without a buffer.
    Sink(&'a mut dyn FnMut(&[u8])),
}

/// Encoding output: a slice being filled, a counter of the bytes an encoding
/// needs, or a sink that consumes the bytes as they are produced.
pub struct Writer<'a> {
    out: Output<'a>,
    pos: usize,
}

impl core::fmt::Debug for Writer<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Writer").field("pos", &self.pos).finish()
    }
}

impl<'a> Writer<'a> {
    /// Writes into `buf` from its start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { out: Output::Slice(buf), pos: 0 }
    }

    /// Measures an encoding without writing it.
    pub fn counter() -> Writer<'static> {
        Writer { out: Output::Count, pos: 0 }
    }

    /// Passes the encoding to `sink` piece by piece, in order.
    pub fn sink(sink: &'a mut dyn FnMut(&[u8])) -> Self {
        Self { out: Output::Sink(sink), pos: 0 }
    }

    /// Bytes written (or counted) so far.
    pub const fn len(&self) -> usize {
        self.pos
    }

    /// True when nothing was written yet.
    pub const fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// The bytes written so far (empty for a counter).
    pub fn written(&self) -> &[u8] {
        match &self.out {
            Output::Slice(buf) => buf.get(..self.pos).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Appends raw bytes.
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        let end = self.pos.checked_add(bytes.len()).ok_or(CodecError::BufferTooSmall { needed: usize::MAX })?;
        match &mut self.out {
            Output::Slice(buf) => buf.get_mut(self.pos..end).ok_or(CodecError::BufferTooSmall { needed: end })?.copy_from_slice(bytes),
            Output::Count => {}
            Output::Sink(f) => f(bytes),
        }
        self.pos = end;
        Ok(())
    }

    /// Writes a `uint8`.
    pub fn write_u8(&mut self, v: u8) -> Result<(), CodecError> {
        self.write_bytes(&[v])
    }

    /// Writes a big-endian `uint16`.
    pub fn write_u16(&mut self, v: u16) -> Result<(), CodecError> {
        self.write_bytes(&v.to_be_bytes())
    }

    /// Writes a big-endian `uint32`.
    pub fn write_u32(&mut self, v: u32) -> Result<(), CodecError> {
        self.write_bytes(&v.to_be_bytes())
    }

    /// Writes a big-endian `uint64`.
    pub fn write_u64(&mut self, v: u64) -> Result<(), CodecError> {
        self.write_bytes(&v.to_be_bytes())
    }

    /// Writes an MLS variable-length integer in its minimal form.
    pub fn write_varint(&mut self, v: usize) -> Result<(), CodecError> {
        let mut tmp = [0u8; 4];
        let enc = encode_varint(v, &mut tmp)?;
        self.write_bytes(enc)
    }

    /// Writes an `opaque<V>`.
    pub fn write_opaque(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        self.write_varint(bytes.len())?;
        self.write_bytes(bytes)
    }

    /// Writes a vector whose body `body` writes. Into a slice, the body is
    /// written once, 4 bytes past the start, then moved back behind its
    /// minimal length prefix, so element sizes need not be known in advance;
    /// only when the slice is too tight for that headroom (or for a sink) is
    /// the body measured first and then written.
    pub fn write_vector(
        &mut self,
        body: impl Fn(&mut Writer<'_>) -> Result<(), CodecError>,
    ) -> Result<(), CodecError> {
        let start = self.pos;
        let first = match self.out {
            Output::Sink(_) => Err(CodecError::BufferTooSmall { needed: usize::MAX }),
            _ => self.write_vector_moved(start, &body),
        };
        match first {
            Err(CodecError::BufferTooSmall { .. }) if !matches!(self.out, Output::Count) => {
                self.pos = start;
                let mut counter = Writer::counter();
                body(&mut counter)?;
                let mut tmp = [0u8; 4];
                let prefix_len = encode_varint(counter.len(), &mut tmp)?.len();
                // The whole vector's size is known now: report it rather
                // than the first write that does not fit.
                if let Output::Slice(buf) = &self.out {
                    let needed = start.saturating_add(prefix_len).saturating_add(counter.len());
                    if needed > buf.len() {
                        return Err(CodecError::BufferTooSmall { needed });
                    }
                }
                self.write_varint(counter.len())?;
                body(self)
            }
            other => other,
        }
    }

    fn write_vector_moved(
        &mut self,
        start: usize,
        body: &impl Fn(&mut Writer<'_>) -> Result<(), CodecError>,
    ) -> Result<(), CodecError> {
        let too_small = CodecError::BufferTooSmall { needed: usize::MAX };
        self.pos = start.checked_add(4).ok_or(too_small)?;
        body(self)?;
        let body_len = self.pos - start - 4;
        let mut tmp = [0u8; 4];
        let prefix = encode_varint(body_len, &mut tmp)?;
        // Only an internal inconsistency fails below (the body was written);
        // `write_vector` then measures and reports the real size.
        if let Output::Slice(buf) = &mut self.out {
            let region = buf.get_mut(start..self.pos).ok_or(too_small)?;
            if !move_within(region, 4..region.len(), prefix.len()) {
                return Err(too_small);
            }
            region.get_mut(..prefix.len()).ok_or(too_small)?.copy_from_slice(prefix);
        }
        self.pos = start + prefix.len() + body_len;
        Ok(())
    }

    /// Writes a `T<V>` vector of encodable elements.
    pub fn write_vec<T: Encode>(&mut self, items: &[T]) -> Result<(), CodecError> {
        self.write_vector(|w| items.iter().try_for_each(|item| item.encode(w)))
    }
}

/// Moves `buf[src]` so that it starts at `dst`, as `copy_within` does, but
/// with no panic path in the binary (`copy_within` is compiled out of line
/// with its bounds assertions): returns false, moving nothing, if a range is
/// out of bounds. The bytes of `src` that the move uncovers are left
/// unspecified (the move is a rotation), where `copy_within` leaves them
/// unchanged.
pub(crate) fn move_within(buf: &mut [u8], src: core::ops::Range<usize>, dst: usize) -> bool {
    let Some(len) = src.end.checked_sub(src.start) else { return false };
    if dst <= src.start {
        // Rotate [dst, src.end) left by the distance.
        match buf.get_mut(dst..src.end) {
            Some(r) if src.start - dst <= r.len() => r.rotate_left(src.start - dst),
            _ => return false,
        }
    } else {
        let Some(end) = dst.checked_add(len) else { return false };
        match buf.get_mut(src.start..end) {
            Some(r) if dst - src.start <= r.len() => r.rotate_right(dst - src.start),
            _ => return false,
        }
    }
    true
}

/// Bytes of the MLS varint (§2.1.2) of `n`; none past its range (2^30 - 1).
pub(crate) const fn varint_size(n: usize) -> Option<usize> {
    if n < 1 << 6 {
        Some(1)
    } else if n < 1 << 14 {
        Some(2)
    } else if n <= VARINT_MAX as usize {
        Some(4)
    } else {
        None
    }
}

/// Minimal MLS varint encoding of `v` into `tmp`; returns the used prefix.
fn encode_varint(v: usize, tmp: &mut [u8; 4]) -> Result<&[u8], CodecError> {
    let v = u32::try_from(v).map_err(|_| CodecError::VarintTooLarge)?;
    if v > VARINT_MAX {
        return Err(CodecError::VarintTooLarge);
    }
    let (len, tag) = if v < 1 << 6 {
        (1, 0x00)
    } else if v < 1 << 14 {
        (2, 0x40)
    } else {
        (4, 0x80)
    };
    *tmp = v.to_be_bytes();
    let out = tmp.get_mut(4 - len..).ok_or(CodecError::VarintTooLarge)?;
    if let Some(first) = out.first_mut() {
        *first |= tag;
    }
    Ok(out)
}

/// A type with a TLS presentation-language encoding.
pub trait Encode {
    /// Appends the encoding of `self`.
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError>;

    /// Bytes the encoding takes.
    fn encoded_len(&self) -> Result<usize, CodecError> {
        let mut w = Writer::counter();
        self.encode(&mut w)?;
        Ok(w.len())
    }

    /// Encodes into `buf` and returns the used prefix of it.
    fn encode_to<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8], CodecError> {
        let mut w = Writer::new(buf);
        self.encode(&mut w)?;
        let n = w.len();
        buf.get(..n).ok_or(CodecError::BufferTooSmall { needed: n })
    }
}

/// A type that can be read from its encoding; `'a` is the input's lifetime, for
/// types that borrow from it.
pub trait Decode<'a>: Sized {
    /// Reads one value, advancing `r`.
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError>;

    /// Reads one value that must span all of `bytes`.
    fn decode_exact(bytes: &'a [u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(bytes);
        let v = Self::decode(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

macro_rules! impl_uint {
    ($t:ty, $read:ident, $write:ident) => {
        impl Encode for $t {
            fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
                w.$write(*self)
            }
        }
        impl<'a> Decode<'a> for $t {
            fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
                r.$read()
            }
        }
    };
}
impl_uint!(u8, read_u8, write_u8);
impl_uint!(u16, read_u16, write_u16);
impl_uint!(u32, read_u32, write_u32);
impl_uint!(u64, read_u64, write_u64);

/// `optional<T>` (§2.1.1 of RFC 9420 via RFC 8446 conventions): a presence
/// byte 0 or 1, then the value if present.
impl<T: Encode> Encode for Option<T> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        match self {
            None => w.write_u8(0),
            Some(v) => {
                w.write_u8(1)?;
                v.encode(w)
            }
        }
    }
}

impl<'a, T: Decode<'a>> Decode<'a> for Option<T> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        match r.read_u8()? {
            0 => Ok(None),
            1 => Ok(Some(T::decode(r)?)),
            _ => Err(CodecError::InvalidValue),
        }
    }
}

/// A plain byte slice is an `opaque<V>` (the only variable-length byte
/// string of RFC 9420), borrowed from the input.
impl Encode for &[u8] {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.write_opaque(self)
    }
}

impl<'a> Decode<'a> for &'a [u8] {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        r.read_opaque()
    }
}

/// `opaque<V>` borrowed from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VarBytes<'a>(pub &'a [u8]);

impl Encode for VarBytes<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.write_opaque(self.0)
    }
}

impl<'a> Decode<'a> for VarBytes<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        Ok(Self(r.read_opaque()?))
    }
}

/// `opaque<V>` held in a container of at most `N` bytes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct OwnedBytes<const N: usize>(pub Vec<u8, N>);

impl<const N: usize> OwnedBytes<N> {
    /// No bytes.
    pub const EMPTY: Self = Self(Vec::new());

    /// Copies `bytes`; fails if longer than `N`.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CodecError> {
        Vec::from_slice(bytes).map(Self).map_err(|_| CodecError::CapacityExceeded(Capacity::Container(N)))
    }

    /// Replaces the bytes held by `bytes`, in place (no `N`-byte value on the
    /// stack); fails if longer than `N`, leaving it empty.
    pub fn set(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        self.0.clear();
        self.0.extend_from_slice(bytes).map_err(|_| CodecError::CapacityExceeded(Capacity::Container(N)))
    }

    /// The bytes held.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl<const N: usize> Encode for OwnedBytes<N> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.write_opaque(&self.0)
    }
}

impl<'a, const N: usize> Decode<'a> for OwnedBytes<N> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        Self::from_slice(r.read_opaque()?)
    }
}

/// `T<V>`: a vector of encodable elements, at most `N` of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarVec<T, const N: usize>(pub Vec<T, N>);

impl<T, const N: usize> Default for VarVec<T, N> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T: Encode, const N: usize> Encode for VarVec<T, N> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.write_vec(&self.0)
    }
}

impl<'a, T: Decode<'a>, const N: usize> Decode<'a> for VarVec<T, N> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        Ok(Self(r.read_vec()?))
    }
}

/// Declares the encoding of a struct once: its fields are encoded and decoded
/// in the order given, which must be the order of the RFC's struct definition.
///
/// ```
/// use mls_nostd::codec::{Decode, Encode, VarBytes};
/// struct KdfLabel<'a> { length: u16, label: VarBytes<'a>, context: VarBytes<'a> }
/// mls_nostd::tls_struct!(KdfLabel<'a> { length, label, context });
///
/// let v = KdfLabel { length: 32, label: VarBytes(b"x"), context: VarBytes(b"") };
/// let mut buf = [0u8; 8];
/// let bytes = v.encode_to(&mut buf).unwrap();
/// assert_eq!(bytes, &[0, 32, 1, b'x', 0]);
/// let back = KdfLabel::decode_exact(bytes).unwrap();
/// assert_eq!(back.label.0, b"x");
/// ```
#[macro_export]
macro_rules! tls_struct {
    ($name:ident<$lt:lifetime> { $($field:ident),* $(,)? }) => {
        impl<$lt> $crate::codec::Encode for $name<$lt> {
            fn encode(&self, w: &mut $crate::codec::Writer<'_>)
                -> ::core::result::Result<(), $crate::codec::CodecError> {
                $( $crate::codec::Encode::encode(&self.$field, w)?; )*
                Ok(())
            }
        }
        impl<$lt> $crate::codec::Decode<$lt> for $name<$lt> {
            fn decode(r: &mut $crate::codec::Reader<$lt>)
                -> ::core::result::Result<Self, $crate::codec::CodecError> {
                Ok(Self { $( $field: $crate::codec::Decode::decode(r)?, )* })
            }
        }
    };
    ($name:ident { $($field:ident),* $(,)? }) => {
        impl $crate::codec::Encode for $name {
            fn encode(&self, w: &mut $crate::codec::Writer<'_>)
                -> ::core::result::Result<(), $crate::codec::CodecError> {
                $( $crate::codec::Encode::encode(&self.$field, w)?; )*
                Ok(())
            }
        }
        impl<'a> $crate::codec::Decode<'a> for $name {
            fn decode(r: &mut $crate::codec::Reader<'a>)
                -> ::core::result::Result<Self, $crate::codec::CodecError> {
                Ok(Self { $( $field: $crate::codec::Decode::decode(r)?, )* })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn move_within_moves_like_copy_within() {
        let orig: [u8; 16] = core::array::from_fn(|i| i as u8 + 1);
        for start in 0..=16usize {
            for end in start..=16 {
                for dst in 0..=16usize {
                    let mut ours = orig;
                    let ok = super::move_within(&mut ours, start..end, dst);
                    assert_eq!(ok, dst + (end - start) <= 16, "{start}..{end} -> {dst}");
                    if ok {
                        let mut std = orig;
                        std.copy_within(start..end, dst);
                        assert_eq!(ours[dst..dst + end - start], std[dst..dst + end - start]);
                        // Bytes outside both ranges are untouched.
                        let lo = start.min(dst);
                        let hi = end.max(dst + end - start);
                        assert_eq!(ours[..lo], orig[..lo]);
                        assert_eq!(ours[hi..], orig[hi..]);
                    }
                }
            }
        }
        let mut b = [0u8; 4];
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = 3..2;
        assert!(!super::move_within(&mut b, reversed, 0));
        assert!(!super::move_within(&mut b, 0..5, 0));
        assert!(!super::move_within(&mut b, 0..1, usize::MAX));
    }

    #[test]
    fn varint_forms() {
        for (v, enc) in [
            (0usize, &[0x00u8][..]),
            (37, &[0x25]),
            (63, &[0x3f]),
            (64, &[0x40, 0x40]),
            (15293, &[0x7b, 0xbd]),
            (16383, &[0x7f, 0xff]),
            (16384, &[0x80, 0x00, 0x40, 0x00]),
            (494_878_333, &[0x9d, 0x7f, 0x3e, 0x7d]),
            (VARINT_MAX as usize, &[0xbf, 0xff, 0xff, 0xff]),
        ] {
            let mut buf = [0u8; 4];
            let mut w = Writer::new(&mut buf);
            w.write_varint(v).unwrap();
            assert_eq!(w.written(), enc);
            assert_eq!(Reader::new(enc).read_varint().unwrap() as usize, v);
        }
    }

    #[test]
    fn varint_rejections() {
        assert_eq!(Reader::new(&[0x40, 0x25]).read_varint(), Err(CodecError::NonMinimalVarint));
        assert_eq!(
            Reader::new(&[0x80, 0, 0x3f, 0xff]).read_varint(),
            Err(CodecError::NonMinimalVarint)
        );
        assert_eq!(Reader::new(&[0xc0; 8]).read_varint(), Err(CodecError::InvalidVarintPrefix));
        assert_eq!(Reader::new(&[0x80, 0]).read_varint(), Err(CodecError::Truncated));
        assert_eq!(Reader::new(&[]).read_varint(), Err(CodecError::Truncated));
        let mut buf = [0u8; 8];
        assert_eq!(
            Writer::new(&mut buf).write_varint(1 << 30),
            Err(CodecError::VarintTooLarge)
        );
    }

    #[test]
    fn nested_vectors_move_prefix() {
        let mut buf = [0u8; 300];
        let mut w = Writer::new(&mut buf);
        w.write_vector(|w| {
            w.write_opaque(&[7u8; 70])?;
            w.write_opaque(&[])
        })
        .unwrap();
        let out = w.written();
        // outer: 2-byte prefix for 73 bytes; inner: 2-byte prefix for 70 bytes.
        assert_eq!(&out[..4], &[0x40, 73, 0x40, 70]);
        assert_eq!(out.len(), 2 + 73);
        let mut c = Writer::counter();
        c.write_vector(|w| w.write_opaque(&[7u8; 70])).unwrap();
        assert_eq!(c.len(), 2 + 72);
    }

    #[test]
    fn vec_capacity_and_trailing() {
        let enc = [3u8, 0, 1, 2];
        let v: Vec<u8, 3> = Reader::new(&enc).read_vec().unwrap();
        assert_eq!(&v[..], &[0, 1, 2]);
        assert_eq!(Reader::new(&enc).read_vec::<u8, 2>(), Err(CodecError::CapacityExceeded(Capacity::Container(2))));
        // A u16 vector whose body length is odd leaves a partial element.
        assert_eq!(Reader::new(&[3u8, 0, 1, 2]).read_vec::<u16, 4>(), Err(CodecError::Truncated));
        assert_eq!(VarBytes::decode_exact(&[1, 9, 9]), Err(CodecError::TrailingBytes));
        assert_eq!(VarBytes::decode_exact(&[2, 9]), Err(CodecError::Truncated));
        assert_eq!(Option::<u8>::decode_exact(&[2, 0]), Err(CodecError::InvalidValue));
        assert_eq!(Option::<u8>::decode_exact(&[1, 5]), Ok(Some(5)));
        assert_eq!(OwnedBytes::<1>::decode_exact(&[2, 1, 2]), Err(CodecError::CapacityExceeded(Capacity::Container(1))));
    }

    #[test]
    fn small_output_buffer() {
        let mut buf = [0u8; 3];
        let mut w = Writer::new(&mut buf);
        assert_eq!(w.write_opaque(&[1, 2, 3]), Err(CodecError::BufferTooSmall { needed: 4 }));
        // Exactly enough room for prefix and body, less than the 4-byte headroom.
        let mut buf = [0u8; 5];
        let mut w = Writer::new(&mut buf);
        w.write_u8(9).unwrap();
        w.write_vector(|w| w.write_vector(|w| w.write_bytes(&[1, 2]))).unwrap();
        assert_eq!(w.written(), &[9, 3, 2, 1, 2]);
        let mut buf = [0u8; 2];
        let mut w = Writer::new(&mut buf);
        assert_eq!(w.write_vector(|w| w.write_bytes(&[1, 2])), Err(CodecError::BufferTooSmall { needed: 3 }));
        // A nested vector reports the size of the outermost vector.
        let mut buf = [0u8; 4];
        let mut w = Writer::new(&mut buf);
        w.write_u8(9).unwrap();
        let got = w.write_vector(|w| w.write_vector(|w| w.write_bytes(&[1; 70])));
        assert_eq!(got, Err(CodecError::BufferTooSmall { needed: 1 + 2 + 2 + 70 }));
    }
}
