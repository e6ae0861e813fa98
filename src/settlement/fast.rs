//! The fast path of the settlement parser (issue 23): a plain UTF-8 file in an exact-header
//! profile (`canonical`) read straight into slices of the file, no allocation per field, the file
//! split at a line break and its halves parsed on two threads. Each field goes through the same
//! checks as the general reader (`reference`, `amount_and_fee`, `time`, `status` in `mod.rs`).
//!
//! It answers only for files it reads whole without doubt; anything else, and any file with an
//! error, gets `None`, and the general reader reads it again and gives the error, so that the
//! fast path can change how fast a file is read but never what it reads nor how it is refused.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Encoding, FIELDS, Line, LineStatus, Profile, amount_and_fee, reference, status, time};
use crate::domain::vn_offset;

/// A settlement line whose references borrow the file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRef<'a> {
    pub line_no: usize,
    pub gateway_txn_no: &'a str,
    pub txn_ref: &'a str,
    pub amount: i64,
    pub fee: i64,
    pub txn_time: DateTime<Utc>,
    pub status: LineStatus,
}

impl LineRef<'_> {
    /// The line's own business date: its `txn_time` in Asia/Ho_Chi_Minh (as `Line`'s).
    pub fn business_date(&self) -> NaiveDate {
        self.txn_time.with_timezone(&vn_offset()).date_naive()
    }

    pub fn to_line(&self) -> Line {
        Line {
            line_no: self.line_no,
            gateway_txn_no: self.gateway_txn_no.to_owned(),
            txn_ref: self.txn_ref.to_owned(),
            amount: self.amount,
            fee: self.fee,
            txn_time: self.txn_time,
            status: self.status,
        }
    }
}

/// A file's lines: borrowed from it (the fast path) or owned (the general reader).
#[derive(Debug)]
pub enum Lines<'a> {
    Borrowed(Vec<LineRef<'a>>),
    Owned(Vec<Line>),
}

