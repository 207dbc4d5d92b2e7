//! A [`Storage`] in one SQLite database shared by many members and groups.
//!
//! A [`SqliteDatabase`] is one database file; [`SqliteDatabase::storage`]
//! gives the [`SqliteStorage`] of a *namespace* (a name chosen by the caller:
//! a member, or one group of a member), whose record keys are the core's
//! opaque `u32`s. Records live in one table keyed by
//! `namespace id << 32 | key`, one B-tree lookup per record.
//!
//! ## The commit point is the transaction's
//!
//! The first write or removal after a [`Storage::committed`] call opens a
//! transaction (`BEGIN IMMEDIATE`); the next `committed()` commits it. The
//! core calls `committed()` once at the end of every save (after the head
//! and the removal of the old banks), so a whole save — the changed parts,
//! the head, the removal of what they replace — is one SQLite transaction:
//! after a crash the database holds the old save or the new one, and no
//! leftover records (`store::recover` finds nothing to do). The core's own
//! commit point (the head record) stays valid underneath: any prefix of a
//! save's writes is a state the core recovers from, so committing a prefix
//! (a save abandoned after an error, committed by a later save) is safe.
//! A failed write or removal rolls the transaction back at once (the save
//! fails, the stored state is the last committed one). Writes of your own
//! (records outside the core's key space) are committed by your next call
//! to `committed()`, or when the storage is dropped.
//!
//! The handles of one [`SqliteDatabase`] share one connection (a gateway with
//! a thousand groups holds one file descriptor and one page cache); while a
//! namespace has a transaction open, writes of other namespaces from other
//! threads wait for its `committed()` (at most the busy timeout), so a
//! transaction never mixes two saves that run at the same time.
//!
//! ## Durability
//!
//! [`Durability`] names what a committed save survives; each level is a
//! setting of SQLite's `synchronous` in WAL mode (see its variants).
//!
//! ## Forward-secure erase
//!
//! `secure_delete` is on: SQLite overwrites a removed or replaced record's
//! bytes with zeros in its page. The WAL still holds earlier images of the
//! pages until it is checkpointed, so every [`SqliteOptions::checkpoint_every`]
//! commits (and at open) the WAL is checkpointed with `TRUNCATE`: its pages
//! are copied into the database and the WAL file is cut to zero bytes.
//! SQLite rebuilds pages when it rebalances its B-trees, and a rebuilt page
//! (`rebuildPage` in SQLite's `btree.c`) keeps whatever lay in the free
//! space between its cell pointers and its packed cells: `secure_delete`
//! zeroes a record where it is deleted, not the copies a rebalance left of
//! it, when it was still live, in another page's free space. So once a
//! namespace has committed [`SqliteOptions::vacuum_every`] times since the
//! last vacuum, the database is rewritten (`VACUUM`, its temporary copy in
//! memory: `temp_store = MEMORY`), which leaves no free space of the old
//! pages, and checkpointed. The test
//! `no_removed_record_survives_page_rebuilds` writes and removes 3,000
//! records of every size in a seeded order that leaves such a copy after the
//! checkpoint (it asserts that it does) and checks that a vacuum leaves no
//! run of a removed record in the files (it found one in about 1 run in 60
//! when the store only checkpointed, December 5).
//! **Bound: a removed record's bytes are gone from its page and the WAL at
//! most `checkpoint_every` commits after its removal, and from the files
//! (copies that rebalancing left) at most `vacuum_every` commits of its
//! namespace after it** (sooner when another namespace of the database gets
//! there first: the vacuum is the whole database's), as if each namespace
//! had a database of its own (a checkpoint that another process's reader
//! keeps from finishing is retried at the next commit, a vacuum at the next
//! commit of the namespace whose count called it). Like any file, the disk's
//! blocks may keep old copies on copy-on-write file systems and SSDs: use
//! full-disk encryption there.
//!
//! ## Two processes, one member
//!
//! Opening a namespace takes an exclusive lock on one byte (the namespace's
//! id) of a lock file next to the database (`<database>-lock`): `fcntl`
//! record locks on Unix, which the kernel releases when the process dies, so
//! a process killed with `SIGKILL` never leaves a stale lock. A second
//! opener, in this process or another, gets [`SqliteError::InUse`]. Other
//! namespaces of the same database stay usable by other processes (SQLite
//! serializes their writes; each waits at most the busy timeout). Elsewhere
//! than Unix only opens within one process are detected.

