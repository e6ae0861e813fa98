//! Payments that stay pending (SPEC §6.2, §6.4): asking their gateway, with backoff, and applying
//! the answer through the committer like a callback; then, past `FEERECON_PAYMENT_TTL`, expiring
//! them or leaving them to a person.
//!
//! A payment is first asked about `FEERECON_PENDING_QUERY_AFTER` after its creation (or at its
//! TTL, whichever comes first); then again after `min(FEERECON_PENDING_QUERY_AFTER, 60 s)`, the
//! interval doubling per query up to eight times that. Each answer is kept as evidence and linked
//! to the payment. An answer stating a status (success, failure, processing) is an outcome; one
//! that is an API error, that cannot be verified or read, or a success with another amount is
//! not. Past the TTL, in the answer's own transaction: the payment expires when its last answer
//! stated a status other than success, or no answer ever came; otherwise, once it has been asked
//! `QUERY_LIMIT` times, it is flagged `unresolved_pending` and its queries stop. A payment of a
//! gateway not enabled here cannot be asked: it is never expired, and is flagged at the limit.
//! The same worker fetches the gateways' own receipts of paid payments (`bills.rs`).

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use tokio::sync::watch;

use super::{Asked, Job, Message, Service, Unanswered, order_info};
use crate::domain::callback::Source;
use crate::domain::new_id;
use crate::domain::payment::Gateway;
use crate::gateway::{GatewayError, QueryTarget, Unusable, Verification};

/// How long after its `queries`-th status query a payment is asked again: `min(query_after,
/// 60 s)`, doubled per query made after the first, at most eight times that.
pub fn next_query_interval(query_after: Duration, queries: i64) -> Duration {
    let base = query_after.min(Duration::from_secs(60));
    let doublings = u32::try_from(queries.saturating_sub(1).clamp(0, 3)).unwrap_or(3);
    base * 2u32.pow(doublings)
}

/// The interval for a payment of `gateway`: a gateway with a pending window (DVCQG, asked for up
/// to three days) backs off further, doubling up to 32 times the base (32 min with the default
/// delay), near TD's 33-minute job [S: reference dvcqg-payment.md §6; the cap is I].
pub fn next_query_interval_for(gateway: Gateway, query_after: Duration, queries: i64) -> Duration {
    if gateway.pending_window().is_none() {
        return next_query_interval(query_after, queries);
    }
    let base = query_after.min(Duration::from_secs(60));
    let doublings = u32::try_from(queries.saturating_sub(1).clamp(0, 5)).unwrap_or(5);
    base * 2u32.pow(doublings)
}

impl Service {
    /// Asks the gateways about the pending payments whose query is due, and applies their answers
    /// (or their silence) through the committer. Returns how many payments it asked about.
    pub async fn query_due(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let query_after = TimeDelta::from_std(self.pending_query_after).unwrap_or(TimeDelta::minutes(15));
        let due = self.store.payments_due_for_query(now, now - query_after, 50).await?;
        let mut asked_about = 0;
        for d in due {
            let p = d.payment;
            let Some(txn_ref) = p.txn_ref.clone() else { continue };
            let queries = d.query_count + 1;
            let next_at = now
                + TimeDelta::from_std(next_query_interval_for(p.gateway, self.pending_query_after, queries))
                    .unwrap_or(TimeDelta::minutes(1));
            if !self.store.claim_query(&p.payment_id, d.query_count, now, next_at).await? {
                continue; // another instance is asking
            }
            asked_about += 1;
            let adapter = self.gateways.get(p.gateway);
            let asked = Asked {
                payment_id: p.payment_id.clone(),
                txn_ref: txn_ref.clone(),
                queries,
                past_ttl: p.expires_at <= now,
                last_answer: d.last_answer,
                askable: adapter.is_some(),
                window_open: p.gateway.pending_window().is_some_and(|w| now < p.created_at + w),
            };
            let unanswered = |why: String, refused: bool| {
                Job::Unanswered(Unanswered { gateway: p.gateway, asked: asked.clone(), why, refused, at: now })
            };
            let job = match adapter {
                None => unanswered(format!("gateway {} is not enabled on this server", p.gateway), false),
                Some(adapter) => {
                    let target = QueryTarget {
                        txn_ref: txn_ref.clone(),
                        amount: p.amount,
                        created_at: p.created_at,
                        order_info: order_info(p.case_code.as_str()),
                    };
                    match adapter.query(&target).await {
                        Err(e) => {
                            tracing::warn!(payment_id = %p.payment_id, case_code = %p.case_code, %txn_ref, gateway = %p.gateway, error = %e, "status query got no answer; will retry");
                            unanswered(e.to_string(), matches!(e, GatewayError::Refused(_)))
                        }
                        Ok(answer) => {
                            let mut verification = answer.verification;
                            if let Verification::Valid { event: Ok(e), auth } = &verification
                                && e.txn_ref != txn_ref
                            {
                                verification = Verification::Valid {
                                    auth: *auth,
                                    event: Err(Unusable::NotOurs(format!("the answer is about {}", e.txn_ref))),
                                };
                            }
                            Job::Message(Message {
                                callback_id: new_id("cb"),
                                source: Source::StatusQuery,
                                gateway: p.gateway,
                                raw: answer.raw,
                                received_at: self.clock.now(),
                                verification,
                                claimed_txn_ref: Some(txn_ref.clone()),
                                body_length: None,
                                asked: Some(asked.clone()),
                            })
                        }
                    }
                }
            };
            match self.committer.submit(job).await {
                Ok(a) => super::outcome_log::status_query(p.gateway, p.case_code.as_str(), &a),
                Err(e) => {
                    tracing::warn!(payment_id = %p.payment_id, error = %e, "status answer not recorded; will retry")
                }
            }
        }
        Ok(asked_about)
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
            if let Err(e) = self.fetch_receipts_due().await {
                tracing::warn!(error = %e, "gateway receipt round failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_back_off_from_the_minute_to_eight() {
        let m = |n| next_query_interval(Duration::from_secs(900), n).as_secs();
        assert_eq!([m(1), m(2), m(3), m(4), m(5), m(9)], [60, 120, 240, 480, 480, 480]);
        assert_eq!(next_query_interval(Duration::from_millis(200), 2), Duration::from_millis(400));
        let d = |n| next_query_interval_for(Gateway::Dvcqg, Duration::from_secs(900), n).as_secs();
        assert_eq!([d(1), d(4), d(6), d(60)], [60, 480, 1920, 1920]);
        assert_eq!(next_query_interval_for(Gateway::Momo, Duration::from_secs(900), 9).as_secs(), 480);
    }
}
