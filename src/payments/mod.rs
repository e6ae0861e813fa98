//! Payments (SPEC §6): creating them for the portal, applying what gateways say, and asking
//! gateways about payments that stay pending.
//!
//! A callback's walk: the gateway route keeps the raw request → `Service::callback` asks the
//! gateway's adapter to verify it (pure) → the `Committer` applies it with the batch it joins
//! (`commit`: state machine, ledger postings, portal event, evidence, one transaction) → the
//! adapter turns the result into the gateway's own reply. Status-query answers (`query`) and
//! settlement lines approved by finance take the same committer. A message is kept whatever it
//! comes to: one for a gateway not enabled here, or whose body is over the size limit, is kept
//! unchecked and answered in the gateway's own format.

pub mod apply;
mod bills;
mod claim;
pub mod committer;
pub mod outcome_log;
mod query;

pub use bills::{Owed, next_bill_attempt};
pub use query::{next_query_interval, next_query_interval_for};

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use serde::Deserialize;

pub use apply::apply_in;
pub use committer::{Applied, Asked, CommitError, Committer, Job, Message, SettlementProof, Unanswered};

use crate::domain::callback::{AuthenticatedBy, CallbackResult, KeyUsed, RawRequest, Source};
use crate::domain::payment::{EventType, Gateway, PaymentStatus};
use crate::domain::{BusinessDate, CaseCode, Clock, FieldError, Money, Timestamp, new_id};
use crate::fees::{Facts, FeeEngine};
use crate::gateway::{Gateways, HttpReply, Order, OrderCase, OrderLine, Verification};
use crate::store::{CallbackRow, NewPayment, Payment, Store, StoreError};

/// The portal's request to create a payment (SPEC §4.3).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub gateway: String,
    pub return_url: String,
    pub client_ip: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("no case {0}")]
    NoCase(String),
    #[error("the case already has a paid, waived or budget-covered payment")]
    CaseAlreadyPaid,
    #[error("this Idempotency-Key was used for this case with another gateway or return_url")]
    KeyReused,
    #[error("gateway {0} is not enabled on this server")]
    GatewayDisabled(Gateway),
    #[error("{gateway} does not take {amount}")]
    OutsideLimits { gateway: Gateway, amount: Money },
    #[error("the gateway did not create the order: {0}")]
    GatewayUnavailable(String),
    /// The case cannot be quoted: its procedure left the catalogue, or no base rate covers its date.
    #[error("{0}")]
    Unquotable(crate::fees::QuoteError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<crate::fees::QuoteError> for CreateError {
    fn from(e: crate::fees::QuoteError) -> Self {
        match e {
            crate::fees::QuoteError::Overflow(_) => CreateError::Internal(anyhow::Error::new(e)),
            other => CreateError::Unquotable(other),
        }
    }
}

impl From<StoreError> for CreateError {
    fn from(e: StoreError) -> Self {
        CreateError::Internal(anyhow::Error::new(e))
    }
}

impl From<crate::ledger::chain::AppendError> for CreateError {
    fn from(e: crate::ledger::chain::AppendError) -> Self {
        CreateError::Internal(anyhow::Error::new(e))
    }
}

/// The payment API's view (SPEC §4.3).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PaymentView {
    pub payment_id: String,
    pub case_code: CaseCode,
    pub gateway: Gateway,
    pub txn_ref: Option<String>,
    pub amount: i64,
    pub status: PaymentStatus,
    pub gateway_txn_no: Option<String>,
    pub paid_at: Option<Timestamp>,
    pub flags: Vec<crate::domain::payment::Flag>,
}

impl PaymentView {
    pub fn of(p: &Payment) -> Self {
        Self {
            payment_id: p.payment_id.clone(),
            case_code: p.case_code.clone(),
            gateway: p.gateway,
            txn_ref: p.txn_ref.clone(),
            amount: p.amount.dong(),
            status: p.status,
            gateway_txn_no: p.gateway_txn_no.clone(),
            paid_at: p.paid_at.map(Timestamp::at),
            flags: p.flags.clone(),
        }
    }
}

