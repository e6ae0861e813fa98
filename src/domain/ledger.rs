//! Ledger vocabulary and the postings money events make (SPEC §8). Pure.
//!
//! A `Posting` is a balanced set of `Line`s: the sum of debits equals the sum of credits, each
//! line is a debit or a credit (or a zero line, which records a waiver with its basis). Builders
//! here turn a payment event into its posting; the store appends it to the hash chain.
//! `EntryFields::canonical` is the exact byte string each entry's hash covers (README "The ledger").

use chrono::NaiveDate;
use serde::Serialize;

use super::Money;
use super::payment::Gateway;
use super::remittance::BudgetTag;

pub const REVENUE_PHI: &str = "revenue:phi";
pub const REVENUE_LE_PHI: &str = "revenue:le_phi";
pub const BUDGET_RECEIVABLE: &str = "budget_receivable";
pub const GATEWAY_FEES: &str = "gateway_fees";
pub const REFUNDS_PAYABLE: &str = "refunds_payable";
pub const WRITE_OFFS: &str = "write_offs";
pub const SUSPENSE: &str = "suspense";
/// Fees remitted to the State Treasury for the budget (issue 19), by kind: debited when a
/// remittance is recorded, so `revenue:<kind>` less `remitted:<kind>` is what was collected and
/// not yet remitted.
pub const REMITTED_PHI: &str = "remitted:phi";
pub const REMITTED_LE_PHI: &str = "remitted:le_phi";
/// The money the collecting organisation transferred to the treasury for those remittances
/// (credited): with `bank:*` it gives what the collection accounts still hold.
pub const TREASURY_TRANSFERS: &str = "treasury_transfers";

pub fn clearing(g: Gateway) -> String {
    format!("gateway_clearing:{g}")
}

pub fn bank(g: Gateway) -> String {
    format!("bank:{g}")
}

/// The revenue account of a fee kind (`phi` or `le_phi`).
pub fn revenue(kind: &str) -> &'static str {
    if kind == "phi" { REVENUE_PHI } else { REVENUE_LE_PHI }
}

/// The remitted account of a fee kind (`phi` or `le_phi`).
pub fn remitted(kind: &str) -> &'static str {
    if kind == "phi" { REMITTED_PHI } else { REMITTED_LE_PHI }
}

/// The fee kind of a revenue or remitted account: `phi` or `le_phi`; `None` for other accounts.
pub fn kind_of_account(account: &str) -> Option<&'static str> {
    match account {
        REVENUE_PHI | REMITTED_PHI => Some("phi"),
        REVENUE_LE_PHI | REMITTED_LE_PHI => Some("le_phi"),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Line {
    pub account: String,
    pub debit: i64,
    pub credit: i64,
    pub memo: String,
    /// On revenue and remitted lines: the fee, its budget sub-item and remittance period,
    /// appended to the entry's `refs` (`BudgetTag::append_to`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<BudgetTag>,
}

impl Line {
    pub fn debit(account: impl Into<String>, amount: i64, memo: impl Into<String>) -> Self {
        Self { account: account.into(), debit: amount, credit: 0, memo: memo.into(), tag: None }
    }
    pub fn credit(account: impl Into<String>, amount: i64, memo: impl Into<String>) -> Self {
        Self { account: account.into(), debit: 0, credit: amount, memo: memo.into(), tag: None }
    }
    /// The line with `tag` (or none).
    #[must_use]
    pub fn tagged(mut self, tag: Option<BudgetTag>) -> Self {
        self.tag = tag;
        self
    }
}

/// A posting to append. Invariant (checked by `is_balanced`, and again by the database):
/// every amount is ≥ 0, no line is both debit and credit, debits sum to credits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Posting {
    /// Unique per money event (`confirm:<payment_id>`, `settle:<g>:<no>:<status>`): writing the
    /// same key twice is refused, so an event is posted once.
    pub idem_key: String,
    pub kind: String,
    pub business_date: NaiveDate,
    /// What it concerns: `payment=...;callback_sha256=...`.
    pub refs: String,
    /// The posting this one corrects, if any.
    pub corrects: Option<String>,
    pub lines: Vec<Line>,
}

impl Posting {
    pub fn total(&self) -> i64 {
        self.lines.iter().map(|l| l.debit).sum()
    }

