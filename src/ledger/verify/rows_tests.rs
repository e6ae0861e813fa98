//! The fast path against the general reader on the same files, cut after every row: the same
//! rows and totals, the same failure (seq and reason), and the general reader for anything unusual.

use chrono::{NaiveDate, TimeDelta};

use super::*;
use crate::domain::chain::{GENESIS, link};
use crate::ledger::export;
use crate::store::LedgerEntry;

/// A valid chain of postings (two lines, every fourth three), over three dates, with accounts
/// that first appear late in the file; `edit` changes an entry before it is hashed.
fn chain(postings: usize, edit: impl Fn(usize, &mut LedgerEntry)) -> Vec<LedgerEntry> {
    let first = NaiveDate::from_ymd_opt(2024, 7, 15).unwrap();
    let mut entries = Vec::new();
    let mut prev = GENESIS.to_owned();
    for p in 0..postings {
        let amount = 135_000 + (p % 7) as i64 * 1000;
        let revenue = if p * 2 > postings { "revenue:phi" } else { "revenue:le_phi" };
        let lines: Vec<(&str, i64, i64)> = if p % 4 == 3 {
            vec![("gateway_clearing:vnpay", amount, 0), ("gateway_clearing:momo", amount, 0), (revenue, 0, 2 * amount)]
        } else {
            vec![("gateway_clearing:vnpay", amount, 0), (revenue, 0, amount)]
        };
        for (i, (account, debit, credit)) in lines.into_iter().enumerate() {
            let seq = entries.len() as i64 + 1;
            let mut e = LedgerEntry {
                seq,
                posting_id: format!("pst_{p:08x}"),
                line_no: i as i64 + 1,
                business_date: first + TimeDelta::days((p * 3 / postings) as i64),
                kind: "payment_confirmed".into(),
                account: account.into(),
                debit,
                credit,
                memo: format!("payment pay_{p:08x}"),
                refs: format!("payment=pay_{p:08x};txn_ref=R{p:09}"),
                prev_hash: String::new(),
                hash: String::new(),
            };
            edit(entries.len(), &mut e);
            e.hash = link(&prev, &e.fields().canonical()).unwrap();
            e.prev_hash = std::mem::replace(&mut prev, e.hash.clone());
            entries.push(e);
        }
    }
    entries
}

fn files(entries: &[LedgerEntry]) -> (Vec<u8>, Manifest) {
    let csv = export::entries_csv(entries);
    let m = export::manifest("2024-07-15", "2024-07-17", entries, &csv, &[], &"ab".repeat(32));
    (csv, m)
}

fn text(csv: &[u8]) -> Vec<String> {
    String::from_utf8(csv.to_vec()).unwrap().lines().map(str::to_owned).collect()
}

fn join(rows: &[String]) -> Vec<u8> {
    format!("{}\n", rows.join("\n")).into_bytes()
}

/// The general reader's answer, after checking the fast path gives it (or steps aside) at every
/// cut, and on one thread. `answers`: the fast path must answer at every cut.
fn same_at_every_cut(csv: &[u8], m: &Manifest, answers: bool) -> Result<Rows, Failure> {
    let general = general(csv, m);
    let header = ENTRIES_HEADER.join(",").len() + 1;
    let cuts: Vec<usize> =
        csv.iter().enumerate().skip(header).filter(|(_, b)| **b == b'\n').map(|(i, _)| i - header).collect();
    assert!(cuts.len() > 10, "a file of many rows");
    for cut in std::iter::once(None).chain(cuts.into_iter().map(Some)) {
        match fast(csv, m, cut) {
            Some(fast) => assert_eq!(fast, general, "cut at {cut:?}"),
            None => assert!(!answers, "the fast path stepped aside at {cut:?} (general: {general:?})"),
        }
    }
    assert_eq!(check_rows(csv, m), general);
    same_read_in_blocks(csv, m, answers, &general);
    general
}

/// The file read from disk in blocks (`stream.rs`) of one byte, a row or so, several rows, and
/// all of it: the same answer and the file's own SHA-256; the blocks answer themselves when the
/// fast path does.
fn same_read_in_blocks(csv: &[u8], m: &Manifest, answers: bool, general: &Result<Rows, Failure>) {
    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("entries.csv");
    std::fs::write(&path, csv).unwrap();
    for block in [1, 300, 4096, csv.len() + 1] {
        let (rows, digest) = super::super::stream::rows_from_file(&path, m, block).unwrap();
        assert_eq!(&rows, general, "blocks of {block} bytes");
        assert_eq!(digest, hex::encode(sha2::Sha256::digest(csv)));
        let streamed = super::super::stream::streamed(&path, m, block).unwrap();
        assert!(streamed.is_some() || !answers, "blocks of {block} bytes stepped aside");
    }
}

