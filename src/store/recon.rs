//! Reconciliation runs, their items, exceptions and day closures (SPEC §7.2, §7.3), and the bulk
//! read of everything a run of one gateway needs.
//!
//! A day holds up to millions of payments and lines: each comes packed into one text value (see
//! `pack_sql`) and the backend hands them over in bulk, so a run costs a few hundred values, not
//! millions of rows; `ReconData` reads them back, borrowing their text.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::settlement::SettlementFile;
use super::{Result, Store, StoreError, WriteTx, on_pool, on_tx, on_unique, rows_per_statement};
use crate::domain::payment::{Gateway, PaymentStatus};
use crate::domain::recon::{Category, ExceptionState, Item};
use crate::domain::{BusinessDate, Timestamp};

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
    /// The first occurrence of its (`gateway_txn_no`, status), decided at import.
    pub first: bool,
    /// The date whose close counted it.
    pub home_date: Option<NaiveDate>,
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
    pub status: PaymentStatus,
    /// Its natural date: the business date of `paid_at`, for paid payments.
    pub paid_date: Option<NaiveDate>,
    /// The date whose close counted it.
    pub home_date: Option<NaiveDate>,
    pub duplicate: bool,
    /// The citizen's part of the payment's quote: phí and lệ phí.
    pub phi_due: i64,
    pub le_phi_due: i64,
    pub case_version: i64,
    pub procedure_code: &'a str,
    pub channel: &'a str,
    /// The case's subjects as stored (a JSON array of tags).
    pub subjects: &'a str,
    /// The case's facts, a JSON array like `subjects`.
    pub facts: &'a str,
    pub receiving_unit: &'a str,
    pub quantity: i64,
    pub received_at: DateTime<Utc>,
}

/// Everything a run of one gateway reads. Payments and lines stay as the store packed them;
/// `payments()` and `lines()` read them, borrowing their text.
#[derive(Debug, Clone, Default)]
pub struct ReconData {
    packed_payments: Vec<String>,
    packed_lines: Vec<String>,
    /// In import order.
    pub files: Vec<SettlementFile>,
    /// The gateway's closed dates.
    pub closed: Vec<NaiveDate>,
}

impl ReconData {
    /// The payments, in no particular order; an error names a corrupt field.
    pub fn payments(&self) -> impl Iterator<Item = Result<ReconPaymentRow<'_>>> {
        Records::new(&self.packed_payments, read_payment)
    }

    /// The settlement lines, in no particular order; an error names a corrupt field.
    pub fn lines(&self) -> impl Iterator<Item = Result<ReconLine<'_>>> {
        Records::new(&self.packed_lines, read_line)
    }
}

/// The records of packed values, one after another; stops after the first error.
struct Records<'a, T> {
    values: std::slice::Iter<'a, String>,
    current: Unpack<'a>,
    read: fn(&mut Unpack<'a>) -> Result<T>,
    failed: bool,
}

impl<'a, T> Records<'a, T> {
    fn new(values: &'a [String], read: fn(&mut Unpack<'a>) -> Result<T>) -> Self {
        Self { values: values.iter(), current: Unpack::new(""), read, failed: false }
    }
}

impl<T> Iterator for Records<'_, T> {
    type Item = Result<T>;

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
    pub gateway: Gateway,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub report_hash: String,
    /// The report JSON without states and resolutions.
    pub report: String,
}

pub use crate::domain::recon::ItemRecord as ItemRow;

const ITEM_COLUMNS: &str = "item_key, category, business_date, case_code, payment_id, txn_ref, gateway_txn_no, line_status, \
                            recorded_amount, settled_amount, expected_amount, counterpart_date, fee, settles_payment";

/// An exception's state, by its item key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExceptionRow {
    pub exception_id: String,
    pub gateway: Gateway,
    pub business_date: NaiveDate,
    pub category: Category,
    pub state: ExceptionState,
    /// The action requested or applied, with its note, actor and time (JSON).
    pub resolution: Option<String>,
    /// The ledger posting its money movement made, if any.
    pub posting_id: Option<String>,
    /// The last rejection or reopening (JSON).
    pub rejection: Option<String>,
    pub updated_at: DateTime<Utc>,
}

const EXCEPTION_COLUMNS: &str =
    "exception_id, gateway, business_date, category, state, resolution, posting_id, rejection, updated_at";

