//! Build script of the micro:bit test firmware: copies `memory-microbit.x`
//! to `$OUT_DIR/memory.x`, runs the member scenario on the host for a group
//! of 8 leaves and writes what this board uses of it to
//! `$OUT_DIR/receiver.rs`: the expected KeyPackage, and one epoch's secrets
//! with the application messages sent in it (see `board_scenario::member`).
use std::env;
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    board_scenario::memory_map(&manifest, &out, "microbit");
    let generated = board_scenario::member::generate(8);
    board_scenario::member::write_receiver(&out, &generated);
}
