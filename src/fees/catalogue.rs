//! The fee catalogue (`fixtures/catalogue.toml`, SPEC §5): every procedure and its fee items at
//! the base (counter) rate.
//!
//! Loading checks everything once: unknown keys, malformed procedure codes, negative amounts,
//! duplicate procedure codes and duplicate fee ids (rules name fees by id, so ids are unique
//! across the whole catalogue). Each problem is reported with the file and line.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{LoadError, read_text};
use crate::domain::{Money, ProcedureCode};

/// Who sets a procedure's rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Authority {
    /// The Ministry of Finance (Bộ Tài chính), or another central body.
    Mof,
    /// The provincial People's Council (HĐND tỉnh).
    Hdnd,
}

impl Authority {
    pub fn as_str(self) -> &'static str {
        match self {
            Authority::Mof => "mof",
            Authority::Hdnd => "hdnd",
        }
    }
}

/// phí (a fee, for a service) or lệ phí (a charge, fixed in advance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeeKind {
    Phi,
    LePhi,
}

impl FeeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeeKind::Phi => "phi",
            FeeKind::LePhi => "le_phi",
        }
    }
}

/// One phí or lệ phí line of a procedure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeItem {
    /// Unique across the catalogue.
    pub id: String,
    pub kind: FeeKind,
    pub name: String,
    /// The counter rate, in đồng.
    pub amount: Money,
    /// When true, the amount is per unit and multiplied by the case's quantity.
    pub per_unit: bool,
    /// Tiểu mục of the state-budget classification, for remittance reports.
    pub budget_subitem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Procedure {
    /// The national code `d.dddddd`.
    pub code: String,
    pub name: String,
    pub authority: Authority,
    pub category: String,
    /// In file order; a quote lists items in this order.
    pub fees: Vec<FeeItem>,
}

