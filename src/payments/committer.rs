//! The committer: the write path of every payment outcome, as a group commit, and the jobs it
//! takes (`apply.rs` is the state machine each batch runs in one store transaction).
//!
//! A job is a gateway message (a callback, or a status-query answer) with its verification, a
//! settlement line two finance users approved as proof of payment, or a status query that got no
//! answer. The committer gathers the jobs waiting at that moment into one transaction and answers
//! each only after the transaction that holds its effects has committed. Under load many
//! callbacks share one commit; alone, a callback waits for nobody. A batch that fails is retried
//! when the failure is transient, then split, so that one job that cannot be applied does not
//! hold back the others; such a job is still kept as evidence.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use super::apply::apply;
use super::claim::Claim;
use crate::domain::callback::{CallbackResult, RawRequest, Source};
use crate::domain::payment::{AnswerKind, Gateway, PaymentStatus};
use crate::domain::{Clock, Money};
use crate::gateway::Verification;
use crate::ledger::chain::AppendError;
use crate::receipts::{IssueError, Issuer};
use crate::store::{Store, StoreError};

/// The largest number of jobs one transaction carries.
const MAX_BATCH: usize = 256;

/// How long a batch much smaller than the last one waits for more jobs (see `Committer::start`).
const LINGER: Duration = Duration::from_millis(2);

/// The size of the last batch from which a small batch lingers.
const LINGER_AFTER: usize = 8;

/// Moves the jobs already waiting into `batch`, up to `MAX_BATCH`.
fn take_waiting(rx: &mut mpsc::Receiver<(Job, Reply)>, batch: &mut Vec<(Job, Reply)>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(j) => batch.push(j),
            Err(_) => break,
        }
    }
}

/// A gateway message to record and apply.
#[derive(Debug, Clone)]
pub struct Message {
    pub callback_id: String,
    /// `Callback` or `StatusQuery`.
    pub source: Source,
    pub gateway: Gateway,
    pub raw: RawRequest,
    pub received_at: DateTime<Utc>,
    pub verification: Verification,
    /// The reference the message claims, read without trusting it: kept with a refused message
    /// so finance sees forged attempts beside the payment they name.
    pub claimed_txn_ref: Option<String>,
    /// The whole body's length when `raw.body` holds only its first `FEERECON_MAX_BODY` bytes.
    pub body_length: Option<i64>,
    /// For a status answer: what was asked, which decides expiry after the answer.
    pub asked: Option<Asked>,
}

/// What the status-query worker asked about, and knew when it asked.
#[derive(Debug, Clone)]
pub struct Asked {
    pub payment_id: String,
    pub txn_ref: String,
    /// Status queries made for the payment, this one included.
    pub queries: i64,
    /// Whether the payment's TTL had passed when it was asked.
    pub past_ttl: bool,
    /// What the last answer before this one said (`None`: none came yet).
    pub last_answer: Option<AnswerKind>,
    /// Whether its gateway is enabled here (a payment of a disabled gateway cannot be asked).
    pub askable: bool,
    /// Whether the payment is still inside its gateway's `pending_window` (an undecided answer
    /// then keeps it asked about rather than expired).
    pub window_open: bool,
}

/// A status query that got no answer (the gateway did not answer, or is not enabled here):
/// nothing to keep, but it may still expire the payment, or leave it to a person.
#[derive(Debug, Clone)]
pub struct Unanswered {
    pub gateway: Gateway,
    pub asked: Asked,
    pub why: String,
    /// The gateway answered with an HTTP error (4xx): an answer, but an unusable one; otherwise
    /// no answer came at all.
    pub refused: bool,
    pub at: DateTime<Utc>,
}

/// A settlement line approved as proof that a payment succeeded (`confirm_from_settlement`).
#[derive(Debug, Clone)]
pub struct SettlementProof {
    pub gateway: Gateway,
    pub txn_ref: String,
    pub gateway_txn_no: String,
    pub amount: Money,
    pub paid_at: DateTime<Utc>,
    /// The line and the exception, as JSON: the evidence kept for the payment.
    pub evidence: serde_json::Value,
    pub received_at: DateTime<Utc>,
}

/// One thing the committer records and applies.
#[derive(Debug, Clone)]
pub enum Job {
    Message(Message),
    Settlement(SettlementProof),
    Unanswered(Unanswered),
}

/// What applying a job came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub result: CallbackResult,
    /// The payment it concerned, when one has its reference.
    pub payment_id: Option<String>,
    /// The reference it named (claimed, for a refused message), for the outcome's log line.
    pub txn_ref: Option<String>,
    /// The case of the payment it concerned.
    pub case_code: Option<String>,
    /// That payment's status once the job was applied.
    pub status: Option<PaymentStatus>,
    /// Why, as kept on the evidence row (a refusal's reason, "still pending", an expiry).
    pub detail: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] AppendError),
    #[error("receipt: {0}")]
    Receipt(#[from] IssueError),
    #[error("payment {payment_id}: {why}")]
    Corrupt { payment_id: String, why: String },
    #[error("the committer has stopped")]
    Stopped,
}