/// A stored callback or status answer as the evidence API shows it (SPEC §6.5): how it was
/// authenticated, and, for readers of the older fields, whether a signature verified and with
/// which key.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CallbackView {
    pub callback_id: String,
    pub source: Source,
    pub gateway: Gateway,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: serde_json::Value,
    /// The body as text (lossy for non-UTF-8 bytes); `body_sha256` is over the exact bytes kept.
    pub body: String,
    pub body_sha256: String,
    /// The whole body's length when only its first `FEERECON_MAX_BODY` bytes were kept.
    pub body_length: Option<i64>,
    pub received_at: Timestamp,
    pub authenticated_by: AuthenticatedBy,
    pub signature_valid: bool,
    pub key_used: Option<KeyUsed>,
    pub txn_ref: Option<String>,
    pub gateway_txn_no: Option<String>,
    pub amount: Option<i64>,
    pub outcome: Option<crate::domain::payment::OutcomeKind>,
    pub payment_id: Option<String>,
    pub result: CallbackResult,
    pub detail: Option<String>,
}

impl CallbackView {
    pub fn of(r: CallbackRow) -> Self {
        Self {
            headers: serde_json::from_str(&r.headers).unwrap_or(serde_json::Value::Null),
            body: String::from_utf8_lossy(&r.body).into_owned(),
            body_sha256: r.sha256,
            body_length: r.body_length,
            received_at: Timestamp::at(r.received_at),
            signature_valid: r.authenticated_by.is_signature(),
            key_used: r.authenticated_by.key_used(),
            authenticated_by: r.authenticated_by,
            callback_id: r.callback_id,
            source: r.source,
            gateway: r.gateway,
            method: r.method,
            path: r.path,
            query: r.query,
            txn_ref: r.txn_ref,
            gateway_txn_no: r.gateway_txn_no,
            amount: r.amount,
            outcome: r.outcome,
            payment_id: r.payment_id,
            result: r.result,
            detail: r.detail,
        }
    }
}

/// A payment, and whether this request created it (201) or found it by its key (200).
pub struct Created {
    pub payment: Payment,
    pub new: bool,
}

/// The payment service. Cheap to share behind an `Arc`.
pub struct Service {
    pub store: Store,
    pub fees: Arc<FeeEngine>,
    pub gateways: Gateways,
    pub clock: Arc<dyn Clock>,
    pub committer: Committer,
    pub metrics: Arc<crate::telemetry::metrics::Metrics>,
    /// Base of feerecon's own URLs given to gateways.
    pub public_url: String,
    pub payment_ttl: Duration,
    pub pending_query_after: Duration,
    /// How long a gateway's callback waits for its outcome to be durable before it is answered
    /// with the gateway's retry reply (`answer_within`): below the request timeout, so the
    /// gateway hears its own protocol, never the server's 503.
    pub callback_deadline: Duration,
}

/// The callback deadline for a request timeout: 10 s (MoMo wants its answer within 15 s,
/// reference/gateways.md §MoMo; VNPAY treats a timeout as a failure and retries), and never more
/// than three quarters of the request timeout.
pub fn callback_deadline(request_timeout: Duration) -> Duration {
    Duration::from_secs(10).min(request_timeout * 3 / 4)
}

fn field(name: &str, reason: impl ToString) -> CreateError {
    CreateError::Field(FieldError::new(name, reason))
}

fn check_url(name: &str, v: &str) -> Result<(), CreateError> {
    let rest = v.strip_prefix("https://").or_else(|| v.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !v.contains(char::is_whitespace) && v.len() <= 1000 => Ok(()),
        _ => Err(field(name, "must be an http:// or https:// URL")),
    }
}

/// The ASCII description sent with a payment (gateways want no diacritics).
pub fn order_info(case_code: &str) -> String {
    format!("Thanh toan le phi ho so {case_code}")
}

impl Service {
    /// The case as a gateway that issues the receipt needs it: its codes, the procedure's name,
    /// the applicant, and the quote's lines the citizen pays.
    fn order_case(&self, case: &crate::domain::Case, quote: &crate::fees::Quote<'_>) -> OrderCase {
        OrderCase {
            case_code: case.case_code.to_string(),
            procedure_code: case.procedure_code.to_string(),
            procedure_name: self
                .fees
                .catalogue
                .procedure(&case.procedure_code)
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            unit_code: case.receiving_unit.to_string(),
            applicant_name: case.applicant_name.clone(),
            lines: quote
                .items
                .iter()
                .map(|i| OrderLine {
                    fee_id: i.fee.id.clone(),
                    kind: i.fee.kind.as_str().to_owned(),
                    name: i.fee.name.clone(),
                    amount: i.citizen_due,
                })
                .collect(),
        }
    }

    fn gateway_url(&self, g: Gateway, what: &str) -> String {
        format!("{}/gateway/{g}/{what}", self.public_url)
    }

