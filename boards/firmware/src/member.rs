//! The member scenario on the board: the device runs each embedded step
//! (generated at build time by `board_scenario::member`) and checks what it
//! produces against the host's expectation, byte for byte, and its epoch
//! authenticator against the host members'. Each step prints its cost.

use board_member::{Device, Scenario, Step};
use mls_nostd::group::Group;

use crate::check;
use crate::measure::Meter;
use crate::report::Report;

/// Runs every step of `scenario` with the device's `group` (a fresh
/// `Group::EMPTY`) and a `scratch` buffer of `scenario.scratch` bytes; two
/// cases per step (its outcome; its epoch and epoch authenticator) and one
/// more at the end (the device ends removed from the group).
#[inline(never)]
pub fn run<const N: usize, const A: usize, const K: usize, const P: usize>(
    r: &mut Report,
    meter: &Meter,
    scenario: &Scenario<'_>,
    group: &mut Group<N, A, K, P>,
    scratch: &mut [u8],
) {
    out!(
        "member: capacity {} leaves, {} members, group state {} bytes, scratch {} bytes, embedded test data {} bytes",
        N,
        scenario.members,
        core::mem::size_of::<Group<N, A, K, P>>(),
        scratch.len(),
        scenario.data_bytes(),
    );
    let mut device = Device::new(scenario.seed);
    for (i, step) in scenario.steps.iter().enumerate() {
        run_step(r, meter, i, step, &mut device, group, scratch);
    }
    check!(r, Ok::<bool, ()>(group.is_inactive()), "member: the device ends removed");
}

#[inline(never)]
fn run_step<const N: usize, const A: usize, const K: usize, const P: usize>(
    r: &mut Report,
    meter: &Meter,
    i: usize,
    step: &Step<'_>,
    device: &mut Device,
    group: &mut Group<N, A, K, P>,
    scratch: &mut [u8],
) {
    let (outcome, cost) = meter.measure(|| device.step(group, &step.action, scratch));
    let name = step.name;
    match step.measure {
        None => out!("member[{}] {}: {} instructions, stack peak {} bytes", i, name, cost.instructions, cost.stack_bytes),
        Some(op) => {
            let f = &step.floor;
            out!(
                "member[{}] {}: {} instructions, stack peak {} bytes op={} floor=keygen:{},sign:{},verify:{},dh:{},dkp:{},aead_kib:{}",
                i, name, cost.instructions, cost.stack_bytes, op, f.keygen, f.sign, f.verify, f.dh, f.dkp, f.aead_kib
            )
        }
    }
    check!(r, outcome.map(|o| step.expect.matches(&o)), "member[{i}] {name}: outcome");
    if !step.epoch_authenticator.is_empty() {
        let agrees = group.epoch() == step.epoch && group.epoch_authenticator() == step.epoch_authenticator;
        check!(r, Ok::<bool, ()>(agrees), "member[{i}] {name}: epoch {} authenticator", step.epoch);
    }
}
