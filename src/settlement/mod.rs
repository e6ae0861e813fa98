//! Settlement files (SPEC §7.1): profiles that describe each gateway's CSV, and the all-or-nothing
//! parser that turns a file into canonical lines.
//!
//! A profile maps the file's headers to the canonical fields `gateway_txn_no, txn_ref, amount,
//! fee, txn_time, status` and states the encoding (UTF-8, UTF-8 with BOM, UTF-16LE), the
//! delimiter, the thousands separator, the amount scale (VNPAY files may be ×100: a value not
//! divisible by the scale is an error), the time formats and zone, and the words meaning success
//! and refund. `canonical` is built in. Parsing is pure: a bad line fails the whole file with its
//! line number, field and reason.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;

use crate::domain::payment::Gateway;
use crate::domain::vn_offset;

/// Why a file was refused: the line, the field when one is at fault, and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {reason}", field.as_ref().map(|f| format!(", field {f}")).unwrap_or_default())]
pub struct FileError {
    pub line: usize,
    pub field: Option<String>,
    pub reason: String,
}

fn err(line: usize, field: Option<&str>, reason: impl Into<String>) -> FileError {
    FileError { line, field: field.map(str::to_owned), reason: reason.into() }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8, with or without a byte-order mark.
    Utf8,
    /// UTF-8 that must start with a byte-order mark.
    Utf8Bom,
    Utf16Le,
}

pub use crate::domain::recon::{Line, LineStatus};

/// A file's layout.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub encoding: Encoding,
    pub delimiter: u8,
    pub thousands_separator: Option<char>,
    pub amount_scale: i64,
    /// chrono formats tried in order; `rfc3339` means RFC 3339 with an offset.
    pub time_formats: Vec<String>,
    /// The zone of times written without an offset.
    pub time_zone: FixedOffset,
    pub success_words: Vec<String>,
    pub refund_words: Vec<String>,
    /// Canonical field → the file's header.
    pub columns: HashMap<&'static str, String>,
    /// Lines before the header (a title row, say).
    pub skip_lines: usize,
}

pub const FIELDS: [&str; 6] = ["gateway_txn_no", "txn_ref", "amount", "fee", "txn_time", "status"];

impl Profile {
    /// The built-in `canonical` profile (SPEC §7.1).
    pub fn canonical() -> Self {
        Self {
            name: "canonical".into(),
            encoding: Encoding::Utf8,
            delimiter: b',',
            thousands_separator: None,
            amount_scale: 1,
            time_formats: vec!["%Y-%m-%d %H:%M:%S".into(), "rfc3339".into()],
            time_zone: vn_offset(),
            success_words: vec!["success".into()],
            refund_words: vec!["refund".into()],
            columns: FIELDS.iter().map(|f| (*f, (*f).to_owned())).collect(),
            skip_lines: 0,
        }
    }