impl CommitError {
    fn is_transient(&self) -> bool {
        match self {
            CommitError::Store(e) | CommitError::Ledger(AppendError::Store(e)) => e.is_transient(),
            CommitError::Receipt(e) => e.is_transient(),
            _ => false,
        }
    }
}

type Reply = oneshot::Sender<Result<Applied, CommitError>>;

/// Group commit: one task owns the write path of payment outcomes.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<(Job, Reply)>,
    /// Issues the receipts of the payments a batch confirms, in the batch's transaction.
    receipts: std::sync::Arc<Issuer>,
}

impl Committer {
    /// Starts the committing task; it ends when every `Committer` clone is dropped.
    pub fn start(store: Store, clock: std::sync::Arc<dyn Clock>, receipts: std::sync::Arc<Issuer>) -> Self {
        let issuer = receipts.clone();
        let (tx, mut rx) = mpsc::channel::<(Job, Reply)>(4 * MAX_BATCH);
        tokio::spawn(async move {
            let mut last = 0usize;
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                take_waiting(&mut rx, &mut batch);
                // Under load the callers the last batch answered send their next jobs moments
                // later: a batch much smaller than the last one waits briefly for them instead of
                // paying a whole transaction (and its fsync) for a few jobs while they queue.
                // Alone, a job waits for nobody: the last batch was small too.
                if last >= LINGER_AFTER && batch.len() < last / 2 {
                    let until = tokio::time::Instant::now() + LINGER;
                    while batch.len() < last {
                        match tokio::time::timeout_at(until, rx.recv()).await {
                            Ok(Some(j)) => {
                                batch.push(j);
                                take_waiting(&mut rx, &mut batch);
                            }
                            _ => break,
                        }
                    }
                }
                last = batch.len();
                let (jobs, replies): (Vec<Job>, Vec<Reply>) = batch.into_iter().unzip();
                let results = commit(&store, &issuer, &jobs, clock.now()).await;
                for (reply, result) in replies.into_iter().zip(results) {
                    // The submitter may have gone (its request timed out): nothing to tell.
                    let _ = reply.send(result);
                }
            }
        });
        Self { tx, receipts }
    }

    /// The receipt issuer, for whoever else confirms money (a budget-covered case).
    pub fn receipts(&self) -> &std::sync::Arc<Issuer> {
        &self.receipts
    }

    /// Submits a job and waits until its effects are durable.
    pub async fn submit(&self, job: Job) -> Result<Applied, CommitError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send((job, tx)).await.map_err(|_| CommitError::Stopped)?;
        rx.await.map_err(|_| CommitError::Stopped)?
    }
}

/// Commits a batch: the whole batch in one transaction, retried on a transient failure (a
/// deadlock with another instance, a busy database); if it still fails, each job alone, so one
/// job that cannot be applied does not hold back the others. A job that fails alone is kept as
/// evidence in a transaction of its own, when even that is possible, and answered with the error.
async fn commit(store: &Store, issuer: &Issuer, jobs: &[Job], at: DateTime<Utc>) -> Vec<Result<Applied, CommitError>> {
    let mut last = None;
    for attempt in 0..3u64 {
        match apply(store, issuer, jobs, at).await {
            Ok(r) => return r.into_iter().map(Ok).collect(),
            Err(e) => {
                tracing::warn!(attempt, jobs = jobs.len(), error = %e, "payment batch failed");
                let transient = e.is_transient();
                last = Some(e);
                if !transient {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20 * (attempt + 1))).await;
            }
        }
    }
    if jobs.len() == 1 {
        let e = last.unwrap_or(CommitError::Stopped);
        tracing::error!(error = %e, "a payment outcome could not be applied; asking the sender to retry");
        if let Err(kept) = keep_failed(store, &jobs[0], &e).await {
            tracing::error!(error = %kept, "the message could not even be kept as evidence");
        }
        return vec![Err(e)];
    }
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        out.extend(Box::pin(commit(store, issuer, std::slice::from_ref(job), at)).await);
    }
    out
}

/// Keeps a job that could not be applied as evidence, in its own transaction.
async fn keep_failed(store: &Store, job: &Job, e: &CommitError) -> Result<(), StoreError> {
    let claim = Claim::of(job);
    if !claim.kept {
        return Ok(());
    }
    let mut row = claim.evidence();
    row.result = CallbackResult::Failure;
    row.detail = Some(format!("not applied: {e}"));
    let mut tx = store.write().await?;
    tx.insert_callbacks(&[row]).await?;
    tx.commit().await
}
