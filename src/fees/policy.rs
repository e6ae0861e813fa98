//! A province's policy (SPEC §5): rules that reduce, fix, waive or shift to the budget the amount
//! of fee items, each in force between two dates and with a legal basis.
//!
//! `Policy::load` reads the file and its `include`s (paths relative to the including file,
//! recursively, cycles refused) into one resolved rule list: included rules first, in `include`
//! order, then the file's own. A file reached twice through includes (a merged province including
//! two old provinces that both include `national.toml`) counts once, where it was first reached.
//! Only the top file's `rounding` applies. Every check of SPEC §5 is
//! made here, against the catalogue, and reported with file, line and reason: unknown keys, bad
//! dates, `effective_to` before `effective_from`, a percent outside 0..=100 or written as a TOML
//! float, unknown fee, procedure or category ids, include cycles, duplicate rule ids, and two
//! rules with the same scope, overlapping dates and different effects (a support rule is compared
//! with support rules only). Each rule says how sure its basis is (`basis_status`); `warnings`
//! lists those that are not verified.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::catalogue::{Authority, Catalogue, FeeKind};
#[cfg(test)]
pub use super::conditions::level_first;
pub use super::conditions::{BasisStatus, UnitPattern};
use super::policy_toml::{Source, enum_set, non_empty, parse_date, parse_effect, string_set, tag_set};
use super::{LoadError, read_text};
use crate::domain::{Channel, Money, Subject};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundingMode {
    /// To the nearest unit, halves away from zero.
    HalfUp,
    /// Towards zero (the citizen's favour).
    Down,
    /// Away from zero.
    Up,
}

impl RoundingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RoundingMode::HalfUp => "half_up",
            RoundingMode::Down => "down",
            RoundingMode::Up => "up",
        }
    }
}

/// How a percentage result becomes whole đồng. Invariant: `unit` is 1, 100 or 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rounding {
    pub mode: RoundingMode,
    pub unit: i64,
}

impl Default for Rounding {
    fn default() -> Self {
        Self { mode: RoundingMode::HalfUp, unit: 1 }
    }
}

/// What a rule does to an item's gross amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The citizen pays `percent`% of the gross (0..=100). With `budget_pays_rest`, the
    /// province's budget pays the rest ("hỗ trợ").
    PayPercent { percent: Decimal, budget_pays_rest: bool },
    /// The citizen pays this amount (per unit for per-unit items).
    Fixed(Money),
    /// Nothing is owed.
    Waive,
}

impl fmt::Display for Effect {
    /// The form SPEC §5 shows in a quote: `pay_percent 50`, `pay_percent 0 payer provincial_budget`,
    /// `fixed 115000`, `waive`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::PayPercent { percent, budget_pays_rest: false } => write!(f, "pay_percent {}", percent.normalize()),
            Effect::PayPercent { percent, budget_pays_rest: true } => {
                write!(f, "pay_percent {} payer provincial_budget", percent.normalize())
            }
            Effect::Fixed(m) => write!(f, "fixed {}", m.dong()),
            Effect::Waive => f.write_str("waive"),
        }
    }
}

/// One resolved rule. `None` conditions match anything.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub basis: String,
    pub basis_status: BasisStatus,
    pub effective_from: NaiveDate,
    /// Inclusive; `None` is open-ended.
    pub effective_to: Option<NaiveDate>,
    pub authority: Option<BTreeSet<Authority>>,
    pub categories: Option<BTreeSet<String>>,
    /// National procedure codes.
    pub procedures: Option<BTreeSet<String>>,
    pub fees: Option<BTreeSet<String>>,
    /// Fee ids this rule never touches.
    pub excludes: BTreeSet<String>,
    pub kinds: Option<BTreeSet<FeeKind>>,
    pub channels: Option<BTreeSet<Channel>>,
    /// The case must carry at least one of these.
    pub subjects: Option<BTreeSet<Subject>>,
    /// The case's receiving unit must match one of these.
    pub units: Option<BTreeSet<UnitPattern>>,
    pub effect: Effect,
    /// Where the rule was written, for messages.
    pub file: PathBuf,
    pub line: usize,
    /// Bit masks of `channels` and `subjects` (bit = position in `ALL`), for the quote's hot path.
    pub(crate) channel_mask: Option<u8>,
    pub(crate) subject_mask: Option<u16>,
}

