//! Any bytes as a `Welcome`: decode, re-encode to the same bytes, and look
//! up entries by reference. (Decrypting and joining: `group_join`.)
#![no_main]
use libfuzzer_sys::fuzz_target;
use mls_fuzz::*;
use mls_nostd::codec::Decode;
use mls_nostd::messages::welcome::Welcome;

fuzz_target!(
    init: {
        maybe_write_seeds("welcome", || {
            let mut seeds: Vec<Vec<u8>> = vector_fields(&["mls_welcome", "welcome"])
                .into_iter()
                .filter_map(|f| strip_header(&f.bytes, 3).map(<[u8]>::to_vec))
                .collect();
            for world in 0..SUITES.len() {
                seeds.push(with_world_in(world, |w| strip_header(&w.msgs.welcome_dave, 3).unwrap().to_vec()));
            }
            seeds
        });
    },
    |data: &[u8]| {
        let Ok(w) = Welcome::decode_exact(data) else { return };
        assert_round_trip(&w, data);
        for e in w.secrets.iter() {
            let found = w.secrets_for(e.new_member).expect("an entry's own reference finds an entry");
            assert_eq!(found.new_member, e.new_member);
        }
        let _ = w.secrets_for(&[0u8; 32]);
    }
);
