//! Settlement files (SPEC §7.1): profiles that describe each gateway's CSV, and the all-or-nothing
//! parser that turns a file into canonical lines.
//!
//! A profile maps the file's headers to the canonical fields `gateway_txn_no, txn_ref, amount,
//! fee, txn_time, status` and states its gateway (a gateway's profile reads only that gateway's
//! files), the encoding (UTF-8, UTF-8 with BOM, UTF-16LE), the delimiter, the number format of
//! amounts (a thousands separator, accepted only between groups of three digits; a decimal
//! separator and its number of places when amounts carry decimals), the amount scale (VNPAY files
//! may be ×100), the time formats and zone, and the words meaning success and refund. An amount
//! must be whole đồng after scaling: a ×100 value not divisible by 100, or decimals that are not
//! zero, are errors. `canonical` is built in, serves every gateway and has an exact header.
//! References may be read out of free text after labels (`extract.rs`: a bank statement's
//! description, for DVCQG). Parsing is pure: a bad line fails the whole file with its line
//! number, field and reason.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;

use crate::domain::payment::Gateway;
use crate::domain::vn_offset;

mod extract;
mod fast;
mod fields;
mod write;
pub use fast::{LineRef, Lines};
pub use fields::parse_iso_local;
use fields::{amount_and_fee, reference, status, time};
pub use write::write;

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
    /// The gateway whose files this profile reads; `None` only for `canonical`, which serves
    /// every gateway.
    pub gateway: Option<Gateway>,
    pub encoding: Encoding,
    pub delimiter: u8,
    /// Accepted only between groups of three digits (`1.234.567`). Never a digit, never the
    /// decimal separator.
    pub thousands_separator: Option<char>,
    /// Set when the file's amounts carry decimals (`115.000,00`). Never a digit.
    pub decimal_separator: Option<char>,
    /// How many digits follow the decimal separator when an amount has them: 1 to 6 when
    /// `decimal_separator` is set, else 0.
    pub decimal_places: u32,
    /// 1, 10, 100 or 1000: the file's amounts are đồng × this.
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
    /// The header must be exactly `columns` in `FIELDS` order, nothing else (`canonical`, SPEC
    /// §7.1); otherwise columns are found by name, in any order, among others.
    pub exact_header: bool,
    /// `gateway_txn_no` and `txn_ref` read from free text after these labels (`extract.rs`).
    pub extract: HashMap<&'static str, String>,
    /// The words `write` puts before the labelled values.
    pub extract_text: String,
    /// A line whose text holds no `txn_ref` label is not the gateway's and is left out.
    pub skip_unreferenced: bool,
}

pub const FIELDS: [&str; 6] = ["gateway_txn_no", "txn_ref", "amount", "fee", "txn_time", "status"];

impl Profile {
    /// The built-in `canonical` profile (SPEC §7.1).
    pub fn canonical() -> Self {
        Self {
            name: "canonical".into(),
            gateway: None,
            encoding: Encoding::Utf8,
            delimiter: b',',
            thousands_separator: None,
            decimal_separator: None,
            decimal_places: 0,
            amount_scale: 1,
            time_formats: vec!["%Y-%m-%d %H:%M:%S".into(), "rfc3339".into()],
            time_zone: vn_offset(),
            success_words: vec!["success".into()],
            refund_words: vec!["refund".into()],
            columns: FIELDS.iter().map(|f| (*f, (*f).to_owned())).collect(),
            skip_lines: 0,
            exact_header: true,
            extract: HashMap::new(),
            extract_text: String::new(),
            skip_unreferenced: false,
        }
    }

