//! Treasury remittance (issue 19; ../shared/reference/after-collection.md §2): what was collected,
//! by budget sub-item and period, due to the State Treasury by the law's deadlines, and the
//! record of each transfer, posted in the ledger under four eyes.
//!
//! - `count` (pure): which revenue entries a period counts (its own, and those written for an
//!   earlier period after that one was frozen) and their sums by fee kind and sub-item.
//! - `statement` (pure): the C1-02/NS data of a period, its deadlines and where it stands.
//! - `render`: the statement as CSV and XLSX, with the reconciliation report's writers.
//!
//! The figures come from the ledger alone: every revenue entry carries its fee, sub-item and
//! remittance period (`BudgetTag`), so a statement is the ledger's revenue of the period by
//! sub-item, net of refunds decided, budget-covered fees included. A remittance is requested by
//! a finance user, which freezes the period's statement at the ledger's head (`count`), and
//! recorded by another, which posts Dr `remitted:<kind>` per sub-item / Cr `treasury_transfers`
//! (README "Ledger accounts") once per period.

pub mod count;
pub mod render;
pub mod statement;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::json;

use crate::config::RemittanceConfig;
use crate::domain::ledger::{self, Line, Posting};
use crate::domain::remittance::{BudgetTag, Period, PeriodKind, RemittanceState};
use crate::domain::{BusinessDate, Clock, Timestamp, new_id};
use crate::ledger::chain::{AppendError, append_audit, append_postings};
use crate::store::ledger::Chain;
use crate::store::{AuditEvent, FrozenPeriod, RemittanceDecision, RemittanceRow, Store, StoreError};
use count::Counted;
use statement::{Payer, Standing, Statement};

#[derive(Debug, thiserror::Error)]
pub enum RemittanceError {
    /// A request that cannot be acted on as given (422; the message names the field).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The period's state does not allow it (409): not over, already pending or recorded.
    #[error("{0}")]
    Conflict(String),
    /// The requester may not decide their own request (403 `four_eyes_required`).
    #[error("{0}")]
    FourEyes(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for RemittanceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => RemittanceError::Conflict(m),
            other => RemittanceError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<AppendError> for RemittanceError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Store(s) => s.into(),
            other => RemittanceError::Internal(anyhow::Error::new(other)),
        }
    }
}

pub type Result<T, E = RemittanceError> = std::result::Result<T, E>;

/// The revenue accounts statements read.
const REVENUE: [&str; 2] = [ledger::REVENUE_PHI, ledger::REVENUE_LE_PHI];

/// The earliest business date a list reads from (before any ledger).
fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default()
}

/// A request to record a remittance (`POST /api/v1/remittances`).
#[derive(Debug, Clone)]
pub struct Request {
    pub period: String,
    /// Must equal the statement's total: the officer confirms the figure transferred.
    pub amount: i64,
    pub transferred_on: String,
    /// The transfer's number or the treasury's reference.
    pub reference: String,
    pub note: String,
}

/// Which periods a list shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListFilter {
    pub kind: Option<PeriodKind>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// One period in `GET /api/v1/remittances`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PeriodRow {
    pub period: Period,
    pub period_kind: PeriodKind,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub deposit_by: NaiveDate,
    pub pay_in_by: NaiveDate,
    #[serde(flatten)]
    pub standing: Standing,
    /// `open` (nothing requested), `pending_approval` or `recorded`.
    pub state: &'static str,
    pub frozen: bool,
    pub transferred_on: Option<NaiveDate>,
}

/// The remittance service. Cheap to share behind an `Arc`.
pub struct Remittances {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub settings: RemittanceConfig,
    /// The collecting organisation (the receipts' name and tax code): the transfers' payer.
    pub payer: Payer,
}

fn check_text(field: &str, v: &str, max: usize, required: bool) -> Result<String> {
    let v = v.trim();
    if required && v.is_empty() {
        return Err(RemittanceError::Invalid(format!("{field}: is required")));
    }
    if v.chars().count() > max || v.chars().any(|c| c.is_control() || c == ';') {
        return Err(RemittanceError::Invalid(format!("{field}: at most {max} characters, one line, no ';'")));
    }
    Ok(v.to_owned())
}

/// A period from the API or the CLI.
pub fn parse_period(s: &str) -> Result<Period> {
    Period::parse(s).map_err(|e| RemittanceError::Invalid(format!("period: {e}")))
}

