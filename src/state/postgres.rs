//! The `postgres` state store: a team's run records and lock in one PostgreSQL database.
//!
//! Records are rows of `<schema>.annoform_records` keyed by (workspace, dataset, key), with
//! their serial and lineage in columns and the record itself as `json`. `json`, not `jsonb`:
//! PostgreSQL keeps `json` text as written, while `jsonb` reorders object keys, and a
//! record's maps (uploaded labels per sample, the id map) are kept in their order so that
//! every store gives back the bytes it was given (`state migrate` round-trips exactly).
//!
//! The lock is a session-level `pg_advisory_lock` on its own connection, keyed by a hash of
//! (schema, workspace): workspaces sharing a database never block each other, and the server
//! frees the lock when the holder's connection ends, killed or not. Who holds it is a row of
//! `<schema>.annoform_locks`, read only to name the holder.

use crate::state::error::{PermissionDenied, Result, StateError};
use crate::state::holder::Holder;
use crate::state::pg_tls::{self, TlsUrl};
use crate::state::record::{self, RECORD_VERSION, RunRecord};
use crate::state::secrets::assert_no_secrets;
use crate::state::store::{HeldLock, StateStore, Waiting};
use postgres::error::SqlState;
use postgres::{Client, GenericClient};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The version of the tables this annoform creates and reads.
const TABLES_VERSION: i64 = 1;

/// How often a waiting process tries the lock again.
const POLL: Duration = Duration::from_millis(200);

/// How long connecting may take when the URL does not say.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What to do about a holder that is gone: nothing, the server freed its lock already.
const LOCK_HINT: &str = "a killed holder's lock is freed by the server, so wait for it to finish or, if it hangs, run `annoform state unlock --force` (ends its database session)";

/// The `[state]` settings of a `postgres` store.
#[derive(Clone)]
pub struct PostgresSettings {
    /// The connection URL (a secret: holds the password; never printed).
    pub url: String,
    /// The schema of the tables (default `annoform`).
    pub schema: String,
    /// The name this workspace's records and lock are kept under (default: the workspace
    /// directory's name); clones of one repository share state by sharing it.
    pub workspace: String,
}

impl fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("url", &"(set)")
            .field("schema", &self.schema)
            .field("workspace", &self.workspace)
            .finish()
    }
}

/// Run records and the lock in PostgreSQL.
pub struct PostgresStore {
    config: postgres::Config,
    /// Server and database, for messages (no secret).
    server: String,
    user: String,
    schema: String,
    workspace: String,
    client: Mutex<Client>,
    tls: MakeRustlsConnect,
}

