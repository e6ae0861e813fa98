//! Payments, callbacks, the outbox and ledger appends: the types the store trades in, and
//! `impl_payments!`, the SQL both dialects accept for them (expanded per backend like
//! `common::impl_store!`).
//!
//! `process_gateway_events` is the write path of every gateway outcome: for a batch of verified
//! (or refused) callbacks and status-query answers it records each raw message, locks the cases
//! and payments concerned (cases in code order, so two instances never wait on each other in a
//! cycle), applies `domain::payment::decide`, and writes the payment change, its flags, its
//! notification and its ledger posting, all in one transaction: group commit. Nothing is
//! acknowledged before that transaction commits.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::payment::{Flag, Gateway, GatewayEvent, PaymentStatus};
use crate::domain::{Money, Timestamp};
use crate::gateway::{RawRequest, Reply};

/// A payment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub payment_id: String,
    pub case_code: String,
    pub case_version: i64,
    pub gateway: Gateway,
    pub txn_ref: Option<String>,
    pub amount: Money,
    pub budget_amount: Money,
    pub status: PaymentStatus,
    pub gateway_txn_no: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub pay_url: Option<String>,
    pub return_url: String,
    pub client_ip: String,
    pub created_by: String,
    pub idempotency_key: String,
    /// The quote JSON at creation.
    pub quote: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub flags: Vec<Flag>,
}

/// The payment API's view (SPEC §4.3).
#[derive(Debug, Clone, Serialize)]
pub struct PaymentView {
    pub payment_id: String,
    pub case_code: String,
    pub gateway: Gateway,
    pub txn_ref: Option<String>,
    pub amount: i64,
    pub status: PaymentStatus,
    pub gateway_txn_no: Option<String>,
    pub paid_at: Option<Timestamp>,
    pub flags: Vec<Flag>,
}

impl Payment {
    pub fn view(&self) -> PaymentView {
        PaymentView {
            payment_id: self.payment_id.clone(),
            case_code: self.case_code.clone(),
            gateway: self.gateway,
            txn_ref: self.txn_ref.clone(),
            amount: self.amount.dong(),
            status: self.status,
            gateway_txn_no: self.gateway_txn_no.clone(),
            paid_at: self.paid_at.map(Timestamp::at),
            flags: self.flags.clone(),
        }
    }
}

/// A payment to create. For `waived` and `budget_covered`, `txn_ref` and `pay_url` are `None`
/// and the store writes the posting and the portal event in the same transaction.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub payment: Payment,
    /// The ledger posting that creation makes (waiver or budget cover), if any.
    pub posting: Option<crate::domain::ledger::Posting>,
}

/// What creating a payment did.
#[derive(Debug, Clone)]
pub enum CreatePayment {
    Created(Payment),
    /// The same idempotency key with the same gateway and return URL: this payment.
    Existing(Payment),
    /// The same idempotency key with another gateway or return URL.
    KeyReused,
    /// The case already holds a paid, waived or budget-covered payment.
    CaseAlreadyPaid,
}

/// One gateway message to record and apply.
#[derive(Debug, Clone)]
pub struct EventJob {
    pub callback_id: String,
    /// `callback` or `status_query`.
    pub source: &'static str,
    pub gateway: Gateway,
    pub raw: RawRequest,
    pub received_at: DateTime<Utc>,
    /// Which secret verified it; `None` when the signature did not verify.
    pub key_used: Option<&'static str>,
    /// The outcome, when the message verified and reads as one.
    pub event: Option<GatewayEvent>,
    /// Why the message is not an outcome (bad signature, malformed), and the reply for it.
    pub refusal: Option<(Reply, String)>,
    /// The reference a refused message claims, unverified, kept as evidence.
    pub claimed_txn_ref: Option<String>,
}

/// What applying a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobResult {
    pub reply: Reply,
    pub payment_id: Option<String>,
}

