//! Reconciliation runs, their items, exceptions and day closures (SPEC §7.2, §7.3). What a run
//! reads is `recon_data`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::recon_blocks::{BLOCKS_PER_STATEMENT, block_items};
use super::{Result, Store, WriteTx, on_pool, on_tx, on_unique, rows_per_statement};
use crate::domain::payment::{Gateway, PaymentStatus};
use crate::domain::recon::{Category, ExceptionState, Item};
use crate::domain::{BusinessDate, Timestamp};

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

impl ExceptionChange {
    /// A change of the stored exception `e` to `state`, keeping its resolution, posting and last
    /// rejection; the caller overrides what changes.
    pub fn of(e: &ExceptionRow, state: ExceptionState) -> Self {
        let parse = |s: &Option<String>| s.as_deref().and_then(|r| serde_json::from_str(r).ok());
        Self {
            exception_id: e.exception_id.clone(),
            from_state: Some(e.state),
            gateway: e.gateway,
            business_date: e.business_date,
            category: e.category,
            state,
            resolution: parse(&e.resolution),
            posting_id: None,
            keep_posting: true,
            rejection: parse(&e.rejection),
        }
    }
}

/// Waived and budget-covered payments of a date.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NoGatewaySums {
    pub count: i64,
    pub citizen_due: i64,
    pub budget_due: i64,
}

/// When a run, or a closure, concerns a day: for the day view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DayGateway {
    pub gateway: Gateway,
    pub report_hash: Option<String>,
    pub run_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
}

impl Store {
    /// The most recent run of a (date, gateway).
    pub async fn latest_run(&self, date: NaiveDate, gateway: Gateway) -> Result<Option<RunRecord>> {
        let sql = "SELECT run_id, business_date, gateway, created_at, created_by, report_hash, report FROM reconciliation_runs
                   WHERE business_date = $1 AND gateway = $2 ORDER BY created_at DESC, run_id DESC LIMIT 1";
        Ok(on_pool!(self, |p| sqlx::query_as(sql).bind(date).bind(gateway).fetch_optional(p).await)?)
    }

    /// A run's items by key after the cursor; one category, or the exceptions (all but matched).
    /// Items are rows, and matched items also blocks (`recon_blocks`): both, merged in key order.
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
        let after = after.unwrap_or("");
        let rows: Vec<ItemRow> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(run_id)
            .bind(category.map_or("", Category::as_str))
            .bind(exceptions_only)
            .bind(after)
            .bind(limit)
            .fetch_all(p)
            .await)?;
        if exceptions_only || category.is_some_and(|c| c != Category::Matched) {
            return Ok(rows);
        }
        let limit = usize::try_from(limit).unwrap_or(0);
        let blocks = self.block_items_after(run_id, after, limit).await?;
        Ok(super::recon_blocks::merge(rows, blocks, limit))
    }

    /// One item of a run, by key: a row, else a matched item in a block.
    pub async fn run_item(&self, run_id: &str, key: &str) -> Result<Option<ItemRow>> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM reconciliation_items
             WHERE run_seq = (SELECT run_seq FROM reconciliation_runs WHERE run_id = $1) AND item_key = $2"
        );
        let row: Option<ItemRow> =
            on_pool!(self, |p| sqlx::query_as(&sql).bind(run_id).bind(key).fetch_optional(p).await)?;
        match row {
            Some(row) => Ok(Some(row)),
            None => self.block_item(run_id, key).await,
        }
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

    /// Records the lines a close of `date` homed whose payment it did not home, (`import_seq`,
    /// line number, `txn_ref`): the set later runs join for a payment's closed lines (migration
    /// 0015).
    pub async fn record_lines_homed_alone(
        &mut self,
        gateway: Gateway,
        date: NaiveDate,
        lines: &[(i64, i64, &str)],
    ) -> Result<()> {
        for chunk in lines.chunks(rows_per_statement(5)) {
            on_tx!(self, |c| {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO lines_homed_alone (gateway, file_seq, line_no, txn_ref, home_date) ",
                );
                q.push_values(chunk, |mut row, (file_seq, line_no, txn_ref)| {
                    row.push_bind(gateway).push_bind(*file_seq).push_bind(*line_no).push_bind(*txn_ref).push_bind(date);
                });
                q.build().execute(&mut *c).await.map(|_| ())
            })?;
        }
        Ok(())
    }

    /// Stores a run and its items: exception items, and matched items for which `as_row` holds,
    /// as rows; the other matched items as blocks (`recon_blocks`). `as_row` must hold for every
    /// key that is an exception's id: the exception list joins those rows. `items` come in key
    /// order (byte order); they are taken a statement of blocks at a time, so a caller can build
    /// them as they are stored instead of holding them all.
    pub async fn insert_run<'i>(
        &mut self,
        run: &RunRecord,
        items: impl Iterator<Item = Item<'i>> + Send,
        as_row: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<()> {
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
        // Blocks are written a statement at a time, as the items come: the statements and blocks
        // are cut at the same places as if every item were held.
        let per_statement = block_items() * BLOCKS_PER_STATEMENT;
        let mut rows = Vec::new();
        let mut blocks = Vec::with_capacity(per_statement);
        for i in items {
            if i.category != Category::Matched || as_row(&i.key) {
                rows.push(i);
                continue;
            }
            blocks.push(i);
            if blocks.len() == per_statement {
                self.insert_item_blocks(seq, &blocks).await?;
                blocks.clear();
            }
        }
        self.insert_item_blocks(seq, &blocks).await?;
        for chunk in rows.chunks(rows_per_statement(15)) {
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

    /// How many exceptions a gateway has, as this transaction sees them (none is ever deleted).
    pub async fn exception_count(&mut self, gateway: Gateway) -> Result<i64> {
        let (n,): (i64,) = on_tx!(self, |c| sqlx::query_as("SELECT COUNT(*) FROM exceptions WHERE gateway = $1")
            .bind(gateway)
            .fetch_one(&mut *c)
            .await)?;
        Ok(n)
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
