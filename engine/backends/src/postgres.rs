//! The PostgreSQL backend: `backend "postgres" { conn_str = "..." schema_name = "..." }`.
//!
//! Tables (created on first use, under a transaction-level advisory lock so two first runs
//! do not race): `flotilla_states` (one row per workspace: lineage, serial, the encoded
//! snapshot), `flotilla_journal` (an apply's entries, one transaction per batch, deleted
//! when the next snapshot is written), `flotilla_locks` (who holds each workspace's lock) and
//! `flotilla_requests` (rollout requests left for the lock holder, in the order made).
//!
//! The lock is `pg_try_advisory_lock` on a key derived from the schema and workspace, taken
//! on a connection of its own that lives exactly as long as the guard: when the holder dies,
//! the server ends its session and the lock is free; when the server goes away, the guard
//! reports the lock lost and apply stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use flotilla_state::{
    Backend, Codec, JournalEntry, JournalWriter, LockInfo, RolloutRequest, State, StateError,
    StateStore, StoreLock, check_deletable, check_workspace_name, workspace_list,
};
use tokio::runtime::Handle;
use tokio_postgres::Client;

use crate::{block_on, remote};

/// The schema when `schema_name` is not set.
pub const DEFAULT_SCHEMA: &str = "flotilla_remote_state";

/// The backend block's arguments.
#[derive(Clone)]
pub struct PostgresSettings {
    /// A libpq connection string or URL (`postgres://user@host:port/db?sslmode=require`).
    pub conn_str: String,
    /// The schema holding the tables.
    pub schema_name: String,
}

impl std::fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection string may hold a password.
        f.debug_struct("PostgresSettings")
            .field("schema_name", &self.schema_name)
            .finish_non_exhaustive()
    }
}

/// State in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct Postgres {
    shared: Arc<Shared>,
}

struct Shared {
    settings: PostgresSettings,
    codec: Codec,
    handle: Handle,
    /// The connection for reads and writes, made on first use.
    session: tokio::sync::Mutex<Option<Session>>,
    ready: AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

struct Session {
    client: Client,
    alive: Arc<AtomicBool>,
}

impl Postgres {
    /// A backend for the database and schema `settings` name; `handle` is the runtime its
    /// connections run on.
    pub fn new(settings: PostgresSettings, codec: Codec, handle: Handle) -> Postgres {
        Postgres {
            shared: Arc::new(Shared {
                settings,
                codec,
                handle,
                session: tokio::sync::Mutex::new(None),
                ready: AtomicBool::new(false),
            }),
        }
    }
}

impl Shared {
    fn describe(&self) -> String {
        format!("postgres schema \"{}\"", self.settings.schema_name)
    }

    fn err(&self, action: &str, e: tokio_postgres::Error) -> StateError {
        remote(&self.describe(), action, pg_message(&e))
    }

    fn schema(&self) -> String {
        quote_ident(&self.settings.schema_name)
    }

    /// Runs `f` with the shared session and waits for it: how the synchronous trait's
    /// methods reach the database.
    fn run<T>(
        &self,
        f: impl AsyncFnOnce(&Client) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        block_on(&self.handle, self.with_client(f))
    }

    /// Runs `f` with the shared session, connecting (and creating the tables) first.
    async fn with_client<T>(
        &self,
        f: impl AsyncFnOnce(&Client) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let mut session = self.session.lock().await;
        if session
            .as_ref()
            .is_none_or(|s| !s.alive.load(Ordering::SeqCst))
        {
            *session = Some(connect(self).await?);
        }
        let client = &session.as_ref().expect("connected above").client;
        if !self.ready.load(Ordering::SeqCst) {
            self.create_tables(client).await?;
            self.ready.store(true, Ordering::SeqCst);
        }
        f(client).await
    }