impl Lines<'_> {
    pub fn len(&self) -> usize {
        match self {
            Lines::Borrowed(v) => v.len(),
            Lines::Owned(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every line, borrowed either way.
    pub fn refs(&self) -> Vec<LineRef<'_>> {
        match self {
            Lines::Borrowed(v) => v.clone(),
            Lines::Owned(v) => v
                .iter()
                .map(|l| LineRef {
                    line_no: l.line_no,
                    gateway_txn_no: &l.gateway_txn_no,
                    txn_ref: &l.txn_ref,
                    amount: l.amount,
                    fee: l.fee,
                    txn_time: l.txn_time,
                    status: l.status,
                })
                .collect(),
        }
    }
}

/// Below this many bytes of lines a second thread costs more than it saves.
const SPLIT_AT: usize = 1 << 20;

/// The file's lines, or `None` when the general reader must read it (another layout, quoting,
/// carriage returns, blank lines, a byte-order mark, invalid UTF-8, or any error).
pub(super) fn parse<'a>(p: &Profile, bytes: &'a [u8]) -> Option<Vec<LineRef<'a>>> {
    let plain = p.exact_header
        && p.encoding == Encoding::Utf8
        && p.skip_lines == 0
        && p.extract.is_empty()
        && !p.skip_unreferenced
        && p.delimiter.is_ascii()
        && p.delimiter != b'"';
    if !plain || bytes.starts_with(b"\xEF\xBB\xBF") || bytes.iter().any(|b| *b == b'"' || *b == b'\r') {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let delimiter = char::from(p.delimiter);
    let header = FIELDS.iter().map(|f| p.columns.get(f).map(String::as_str)).collect::<Option<Vec<_>>>()?;
    let (first, body) = text.split_once('\n').unwrap_or((text, ""));
    if first != header.join(&delimiter.to_string()) || header.iter().any(|h| h.contains(delimiter)) {
        return None;
    }
    let words = |w: &[String]| w.iter().map(|w| w.trim().to_lowercase()).collect::<Vec<_>>();
    let (success, refund) = (words(&p.success_words), words(&p.refund_words));
    // Rows and fields are found with `memchr` (a `char` pattern's searcher was a tenth of the
    // in-memory reconciliation); `capacity` sizes the output for the whole body, so that the
    // second half's lines append without moving the first's.
    let half = |part: &'a str, first_line: usize, capacity: usize| -> Option<Vec<LineRef<'a>>> {
        let mut out = Vec::with_capacity(capacity);
        let delimiter = p.delimiter;
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\n', part.as_bytes())
            .chain((!part.is_empty() && !part.ends_with('\n')).then_some(part.len()));
        for (i, end) in ends.enumerate() {
            let line = first_line + i;
            // Line breaks and the (ASCII) delimiter are character boundaries.
            let row = part.get(start..end)?;
            start = end + 1;
            let mut fields = [""; 6];
            let mut rest = row;
            for f in fields.iter_mut().take(5) {
                let at = memchr::memchr(delimiter, rest.as_bytes())?;
                *f = rest.get(..at)?;
                rest = rest.get(at + 1..)?;
            }
            if memchr::memchr(delimiter, rest.as_bytes()).is_some() {
                return None;
            }
            fields[5] = rest;
            let [no, r, amount, fee, t, st] = fields;
            let status = status(st, p, &success, &refund, line).ok()?;
            let (amount, fee) = amount_and_fee(amount, Some(fee), status, p, line).ok()?;
            out.push(LineRef {
                line_no: line,
                gateway_txn_no: reference(no.trim(), line, "gateway_txn_no").ok()?,
                txn_ref: reference(r.trim(), line, "txn_ref").ok()?,
                amount,
                fee,
                txn_time: time(t, p, line).ok()?,
                status,
            });
        }
        Some(out)
    };
    // The header is line 1. Split at the line break nearest the middle.
    let cut =
        if body.len() < SPLIT_AT { None } else { body[body.len() / 2..].find('\n').map(|i| body.len() / 2 + i + 1) };
    // The gateways' rows are about 60 bytes: a guess that the vector grows past if need be.
    let capacity = body.len() / 48;
    let Some(cut) = cut.filter(|c| *c < body.len()) else { return half(body, 2, capacity) };
    let (a, b) = body.split_at(cut);
    // The second half is numbered from 0 and renumbered once the first half's count is known.
    let (left, right) = std::thread::scope(|s| {
        let right = s.spawn(|| half(b, 0, b.len() / 48));
        (half(a, 2, capacity), right.join())
    });
    let mut lines = left?;
    let first = 2 + lines.len();
    lines.extend(right.ok()??.into_iter().map(|l| LineRef { line_no: first + l.line_no, ..l }));
    Some(lines)
}

#[cfg(test)]
mod tests {
    use super::super::{parse_borrowed, parse_general};
    use super::*;

    fn canonical(rows: &[String]) -> Vec<u8> {
        let mut s = String::from("gateway_txn_no,txn_ref,amount,fee,txn_time,status\n");
        for r in rows {
            s.push_str(r);
            s.push('\n');
        }
        s.into_bytes()
    }