use mls_nostd::store::{RecordKey, Storage, StorageError};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use crate::os_lock::os_lock;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// `PRAGMA application_id` of our databases: "MLSs".
pub const APPLICATION_ID: i32 = 0x4d4c_5373;
/// `PRAGMA user_version`: the schema below.
const SCHEMA_VERSION: i32 = 1;
const SCHEMA: &str = "
    CREATE TABLE namespace (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
    -- id = namespace.id << 32 | record key
    CREATE TABLE record (id INTEGER PRIMARY KEY, value BLOB NOT NULL);
";

/// What a committed save survives: the levels of SQLite's `synchronous` in
/// WAL mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous = FULL`: every commit waits for the WAL to reach the disk
    /// (`fsync`), and checkpoints flush the database. A committed save
    /// survives a power cut of the machine.
    PowerCut,
    /// `synchronous = OFF`: nothing waits for the disk; a commit is handed to
    /// the operating system, which keeps it when the *process* crashes or is
    /// killed. A power cut may lose recent saves, or leave the database
    /// damaged (SQLite then reports it corrupt: [`SqliteError::Corrupt`]).
    /// `NORMAL` is not used: in WAL mode it flushes at every checkpoint, and
    /// the forward-secure erase checkpoints often, so it would cost the
    /// `fsync`s this level exists to avoid, without surviving a power cut
    /// either (a device that reboots to an earlier ratchet could reuse a key).
    ProcessCrash,
}

/// How a database is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// What a committed save survives.
    pub durability: Durability,
    /// Commits between two `wal_checkpoint(TRUNCATE)`s: the bound on how long
    /// removed records stay in their pages and the WAL (at least 1).
    pub checkpoint_every: u32,
    /// Commits of one namespace between two `VACUUM`s (0: never): the bound
    /// on how long copies of removed records that B-tree rebalancing left in
    /// other pages' free space stay in the files, counted in the commits of
    /// the namespace that removed them. A vacuum rewrites the whole
    /// database (0.11 s for 51 MB here: SQLite 3.40, `synchronous = OFF`,
    /// with its checkpoint), so it is rarer than a checkpoint, and builds its
    /// copy in memory (`temp_store = MEMORY`: a temporary file would leave
    /// the live records on the disk), so it needs RAM the size of the
    /// database for its duration.
    pub vacuum_every: u32,
    /// Run `PRAGMA quick_check` at open (reads every page once), so that a
    /// truncated or damaged file is refused at once rather than at the first
    /// read of a damaged page.
    pub verify_on_open: bool,
    /// How long a write waits for another connection's transaction.
    pub busy_timeout: Duration,
}