    async fn create_tables(&self, client: &Client) -> Result<(), StateError> {
        let s = self.schema();
        let setup_key = key(&format!("flotilla setup {}", self.settings.schema_name));
        let sql = format!(
            "SELECT pg_advisory_xact_lock({setup_key});
             CREATE SCHEMA IF NOT EXISTS {s};
             CREATE TABLE IF NOT EXISTS {s}.flotilla_states (
                 name TEXT PRIMARY KEY,
                 lineage TEXT NOT NULL,
                 serial BIGINT NOT NULL,
                 data BYTEA NOT NULL,
                 updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
             CREATE TABLE IF NOT EXISTS {s}.flotilla_journal (
                 seq BIGSERIAL PRIMARY KEY,
                 name TEXT NOT NULL,
                 entry BYTEA NOT NULL);
             CREATE INDEX IF NOT EXISTS flotilla_journal_name ON {s}.flotilla_journal (name, seq);
             CREATE TABLE IF NOT EXISTS {s}.flotilla_locks (
                 name TEXT PRIMARY KEY,
                 id TEXT NOT NULL,
                 info TEXT NOT NULL,
                 backend_pid INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS {s}.flotilla_requests (
                 seq BIGSERIAL PRIMARY KEY,
                 name TEXT NOT NULL,
                 id TEXT NOT NULL UNIQUE,
                 request TEXT NOT NULL);"
        );
        client
            .batch_execute(&format!("BEGIN; {sql} COMMIT;"))
            .await
            .map_err(|e| self.err("cannot create the state tables", e))
    }
}

/// Connects, driving the connection on the backend's runtime; `alive` turns false when it
/// ends (the server went away, or the session was terminated).
async fn connect(shared: &Shared) -> Result<Session, StateError> {
    let config: tokio_postgres::Config = shared
        .settings
        .conn_str
        .parse()
        .map_err(|e| shared.err("invalid connection string", e))?;
    let alive = Arc::new(AtomicBool::new(true));
    let client = if matches!(
        config.get_ssl_mode(),
        tokio_postgres::config::SslMode::Require
    ) {
        open(shared, &config, tls_connector(), Arc::clone(&alive)).await?
    } else {
        open(shared, &config, tokio_postgres::NoTls, Arc::clone(&alive)).await?
    };
    Ok(Session { client, alive })
}

/// One connection with `tls`, its driver spawned on the backend's runtime.
async fn open<T>(
    shared: &Shared,
    config: &tokio_postgres::Config,
    tls: T,
    alive: Arc<AtomicBool>,
) -> Result<Client, StateError>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (client, conn) = tokio::time::timeout(Duration::from_secs(30), config.connect(tls))
        .await
        .map_err(|_| remote(&shared.describe(), "cannot connect", "timed out after 30s"))?
        .map_err(|e| shared.err("cannot connect", e))?;
    shared.handle.spawn(async move {
        let _ = conn.await;
        alive.store(false, Ordering::SeqCst);
    });
    Ok(client)
}

fn tls_connector() -> tokio_postgres_rustls::MakeRustlsConnect {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

/// The server's message (and detail) rather than the client's wrapper text.
fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{} ({d})", db.message()),
            None => db.message().to_string(),
        },
        None => {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                source = s.source();
            }
            msg
        }
    }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The advisory lock key for a name.
fn key(name: &str) -> i64 {
    let h = blake3::hash(name.as_bytes());
    i64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"))
}

impl Backend for Postgres {
    fn describe(&self) -> String {
        self.shared.describe()
    }

    fn workspaces(&self) -> Result<Vec<String>, StateError> {
        let s = &self.shared;
        let sql = format!("SELECT name FROM {}.flotilla_states", s.schema());
        let names: Vec<String> = s.run(async |c| {
            let rows = c
                .query(&sql, &[])
                .await
                .map_err(|e| s.err("cannot list workspaces", e))?;
            Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
        })?;
        Ok(workspace_list(names))
    }

    fn store(&self, workspace: &str) -> Result<Arc<dyn StateStore>, StateError> {
        check_workspace_name(workspace)?;
        Ok(Arc::new(PgStore {
            shared: Arc::clone(&self.shared),
            workspace: workspace.to_string(),
        }))
    }

