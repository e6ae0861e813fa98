//! Reading case files for `feerecon import cases`: a JSON array of case objects, or a CSV file
//! with a header of the same field names (`subjects` and `facts` separated by `;`), UTF-8 with or
//! without a BOM.
//!
//! Parsing is pure and all-or-nothing: the first bad record stops it with the line where that
//! record starts and the reason, and the caller writes nothing.

use std::collections::HashMap;
use std::path::Path;

use serde_json::value::RawValue;

use crate::domain::{Case, CaseInput, FieldError, ProcedureCode};

/// Why a case file was refused: the line where the bad record starts, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ImportError {
    pub line: usize,
    pub message: String,
}

fn at(line: usize, message: impl ToString) -> ImportError {
    ImportError { line, message: message.to_string() }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Json,
    Csv,
}

/// JSON for `.json`, CSV for `.csv`; otherwise JSON when the text starts with `[`.
pub fn detect_format(path: &Path, text: &str) -> FileFormat {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("json") => FileFormat::Json,
        Some("csv") => FileFormat::Csv,
        _ if text.trim_start().starts_with('[') => FileFormat::Json,
        _ => FileFormat::Csv,
    }
}

/// Decodes UTF-8, dropping a leading BOM; invalid bytes are reported with their line.
pub fn decode_utf8(bytes: &[u8]) -> Result<&str, ImportError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
        at(line, "the file is not valid UTF-8")
    })
}

/// Parses and validates every case of a file; `known_procedure` says whether a procedure is in
/// the fee catalogue. `progress` is called every 5,000 records.
pub fn parse_cases(
    path: &Path,
    bytes: &[u8],
    known_procedure: &dyn Fn(&ProcedureCode) -> bool,
    progress: &dyn Fn(usize),
) -> Result<Vec<Case>, ImportError> {
    let text = decode_utf8(bytes)?;
    let records = match detect_format(path, text) {
        FileFormat::Json => json_records(text)?,
        FileFormat::Csv => csv_records(text)?,
    };
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(records.len());
    let mut cases = Vec::with_capacity(records.len());
    for (i, (line, input)) in records.into_iter().enumerate() {
        if i > 0 && i % 5_000 == 0 {
            progress(i);
        }
        let case = input.validate(None).map_err(|e| at(line, e))?;
        if !known_procedure(&case.procedure_code) {
            let e = FieldError::new("procedure_code", format!("{} is not in the fee catalogue", case.procedure_code));
            return Err(at(line, e));
        }
        if let Some(first) = seen.insert(case.case_code.to_string(), line) {
            return Err(at(line, format!("field case_code: {} already appears at line {first}", case.case_code)));
        }
        cases.push(case);
    }
    Ok(cases)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset].iter().filter(|b| **b == b'\n').count() + 1
}

fn json_records(text: &str) -> Result<Vec<(usize, CaseInput)>, ImportError> {
    let raws: Vec<&RawValue> =
        serde_json::from_str(text).map_err(|e| at(e.line().max(1), format!("not a JSON array of cases: {e}")))?;
    let base = text.as_ptr() as usize;
    raws.into_iter()
        .map(|raw| {
            // A borrowed RawValue is a slice of `text`: its address gives its line.
            let line = line_of(text, raw.get().as_ptr() as usize - base);
            let mut de = serde_json::Deserializer::from_str(raw.get());
            let input: CaseInput = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                // serde_json appends "at line L column C" relative to the record; drop it.
                let msg = inner.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
                if path == "." { at(line, msg) } else { at(line, FieldError::new(path, msg)) }
            })?;
            Ok((line, input))
        })
        .collect()
}

const CSV_FIELDS: [&str; 9] = [
    "case_code",
    "procedure_code",
    "applicant_name",
    "channel",
    "subjects",
    "facts",
    "quantity",
    "received_at",
    "receiving_unit",
];
const CSV_REQUIRED: [&str; 6] =
    ["case_code", "procedure_code", "applicant_name", "channel", "received_at", "receiving_unit"];

