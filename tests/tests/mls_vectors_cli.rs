//! The `mls-vectors` conformance runner: every official vector file passes
//! with the expected counts; a corrupted case fails (and only that case);
//! bad arguments and unreadable files exit with status 2.
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_tests::vectors_dir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn runner() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mls-vectors"))
}

fn run(args: &[&Path]) -> Output {
    runner().args(args).output().expect("run mls-vectors")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 output")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("UTF-8 output")
}

/// A scratch directory of this test binary, created if needed.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mls_vectors_cli").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every official file and what the runner must print for it:
/// (file, passed, skipped): all seven suites, nothing skipped.
const EXPECTED: [(&str, usize, usize); 16] = [
    ("crypto-basics.json", 7, 0),
    ("deserialization.json", 14, 0),
    ("key-schedule.json", 7, 0),
    ("message-protection.json", 7, 0),
    ("messages.json", 300, 0),
    ("passive-client-handling-commit.json", 91, 0),
    ("passive-client-random.json", 1, 0),
    ("passive-client-welcome.json", 56, 0),
    ("psk_secret.json", 77, 0),
    ("secret-tree.json", 21, 0),
    ("transcript-hashes.json", 7, 0),
    ("tree-math.json", 10, 0),
    ("tree-operations.json", 5, 0),
    ("tree-validation.json", 98, 0),
    ("treekem.json", 77, 0),
    ("welcome.json", 7, 0),
];

#[test]
fn every_official_file_passes() {
    let dir = vectors_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let args: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let out = run(&args);
    let text = stdout(&out);
    print!("{text}");
    assert_eq!(out.status.code(), Some(0), "exit status; stderr:\n{}", stderr(&out));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), files.len(), "one line per file");
    for (file, line) in files.iter().zip(&lines) {
        let prefix = format!("{}: ", file.display());
        let counts = line.strip_prefix(&prefix).unwrap_or_else(|| panic!("line for {}: {line}", file.display()));
        assert!(counts.contains(" 0 failed,"), "{line}");
    }
    // Every official file is known, with its exact counts.
    for (name, passed, skipped) in EXPECTED {
        let path = dir.join(name);
        let line = format!("{}: {passed} passed, 0 failed, {skipped} skipped", path.display());
        assert!(lines.contains(&line.as_str()), "missing line: {line}");
    }
}

#[test]
fn a_corrupted_case_fails_alone() {
    let dir = scratch("corrupted");
    // tree-math.json with the root of the 4th case changed.
    let mut cases: Vec<serde_json::Value> = mls_tests::load("tree-math.json");
    let root = cases[3]["root"].as_u64().unwrap();
    cases[3]["root"] = (root + 1).into();
    let bad = dir.join("tree-math.json");
    std::fs::write(&bad, serde_json::to_string(&cases).unwrap()).unwrap();
    // welcome.json with the suite-3 case's signer key replaced by a valid
    // key that did not sign it: suite-based files count their failures
    // among the supported cases.
    let mut cases = mls_tests::load("welcome.json");
    let i = cases.iter().position(|c| c["cipher_suite"] == 3).unwrap();
    let other = SignaturePrivateKey::from_slice(mls_nostd::crypto::CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519, &[7u8; 32]).unwrap().public_key();
    cases[i]["signer_pub"] = hex::encode(other.as_bytes()).into();
    let bad_welcome = dir.join("welcome.json");
    std::fs::write(&bad_welcome, serde_json::to_string(&cases).unwrap()).unwrap();
    let good = vectors_dir().join("deserialization.json");

    let out = run(&[&bad, &good, &bad_welcome]);
    let text = stdout(&out);
    print!("{text}{}", stderr(&out));
    assert_eq!(out.status.code(), Some(1), "exit status");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{}: 9 passed, 1 failed, 0 skipped", bad.display()),
            format!("{}: 14 passed, 0 failed, 0 skipped", good.display()),
            format!("{}: 6 passed, 1 failed, 0 skipped", bad_welcome.display()),
        ]
    );
    // The reasons, on stderr, name the case.
    let err = stderr(&out);
    assert!(err.contains("tree-math.json: case 3 failed: root of 8 leaves"), "{err}");
    assert!(err.contains(&format!("welcome.json: case {i} failed: GroupInfo signature")), "{err}");
}

