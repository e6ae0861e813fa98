//! The gateways' own receipts of paid payments (DVCQG GET_BILL), kept with the payment's
//! evidence: one row per payment, written by the commit that pays it (migration 0017 wrote those
//! of payments paid before; a close writes any still missing), `pending` with its attempts and
//! the next one's time until the document is fetched, then `fetched` with its exact bytes, type
//! and hash. Rows are only ever written forward: a fetched receipt is never replaced.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Result, Store, WriteTx, on_pool, on_tx};
use crate::domain::Timestamp;
use crate::domain::payment::Gateway;

/// A gateway receipt as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GatewayReceiptRow {
    pub payment_id: String,
    pub gateway: Gateway,
    /// `pending` or `fetched`; `body` is set exactly when fetched.
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    /// The request sent (JSON), as evidence.
    pub request: Option<String>,
    pub content_type: Option<String>,
    pub body: Option<Vec<u8>>,
    /// Lower-case hex SHA-256 of `body`.
    pub sha256: Option<String>,
    /// Where the gateway said to download it (`UrlBienLai`), when it did.
    pub source_url: Option<String>,
    /// Why the last attempt failed.
    pub detail: Option<String>,
    pub fetched_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A paid payment whose gateway receipt is due to be fetched.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReceiptDue {
    pub payment_id: String,
    pub txn_ref: String,
    pub created_at: DateTime<Utc>,
    pub attempts: i64,
}

/// What one attempt to fetch a receipt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptAttempt {
    Fetched { request: String, content_type: String, body: Vec<u8>, sha256: String, source_url: Option<String> },
    Failed { request: Option<String>, detail: String, next_attempt_at: DateTime<Utc> },
}

const COLUMNS: &str = "payment_id, gateway, state, attempts, next_attempt_at, request, content_type, body, sha256, \
                       source_url, detail, fetched_at, updated_at";

/// The receipts due: read from the pending rows by `gateway_receipts_due` (state, next attempt),
/// a few rows whatever the history; a payment is expected to have one from the commit that paid
/// it (`WriteTx::expect_gateway_receipts`). Before, every paid payment of the gateway was joined
/// on each worker round: 0.19 s at 333,000 paid payments, every 5 s (`store::plans`).
pub(super) const DUE_SQL: &str = "SELECT p.payment_id, p.txn_ref, p.created_at, r.attempts
     FROM gateway_receipts r JOIN payments p ON p.payment_id = r.payment_id
     WHERE r.state = 'pending' AND r.next_attempt_at <= $2 AND r.gateway = $1
       AND p.status = 'paid' AND p.txn_ref IS NOT NULL
     ORDER BY r.next_attempt_at, r.payment_id LIMIT $3";

impl Store {
    /// Paid payments of `gateway` with no fetched receipt whose next attempt is due at `now`,
    /// the longest due first.
    pub async fn gateway_receipts_due(
        &self,
        gateway: Gateway,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ReceiptDue>> {
        Ok(on_pool!(self, |p| sqlx::query_as(DUE_SQL)
            .bind(gateway)
            .bind(Timestamp::at(now))
            .bind(limit)
            .fetch_all(p)
            .await)?)
    }

    /// The gateway receipt of a payment, fetched or not.
    pub async fn gateway_receipt(&self, payment_id: &str) -> Result<Option<GatewayReceiptRow>> {
        let sql = format!("SELECT {COLUMNS} FROM gateway_receipts WHERE payment_id = $1");
        Ok(on_pool!(self, |p| sqlx::query_as(&sql).bind(payment_id).fetch_optional(p).await)?)
    }
}

impl WriteTx {
    /// Expects the gateway's receipt of each of these payments, just paid: a `pending` row, no
    /// attempt made, due at `at` (a payment that has a row keeps it). One statement per chunk.
    pub async fn expect_gateway_receipts(&mut self, paid: &[(&str, Gateway)], at: DateTime<Utc>) -> Result<()> {
        let at = Timestamp::at(at);
        for chunk in paid.chunks(super::rows_per_statement(4)) {
            on_tx!(self, |c| {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO gateway_receipts (payment_id, gateway, state, attempts, next_attempt_at, updated_at) ",
                );
                q.push_values(chunk, |mut b, (id, g)| {
                    b.push_bind(*id).push_bind(*g).push("'pending', 0").push_bind(at).push_bind(at);
                });
                q.push(" ON CONFLICT (payment_id) DO NOTHING");
                q.build().execute(&mut *c).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }

    /// Writes the expected receipt of each paid payment of `gateway` homed on `date` that has no
    /// row: a close's catch-all for a payment paid by a path that wrote none (a server older than
    /// migration 0017 on the same database), read by `payments_home`. Returns how many.
    pub async fn expect_receipts_of_homed(
        &mut self,
        gateway: Gateway,
        date: NaiveDate,
        at: DateTime<Utc>,
    ) -> Result<u64> {
        Ok(on_tx!(self, |c| sqlx::query(
            "INSERT INTO gateway_receipts (payment_id, gateway, state, attempts, next_attempt_at, updated_at)
             SELECT p.payment_id, p.gateway, 'pending', 0, $3, $3 FROM payments p
             WHERE p.gateway = $1 AND p.status = 'paid' AND p.home_date = $2
               AND NOT EXISTS (SELECT 1 FROM gateway_receipts r WHERE r.payment_id = p.payment_id)
             ON CONFLICT (payment_id) DO NOTHING"
        )
        .bind(gateway)
        .bind(date)
        .bind(Timestamp::at(at))
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?)
    }

    /// Records an attempt for a payment's receipt; a receipt already fetched is left as it is.
    pub async fn record_receipt_attempt(
        &mut self,
        payment_id: &str,
        gateway: Gateway,
        attempt: &ReceiptAttempt,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let at = Timestamp::at(at);
        let (state, request, content_type, body, sha256, source_url, detail, fetched_at, next) = match attempt {
            ReceiptAttempt::Fetched { request, content_type, body, sha256, source_url } => (
                "fetched",
                Some(request.as_str()),
                Some(content_type.as_str()),
                Some(body.as_slice()),
                Some(sha256.as_str()),
                source_url.as_deref(),
                None,
                Some(at),
                at,
            ),
            ReceiptAttempt::Failed { request, detail, next_attempt_at } => (
                "pending",
                request.as_deref(),
                None,
                None,
                None,
                None,
                Some(detail.as_str()),
                None,
                Timestamp::at(*next_attempt_at),
            ),
        };
        let sql = "INSERT INTO gateway_receipts (payment_id, gateway, state, attempts, next_attempt_at, request,
                       content_type, body, sha256, source_url, detail, fetched_at, updated_at)
                   VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                   ON CONFLICT (payment_id) DO UPDATE SET state = excluded.state,
                       attempts = gateway_receipts.attempts + 1, next_attempt_at = excluded.next_attempt_at,
                       request = excluded.request, content_type = excluded.content_type, body = excluded.body,
                       sha256 = excluded.sha256, source_url = excluded.source_url, detail = excluded.detail,
                       fetched_at = excluded.fetched_at, updated_at = excluded.updated_at
                   WHERE gateway_receipts.state = 'pending'";
        on_tx!(self, |c| sqlx::query(sql)
            .bind(payment_id)
            .bind(gateway)
            .bind(state)
            .bind(next)
            .bind(request)
            .bind(content_type)
            .bind(body)
            .bind(sha256)
            .bind(source_url)
            .bind(detail)
            .bind(fetched_at)
            .bind(at)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
