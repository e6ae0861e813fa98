//! The fee catalogue (`fixtures/catalogue.toml`, SPEC §5): every procedure and its fee items at
//! the base (counter) rate.
//!
//! Each fee item cites the instrument that sets its amount (`basis`) and the dates that amount is
//! in force (`effective_from`, `effective_to`, both inclusive): a base rate changes by a new entry
//! with the same fee id and a later window. An item may apply only to cases carrying some facts
//! (`requires_facts`), and a per-unit item may count from its `per_unit_from`-th unit on.
//!
//! Loading checks everything once: unknown keys, malformed procedure codes, negative amounts,
//! bad or overlapping dates, duplicate procedure codes and fee ids used by two procedures (rules
//! name fees by id, so an id belongs to one procedure). Each problem is reported with the file
//! and line.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use chrono::NaiveDate;
use serde::Deserialize;
use toml::Spanned;

use super::{LoadError, read_text};
use crate::domain::remittance::PeriodKind;
use crate::domain::{BusinessDate, Fact, Money, ProcedureCode};

/// Who sets a procedure's rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Authority {
    /// The Ministry of Finance (Bộ Tài chính), by circular.
    Mof,
    /// The provincial People's Council (HĐND tỉnh).
    Hdnd,
    /// The Government (Chính phủ), by decree: e.g. the adoption registration charge. Support
    /// for "fees the MoF sets" does not reach these.
    Government,
}

impl Authority {
    pub fn as_str(self) -> &'static str {
        match self {
            Authority::Mof => "mof",
            Authority::Hdnd => "hdnd",
            Authority::Government => "government",
        }
    }
}

/// phí (a fee, for a service) or lệ phí (a charge, fixed in advance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize, utoipa::ToSchema)]
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

/// One phí or lệ phí line of a procedure, at one base rate in force between two dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeItem {
    /// Belongs to one procedure; repeated only by entries of the same item with disjoint
    /// windows, which agree on everything but name, amount, basis and dates.
    pub id: String,
    pub kind: FeeKind,
    pub name: String,
    /// The counter rate, in đồng.
    pub amount: Money,
    /// When true, the amount is per unit and multiplied by the number of units counted.
    pub per_unit: bool,
    /// Per-unit items count units from this one on (1 = every unit): a surcharge "from the third
    /// certificate" has 3. Always 1 for items that are not per unit.
    pub per_unit_from: u32,
    /// Tiểu mục of the state-budget classification, for remittance reports.
    pub budget_subitem: Option<String>,
    /// How often its collections are remitted to the treasury (`remittance_period`: day, week
    /// or month; default month): set by the authority that set the fee (issue 19).
    pub remittance_period: PeriodKind,
    /// The instrument and article that set `amount`.
    pub basis: String,
    pub effective_from: NaiveDate,
    /// Inclusive; `None` is open-ended.
    pub effective_to: Option<NaiveDate>,
    /// The item applies only to a case carrying every one of these facts.
    pub requires_facts: BTreeSet<Fact>,
}

impl FeeItem {
    /// Whether this base rate is in force on `d` (both bounds inclusive).
    pub fn in_force(&self, d: NaiveDate) -> bool {
        self.effective_from <= d && self.effective_to.is_none_or(|to| d <= to)
    }

    /// Whether a case with these facts owes this item at all.
    pub fn applies(&self, facts: &[Fact]) -> bool {
        self.requires_facts.iter().all(|f| facts.contains(f))
    }

    /// The units charged for a case of `quantity`: 1 for an item that is not per unit, else the
    /// units from `per_unit_from` on (0 when the case has fewer).
    pub fn units(&self, quantity: u32) -> u32 {
        if self.per_unit { quantity.saturating_sub(self.per_unit_from.saturating_sub(1)) } else { 1 }
    }

    /// Whether two entries are the same item in different windows.
    fn same_item(&self, o: &FeeItem) -> bool {
        self.kind == o.kind
            && self.per_unit == o.per_unit
            && self.per_unit_from == o.per_unit_from
            && self.requires_facts == o.requires_facts
            && self.budget_subitem == o.budget_subitem
            && self.remittance_period == o.remittance_period
    }

