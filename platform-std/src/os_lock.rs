//! Record locks of a file for the stores' "one opener" rule: POSIX
//! (`fcntl`) locks, which belong to the process (a forked child does not
//! share them, unlike `flock`'s, which held a store for a moment after any
//! fork of another thread) and which the kernel drops when the process
//! dies. Closing any descriptor of the file drops all of the process's
//! locks on it, so each store keeps one descriptor per file and a list of
//! what this process holds.

use std::fs::File;

/// Takes (`lock`) or releases a write lock on byte `id` of `file`, without
/// waiting; false if another process holds it.
#[cfg(unix)]
pub(crate) fn os_lock(file: &File, id: i64, lock: bool) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let start = libc::off_t::try_from(id).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: `flock` is a plain C struct; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = if lock { libc::F_WRLCK } else { libc::F_UNLCK } as _;
    fl.l_whence = libc::SEEK_SET as _;
    fl.l_start = start;
    fl.l_len = 1;
    // SAFETY: a valid descriptor and a pointer to an initialized `flock`
    // that outlives the call.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EACCES | libc::EAGAIN) if lock => Ok(false),
        _ => Err(e),
    }
}

/// Elsewhere than Unix only this process's handles are checked.
#[cfg(not(unix))]
pub(crate) fn os_lock(_: &File, _: i64, _: bool) -> std::io::Result<bool> {
    Ok(true)
}
