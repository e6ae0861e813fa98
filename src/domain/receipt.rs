//! E-receipt vocabulary (biên lai điện tử, NĐ 254/2026 Art. 22–29, TT 91/2026 Phụ lục II; see
//! `../shared/reference/after-collection.md` §1): the template symbol, the receipt symbol and its
//! two letters, receipt numbers, and the closed sets of kinds, payers and statuses.
//!
//! Facts tagged [S] in the reference: template `EBL01` (a receipt without face value); a receipt
//! symbol of five characters, the two last digits of the year of issue, the letter `T` (registered
//! by an organisation with the tax authority) and two letters chosen from twenty; numbers of at
//! most 8 digits, one sequence per symbol and year starting at 1. The meaning of the statuses
//! (how a replaced or adjusted receipt is shown on the daily summary) is [I]: inferred from the
//! invoice summary's status column, not read in a source.

use std::fmt;

use serde::{Serialize, Serializer};

use super::tags::tag_enum;

/// Ký hiệu mẫu biên lai: a receipt for fees and charges without face value (TT 91 Phụ lục II) [S].
pub const TEMPLATE: &str = "EBL01";

/// The twenty letters an organisation may choose its receipt symbol's last two from [S].
pub const SYMBOL_LETTERS: &str = "ABCDEGHKLMNPQRSTUVXY";

/// The largest receipt number: Arabic digits, at most 8 of them (NĐ 254 Art. 23(2)(c)) [S].
pub const MAX_NUMBER: i64 = 99_999_999;

/// Why two letters cannot end a receipt symbol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be two letters from {SYMBOL_LETTERS} (TT 91/2026 Phụ lục II), got {0:?}")]
pub struct LettersError(pub String);

/// The two letters the organisation chose for its receipt symbol (configuration), each one of
/// `SYMBOL_LETTERS`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SymbolLetters(String);

impl SymbolLetters {
    pub fn parse(s: &str) -> Result<Self, LettersError> {
        let ok = s.chars().count() == 2 && s.chars().all(|c| SYMBOL_LETTERS.contains(c));
        if ok { Ok(Self(s.to_owned())) } else { Err(LettersError(s.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The receipt symbol for a year of issue: `26TAB` for 2026 and `AB` (the last two digits of
    /// the year, `T`, the letters).
    pub fn symbol(&self, year: i32) -> String {
        format!("{:02}T{}", year.rem_euclid(100), self.0)
    }
}

impl fmt::Display for SymbolLetters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A receipt's template, symbol and number: what the portal and the tax office quote it by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
pub struct ReceiptRef {
    pub template: String,
    pub symbol: String,
    pub number: i64,
}

impl Serialize for ReceiptRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut st = s.serialize_struct("ReceiptRef", 3)?;
        st.serialize_field("template", &self.template)?;
        st.serialize_field("symbol", &self.symbol)?;
        st.serialize_field("number", &self.number)?;
        st.end()
    }
}

impl fmt::Display for ReceiptRef {
    /// `EBL01/26TAB/123`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.template, self.symbol, self.number)
    }
}

tag_enum!(
    /// What a receipt is. A receipt is never changed or deleted: a correction is a new receipt
    /// that references the one it corrects (TT 91/2026 Art. 20) [S].
    ReceiptKind, "receipt kind", {
        /// Issued when the money was collected (a payment confirmed, a case the budget pays).
        Original => "original",
        /// Replaces a receipt with an error (TT 91 Art. 20(2), "chứng từ điện tử thay thế") [S].
        Replacement => "replacement",
        /// Adjusts a receipt's amounts, a refund above all; carries signed differences [I].
        Adjustment => "adjustment",
    }
);

tag_enum!(
    /// Who paid the amount a receipt acknowledges.
    PayerKind, "payer kind", {
        /// The applicant of the case, through a gateway.
        Citizen => "citizen",
        /// The province's budget, under a support rule (`payer = "provincial_budget"`).
        Budget => "budget",
    }
);

tag_enum!(
    /// Where a receipt stands, derived from the receipts that reference it (rows never change):
    /// every number ever allocated ends in one of these, so a gap is always explained [I].
    ReceiptStatus, "receipt status", {
        /// In force: nothing replaced it (it may be an original, a replacement or an adjustment).
        Issued => "issued",
        /// A replacement references it: it no longer counts.
        Replaced => "replaced",
        /// One or more adjustments reference it: it counts with them.
        Adjusted => "adjusted",
    }
);

impl ReceiptStatus {
    /// The status column of the daily summary (Mẫu 01/TH-BLĐT "Trạng thái") for a receipt of
    /// this kind in this status [I: labels modelled on the invoice summary's].
    pub fn summary_label(self, kind: ReceiptKind) -> &'static str {
        match (self, kind) {
            (ReceiptStatus::Replaced, _) => "Đã bị thay thế",
            (ReceiptStatus::Adjusted, _) => "Đã bị điều chỉnh",
            (ReceiptStatus::Issued, ReceiptKind::Original) => "Mới",
            (ReceiptStatus::Issued, ReceiptKind::Replacement) => "Thay thế",
            (ReceiptStatus::Issued, ReceiptKind::Adjustment) => "Điều chỉnh",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_symbol_is_year_t_and_two_of_the_twenty_letters() {
        let l = SymbolLetters::parse("AB").unwrap();
        assert_eq!(l.symbol(2026), "26TAB");
        assert_eq!(l.symbol(2100), "00TAB");
        assert_eq!(l.symbol(2009), "09TAB");
        for bad in ["", "A", "ABC", "ab", "AF", "IO", "WZ", "Đ1", "A "] {
            assert!(SymbolLetters::parse(bad).is_err(), "{bad}");
        }
        // Every pair of the twenty is allowed.
        for a in SYMBOL_LETTERS.chars() {
            for b in SYMBOL_LETTERS.chars() {
                assert!(SymbolLetters::parse(&format!("{a}{b}")).is_ok());
            }
        }
        assert_eq!(SYMBOL_LETTERS.len(), 20);
    }

    #[test]
    fn a_reference_prints_and_serialises_in_order() {
        let r = ReceiptRef { template: TEMPLATE.into(), symbol: "26TAB".into(), number: 7 };
        assert_eq!(r.to_string(), "EBL01/26TAB/7");
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"template":"EBL01","symbol":"26TAB","number":7}"#);
    }

    #[test]
    fn statuses_label_the_summary() {
        assert_eq!(ReceiptStatus::Issued.summary_label(ReceiptKind::Original), "Mới");
        assert_eq!(ReceiptStatus::Replaced.summary_label(ReceiptKind::Original), "Đã bị thay thế");
        assert_eq!(ReceiptStatus::Issued.summary_label(ReceiptKind::Adjustment), "Điều chỉnh");
    }
}
