//! Reading a policy rule's values from TOML (SPEC §5): dates, effects, and sets of ids or tags,
//! each refused with the file, line and reason when it is not what the key takes.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use toml::Spanned;

use super::LoadError;
use super::policy::Effect;
use crate::domain::{BusinessDate, Money};

/// One file being read: its path and text, for locating errors.
pub(super) struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    pub fn err(&self, span: std::ops::Range<usize>, msg: impl Into<String>) -> LoadError {
        LoadError::at(self.path, self.text, span.start, msg)
    }
}

/// A TOML value as a message shows it.
pub(super) fn show(v: &toml::Value) -> String {
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

pub(super) fn parse_date(src: &Source<'_>, key: &str, v: &Spanned<toml::Value>) -> Result<NaiveDate, LoadError> {
    let s = match v.get_ref() {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) if d.date.is_some() && d.time.is_none() => d.to_string(),
        other => return Err(src.err(v.span(), format!("{key} must be a date \"YYYY-MM-DD\", got {}", show(other)))),
    };
    BusinessDate::parse(&s)
        .map(BusinessDate::naive)
        .map_err(|_| src.err(v.span(), format!("{key} {s:?} is not a real date YYYY-MM-DD")))
}

pub(super) fn non_empty<T>(src: &Source<'_>, key: &str, v: &Spanned<Vec<T>>) -> Result<(), LoadError> {
    if v.get_ref().is_empty() {
        Err(src.err(v.span(), format!("{key} must not be empty; omit it to match any")))
    } else {
        Ok(())
    }
}

pub(super) fn parse_effect(src: &Source<'_>, v: &Spanned<toml::Value>) -> Result<Effect, LoadError> {
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

pub(super) fn string_set(
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

pub(super) fn tag_set<T: std::str::FromStr<Err = crate::domain::UnknownTag> + Ord>(
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

pub(super) fn enum_set<T: Ord + Clone>(
    src: &Source<'_>,
    key: &str,
    v: Option<Spanned<Vec<T>>>,
) -> Result<Option<BTreeSet<T>>, LoadError> {
    let Some(v) = v else { return Ok(None) };
    non_empty(src, key, &v)?;
    Ok(Some(v.into_inner().into_iter().collect()))
}