    fn delete_workspace(&self, workspace: &str) -> Result<(), StateError> {
        check_deletable(workspace)?;
        let s = &self.shared;
        let schema = s.schema();
        s.run(async |c| {
            c.batch_execute("BEGIN")
                .await
                .map_err(|e| s.err("cannot delete workspace", e))?;
            for table in ["flotilla_states", "flotilla_journal", "flotilla_requests"] {
                c.execute(
                    &format!("DELETE FROM {schema}.{table} WHERE name = $1"),
                    &[&workspace],
                )
                .await
                .map_err(|e| s.err("cannot delete workspace", e))?;
            }
            c.batch_execute("COMMIT")
                .await
                .map_err(|e| s.err("cannot delete workspace", e))
        })
    }
}

/// One workspace's state in the database.
#[derive(Debug)]
pub struct PgStore {
    shared: Arc<Shared>,
    workspace: String,
}

impl PgStore {
    fn name(&self) -> String {
        format!(
            "{} workspace \"{}\"",
            self.shared.describe(),
            self.workspace
        )
    }

    fn lock_key(&self) -> i64 {
        key(&format!(
            "flotilla lock {} {}",
            self.shared.settings.schema_name, self.workspace
        ))
    }

    /// Writes a snapshot in one transaction: `expected` is the (lineage, serial) the row
    /// must still have (`None`: no check); clears the journal.
    async fn write(
        &self,
        c: &Client,
        state: &State,
        expected: Option<(&str, u64)>,
    ) -> Result<(), StateError> {
        let s = &self.shared;
        let schema = s.schema();
        let data = s.codec.encode_state(state);
        let serial = state.serial as i64;
        let fail = |e| s.err("cannot write state", e);
        c.batch_execute("BEGIN").await.map_err(fail)?;
        let result = async {
            let current = c
                .query_opt(
                    &format!(
                        "SELECT lineage, serial FROM {schema}.flotilla_states WHERE name = $1 FOR UPDATE"
                    ),
                    &[&self.workspace],
                )
                .await
                .map_err(fail)?
                .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64));
            if let (Some((lineage, found)), Some((want_lineage, want_serial))) = (&current, expected)
                && (lineage != want_lineage || *found != want_serial)
            {
                return Err(StateError::Conflict {
                    store: self.name(),
                    expected: format!("lineage {want_lineage} serial {want_serial}"),
                    found: format!("lineage {lineage} serial {found}"),
                });
            }
            // A first write that lost a race with another first write fails on the key.
            c.execute(
                &format!(
                    "INSERT INTO {schema}.flotilla_states (name, lineage, serial, data) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (name) DO UPDATE SET lineage = $2, serial = $3, data = $4, updated_at = now()
                     WHERE $5"
                ),
                &[&self.workspace, &state.lineage, &serial, &data, &current.is_some()],
            )
            .await
            .map_err(fail)
            .and_then(|n| {
                if n == 1 {
                    Ok(())
                } else {
                    Err(StateError::Conflict {
                        store: self.name(),
                        expected: "no state yet".into(),
                        found: "state written by another run meanwhile".into(),
                    })
                }
            })?;
            c.execute(
                &format!("DELETE FROM {schema}.flotilla_journal WHERE name = $1"),
                &[&self.workspace],
            )
            .await
            .map_err(fail)?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => c.batch_execute("COMMIT").await.map_err(fail),
            Err(e) => {
                let _ = c.batch_execute("ROLLBACK").await;
                Err(e)
            }
        }
    }
}

/// Holds a workspace's advisory lock on its own connection.
struct PgLock {
    /// Kept only to hold the session open; dropping it ends the session.
    _client: Client,
    alive: Arc<AtomicBool>,
}

impl StoreLock for PgLock {
    fn lost(&self) -> bool {
        !self.alive.load(Ordering::SeqCst)
    }
}

struct PgJournal {
    shared: Arc<Shared>,
    workspace: String,
}

