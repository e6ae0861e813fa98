//! The first pass of `verify` over `entries.csv`: each row read, linked, hashed, added to its
//! posting and to the totals (issue 23). One `Scan` holds the per-row checks; the general reader
//! (the `csv` crate) and the fast path both feed it rows, so they cannot differ in what they check.
//!
//! The fast path reads a plain file (the exact header, no quote, carriage return, blank line or
//! byte-order mark, valid UTF-8, twelve fields a row) as slices of the file, split at a line break
//! near the middle, and scans its halves on two threads. The second half takes its first row's
//! `prev_hash` and `seq` as given and leaves its first posting open; the join checks that link and
//! that seq, merges the posting across the cut and adds up the totals. Any row error in either
//! half, or halves that do not meet, and the general reader reads the file again and gives the
//! error: the fast path changes how fast a file is read, never what verify answers.

use std::collections::BTreeMap;

use super::{Failure, fail};
use crate::domain::ledger::{EntryFields, iso_date};
use crate::ledger::export::{ENTRIES_HEADER, Manifest, Sides};

/// What the checks after the first pass need of an entry (the rest is checked as it is read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Row {
    /// Index into the accounts seen.
    pub account: usize,
    pub debit: i64,
    pub credit: i64,
    /// The entry's hash: 64 lower-case hex digits (it equals the recomputed one when the chain
    /// check passed).
    pub hash: [u8; 64],
}

/// The rows and the accounts their indices point into.
pub(super) type Rows = (Vec<Row>, Vec<String>);

/// Below this many bytes of rows a second thread costs more than it saves.
const SPLIT_AT: usize = 1 << 20;

/// The first pass: the fast path when it answers, else the general reader.
pub(super) fn check_rows(entries_csv: &[u8], m: &Manifest) -> Result<Rows, Failure> {
    fast(entries_csv, m, None).unwrap_or_else(|| general(entries_csv, m))
}

/// A posting being added up: id, first seq, debits, credits.
#[derive(Debug)]
struct Posting {
    id: String,
    start: i64,
    debit: i64,
    credit: i64,
}

impl Posting {
    fn failure(&self) -> Option<Failure> {
        (self.debit != self.credit).then(|| {
            fail(self.start, format!("posting {} does not balance ({} ≠ {})", self.id, self.debit, self.credit))
        })
    }
}

/// `SHA-256(prev ‖ canonical)`, raw: the entry's hash (`domain::chain::link_hex` in hex).
fn link_raw(prev: &[u8; 32], canonical: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(prev);
    h.update(canonical);
    h.finalize().into()
}

fn raw_hash(text: &str) -> Option<[u8; 32]> {
    let mut b = [0u8; 32];
    hex::decode_to_slice(text, &mut b).ok().map(|()| b)
}

/// The state of a pass over consecutive rows. Failures of the chain and of the balance are kept
/// (the first of each) and reported after the pass in the documented order, as if each check ran
/// over all rows in turn; a row that cannot be read ends the pass.
pub(super) struct Scan {
    chain: Option<Failure>,
    balance: Option<Failure>,
    rows: Vec<Row>,
    accounts: Vec<String>,
    account_index: rustc_hash::FxHashMap<String, usize>,
    /// The chain so far: the previous entry's hash as written, and as raw bytes.
    prev_text: String,
    prev_raw: Option<[u8; 32]>,
    /// A scan that starts mid-file: its first row's `prev_hash` once read (taken as given).
    entry_prev: Option<String>,
    mid: bool,
    posting: Option<Posting>,
    /// A scan that starts mid-file: its first posting once closed, not judged (it may continue
    /// the previous part's last posting).
    head: Option<Posting>,
    /// Sides per account index, per date in order of appearance; `day` is the current row's.
    by_date: Vec<(chrono::NaiveDate, Vec<Option<Sides>>)>,
    day: usize,
    /// The previous row's date as written, and parsed: rows come by date, so most reuse it.
    date_text: String,
    date: chrono::NaiveDate,
    canonical: Vec<u8>,
    first_seq: i64,
    expected_seq: i64,
}

