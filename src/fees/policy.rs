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
use super::{LoadError, read_text};
use crate::domain::{BusinessDate, Channel, Money, Subject, UnitCode};

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

/// How sure a rule's legal basis is: shown on every quote it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BasisStatus {
    /// The instrument, article and figure were read in a published text.
    Verified,
    /// The instrument is known but the figure, date or scope is inferred, not read.
    Inferred,
    /// No instrument was found: the rule follows a pattern and its basis is a placeholder.
    Placeholder,
}

impl BasisStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BasisStatus::Verified => "verified",
            BasisStatus::Inferred => "inferred",
            BasisStatus::Placeholder => "placeholder",
        }
    }
}

/// A receiving-unit condition: exact codes (`000.00.12.H62`) and prefixes ending in `*`, read
/// from level 1 down (`H62*`, `H62.12*`), since QCVN 102 writes level 1 at the right end.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnitPattern(String);

impl UnitPattern {
    /// Checks a pattern as written in a policy.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.strip_suffix('*') {
            Some(prefix) => {
                // Level-first layout: M X X . Y Y . Z Z . V V V
                let layout = b"A00.00.00.000";
                let ok = !prefix.is_empty()
                    && prefix.len() <= layout.len()
                    && prefix.bytes().zip(layout.iter()).all(|(b, l)| match l {
                        b'A' => b.is_ascii_uppercase(),
                        b'0' => b.is_ascii_digit(),
                        _ => b == b'.',
                    });
                if ok {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(format!(
                        "unit prefix {s:?} must be a receiving unit read from level 1 down, then `*` (e.g. \"H62*\", \"H62.12*\")"
                    ))
                }
            }
            None => UnitCode::parse(s).map(|_| Self(s.to_owned())).map_err(|e| e.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a unit (right-aligned, `000.00.12.H62`) matches; `level_first` is its groups
    /// from level 1 down (`H62.12.00.000`).
    pub fn matches(&self, unit: &str, level_first: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => level_first.starts_with(prefix),
            None => self.0 == unit,
        }
    }
}

/// A right-aligned unit code's groups from level 1 down: `000.00.12.H62` → `H62.12.00.000`.
pub fn level_first(unit: &str) -> String {
    unit.rsplit('.').collect::<Vec<_>>().join(".")
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
    pub fn unit_matches(&self, unit: Option<(&str, &str)>) -> bool {
        match (&self.units, unit) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(p), Some((u, lf))) => p.iter().any(|p| p.matches(u, lf)),
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

/// One file being read: its path and text, for locating errors.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn err(&self, span: std::ops::Range<usize>, msg: impl Into<String>) -> LoadError {
        LoadError::at(self.path, self.text, span.start, msg)
    }
}

/// A TOML value as a message shows it.
fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("{s:?}"),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(_) => "an array".into(),
        toml::Value::Table(_) => "a table".into(),
    }
}

fn parse_date(src: &Source<'_>, key: &str, v: &Spanned<toml::Value>) -> Result<NaiveDate, LoadError> {
    let s = match v.get_ref() {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) if d.date.is_some() && d.time.is_none() => d.to_string(),
        other => return Err(src.err(v.span(), format!("{key} must be a date \"YYYY-MM-DD\", got {}", show(other)))),
    };
    BusinessDate::parse(&s)
        .map(BusinessDate::naive)
        .map_err(|_| src.err(v.span(), format!("{key} {s:?} is not a real date YYYY-MM-DD")))
}

fn non_empty<T>(src: &Source<'_>, key: &str, v: &Spanned<Vec<T>>) -> Result<(), LoadError> {
    if v.get_ref().is_empty() {
        Err(src.err(v.span(), format!("{key} must not be empty; omit it to match any")))
    } else {
        Ok(())
    }
}

