//! Closing a (date, gateway) (SPEC §7.3, §8): only when its latest run is current and every
//! exception of it is resolved. The closure, the settlement posting of each first-occurrence
//! line, the signed `close` checkpoint and the audit entry are written in one transaction.

use chrono::NaiveDate;

use super::{Finance, FinanceError, Result, RunView};
use crate::domain::ledger::{self, Line, Posting};
use crate::domain::payment::Gateway;
use crate::domain::recon::{ExceptionState, Item, LineStatus};
use crate::reconcile::report::exceptions;
use crate::store::AuditEvent;

impl Finance {
    /// `POST /api/v1/days/{date}/close`.
    pub async fn close(&self, date: NaiveDate, gateway: Gateway, actor: &str) -> Result<RunView> {
        let key = self
            .key
            .clone()
            .ok_or_else(|| FinanceError::Internal(anyhow::anyhow!("no ledger key to sign the close with")))?;
        if self.store.closure(date, gateway).await?.is_some() {
            return Err(FinanceError::DayClosed(format!("{date} for {gateway} is already closed")));
        }
        let run = self
            .store
            .latest_run(date, gateway)
            .await?
            .ok_or_else(|| FinanceError::Conflict(format!("{date} for {gateway} has no reconciliation run yet")))?;
        let data = self.store.recon_data(gateway).await?;
        let loaded = self.inputs(&data)?;
        let c = self.compute(&loaded, date, gateway);
        if c.hash != run.report_hash {
            return Err(FinanceError::Conflict(
                "payments or settlement lines changed since the last run: run the reconciliation again before closing"
                    .into(),
            ));
        }
        let states = self.states(gateway).await?;
        let unresolved: Vec<&str> = exceptions(&c.outcome)
            .filter(|i| states.get(&i.key).is_none_or(|e| e.state != ExceptionState::Resolved))
            .map(|i| i.key.as_str())
            .collect();
        if !unresolved.is_empty() {
            return Err(FinanceError::Conflict(format!(
                "{} exception(s) are open or pending approval, e.g. {}",
                unresolved.len(),
                unresolved.iter().take(3).copied().collect::<Vec<_>>().join(", ")
            )));
        }
        let postings: Vec<Posting> =
            c.outcome.items.iter().filter(|i| i.is_first_line()).map(|i| settlement_posting(gateway, i)).collect();
        let now = self.clock.now();
        let mut tx = self.store.write().await?;
        if !tx.insert_closure(date, gateway, &run.run_id, actor, now).await? {
            return Err(FinanceError::DayClosed(format!("{date} for {gateway} is already closed")));
        }
        crate::ledger::chain::append_postings(&mut tx, &postings, now).await?;
        let audit = AuditEvent::new(
            actor,
            "day.close",
            format!("{date}/{gateway}"),
            serde_json::json!({"run_id": run.run_id, "postings": postings.len()}),
        );
        crate::ledger::chain::append_audit(&mut tx, &[audit], now).await?;
        crate::ledger::write_checkpoint(&mut tx, &key, "close", date, gateway.as_str(), now).await?;
        tx.commit().await?;
        self.report(date, gateway).await
    }
}

/// The settlement posting of a first-occurrence line: success lines Dr bank (amount − fee),
/// Dr gateway fees, Cr the gateway's clearing account, or suspense when the line settles no paid
/// payment; refund lines Dr refunds payable, Cr bank.
pub fn settlement_posting(gateway: Gateway, i: &Item<'_>) -> Posting {
    let amount = i.settled_amount.unwrap_or(0);
    let fee = i.fee.unwrap_or(0);
    let no = i.gateway_txn_no.unwrap_or("");
    let status = i.line_status.unwrap_or(LineStatus::Success);
    let memo = format!("settlement {no} ({})", i.txn_ref.unwrap_or(""));
    let lines = if status == LineStatus::Refund {
        vec![
            Line::debit(ledger::REFUNDS_PAYABLE, amount, memo.clone()),
            Line::credit(ledger::bank(gateway), amount, memo),
        ]
    } else {
        let mut l = vec![Line::debit(ledger::bank(gateway), amount - fee, memo.clone())];
        if fee > 0 {
            l.push(Line::debit(ledger::GATEWAY_FEES, fee, memo.clone()));
        }
        let cr = if i.settles_payment { ledger::clearing(gateway) } else { ledger::SUSPENSE.to_owned() };
        l.push(Line::credit(cr, amount, memo));
        l
    };
    Posting {
        idem_key: format!("settle:{gateway}:{no}:{status}"),
        kind: "settlement".into(),
        business_date: i.business_date,
        refs: format!("item={};payment={}", i.key, i.payment_id.unwrap_or("")),
        corrects: None,
        lines,
    }
}