    /// `canonical`, a profile name in `dir` (`<name>.toml`), or a path to a profile file.
    pub fn resolve(dir: &Path, name_or_path: &str) -> Result<Self, String> {
        if name_or_path == "canonical" {
            return Ok(Self::canonical());
        }
        let is_name = name_or_path.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let path = if is_name { dir.join(format!("{name_or_path}.toml")) } else { Path::new(name_or_path).to_owned() };
        let text = std::fs::read_to_string(&path).map_err(|e| format!("profile {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("profile {}: {e}", path.display()))
    }

    /// Parses a profile file.
    pub fn parse(text: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            profile: RawProfile,
            columns: HashMap<String, String>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawProfile {
            name: String,
            #[serde(default)]
            gateway: Option<String>,
            encoding: String,
            #[serde(default = "comma")]
            delimiter: String,
            #[serde(default)]
            thousands_separator: String,
            #[serde(default = "one")]
            amount_scale: i64,
            time_formats: Vec<String>,
            #[serde(default = "plus7")]
            time_zone: String,
            success_words: Vec<String>,
            refund_words: Vec<String>,
            #[serde(default)]
            skip_lines: usize,
        }
        fn comma() -> String {
            ",".into()
        }
        fn one() -> i64 {
            1
        }
        fn plus7() -> String {
            "+07:00".into()
        }
        let raw: Raw = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        let p = raw.profile;
        if let Some(g) = &p.gateway {
            g.parse::<Gateway>().map_err(|e| e.to_string())?;
        }
        let encoding = match p.encoding.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Encoding::Utf8,
            "utf-8-bom" | "utf-8 with bom" => Encoding::Utf8Bom,
            "utf-16le" | "utf-16-le" => Encoding::Utf16Le,
            other => return Err(format!("encoding {other:?} must be utf-8, utf-8-bom or utf-16le")),
        };
        let delimiter = match p.delimiter.as_str() {
            "\\t" | "\t" => b'\t',
            d if d.len() == 1 => d.as_bytes()[0],
            d => return Err(format!("delimiter {d:?} must be one character")),
        };
        let mut chars = p.thousands_separator.chars();
        let thousands_separator = match (chars.next(), chars.next()) {
            (None, _) => None,
            (Some(c), None) => Some(c),
            _ => return Err("thousands_separator must be one character or empty".into()),
        };
        if ![1, 10, 100, 1000].contains(&p.amount_scale) {
            return Err(format!("amount_scale {} must be 1, 10, 100 or 1000", p.amount_scale));
        }
        let time_zone = DateTime::parse_from_rfc3339(&format!("2000-01-01T00:00:00{}", p.time_zone))
            .map(|t| *t.offset())
            .map_err(|_| format!("time_zone {:?} must be an offset such as +07:00", p.time_zone))?;
        let mut columns = HashMap::new();
        for (k, v) in raw.columns {
            let Some(f) = FIELDS.iter().find(|f| **f == k) else {
                return Err(format!("unknown column key {k:?}; the fields are {}", FIELDS.join(", ")));
            };
            columns.insert(*f, v);
        }
        if let Some(missing) = FIELDS.iter().find(|f| !columns.contains_key(**f) && **f != "fee") {
            return Err(format!("columns must map {missing}"));
        }
        Ok(Self {
            name: p.name,
            encoding,
            delimiter,
            thousands_separator,
            amount_scale: p.amount_scale,
            time_formats: p.time_formats,
            time_zone,
            success_words: p.success_words,
            refund_words: p.refund_words,
            columns,
            skip_lines: p.skip_lines,
        })
    }
}

/// Decodes a file per the profile's encoding.
fn decode(bytes: &[u8], enc: Encoding) -> Result<String, FileError> {
    let bad = |why: &str| err(1, None, format!("wrong encoding: {why}"));
    match enc {
        Encoding::Utf8 | Encoding::Utf8Bom => {
            if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
                return Err(bad("the file is UTF-16 but the profile says UTF-8"));
            }
            let body = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
                Some(b) => b,
                None if enc == Encoding::Utf8Bom => return Err(bad("the profile expects a UTF-8 byte-order mark")),
                None => bytes,
            };
            String::from_utf8(body.to_vec()).map_err(|e| {
                let line = body[..e.utf8_error().valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
                err(line, None, "wrong encoding: not valid UTF-8")
            })
        }
        Encoding::Utf16Le => {
            let body = bytes.strip_prefix(&[0xFF, 0xFE]).unwrap_or(bytes);
            if body.len() % 2 != 0 {
                return Err(bad("UTF-16LE needs an even number of bytes"));
            }
            let units: Vec<u16> = body.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
            let mut out = String::with_capacity(units.len());
            let mut line = 1;
            for r in char::decode_utf16(units) {
                let c = r.map_err(|_| err(line, None, "wrong encoding: not valid UTF-16LE"))?;
                if c == '\n' {
                    line += 1;
                }
                out.push(c);
            }
            if out.starts_with('\u{feff}') {
                out.remove(0);
            }
            Ok(out)
        }
    }
}

