//! A period's remittance statement (pure): the data of the C1-02/NS transfers that move the
//! period's collected fees to the State Treasury (../shared/reference/after-collection.md §2.2
//! [S: the form's fields]): the payer, the account debited, and per transfer the target account
//! and one line per budget sub-item with its amount, sub-item and chapter; with the period's
//! deadlines and where its remittance stands.
//!
//! phí and lệ phí go to different accounts (phí to the fee account awaiting the budget; lệ phí
//! to the lệ phí account awaiting the budget or straight to the budget's revenue account, NĐ
//! 120/2016 Art. 3(2)(a) as amended by NĐ 82/2023) [S], so a statement holds one transfer per
//! fee kind that has money. Lệ phí are remitted in full; phí in full too here, as a state agency
//! that is not cost-contracting does (Art. 4–5) [S]; a retention rate is not modelled [I: the
//! province's units are taken to be state agencies without "khoán chi"].

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use super::count::{LineKey, LineSum};
use crate::config::RemittanceConfig;
use crate::domain::Timestamp;
use crate::domain::remittance::{Deadlines, Period, PeriodKind, RemittanceState, subitem_name};
use crate::store::{FrozenPeriod, RemittanceRow};

/// The transfer form a statement's data fills [S: TT 184/2015 Art. 5(1)(b); the current form
/// number under NĐ 347/2025 was not verified, I].
pub const FORM: &str = "C1-02/NS";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Payer {
    pub name: String,
    pub tax_code: String,
    /// The account debited; `None` when not configured.
    pub account: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FeeAmount {
    /// The catalogue fee id; `None` for revenue written before entries carried their fee.
    pub fee: Option<String>,
    pub amount: i64,
}

/// One line of a transfer: one budget sub-item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Line {
    /// 1, 2, ... within the statement.
    pub no: usize,
    /// "Nội dung khoản nộp": the sub-item's name (or the fee kind) and the period.
    pub content: String,
    /// Tiểu mục; `None` for revenue whose fee has no sub-item in the catalogue.
    pub budget_subitem: Option<String>,
    /// The sub-item's name in the reference's table, when it lists it.
    pub subitem_name: Option<&'static str>,
    /// Mã chương (configuration).
    pub chapter: Option<String>,
    pub amount: i64,
    /// The part of `amount` from earlier periods' entries written after those were frozen.
    pub carried_in: i64,
    pub fees: Vec<FeeAmount>,
}

/// One C1-02/NS transfer: the money of one fee kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Transfer {
    /// `phi` or `le_phi`.
    pub fee_kind: &'static str,
    pub form: &'static str,
    pub treasury: Option<String>,
    pub to_account: Option<String>,
    pub lines: Vec<Line>,
    pub total: i64,
}

/// A remittance request and its decision, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RemittanceView {
    pub remittance_id: String,
    pub period: Period,
    pub state: RemittanceState,
    pub amount: i64,
    pub transferred_on: NaiveDate,
    pub reference: String,
    pub note: String,
    pub requested_by: String,
    pub requested_at: Timestamp,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
    pub decision_note: Option<String>,
    pub posting_id: Option<String>,
}

impl From<&RemittanceRow> for RemittanceView {
    fn from(r: &RemittanceRow) -> Self {
        Self {
            remittance_id: r.remittance_id.clone(),
            period: r.period,
            state: r.state,
            amount: r.amount,
            transferred_on: r.transferred_on,
            reference: r.reference.clone(),
            note: r.note.clone(),
            requested_by: r.requested_by.clone(),
            requested_at: r.requested_at,
            decided_by: r.decided_by.clone(),
            decided_at: r.decided_at,
            decision_note: r.decision_note.clone(),
            posting_id: r.posting_id.clone(),
        }
    }
}

/// When and by whom a statement was frozen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Frozen {
    pub at: Timestamp,
    pub by: String,
}

/// Where a period's remittance stands. `due` is the statement's total; `remitted` what a
/// recorded remittance transferred; `late` when the deposit deadline passed with money
/// outstanding, or the recorded transfer was made after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Standing {
    pub due: i64,
    pub remitted: i64,
    pub outstanding: i64,
    pub late: bool,
}

