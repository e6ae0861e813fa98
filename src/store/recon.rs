//! Settlement files, reconciliation runs, exceptions and day closures: the store's types and
//! `impl_recon!`, the SQL both dialects accept for them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::domain::Timestamp;

/// An imported settlement file, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SettlementFile {
    pub file_id: String,
    pub import_seq: i64,
    pub gateway: String,
    pub profile: String,
    pub name: String,
    pub sha256: String,
    pub line_count: i64,
    pub imported_at: DateTime<Utc>,
    pub imported_by: String,
}

pub(super) const FILE_COLUMNS: &str =
    "file_id, import_seq, gateway, profile, name, sha256, line_count, imported_at, imported_by";

/// A file to import with its parsed lines.
pub struct NewSettlementFile<'a> {
    pub gateway: &'a str,
    pub profile: &'a str,
    pub name: &'a str,
    pub bytes: &'a [u8],
    pub imported_by: &'a str,
    pub lines: &'a [crate::settlement::Line],
}

/// A stored settlement line.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LineRow {
    pub file_id: String,
    pub line_no: i64,
    pub gateway_txn_no: String,
    pub txn_ref: String,
    pub amount: i64,
    pub fee: i64,
    pub txn_time: DateTime<Utc>,
    pub business_date: NaiveDate,
    pub status: String,
}

/// A settlement line as reconciliation reads it; its text borrows from the `ReconData`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconLine<'a> {
    /// Its file's `import_seq`.
    pub file_seq: i64,
    pub line_no: i64,
    pub gateway_txn_no: &'a str,
    pub txn_ref: &'a str,
    pub amount: i64,
    pub fee: i64,
    pub business_date: NaiveDate,
    pub refund: bool,
}

/// A payment with what reconciliation needs: the citizen's split of its quote, and its case's
/// current version to recompute `citizen_due`. Its text borrows from the `ReconData`.
#[derive(Debug, Clone)]
pub struct ReconPaymentRow<'a> {
    pub payment_id: &'a str,
    pub case_code: &'a str,
    pub txn_ref: &'a str,
    pub gateway_txn_no: Option<&'a str>,
    pub amount: i64,
    pub status: &'a str,
    pub paid_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub duplicate: bool,
    /// The citizen's part of the payment's quote: phí and lệ phí.
    pub phi_due: i64,
    pub le_phi_due: i64,
    pub case_version: i64,
    pub procedure_code: &'a str,
    pub channel: &'a str,
    pub subjects: &'a str,
    /// The case's facts, a JSON array like `subjects`.
    pub facts: &'a str,
    pub receiving_unit: &'a str,
    pub quantity: i64,
    pub received_at: DateTime<Utc>,
}

/// Everything a run of one gateway reads. Payments and lines stay as the store packed them
/// (see `pack_sql`: a day of a million rows is a few hundred values, not millions of strings);
/// `payments()` and `lines()` read them, borrowing their text.
#[derive(Debug, Clone, Default)]
pub struct ReconData {
    pub(crate) packed_payments: Vec<String>,
    pub(crate) packed_lines: Vec<String>,
    /// In import order.
    pub files: Vec<SettlementFile>,
    pub closures: Vec<(NaiveDate, DateTime<Utc>)>,
}

impl ReconData {
    /// The payments, in no particular order; an error names a corrupt field.
    pub fn payments(&self) -> impl Iterator<Item = Result<ReconPaymentRow<'_>, super::StoreError>> {
        Records::new(&self.packed_payments, read_payment)
    }

    /// The settlement lines, in no particular order; an error names a corrupt field.
    pub fn lines(&self) -> impl Iterator<Item = Result<ReconLine<'_>, super::StoreError>> {
        Records::new(&self.packed_lines, read_line)
    }
}

/// The records of packed values, one after another; stops after the first error.
struct Records<'a, T> {
    values: std::slice::Iter<'a, String>,
    current: Unpack<'a>,
    read: fn(&mut Unpack<'a>) -> Result<T, super::StoreError>,
    failed: bool,
}

