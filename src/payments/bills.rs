//! The gateways' own receipts (DVCQG GET_BILL): fetched for each paid payment of a gateway that
//! issues them, kept with the payment's evidence (`store::gateway_receipts`), retried with
//! backoff while the gateway has none yet; and the reverse lookup the DVCQG platform may make,
//! answering what a case owes from the stored case and its quote.

use chrono::TimeDelta;
use sha2::{Digest as _, Sha256};

use super::Service;
use crate::domain::payment::Gateway;
use crate::domain::{CaseCode, Money};
use crate::fees::Facts;
use crate::gateway::{OrderCase, QueryTarget};
use crate::store::ReceiptAttempt;

/// How long after a failed attempt the next one is made: a minute, doubling, at most six hours.
pub fn next_bill_attempt(attempts: i64) -> TimeDelta {
    let minutes = 1i64 << attempts.clamp(0, 9);
    TimeDelta::minutes(minutes.min(360))
}

/// What a case owes, for the reverse lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owed {
    /// The case has a settled payment (paid, waived, budget-covered): nothing to pay.
    Settled,
    /// Nothing is due from the citizen (the quote is 0).
    Nothing,
    /// The citizen owes `total`: the case and the bill's lines, per the case's quote now.
    Bill { case: OrderCase, total: Money },
}

impl Service {
    /// Fetches the receipts due of every gateway that issues them; returns how many were asked.
    pub async fn fetch_receipts_due(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let mut asked = 0;
        for g in Gateway::ALL {
            let Some(adapter) = self.gateways.get(*g).filter(|a| a.issues_receipts()) else { continue };
            for due in self.store.gateway_receipts_due(*g, now, 20).await? {
                asked += 1;
                let target = QueryTarget {
                    txn_ref: due.txn_ref.clone(),
                    amount: Money::ZERO,
                    created_at: due.created_at,
                    order_info: String::new(),
                };
                let attempt = match adapter.fetch_receipt(&target).await {
                    Ok(r) => ReceiptAttempt::Fetched {
                        sha256: hex::encode(Sha256::digest(&r.body)),
                        request: r.request,
                        content_type: r.content_type,
                        body: r.body,
                        source_url: r.url,
                    },
                    Err(e) => {
                        tracing::info!(payment_id = %due.payment_id, gateway = %g, error = %e, "gateway receipt not fetched; will retry");
                        ReceiptAttempt::Failed {
                            request: None,
                            detail: e.to_string(),
                            next_attempt_at: now + next_bill_attempt(due.attempts),
                        }
                    }
                };
                let mut tx = self.store.write().await?;
                tx.record_receipt_attempt(&due.payment_id, *g, &attempt, self.clock.now()).await?;
                tx.commit().await?;
            }
        }
        Ok(asked)
    }

    /// What `case` owes now (the reverse lookup): from the stored case and its quote.
    pub async fn owed(&self, case: &CaseCode) -> anyhow::Result<Option<Owed>> {
        let Some(stored) = self.store.get_case(case).await? else { return Ok(None) };
        if self.store.case_is_settled(case).await? {
            return Ok(Some(Owed::Settled));
        }
        let quote = self.fees.quote(&Facts::of_case(&stored.case))?;
        if quote.citizen_due == Money::ZERO {
            return Ok(Some(Owed::Nothing));
        }
        Ok(Some(Owed::Bill { case: self.order_case(&stored.case, &quote), total: quote.citizen_due }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_are_asked_again_with_backoff_up_to_six_hours() {
        let m = |n| next_bill_attempt(n).num_minutes();
        assert_eq!([m(0), m(1), m(3), m(8), m(9), m(40)], [1, 2, 8, 256, 360, 360]);
    }
}
