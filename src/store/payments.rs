//! Payments, their flags, the outcomes applied to them and every gateway message kept as
//! evidence (SPEC §6). The primitives are batch-shaped: the callback committer loads the
//! payments of a whole batch, and writes its callbacks, payment changes, flags and applied
//! outcomes, each with one statement (or a few, for very large batches).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Result, Store, WriteTx, on_pool, on_tx, on_unique, rows_per_statement};
use crate::domain::callback::{AuthenticatedBy, CallbackResult, Source};
use crate::domain::payment::{AnswerKind, Flag, Gateway, OutcomeKind, PaymentStatus};
use crate::domain::{CaseCode, Money, Timestamp};

/// A payment as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Payment {
    pub payment_id: String,
    pub case_code: CaseCode,
    pub case_version: i64,
    pub gateway: Gateway,
    /// The reference sent to the gateway; `None` for waived and budget-covered payments.
    pub txn_ref: Option<String>,
    /// The citizen's due at creation.
    pub amount: Money,
    /// What the province's budget owes.
    pub budget_amount: Money,
    pub status: PaymentStatus,
    pub gateway_txn_no: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub pay_url: Option<String>,
    pub return_url: String,
    pub client_ip: String,
    pub created_by: String,
    pub idempotency_key: String,
    /// The quote JSON at creation (the fee engine's; opaque here).
    pub quote: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Sorted, each once.
    #[sqlx(skip)]
    pub flags: Vec<Flag>,
}

pub(super) const PAYMENT_COLUMNS: &str = "p.payment_id, p.case_code, p.case_version, p.gateway, p.txn_ref, p.amount, p.budget_amount, \
     p.status, p.gateway_txn_no, p.paid_at, p.pay_url, p.return_url, p.client_ip, p.created_by, p.idempotency_key, \
     p.quote, p.created_at, p.expires_at";

/// A payment to insert, with the citizen's part of its quote per fee kind (kept as columns for
/// reconciliation totals).
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub payment: Payment,
    pub phi_due: i64,
    pub le_phi_due: i64,
}

/// A change to a payment's state. `confirmed` marks the moment it became paid in our records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentUpdate {
    pub payment_id: String,
    pub status: PaymentStatus,
    pub gateway_txn_no: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub confirmed: bool,
}

/// An outcome applied to a payment: a (payment, gateway_txn_no, outcome) is applied once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedEvent {
    pub payment_id: String,
    /// Empty when the gateway gave no number.
    pub gateway_txn_no: String,
    pub outcome: OutcomeKind,
    pub callback_id: String,
}

/// A gateway message kept as evidence, with what handling it came to: the row as written and as
/// read back (SPEC §6.5). `signature_valid` and `key_used` are stored beside it for readers of
/// the table, derived from `authenticated_by`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CallbackRow {
    pub callback_id: String,
    pub source: Source,
    pub gateway: Gateway,
    pub method: String,
    pub path: String,
    pub query: String,
    /// The kept headers as a compact JSON object.
    pub headers: String,
    /// The exact bytes received; for a body over `FEERECON_MAX_BODY`, its first bytes.
    pub body: Vec<u8>,
    /// Lower-case hex SHA-256 of `body` (of the bytes kept).
    pub sha256: String,
    /// The whole body's length when only its first bytes were kept; `None` when kept whole.
    pub body_length: Option<i64>,
    pub received_at: DateTime<Utc>,
    pub authenticated_by: AuthenticatedBy,
    pub txn_ref: Option<String>,
    pub gateway_txn_no: Option<String>,
    pub amount: Option<i64>,
    pub outcome: Option<OutcomeKind>,
    pub payment_id: Option<String>,
    pub result: CallbackResult,
    pub detail: Option<String>,
}

const CALLBACK_COLUMNS: &str = "callback_id, source, gateway, method, path, query, headers, body, sha256, body_length, \
     received_at, authenticated_by, txn_ref, gateway_txn_no, amount, outcome, payment_id, result, detail";

/// A pending payment due for a status query, with what its queries came to so far.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DueForQuery {
    #[sqlx(flatten)]
    pub payment: Payment,
    /// Status queries made for it so far.
    pub query_count: i64,
    /// What the last answer that came said; `None` when none came yet.
    pub last_answer: Option<AnswerKind>,
}

/// Statuses that settle a case: a case holding one has nothing more to pay.
const SETTLED: &str = "('paid', 'waived', 'budget_covered')";