impl Standing {
    pub fn of(due: i64, deadlines: Deadlines, recorded: Option<&RemittanceRow>, today: NaiveDate) -> Self {
        let remitted = recorded.map_or(0, |r| r.amount);
        let outstanding = due - remitted;
        let late = match recorded {
            Some(r) => r.transferred_on > deadlines.deposit_by,
            None => outstanding > 0 && today > deadlines.deposit_by,
        };
        Self { due, remitted, outstanding, late }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Statement {
    pub period: Period,
    pub period_kind: PeriodKind,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The period in words for the transfer's content (`tháng 07/2024`).
    pub label: String,
    pub deadlines: Deadlines,
    /// The ledger's last seq the statement reads: the freeze's, or the head now.
    pub through_seq: i64,
    /// `None` while no remittance was requested: the figures may still grow.
    pub frozen: Option<Frozen>,
    pub payer: Payer,
    pub chapter: Option<String>,
    pub transfers: Vec<Transfer>,
    pub total: i64,
    pub carried_in: i64,
    #[serde(flatten)]
    pub standing: Standing,
    /// The pending or recorded remittance, if any.
    pub remittance: Option<RemittanceView>,
    /// Every request of the period, rejected ones included, in order.
    pub history: Vec<RemittanceView>,
    /// What the transfers lack (configuration, sub-items).
    pub warnings: Vec<String>,
}

fn kind_words(kind: &str) -> &'static str {
    if kind == "phi" { "Phí" } else { "Lệ phí" }
}

/// The statement of `period` from its lines (`count::lines_of`).
#[allow(clippy::too_many_arguments)]
pub fn build(
    period: Period,
    lines: &BTreeMap<LineKey, LineSum>,
    through_seq: i64,
    frozen: Option<&FrozenPeriod>,
    payer: Payer,
    settings: &RemittanceConfig,
    history: &[RemittanceRow],
    today: NaiveDate,
) -> Statement {
    let mut warnings = Vec::new();
    let mut transfers: Vec<Transfer> = Vec::new();
    let mut no = 0;
    // By kind, then sub-item, revenue without a sub-item last.
    let mut ordered: Vec<(&LineKey, &LineSum)> = lines.iter().collect();
    ordered.sort_by_key(|((kind, sub), _)| (*kind, sub.is_none(), sub.clone()));
    for ((kind, sub), sum) in ordered {
        if sum.amount == 0 {
            continue;
        }
        let pos = match transfers.iter().position(|t| t.fee_kind == *kind) {
            Some(i) => i,
            None => {
                let to_account =
                    if *kind == "phi" { settings.phi_account.clone() } else { settings.le_phi_account.clone() };
                transfers.push(Transfer {
                    fee_kind: kind,
                    form: FORM,
                    treasury: settings.treasury.clone(),
                    to_account,
                    lines: vec![],
                    total: 0,
                });
                transfers.len() - 1
            }
        };
        no += 1;
        let name = sub.as_deref().and_then(subitem_name);
        let what = name.map_or_else(|| kind_words(kind).to_owned(), str::to_owned);
        if sub.is_none() {
            warnings.push(format!(
                "{} đồng of {kind} carry no budget sub-item (fees without budget_subitem in the catalogue, or entries written before entries carried one)",
                sum.amount
            ));
        }
        let t = &mut transfers[pos];
        t.total += sum.amount;
        t.lines.push(Line {
            no,
            content: format!("Nộp {} {}", what, period.label_vi()),
            budget_subitem: sub.clone(),
            subitem_name: name,
            chapter: settings.chapter.clone(),
            amount: sum.amount,
            carried_in: sum.carried_in,
            fees: sum.fees.iter().map(|(fee, amount)| FeeAmount { fee: fee.clone(), amount: *amount }).collect(),
        });
    }
    let total = transfers.iter().map(|t| t.total).sum();
    let carried_in = lines.values().map(|l| l.carried_in).sum();
    for (missing, variable) in [
        (settings.chapter.is_none(), "FEERECON_REMITTANCE_CHAPTER"),
        (settings.payer_account.is_none(), "FEERECON_REMITTANCE_PAYER_ACCOUNT"),
        (settings.treasury.is_none(), "FEERECON_REMITTANCE_TREASURY"),
        (
            transfers.iter().any(|t| t.fee_kind == "phi") && settings.phi_account.is_none(),
            "FEERECON_REMITTANCE_PHI_ACCOUNT",
        ),
        (
            transfers.iter().any(|t| t.fee_kind == "le_phi") && settings.le_phi_account.is_none(),
            "FEERECON_REMITTANCE_LE_PHI_ACCOUNT",
        ),
    ] {
        if missing {
            warnings.push(format!("{variable} is not set"));
        }
    }
    if total < 0 {
        warnings.push("refunds exceed collections: nothing to remit for this period".into());
    }
    let live = history.iter().rev().find(|r| r.state != RemittanceState::Rejected);
    let recorded = live.filter(|r| r.state == RemittanceState::Recorded);
    let deadlines = period.deadlines();
    Statement {
        period,
        period_kind: period.kind(),
        from: period.start(),
        to: period.end(),
        label: period.label_vi(),
        deadlines,
        through_seq,
        frozen: frozen.map(|f| Frozen { at: f.frozen_at, by: f.frozen_by.clone() }),
        payer: Payer { account: settings.payer_account.clone(), ..payer },
        chapter: settings.chapter.clone(),
        transfers,
        total,
        carried_in,
        standing: Standing::of(total, deadlines, recorded, today),
        remittance: live.map(RemittanceView::from),
        history: history.iter().map(RemittanceView::from).collect(),
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn row(state: RemittanceState, on: &str, amount: i64) -> RemittanceRow {
        RemittanceRow {
            remittance_id: "rmt_1".into(),
            period: Period::parse("2024-07").unwrap(),
            state,
            amount,
            transferred_on: d(on),
            reference: "UNC 12".into(),
            note: String::new(),
            requested_by: "f1".into(),
            requested_at: Timestamp::parse("2024-08-05T09:00:00+07:00").unwrap(),
            decided_by: None,
            decided_at: None,
            decision_note: None,
            posting_id: None,
        }
    }

    #[test]
    fn lateness_is_judged_against_the_deposit_deadline() {
        // July 2024: deposit by Monday 5 August (NĐ 120/2016 Art. 3(2) as amended; fee circulars).
        let dl = Period::parse("2024-07").unwrap().deadlines();
        assert!(!Standing::of(100, dl, None, d("2024-08-05")).late, "the deadline day itself is on time");
        assert!(Standing::of(100, dl, None, d("2024-08-06")).late);
        assert!(!Standing::of(0, dl, None, d("2024-09-01")).late, "nothing due is never late");
        let on_time = row(RemittanceState::Recorded, "2024-08-05", 100);
        let s = Standing::of(100, dl, Some(&on_time), d("2024-12-01"));
        assert_eq!((s.remitted, s.outstanding, s.late), (100, 0, false));
        let late = row(RemittanceState::Recorded, "2024-08-06", 100);
        assert!(Standing::of(100, dl, Some(&late), d("2024-08-06")).late);
    }

    #[test]
    fn a_statement_holds_one_transfer_per_fee_kind_with_a_line_per_sub_item() {
        let mut lines = BTreeMap::new();
        let sum = |amount: i64, fee: &str| LineSum {
            amount,
            carried_in: 0,
            fees: BTreeMap::from([(Some(fee.to_owned()), amount)]),
            entries: 1,
        };
        lines.insert(("le_phi", Some("2771".to_owned())), sum(12_000, "le_phi_ket_hon"));
        lines.insert(("le_phi", None), sum(5, "x"));
        lines.insert(("phi", Some("2627".to_owned())), sum(500_000, "phi_tham_dinh"));
        lines.insert(("phi", Some("2716".to_owned())), sum(0, "zero"));
        let settings = RemittanceConfig { chapter: Some("418".into()), ..RemittanceConfig::default() };
        let payer = Payer { name: "Sở".into(), tax_code: "2600123456".into(), account: None };
        let p = Period::parse("2024-07").unwrap();
        let s = build(p, &lines, 42, None, payer, &settings, &[], d("2024-08-01"));
        assert_eq!(s.total, 512_005);
        assert_eq!(s.transfers.len(), 2);
        assert_eq!((s.transfers[0].fee_kind, s.transfers[0].total), ("le_phi", 12_005));
        assert_eq!(s.transfers[1].lines.len(), 1, "a line of 0 is left out");
        let l = &s.transfers[0].lines[0];
        assert_eq!(l.content, "Nộp Lệ phí hộ tịch tháng 07/2024");
        assert_eq!((l.chapter.as_deref(), l.budget_subitem.as_deref()), (Some("418"), Some("2771")));
        assert_eq!(s.transfers[0].lines[1].content, "Nộp Lệ phí tháng 07/2024");
        assert!(s.warnings.iter().any(|w| w.contains("carry no budget sub-item")), "{:?}", s.warnings);
        assert!(s.warnings.iter().any(|w| w == "FEERECON_REMITTANCE_PHI_ACCOUNT is not set"));
        assert!(!s.warnings.iter().any(|w| w.contains("CHAPTER")));
        assert_eq!((s.deadlines.deposit_by, s.standing.outstanding), (d("2024-08-05"), 512_005));
    }
}
