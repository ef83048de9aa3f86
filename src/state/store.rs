//! The state-store interface the engine and the commands use: run records (list, get, put with
//! compare-and-swap on the serial, delete, rename) and the workspace lock (acquire with a wait,
//! holder, force-unlock). `local` keeps both in the workspace, `postgres` in a shared database.

use crate::state::error::{Result, StateError};
use crate::state::holder::Holder;
use crate::state::local::LocalStore;
use crate::state::lock::{self, Lock, LockGuard};
use crate::state::record::RunRecord;
use std::time::Duration;

/// Where run records and the lock live.
pub trait StateStore: Send + Sync {
    /// What the store is, for messages: the state directory, or server, schema and workspace
    /// (never a secret).
    fn describe(&self) -> String;

    /// Every (dataset, key) with a record, sorted.
    fn list(&self) -> Result<Vec<(String, String)>>;

    /// The record for (dataset, key), if there is one.
    fn get(&self, dataset: &str, key: &str) -> Result<Option<RunRecord>>;

    /// Saves a record, bumping its serial; refuses ([`StateError::Conflict`]) if the stored
    /// serial is not the record's (0 for a new record). On success `record.serial` is the new
    /// serial; on error the record is unchanged.
    fn put(&self, record: &mut RunRecord) -> Result<()>;

    /// Stores a record exactly as it is (serial and lineage kept), where there is none yet:
    /// how `state migrate` copies records between stores.
    fn import(&self, record: &RunRecord) -> Result<()>;

    /// Forgets a record; `Ok(false)` if there was none.
    fn delete(&self, dataset: &str, key: &str) -> Result<bool>;

    /// Renames a run's record from `old` to `new` key, keeping its lineage, at the next
    /// serial; refuses ([`StateError::Exists`]) if `new` has a record.
    fn rename(&self, dataset: &str, old: &str, new: &str) -> Result<()>;

    /// Takes the workspace lock for `command`, waiting up to `wait` for another holder; then
    /// fails ([`StateError::Locked`]) naming it. Dropping the guard releases the lock.
    fn lock(&self, command: &str, wait: Duration) -> Result<Box<dyn HeldLock>> {
        self.lock_with(command, wait, &mut |_| {})
    }

    /// [`lock`](StateStore::lock), calling `waiting` once with the holder (`None`: unreadable)
    /// when it starts to wait for another.
    fn lock_with(
        &self,
        command: &str,
        wait: Duration,
        waiting: Waiting<'_>,
    ) -> Result<Box<dyn HeldLock>>;

    /// Who holds the lock, if anyone.
    fn holder(&self) -> Result<Option<Holder>>;

    /// Releases the lock whoever holds it, returning the holder it named.
    fn force_unlock(&self) -> Result<Option<Holder>>;
}

/// Told once, with the holder, when taking the lock starts to wait for another process.
pub type Waiting<'a> = &'a mut dyn FnMut(Option<&Holder>);

/// A held workspace lock; dropping it releases the lock.
pub trait HeldLock {
    /// This process's holder entry.
    fn holder(&self) -> &Holder;

    /// A dead holder whose lock was taken over, if any (worth telling the user).
    fn took_over(&self) -> Option<&Holder>;
}

impl HeldLock for LockGuard {
    fn holder(&self) -> &Holder {
        LockGuard::holder(self)
    }

    fn took_over(&self) -> Option<&Holder> {
        LockGuard::took_over(self)
    }
}

impl StateStore for LocalStore {
    fn describe(&self) -> String {
        format!("the local state in {}", self.root().display())
    }

    fn list(&self) -> Result<Vec<(String, String)>> {
        LocalStore::list(self)
    }

    fn get(&self, dataset: &str, key: &str) -> Result<Option<RunRecord>> {
        LocalStore::get(self, dataset, key)
    }

    fn put(&self, record: &mut RunRecord) -> Result<()> {
        LocalStore::put(self, record)
    }

    fn import(&self, record: &RunRecord) -> Result<()> {
        LocalStore::import(self, record)
    }

    fn delete(&self, dataset: &str, key: &str) -> Result<bool> {
        LocalStore::delete(self, dataset, key)
    }

    fn rename(&self, dataset: &str, old: &str, new: &str) -> Result<()> {
        LocalStore::rename(self, dataset, old, new)
    }

    fn lock_with(
        &self,
        command: &str,
        wait: Duration,
        waiting: Waiting<'_>,
    ) -> Result<Box<dyn HeldLock>> {
        let guard = Lock::acquire_with(lock::default_path(self.root()), command, wait, waiting)?;
        Ok(Box::new(guard))
    }

    fn holder(&self) -> Result<Option<Holder>> {
        Lock::holder(lock::default_path(self.root()))
    }

    fn force_unlock(&self) -> Result<Option<Holder>> {
        lock::force_unlock(lock::default_path(self.root()))
    }
}

/// Which store a workspace uses, resolved from `annoform.toml` and the environment.
#[derive(Debug, Clone)]
pub enum StoreSettings {
    /// Records under this state directory, the lock beside it.
    Local { root: std::path::PathBuf },
    /// Records and the lock in PostgreSQL.
    Postgres(crate::state::postgres::PostgresSettings),
}

/// Opens the store the settings name (connecting, and creating tables, for `postgres`).
pub fn open(settings: &StoreSettings) -> Result<Box<dyn StateStore>> {
    Ok(match settings {
        StoreSettings::Local { root } => Box::new(LocalStore::new(root.clone())),
        StoreSettings::Postgres(pg) => Box::new(crate::state::postgres::PostgresStore::open(pg)?),
    })
}

/// The records of `from` that `to` lacks, after checking that every record `to` has is the
/// same in `from` (`state migrate` copies into an empty or identical store, never over other
/// records).
pub fn migration(from: &dyn StateStore, to: &dyn StateStore) -> Result<Vec<RunRecord>> {
    let mut source = Vec::new();
    for (dataset, key) in from.list()? {
        source.extend(from.get(&dataset, &key)?);
    }
    let mut differing = Vec::new();
    for (dataset, key) in to.list()? {
        let theirs = to.get(&dataset, &key)?;
        let ours = source.iter().find(|r| r.dataset == dataset && r.key == key);
        if theirs.as_ref() != ours {
            differing.push(format!("{dataset}/{key}"));
        }
    }
    if !differing.is_empty() {
        return Err(StateError::MigrationTargetDiffers {
            target: to.describe(),
            records: differing,
        });
    }
    let mut missing = Vec::new();
    for r in source {
        if to.get(&r.dataset, &r.key)?.is_none() {
            missing.push(r);
        }
    }
    Ok(missing)
}
