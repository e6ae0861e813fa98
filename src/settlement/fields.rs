//! Reading one field of a settlement line: references, amounts in the profile's number format,
//! times in its formats, status words. Shared by the general reader (`mod.rs`) and the fast path
//! (`fast.rs`), so that both accept and refuse exactly the same values.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::{FileError, LineStatus, Profile, err};

/// Adds the decimal digits of `digits` to `acc`; `None` when one is not a digit.
fn push_digits(acc: i128, digits: &str) -> Option<i128> {
    digits.bytes().try_fold(acc, |acc, b| b.is_ascii_digit().then(|| acc * 10 + i128::from(b - b'0')))
}

/// Parses a money field into whole đồng: digits, with the profile's thousands separator only
/// between groups of three (the first without a leading zero), then, when the profile names a
/// decimal separator and the field uses it, exactly `decimal_places` decimals (a field without
/// the separator is whole đồng); the value divided by the amount scale must be whole. Allocates
/// nothing (it runs twice per line of million-line files).
pub(super) fn amount(raw: &str, p: &Profile, line: usize, field: &str) -> Result<i64, FileError> {
    let t = raw.trim();
    if t.starts_with('-') || (t.starts_with('(') && t.ends_with(')')) {
        return Err(err(line, Some(field), format!("{t:?} is negative; a refund is a line whose status is refund")));
    }
    let bad = |why: String| err(line, Some(field), format!("{t:?} is not a whole amount: {why}"));
    let (int, frac) = match p.decimal_separator.and_then(|d| t.split_once(d)) {
        Some((int, frac)) => (int, Some(frac)),
        None => (t, None),
    };
    // The integer part: at most 18 digits (so that the value, decimals included, fits an i128
    // and whole đồng an i64), grouped by threes when a separator is used.
    if int.bytes().filter(u8::is_ascii_digit).count() > 18 {
        return Err(err(line, Some(field), format!("{t:?} is too large")));
    }
    let grouped = p.thousands_separator.filter(|s| int.contains(*s));
    let mut value: i128 = 0;
    match grouped {
        Some(sep) => {
            for (i, group) in int.split(sep).enumerate() {
                // The first group has 1 to 3 digits and no leading zero: "0.500" or "012.345" is
                // a decimal written with the wrong mark, not a number of thousands.
                let ok =
                    if i == 0 { (1..=3).contains(&group.len()) && !group.starts_with('0') } else { group.len() == 3 };
                value = match push_digits(value, group) {
                    Some(v) if ok => v,
                    _ => {
                        return Err(bad(format!(
                            "the thousands separator {sep:?} goes only between groups of three digits (1{sep}234{sep}567)"
                        )));
                    }
                };
            }
        }
        None => {
            value = push_digits(0, int).filter(|_| !int.is_empty()).ok_or_else(|| {
                bad(match (p.thousands_separator, p.decimal_separator) {
                    (None, None) => "digits only".into(),
                    (Some(s), None) => format!("digits, with {s:?} between groups of three"),
                    (None, Some(d)) => format!("digits, then {d:?} and decimals"),
                    (Some(s), Some(d)) => {
                        format!("digits, with {s:?} between groups of three, then {d:?} and decimals")
                    }
                })
            })?;
        }
    }
    // The decimals: exactly as many as the profile says, and zero once scaled.
    let mut divisor = i128::from(p.amount_scale);
    if let (Some(frac), Some(d)) = (frac, p.decimal_separator) {
        let places = p.decimal_places as usize;
        if frac.len() != places || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!("after {d:?} come exactly {places} digits")));
        }
        value = push_digits(value, frac).ok_or_else(|| bad("decimals are digits".into()))?;
        divisor *= 10i128.pow(p.decimal_places);
        if value % divisor != 0 {
            return Err(err(
                line,
                Some(field),
                format!("{t:?} has decimals that are not zero after dividing by the amount scale {}", p.amount_scale),
            ));
        }
    }
    if value % divisor != 0 {
        return Err(err(line, Some(field), format!("{t} is not divisible by the amount scale {}", p.amount_scale)));
    }
    i64::try_from(value / divisor).map_err(|_| err(line, Some(field), format!("{t:?} is too large")))
}

