//! Persistence, and nothing else: rows, SQL and transactions. It imports only `domain`.
//!
//! `Store::connect(url)` opens SQLite (`sqlite:`, the embedded default) or PostgreSQL
//! (`postgres://`, production); nothing above this module knows which. `connect_with` takes an
//! `OpenMode`: only `serve`, `migrate` and the demo may create a SQLite file that is not there. Each area has its file
//! (`cases`, `auth`, `audit`, `payments`, `lists`, `outbox`, `settlement`, `recon`, `ledger`,
//! `receipts`, `gateway_receipts`, `remittances`) with its typed rows and its SQL: reads are
//! methods of `Store`, writes are small
//! primitives of `WriteTx`, a write transaction that the services above compose (the callback
//! committer writes a whole batch of callbacks through a handful of multi-row statements). Decisions
//! (what a callback does to a payment, which posting a resolution makes) are the services'.
//!
//! SQL is written once for both dialects: `$N` placeholders, which both drivers accept, or
//! `sqlx::QueryBuilder`, which writes each driver's own. The two macros `on_pool!` and `on_tx!`
//! run a block once per backend with its connection: the block is the same text, type-checked
//! against each driver. What truly differs (transaction start, row locks, connection options,
//! migrations, bulk reads) lives in `sqlite.rs` and `postgres.rs`.

pub mod audit;
pub mod auth;
pub mod cases;
pub mod gateway_receipts;
pub mod gauges;
pub mod ledger;
pub mod lists;
pub mod outbox;
pub mod payments;
#[cfg(test)]
mod plans;
mod postgres;
pub mod receipts;
pub mod recon;
pub mod recon_blocks;
pub mod recon_data;
pub mod remittances;
pub mod review;
pub mod sessions;
pub mod settlement;
mod sqlite;

use std::sync::Arc;

use sqlx::{PgPool, Postgres, Sqlite, SqlitePool};
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use audit::{AuditEntry, AuditEvent, AuditRow};
pub use auth::{TokenInfo, TokenOwner, User};
pub use cases::{CaseOutcome, ImportCounts, StoredCase, Upserted};
pub use gateway_receipts::{GatewayReceiptRow, ReceiptAttempt, ReceiptDue};
pub use ledger::{Checkpoint, LedgerEntry};
pub use lists::PaymentFilter;
pub use outbox::OutboxEvent;
pub use payments::{CallbackRow, DueForQuery, NewPayment, Payment, PaymentUpdate};
pub use receipts::{Confirmations, ReceiptRow};
pub use recon::{DayGateway, ExceptionChange, ExceptionRow, ItemRow, NoGatewaySums, RunRecord};
pub use recon_data::ReconData;
pub use remittances::{FrozenPeriod, RemittanceDecision, RemittanceRow, RevenueEntry};
pub use review::{ExceptionFilter, ExceptionListRow, NoGatewayPayment, RangeFacts};
pub use sessions::{NewSession, SessionRow};
pub use settlement::{LineRow, SettlementFile};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Errors callers react to; everything else is `Database`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write (e.g. a user name taken). The text names what.
    #[error("{0}")]
    Conflict(String),
    /// Stored data failed to parse back into a domain type: a bug or a hand-edited database.
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database could not be opened or reached (refused, no answer in time, bad credentials,
    /// a bad URL): the operator's to fix.
    #[error("cannot connect: {0}")]
    Connect(sqlx::Error),
    /// `OpenMode::Existing`, and the SQLite file (named) does not exist.
    #[error("the database {0} does not exist")]
    Missing(String),
}

/// Whether `Store::connect_with` may create a SQLite database whose file does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create a missing file when the URL asks (`mode=rwc`): `serve`, `migrate`, the demo.
    Create,
    /// The database must exist (`StoreError::Missing` otherwise; no file is created): every
    /// other command, which reads or adds to a database that `migrate` or `serve` made.
    Existing,
}

