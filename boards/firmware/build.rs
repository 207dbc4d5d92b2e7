//! Turns the suite-3 cases of the official test vectors into Rust constants
//! (`$OUT_DIR/vectors.rs`, included by `src/vectors.rs`), for every board.
use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let dir = board_scenario::vectors::dir(&manifest);
    fs::write(out.join("vectors.rs"), board_scenario::vectors::generate(&dir)).expect("write vectors.rs");
}