    /// Creates a payment for a case (SPEC §4.3).
    pub async fn create(
        &self,
        created_by: &str,
        case: &CaseCode,
        key: &str,
        req: CreateRequest,
    ) -> Result<Created, CreateError> {
        let gateway: Gateway = req.gateway.parse().map_err(|e| field("gateway", e))?;
        check_url("return_url", &req.return_url)?;
        let client_ip: std::net::IpAddr = req
            .client_ip
            .trim()
            .parse()
            .map_err(|_| field("client_ip", format!("{:?} is not an IP address", req.client_ip)))?;
        // The key first: the same key always answers the same way.
        if let Some(p) = self.store.payment_by_key(created_by, case, key).await? {
            return if p.gateway == gateway && p.return_url == req.return_url {
                Ok(Created { payment: p, new: false })
            } else {
                Err(CreateError::KeyReused)
            };
        }
        let stored = self.store.get_case(case).await?.ok_or_else(|| CreateError::NoCase(case.to_string()))?;
        if self.store.case_is_settled(case).await? {
            return Err(CreateError::CaseAlreadyPaid);
        }
        let quote = self.fees.quote(&Facts::of_case(&stored.case)).map_err(CreateError::from)?;
        let now = self.clock.now();
        let expires_at = now + TimeDelta::from_std(self.payment_ttl).unwrap_or(TimeDelta::minutes(15));
        let quote_json = quote.to_json();
        let items = crate::fees::stored::tagged_items(&quote_json, &self.fees.catalogue)
            .map_err(|e| CreateError::Internal(e.into()))?;
        let (phi_due, le_phi_due) = crate::fees::stored::citizen_split(&items);
        let mut payment = Payment {
            payment_id: new_id("pay"),
            case_code: case.clone(),
            case_version: stored.version,
            gateway,
            txn_ref: None,
            amount: quote.citizen_due,
            budget_amount: quote.budget_due,
            status: PaymentStatus::Pending,
            gateway_txn_no: None,
            paid_at: None,
            pay_url: None,
            return_url: req.return_url.clone(),
            client_ip: client_ip.to_string(),
            created_by: created_by.to_owned(),
            idempotency_key: key.to_owned(),
            quote: quote_json,
            created_at: Timestamp::at(now).0,
            expires_at: Timestamp::at(expires_at).0,
            flags: vec![],
        };
        let posting = if quote.citizen_due == Money::ZERO {
            // Nobody pays through a gateway: waived, or the budget's to pay.
            payment.status =
                if quote.budget_due == Money::ZERO { PaymentStatus::Waived } else { PaymentStatus::BudgetCovered };
            Some(crate::domain::ledger::settled_without_gateway(
                &payment.payment_id,
                &items,
                BusinessDate::of(now).naive(),
                format!("payment={};case={}", payment.payment_id, payment.case_code),
            ))
        } else {
            let adapter = self.gateways.get(gateway).ok_or(CreateError::GatewayDisabled(gateway))?;
            if !adapter.accepts(quote.citizen_due) {
                return Err(CreateError::OutsideLimits { gateway, amount: quote.citizen_due });
            }
            let txn_ref = adapter.new_txn_ref(now);
            let case_for_order = self.order_case(&stored.case, &quote);
            let order = Order {
                txn_ref: txn_ref.clone(),
                amount: quote.citizen_due,
                order_info: order_info(case.as_str()),
                return_url: self.gateway_url(gateway, "return"),
                ipn_url: self.gateway_url(
                    gateway,
                    if matches!(gateway, Gateway::Zalopay | Gateway::Dvcqg) { "callback" } else { "ipn" },
                ),
                client_ip: client_ip.to_string(),
                created_at: payment.created_at,
                expires_at: payment.expires_at,
                case: case_for_order,
            };
            let pay_url = adapter.create(&order).await.map_err(|e| CreateError::GatewayUnavailable(e.to_string()))?;
            payment.txn_ref = Some(txn_ref);
            payment.pay_url = Some(pay_url);
            None
        };
        self.insert(NewPayment { payment, phi_due, le_phi_due }, posting).await
    }