impl SqliteOptions {
    /// Defaults for `durability`: a checkpoint every 16 commits, a vacuum
    /// every 256 commits of a namespace, checked at open, a 5 s busy timeout.
    pub const fn new(durability: Durability) -> Self {
        Self {
            durability,
            checkpoint_every: 16,
            vacuum_every: 256,
            verify_on_open: true,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Why a database or namespace could not be opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum SqliteError {
    /// The file is not an SQLite database (random bytes, another format).
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// The file is an SQLite database with damaged pages.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite found.
        detail: String,
    },
    /// An SQLite database of another application (its `application_id`, or
    /// tables where ours has none).
    Foreign {
        /// The file.
        path: PathBuf,
        /// Its `application_id`.
        application_id: i32,
    },
    /// Our database in a schema version this program does not know.
    UnknownVersion {
        /// The file.
        path: PathBuf,
        /// Its `user_version`.
        version: i32,
    },
    /// The namespace is open already, in this process or another.
    InUse {
        /// The database file.
        path: PathBuf,
        /// The namespace.
        namespace: String,
    },
    /// The lock file could not be used.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// Another thread's transaction did not end within the busy timeout, or
    /// the transaction that adds the namespace failed.
    Storage {
        /// The database file.
        path: PathBuf,
        /// What failed.
        error: StorageError,
    },
    /// SQLite failed otherwise (disk full, permissions, busy).
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        error: rusqlite::Error,
    },
}

impl std::fmt::Display for SqliteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotADatabase { path } => write!(f, "{}: not an SQLite database", path.display()),
            Self::Corrupt { path, detail } => write!(f, "{}: database is damaged: {detail}", path.display()),
            Self::Foreign { path, application_id } => write!(
                f,
                "{}: an SQLite database of another application (application_id {application_id:#x}, expected {APPLICATION_ID:#x})",
                path.display()
            ),
            Self::UnknownVersion { path, version } => {
                write!(f, "{}: unknown schema version {version} (this program knows {SCHEMA_VERSION})", path.display())
            }
            Self::InUse { path, namespace } => {
                write!(f, "{}: namespace {namespace:?} is in use by another handle or process", path.display())
            }
            Self::Io { path, error } => write!(f, "{}: {error}", path.display()),
            Self::Storage { path, error } => write!(f, "{}: storage failed: {error:?}", path.display()),
            Self::Sqlite { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for SqliteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { error, .. } => Some(error),
            Self::Sqlite { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl SqliteError {
    fn from_sqlite(path: &Path, error: rusqlite::Error) -> Self {
        let path = path.to_path_buf();
        match error.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => Self::NotADatabase { path },
            Some(ErrorCode::DatabaseCorrupt) => Self::Corrupt { path, detail: error.to_string() },
            _ => Self::Sqlite { path, error },
        }
    }
}

/// The transaction open on the connection, and whose it is.
#[derive(Clone, Copy, Debug)]
struct Txn {
    namespace: i64,
    thread: ThreadId,
}

#[derive(Debug)]
struct Inner {
    conn: Connection,
    txn: Option<Txn>,
    commits_since_checkpoint: u32,
    /// Each namespace's commits since the last vacuum (a namespace that has
    /// not committed since is absent; none counted when vacuums are off).
    commits_since_vacuum: HashMap<i64, u32>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    options: SqliteOptions,
    inner: Mutex<Inner>,
    /// Signalled when a transaction ends.
    txn_done: Condvar,
    locks: Arc<LockFile>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A thread that panicked while holding the lock left SQLite's state
        // consistent (it is transactional); carry on.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes sure this namespace owns the connection's open transaction,
    /// beginning one if none is open. A transaction of another namespace
    /// from this thread belongs to a save that ended in an error without
    /// committing (a prefix of a save, which the core recovers from): it is
    /// committed first. One of another thread is waited for.
    fn own_txn<'a>(&self, mut inner: MutexGuard<'a, Inner>, namespace: i64) -> Result<MutexGuard<'a, Inner>, StorageError> {
        let deadline = Instant::now() + self.options.busy_timeout;
        let me = std::thread::current().id();
        loop {
            match inner.txn {
                // SQLite rolled the transaction back (a statement in it
                // failed with an I/O error, a full disk or no memory, a
                // read's too): the save's writes so far are gone, so it
                // fails here, not later with a store that holds no prefix
                // of it (found in review, December 8).
                Some(t) if t.namespace == namespace && inner.conn.is_autocommit() => {
                    inner.txn = None;
                    self.txn_done.notify_all();
                    return Err(StorageError::Io);
                }
                Some(t) if t.namespace == namespace => return Ok(inner),
                Some(t) if t.thread == me => end_txn(&mut inner, &self.txn_done)?,
                Some(_) => {
                    let left = deadline.checked_duration_since(Instant::now()).ok_or(StorageError::Io)?;
                    inner = self.txn_done.wait_timeout(inner, left).unwrap_or_else(|e| e.into_inner()).0;
                }
                None => {
                    inner.conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| storage_error(&e))?;
                    inner.txn = Some(Txn { namespace, thread: me });
                    return Ok(inner);
                }
            }
        }
    }
}

/// The owner of the short transaction that adds a namespace.
const NEW_NAMESPACE: i64 = -1;

/// One SQLite database holding many namespaces' records. Cheap to clone
/// (the clones share the connection).
#[derive(Clone, Debug)]
pub struct SqliteDatabase {
    shared: Arc<Shared>,
}

impl SqliteDatabase {
    /// Opens (creating if needed) the database at `path` with
    /// [`SqliteOptions::new`]`(durability)`.
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, SqliteError> {
        Self::open_with(path, SqliteOptions::new(durability))
    }