    pub fn is_balanced(&self) -> bool {
        !self.lines.is_empty()
            && self.lines.iter().all(|l| l.debit >= 0 && l.credit >= 0 && (l.debit == 0 || l.credit == 0))
            && self.lines.iter().map(|l| l.debit).sum::<i64>() == self.lines.iter().map(|l| l.credit).sum::<i64>()
    }
}

/// Removes what cannot appear in a canonical field: line breaks and other control characters.
pub fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// The fields of a ledger entry that its hash covers, in the order they are written.
/// Fields never contain control characters (`clean`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryFields<'a> {
    pub seq: i64,
    pub business_date: NaiveDate,
    pub posting_id: &'a str,
    pub kind: &'a str,
    pub line_no: i64,
    pub account: &'a str,
    pub debit: i64,
    pub credit: i64,
    pub memo: &'a str,
    pub refs: &'a str,
}

impl EntryFields<'_> {
    /// The bytes the entry's hash covers: its fields, each followed by a line feed, in the
    /// order `seq, business_date, posting_id, kind, line_no, account, debit, credit, memo, refs`.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            64 + self.posting_id.len() + self.kind.len() + self.account.len() + self.memo.len() + self.refs.len(),
        );
        self.canonical_into(&mut out);
        out
    }

    /// `canonical`, appended to `out` (verification reuses one buffer for a million entries).
    pub fn canonical_into(&self, out: &mut Vec<u8>) {
        // Integers through `itoa` (the same digits `Display` writes, without the formatter).
        let mut n = itoa::Buffer::new();
        let field = |out: &mut Vec<u8>, bytes: &[u8]| {
            out.extend_from_slice(bytes);
            out.push(b'\n');
        };
        field(out, n.format(self.seq).as_bytes());
        field(out, &iso_date(self.business_date));
        field(out, self.posting_id.as_bytes());
        field(out, self.kind.as_bytes());
        field(out, n.format(self.line_no).as_bytes());
        field(out, self.account.as_bytes());
        field(out, n.format(self.debit).as_bytes());
        field(out, n.format(self.credit).as_bytes());
        field(out, self.memo.as_bytes());
        field(out, self.refs.as_bytes());
    }
}

/// `YYYY-MM-DD` for years 0 to 9999 (what `%Y-%m-%d` writes for them), without a format parser.
pub fn iso_date(d: NaiveDate) -> [u8; 10] {
    use chrono::Datelike as _;
    let (y, m, day) = (d.year().clamp(0, 9999) as u32, d.month(), d.day());
    let digit = |v: u32| b'0' + (v % 10) as u8;
    [
        digit(y / 1000),
        digit(y / 100),
        digit(y / 10),
        digit(y),
        b'-',
        digit(m / 10),
        digit(m),
        b'-',
        digit(day / 10),
        digit(day),
    ]
}

/// Cumulative debit and credit per account, by account name.
pub type Totals = std::collections::BTreeMap<String, (i64, i64)>;

/// `account=debit/credit;...` in account order: how totals are written in a signed checkpoint.
pub fn totals_canonical(t: &Totals) -> String {
    t.iter().map(|(a, (d, c))| format!("{a}={d}/{c}")).collect::<Vec<_>>().join(";")
}

/// The kind of the checkpoint an export signs over its own last entry (SPEC §8): carried in the
/// manifest, never stored. Its business date is the export's `to`, its gateway
/// `EXPORT_CHECKPOINT_GATEWAY` and its time the last entry's (its posting's), so that two exports
/// of the same range are the same bytes.
pub const EXPORT_CHECKPOINT: &str = "export";
/// The gateway of an export checkpoint: it covers every gateway.
pub const EXPORT_CHECKPOINT_GATEWAY: &str = "*";

/// The bytes a checkpoint's Ed25519 signature covers (README "The ledger"): a version line, then
/// kind (`close`, `end_of_day` or `export`), business date, gateway (empty for end of day, `*`
/// for an export), last seq, head hash, totals and the time it was written (RFC 3339 UTC,
/// microseconds; an export's is its last entry's), each followed by a line feed.
#[allow(clippy::too_many_arguments)]
pub fn checkpoint_message(
    kind: &str,
    business_date: NaiveDate,
    gateway: &str,
    last_seq: i64,
    head_hash: &str,
    totals: &Totals,
    created_at: &chrono::DateTime<chrono::Utc>,
) -> Vec<u8> {
    format!(
        "feerecon-ledger-checkpoint-v1\n{kind}\n{}\n{gateway}\n{last_seq}\n{head_hash}\n{}\n{}\n",
        business_date.format("%Y-%m-%d"),
        totals_canonical(totals),
        created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    )
    .into_bytes()
}

