//! Treasury remittance (issue 19): the ledger's revenue entries a statement is computed from, the
//! periods whose statement is frozen, and the remittances finance records under four eyes. This
//! file stores and reads; which entries count in which period, and what a remittance posts, are
//! decided by the `remittance` service.

use chrono::NaiveDate;

use super::{Result, Store, WriteTx, on_pool, on_tx, on_unique};
use crate::domain::Timestamp;
use crate::domain::remittance::{Period, PeriodKind, RemittanceState};

/// One ledger entry of a revenue account, as a statement reads it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RevenueEntry {
    pub seq: i64,
    pub business_date: NaiveDate,
    pub account: String,
    pub debit: i64,
    pub credit: i64,
    /// The entry's refs; its budget tag ends them (`BudgetTag::from_refs`).
    pub refs: String,
}

/// A period whose statement is frozen at `through_seq` (the ledger's last seq when its
/// remittance was first requested). Never changes once written.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FrozenPeriod {
    pub period: Period,
    pub period_kind: PeriodKind,
    pub through_seq: i64,
    pub frozen_at: Timestamp,
    pub frozen_by: String,
}

/// A remittance request and its decision.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RemittanceRow {
    pub remittance_id: String,
    pub period: Period,
    pub state: RemittanceState,
    /// The statement's total, in đồng.
    pub amount: i64,
    pub transferred_on: NaiveDate,
    pub reference: String,
    pub note: String,
    pub requested_by: String,
    pub requested_at: Timestamp,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
    pub decision_note: Option<String>,
    /// The posting that recorded it (state `recorded` only).
    pub posting_id: Option<String>,
}

const COLUMNS: &str = "remittance_id, period, state, amount, transferred_on, reference, note, requested_by, \
                       requested_at, decided_by, decided_at, decision_note, posting_id";

/// The decision on a pending remittance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemittanceDecision {
    pub remittance_id: String,
    pub state: RemittanceState,
    pub decided_by: String,
    pub decided_at: Timestamp,
    pub decision_note: Option<String>,
    pub posting_id: Option<String>,
}

impl Store {
    /// Entries of `accounts` with business date at most `to` and either at least `from` or a seq
    /// above `late_after` (entries of earlier dates written after that seq), none above
    /// `through`; by seq.
    pub async fn revenue_entries(
        &self,
        accounts: &[&str],
        from: NaiveDate,
        to: NaiveDate,
        late_after: i64,
        through: i64,
    ) -> Result<Vec<RevenueEntry>> {
        Ok(on_pool!(self, |p| {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT seq, business_date, account, debit, credit, refs FROM ledger_entries WHERE account IN (",
            );
            let mut list = q.separated(", ");
            for a in accounts {
                list.push_bind(*a);
            }
            q.push(") AND business_date <= ")
                .push_bind(to)
                .push(" AND (business_date >= ")
                .push_bind(from)
                .push(" OR seq > ")
                .push_bind(late_after)
                .push(") AND seq <= ")
                .push_bind(through)
                .push(" ORDER BY seq");
            q.build_query_as().fetch_all(p).await
        })?)
    }

    /// Every frozen period, by period.
    pub async fn frozen_periods(&self) -> Result<Vec<FrozenPeriod>> {
        let sql =
            "SELECT period, period_kind, through_seq, frozen_at, frozen_by FROM remittance_periods ORDER BY period";
        Ok(on_pool!(self, |p| sqlx::query_as(sql).fetch_all(p).await)?)
    }

    /// Every remittance, or a period's, in the order they were requested.
    pub async fn remittances(&self, period: Option<Period>) -> Result<Vec<RemittanceRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM remittances WHERE ($1 = '' OR period = $1) ORDER BY requested_at, remittance_id"
        );
        let key = period.map(|p| p.to_string()).unwrap_or_default();
        Ok(on_pool!(self, |p| sqlx::query_as(&sql).bind(&key).fetch_all(p).await)?)
    }
}

impl WriteTx {
    /// The period's freeze, if it has one (read inside the transaction that may write it).
    pub async fn frozen_period(&mut self, period: Period) -> Result<Option<FrozenPeriod>> {
        let sql =
            "SELECT period, period_kind, through_seq, frozen_at, frozen_by FROM remittance_periods WHERE period = $1";
        Ok(on_tx!(self, |c| sqlx::query_as(sql).bind(period).fetch_optional(&mut *c).await)?)
    }

    /// Freezes periods; one frozen already is left as it is.
    pub async fn freeze_periods(&mut self, rows: &[FrozenPeriod]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        on_tx!(self, |c| {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO remittance_periods (period, period_kind, through_seq, frozen_at, frozen_by) ",
            );
            q.push_values(rows, |mut b, r| {
                b.push_bind(r.period)
                    .push_bind(r.period_kind)
                    .push_bind(r.through_seq)
                    .push_bind(r.frozen_at)
                    .push_bind(&r.frozen_by);
            });
            q.push(" ON CONFLICT (period) DO NOTHING");
            q.build().execute(&mut *c).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Inserts remittance requests; a second live (pending or recorded) request of a period is
    /// `Conflict`.
    pub async fn insert_remittances(&mut self, rows: &[RemittanceRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        on_tx!(self, |c| {
            let mut q = sqlx::QueryBuilder::new(format!("INSERT INTO remittances ({COLUMNS}) "));
            q.push_values(rows, |mut b, r| {
                b.push_bind(&r.remittance_id)
                    .push_bind(r.period)
                    .push_bind(r.state)
                    .push_bind(r.amount)
                    .push_bind(r.transferred_on)
                    .push_bind(&r.reference)
                    .push_bind(&r.note)
                    .push_bind(&r.requested_by)
                    .push_bind(r.requested_at)
                    .push_bind(&r.decided_by)
                    .push_bind(r.decided_at)
                    .push_bind(&r.decision_note)
                    .push_bind(&r.posting_id);
            });
            q.build().execute(&mut *c).await.map(|r| r.rows_affected())
        })
        .map_err(|e| on_unique(e, || "this period already has a remittance pending or recorded".into()))?;
        Ok(())
    }

    /// A period's pending remittance, locked until commit.
    pub async fn pending_remittance(&mut self, period: Period) -> Result<Option<RemittanceRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM remittances WHERE period = $1 AND state = 'pending_approval'{}",
            self.for_update()
        );
        Ok(on_tx!(self, |c| sqlx::query_as(&sql).bind(period).fetch_optional(&mut *c).await)?)
    }

    /// Decides pending remittances; `false` when one was no longer pending (the caller drops the
    /// transaction: nothing is written).
    pub async fn decide_remittances(&mut self, decisions: &[RemittanceDecision]) -> Result<bool> {
        for d in decisions {
            let n = on_tx!(self, |c| {
                sqlx::query(
                "UPDATE remittances SET state = $1, decided_by = $2, decided_at = $3, decision_note = $4, posting_id = $5
                 WHERE remittance_id = $6 AND state = 'pending_approval'"
            )
            .bind(d.state)
            .bind(&d.decided_by)
            .bind(d.decided_at)
            .bind(&d.decision_note)
            .bind(&d.posting_id)
            .bind(&d.remittance_id)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
            })?;
            if n != 1 {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
