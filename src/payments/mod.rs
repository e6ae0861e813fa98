//! Payments: creating them for the portal, applying what gateways say, and asking gateways about
//! payments that stay pending.
//!
//! Every gateway message, callback or status-query answer, takes one path: verify (pure, in the
//! adapter) → an `EventJob` → the `Committer`, which gathers the jobs waiting at that moment into
//! one database transaction (group commit) → the reply. A job is acknowledged only after the
//! transaction holding its effects has committed. Under load many callbacks share one commit;
//! alone, a callback waits for nobody.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot, watch};

use crate::domain::payment::{Gateway, OutcomeKind, PaymentStatus};
use crate::domain::{CaseCode, Clock, FieldError, Money, new_id};
use crate::fees::{Facts, FeeEngine};
use crate::gateway::{Gateways, HttpReply, Order, QueryTarget, RawRequest, Reply, Verification};
use crate::store::{CreatePayment, EventJob, JobResult, NewPayment, Payment, Store};

/// The largest number of jobs one transaction carries.
const MAX_BATCH: usize = 256;

/// Group commit: one task owns the write path of gateway events.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<(EventJob, oneshot::Sender<Result<JobResult, String>>)>,
}

impl Committer {
    /// Starts the committing task; it ends when every `Committer` clone is dropped.
    pub fn start(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        let (tx, mut rx) = mpsc::channel::<(EventJob, oneshot::Sender<Result<JobResult, String>>)>(4 * MAX_BATCH);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(j) => batch.push(j),
                        Err(_) => break,
                    }
                }
                let (jobs, replies): (Vec<EventJob>, Vec<_>) = batch.into_iter().unzip();
                let results = commit(&*store, &jobs, clock.now()).await;
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
        });
        Self { tx }
    }

    /// Submits a job and waits until its effects are durable.
    pub async fn submit(&self, job: EventJob) -> Result<JobResult, String> {
        let (tx, rx) = oneshot::channel();
        self.tx.send((job, tx)).await.map_err(|_| "the committer has stopped".to_owned())?;
        rx.await.map_err(|_| "the committer dropped the job".to_owned())?
    }
}

/// Commits a batch: the whole batch in one transaction, retried on a transient failure (a
/// deadlock with another instance, a busy database); if it still fails, each job alone, so one
/// job that cannot be applied does not hold back the others.
async fn commit(store: &dyn Store, jobs: &[EventJob], at: DateTime<Utc>) -> Vec<Result<JobResult, String>> {
    let mut last = String::new();
    for attempt in 0..3u64 {
        match store.process_gateway_events(jobs, at).await {
            Ok(r) => return r.into_iter().map(Ok).collect(),
            Err(e) => {
                last = format!("{e:?}");
                tracing::warn!(attempt, jobs = jobs.len(), error = %last, "gateway batch failed; retrying");
                tokio::time::sleep(Duration::from_millis(20 * (attempt + 1))).await;
            }
        }
    }
    if jobs.len() == 1 {
        tracing::error!(error = %last, "gateway event could not be recorded");
        return vec![Err(last)];
    }
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        out.push(Box::pin(commit(store, std::slice::from_ref(job), at)).await.pop().unwrap_or(Err(last.clone())));
    }
    out
}

/// The reply for a message whose signature verified but which is not a usable outcome.
fn unusable_reply(why: &str) -> Reply {
    if why.contains("amount") || why.contains("Amount") { Reply::InvalidAmount } else { Reply::OrderNotFound }
}

/// Turns a verification into a job.
pub fn job_from(
    gateway: Gateway,
    source: &'static str,
    raw: RawRequest,
    received_at: DateTime<Utc>,
    verification: Verification,
) -> EventJob {
    let claimed_txn_ref = crate::gateway::claimed_txn_ref(gateway, &raw);
    let (key_used, event, refusal) = match verification {
        Verification::BadSignature(why) => (None, None, Some((Reply::BadSignature, why))),
        Verification::Valid { key, event: Err(why) } => (Some(key.as_str()), None, Some((unusable_reply(&why), why))),
        Verification::Valid { key, event: Ok(e) } => (Some(key.as_str()), Some(e), None),
    };
    EventJob { callback_id: new_id("cb"), source, gateway, raw, received_at, key_used, event, refusal, claimed_txn_ref }
}

/// The portal's request to create a payment (SPEC §4.3).
#[derive(Debug, Clone, Deserialize)]
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

impl From<crate::store::StoreError> for CreateError {
    fn from(e: crate::store::StoreError) -> Self {
        CreateError::Internal(anyhow::Error::new(e))
    }
}

/// A payment, and whether this request created it (201) or found it by its key (200).
pub struct Created {
    pub payment: Payment,
    pub new: bool,
}