fn failure(r: Result<Rows, Failure>) -> (i64, String) {
    let f = r.unwrap_err();
    (f.seq, f.reason)
}

#[test]
fn a_valid_file_reads_the_same_rows_and_totals_cut_anywhere() {
    let entries = chain(12, |_, _| {});
    let (csv, m) = files(&entries);
    let (rows, accounts) = same_at_every_cut(&csv, &m, true).unwrap();
    assert_eq!(rows.len(), entries.len());
    assert_eq!(accounts.len(), 4, "{accounts:?}");
    for (r, e) in rows.iter().zip(&entries) {
        assert_eq!((accounts[r.account].as_str(), r.debit, r.credit), (e.account.as_str(), e.debit, e.credit));
        assert_eq!(r.hash.as_slice(), e.hash.as_bytes());
    }
    // Without the last line break too.
    same_at_every_cut(&csv[..csv.len() - 1], &m, true).unwrap();
}

#[test]
fn a_file_large_enough_is_cut_in_two_by_default_and_reads_as_the_general_reader_does() {
    let entries = chain(2_500, |_, _| {});
    let (csv, m) = files(&entries);
    assert!(csv.len() > SPLIT_AT);
    let fast = fast(&csv, &m, None).expect("a plain file takes the fast path");
    assert_eq!(fast, general(&csv, &m));
    assert_eq!(fast.unwrap().0.len(), entries.len());
}

#[test]
fn every_tampering_gives_the_same_failure_cut_anywhere() {
    let entries = chain(12, |_, _| {});
    let (csv, m) = files(&entries);
    let rows = text(&csv);
    // A memo changed on the second line of the posting that straddles most cuts, and elsewhere.
    for k in [1, 12, 13, 14, rows.len() - 1] {
        let mut t = rows.clone();
        t[k] = t[k].replacen("payment pay_", "payment PAY_", 1);
        let got = failure(same_at_every_cut(&join(&t), &m, true));
        assert_eq!(got, (k as i64, "the hash does not match the entry".into()), "row {k}");
    }
    // A prev_hash that is not the previous row's hash, on each row (the first row of a part
    // takes it as given: the join must catch it).
    for k in [2, 9, 15, 20] {
        let mut t = rows.clone();
        let prev = entries[k - 1].prev_hash.clone();
        t[k] = t[k].replacen(&prev, &"0".repeat(64), 1);
        let got = failure(same_at_every_cut(&join(&t), &m, true));
        assert_eq!(got, (k as i64, "prev_hash is not the previous entry's hash".into()), "row {k}");
    }
    // A row deleted, added or moved: the parts do not meet, or a part stops, and the general
    // reader names the seq.
    for k in [3, 14, 25] {
        let mut t = rows.clone();
        t.remove(k);
        let got = failure(same_at_every_cut(&join(&t), &m, false));
        assert_eq!(got.0, k as i64, "delete {k}");
        let mut t = rows.clone();
        t.swap(k, k + 1);
        assert_eq!(failure(same_at_every_cut(&join(&t), &m, false)).0, k as i64, "swap {k}");
        let mut t = rows.clone();
        t.insert(k, rows[k].clone());
        assert_eq!(failure(same_at_every_cut(&join(&t), &m, false)).0, k as i64 + 1, "insert {k}");
    }
    // Numbers and dates that do not read.
    let mut t = rows.clone();
    t[16] = t[16].replacen(",2024-07-16,", ",2024-07-32,", 1);
    assert_eq!(failure(same_at_every_cut(&join(&t), &m, false)), (16, "bad business_date".into()));
    let mut t = rows.clone();
    t[16] = t[16].replacen(",135000,", ",135x00,", 1);
    let got = failure(same_at_every_cut(&join(&t), &m, false));
    assert!(got.0 == 16 && got.1.ends_with("is not a number"), "{got:?}");
    // The tail cut off: the manifest's count.
    let got = failure(same_at_every_cut(&join(&rows[..rows.len() - 2]), &m, true));
    assert!(got.1.starts_with("the manifest says"), "{got:?}");
}