impl<'a, T> Records<'a, T> {
    fn new(values: &'a [String], read: fn(&mut Unpack<'a>) -> Result<T, super::StoreError>) -> Self {
        Self { values: values.iter(), current: Unpack::new(""), read, failed: false }
    }
}

impl<'a, T> Iterator for Records<'a, T> {
    type Item = Result<T, super::StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        while self.current.is_empty() {
            self.current = Unpack::new(self.values.next()?);
        }
        let record = (self.read)(&mut self.current);
        self.failed = record.is_err();
        Some(record)
    }
}

/// A stored run.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RunRecord {
    pub run_id: String,
    pub business_date: NaiveDate,
    pub gateway: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub report_hash: String,
    /// The report JSON without states and resolutions.
    pub report: String,
}

/// A stored item of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ItemRow {
    pub item_key: String,
    pub category: String,
    pub business_date: NaiveDate,
    pub case_code: Option<String>,
    pub payment_id: Option<String>,
    pub txn_ref: Option<String>,
    pub gateway_txn_no: Option<String>,
    pub line_status: Option<String>,
    pub recorded_amount: Option<i64>,
    pub settled_amount: Option<i64>,
    pub expected_amount: Option<i64>,
    pub fee: Option<i64>,
    pub settles_payment: bool,
}

pub(super) const ITEM_COLUMNS: &str = "item_key, category, business_date, case_code, payment_id, txn_ref, gateway_txn_no, line_status, recorded_amount, settled_amount, expected_amount, fee, settles_payment";

/// An exception's state, by its item key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExceptionRow {
    pub exception_id: String,
    pub gateway: String,
    pub business_date: NaiveDate,
    pub category: String,
    pub state: String,
    pub resolution: Option<String>,
    pub posting_id: Option<String>,
    pub rejection: Option<String>,
    pub updated_at: DateTime<Utc>,
}

pub(super) const EXCEPTION_COLUMNS: &str =
    "exception_id, gateway, business_date, category, state, resolution, posting_id, rejection, updated_at";

/// A change to an exception, applied only if it is still in `from_state` (so two people acting
/// at once cannot both succeed).
#[derive(Debug, Clone)]
pub struct ExceptionChange {
    pub exception_id: String,
    /// `None`: the exception is new (insert it).
    pub from_state: Option<String>,
    pub gateway: String,
    pub business_date: NaiveDate,
    pub category: String,
    pub state: String,
    pub resolution: Option<serde_json::Value>,
    pub posting: Option<crate::domain::ledger::Posting>,
    /// Keep the current posting id when no new posting is made.
    pub keep_posting: bool,
    pub rejection: Option<serde_json::Value>,
}

/// Waived and budget-covered payments of a date.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NoGatewaySums {
    pub count: i64,
    pub citizen_due: i64,
    pub budget_due: i64,
}

/// When a run, or a closure, concerns a day: for the day view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayGateway {
    pub gateway: String,
    pub report_hash: Option<String>,
    pub run_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
}

fn corrupt(what: &str) -> super::StoreError {
    super::StoreError::Corrupt(format!("reconciliation row: {what}"))
}

/// SQL packing `columns` into one text value, each field as `<bytes>:<text>` (a netstring
/// without its comma; NULL reads as empty), so that no value can be mistaken for a separator
/// whatever it holds. Packed rows concatenate into one value with no separator at all, which is
/// how the SQLite backend hands over thousands of rows at once (see `fetch_packed`).
pub(super) fn pack_sql(columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| {
            let v = format!("COALESCE(CAST({c} AS TEXT), '')");
            format!("CAST(octet_length({v}) AS TEXT) || ':' || {v}")
        })
        .collect::<Vec<_>>()
        .join(" || ")
}