impl Remittances {
    fn today(&self) -> NaiveDate {
        BusinessDate::of(self.clock.now()).naive()
    }

    async fn frozen(&self) -> Result<(Vec<FrozenPeriod>, HashMap<Period, i64>)> {
        let rows = self.store.frozen_periods().await?;
        let map = rows.iter().map(|f| (f.period, f.through_seq)).collect();
        Ok((rows, map))
    }

    /// The statement of `period`: frozen if its remittance was requested, else as of now.
    pub async fn statement(&self, period: Period) -> Result<Statement> {
        let (rows, map) = self.frozen().await?;
        let frozen = rows.iter().find(|f| f.period == period);
        let through = match frozen {
            Some(f) => f.through_seq,
            None => self.store.ledger_head().await?.0,
        };
        self.statement_at(period, through, frozen, &map).await
    }

    async fn statement_at(
        &self,
        period: Period,
        through: i64,
        frozen: Option<&FrozenPeriod>,
        map: &HashMap<Period, i64>,
    ) -> Result<Statement> {
        // Entries of earlier periods can only be counted here when the previous period is
        // frozen, and only those written after it froze (`count`).
        let late_after = map.get(&period.prev()).copied().unwrap_or(i64::MAX);
        let entries = self.store.revenue_entries(&REVENUE, period.start(), period.end(), late_after, through).await?;
        let counted: Vec<Counted> = entries.iter().filter_map(Counted::of).collect();
        let lines = count::lines_of(&counted, period, through, map);
        let history = self.store.remittances(Some(period)).await?;
        Ok(statement::build(
            period,
            &lines,
            through,
            frozen,
            self.payer.clone(),
            &self.settings,
            &history,
            self.today(),
        ))
    }

    /// Periods with money or a remittance, with what each owes and where it stands.
    pub async fn list(&self, filter: ListFilter) -> Result<Vec<PeriodRow>> {
        let (rows, map) = self.frozen().await?;
        let last = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or_default();
        let to = filter.to.unwrap_or(last);
        // Every entry, not only those up to `to`: a period that `to` cuts is listed whole, with
        // all it owes.
        let entries = self.store.revenue_entries(&REVENUE, epoch(), last, i64::MAX, i64::MAX).await?;
        let counted: Vec<Counted> = entries.iter().filter_map(Counted::of).collect();
        let mut due = count::totals_by_period(&counted, &map);
        for f in &rows {
            due.entry(f.period).or_insert(0);
        }
        let remittances = self.store.remittances(None).await?;
        let today = self.today();
        let mut out = Vec::new();
        for (period, total) in due {
            let overlaps = filter.from.is_none_or(|f| period.end() >= f) && period.start() <= to;
            if !overlaps || filter.kind.is_some_and(|k| k != period.kind()) {
                continue;
            }
            let live = remittances.iter().rev().find(|r| r.period == period && r.state != RemittanceState::Rejected);
            let recorded = live.filter(|r| r.state == RemittanceState::Recorded);
            let deadlines = period.deadlines();
            out.push(PeriodRow {
                period,
                period_kind: period.kind(),
                from: period.start(),
                to: period.end(),
                deposit_by: deadlines.deposit_by,
                pay_in_by: deadlines.pay_in_by,
                standing: Standing::of(total, deadlines, recorded, today),
                state: live.map_or("open", |r| r.state.as_str()),
                frozen: map.contains_key(&period),
                transferred_on: live.map(|r| r.transferred_on),
            });
        }
        out.sort_by_key(|r| (r.from, r.period_kind));
        Ok(out)
    }