impl Store {
    /// Payments matching `clause` (over `p`), with `arg` bound to `$1`, with their flags.
    async fn payments_where(&self, clause: &str, args: &[&str]) -> Result<Vec<Payment>> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments p WHERE {clause}");
        let mut rows: Vec<Payment> = on_pool!(self, |p| {
            let mut q = sqlx::query_as(&sql);
            for a in args {
                q = q.bind(*a);
            }
            q.fetch_all(p).await
        })?;
        self.attach_flags(&mut rows).await?;
        Ok(rows)
    }

    pub(super) async fn attach_flags(&self, payments: &mut [Payment]) -> Result<()> {
        if payments.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = payments.iter().map(|p| p.payment_id.as_str()).collect();
        let flags: Vec<(String, Flag)> = on_pool!(self, |p| {
            let mut q = sqlx::QueryBuilder::new("SELECT payment_id, flag FROM payment_flags WHERE payment_id IN (");
            let mut list = q.separated(", ");
            for id in &ids {
                list.push_bind(*id);
            }
            q.push(") ORDER BY payment_id, flag");
            q.build_query_as().fetch_all(p).await
        })?;
        attach(payments, flags);
        Ok(())
    }

    /// The payment a user created for a case with an idempotency key.
    pub async fn payment_by_key(&self, created_by: &str, case_code: &CaseCode, key: &str) -> Result<Option<Payment>> {
        let clause = "p.created_by = $1 AND p.case_code = $2 AND p.idempotency_key = $3";
        Ok(self.payments_where(clause, &[created_by, case_code.as_str(), key]).await?.pop())
    }

    /// Whether the case holds a paid, waived or budget-covered payment.
    pub async fn case_is_settled(&self, case_code: &CaseCode) -> Result<bool> {
        let sql = format!("SELECT COUNT(*) FROM payments WHERE case_code = $1 AND status IN {SETTLED}");
        let (n,): (i64,) = on_pool!(self, |p| sqlx::query_as(&sql).bind(case_code).fetch_one(p).await)?;
        Ok(n > 0)
    }

    pub async fn get_payment(&self, payment_id: &str) -> Result<Option<Payment>> {
        Ok(self.payments_where("p.payment_id = $1", &[payment_id]).await?.pop())
    }

    pub async fn payment_by_txn_ref(&self, txn_ref: &str) -> Result<Option<Payment>> {
        Ok(self.payments_where("p.txn_ref = $1", &[txn_ref]).await?.pop())
    }

    /// A case's payments, oldest first.
    pub async fn case_payments(&self, case_code: &CaseCode) -> Result<Vec<Payment>> {
        self.payments_where("p.case_code = $1 ORDER BY p.created_at, p.payment_id", &[case_code.as_str()]).await
    }

    /// Every stored callback and status-query answer of a payment, oldest first: those linked to
    /// it, and those not linked to any payment that name its reference (a forgery, a message
    /// that could not be applied or read whole).
    pub async fn payment_callbacks(&self, payment_id: &str) -> Result<Vec<CallbackRow>> {
        let sql = payment_callbacks_sql();
        Ok(on_pool!(self, |p| sqlx::query_as(&sql).bind(payment_id).fetch_all(p).await)?)
    }

    /// Pending gateway payments to ask about now: created before `created_before` or expired by
    /// `now`, whose next query is due, not flagged `unresolved_pending` (their queries stopped).
    pub async fn payments_due_for_query(
        &self,
        now: DateTime<Utc>,
        created_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DueForQuery>> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS}, p.query_count, p.last_answer FROM payments p
             WHERE p.status = 'pending' AND p.txn_ref IS NOT NULL AND (p.created_at <= $1 OR p.expires_at <= $2)
               AND (p.next_query_at IS NULL OR p.next_query_at <= $2)
               AND NOT EXISTS (SELECT 1 FROM payment_flags f WHERE f.payment_id = p.payment_id AND f.flag = 'unresolved_pending')
             ORDER BY p.created_at LIMIT $3"
        );
        let mut rows: Vec<DueForQuery> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(Timestamp::at(created_before))
            .bind(Timestamp::at(now))
            .bind(limit)
            .fetch_all(p)
            .await)?;
        let mut payments: Vec<Payment> = rows.iter().map(|r| r.payment.clone()).collect();
        self.attach_flags(&mut payments).await?;
        for (row, p) in rows.iter_mut().zip(payments) {
            row.payment = p;
        }
        Ok(rows)
    }

    /// Claims a payment for its next status query: counts the query and sets when the one after
    /// is due. `true` for exactly one instance: the claim holds only while the payment is still
    /// pending with `query_count` queries made.
    pub async fn claim_query(
        &self,
        payment_id: &str,
        query_count: i64,
        now: DateTime<Utc>,
        next_at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let n = on_tx!(tx, |c| sqlx::query(
            "UPDATE payments SET last_queried_at = $1, next_query_at = $2, query_count = query_count + 1
             WHERE payment_id = $3 AND status = 'pending' AND query_count = $4",
        )
        .bind(Timestamp::at(now))
        .bind(Timestamp::at(next_at))
        .bind(payment_id)
        .bind(query_count)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(n == 1)
    }
}

