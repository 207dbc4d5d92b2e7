//! Host-only helpers of the boards' build scripts.
//!
//! * [`member`] runs the whole member scenario on the host at build time:
//!   host members (our own `mls-nostd`, compiled for the host) create a
//!   group, and a simulation of the device (the very [`board_member::Device`]
//!   the firmware runs, with the same seeded RNG) generates its KeyPackage,
//!   joins, receives, commits and protects. Every message the simulated
//!   device produces is processed by the host members, so the expected bytes
//!   embedded in the firmware are known to be accepted by the group.
//! * [`vectors`] turns the official test vectors into Rust constants.

pub mod member;
pub mod vectors;

use std::path::Path;

/// Copies `memory-<board>.x` from `manifest_dir` to `$OUT_DIR/memory.x` and
/// adds `$OUT_DIR` to the linker's search path (a `memory.x` in the package
/// root would silently win, so boards keep theirs under another name).
pub fn memory_map(manifest_dir: &Path, out_dir: &Path, board: &str) {
    let name = format!("memory-{board}.x");
    let from = manifest_dir.join(&name);
    std::fs::copy(&from, out_dir.join("memory.x")).unwrap_or_else(|e| panic!("copy {name}: {e}"));
    println!("cargo:rustc-link-search={}", out_dir.display());
    println!("cargo:rerun-if-changed={}", from.display());
}