#[test]
fn an_unbalanced_posting_across_the_cut_and_wrong_totals_give_the_same_failure() {
    // Posting 3 has three lines (seq 7, 8, 9): its last credit one đồng short, hashed as written.
    let entries = chain(12, |i, e| {
        if i == 8 {
            e.credit -= 1;
        }
    });
    assert_eq!((entries[6].posting_id.as_str(), entries[8].posting_id.as_str()), ("pst_00000003", "pst_00000003"));
    let (csv, m) = files(&entries);
    let got = failure(same_at_every_cut(&csv, &m, true));
    assert_eq!(got, (7, "posting pst_00000003 does not balance (276000 ≠ 275999)".into()));
    // The last posting, and the first.
    for i in [entries.len() - 1, 0] {
        let entries = chain(12, |k, e| {
            if k == i {
                if e.debit > 0 {
                    e.debit += 1;
                } else {
                    e.credit += 1;
                }
            }
        });
        let (csv, m) = files(&entries);
        let got = failure(same_at_every_cut(&csv, &m, true));
        assert!(got.1.contains("does not balance"), "{got:?}");
    }
    // Totals: the manifest's changed.
    let entries = chain(12, |_, _| {});
    let (csv, mut m) = files(&entries);
    m.totals_by_date.values_mut().last().unwrap().values_mut().next().unwrap().debit += 1;
    assert_eq!(failure(same_at_every_cut(&csv, &m, true)), (0, "the totals do not add up to the manifest's".into()));
}

#[test]
fn anything_unusual_goes_to_the_general_reader() {
    let entries = chain(12, |_, _| {});
    let (csv, m) = files(&entries);
    let rows = text(&csv);
    let crlf = format!("{}\r\n", rows.join("\r\n")).into_bytes();
    let blank = join(&[&rows[..5], &[String::new()], &rows[5..]].concat());
    let bom = [b"\xEF\xBB\xBF".as_slice(), &csv].concat();
    let mut extra = rows.clone();
    extra[7].push_str(",x");
    let mut quoted = rows.clone();
    quoted[7] = quoted[7].replacen("payment pay_", "\"payment pay_", 1).replacen(",payment=", "\",payment=", 1);
    for (name, bytes) in
        [("crlf", crlf), ("blank", blank), ("bom", bom), ("extra", join(&extra)), ("quoted", join(&quoted))]
    {
        assert!(fast(&bytes, &m, None).is_none(), "{name}");
        assert!(fast(&bytes, &m, Some(bytes.len() / 2)).is_none(), "{name}");
        assert_eq!(check_rows(&bytes, &m), general(&bytes, &m), "{name}");
        // Read from disk in blocks: a block cut inside the quoted field or after half a CRLF,
        // the byte-order mark in the first block, all answered as the general reader answers.
        same_read_in_blocks(&bytes, &m, false, &general(&bytes, &m));
    }
    // The csv crate reads these: the same rows as the plain file.
    assert_eq!(check_rows(&join(&quoted), &m), general(&csv, &m));
    // A memo with a comma is quoted by the export: a valid file the general reader reads.
    let entries = chain(12, |i, e| {
        if i == 4 {
            e.memo.push_str(", \"quoted\"");
        }
    });
    let (csv, m) = files(&entries);
    assert!(fast(&csv, &m, None).is_none());
    assert!(check_rows(&csv, &m).is_ok());
    same_read_in_blocks(&csv, &m, false, &general(&csv, &m));
}

#[test]
fn a_memo_in_vietnamese_reads_the_same_cut_inside_its_characters() {
    // Blocks of one byte end inside each two- and three-byte character of the memos.
    let entries = chain(12, |i, e| e.memo = format!("thu phí lệ phí hồ sơ số {i} đồng"));
    let (csv, m) = files(&entries);
    let expected = general(&csv, &m);
    assert!(expected.is_ok());
    same_read_in_blocks(&csv, &m, true, &expected);
    // One character changed in a memo: the same failure read whole or in blocks.
    let mut t = text(&csv);
    t[5] = t[5].replacen("đồng", "đông", 1);
    let tampered = join(&t);
    let expected = general(&tampered, &m);
    assert_eq!(failure(expected.clone()), (5, "the hash does not match the entry".into()));
    same_read_in_blocks(&tampered, &m, true, &expected);
}
