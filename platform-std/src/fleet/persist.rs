//! Saving fleet members to a state directory and loading them back, so that a
//! run can be stopped after a round and resumed.
//!
//! Layout of `<state-dir>`:
//! - `fleet.json`: the fleet's [`Progress`] (seed, RNG position, rounds done,
//!   the epoch and epoch authenticator all members share after them),
//!   written after the members, atomically (temporary file, `fsync`,
//!   rename, `fsync` of the directory). It is the run's commit point: a
//!   directory whose members are ahead of it (a run stopped mid-round) is
//!   refused at resume.
//! - `fleet.sqlite` (with SQLite's `-wal` and `-shm` files while open, and
//!   `fleet.sqlite-lock`): one [`SqliteDatabase`] for the whole fleet, a
//!   [`SqliteStorage`] namespace per member (`gateway`, `device-000`, ...).
//!   Each save of a member is one SQLite transaction; `--fsync` makes every
//!   commit wait for the disk ([`Durability::PowerCut`]). The core's records
//!   (keys with kind bytes 1 to 4, see `mls_nostd::store`): the group in slot
//!   [`GROUP_SLOT`], the private keys of a published KeyPackage that waits
//!   for its Welcome (`store::durable::store_key_package`, which keeps the
//!   signature key too). The fleet's own records use kind bytes from `0x40`
//!   up, outside the core's key space:
//!   - [`MEMBER_RECORD`] (`0x40000000`): format byte, the member's name,
//!     its signature private key, and a SHA-256 of all that;
//!   - [`PENDING_RECORD`] (`0x41000000`): the KeyPackage (as published)
//!     whose keys wait in the core's KeyPackage records, and its SHA-256.
//!
//! The fleet's members use the core's durable operations (persist before
//! emit), so each member's directory follows every operation; after every
//! round [`MemberStore::save_group`] saves each member once more in full (a
//! checkpoint that does not depend on which operations were durable) and
//! measures its bytes, then [`StateDir::save_progress`] commits the round.
//!
//! Loading runs `store::recover` first (finishing or discarding a save a
//! crash interrupted), then `Group::load`, which checks every record against
//! the head's hashes: a flipped byte is `StoreError::Corrupt`, reported as
//! one line naming the member.

use super::FleetGroup;
use crate::{Durability, Flush, SqliteDatabase, SqliteStorage};
use mls_nostd::codec::Decode;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::key_package::{KeyPackage, KeyPackagePrivateKeys};
use mls_nostd::store::durable::{RecordBuffer, load_key_package, store_key_package};
use mls_nostd::store::{Parts, RecordKey, Storage, StoreError, recover};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The group's slot in a member's store.
pub const GROUP_SLOT: u8 = 0;
/// The fleet's record of a member: name and signature key.
pub const MEMBER_RECORD: RecordKey = 0x4000_0000;
/// The fleet's record of a KeyPackage waiting for its Welcome.
pub const PENDING_RECORD: RecordKey = 0x4100_0000;
/// The progress file's name.
pub const PROGRESS_FILE: &str = "fleet.json";
/// The members' database file.
pub const DATABASE_FILE: &str = "fleet.sqlite";
/// Format of the fleet's own records and of the progress file.
const FORMAT: u8 = 1;
/// Why saving or loading failed (one line each).
#[derive(Debug)]
pub enum PersistError {
    /// The state directory cannot be used.
    Unusable {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A member's store failed or holds damaged state.
    Member {
        /// The member.
        name: String,
        /// What failed.
        what: &'static str,
        /// The store's error.
        error: StoreError,
    },
    /// A file could not be read or written.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// The progress file is not one this program wrote.
    BadProgress {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl std::fmt::Display for PersistError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unusable { path, reason } => write!(f, "state directory {}: {reason}", path.display()),
            Self::Member { name, what, error } => write!(f, "{name}: {what}: {error}"),
            Self::Io { path, error } => write!(f, "{}: {error}", path.display()),
            Self::BadProgress { path, reason } => write!(f, "{}: not a progress file of mls-fleet: {reason}", path.display()),
        }
    }
}