    fn big(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                let status = if i % 7 == 3 { "refund" } else { "success" };
                format!(
                    " {} ,R{i:09},{},{},2024-07-15 {:02}:{:02}:{:02},{status}",
                    1_000_000 + i,
                    135_000 + i % 5,
                    i % 3,
                    (i / 3600) % 24,
                    (i / 60) % 60,
                    i % 60
                )
            })
            .collect()
    }

    #[test]
    fn the_fast_path_reads_what_the_general_reader_reads_on_both_halves() {
        let p = Profile::canonical();
        // Large enough to be split across two threads.
        let bytes = canonical(&big(40_000));
        assert!(bytes.len() > SPLIT_AT);
        let fast = parse(&p, &bytes).expect("a plain canonical file takes the fast path");
        let general = parse_general(&p, &bytes, &|_| {}).unwrap();
        assert_eq!(fast.len(), 40_000);
        assert_eq!(fast.iter().map(LineRef::to_line).collect::<Vec<_>>(), general);
        assert_eq!(fast[39_999].line_no, 40_001);
        assert_eq!(fast[0].gateway_txn_no, "1000000", "references are trimmed as the general reader trims them");
        // A small file, one thread, with and without its last line break.
        let small = canonical(&big(3));
        let fast = parse(&p, &small).unwrap();
        assert_eq!(fast.iter().map(LineRef::to_line).collect::<Vec<_>>(), parse_general(&p, &small, &|_| {}).unwrap());
        let unterminated = &small[..small.len() - 1];
        assert_eq!(parse(&p, unterminated).unwrap(), fast);
    }

    #[test]
    fn anything_unusual_goes_to_the_general_reader_which_gives_the_same_answer_or_error() {
        let p = Profile::canonical();
        let mut rows = big(30_000);
        let good = canonical(&rows);
        let mut cases: Vec<Vec<u8>> = Vec::new();
        // An error in the second half: the general reader names it.
        assert!(rows[25_001].ends_with(",success"));
        rows[25_001] = rows[25_001].replace(",success", ",paid");
        cases.push(canonical(&rows));
        rows[25_001] = big(30_000).swap_remove(25_001);
        rows[20_000] = "1,R1,100,200,2024-07-15 00:00:00,success".into(); // fee above the amount
        cases.push(canonical(&rows));
        cases.push(canonical(&["1,R1,100,0,2024-07-15 00:00:00,success,extra".to_owned()]));
        cases.push(canonical(&["1,\"R1\",100,0,2024-07-15 00:00:00,success".to_owned()]));
        cases.push(canonical(&["1,R1,100,0,2024-07-15 00:00:00,success\r".to_owned()]));
        cases.push(canonical(&["1,R1,100,0,2024-07-15 00:00:00,success".to_owned(), String::new(), "  ".to_owned()]));
        cases.push([b"\xEF\xBB\xBF".as_slice(), &good].concat());
        cases.push(
            b"gateway_txn_no,txn_ref,amount,fee,txn_time,Status\n1,R1,100,0,2024-07-15 00:00:00,success\n".to_vec(),
        );
        cases.push(
            b"gateway_txn_no,txn_ref,amount,fee,txn_time,status\n1,R\xFF,100,0,2024-07-15 00:00:00,success\n".to_vec(),
        );
        cases.push(canonical(&[",R1,100,0,2024-07-15 00:00:00,success".to_owned()]));
        for bytes in &cases {
            assert!(parse(&p, bytes).is_none(), "{:?}", String::from_utf8_lossy(&bytes[..bytes.len().min(80)]));
            let general = parse_general(&p, bytes, &|_| {});
            assert_eq!(super::super::parse(&p, bytes, &|_| {}), general);
            match (parse_borrowed(&p, bytes), general) {
                (Ok(l), Ok(g)) => assert_eq!(l.refs().iter().map(LineRef::to_line).collect::<Vec<_>>(), g),
                (Err(e), Err(g)) => assert_eq!(e, g),
                (l, g) => panic!("parse_borrowed {l:?} but the general reader {g:?}"),
            }
        }
        let e = super::super::parse(&p, &cases[0], &|_| {}).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (25_003, Some("status")));
        let e = super::super::parse(&p, &cases[1], &|_| {}).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (20_002, Some("fee")));
        // Other profiles never take it.
        let vnpay = Profile::resolve(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/settlement-profiles"),
            "vnpay",
        )
        .unwrap();
        assert!(parse(&vnpay, &good).is_none());
        assert!(matches!(parse_borrowed(&p, &good).unwrap(), Lines::Borrowed(l) if l.len() == 30_000));
    }

    #[test]
    fn progress_is_reported_at_every_hundred_thousand_lines_either_way() {
        let p = Profile::canonical();
        let bytes = canonical(&big(250_000));
        let seen = std::cell::RefCell::new(Vec::new());
        let lines = super::super::parse(&p, &bytes, &|n| seen.borrow_mut().push(n)).unwrap();
        assert_eq!(lines.len(), 250_000);
        assert_eq!(*seen.borrow(), vec![100_000, 200_000]);
    }
}