/// A change to an exception, applied only if it is still in `from_state` (so two people acting
/// at once cannot both succeed).
#[derive(Debug, Clone)]
pub struct ExceptionChange {
    pub exception_id: String,
    /// `None`: the exception is new (insert it).
    pub from_state: Option<ExceptionState>,
    pub gateway: Gateway,
    pub business_date: NaiveDate,
    pub category: Category,
    pub state: ExceptionState,
    pub resolution: Option<serde_json::Value>,
    /// The posting its money movement made now (already written in this transaction).
    pub posting_id: Option<String>,
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
    pub gateway: Gateway,
    pub report_hash: Option<String>,
    pub run_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
}

impl Store {
    /// What a run of (`date`, `gateway`) reads: the paid payments and the lines without a home
    /// date or homed on `date`, and their counterparts by reference (a line's payment, a
    /// payment's lines), whatever their date; the gateway's files and closed dates. What closed
    /// dates counted is not read again: the rows read do not grow with the history.
    pub async fn recon_data(&self, gateway: Gateway, date: NaiveDate) -> Result<ReconData> {
        let (packed_payments, packed_lines) = match self.pool() {
            super::Pool::Sqlite(p) => {
                let payments = payment_select(super::sqlite::time_text);
                let payments_from = format!("temp.recon_rows r JOIN payments p ON p.rowid = r.rid {PAYMENT_JOINS}");
                let lines = line_select();
                let lines_from = "temp.recon_rows r JOIN settlement_lines l ON l.rowid = r.rid";
                tokio::try_join!(
                    super::sqlite::fetch_selected(p, &PAYMENT_ROWS, &payments, &payments_from, gateway, date),
                    super::sqlite::fetch_selected(p, &LINE_ROWS, &lines, lines_from, gateway, date)
                )?
            }
            super::Pool::Postgres(p) => {
                let payments = format!(
                    "SELECT {} FROM payments p {PAYMENT_JOINS} WHERE {PAYMENT_WHERE}",
                    payment_select(super::postgres::time_text)
                );
                let lines = format!("SELECT {} FROM settlement_lines l WHERE {LINE_WHERE}", line_select());
                tokio::try_join!(
                    super::postgres::fetch_packed(p, &payments, gateway, date),
                    super::postgres::fetch_packed(p, &lines, gateway, date)
                )?
            }
        };
        let files = self.settlement_files(Some(gateway)).await?;
        let closed: Vec<(NaiveDate,)> =
            on_pool!(self, |p| sqlx::query_as("SELECT business_date FROM day_closures WHERE gateway = $1")
                .bind(gateway)
                .fetch_all(p)
                .await)?;
        Ok(ReconData { packed_payments, packed_lines, files, closed: closed.into_iter().map(|(d,)| d).collect() })
    }

    /// The most recent run of a (date, gateway).
    pub async fn latest_run(&self, date: NaiveDate, gateway: Gateway) -> Result<Option<RunRecord>> {
        let sql = "SELECT run_id, business_date, gateway, created_at, created_by, report_hash, report FROM reconciliation_runs
                   WHERE business_date = $1 AND gateway = $2 ORDER BY created_at DESC, run_id DESC LIMIT 1";
        Ok(on_pool!(self, |p| sqlx::query_as(sql).bind(date).bind(gateway).fetch_optional(p).await)?)
    }