impl PostgresStore {
    /// Connects, and creates the tables on first use.
    pub fn open(settings: &PostgresSettings) -> Result<PostgresStore> {
        check_schema_name(&settings.schema)?;
        let url = TlsUrl::split(&settings.url);
        let tls = pg_tls::connector(url.root_cert.as_deref())?;
        let mut config: postgres::Config = url.url.parse().map_err(|e| {
            // The parser's message quotes no part of the URL, so it is safe to show.
            StateError::Settings(format!(
                "the state URL is not a PostgreSQL connection URL ({e}); write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let server = describe_server(&config);
        let user = config.get_user().unwrap_or("(default)").to_string();
        let client = connect(&config, &tls).map_err(|e| error_of(&server, &user, "connect", e))?;
        let store = PostgresStore {
            server,
            user,
            schema: settings.schema.clone(),
            workspace: settings.workspace.clone(),
            client: Mutex::new(client),
            config,
            tls,
        };
        store.ensure_tables()?;
        Ok(store)
    }

    fn client(&self) -> MutexGuard<'_, Client> {
        // A panic while holding the connection leaves nothing half-done on our side: the
        // statements are atomic on the server.
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn table(&self, name: &str) -> String {
        format!("\"{}\".{name}", self.schema)
    }

    /// Maps a driver error to what the user must fix.
    fn error(&self, action: &'static str, e: postgres::Error) -> StateError {
        error_of(&self.server, &self.user, action, e)
    }

    /// Where a record is kept, for errors.
    fn place(&self, dataset: &str, key: &str) -> String {
        format!(
            "{} {} workspace `{}` record {dataset}/{key}",
            self.server,
            self.table("annoform_records"),
            self.workspace
        )
    }

    /// The advisory lock key: one per (schema, workspace), so neither two workspaces nor two
    /// schemas of one database share a lock.
    fn lock_key(&self) -> i64 {
        key_of(&["annoform lock", &self.schema, &self.workspace])
    }

    /// Creates the schema and tables if they are missing; refuses tables of a newer version.
    fn ensure_tables(&self) -> Result<()> {
        let mut client = self.client();
        let meta = self.table("annoform_meta");
        let exists: Option<String> = client
            .query_one("SELECT to_regclass($1)::text", &[&meta])
            .map_err(|e| self.error("look for the state tables", e))?
            .get(0);
        if exists.is_none() {
            self.create_tables(&mut client)?;
        }
        let version: Option<String> = client
            .query_opt(
                &format!("SELECT value FROM {meta} WHERE name = 'version'"),
                &[],
            )
            .map_err(|e| self.error("read the state tables' version", e))?
            .map(|row| row.get(0));
        match version.as_deref().map(str::parse::<i64>) {
            Some(Ok(TABLES_VERSION)) => Ok(()),
            Some(Ok(found)) => Err(StateError::Database {
                server: self.server.clone(),
                action: "read the state tables",
                reason: format!(
                    "{meta} says version {found}; this annoform reads version {TABLES_VERSION}: upgrade annoform"
                ),
            }),
            _ => Err(StateError::Database {
                server: self.server.clone(),
                action: "read the state tables",
                reason: format!("{meta} holds no version: these are not annoform's tables"),
            }),
        }
    }

    /// Creates the tables in one transaction, serialised across processes by a transaction
    /// advisory lock (concurrent `CREATE TABLE IF NOT EXISTS` may otherwise collide).
    fn create_tables(&self, client: &mut Client) -> Result<()> {
        let s = &self.schema;
        let (meta, records, locks) = (
            self.table("annoform_meta"),
            self.table("annoform_records"),
            self.table("annoform_locks"),
        );
        let denied = |e: postgres::Error| match e.code() {
            Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
                StateError::Permission(Box::new(PermissionDenied {
                    server: self.server.clone(),
                    user: self.user.clone(),
                    action: format!("create annoform's state tables in schema `{s}`"),
                    reason: db_message(&e),
                    fix: format!(
                        "have the database owner grant it (`GRANT CREATE ON DATABASE {db} TO \"{user}\"`, or `GRANT USAGE, CREATE ON SCHEMA \"{s}\" TO \"{user}\"` once the schema exists), or create the tables once as the owner (docs/state.md has the SQL); or set `[state] schema` to a schema you may create tables in",
                        db = self.config.get_dbname().unwrap_or(&self.user),
                        user = self.user
                    ),
                }))
            }
            _ => self.error("create the state tables", e),
        };
        let mut tx = client.transaction().map_err(denied)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&key_of(&["annoform tables", s])],
        )
        .map_err(denied)?;
        let has_schema = tx
            .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[s])
            .map_err(denied)?
            .is_some();
        if !has_schema {
            tx.batch_execute(&format!("CREATE SCHEMA \"{s}\""))
                .map_err(denied)?;
        }
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {meta} (name text PRIMARY KEY, value text NOT NULL);
             CREATE TABLE IF NOT EXISTS {records} (
                 workspace text NOT NULL,
                 dataset text NOT NULL,
                 key text NOT NULL,
                 serial bigint NOT NULL,
                 lineage text NOT NULL,
                 record json NOT NULL,
                 saved_at timestamptz NOT NULL DEFAULT now(),
                 PRIMARY KEY (workspace, dataset, key));
             CREATE TABLE IF NOT EXISTS {locks} (
                 workspace text PRIMARY KEY,
                 pid bigint NOT NULL,
                 host text NOT NULL,
                 command text NOT NULL,
                 since text NOT NULL,
                 session_pid integer NOT NULL);
             INSERT INTO {meta} VALUES ('version', '{TABLES_VERSION}') ON CONFLICT DO NOTHING;"
        ))
        .map_err(denied)?;
        tx.commit().map_err(denied)
    }

    /// The stored serial of a record (0 if none).
    fn serial(&self, client: &mut impl GenericClient, dataset: &str, key: &str) -> Result<u64> {
        let row = client
            .query_opt(
                &format!(
                    "SELECT serial FROM {} WHERE workspace = $1 AND dataset = $2 AND key = $3",
                    self.table("annoform_records")
                ),
                &[&self.workspace, &dataset, &key],
            )
            .map_err(|e| self.error("read a state record", e))?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
    }

    /// Inserts a record unless one exists; whether it did.
    fn insert(&self, client: &mut impl GenericClient, record: &RunRecord) -> Result<bool> {
        let text = record::to_json(record, &self.place(&record.dataset, &record.key))?;
        let n = client
            .execute(
                &format!(
                    "INSERT INTO {} (workspace, dataset, key, serial, lineage, record)
                     VALUES ($1, $2, $3, $4, $5, $6::text::json) ON CONFLICT DO NOTHING",
                    self.table("annoform_records")
                ),
                &[
                    &self.workspace,
                    &record.dataset,
                    &record.key,
                    &(record.serial as i64),
                    &record.lineage,
                    &text,
                ],
            )
            .map_err(|e| self.error("save a state record", e))?;
        Ok(n == 1)
    }

    /// The holder row, if the lock is held.
    fn read_holder(&self, client: &mut Client) -> Result<Option<(Holder, i32)>> {
        let row = client
            .query_opt(
                &format!(
                    "SELECT pid, host, command, since, session_pid FROM {} WHERE workspace = $1",
                    self.table("annoform_locks")
                ),
                &[&self.workspace],
            )
            .map_err(|e| self.error("read the lock holder", e))?;
        Ok(row.map(|r| {
            (
                Holder {
                    pid: r.get::<_, i64>(0) as u32,
                    host: r.get(1),
                    command: r.get(2),
                    since: r.get(3),
                },
                r.get(4),
            )
        }))
    }

    /// The session holding this workspace's advisory lock, if any.
    fn lock_session(&self, client: &mut Client) -> Result<Option<i32>> {
        let key = self.lock_key() as u64;
        let row = client
            .query_opt(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
                 AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[&((key >> 32) as i64), &((key & 0xffff_ffff) as i64)],
            )
            .map_err(|e| self.error("look up the lock", e))?;
        Ok(row.map(|r| r.get(0)))
    }

    /// The holder of the lock as held now: the row is trusted only if its session holds the
    /// lock (a killed holder's row outlives its lock).
    fn current_holder(&self, client: &mut Client) -> Result<Option<Holder>> {
        let session = self.lock_session(client)?;
        Ok(self
            .read_holder(client)?
            .filter(|(_, pid)| Some(*pid) == session)
            .map(|(h, _)| h))
    }
}