/// Reads the fields `pack_sql` packed, in order.
pub(super) struct Unpack<'a> {
    rest: &'a str,
}

impl<'a> Unpack<'a> {
    pub(super) fn new(packed: &'a str) -> Self {
        Self { rest: packed }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn text(&mut self, what: &str) -> Result<&'a str, super::StoreError> {
        let (len, rest) = self.rest.split_once(':').ok_or_else(|| corrupt(what))?;
        let len: usize = len.parse().map_err(|_| corrupt(what))?;
        let value = rest.get(..len).ok_or_else(|| corrupt(what))?;
        self.rest = &rest[len..];
        Ok(value)
    }

    fn num(&mut self, what: &str) -> Result<i64, super::StoreError> {
        self.text(what)?.parse().map_err(|_| corrupt(what))
    }

    fn time(&mut self, what: &str) -> Result<Option<DateTime<Utc>>, super::StoreError> {
        match self.text(what)? {
            "" => Ok(None),
            t => DateTime::parse_from_rfc3339(t).map(|t| Some(t.with_timezone(&Utc))).map_err(|_| corrupt(what)),
        }
    }

    fn date(&mut self, what: &str) -> Result<NaiveDate, super::StoreError> {
        NaiveDate::parse_from_str(self.text(what)?, "%Y-%m-%d").map_err(|_| corrupt(what))
    }
}

/// The packed columns of a payment row; `time` renders a timestamp column as RFC 3339 text and
/// `scan` names the driving table for a full scan (`FROM {scan("payments", "p")}`).
pub(super) fn payment_select(time: fn(&str) -> String, scan: fn(&str, &str) -> String) -> String {
    let columns = [
        "p.payment_id".to_owned(),
        "p.case_code".into(),
        "p.txn_ref".into(),
        "p.gateway_txn_no".into(),
        "p.amount".into(),
        "p.status".into(),
        "CASE WHEN EXISTS (SELECT 1 FROM payment_flags f WHERE f.payment_id = p.payment_id AND f.flag = 'duplicate_payment') THEN 1 ELSE 0 END".into(),
        "p.phi_due".into(),
        "p.le_phi_due".into(),
        time("p.paid_at"),
        time("p.confirmed_at"),
        "v.version".into(),
        "v.procedure_code".into(),
        "v.channel".into(),
        "v.quantity".into(),
        "v.subjects".into(),
        time("v.received_at"),
        "v.facts".into(),
        "v.receiving_unit".into(),
    ];
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    format!(
        "SELECT {} AS x
         FROM {}
         JOIN cases c ON c.case_code = p.case_code
         JOIN case_versions v ON v.case_code = c.case_code AND v.version = c.current_version
         WHERE p.gateway = $1 AND p.txn_ref IS NOT NULL",
        pack_sql(&columns),
        scan("payments", "p")
    )
}

fn read_payment<'a>(f: &mut Unpack<'a>) -> Result<ReconPaymentRow<'a>, super::StoreError> {
    Ok(ReconPaymentRow {
        payment_id: f.text("payment_id")?,
        case_code: f.text("case_code")?,
        txn_ref: f.text("txn_ref")?,
        gateway_txn_no: Some(f.text("gateway_txn_no")?).filter(|n| !n.is_empty()),
        amount: f.num("amount")?,
        status: f.text("status")?,
        duplicate: f.text("duplicate")? == "1",
        phi_due: f.num("phi_due")?,
        le_phi_due: f.num("le_phi_due")?,
        paid_at: f.time("paid_at")?,
        confirmed_at: f.time("confirmed_at")?,
        case_version: f.num("version")?,
        procedure_code: f.text("procedure_code")?,
        channel: f.text("channel")?,
        quantity: f.num("quantity")?,
        subjects: f.text("subjects")?,
        received_at: f.time("received_at")?.ok_or_else(|| corrupt("received_at"))?,
        facts: f.text("facts")?,
        receiving_unit: f.text("receiving_unit")?,
    })
}