/// `YYYY-MM-DD HH:MM:SS` read directly: the most common format, on the hot path of large files.
pub fn parse_iso_local(t: &str) -> Option<NaiveDateTime> {
    let b = t.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(n(0..4)?).ok()?, n(5..7)?, n(8..10)?)?;
    date.and_hms_opt(n(11..13)?, n(14..16)?, n(17..19)?)
}

pub(super) fn time(raw: &str, p: &Profile, line: usize) -> Result<DateTime<Utc>, FileError> {
    let t = raw.trim();
    for f in &p.time_formats {
        if f == "%Y-%m-%d %H:%M:%S"
            && let Some(n) = parse_iso_local(t)
            && let Some(d) = n.and_local_timezone(p.time_zone).single()
        {
            return Ok(d.with_timezone(&Utc));
        }
        if f == "rfc3339" {
            if let Ok(d) = DateTime::parse_from_rfc3339(t) {
                return Ok(d.with_timezone(&Utc));
            }
        } else if let Ok(n) = NaiveDateTime::parse_from_str(t, f)
            && let Some(d) = n.and_local_timezone(p.time_zone).single()
        {
            return Ok(d.with_timezone(&Utc));
        }
    }
    Err(err(line, Some("txn_time"), format!("{t:?} matches none of the formats {}", p.time_formats.join(" | "))))
}

/// References are identifiers: not empty, at most 100 bytes, no control characters.
pub(super) fn reference<'a>(v: &'a str, line: usize, f: &str) -> Result<&'a str, FileError> {
    if v.is_empty() {
        return Err(err(line, Some(f), "is empty"));
    }
    if v.len() > 100 || v.chars().any(char::is_control) {
        return Err(err(
            line,
            Some(f),
            format!("{v:?} is not a reference (at most 100 characters, no control characters)"),
        ));
    }
    Ok(v)
}

/// The amount and the fee, which must not exceed the amount. `fee_text` is `None` when the
/// profile maps no fee column (the fee is 0). An empty fee cell is 0 on a refund line, which
/// carries no fee; on a success line it is an error: read as 0 it would overstate what the bank
/// received, silently.
pub(super) fn amount_and_fee(
    amount_text: &str,
    fee_text: Option<&str>,
    status: LineStatus,
    p: &Profile,
    line: usize,
) -> Result<(i64, i64), FileError> {
    let amount_v = amount(amount_text, p, line, "amount")?;
    let fee = match fee_text.map(str::trim) {
        None => 0,
        Some("") if status == LineStatus::Refund => 0,
        Some("") => {
            return Err(err(line, Some("fee"), "empty on a success line (write 0 when the gateway charged nothing)"));
        }
        Some(text) => amount(text, p, line, "fee")?,
    };
    if fee > amount_v {
        return Err(err(line, Some("fee"), format!("{fee} is larger than the amount {amount_v}")));
    }
    Ok((amount_v, fee))
}

/// The status word, against the profile's words (trimmed and lowercased in `success`, `refund`).
pub(super) fn status(
    raw: &str,
    p: &Profile,
    success: &[String],
    refund: &[String],
    line: usize,
) -> Result<LineStatus, FileError> {
    let raw_word = raw.trim();
    // Most files spell the word as the profile does; only the others pay for lowercasing.
    let word = if success.iter().chain(refund).any(|w| w == raw_word) {
        std::borrow::Cow::Borrowed(raw_word)
    } else {
        std::borrow::Cow::Owned(raw_word.to_lowercase())
    };
    if success.iter().any(|w| *w == word) {
        Ok(LineStatus::Success)
    } else if refund.iter().any(|w| *w == word) {
        Ok(LineStatus::Refund)
    } else {
        Err(err(
            line,
            Some("status"),
            format!(
                "{word:?} is neither a success word ({}) nor a refund word ({})",
                p.success_words.join(", "),
                p.refund_words.join(", ")
            ),
        ))
    }
}