    /// A run's items by key after the cursor; one category, or the exceptions (all but matched).
    pub async fn run_items(
        &self,
        run_id: &str,
        category: Option<Category>,
        exceptions_only: bool,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ItemRow>> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM reconciliation_items
             WHERE run_seq = (SELECT run_seq FROM reconciliation_runs WHERE run_id = $1) AND ($2 = '' OR category = $2)
               AND (NOT $3 OR category <> 'matched') AND item_key > $4
             ORDER BY item_key LIMIT $5"
        );
        let category = category.map_or("", Category::as_str);
        Ok(on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(run_id)
            .bind(category)
            .bind(exceptions_only)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(p)
            .await)?)
    }

    /// One item of a run, by key.
    pub async fn run_item(&self, run_id: &str, key: &str) -> Result<Option<ItemRow>> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM reconciliation_items
             WHERE run_seq = (SELECT run_seq FROM reconciliation_runs WHERE run_id = $1) AND item_key = $2"
        );
        Ok(on_pool!(self, |p| sqlx::query_as(&sql).bind(run_id).bind(key).fetch_optional(p).await)?)
    }

    /// Every exception of a gateway.
    pub async fn gateway_exceptions(&self, gateway: Gateway) -> Result<Vec<ExceptionRow>> {
        let sql = format!("SELECT {EXCEPTION_COLUMNS} FROM exceptions WHERE gateway = $1");
        Ok(on_pool!(self, |p| sqlx::query_as(&sql).bind(gateway).fetch_all(p).await)?)
    }

    pub async fn get_exception(&self, id: &str) -> Result<Option<ExceptionRow>> {
        let sql = format!("SELECT {EXCEPTION_COLUMNS} FROM exceptions WHERE exception_id = $1");
        Ok(on_pool!(self, |p| sqlx::query_as(&sql).bind(id).fetch_optional(p).await)?)
    }

    /// When a (date, gateway) was closed.
    pub async fn closure(&self, date: NaiveDate, gateway: Gateway) -> Result<Option<DateTime<Utc>>> {
        let row: Option<(DateTime<Utc>,)> = on_pool!(self, |p| sqlx::query_as(
            "SELECT closed_at FROM day_closures WHERE business_date = $1 AND gateway = $2"
        )
        .bind(date)
        .bind(gateway)
        .fetch_optional(p)
        .await)?;
        Ok(row.map(|(t,)| t))
    }

    /// Waived and budget-covered payments created on a date: (waived, budget_covered).
    pub async fn no_gateway_sums(&self, date: NaiveDate) -> Result<(NoGatewaySums, NoGatewaySums)> {
        let start = Timestamp::at(BusinessDate::new(date).start());
        let end = Timestamp::at(BusinessDate::new(date).succ().start());
        let rows: Vec<(PaymentStatus, i64, i64, i64)> = on_pool!(self, |p| {
            sqlx::query_as(
            "SELECT status, COUNT(*), CAST(COALESCE(SUM(amount), 0) AS BIGINT), CAST(COALESCE(SUM(budget_amount), 0) AS BIGINT)
             FROM payments WHERE status IN ('waived', 'budget_covered') AND created_at >= $1 AND created_at < $2 GROUP BY status"
        )
        .bind(start)
        .bind(end)
        .fetch_all(p)
        .await
        })?;
        let get = |s: PaymentStatus| {
            rows.iter()
                .find(|r| r.0 == s)
                .map(|r| NoGatewaySums { count: r.1, citizen_due: r.2, budget_due: r.3 })
                .unwrap_or_default()
        };
        Ok((get(PaymentStatus::Waived), get(PaymentStatus::BudgetCovered)))
    }

    /// Per gateway, the latest run and the closure of a date.
    pub async fn day_gateways(&self, date: NaiveDate) -> Result<Vec<DayGateway>> {
        let mut out = Vec::new();
        for g in Gateway::ALL {
            let run = self.latest_run(date, *g).await?;
            let closed = self.closure(date, *g).await?;
            out.push(DayGateway {
                gateway: *g,
                report_hash: run.as_ref().map(|r| r.report_hash.clone()),
                run_at: run.map(|r| Timestamp::at(r.created_at)),
                closed_at: closed.map(Timestamp::at),
            });
        }
        Ok(out)
    }
}

impl WriteTx {
    /// Holds the gateway's reconciliation events (its paid payments and its settlement lines)
    /// until commit: `exclusive` for a close, which decides what a date counts; shared for the
    /// writers of those events (the payment committer, settlement imports), which never wait on
    /// each other. On PostgreSQL a transaction-scoped advisory lock per gateway; on SQLite the
    /// write transaction already excludes every other writer.
    pub async fn lock_gateway_events(&mut self, gateway: Gateway, exclusive: bool) -> Result<()> {
        if self.backend() == super::Backend::Sqlite {
            return Ok(());
        }
        // One key per gateway in a namespace of our own (the high half spells "fr").
        let key = (0x6672_i64 << 32) | i64::from(Gateway::ALL.iter().position(|g| *g == gateway).unwrap_or(0) as u32);
        let sql =
            if exclusive { "SELECT pg_advisory_xact_lock($1)" } else { "SELECT pg_advisory_xact_lock_shared($1)" };
        on_tx!(self, |c| sqlx::query(sql).bind(key).fetch_all(&mut *c).await.map(|r| r.len()))?;
        Ok(())
    }

