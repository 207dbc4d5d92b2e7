//! Build script of the nRF52840 firmware: copies `memory-nrf52840.x` to
//! `$OUT_DIR/memory.x` and runs the member scenario on the host for a group
//! of 64 leaves (`$OUT_DIR/scenario.rs`; see `board_scenario::member`).
use std::env;
use std::path::PathBuf;

/// The device group's capacity in leaves.
const CAPACITY: usize = 64;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    board_scenario::memory_map(&manifest, &out, "nrf52840");
    board_scenario::member::write(&out, CAPACITY);
}
