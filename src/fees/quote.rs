//! The quote (SPEC §5): for each fee item of the procedure, the gross, the rules in force on the
//! as-of date whose conditions all match, the amount each would give, and the winner.
//!
//! Steps per item, each tested: (1) `gross = amount × quantity` for per-unit items; (2) candidates
//! are rules in force on the as-of date (both bounds inclusive) matching every given condition;
//! (3) each gives `(citizen, budget)`, a percentage rounded once by the policy's mode and unit,
//! then clamped so that `0 ≤ citizen + budget ≤ gross`; (4) the winner has the lowest citizen
//! amount, then the lowest budget amount, then comes first in the resolved list. No stacking.
//! Without a candidate the item is `(gross, 0)` with `applied: null`. (5) Support rules (the
//! province's budget pays a share, `payer = "provincial_budget"`) never compete in step 4: they
//! apply to the citizen amount step 4 gave, once, and the item shows the winner as `support`.
//!
//! Before the steps, the catalogue decides which items a case owes: an item whose
//! `requires_facts` the case lacks is not listed, nor a per-unit item that counts no unit; an
//! item owed on a date none of its base windows covers makes the quote an error
//! (`QuoteError::NoBase`), never another date's amount. A rule with a `units` condition matches
//! only a case whose receiving unit is known and matches.

use chrono::NaiveDate;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use serde::ser::Serializer;

use super::catalogue::{Catalogue, FeeItem, FeeKind, Procedure};
use super::policy::{Effect, Policy, Rounding, RoundingMode, Rule, channel_bit, subject_bit};
use crate::domain::{Case, Channel, Fact, Money, ProcedureCode, Subject, UnitCode};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    #[error("procedure {0} is not in the fee catalogue")]
    UnknownProcedure(String),
    #[error("the amount of fee {0} overflows")]
    Overflow(String),
    #[error("procedure {procedure}: no base rate of fee {fee} is in force on {date}; the catalogue must give one")]
    NoBase { procedure: String, fee: String, date: NaiveDate },
}

/// The facts a quote depends on: from a stored case, or given on the command line.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub case_code: Option<&'a str>,
    pub procedure_code: &'a ProcedureCode,
    pub channel: Channel,
    pub subjects: &'a [Subject],
    /// The case's `facts` (e.g. `late_registration`).
    pub case_facts: &'a [Fact],
    /// The receiving unit; `None` (facts given without one) matches no `units` condition.
    pub receiving_unit: Option<&'a UnitCode>,
    pub quantity: u32,
    /// The receipt date in Asia/Ho_Chi_Minh.
    pub as_of: NaiveDate,
}

impl<'a> Facts<'a> {
    /// The facts of a stored case's version.
    pub fn of_case(c: &'a Case) -> Self {
        Facts {
            case_code: Some(c.case_code.as_str()),
            procedure_code: &c.procedure_code,
            channel: c.channel,
            subjects: &c.subjects,
            case_facts: &c.facts,
            receiving_unit: Some(&c.receiving_unit),
            quantity: c.quantity,
            as_of: c.receipt_date().naive(),
        }
    }
}

/// The rule that decided an item.
#[derive(Debug, Clone, Copy)]
pub struct Applied<'a> {
    pub rule: &'a Rule,
}

#[derive(Debug, Clone)]
pub struct QuoteItem<'a> {
    /// The base window in force on the as-of date.
    pub fee: &'a FeeItem,
    /// The units counted for per-unit items (from `per_unit_from` on), 1 otherwise.
    pub quantity: u32,
    /// The reduction, fixed amount or waiver that decided the citizen amount (step 4).
    pub applied: Option<Applied<'a>>,
    /// The support rule whose budget pays part of that amount (step 5).
    pub support: Option<Applied<'a>>,
    pub citizen_due: Money,
    pub budget_due: Money,
    /// Whether the rounding step changed the value.
    pub rounded: bool,
}