    fn overlaps(&self, o: &FeeItem) -> bool {
        let end = |f: &FeeItem| f.effective_to.unwrap_or(NaiveDate::MAX);
        self.effective_from <= end(o) && o.effective_from <= end(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Procedure {
    /// The national code `d.dddddd`.
    pub code: String,
    pub name: String,
    pub authority: Authority,
    pub category: String,
    /// In file order; a quote lists items in this order (an item with several base windows at
    /// the place of its first entry).
    pub fees: Vec<FeeItem>,
}

impl Procedure {
    /// The distinct fee ids, in the order a quote lists them, each with its entries.
    pub fn items(&self) -> Vec<(&str, Vec<usize>)> {
        let mut out: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, f) in self.fees.iter().enumerate() {
            match out.iter_mut().find(|(id, _)| *id == f.id) {
                Some((_, entries)) => entries.push(i),
                None => out.push((&f.id, vec![i])),
            }
        }
        out
    }
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
    per_unit_from: Option<Spanned<i64>>,
    #[serde(default)]
    budget_subitem: Option<Spanned<String>>,
    #[serde(default)]
    remittance_period: Option<Spanned<String>>,
    basis: Spanned<String>,
    effective_from: Spanned<String>,
    #[serde(default)]
    effective_to: Option<Spanned<String>>,
    #[serde(default)]
    requires_facts: Option<Spanned<Vec<String>>>,
}

fn date(v: &Spanned<String>, key: &str) -> Result<NaiveDate, String> {
    BusinessDate::parse(v.get_ref())
        .map(BusinessDate::naive)
        .map_err(|_| format!("{key} {:?} is not a real date YYYY-MM-DD", v.get_ref()))
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
            let mut fees: Vec<FeeItem> = Vec::with_capacity(p.fee.len());
            for f in p.fee {
                let id = f.id.get_ref().clone();
                if !is_identifier(&id) {
                    return Err(err(f.id.span(), format!("fee id {id:?} must be lower_snake_case")));
                }
                match fee_ids.get(&id) {
                    Some(other) if other != code.as_str() => {
                        return Err(err(f.id.span(), format!("fee id {id:?} is already used by procedure {other}")));
                    }
                    _ => {
                        fee_ids.insert(id.clone(), code.to_string());
                    }
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
                let remittance_period = match &f.remittance_period {
                    None => PeriodKind::Month,
                    Some(v) => {
                        v.get_ref().parse::<PeriodKind>().map_err(|e| err(v.span(), format!("fee {id}: {e}")))?
                    }
                };
                let per_unit_from = match &f.per_unit_from {
                    None => 1,
                    Some(v) if !f.per_unit => {
                        return Err(err(v.span(), format!("fee {id}: per_unit_from goes only with per_unit = true")));
                    }
                    Some(v) => {
                        u32::try_from(*v.get_ref()).ok().filter(|n| (1..=9_999).contains(n)).ok_or_else(|| {
                            err(v.span(), format!("fee {id}: per_unit_from {} must be 1 to 9999", v.get_ref()))
                        })?
                    }
                };
                if f.basis.get_ref().trim().is_empty() {
                    return Err(err(f.basis.span(), format!("fee {id}: basis must cite the instrument that sets it")));
                }
                let effective_from =
                    date(&f.effective_from, "effective_from").map_err(|m| err(f.effective_from.span(), m))?;
                let effective_to = match &f.effective_to {
                    None => None,
                    Some(v) => {
                        let to = date(v, "effective_to").map_err(|m| err(v.span(), m))?;
                        if to < effective_from {
                            return Err(err(
                                v.span(),
                                format!("effective_to {to} is before effective_from {effective_from}"),
                            ));
                        }
                        Some(to)
                    }
                };
                let mut requires_facts = BTreeSet::new();
                if let Some(v) = &f.requires_facts {
                    if v.get_ref().is_empty() {
                        return Err(err(
                            v.span(),
                            "requires_facts must not be empty; omit it to apply to every case".into(),
                        ));
                    }
                    for name in v.get_ref() {
                        requires_facts
                            .insert(name.parse::<Fact>().map_err(|e| err(v.span(), format!("requires_facts: {e}")))?);
                    }
                }
                let item = FeeItem {
                    id,
                    kind: f.kind,
                    name: f.name,
                    amount,
                    per_unit: f.per_unit,
                    per_unit_from,
                    budget_subitem,
                    remittance_period,
                    basis: f.basis.into_inner().trim().to_owned(),
                    effective_from,
                    effective_to,
                    requires_facts,
                };
                if let Some(other) = fees.iter().find(|o| o.id == item.id) {
                    if !other.same_item(&item) {
                        return Err(err(
                            f.id.span(),
                            format!(
                                "fee {}: every base window of one item must agree on kind, per_unit, per_unit_from, requires_facts, budget_subitem and remittance_period",
                                item.id
                            ),
                        ));
                    }
                    if let Some(o) = fees.iter().find(|o| o.id == item.id && o.overlaps(&item)) {
                        return Err(err(
                            f.id.span(),
                            format!(
                                "fee {}: base window from {} overlaps the one from {}",
                                item.id, item.effective_from, o.effective_from
                            ),
                        ));
                    }
                }
                fees.push(item);
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
basis = "NQ test"
effective_from = "2017-01-01"
"#;

    #[test]
    fn a_procedure_with_its_fees_loads() {
        let c = parse(ONE).unwrap();
        let p = c.procedure(&ProcedureCode::parse("1.001193.000.00.00.H62").unwrap()).unwrap();
        assert_eq!(p.fees[0].amount.dong(), 8000);
        assert!(!p.fees[0].per_unit);
        assert_eq!(p.fees[0].budget_subitem.as_deref(), Some("2771"));
        assert_eq!(p.fees[0].basis, "NQ test");
        assert!(p.fees[0].in_force(NaiveDate::from_ymd_opt(2017, 1, 1).unwrap()));
        assert!(!p.fees[0].in_force(NaiveDate::from_ymd_opt(2016, 12, 31).unwrap()));
    }

    #[test]
    fn a_base_rate_may_change_by_a_new_window_of_the_same_item() {
        let two = ONE.replace(
            "effective_from = \"2017-01-01\"",
            "effective_from = \"2017-01-01\"\neffective_to = \"2023-07-31\"",
        ) + "[[procedure.fee]]\nid = \"le_phi_khai_sinh_qua_han\"\nkind = \"le_phi\"\nname = \"x\"\namount = 10000\nbudget_subitem = \"2771\"\nbasis = \"NQ new\"\neffective_from = \"2023-08-01\"\n";
        let c = parse(&two).unwrap();
        let p = &c.procedures[0];
        assert_eq!(p.items(), vec![("le_phi_khai_sinh_qua_han", vec![0, 1])]);
        // Overlapping windows, or an entry that is another kind of item, are refused.
        let e = parse(&two.replace("2023-08-01", "2023-07-31")).unwrap_err();
        assert!(e.message.contains("overlaps"), "{e}");
        let e = parse(&two.replace("amount = 10000\nbudget_subitem = \"2771\"", "amount = 10000")).unwrap_err();
        assert!(e.message.contains("must agree"), "{e}");
    }

    #[test]
    fn a_fee_names_its_remittance_period_default_month() {
        let c = parse(ONE).unwrap();
        assert_eq!(c.procedures[0].fees[0].remittance_period, PeriodKind::Month);
        let c = parse(&ONE.replace("amount = 8000", "amount = 8000\nremittance_period = \"week\"")).unwrap();
        assert_eq!(c.procedures[0].fees[0].remittance_period, PeriodKind::Week);
        let e = parse(&ONE.replace("amount = 8000", "amount = 8000\nremittance_period = \"year\"")).unwrap_err();
        assert!(e.message.contains("fee le_phi_khai_sinh_qua_han") && e.message.contains("day, week or month"), "{e}");
        assert_eq!(e.line, 12);
    }

    #[test]
    fn per_unit_from_counts_units_from_a_threshold() {
        let text = ONE.replace("budget_subitem = \"2771\"", "per_unit = true\nper_unit_from = 3");
        let c = parse(&text).unwrap();
        let f = &c.procedures[0].fees[0];
        assert_eq!((f.units(1), f.units(2), f.units(3), f.units(5)), (0, 0, 1, 3));
        let e = parse(&ONE.replace("budget_subitem = \"2771\"", "per_unit_from = 3")).unwrap_err();
        assert!(e.message.contains("goes only with per_unit"), "{e}");
        let e = parse(&text.replace("per_unit_from = 3", "per_unit_from = 0")).unwrap_err();
        assert!(e.message.contains("must be 1 to 9999"), "{e}");
    }

    #[test]
    fn requires_facts_names_known_facts() {
        let c =
            parse(&ONE.replace("amount = 8000", "amount = 8000\nrequires_facts = [\"late_registration\"]")).unwrap();
        let f = &c.procedures[0].fees[0];
        assert!(!f.applies(&[]));
        assert!(f.applies(&[Fact::LateRegistration]));
        let e = parse(&ONE.replace("amount = 8000", "amount = 8000\nrequires_facts = [\"late\"]")).unwrap_err();
        assert!(e.message.contains("unknown fact \"late\""), "{e}");
        assert_eq!(e.line, 12);
    }

    #[test]
    fn every_problem_names_its_line() {
        let cases = [
            (ONE.replace("amount = 8000", "amount = -1"), 11, "must not be negative"),
            (ONE.replace("budget_subitem", "colour"), 12, "unknown field `colour`"),
            (ONE.replace("\"1.001193\"", "\"1.1193\""), 3, "procedure code"),
            (ONE.replace("\"le_phi\"", "\"tax\""), 9, "unknown variant"),
            (format!("{ONE}{ONE}"), 17, "appears twice"),
            (ONE.replace("amount = 8000", "amount = \"8000\""), 11, "invalid type"),
            (ONE.replace("2017-01-01", "2017-02-30"), 14, "not a real date"),
            (ONE.replace("basis = \"NQ test\"", "basis = \" \""), 13, "basis must cite"),
            (ONE.replace("basis = \"NQ test\"\n", ""), 7, "missing field `basis`"),
            (
                ONE.replace("\"2017-01-01\"", "\"2017-01-01\"\neffective_to = \"2016-01-01\""),
                15,
                "before effective_from",
            ),
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
        assert_eq!(e.line, 22);
    }
}
