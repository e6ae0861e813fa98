//! The portal outbox (SPEC §6.6): events written by the transaction that causes them, and their
//! delivery state. Several instances share the delivery work through leases (`FOR UPDATE SKIP
//! LOCKED` on PostgreSQL).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Result, Store, WriteTx, on_pool, on_tx, rows_per_statement};
use crate::domain::payment::{DeliveryState, EventType, Flag, PaymentStatus};
use crate::domain::receipt::ReceiptRef;
use crate::domain::sql::JsonText;
use crate::domain::{CaseCode, Timestamp};

/// A portal event in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxEvent {
    pub event_id: String,
    pub event_type: EventType,
    pub case_code: CaseCode,
    pub payment_id: String,
    /// The payment's status after the change.
    pub status: PaymentStatus,
    /// What was paid (or is to be paid): the payment's amount, in đồng.
    pub amount: i64,
    /// What the case owes the citizen, in đồng: a portal treats a case as paid only when `amount`
    /// equals it and `flags` is empty (SPEC §6.6).
    pub citizen_due: i64,
    /// The payment's flags after the change, sorted.
    pub flags: JsonText<Vec<Flag>>,
    pub paid_at: Option<DateTime<Utc>>,
    /// Grows by one per event of the case, from 1.
    pub case_seq: i64,
    pub created_at: DateTime<Utc>,
    pub state: DeliveryState,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The receipt the event's transaction issued (`payment.succeeded`, `.duplicate`,
    /// `.budget_covered`): template, symbol and number, all three or none.
    pub receipt_template: Option<String>,
    pub receipt_symbol: Option<String>,
    pub receipt_number: Option<i64>,
}

impl OutboxEvent {
    /// The receipt the event carries, when it carries one.
    pub fn receipt(&self) -> Option<ReceiptRef> {
        match (&self.receipt_template, &self.receipt_symbol, self.receipt_number) {
            (Some(t), Some(s), Some(n)) => Some(ReceiptRef { template: t.clone(), symbol: s.clone(), number: n }),
            _ => None,
        }
    }

    /// Makes the event carry `r`.
    pub fn set_receipt(&mut self, r: &ReceiptRef) {
        self.receipt_template = Some(r.template.clone());
        self.receipt_symbol = Some(r.symbol.clone());
        self.receipt_number = Some(r.number);
    }
}

const COLUMNS: &str = "event_id, event_type, case_code, payment_id, status, amount, citizen_due, flags, paid_at, case_seq, \
                       created_at, state, attempts, next_attempt_at, last_error, delivered_at, receipt_template, \
                       receipt_symbol, receipt_number";

impl Store {
    /// A case's portal events, in `case_seq` order.
    pub async fn case_events(&self, case_code: &CaseCode) -> Result<Vec<OutboxEvent>> {
        let sql = format!("SELECT {COLUMNS} FROM outbox WHERE case_code = $1 ORDER BY case_seq");
        Ok(on_pool!(self, |p| sqlx::query_as(&sql).bind(case_code).fetch_all(p).await)?)
    }

