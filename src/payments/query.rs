//! Payments that stay pending: asking their gateway (SPEC §6.4), applying the answer through the
//! committer like a callback, and expiring them after `FEERECON_PAYMENT_TTL` when the gateway
//! reports no success.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;

use super::{Job, Message, Service, order_info};
use crate::domain::callback::Source;
use crate::domain::new_id;
use crate::domain::payment::{EventType, OutcomeKind, PaymentStatus};
use crate::gateway::{QueryTarget, Unusable, Verification};
use crate::store::{PaymentUpdate, Store, StoreError};

impl Service {
    /// Asks the gateways about payments pending past `FEERECON_PENDING_QUERY_AFTER`, applies
    /// their answers through the committer, and expires payments past their TTL that the
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
                order_info: order_info(p.case_code.as_str()),
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
                verification = Verification::Valid {
                    key: *key,
                    event: Err(Unusable::NotOurs(format!("the answer is about {}", e.txn_ref))),
                };
            }
            let trusted = matches!(verification, Verification::Valid { .. });
            let succeeded =
                matches!(&verification, Verification::Valid { event: Ok(e), .. } if e.outcome == OutcomeKind::Success);
            let job = Job::Message(Message {
                callback_id: new_id("cb"),
                source: Source::StatusQuery,
                gateway: p.gateway,
                raw: answer.raw,
                received_at: self.clock.now(),
                verification,
                claimed_txn_ref: Some(txn_ref.clone()),
            });
            if let Err(e) = self.committer.submit(job).await {
                tracing::warn!(payment_id = %p.payment_id, error = %e, "status answer not recorded; will retry");
                continue;
            }
            if trusted
                && !succeeded
                && p.expires_at <= now
                && expire(&self.store, &p.payment_id, self.clock.now()).await?
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

/// Expires a payment still pending, with its portal event; `false` when it is not pending any
/// more (or does not exist).
pub async fn expire(store: &Store, payment_id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
    let Some(before) = store.get_payment(payment_id).await? else { return Ok(false) };
    let mut tx = store.write().await?;
    tx.lock_cases(&[before.case_code.as_str()]).await?;
    let Some(mut p) = tx.payment(payment_id).await? else { return Ok(false) };
    if p.status != PaymentStatus::Pending {
        return Ok(false);
    }
    p.status = PaymentStatus::Expired;
    let update = PaymentUpdate {
        payment_id: p.payment_id.clone(),
        status: p.status,
        gateway_txn_no: p.gateway_txn_no.clone(),
        paid_at: p.paid_at,
        confirmed: false,
    };
    tx.update_payments(&[update], at).await?;
    let seq = tx.last_case_seqs(&[p.case_code.as_str()]).await?.get(p.case_code.as_str()).copied().unwrap_or(0);
    tx.insert_outbox(&[crate::notify::event(EventType::Expired, &p, seq + 1, at)]).await?;
    tx.commit().await?;
    Ok(true)
}
