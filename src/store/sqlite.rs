//! The SQLite backend: the embedded default.
//!
//! WAL journal (readers never block the writer), foreign keys on, a busy timeout for other
//! processes (the CLI beside a running server), `synchronous = FULL` so a committed transaction
//! survives a power cut. Writers take the database's write lock at `BEGIN IMMEDIATE`, after an
//! in-process mutex: within one process writers queue fairly instead of polling the busy timeout,
//! and a transaction that reads then writes can never fail to upgrade its lock.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::Mutex;

use super::Backend;
use super::common::{WriteTx, impl_store};
use super::ledger::impl_ledger;
use super::payments::impl_payments;
use super::recon::impl_recon;

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
    /// Serialises this process's write transactions; see the module docs.
    write_lock: Mutex<()>,
}

impl SqliteStore {
    const BACKEND: Backend = Backend::Sqlite;

    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(Self { pool, write_lock: Mutex::new(()) })
    }

    async fn begin_write(&self) -> Result<WriteTx<'_, Sqlite>, sqlx::Error> {
        let guard = self.write_lock.lock().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx::new(tx, Some(guard)))
    }
}

impl_store!(SqliteStore, sqlx::Sqlite, for_update = "");
impl_payments!(SqliteStore, sqlx::Sqlite, for_update = "", skip_locked = "");
impl_recon!(SqliteStore, sqlx::Sqlite, for_update = "");
impl_ledger!(SqliteStore, sqlx::Sqlite, for_update = "");
