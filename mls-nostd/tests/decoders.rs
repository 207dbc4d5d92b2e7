//! Bad input for every decoder of the core: truncated, trailing bytes,
//! non-minimal length, capacity exceeded, bad enum values; and random bytes
//! never panic.
use mls_nostd::codec::{CodecError, Decode, Encode, OwnedBytes, VarBytes, VarVec};
use mls_nostd::crypto::CipherSuite;
use mls_nostd::group_context::GroupContext;
use mls_nostd::psk::{PreSharedKeyId, Psk, ResumptionPskUsage};
use proptest::prelude::*;

fn encode<T: Encode>(v: &T) -> Vec<u8> {
    let mut buf = vec![0u8; v.encoded_len().unwrap()];
    v.encode_to(&mut buf).unwrap();
    buf
}

/// Every strict prefix of a valid encoding fails, and one byte more is trailing.
fn check_prefixes_and_trailing<'a, T: Decode<'a> + core::fmt::Debug>(valid: &'a [u8], with_extra: &'a [u8]) {
    T::decode_exact(valid).expect("valid encoding decodes");
    for n in 0..valid.len() {
        let r = T::decode_exact(&valid[..n]);
        assert!(r.is_err(), "prefix of {n} bytes decoded: {r:?}");
    }
    assert_eq!(T::decode_exact(with_extra).unwrap_err(), CodecError::TrailingBytes);
}

fn gc_fixture() -> Vec<u8> {
    let ext = [0x00, 0x0a, 0x02, 0xbe, 0xef];
    encode(&GroupContext {
        cipher_suite: CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519,
        group_id: b"group",
        epoch: 7,
        tree_hash: &[1; 32],
        confirmed_transcript_hash: &[2; 32],
        extensions: &ext,
    })
}

#[test]
fn group_context_bad_input() {
    let valid = gc_fixture();
    let mut extra = valid.clone();
    extra.push(0);
    check_prefixes_and_trailing::<GroupContext>(&valid, &extra);

    let mut bad_version = valid.clone();
    bad_version[1] = 2;
    assert_eq!(GroupContext::decode_exact(&bad_version), Err(CodecError::InvalidValue));
    let mut bad_suite = valid.clone();
    bad_suite[3] = 0x77;
    assert_eq!(GroupContext::decode_exact(&bad_suite), Err(CodecError::InvalidValue));

    // group_id length 5 written in two bytes (0x40 0x05) is not minimal.
    let mut non_minimal = valid[..4].to_vec();
    non_minimal.extend_from_slice(&[0x40, 0x05]);
    non_minimal.extend_from_slice(&valid[5..]);
    assert_eq!(GroupContext::decode_exact(&non_minimal), Err(CodecError::NonMinimalVarint));

    // An extension list whose last extension is cut inside its data.
    let ext_bad = [0x00, 0x0a, 0x03, 0xbe, 0xef];
    let mut w = valid[..valid.len() - 6].to_vec();
    w.push(ext_bad.len() as u8);
    w.extend_from_slice(&ext_bad);
    assert_eq!(GroupContext::decode_exact(&w), Err(CodecError::Truncated));
}

#[test]
fn pre_shared_key_id_bad_input() {
    for id in [
        PreSharedKeyId { psk: Psk::External { psk_id: b"id" }, psk_nonce: &[9; 32] },
        PreSharedKeyId {
            psk: Psk::Resumption { usage: ResumptionPskUsage::Branch, psk_group_id: b"g", psk_epoch: 3 },
            psk_nonce: &[9; 32],
        },
    ] {
        let valid = encode(&id);
        let mut extra = valid.clone();
        extra.push(1);
        check_prefixes_and_trailing::<PreSharedKeyId>(&valid, &extra);
        assert_eq!(PreSharedKeyId::decode_exact(&valid).unwrap(), id);
        let mut bad_type = valid.clone();
        bad_type[0] = 3;
        assert_eq!(PreSharedKeyId::decode_exact(&bad_type), Err(CodecError::InvalidValue));
    }
    let mut bad_usage = encode(&PreSharedKeyId {
        psk: Psk::Resumption { usage: ResumptionPskUsage::Reinit, psk_group_id: b"g", psk_epoch: 3 },
        psk_nonce: &[],
    });
    bad_usage[1] = 0;
    assert_eq!(PreSharedKeyId::decode_exact(&bad_usage), Err(CodecError::InvalidValue));
}

#[test]
fn containers_bad_input() {
    // opaque<V>: declared 4 bytes, 3 present.
    assert_eq!(VarBytes::decode_exact(&[4, 1, 2, 3]), Err(CodecError::Truncated));
    // Capacity: 3 bytes into a 2-byte container, 3 elements into a 2-element vector.
    let full = CodecError::CapacityExceeded(mls_nostd::Capacity::Container(2));
    assert_eq!(OwnedBytes::<2>::decode_exact(&[3, 1, 2, 3]), Err(full));
    assert_eq!(VarVec::<u8, 2>::decode_exact(&[3, 1, 2, 3]), Err(full));
    // A vector whose body ends inside an element.
    assert_eq!(VarVec::<u32, 4>::decode_exact(&[6, 0, 0, 0, 1, 0, 0]), Err(CodecError::Truncated));
    // A length prefix far larger than the input (would overflow a 32-bit usize
    // if added carelessly).
    assert_eq!(VarBytes::decode_exact(&[0xbf, 0xff, 0xff, 0xff, 0]), Err(CodecError::Truncated));
    // Reserved varint prefix.
    assert_eq!(VarBytes::decode_exact(&[0xc0, 0, 0, 0, 0, 0, 0, 1, 0]), Err(CodecError::InvalidVarintPrefix));
    // optional<T> flag other than 0/1.
    assert_eq!(Option::<u16>::decode_exact(&[2, 0, 0]), Err(CodecError::InvalidValue));
    // Fixed-width integers.
    assert_eq!(u64::decode_exact(&[0; 7]), Err(CodecError::Truncated));
    assert_eq!(u16::decode_exact(&[0; 3]), Err(CodecError::TrailingBytes));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Random input: every decoder returns a value or an error, never panics,
    /// and whatever decodes re-encodes to the same bytes.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(gc) = GroupContext::decode_exact(&bytes) {
            prop_assert_eq!(encode(&gc), bytes.clone());
        }
        if let Ok(id) = PreSharedKeyId::decode_exact(&bytes) {
            prop_assert_eq!(encode(&id), bytes.clone());
        }
        if let Ok(v) = VarVec::<u16, 8>::decode_exact(&bytes) {
            prop_assert_eq!(encode(&v), bytes.clone());
        }
        let _ = Option::<VarBytes>::decode_exact(&bytes);
        let _ = OwnedBytes::<16>::decode_exact(&bytes);
    }

    /// Mutations of a valid GroupContext: never a panic.
    #[test]
    fn mutated_group_context(pos in 0usize..200, val in any::<u8>(), cut in 0usize..200) {
        let mut b = gc_fixture();
        let p = pos % b.len();
        b[p] = val;
        b.truncate(b.len() - cut % b.len());
        let _ = GroupContext::decode_exact(&b);
    }
}