impl StateStore for PostgresStore {
    fn describe(&self) -> String {
        format!(
            "{} (schema `{}`, workspace `{}`)",
            self.server, self.schema, self.workspace
        )
    }

    fn list(&self) -> Result<Vec<(String, String)>> {
        let rows = self
            .client()
            .query(
                &format!(
                    "SELECT dataset, key FROM {} WHERE workspace = $1
                     ORDER BY dataset COLLATE \"C\", key COLLATE \"C\"",
                    self.table("annoform_records")
                ),
                &[&self.workspace],
            )
            .map_err(|e| self.error("list the state records", e))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn get(&self, dataset: &str, key: &str) -> Result<Option<RunRecord>> {
        let row = self
            .client()
            .query_opt(
                &format!(
                    "SELECT record::text FROM {} WHERE workspace = $1 AND dataset = $2 AND key = $3",
                    self.table("annoform_records")
                ),
                &[&self.workspace, &dataset, &key],
            )
            .map_err(|e| self.error("read a state record", e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let place = self.place(dataset, key);
        let record = record::from_json(row.get(0), &place)?;
        if record.dataset != dataset || record.key != key {
            return Err(StateError::Corrupt {
                place,
                message: format!(
                    "holds the record of {}/{}, not {dataset}/{key}",
                    record.dataset, record.key
                ),
            });
        }
        Ok(Some(record))
    }

    fn put(&self, record: &mut RunRecord) -> Result<()> {
        assert_no_secrets(record)?;
        let mut next = record.clone();
        next.format_version = RECORD_VERSION;
        next.serial = record.serial + 1;
        let mut client = self.client();
        let conflict = |client: &mut Client| -> Result<()> {
            Err(StateError::Conflict {
                dataset: record.dataset.clone(),
                key: record.key.clone(),
                expected: record.serial,
                found: self.serial(client, &record.dataset, &record.key)?,
            })
        };
        if record.serial == 0 {
            // A new record: placed only where none is, so two processes creating the same
            // run cannot both succeed.
            if !self.insert(&mut *client, &next)? {
                return conflict(&mut client);
            }
        } else {
            let text = record::to_json(&next, &self.place(&next.dataset, &next.key))?;
            let n = client
                .execute(
                    &format!(
                        "UPDATE {} SET serial = $4, lineage = $5, record = $6::text::json,
                         saved_at = now()
                         WHERE workspace = $1 AND dataset = $2 AND key = $3 AND serial = $7",
                        self.table("annoform_records")
                    ),
                    &[
                        &self.workspace,
                        &next.dataset,
                        &next.key,
                        &(next.serial as i64),
                        &next.lineage,
                        &text,
                        &(record.serial as i64),
                    ],
                )
                .map_err(|e| self.error("save a state record", e))?;
            if n != 1 {
                return conflict(&mut client);
            }
        }
        *record = next;
        Ok(())
    }

    fn import(&self, record: &RunRecord) -> Result<()> {
        assert_no_secrets(record)?;
        if self.insert(&mut *self.client(), record)? {
            Ok(())
        } else {
            Err(StateError::Exists {
                dataset: record.dataset.clone(),
                key: record.key.clone(),
            })
        }
    }

    fn delete(&self, dataset: &str, key: &str) -> Result<bool> {
        let n = self
            .client()
            .execute(
                &format!(
                    "DELETE FROM {} WHERE workspace = $1 AND dataset = $2 AND key = $3",
                    self.table("annoform_records")
                ),
                &[&self.workspace, &dataset, &key],
            )
            .map_err(|e| self.error("delete a state record", e))?;
        Ok(n == 1)
    }

    fn rename(&self, dataset: &str, old: &str, new: &str) -> Result<()> {
        let mut record = self
            .get(dataset, old)?
            .ok_or_else(|| StateError::NotFound {
                dataset: dataset.to_string(),
                key: old.to_string(),
            })?;
        if old == new {
            return Ok(());
        }
        let read_at = record.serial;
        record.key = new.to_string();
        record.serial += 1;
        let mut client = self.client();
        let mut tx = client
            .transaction()
            .map_err(|e| self.error("rename a state record", e))?;
        // The old record goes only if it is still the one read: a rename racing an apply
        // must not lose the apply's save.
        let gone = tx
            .execute(
                &format!(
                    "DELETE FROM {} WHERE workspace = $1 AND dataset = $2 AND key = $3 AND serial = $4",
                    self.table("annoform_records")
                ),
                &[&self.workspace, &dataset, &old, &(read_at as i64)],
            )
            .map_err(|e| self.error("rename a state record", e))?;
        if gone != 1 {
            return Err(StateError::Conflict {
                dataset: dataset.to_string(),
                key: old.to_string(),
                expected: read_at,
                found: self.serial(&mut tx, dataset, old)?,
            });
        }
        if !self.insert(&mut tx, &record)? {
            return Err(StateError::Exists {
                dataset: dataset.to_string(),
                key: new.to_string(),
            });
        }
        tx.commit()
            .map_err(|e| self.error("rename a state record", e))
    }

    fn lock_with(
        &self,
        command: &str,
        wait: Duration,
        waiting: Waiting<'_>,
    ) -> Result<Box<dyn HeldLock>> {
        // A connection of its own: the lock lives exactly as long as this session.
        let mut client = connect(&self.config, &self.tls).map_err(|e| self.error("connect", e))?;
        let key = self.lock_key();
        let deadline = Instant::now() + wait;
        let mut told = false;
        loop {
            let got: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .map_err(|e| self.error("take the workspace lock", e))?
                .get(0);
            if got {
                break;
            }
            if Instant::now() >= deadline {
                return Err(StateError::Locked {
                    place: self.describe(),
                    holder: self.current_holder(&mut client)?,
                    after: LOCK_HINT,
                });
            }
            if !told {
                waiting(self.current_holder(&mut client)?.as_ref());
                told = true;
            }
            std::thread::sleep(POLL);
        }
        let holder = Holder::current(command);
        client
            .execute(
                &format!(
                    "INSERT INTO {} (workspace, pid, host, command, since, session_pid)
                     VALUES ($1, $2, $3, $4, $5, pg_backend_pid())
                     ON CONFLICT (workspace) DO UPDATE SET pid = $2, host = $3, command = $4,
                     since = $5, session_pid = pg_backend_pid()",
                    self.table("annoform_locks")
                ),
                &[
                    &self.workspace,
                    &i64::from(holder.pid),
                    &holder.host,
                    &holder.command,
                    &holder.since,
                ],
            )
            .map_err(|e| self.error("record the lock holder", e))?;
        Ok(Box::new(PgLock {
            client,
            holder,
            table: self.table("annoform_locks"),
            workspace: self.workspace.clone(),
        }))
    }

    fn holder(&self) -> Result<Option<Holder>> {
        self.current_holder(&mut self.client())
    }

    fn force_unlock(&self) -> Result<Option<Holder>> {
        let mut client = self.client();
        let Some(session) = self.lock_session(&mut client)? else {
            return Ok(None);
        };
        let holder = self
            .read_holder(&mut client)?
            .filter(|(_, pid)| *pid == session)
            .map(|(h, _)| h);
        let ended: bool = client
            .query_one("SELECT pg_terminate_backend($1)", &[&session])
            .map_err(|e| self.error("end the session holding the lock", e))?
            .get(0);
        if !ended {
            return Err(StateError::Database {
                server: self.server.clone(),
                action: "end the session holding the lock",
                reason: format!("session {session} did not end"),
            });
        }
        Ok(holder)
    }
}

/// The held advisory lock and its connection; dropping it unlocks and disconnects.
struct PgLock {
    client: Client,
    holder: Holder,
    table: String,
    workspace: String,
}

impl HeldLock for PgLock {
    fn holder(&self) -> &Holder {
        &self.holder
    }

    fn took_over(&self) -> Option<&Holder> {
        // The server frees a dead holder's lock by itself: there is nothing to take over.
        None
    }
}

impl Drop for PgLock {
    fn drop(&mut self) {
        // Closing the connection frees the lock anyway; the row goes so no one is named.
        let _ = self.client.execute(
            &format!(
                "DELETE FROM {} WHERE workspace = $1 AND session_pid = pg_backend_pid()",
                self.table
            ),
            &[&self.workspace],
        );
    }
}

/// A session, with TLS when the URL asks for it (`sslmode=require`; `prefer`, the default,
/// uses it when the server offers it).
fn connect(config: &postgres::Config, tls: &MakeRustlsConnect) -> Result<Client, postgres::Error> {
    config.connect(tls.clone())
}

/// `PostgreSQL at HOST:PORT/DATABASE`, from the parsed URL (no user, no password).
fn describe_server(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("(default)");
    format!("PostgreSQL at {host}:{port}/{db}")
}

/// The server's own message of a database error, or the driver's.
fn db_message(e: &postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_string())
}

/// What the user must fix, by the kind of failure.
fn error_of(server: &str, user: &str, action: &'static str, e: postgres::Error) -> StateError {
    match e.code() {
        Some(&SqlState::INVALID_PASSWORD) | Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION) => {
            StateError::Credentials {
                server: server.to_string(),
                user: user.to_string(),
                reason: db_message(&e),
            }
        }
        Some(&SqlState::INSUFFICIENT_PRIVILEGE) => StateError::Permission(Box::new(PermissionDenied {
            server: server.to_string(),
            user: user.to_string(),
            action: format!("{action} (annoform's state tables)"),
            reason: db_message(&e),
            fix: "have the database owner grant it: SELECT, INSERT, UPDATE, DELETE on the schema's annoform_* tables".to_string(),
        })),
        Some(&SqlState::INVALID_CATALOG_NAME) => StateError::Settings(format!(
            "{server}: {}; fix the database name in the state URL or create the database",
            db_message(&e)
        )),
        Some(_) => StateError::Database {
            server: server.to_string(),
            action,
            reason: db_message(&e),
        },
        None if pg_tls::untrusted(&e) => StateError::Settings(format!(
            "{server}: the server's TLS certificate is not trusted ({}); if a private CA signed it, add `sslrootcert=/path/to/ca.pem` (that CA's certificate) to the state URL",
            source_chain(&e)
        )),
        // No server answer at all: the connection failed or dropped.
        None => StateError::Unreachable {
            server: server.to_string(),
            reason: source_chain(&e),
        },
    }
}

/// The error and its causes, e.g. "error connecting to server: Connection refused".
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// A 64-bit key from names, for advisory locks.
fn key_of(parts: &[&str]) -> i64 {
    let mut hash = Sha256::new();
    for p in parts {
        hash.update(p.as_bytes());
        hash.update(b"\0");
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// A schema name is quoted into SQL, so it is held to a plain identifier.
fn check_schema_name(schema: &str) -> Result<()> {
    let mut chars = schema.chars();
    let ok = schema.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StateError::Settings(format!(
            "`[state] schema = {schema:?}` is not a plain PostgreSQL name: use lower-case letters, digits and `_` (at most 63)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["annoform", "team_state", "_x1"] {
            assert!(check_schema_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1abc", "Team", "a\"b", "a;drop", &"x".repeat(64)] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lock_keys_differ_by_schema_and_workspace() {
        let a = key_of(&["annoform lock", "s1", "w"]);
        assert_ne!(a, key_of(&["annoform lock", "s2", "w"]));
        assert_ne!(a, key_of(&["annoform lock", "s1", "w2"]));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(
            key_of(&["annoform lock", "ab", "c"]),
            key_of(&["annoform lock", "a", "bc"])
        );
    }

    #[test]
    fn settings_never_show_the_url() {
        let s = PostgresSettings {
            url: "postgres://u:hunter2@db/x".into(),
            schema: "annoform".into(),
            workspace: "w".into(),
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn servers_are_described_without_credentials() {
        let c: postgres::Config = "postgres://u:hunter2@db.example:6543/team".parse().unwrap();
        assert_eq!(describe_server(&c), "PostgreSQL at db.example:6543/team");
    }
}