    /// Whether a (date, gateway) is closed.
    pub async fn is_closed(&mut self, date: NaiveDate, gateway: Gateway) -> Result<bool> {
        let row: Option<(String,)> = on_tx!(self, |c| sqlx::query_as(
            "SELECT run_id FROM day_closures WHERE business_date = $1 AND gateway = $2"
        )
        .bind(date)
        .bind(gateway)
        .fetch_optional(&mut *c)
        .await)?;
        Ok(row.is_some())
    }

    /// The closed dates of these gateways on or after `from`.
    pub async fn closed_dates(&mut self, gateways: &[Gateway], from: NaiveDate) -> Result<Vec<(Gateway, NaiveDate)>> {
        if gateways.is_empty() {
            return Ok(vec![]);
        }
        Ok(on_tx!(self, |c| {
            let mut q =
                sqlx::QueryBuilder::new("SELECT gateway, business_date FROM day_closures WHERE business_date >= ");
            q.push_bind(from);
            q.push(" AND gateway IN (");
            let mut list = q.separated(", ");
            for g in gateways {
                list.push_bind(*g);
            }
            q.push(")");
            q.build_query_as().fetch_all(&mut *c).await
        })?)
    }

    /// Gives the home date `date` to the gateway's paid payments without one whose natural date
    /// is in [`from`, `date`] (what a close of `date` counts); returns how many.
    pub async fn home_payments(&mut self, gateway: Gateway, from: NaiveDate, date: NaiveDate) -> Result<u64> {
        Ok(on_tx!(self, |c| sqlx::query(
            "UPDATE payments SET home_date = $1
             WHERE gateway = $2 AND status = 'paid' AND home_date IS NULL AND paid_date >= $3 AND paid_date <= $1"
        )
        .bind(date)
        .bind(gateway)
        .bind(from)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?)
    }

    /// Gives the home date `date` to the lines of these ranges, (`import_seq`, first line,
    /// last line), that have none; returns how many.
    pub async fn home_lines(&mut self, ranges: &[(i64, i64, i64)], date: NaiveDate) -> Result<u64> {
        let mut n = 0;
        for (file_seq, from, to) in ranges {
            n += on_tx!(self, |c| sqlx::query(
                "UPDATE settlement_lines SET home_date = $1
                 WHERE file_seq = $2 AND line_no >= $3 AND line_no <= $4 AND home_date IS NULL"
            )
            .bind(date)
            .bind(file_seq)
            .bind(from)
            .bind(to)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))?;
        }
        Ok(n)
    }

