//! Any bytes as a `GroupInfo`: decode and re-encode to the same bytes; then
//! the whole external-join path (§12.4.3.2) on an empty slot: tree import,
//! signature verification by the signer's leaf, tree validation, and for
//! GroupInfos that pass, building the external Commit. A join that fails
//! leaves the slot empty. The joiner is of the GroupInfo's cipher suite:
//! suite 2 (P-256) joins as the suite-2 world's Dave, any other as suite 1's.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mls_fuzz::*;
use mls_nostd::codec::Decode;
use mls_nostd::executor::Sequential;
use mls_nostd::group::GroupConfig;
use mls_nostd::messages::group_info::GroupInfo;
use mls_nostd::psk::NoPsks;

fuzz_target!(
    init: {
        maybe_write_seeds("group_info", || {
            let mut seeds: Vec<Vec<u8>> = vector_fields(&["mls_group_info"])
                .into_iter()
                .filter_map(|f| strip_header(&f.bytes, 4).map(<[u8]>::to_vec))
                .collect();
            for world in 0..SUITES.len() {
                with_world_in(world, |w| {
                    seeds.push(strip_header(&w.msgs.group_info, 4).unwrap().to_vec());
                    seeds.push(strip_header(&w.msgs.group_info_with_dave, 4).unwrap().to_vec());
                });
            }
            seeds
        });
    },
    |data: &[u8]| {
        let mut world = 0;
        if let Ok(gi) = GroupInfo::decode_exact(data) {
            assert_round_trip(&gi, data);
            world = world_of_suite(u64::from(gi.tbs.group_context.cipher_suite));
        }
        let mut message = vec![0, 1, 0, 4];
        message.extend_from_slice(data);
        with_world_in(world, |w| {
            // Erin (Dave's keys, any member-to-be would do) joins from the GroupInfo.
            let dave = &mut w.dave;
            w.empty_snapshot.restore(&mut dave.group);
            let mut caps = [0u8; 8];
            let sk = dave.signer.public_key().as_bytes().to_vec();
            let template = dave.template(&mut caps, &sk);
            let mut rng = TestRng(99);
            let mut out = vec![0u8; 2 * data.len() + 64 * 1024];
            let signer = dave.signer.clone();
            let r = dave.group.join_external(
                &message,
                None,
                &template,
                &signer,
                None,
                &[],
                &NoPsks,
                GroupConfig::default(),
                &mut rng,
                &Sequential,
                &mut out,
            );
            if r.is_err() {
                assert!(dave.group.is_inactive(), "a failed external join left a group in the slot");
            }
        });
    }
);