/// Parses a money field: digits (and thousands separators), divided by the scale.
fn amount(raw: &str, p: &Profile, line: usize, field: &str) -> Result<i64, FileError> {
    let t = raw.trim();
    if t.starts_with('-') || (t.starts_with('(') && t.ends_with(')')) {
        return Err(err(line, Some(field), format!("{t:?} is negative; a refund is a line whose status is refund")));
    }
    let digits: String = match p.thousands_separator {
        Some(sep) => t.chars().filter(|c| *c != sep).collect(),
        None => t.to_owned(),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(line, Some(field), format!("{t:?} is not a whole amount")));
    }
    let v: i64 = digits.parse().map_err(|_| err(line, Some(field), format!("{t:?} is too large")))?;
    if v % p.amount_scale != 0 {
        return Err(err(line, Some(field), format!("{t} is not divisible by the amount scale {}", p.amount_scale)));
    }
    Ok(v / p.amount_scale)
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

fn time(raw: &str, p: &Profile, line: usize) -> Result<DateTime<Utc>, FileError> {
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

/// Parses a whole file. `progress` is called every 100,000 lines.
pub fn parse(p: &Profile, bytes: &[u8], progress: &dyn Fn(usize)) -> Result<Vec<Line>, FileError> {
    let text = decode(bytes, p.encoding)?;
    // Lines before the header are skipped; the CSV reader counts from the header.
    let mut offset = 0;
    for _ in 0..p.skip_lines {
        match text[offset..].find('\n') {
            Some(i) => offset += i + 1,
            None => return Err(err(p.skip_lines, None, "the file ends before its header")),
        }
    }
    let base = p.skip_lines;
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(p.delimiter)
        .flexible(true)
        .has_headers(false)
        .from_reader(&text.as_bytes()[offset..]);
    let mut records = rdr.byte_records();
    let header = match records.next() {
        None => return Err(err(base + 1, None, "the file has no header")),
        Some(h) => h.map_err(|e| err(base + 1, None, format!("cannot read the header: {e}")))?,
    };
    let names: Vec<String> =
        header.iter().map(|h| String::from_utf8_lossy(h).trim().trim_start_matches('\u{feff}').to_owned()).collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(err(base + 1, Some(n), "this column appears twice in the header"));
        }
    }
    // Each field's column, resolved once: `FIELDS[k]` is in column `col[k]` (fee may be absent).
    let mut col: [Option<usize>; FIELDS.len()] = [None; FIELDS.len()];
    for (k, f) in FIELDS.iter().enumerate() {
        match p.columns.get(f) {
            Some(h) => match names.iter().position(|n| n == h) {
                Some(i) => col[k] = Some(i),
                None => return Err(err(base + 1, Some(f), format!("missing column {h:?}"))),
            },
            None if *f == "fee" => {}
            None => return Err(err(base + 1, Some(f), "the profile maps no column")),
        }
    }
    let [c_no, c_ref, c_amount, c_fee, c_time, c_status] = col;
    let success: Vec<String> = p.success_words.iter().map(|w| w.trim().to_lowercase()).collect();
    let refund: Vec<String> = p.refund_words.iter().map(|w| w.trim().to_lowercase()).collect();
    let mut lines = Vec::new();
    for rec in records {
        let rec = rec.map_err(|e| {
            err(base + e.position().map_or(0, |p| p.line() as usize), None, format!("malformed CSV: {e}"))
        })?;
        let line = base + rec.position().map_or(0, |p| p.line() as usize);
        if rec.len() == 1 && rec.get(0).is_some_and(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue; // a blank line
        }
        if rec.len() != names.len() {
            return Err(err(
                line,
                None,
                format!("expected {} fields, found {} (a truncated or broken line)", names.len(), rec.len()),
            ));
        }
        // Every column but fee is present (checked with the header).
        let get = |c: Option<usize>, f: &str| -> Result<&str, FileError> {
            let raw = c.and_then(|i| rec.get(i)).unwrap_or_default();
            std::str::from_utf8(raw).map_err(|_| err(line, Some(f), "not valid text"))
        };
        // References are identifiers: not empty, no control characters.
        let reference = |c: Option<usize>, f: &str| -> Result<String, FileError> {
            let v = get(c, f)?.trim();
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
            Ok(v.to_owned())
        };
        let gateway_txn_no = reference(c_no, "gateway_txn_no")?;
        let txn_ref = reference(c_ref, "txn_ref")?;
        let amount_v = amount(get(c_amount, "amount")?, p, line, "amount")?;
        let fee_text = get(c_fee, "fee")?;
        let fee = if fee_text.trim().is_empty() { 0 } else { amount(fee_text, p, line, "fee")? };
        if fee > amount_v {
            return Err(err(line, Some("fee"), format!("{fee} is larger than the amount {amount_v}")));
        }
        let txn_time = time(get(c_time, "txn_time")?, p, line)?;
        let raw_word = get(c_status, "status")?.trim();
        // Most files spell the word as the profile does; only the others pay for lowercasing.
        let word = if success.iter().chain(&refund).any(|w| w == raw_word) {
            std::borrow::Cow::Borrowed(raw_word)
        } else {
            std::borrow::Cow::Owned(raw_word.to_lowercase())
        };
        let status = if success.iter().any(|w| *w == word) {
            LineStatus::Success
        } else if refund.iter().any(|w| *w == word) {
            LineStatus::Refund
        } else {
            return Err(err(
                line,
                Some("status"),
                format!(
                    "{word:?} is neither a success word ({}) nor a refund word ({})",
                    p.success_words.join(", "),
                    p.refund_words.join(", ")
                ),
            ));
        };
        lines.push(Line { line_no: line, gateway_txn_no, txn_ref, amount: amount_v, fee, txn_time, status });
        if lines.len() % 100_000 == 0 {
            progress(lines.len());
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests;

fn group_thousands(v: i64, sep: Option<char>) -> String {
    let digits = v.to_string();
    let Some(sep) = sep else { return digits };
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// Writes lines as a file of this profile (the simulator's settlement files, test fixtures).
pub fn write(p: &Profile, lines: &[Line]) -> Vec<u8> {
    let fields: Vec<&str> = FIELDS.iter().copied().filter(|f| p.columns.contains_key(f)).collect();
    let mut w = csv::WriterBuilder::new().delimiter(p.delimiter).from_writer(Vec::new());
    let header: Vec<&str> = fields.iter().map(|f| p.columns[f].as_str()).collect();
    let _ = w.write_record(&header);
    let fmt = p.time_formats.iter().find(|f| *f != "rfc3339");
    for l in lines {
        let row: Vec<String> = fields
            .iter()
            .map(|f| match *f {
                "gateway_txn_no" => l.gateway_txn_no.clone(),
                "txn_ref" => l.txn_ref.clone(),
                "amount" => group_thousands(l.amount * p.amount_scale, p.thousands_separator),
                "fee" => group_thousands(l.fee * p.amount_scale, p.thousands_separator),
                "txn_time" => match fmt {
                    Some(f) => l.txn_time.with_timezone(&p.time_zone).format(f).to_string(),
                    None => l.txn_time.with_timezone(&p.time_zone).to_rfc3339(),
                },
                _ => match l.status {
                    LineStatus::Success => p.success_words.first().cloned().unwrap_or_default(),
                    LineStatus::Refund => p.refund_words.first().cloned().unwrap_or_default(),
                },
            })
            .collect();
        let _ = w.write_record(&row);
    }
    let text = String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default();
    match p.encoding {
        Encoding::Utf8 => text.into_bytes(),
        Encoding::Utf8Bom => [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(),
        Encoding::Utf16Le => {
            let mut out = vec![0xFF, 0xFE];
            for u in text.encode_utf16() {
                out.extend_from_slice(&u.to_le_bytes());
            }
            out
        }
    }
}