/// The payment service. Cheap to share behind an `Arc`.
pub struct Service {
    pub store: Arc<dyn Store>,
    pub fees: Arc<FeeEngine>,
    pub gateways: Gateways,
    pub clock: Arc<dyn Clock>,
    pub committer: Committer,
    /// Base of feerecon's own URLs given to gateways.
    pub public_url: String,
    pub payment_ttl: Duration,
    pub pending_query_after: Duration,
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
        if let Some(p) = self.store.payment_by_key(created_by, case.as_str(), key).await? {
            return if p.gateway == gateway && p.return_url == req.return_url {
                Ok(Created { payment: p, new: false })
            } else {
                Err(CreateError::KeyReused)
            };
        }
        let stored = self.store.get_case(case).await?.ok_or_else(|| CreateError::NoCase(case.to_string()))?;
        if self.store.case_is_settled(case.as_str()).await? {
            return Err(CreateError::CaseAlreadyPaid);
        }
        let quote = self.fees.quote(&Facts::of_case(&stored.case)).map_err(CreateError::from)?;
        let now = self.clock.now();
        let expires_at = now + TimeDelta::from_std(self.payment_ttl).unwrap_or(TimeDelta::minutes(15));
        let mut payment = Payment {
            payment_id: new_id("pay"),
            case_code: case.to_string(),
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
            quote: quote.to_json(),
            created_at: crate::domain::Timestamp::at(now).0,
            expires_at: crate::domain::Timestamp::at(expires_at).0,
            flags: vec![],
        };
        let posting = if quote.citizen_due == Money::ZERO {
            // Nobody pays through a gateway: waived, or the budget's to pay.
            payment.status =
                if quote.budget_due == Money::ZERO { PaymentStatus::Waived } else { PaymentStatus::BudgetCovered };
            Some(crate::domain::ledger::settled_without_gateway(
                &payment.payment_id,
                &crate::store::payments::quoted_items(&payment.quote),
                crate::domain::BusinessDate::of(now).naive(),
                format!("payment={};case={}", payment.payment_id, payment.case_code),
            ))
        } else {
            let adapter = self.gateways.get(gateway).ok_or(CreateError::GatewayDisabled(gateway))?;
            if !adapter.accepts(quote.citizen_due) {
                return Err(CreateError::OutsideLimits { gateway, amount: quote.citizen_due });
            }
            let txn_ref = adapter.new_txn_ref(now);
            let order = Order {
                txn_ref: txn_ref.clone(),
                amount: quote.citizen_due,
                order_info: order_info(case.as_str()),
                return_url: self.gateway_url(gateway, "return"),
                ipn_url: self.gateway_url(gateway, if gateway == Gateway::Zalopay { "callback" } else { "ipn" }),
                client_ip: client_ip.to_string(),
                created_at: payment.created_at,
                expires_at: payment.expires_at,
            };
            let pay_url = adapter.create(&order).await.map_err(|e| CreateError::GatewayUnavailable(e.to_string()))?;
            payment.txn_ref = Some(txn_ref);
            payment.pay_url = Some(pay_url);
            None
        };
        match self.store.create_payment(&NewPayment { payment, posting }, now).await? {
            CreatePayment::Created(p) => Ok(Created { payment: p, new: true }),
            CreatePayment::Existing(p) => Ok(Created { payment: p, new: false }),
            CreatePayment::KeyReused => Err(CreateError::KeyReused),
            CreatePayment::CaseAlreadyPaid => Err(CreateError::CaseAlreadyPaid),
        }
    }

    /// Handles a callback from a gateway: verify, record and apply, reply.
    pub async fn callback(&self, gateway: Gateway, raw: RawRequest) -> (Reply, Option<HttpReply>) {
        let Some(adapter) = self.gateways.get(gateway) else {
            return (Reply::OrderNotFound, None);
        };
        let verification = adapter.verify_callback(&raw);
        let job = job_from(gateway, "callback", raw, self.clock.now(), verification);
        let reply = match self.committer.submit(job).await {
            Ok(r) => r.reply,
            Err(e) => {
                tracing::error!(%gateway, error = %e, "callback not recorded; asking the gateway to retry");
                Reply::Failure
            }
        };
        (reply, Some(adapter.reply(reply)))
    }

    /// Asks the gateways about payments pending past `FEERECON_PENDING_QUERY_AFTER`, applies
    /// their answers through the callback path, and expires payments past their TTL that the
    /// gateway reports no success for. Returns how many payments it asked about.
    pub async fn query_due(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let query_after = TimeDelta::from_std(self.pending_query_after).unwrap_or(TimeDelta::minutes(15));
        let requery = query_after.min(TimeDelta::seconds(60));
        let due = self.store.payments_due_for_query(now, now - query_after, now - requery, 50).await?;
        let mut asked = 0;
        for p in due {
            if !self.store.claim_query(&p.payment_id, now, now - requery).await? {
                continue; // another instance is asking
            }
            let (Some(adapter), Some(txn_ref)) = (self.gateways.get(p.gateway), p.txn_ref.clone()) else {
                continue;
            };
            asked += 1;
            let target = QueryTarget {
                txn_ref: txn_ref.clone(),
                amount: p.amount,
                created_at: p.created_at,
                order_info: order_info(&p.case_code),
            };
            let answer = match adapter.query(&target).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(payment_id = %p.payment_id, gateway = %p.gateway, error = %e, "status query failed; will retry");
                    continue;
                }
            };
            let mut verification = answer.verification;
            if let Verification::Valid { event: Ok(e), key } = &verification
                && e.txn_ref != txn_ref
            {
                verification =
                    Verification::Valid { key: *key, event: Err(format!("the answer is about {}", e.txn_ref)) };
            }
            let trusted = matches!(verification, Verification::Valid { .. });
            let succeeded =
                matches!(&verification, Verification::Valid { event: Ok(e), .. } if e.outcome == OutcomeKind::Success);
            let job = job_from(p.gateway, "status_query", answer.raw, self.clock.now(), verification);
            if let Err(e) = self.committer.submit(job).await {
                tracing::warn!(payment_id = %p.payment_id, error = %e, "status answer not recorded; will retry");
                continue;
            }
            if trusted
                && !succeeded
                && p.expires_at <= now
                && self.store.expire_payment(&p.payment_id, self.clock.now()).await?
            {
                tracing::info!(payment_id = %p.payment_id, "payment expired");
            }
        }
        Ok(asked)
    }

    /// Runs `query_due` until `shutdown` turns true.
    pub async fn run_query_worker(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let tick = (self.pending_query_after / 4).clamp(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
            if let Err(e) = self.query_due().await {
                tracing::warn!(error = %e, "status query round failed");
            }
        }
    }
}
