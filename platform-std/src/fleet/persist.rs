//! Saving fleet members to a state directory and loading them back, so that a
//! run can be stopped and resumed: every member in `<state-dir>/<member>/`,
//! the fleet's own progress beside them.
//!
//! **Not yet available.** The store of issue #6 (`mls_nostd::store` and the
//! file store of this crate) is being built; until it lands every save and
//! load here returns [`PersistError::NotYetSupported`], the fleet runs
//! without saving and reports state on disk as "n/a". Nothing here pretends
//! to persist.
//!
//! The interface the fleet uses, for whoever implements it with the store:
//! - [`StateDir::open`] takes `--state-dir` (or `None`: a fresh temporary
//!   directory, to be created on the first save) and fails with one clear
//!   error if the path is not a readable directory.
//! - [`StateDir::saved_progress`] tells whether the directory holds a
//!   previous run: `Ok(None)` for an empty or new directory, the saved
//!   [`Progress`] otherwise (today: `NotYetSupported` for any non-empty one).
//! - After the join and after every round the fleet calls
//!   [`StateDir::save_member`] for every member (gateway and devices, in
//!   order) and then [`StateDir::save_progress`]; a save returns the bytes
//!   the member takes on disk, which the report prints.
//! - To resume, the fleet would call [`StateDir::load_member`] for every
//!   member named in the progress (group slots from
//!   [`crate::boxed_group`]), restore its RNG from `Progress::seed` and
//!   `Progress::rng_word_pos` and continue at round `rounds_done + 1`.

use super::FleetGroup;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::key_package::KeyPackagePrivateKeys;
use std::path::{Path, PathBuf};

/// Why saving or loading failed.
#[derive(Debug)]
pub enum PersistError {
    /// The store is not available yet (issue #6).
    NotYetSupported(&'static str),
    /// The state directory cannot be used.
    Unusable {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl std::fmt::Display for PersistError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotYetSupported(what) => {
                write!(f, "{what} is not yet supported: the member store (issue #6) is not merged yet")
            }
            Self::Unusable { path, reason } => write!(f, "state directory {}: {reason}", path.display()),
        }
    }
}

impl std::error::Error for PersistError {}

/// The fleet's own state between rounds: enough to continue a seeded run
/// exactly where it stopped.
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
}

/// One member as the fleet holds it, borrowed for saving.
pub struct MemberRef<'a, const N: usize, const ARENA: usize> {
    /// Its name, also its directory's name (`gateway`, `device-000`, ...).
    pub name: &'a str,
    /// Its signature key.
    pub signer: &'a SignaturePrivateKey,
    /// Its group (inactive while a removed device waits for its re-add).
    pub group: &'a FleetGroup<N, ARENA>,
    /// A published KeyPackage still waiting for its Welcome, with its keys.
    pub pending: Option<(&'a [u8], &'a KeyPackagePrivateKeys)>,
}

/// What loading a member gives besides its group.
pub struct LoadedMember {
    /// Its signature key.
    pub signer: SignaturePrivateKey,
    /// A KeyPackage waiting for its Welcome, with its keys.
    pub pending: Option<(Vec<u8>, KeyPackagePrivateKeys)>,
}

/// Where members are saved.
#[derive(Debug)]
pub struct StateDir {
    /// `None`: a fresh temporary directory, created on the first save.
    root: Option<PathBuf>,
}

impl StateDir {
    /// Opens `dir` (created if missing); `None` stands for a fresh temporary
    /// directory. Fails if `dir` is not a directory or cannot be read.
    pub fn open(dir: Option<&Path>) -> Result<Self, PersistError> {
        let Some(dir) = dir else { return Ok(Self { root: None }) };
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
        Ok(Self { root: Some(dir.to_path_buf()) })
    }

    /// The directory, if one was given.
    pub fn path(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// The progress of a previous run saved here: `Ok(None)` if the
    /// directory is new or empty.
    pub fn saved_progress(&self) -> Result<Option<Progress>, PersistError> {
        let Some(root) = &self.root else { return Ok(None) };
        let mut entries = std::fs::read_dir(root)
            .map_err(|e| PersistError::Unusable { path: root.clone(), reason: format!("cannot read it: {e}") })?;
        if entries.next().is_none() {
            return Ok(None);
        }
        Err(PersistError::NotYetSupported("resuming from a state directory"))
    }

    /// Saves `member` into `<state-dir>/<member.name>/`, replacing what was
    /// there atomically; returns the bytes it takes on disk.
    pub fn save_member<const N: usize, const ARENA: usize>(
        &mut self,
        member: &MemberRef<'_, N, ARENA>,
    ) -> Result<u64, PersistError> {
        let _ = member;
        Err(PersistError::NotYetSupported("saving a member"))
    }

    /// Saves the fleet's progress (after its members).
    pub fn save_progress(&mut self, progress: &Progress) -> Result<(), PersistError> {
        let _ = progress;
        Err(PersistError::NotYetSupported("saving the fleet's progress"))
    }

    /// Loads member `name` into `group` (a slot from [`crate::boxed_group`]).
    pub fn load_member<const N: usize, const ARENA: usize>(
        &self,
        name: &str,
        group: &mut FleetGroup<N, ARENA>,
    ) -> Result<LoadedMember, PersistError> {
        let _ = (name, group);
        Err(PersistError::NotYetSupported("loading a member"))
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
        let d = StateDir::open(Some(&base)).expect("created");
        assert!(base.is_dir());
        assert!(d.saved_progress().expect("empty").is_none());
        // A file is not a state directory.
        let file = base.join("file");
        std::fs::write(&file, b"x").expect("write");
        assert!(matches!(StateDir::open(Some(&file)), Err(PersistError::Unusable { .. })));
        // A non-empty directory is a previous run: resuming is not available yet.
        assert!(matches!(d.saved_progress(), Err(PersistError::NotYetSupported(_))));
        let _ = std::fs::remove_dir_all(&base);
    }
}
