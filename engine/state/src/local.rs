//! The local backend: a state file, its lock, its backup and its apply journal.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{JournalEntry, State, StateError, format};

/// State stored in a local file.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    path: PathBuf,
}

/// Who holds a lock, written into the lock file so others can say who is blocking them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LockInfo {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// The command (`plan`, `apply`, ...).
    pub operation: String,
    /// When the lock was taken (RFC 3339).
    pub created: String,
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on {} running `{}` since {}",
            self.pid, self.host, self.operation, self.created
        )
    }
}

/// Holds the state lock until dropped.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

fn io<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> StateError + 'p {
    move |source| StateError::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown host".into())
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl LocalBackend {
    /// A backend for the state file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend { path: path.into() }
    }

    /// The lineage and serial of the snapshot on disk, from its first bytes.
    fn stored_version(&self) -> Result<Option<(String, u64)>, StateError> {
        use std::io::Read;
        let mut head = Vec::with_capacity(1024);
        match File::open(&self.path) {
            Ok(f) => {
                f.take(1024)
                    .read_to_end(&mut head)
                    .map_err(io("cannot read", &self.path))?;
                Ok(format::peek_version(&head))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("cannot read", &self.path)(e)),
        }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        self.path.with_file_name(name)
    }

    /// The backup of the previous snapshot.
    pub fn backup_path(&self) -> PathBuf {
        self.sibling(".backup")
    }

    fn journal_path(&self) -> PathBuf {
        self.sibling(".journal")
    }

    fn lock_path(&self) -> PathBuf {
        self.sibling(".lock")
    }

    /// Takes the state lock for `operation`, waiting up to `timeout` for another holder.
    pub fn lock(&self, operation: &str, timeout: Duration) -> Result<LockGuard, StateError> {
        let path = self.lock_path();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io("cannot create directory for", &path))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("cannot open lock file", &path))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    if start.elapsed() >= timeout {
                        let holder = std::fs::read_to_string(&path)
                            .ok()
                            .and_then(|t| serde_json::from_str::<LockInfo>(&t).ok())
                            .map_or_else(
                                || "another flotilla process".to_string(),
                                |i| i.to_string(),
                            );
                        return Err(StateError::Locked { holder });
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io("cannot lock", &path)(e)),
            }
        }
        let info = LockInfo {
            pid: std::process::id(),
            host: hostname(),
            operation: operation.to_string(),
            created: now_rfc3339(),
        };
        file.set_len(0)
            .map_err(io("cannot write lock file", &path))?;
        file.write_all(serde_json::to_string(&info).unwrap_or_default().as_bytes())
            .and_then(|_| file.flush())
            .map_err(io("cannot write lock file", &path))?;
        Ok(LockGuard { file })
    }

    /// Loads state, replaying a journal left by an interrupted apply.
    ///
    /// Returns `None` when there is no state yet, and the number of journal entries replayed.
    pub fn load(&self) -> Result<(Option<State>, usize), StateError> {
        let base = match std::fs::read(&self.path) {
            Ok(bytes) => Some(format::decode(&bytes, &self.path.display().to_string())?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io("cannot read", &self.path)(e)),
        };
        let journal = self.journal_path();
        let file = match File::open(&journal) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((base, 0)),
            Err(e) => return Err(io("cannot read", &journal)(e)),
        };
        let mut state = base.unwrap_or_else(State::new);
        let mut replayed = 0;
        for line in BufReader::new(file).lines() {
            let Ok(line) = line else { break };
            let Some((json, sum)) = line.rsplit_once('\t') else {
                break;
            };
            if blake3::hash(json.as_bytes()).to_hex().as_str() != sum {
                break; // a torn final write: everything before it is intact
            }
            let Ok(entry) = serde_json::from_str::<JournalEntry>(json) else {
                break;
            };
            state.apply_entry(&entry);
            replayed += 1;
        }
        Ok((Some(state), replayed))
    }

    /// Writes a new snapshot atomically: serial + 1, temp file, fsync, rename; the previous
    /// snapshot is kept as `.backup`. Removes any journal, whose entries the snapshot holds.
    pub fn persist(&self, state: &mut State) -> Result<(), StateError> {
        // Compare-and-swap: the file must still hold the snapshot this state was read from
        // (same lineage, same serial), whoever else has written it meanwhile.
        if let Some((lineage, serial)) = self.stored_version()?
            && (lineage != state.lineage || serial != state.serial)
        {
            return Err(StateError::Conflict {
                store: self.path.display().to_string(),
                expected: format!("lineage {} serial {}", state.lineage, state.serial),
                found: format!("lineage {lineage} serial {serial}"),
            });
        }
        state.serial += 1;
        let bytes = format::encode(state);
        let tmp = self.sibling(".tmp");
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io("cannot create directory for", &self.path))?;
        }
        {
            let mut f = File::create(&tmp).map_err(io("cannot write", &tmp))?;
            f.write_all(&bytes).map_err(io("cannot write", &tmp))?;
            f.sync_all().map_err(io("cannot sync", &tmp))?;
        }
        if self.path.exists() {
            std::fs::copy(&self.path, self.backup_path())
                .map_err(io("cannot back up", &self.path))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io("cannot replace", &self.path))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        match std::fs::remove_file(self.journal_path()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("cannot remove", &self.journal_path())(e)),
        }
    }

    /// Opens the apply journal. The state must already have a snapshot on disk (call
    /// [`LocalBackend::persist`] first for a new state) so its lineage survives a crash.
    pub fn journal(&self) -> Result<Journal, StateError> {
        let path = self.journal_path();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io("cannot open", &path))?;
        Ok(Journal { file, path })
    }
}

