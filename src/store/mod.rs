//! Persistence: one `Store` trait, two backends.
//!
//! `connect(url)` picks SQLite (`sqlite:`, the embedded default) or PostgreSQL (`postgres://`,
//! production) and returns an `Arc<dyn Store>`; nothing above this module knows which. SQL that
//! both dialects accept is written once, in `common.rs`, and instantiated for each backend; only
//! what differs (transaction start, row locks, connection options, migrations) lives in
//! `sqlite.rs` and `postgres.rs`. Every query is runtime-checked with `$N` placeholders, which
//! both drivers accept, so the build needs no database.
//!
//! Methods are whole operations in domain types ("upsert this case", "record this token"),
//! each in one transaction, so callers cannot leave half a change behind.

mod common;
pub mod ledger;
pub mod payments;
mod postgres;
pub mod recon;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::domain::payment::Flag;
use crate::domain::{Case, CaseCode, Role, Timestamp};
pub use payments::{
    CallbackRecord, CreatePayment, EventJob, JobResult, LedgerEntry, NewPayment, OutboxEvent, Payment, PaymentView,
};
pub use recon::{
    DayGateway, ExceptionChange, ExceptionRow, ItemRow, NewSettlementFile, NoGatewaySums, ReconData, RunRecord,
    SettlementFile,
};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

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
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A gauge for `/metrics`: name, help text, labels, value.
pub type Gauge = (&'static str, &'static str, Vec<(&'static str, String)>, i64);

/// A progress callback for long operations: called with the count done so far.
pub type Progress<'a> = dyn Fn(usize) + Send + Sync + 'a;

/// How often long operations report progress, in rows.
pub const PROGRESS_EVERY: usize = 5_000;

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
    Unchanged,
}

/// A case as stored: its current content and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredCase {
    #[serde(flatten)]
    pub case: Case,
    pub version: i64,
    pub recorded_at: Timestamp,
}

/// How a case import went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub user_id: String,
    pub name: String,
    pub role: Role,
    /// argon2id PHC string; `None` for a machine client, which cannot log in to the dashboard.
    pub password_hash: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A token's row without anything secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub token_id: String,
    pub user_name: String,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token row with the user it acts as, for authentication.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    pub secret_sha256: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub user: User,
}

/// One manual action for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub actor: String,
    pub action: String,
    pub subject: String,
    /// A JSON object with the action's particulars; never a secret.
    pub details: serde_json::Value,
}