impl JournalWriter for PgJournal {
    fn append(&mut self, entries: &[JournalEntry]) -> Result<(), StateError> {
        if entries.is_empty() {
            return Ok(());
        }
        let s = &self.shared;
        let lines: Vec<Vec<u8>> = entries
            .iter()
            .map(|e| {
                s.codec
                    .seal_line(&serde_json::to_vec(e).expect("entries serialize"))
            })
            .collect();
        let sql = format!(
            "INSERT INTO {}.flotilla_journal (name, entry) SELECT $1, unnest($2::bytea[])",
            s.schema()
        );
        s.run(async |c| {
            // One statement is one transaction: the whole batch or none of it.
            c.execute(&sql, &[&self.workspace, &lines])
                .await
                .map(|_| ())
                .map_err(|e| s.err("cannot record the apply journal", e))
        })
    }
}

impl StateStore for PgStore {
    fn describe(&self) -> String {
        self.name()
    }

    fn lock(&self, operation: &str, timeout: Duration) -> Result<Box<dyn StoreLock>, StateError> {
        let s = &self.shared;
        let info = LockInfo::here(operation);
        let key = self.lock_key();
        let schema = s.schema();
        block_on(&s.handle, async {
            // Tables first, on the shared session.
            s.with_client(async |_| Ok(())).await?;
            let session = connect(s).await?;
            let c = &session.client;
            let start = Instant::now();
            loop {
                let got: bool = c
                    .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                    .await
                    .map_err(|e| s.err("cannot lock state", e))?
                    .get(0);
                if got {
                    break;
                }
                if start.elapsed() >= timeout {
                    let holder = c
                        .query_opt(
                            &format!("SELECT info FROM {schema}.flotilla_locks WHERE name = $1"),
                            &[&self.workspace],
                        )
                        .await
                        .ok()
                        .flatten()
                        .and_then(|r| {
                            serde_json::from_str::<LockInfo>(&r.get::<_, String>(0)).ok()
                        });
                    return Err(match holder {
                        Some(h) => StateError::Locked {
                            id: Some(h.id.clone()),
                            holder: h.to_string(),
                        },
                        None => StateError::Locked {
                            holder: "another flotilla process".into(),
                            id: None,
                        },
                    });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let json = serde_json::to_string(&info).expect("lock info serializes");
            c.execute(
                &format!(
                    "INSERT INTO {schema}.flotilla_locks (name, id, info, backend_pid) VALUES ($1, $2, $3, pg_backend_pid())
                     ON CONFLICT (name) DO UPDATE SET id = $2, info = $3, backend_pid = pg_backend_pid()"
                ),
                &[&self.workspace, &info.id, &json],
            )
            .await
            .map_err(|e| s.err("cannot record the lock holder", e))?;
            // Dropping the guard closes the session, which releases the advisory lock; the
            // lock row stays as a record of the last holder, read only while it is held.
            Ok(Box::new(PgLock {
                _client: session.client,
                alive: session.alive,
            }) as Box<dyn StoreLock>)
        })
    }

    fn load(&self) -> Result<(Option<State>, usize), StateError> {
        let s = &self.shared;
        let schema = s.schema();
        let name = self.name();
        s.run(async |c| {
            let fail = |e| s.err("cannot read state", e);
            let row = c
                .query_opt(
                    &format!("SELECT data FROM {schema}.flotilla_states WHERE name = $1"),
                    &[&self.workspace],
                )
                .await
                .map_err(fail)?;
            let base = match row {
                Some(r) => Some(s.codec.decode_state(r.get::<_, &[u8]>(0), &name)?),
                None => None,
            };
            let entries: Vec<Vec<u8>> = c
                .query(
                    &format!(
                        "SELECT entry FROM {schema}.flotilla_journal WHERE name = $1 ORDER BY seq"
                    ),
                    &[&self.workspace],
                )
                .await
                .map_err(fail)?
                .iter()
                .map(|r| r.get::<_, Vec<u8>>(0))
                .collect();
            if entries.is_empty() {
                return Ok((base, 0));
            }
            let mut state = base.unwrap_or_else(State::new);
            let n = crate::replay(&s.codec, &mut state, entries, &name)?;
            Ok((Some(state), n))
        })
    }

    fn persist(&self, state: &mut State) -> Result<(), StateError> {
        let s = &self.shared;
        let mut next = state.clone();
        next.serial += 1;
        s.run(async |c| {
            self.write(c, &next, Some((&state.lineage, state.serial)))
                .await
        })?;
        state.serial = next.serial;
        Ok(())
    }

    fn journal(&self) -> Result<Box<dyn JournalWriter>, StateError> {
        Ok(Box::new(PgJournal {
            shared: Arc::clone(&self.shared),
            workspace: self.workspace.clone(),
        }))
    }

    fn write_exact(&self, state: &State) -> Result<(), StateError> {
        let s = &self.shared;
        s.run(async |c| self.write(c, state, None).await)
    }

    fn force_unlock(&self, id: &str) -> Result<(), StateError> {
        let s = &self.shared;
        let schema = s.schema();
        let key = self.lock_key();
        s.run(async |c| {
                let fail = |e| s.err("cannot unlock", e);
                let holder = c
                    .query_opt(
                        &format!(
                            "SELECT backend_pid FROM {schema}.flotilla_locks WHERE name = $1 AND id = $2"
                        ),
                        &[&self.workspace, &id],
                    )
                    .await
                    .map_err(fail)?;
                let Some(pid) = holder.map(|r| r.get::<_, i32>(0)) else {
                    return Err(StateError::Refused(format!(
                        "{} has no lock with ID {id}",
                        self.name()
                    )));
                };
                // The session must still hold this workspace's lock (pg_locks splits a
                // bigint key into classid, the high half, and objid, the low half).
                let holds: bool = c
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
                           AND pid = $1 AND classid::bigint = $2 AND objid::bigint = $3 AND objsubid = 1)",
                        &[&pid, &((key >> 32) & 0xffff_ffff), &(key & 0xffff_ffff)],
                    )
                    .await
                    .map_err(fail)?
                    .get(0);
                if !holds {
                    return Err(StateError::Refused(format!(
                        "the lock with ID {id} is no longer held: its holder has already exited"
                    )));
                }
                c.execute("SELECT pg_terminate_backend($1)", &[&pid])
                    .await
                    .map_err(fail)?;
                Ok(())
            })
    }

