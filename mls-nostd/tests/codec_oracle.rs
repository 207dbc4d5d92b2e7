//! Property tests: our codec against `tls_codec` (with its `mls` feature) as an
//! oracle for MLS varints and vectors (RFC 9420 §2.1.2).
use mls_nostd::codec::{Decode, Encode, Reader, VarBytes, VarVec, Writer};
use proptest::prelude::*;
use tls_codec::{DeserializeBytes, Serialize as _, TlsVarInt, VLBytes};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// Any 1..=8 bytes decode as a varint in both codecs, or fail in both.
    /// Exception: RFC 9420 §2.1.2 forbids the 8-byte form (prefix 0b11), which
    /// tls_codec still accepts; we must reject it.
    #[test]
    fn varint_decode_agrees(bytes in proptest::collection::vec(any::<u8>(), 1..=8)) {
        let ours = Reader::new(&bytes).read_varint();
        if bytes[0] >> 6 == 0b11 {
            prop_assert_eq!(ours, Err(mls_nostd::codec::CodecError::InvalidVarintPrefix));
            return Ok(());
        }
        let theirs = TlsVarInt::tls_deserialize_bytes(&bytes);
        match (ours, theirs) {
            (Ok(a), Ok((b, _))) => prop_assert_eq!(u64::from(a), b.value()),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "disagree on {:02x?}: ours {:?}, tls_codec {:?}", bytes, a, b.map(|x| x.0)),
        }
    }

    /// Opaque vectors encode identically and decode back in both codecs.
    #[test]
    fn opaque_agrees(data in proptest::collection::vec(any::<u8>(), 0..20_000)) {
        let theirs = VLBytes::new(data.clone()).tls_serialize_detached().unwrap();
        let mut buf = vec![0u8; data.len() + 4];
        let ours = VarBytes(&data).encode_to(&mut buf).unwrap().to_vec();
        prop_assert_eq!(&ours, &theirs);
        prop_assert_eq!(VarBytes::decode_exact(&theirs).unwrap().0, &data[..]);
    }

    /// Vectors of uint16 encode identically, and our decoder reads theirs.
    #[test]
    fn u16_vector_agrees(items in proptest::collection::vec(any::<u16>(), 0..64)) {
        let theirs = items.tls_serialize_detached().unwrap();
        let ours = VarVec::<u16, 64>(heapless::Vec::from_slice(&items).unwrap());
        let mut buf = vec![0u8; 200];
        prop_assert_eq!(ours.encode_to(&mut buf).unwrap(), &theirs[..]);
        prop_assert_eq!(VarVec::<u16, 64>::decode_exact(&theirs).unwrap(), ours);
        // More elements than the capacity are refused, never truncated.
        let small = VarVec::<u16, 8>::decode_exact(&theirs).map(|v| v.0.len());
        if items.len() > 8 {
            prop_assert_eq!(small, Err(mls_nostd::codec::CodecError::CapacityExceeded(mls_nostd::Capacity::Container(8))));
        } else {
            prop_assert_eq!(small, Ok(items.len()));
        }
    }

    /// Nested vectors written by our writer read back identically.
    #[test]
    fn nested_roundtrip(outer in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..8)) {
        let mut buf = vec![0u8; 4096];
        let mut w = Writer::new(&mut buf);
        w.write_vector(|w| outer.iter().try_for_each(|v| w.write_opaque(v))).unwrap();
        let n = w.len();
        let mut r = Reader::new(&buf[..n]);
        let mut body = r.read_vector().unwrap();
        prop_assert!(r.is_empty());
        for v in &outer {
            prop_assert_eq!(body.read_opaque().unwrap(), &v[..]);
        }
        prop_assert!(body.is_empty());
        // The theirs-side oracle: Vec<VLBytes>.
        let theirs: Vec<VLBytes> = outer.iter().cloned().map(VLBytes::new).collect();
        prop_assert_eq!(&buf[..n], &theirs.tls_serialize_detached().unwrap()[..]);
    }
}