fn csv_records(text: &str) -> Result<Vec<(usize, CaseInput)>, ImportError> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    let headers = rdr.headers().map_err(|e| at(1, format!("cannot read the CSV header: {e}")))?.clone();
    let mut col: HashMap<&str, usize> = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        let h = h.trim();
        let Some(known) = CSV_FIELDS.iter().find(|f| **f == h) else {
            return Err(at(1, format!("unknown column {h:?}; the columns are {}", CSV_FIELDS.join(", "))));
        };
        if col.insert(known, i).is_some() {
            return Err(at(1, format!("column {h:?} appears twice")));
        }
    }
    if let Some(missing) = CSV_REQUIRED.iter().find(|f| !col.contains_key(**f)) {
        return Err(at(1, format!("missing column {missing:?}")));
    }
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            at(line, format!("malformed CSV record: {e}"))
        })?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        let get = |f: &str| col.get(f).and_then(|i| rec.get(*i)).unwrap_or("").to_owned();
        let quantity = match get("quantity").trim() {
            "" => None,
            q => Some(
                q.parse::<u32>()
                    .map_err(|_| at(line, FieldError::new("quantity", format!("{q:?} is not a whole number"))))?,
            ),
        };
        let list = |f: &str| -> Vec<String> {
            get(f).split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        };
        out.push((
            line,
            CaseInput {
                case_code: Some(get("case_code").trim().to_owned()),
                procedure_code: get("procedure_code"),
                applicant_name: get("applicant_name"),
                channel: get("channel").trim().to_owned(),
                subjects: list("subjects"),
                facts: list("facts"),
                quantity,
                received_at: get("received_at").trim().to_owned(),
                receiving_unit: get("receiving_unit"),
            },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"case_code": "000.00.12.H62-240715-0001", "procedure_code": "1.001193",
      "applicant_name": "Nguyễn Văn A", "channel": "online_full", "received_at": "2024-07-15T09:30:00+07:00",
      "receiving_unit": "000.00.12.H62"}"#;

    fn parse(name: &str, text: &str) -> Result<Vec<Case>, ImportError> {
        parse_cases(Path::new(name), text.as_bytes(), &|p| p.national() != "9.999999", &|_| {})
    }

    #[test]
    fn json_with_a_bom_parses() {
        let text = format!("\u{feff}[\n{GOOD}\n]");
        let cases = parse("cases.json", &text).unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].applicant_name, "Nguyễn Văn A");
    }

    #[test]
    fn a_bad_json_record_is_named_by_the_line_it_starts_on() {
        let bad = GOOD.replace("online_full", "online").replace("0001", "0002");
        let text = format!("[\n{GOOD},\n\n{bad}\n]");
        let err = parse("x.json", &text).unwrap_err();
        assert_eq!(err.line, 6, "{err}");
        assert!(err.message.contains("field channel"), "{err}");
    }

    #[test]
    fn json_type_errors_and_unknown_fields_name_the_field() {
        let bad = GOOD.replace("\"procedure_code\"", "\"quantity\": \"two\", \"procedure_code\"");
        let err = parse("x.json", &format!("[{bad}]")).unwrap_err();
        assert!(err.message.contains("field quantity"), "{err}");
        let bad = GOOD.replace("\"procedure_code\"", "\"fee\": 1, \"procedure_code\"");
        let err = parse("x.json", &format!("[{bad}]")).unwrap_err();
        assert!(err.message.contains("unknown field `fee`"), "{err}");
        let err = parse("x.json", "[{\"case_code\": ").unwrap_err();
        assert!(err.message.contains("not a JSON array"), "{err}");
    }

    #[test]
    fn csv_parses_subjects_and_quantity() {
        let text = "case_code,procedure_code,applicant_name,channel,subjects,facts,quantity,received_at,receiving_unit\n\
            000.00.12.H62-240715-0001,1.001193,\"Trần Thị B\",counter,student; poor_household,late_registration,3,2024-07-15T09:30:00+07:00,000.00.12.H62\n";
        let cases = parse("cases.csv", text).unwrap();
        assert_eq!(cases[0].quantity, 3);
        assert_eq!(cases[0].subjects.len(), 2);
        assert_eq!(cases[0].facts, vec![crate::domain::Fact::LateRegistration]);
        // An unknown fact is refused like an unknown subject, naming the field and the line.
        let bad = text.replace("late_registration", "late");
        let err = parse("cases.csv", &bad).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("field facts") && err.message.contains("unknown fact"), "{err}");
    }

    #[test]
    fn csv_errors_carry_their_line() {
        let head = "case_code,procedure_code,applicant_name,channel,received_at,receiving_unit\n";
        let row =
            |seq: &str, date: &str| format!("000.00.12.H62-240715-{seq},1.001193,A,counter,{date},000.00.12.H62\n");
        let text = format!(
            "{head}{}{}{}",
            row("0001", "2024-07-15T09:30:00+07:00"),
            row("0002", "2024-07-15T09:30:00+07:00"),
            row("0003", "2024-07-16T09:30:00+07:00")
        );
        let err = parse("c.csv", &text).unwrap_err();
        assert_eq!(err.line, 4);
        assert!(err.message.contains("field received_at"), "{err}");
        let dup =
            format!("{head}{}{}", row("0001", "2024-07-15T09:30:00+07:00"), row("0001", "2024-07-15T10:30:00+07:00"));
        let err = parse("c.csv", &dup).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("already appears at line 2"), "{err}");
        let err = parse("c.csv", "case_code,colour\n").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("unknown column \"colour\""), "{err}");
        let err = parse("c.csv", "case_code,procedure_code\n").unwrap_err();
        assert!(err.message.contains("missing column"), "{err}");
    }

    #[test]
    fn a_procedure_outside_the_catalogue_is_refused_with_its_line() {
        let bad = GOOD.replace("1.001193", "9.999999");
        let err = parse("x.json", &format!("[\n{bad}]")).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("not in the fee catalogue"), "{err}");
    }

    #[test]
    fn invalid_utf8_is_refused_with_its_line() {
        let mut bytes = b"[\n\n".to_vec();
        bytes.push(0xff);
        let err = parse_cases(Path::new("x.json"), &bytes, &|_| true, &|_| {}).unwrap_err();
        assert_eq!(err.line, 3);
    }
}
