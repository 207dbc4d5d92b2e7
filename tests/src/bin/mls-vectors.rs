//! Conformance runner: checks official MLS test-vector files (or any file of
//! the same formats) against mls-nostd.
//!
//! ```text
//! mls-vectors [--kind KIND] FILE...
//! ```
//!
//! For each file, prints `FILE: N passed, M failed, K skipped` (skipped:
//! cases of cipher suites this build does not implement, or of unknown
//! shape) and the reason of each failure on stderr. The kind of a file comes
//! from its name (`tree-math.json`, `psk_secret.json`, `passive-client-*.json`,
//! ...) unless `--kind` gives it for all files.
//!
//! Exit status: 0 if every case passed or was skipped, 1 if a case failed,
//! 2 on bad arguments or a file that cannot be read as a JSON array.

use mls_tests::vectors::{Kind, read_file, run_file};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: mls-vectors [--kind KIND] FILE...";

fn kinds() -> String {
    Kind::ALL.map(Kind::name).join(", ")
}

/// Prints a one-line error and returns status 2.
fn bad(message: &str) -> ExitCode {
    eprintln!("mls-vectors: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut kind = None;
    let mut files = Vec::new();
    let mut args = std::env::args_os().skip(1);
    let mut options_done = false;
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        if options_done || !text.starts_with('-') || text == "-" {
            files.push(PathBuf::from(arg));
            continue;
        }
        let value = match text.as_ref() {
            "--" => {
                options_done = true;
                continue;
            }
            "-h" | "--help" => {
                println!("{USAGE}\nkinds: {}", kinds());
                return ExitCode::SUCCESS;
            }
            "--kind" => match args.next() {
                Some(v) => v.to_string_lossy().into_owned(),
                None => return bad(&format!("--kind needs a value ({USAGE})")),
            },
            t if t.starts_with("--kind=") => t["--kind=".len()..].to_string(),
            t => return bad(&format!("unknown option {t} ({USAGE})")),
        };
        match Kind::parse(&value) {
            Some(k) => kind = Some(k),
            None => return bad(&format!("unknown kind {value:?} (kinds: {})", kinds())),
        }
    }
    if files.is_empty() {
        return bad(&format!("no file given ({USAGE})"));
    }
    // Every file's kind is known before any runs.
    let mut jobs = Vec::new();
    for file in files {
        match kind.or_else(|| Kind::from_file_name(&file)) {
            Some(k) => jobs.push((file, k)),
            None => {
                return bad(&format!(
                    "{}: cannot tell the kind from the file name; pass --kind ({})",
                    file.display(),
                    kinds()
                ));
            }
        }
    }

    // A panic in a check is caught and reported as that case's failure.
    std::panic::set_hook(Box::new(|_| {}));
    let (mut any_failed, mut any_unreadable) = (false, false);
    for (file, kind) in jobs {
        let name = file.display().to_string();
        let cases = match read_file(&file) {
            Ok(cases) => cases,
            Err(e) => {
                eprintln!("mls-vectors: {name}: {e}");
                any_unreadable = true;
                continue;
            }
        };
        let report = run_file(kind, &cases);
        for f in &report.failures {
            eprintln!("{name}: case {} failed: {}", f.index, f.reason);
        }
        println!("{}", report.summary(&name));
        any_failed |= report.failed > 0;
    }
    if any_unreadable {
        ExitCode::from(2)
    } else if any_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
