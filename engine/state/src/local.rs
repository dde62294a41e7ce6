//! The local backend: a state file, its lock, its backup and its apply journal.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Codec, JournalEntry, LockInfo, State, StateError, format};

/// State stored in a local file.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    path: PathBuf,
    codec: Codec,
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

impl LocalBackend {
    /// A backend for the state file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend::with_codec(path, Codec::plain())
    }

    /// A backend for the state file at `path` that encodes (and encrypts) with `codec`.
    pub fn with_codec(path: impl Into<PathBuf>, codec: Codec) -> LocalBackend {
        LocalBackend {
            path: path.into(),
            codec,
        }
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

    /// Where requests for the lock holder wait: one file each.
    fn requests_dir(&self) -> PathBuf {
        self.sibling(".requests")
    }

    /// Leaves a request: written to a temporary name and renamed, so a reader never sees
    /// part of one.
    pub fn post_request(&self, request: &crate::RolloutRequest) -> Result<(), StateError> {
        let dir = self.requests_dir();
        std::fs::create_dir_all(&dir).map_err(io("cannot create", &dir))?;
        let path = dir.join(format!("{}.json", request.id));
        let tmp = dir.join(format!(".{}.tmp", request.id));
        let json = serde_json::to_vec_pretty(request).expect("requests serialize");
        std::fs::write(&tmp, json).map_err(io("cannot write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("cannot write", &path))
    }

    /// The requests waiting, oldest first.
    pub fn requests(&self) -> Result<Vec<crate::RolloutRequest>, StateError> {
        let dir = self.requests_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("cannot read", &dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(io("cannot read", &dir))?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let text = match std::fs::read(&path) {
                Ok(t) => t,
                // Removed by the holder since the listing.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("cannot read", &path)(e)),
            };
            out.push(
                serde_json::from_slice(&text).map_err(|e| StateError::Corrupt {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?,
            );
        }
        out.sort_by(|a: &crate::RolloutRequest, b| (&a.at, &a.id).cmp(&(&b.at, &b.id)));
        Ok(out)
    }

    /// Removes requests by id (and their directory once empty).
    pub fn remove_requests(&self, ids: &[String]) -> Result<(), StateError> {
        let dir = self.requests_dir();
        for id in ids {
            let path = dir.join(format!("{id}.json"));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("cannot remove", &path)(e)),
            }
        }
        if !ids.is_empty() {
            // Fails while another request waits there, which is as it should be.
            let _ = std::fs::remove_dir(&dir);
        }
        Ok(())
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
                        return Err(StateError::Locked { holder, id: None });
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io("cannot lock", &path)(e)),
            }
        }
        let info = LockInfo::here(operation);
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
            Ok(bytes) => Some(
                self.codec
                    .decode_state(&bytes, &self.path.display().to_string())?,
            ),
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
        let journal_name = journal.display().to_string();
        for line in BufReader::new(file).lines() {
            let Ok(line) = line else { break };
            let Some((sealed, sum)) = line.rsplit_once('\t') else {
                break;
            };
            if blake3::hash(sealed.as_bytes()).to_hex().as_str() != sum {
                break; // a torn final write: everything before it is intact
            }
            let json = self.codec.open_line(sealed.as_bytes(), &journal_name)?;
            let Ok(entry) = serde_json::from_slice::<JournalEntry>(&json) else {
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
        self.write_snapshot(state)
    }

    /// Writes `state` as the snapshot (temp file, fsync, rename, `.backup`) and removes the
    /// journal.
    fn write_snapshot(&self, state: &State) -> Result<(), StateError> {
        let bytes = self.codec.encode_state(state);
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
        Ok(Journal {
            file,
            path,
            codec: self.codec.clone(),
        })
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

    fn write_exact(&self, state: &State) -> Result<(), StateError> {
        self.write_snapshot(state)
    }

    fn force_unlock(&self, id: &str) -> Result<(), StateError> {
        let held = std::fs::read_to_string(self.lock_path())
            .ok()
            .and_then(|t| serde_json::from_str::<LockInfo>(&t).ok());
        Err(StateError::Refused(match held {
            Some(info) if info.id == id => format!(
                "the local lock is held by a running process ({info}); the operating system releases it when that process exits, so stop it instead"
            ),
            _ => format!("{} is not locked with ID {id}", self.path.display()),
        }))
    }

    fn post_request(&self, request: &crate::RolloutRequest) -> Result<(), StateError> {
        LocalBackend::post_request(self, request)
    }

    fn requests(&self) -> Result<Vec<crate::RolloutRequest>, StateError> {
        LocalBackend::requests(self)
    }

    fn remove_requests(&self, ids: &[String]) -> Result<(), StateError> {
        LocalBackend::remove_requests(self, ids)
    }
}

/// The local backend's workspaces: `default` in the configured file, every other one in
/// `flotilla.state.d/NAME/` beside it, under the same file name (Terraform's layout).
#[derive(Debug, Clone)]
pub struct LocalWorkspaces {
    path: PathBuf,
    codec: Codec,
}

impl LocalWorkspaces {
    /// Workspaces whose `default` state is the file at `path`.
    pub fn new(path: impl Into<PathBuf>, codec: Codec) -> LocalWorkspaces {
        LocalWorkspaces {
            path: path.into(),
            codec,
        }
    }

    fn dir(&self) -> PathBuf {
        self.path.with_file_name("flotilla.state.d")
    }

    /// The state file of `workspace`.
    pub fn path_of(&self, workspace: &str) -> PathBuf {
        if workspace == crate::DEFAULT_WORKSPACE {
            self.path.clone()
        } else {
            self.dir()
                .join(workspace)
                .join(self.path.file_name().unwrap_or_default())
        }
    }
}

impl crate::Backend for LocalWorkspaces {
    fn describe(&self) -> String {
        format!("local backend ({})", self.path.display())
    }

    fn workspaces(&self) -> Result<Vec<String>, StateError> {
        let mut out = Vec::new();
        let dir = self.dir();
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if e.path().is_dir() && crate::check_workspace_name(&name).is_ok() {
                        out.push(name);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("cannot read", &dir)(e)),
        }
        Ok(crate::workspace_list(out))
    }

    fn store(&self, workspace: &str) -> Result<std::sync::Arc<dyn crate::StateStore>, StateError> {
        crate::check_workspace_name(workspace)?;
        Ok(std::sync::Arc::new(LocalBackend::with_codec(
            self.path_of(workspace),
            self.codec.clone(),
        )))
    }

    fn delete_workspace(&self, workspace: &str) -> Result<(), StateError> {
        crate::check_deletable(workspace)?;
        let dir = self.dir().join(workspace);
        std::fs::remove_dir_all(&dir).map_err(io("cannot remove", &dir))
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
    codec: Codec,
}

impl Journal {
    /// Appends entries durably.
    pub fn append(&mut self, entries: &[JournalEntry]) -> Result<(), StateError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for e in entries {
            let json = serde_json::to_vec(e).expect("journal entries always serialize");
            let line = self.codec.seal_line(&json);
            buf.extend_from_slice(&line);
            buf.push(b'\t');
            buf.extend_from_slice(blake3::hash(&line).to_hex().as_bytes());
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
    fn requests_wait_beside_the_state_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("s.json"));
        assert!(b.requests().unwrap().is_empty());
        let _held = b.lock("apply", Duration::ZERO).unwrap();
        // Needs no lock.
        let mut first =
            crate::RolloutRequest::new("rollout.a", "r1", crate::RequestAction::Pause, None);
        first.at = "2026-01-01T00:00:00Z".into();
        let second =
            crate::RolloutRequest::new("rollout.b", "r2", crate::RequestAction::Approve, Some(1));
        b.post_request(&second).unwrap();
        b.post_request(&first).unwrap();
        assert_eq!(b.requests().unwrap(), vec![first.clone(), second.clone()]);
        b.remove_requests(std::slice::from_ref(&first.id)).unwrap();
        assert_eq!(b.requests().unwrap(), vec![second.clone()]);
        b.remove_requests(&[second.id.clone(), "gone".into()])
            .unwrap();
        assert!(b.requests().unwrap().is_empty());
        assert!(!b.requests_dir().exists(), "the empty directory is removed");
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
            msg.contains(&format!("(pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("running `apply`"), "{msg}");
        drop(_held);
        assert!(b.lock("plan", Duration::ZERO).is_ok());
    }

    #[test]
    fn workspaces_live_beside_the_default_state() {
        use crate::Backend;
        let dir = tempfile::tempdir().unwrap();
        let ws = LocalWorkspaces::new(dir.path().join("flotilla.state.json"), Codec::plain());
        assert_eq!(ws.workspaces().unwrap(), ["default"]);
        ws.store("staging")
            .unwrap()
            .persist(&mut State::new())
            .unwrap();
        assert!(
            dir.path()
                .join("flotilla.state.d/staging/flotilla.state.json")
                .exists()
        );
        assert_eq!(ws.workspaces().unwrap(), ["default", "staging"]);
        assert!(ws.store("Not Valid").is_err());
        assert!(ws.delete_workspace("default").is_err());
        ws.delete_workspace("staging").unwrap();
        assert_eq!(ws.workspaces().unwrap(), ["default"]);
    }

    #[test]
    fn an_encrypted_journal_replays_only_with_the_key() {
        use crate::{Encryption, Key, KeySource};
        let key = |k: u8| Key {
            name: format!("key {k}"),
            source: KeySource::Raw([k; 32]),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let b = LocalBackend::with_codec(
            &path,
            Codec::encrypted(Encryption::new(key(1), vec![], false)),
        );
        let mut s = State::new();
        b.persist(&mut s).unwrap();
        let mut j = b.journal().unwrap();
        let mut secret = instance(1);
        secret.attributes = serde_json::json!({ "input": "do-not-show-me" });
        j.append(&[JournalEntry::Put {
            addr: "builtin_data.a".parse().unwrap(),
            instance: secret,
        }])
        .unwrap();
        let on_disk = std::fs::read_to_string(b.journal_path()).unwrap();
        assert!(!on_disk.contains("do-not-show-me"), "{on_disk}");
        let (loaded, replayed) = b.load().unwrap();
        assert_eq!((loaded.unwrap().resources.len(), replayed), (1, 1));
        let wrong = LocalBackend::with_codec(
            &path,
            Codec::encrypted(Encryption::new(key(2), vec![], false)),
        );
        assert!(matches!(wrong.load(), Err(StateError::Decrypt { .. })));
        assert!(matches!(
            LocalBackend::new(&path).load(),
            Err(StateError::Encrypted { .. })
        ));
    }
}
