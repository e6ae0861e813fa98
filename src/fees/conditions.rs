//! What a rule's newer keys mean (SPEC §5, issue 15): `basis_status`, how sure a rule's legal
//! basis is, and `units`, the receiving units a rule is scoped to (a merged province applies an
//! old province's rules to that province's units only).

use serde::Deserialize;

use crate::domain::UnitCode;

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

    /// Whether a unit (right-aligned, `000.00.12.H62`) matches: exactly, or its groups read from
    /// level 1 down (`H62.12.00.000`) start with the prefix. Allocates nothing (a quote calls it).
    pub fn matches(&self, unit: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => level_first_starts_with(unit, prefix),
            None => self.0 == unit,
        }
    }
}

/// Whether `level_first(unit)` starts with `prefix`, read group by group without building it.
fn level_first_starts_with(unit: &str, prefix: &str) -> bool {
    let mut read =
        unit.rsplit('.').enumerate().flat_map(|(i, g)| (if i == 0 { "" } else { "." }).bytes().chain(g.bytes()));
    prefix.bytes().all(|b| read.next() == Some(b))
}

/// A right-aligned unit code's groups from level 1 down: `000.00.12.H62` → `H62.12.00.000`.
#[cfg(test)]
pub fn level_first(unit: &str) -> String {
    unit.rsplit('.').collect::<Vec<_>>().join(".")
}