impl std::error::Error for PersistError {}

/// The fleet's own state after a round: enough to continue a seeded run
/// exactly where it stopped, and to check that the members are where the
/// run left them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The run's seed.
    pub seed: u64,
    /// Position of the run's ChaCha20 RNG (`get_word_pos`).
    pub rng_word_pos: u128,
    /// Rounds completed (0: the join is done).
    pub rounds_done: u64,
    /// The rounds the run was asked for.
    pub rounds: u64,
    /// Cipher suite (0x0001 or 0x0003).
    pub suite: u16,
    /// Number of devices.
    pub devices: usize,
    /// The members' epoch after `rounds_done`.
    pub epoch: u64,
    /// The members' epoch authenticator then.
    pub epoch_authenticator: Vec<u8>,
    /// Epoch changes checked so far.
    pub epochs_checked: u64,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

impl Progress {
    /// The progress as JSON (one object of numbers and one hex string).
    pub fn to_json(&self) -> String {
        format!(
            "{{\n  \"format\": {FORMAT},\n  \"seed\": {},\n  \"rng_word_pos\": {},\n  \"rounds_done\": {},\n  \"rounds\": {},\n  \
             \"suite\": {},\n  \"devices\": {},\n  \"epoch\": {},\n  \"epoch_authenticator\": \"{}\",\n  \"epochs_checked\": {}\n}}\n",
            self.seed,
            self.rng_word_pos,
            self.rounds_done,
            self.rounds,
            self.suite,
            self.devices,
            self.epoch,
            hex(&self.epoch_authenticator),
            self.epochs_checked,
        )
    }

    /// Parses what [`Progress::to_json`] wrote (a flat object; every field
    /// required, no other field allowed).
    pub fn from_json(text: &str) -> Result<Self, String> {
        let body = text
            .trim()
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .ok_or("not a JSON object")?;
        let mut fields = std::collections::BTreeMap::new();
        for pair in body.split(',') {
            let (k, v) = pair.split_once(':').ok_or_else(|| format!("bad field {:?}", pair.trim()))?;
            let k = k.trim().strip_prefix('"').and_then(|k| k.strip_suffix('"')).ok_or("bad field name")?;
            if fields.insert(k.to_string(), v.trim().to_string()).is_some() {
                return Err(format!("field {k} twice"));
            }
        }
        let mut take = |k: &str| fields.remove(k).ok_or_else(|| format!("no field {k}"));
        fn num<T: std::str::FromStr>(k: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("field {k}: not a number: {v}"))
        }
        let format: u8 = num("format", take("format")?)?;
        if format != FORMAT {
            return Err(format!("format {format}, expected {FORMAT}"));
        }
        let auth = take("epoch_authenticator")?;
        let auth = auth
            .strip_prefix('"')
            .and_then(|a| a.strip_suffix('"'))
            .and_then(unhex)
            .ok_or("field epoch_authenticator: not a hex string")?;
        let p = Progress {
            seed: num("seed", take("seed")?)?,
            rng_word_pos: num("rng_word_pos", take("rng_word_pos")?)?,
            rounds_done: num("rounds_done", take("rounds_done")?)?,
            rounds: num("rounds", take("rounds")?)?,
            suite: num("suite", take("suite")?)?,
            devices: num("devices", take("devices")?)?,
            epoch: num("epoch", take("epoch")?)?,
            epoch_authenticator: auth,
            epochs_checked: num("epochs_checked", take("epochs_checked")?)?,
        };
        if let Some(k) = fields.keys().next() {
            return Err(format!("unknown field {k}"));
        }
        Ok(p)
    }
}

/// What loading a member gives besides its group.
pub struct LoadedMember {
    /// Its signature key.
    pub signer: SignaturePrivateKey,
    /// A KeyPackage waiting for its Welcome, with its keys.
    pub pending: Option<(Vec<u8>, KeyPackagePrivateKeys)>,
}

/// One member's namespace of the fleet's database, and the member's name.
#[derive(Debug)]
pub struct MemberStore {
    name: String,
    storage: SqliteStorage,
}

