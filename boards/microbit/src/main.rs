//! Test firmware for QEMU `microbit` (nRF51822: Cortex-M0, 16 KiB of RAM).
//!
//! A group member does not fit: the smallest group state (2 leaves) is
//! larger than the whole RAM (the firmware prints both numbers). So this
//! board runs the largest parts of the member scenario that fit:
//!
//! 1. the suite-3 test-vector checks (crypto-basics, key-schedule,
//!    secret-tree);
//! 2. the device's KeyPackage generation with the seeded RNG, compared byte
//!    for byte with the host's simulation;
//! 3. reading the scenario's application messages (1 KiB from Alice, a short
//!    one from Dave) as a passive receiver: the epoch's secret tree (8
//!    leaves) and `sender_data_secret`, given by the host, and the core's
//!    PrivateMessage code (decrypt, check the sender's signature).
//!
//! RAM: one secret tree (reused by the vector checks and the receiver) and
//! one message buffer are statics; the rest is stack, which the KeyPackage
//! (Ed25519 signing) and the vector checks need about 8 KB of.
//!
//! Prints `N passed, M failed` last; exits with 0 if M == 0, else 1.
#![no_std]
#![no_main]

use board_firmware::cell::Slot;
use board_firmware::check;
use board_firmware::checks;
use board_firmware::measure::Meter;
use board_firmware::report::Report;
use board_member::{ARENA_PER_LEAF, Device, Expect, Outcome, SUITE};
use cortex_m_rt::{ExceptionFrame, entry, exception};
use mls_nostd::crypto::Secret;
use mls_nostd::crypto::signature::SignaturePublicKey;
use mls_nostd::group::Group;
use mls_nostd::messages::authenticated_content::EncodedGroupContext;
use mls_nostd::messages::framing::{Content, Sender};
use mls_nostd::messages::private_message::{self, PrivateMessageKeys};
use mls_nostd::secret_tree::SecretTreeConfig;
use mls_nostd::tree_math::LeafIndex;
use semihosting::{println, process};

mod receiver {
    include!(concat!(env!("OUT_DIR"), "/receiver.rs"));
}

/// RAM of the nRF51822 QFAA (and of QEMU's `microbit`).
const RAM_BYTES: usize = 16 * 1024;
/// The core clock QEMU gives SysTick: 16 MHz (62.5 instructions per tick).
const CORE_CLOCK_HZ: u32 = 16_000_000;

/// The smallest group a member could hold: 2 leaves, 1 skipped key, 256
/// bytes of proposals.
type SmallestGroup = Group<2, { 2 * ARENA_PER_LEAF }, 1, 256>;
/// The scenario's group at 8 leaves, as the other boards hold it.
type ScenarioGroup = Group<8, { 8 * ARENA_PER_LEAF }, { board_member::SKIPPED_KEYS }, { board_member::PROPOSAL_BYTES }>;

/// The one secret tree, first for the secret-tree vectors (32 leaves),
/// then for the passive receiver; 4 skipped keys instead of 32 save 2.8 KB.
type Tree = checks::VectorSecretTree<4>;

static TREE: Slot<Tree> = Slot::new();
static SCRATCH: Slot<[u8; receiver::RECEIVER_MAX_MESSAGE]> = Slot::new();

#[entry]
fn main() -> ! {
    let peripherals = cortex_m::Peripherals::take().unwrap();
    let meter = board_firmware::cortex_m::start(peripherals.SYST, CORE_CLOCK_HZ);
    let mut report = Report::default();

    println!(
        "member: a group does not fit: group state {} bytes at 2 leaves, {} bytes at 8 leaves; RAM {} bytes",
        core::mem::size_of::<SmallestGroup>(),
        core::mem::size_of::<ScenarioGroup>(),
        RAM_BYTES,
    );

    board_firmware::group(&mut report, &meter, "crypto-basics", checks::crypto_basics);
    board_firmware::group(&mut report, &meter, "key-schedule", checks::key_schedule);
    // SAFETY: `write` leaves a valid tree.
    let tree = unsafe { TREE.take_with(|p| p.write(Tree::EMPTY)) }.unwrap();
    board_firmware::group(&mut report, &meter, "secret-tree", |r| checks::secret_tree(r, tree));

    let scratch = SCRATCH.take_bytes().unwrap();
    key_package(&mut report, &meter, scratch);
    receive(&mut report, &meter, tree, scratch);

    process::exit(report.finish())
}

/// The device's KeyPackage, as on the other boards (same seed, same code).
#[inline(never)]
fn key_package(r: &mut Report, meter: &Meter, scratch: &mut [u8]) {
    let mut device = Device::new(receiver::DEVICE_SEED);
    let (outcome, cost) = meter.measure(|| device.key_package(scratch).map(|o| matches_kp(&o)));
    println!(
        "member: generate KeyPackage: {} instructions, stack peak {} bytes",
        cost.instructions, cost.stack_bytes
    );
    check!(r, outcome, "member: KeyPackage bytes");
}

fn matches_kp(o: &Outcome<'_>) -> bool {
    Expect::KeyPackage(receiver::KEY_PACKAGE).matches(o)
}

/// The scenario's application messages, read with the epoch's secrets.
#[inline(never)]
fn receive(r: &mut Report, meter: &Meter, tree: &mut Tree, scratch: &mut [u8]) {
    let setup = Secret::from_slice(receiver::RECEIVER_ENCRYPTION_SECRET).and_then(|root| {
        tree.reset(SUITE, receiver::RECEIVER_N_LEAVES, &root, SecretTreeConfig::default())
            .map_err(|_| mls_nostd::crypto::CryptoError::InvalidLength)
    });
    let sender_data = Secret::from_slice(receiver::RECEIVER_SENDER_DATA_SECRET);
    let context = EncodedGroupContext::decode(receiver::RECEIVER_GROUP_CONTEXT);
    let (Ok(()), Ok(sender_data), Ok(context)) = (setup, sender_data, context) else {
        check!(r, Err::<bool, _>("bad epoch secrets"), "member: passive receiver set-up");
        return;
    };
    for (i, &(leaf, key, message, plaintext)) in receiver::RECEIVER_MESSAGES.iter().enumerate() {
        let buf = &mut scratch[..message.len()];
        buf.copy_from_slice(message);
        let (outcome, cost) = meter.measure(|| {
            let mut keys = PrivateMessageKeys { secret_tree: tree, sender_data_secret: &sender_data };
            let mut lookup = |l: LeafIndex| if l.0 == leaf { SignaturePublicKey::from_slice(key).ok() } else { None };
            private_message::unprotect(&context, &mut keys, buf, &mut lookup).map(|c| {
                c.content.sender == Sender::Member(leaf) && c.content.content == Content::Application(plaintext)
            })
        });
        println!(
            "member: unprotect {} bytes from leaf {leaf}: {} instructions, stack peak {} bytes",
            plaintext.len(),
            cost.instructions,
            cost.stack_bytes
        );
        check!(r, outcome, "member: application message {i}");
    }
}

#[exception]
fn SysTick() {
    board_firmware::cortex_m::on_wrap();
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    println!("HardFault at pc {:#010x}", frame.pc());
    process::exit(1)
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    println!("unexpected exception or interrupt {irqn}");
    process::exit(1)
}
