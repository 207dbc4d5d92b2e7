//! The live interoperability and differential tests in one test binary
//! (`cargo test -p mls-interop --test interop`; one file's tests alone:
//! `-- scripts::`). With a binary per file, each linked OpenMLS and mls-rs:
//! six builds of about 45 s of CPU each in CI's largest step (December 7,
//! 2026, `cargo test --timings`). `Cargo.toml` turns off the discovery of
//! `tests/*.rs` (`autotests = false`).

#[allow(dead_code)] // not every file uses every method
#[path = "common/mls_rs_party.rs"]
mod mls_rs_party;
#[allow(dead_code)] // not every file uses every method
#[path = "common/openmls_party.rs"]
mod openmls_party;

mod differential;
// Not named after the crates they test, which their paths would shadow.
#[path = "mls_rs.rs"]
mod live_mls_rs;
#[path = "openmls.rs"]
mod live_openmls;
mod passive_client;
mod random;
mod scripts;

/// With `autotests = false` a new file in `tests/` is not compiled unless it
/// is declared above: this fails for one that is not.
#[test]
fn every_test_file_is_a_module_of_this_binary() {
    let root = include_str!("interop.rs");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/") {
        let name = entry.expect("a directory entry").file_name().into_string().expect("a UTF-8 name");
        if !name.ends_with(".rs") || name == "interop.rs" {
            continue;
        }
        files += 1;
        let (by_name, by_path) = (format!("mod {};", name.trim_end_matches(".rs")), format!("#[path = \"{name}\"]"));
        let declared = root.lines().map(str::trim).any(|l| l == by_name || l == by_path);
        assert!(declared, "tests/{name} is not a module of tests/interop.rs: its tests would never run");
    }
    assert!(files >= 6, "found {files} test files in {}", dir.display());
}