impl MemberStore {
    /// The member's storage, for the core's durable operations.
    pub fn storage(&mut self) -> &mut SqliteStorage {
        &mut self.storage
    }

    fn fail(&self, what: &'static str) -> impl Fn(StoreError) -> PersistError + '_ {
        move |error| PersistError::Member { name: self.name.clone(), what, error }
    }

    /// Saves the member's group in full (a checkpoint after a round);
    /// returns the bytes the member takes on disk.
    pub fn save_group<const N: usize, const ARENA: usize>(
        &mut self,
        group: &mut FleetGroup<N, ARENA>,
        buf: &mut RecordBuffer,
    ) -> Result<u64, PersistError> {
        group.save(&mut self.storage, GROUP_SLOT, Parts::ALL, buf).map_err(self.fail("saving its group"))?;
        self.bytes_used()
    }

    /// Bytes of all the member's records.
    pub fn bytes_used(&self) -> Result<u64, PersistError> {
        self.storage.bytes_used().map_err(StoreError::Storage).map_err(self.fail("measuring its records"))
    }

    /// Commits the fleet's own writes (the core commits its own saves).
    fn commit(&mut self, what: &'static str) -> Result<(), PersistError> {
        self.storage.committed().map_err(StoreError::Storage).map_err(self.fail(what))
    }

    /// Writes the member record (name and signature key).
    pub fn save_signer(&mut self, signer: &SignaturePrivateKey) -> Result<(), PersistError> {
        let mut record = vec![FORMAT];
        record.push(u8::try_from(self.name.len()).unwrap_or(u8::MAX));
        record.extend_from_slice(self.name.as_bytes());
        record.extend_from_slice(signer.as_bytes());
        let digest = mls_nostd::crypto::sha256(&[&record]);
        record.extend_from_slice(digest.as_bytes());
        let result = self.storage.write(MEMBER_RECORD, &record);
        zeroize::Zeroize::zeroize(record.as_mut_slice());
        result.map_err(StoreError::Storage).map_err(self.fail("saving its signature key"))?;
        self.commit("saving its signature key")
    }

    /// Keeps a published KeyPackage and its private keys (with the signature
    /// key) until a Welcome consumes it (`Group::join_durable` removes the
    /// keys at its commit point).
    pub fn save_pending(
        &mut self,
        key_package: &[u8],
        keys: &KeyPackagePrivateKeys,
        signer: &SignaturePrivateKey,
        buf: &mut RecordBuffer,
    ) -> Result<(), PersistError> {
        let invalid = |e| StoreError::Invalid(e);
        let (suite, reference) = KeyPackage::decode_exact(key_package)
            .map_err(invalid)
            .and_then(|kp| {
                let suite = CipherSuite::from_u16(kp.tbs.cipher_suite)
                    .ok_or(StoreError::Invalid(mls_nostd::codec::CodecError::InvalidValue))?;
                let reference = kp
                    .reference(suite)
                    .map_err(|_| StoreError::Invalid(mls_nostd::codec::CodecError::InvalidValue))?;
                Ok((suite, reference))
            })
            .map_err(self.fail("saving a KeyPackage"))?;
        store_key_package(&mut self.storage, suite, &reference, keys, signer, buf).map_err(self.fail("saving KeyPackage keys"))?;
        let mut record = key_package.to_vec();
        record.extend_from_slice(mls_nostd::crypto::sha256(&[key_package]).as_bytes());
        self.storage.write(PENDING_RECORD, &record).map_err(StoreError::Storage).map_err(self.fail("saving a KeyPackage"))?;
        self.commit("saving a KeyPackage")
    }

    /// Forgets the pending KeyPackage (its keys are the core's to remove).
    pub fn clear_pending(&mut self) -> Result<(), PersistError> {
        self.storage.remove(PENDING_RECORD).map_err(StoreError::Storage).map_err(self.fail("removing a KeyPackage"))?;
        self.commit("removing a KeyPackage")
    }

    /// Reads one of the fleet's records: its content without the trailing
    /// SHA-256, which must match.
    fn read_own(&mut self, key: RecordKey, buf: &mut RecordBuffer, what: &'static str) -> Result<Option<Vec<u8>>, PersistError> {
        let name = self.name.clone();
        let fail = move |error| PersistError::Member { name: name.clone(), what, error };
        let Some(bytes) = self.storage.read(key, buf).map_err(StoreError::Storage).map_err(&fail)? else { return Ok(None) };
        let split = bytes.len().checked_sub(32).ok_or(StoreError::Corrupt).map_err(&fail)?;
        let (content, digest) = bytes.split_at(split);
        if mls_nostd::crypto::sha256(&[content]).as_bytes() != digest {
            return Err(fail(StoreError::Corrupt));
        }
        let content = content.to_vec();
        buf.fill(0);
        Ok(Some(content))
    }

    /// Loads the member into `group` (its previous state is replaced):
    /// recovery first, then the group (every record checked), the signature
    /// key and a pending KeyPackage.
    pub fn load<const N: usize, const ARENA: usize>(
        &mut self,
        group: &mut FleetGroup<N, ARENA>,
        buf: &mut RecordBuffer,
    ) -> Result<LoadedMember, PersistError> {
        recover(&mut self.storage, GROUP_SLOT, &mut buf[..]).map_err(self.fail("recovering its store"))?;
        group
            .load(&mut self.storage, GROUP_SLOT, &super::FLEET_IDENTITY, buf)
            .map_err(self.fail("loading its group"))?;
        let mut record = self
            .read_own(MEMBER_RECORD, buf, "loading its signature key")?
            .ok_or(StoreError::NotFound)
            .map_err(self.fail("loading its signature key"))?;
        let name = self.name.as_bytes();
        let signer = match record.split_first() {
            Some((&FORMAT, rest)) if rest.first() == Some(&(name.len() as u8)) && rest.get(1..1 + name.len()) == Some(name) => {
                rest.get(1 + name.len()..).and_then(|k| SignaturePrivateKey::from_slice(group.suite(), k).ok())
            }
            Some((&FORMAT, _)) => None,
            Some((&v, _)) => return Err(self.fail("loading its signature key")(StoreError::WrongVersion(v))),
            None => None,
        };
        zeroize::Zeroize::zeroize(record.as_mut_slice());
        let signer = signer.ok_or(StoreError::Corrupt).map_err(self.fail("loading its signature key (not its record)"))?;
        let mut pending = None;
        if let Some(kp) = self.read_own(PENDING_RECORD, buf, "loading its KeyPackage")? {
            let reference = KeyPackage::decode_exact(&kp)
                .ok()
                .and_then(|k| CipherSuite::from_u16(k.tbs.cipher_suite).and_then(|s| k.reference(s).ok()))
                .ok_or(StoreError::Corrupt)
                .map_err(self.fail("loading its KeyPackage"))?;
            // Keys gone: a join consumed the KeyPackage before the record
            // was removed; the group holds the join.
            if let Some((keys, _)) = load_key_package::<_, SignaturePrivateKey>(&mut self.storage, &reference, buf).map_err(self.fail("loading its KeyPackage keys"))?
            {
                pending = Some((kp, keys));
            }
        }
        Ok(LoadedMember { signer, pending })
    }
}

/// Where members are saved.
#[derive(Debug)]
pub struct StateDir {
    root: PathBuf,
    /// A fresh temporary directory made for this run.
    temporary: bool,
    flush: Flush,
    /// The members' database, opened with the first member (after
    /// [`StateDir::saved_progress`] has looked at the directory).
    db: std::cell::OnceCell<SqliteDatabase>,
}

impl StateDir {
    /// Makes a fresh temporary directory: in `/dev/shm` (memory) if
    /// `in_memory` and it exists, else in the system's temporary directory.
    /// One file per record makes every save create files, which costs far
    /// more on a disk than in memory (see the README's numbers); a temporary
    /// directory need not outlive the machine.
    pub fn temporary(in_memory: bool, flush: Flush) -> Result<Self, PersistError> {
        let shm = Path::new("/dev/shm");
        let base = if in_memory && shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        for _ in 0..16 {
            let tag = {
                use rand_core::Rng;
                crate::os_rng().next_u32()
            };
            let root = base.join(format!("mls-fleet-{}-{tag:08x}", std::process::id()));
            match std::fs::create_dir(&root) {
                Ok(()) => return Ok(Self { root, temporary: true, flush, db: Default::default() }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(PersistError::Unusable { path: root, reason: format!("cannot create it: {e}") }),
            }
        }
        Err(PersistError::Unusable { path: base, reason: "no fresh name for a temporary directory".into() })
    }

    /// Opens `dir` (created if missing). Fails if `dir` is not a directory
    /// or cannot be read. Members' writes are flushed as `flush` says; the
    /// progress file is always flushed.
    pub fn open(dir: &Path, flush: Flush) -> Result<Self, PersistError> {
        let unusable = |reason: String| PersistError::Unusable { path: dir.to_path_buf(), reason };
        match std::fs::metadata(dir) {
            Ok(m) if !m.is_dir() => return Err(unusable("not a directory".into())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(|e| unusable(format!("cannot create it: {e}")))?
            }
            Err(e) => return Err(unusable(e.to_string())),
        }
        std::fs::read_dir(dir).map_err(|e| unusable(format!("cannot read it: {e}")))?;
        Ok(Self { root: dir.to_path_buf(), temporary: false, flush, db: Default::default() })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// True if this is a fresh temporary directory ([`StateDir::temporary`]).
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }

    /// The progress of a previous run saved here: `Ok(None)` if the
    /// directory is empty. A non-empty directory without a progress file is
    /// refused (it is not ours, or a run stopped before its join was saved).
    pub fn saved_progress(&self) -> Result<Option<Progress>, PersistError> {
        let file = self.root.join(PROGRESS_FILE);
        match std::fs::read_to_string(&file) {
            Ok(text) => Progress::from_json(&text).map(Some).map_err(|reason| PersistError::BadProgress { path: file, reason }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut entries = std::fs::read_dir(&self.root)
                    .map_err(|e| PersistError::Unusable { path: self.root.clone(), reason: format!("cannot read it: {e}") })?;
                if entries.next().is_none() {
                    Ok(None)
                } else {
                    Err(PersistError::Unusable {
                        path: self.root.clone(),
                        reason: format!("not empty and holds no {PROGRESS_FILE} (not a state directory of mls-fleet, or a run stopped before its join was saved)"),
                    })
                }
            }
            Err(error) => Err(PersistError::Io { path: file, error }),
        }
    }

    /// The members' database (`<state-dir>/fleet.sqlite`, created if
    /// missing).
    pub fn database(&self) -> Result<&SqliteDatabase, PersistError> {
        if self.db.get().is_none() {
            let path = self.root.join(DATABASE_FILE);
            let durability = match self.flush {
                Flush::PowerCut => Durability::PowerCut,
                Flush::ProcessCrash => Durability::ProcessCrash,
            };
            let db = SqliteDatabase::open(&path, durability)
                .map_err(|e| PersistError::Unusable { path: self.root.clone(), reason: e.to_string() })?;
            let _ = self.db.set(db);
        }
        self.db.get().ok_or_else(|| PersistError::Unusable { path: self.root.clone(), reason: "database not open".into() })
    }

    /// The store of member `name` (its namespace of the database, created if
    /// missing).
    pub fn member(&self, name: &str) -> Result<MemberStore, PersistError> {
        let storage = self
            .database()?
            .storage(name)
            .map_err(|e| PersistError::Unusable { path: self.root.clone(), reason: e.to_string() })?;
        Ok(MemberStore { name: name.to_string(), storage })
    }

    /// Saves the fleet's progress (after its members), atomically.
    pub fn save_progress(&mut self, progress: &Progress) -> Result<(), PersistError> {
        let file = self.root.join(PROGRESS_FILE);
        let tmp = self.root.join(format!("{PROGRESS_FILE}.tmp"));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |error| PersistError::Io { path: path.clone(), error }
        };
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(progress.to_json().as_bytes()).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, &file).map_err(io(&file))?;
        #[cfg(unix)]
        std::fs::File::open(&self.root).and_then(|d| d.sync_all()).map_err(io(&self.root))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dir_checks() {
        let base = std::env::temp_dir().join(format!("mls-fleet-persist-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        // A new directory is created and holds no previous run.
        let mut d = StateDir::open(&base, Flush::ProcessCrash).expect("created");
        assert!(base.is_dir() && !d.is_temporary());
        assert!(d.saved_progress().expect("empty").is_none());
        // A file is not a state directory.
        let file = base.join("file");
        std::fs::write(&file, b"x").expect("write");
        assert!(matches!(StateDir::open(&file, Flush::ProcessCrash), Err(PersistError::Unusable { .. })));
        // A non-empty directory without progress is not ours.
        assert!(matches!(d.saved_progress(), Err(PersistError::Unusable { .. })));
        // Progress round-trips through its file.
        let p = Progress {
            seed: u64::MAX,
            rng_word_pos: u128::from(u64::MAX) * 3,
            rounds_done: 2,
            rounds: 5,
            suite: 3,
            devices: 64,
            epoch: 17,
            epoch_authenticator: vec![0, 1, 0xfe, 0xff],
            epochs_checked: 17,
        };
        d.save_progress(&p).expect("saved");
        assert_eq!(d.saved_progress().expect("read"), Some(p.clone()));
        assert!(!base.join("fleet.json.tmp").exists());
        // Damaged progress files are refused.
        let json = p.to_json();
        for bad in [
            json.replace("\"seed\"", "\"sead\""),
            json.replace("\"format\": 1", "\"format\": 2"),
            json.replace("01fe", "0xfe"),
            json.replace('}', ", \"extra\": 1}"),
            json[..json.len() / 2].to_string(),
        ] {
            std::fs::write(base.join(PROGRESS_FILE), &bad).expect("write");
            assert!(matches!(d.saved_progress(), Err(PersistError::BadProgress { .. })), "{bad}");
        }
        // A temporary directory is fresh each time.
        let t1 = StateDir::temporary(true, Flush::ProcessCrash).expect("temp");
        let t2 = StateDir::temporary(false, Flush::ProcessCrash).expect("temp");
        assert!(t1.is_temporary() && t1.path().is_dir() && t1.path() != t2.path());
        for t in [t1, t2] {
            let _ = std::fs::remove_dir(t.path());
        }
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn member_records_are_checked() {
        let base = std::env::temp_dir().join(format!("mls-fleet-member-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let d = StateDir::open(&base, Flush::ProcessCrash).expect("created");
        let mut m = d.member("device-001").expect("member");
        // One opener per member.
        let e = d.member("device-001").expect_err("in use");
        assert!(e.to_string().contains("in use"), "{e}");
        let signer = SignaturePrivateKey::from_slice(CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519, &[7u8; 32]).expect("key");
        m.save_signer(&signer).expect("saved");
        let mut buf = Box::new([0u8; mls_nostd::store::MAX_RECORD_LEN]);
        let record = m.read_own(MEMBER_RECORD, &mut buf, "test").expect("read").expect("present");
        assert!(record.ends_with(signer.as_bytes()));
        // A flipped byte is a corrupt record (changed behind the store's back).
        let conn = rusqlite::Connection::open(base.join(DATABASE_FILE)).expect("db");
        let id: i64 = conn
            .query_row("SELECT id FROM namespace WHERE name = 'device-001'", [], |r| r.get(0))
            .expect("namespace");
        let row = id << 32 | i64::from(MEMBER_RECORD);
        let mut cell: Vec<u8> = conn.query_row("SELECT value FROM record WHERE id = ?1", [row], |r| r.get(0)).expect("record");
        cell[10] ^= 1;
        conn.execute("UPDATE record SET value = ?1 WHERE id = ?2", rusqlite::params![cell, row]).expect("update");
        let e = m.read_own(MEMBER_RECORD, &mut buf, "test").expect_err("corrupt");
        assert!(matches!(e, PersistError::Member { error: StoreError::Corrupt, .. }), "{e}");
        let _ = std::fs::remove_dir_all(&base);
    }
}