    fn post_request(&self, request: &RolloutRequest) -> Result<(), StateError> {
        let s = &self.shared;
        let schema = s.schema();
        let json = serde_json::to_string(request).expect("requests serialize");
        s.run(async |c| {
            c.execute(
                &format!(
                    "INSERT INTO {schema}.flotilla_requests (name, id, request) VALUES ($1, $2, $3)"
                ),
                &[&self.workspace, &request.id, &json],
            )
            .await
            .map_err(|e| s.err("cannot record the request", e))?;
            Ok(())
        })
    }

    fn requests(&self) -> Result<Vec<RolloutRequest>, StateError> {
        let s = &self.shared;
        let schema = s.schema();
        let name = self.name();
        s.run(async |c| {
            let rows = c
                .query(
                    &format!(
                        "SELECT request FROM {schema}.flotilla_requests WHERE name = $1 ORDER BY seq"
                    ),
                    &[&self.workspace],
                )
                .await
                .map_err(|e| s.err("cannot read requests", e))?;
            rows.iter()
                .map(|r| {
                    serde_json::from_str(r.get::<_, &str>(0)).map_err(|e| StateError::Corrupt {
                        path: format!("{name} (a request)"),
                        reason: e.to_string(),
                    })
                })
                .collect()
        })
    }

    fn remove_requests(&self, ids: &[String]) -> Result<(), StateError> {
        if ids.is_empty() {
            return Ok(());
        }
        let s = &self.shared;
        let schema = s.schema();
        s.run(async |c| {
            c.execute(
                &format!("DELETE FROM {schema}.flotilla_requests WHERE name = $1 AND id = ANY($2)"),
                &[&self.workspace, &ids],
            )
            .await
            .map_err(|e| s.err("cannot remove requests", e))?;
            Ok(())
        })
    }
}