impl Scan {
    /// A scan from the file's first row (`mid` false), or from a row inside it.
    fn new(m: &Manifest, mid: bool, capacity: usize) -> Scan {
        Scan {
            chain: None,
            balance: None,
            rows: Vec::with_capacity(capacity.min(1 << 24)),
            accounts: Vec::new(),
            account_index: rustc_hash::FxHashMap::default(),
            prev_text: m.anchor_hash.clone(),
            prev_raw: raw_hash(&m.anchor_hash),
            entry_prev: None,
            mid,
            posting: None,
            head: None,
            by_date: Vec::new(),
            day: usize::MAX,
            date_text: String::new(),
            date: chrono::NaiveDate::MIN,
            canonical: Vec::with_capacity(512),
            first_seq: m.first_seq,
            expected_seq: m.first_seq,
        }
    }

    fn chain_failure(&mut self, f: impl FnOnce() -> Failure) {
        if self.chain.is_none() {
            self.chain = Some(f());
        }
    }

    /// One row's twelve fields, in `ENTRIES_HEADER` order.
    fn row(&mut self, f: [&str; 12]) -> Result<(), Failure> {
        let expected = self.expected_seq;
        let num = |i: usize| {
            f[i].parse::<i64>().map_err(|_| fail(expected, format!("{} is not a number", ENTRIES_HEADER[i])))
        };
        let seq = num(0)?;
        if self.mid && self.entry_prev.is_none() {
            // The first row of a later part: its seq and link are checked when the parts join.
            self.first_seq = seq;
            self.expected_seq = seq;
            self.prev_text.clear();
            self.prev_text.push_str(f[10]);
            self.prev_raw = raw_hash(f[10]);
            self.entry_prev = Some(f[10].to_owned());
        }
        let expected = self.expected_seq;
        if seq != expected {
            return Err(fail(
                expected,
                format!("expected seq {expected}, found {seq} (a row missing, added or moved)"),
            ));
        }
        if self.day == usize::MAX || f[1] != self.date_text {
            self.date =
                chrono::NaiveDate::parse_from_str(f[1], "%Y-%m-%d").map_err(|_| fail(seq, "bad business_date"))?;
            self.date_text.clear();
            self.date_text.push_str(f[1]);
            let date = self.date;
            self.day = match self.by_date.iter().rposition(|(d, _)| *d == date) {
                Some(i) => i,
                None => {
                    self.by_date.push((date, Vec::new()));
                    self.by_date.len() - 1
                }
            };
        }
        let (posting_id, kind, line_no, account) = (f[2], f[3], num(4)?, f[5]);
        let (debit, credit) = (num(6)?, num(7)?);
        let (memo, refs, prev_hash, hash) = (f[8], f[9], f[10], f[11]);
        self.expected_seq += 1;

        // The chain. When the hash matches, its raw bytes are the ones just computed: only a
        // hash that does not match is decoded from its text.
        let mut matched = None;
        if prev_hash != self.prev_text {
            self.chain_failure(|| fail(seq, "prev_hash is not the previous entry's hash"));
        } else if debit < 0 || credit < 0 || (debit > 0 && credit > 0) {
            self.chain_failure(|| fail(seq, "an entry is either a debit or a credit, never negative"));
        } else if let Some(prev) = &self.prev_raw {
            self.canonical.clear();
            let date = self.date;
            EntryFields { seq, business_date: date, posting_id, kind, line_no, account, debit, credit, memo, refs }
                .canonical_into(&mut self.canonical);
            let raw = link_raw(prev, &self.canonical);
            let mut text = [0u8; 64];
            // 32 bytes always fit 64 hex digits.
            let _ = hex::encode_to_slice(raw, &mut text);
            if text.as_slice() == hash.as_bytes() {
                matched = Some(raw);
            } else {
                self.chain_failure(|| fail(seq, "the hash does not match the entry"));
            }
        } else {
            self.chain_failure(|| fail(seq, "prev_hash is not a hash"));
        }
        self.prev_text.clear();
        self.prev_text.push_str(hash);
        self.prev_raw = matched.or_else(|| raw_hash(hash));

        // Postings balance (the entries of one posting are contiguous).
        match &mut self.posting {
            Some(p) if p.id == posting_id => {
                p.debit += debit;
                p.credit += credit;
            }
            _ => {
                // The id's buffer is reused from one posting to the next.
                let mut id = String::new();
                if let Some(closed) = self.posting.take() {
                    if self.mid && self.head.is_none() {
                        self.head = Some(closed);
                    } else {
                        if self.balance.is_none() {
                            self.balance = closed.failure();
                        }
                        id = closed.id;
                        id.clear();
                    }
                }
                id.push_str(posting_id);
                self.posting = Some(Posting { id, start: seq, debit, credit });
            }
        }

        // Totals, by account index.
        let account = self.account(account);
        let sides = &mut self.by_date[self.day].1;
        if sides.len() <= account {
            sides.resize(account + 1, None);
        }
        let sides = sides[account].get_or_insert_with(Sides::default);
        sides.debit += debit;
        sides.credit += credit;
        let mut h = [0u8; 64];
        let text = hash.as_bytes();
        h[..text.len().min(64)].copy_from_slice(&text[..text.len().min(64)]);
        self.rows.push(Row { account, debit, credit, hash: h });
        Ok(())
    }

