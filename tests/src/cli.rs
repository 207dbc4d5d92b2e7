//! The `mls-vectors` conformance runner's whole behaviour, callable in
//! process: the binary (`src/bin/mls-vectors.rs`) is this function on the
//! process's arguments, stdout and stderr, and other crates' tests (the
//! anchor-generated passive-client cases of `mls-interop`) run it on their
//! files exactly as the binary would.
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

use crate::vectors::{Kind, read_file, run_file};
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

/// The runner's usage line.
pub const USAGE: &str = "usage: mls-vectors [--kind KIND] FILE...";

fn kinds() -> String {
    Kind::ALL.map(Kind::name).join(", ")
}

/// Runs the conformance runner on `args` (without the program name),
/// writing its report to `out` and `err`; returns the exit status.
pub fn run(args: impl IntoIterator<Item = OsString>, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    // Output errors (a closed pipe) cannot change what the cases gave.
    macro_rules! say {
        ($w:expr, $($arg:tt)*) => { let _ = writeln!($w, $($arg)*); };
    }
    let mut bad = |message: &str| {
        say!(err, "mls-vectors: {message}");
        2
    };
    let mut kind = None;
    let mut files = Vec::new();
    let mut args = args.into_iter();
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
                say!(out, "{USAGE}\nkinds: {}", kinds());
                return 0;
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

    let (mut any_failed, mut any_unreadable) = (false, false);
    for (file, kind) in jobs {
        let name = file.display().to_string();
        let cases = match read_file(&file) {
            Ok(cases) => cases,
            Err(e) => {
                say!(err, "mls-vectors: {name}: {e}");
                any_unreadable = true;
                continue;
            }
        };
        let report = run_file(kind, &cases);
        for f in &report.failures {
            say!(err, "{name}: case {} failed: {}", f.index, f.reason);
        }
        say!(out, "{}", report.summary(&name));
        any_failed |= report.failed > 0;
    }
    if any_unreadable {
        2
    } else if any_failed {
        1
    } else {
        0
    }
}
