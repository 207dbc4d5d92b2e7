//! Any bytes as a `KeyPackage`: decode, re-encode to the same bytes, and
//! validate (§10.1: signatures, keys, capabilities, lifetime) at a time
//! inside its own lifetime, so the checks after the lifetime run too.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mls_fuzz::*;
use mls_nostd::codec::Decode;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::key_package::KeyPackage;
use mls_nostd::leaf_node::LeafNodeSource;

fuzz_target!(
    init: {
        maybe_write_seeds("key_package", || {
            let mut seeds: Vec<Vec<u8>> = vector_fields(&["mls_key_package", "key_package"])
                .into_iter()
                .filter_map(|f| strip_header(&f.bytes, 5).map(<[u8]>::to_vec))
                .collect();
            for world in 0..SUITES.len() {
                seeds.push(with_world_in(world, |w| w.dave_kp.clone()));
            }
            seeds
        });
    },
    |data: &[u8]| {
        let Ok(kp) = KeyPackage::decode_exact(data) else { return };
        assert_round_trip(&kp, data);
        let Some(suite) = CipherSuite::from_u16(kp.tbs.cipher_suite) else { return };
        let now = match kp.tbs.leaf_node.fields.source {
            LeafNodeSource::KeyPackage(l) => l.not_before,
            _ => NOW,
        };
        let _ = kp.validate(suite, now, u64::MAX);
        let _ = kp.validate(suite, NOW, 90 * 86_400);
    }
);
