//! A [`Storage`] of files in one directory, one file per record.
//!
//! A write goes to a temporary file, is flushed to the disk (`fsync`), renamed
//! over the record (atomic on POSIX file systems) and the directory is
//! flushed, so after a crash a record is the old or the new one. A removed
//! record is renamed away (after a crash it is whole or absent), then
//! overwritten with zeros and flushed before it is unlinked, so its bytes
//! are not left in the file's blocks (on file systems that overwrite in
//! place; copy-on-write file systems and SSD wear levelling may keep old
//! blocks: use full-disk encryption there).
//!
//! [`Flush::ProcessCrash`] ([`FileStorage::open_with`]) skips the `fsync`s:
//! a write is still a rename, so a crash or kill of the *process* leaves the
//! old or the new record, but a power cut of the machine may lose recent
//! writes (and the zeros of a wipe may never reach the disk). It is for
//! simulations of many members on one disk (`mls-fleet`), where a flush
//! per record costs milliseconds.

use mls_nostd::store::{RecordKey, Storage, StorageError};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

/// What a write survives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    /// Every write and removal is flushed to the disk (`fsync` of the file
    /// and the directory): it survives a power cut.
    PowerCut,
    /// No `fsync`: a write survives a crash of the process, not of the machine.
    ProcessCrash,
}

/// Records as files in a directory, which one `FileStorage` at a time
/// opens (its file `lock`, locked with a POSIX record lock on Unix).
#[derive(Debug)]
pub struct FileStorage {
    dir: PathBuf,
    flush: Flush,
    _lock: DirLock,
}

impl FileStorage {
    /// Opens (creating if needed) the store in `dir`, wiping and removing
    /// the temporary and replaced files an interrupted write left. Writes
    /// are flushed ([`Flush::PowerCut`]). A store another `FileStorage`
    /// holds open, in this process or another, is refused
    /// ([`ErrorKind::WouldBlock`]): its writes under way would be wiped as
    /// what a crash left, and two writers would share a ratchet.
    pub fn open(dir: impl AsRef<Path>) -> std::io::Result<Self> {
        Self::open_with(dir, Flush::PowerCut)
    }

    /// [`FileStorage::open`] with the given [`Flush`].
    pub fn open_with(dir: impl AsRef<Path>, flush: Flush) -> std::io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let lock = DirLock::take(&dir)?;
        let storage = Self { dir, flush, _lock: lock };
        for entry in fs::read_dir(&storage.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "tmp" || e == "old") {
                storage.wipe_and_unlink(&path)?;
            }
        }
        Ok(storage)
    }

    /// What writes survive.
    pub fn flush(&self) -> Flush {
        self.flush
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes held by all records.
    pub fn bytes_used(&self) -> std::io::Result<u64> {
        let mut total = 0;
        for entry in fs::read_dir(&self.dir)? {
            total += entry?.metadata()?.len();
        }
        Ok(total)
    }

    fn path(&self, key: RecordKey) -> PathBuf {
        self.dir.join(format!("{key:08x}.rec"))
    }

    fn sync_dir(&self) -> std::io::Result<()> {
        // Directories can be opened and fsynced on Unix; elsewhere the rename
        // is all there is.
        #[cfg(unix)]
        if self.flush == Flush::PowerCut {
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }

    fn sync_file(&self, f: &File) -> std::io::Result<()> {
        if self.flush == Flush::PowerCut { f.sync_all() } else { Ok(()) }
    }

    /// Wipes and removes `path`, a name that no record goes by: a `.tmp`
    /// or `.old` file. Its bytes are wiped only if it is their last name: a
    /// write cut between its link and its rename leaves `.old` a second name
    /// of the live record, which a wipe zeroed (found in review, December
    /// 8); that name is only unlinked. (Without link counts, off Unix, only
    /// unlinked.)
    fn wipe_and_unlink(&self, path: &Path) -> std::io::Result<()> {
        let meta = fs::metadata(path)?;
        #[cfg(unix)]
        let last_name = std::os::unix::fs::MetadataExt::nlink(&meta) == 1;
        #[cfg(not(unix))]
        let last_name = false;
        if last_name {
            let mut f = OpenOptions::new().write(true).open(path)?;
            f.write_all(&vec![0u8; usize::try_from(meta.len()).unwrap_or(0)])?;
            self.sync_file(&f)?;
        }
        fs::remove_file(path)
    }
}

/// The store directories this process holds open (a second `FileStorage`
/// of one of them is refused here: its lock is the process's already).
static OPEN: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// This process's hold of a store directory: its lock file, locked with a
/// POSIX record lock (not `flock`: a child forked by another thread shared
/// an `flock` until it ran `exec`, and a store reopened then was refused),
/// and its place in [`OPEN`]; both released when dropped.
#[derive(Debug)]
struct DirLock {
    dir: PathBuf,
    _file: File,
}

impl DirLock {
    fn take(dir: &Path) -> std::io::Result<Self> {
        let dir = dir.canonicalize()?;
        let busy = || std::io::Error::new(ErrorKind::WouldBlock, "the store is open in another FileStorage");
        let mut open = OPEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if open.contains(&dir) {
            return Err(busy());
        }
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(dir.join("lock"))?;
        if !crate::os_lock::os_lock(&file, 0, true)? {
            return Err(busy());
        }
        open.push(dir.clone());
        Ok(Self { dir, _file: file })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // The file closes after this: the process's lock goes with it.
        OPEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|d| *d != self.dir);
    }
}