    /// Opens (creating if needed) the database at `path`. A file that is not
    /// our database is refused with one error ([`SqliteError::NotADatabase`],
    /// [`SqliteError::Corrupt`], [`SqliteError::Foreign`],
    /// [`SqliteError::UnknownVersion`]) and left as it was.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, SqliteError> {
        let path = path.as_ref().to_path_buf();
        let err = |e| SqliteError::from_sqlite(&path, e);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(err)?;
        conn.busy_timeout(options.busy_timeout).map_err(err)?;
        check_or_create_schema(&conn, &path)?;
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(SqliteError::Sqlite { path, error: rusqlite::Error::InvalidQuery });
        }
        let synchronous = match options.durability {
            Durability::PowerCut => "FULL",
            Durability::ProcessCrash => "OFF",
        };
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {synchronous}; PRAGMA secure_delete = ON; PRAGMA wal_autocheckpoint = 0; \
             PRAGMA cell_size_check = ON; PRAGMA trusted_schema = OFF; PRAGMA temp_store = MEMORY;"
        ))
        .map_err(err)?;
        if options.verify_on_open {
            let mut stmt = conn.prepare("PRAGMA quick_check").map_err(err)?;
            let problems: Vec<String> =
                stmt.query_map([], |r| r.get::<_, String>(0)).map_err(err)?.collect::<Result<_, _>>().map_err(err)?;
            if problems.first().map(String::as_str) != Some("ok") {
                return Err(SqliteError::Corrupt { path, detail: problems.join("; ") });
            }
        }
        // What a crash left in the WAL (removed records' old pages) goes now.
        checkpoint(&conn).map_err(err)?;
        let locks = LockFile::open(&path)?;
        let inner = Mutex::new(Inner { conn, txn: None, commits_since_checkpoint: 0, commits_since_vacuum: HashMap::new() });
        Ok(Self { shared: Arc::new(Shared { path, options, inner, txn_done: Condvar::new(), locks }) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The options it was opened with.
    pub fn options(&self) -> SqliteOptions {
        self.shared.options
    }

    /// The storage of `namespace` (created if new), locked for this handle
    /// until it is dropped: [`SqliteError::InUse`] if another handle, in
    /// this process or another, has it open.
    pub fn storage(&self, namespace: &str) -> Result<SqliteStorage, SqliteError> {
        let path = &self.shared.path;
        let err = |e| SqliteError::from_sqlite(path, e);
        let id = {
            let find = |conn: &Connection| {
                conn.query_row("SELECT id FROM namespace WHERE name = ?1", [namespace], |r| r.get::<_, i64>(0))
                    .optional()
            };
            let inner = self.shared.lock();
            match find(&inner.conn).map_err(err)? {
                Some(id) => id,
                None => {
                    // A transaction of its own, so that no rollback of another
                    // namespace's can take the row (and hand its id out twice).
                    let busy = |error| SqliteError::Storage { path: path.clone(), error };
                    let mut inner = self.shared.own_txn(inner, NEW_NAMESPACE).map_err(busy)?;
                    let inserted = inner
                        .conn
                        .execute("INSERT OR IGNORE INTO namespace (name) VALUES (?1)", [namespace])
                        .and_then(|_| find(&inner.conn));
                    match inserted {
                        Ok(Some(id)) => {
                            end_txn(&mut inner, &self.shared.txn_done).map_err(busy)?;
                            id
                        }
                        other => {
                            rollback(&mut inner, &self.shared.txn_done);
                            return Err(err(other.err().unwrap_or(rusqlite::Error::QueryReturnedNoRows)));
                        }
                    }
                }
            }
        };
        let in_use = || SqliteError::InUse { path: path.clone(), namespace: namespace.to_string() };
        if !(0..=i64::from(u32::MAX >> 1)).contains(&id) {
            return Err(SqliteError::Corrupt { path: path.clone(), detail: format!("namespace id {id} out of range") });
        }
        let lock = self.shared.locks.acquire(id).map_err(|error| SqliteError::Io { path: self.shared.locks.path.clone(), error })?;
        let lock = lock.ok_or_else(in_use)?;
        Ok(SqliteStorage { shared: Arc::clone(&self.shared), namespace: id, name: namespace.to_string(), _lock: lock })
    }

    /// Checkpoints the WAL now (`TRUNCATE`): removed records are then gone
    /// from the files. Returns false if a reader (another connection) kept
    /// the checkpoint from finishing.
    pub fn checkpoint(&self) -> Result<bool, SqliteError> {
        let mut inner = self.shared.lock();
        if inner.txn.is_some() {
            return Ok(false);
        }
        let done = checkpoint(&inner.conn).map_err(|e| SqliteError::from_sqlite(&self.shared.path, e))?;
        if done {
            inner.commits_since_checkpoint = 0;
        }
        Ok(done)
    }

    /// Rewrites the database (`VACUUM`) and checkpoints the WAL: copies of
    /// removed records that B-tree rebalancing left in free space are then
    /// gone from the files too. Returns false if a transaction is open or a
    /// reader (another connection) kept it from finishing.
    pub fn vacuum(&self) -> Result<bool, SqliteError> {
        let mut inner = self.shared.lock();
        if inner.txn.is_some() {
            return Ok(false);
        }
        vacuum(&mut inner).map_err(|e| SqliteError::from_sqlite(&self.shared.path, e))
    }

    /// Bytes of all records of all namespaces.
    pub fn bytes_used(&self) -> Result<u64, SqliteError> {
        let inner = self.shared.lock();
        inner
            .conn
            .query_row("SELECT COALESCE(SUM(length(value)), 0) FROM record", [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|e| SqliteError::from_sqlite(&self.shared.path, e))
    }
}

/// `VACUUM`, then a checkpoint; true if both completed (a busy database is
/// not an error: the caller tries again later).
fn vacuum(inner: &mut Inner) -> rusqlite::Result<bool> {
    match inner.conn.execute_batch("VACUUM") {
        Ok(()) => {}
        Err(e) if matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)) => {
            return Ok(false);
        }
        Err(e) => return Err(e),
    }
    let done = checkpoint(&inner.conn)?;
    if done {
        inner.commits_since_checkpoint = 0;
        inner.commits_since_vacuum.clear();
    }
    Ok(done)
}