impl crate::StoreLock for LockGuard {}

impl crate::JournalWriter for Journal {
    fn append(&mut self, entries: &[JournalEntry]) -> Result<(), StateError> {
        Journal::append(self, entries)
    }
}

impl crate::StateStore for LocalBackend {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn lock(
        &self,
        operation: &str,
        timeout: Duration,
    ) -> Result<Box<dyn crate::StoreLock>, StateError> {
        LocalBackend::lock(self, operation, timeout)
            .map(|g| Box::new(g) as Box<dyn crate::StoreLock>)
    }

    fn load(&self) -> Result<(Option<State>, usize), StateError> {
        LocalBackend::load(self)
    }

    fn persist(&self, state: &mut State) -> Result<(), StateError> {
        LocalBackend::persist(self, state)
    }

    fn journal(&self) -> Result<Box<dyn crate::JournalWriter>, StateError> {
        LocalBackend::journal(self).map(|j| Box::new(j) as Box<dyn crate::JournalWriter>)
    }
}

/// The append-only record of changes made during one apply.
///
/// Each line is `JSON<TAB>blake3(JSON)`; [`Journal::append`] writes a batch and fsyncs once,
/// so concurrent completions share one sync (group commit).
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Appends entries durably.
    pub fn append(&mut self, entries: &[JournalEntry]) -> Result<(), StateError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for e in entries {
            let json = serde_json::to_string(e).expect("journal entries always serialize");
            buf.extend_from_slice(json.as_bytes());
            buf.push(b'\t');
            buf.extend_from_slice(blake3::hash(json.as_bytes()).to_hex().as_bytes());
            buf.push(b'\n');
        }
        self.file
            .write_all(&buf)
            .map_err(io("cannot write", &self.path))?;
        self.file.sync_data().map_err(io("cannot sync", &self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResourceInstanceState;

    fn instance(v: i64) -> ResourceInstanceState {
        ResourceInstanceState {
            provider: "provider.builtin".parse().unwrap(),
            attributes: serde_json::json!({ "input": v }),
            sensitive: serde_json::Value::Bool(false),
            dependencies: vec![],
            create_before_destroy: false,
            tainted: false,
        }
    }

    #[test]
    fn persist_keeps_backup_and_bumps_serial() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("s.json"));
        assert_eq!(b.load().unwrap().0, None);
        let mut s = State::new();
        b.persist(&mut s).unwrap();
        b.persist(&mut s).unwrap();
        assert_eq!(s.serial, 2);
        assert_eq!(b.load().unwrap().0.unwrap().serial, 2);
        assert!(b.backup_path().exists());
    }

    #[test]
    fn journal_replays_and_ignores_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("s.json"));
        let mut s = State::new();
        b.persist(&mut s).unwrap();
        let mut j = b.journal().unwrap();
        j.append(&[JournalEntry::Put {
            addr: "builtin_data.a".parse().unwrap(),
            instance: instance(1),
        }])
        .unwrap();
        j.append(&[JournalEntry::Put {
            addr: "builtin_data.b".parse().unwrap(),
            instance: instance(2),
        }])
        .unwrap();
        drop(j);
        // simulate a crash mid-write: a partial third line
        let mut f = OpenOptions::new()
            .append(true)
            .open(b.journal_path())
            .unwrap();
        f.write_all(b"{\"op\":\"put\",\"addr\":\"builtin_da")
            .unwrap();
        let (loaded, replayed) = b.load().unwrap();
        let loaded = loaded.unwrap();
        assert_eq!(replayed, 2);
        assert_eq!(loaded.resources.len(), 2);
        assert_eq!(loaded.lineage, s.lineage);
    }

    #[test]
    fn persist_refuses_a_state_that_is_not_the_one_last_seen() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("s.json"));
        let mut s = State::new();
        b.persist(&mut s).unwrap();
        // Another writer of the same file moves it on.
        let other = LocalBackend::new(dir.path().join("s.json"));
        let mut theirs = other.load().unwrap().0.unwrap();
        other.persist(&mut theirs).unwrap();
        // The copy read before is stale now: refused, and nothing is written.
        let err = b.persist(&mut s).unwrap_err();
        assert!(matches!(err, StateError::Conflict { .. }), "{err}");
        assert_eq!(other.load().unwrap().0.unwrap().serial, 2);
        // Reading again makes writing possible again.
        let mut fresh = b.load().unwrap().0.unwrap();
        b.persist(&mut fresh).unwrap();
        assert_eq!(fresh.serial, 3);
    }

    #[test]
    fn second_lock_times_out_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("s.json"));
        let _held = b.lock("apply", Duration::ZERO).unwrap();
        let err = b.lock("plan", Duration::from_millis(120)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("running `apply`"), "{msg}");
        drop(_held);
        assert!(b.lock("plan", Duration::ZERO).is_ok());
    }
}