/// The packed columns of a settlement line (`scan` as for `payment_select`).
pub(super) fn line_select(scan: fn(&str, &str) -> String) -> String {
    let columns = [
        "l.file_seq",
        "l.line_no",
        "l.gateway_txn_no",
        "l.txn_ref",
        "l.amount",
        "l.fee",
        "l.business_date",
        "l.status",
    ];
    format!("SELECT {} AS x FROM {} WHERE l.gateway = $1", pack_sql(&columns), scan("settlement_lines", "l"))
}

fn read_line<'a>(f: &mut Unpack<'a>) -> Result<ReconLine<'a>, super::StoreError> {
    Ok(ReconLine {
        file_seq: f.num("import_seq")?,
        line_no: f.num("line_no")?,
        gateway_txn_no: f.text("gateway_txn_no")?,
        txn_ref: f.text("txn_ref")?,
        amount: f.num("amount")?,
        fee: f.num("fee")?,
        business_date: f.date("business_date")?,
        refund: f.text("status")? == "refund",
    })
}

/// A multi-row INSERT of `rows` rows into `table (columns)`: placeholders `($1,$2,...),(...)` on
/// PostgreSQL, `(?,?,...),(...)` on SQLite. The only place a statement is written per dialect:
/// SQLite resolves each numbered parameter by a linear search of the statement's parameter
/// list, so thousands of `$N` in one statement cost quadratic time there, while anonymous `?`
/// bind in order.
pub fn multi_row_insert(backend: super::Backend, table: &str, columns: &str, rows: usize) -> String {
    let n = columns.split(',').count();
    let row = |r: usize| -> String {
        let marks: Vec<String> = match backend {
            super::Backend::Sqlite => vec!["?".to_owned(); n],
            super::Backend::Postgres => (1..=n).map(|k| format!("${}", r * n + k)).collect(),
        };
        format!("({})", marks.join(","))
    };
    let values: Vec<String> = (0..rows).map(row).collect();
    format!("INSERT INTO {table} ({columns}) VALUES {}", values.join(","))
}