/// An audit-log row as stored, with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The persistence contract. See the module docs.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()>;

    /// Whether the database answers and every migration this build knows is applied.
    async fn ready(&self) -> Result<bool>;

    /// Closes the pool, waiting for connections in use to be returned.
    async fn close(&self);

    /// Gauges of stored state for `/metrics` (counts by status and state).
    async fn gauges(&self) -> Result<Vec<Gauge>>;

    // ---- cases ----

    /// Creates the case, or adds a version when its content differs from the current one.
    async fn upsert_case(&self, case: &Case, actor: &str, at: DateTime<Utc>) -> Result<(Upserted, StoredCase)>;

    /// Upserts every case in one transaction: all or nothing. `progress` is called with the
    /// number of cases written so far, every `PROGRESS_EVERY` cases.
    async fn import_cases(
        &self,
        cases: &[Case],
        actor: &str,
        at: DateTime<Utc>,
        progress: &Progress<'_>,
    ) -> Result<ImportCounts>;

    async fn get_case(&self, code: &CaseCode) -> Result<Option<StoredCase>>;

    /// Every version of a case, oldest first.
    async fn case_versions(&self, code: &CaseCode) -> Result<Vec<StoredCase>>;

    // ---- users and tokens ----

    /// Adds a user; a taken name is `Conflict`. Audited.
    async fn add_user(&self, name: &str, role: Role, password_hash: Option<String>, at: DateTime<Utc>) -> Result<User>;

    async fn user_by_name(&self, name: &str) -> Result<Option<User>>;

    /// Records a token for `user_id` (only the hash of its secret). Audited.
    async fn add_token(
        &self,
        token_id: &str,
        user: &User,
        label: Option<&str>,
        secret_sha256: &str,
        at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<()>;

    async fn list_tokens(&self) -> Result<Vec<TokenInfo>>;

    /// Revokes a token; `false` when no such token exists. Revoking twice keeps the first time. Audited.
    async fn revoke_token(&self, token_id: &str, actor: &str, at: DateTime<Utc>) -> Result<bool>;

    /// The token's hash, state and user, for the bearer check.
    async fn token_owner(&self, token_id: &str) -> Result<Option<TokenOwner>>;

    // ---- payments ----

    /// Creates a payment (rechecking the idempotency key and the case's settlement under the
    /// case's lock); for waived and budget-covered payments also its posting and portal event.
    async fn create_payment(&self, new: &NewPayment, at: DateTime<Utc>) -> Result<CreatePayment>;

    /// The payment a user created for a case with an idempotency key.
    async fn payment_by_key(&self, created_by: &str, case_code: &str, key: &str) -> Result<Option<Payment>>;

    /// Whether the case holds a paid, waived or budget-covered payment.
    async fn case_is_settled(&self, case_code: &str) -> Result<bool>;

    async fn get_payment(&self, payment_id: &str) -> Result<Option<Payment>>;

    async fn payment_by_txn_ref(&self, txn_ref: &str) -> Result<Option<Payment>>;

    /// A case's payments, oldest first.
    async fn case_payments(&self, case_code: &str) -> Result<Vec<Payment>>;

    /// Payments carrying `flag`, by id, after the cursor.
    async fn flagged_payments(&self, flag: Flag, after: Option<&str>, limit: i64) -> Result<Vec<Payment>>;

    /// Every stored callback and status-query answer of a payment, oldest first.
    async fn payment_callbacks(&self, payment_id: &str) -> Result<Vec<CallbackRecord>>;

    /// Records and applies gateway messages in one transaction (group commit); one result per job.
    async fn process_gateway_events(&self, jobs: &[EventJob], at: DateTime<Utc>) -> Result<Vec<JobResult>>;

    /// Pending gateway payments created before `created_before` or expired by `now`, not queried
    /// since `queried_before`.
    async fn payments_due_for_query(
        &self,
        now: DateTime<Utc>,
        created_before: DateTime<Utc>,
        queried_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Payment>>;

    /// Claims a payment for a status query: `true` for exactly one instance per interval.
    async fn claim_query(&self, payment_id: &str, now: DateTime<Utc>, queried_before: DateTime<Utc>) -> Result<bool>;

    /// Expires a payment still pending; `false` when it is not pending any more.
    async fn expire_payment(&self, payment_id: &str, at: DateTime<Utc>) -> Result<bool>;

    /// A case's portal events, in `case_seq` order.
    async fn case_events(&self, case_code: &str) -> Result<Vec<OutboxEvent>>;

    // ---- notifications ----

    /// Claims due notifications for delivery until `lease_until`.
    async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxEvent>>;

    /// Records a delivery attempt: delivered, retried at `retry_at`, or dead-lettered (`retry_at` None).
    async fn record_delivery(
        &self,
        event_id: &str,
        delivered: bool,
        retry_at: Option<DateTime<Utc>>,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<()>;

    /// Notifications in a state, by id after the cursor.
    async fn notifications(&self, state: &str, after: Option<&str>, limit: i64) -> Result<Vec<OutboxEvent>>;

    /// Puts a failed notification back in the queue now; `false` when there is no such failed event. Audited.
    async fn resend_notification(&self, event_id: &str, actor: &str, at: DateTime<Utc>) -> Result<bool>;

    // ---- settlement and reconciliation ----

    /// Imports a parsed settlement file and its lines in one transaction; a file whose SHA-256
    /// was imported before is `Conflict`. Audited.
    async fn import_settlement(
        &self,
        f: &NewSettlementFile<'_>,
        at: DateTime<Utc>,
        progress: &Progress<'_>,
    ) -> Result<SettlementFile>;

    /// Imported files, in import order (all gateways when `None`).
    async fn settlement_files(&self, gateway: Option<&str>) -> Result<Vec<SettlementFile>>;

    /// A file with its exact bytes.
    async fn settlement_file_bytes(&self, file_id: &str) -> Result<Option<(SettlementFile, Vec<u8>)>>;

    /// The first imported line of a gateway with this number and status.
    async fn settlement_line(
        &self,
        gateway: &str,
        gateway_txn_no: &str,
        status: &str,
    ) -> Result<Option<recon::LineRow>>;

    /// Everything a run of `gateway` reads.
    async fn recon_data(&self, gateway: &str) -> Result<ReconData>;

    /// Stores a run, its items and the exceptions it opens, carries or reopens; `false` (and
    /// nothing stored) when an exception changed meanwhile.
    async fn save_run(
        &self,
        run: &RunRecord,
        items: &[crate::reconcile::Item<'_>],
        changes: &[ExceptionChange],
        at: DateTime<Utc>,
    ) -> Result<bool>;

    /// The most recent run of a (date, gateway).
    async fn latest_run(&self, date: NaiveDate, gateway: &str) -> Result<Option<RunRecord>>;

    /// A run's items by key after the cursor; one category, or the exceptions (all but matched).
    async fn run_items(
        &self,
        run_id: &str,
        category: Option<&str>,
        exceptions_only: bool,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ItemRow>>;

    /// One item of a run, by key.
    async fn run_item(&self, run_id: &str, key: &str) -> Result<Option<ItemRow>>;

    /// Every exception of a gateway.
    async fn gateway_exceptions(&self, gateway: &str) -> Result<Vec<ExceptionRow>>;

    async fn get_exception(&self, id: &str) -> Result<Option<ExceptionRow>>;

    /// Applies exception changes (with their postings) and audit events in one transaction;
    /// `false` (and nothing applied) when an exception was no longer in its expected state.
    async fn change_exceptions(
        &self,
        changes: &[ExceptionChange],
        audit: &[AuditEvent],
        at: DateTime<Utc>,
    ) -> Result<bool>;

    /// When a (date, gateway) was closed.
    async fn closure(&self, date: NaiveDate, gateway: &str) -> Result<Option<DateTime<Utc>>>;

    /// Closes a (date, gateway) with its settlement postings; `false` when already closed. Audited.
    async fn close_day(
        &self,
        date: NaiveDate,
        gateway: &str,
        run_id: &str,
        actor: &str,
        postings: &[crate::domain::ledger::Posting],
        at: DateTime<Utc>,
    ) -> Result<bool>;

    /// Waived and budget-covered payments created on a date: (waived, budget_covered).
    async fn no_gateway_sums(&self, date: NaiveDate) -> Result<(NoGatewaySums, NoGatewaySums)>;

    /// Per gateway, the latest run and the closure of a date.
    async fn day_gateways(&self, date: NaiveDate) -> Result<Vec<DayGateway>>;

    // ---- ledger ----

    /// The public key recorded for this database, recording `candidate` if there is none yet.
    async fn ledger_key(&self, candidate: &str, at: DateTime<Utc>) -> Result<String>;

    /// The public key recorded for this database, if any.
    async fn recorded_ledger_key(&self) -> Result<Option<String>>;

    /// Writes a signed checkpoint of the chain's head; `None` when this (kind, date, gateway)
    /// has one already.
    async fn write_checkpoint(
        &self,
        kind: &str,
        date: NaiveDate,
        gateway: &str,
        at: DateTime<Utc>,
        public_key: &str,
        sign: &ledger::Signer<'_>,
    ) -> Result<Option<ledger::Checkpoint>>;

    /// Every checkpoint, by `last_seq` then time.
    async fn checkpoints(&self) -> Result<Vec<ledger::Checkpoint>>;

    /// The lowest and highest seq of entries whose business date is in [from, to].
    async fn ledger_seq_range(&self, from: NaiveDate, to: NaiveDate) -> Result<Option<(i64, i64)>>;

    /// The chain's head: last seq and its hash.
    async fn ledger_head(&self) -> Result<(i64, String)>;

    /// Entries with seq in [from, to], in order.
    async fn ledger_slice(&self, from: i64, to: i64) -> Result<Vec<LedgerEntry>>;

    /// Debit and credit per account for entries of one business date.
    async fn trial_balance(&self, date: NaiveDate) -> Result<Vec<(String, i64, i64)>>;

    /// The earliest business date in the ledger.
    async fn first_ledger_date(&self) -> Result<Option<NaiveDate>>;

    /// The entries of one posting, in line order.
    async fn posting_entries(&self, posting_id: &str) -> Result<Vec<LedgerEntry>>;

    /// When a posting was made (its entries' time); `None` for an unknown posting.
    async fn posting_created_at(&self, posting_id: &str) -> Result<Option<DateTime<Utc>>>;

    /// Ledger entries with `seq > after`, in order, at most `limit`.
    async fn ledger_entries(&self, after: i64, limit: i64) -> Result<Vec<LedgerEntry>>;

    // ---- audit ----

    /// Appends manual actions to the audit chain in one transaction.
    async fn audit(&self, events: &[AuditEvent], at: DateTime<Utc>) -> Result<()>;

    /// The most recent audit entry with this action.
    async fn last_audit(&self, action: &str) -> Result<Option<AuditEntry>>;

    /// Audit entries with `seq > after`, oldest first, at most `limit`.
    async fn audit_log(&self, after: i64, limit: i64) -> Result<Vec<AuditEntry>>;
}

/// Opens the database the URL names (without migrating).
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url).await?))
    } else {
        Err(StoreError::Database(sqlx::Error::Configuration(
            "the database URL must start with sqlite:, postgres:// or postgresql://".into(),
        )))
    }
}

/// The version numbers of the migrations this build carries for a backend.
pub fn migration_versions(backend: Backend) -> Vec<i64> {
    let m = match backend {
        Backend::Sqlite => &sqlite::MIGRATOR,
        Backend::Postgres => &postgres::MIGRATOR,
    };
    m.iter().map(|m| m.version).collect()
}
