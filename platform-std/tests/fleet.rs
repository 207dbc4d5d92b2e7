//! `mls-fleet`, the main job: a small fleet runs to the end with all epoch
//! authenticators agreeing; a seed replays a run byte for byte; a run
//! stopped after a round and resumed from its state directory ends where the
//! uninterrupted run ends; bad arguments, unusable, foreign or corrupted
//! state directories are one line of error.
#![cfg(feature = "fleet")]
use mls_nostd::crypto::CipherSuite;
use platform_std::fleet::{self, Config};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fleet_bin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mls-fleet")).args(args).output().expect("mls-fleet runs")
}

/// A fresh directory for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mls-fleet-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn small(seed: u64, suite: CipherSuite, state_dir: &Path) -> Config {
    Config { devices: 8, rounds: 1, suite, seed: Some(seed), state_dir: Some(state_dir.to_path_buf()), fsync: false }
}

#[test]
fn small_fleet_runs_and_reports() {
    // Without --state-dir: a fresh temporary directory, printed.
    let out = fleet_bin(&["--members", "8", "--rounds", "1", "--seed", "42", "--suite", "1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("state directory ")?.split_once(" (a fresh temporary one"))
        .map(|(d, _)| PathBuf::from(d))
        .expect("the temporary state directory is printed");
    let _cleanup = TempDir(dir.clone());
    assert!(stdout.contains("seed 42 (given; replay with --seed 42)"), "{stdout}");
    assert!(stdout.contains("cipher suite 0x0001"), "{stdout}");
    // Join (1 epoch), one update, one removal and one re-add (3 epochs).
    assert!(stdout.contains("all 9 members agreed after each of 4 epoch changes; final epoch 4: "), "{stdout}");
    for row in
        ["join from a Welcome", "commit with path", "process + merge a commit", "unprotect an application message", "save a member in full"]
    {
        assert!(stdout.contains(row), "{row}: {stdout}");
    }
    // Every member is in the database, and the report says how much it takes.
    assert!(dir.join("fleet.json").is_file());
    let db = platform_std::SqliteDatabase::open(dir.join("fleet.sqlite"), platform_std::Durability::ProcessCrash).expect("database");
    let mut sizes = Vec::new();
    for name in ["gateway", "device-000", "device-007"] {
        let bytes = db.storage(name).expect("member").bytes_used().expect("bytes");
        assert!(bytes > 1000, "{name}: {bytes} bytes");
        sizes.push(bytes);
    }
    let line = stdout.lines().find(|l| l.starts_with("state per member:")).expect("state line");
    let mean: u64 = line
        .split_once("on disk: ")
        .and_then(|(_, r)| r.split_once(" bytes"))
        .map(|(n, _)| n.replace(',', ""))
        .and_then(|n| n.parse().ok())
        .expect("on-disk bytes");
    assert!(sizes.iter().any(|&b| b.abs_diff(mean) < mean / 4), "{line}: members take {sizes:?}");
}

#[test]
fn same_seed_same_final_authenticator() {
    let tmp = TempDir::new("seed");
    let suites = [
        CipherSuite::X25519Aes128GcmSha256Ed25519,
        CipherSuite::P256Aes128GcmSha256P256,
        CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519,
    ];
    for (n, suite) in suites.into_iter().enumerate() {
        let a = fleet::run(&small(7, suite, &tmp.join(&format!("a{n}"))), 7).expect("first run");
        let b = fleet::run(&small(7, suite, &tmp.join(&format!("b{n}"))), 7).expect("second run");
        let c = fleet::run(&small(8, suite, &tmp.join(&format!("c{n}"))), 8).expect("other seed");
        assert_eq!(a.final_epoch, 4);
        assert_eq!(a.members, 9);
        assert_eq!(a.final_authenticator.len(), 32);
        assert_eq!(a.final_authenticator, b.final_authenticator, "a seed replays the run");
        assert_ne!(a.final_authenticator, c.final_authenticator, "another seed, another group");
    }
    // The binary prints the same abbreviated authenticator as the library computes.
    let report = fleet::run(&small(5, CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519, &tmp.join("d")), 5).expect("run");
    let out = fleet_bin(&["--members", "8", "--rounds", "1", "--seed", "5", "--state-dir", s(&tmp.join("e"))]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("final epoch 4: {}", report.authenticator_short())), "{stdout}");
}

fn assert_one_line_error(out: &Output, code: i32, what: &str) {
    assert_eq!(out.status.code(), Some(code), "{what}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{what}: {stderr:?}");
    assert!(stderr.starts_with("error: "), "{what}: {stderr:?}");
}

#[test]
fn bad_arguments_are_one_line_and_non_zero() {
    for args in [
        &["--members", "0"][..],
        &["--members", "1024"],
        &["--members", "many"],
        &["--suite", "4"],
        &["--rounds", "-1"],
        &["--seed"],
        &["--bogus"],
    ] {
        let out = fleet_bin(args);
        assert_one_line_error(&out, 2, &format!("{args:?}"));
        assert!(out.stdout.is_empty(), "{args:?}: nothing runs");
    }
    let help = fleet_bin(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--state-dir DIR"));
}

#[test]
fn resumed_run_ends_like_the_uninterrupted_one() {
    let tmp = TempDir::new("resume");
    for suite in [CipherSuite::X25519Aes128GcmSha256Ed25519, CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519] {
        let tag = suite.to_u16();
        let whole = Config { rounds: 3, ..small(11, suite, &tmp.join(&format!("whole-{tag}"))) };
        let uninterrupted = fleet::run(&whole, 11).expect("uninterrupted run");
        assert_eq!(uninterrupted.resumed_after, None);
        // Stopped after round 1, then resumed up to round 3 (the seed comes
        // from the state directory: the second run is given another one).
        let dir = tmp.join(&format!("stopped-{tag}"));
        let first = fleet::run(&Config { rounds: 1, ..small(11, suite, &dir) }, 11).expect("rounds 0..1");
        assert_ne!(first.final_authenticator, uninterrupted.final_authenticator);
        let resumed = fleet::run(&Config { rounds: 3, seed: None, ..small(0, suite, &dir) }, 999).expect("rounds 2..3");
        assert_eq!(resumed.resumed_after, Some(1));
        assert_eq!(resumed.seed, 11);
        assert_eq!(resumed.final_epoch, uninterrupted.final_epoch);
        assert_eq!(resumed.epochs_checked, uninterrupted.epochs_checked);
        assert_eq!(resumed.final_authenticator, uninterrupted.final_authenticator, "suite {tag:#06x}");
        // Resuming a finished run runs no round and reports the same end.
        let again = fleet::run(&Config { rounds: 3, ..small(11, suite, &dir) }, 11).expect("nothing left");
        assert_eq!(again.resumed_after, Some(3));
        assert_eq!(again.final_authenticator, uninterrupted.final_authenticator);
    }
    // The binary: stop after round 1, resume to round 2, same line as a whole run.
    let dir = tmp.join("bin");
    let out = fleet_bin(&["--members", "3", "--rounds", "1", "--seed", "4", "--state-dir", s(&dir)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = fleet_bin(&["--members", "3", "--rounds", "2", "--state-dir", s(&dir)]);
    let resumed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(resumed.contains("seed 4 (saved in the state directory"), "{resumed}");
    assert!(resumed.contains("resuming after round 1 of 2"), "{resumed}");
    assert!(resumed.contains("resumed after round 1: the tables above cover rounds 2 to 2 only"), "{resumed}");
    let out = fleet_bin(&["--members", "3", "--rounds", "2", "--seed", "4", "--state-dir", s(&tmp.join("bin-whole"))]);
    let whole = String::from_utf8_lossy(&out.stdout).to_string();
    let last = |o: &str| o.lines().find(|l| l.starts_with("epoch authenticators:")).map(str::to_string).expect("final line");
    assert_eq!(last(&resumed), last(&whole));
}

#[test]
fn unusable_state_dir_is_one_line_and_non_zero() {
    let tmp = TempDir::new("unusable");
    // A file where the directory should be.
    let file = tmp.join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let out = fleet_bin(&["--members", "2", "--rounds", "0", "--state-dir", s(&file)]);
    assert_one_line_error(&out, 1, "a file as state dir");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a directory"));
    // A directory that holds something else: refused, not overwritten.
    let out = fleet_bin(&["--members", "2", "--rounds", "0", "--state-dir", s(&tmp.0)]);
    assert_one_line_error(&out, 1, "foreign directory");
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no fleet.json"));
    assert!(file.is_file());

    // A saved run of 2 devices with suite 3 and seed 1: the join, then round 1.
    let dir = tmp.join("run");
    let out = fleet_bin(&["--members", "2", "--rounds", "0", "--seed", "1", "--state-dir", s(&dir)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let progress = dir.join("fleet.json");
    let after_join = std::fs::read_to_string(&progress).expect("progress");
    let out = fleet_bin(&["--members", "2", "--rounds", "1", "--seed", "1", "--state-dir", s(&dir)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (args, what, message) in [
        (&["--members", "3"][..], "other member count", "holds a fleet of 2 devices with cipher suite 0x0003, not 3"),
        (&["--members", "2", "--suite", "1"], "other suite", "resume it with --members 2 --suite 3"),
        (&["--members", "2", "--seed", "2"], "other seed", "holds the run of seed 1, not 2"),
        (&["--members", "2", "--rounds", "0"], "fewer rounds", "past --rounds 0"),
    ] {
        let mut all = args.to_vec();
        all.extend(["--state-dir", s(&dir)]);
        let out = fleet_bin(&all);
        assert_one_line_error(&out, 1, what);
        assert!(String::from_utf8_lossy(&out.stderr).contains(message), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    }

    // A flipped byte in a record of a member's group: the store's Corrupt error, one line.
    let conn = rusqlite::Connection::open(dir.join("fleet.sqlite")).expect("database");
    let blob: i64 = conn
        .query_row(
            "SELECT record.id FROM record JOIN namespace ON record.id >> 32 = namespace.id \
             WHERE namespace.name = 'device-001' AND (record.id & 0xffffffff) >> 24 = 2 LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("a blob record");
    let mut bytes: Vec<u8> = conn.query_row("SELECT value FROM record WHERE id = ?1", [blob], |r| r.get(0)).expect("record");
    let at = bytes.len() / 2;
    let write = |bytes: &Vec<u8>| {
        conn.execute("UPDATE record SET value = ?1 WHERE id = ?2", rusqlite::params![bytes, blob]).expect("write");
    };
    bytes[at] ^= 0x01;
    write(&bytes);
    let out = fleet_bin(&["--members", "2", "--rounds", "2", "--state-dir", s(&dir)]);
    assert_one_line_error(&out, 1, "corrupted record");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("device-001: loading its group: stored state is corrupted (hash mismatch)"), "{stderr}");

    // A damaged progress file.
    bytes[at] ^= 0x01;
    write(&bytes);
    drop(conn);
    let text = std::fs::read_to_string(&progress).expect("progress");
    std::fs::write(&progress, text.replace("\"rounds_done\"", "\"rounds_dune\"")).expect("write");
    let out = fleet_bin(&["--members", "2", "--rounds", "2", "--state-dir", s(&dir)]);
    assert_one_line_error(&out, 1, "damaged progress");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a progress file of mls-fleet"));

    // Members ahead of the progress (a run stopped during round 1, after the
    // members' saves and before the progress): refused.
    std::fs::write(&progress, after_join).expect("write");
    let out = fleet_bin(&["--members", "2", "--rounds", "2", "--state-dir", s(&dir)]);
    assert_one_line_error(&out, 1, "stopped mid-round");
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped during a round"));
}

#[test]
fn large_groups_never_pass_through_the_stack() {
    // 1 KiB of leaf arena per member: with one tree buffer (issue #14) a
    // 256-byte arena per member no longer makes the slot exceed 1 MiB.
    type Big = mls_nostd::group::Group<1024, { 1024 * 1024 }, 16, 4096>;
    assert!(size_of::<Big>() > 1024 * 1024, "the group is larger than the thread's stack");
    let t = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let g = platform_std::boxed_group::<1024, { 1024 * 1024 }, 16, 4096>();
            g.is_inactive() && g.epoch() == 0
        })
        .expect("thread");
    assert!(t.join().expect("no stack overflow"));
}
