//! Reads for the finance dashboard's overviews: where each (business date, gateway) of a range
//! stands, the exceptions across dates with filters, the waived and budget-covered payments of a
//! date, and a later occurrence of a settlement line. Read-only; each is a handful of grouped
//! statements whatever the range holds.

use chrono::{DateTime, NaiveDate, Utc};

use super::recon::ExceptionRow;
use super::settlement::LineRow;
use super::{Result, Store, on_pool};
use crate::domain::payment::{Gateway, PaymentStatus};
use crate::domain::recon::{Category, LineStatus};
use crate::domain::{BusinessDate, CaseCode, Money, Timestamp};

/// What a range of dates holds, per (date, gateway): each list sorted by date then gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeFacts {
    /// Settlement lines whose own date is the date: (date, gateway, count).
    pub lines: Vec<(NaiveDate, Gateway, i64)>,
    /// The latest run of each (date, gateway) that has one, with its exceptions still open or
    /// pending approval: (date, gateway, run_id, unresolved).
    pub runs: Vec<(NaiveDate, Gateway, String, i64)>,
    /// Closed (date, gateway)s.
    pub closed: Vec<(NaiveDate, Gateway)>,
}

/// Which exceptions a list shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionFilter {
    pub gateway: Option<Gateway>,
    pub category: Option<Category>,
    /// A state's wire name, `unresolved` (open or pending approval), or `None` for every state.
    pub state: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// An exception with what the latest run of its (date, gateway) says of its item.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExceptionListRow {
    #[sqlx(flatten)]
    pub exception: ExceptionRow,
    pub case_code: Option<String>,
    pub txn_ref: Option<String>,
    pub line_status: Option<LineStatus>,
    pub recorded_amount: Option<i64>,
    pub settled_amount: Option<i64>,
    /// Whether the latest run of its (date, gateway) still has the item.
    pub in_latest_run: bool,
}

/// A waived or budget-covered payment (no gateway takes part).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NoGatewayPayment {
    pub payment_id: String,
    pub case_code: CaseCode,
    pub status: PaymentStatus,
    /// The citizen's due (0 for a waived or wholly covered case).
    pub amount: Money,
    pub budget_amount: Money,
    pub procedure_code: String,
    pub created_at: DateTime<Utc>,
}

/// Bounds for open date ranges that both backends store and compare as dates (SQLite compares
/// `YYYY-MM-DD` text, so no year beyond four digits; PostgreSQL has no year 0).
const FIRST_DATE: NaiveDate = NaiveDate::from_ymd_opt(1, 1, 1).expect("0001-01-01 exists");
const LAST_DATE: NaiveDate = NaiveDate::from_ymd_opt(9999, 12, 31).expect("9999-12-31 exists");

/// The exception categories (every one but `matched`), as an SQL list of literals.
fn exception_categories() -> String {
    super::sql_literals(Category::ALL.iter().filter(|c| **c != Category::Matched).map(|c| c.as_str()))
}

/// The latest run of the (date, gateway) of the row aliased `outer`, as a scalar subquery.
fn latest_run_seq(outer: &str) -> String {
    format!(
        "(SELECT r2.run_seq FROM reconciliation_runs r2 WHERE r2.business_date = {outer}.business_date
          AND r2.gateway = {outer}.gateway ORDER BY r2.created_at DESC, r2.run_id DESC LIMIT 1)"
    )
}

impl Store {
    /// Lines, latest runs and closures of the dates `from..=to`, per gateway.
    pub async fn range_facts(&self, from: NaiveDate, to: NaiveDate) -> Result<RangeFacts> {
        let lines_sql = "SELECT business_date, gateway, COUNT(*) FROM settlement_lines
                         WHERE business_date >= $1 AND business_date <= $2
                         GROUP BY business_date, gateway ORDER BY business_date, gateway";
        let lines: Vec<(NaiveDate, Gateway, i64)> =
            on_pool!(self, |p| sqlx::query_as(lines_sql).bind(from).bind(to).fetch_all(p).await)?;
        let runs_sql = format!(
            "SELECT r.business_date, r.gateway, r.run_id,
                    (SELECT COUNT(*) FROM reconciliation_items i
                       LEFT JOIN exceptions e ON e.exception_id = i.item_key
                      WHERE i.run_seq = r.run_seq AND i.category IN ({cats})
                        AND COALESCE(e.state, 'open') IN ('open', 'pending_approval')) AS unresolved
             FROM reconciliation_runs r
             WHERE r.business_date >= $1 AND r.business_date <= $2 AND r.run_seq = {latest}
             ORDER BY r.business_date, r.gateway",
            cats = exception_categories(),
            latest = latest_run_seq("r"),
        );
        let runs: Vec<(NaiveDate, Gateway, String, i64)> =
            on_pool!(self, |p| sqlx::query_as(&runs_sql).bind(from).bind(to).fetch_all(p).await)?;
        let closed_sql =
            "SELECT business_date, gateway FROM day_closures WHERE business_date >= $1 AND business_date <= $2
                          ORDER BY business_date, gateway";
        let closed: Vec<(NaiveDate, Gateway)> =
            on_pool!(self, |p| sqlx::query_as(closed_sql).bind(from).bind(to).fetch_all(p).await)?;
        Ok(RangeFacts { lines, runs, closed })
    }