    /// Stores a run and its items.
    pub async fn insert_run(&mut self, run: &RunRecord, items: &[Item<'_>]) -> Result<()> {
        // Writers are serialised (SQLite's write lock; on PostgreSQL the UNIQUE constraint refuses
        // a concurrent run that took the same number, and that run fails whole).
        let (seq,): (i64,) =
            on_tx!(self, |c| sqlx::query_as("SELECT COALESCE(MAX(run_seq), 0) + 1 FROM reconciliation_runs")
                .fetch_one(&mut *c)
                .await)?;
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO reconciliation_runs (run_id, run_seq, business_date, gateway, created_at, created_by, report_hash, report)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&run.run_id)
        .bind(seq)
        .bind(run.business_date)
        .bind(run.gateway)
        .bind(Timestamp::at(run.created_at))
        .bind(&run.created_by)
        .bind(&run.report_hash)
        .bind(&run.report)
        .execute(&mut *c)
        .await.map(|r| r.rows_affected()))
        .map_err(|e| on_unique(e, || "another reconciliation run was saved at the same moment; try again".into()))?;
        for chunk in items.chunks(rows_per_statement(15)) {
            on_tx!(self, |c| {
                let mut q =
                    sqlx::QueryBuilder::new(format!("INSERT INTO reconciliation_items (run_seq, {ITEM_COLUMNS}) "));
                q.push_values(chunk, |mut b, i| {
                    b.push_bind(seq)
                        .push_bind(&i.key)
                        .push_bind(i.category)
                        .push_bind(i.business_date)
                        .push_bind(i.case_code)
                        .push_bind(i.payment_id)
                        .push_bind(i.txn_ref)
                        .push_bind(i.gateway_txn_no)
                        .push_bind(i.line_status)
                        .push_bind(i.recorded_amount)
                        .push_bind(i.settled_amount)
                        .push_bind(i.expected_amount)
                        .push_bind(i.counterpart_date)
                        .push_bind(i.fee)
                        .push_bind(i.settles_payment);
                });
                q.build().execute(&mut *c).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }

    /// Applies exception changes; `false` when one was no longer in its expected state (the
    /// caller rolls back).
    pub async fn apply_exception_changes(&mut self, changes: &[ExceptionChange], at: DateTime<Utc>) -> Result<bool> {
        let at = Timestamp::at(at);
        for c in changes {
            let resolution = c.resolution.as_ref().map(|v| v.to_string());
            let rejection = c.rejection.as_ref().map(|v| v.to_string());
            match c.from_state {
                None => {
                    on_tx!(self, |conn| {
                        sqlx::query(
                        "INSERT INTO exceptions (exception_id, gateway, business_date, category, state, resolution, posting_id, rejection, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(&c.exception_id)
                    .bind(c.gateway)
                    .bind(c.business_date)
                    .bind(c.category)
                    .bind(c.state)
                    .bind(&resolution)
                    .bind(&c.posting_id)
                    .bind(&rejection)
                    .bind(at)
                    .execute(&mut *conn)
                    .await.map(|r| r.rows_affected())
                    })?;
                }
                Some(from) => {
                    let n = on_tx!(self, |conn| sqlx::query(
                        "UPDATE exceptions SET category = $1, state = $2, resolution = $3,
                                posting_id = CASE WHEN $4 THEN posting_id ELSE $5 END, rejection = $6, updated_at = $7
                         WHERE exception_id = $8 AND state = $9",
                    )
                    .bind(c.category)
                    .bind(c.state)
                    .bind(&resolution)
                    .bind(c.keep_posting)
                    .bind(&c.posting_id)
                    .bind(&rejection)
                    .bind(at)
                    .bind(&c.exception_id)
                    .bind(from)
                    .execute(&mut *conn)
                    .await
                    .map(|r| r.rows_affected()))?;
                    if n != 1 {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }

    /// Records a (date, gateway) as closed by `run_id`; `false` when it was closed already.
    pub async fn insert_closure(
        &mut self,
        date: NaiveDate,
        gateway: Gateway,
        run_id: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO day_closures (business_date, gateway, run_id, closed_at, closed_by) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (business_date, gateway) DO NOTHING",
        )
        .bind(date)
        .bind(gateway)
        .bind(run_id)
        .bind(Timestamp::at(at))
        .bind(actor)
        .execute(&mut *c)
        .await.map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("reconciliation row: {what}"))
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

    fn text(&mut self, what: &str) -> Result<&'a str, StoreError> {
        let (len, rest) = self.rest.split_once(':').ok_or_else(|| corrupt(what))?;
        let len: usize = len.parse().map_err(|_| corrupt(what))?;
        let value = rest.get(..len).ok_or_else(|| corrupt(what))?;
        self.rest = &rest[len..];
        Ok(value)
    }

    fn num(&mut self, what: &str) -> Result<i64, StoreError> {
        self.text(what)?.parse().map_err(|_| corrupt(what))
    }

    fn time(&mut self, what: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.text(what)? {
            "" => Ok(None),
            t => DateTime::parse_from_rfc3339(t).map(|t| Some(t.with_timezone(&Utc))).map_err(|_| corrupt(what)),
        }
    }

    fn date(&mut self, what: &str) -> Result<NaiveDate, StoreError> {
        NaiveDate::parse_from_str(self.text(what)?, "%Y-%m-%d").map_err(|_| corrupt(what))
    }

    fn opt_date(&mut self, what: &str) -> Result<Option<NaiveDate>, StoreError> {
        match self.text(what)? {
            "" => Ok(None),
            d => NaiveDate::parse_from_str(d, "%Y-%m-%d").map(Some).map_err(|_| corrupt(what)),
        }
    }
}

/// The payments a run of (`$1` gateway, `$2` date) reads, as a condition over `p`: paid without a
/// home date or homed on the date, or the counterpart of such a line.
const PAYMENT_WHERE: &str = "p.gateway = $1 AND p.txn_ref IS NOT NULL
    AND ((p.status = 'paid' AND (p.home_date IS NULL OR p.home_date = $2))
         OR p.txn_ref IN (SELECT l.txn_ref FROM settlement_lines l WHERE l.gateway = $1 AND (l.home_date IS NULL OR l.home_date = $2)))";

/// The lines a run reads, as a condition over `l`: without a home date or homed on the date, or a
/// counterpart of such a paid payment.
const LINE_WHERE: &str = "l.gateway = $1 AND (l.home_date IS NULL OR l.home_date = $2
    OR l.txn_ref IN (SELECT p.txn_ref FROM payments p WHERE p.gateway = $1 AND p.status = 'paid' AND (p.home_date IS NULL OR p.home_date = $2)))";

/// What a payment row joins: its case's current version.
const PAYMENT_JOINS: &str = "JOIN cases c ON c.case_code = p.case_code
    JOIN case_versions v ON v.case_code = c.case_code AND v.version = c.current_version";

/// The same rows as `PAYMENT_WHERE`, as statements that each use an index, for SQLite to collect
/// their row ids (see `sqlite::fetch_selected`).
const PAYMENT_ROWS: [&str; 4] = [
    "SELECT rowid FROM payments WHERE gateway = $1 AND status = 'paid' AND home_date IS NULL AND txn_ref IS NOT NULL",
    "SELECT rowid FROM payments WHERE gateway = $1 AND status = 'paid' AND home_date = $2 AND txn_ref IS NOT NULL",
    "SELECT p.rowid FROM settlement_lines l JOIN payments p ON p.txn_ref = l.txn_ref
     WHERE l.gateway = $1 AND l.home_date IS NULL AND p.gateway = $1",
    "SELECT p.rowid FROM settlement_lines l JOIN payments p ON p.txn_ref = l.txn_ref
     WHERE l.gateway = $1 AND l.home_date = $2 AND p.gateway = $1",
];

/// The same rows as `LINE_WHERE`, as index-using statements.
const LINE_ROWS: [&str; 4] = [
    "SELECT rowid FROM settlement_lines WHERE gateway = $1 AND home_date IS NULL",
    "SELECT rowid FROM settlement_lines WHERE gateway = $1 AND home_date = $2",
    "SELECT l.rowid FROM payments p JOIN settlement_lines l ON l.gateway = p.gateway AND l.txn_ref = p.txn_ref
     WHERE p.gateway = $1 AND p.status = 'paid' AND p.home_date IS NULL",
    "SELECT l.rowid FROM payments p JOIN settlement_lines l ON l.gateway = p.gateway AND l.txn_ref = p.txn_ref
     WHERE p.gateway = $1 AND p.status = 'paid' AND p.home_date = $2",
];

/// The packed columns of a payment row (`... AS x`, over `p` and `v` of `PAYMENT_JOINS`);
/// `time` renders a timestamp column as RFC 3339 text.
pub(super) fn payment_select(time: fn(&str) -> String) -> String {
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
        "p.paid_date".into(),
        "p.home_date".into(),
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
    format!("{} AS x", pack_sql(&columns))
}

fn read_payment<'a>(f: &mut Unpack<'a>) -> Result<ReconPaymentRow<'a>, StoreError> {
    Ok(ReconPaymentRow {
        payment_id: f.text("payment_id")?,
        case_code: f.text("case_code")?,
        txn_ref: f.text("txn_ref")?,
        gateway_txn_no: Some(f.text("gateway_txn_no")?).filter(|n| !n.is_empty()),
        amount: f.num("amount")?,
        status: f.text("status")?.parse().map_err(|_| corrupt("status"))?,
        duplicate: f.text("duplicate")? == "1",
        phi_due: f.num("phi_due")?,
        le_phi_due: f.num("le_phi_due")?,
        paid_date: f.opt_date("paid_date")?,
        home_date: f.opt_date("home_date")?,
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

/// The packed columns of a settlement line (`... AS x`, over `l`).
pub(super) fn line_select() -> String {
    let columns = [
        "l.file_seq",
        "l.line_no",
        "l.gateway_txn_no",
        "l.txn_ref",
        "l.amount",
        "l.fee",
        "l.business_date",
        "l.status",
        "l.first_occurrence",
        "l.home_date",
    ];
    format!("{} AS x", pack_sql(&columns))
}

fn read_line<'a>(f: &mut Unpack<'a>) -> Result<ReconLine<'a>, StoreError> {
    Ok(ReconLine {
        file_seq: f.num("import_seq")?,
        line_no: f.num("line_no")?,
        gateway_txn_no: f.text("gateway_txn_no")?,
        txn_ref: f.text("txn_ref")?,
        amount: f.num("amount")?,
        fee: f.num("fee")?,
        business_date: f.date("business_date")?,
        refund: f.text("status")? == "refund",
        first: matches!(f.text("first_occurrence")?, "1" | "true" | "t"),
        home_date: f.opt_date("home_date")?,
    })
}