/// A quote. Invariants: `citizen_due` and `budget_due` are the sums of the items'; every item has
/// `citizen_due + budget_due ≤ gross`.
#[derive(Debug, Clone)]
pub struct Quote<'a> {
    pub case_code: Option<&'a str>,
    pub procedure_code: &'a str,
    pub as_of: NaiveDate,
    pub policy: &'a Policy,
    pub items: Vec<QuoteItem<'a>>,
    pub citizen_due: Money,
    pub budget_due: Money,
}

impl Quote<'_> {
    /// `citizen_due` per fee kind, in items order: what revenue account each part belongs to.
    pub fn citizen_by_kind(&self, kind: FeeKind) -> Money {
        Money::sum(self.items.iter().filter(|i| i.fee.kind == kind).map(|i| i.citizen_due)).unwrap_or(Money::ZERO)
    }

    /// A human-readable rendering for the command line.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Quote for {}procedure {}, as of {}, policy {} ({})",
            self.case_code.map(|c| format!("case {c}, ")).unwrap_or_default(),
            self.procedure_code,
            self.as_of.format("%Y-%m-%d"),
            self.policy.id,
            self.policy.hash
        );
        for i in &self.items {
            let _ = writeln!(
                out,
                "  {} ({}): base {} × {} → citizen {}, budget {}{}",
                i.fee.id,
                i.fee.kind.as_str(),
                i.fee.amount,
                i.quantity,
                i.citizen_due,
                i.budget_due,
                if i.rounded { " (rounded)" } else { "" }
            );
            let _ = writeln!(out, "      base: {}", i.fee.basis);
            match i.applied {
                Some(a) => {
                    let _ = writeln!(
                        out,
                        "      rule {}: {} — {} [{}]",
                        a.rule.id,
                        a.rule.effect,
                        a.rule.basis,
                        a.rule.basis_status.as_str()
                    );
                }
                None => {
                    let _ = writeln!(out, "      no rule applies: the base rate");
                }
            }
            if let Some(a) = i.support {
                let _ = writeln!(
                    out,
                    "      support {}: {} — {} [{}]",
                    a.rule.id,
                    a.rule.effect,
                    a.rule.basis,
                    a.rule.basis_status.as_str()
                );
            }
        }
        let _ = writeln!(out, "Total: citizen {}, budget {}", self.citizen_due, self.budget_due);
        out
    }

    /// The canonical JSON (SPEC §5): the same facts give the same bytes.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a quote serialises")
    }
}

/// The policy a quote was computed under.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PolicyRef<'a> {
    pub id: &'a str,
    /// `sha256:` and the hex digest of the policy's files.
    pub hash: &'a str,
}

/// A rule that changed an item: its id, legal basis and effect.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AppliedRule<'a> {
    pub rule: &'a str,
    pub basis: &'a str,
    /// `verified`, `unverified` or `placeholder`.
    pub basis_status: &'a str,
    pub effect: String,
}

impl<'a> AppliedRule<'a> {
    fn of(a: Option<Applied<'a>>) -> Option<Self> {
        a.map(|a| AppliedRule {
            rule: &a.rule.id,
            basis: &a.rule.basis,
            basis_status: a.rule.basis_status.as_str(),
            effect: a.rule.effect.to_string(),
        })
    }
}

/// One fee item of a quote.
#[derive(Serialize, utoipa::ToSchema)]
pub struct QuoteItemJson<'a> {
    pub fee: &'a str,
    /// `phi` or `le_phi`.
    pub kind: &'a str,
    /// The counter rate, whole đồng.
    pub base: i64,
    pub quantity: u32,
    pub applied: Option<AppliedRule<'a>>,
    pub support: Option<AppliedRule<'a>>,
    pub citizen_due: i64,
    pub budget_due: i64,
    pub rounded: bool,
}

