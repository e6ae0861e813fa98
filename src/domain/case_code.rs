//! `CaseCode`: the case number (mã số hồ sơ) of TT 01/2018/TT-VPCP Art. 19, and `UnitCode`, the
//! receiving unit it starts with.
//!
//! Form: `V1V2V3.Z1Z2.Y1Y2.MX1X2-YYMMDD-XXXX`, e.g. `000.00.12.H62-240715-0001`:
//! the receiving unit (QCVN 102:2016, right-aligned: level 1 `MX1X2` at the right end), the
//! receipt date (`YYMMDD`, a real date of 20YY) and the sequence within that day (0001–9999).

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a case code. Each variant says which part is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseCodeError {
    #[error("must look like 000.00.12.H62-240715-0001 (unit-YYMMDD-sequence), got {0:?}")]
    Shape(String),
    #[error("receiving unit {0:?} must look like 000.00.12.H62 (3, 2 and 2 digits, then a letter and 2 digits)")]
    Unit(String),
    #[error("receipt date {0:?} is not a real date YYMMDD")]
    Date(String),
    #[error("sequence {0:?} must be 0001 to 9999")]
    Sequence(String),
}

/// A receiving unit's code in the right-aligned form of QCVN 102:2016 (`000.00.12.H62`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitCode(String);

impl UnitCode {
    pub fn parse(s: &str) -> Result<Self, CaseCodeError> {
        let b = s.as_bytes();
        // 000.00.12.H62 is 13 bytes: digits at fixed places, dots between groups.
        let ok = b.len() == 13
            && b[..3].iter().all(u8::is_ascii_digit)
            && b[3] == b'.'
            && b[4..6].iter().all(u8::is_ascii_digit)
            && b[6] == b'.'
            && b[7..9].iter().all(u8::is_ascii_digit)
            && b[9] == b'.'
            && b[10].is_ascii_uppercase()
            && b[11..13].iter().all(u8::is_ascii_digit);
        if ok { Ok(Self(s.to_owned())) } else { Err(CaseCodeError::Unit(s.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for UnitCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl fmt::Display for UnitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A valid case code. Invariant: the unit parses, the date is a real date of 20YY and the
/// sequence is 1..=9999, so `unit()`, `receipt_date()` and `sequence()` cannot fail.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CaseCode {
    code: String,
    unit: UnitCode,
    date: NaiveDate,
    sequence: u16,
}

impl CaseCode {
    pub fn parse(s: &str) -> Result<Self, CaseCodeError> {
        let shape = || CaseCodeError::Shape(s.to_owned());
        let mut parts = s.split('-');
        let (Some(unit), Some(date), Some(seq), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(shape());
        };
        if date.len() != 6 || !date.bytes().all(|c| c.is_ascii_digit()) {
            return Err(shape());
        }
        if seq.len() != 4 || !seq.bytes().all(|c| c.is_ascii_digit()) {
            return Err(shape());
        }
        let unit = UnitCode::parse(unit)?;
        let num = |r: std::ops::Range<usize>| date[r].parse::<u32>().map_err(|_| shape());
        let (yy, mm, dd) = (num(0..2)?, num(2..4)?, num(4..6)?);
        let year = i32::try_from(2000 + yy).map_err(|_| shape())?;
        let date_value = NaiveDate::from_ymd_opt(year, mm, dd).ok_or_else(|| CaseCodeError::Date(date.to_owned()))?;
        let sequence: u16 = seq.parse().map_err(|_| shape())?;
        if sequence == 0 {
            return Err(CaseCodeError::Sequence(seq.to_owned()));
        }
        Ok(Self { code: s.to_owned(), unit, date: date_value, sequence })
    }

    pub fn as_str(&self) -> &str {
        &self.code
    }

    /// The receiving unit, e.g. `000.00.12.H62`.
    pub fn unit(&self) -> &UnitCode {
        &self.unit
    }

    /// The receipt date the code carries (`YYMMDD`).
    pub fn receipt_date(&self) -> NaiveDate {
        self.date
    }

    pub fn sequence(&self) -> u16 {
        self.sequence
    }
}

impl fmt::Display for CaseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)
    }
}

impl Serialize for CaseCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.code)
    }
}

impl<'de> Deserialize<'de> for CaseCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CaseCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worked_example_parses_into_its_parts() {
        let c = CaseCode::parse("000.00.12.H62-240715-0001").unwrap();
        assert_eq!(c.unit().as_str(), "000.00.12.H62");
        assert_eq!(c.receipt_date(), NaiveDate::from_ymd_opt(2024, 7, 15).unwrap());
        assert_eq!(c.sequence(), 1);
        assert_eq!(c.to_string(), "000.00.12.H62-240715-0001");
    }

    #[test]
    fn each_bad_part_is_named() {
        let cases = [
            ("000.00.12.H62-240715", "must look like"),
            ("000.00.12.H62-240715-0001-1", "must look like"),
            ("000.00.12.h62-240715-0001", "receiving unit"),
            ("00.00.12.H62-240715-0001", "receiving unit"),
            ("000.00.12.H6-240715-0001", "receiving unit"),
            ("000.00.12.H62-240230-0001", "not a real date"),
            ("000.00.12.H62-241301-0001", "not a real date"),
            ("000.00.12.H62-240715-0000", "0001 to 9999"),
            ("000.00.12.H62-24071-00001", "must look like"),
            ("000.00.12.H62-2407a5-0001", "must look like"),
            ("000.00.12.H62-240715-00a1", "must look like"),
            (" 000.00.12.H62-240715-0001", "receiving unit"),
        ];
        for (input, reason) in cases {
            let err = CaseCode::parse(input).expect_err(input).to_string();
            assert!(err.contains(reason), "{input}: {err}");
        }
    }

    #[test]
    fn leap_days_follow_the_calendar() {
        assert!(CaseCode::parse("000.00.12.H62-240229-0001").is_ok());
        assert!(CaseCode::parse("000.00.12.H62-250229-0001").is_err());
    }
}