#[test]
fn any_passive_client_file() {
    // A passive-client file under another name: by prefix, or with --kind.
    let dir = scratch("passive");
    let original = vectors_dir().join("passive-client-random.json");
    let by_prefix = dir.join("passive-client-my-scenario.json");
    let by_kind = dir.join("scenario.json");
    std::fs::copy(&original, &by_prefix).unwrap();
    std::fs::copy(&original, &by_kind).unwrap();
    let out = run(&[&by_prefix]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{}: 1 passed, 0 failed, 0 skipped\n", by_prefix.display()));
    let out = runner().arg("--kind").arg("passive-client").arg(&by_kind).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{}: 1 passed, 0 failed, 0 skipped\n", by_kind.display()));
    // Without --kind, its name says nothing: a usage error.
    let out = run(&[&by_kind]);
    assert_eq!(out.status.code(), Some(2));
    // The last epoch authenticator changed: the case fails at that epoch.
    let mut cases = mls_tests::load("passive-client-random.json");
    let epochs = cases[0]["epochs"].as_array_mut().unwrap();
    let last = epochs.len() - 1;
    epochs[last]["epoch_authenticator"] = "00".repeat(32).into();
    let corrupted = dir.join("passive-client-corrupted.json");
    std::fs::write(&corrupted, serde_json::to_string(&cases).unwrap()).unwrap();
    let out = run(&[&corrupted, &by_prefix]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        format!(
            "{}: 0 passed, 1 failed, 0 skipped\n{}: 1 passed, 0 failed, 0 skipped\n",
            corrupted.display(),
            by_prefix.display()
        )
    );
    assert!(stderr(&out).contains(&format!("case 0 failed: epoch {last}:")), "{}", stderr(&out));
    // psk_secret and psk-secret alike.
    let psk = vectors_dir().join("psk_secret.json");
    let out = runner().args(["--kind=psk-secret".as_ref(), psk.as_os_str()]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{}: 77 passed, 0 failed, 0 skipped\n", psk.display()));
}

#[test]
fn cases_of_unknown_shape_are_skipped() {
    let dir = scratch("shape");
    let file = dir.join("secret-tree.json");
    let mut cases = mls_tests::load("secret-tree.json");
    cases.push(serde_json::json!("not an object"));
    cases.push(serde_json::json!({ "no": "cipher suite" }));
    std::fs::write(&file, serde_json::to_string(&cases).unwrap()).unwrap();
    let out = run(&[&file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{}: 21 passed, 0 failed, 2 skipped\n", file.display()));
}

#[test]
fn bad_arguments_and_files_exit_2() {
    let tree_math = vectors_dir().join("tree-math.json");
    let dir = scratch("bad");
    let not_json = dir.join("tree-math.json");
    std::fs::write(&not_json, "this is not JSON").unwrap();
    let not_array = dir.join("key-schedule.json");
    std::fs::write(&not_array, "{\"cipher_suite\": 1}").unwrap();
    let missing = dir.join("missing").join("tree-math.json");
    let unknown_name = dir.join("something.json");
    std::fs::write(&unknown_name, "[]").unwrap();

    let t = tree_math.as_os_str();
    let cases: [(&str, Vec<&std::ffi::OsStr>); 8] = [
        ("no file", vec![]),
        ("unknown option", vec!["--frobnicate".as_ref(), t]),
        ("--kind without value", vec!["--kind".as_ref()]),
        ("unknown kind", vec!["--kind".as_ref(), "tree-maths".as_ref(), t]),
        ("unknown file name", vec![unknown_name.as_os_str()]),
        ("missing file", vec![missing.as_os_str()]),
        ("not JSON", vec![not_json.as_os_str()]),
        ("not an array", vec![not_array.as_os_str()]),
    ];
    for (what, args) in cases {
        let out = runner().args(&args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: status; stderr: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: one-line error: {err}");
        assert!(err.starts_with("mls-vectors: "), "{what}: {err}");
    }
    // An unreadable file among good ones: the others still run, status 2.
    let out = run(&[&not_json, &tree_math]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), format!("{}: 10 passed, 0 failed, 0 skipped\n", tree_math.display()));
    // Help is not an error.
    let out = runner().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("usage: mls-vectors [--kind KIND] FILE..."));
}