/// `PRAGMA wal_checkpoint(TRUNCATE)`; true if it completed.
fn checkpoint(conn: &Connection) -> rusqlite::Result<bool> {
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    Ok(busy == 0)
}

/// Checks that `conn` is our database (or a new, empty one, which gets our
/// schema).
fn check_or_create_schema(conn: &Connection, path: &Path) -> Result<(), SqliteError> {
    let err = |e| SqliteError::from_sqlite(path, e);
    let read = |conn: &Connection| -> rusqlite::Result<(i32, i32, i64)> {
        let app: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
        let version: i32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let objects: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        Ok((app, version, objects))
    };
    let check = |(app, version, objects): (i32, i32, i64)| -> Result<bool, SqliteError> {
        match (app, objects) {
            (APPLICATION_ID, _) if version == SCHEMA_VERSION => Ok(true),
            (APPLICATION_ID, _) => Err(SqliteError::UnknownVersion { path: path.to_path_buf(), version }),
            (0, 0) => Ok(false),
            _ => Err(SqliteError::Foreign { path: path.to_path_buf(), application_id: app }),
        }
    };
    if check(read(conn).map_err(err)?)? {
        return Ok(());
    }
    // Empty: create the schema, unless another process just did.
    conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
    let result = (|| {
        if !check(read(conn).map_err(err)?)? {
            conn.execute_batch(SCHEMA).map_err(err)?;
            conn.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"))
                .map_err(err)?;
        }
        conn.execute_batch("COMMIT").map_err(err)
    })();
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

/// The records of one namespace of a [`SqliteDatabase`], as the core's
/// [`Storage`]. Holds the namespace's lock until dropped.
#[derive(Debug)]
pub struct SqliteStorage {
    shared: Arc<Shared>,
    namespace: i64,
    name: String,
    // Dropped after `Drop::drop` committed what is open.
    _lock: NamespaceLock,
}

fn storage_error(e: &rusqlite::Error) -> StorageError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StorageError::Corrupted,
        Some(ErrorCode::DiskFull) => StorageError::Full,
        Some(ErrorCode::TooBig) => StorageError::TooLarge,
        _ => StorageError::Io,
    }
}