    /// Notifications in a state (every state when `None`), by id after the cursor.
    pub async fn notifications(
        &self,
        state: Option<DeliveryState>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboxEvent>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE ($1 = '' OR state = $1) AND event_id > $2 ORDER BY event_id LIMIT $3"
        );
        let state = state.map_or("", DeliveryState::as_str);
        Ok(on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(state)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(p)
            .await)?)
    }

    /// Claims up to `limit` due notifications until `lease_until`: another worker (or instance)
    /// skips them meanwhile; a crash lets the lease lapse and they are retried.
    pub async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxEvent>> {
        let mut tx = self.write().await?;
        let skip_locked = if tx.backend() == super::Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "SELECT event_id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1
               AND (locked_until IS NULL OR locked_until <= $1)
             ORDER BY next_attempt_at, case_code, case_seq LIMIT $2{skip_locked}"
        );
        let now = Timestamp::at(now);
        let ids: Vec<(String,)> = on_tx!(tx, |c| sqlx::query_as(&sql).bind(now).bind(limit).fetch_all(&mut *c).await)?;
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let lease = Timestamp::at(lease_until);
        let rows: Vec<OutboxEvent> = on_tx!(tx, |c| {
            let mut q = sqlx::QueryBuilder::new("UPDATE outbox SET locked_until = ");
            q.push_bind(lease);
            q.push(" WHERE event_id IN (");
            let mut list = q.separated(", ");
            for (id,) in &ids {
                list.push_bind(id.as_str());
            }
            q.push(format!(") RETURNING {COLUMNS}"));
            q.build_query_as().fetch_all(&mut *c).await
        })?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Records a delivery attempt: delivered, retried at `retry_at`, or dead-lettered (`retry_at` None).
    pub async fn record_delivery(
        &self,
        event_id: &str,
        delivered: bool,
        retry_at: Option<DateTime<Utc>>,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let at = Timestamp::at(at);
        on_tx!(tx, |c| {
            let q = if delivered {
                sqlx::query(
                    "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, delivered_at = $1, locked_until = NULL, last_error = NULL
                     WHERE event_id = $2",
                )
                .bind(at)
                .bind(event_id)
            } else if let Some(retry) = retry_at {
                sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, locked_until = NULL, last_error = $2 WHERE event_id = $3",
                )
                .bind(Timestamp::at(retry))
                .bind(error)
                .bind(event_id)
            } else {
                sqlx::query(
                    "UPDATE outbox SET state = 'failed', attempts = attempts + 1, locked_until = NULL, last_error = $1 WHERE event_id = $2",
                )
                .bind(error)
                .bind(event_id)
            };
            q.execute(&mut *c).await.map(|r| r.rows_affected())
        })?;
        tx.commit().await?;
        Ok(())
    }

    /// Counts of notifications by state, for `/metrics`.
    pub async fn notification_counts(&self) -> Result<Vec<(DeliveryState, i64)>> {
        Ok(on_pool!(self, |p| sqlx::query_as("SELECT state, COUNT(*) FROM outbox GROUP BY state ORDER BY state")
            .fetch_all(p)
            .await)?)
    }
}

impl WriteTx {
    /// The last `case_seq` of each of these cases (absent: none yet).
    pub async fn last_case_seqs(&mut self, cases: &[&str]) -> Result<HashMap<String, i64>> {
        if cases.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(String, i64)> = on_tx!(self, |c| {
            let mut q = sqlx::QueryBuilder::new("SELECT case_code, MAX(case_seq) FROM outbox WHERE case_code IN (");
            let mut list = q.separated(", ");
            for code in cases {
                list.push_bind(*code);
            }
            q.push(") GROUP BY case_code");
            q.build_query_as().fetch_all(&mut *c).await
        })?;
        Ok(rows.into_iter().collect())
    }

    /// Writes new events, pending delivery now.
    pub async fn insert_outbox(&mut self, events: &[OutboxEvent]) -> Result<()> {
        for chunk in events.chunks(rows_per_statement(17)) {
            on_tx!(self, |c| {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO outbox (event_id, event_type, case_code, payment_id, status, amount, citizen_due, flags, paid_at,
                                         case_seq, created_at, state, attempts, next_attempt_at, receipt_template,
                                         receipt_symbol, receipt_number) ",
                );
                q.push_values(chunk, |mut b, e| {
                    b.push_bind(&e.event_id)
                        .push_bind(e.event_type)
                        .push_bind(&e.case_code)
                        .push_bind(&e.payment_id)
                        .push_bind(e.status)
                        .push_bind(e.amount)
                        .push_bind(e.citizen_due)
                        .push_bind(&e.flags)
                        .push_bind(e.paid_at.map(Timestamp::at))
                        .push_bind(e.case_seq)
                        .push_bind(Timestamp::at(e.created_at))
                        .push_bind(e.state)
                        .push_bind(e.attempts)
                        .push_bind(Timestamp::at(e.next_attempt_at))
                        .push_bind(&e.receipt_template)
                        .push_bind(&e.receipt_symbol)
                        .push_bind(e.receipt_number);
                });
                q.build().execute(&mut *c).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }

    /// Puts a failed notification back in the queue now; `false` when there is no such failed event.
    pub async fn requeue_notification(&mut self, event_id: &str, at: DateTime<Utc>) -> Result<bool> {
        let n = on_tx!(self, |c| sqlx::query(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $1, locked_until = NULL
             WHERE event_id = $2 AND state = 'failed'",
        )
        .bind(Timestamp::at(at))
        .bind(event_id)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
