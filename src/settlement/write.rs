//! Writing lines as a profile's file: the simulator's settlement files and test fixtures.

use super::{Encoding, FIELDS, Line, LineStatus, Profile, extract};

/// An amount as the profile writes it: scaled, grouped by threes, with zero decimals.
fn format_amount(dong: i64, p: &Profile) -> String {
    let digits = (dong * p.amount_scale).to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if let Some(sep) = p.thousands_separator
            && i > 0
            && (digits.len() - i) % 3 == 0
        {
            out.push(sep);
        }
        out.push(c);
    }
    if let Some(d) = p.decimal_separator {
        out.push(d);
        out.extend(std::iter::repeat_n('0', p.decimal_places as usize));
    }
    out
}

/// Writes lines as a file of this profile (the simulator's settlement files, test fixtures).
pub fn write(p: &Profile, lines: &[Line]) -> Vec<u8> {
    // The file's columns in `FIELDS` order; fields sharing a column (references inside a
    // description) are written into it together, each after its label.
    let mut columns: Vec<(&str, Vec<&str>)> = Vec::new();
    for f in FIELDS.iter().copied().filter(|f| p.columns.contains_key(f)) {
        let header = p.columns[f].as_str();
        match columns.iter_mut().find(|(h, _)| *h == header) {
            Some((_, fields)) => fields.push(f),
            None => columns.push((header, vec![f])),
        }
    }
    let mut w = csv::WriterBuilder::new().delimiter(p.delimiter).from_writer(Vec::new());
    let header: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    let _ = w.write_record(&header);
    let fmt = p.time_formats.iter().find(|f| *f != "rfc3339");
    for l in lines {
        let value = |f: &str| match f {
            "gateway_txn_no" => l.gateway_txn_no.clone(),
            "txn_ref" => l.txn_ref.clone(),
            "amount" => format_amount(l.amount, p),
            "fee" => format_amount(l.fee, p),
            "txn_time" => match fmt {
                Some(f) => l.txn_time.with_timezone(&p.time_zone).format(f).to_string(),
                None => l.txn_time.with_timezone(&p.time_zone).to_rfc3339(),
            },
            _ => match l.status {
                LineStatus::Success => p.success_words.first().cloned().unwrap_or_default(),
                LineStatus::Refund => p.refund_words.first().cloned().unwrap_or_default(),
            },
        };
        let row: Vec<String> = columns
            .iter()
            .map(|(_, fields)| {
                let labelled: Vec<(&str, String)> =
                    fields.iter().filter_map(|f| p.extract.get(f).map(|label| (label.as_str(), value(f)))).collect();
                if labelled.is_empty() {
                    value(fields[0])
                } else {
                    let pairs: Vec<(&str, &str)> = labelled.iter().map(|(l, v)| (*l, v.as_str())).collect();
                    extract::compose(&p.extract_text, &pairs)
                }
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
