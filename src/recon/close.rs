//! Closing a (date, gateway) (SPEC §7.2 "Across days", §7.3, §8): only once the date has ended in
//! Asia/Ho_Chi_Minh, when its latest run still matches the data and every exception of it is
//! resolved. One transaction, holding the gateway's events so that nothing commits meanwhile,
//! recomputes the report, gives every event it counts its home date, posts the settlement of each
//! first-occurrence line and the money that follows items classified against another date's
//! counterpart, records the lines it homes without their payment (what later runs still read of
//! it), records the closure with its audit entry, and signs a `close` checkpoint.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use serde_json::json;

use super::{Finance, FinanceError, Planned, Result, RunView, apply_planned};
use crate::domain::BusinessDate;
use crate::domain::ledger::{self, Line, Posting};
use crate::domain::payment::Gateway;
use crate::domain::recon::{ExceptionState, Item, LineStatus};
use crate::reconcile::report::exceptions;
use crate::store::{AuditEvent, ExceptionChange, ExceptionRow};

impl Finance {
    /// `POST /api/v1/days/{date}/close`.
    pub async fn close(&self, date: NaiveDate, gateway: Gateway, actor: &str) -> Result<RunView> {
        let key = self
            .key
            .clone()
            .ok_or_else(|| FinanceError::Internal(anyhow::anyhow!("no ledger key to sign the close with")))?;
        let now = self.clock.now();
        if BusinessDate::of(now).naive() <= date {
            return Err(FinanceError::DayNotOver(format!(
                "{date} has not ended yet in Asia/Ho_Chi_Minh: a date closes once it is over"
            )));
        }
        let mut tx = self.store.write().await?;
        // From here until commit, no payment outcome or settlement line of this gateway commits:
        // what this close reads is what it counts.
        tx.lock_gateway_events(gateway, true).await?;
        if tx.is_closed(date, gateway).await? {
            return Err(FinanceError::DayClosed(format!("{date} for {gateway} is already closed")));
        }
        let run = self
            .store
            .latest_run(date, gateway)
            .await?
            .ok_or_else(|| FinanceError::Conflict(format!("{date} for {gateway} has no reconciliation run yet")))?;
        let text = bumpalo_herd::Herd::new();
        let loaded = self.read_inputs(gateway, date, &text).await?;
        let c = self.compute(&loaded, date, gateway);
        if c.hash != run.report_hash {
            return Err(FinanceError::StaleRun(
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
        if !tx.insert_closure(date, gateway, &run.run_id, actor, now).await? {
            return Err(FinanceError::DayClosed(format!("{date} for {gateway} is already closed")));
        }

        // Money. A counterpart counted on another date loses the money its resolution moved
        // (reversed first); a line that sits in suspense moves to the payment it now settles;
        // each first-occurrence line counted today posts its settlement.
        // Every item, the compact matched ones built back: each first line posts its settlement.
        let all: Vec<Item<'_>> = c.outcome.all_items(loaded.source(gateway, date)).collect();
        let items: HashMap<&str, &Item<'_>> = all.iter().map(|i| (i.key.as_str(), i)).collect();
        let mut planned = Vec::new();
        let mut moves = Vec::new();
        for (item_key, counterpart_key) in &c.outcome.counterparts {
            if let Some(e) = states.get(counterpart_key) {
                planned.extend(self.reverse_counterpart(e, date, item_key).await?);
            }
            let Some(item) = items.get(item_key.as_str()) else { continue };
            if item.line_status.is_none() && item.settled_amount.is_some() {
                moves.push(suspense_to_clearing(gateway, date, item));
            }
        }
        if !apply_planned(&mut tx, planned, &[], now).await? {
            return Err(FinanceError::Conflict("an exception changed meanwhile; close again".into()));
        }
        let settlement: Vec<Posting> =
            all.iter().filter(|i| i.is_first_line()).map(|i| settlement_posting(gateway, date, i)).collect();
        crate::ledger::chain::append_postings(&mut tx, &moves, now).await?;
        crate::ledger::chain::append_postings(&mut tx, &settlement, now).await?;

        // Homes: what today counts is counted on no other date, ever.
        let mut start = date;
        while let Some(before) = start.pred_opt().filter(|d| loaded.closed.contains(d)) {
            start = before;
        }
        let unhomed_payments =
            c.outcome.counted_payments.iter().filter(|i| loaded.payments[**i].home.is_none()).count();
        let homed = tx.home_payments(gateway, start, date).await?;
        let ranges = line_ranges(&loaded, &c.outcome.counted_lines);
        let unhomed_lines: u64 = ranges.iter().map(|(_, a, b)| (b - a + 1) as u64).sum();
        let homed_lines = tx.home_lines(&ranges, date).await?;
        if homed != unhomed_payments as u64 || homed_lines != unhomed_lines {
            // The close counts exactly what its report counted, or nothing.
            return Err(FinanceError::Internal(anyhow::anyhow!(
                "closing {date} for {gateway}: {homed} payment(s) and {homed_lines} line(s) took the date, \
                 the report counts {unhomed_payments} and {unhomed_lines}"
            )));
        }

        // The lines it homes without their payment: what later runs still read of this date.
        let alone = lines_homed_alone(&loaded, &c.outcome.counted_payments, &c.outcome.counted_lines);
        tx.record_lines_homed_alone(gateway, date, &alone).await?;
        if gateway.issues_receipts() {
            // Any payment it homes that no commit expected a receipt of (one paid by a server
            // older than migration 0017) gets its row now: the worker reads only those rows.
            tx.expect_receipts_of_homed(gateway, date, now).await?;
        }

        let audit = AuditEvent::new(
            actor,
            "day.close",
            format!("{date}/{gateway}"),
            json!({"run_id": run.run_id, "postings": settlement.len() + moves.len(), "payments": homed, "lines": homed_lines}),
        );
        crate::ledger::chain::append_audit(&mut tx, &[audit], now).await?;
        crate::ledger::write_checkpoint(&mut tx, &key, "close", date, gateway.as_str(), now).await?;
        tx.commit().await?;
        self.report(date, gateway).await
    }

    /// The reversal of a counterpart's money-moving resolution: its exception keeps its state
    /// and loses its posting (reversed once), dated `date`.
    async fn reverse_counterpart(&self, e: &ExceptionRow, date: NaiveDate, by: &str) -> Result<Option<Planned>> {
        let Some(posting) = self.reversal_of(e, date).await? else { return Ok(None) };
        Ok(Some(Planned {
            change: ExceptionChange {
                keep_posting: false,
                rejection: Some(json!({"reversed": format!("{by}, counted on {date}, is its counterpart")})),
                ..ExceptionChange::of(e, e.state)
            },
            posting: Some(posting),
            records_posting: false,
        }))
    }
}

/// The counted lines of a date as runs of consecutive line numbers of one file, (`import_seq`,
/// first, last): only lines without a home, the ones a close gives one.
fn line_ranges(loaded: &super::run::Loaded<'_>, counted: &[usize]) -> Vec<(i64, i64, i64)> {
    let mut rows: Vec<(i64, i64)> = counted
        .iter()
        .map(|i| &loaded.lines[*i])
        .filter(|l| l.home.is_none())
        .map(|l| (loaded.import_seq(l.file), i64::try_from(l.line_no).unwrap_or(i64::MAX)))
        .collect();
    rows.sort_unstable();
    let mut out: Vec<(i64, i64, i64)> = Vec::new();
    for (f, n) in rows {
        match out.last_mut() {
            Some((lf, _, last)) if *lf == f && *last + 1 == n => *last = n,
            _ => out.push((f, n, n)),
        }
    }
    out
}

/// The counted lines a close homes whose payment (by reference) it does not home, (`import_seq`,
/// line number, `txn_ref`): the payment is unknown, unpaid or counted on another date, so a run
/// of a later date may count it and read the line as its counterpart (SPEC §7.2 "Across days").
fn lines_homed_alone<'l>(
    loaded: &'l super::run::Loaded<'_>,
    payments: &[usize],
    lines: &[usize],
) -> Vec<(i64, i64, &'l str)> {
    let homed: HashSet<&str> = payments.iter().map(|i| loaded.payments[*i].txn_ref).collect();
    lines
        .iter()
        .map(|i| &loaded.lines[*i])
        .filter(|l| l.home.is_none() && !homed.contains(l.txn_ref))
        .map(|l| (loaded.import_seq(l.file), i64::try_from(l.line_no).unwrap_or(i64::MAX), l.txn_ref))
        .collect()
}

/// Dr suspense, Cr clearing: the money of a line that settled into suspense on its own date,
/// moved to the payment it now settles (SPEC §7.2).
fn suspense_to_clearing(gateway: Gateway, date: NaiveDate, i: &Item<'_>) -> Posting {
    let amount = i.settled_amount.unwrap_or(0);
    let memo = format!("settled line of {} now matches its payment", i.txn_ref.unwrap_or(""));
    Posting {
        idem_key: format!("suspense-to-payment:{}", i.key),
        kind: "settlement".into(),
        business_date: date,
        refs: format!("item={};payment={}", i.key, i.payment_id.unwrap_or("")),
        corrects: None,
        lines: vec![
            Line::debit(ledger::SUSPENSE, amount, memo.clone()),
            Line::credit(ledger::clearing(gateway), amount, memo),
        ],
    }
}

/// The settlement posting of a first-occurrence line counted on `date`: success lines Dr bank
/// (amount − fee), Dr gateway fees, Cr the gateway's clearing account, or suspense when the line
/// settles no paid payment; refund lines Dr refunds payable, Cr bank.
pub fn settlement_posting(gateway: Gateway, date: NaiveDate, i: &Item<'_>) -> Posting {
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
        business_date: date,
        refs: format!("item={};payment={}", i.key, i.payment_id.unwrap_or("")),
        corrects: None,
        lines,
    }
}
