//! The variables of what follows collection: the organisation receipts name and how they are
//! numbered (`FEERECON_RECEIPT_*`), and the fields of a treasury remittance the ledger cannot
//! give (`FEERECON_REMITTANCE_*`). Read by `Config::from_lookup` with the same rules: an empty
//! value counts as unset, a bad one stops start-up naming its variable.

use super::{ConfigError, err};
use crate::domain::receipt::SymbolLetters;

/// What receipts say about the collecting organisation (NĐ 254/2026 Art. 23(2)(đ)) and how they
/// are numbered (TT 91/2026 Phụ lục II).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptConfig {
    /// `FEERECON_RECEIPT_ORG_NAME`: the collecting organisation's name.
    pub org_name: String,
    /// `FEERECON_RECEIPT_TAX_CODE`: its tax code (mã số thuế), 10 digits or 10-3.
    pub tax_code: String,
    /// `FEERECON_RECEIPT_SYMBOL_LETTERS`: the two letters of the receipt symbol it registered.
    pub letters: SymbolLetters,
    /// `FEERECON_RECEIPT_BUDGET_PAYER`: the payer named on receipts the budget pays.
    pub budget_payer: String,
    /// Whether the organisation's name and tax code were configured (`false`: placeholders,
    /// which `serve` warns about; such receipts are not valid vouchers).
    pub configured: bool,
}

/// The placeholders of an unconfigured organisation.
pub const PLACEHOLDER_ORG_NAME: &str = "Đơn vị thu phí, lệ phí (chưa cấu hình)";
pub const PLACEHOLDER_TAX_CODE: &str = "0000000000";
pub const DEFAULT_BUDGET_PAYER: &str = "Ngân sách nhà nước (ngân sách tỉnh hỗ trợ)";

impl Default for ReceiptConfig {
    fn default() -> Self {
        Self {
            org_name: PLACEHOLDER_ORG_NAME.into(),
            tax_code: PLACEHOLDER_TAX_CODE.into(),
            letters: SymbolLetters::parse("AA").expect("AA is two of the twenty letters"),
            budget_payer: DEFAULT_BUDGET_PAYER.into(),
            configured: false,
        }
    }
}

/// What the remittance statements (issue 19) name beside the organisation of `ReceiptConfig`:
/// the fields of a C1-02/NS transfer the service cannot read from the ledger
/// (../shared/reference/after-collection.md §2.2 [S: the form's fields]). Every value is optional:
/// a statement shows what is missing as a warning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemittanceConfig {
    /// `FEERECON_REMITTANCE_CHAPTER`: the collecting agency's chapter code (mã chương), three
    /// digits, entered on every line of the transfer [S: form field]; its value comes from the
    /// agency's registration with the treasury [I: the chapter list was not read].
    pub chapter: Option<String>,
    /// `FEERECON_REMITTANCE_PAYER_ACCOUNT`: the account the transfer is debited from (the
    /// collection account the gateways settle into), as written on the transfer.
    pub payer_account: Option<String>,
    /// `FEERECON_REMITTANCE_TREASURY`: the State Treasury (KBNN) office holding the target accounts.
    pub treasury: Option<String>,
    /// `FEERECON_REMITTANCE_PHI_ACCOUNT`: the fee account awaiting the budget (tài khoản phí chờ
    /// nộp ngân sách) phí go to (NĐ 120/2016 Art. 3(2)(a) as amended) [S].
    pub phi_account: Option<String>,
    /// `FEERECON_REMITTANCE_LE_PHI_ACCOUNT`: the account lệ phí go to: the lệ phí account awaiting
    /// the budget, or the budget's revenue account (same article) [S].
    pub le_phi_account: Option<String>,
}

/// A remittance text from configuration: one line of at most 100 characters.
fn remittance_text(variable: &str, v: &str) -> Result<String, ConfigError> {
    let v = v.trim();
    if v.chars().count() > 100 || v.chars().any(char::is_control) {
        return Err(err(variable, "must be one line of at most 100 characters"));
    }
    Ok(v.to_owned())
}

/// A tax code (mã số thuế): 10 digits, or 10 digits, `-` and 3 digits for a dependent unit.
pub fn check_tax_code(v: &str) -> Result<(), String> {
    let b = v.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let ok = (b.len() == 10 && digits(b)) || (b.len() == 14 && digits(&b[..10]) && b[10] == b'-' && digits(&b[11..]));
    if ok { Ok(()) } else { Err(format!("{v:?} is not a tax code (10 digits, or 10 digits, '-' and 3 digits)")) }
}

/// A receipt text from configuration: one line, at most 300 characters.
fn receipt_text(variable: &str, v: &str) -> Result<String, ConfigError> {
    let v = v.trim();
    if v.chars().count() > 300 || v.chars().any(char::is_control) {
        return Err(err(variable, "must be one line of at most 300 characters"));
    }
    Ok(v.to_owned())
}

impl ReceiptConfig {
    /// Reads the `FEERECON_RECEIPT_*` variables through `var` (set and non-empty values only).
    pub(super) fn read(var: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let org = var("FEERECON_RECEIPT_ORG_NAME");
        let tax = var("FEERECON_RECEIPT_TAX_CODE");
        if let Some(t) = &tax {
            check_tax_code(t.trim()).map_err(|r| err("FEERECON_RECEIPT_TAX_CODE", r))?;
        }
        let defaults = ReceiptConfig::default();
        let letters = match var("FEERECON_RECEIPT_SYMBOL_LETTERS") {
            Some(l) => {
                SymbolLetters::parse(l.trim()).map_err(|e| err("FEERECON_RECEIPT_SYMBOL_LETTERS", e.to_string()))?
            }
            None => defaults.letters.clone(),
        };
        Ok(ReceiptConfig {
            configured: org.is_some() && tax.is_some(),
            org_name: match org {
                Some(o) => receipt_text("FEERECON_RECEIPT_ORG_NAME", &o)?,
                None => defaults.org_name,
            },
            tax_code: tax.map_or(defaults.tax_code, |t| t.trim().to_owned()),
            letters,
            budget_payer: match var("FEERECON_RECEIPT_BUDGET_PAYER") {
                Some(b) => receipt_text("FEERECON_RECEIPT_BUDGET_PAYER", &b)?,
                None => defaults.budget_payer,
            },
        })
    }
}

impl RemittanceConfig {
    /// Reads the `FEERECON_REMITTANCE_*` variables through `var` (set and non-empty values only).
    pub(super) fn read(var: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let text = |k: &str| var(k).map(|v| remittance_text(k, &v)).transpose();
        let chapter = var("FEERECON_REMITTANCE_CHAPTER").map(|v| v.trim().to_owned());
        if let Some(c) = &chapter
            && !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(err("FEERECON_REMITTANCE_CHAPTER", format!("{c:?} is not a chapter code (three digits)")));
        }
        Ok(RemittanceConfig {
            chapter,
            payer_account: text("FEERECON_REMITTANCE_PAYER_ACCOUNT")?,
            treasury: text("FEERECON_REMITTANCE_TREASURY")?,
            phi_account: text("FEERECON_REMITTANCE_PHI_ACCOUNT")?,
            le_phi_account: text("FEERECON_REMITTANCE_LE_PHI_ACCOUNT")?,
        })
    }
}
