//! Coverage (`policy check --coverage FROM TO`): for each fee item of the catalogue, the dates in
//! a range on which no base rate is in force (a quote then fails) and those on which no rule of
//! the policy could touch it (a quote then gives the base rate), so a finance office sees the
//! gaps before a citizen does.
//!
//! A rule "touches" an item when its static conditions (authority, category, procedure, fee,
//! excludes, kind) admit it and it is in force; channel, subject and unit conditions are not
//! considered, since they depend on the case. Pure.

use chrono::{NaiveDate, TimeDelta};

use super::quote::FeeEngine;

/// What a gap lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapKind {
    /// No base window of the item covers these dates: quotes fail.
    NoBase,
    /// No rule touches the item on these dates: quotes give the base rate.
    NoRule,
}

/// One uncovered run of dates of one fee item, both bounds inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub procedure: String,
    pub fee: String,
    pub kind: GapKind,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            GapKind::NoBase => "no base rate in force (quotes fail)",
            GapKind::NoRule => "no rule touches it (quotes give the base rate)",
        };
        write!(f, "{} {}: {}..{}: {what}", self.procedure, self.fee, self.from, self.to)
    }
}

/// The runs of `[from, to]` that none of `windows` (inclusive, `None` = open-ended) covers.
fn uncovered(
    from: NaiveDate,
    to: NaiveDate,
    windows: &mut [(NaiveDate, Option<NaiveDate>)],
) -> Vec<(NaiveDate, NaiveDate)> {
    windows.sort();
    let mut gaps = Vec::new();
    let mut next = Some(from); // the first date not yet covered
    for (start, end) in windows.iter() {
        let Some(n) = next else { break };
        if n > to {
            break;
        }
        if *start > n {
            gaps.push((n, (*start - TimeDelta::days(1)).min(to)));
        }
        match end {
            None => next = None,
            Some(e) if *e >= n => next = e.checked_add_signed(TimeDelta::days(1)),
            Some(_) => {}
        }
    }
    if let Some(n) = next
        && n <= to
    {
        gaps.push((n, to));
    }
    gaps
}

impl FeeEngine {
    /// The gaps of every fee item in `[from, to]`, in catalogue order, base gaps first.
    pub fn coverage(&self, from: NaiveDate, to: NaiveDate) -> Vec<Gap> {
        let mut out = Vec::new();
        for (pi, p) in self.catalogue.procedures.iter().enumerate() {
            for (id, entries) in p.items() {
                let mut bases: Vec<_> =
                    entries.iter().map(|i| (p.fees[*i].effective_from, p.fees[*i].effective_to)).collect();
                for (a, b) in uncovered(from, to, &mut bases) {
                    out.push(Gap {
                        procedure: p.code.clone(),
                        fee: id.to_owned(),
                        kind: GapKind::NoBase,
                        from: a,
                        to: b,
                    });
                }
                let mut rules: Vec<_> = entries
                    .iter()
                    .flat_map(|i| self.rules_for(pi, *i))
                    .map(|r| (r.effective_from, r.effective_to))
                    .collect();
                for (a, b) in uncovered(from, to, &mut rules) {
                    out.push(Gap {
                        procedure: p.code.clone(),
                        fee: id.to_owned(),
                        kind: GapKind::NoRule,
                        from: a,
                        to: b,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn uncovered_runs_are_the_complement_of_the_windows() {
        let (from, to) = (d("2024-01-01"), d("2024-12-31"));
        assert_eq!(uncovered(from, to, &mut []), vec![(from, to)]);
        assert_eq!(uncovered(from, to, &mut [(d("2017-01-01"), None)]), vec![]);
        let mut w = [(d("2024-03-01"), Some(d("2024-04-30"))), (d("2024-04-15"), Some(d("2024-06-30")))];
        assert_eq!(uncovered(from, to, &mut w), vec![(from, d("2024-02-29")), (d("2024-07-01"), to)]);
        let mut w = [(d("2025-01-01"), None), (d("2023-01-01"), Some(d("2024-01-31")))];
        assert_eq!(uncovered(from, to, &mut w), vec![(d("2024-02-01"), to)]);
        // A window ending on the last representable date does not overflow.
        let mut w = [(d("2024-06-01"), Some(NaiveDate::MAX))];
        assert_eq!(uncovered(from, to, &mut w), vec![(from, d("2024-05-31"))]);
    }
}