/// The whole catalogue. Invariants: procedure codes and fee ids are unique.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    pub procedures: Vec<Procedure>,
    by_code: HashMap<String, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    #[serde(default)]
    procedure: Vec<RawProcedure>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProcedure {
    code: Spanned<String>,
    name: String,
    authority: Authority,
    category: Spanned<String>,
    #[serde(default)]
    fee: Vec<RawFee>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFee {
    id: Spanned<String>,
    kind: FeeKind,
    name: String,
    amount: Spanned<i64>,
    #[serde(default)]
    per_unit: bool,
    #[serde(default)]
    budget_subitem: Option<Spanned<String>>,
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Catalogue {
    /// Reads and checks a catalogue file.
    pub fn load(path: &Path) -> Result<Catalogue, LoadError> {
        let text = read_text(path)?;
        Self::parse(path, &text)
    }

    /// Parses and checks catalogue text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Catalogue, LoadError> {
        let err = |span: std::ops::Range<usize>, msg: String| LoadError::at(path, text, span.start, msg);
        let raw: RawCatalogue = toml::from_str(text).map_err(|e| LoadError::toml(path, text, &e))?;
        let mut procedures = Vec::with_capacity(raw.procedure.len());
        let mut by_code = HashMap::new();
        let mut fee_ids: HashMap<String, String> = HashMap::new();
        for p in raw.procedure {
            let code = ProcedureCode::parse(p.code.get_ref()).map_err(|e| err(p.code.span(), e.to_string()))?;
            if code.as_str() != code.national() {
                return Err(err(p.code.span(), format!("{code}: the catalogue is keyed by national codes (d.dddddd)")));
            }
            if by_code.insert(code.as_str().to_owned(), procedures.len()).is_some() {
                return Err(err(p.code.span(), format!("procedure {code} appears twice")));
            }
            if !is_identifier(p.category.get_ref()) {
                return Err(err(
                    p.category.span(),
                    format!("category {:?} must be lower_snake_case", p.category.get_ref()),
                ));
            }
            if p.fee.is_empty() {
                return Err(err(p.code.span(), format!("procedure {code} has no fee item")));
            }
            let mut fees = Vec::with_capacity(p.fee.len());
            for f in p.fee {
                let id = f.id.get_ref().clone();
                if !is_identifier(&id) {
                    return Err(err(f.id.span(), format!("fee id {id:?} must be lower_snake_case")));
                }
                if let Some(other) = fee_ids.insert(id.clone(), code.to_string()) {
                    return Err(err(f.id.span(), format!("fee id {id:?} is already used by procedure {other}")));
                }
                let amount =
                    Money::new(*f.amount.get_ref()).map_err(|e| err(f.amount.span(), format!("fee {id}: {e}")))?;
                let budget_subitem = match f.budget_subitem {
                    Some(s) if s.get_ref().len() == 4 && s.get_ref().bytes().all(|b| b.is_ascii_digit()) => {
                        Some(s.into_inner())
                    }
                    Some(s) => {
                        return Err(err(s.span(), format!("budget_subitem {:?} must be 4 digits", s.get_ref())));
                    }
                    None => None,
                };
                fees.push(FeeItem { id, kind: f.kind, name: f.name, amount, per_unit: f.per_unit, budget_subitem });
            }
            procedures.push(Procedure {
                code: code.to_string(),
                name: p.name,
                authority: p.authority,
                category: p.category.into_inner(),
                fees,
            });
        }
        Ok(Catalogue { procedures, by_code })
    }

    /// The procedure of a national or local procedure code.
    pub fn procedure(&self, code: &ProcedureCode) -> Option<&Procedure> {
        self.by_code.get(code.national()).map(|i| &self.procedures[*i])
    }

    pub fn procedure_index(&self, national: &str) -> Option<usize> {
        self.by_code.get(national).copied()
    }

    pub fn has_fee(&self, id: &str) -> bool {
        self.procedures.iter().any(|p| p.fees.iter().any(|f| f.id == id))
    }

    pub fn has_category(&self, category: &str) -> bool {
        self.procedures.iter().any(|p| p.category == category)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Catalogue, LoadError> {
        Catalogue::parse(Path::new("cat.toml"), text)
    }

    const ONE: &str = r#"
[[procedure]]
code = "1.001193"
name = "Đăng ký khai sinh"
authority = "hdnd"
category = "ho_tich"
[[procedure.fee]]
id = "le_phi_khai_sinh_qua_han"
kind = "le_phi"
name = "Lệ phí đăng ký khai sinh không đúng hạn"
amount = 8000
budget_subitem = "2771"
"#;

    #[test]
    fn a_procedure_with_its_fees_loads() {
        let c = parse(ONE).unwrap();
        let p = c.procedure(&ProcedureCode::parse("1.001193.000.00.00.H62").unwrap()).unwrap();
        assert_eq!(p.fees[0].amount.dong(), 8000);
        assert!(!p.fees[0].per_unit);
        assert_eq!(p.fees[0].budget_subitem.as_deref(), Some("2771"));
    }

    #[test]
    fn every_problem_names_its_line() {
        let cases = [
            (ONE.replace("amount = 8000", "amount = -1"), 11, "must not be negative"),
            (ONE.replace("budget_subitem", "colour"), 12, "unknown field `colour`"),
            (ONE.replace("\"1.001193\"", "\"1.1193\""), 3, "procedure code"),
            (ONE.replace("\"le_phi\"", "\"tax\""), 9, "unknown variant"),
            (format!("{ONE}{ONE}"), 15, "appears twice"),
            (ONE.replace("amount = 8000", "amount = \"8000\""), 11, "invalid type"),
        ];
        for (text, line, reason) in cases {
            let e = parse(&text).unwrap_err();
            assert_eq!(e.line, line, "{e}");
            assert!(e.message.contains(reason), "{e}");
            assert_eq!(e.file, Path::new("cat.toml"));
        }
    }

    #[test]
    fn fee_ids_are_unique_across_procedures() {
        let second = ONE.replace("1.001193", "1.000894");
        let e = parse(&format!("{ONE}{second}")).unwrap_err();
        assert!(e.message.contains("already used by procedure 1.001193"), "{e}");
        assert_eq!(e.line, 20);
    }
}