impl Rule {
    /// A support rule: the province's budget pays part of what the citizen owes (SPEC §5 step 5).
    pub fn is_support(&self) -> bool {
        matches!(self.effect, Effect::PayPercent { budget_pays_rest: true, .. })
    }

    /// Whether the receiving unit (`None`: unknown) satisfies the `units` condition.
    pub fn unit_matches(&self, unit: Option<&str>) -> bool {
        match (&self.units, unit) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(p), Some(u)) => p.iter().any(|p| p.matches(u)),
        }
    }

    pub fn in_force(&self, d: NaiveDate) -> bool {
        self.effective_from <= d && self.effective_to.is_none_or(|to| d <= to)
    }

    fn overlaps(&self, other: &Rule) -> bool {
        let end = |r: &Rule| r.effective_to.unwrap_or(NaiveDate::MAX);
        self.effective_from <= end(other) && other.effective_from <= end(self)
    }

    fn same_scope(&self, o: &Rule) -> bool {
        self.authority == o.authority
            && self.categories == o.categories
            && self.procedures == o.procedures
            && self.fees == o.fees
            && self.excludes == o.excludes
            && self.kinds == o.kinds
            && self.channels == o.channels
            && self.subjects == o.subjects
            && self.units == o.units
    }
}

pub(crate) fn channel_bit(c: Channel) -> u8 {
    1 << Channel::ALL.iter().position(|x| *x == c).unwrap_or(0)
}

