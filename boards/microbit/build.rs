//! Build script of the micro:bit test firmware: copies `memory-microbit.x`
//! to `$OUT_DIR/memory.x` and runs the member scenario on the host for a
//! group of 4 leaves, writing `$OUT_DIR/scenario.rs` (inputs, expected
//! outputs and epoch authenticators; see `board_scenario::member`). With
//! feature `vector-checks` the firmware runs the vectors instead and the
//! scenario is not generated.
use std::env;
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    board_scenario::memory_map(&manifest, &out, "microbit");
    if env::var_os("CARGO_FEATURE_VECTOR_CHECKS").is_none() {
        board_scenario::member::write(&out, 4);
    }
}
