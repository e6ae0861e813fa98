//! Offline verification of an export (`feerecon ledger verify DIR`): everything is recomputed
//! from the two files, nothing is taken on trust. Pure.
//!
//! Checked, in order, each failure naming the first bad `seq`: the entries are contiguous from
//! `first_seq`; each `prev_hash` is the previous entry's hash (the first one's is the anchor);
//! each hash is `SHA-256(prev_hash ‖ canonical entry)`; every posting balances; the totals per
//! account and per date equal the manifest's; each checkpoint's signature verifies with the
//! manifest's key (or the pinned key, which must then be the manifest's); a checkpoint inside the
//! range has the head hash of its entry; and the difference of cumulative totals between two
//! checkpoints equals the sum of the entries between them.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Verifier, VerifyingKey};

use super::export::{ENTRIES_HEADER, Manifest, ManifestCheckpoint, Sides};
use crate::domain::chain::link;
use crate::domain::ledger::{canonical_entry, checkpoint_message};

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: i64,
    pub first_seq: i64,
    pub last_seq: i64,
    pub head_hash: String,
    pub checkpoints: usize,
    pub public_key: String,
}

/// The first problem: at which `seq` (0 for the files themselves) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", if *seq > 0 { format!("seq {seq}: ") } else { String::new() })]
pub struct Failure {
    pub seq: i64,
    pub reason: String,
}

fn fail(seq: i64, reason: impl Into<String>) -> Failure {
    Failure { seq, reason: reason.into() }
}

struct Row {
    seq: i64,
    date: chrono::NaiveDate,
    posting_id: String,
    kind: String,
    line_no: i64,
    account: String,
    debit: i64,
    credit: i64,
    memo: String,
    refs: String,
    prev_hash: String,
    hash: String,
}

fn verifying_key(hex_key: &str) -> Result<VerifyingKey, Failure> {
    let mut b = [0u8; 32];
    hex::decode_to_slice(hex_key.trim(), &mut b).map_err(|_| fail(0, "the public key is not 32 bytes of hex"))?;
    VerifyingKey::from_bytes(&b).map_err(|_| fail(0, "the public key is not an Ed25519 key"))
}

/// Whether `c`'s signature verifies with `key`.
pub fn checkpoint_signed(c: &ManifestCheckpoint, key: &VerifyingKey) -> bool {
    let Ok(date) = chrono::NaiveDate::parse_from_str(&c.business_date, "%Y-%m-%d") else { return false };
    let Ok(at) = chrono::DateTime::parse_from_rfc3339(&c.created_at) else { return false };
    let msg = checkpoint_message(
        &c.kind,
        date,
        &c.gateway,
        c.last_seq,
        &c.head_hash,
        &c.totals,
        &at.with_timezone(&chrono::Utc),
    );
    let mut sig = [0u8; 64];
    if hex::decode_to_slice(&c.signature, &mut sig).is_err() {
        return false;
    }
    key.verify(&msg, &Signature::from_bytes(&sig)).is_ok()
}

