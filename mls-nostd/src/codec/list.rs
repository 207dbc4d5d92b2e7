//! Borrowed, validated views of `T elements<V>` vectors (RFC 9420 §2.1.2)
//! whose elements are structures, as used by the messages of §6 and §12.
//!
//! A [`ListView`] holds the body of the vector as received. Its whole body is
//! decoded once when the view is made, so iterating later cannot fail; each
//! element is decoded again on the fly, without copying.

use core::fmt;
use core::marker::PhantomData;

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};

/// A vector `T elements<V>` (§2.1.2), borrowed from its encoding and checked
/// to be a sequence of well-formed `T`.
pub struct ListView<'a, T> {
    body: &'a [u8],
    len: u32,
    element: PhantomData<fn() -> T>,
}

impl<'a, T: Decode<'a>> ListView<'a, T> {
    /// Checks that `body` (a vector's body, without its length prefix) is a
    /// sequence of `T`, and counts them.
    pub fn from_body(body: &'a [u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(body);
        let mut len = 0u32;
        while !r.is_empty() {
            let before = r.remaining().len();
            T::decode(&mut r)?;
            // An element that takes no bytes would repeat forever.
            if r.remaining().len() == before {
                return Err(CodecError::InvalidValue);
            }
            len = len.checked_add(1).ok_or(CodecError::CapacityExceeded(crate::capacity::Capacity::Container(u32::MAX as usize)))?;
        }
        Ok(Self { body, len, element: PhantomData })
    }

    /// The elements in order.
    pub fn iter(&self) -> impl Iterator<Item = T> + 'a
    where
        T: 'a,
    {
        let mut r = Reader::new(self.body);
        // The body was checked in `from_body`: decoding cannot fail here.
        core::iter::from_fn(move || if r.is_empty() { None } else { T::decode(&mut r).ok() })
    }

    /// The elements' encodings in order, each to be decoded where it is
    /// used: a loop over [`Self::iter`] holds a decoded element (a
    /// Proposal view is 184 bytes) in its own frame, under every call its
    /// body makes.
    pub fn encoded(&self) -> impl Iterator<Item = &'a [u8]> + 'a
    where
        T: 'a,
    {
        let mut rest = self.body;
        core::iter::from_fn(move || {
            let n = encoded_len::<T>(rest)?;
            let (element, after) = rest.split_at_checked(n)?;
            rest = after;
            Some(element)
        })
    }
}

/// The length of the `T` at the start of `bytes` (none at the end, or if
/// it is not one). Never inlined, so the decoded `T` is not in the frame of
/// [`ListView::encoded`]'s caller.
#[inline(never)]
fn encoded_len<'a, T: Decode<'a>>(bytes: &'a [u8]) -> Option<usize> {
    let mut r = Reader::new(bytes);
    T::decode(&mut r).ok()?;
    Some(bytes.len() - r.remaining().len())
}

impl<'a, T> ListView<'a, T> {
    /// The empty vector.
    pub const EMPTY: Self = Self { body: &[], len: 0, element: PhantomData };

    /// Number of elements.
    pub fn len(&self) -> usize {
        // `len` counts elements of at least one byte of a body below 2^30
        // bytes: it fits any `usize` of 32 bits or more.
        usize::try_from(self.len).unwrap_or(usize::MAX)
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The encoded elements, without the vector's length prefix.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

impl<T> Clone for ListView<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for ListView<'_, T> {}

impl<T> PartialEq for ListView<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        // Encodings are canonical (minimal lengths, fixed enum values): equal
        // bodies are equal lists and conversely.
        self.body == other.body
    }
}

impl<T> Eq for ListView<'_, T> {}

impl<T> Default for ListView<'_, T> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<'a, T: Decode<'a> + fmt::Debug + 'a> fmt::Debug for ListView<'a, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a, T: Decode<'a> + Encode + 'a> Encode for ListView<'a, T> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        // Re-encoded element by element from the decoded values.
        w.write_vector(|w| self.iter().try_for_each(|e| e.encode(w)))
    }
}

impl<'a, T: Decode<'a>> Decode<'a> for ListView<'a, T> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        Self::from_body(r.read_opaque()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An element that takes no bytes.
    #[derive(Debug)]
    struct Empty;

    impl<'a> Decode<'a> for Empty {
        fn decode(_: &mut Reader<'a>) -> Result<Self, CodecError> {
            Ok(Empty)
        }
    }

    #[test]
    fn zero_length_elements_are_refused() {
        assert_eq!(ListView::<Empty>::from_body(&[0]).map(|l| l.len()), Err(CodecError::InvalidValue));
        assert_eq!(ListView::<Empty>::from_body(&[]).map(|l| l.len()), Ok(0));
    }

    #[test]
    fn counts_and_reencodes() {
        let enc = [5u8, 1, 7, 2, 8, 9];
        let list = ListView::<&[u8]>::decode_exact(&enc).unwrap();
        assert_eq!(list.len(), 2);
        assert!(list.iter().eq([&[7u8][..], &[8, 9][..]]));
        let mut buf = [0u8; 6];
        assert_eq!(list.encode_to(&mut buf).unwrap(), &enc);
        assert_eq!(ListView::<&[u8]>::decode_exact(&[3, 1, 7, 2]), Err(CodecError::Truncated));
        assert_eq!(ListView::<u16>::EMPTY.len(), 0);
    }

    #[test]
    fn encoded_elements_in_order() {
        // Three opaque elements (varint length + bytes), one of them empty.
        let enc = [7u8, 1, 7, 0, 3, 8, 9, 10];
        let list = ListView::<&[u8]>::decode_exact(&enc).unwrap();
        assert!(list.encoded().eq([&[1u8, 7][..], &[0][..], &[3, 8, 9, 10][..]]));
        assert_eq!(list.encoded().count(), list.len());
        assert_eq!(ListView::<&[u8]>::EMPTY.encoded().count(), 0);
    }
}