impl SqliteStorage {
    /// The namespace's name.
    pub fn namespace(&self) -> &str {
        &self.name
    }

    /// The database this storage is part of.
    pub fn database(&self) -> SqliteDatabase {
        SqliteDatabase { shared: Arc::clone(&self.shared) }
    }

    /// Bytes of the namespace's records.
    pub fn bytes_used(&self) -> Result<u64, StorageError> {
        let (lo, hi) = (self.row(0), self.row(u32::MAX));
        let inner = self.shared.lock();
        inner
            .conn
            .query_row("SELECT COALESCE(SUM(length(value)), 0) FROM record WHERE id BETWEEN ?1 AND ?2", [lo, hi], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|e| storage_error(&e))
    }

    fn row(&self, key: RecordKey) -> i64 {
        self.namespace << 32 | i64::from(key)
    }

    fn mine(&self, txn: Txn) -> bool {
        txn.namespace == self.namespace
    }

    /// Runs one write of this namespace inside its transaction; on failure
    /// the transaction is rolled back (the save fails, the stored state is
    /// the last committed one).
    fn write_op(&mut self, op: impl FnOnce(&Connection) -> rusqlite::Result<usize>) -> Result<(), StorageError> {
        let mut inner = self.shared.own_txn(self.shared.lock(), self.namespace)?;
        op(&inner.conn).map(|_| ()).map_err(|e| {
            rollback(&mut inner, &self.shared.txn_done);
            storage_error(&e)
        })
    }
}

/// Commits the open transaction (rolls it back if the commit fails).
fn end_txn(inner: &mut Inner, done: &Condvar) -> Result<(), StorageError> {
    match inner.conn.execute_batch("COMMIT") {
        Ok(()) => {
            inner.txn = None;
            done.notify_all();
            Ok(())
        }
        Err(e) => {
            rollback(inner, done);
            Err(storage_error(&e))
        }
    }
}

/// Rolls the open transaction back (if SQLite has not already).
fn rollback(inner: &mut Inner, done: &Condvar) {
    if !inner.conn.is_autocommit() {
        let _ = inner.conn.execute_batch("ROLLBACK");
    }
    inner.txn = None;
    done.notify_all();
}

impl Storage for SqliteStorage {
    fn read<'b>(&mut self, key: RecordKey, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, StorageError> {
        let row = self.row(key);
        let inner = self.shared.lock();
        let mut stmt = inner.conn.prepare_cached("SELECT value FROM record WHERE id = ?1").map_err(|e| storage_error(&e))?;
        let mut rows = stmt.query([row]).map_err(|e| storage_error(&e))?;
        let Some(r) = rows.next().map_err(|e| storage_error(&e))? else { return Ok(None) };
        let value = r.get_ref(0).map_err(|e| storage_error(&e))?;
        let bytes = value.as_blob().map_err(|_| StorageError::Corrupted)?;
        let out = buf.get_mut(..bytes.len()).ok_or(StorageError::TooLarge)?;
        out.copy_from_slice(bytes);
        Ok(Some(out))
    }

    fn write(&mut self, key: RecordKey, value: &[u8]) -> Result<(), StorageError> {
        let row = self.row(key);
        self.write_op(|conn| {
            conn.prepare_cached("INSERT OR REPLACE INTO record (id, value) VALUES (?1, ?2)")?.execute(params![row, value])
        })
    }

    fn remove(&mut self, key: RecordKey) -> Result<(), StorageError> {
        let row = self.row(key);
        self.write_op(|conn| conn.prepare_cached("DELETE FROM record WHERE id = ?1")?.execute([row]))
    }

    /// Commits this namespace's transaction (the save's commit point), then
    /// checkpoints the WAL every `checkpoint_every` commits and vacuums the
    /// database when this namespace has committed `vacuum_every` times since
    /// the last vacuum.
    fn committed(&mut self) -> Result<(), StorageError> {
        let mut inner = self.shared.lock();
        let me = std::thread::current().id();
        match inner.txn {
            // Rolled back by SQLite since (see `own_txn`): not committed.
            Some(t) if self.mine(t) && inner.conn.is_autocommit() => {
                rollback(&mut inner, &self.shared.txn_done);
                return Err(StorageError::Io);
            }
            Some(t) if self.mine(t) || t.thread == me => end_txn(&mut inner, &self.shared.txn_done)?,
            _ => return Ok(()),
        }
        inner.commits_since_checkpoint = inner.commits_since_checkpoint.saturating_add(1);
        // Counted per namespace: a database that several members share
        // vacuums when one of them has committed `vacuum_every` times, so
        // each has the bound of a database of its own, and the database,
        // whose vacuum costs its whole size, is not rewritten M times as
        // often for M members (a 1,023-device mls-fleet run, 250 MB, spent
        // most of its time in vacuums with one count for all).
        let every = self.shared.options.vacuum_every;
        if every > 0 {
            let mine = inner.commits_since_vacuum.entry(self.namespace).or_insert(0);
            *mine = mine.saturating_add(1);
            if *mine >= every {
                // Not done (another process reading): the count stays, so
                // this namespace's next commit tries again. It checkpoints too.
                vacuum(&mut inner).map_err(|e| storage_error(&e))?;
            }
        }
        if inner.commits_since_checkpoint >= self.shared.options.checkpoint_every {
            // Not done (another process reading): retried after the next commit.
            if checkpoint(&inner.conn).map_err(|e| storage_error(&e))? {
                inner.commits_since_checkpoint = 0;
            }
        }
        Ok(())
    }
}

