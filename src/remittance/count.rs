//! Which revenue entries a remittance period counts, and their sums by budget sub-item (pure).
//!
//! Every revenue entry (`revenue:phi`, `revenue:le_phi`) carries its budget tag: the fee, its
//! budget sub-item and its remittance period kind (`BudgetTag`; entries written before tags
//! existed count as monthly with no sub-item). Its natural period is the period of that kind
//! holding its business date. A period's statement is frozen when its remittance is first
//! requested, at the ledger's last seq then (`through_seq`); an entry written after that for a
//! frozen period is counted in the next period of its kind (its "home"), like SPEC §7.2's events
//! that arrive after their date closed. So a statement never changes once frozen, and every entry
//! is counted in exactly one period: what a frozen statement shows was transferred, and what came
//! later (a late confirmation, a refund decided afterwards) is in the next transfer.
//!
//! The home of an entry: starting at its natural period, move to the next period while the
//! current one is frozen at a seq below the entry's. A frozen period stays frozen (its row is
//! append-only), so an entry's home, once it is a frozen period, never changes.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;

use crate::domain::ledger::kind_of_account;
use crate::domain::remittance::{BudgetTag, Period};
use crate::store::RevenueEntry;

/// A revenue entry as the statements see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub seq: i64,
    pub business_date: NaiveDate,
    /// `phi` or `le_phi`.
    pub kind: &'static str,
    pub tag: BudgetTag,
    /// Credit less debit: what the entry adds to the revenue to remit (negative for a refund).
    pub amount: i64,
}

impl Counted {
    /// `None` for an entry of another account.
    pub fn of(e: &RevenueEntry) -> Option<Self> {
        let kind = kind_of_account(&e.account).filter(|_| e.account.starts_with("revenue:"))?;
        Some(Self {
            seq: e.seq,
            business_date: e.business_date,
            kind,
            tag: BudgetTag::from_refs(&e.refs).unwrap_or_default(),
            amount: e.credit - e.debit,
        })
    }

    /// The period of its kind that holds its business date.
    pub fn natural(&self) -> Period {
        Period::of(self.tag.period, self.business_date)
    }

    /// The period that counts it, given the frozen periods' `through_seq`.
    pub fn home(&self, frozen: &HashMap<Period, i64>) -> Period {
        let mut p = self.natural();
        while frozen.get(&p).is_some_and(|&through| through < self.seq) {
            p = p.next();
        }
        p
    }
}

/// One line of a statement: a fee kind and budget sub-item, with what each fee adds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineSum {
    pub amount: i64,
    /// The part of `amount` from entries of earlier periods (written after those were frozen).
    pub carried_in: i64,
    /// Per fee id (`None`: entries without a tag), in id order.
    pub fees: BTreeMap<Option<String>, i64>,
    pub entries: usize,
}

/// A line's key: fee kind, then sub-item (`None`: revenue without one).
pub type LineKey = (&'static str, Option<String>);

/// The sums by (kind, sub-item) of the entries whose home is `period`, up to `through` (seq).
pub fn lines_of(
    entries: &[Counted],
    period: Period,
    through: i64,
    frozen: &HashMap<Period, i64>,
) -> BTreeMap<LineKey, LineSum> {
    let mut out: BTreeMap<LineKey, LineSum> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.seq <= through && e.tag.period == period.kind()) {
        if e.home(frozen) != period {
            continue;
        }
        let line = out.entry((e.kind, e.tag.budget_subitem.clone())).or_default();
        line.amount += e.amount;
        if e.business_date < period.start() {
            line.carried_in += e.amount;
        }
        *line.fees.entry(e.tag.fee.clone()).or_insert(0) += e.amount;
        line.entries += 1;
    }
    out
}

