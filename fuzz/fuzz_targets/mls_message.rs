//! Any bytes as an `MLSMessage`: decodes or fails cleanly; what decodes
//! re-encodes to the same bytes; a KeyPackage body is also validated (§10.1).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mls_fuzz::*;
use mls_nostd::codec::Decode;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::messages::mls_message::{MlsMessage, MlsMessageBody};

fuzz_target!(
    init: {
        maybe_write_seeds("mls_message", || {
            let mut seeds: Vec<Vec<u8>> = vector_fields(MESSAGE_KEYS).into_iter().map(|f| f.bytes).collect();
            for world in 0..SUITES.len() {
                seeds.extend(with_world_in(world, |w| w.all_messages()));
            }
            seeds
        });
    },
    |data: &[u8]| {
        let Ok(m) = MlsMessage::decode_exact(data) else { return };
        assert_round_trip(&m, data);
        if let MlsMessageBody::KeyPackage(kp) = m.body
            && let Some(suite) = CipherSuite::from_u16(kp.tbs.cipher_suite)
        {
            let _ = kp.validate(suite, NOW, u64::MAX);
        }
    }
);