    /// Exceptions matching `f`, newest date first then by id, after the cursor `(date, id)`.
    pub async fn exception_list(
        &self,
        f: &ExceptionFilter,
        after: Option<(NaiveDate, &str)>,
        limit: i64,
    ) -> Result<Vec<ExceptionListRow>> {
        let sql = format!(
            "SELECT e.exception_id, e.gateway, e.business_date, e.category, e.state, e.resolution, e.posting_id,
                    e.rejection, e.updated_at, i.case_code, i.txn_ref, i.line_status, i.recorded_amount,
                    i.settled_amount, (i.item_key IS NOT NULL) AS in_latest_run
             FROM exceptions e
             LEFT JOIN reconciliation_items i ON i.item_key = e.exception_id AND i.run_seq = {latest}
             WHERE ($1 = '' OR e.gateway = $1) AND ($2 = '' OR e.category = $2)
               AND ($3 = '' OR e.state = $3 OR ($3 = 'unresolved' AND e.state IN ('open', 'pending_approval')))
               AND e.business_date >= $4 AND e.business_date <= $5
               AND (e.business_date < $6 OR (e.business_date = $6 AND e.exception_id > $7))
             ORDER BY e.business_date DESC, e.exception_id LIMIT $8",
            latest = latest_run_seq("e"),
        );
        let (after_date, after_id) = after.unwrap_or((LAST_DATE, ""));
        let gateway = f.gateway.map_or("", Gateway::as_str);
        let category = f.category.map_or("", Category::as_str);
        let state = f.state.as_deref().unwrap_or("");
        let from = f.from.unwrap_or(FIRST_DATE);
        let to = f.to.unwrap_or(LAST_DATE);
        Ok(on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(gateway)
            .bind(category)
            .bind(state)
            .bind(from)
            .bind(to)
            .bind(after_date)
            .bind(after_id)
            .bind(limit)
            .fetch_all(p)
            .await)?)
    }

    /// The line `line_no` of the gateway's file whose SHA-256 starts with `sha_prefix` (hex).
    pub async fn settlement_line_in_file(
        &self,
        gateway: Gateway,
        sha_prefix: &str,
        line_no: i64,
    ) -> Result<Option<LineRow>> {
        let sql = "SELECT f.file_id, l.line_no, l.gateway_txn_no, l.txn_ref, l.amount, l.fee, l.txn_time, l.business_date, l.status
                   FROM settlement_lines l JOIN settlement_files f ON f.import_seq = l.file_seq
                   WHERE f.gateway = $1 AND substr(f.sha256, 1, $2) = $3 AND l.line_no = $4
                   ORDER BY l.file_seq LIMIT 1";
        let len = i64::try_from(sha_prefix.len()).unwrap_or(i64::MAX);
        Ok(on_pool!(self, |p| sqlx::query_as(sql)
            .bind(gateway)
            .bind(len)
            .bind(sha_prefix)
            .bind(line_no)
            .fetch_optional(p)
            .await)?)
    }

    /// Waived and budget-covered payments created on `date`, oldest first, at most `limit`.
    pub async fn no_gateway_payments(&self, date: NaiveDate, limit: i64) -> Result<Vec<NoGatewayPayment>> {
        let start = Timestamp::at(BusinessDate::new(date).start());
        let end = Timestamp::at(BusinessDate::new(date).succ().start());
        let sql =
            "SELECT p.payment_id, p.case_code, p.status, p.amount, p.budget_amount, v.procedure_code, p.created_at
                   FROM payments p JOIN case_versions v ON v.case_code = p.case_code AND v.version = p.case_version
                   WHERE p.status IN ('waived', 'budget_covered') AND p.created_at >= $1 AND p.created_at < $2
                   ORDER BY p.created_at, p.payment_id LIMIT $3";
        Ok(on_pool!(self, |p| sqlx::query_as(sql).bind(start).bind(end).bind(limit).fetch_all(p).await)?)
    }
}
