//! Build script of the mps2-an386 test firmware.
//!
//! 1. Copies this board's memory map to `$OUT_DIR/memory.x` (see
//!    `board_scenario::memory_map`): `memory-mps2-an386.x` (256 KiB RAM), or
//!    `memory-mps2-an386-1m.x` for a 256- or 1,024-leaf group, which does not fit.
//! 2. Runs the member scenario on the host for the capacity chosen by the
//!    `cap-*` feature and writes `$OUT_DIR/scenario.rs` (inputs, expected
//!    outputs and epoch authenticators; see `board_scenario::member`).
//! 3. With feature `defmt`, links with defmt's linker script.
use std::path::PathBuf;
use std::env;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let caps: Vec<usize> = [8, 64, 256, 1024]
        .into_iter()
        .filter(|c| env::var_os(format!("CARGO_FEATURE_CAP_{c}")).is_some())
        .collect();
    let [capacity] = caps[..] else {
        panic!("enable exactly one of the features cap-8, cap-64, cap-256, cap-1024 (got {caps:?})");
    };
    let map = if capacity > 64 { "mps2-an386-1m" } else { "mps2-an386" };
    board_scenario::memory_map(&manifest, &out, map);
    board_scenario::member::write(&out, capacity);
    if env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        println!("cargo:rustc-link-arg=-Tdefmt.x");
    }
}