/// Verifies `entries.csv` against `manifest.json`; `pinned` is a public key given by the auditor.
pub fn verify(entries_csv: &[u8], manifest_json: &[u8], pinned: Option<&str>) -> Result<Verified, Failure> {
    use sha2::Digest as _;
    let m: Manifest =
        serde_json::from_slice(manifest_json).map_err(|e| fail(0, format!("manifest.json is not a manifest: {e}")))?;
    if m.format != super::export::FORMAT {
        return Err(fail(0, format!("unknown export format {:?}", m.format)));
    }
    let key = verifying_key(&m.public_key)?;
    if let Some(p) = pinned
        && !p.trim().eq_ignore_ascii_case(&m.public_key)
    {
        return Err(fail(0, "the export is signed with another key than the pinned one"));
    }
    // Read the rows.
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(entries_csv);
    let header = rdr.headers().map_err(|e| fail(0, format!("entries.csv: {e}")))?.clone();
    if header.iter().collect::<Vec<_>>() != ENTRIES_HEADER {
        return Err(fail(0, "entries.csv has another header"));
    }
    let mut rows = Vec::new();
    for (expected_seq, rec) in (m.first_seq..).zip(rdr.records()) {
        let rec = rec.map_err(|e| fail(expected_seq, format!("unreadable row: {e}")))?;
        let f = |i: usize| rec.get(i).unwrap_or("").to_owned();
        let num = |i: usize| {
            f(i).parse::<i64>().map_err(|_| fail(expected_seq, format!("{} is not a number", ENTRIES_HEADER[i])))
        };
        let seq = num(0)?;
        if seq != expected_seq {
            return Err(fail(
                expected_seq,
                format!("expected seq {expected_seq}, found {seq} (a row missing, added or moved)"),
            ));
        }
        let date = chrono::NaiveDate::parse_from_str(&f(1), "%Y-%m-%d").map_err(|_| fail(seq, "bad business_date"))?;
        rows.push(Row {
            seq,
            date,
            posting_id: f(2),
            kind: f(3),
            line_no: num(4)?,
            account: f(5),
            debit: num(6)?,
            credit: num(7)?,
            memo: f(8),
            refs: f(9),
            prev_hash: f(10),
            hash: f(11),
        });
    }
    let last = rows.last().map_or(m.first_seq - 1, |r| r.seq);
    if last != m.last_seq || i64::try_from(rows.len()).unwrap_or(-1) != m.entry_count {
        return Err(fail(
            last + 1,
            format!(
                "the manifest says {} entries through seq {}, the file has {} through {last}",
                m.entry_count,
                m.last_seq,
                rows.len()
            ),
        ));
    }
    // The chain.
    let mut prev = m.anchor_hash.clone();
    for r in &rows {
        if r.prev_hash != prev {
            return Err(fail(r.seq, "prev_hash is not the previous entry's hash"));
        }
        if r.debit < 0 || r.credit < 0 || (r.debit > 0 && r.credit > 0) {
            return Err(fail(r.seq, "an entry is either a debit or a credit, never negative"));
        }
        let canonical = canonical_entry(
            r.seq,
            r.date,
            &r.posting_id,
            &r.kind,
            r.line_no,
            &r.account,
            r.debit,
            r.credit,
            &r.memo,
            &r.refs,
        );
        let h = link(&prev, &canonical).ok_or_else(|| fail(r.seq, "prev_hash is not a hash"))?;
        if h != r.hash {
            return Err(fail(r.seq, "the hash does not match the entry"));
        }
        prev = h;
    }
    if prev != m.head_hash {
        return Err(fail(last, "the last hash is not the manifest's head_hash"));
    }
    // Postings balance (entries of one posting are contiguous).
    let mut i = 0;
    while i < rows.len() {
        let id = &rows[i].posting_id;
        let (start, mut dr, mut cr) = (rows[i].seq, 0i64, 0i64);
        while i < rows.len() && rows[i].posting_id == *id {
            dr += rows[i].debit;
            cr += rows[i].credit;
            i += 1;
        }
        if dr != cr {
            return Err(fail(start, format!("posting {id} does not balance ({dr} ≠ {cr})")));
        }
    }
    // Totals.
    let mut by_account: BTreeMap<String, Sides> = BTreeMap::new();
    let mut by_date: BTreeMap<String, BTreeMap<String, Sides>> = BTreeMap::new();
    for r in &rows {
        let a = by_account.entry(r.account.clone()).or_default();
        a.debit += r.debit;
        a.credit += r.credit;
        let d = by_date.entry(r.date.format("%Y-%m-%d").to_string()).or_default().entry(r.account.clone()).or_default();
        d.debit += r.debit;
        d.credit += r.credit;
    }
    if by_account != m.totals_by_account || by_date != m.totals_by_date {
        return Err(fail(0, "the totals do not add up to the manifest's"));
    }
    if hex::encode(sha2::Sha256::digest(entries_csv)) != m.entries_sha256 {
        return Err(fail(0, "entries.csv is not the file the manifest describes (entries_sha256)"));
    }
    // Checkpoints: signed, on the chain, and their totals consistent with the entries.
    let hash_at: BTreeMap<i64, &str> = rows.iter().map(|r| (r.seq, r.hash.as_str())).collect();
    let mut previous: Option<&ManifestCheckpoint> = None;
    for c in &m.checkpoints {
        if !c.public_key.eq_ignore_ascii_case(&m.public_key) || !checkpoint_signed(c, &key) {
            return Err(fail(
                c.last_seq,
                format!("the {} checkpoint of {} is not signed by the key", c.kind, c.business_date),
            ));
        }
        let on_chain = match hash_at.get(&c.last_seq) {
            Some(h) => *h == c.head_hash,
            None => c.last_seq == m.first_seq - 1 && c.head_hash == m.anchor_hash,
        };
        if !on_chain {
            return Err(fail(
                c.last_seq,
                format!("the {} checkpoint of {} does not match the chain", c.kind, c.business_date),
            ));
        }
        if let Some(p) = previous {
            let mut delta: BTreeMap<String, (i64, i64)> = BTreeMap::new();
            for r in rows.iter().filter(|r| r.seq > p.last_seq && r.seq <= c.last_seq) {
                let e = delta.entry(r.account.clone()).or_default();
                e.0 += r.debit;
                e.1 += r.credit;
            }
            let mut expect = p.totals.clone();
            for (a, (d, cr)) in delta {
                let e = expect.entry(a).or_default();
                e.0 += d;
                e.1 += cr;
            }
            if expect != c.totals {
                return Err(fail(
                    c.last_seq,
                    format!("the {} checkpoint's totals do not follow from the entries", c.kind),
                ));
            }
        }
        previous = Some(c);
    }
    Ok(Verified {
        entries: m.entry_count,
        first_seq: m.first_seq,
        last_seq: m.last_seq,
        head_hash: m.head_hash,
        checkpoints: m.checkpoints.len(),
        public_key: m.public_key,
    })
}