    /// Writes a new payment, rechecking the idempotency key and the case's settlement under the
    /// case's lock; a waived or budget-covered one with its posting, its receipt (budget-covered)
    /// and its portal event.
    async fn insert(
        &self,
        new: NewPayment,
        posting: Option<crate::domain::ledger::Posting>,
    ) -> Result<Created, CreateError> {
        let p = &new.payment;
        let now = self.clock.now();
        let mut tx = self.store.write().await?;
        if tx.lock_cases(&[p.case_code.as_str()]).await?.is_empty() {
            return Err(CreateError::NoCase(p.case_code.to_string()));
        }
        if let Some(e) = tx.payment_by_key(&p.created_by, &p.case_code, &p.idempotency_key).await? {
            return if e.gateway == p.gateway && e.return_url == p.return_url {
                Ok(Created { payment: e, new: false })
            } else {
                Err(CreateError::KeyReused)
            };
        }
        if !tx.settled_payments(&[p.case_code.as_str()]).await?.is_empty() {
            return Err(CreateError::CaseAlreadyPaid);
        }
        tx.insert_payment(&new).await?;
        if let Some(posting) = posting {
            crate::ledger::chain::append_postings(&mut tx, std::slice::from_ref(&posting), now).await?;
        }
        // A budget-covered case's receipt names the budget as payer, issued with its posting.
        let issued = crate::receipts::issue_for_payments(&mut tx, self.committer.receipts(), &[p], now)
            .await
            .map_err(|e| CreateError::Internal(e.into()))?;
        let kind = match p.status {
            PaymentStatus::Waived => Some(EventType::Waived),
            PaymentStatus::BudgetCovered => Some(EventType::BudgetCovered),
            _ => None,
        };
        if let Some(kind) = kind {
            let seq = tx.last_case_seqs(&[p.case_code.as_str()]).await?.get(p.case_code.as_str()).copied().unwrap_or(0);
            // Nothing to pay through a gateway: what the case owes the citizen is what it paid, 0.
            let mut event = crate::notify::event(kind, p, p.amount, seq + 1, now);
            issued.attach(std::slice::from_mut(&mut event));
            tx.insert_outbox(&[event]).await?;
        }
        tx.commit().await?;
        Ok(Created { payment: new.payment, new: true })
    }

    /// Handles a callback from a gateway: verify (the adapter), record and apply (the
    /// committer), reply in the gateway's format (the adapter). A callback for a gateway not
    /// enabled here, or whose body was cut at `FEERECON_MAX_BODY` (`body_length` its whole
    /// length), is kept unchecked and answered with the gateway's retry reply.
    pub async fn callback(
        &self,
        gateway: Gateway,
        raw: RawRequest,
        body_length: Option<i64>,
    ) -> (CallbackResult, HttpReply) {
        let adapter = self.gateways.get(gateway);
        // A gateway whose reply echoes the callback (DVCQG) needs its body after it is kept.
        let echo = if gateway == Gateway::Dvcqg { raw.body.clone() } else { Vec::new() };
        let verification = match (adapter, body_length) {
            (_, Some(length)) => Verification::Unchecked(format!(
                "the body is {length} bytes, over FEERECON_MAX_BODY: its first {} bytes are kept, unchecked",
                raw.body.len()
            )),
            (None, None) => Verification::Unchecked(format!("gateway {gateway} is not enabled on this server")),
            (Some(a), None) => a.verify_callback(&raw),
        };
        let callback_id = new_id("cb");
        let job = Job::Message(Message {
            callback_id: callback_id.clone(),
            source: Source::Callback,
            gateway,
            claimed_txn_ref: crate::gateway::claimed_txn_ref(gateway, &raw),
            raw,
            received_at: self.clock.now(),
            verification,
            body_length,
            asked: None,
        });
        let submitted = tokio::time::timeout(self.callback_deadline, self.committer.submit(job));
        let result = match submitted.await {
            // Not durable in time (the database down or saturated): the gateway retries, and a
            // retry of a message that did commit meanwhile is answered as a duplicate.
            Err(_) => {
                tracing::error!(%gateway, callback_id, deadline = ?self.callback_deadline,
                    "callback not durable within the deadline; asking the gateway to retry");
                CallbackResult::Failure
            }
            Ok(Ok(a)) => {
                // A message refused after its signature verified names a payment the committer
                // did not load: the case of that payment, for the log. A forged or unchecked
                // message gets no read (anyone can post one): its reference is logged as a claim.
                let verified_case = match (&a.case_code, &a.txn_ref, outcome_log::verified(a.result)) {
                    (None, Some(r), true) => self.store.payment_by_txn_ref(r).await.ok().flatten(),
                    _ => None,
                };
                outcome_log::callback(gateway, &callback_id, &a, verified_case.as_ref().map(|p| p.case_code.as_str()));
                a.result
            }
            Ok(Err(e)) => {
                tracing::error!(%gateway, callback_id, error = %e, "callback not recorded; asking the gateway to retry");
                CallbackResult::Failure
            }
        };
        self.metrics.callback(gateway.as_str(), result.as_str());
        let reply = match adapter {
            Some(a) => a.reply_to(result, &echo),
            None => crate::gateway::reply_to(gateway, result, &echo),
        };
        (result, reply)
    }
}