    /// The index of an account, added if new.
    fn account(&mut self, name: &str) -> usize {
        match self.account_index.get(name) {
            Some(i) => *i,
            None => {
                self.accounts.push(name.to_owned());
                self.account_index.insert(name.to_owned(), self.accounts.len() - 1);
                self.accounts.len() - 1
            }
        }
    }

    /// This part followed by `next` (a part that starts mid-file), as one scan of both; `None`
    /// when they do not meet (`next`'s first seq is not the one after this part's last).
    pub(super) fn join(mut self, next: Scan) -> Option<Scan> {
        let entry_prev = next.entry_prev.as_deref()?;
        if self.expected_seq != next.first_seq {
            return None;
        }
        let link =
            (entry_prev != self.prev_text).then(|| fail(next.first_seq, "prev_hash is not the previous entry's hash"));
        self.chain = self.chain.or(link).or(next.chain);
        // The posting open at the cut, continued or not by `next`'s first.
        let (first, open) = match next.head {
            Some(h) => (h, next.posting),
            None => (next.posting?, None),
        };
        let mut closed = Vec::new();
        let open = match self.posting.take() {
            Some(p) if p.id == first.id => {
                let merged =
                    Posting { id: p.id, start: p.start, debit: p.debit + first.debit, credit: p.credit + first.credit };
                match open {
                    Some(o) => {
                        closed.push(merged);
                        o
                    }
                    None => merged,
                }
            }
            p => {
                closed.extend(p);
                match open {
                    Some(o) => {
                        closed.push(first);
                        o
                    }
                    None => first,
                }
            }
        };
        let failed = closed.iter().find_map(Posting::failure);
        self.balance = self.balance.or(failed).or(next.balance);
        self.posting = Some(open);
        // Accounts, rows and totals, `next`'s account indices mapped to this scan's.
        let map: Vec<usize> = next.accounts.iter().map(|a| self.account(a)).collect();
        self.rows.extend(next.rows.into_iter().map(|r| Row { account: map[r.account], ..r }));
        for (date, sides) in next.by_date {
            let d = match self.by_date.iter().rposition(|(x, _)| *x == date) {
                Some(i) => i,
                None => {
                    self.by_date.push((date, Vec::new()));
                    self.by_date.len() - 1
                }
            };
            let into = &mut self.by_date[d].1;
            for (i, s) in sides.into_iter().enumerate() {
                let Some(s) = s else { continue };
                let a = map[i];
                if into.len() <= a {
                    into.resize(a + 1, None);
                }
                let t = into[a].get_or_insert_with(Sides::default);
                t.debit += s.debit;
                t.credit += s.credit;
            }
        }
        self.prev_text = next.prev_text;
        self.prev_raw = next.prev_raw;
        self.expected_seq = next.expected_seq;
        Some(self)
    }