pub(crate) fn subject_bit(s: Subject) -> u16 {
    1 << Subject::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

/// A resolved, checked policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub id: String,
    pub name: String,
    pub rounding: Rounding,
    pub rules: Vec<Rule>,
    /// `sha256:<hex>` of the canonical resolved policy and the catalogue it was checked against.
    pub hash: String,
    /// Every file read, top file first.
    pub files: Vec<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    policy: RawHeader,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    id: Spanned<String>,
    name: String,
    #[serde(default)]
    include: Vec<Spanned<String>>,
    #[serde(default)]
    rounding: Option<Spanned<RawRounding>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRounding {
    mode: String,
    unit: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    basis: Spanned<String>,
    basis_status: Spanned<BasisStatus>,
    effective_from: Spanned<toml::Value>,
    #[serde(default)]
    effective_to: Option<Spanned<toml::Value>>,
    #[serde(default)]
    authority: Option<Spanned<Vec<Authority>>>,
    #[serde(default)]
    categories: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    procedures: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    fees: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    excludes: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    kinds: Option<Spanned<Vec<FeeKind>>>,
    #[serde(default)]
    channels: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    subjects: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    units: Option<Spanned<Vec<String>>>,
    effect: Spanned<toml::Value>,
}

impl Policy {
    /// Reads a policy file and its includes, checks it against `catalogue`, and resolves it.
    pub fn load(path: &Path, catalogue: &Catalogue) -> Result<Policy, LoadError> {
        let mut rules = Vec::new();
        let mut files = Vec::new();
        let mut stack = Vec::new();
        let mut seen = HashSet::new();
        let (id, name, rounding) = load_file(path, catalogue, &mut stack, &mut seen, &mut rules, &mut files)?;
        // Rule ids are unique across the resolved list.
        for (i, r) in rules.iter().enumerate() {
            if let Some(first) = rules[..i].iter().find(|o| o.id == r.id) {
                return Err(LoadError {
                    file: r.file.clone(),
                    line: r.line,
                    message: format!("rule id {:?} is already used at {}:{}", r.id, first.file.display(), first.line),
                });
            }
        }
        // Two rules of the same scope may not disagree on overlapping dates.
        for (i, r) in rules.iter().enumerate() {
            // A support rule pays on top of the winning reduction: it never conflicts with one.
            if let Some(o) = rules[..i]
                .iter()
                .find(|o| o.is_support() == r.is_support() && o.same_scope(r) && o.overlaps(r) && o.effect != r.effect)
            {
                return Err(LoadError {
                    file: r.file.clone(),
                    line: r.line,
                    message: format!(
                        "rule {} has the same scope as rule {} ({}:{}), overlapping dates and a different effect ({} vs {})",
                        r.id,
                        o.id,
                        o.file.display(),
                        o.line,
                        r.effect,
                        o.effect
                    ),
                });
            }
        }
        let hash = canonical_hash(&id, &name, rounding, &rules, catalogue);
        Ok(Policy { id, name, rounding, rules, hash, files })
    }

    /// One line per rule whose basis is not verified (`file:line: rule ID: basis_status S: basis`),
    /// for `policy check`: such a rule is applied, but its figure or instrument needs checking.
    pub fn warnings(&self) -> Vec<String> {
        self.rules
            .iter()
            .filter(|r| r.basis_status != BasisStatus::Verified)
            .map(|r| {
                format!(
                    "{}:{}: rule {}: basis_status {}: {}",
                    r.file.display(),
                    r.line,
                    r.id,
                    r.basis_status.as_str(),
                    r.basis
                )
            })
            .collect()
    }
}

fn load_file(
    path: &Path,
    catalogue: &Catalogue,
    stack: &mut Vec<PathBuf>,
    seen: &mut HashSet<PathBuf>,
    rules: &mut Vec<Rule>,
    files: &mut Vec<PathBuf>,
) -> Result<(String, String, Rounding), LoadError> {
    let text = read_text(path)?;
    let src = Source { path, text: &text };
    let canonical = crate::embedded::canonical(path).unwrap_or_else(|_| path.to_owned());
    seen.insert(canonical.clone());
    stack.push(canonical);
    files.push(path.to_owned());
    let raw: RawFile = toml::from_str(&text).map_err(|e| LoadError::toml(path, &text, &e))?;
    let id = raw.policy.id.get_ref().trim().to_owned();
    if id.is_empty() {
        return Err(src.err(raw.policy.id.span(), "policy id must not be empty"));
    }
    let rounding = match &raw.policy.rounding {
        None => Rounding::default(),
        Some(r) => {
            let mode = match r.get_ref().mode.as_str() {
                "half_up" => RoundingMode::HalfUp,
                "down" => RoundingMode::Down,
                "up" => RoundingMode::Up,
                other => return Err(src.err(r.span(), format!("rounding mode {other:?} must be half_up, down or up"))),
            };
            let unit = r.get_ref().unit;
            if ![1, 100, 1000].contains(&unit) {
                return Err(src.err(r.span(), format!("rounding unit {unit} must be 1, 100 or 1000")));
            }
            Rounding { mode, unit }
        }
    };
    for inc in &raw.policy.include {
        let target = path.parent().unwrap_or(Path::new(".")).join(inc.get_ref());
        let canon = crate::embedded::canonical(&target)
            .map_err(|e| src.err(inc.span(), format!("include {:?}: {e}", inc.get_ref())))?;
        if stack.contains(&canon) {
            return Err(src.err(inc.span(), format!("include {:?} makes a cycle", inc.get_ref())));
        }
        if seen.contains(&canon) {
            // Reached before through another include: one file is one set of rules.
            continue;
        }
        load_file(&target, catalogue, stack, seen, rules, files)?;
    }
    for r in raw.rule {
        let line = LoadError::at(path, &text, r.id.span().start, "").line;
        let id = r.id.get_ref().trim().to_owned();
        if id.is_empty() {
            return Err(src.err(r.id.span(), "rule id must not be empty"));
        }
        if r.basis.get_ref().trim().is_empty() {
            return Err(src.err(
                r.basis.span(),
                format!("rule {id}: basis must not be empty (the legal basis is shown on every quote)"),
            ));
        }
        let effective_from = parse_date(&src, "effective_from", &r.effective_from)?;
        let effective_to = r.effective_to.as_ref().map(|v| parse_date(&src, "effective_to", v)).transpose()?;
        if let (Some(to), Some(v)) = (effective_to, &r.effective_to)
            && to < effective_from
        {
            return Err(src.err(v.span(), format!("effective_to {to} is before effective_from {effective_from}")));
        }
        let categories = string_set(&src, "categories", r.categories, |c| catalogue.has_category(c), "category")?;
        let procedures = string_set(
            &src,
            "procedures",
            r.procedures,
            |p| catalogue.procedure_index(p).is_some(),
            "procedure (national codes d.dddddd of the catalogue)",
        )?;
        let fees = string_set(&src, "fees", r.fees, |f| catalogue.has_fee(f), "fee id")?;
        let excludes =
            string_set(&src, "excludes", r.excludes, |f| catalogue.has_fee(f), "fee id")?.unwrap_or_default();
        let channels: Option<BTreeSet<Channel>> = tag_set(&src, "channels", r.channels)?;
        let subjects: Option<BTreeSet<Subject>> = tag_set(&src, "subjects", r.subjects)?;
        let units = match r.units {
            None => None,
            Some(v) => {
                non_empty(&src, "units", &v)?;
                let span = v.span();
                let set = v
                    .into_inner()
                    .iter()
                    .map(|u| UnitPattern::parse(u.trim()).map_err(|e| src.err(span.clone(), format!("units: {e}"))))
                    .collect::<Result<BTreeSet<_>, _>>()?;
                Some(set)
            }
        };
        let effect = parse_effect(&src, &r.effect)?;
        rules.push(Rule {
            channel_mask: channels.as_ref().map(|s| s.iter().fold(0u8, |m, c| m | channel_bit(*c))),
            subject_mask: subjects.as_ref().map(|s| s.iter().fold(0u16, |m, c| m | subject_bit(*c))),
            id,
            basis: r.basis.into_inner().trim().to_owned(),
            basis_status: r.basis_status.into_inner(),
            effective_from,
            effective_to,
            authority: enum_set(&src, "authority", r.authority)?,
            categories,
            procedures,
            fees,
            excludes,
            kinds: enum_set(&src, "kinds", r.kinds)?,
            channels,
            subjects,
            units,
            effect,
            file: path.to_owned(),
            line,
        });
    }
    stack.pop();
    Ok((id, raw.policy.name, rounding))
}

/// SHA-256 of the canonical JSON of the resolved policy (id, name, rounding, every rule in order)
/// and of the catalogue, whose amounts decide every quote as much as the rules do.
fn canonical_hash(id: &str, name: &str, rounding: Rounding, rules: &[Rule], catalogue: &Catalogue) -> String {
    use serde_json::json;
    fn set<T: fmt::Debug>(s: &Option<BTreeSet<T>>, f: impl Fn(&T) -> String) -> serde_json::Value {
        s.as_ref().map_or(serde_json::Value::Null, |s| json!(s.iter().map(&f).collect::<Vec<_>>()))
    }
    let rules: Vec<serde_json::Value> = rules
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "basis": r.basis, "basis_status": r.basis_status.as_str(),
                "effective_from": r.effective_from.to_string(),
                "effective_to": r.effective_to.map(|d| d.to_string()),
                "authority": set(&r.authority, |a| a.as_str().to_owned()),
                "categories": set(&r.categories, Clone::clone),
                "procedures": set(&r.procedures, Clone::clone),
                "fees": set(&r.fees, Clone::clone),
                "excludes": r.excludes.iter().collect::<Vec<_>>(),
                "kinds": set(&r.kinds, |k| k.as_str().to_owned()),
                "channels": set(&r.channels, |c| c.as_str().to_owned()),
                "subjects": set(&r.subjects, |s| s.as_str().to_owned()),
                "units": set(&r.units, |u| u.as_str().to_owned()),
                "effect": r.effect.to_string(),
            })
        })
        .collect();
    let procedures: Vec<serde_json::Value> = catalogue
        .procedures
        .iter()
        .map(|p| {
            json!({
                "code": p.code, "authority": p.authority.as_str(), "category": p.category,
                "fees": p.fees.iter().map(|f| json!({
                    "id": f.id, "kind": f.kind.as_str(), "amount": f.amount.dong(), "per_unit": f.per_unit,
                    "per_unit_from": f.per_unit_from, "basis": f.basis,
                    "effective_from": f.effective_from.to_string(),
                    "effective_to": f.effective_to.map(|d| d.to_string()),
                    "requires_facts": f.requires_facts.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let doc = json!({
        "policy": {"id": id, "name": name, "rounding": {"mode": rounding.mode.as_str(), "unit": rounding.unit}, "rules": rules},
        "catalogue": procedures,
    });
    format!("sha256:{}", hex::encode(Sha256::digest(doc.to_string().as_bytes())))
}