/// One quote item, as postings need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotedItem {
    pub fee: String,
    /// `phi` or `le_phi`.
    pub kind: String,
    pub citizen_due: i64,
    pub budget_due: i64,
    /// `rule: basis` when a rule decided the item.
    pub basis: Option<String>,
    /// `rule: basis` of the support rule whose budget pays `budget_due`, when one applies.
    pub support: Option<String>,
    /// The fee's budget sub-item and remittance period from the catalogue
    /// (`fees::stored::tagged_items`); `None` when read without the catalogue.
    pub tag: Option<BudgetTag>,
}

impl QuotedItem {
    /// The memo of the budget part's lines: the support rule that puts it on the budget.
    fn budget_memo(&self) -> String {
        match &self.support {
            Some(s) => format!("{} budget part: {s}", self.fee),
            None => format!("{} budget part", self.fee),
        }
    }
}

/// The posting of a confirmed payment: Dr clearing the amount; Cr revenue by the quote's kinds
/// for `citizen_due`, any difference to suspense; a flagged duplicate Cr refunds payable
/// instead. When the quote has a budget part (and the payment is not a duplicate), Dr budget
/// receivable, Cr revenue.
pub fn payment_confirmed(
    gateway: Gateway,
    payment_id: &str,
    amount: Money,
    items: &[QuotedItem],
    duplicate: bool,
    business_date: NaiveDate,
    refs: String,
) -> Posting {
    let amount = amount.dong();
    let mut lines = vec![Line::debit(clearing(gateway), amount, format!("payment {payment_id}"))];
    if duplicate {
        lines.push(Line::credit(REFUNDS_PAYABLE, amount, format!("duplicate payment {payment_id}: to refund")));
    } else {
        let mut citizen = 0;
        for i in items.iter().filter(|i| i.citizen_due > 0) {
            lines.push(
                Line::credit(revenue(&i.kind), i.citizen_due, format!("{} citizen part", i.fee)).tagged(i.tag.clone()),
            );
            citizen += i.citizen_due;
        }
        match amount - citizen {
            0 => {}
            d if d > 0 => lines.push(Line::credit(SUSPENSE, d, "paid more than citizen_due")),
            d => lines.push(Line::debit(SUSPENSE, -d, "paid less than citizen_due")),
        }
        for i in items.iter().filter(|i| i.budget_due > 0) {
            lines.push(Line::debit(BUDGET_RECEIVABLE, i.budget_due, i.budget_memo()));
            lines.push(Line::credit(revenue(&i.kind), i.budget_due, i.budget_memo()).tagged(i.tag.clone()));
        }
    }
    Posting {
        idem_key: format!("confirm:{payment_id}"),
        kind: "payment_confirmed".into(),
        business_date,
        refs,
        corrects: None,
        lines,
    }
}

/// Lines moving `amount` of `kind`'s revenue (a debit when `debit`, else a credit): split over
/// the items of that kind in proportion to their citizen parts, each line carrying its item's
/// tag, the remainder of the division on the last; one untagged line when no item of that kind
/// has a citizen part. A refund takes revenue back from the sub-items that earned it.
pub fn revenue_lines(kind: &str, amount: i64, items: &[QuotedItem], debit: bool, memo: &str) -> Vec<Line> {
    let line = |a: i64, tag: Option<BudgetTag>| {
        let l = if debit { Line::debit(revenue(kind), a, memo) } else { Line::credit(revenue(kind), a, memo) };
        l.tagged(tag)
    };
    if amount == 0 {
        return vec![];
    }
    let mine: Vec<&QuotedItem> = items.iter().filter(|i| i.kind == kind && i.citizen_due > 0).collect();
    let total: i64 = mine.iter().map(|i| i.citizen_due).sum();
    if mine.is_empty() || total <= 0 {
        return vec![line(amount, None)];
    }
    let mut out = Vec::with_capacity(mine.len());
    let mut left = amount;
    for (k, i) in mine.iter().enumerate() {
        let share = if k + 1 == mine.len() {
            left
        } else {
            i64::try_from(i128::from(amount) * i128::from(i.citizen_due) / i128::from(total)).unwrap_or(0)
        };
        left -= share;
        if share != 0 {
            out.push(line(share, i.tag.clone()));
        }
    }
    out
}