    /// The checks after the last row, in the documented order.
    pub(super) fn finish(mut self, m: &Manifest) -> Result<Rows, Failure> {
        if let Some(p) = self.posting.take()
            && self.balance.is_none()
        {
            self.balance = p.failure();
        }
        let last = self.expected_seq - 1;
        if last != m.last_seq || i64::try_from(self.rows.len()).unwrap_or(-1) != m.entry_count {
            return Err(fail(
                last + 1,
                format!(
                    "the manifest says {} entries through seq {}, the file has {} through {last}",
                    m.entry_count,
                    m.last_seq,
                    self.rows.len()
                ),
            ));
        }
        if let Some(f) = self.chain {
            return Err(f);
        }
        if self.prev_text != m.head_hash {
            return Err(fail(last, "the last hash is not the manifest's head_hash"));
        }
        if let Some(f) = self.balance {
            return Err(f);
        }
        // Totals: an account with no entries in the range is not listed.
        let mut by_account: BTreeMap<String, Sides> = BTreeMap::new();
        let mut dates: BTreeMap<String, BTreeMap<String, Sides>> = BTreeMap::new();
        for (date, sides) in &self.by_date {
            // Each date appears once in `by_date`.
            let day = dates.entry(String::from_utf8_lossy(&iso_date(*date)).into_owned()).or_default();
            for (i, s) in sides.iter().enumerate() {
                let Some(s) = s else { continue };
                let a = by_account.entry(self.accounts[i].clone()).or_default();
                a.debit += s.debit;
                a.credit += s.credit;
                day.insert(self.accounts[i].clone(), s.clone());
            }
        }
        if by_account != m.totals_by_account || dates != m.totals_by_date {
            return Err(fail(0, "the totals do not add up to the manifest's"));
        }
        Ok((self.rows, self.accounts))
    }
}

/// The general reader: any file the `csv` crate reads.
fn general(entries_csv: &[u8], m: &Manifest) -> Result<Rows, Failure> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(entries_csv);
    let header = rdr.headers().map_err(|e| fail(0, format!("entries.csv: {e}")))?.clone();
    if header.iter().collect::<Vec<_>>() != ENTRIES_HEADER {
        return Err(fail(0, "entries.csv has another header"));
    }
    let mut scan = Scan::new(m, false, usize::try_from(m.entry_count).unwrap_or(0));
    let mut rec = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(fail(scan.expected_seq, format!("unreadable row: {e}"))),
        }
        scan.row(std::array::from_fn(|i| rec.get(i).unwrap_or("")))?;
    }
    scan.finish(m)
}

/// The fast path's answer, or `None` when the general reader must read the file. The rows are
/// cut at the first line break at or after `cut_from` bytes into them (by default the middle of a
/// file of `SPLIT_AT` bytes or more; a smaller one is read on one thread).
fn fast(entries_csv: &[u8], m: &Manifest, cut_from: Option<usize>) -> Option<Result<Rows, Failure>> {
    let body = entries_csv.strip_prefix(ENTRIES_HEADER.join(",").as_bytes())?.strip_prefix(b"\n")?;
    let count = usize::try_from(m.entry_count).unwrap_or(0);
    let cut_from = cut_from.or((body.len() >= SPLIT_AT).then_some(body.len() / 2));
    let cut = cut_from
        .and_then(|from| memchr::memchr(b'\n', body.get(from..)?).map(|i| from + i + 1))
        .filter(|c| *c < body.len());
    let scan = match cut {
        None => part(body, m, false, count)?,
        Some(cut) => {
            let (a, b) = body.split_at(cut);
            let (a, b) = std::thread::scope(|s| {
                let b = s.spawn(|| part(b, m, true, count / 2 + 1));
                // A panic in the other thread is a bug: pass it on.
                (part(a, m, false, count), b.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            });
            a?.join(b?)?
        }
    };
    Some(scan.finish(m))
}

/// Scans consecutive whole rows; `None` at anything the general reader must judge.
pub(super) fn part(bytes: &[u8], m: &Manifest, mid: bool, capacity: usize) -> Option<Scan> {
    let text = std::str::from_utf8(bytes).ok()?;
    // No quote or carriage return anywhere (one pass over the block): then every comma ends a
    // field, and one iterator per row finds them.
    if memchr::memchr2(b'"', b'\r', bytes).is_some() {
        return None;
    }
    let mut scan = Scan::new(m, mid, capacity);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', bytes).chain((!bytes.ends_with(b"\n")).then_some(bytes.len())) {
        // Between two line breaks (or the end): whole characters, `text` being UTF-8.
        let line = text.get(start..end)?;
        start = end + 1;
        if line.is_empty() && end == bytes.len() {
            break;
        }
        let mut fields = [""; 12];
        let mut commas = memchr::memchr_iter(b',', line.as_bytes());
        let mut from = 0;
        for field in fields.iter_mut().take(11) {
            let at = commas.next()?;
            *field = line.get(from..at)?;
            from = at + 1;
        }
        if commas.next().is_some() {
            return None;
        }
        fields[11] = line.get(from..)?;
        scan.row(fields).ok()?;
    }
    Some(scan)
}

#[cfg(test)]
#[path = "rows_tests.rs"]
mod tests;