/// A stored callback or status-query answer, for the evidence API (SPEC §6.5).
#[derive(Debug, Clone, Serialize)]
pub struct CallbackRecord {
    pub callback_id: String,
    pub source: String,
    pub gateway: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: serde_json::Value,
    /// The body as text (lossy for non-UTF-8 bytes); `body_sha256` is over the exact bytes.
    pub body: String,
    pub body_sha256: String,
    pub received_at: Timestamp,
    pub signature_valid: bool,
    pub key_used: Option<String>,
    pub txn_ref: Option<String>,
    pub gateway_txn_no: Option<String>,
    pub amount: Option<i64>,
    pub outcome: Option<String>,
    pub result: String,
    pub detail: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(super) struct PaymentRow {
    pub payment_id: String,
    pub case_code: String,
    pub case_version: i64,
    pub gateway: String,
    pub txn_ref: Option<String>,
    pub amount: i64,
    pub budget_amount: i64,
    pub status: String,
    pub gateway_txn_no: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub pay_url: Option<String>,
    pub return_url: String,
    pub client_ip: String,
    pub created_by: String,
    pub idempotency_key: String,
    pub quote: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub(super) const PAYMENT_COLUMNS: &str = "payment_id, case_code, case_version, gateway, txn_ref, amount, budget_amount, status, gateway_txn_no, paid_at, pay_url, return_url, client_ip, created_by, idempotency_key, quote, created_at, expires_at";

impl PaymentRow {
    pub fn into_payment(self, flags: Vec<String>) -> Result<Payment, super::StoreError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| super::StoreError::Corrupt(format!("{what}: {e}"));
        Ok(Payment {
            gateway: self.gateway.parse().map_err(|e| bad("gateway", &e))?,
            status: self.status.parse().map_err(|e| bad("status", &e))?,
            amount: Money::new(self.amount).map_err(|e| bad("amount", &e))?,
            budget_amount: Money::new(self.budget_amount).map_err(|e| bad("budget_amount", &e))?,
            flags: flags.iter().map(|f| f.parse::<Flag>()).collect::<Result<_, _>>().map_err(|e| bad("flag", &e))?,
            payment_id: self.payment_id,
            case_code: self.case_code,
            case_version: self.case_version,
            txn_ref: self.txn_ref,
            gateway_txn_no: self.gateway_txn_no,
            paid_at: self.paid_at,
            pay_url: self.pay_url,
            return_url: self.return_url,
            client_ip: self.client_ip,
            created_by: self.created_by,
            idempotency_key: self.idempotency_key,
            quote: self.quote,
            created_at: self.created_at,
            expires_at: self.expires_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct CallbackRow {
    pub callback_id: String,
    pub source: String,
    pub gateway: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: String,
    pub body: Vec<u8>,
    pub sha256: String,
    pub received_at: DateTime<Utc>,
    pub signature_valid: bool,
    pub key_used: Option<String>,
    pub txn_ref: Option<String>,
    pub gateway_txn_no: Option<String>,
    pub amount: Option<i64>,
    pub outcome: Option<String>,
    pub result: String,
    pub detail: Option<String>,
}

impl CallbackRow {
    pub fn into_record(self) -> CallbackRecord {
        CallbackRecord {
            callback_id: self.callback_id,
            source: self.source,
            gateway: self.gateway,
            method: self.method,
            path: self.path,
            query: self.query,
            headers: serde_json::from_str(&self.headers).unwrap_or(serde_json::Value::Null),
            body: String::from_utf8_lossy(&self.body).into_owned(),
            body_sha256: self.sha256,
            received_at: Timestamp::at(self.received_at),
            signature_valid: self.signature_valid,
            key_used: self.key_used,
            txn_ref: self.txn_ref,
            gateway_txn_no: self.gateway_txn_no,
            amount: self.amount,
            outcome: self.outcome,
            result: self.result,
            detail: self.detail,
        }
    }
}

/// A portal event in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OutboxEvent {
    pub event_id: String,
    pub event_type: String,
    pub case_code: String,
    pub payment_id: String,
    pub status: String,
    pub amount: i64,
    pub paid_at: Option<DateTime<Utc>>,
    pub case_seq: i64,
    pub created_at: DateTime<Utc>,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

pub(super) const OUTBOX_COLUMNS: &str = "event_id, event_type, case_code, payment_id, status, amount, paid_at, case_seq, created_at, state, attempts, next_attempt_at, last_error, delivered_at";

/// One ledger entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct LedgerEntry {
    pub seq: i64,
    pub posting_id: String,
    pub line_no: i64,
    pub business_date: chrono::NaiveDate,
    pub kind: String,
    pub account: String,
    pub debit: i64,
    pub credit: i64,
    pub memo: String,
    pub refs: String,
    pub prev_hash: String,
    pub hash: String,
}

pub(super) const LEDGER_COLUMNS: &str =
    "seq, posting_id, line_no, business_date, kind, account, debit, credit, memo, refs, prev_hash, hash";

/// The citizen's part of a stored quote per fee kind: (phí, lệ phí).
pub fn citizen_split(quote_json: &str) -> (i64, i64) {
    let items = quoted_items(quote_json);
    let phi = items.iter().filter(|i| i.kind == "phi").map(|i| i.citizen_due).sum();
    let le_phi = items.iter().filter(|i| i.kind != "phi").map(|i| i.citizen_due).sum();
    (phi, le_phi)
}

/// The quote items a posting needs, read from a stored quote's JSON.
pub fn quoted_items(quote_json: &str) -> Vec<crate::domain::ledger::QuotedItem> {
    let v: serde_json::Value = serde_json::from_str(quote_json).unwrap_or_default();
    v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| crate::domain::ledger::QuotedItem {
                    fee: i["fee"].as_str().unwrap_or_default().to_owned(),
                    kind: i["kind"].as_str().unwrap_or("le_phi").to_owned(),
                    citizen_due: i["citizen_due"].as_i64().unwrap_or(0),
                    budget_due: i["budget_due"].as_i64().unwrap_or(0),
                    basis: i["applied"].as_object().map(|a| {
                        format!("{}: {}", a["rule"].as_str().unwrap_or(""), a["basis"].as_str().unwrap_or(""))
                    }),
                    support: i["support"].as_object().map(|a| {
                        format!("{}: {}", a["rule"].as_str().unwrap_or(""), a["basis"].as_str().unwrap_or(""))
                    }),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Expands to the inherent methods of a backend that implement payments, callbacks, the outbox
/// and ledger appends; `Store`'s methods forward to them.
macro_rules! impl_payments {
    ($store:ty, $db:ty, for_update = $for_update:literal, skip_locked = $skip_locked:literal) => {
        impl $store {
            /// Claims up to `limit` due notifications until `lease_until`: another worker (or
            /// instance) skips them meanwhile; a crash lets the lease lapse and they are retried.
            async fn claim_notifications_impl(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                lease_until: chrono::DateTime<chrono::Utc>,
                limit: i64,
            ) -> $crate::store::Result<Vec<$crate::store::OutboxEvent>> {
                let mut tx = self.begin_write().await?;
                let ids: Vec<(String,)> = sqlx::query_as(concat!(
                    "SELECT event_id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1
                       AND (locked_until IS NULL OR locked_until <= $1)
                     ORDER BY next_attempt_at, case_code, case_seq LIMIT $2",
                    $skip_locked
                ))
                .bind(now)
                .bind(limit)
                .fetch_all(&mut **tx)
                .await?;
                let mut out = Vec::with_capacity(ids.len());
                for (id,) in ids {
                    sqlx::query("UPDATE outbox SET locked_until = $1 WHERE event_id = $2")
                        .bind(lease_until)
                        .bind(&id)
                        .execute(&mut **tx)
                        .await?;
                    let sql = format!("SELECT {} FROM outbox WHERE event_id = $1", $crate::store::payments::OUTBOX_COLUMNS);
                    out.push(sqlx::query_as(&sql).bind(&id).fetch_one(&mut **tx).await?);
                }
                tx.commit().await?;
                Ok(out)
            }

            async fn payment_flags_tx<'e, E>(ex: E, payment_id: &str) -> $crate::store::Result<Vec<String>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let rows: Vec<(String,)> =
                    sqlx::query_as("SELECT flag FROM payment_flags WHERE payment_id = $1 ORDER BY flag")
                        .bind(payment_id)
                        .fetch_all(ex)
                        .await?;
                Ok(rows.into_iter().map(|(f,)| f).collect())
            }

            async fn load_payments(&self, rows: Vec<$crate::store::payments::PaymentRow>) -> $crate::store::Result<Vec<$crate::store::payments::Payment>> {
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let flags = Self::payment_flags_tx(&self.pool, &r.payment_id).await?;
                    out.push(r.into_payment(flags)?);
                }
                Ok(out)
            }

            async fn payment_where(&self, clause: &str, arg: &str) -> $crate::store::Result<Option<$crate::store::payments::Payment>> {
                let sql = format!("SELECT {} FROM payments WHERE {clause}", $crate::store::payments::PAYMENT_COLUMNS);
                let row: Option<$crate::store::payments::PaymentRow> = sqlx::query_as(&sql).bind(arg).fetch_optional(&self.pool).await?;
                Ok(self.load_payments(row.into_iter().collect()).await?.pop())
            }

            /// Locks a case's row for the rest of the transaction.
            async fn lock_case_tx(tx: &mut sqlx::Transaction<'static, $db>, case_code: &str) -> $crate::store::Result<bool> {
                let row: Option<(String,)> = sqlx::query_as(concat!("SELECT case_code FROM cases WHERE case_code = $1", $for_update))
                    .bind(case_code)
                    .fetch_optional(&mut **tx)
                    .await?;
                Ok(row.is_some())
            }

            async fn locked_payment_tx(tx: &mut sqlx::Transaction<'static, $db>, payment_id: &str) -> $crate::store::Result<$crate::store::payments::Payment> {
                let sql = format!("SELECT {} FROM payments WHERE payment_id = $1{}", $crate::store::payments::PAYMENT_COLUMNS, $for_update);
                let row: $crate::store::payments::PaymentRow = sqlx::query_as(&sql).bind(payment_id).fetch_one(&mut **tx).await?;
                let flags = Self::payment_flags_tx(&mut **tx, payment_id).await?;
                row.into_payment(flags)
            }

            async fn case_settled_except_tx(tx: &mut sqlx::Transaction<'static, $db>, case_code: &str, except: &str) -> $crate::store::Result<bool> {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM payments WHERE case_code = $1 AND payment_id <> $2 AND status IN ('paid', 'waived', 'budget_covered')",
                )
                .bind(case_code)
                .bind(except)
                .fetch_one(&mut **tx)
                .await?;
                Ok(n > 0)
            }

            async fn add_flag_tx(tx: &mut sqlx::Transaction<'static, $db>, payment_id: &str, flag: $crate::domain::payment::Flag, at: chrono::DateTime<chrono::Utc>) -> $crate::store::Result<()> {
                sqlx::query("INSERT INTO payment_flags (payment_id, flag, raised_at) VALUES ($1, $2, $3) ON CONFLICT (payment_id, flag) DO NOTHING")
                    .bind(payment_id)
                    .bind(flag.as_str())
                    .bind(at)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// Writes a portal event for `p` (its state after the change) with the case's next sequence number.
            async fn outbox_tx(tx: &mut sqlx::Transaction<'static, $db>, event: $crate::domain::payment::EventType, p: &$crate::store::payments::Payment, at: chrono::DateTime<chrono::Utc>) -> $crate::store::Result<()> {
                let (seq,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(case_seq), 0) + 1 FROM outbox WHERE case_code = $1")
                    .bind(&p.case_code)
                    .fetch_one(&mut **tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO outbox (event_id, event_type, case_code, payment_id, status, amount, paid_at, case_seq, created_at, state, attempts, next_attempt_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $9)",
                )
                .bind($crate::domain::new_id("evt"))
                .bind(event.as_str())
                .bind(&p.case_code)
                .bind(&p.payment_id)
                .bind(p.status.as_str())
                .bind(p.amount.dong())
                .bind(p.paid_at)
                .bind(seq)
                .bind(at)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// Appends postings to the ledger chain, each once per idempotency key.
            async fn append_postings_tx(tx: &mut sqlx::Transaction<'static, $db>, postings: &[$crate::domain::ledger::Posting], at: chrono::DateTime<chrono::Utc>) -> $crate::store::Result<Vec<String>> {
                use $crate::domain::ledger::{canonical_entry, clean};
                let mut ids = Vec::new();
                if postings.is_empty() {
                    return Ok(ids);
                }
                let (mut seq, mut prev): (i64, String) =
                    sqlx::query_as(concat!("SELECT last_seq, last_hash FROM chain_heads WHERE chain = 'ledger'", $for_update))
                        .fetch_one(&mut **tx)
                        .await?;
                for p in postings {
                    if !p.is_balanced() {
                        return Err($crate::store::StoreError::Conflict(format!("posting {} does not balance", p.idem_key)));
                    }
                    let exists: Option<(String,)> = sqlx::query_as("SELECT posting_id FROM ledger_postings WHERE idem_key = $1")
                        .bind(&p.idem_key)
                        .fetch_optional(&mut **tx)
                        .await?;
                    if let Some((id,)) = exists {
                        ids.push(id);
                        continue;
                    }
                    let posting_id = $crate::domain::new_id("pst");
                    let refs = clean(&p.refs);
                    for (i, line) in p.lines.iter().enumerate() {
                        seq += 1;
                        let line_no = i64::try_from(i + 1).unwrap_or(i64::MAX);
                        let memo = clean(&line.memo);
                        let canonical = canonical_entry(seq, p.business_date, &posting_id, &p.kind, line_no, &line.account, line.debit, line.credit, &memo, &refs);
                        let hash = $crate::domain::chain::link(&prev, &canonical)
                            .ok_or_else(|| $crate::store::StoreError::Corrupt("ledger chain head is not a hash".into()))?;
                        sqlx::query(
                            "INSERT INTO ledger_entries (seq, posting_id, line_no, business_date, kind, account, debit, credit, memo, refs, prev_hash, hash)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                        )
                        .bind(seq)
                        .bind(&posting_id)
                        .bind(line_no)
                        .bind(p.business_date)
                        .bind(&p.kind)
                        .bind(&line.account)
                        .bind(line.debit)
                        .bind(line.credit)
                        .bind(&memo)
                        .bind(&refs)
                        .bind(&prev)
                        .bind(&hash)
                        .execute(&mut **tx)
                        .await?;
                        prev = hash;
                    }
                    sqlx::query(
                        "INSERT INTO ledger_postings (posting_id, idem_key, kind, business_date, created_at, corrects, line_count, total)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&posting_id)
                    .bind(&p.idem_key)
                    .bind(&p.kind)
                    .bind(p.business_date)
                    .bind(at)
                    .bind(&p.corrects)
                    .bind(i64::try_from(p.lines.len()).unwrap_or(i64::MAX))
                    .bind(p.total())
                    .execute(&mut **tx)
                    .await?;
                    ids.push(posting_id);
                }
                sqlx::query("UPDATE chain_heads SET last_seq = $1, last_hash = $2 WHERE chain = 'ledger'")
                    .bind(seq)
                    .bind(&prev)
                    .execute(&mut **tx)
                    .await?;
                Ok(ids)
            }

            async fn insert_callback_tx(
                tx: &mut sqlx::Transaction<'static, $db>,
                job: &$crate::store::payments::EventJob,
                result: &$crate::store::payments::JobResult,
                detail: Option<&str>,
            ) -> $crate::store::Result<()> {
                use sha2::Digest as _;
                let headers = serde_json::Value::Object(
                    job.raw.headers.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect(),
                );
                let ev = job.event.as_ref();
                sqlx::query(
                    "INSERT INTO callbacks (callback_id, source, gateway, method, path, query, headers, body, sha256, received_at,
                                            signature_valid, key_used, txn_ref, gateway_txn_no, amount, outcome, payment_id, result, detail)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
                )
                .bind(&job.callback_id)
                .bind(job.source)
                .bind(job.gateway.as_str())
                .bind(&job.raw.method)
                .bind(&job.raw.path)
                .bind(&job.raw.query)
                .bind(headers.to_string())
                .bind(&job.raw.body)
                .bind(hex::encode(sha2::Sha256::digest(&job.raw.body)))
                .bind(job.received_at)
                .bind(job.key_used.is_some())
                .bind(job.key_used)
                .bind(ev.map(|e| e.txn_ref.as_str()).or(job.claimed_txn_ref.as_deref()))
                .bind(ev.and_then(|e| e.gateway_txn_no.as_deref()))
                .bind(ev.map(|e| e.amount.dong()))
                .bind(ev.map(|e| e.outcome.as_str()))
                .bind(result.payment_id.as_deref())
                .bind(result.reply.as_str())
                .bind(detail)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// Applies one job inside `tx`; the case of its payment is already locked.
            async fn apply_job_tx(
                tx: &mut sqlx::Transaction<'static, $db>,
                job: &$crate::store::payments::EventJob,
                payment_id: Option<&str>,
                at: chrono::DateTime<chrono::Utc>,
                postings: &mut Vec<$crate::domain::ledger::Posting>,
            ) -> $crate::store::Result<$crate::store::payments::JobResult> {
                use $crate::domain::payment::{decide, Decision, Flag, PaymentState};
                use $crate::gateway::Reply;
                use $crate::store::payments::JobResult;
                let done = |reply: Reply, payment_id: Option<&str>| JobResult { reply, payment_id: payment_id.map(str::to_owned) };
                if let Some((reply, detail)) = &job.refusal {
                    let r = done(*reply, payment_id);
                    Self::insert_callback_tx(tx, job, &r, Some(detail)).await?;
                    return Ok(r);
                }
                let Some(event) = &job.event else {
                    let r = done(Reply::BadSignature, None);
                    Self::insert_callback_tx(tx, job, &r, Some("no outcome")).await?;
                    return Ok(r);
                };
                let Some(payment_id) = payment_id else {
                    let r = done(Reply::OrderNotFound, None);
                    Self::insert_callback_tx(tx, job, &r, Some("no payment has this reference")).await?;
                    return Ok(r);
                };
                let mut p = Self::locked_payment_tx(tx, payment_id).await?;
                let state = PaymentState {
                    status: p.status,
                    amount: p.amount,
                    gateway_txn_no: p.gateway_txn_no.clone(),
                    flags: p.flags.iter().copied().collect(),
                };
                let no = event.gateway_txn_no.clone().unwrap_or_default();
                let (seen,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM payment_events WHERE payment_id = $1 AND gateway_txn_no = $2 AND outcome = $3",
                )
                .bind(payment_id)
                .bind(&no)
                .bind(event.outcome.as_str())
                .fetch_one(&mut **tx)
                .await?;
                let settled_elsewhere = Self::case_settled_except_tx(tx, &p.case_code, payment_id).await?;
                let decision = decide(&state, event, settled_elsewhere, seen > 0, p.created_at);
                let (reply, detail) = match decision {
                    Decision::InvalidAmount { flag } => {
                        if flag {
                            Self::add_flag_tx(tx, payment_id, Flag::CallbackAmountMismatch, at).await?;
                        }
                        (Reply::InvalidAmount, Some(format!("the payment's amount is {}", p.amount.dong())))
                    }
                    Decision::AlreadyConfirmed => (Reply::AlreadyConfirmed, None),
                    Decision::RecordOnly => (Reply::Applied, Some("still pending: recorded".to_owned())),
                    Decision::Apply(change) => {
                        p.status = change.status;
                        if change.gateway_txn_no.is_some() {
                            p.gateway_txn_no = change.gateway_txn_no.clone();
                        }
                        if change.paid_at.is_some() {
                            p.paid_at = change.paid_at.map(|t| $crate::domain::Timestamp::at(t).0);
                        }
                        sqlx::query(
                            "UPDATE payments SET status = $1, gateway_txn_no = $2, paid_at = $3, updated_at = $4,
                                    confirmed_at = CASE WHEN $6 THEN $4 ELSE confirmed_at END
                             WHERE payment_id = $5",
                        )
                            .bind(p.status.as_str())
                            .bind(&p.gateway_txn_no)
                            .bind(p.paid_at)
                            .bind(at)
                            .bind(payment_id)
                            .bind(change.post_confirmation)
                            .execute(&mut **tx)
                            .await?;
                        for f in &change.add_flags {
                            Self::add_flag_tx(tx, payment_id, *f, at).await?;
                            if !p.flags.contains(f) {
                                p.flags.push(*f);
                            }
                        }
                        sqlx::query(
                            "INSERT INTO payment_events (payment_id, gateway_txn_no, outcome, applied_at, callback_id) VALUES ($1, $2, $3, $4, $5)
                             ON CONFLICT (payment_id, gateway_txn_no, outcome) DO NOTHING",
                        )
                        .bind(payment_id)
                        .bind(&no)
                        .bind(event.outcome.as_str())
                        .bind(at)
                        .bind(&job.callback_id)
                        .execute(&mut **tx)
                        .await?;
                        if let Some(kind) = change.notify {
                            Self::outbox_tx(tx, kind, &p, at).await?;
                        }
                        if change.post_confirmation {
                            use sha2::Digest as _;
                            let paid_at = p.paid_at.unwrap_or(p.created_at);
                            let refs = format!(
                                "payment={};txn_ref={};gateway_txn_no={};{}={};raw_sha256={}",
                                p.payment_id,
                                event.txn_ref,
                                no,
                                job.source,
                                job.callback_id,
                                hex::encode(sha2::Sha256::digest(&job.raw.body))
                            );
                            postings.push($crate::domain::ledger::payment_confirmed(
                                p.gateway,
                                &p.payment_id,
                                p.amount,
                                &$crate::store::payments::quoted_items(&p.quote),
                                change.add_flags.contains(&Flag::DuplicatePayment),
                                $crate::domain::BusinessDate::of(paid_at).naive(),
                                refs,
                            ));
                        }
                        (Reply::Applied, None)
                    }
                };
                let r = done(reply, Some(payment_id));
                Self::insert_callback_tx(tx, job, &r, detail.as_deref()).await?;
                Ok(r)
            }

            async fn process_gateway_events_impl(
                &self,
                jobs: &[$crate::store::payments::EventJob],
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::Result<Vec<$crate::store::payments::JobResult>> {
                // Which payment and case each job concerns (immutable facts, read before locking).
                let mut targets: Vec<Option<(String, String)>> = Vec::with_capacity(jobs.len());
                for job in jobs {
                    let t = match (&job.event, &job.refusal) {
                        (Some(e), None) => sqlx::query_as::<_, (String, String)>(
                            "SELECT payment_id, case_code FROM payments WHERE txn_ref = $1 AND gateway = $2",
                        )
                        .bind(&e.txn_ref)
                        .bind(job.gateway.as_str())
                        .fetch_optional(&self.pool)
                        .await?,
                        _ => None,
                    };
                    targets.push(t);
                }
                let mut cases: Vec<&str> = targets.iter().flatten().map(|(_, c)| c.as_str()).collect();
                cases.sort_unstable();
                cases.dedup();
                let mut tx = self.begin_write().await?;
                for c in &cases {
                    Self::lock_case_tx(&mut tx, c).await?;
                }
                let mut postings = Vec::new();
                let mut results = Vec::with_capacity(jobs.len());
                for (job, target) in jobs.iter().zip(&targets) {
                    let pid = target.as_ref().map(|(p, _)| p.as_str());
                    results.push(Self::apply_job_tx(&mut tx, job, pid, at, &mut postings).await?);
                }
                Self::append_postings_tx(&mut tx, &postings, at).await?;
                tx.commit().await?;
                Ok(results)
            }

            async fn create_payment_impl(
                &self,
                new: &$crate::store::payments::NewPayment,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::Result<$crate::store::payments::CreatePayment> {
                use $crate::store::payments::CreatePayment;
                let p = &new.payment;
                let mut tx = self.begin_write().await?;
                if !Self::lock_case_tx(&mut tx, &p.case_code).await? {
                    return Err($crate::store::StoreError::Conflict(format!("no case {}", p.case_code)));
                }
                let sql = format!(
                    "SELECT {} FROM payments WHERE created_by = $1 AND case_code = $2 AND idempotency_key = $3",
                    $crate::store::payments::PAYMENT_COLUMNS
                );
                let existing: Option<$crate::store::payments::PaymentRow> = sqlx::query_as(&sql)
                    .bind(&p.created_by)
                    .bind(&p.case_code)
                    .bind(&p.idempotency_key)
                    .fetch_optional(&mut **tx)
                    .await?;
                if let Some(row) = existing {
                    let flags = Self::payment_flags_tx(&mut **tx, &row.payment_id).await?;
                    let e = row.into_payment(flags)?;
                    return Ok(if e.gateway == p.gateway && e.return_url == p.return_url {
                        CreatePayment::Existing(e)
                    } else {
                        CreatePayment::KeyReused
                    });
                }
                if Self::case_settled_except_tx(&mut tx, &p.case_code, &p.payment_id).await? {
                    return Ok(CreatePayment::CaseAlreadyPaid);
                }
                let split = $crate::store::payments::citizen_split(&p.quote);
                sqlx::query(
                    "INSERT INTO payments (payment_id, case_code, case_version, gateway, txn_ref, amount, budget_amount, status, gateway_txn_no,
                                           paid_at, pay_url, return_url, client_ip, created_by, idempotency_key, quote, created_at, expires_at, updated_at,
                                           phi_due, le_phi_due)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9, $10, $11, $12, $13, $14, $15, $16, $15, $17, $18)",
                )
                .bind(&p.payment_id)
                .bind(&p.case_code)
                .bind(p.case_version)
                .bind(p.gateway.as_str())
                .bind(&p.txn_ref)
                .bind(p.amount.dong())
                .bind(p.budget_amount.dong())
                .bind(p.status.as_str())
                .bind(&p.pay_url)
                .bind(&p.return_url)
                .bind(&p.client_ip)
                .bind(&p.created_by)
                .bind(&p.idempotency_key)
                .bind(&p.quote)
                .bind(p.created_at)
                .bind(p.expires_at)
                .bind(split.0)
                .bind(split.1)
                .execute(&mut **tx)
                .await
                .map_err(|e| $crate::store::common::on_unique(e, || "a payment with this reference exists".into()))?;
                let event = match p.status {
                    $crate::domain::payment::PaymentStatus::Waived => Some($crate::domain::payment::EventType::Waived),
                    $crate::domain::payment::PaymentStatus::BudgetCovered => Some($crate::domain::payment::EventType::BudgetCovered),
                    _ => None,
                };
                if let Some(kind) = event {
                    Self::outbox_tx(&mut tx, kind, p, at).await?;
                }
                if let Some(posting) = &new.posting {
                    Self::append_postings_tx(&mut tx, std::slice::from_ref(posting), at).await?;
                }
                tx.commit().await?;
                Ok(CreatePayment::Created(p.clone()))
            }

            async fn expire_payment_impl(&self, payment_id: &str, at: chrono::DateTime<chrono::Utc>) -> $crate::store::Result<bool> {
                let Some((case_code,)): Option<(String,)> = sqlx::query_as("SELECT case_code FROM payments WHERE payment_id = $1")
                    .bind(payment_id)
                    .fetch_optional(&self.pool)
                    .await?
                else {
                    return Ok(false);
                };
                let mut tx = self.begin_write().await?;
                Self::lock_case_tx(&mut tx, &case_code).await?;
                let mut p = Self::locked_payment_tx(&mut tx, payment_id).await?;
                if p.status != $crate::domain::payment::PaymentStatus::Pending {
                    return Ok(false);
                }
                p.status = $crate::domain::payment::PaymentStatus::Expired;
                sqlx::query("UPDATE payments SET status = 'expired', updated_at = $1 WHERE payment_id = $2")
                    .bind(at)
                    .bind(payment_id)
                    .execute(&mut **tx)
                    .await?;
                Self::outbox_tx(&mut tx, $crate::domain::payment::EventType::Expired, &p, at).await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}

pub(super) use impl_payments;