impl StoreError {
    /// A failure that may pass when tried again: the database was busy, a connection dropped, two
    /// instances deadlocked or conflicted under serialisation.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(d)) => {
                let code = d.code().unwrap_or_default();
                // SQLite BUSY/LOCKED; PostgreSQL serialization failure and deadlock.
                matches!(code.as_ref(), "5" | "6" | "517" | "262" | "40001" | "40P01")
            }
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::Protocol(_),
            ) => true,
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A progress callback for long operations: called with the count done so far.
pub type Progress<'a> = dyn Fn(usize) + Send + Sync + 'a;

/// How often long operations report progress, in rows.
pub const PROGRESS_EVERY: usize = 5_000;

pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

struct Inner {
    pool: Pool,
    /// SQLite only: the one connection write transactions use (see `sqlite.rs`).
    writer: Option<SqlitePool>,
    /// SQLite only: serialises this process's write transactions, so that writers queue fairly
    /// instead of polling the busy timeout (see `sqlite.rs`).
    write_lock: Arc<Mutex<()>>,
}

/// The connection pool's limits (`FEERECON_DB_MAX_CONNECTIONS`, `FEERECON_DB_ACQUIRE_TIMEOUT`):
/// a request that finds every connection busy for `acquire_timeout` fails (a callback is then
/// answered with its gateway's retry reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Connections at most (PostgreSQL; SQLite's readers, its writer being one); `None`: 16 on
    /// PostgreSQL, 8 SQLite readers.
    pub max_connections: Option<u32>,
    pub acquire_timeout: std::time::Duration,
    /// How long opening the database may wait for its server (PostgreSQL) before `Connect`.
    pub connect_timeout: std::time::Duration,
}

impl Default for PoolLimits {
    fn default() -> Self {
        let thirty = std::time::Duration::from_secs(30);
        Self { max_connections: None, acquire_timeout: thirty, connect_timeout: thirty }
    }
}

/// The database. Cheap to clone (one `Arc`); every clone shares the pool.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