    /// `POST /api/v1/remittances`: a finance user asks to record that the period's statement was
    /// transferred. Freezes the statement (at the ledger's head, the first time); waits for
    /// another finance user (`decide`).
    pub async fn request(&self, req: &Request, actor: &str) -> Result<Statement> {
        let period = parse_period(&req.period)?;
        let on = BusinessDate::parse(&req.transferred_on)
            .map_err(|e| RemittanceError::Invalid(format!("transferred_on: {e}")))?
            .naive();
        let reference = check_text("reference", &req.reference, 100, true)?;
        let note = check_text("note", &req.note, 500, false)?;
        let today = self.today();
        if !period.is_over(today) {
            return Err(RemittanceError::Conflict(format!(
                "{period} ends on {}: its remittance can be recorded from the next day (+07:00)",
                period.end()
            )));
        }
        if on < period.end() || on > today {
            return Err(RemittanceError::Invalid(format!(
                "transferred_on: must be from {} (the period's last day) to {today} (today)",
                period.end()
            )));
        }
        let now = self.clock.now();
        let mut tx = self.store.write().await?;
        let (frozen, through) = match tx.frozen_period(period).await? {
            Some(f) => (f.clone(), f.through_seq),
            None => {
                // The ledger's head, locked: no posting can slip between the seq and the freeze.
                let (head, _) = tx.lock_chain_head(Chain::Ledger).await?;
                let f = FrozenPeriod {
                    period,
                    period_kind: period.kind(),
                    through_seq: head,
                    frozen_at: Timestamp::at(now),
                    frozen_by: actor.to_owned(),
                };
                (f, head)
            }
        };
        let (_, map) = self.frozen().await?;
        let s = self.statement_at(period, through, Some(&frozen), &map).await?;
        if let Some(live) = &s.remittance {
            return Err(RemittanceError::Conflict(format!(
                "{period} already has remittance {} {}: a remittance is recorded once",
                live.remittance_id, live.state
            )));
        }
        if s.total <= 0 {
            return Err(RemittanceError::Invalid(format!("period: {period} has nothing to remit (total {})", s.total)));
        }
        if req.amount != s.total {
            return Err(RemittanceError::Invalid(format!(
                "amount: {period}'s statement totals {} đồng, not {}",
                s.total, req.amount
            )));
        }
        let row = RemittanceRow {
            remittance_id: new_id("rmt"),
            period,
            state: RemittanceState::PendingApproval,
            amount: s.total,
            transferred_on: on,
            reference,
            note,
            requested_by: actor.to_owned(),
            requested_at: Timestamp::at(now),
            decided_by: None,
            decided_at: None,
            decision_note: None,
            posting_id: None,
        };
        tx.freeze_periods(std::slice::from_ref(&frozen)).await?;
        tx.insert_remittances(std::slice::from_ref(&row)).await?;
        let details = json!({"remittance_id": row.remittance_id, "amount": row.amount, "transferred_on": on,
                             "reference": row.reference, "note": row.note, "through_seq": through});
        append_audit(&mut tx, &[AuditEvent::new(actor, "remittance.request", period.to_string(), details)], now)
            .await?;
        tx.commit().await?;
        self.statement(period).await
    }

    /// `POST /api/v1/remittances/{period}/approve` (`approve = true`) or `/reject`, by a finance
    /// user other than the requester. An approval posts the remittance, per sub-item, in the
    /// transaction that records it; the posting's key is the period's, so it is made once.
    pub async fn decide(&self, period: Period, approve: bool, note: Option<&str>, actor: &str) -> Result<Statement> {
        let note = note.map(|n| check_text("note", n, 500, false)).transpose()?;
        let now = self.clock.now();
        let mut tx = self.store.write().await?;
        let Some(pending) = tx.pending_remittance(period).await? else {
            return Err(RemittanceError::Conflict(format!("{period} has no remittance awaiting approval")));
        };
        if pending.requested_by == actor {
            return Err(RemittanceError::FourEyes(format!(
                "{actor} requested remittance {}; another finance user must decide",
                pending.remittance_id
            )));
        }
        let mut decision = RemittanceDecision {
            remittance_id: pending.remittance_id.clone(),
            state: RemittanceState::Rejected,
            decided_by: actor.to_owned(),
            decided_at: Timestamp::at(now),
            decision_note: note.clone(),
            posting_id: None,
        };
        if approve {
            let frozen = tx
                .frozen_period(period)
                .await?
                .ok_or_else(|| anyhow::anyhow!("remittance {} has no frozen period", pending.remittance_id))?;
            let (_, map) = self.frozen().await?;
            let s = self.statement_at(period, frozen.through_seq, Some(&frozen), &map).await?;
            if s.total != pending.amount {
                return Err(anyhow::anyhow!(
                    "{period}'s frozen statement totals {}, its request {}",
                    s.total,
                    pending.amount
                )
                .into());
            }
            let posting = remittance_posting(&s, &pending);
            let ids = append_postings(&mut tx, std::slice::from_ref(&posting), now).await?;
            decision.state = RemittanceState::Recorded;
            decision.posting_id = ids.into_iter().next();
        }
        if !tx.decide_remittances(std::slice::from_ref(&decision)).await? {
            return Err(RemittanceError::Conflict(format!("{period}'s remittance changed meanwhile; look again")));
        }
        let verb = if approve { "approve" } else { "reject" };
        let details = json!({"remittance_id": pending.remittance_id, "amount": pending.amount, "note": note,
                             "posting_id": decision.posting_id});
        append_audit(
            &mut tx,
            &[AuditEvent::new(actor, &format!("remittance.{verb}"), period.to_string(), details)],
            now,
        )
        .await?;
        tx.commit().await?;
        self.statement(period).await
    }
}