fn io(_: std::io::Error) -> StorageError {
    StorageError::Io
}

impl Storage for FileStorage {
    fn read<'b>(&mut self, key: RecordKey, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, StorageError> {
        let mut f = match File::open(self.path(key)) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let len = usize::try_from(f.metadata().map_err(io)?.len()).map_err(|_| StorageError::TooLarge)?;
        let out = buf.get_mut(..len).ok_or(StorageError::TooLarge)?;
        f.read_exact(out).map_err(io)?;
        Ok(Some(out))
    }

    fn write(&mut self, key: RecordKey, value: &[u8]) -> Result<(), StorageError> {
        let path = self.path(key);
        let tmp = path.with_extension("tmp");
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(value).map_err(io)?;
        self.sync_file(&f).map_err(io)?;
        drop(f);
        // The rename releases the old version's blocks without wiping them:
        // keep a second name for it, and wipe it once the new one is in place
        // (a crash in between leaves a `.old` file that `open` wipes).
        let old = path.with_extension("old");
        let had_old = match fs::hard_link(&path, &old) {
            Ok(()) => true,
            Err(e) if e.kind() == ErrorKind::NotFound => false,
            Err(e) => return Err(io(e)),
        };
        if let Err(e) = fs::rename(&tmp, &path) {
            // `.old` is still a name of the live record: dropped, not wiped.
            if had_old {
                let _ = fs::remove_file(&old);
            }
            return Err(io(e));
        }
        self.sync_dir().map_err(io)?;
        if had_old {
            self.wipe_and_unlink(&old).map_err(io)?;
        }
        Ok(())
    }

    /// Renames the record to `.old` (atomic: a cut leaves it whole or
    /// absent), then wipes and unlinks that. It was wiped in place first: a
    /// cut between the wipe and the unlink left a record of zero bytes,
    /// neither the old value nor absent, and the group or another
    /// KeyPackage no longer loaded (found in review, December 8).
    fn remove(&mut self, key: RecordKey) -> Result<(), StorageError> {
        let path = self.path(key);
        let old = path.with_extension("old");
        match fs::rename(&path, &old) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
        }
        self.sync_dir().map_err(io)?;
        // (A cut before the unlink leaves `.old`: `open` removes it.)
        self.wipe_and_unlink(&old).map_err(io)
    }
}