/// Expands to the backend's inherent methods for settlement and reconciliation.
macro_rules! impl_recon {
    ($store:ty, $db:ty, for_update = $for_update:literal) => {
        impl $store {
            async fn import_settlement_impl(
                &self,
                f: &$crate::store::recon::NewSettlementFile<'_>,
                at: chrono::DateTime<chrono::Utc>,
                progress: &$crate::store::Progress<'_>,
            ) -> $crate::store::Result<$crate::store::recon::SettlementFile> {
                use sha2::Digest as _;
                let sha = hex::encode(sha2::Sha256::digest(f.bytes));
                let at = $crate::domain::Timestamp::at(at).0;
                let mut tx = self.begin_write().await?;
                let prior: Option<(String, chrono::DateTime<chrono::Utc>)> =
                    sqlx::query_as("SELECT file_id, imported_at FROM settlement_files WHERE sha256 = $1")
                        .bind(&sha)
                        .fetch_optional(&mut **tx)
                        .await?;
                if let Some((id, when)) = prior {
                    return Err($crate::store::StoreError::Conflict(format!(
                        "this file (sha256 {sha}) was imported before, as {id} at {}",
                        $crate::domain::Timestamp::at(when)
                    )));
                }
                let (seq,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(import_seq), 0) + 1 FROM settlement_files")
                    .fetch_one(&mut **tx)
                    .await?;
                let file = $crate::store::recon::SettlementFile {
                    file_id: $crate::domain::new_id("stf"),
                    import_seq: seq,
                    gateway: f.gateway.to_owned(),
                    profile: f.profile.to_owned(),
                    name: f.name.to_owned(),
                    sha256: sha,
                    line_count: i64::try_from(f.lines.len()).unwrap_or(i64::MAX),
                    imported_at: at,
                    imported_by: f.imported_by.to_owned(),
                };
                sqlx::query(
                    "INSERT INTO settlement_files (file_id, import_seq, gateway, profile, name, sha256, bytes, line_count, imported_at, imported_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&file.file_id)
                .bind(file.import_seq)
                .bind(&file.gateway)
                .bind(&file.profile)
                .bind(&file.name)
                .bind(&file.sha256)
                .bind(f.bytes)
                .bind(file.line_count)
                .bind(at)
                .bind(&file.imported_by)
                .execute(&mut **tx)
                .await
                .map_err(|e| $crate::store::common::on_unique(e, || "this file was imported before, or another import was saved at the same moment; try again".into()))?;
                const ROWS: usize = 1000;
                let mut done = 0usize;
                for chunk in f.lines.chunks(ROWS) {
                    let sql = $crate::store::recon::multi_row_insert(
                        Self::BACKEND,
                        "settlement_lines",
                        "file_seq, line_no, gateway, gateway_txn_no, txn_ref, amount, fee, txn_time, business_date, status",
                        chunk.len(),
                    );
                    let mut q = sqlx::query(&sql);
                    for l in chunk {
                        q = q
                            .bind(file.import_seq)
                            .bind(i64::try_from(l.line_no).unwrap_or(i64::MAX))
                            .bind(f.gateway)
                            .bind(&l.gateway_txn_no)
                            .bind(&l.txn_ref)
                            .bind(l.amount)
                            .bind(l.fee)
                            .bind(l.txn_time)
                            .bind(l.business_date())
                            .bind(l.status.as_str());
                    }
                    q.execute(&mut **tx).await?;
                    let before = done;
                    done += chunk.len();
                    if done / $crate::store::PROGRESS_EVERY != before / $crate::store::PROGRESS_EVERY {
                        progress(done);
                    }
                }
                let event = $crate::store::AuditEvent {
                    actor: f.imported_by.to_owned(),
                    action: "settlement.import".into(),
                    subject: file.file_id.clone(),
                    details: serde_json::json!({"gateway": f.gateway, "name": f.name, "sha256": file.sha256, "lines": file.line_count}),
                };
                Self::audit_tx(&mut tx, std::slice::from_ref(&event), at).await?;
                tx.commit().await?;
                Ok(file)
            }

            async fn recon_data_impl(&self, gateway: &str) -> $crate::store::Result<$crate::store::recon::ReconData> {
                // A day holds up to millions of rows: each comes packed into one text value (see
                // `pack_sql`), and the backend's `fetch_packed` hands them over in bulk. Payments
                // and lines are read at once, on two connections.
                let payments_sql = $crate::store::recon::payment_select(Self::time_text, Self::scan);
                let lines_sql = $crate::store::recon::line_select(Self::scan);
                let (payments, lines) = tokio::try_join!(
                    self.fetch_packed(&payments_sql, ("payments", "p"), gateway),
                    self.fetch_packed(&lines_sql, ("settlement_lines", "l"), gateway)
                )?;
                let sql = format!("SELECT {} FROM settlement_files WHERE gateway = $1 ORDER BY import_seq", $crate::store::recon::FILE_COLUMNS);
                let files = sqlx::query_as(&sql).bind(gateway).fetch_all(&self.pool).await?;
                let closures: Vec<(chrono::NaiveDate, chrono::DateTime<chrono::Utc>)> =
                    sqlx::query_as("SELECT business_date, closed_at FROM day_closures WHERE gateway = $1")
                        .bind(gateway)
                        .fetch_all(&self.pool)
                        .await?;
                Ok($crate::store::recon::ReconData { packed_payments: payments, packed_lines: lines, files, closures })
            }

            /// Applies exception changes inside `tx`; `false` when one was no longer in its expected state.
            async fn apply_exception_changes_tx(
                tx: &mut sqlx::Transaction<'static, $db>,
                changes: &[$crate::store::recon::ExceptionChange],
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::Result<bool> {
                for c in changes {
                    let posting_id = match &c.posting {
                        Some(p) => Self::append_postings_tx(tx, std::slice::from_ref(p), at).await?.pop(),
                        None => None,
                    };
                    let resolution = c.resolution.as_ref().map(|v| v.to_string());
                    let rejection = c.rejection.as_ref().map(|v| v.to_string());
                    match &c.from_state {
                        None => {
                            sqlx::query(
                                "INSERT INTO exceptions (exception_id, gateway, business_date, category, state, resolution, posting_id, rejection, updated_at)
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                            )
                            .bind(&c.exception_id)
                            .bind(&c.gateway)
                            .bind(c.business_date)
                            .bind(&c.category)
                            .bind(&c.state)
                            .bind(&resolution)
                            .bind(&posting_id)
                            .bind(&rejection)
                            .bind(at)
                            .execute(&mut **tx)
                            .await?;
                        }
                        Some(from) => {
                            let n = sqlx::query(
                                "UPDATE exceptions SET category = $1, state = $2, resolution = $3,
                                        posting_id = CASE WHEN $4 THEN posting_id ELSE $5 END, rejection = $6, updated_at = $7
                                 WHERE exception_id = $8 AND state = $9",
                            )
                            .bind(&c.category)
                            .bind(&c.state)
                            .bind(&resolution)
                            .bind(c.keep_posting)
                            .bind(&posting_id)
                            .bind(&rejection)
                            .bind(at)
                            .bind(&c.exception_id)
                            .bind(from)
                            .execute(&mut **tx)
                            .await?
                            .rows_affected();
                            if n != 1 {
                                return Ok(false);
                            }
                        }
                    }
                }
                Ok(true)
            }

            async fn save_run_impl(
                &self,
                run: &$crate::store::recon::RunRecord,
                items: &[$crate::reconcile::Item<'_>],
                changes: &[$crate::store::recon::ExceptionChange],
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::Result<bool> {
                let mut tx = self.begin_write().await?;
                // Writers are serialised (SQLite's write lock; on PostgreSQL the UNIQUE constraint
                // refuses a concurrent run that took the same number, and that run fails whole).
                let (seq,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(run_seq), 0) + 1 FROM reconciliation_runs")
                    .fetch_one(&mut **tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO reconciliation_runs (run_id, run_seq, business_date, gateway, created_at, created_by, report_hash, report)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&run.run_id)
                .bind(seq)
                .bind(run.business_date)
                .bind(&run.gateway)
                .bind(run.created_at)
                .bind(&run.created_by)
                .bind(&run.report_hash)
                .bind(&run.report)
                .execute(&mut **tx)
                .await
                .map_err(|e| $crate::store::common::on_unique(e, || "another reconciliation run was saved at the same moment; try again".into()))?;
                for chunk in items.chunks(1000) {
                    let columns = format!("run_seq, {}", $crate::store::recon::ITEM_COLUMNS);
                    let sql = $crate::store::recon::multi_row_insert(Self::BACKEND, "reconciliation_items", &columns, chunk.len());
                    let mut q = sqlx::query(&sql);
                    for i in chunk {
                        q = q
                            .bind(seq)
                            .bind(&i.key)
                            .bind(i.category.as_str())
                            .bind(i.business_date)
                            .bind(&i.case_code)
                            .bind(&i.payment_id)
                            .bind(&i.txn_ref)
                            .bind(&i.gateway_txn_no)
                            .bind(i.line_status.map(|s| s.as_str()))
                            .bind(i.recorded_amount)
                            .bind(i.settled_amount)
                            .bind(i.expected_amount)
                            .bind(i.fee)
                            .bind(i.settles_payment);
                    }
                    q.execute(&mut **tx).await?;
                }
                if !Self::apply_exception_changes_tx(&mut tx, changes, at).await? {
                    return Ok(false);
                }
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}

pub(super) use impl_recon;