    /// `canonical`, a profile name in `dir` (`<name>.toml`), or a path to a profile file.
    pub fn resolve(dir: &Path, name_or_path: &str) -> Result<Self, String> {
        if name_or_path == "canonical" {
            return Ok(Self::canonical());
        }
        let is_name = name_or_path.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let path = if is_name { dir.join(format!("{name_or_path}.toml")) } else { Path::new(name_or_path).to_owned() };
        let bytes = crate::embedded::read(&path).map_err(|e| format!("profile {}: {e}", path.display()))?;
        let text = String::from_utf8(bytes).map_err(|e| format!("profile {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("profile {}: {e}", path.display()))
    }

    /// Parses a profile file.
    pub fn parse(text: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            profile: RawProfile,
            columns: HashMap<String, String>,
            #[serde(default)]
            extract: Option<RawExtract>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawExtract {
            gateway_txn_no: Option<String>,
            txn_ref: Option<String>,
            #[serde(default)]
            text: String,
            #[serde(default)]
            skip_unreferenced: bool,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawProfile {
            name: String,
            /// Required: a gateway's own profile names its gateway (only `canonical` serves any).
            gateway: String,
            encoding: String,
            #[serde(default = "comma")]
            delimiter: String,
            #[serde(default)]
            thousands_separator: String,
            #[serde(default)]
            decimal_separator: String,
            #[serde(default)]
            decimal_places: Option<u32>,
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
        let gateway = p.gateway.parse::<Gateway>().map_err(|e| e.to_string())?;
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
        let separator = |key: &str, v: &str| -> Result<Option<char>, String> {
            let mut chars = v.chars();
            match (chars.next(), chars.next()) {
                (None, _) => Ok(None),
                (Some(c), None) if c.is_ascii_digit() => Err(format!("{key} {c:?} must not be a digit")),
                (Some(c), None) => Ok(Some(c)),
                _ => Err(format!("{key} must be one character or empty")),
            }
        };
        let thousands_separator = separator("thousands_separator", &p.thousands_separator)?;
        let decimal_separator = separator("decimal_separator", &p.decimal_separator)?;
        if thousands_separator.is_some() && thousands_separator == decimal_separator {
            return Err("thousands_separator and decimal_separator must differ".into());
        }
        let decimal_places = match (decimal_separator, p.decimal_places) {
            (None, None) => 0,
            (None, Some(_)) => return Err("decimal_places needs a decimal_separator".into()),
            (Some(_), None) => 2,
            (Some(_), Some(n)) if (1..=6).contains(&n) => n,
            (Some(_), Some(n)) => return Err(format!("decimal_places {n} must be 1 to 6")),
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
        let mut extract = HashMap::new();
        let (mut extract_text, mut skip_unreferenced) = (String::new(), false);
        if let Some(x) = raw.extract {
            for (field, label) in [("gateway_txn_no", x.gateway_txn_no), ("txn_ref", x.txn_ref)] {
                match label {
                    Some(l) if l.trim().is_empty() => return Err(format!("extract.{field} must not be empty")),
                    Some(l) => {
                        extract.insert(field, l);
                    }
                    None => {}
                }
            }
            if x.skip_unreferenced && !extract.contains_key("txn_ref") {
                return Err("extract.skip_unreferenced needs extract.txn_ref".into());
            }
            (extract_text, skip_unreferenced) = (x.text, x.skip_unreferenced);
        }
        // Only labelled fields may share a column.
        for (i, a) in FIELDS.iter().enumerate() {
            for b in &FIELDS[i + 1..] {
                if columns.contains_key(a)
                    && columns.get(a) == columns.get(b)
                    && !(extract.contains_key(a) && extract.contains_key(b))
                {
                    return Err(format!("columns {a} and {b} share a column; only extract-labelled fields may"));
                }
            }
        }
        Ok(Self {
            name: p.name,
            gateway: Some(gateway),
            encoding,
            delimiter,
            thousands_separator,
            decimal_separator,
            decimal_places,
            amount_scale: p.amount_scale,
            time_formats: p.time_formats,
            time_zone,
            success_words: p.success_words,
            refund_words: p.refund_words,
            columns,
            skip_lines: p.skip_lines,
            exact_header: false,
            extract,
            extract_text,
            skip_unreferenced,
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

/// Checks a header that must be exactly the profile's columns in `FIELDS` order, byte for byte
/// (`canonical`): names the first column that differs.
fn exact_header(p: &Profile, header: &csv::ByteRecord, names: &[String], line: usize) -> Result<(), FileError> {
    let expected: Vec<(&str, &str)> =
        FIELDS.iter().filter_map(|f| p.columns.get(f).map(|h| (*f, h.as_str()))).collect();
    let exactly = || {
        let delimiter = char::from(p.delimiter).to_string();
        format!("; the header is exactly {}", expected.iter().map(|(_, h)| *h).collect::<Vec<_>>().join(&delimiter))
    };
    for i in 0..expected.len().max(header.len()) {
        let got = header.get(i).map(String::from_utf8_lossy);
        match (expected.get(i), got) {
            (Some((_, want)), Some(got)) if got == *want => {}
            (Some((field, want)), got) => {
                let found = got.map_or_else(|| "nothing".to_owned(), |g| format!("{g:?}"));
                let missing =
                    if names.iter().any(|n| n == want) { String::new() } else { format!(" (missing column {want:?})") };
                return Err(err(
                    line,
                    Some(field),
                    format!("column {} must be {want:?}, found {found}{missing}{}", i + 1, exactly()),
                ));
            }
            (None, got) => {
                let got = got.unwrap_or_default();
                return Err(err(line, Some(&got), format!("an extra column (column {}){}", i + 1, exactly())));
            }
        }
    }
    Ok(())
}

/// Parses a whole file. `progress` is called every 100,000 lines. A plain file in an exact-header
/// profile (canonical) takes the fast path (`fast.rs`: the same checks, on both cores); any
/// other file, and any file the fast path refuses, goes through the general reader below, which
/// therefore gives every error.
pub fn parse(p: &Profile, bytes: &[u8], progress: &dyn Fn(usize)) -> Result<Vec<Line>, FileError> {
    if let Some(lines) = fast::parse(p, bytes) {
        let lines: Vec<Line> = lines.iter().map(LineRef::to_line).collect();
        (1..=lines.len() / 100_000).for_each(|k| progress(k * 100_000));
        return Ok(lines);
    }
    parse_general(p, bytes, progress)
}

/// The settlement lines of a file, borrowing their text from `bytes` when the fast path applies
/// (no allocation per field), else owned: the same lines and errors as `parse`.
pub fn parse_borrowed<'a>(p: &Profile, bytes: &'a [u8]) -> Result<Lines<'a>, FileError> {
    match fast::parse(p, bytes) {
        Some(lines) => Ok(Lines::Borrowed(lines)),
        None => parse_general(p, bytes, &|_| {}).map(Lines::Owned),
    }
}

/// The general reader: any profile, quoting, encodings, labels, blank lines.
fn parse_general(p: &Profile, bytes: &[u8], progress: &dyn Fn(usize)) -> Result<Vec<Line>, FileError> {
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
    if p.exact_header {
        exact_header(p, &header, &names, base + 1)?;
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
        // Not the gateway's: other money on the account, which names none of the labelled
        // references. A line naming one of them is the gateway's, and is read (or refused) whole.
        if p.skip_unreferenced {
            let mut named = false;
            for (f, c) in [("txn_ref", c_ref), ("gateway_txn_no", c_no)] {
                if let Some(label) = p.extract.get(f) {
                    named |= extract::after_label(get(c, f)?, label).is_some();
                }
            }
            if !named {
                continue;
            }
        }
        let reference = |c: Option<usize>, f: &str| -> Result<String, FileError> {
            let v = match p.extract.get(f) {
                Some(label) => extract::after_label(get(c, f)?, label)
                    .ok_or_else(|| err(line, Some(f), format!("no value after {label:?} in the text")))?,
                None => get(c, f)?.trim(),
            };
            Ok(reference(v, line, f)?.to_owned())
        };
        let gateway_txn_no = reference(c_no, "gateway_txn_no")?;
        let txn_ref = reference(c_ref, "txn_ref")?;
        let status = status(get(c_status, "status")?, p, &success, &refund, line)?;
        let fee_text = match c_fee {
            Some(_) => Some(get(c_fee, "fee")?),
            None => None,
        };
        let (amount_v, fee) = amount_and_fee(get(c_amount, "amount")?, fee_text, status, p, line)?;
        let txn_time = time(get(c_time, "txn_time")?, p, line)?;
        lines.push(Line { line_no: line, gateway_txn_no, txn_ref, amount: amount_v, fee, txn_time, status });
        if lines.len() % 100_000 == 0 {
            progress(lines.len());
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests;
