//! `Money`: a non-negative whole number of đồng.
//!
//! Money never passes through a float. Arithmetic is checked: an overflow is an error the caller
//! handles, not a wrapped value. Signed differences (a settlement short by some amount) are plain
//! `i64` where they occur; an amount owed, paid or settled is always a `Money`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount must not be negative, got {0}")]
    Negative(i64),
    #[error("amount overflows 64 bits")]
    Overflow,
}

/// Invariant: `0 <= self.0`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn new(dong: i64) -> Result<Self, MoneyError> {
        if dong < 0 { Err(MoneyError::Negative(dong)) } else { Ok(Self(dong)) }
    }

    pub fn dong(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.0.checked_add(other.0).map(Money).ok_or(MoneyError::Overflow)
    }

    /// `self - other`; an error when the result would be negative.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        let d = self.0.checked_sub(other.0).ok_or(MoneyError::Overflow)?;
        Money::new(d)
    }

    pub fn checked_mul(self, n: u32) -> Result<Money, MoneyError> {
        self.0.checked_mul(i64::from(n)).map(Money).ok_or(MoneyError::Overflow)
    }

    /// Sums amounts, failing on overflow.
    pub fn sum<I: IntoIterator<Item = Money>>(it: I) -> Result<Money, MoneyError> {
        it.into_iter().try_fold(Money::ZERO, Money::checked_add)
    }
}

impl fmt::Display for Money {
    /// `1.234.567 đ`, with the dot as the thousands separator as Vietnamese documents write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push('.');
            }
            out.push(c);
        }
        write!(f, "{out} đ")
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        Money::new(v).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_amounts_are_refused() {
        assert_eq!(Money::new(-1), Err(MoneyError::Negative(-1)));
        assert_eq!(Money::new(0).unwrap().dong(), 0);
    }

    #[test]
    fn arithmetic_is_checked() {
        let max = Money::new(i64::MAX).unwrap();
        assert_eq!(max.checked_add(Money::new(1).unwrap()), Err(MoneyError::Overflow));
        assert_eq!(Money::new(5).unwrap().checked_sub(Money::new(6).unwrap()), Err(MoneyError::Negative(-1)));
        assert_eq!(max.checked_mul(2), Err(MoneyError::Overflow));
        assert_eq!(Money::new(7).unwrap().checked_mul(3).unwrap().dong(), 21);
    }

    #[test]
    fn display_groups_thousands() {
        assert_eq!(Money::new(1_234_567).unwrap().to_string(), "1.234.567 đ");
        assert_eq!(Money::new(115_000).unwrap().to_string(), "115.000 đ");
        assert_eq!(Money::new(0).unwrap().to_string(), "0 đ");
    }

    #[test]
    fn json_refuses_negative_and_fractional_amounts() {
        assert!(serde_json::from_str::<Money>("-5").is_err());
        assert!(serde_json::from_str::<Money>("5.5").is_err());
        assert_eq!(serde_json::from_str::<Money>("5").unwrap().dong(), 5);
    }
}