impl Drop for SqliteStorage {
    fn drop(&mut self) {
        // Own records written without a `committed()` after them, or the
        // prefix of a save that failed: both are states the core accepts.
        let mut inner = self.shared.lock();
        if inner.txn.is_some_and(|t| self.mine(t)) {
            let _ = end_txn(&mut inner, &self.shared.txn_done);
        }
    }
}

/// The lock file of a database, open once per process (closing any
/// descriptor of a file drops all of the process's `fcntl` locks on it, so
/// every handle of the process shares one), with the namespaces this
/// process holds.
#[derive(Debug)]
struct LockFile {
    path: PathBuf,
    file: File,
    held: Mutex<HashSet<i64>>,
}

static LOCK_FILES: Mutex<Vec<(PathBuf, Weak<LockFile>)>> = Mutex::new(Vec::new());

impl LockFile {
    /// The lock file of database `db` (open, so it exists): named after the
    /// database file itself, not the path given (a symlink or another
    /// spelling of it got a lock file of its own, and the same member
    /// opened twice), and found in this process's list before a descriptor
    /// is opened (closing the second descriptor of an open database's lock
    /// file dropped every lock this process held on it: found in review,
    /// December 8).
    fn open(db: &Path) -> Result<Arc<Self>, SqliteError> {
        let db = db.canonicalize().map_err(|error| SqliteError::Io { path: db.to_path_buf(), error })?;
        let mut name = db.into_os_string();
        name.push("-lock");
        let path = PathBuf::from(name);
        let mut files = LOCK_FILES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        files.retain(|(_, w)| w.strong_count() > 0);
        if let Some(existing) = files.iter().find(|(p, _)| *p == path).and_then(|(_, w)| w.upgrade()) {
            return Ok(existing);
        }
        let io = |error| SqliteError::Io { path: path.clone(), error };
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        let lock = Arc::new(Self { path: path.clone(), file, held: Mutex::new(HashSet::new()) });
        files.push((path, Arc::downgrade(&lock)));
        Ok(lock)
    }

    /// Locks namespace `id` for this process; `None` if it is held already.
    fn acquire(self: &Arc<Self>, id: i64) -> std::io::Result<Option<NamespaceLock>> {
        let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if held.contains(&id) || !os_lock(&self.file, id, true)? {
            return Ok(None);
        }
        held.insert(id);
        Ok(Some(NamespaceLock { file: Arc::clone(self), id }))
    }
}

/// A namespace held by this handle; released on drop.
#[derive(Debug)]
struct NamespaceLock {
    file: Arc<LockFile>,
    id: i64,
}

impl Drop for NamespaceLock {
    fn drop(&mut self) {
        let mut held = self.file.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = os_lock(&self.file.file, self.id, false);
        held.remove(&self.id);
    }
}

