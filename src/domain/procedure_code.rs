//! `ProcedureCode`: the administrative procedure code (mã TTHC).
//!
//! National form `d.dddddd` (e.g. `1.001193`). A local form appends the right-aligned code of the
//! agency (`2.000815.000.00.00.H55`), optionally followed by a two-digit service variant
//! (`...H55.02`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "procedure code must be d.dddddd (e.g. 1.001193), optionally followed by an agency code (.000.00.00.H55) and a variant (.02), got {0:?}"
)]
pub struct ProcedureCodeError(pub String);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcedureCode(String);

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

impl ProcedureCode {
    pub fn parse(s: &str) -> Result<Self, ProcedureCodeError> {
        let parts: Vec<&str> = s.split('.').collect();
        let national = parts.len() >= 2 && digits(parts[0], 1) && digits(parts[1], 6);
        let agency = |p: &[&str]| {
            digits(p[0], 3)
                && digits(p[1], 2)
                && digits(p[2], 2)
                && p[3].len() == 3
                && p[3].as_bytes()[0].is_ascii_uppercase()
                && digits(&p[3][1..], 2)
        };
        let ok = national
            && match parts.len() {
                2 => true,
                6 => agency(&parts[2..6]),
                7 => agency(&parts[2..6]) && digits(parts[6], 2),
                _ => false,
            };
        if ok { Ok(Self(s.to_owned())) } else { Err(ProcedureCodeError(s.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The national part `d.dddddd`, which is what the fee catalogue is keyed by.
    pub fn national(&self) -> &str {
        &self.0[..8]
    }
}

impl fmt::Display for ProcedureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ProcedureCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ProcedureCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ProcedureCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_and_local_forms_parse() {
        for ok in ["1.001193", "2.000815.000.00.00.H55", "2.000815.000.00.00.H55.02", "1.011442.000.00.00.H38"] {
            let p = ProcedureCode::parse(ok).unwrap();
            assert_eq!(p.as_str(), ok);
        }
        assert_eq!(ProcedureCode::parse("2.000815.000.00.00.H55").unwrap().national(), "2.000815");
    }

    #[test]
    fn malformed_codes_are_refused() {
        for bad in [
            "",
            "1.00119",
            "1.0011933",
            "12.001193",
            "1-001193",
            "1.001193.",
            "1.001193.000.00.00.h55",
            "1.001193.000.00.H55",
            "1.001193.000.00.00.H55.2",
        ] {
            assert!(ProcedureCode::parse(bad).is_err(), "{bad}");
        }
    }
}