pub(crate) enum TxInner {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// A write transaction. Dropping it without `commit` rolls back. On SQLite it holds the
/// database's write lock from its start (`BEGIN IMMEDIATE`), so a transaction that reads then
/// writes never fails to upgrade; on PostgreSQL rows that must be serialised are locked with
/// `FOR UPDATE` (see `for_update`).
pub struct WriteTx {
    pub(crate) tx: TxInner,
    _guard: Option<OwnedMutexGuard<()>>,
}

/// Runs `$body` with `$c` bound to the pool, once per backend (see the module docs).
macro_rules! on_pool {
    ($store:expr, |$c:ident| $body:expr) => {
        match $store.pool() {
            $crate::store::Pool::Sqlite(p) => {
                let $c = p;
                $body
            }
            $crate::store::Pool::Postgres(p) => {
                let $c = p;
                $body
            }
        }
    };
}
pub(crate) use on_pool;

/// Runs `$body` with `$c` bound to the transaction's connection, once per backend.
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match &mut $tx.tx {
            $crate::store::TxInner::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::store::TxInner::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

impl Store {
    /// Opens the database the URL names (without migrating), with the default pool limits; a
    /// SQLite file is created if the URL asks (`OpenMode::Create`).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PoolLimits::default(), OpenMode::Create).await
    }

    /// `connect`, with the pool's size and how long a request waits for a connection, and whether
    /// a missing SQLite file may be created.
    pub async fn connect_with(url: &str, limits: PoolLimits, mode: OpenMode) -> Result<Self> {
        let (pool, writer) = if url.starts_with("sqlite:") {
            let (readers, writer) = sqlite::connect(url, limits, mode).await.map_err(|e| match e {
                StoreError::Database(e) => StoreError::Connect(e),
                other => other,
            })?;
            (Pool::Sqlite(readers), Some(writer))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Pool::Postgres(postgres::connect(url, limits).await.map_err(StoreError::Connect)?), None)
        } else {
            return Err(StoreError::Connect(sqlx::Error::Configuration(
                "the database URL must start with sqlite:, postgres:// or postgresql://".into(),
            )));
        };
        Ok(Self { inner: Arc::new(Inner { pool, writer, write_lock: Arc::new(Mutex::new(())) }) })
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    pub fn backend(&self) -> Backend {
        match self.pool() {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Starts a write transaction (see `WriteTx`).
    pub async fn write(&self) -> Result<WriteTx> {
        Ok(match self.pool() {
            Pool::Sqlite(p) => {
                let guard = self.inner.write_lock.clone().lock_owned().await;
                let p = self.inner.writer.as_ref().unwrap_or(p);
                let tx = match p.begin_with("BEGIN IMMEDIATE").await {
                    // SQLite rolls a transaction back by itself on some errors (SQLITE_FULL, an I/O
                    // error); sqlx 0.8 then fails its own ROLLBACK and keeps counting the
                    // transaction, so every later BEGIN on that connection fails. The writer is
                    // ours alone while the guard is held: replace the connection.
                    Err(sqlx::Error::InvalidSavePointStatement) => {
                        tracing::warn!("the writer connection lost its transaction to a database error; reconnecting");
                        p.acquire().await?.close().await?;
                        p.begin_with("BEGIN IMMEDIATE").await?
                    }
                    r => r?,
                };
                WriteTx { tx: TxInner::Sqlite(tx), _guard: Some(guard) }
            }
            Pool::Postgres(p) => WriteTx { tx: TxInner::Postgres(p.begin().await?), _guard: None },
        })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<()> {
        match self.pool() {
            Pool::Sqlite(p) => sqlite::MIGRATOR.run(p).await?,
            Pool::Postgres(p) => postgres::MIGRATOR.run(p).await?,
        }
        Ok(())
    }

    /// Whether the database answers and every migration this build knows is applied.
    pub async fn ready(&self) -> Result<bool> {
        let sql = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
        let applied: std::result::Result<Vec<(i64,)>, sqlx::Error> =
            on_pool!(self, |p| sqlx::query_as(sql).fetch_all(p).await);
        let applied: Vec<i64> = match applied {
            Ok(v) => v.into_iter().map(|(v,)| v).collect(),
            // No migrations table yet: reachable, not ready.
            Err(sqlx::Error::Database(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        Ok(migration_versions(self.backend()).iter().all(|v| applied.contains(v)))
    }

    /// PostgreSQL's `synchronous_commit` as a pooled connection sees it (`None` on SQLite, whose
    /// connections use `synchronous = FULL`): `on` means a commit returns once it is on disk.
    pub async fn synchronous_commit(&self) -> Result<Option<String>> {
        match self.pool() {
            Pool::Sqlite(_) => Ok(None),
            Pool::Postgres(p) => {
                let (v,): (String,) = sqlx::query_as("SHOW synchronous_commit").fetch_one(p).await?;
                Ok(Some(v))
            }
        }
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        if let Some(w) = &self.inner.writer {
            w.close().await;
        }
        on_pool!(self, |p| p.close().await)
    }
}

impl WriteTx {
    pub async fn commit(self) -> Result<()> {
        match self.tx {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.tx {
            TxInner::Sqlite(_) => Backend::Sqlite,
            TxInner::Postgres(_) => Backend::Postgres,
        }
    }

    /// The row-lock suffix of a `SELECT` whose rows this transaction must hold: `FOR UPDATE` on
    /// PostgreSQL; nothing on SQLite, where the transaction already holds the only write lock.
    pub(crate) fn for_update(&self) -> &'static str {
        match self.tx {
            TxInner::Sqlite(_) => "",
            TxInner::Postgres(_) => " FOR UPDATE",
        }
    }
}

/// Maps a unique-constraint violation to `Conflict(what)`; other errors pass through.
pub(crate) fn on_unique(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Database(e),
    }
}

/// Rows per multi-row statement: SQLite takes at most 32,766 parameters, PostgreSQL 65,535.
pub(crate) fn rows_per_statement(columns: usize) -> usize {
    (30_000 / columns.max(1)).clamp(1, 1_000)
}

/// The version numbers of the migrations this build carries for a backend.
pub fn migration_versions(backend: Backend) -> Vec<i64> {
    let m = match backend {
        Backend::Sqlite => &sqlite::MIGRATOR,
        Backend::Postgres => &postgres::MIGRATOR,
    };
    m.iter().map(|m| m.version).collect()
}

/// Names the code defines (statuses, categories: never user input) as an SQL list of literals,
/// `'a', 'b'`, for an `IN (...)` the planner can match against an index.
pub(crate) fn sql_literals<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
}