/// What each period counts: the total of the entries whose home it is.
pub fn totals_by_period(entries: &[Counted], frozen: &HashMap<Period, i64>) -> BTreeMap<Period, i64> {
    let mut out = BTreeMap::new();
    for e in entries {
        *out.entry(e.home(frozen)).or_insert(0) += e.amount;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::remittance::PeriodKind;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn entry(seq: i64, date: &str, kind: &'static str, sub: &str, amount: i64) -> Counted {
        Counted {
            seq,
            business_date: d(date),
            kind,
            tag: BudgetTag {
                fee: Some(format!("f{sub}")),
                budget_subitem: Some(sub.into()),
                period: PeriodKind::Month,
            },
            amount,
        }
    }

    fn p(s: &str) -> Period {
        Period::parse(s).unwrap()
    }

    #[test]
    fn an_entry_reads_its_kind_tag_and_sign_from_the_ledger() {
        let e = RevenueEntry {
            seq: 7,
            business_date: d("2024-07-31"),
            account: "revenue:le_phi".into(),
            debit: 1_000,
            credit: 0,
            refs: "exception=x;fee=a;budget_subitem=2771;remittance_period=week".into(),
        };
        let c = Counted::of(&e).unwrap();
        assert_eq!((c.kind, c.amount, c.tag.period), ("le_phi", -1_000, PeriodKind::Week), "a debit is a refund");
        assert_eq!(c.natural(), p("2024-W31"));
        let untagged = RevenueEntry { refs: "payment=p".into(), debit: 0, credit: 5, ..e.clone() };
        let c = Counted::of(&untagged).unwrap();
        assert_eq!((c.tag.budget_subitem, c.tag.period, c.amount), (None, PeriodKind::Month, 5));
        assert!(Counted::of(&RevenueEntry { account: "remitted:phi".into(), ..e }).is_none());
    }

    #[test]
    fn a_month_sums_by_kind_and_sub_item_net_of_refunds() {
        let es = [
            entry(1, "2024-07-01", "le_phi", "2771", 8_000),
            entry(2, "2024-07-31", "le_phi", "2771", 4_000),
            entry(3, "2024-07-15", "phi", "2627", 500_000),
            entry(4, "2024-07-20", "le_phi", "2771", -4_000),
            entry(5, "2024-08-01", "le_phi", "2771", 9_999),
            entry(6, "2024-06-30", "phi", "2627", 1),
        ];
        let l = lines_of(&es, p("2024-07"), i64::MAX, &HashMap::new());
        let keys: Vec<_> = l.keys().cloned().collect();
        assert_eq!(keys, vec![("le_phi", Some("2771".into())), ("phi", Some("2627".into()))]);
        assert_eq!(l[&("le_phi", Some("2771".into()))].amount, 8_000);
        assert_eq!(l[&("phi", Some("2627".into()))].amount, 500_000);
        // The first and last days belong to their month (+07:00 business dates), no other day.
        assert_eq!(l[&("le_phi", Some("2771".into()))].entries, 3);
    }

    #[test]
    fn an_entry_written_after_its_period_froze_counts_in_the_next() {
        let es = [entry(1, "2024-07-10", "phi", "2627", 100), entry(9, "2024-07-31", "phi", "2627", 50)];
        let frozen = HashMap::from([(p("2024-07"), 5)]);
        assert_eq!(es[0].home(&frozen), p("2024-07"));
        assert_eq!(es[1].home(&frozen), p("2024-08"), "written at seq 9, after July froze at 5");
        let july = lines_of(&es, p("2024-07"), 5, &frozen);
        assert_eq!(july[&("phi", Some("2627".into()))].amount, 100);
        let aug = lines_of(&es, p("2024-08"), i64::MAX, &frozen);
        let line = &aug[&("phi", Some("2627".into()))];
        assert_eq!((line.amount, line.carried_in), (50, 50));
        // August frozen too before it arrived: September.
        let both = HashMap::from([(p("2024-07"), 5), (p("2024-08"), 8)]);
        assert_eq!(es[1].home(&both), p("2024-09"));
        // Not yet frozen when it arrived: its own month stays its home.
        let later = HashMap::from([(p("2024-07"), 12)]);
        assert_eq!(es[1].home(&later), p("2024-07"));
        let t = totals_by_period(&es, &frozen);
        assert_eq!((t[&p("2024-07")], t[&p("2024-08")]), (100, 50));
    }

    #[test]
    fn a_period_counts_only_entries_of_its_kind() {
        let mut weekly = entry(1, "2024-07-24", "le_phi", "2752", 200_000);
        weekly.tag.period = PeriodKind::Week;
        let es = [weekly, entry(2, "2024-07-24", "le_phi", "2771", 8_000)];
        let week = lines_of(&es, p("2024-W30"), i64::MAX, &HashMap::new());
        assert_eq!(week.len(), 1);
        assert_eq!(week[&("le_phi", Some("2752".into()))].amount, 200_000);
        let month = lines_of(&es, p("2024-07"), i64::MAX, &HashMap::new());
        assert_eq!(month.keys().cloned().collect::<Vec<_>>(), vec![("le_phi", Some("2771".into()))]);
    }
}