fn parse_effect(src: &Source<'_>, v: &Spanned<toml::Value>) -> Result<Effect, LoadError> {
    let bad = |msg: String| src.err(v.span(), msg);
    let toml::Value::Table(t) = v.get_ref() else {
        return Err(bad("effect must be a table such as { pay_percent = 50 }".into()));
    };
    for k in t.keys() {
        if !matches!(k.as_str(), "pay_percent" | "fixed" | "waive" | "payer") {
            return Err(bad(format!("unknown effect key {k:?}; expected pay_percent, fixed, waive or payer")));
        }
    }
    let kinds = ["pay_percent", "fixed", "waive"].iter().filter(|k| t.contains_key(**k)).count();
    if kinds != 1 {
        return Err(bad("effect must have exactly one of pay_percent, fixed or waive".into()));
    }
    let payer = match t.get("payer") {
        None => None,
        Some(toml::Value::String(p)) if p == "provincial_budget" || p == "citizen" => Some(p.as_str()),
        Some(other) => {
            return Err(bad(format!("payer must be \"provincial_budget\" or \"citizen\", got {}", show(other))));
        }
    };
    if payer.is_some() && !t.contains_key("pay_percent") {
        return Err(bad("payer goes only with pay_percent".into()));
    }
    if let Some(p) = t.get("pay_percent") {
        let percent = match p {
            toml::Value::Integer(i) => Decimal::from(*i),
            toml::Value::String(s) => s
                .trim()
                .parse::<Decimal>()
                .map_err(|_| bad(format!("pay_percent {s:?} is not a decimal number such as \"12.5\"")))?,
            toml::Value::Float(f) => {
                return Err(bad(format!(
                    "pay_percent {f} is a TOML float; write an integer or a string such as \"12.5\""
                )));
            }
            other => {
                return Err(bad(format!("pay_percent must be an integer or a decimal string, got {}", show(other))));
            }
        };
        if percent < Decimal::ZERO || percent > Decimal::ONE_HUNDRED {
            return Err(bad(format!("pay_percent {percent} is outside 0..=100")));
        }
        return Ok(Effect::PayPercent { percent, budget_pays_rest: payer == Some("provincial_budget") });
    }
    if let Some(f) = t.get("fixed") {
        let toml::Value::Integer(i) = f else {
            return Err(bad(format!("fixed must be a whole number of đồng, got {}", show(f))));
        };
        return Money::new(*i).map(Effect::Fixed).map_err(|e| bad(format!("fixed: {e}")));
    }
    match t.get("waive") {
        Some(toml::Value::Boolean(true)) => Ok(Effect::Waive),
        _ => Err(bad("waive must be true (omit the rule to waive nothing)".into())),
    }
}

fn string_set(
    src: &Source<'_>,
    key: &str,
    v: Option<Spanned<Vec<String>>>,
    known: impl Fn(&str) -> bool,
    what: &str,
) -> Result<Option<BTreeSet<String>>, LoadError> {
    let Some(v) = v else { return Ok(None) };
    non_empty(src, key, &v)?;
    let span = v.span();
    let mut out = BTreeSet::new();
    for s in v.into_inner() {
        if !known(&s) {
            return Err(src.err(span, format!("{key}: unknown {what} {s:?}")));
        }
        out.insert(s);
    }
    Ok(Some(out))
}

fn tag_set<T: std::str::FromStr<Err = crate::domain::UnknownTag> + Ord>(
    src: &Source<'_>,
    key: &str,
    v: Option<Spanned<Vec<String>>>,
) -> Result<Option<BTreeSet<T>>, LoadError> {
    let Some(v) = v else { return Ok(None) };
    non_empty(src, key, &v)?;
    let span = v.span();
    v.into_inner()
        .iter()
        .map(|s| s.parse::<T>().map_err(|e| src.err(span.clone(), format!("{key}: {e}"))))
        .collect::<Result<BTreeSet<T>, _>>()
        .map(Some)
}

fn enum_set<T: Ord + Clone>(
    src: &Source<'_>,
    key: &str,
    v: Option<Spanned<Vec<T>>>,
) -> Result<Option<BTreeSet<T>>, LoadError> {
    let Some(v) = v else { return Ok(None) };
    non_empty(src, key, &v)?;
    Ok(Some(v.into_inner().into_iter().collect()))
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
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
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
        let canon = std::fs::canonicalize(&target)
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
