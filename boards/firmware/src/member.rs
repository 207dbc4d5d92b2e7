//! The member scenario on the board: the device runs each embedded step
//! (generated at build time by `board_scenario::member`) and checks what it
//! produces against the host's expectation, byte for byte, and its epoch
//! authenticator against the host members'. Each step prints its cost.

use board_member::{Device, DeviceGroup, Scenario, Step};
use mls_nostd::group::Group;

use crate::check;
use crate::measure::Meter;
use crate::report::Report;

/// Runs every step of `scenario` with the device's `group` (a fresh
/// `Group::EMPTY`) and a `scratch` buffer of `scenario.scratch` bytes; two
/// cases per step (its outcome; its epoch and epoch authenticator) and one
/// more at the end (the device ends removed from the group).
#[inline(never)]
pub fn run<const N: usize, const A: usize, const K: usize, const P: usize, const E: usize>(
    r: &mut Report,
    meter: &Meter,
    scenario: &Scenario<'_>,
    group: &mut Group<N, A, K, P, mls_nostd::crypto::signature::SignaturePrivateKey, E>,
    scratch: &mut [u8],
) {
    out!(
        "member: capacity {} leaves, {} members, group state {} bytes, scratch {} bytes, embedded test data {} bytes",
        N,
        scenario.members,
        core::mem::size_of::<Group<N, A, K, P, mls_nostd::crypto::signature::SignaturePrivateKey, E>>(),
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
fn run_step(r: &mut Report, meter: &Meter, i: usize, step: &Step<'_>, device: &mut Device, group: &mut impl DeviceGroup, scratch: &mut [u8]) {
    let (outcome, cost) = meter.measure(|| device.step(group, &step.action, scratch));
    report_step(r, i, step, cost, outcome.map(|o| step.expect.matches(&o)));
    if !step.epoch_authenticator.is_empty() {
        let (epoch, authenticator) = group.epoch_and_authenticator();
        let agrees = epoch == step.epoch && authenticator == step.epoch_authenticator;
        check!(r, Ok::<bool, ()>(agrees), "member[{i}] {}: epoch {} authenticator", step.name, step.epoch);
    }
}

/// Prints a step's cost and checks its outcome. Apart from [`run_step`]
/// (never inlined): the formatting's arguments would otherwise be in the
/// frame under which the step runs, counted in its stack peak.
#[inline(never)]
fn report_step(r: &mut Report, i: usize, step: &Step<'_>, cost: crate::measure::Cost, matched: Result<bool, board_member::StepError>) {
    let name = step.name;
    match step.measure {
        None => out!("member[{}] {}: {} instructions, stack peak {} bytes", i, name, cost.instructions, cost.stack_bytes),
        Some(op) => {
            let f = &step.floor;
            out!(
                "member[{}] {}: {} instructions, stack peak {} bytes op={} floor=keygen:{},sign:{},verify:{},dh:{},dkp:{},keypair:{},kdf:{},kdf_more:{},aead_bytes:{},sign_bytes:{},verify_bytes:{},hash_bytes:{}",
                i,
                name,
                cost.instructions,
                cost.stack_bytes,
                op,
                f.keygen,
                f.sign,
                f.verify,
                f.dh,
                f.dkp,
                f.keypair,
                f.kdf,
                f.kdf_more,
                f.aead_bytes,
                f.sign_bytes,
                f.verify_bytes,
                f.hash_bytes
            )
        }
    }
    check!(r, matched, "member[{i}] {name}: outcome");
}

/// [`run`] as a product runs it, with a reboot in the middle: every step
/// goes through [`StoredGroup`](mls_nostd::store::durable::StoredGroup), so
/// the group is in the flash store whenever a step has returned; after step
/// `reboot_after` the firmware's [`Resume`] record is stored too and
/// `reset` restarts the board (fresh RAM: `.bss` zeroed, `.data` reloaded);
/// the firmware then calls this again with the record, the group is loaded
/// from flash into a fresh slot and the remaining steps must produce the
/// host's bytes exactly: a sending ratchet or RNG not restored exactly would
/// show as a different message.
#[cfg(feature = "persist")]
#[allow(clippy::too_many_arguments)]
#[inline(never)]
pub fn run_with_reboot<const N: usize, const A: usize, const K: usize, const P: usize, const E: usize>(
    r: &mut Report,
    meter: &Meter,
    scenario: &Scenario<'_>,
    group: &mut Group<N, A, K, P, mls_nostd::crypto::signature::SignaturePrivateKey, E>,
    scratch: &mut [u8],
    store: &mut crate::persist::BoardStore,
    resume: Option<crate::persist::Resume>,
    reboot_after: usize,
    buf: &mut mls_nostd::store::durable::RecordBuffer,
    reset: fn() -> !,
) {
    use crate::persist::Resume;
    let (mut device, start) = match &resume {
        None => {
            out!(
                "member: capacity {} leaves, {} members, group state {} bytes, scratch {} bytes, embedded test data {} bytes",
                N,
                scenario.members,
                core::mem::size_of::<Group<N, A, K, P, mls_nostd::crypto::signature::SignaturePrivateKey, E>>(),
                scratch.len(),
                scenario.data_bytes(),
            );
            (Device::new(scenario.seed), 0)
        }
        Some(res) => {
            r.passed = res.passed;
            r.failed = res.failed;
            let (loaded, cost) = meter.measure(|| load(group, store, buf));
            out!("member: rebooted; group loaded from flash: {} instructions, stack peak {} bytes", cost.instructions, cost.stack_bytes);
            check!(r, loaded.map(|()| true), "member: load the group from flash after the reboot");
            (res.device(), res.next_step as usize)
        }
    };
    for (i, step) in scenario.steps.iter().enumerate().skip(start) {
        // Every step through `StoredGroup`: stored before it returns, so
        // the reset below needs no save of its own.
        let mut stored = board_member::Stored { group: &mut *group, storage: &mut *store, slot: SLOT, buf: &mut *buf };
        run_step(r, meter, i, step, &mut device, &mut stored, scratch);
        if resume.is_none() && i == reboot_after {
            let record = Resume {
                passed: r.passed,
                failed: r.failed,
                next_step: (i + 1) as u32,
                rng: device.rng_state(),
                signer: device.signature_key().cloned(),
            };
            if let Err(e) = record.write(store) {
                check!(r, Err::<bool, _>(e), "member: save the firmware's resume record");
                return;
            }
            out!("member: rebooting (system reset) after step {}", i);
            reset();
        }
    }
    check!(r, Ok::<bool, ()>(group.is_inactive()), "member: the device ends removed");
}

/// The store's group slot on the board.
#[cfg(feature = "persist")]
const SLOT: u8 = 0;

// Load in a frame of its own: inlined into the runner, its locals would
// sit under every step's stack.
#[cfg(feature = "persist")]
#[inline(never)]
fn load<const N: usize, const A: usize, const K: usize, const P: usize, const E: usize>(
    group: &mut Group<N, A, K, P, mls_nostd::crypto::signature::SignaturePrivateKey, E>,
    store: &mut crate::persist::BoardStore,
    buf: &mut mls_nostd::store::durable::RecordBuffer,
) -> Result<(), mls_nostd::store::StoreError> {
    group.load(store, SLOT, &mls_nostd::identity::SAME_CREDENTIAL, buf)
}