/// The canonical JSON of a quote (SPEC §5): what `GET /api/v1/cases/{case_code}/fee` answers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct QuoteJson<'a> {
    pub case_code: Option<&'a str>,
    pub procedure_code: &'a str,
    /// The receipt date whose policy applies, YYYY-MM-DD.
    pub as_of: String,
    pub policy: PolicyRef<'a>,
    pub items: Vec<QuoteItemJson<'a>>,
    pub citizen_due: i64,
    pub budget_due: i64,
    /// Always `VND`.
    pub currency: &'a str,
}

impl Serialize for Quote<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let items = self
            .items
            .iter()
            .map(|i| QuoteItemJson {
                fee: &i.fee.id,
                kind: i.fee.kind.as_str(),
                base: i.fee.amount.dong(),
                quantity: i.quantity,
                applied: AppliedRule::of(i.applied),
                support: AppliedRule::of(i.support),
                citizen_due: i.citizen_due.dong(),
                budget_due: i.budget_due.dong(),
                rounded: i.rounded,
            })
            .collect();
        QuoteJson {
            case_code: self.case_code,
            procedure_code: self.procedure_code,
            as_of: self.as_of.format("%Y-%m-%d").to_string(),
            policy: PolicyRef { id: &self.policy.id, hash: &self.policy.hash },
            items,
            citizen_due: self.citizen_due.dong(),
            budget_due: self.budget_due.dong(),
            currency: "VND",
        }
        .serialize(s)
    }
}

/// A checked catalogue and policy, indexed for quoting.
#[derive(Debug, Clone)]
pub struct FeeEngine {
    pub catalogue: Catalogue,
    pub policy: Policy,
    /// For each procedure (catalogue order), for each of its fees, the rules whose static
    /// conditions (authority, category, procedure, fee, excludes, kind) admit it, in resolved order.
    index: Vec<Vec<Vec<u32>>>,
    /// For each procedure, its items in order (`Procedure::items`): the entries (dated windows)
    /// of each, computed once here so that a quote allocates nothing but its items.
    items: Vec<Vec<Vec<usize>>>,
}

fn statically_matches(rule: &Rule, p: &Procedure, f: &FeeItem) -> bool {
    rule.authority.as_ref().is_none_or(|s| s.contains(&p.authority))
        && rule.categories.as_ref().is_none_or(|s| s.contains(&p.category))
        && rule.procedures.as_ref().is_none_or(|s| s.contains(&p.code))
        && rule.fees.as_ref().is_none_or(|s| s.contains(&f.id))
        && !rule.excludes.contains(&f.id)
        && rule.kinds.as_ref().is_none_or(|s| s.contains(&f.kind))
}

/// Rounds `exact` to a multiple of the unit by the mode; also says whether that changed it.
pub(crate) fn round(exact: Decimal, r: Rounding) -> (i64, bool) {
    let unit = Decimal::from(r.unit);
    let q = exact / unit;
    let whole = match r.mode {
        RoundingMode::HalfUp => q.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero),
        RoundingMode::Down => q.floor(),
        RoundingMode::Up => q.ceil(),
    } * unit;
    (whole.to_i64().unwrap_or(i64::MAX), whole != exact)
}

/// `(citizen, budget, rounded)` of one rule for one item, clamped to the gross.
pub(crate) fn candidate(effect: &Effect, gross: Money, quantity: u32, rounding: Rounding) -> (i64, i64, bool) {
    let g = gross.dong();
    let (citizen, budget, rounded) = match effect {
        Effect::PayPercent { percent, budget_pays_rest } => {
            let exact = Decimal::from(g) * percent / Decimal::ONE_HUNDRED;
            let (c, rounded) = round(exact, rounding);
            let c = c.clamp(0, g);
            (c, if *budget_pays_rest { g - c } else { 0 }, rounded)
        }
        Effect::Fixed(f) => (f.dong().saturating_mul(i64::from(quantity)), 0, false),
        Effect::Waive => (0, 0, false),
    };
    // A rule never raises an amount: 0 ≤ citizen + budget ≤ gross.
    let citizen = citizen.clamp(0, g);
    let budget = budget.clamp(0, g - citizen);
    (citizen, budget, rounded)
}