fn attach(payments: &mut [Payment], flags: Vec<(String, Flag)>) {
    let mut by_id: HashMap<String, Vec<Flag>> = HashMap::new();
    for (id, f) in flags {
        by_id.entry(id).or_default().push(f);
    }
    for p in payments {
        let mut f = by_id.remove(&p.payment_id).unwrap_or_default();
        f.sort_unstable();
        f.dedup();
        p.flags = f;
    }
}

impl WriteTx {
    /// The payment a user created for a case with an idempotency key (the case row is held).
    pub async fn payment_by_key(
        &mut self,
        created_by: &str,
        case_code: &CaseCode,
        key: &str,
    ) -> Result<Option<Payment>> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments p WHERE p.created_by = $1 AND p.case_code = $2 AND p.idempotency_key = $3"
        );
        let mut rows: Vec<Payment> =
            on_tx!(self, |c| sqlx::query_as(&sql).bind(created_by).bind(case_code).bind(key).fetch_all(&mut *c).await)?;
        self.attach_flags(&mut rows).await?;
        Ok(rows.pop())
    }

    /// The payments with these references, with their flags. On PostgreSQL their cases' rows are
    /// locked first, in code order, so that what is read stays true until commit (on SQLite the
    /// transaction holds the write lock already).
    pub async fn payments_by_refs(&mut self, txn_refs: &[&str]) -> Result<Vec<Payment>> {
        if txn_refs.is_empty() {
            return Ok(vec![]);
        }
        if self.backend() == super::Backend::Postgres {
            on_tx!(self, |c| {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT case_code FROM cases WHERE case_code IN (SELECT case_code FROM payments WHERE txn_ref IN (",
                );
                let mut list = q.separated(", ");
                for r in txn_refs {
                    list.push_bind(*r);
                }
                q.push(")) ORDER BY case_code FOR UPDATE");
                q.build().fetch_all(&mut *c).await.map(|rows| rows.len())
            })?;
        }
        let mut rows: Vec<Payment> = on_tx!(self, |c| {
            let mut q =
                sqlx::QueryBuilder::new(format!("SELECT {PAYMENT_COLUMNS} FROM payments p WHERE p.txn_ref IN ("));
            let mut list = q.separated(", ");
            for r in txn_refs {
                list.push_bind(*r);
            }
            q.push(")");
            q.build_query_as().fetch_all(&mut *c).await
        })?;
        self.attach_flags(&mut rows).await?;
        Ok(rows)
    }

    /// A payment by id (its case's row must be held by the caller on PostgreSQL).
    pub async fn payment(&mut self, payment_id: &str) -> Result<Option<Payment>> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments p WHERE p.payment_id = $1");
        let mut rows: Vec<Payment> = on_tx!(self, |c| sqlx::query_as(&sql).bind(payment_id).fetch_all(&mut *c).await)?;
        self.attach_flags(&mut rows).await?;
        Ok(rows.pop())
    }

    async fn attach_flags(&mut self, payments: &mut [Payment]) -> Result<()> {
        if payments.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = payments.iter().map(|p| p.payment_id.as_str()).collect();
        let flags: Vec<(String, Flag)> = on_tx!(self, |c| {
            let mut q = sqlx::QueryBuilder::new("SELECT payment_id, flag FROM payment_flags WHERE payment_id IN (");
            let mut list = q.separated(", ");
            for id in &ids {
                list.push_bind(*id);
            }
            q.push(")");
            q.build_query_as().fetch_all(&mut *c).await
        })?;
        attach(payments, flags);
        Ok(())
    }

    /// The outcomes already applied to these payments: (payment, gateway_txn_no, outcome).
    pub async fn applied_events(&mut self, payment_ids: &[&str]) -> Result<Vec<(String, String, OutcomeKind)>> {
        if payment_ids.is_empty() {
            return Ok(vec![]);
        }
        Ok(on_tx!(self, |c| {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT payment_id, gateway_txn_no, outcome FROM payment_events WHERE payment_id IN (",
            );
            let mut list = q.separated(", ");
            for id in payment_ids {
                list.push_bind(*id);
            }
            q.push(")");
            q.build_query_as().fetch_all(&mut *c).await
        })?)
    }

    /// The settled (paid, waived, budget-covered) payments of these cases: (case, payment).
    pub async fn settled_payments(&mut self, cases: &[&str]) -> Result<Vec<(String, String)>> {
        if cases.is_empty() {
            return Ok(vec![]);
        }
        // The status is filtered here, not in SQL: with `status IN (...)` beside `case_code IN
        // (...)` SQLite's planner walks `payments_status`, every paid payment of history, rather
        // than `payments_case` (a few rows per case); a callback batch paid for it in time that
        // grew with the table.
        let rows: Vec<(String, String, PaymentStatus)> = on_tx!(self, |c| {
            let mut q =
                sqlx::QueryBuilder::new("SELECT case_code, payment_id, status FROM payments WHERE case_code IN (");
            let mut list = q.separated(", ");
            for code in cases {
                list.push_bind(*code);
            }
            q.push(")");
            q.build_query_as().fetch_all(&mut *c).await
        })?;
        Ok(rows.into_iter().filter(|(_, _, s)| s.is_settled()).map(|(case, id, _)| (case, id)).collect())
    }

    /// Inserts a payment; a reference or idempotency key taken is `Conflict`.
    pub async fn insert_payment(&mut self, new: &NewPayment) -> Result<()> {
        let p = &new.payment;
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO payments (payment_id, case_code, case_version, gateway, txn_ref, amount, budget_amount, status, gateway_txn_no,
                                   paid_at, pay_url, return_url, client_ip, created_by, idempotency_key, quote, created_at, expires_at, updated_at,
                                   phi_due, le_phi_due)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9, $10, $11, $12, $13, $14, $15, $16, $15, $17, $18)",
        )
        .bind(&p.payment_id)
        .bind(&p.case_code)
        .bind(p.case_version)
        .bind(p.gateway)
        .bind(&p.txn_ref)
        .bind(p.amount)
        .bind(p.budget_amount)
        .bind(p.status)
        .bind(&p.pay_url)
        .bind(&p.return_url)
        .bind(&p.client_ip)
        .bind(&p.created_by)
        .bind(&p.idempotency_key)
        .bind(&p.quote)
        .bind(Timestamp::at(p.created_at))
        .bind(Timestamp::at(p.expires_at))
        .bind(new.phi_due)
        .bind(new.le_phi_due)
        .execute(&mut *c)
        .await.map(|r| r.rows_affected()))
        .map_err(|e| on_unique(e, || "a payment with this reference exists".into()))?;
        Ok(())
    }

    /// Applies state changes to payments, one statement for the lot.
    pub async fn update_payments(&mut self, updates: &[PaymentUpdate], at: DateTime<Utc>) -> Result<()> {
        let at = Timestamp::at(at);
        for chunk in updates.chunks(rows_per_statement(6)) {
            on_tx!(self, |c| {
                let mut q = sqlx::QueryBuilder::new(
                    "WITH v (payment_id, status, gateway_txn_no, paid_at, paid_date, confirmed) AS (",
                );
                q.push_values(chunk, |mut b, u| {
                    // A paid payment's natural date: its payment time's business date.
                    let paid_date = u
                        .paid_at
                        .filter(|_| u.status == PaymentStatus::Paid)
                        .map(|t| crate::domain::BusinessDate::of(t).naive());
                    b.push_bind(&u.payment_id)
                        .push_bind(u.status)
                        .push_bind(&u.gateway_txn_no)
                        .push_bind(u.paid_at.map(Timestamp::at))
                        .push_bind(paid_date)
                        .push_bind(u.confirmed);
                });
                q.push(
                    ") UPDATE payments SET status = v.status, gateway_txn_no = v.gateway_txn_no, paid_at = v.paid_at, \
                     paid_date = v.paid_date, updated_at = ",
                );
                q.push_bind(at);
                q.push(", confirmed_at = CASE WHEN v.confirmed THEN ");
                q.push_bind(at);
                q.push(" ELSE payments.confirmed_at END FROM v WHERE payments.payment_id = v.payment_id");
                q.build().execute(&mut *c).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }

    /// Records what the last status-query answer of each payment said.
    pub async fn record_answers(&mut self, answers: &[(String, AnswerKind)]) -> Result<()> {
        for chunk in answers.chunks(rows_per_statement(2)) {
            on_tx!(self, |c| {
                let mut q = sqlx::QueryBuilder::new("WITH v (payment_id, last_answer) AS (");
                q.push_values(chunk, |mut b, (id, kind)| {
                    b.push_bind(id).push_bind(*kind);
                });
                q.push(
                    ") UPDATE payments SET last_answer = v.last_answer FROM v WHERE payments.payment_id = v.payment_id",
                );
                q.build().execute(&mut *c).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }

    /// Lowers flags that no longer hold.
    pub async fn remove_flags(&mut self, flags: &[(String, Flag)]) -> Result<()> {
        for (id, f) in flags {
            on_tx!(self, |c| sqlx::query("DELETE FROM payment_flags WHERE payment_id = $1 AND flag = $2")
                .bind(id)
                .bind(*f)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    /// Raises flags (each once per payment).
    pub async fn insert_flags(&mut self, flags: &[(String, Flag)], at: DateTime<Utc>) -> Result<()> {
        let at = Timestamp::at(at);
        for chunk in flags.chunks(rows_per_statement(3)) {
            on_tx!(self, |c| {
                let mut q = sqlx::QueryBuilder::new("INSERT INTO payment_flags (payment_id, flag, raised_at) ");
                q.push_values(chunk, |mut b, (id, f)| {
                    b.push_bind(id).push_bind(*f).push_bind(at);
                });
                q.push(" ON CONFLICT (payment_id, flag) DO NOTHING");
                q.build().execute(&mut *c).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }

    /// Records applied outcomes (each once).
    pub async fn insert_applied_events(&mut self, events: &[AppliedEvent], at: DateTime<Utc>) -> Result<()> {
        let at = Timestamp::at(at);
        for chunk in events.chunks(rows_per_statement(5)) {
            on_tx!(self, |c| {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO payment_events (payment_id, gateway_txn_no, outcome, applied_at, callback_id) ",
                );
                q.push_values(chunk, |mut b, e| {
                    b.push_bind(&e.payment_id)
                        .push_bind(&e.gateway_txn_no)
                        .push_bind(e.outcome)
                        .push_bind(at)
                        .push_bind(&e.callback_id);
                });
                q.push(" ON CONFLICT (payment_id, gateway_txn_no, outcome) DO NOTHING");
                q.build().execute(&mut *c).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }

    /// Keeps gateway messages as evidence.
    pub async fn insert_callbacks(&mut self, callbacks: &[CallbackRow]) -> Result<()> {
        for chunk in callbacks.chunks(rows_per_statement(22)) {
            on_tx!(self, |c| {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "INSERT INTO callbacks ({CALLBACK_COLUMNS}, signature_valid, key_used) "
                ));
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(&r.callback_id)
                        .push_bind(r.source)
                        .push_bind(r.gateway)
                        .push_bind(&r.method)
                        .push_bind(&r.path)
                        .push_bind(&r.query)
                        .push_bind(&r.headers)
                        .push_bind(&r.body)
                        .push_bind(&r.sha256)
                        .push_bind(r.body_length)
                        .push_bind(Timestamp::at(r.received_at))
                        .push_bind(r.authenticated_by)
                        .push_bind(&r.txn_ref)
                        .push_bind(&r.gateway_txn_no)
                        .push_bind(r.amount)
                        .push_bind(r.outcome)
                        .push_bind(&r.payment_id)
                        .push_bind(r.result)
                        .push_bind(&r.detail)
                        .push_bind(r.authenticated_by.is_signature())
                        .push_bind(r.authenticated_by.key_used());
                });
                q.build().execute(&mut *c).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }
}

impl Store {
    /// Counts of payments by status, for `/metrics`.
    pub async fn payment_counts(&self) -> Result<Vec<(PaymentStatus, i64)>> {
        Ok(on_pool!(self, |p| sqlx::query_as("SELECT status, COUNT(*) FROM payments GROUP BY status ORDER BY status")
            .fetch_all(p)
            .await)?)
    }
}

/// The statement of `Store::payment_callbacks`: the unlinked messages are found through the
/// partial index `callbacks_txn_ref` (migration 0016; `store::plans`).
pub(super) fn payment_callbacks_sql() -> String {
    format!(
        "SELECT {CALLBACK_COLUMNS} FROM callbacks
         WHERE payment_id = $1 OR (payment_id IS NULL AND txn_ref = (SELECT txn_ref FROM payments WHERE payment_id = $1))
         ORDER BY received_at, callback_id"
    )
}
