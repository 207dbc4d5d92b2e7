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