impl FeeEngine {
    pub fn new(catalogue: Catalogue, policy: Policy) -> Self {
        let index = catalogue
            .procedures
            .iter()
            .map(|p| {
                p.fees
                    .iter()
                    .map(|f| {
                        (0..policy.rules.len())
                            .filter(|i| statically_matches(&policy.rules[*i], p, f))
                            .map(|i| u32::try_from(i).expect("fewer than 2^32 rules"))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let items =
            catalogue.procedures.iter().map(|p| p.items().into_iter().map(|(_, entries)| entries).collect()).collect();
        Self { catalogue, policy, index, items }
    }

    /// Loads and checks the catalogue, then the policy against it.
    pub fn load(catalogue: &std::path::Path, policy: &std::path::Path) -> Result<Self, super::LoadError> {
        let c = Catalogue::load(catalogue)?;
        let p = Policy::load(policy, &c)?;
        Ok(Self::new(c, p))
    }

    /// The quote for `facts`. Pure.
    pub fn quote<'a>(&'a self, facts: &Facts<'a>) -> Result<Quote<'a>, QuoteError> {
        let pi = self
            .catalogue
            .procedure_index(facts.procedure_code.national())
            .ok_or_else(|| QuoteError::UnknownProcedure(facts.procedure_code.to_string()))?;
        let procedure = &self.catalogue.procedures[pi];
        let channel = channel_bit(facts.channel);
        let subjects = facts.subjects.iter().fold(0u16, |m, s| m | subject_bit(*s));
        let unit = facts.receiving_unit.map(UnitCode::as_str);
        let rounding = self.policy.rounding;
        let overflow = |fee: &FeeItem| QuoteError::Overflow(fee.id.clone());
        // The conditions only a case can decide: date, channel, subjects, receiving unit.
        let admits = |rule: &Rule| {
            rule.in_force(facts.as_of)
                && rule.channel_mask.is_none_or(|m| m & channel != 0)
                && rule.subject_mask.is_none_or(|m| m & subjects != 0)
                && rule.unit_matches(unit)
        };
        let mut items = Vec::with_capacity(procedure.fees.len());
        let (mut citizen_total, mut budget_total) = (Money::ZERO, Money::ZERO);
        for entries in &self.items[pi] {
            // Every window of one item agrees on facts and units (the catalogue checks it).
            let first = &procedure.fees[entries[0]];
            let quantity = first.units(facts.quantity);
            if !first.applies(facts.case_facts) || quantity == 0 {
                continue;
            }
            let fi = entries.iter().copied().find(|i| procedure.fees[*i].in_force(facts.as_of)).ok_or_else(|| {
                QuoteError::NoBase { procedure: procedure.code.clone(), fee: first.id.clone(), date: facts.as_of }
            })?;
            let fee = &procedure.fees[fi];
            let gross = fee.amount.checked_mul(quantity).map_err(|_| overflow(fee))?;
            let rules = || self.index[pi][fi].iter().map(|ri| &self.policy.rules[*ri as usize]).filter(|r| admits(r));
            let mut best: Option<(i64, i64, bool, &Rule)> = None;
            let mut any_support = false;
            for rule in rules() {
                if rule.is_support() {
                    any_support = true;
                    continue;
                }
                let (c, b, rounded) = candidate(&rule.effect, gross, quantity, rounding);
                if best.is_none_or(|(bc, bb, _, _)| (c, b) < (bc, bb)) {
                    best = Some((c, b, rounded, rule));
                }
            }
            let (mut citizen, mut budget, mut rounded, applied) = match best {
                Some((c, b, rounded, rule)) => (c, b, rounded, Some(Applied { rule })),
                None => (gross.dong(), 0, false, None),
            };
            // Step 5: support pays part of what the citizen would owe, never the counter rate.
            let mut support = None;
            if citizen > 0 && any_support {
                let owed = Money::new(citizen).map_err(|_| overflow(fee))?;
                let mut best_support: Option<(i64, i64, bool, &Rule)> = None;
                for rule in rules().filter(|r| r.is_support()) {
                    let (c, b, r) = candidate(&rule.effect, owed, quantity, rounding);
                    if best_support.is_none_or(|(bc, _, _, _)| c < bc) {
                        best_support = Some((c, b, r, rule));
                    }
                }
                if let Some((c, b, r, rule)) = best_support {
                    citizen = c;
                    budget += b;
                    rounded |= r;
                    support = Some(Applied { rule });
                }
            }
            let citizen_due = Money::new(citizen).map_err(|_| overflow(fee))?;
            let budget_due = Money::new(budget).map_err(|_| overflow(fee))?;
            citizen_total = citizen_total.checked_add(citizen_due).map_err(|_| overflow(fee))?;
            budget_total = budget_total.checked_add(budget_due).map_err(|_| overflow(fee))?;
            items.push(QuoteItem { fee, quantity, applied, support, citizen_due, budget_due, rounded });
        }
        Ok(Quote {
            case_code: facts.case_code,
            procedure_code: facts.procedure_code.as_str(),
            as_of: facts.as_of,
            policy: &self.policy,
            items,
            citizen_due: citizen_total,
            budget_due: budget_total,
        })
    }

    /// The rules whose static conditions admit a fee entry, in resolved order.
    pub(crate) fn rules_for(&self, procedure: usize, fee: usize) -> impl Iterator<Item = &Rule> {
        self.index[procedure][fee].iter().map(|i| &self.policy.rules[*i as usize])
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) use super::candidate;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(mode: RoundingMode, unit: i64) -> Rounding {
        Rounding { mode, unit }
    }

    #[test]
    fn rounding_follows_mode_and_unit() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(round(d("4000"), r(RoundingMode::HalfUp, 1)), (4000, false));
        assert_eq!(round(d("4312.5"), r(RoundingMode::HalfUp, 1)), (4313, true));
        assert_eq!(round(d("4312.5"), r(RoundingMode::Down, 1)), (4312, true));
        assert_eq!(round(d("4312.5"), r(RoundingMode::Up, 1)), (4313, true));
        assert_eq!(round(d("4350"), r(RoundingMode::HalfUp, 100)), (4400, true));
        assert_eq!(round(d("4349"), r(RoundingMode::HalfUp, 100)), (4300, true));
        assert_eq!(round(d("4001"), r(RoundingMode::Up, 1000)), (5000, true));
        assert_eq!(round(d("4999"), r(RoundingMode::Down, 1000)), (4000, true));
    }

    #[test]
    fn a_candidate_never_raises_the_amount() {
        let g = Money::new(1500).unwrap();
        let full = Effect::PayPercent { percent: Decimal::ONE_HUNDRED, budget_pays_rest: false };
        // 100% of 1,500 rounded up to 1,000s is 2,000: clamped to the gross.
        assert_eq!(candidate(&full, g, 1, r(RoundingMode::Up, 1000)), (1500, 0, true));
        assert_eq!(candidate(&Effect::Fixed(Money::new(9000).unwrap()), g, 1, Rounding::default()), (1500, 0, false));
        let supported = Effect::PayPercent { percent: Decimal::from(30), budget_pays_rest: true };
        assert_eq!(candidate(&supported, g, 1, Rounding::default()), (450, 1050, false));
        assert_eq!(candidate(&Effect::Waive, g, 1, Rounding::default()), (0, 0, false));
        // Fixed amounts of per-unit items are per unit.
        let g3 = Money::new(30_000).unwrap();
        assert_eq!(
            candidate(&Effect::Fixed(Money::new(5000).unwrap()), g3, 3, Rounding::default()),
            (15_000, 0, false)
        );
    }
}