/// The posting of a recorded remittance: per statement line, Dr `remitted:<kind>` (Cr for a line
/// whose refunds exceed its collections) tagged with the sub-item; Cr `treasury_transfers` the
/// total. Its business date is the transfer's date.
pub fn remittance_posting(s: &Statement, r: &RemittanceRow) -> Posting {
    let mut lines = Vec::new();
    for t in &s.transfers {
        for l in &t.lines {
            let memo = format!("{} {}: {}", statement::FORM, r.reference, l.content);
            let tag = BudgetTag { fee: None, budget_subitem: l.budget_subitem.clone(), period: s.period_kind };
            let account = ledger::remitted(t.fee_kind);
            let line = if l.amount >= 0 {
                Line::debit(account, l.amount, memo)
            } else {
                Line::credit(account, -l.amount, memo)
            };
            lines.push(line.tagged(Some(tag)));
        }
    }
    lines.push(Line::credit(
        ledger::TREASURY_TRANSFERS,
        s.total,
        format!("{} {} {}", statement::FORM, r.reference, s.label),
    ));
    Posting {
        idem_key: format!("remittance:{}", s.period),
        kind: "remittance".into(),
        business_date: r.transferred_on,
        refs: format!("remittance={};period={};reference={}", r.remittance_id, s.period, r.reference),
        corrects: None,
        lines,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::remittance::count::LineSum;

    /// A recorded remittance posts each statement line to `remitted:<kind>` with its sub-item,
    /// a line whose refunds exceed its collections on the credit side, and the total to
    /// `treasury_transfers`; it balances, is dated the transfer's day and keyed by its period.
    #[test]
    fn a_remittance_posts_each_line_by_sub_item_against_treasury_transfers() {
        let sum = |amount: i64| LineSum { amount, carried_in: 0, fees: BTreeMap::new(), entries: 1 };
        let lines = BTreeMap::from([
            (("le_phi", Some("2771".to_owned())), sum(12_000)),
            (("le_phi", Some("2767".to_owned())), sum(-2_000)),
            (("phi", Some("2627".to_owned())), sum(500_000)),
        ]);
        let period = Period::parse("2024-W30").unwrap();
        let today = NaiveDate::from_ymd_opt(2024, 8, 1).unwrap();
        let payer = Payer { name: "Sở".into(), tax_code: "2600123456".into(), account: None };
        let s = statement::build(period, &lines, 7, None, payer, &RemittanceConfig::default(), &[], today);
        let r = RemittanceRow {
            remittance_id: "rmt_1".into(),
            period,
            state: RemittanceState::PendingApproval,
            amount: s.total,
            transferred_on: today,
            reference: "UNC 7".into(),
            note: String::new(),
            requested_by: "f1".into(),
            requested_at: Timestamp::at(chrono::Utc::now()),
            decided_by: None,
            decided_at: None,
            decision_note: None,
            posting_id: None,
        };
        let p = remittance_posting(&s, &r);
        assert!(p.is_balanced());
        assert_eq!(
            (p.idem_key.as_str(), p.kind.as_str(), p.business_date),
            ("remittance:2024-W30", "remittance", today)
        );
        let shape: Vec<(&str, i64, i64, Option<&str>)> = p
            .lines
            .iter()
            .map(|l| (l.account.as_str(), l.debit, l.credit, l.tag.as_ref().and_then(|t| t.budget_subitem.as_deref())))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("remitted:le_phi", 0, 2_000, Some("2767")),
                ("remitted:le_phi", 12_000, 0, Some("2771")),
                ("remitted:phi", 500_000, 0, Some("2627")),
                ("treasury_transfers", 0, 510_000, None),
            ]
        );
        assert!(
            p.lines[..3]
                .iter()
                .all(|l| l.tag.as_ref().is_some_and(|t| t.period == PeriodKind::Week && t.fee.is_none()))
        );
    }
}
