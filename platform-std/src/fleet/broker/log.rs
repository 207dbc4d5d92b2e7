//! Where a member's log lines go. A member process writes to its stdout and
//! stderr, which [`super::spawn_member`] points at `stdout.log` and
//! `stderr.log` in its directory; a member thread (`--threads`) shares the
//! process's stdout, so it writes to those files itself ([`to_files`]).
//! Lines are written unbuffered, as a process's `println!` to a file is: a
//! killed member keeps every line it wrote.

use std::cell::RefCell;
use std::fs::File;
use std::io::Write;
use std::path::Path;

thread_local! {
    /// This thread's `stdout.log` and `stderr.log`, if it is a member thread.
    static FILES: RefCell<Option<(File, File)>> = const { RefCell::new(None) };
}

/// From now on, this thread's log lines go to `dir/stdout.log` and `dir/stderr.log`.
pub fn to_files(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let open = |n: &str| std::fs::OpenOptions::new().create(true).append(true).open(dir.join(n));
    let files = (open("stdout.log")?, open("stderr.log")?);
    FILES.with(|f| *f.borrow_mut() = Some(files));
    Ok(())
}

/// Writes one line to this member's stdout log (`error`: its stderr log).
/// A log line that cannot be written is dropped: logs never stop a member.
pub fn line(error: bool, text: std::fmt::Arguments<'_>) {
    FILES.with(|f| match &mut *f.borrow_mut() {
        Some((out, err)) => {
            let file = if error { err } else { out };
            let _ = writeln!(file, "{text}");
        }
        None if error => eprintln!("{text}"),
        None => println!("{text}"),
    })
}

/// `println!` for a member.
macro_rules! out {
    ($($t:tt)*) => { $crate::fleet::broker::log::line(false, format_args!($($t)*)) };
}
/// `eprintln!` for a member.
macro_rules! err_line {
    ($($t:tt)*) => { $crate::fleet::broker::log::line(true, format_args!($($t)*)) };
}
pub(crate) use {err_line, out};