/// The posting of a case nobody pays for (`waived`) or the budget pays for (`budget_covered`):
/// Dr budget receivable, Cr revenue for the budget part; a zero line with its basis for each
/// waived item; one zero line when the case owes no item at all (an on-time birth registration,
/// whose only item requires a late registration).
pub fn settled_without_gateway(
    payment_id: &str,
    items: &[QuotedItem],
    business_date: NaiveDate,
    refs: String,
) -> Posting {
    let mut lines = Vec::new();
    for i in items {
        if i.budget_due > 0 {
            lines.push(Line::debit(BUDGET_RECEIVABLE, i.budget_due, i.budget_memo()));
            lines.push(Line::credit(revenue(&i.kind), i.budget_due, i.budget_memo()).tagged(i.tag.clone()));
        } else if i.citizen_due == 0 {
            let basis = i.basis.as_deref().unwrap_or("no rule");
            lines.push(Line::credit(revenue(&i.kind), 0, format!("{} waived: {basis}", i.fee)).tagged(i.tag.clone()));
        }
    }
    if lines.is_empty() {
        lines.push(Line::credit(revenue("le_phi"), 0, "no fee item applies to this case"));
    }
    let kind = if items.iter().any(|i| i.budget_due > 0) { "budget_covered" } else { "waiver" };
    Posting {
        idem_key: format!("settle-no-gateway:{payment_id}"),
        kind: kind.into(),
        business_date,
        refs,
        corrects: None,
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn iso_date_writes_what_chrono_writes(days in 0i64..3_652_000) {
            let date = NaiveDate::from_ymd_opt(0, 1, 1).unwrap() + chrono::TimeDelta::days(days);
            proptest::prop_assert_eq!(
                String::from_utf8(iso_date(date).to_vec()).unwrap(),
                date.format("%Y-%m-%d").to_string()
            );
        }
    }

    fn d() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 7, 15).unwrap()
    }

    fn item(fee: &str, kind: &str, c: i64, b: i64) -> QuotedItem {
        QuotedItem {
            fee: fee.into(),
            kind: kind.into(),
            citizen_due: c,
            budget_due: b,
            basis: Some("R: basis".into()),
            support: (b > 0).then(|| "S: support basis".into()),
            tag: Some(BudgetTag {
                fee: Some(fee.into()),
                budget_subitem: Some(if kind == "phi" { "2627" } else { "2771" }.into()),
                period: crate::domain::remittance::PeriodKind::Month,
            }),
        }
    }

    #[test]
    fn revenue_lines_carry_their_items_tags_and_split_by_citizen_part() {
        let items = [item("a", "le_phi", 10_000, 0), item("b", "phi", 30_000, 0), item("c", "phi", 60_000, 0)];
        let l = revenue_lines("phi", 1_000, &items, true, "refund");
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].debit, l[1].debit), (333, 667), "the remainder on the last");
        assert_eq!(l[0].tag.as_ref().unwrap().fee.as_deref(), Some("b"));
        assert!(l.iter().all(|x| x.account == REVENUE_PHI));
        let c = revenue_lines("le_phi", 500, &items, false, "m");
        assert_eq!((c[0].credit, c[0].tag.as_ref().unwrap().budget_subitem.as_deref()), (500, Some("2771")));
        // No item of that kind: one untagged line; nothing to move: no line.
        let none = revenue_lines("le_phi", 7, &items[1..], true, "m");
        assert_eq!((none.len(), none[0].debit, none[0].tag.is_none()), (1, 7, true));
        assert!(revenue_lines("phi", 0, &items, true, "m").is_empty());
    }

    #[test]
    fn confirmed_revenue_carries_the_budget_tag_and_other_lines_none() {
        let p = payment_confirmed(
            Gateway::Vnpay,
            "pay_1",
            Money::new(5_000).unwrap(),
            &[item("a", "le_phi", 4_000, 2_000)],
            false,
            d(),
            String::new(),
        );
        let tagged: Vec<&str> = p.lines.iter().filter(|l| l.tag.is_some()).map(|l| l.account.as_str()).collect();
        assert_eq!(tagged, vec![REVENUE_LE_PHI, REVENUE_LE_PHI], "the citizen and the budget part");
        assert_eq!(kind_of_account(REMITTED_PHI), Some("phi"));
        assert_eq!(kind_of_account(SUSPENSE), None);
    }

    #[test]
    fn a_confirmed_payment_splits_revenue_by_kind_and_balances() {
        let p = payment_confirmed(
            Gateway::Vnpay,
            "pay_1",
            Money::new(575_000).unwrap(),
            &[item("a", "le_phi", 75_000, 0), item("b", "phi", 500_000, 0)],
            false,
            d(),
            String::new(),
        );
        assert!(p.is_balanced());
        assert_eq!(p.lines[0], Line::debit("gateway_clearing:vnpay", 575_000, "payment pay_1"));
        assert_eq!((p.lines[1].account.as_str(), p.lines[1].credit), ("revenue:le_phi", 75_000));
        assert_eq!((p.lines[2].account.as_str(), p.lines[2].credit), ("revenue:phi", 500_000));
        assert_eq!(p.lines.len(), 3);
    }

    #[test]
    fn differences_go_to_suspense_and_duplicates_to_refunds_payable() {
        let over = payment_confirmed(
            Gateway::Momo,
            "p",
            Money::new(10_000).unwrap(),
            &[item("a", "le_phi", 8_000, 0)],
            false,
            d(),
            String::new(),
        );
        assert!(over.is_balanced());
        assert!(over.lines.contains(&Line::credit(SUSPENSE, 2_000, "paid more than citizen_due")));
        let under = payment_confirmed(
            Gateway::Momo,
            "p",
            Money::new(5_000).unwrap(),
            &[item("a", "le_phi", 8_000, 0)],
            false,
            d(),
            String::new(),
        );
        assert!(under.is_balanced());
        let dup = payment_confirmed(
            Gateway::Momo,
            "p",
            Money::new(8_000).unwrap(),
            &[item("a", "le_phi", 8_000, 0)],
            true,
            d(),
            String::new(),
        );
        assert!(dup.is_balanced());
        assert_eq!(dup.lines[1].account, REFUNDS_PAYABLE);
    }

    #[test]
    fn waivers_are_zero_lines_with_their_basis_and_budget_parts_are_receivable() {
        let w = settled_without_gateway("p", &[item("a", "le_phi", 0, 0)], d(), String::new());
        assert!(w.is_balanced());
        assert_eq!((w.kind.as_str(), w.total(), w.lines[0].memo.as_str()), ("waiver", 0, "a waived: R: basis"));
        let b = settled_without_gateway("p", &[item("a", "le_phi", 0, 135_000)], d(), String::new());
        assert!(b.is_balanced());
        assert_eq!((b.kind.as_str(), b.total()), ("budget_covered", 135_000));
        // The budget part names the support rule that put it on the budget.
        assert_eq!(b.lines[0].memo, "a budget part: S: support basis");
        // A case that owes no item still posts one zero line, so the waiver is on the ledger.
        let none = settled_without_gateway("p", &[], d(), String::new());
        assert!(none.is_balanced());
        assert_eq!((none.kind.as_str(), none.lines.len(), none.total()), ("waiver", 1, 0));
    }

    #[test]
    fn the_canonical_entry_is_one_field_per_line() {
        let c = e_fields().canonical();
        assert_eq!(
            String::from_utf8(c).unwrap(),
            "7\n2024-07-15\npst_1\npayment_confirmed\n1\ngateway_clearing:vnpay\n100\n0\nm\npayment=p\n"
        );
        assert_eq!(clean("a\nb\r\tc"), "a b  c");
        // The integers are written as `Display` writes them, at the edges too.
        for (seq, line_no, debit, credit) in [(i64::MAX, -1, i64::MIN, 0), (-42, 0, 9, 1_000_000_007)] {
            let e = EntryFields { seq, line_no, debit, credit, memo: "", refs: "", ..e_fields() };
            let expect = format!(
                "{seq}\n2024-07-15\npst_1\npayment_confirmed\n{line_no}\ngateway_clearing:vnpay\n{debit}\n{credit}\n\n\n"
            );
            assert_eq!(String::from_utf8(e.canonical()).unwrap(), expect);
        }
    }

    fn e_fields() -> EntryFields<'static> {
        EntryFields {
            seq: 7,
            business_date: d(),
            posting_id: "pst_1",
            kind: "payment_confirmed",
            line_no: 1,
            account: "gateway_clearing:vnpay",
            debit: 100,
            credit: 0,
            memo: "m",
            refs: "payment=p",
        }
    }
}
