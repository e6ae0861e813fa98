//! Offline verification of an export (`feerecon ledger verify DIR`): everything is recomputed
//! from the two files, nothing is taken on trust. Pure.
//!
//! Checked, in order, each failure naming the first bad `seq`: the entries are contiguous from
//! `first_seq`; each `prev_hash` is the previous entry's hash (the first one's is the anchor);
//! each hash is `SHA-256(prev_hash ‖ canonical entry)`; every posting balances; the totals per
//! account and per date equal the manifest's; each checkpoint's signature verifies with the
//! manifest's key (or the pinned key, which must then be the manifest's); a checkpoint inside the
//! range has the head hash of its entry; the difference of cumulative totals between two
//! checkpoints (or from the genesis, empty, to the first one when the export starts at seq 1)
//! equals the sum of the entries between them; an export checkpoint covers the last entry and
//! carries the manifest's `to`; and both ends are signed: the first entry links to a signed
//! checkpoint or is seq 1 on the genesis hash, and a signed checkpoint covers the last entry.
//! An unsigned end fails at the first row no signature covers.
//!
//! So what verify accepts is, row for row, what the ledger's key signed, from the checkpoint
//! before the first entry (or the genesis) through the last entry. It cannot tell from the files
//! alone that an export was cut down to an earlier signed checkpoint at either end (every row left
//! is still signed): compare `first_seq`/`last_seq` with the checkpoints the ledger lists.

mod rows;
mod stream;

use ed25519_dalek::{Signature, Verifier, VerifyingKey};

use self::rows::{Row, Rows, check_rows};
use super::export::{Manifest, ManifestCheckpoint};
use crate::domain::chain::GENESIS;
use crate::domain::ledger::{EXPORT_CHECKPOINT, Totals, checkpoint_message};

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
    let (m, key) = manifest(manifest_json, pinned)?;
    // The file's own hash, on another core while the rows are read.
    let (checked, file_hash) = std::thread::scope(|scope| {
        let file_hash = scope.spawn(|| hex::encode(sha2::Sha256::digest(entries_csv)));
        let checked = check_rows(entries_csv, &m);
        // A panic in the hashing thread is a bug: pass it on.
        (checked, file_hash.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
    });
    conclude(m, &key, checked, &file_hash)
}

/// `verify` reading `entries.csv` from `entries_path` block by block, each block hashed and its
/// rows checked while the next is read (`stream.rs`): the same answer as `verify` over the
/// file's bytes, sooner and without holding the file in memory. The outer error is the file's
/// (it cannot be opened or read).
pub fn verify_file(
    entries_path: &std::path::Path,
    manifest_json: &[u8],
    pinned: Option<&str>,
) -> std::io::Result<Result<Verified, Failure>> {
    verify_file_in_blocks(entries_path, manifest_json, pinned, stream::BLOCK)
}

fn verify_file_in_blocks(
    entries_path: &std::path::Path,
    manifest_json: &[u8],
    pinned: Option<&str>,
    block: usize,
) -> std::io::Result<Result<Verified, Failure>> {
    let (m, key) = match manifest(manifest_json, pinned) {
        Ok(mk) => mk,
        Err(f) => return Ok(Err(f)),
    };
    let (checked, file_hash) = stream::rows_from_file(entries_path, &m, block)?;
    Ok(conclude(m, &key, checked, &file_hash))
}

/// The manifest, read and checked, and its key.
fn manifest(manifest_json: &[u8], pinned: Option<&str>) -> Result<(Manifest, VerifyingKey), Failure> {
    let m: Manifest =
        serde_json::from_slice(manifest_json).map_err(|e| fail(0, format!("manifest.json is not a manifest: {e}")))?;
    if m.format != super::export::FORMAT {
        return Err(fail(0, format!("unknown export format {:?}", m.format)));
    }
    if m.entry_count < 1 {
        return Err(fail(0, "the export holds no entry (an export always holds at least one)"));
    }
    let key = verifying_key(&m.public_key)?;
    if let Some(p) = pinned
        && !p.trim().eq_ignore_ascii_case(&m.public_key)
    {
        return Err(fail(0, "the export is signed with another key than the pinned one"));
    }
    Ok((m, key))
}

/// After the first pass: the file's hash, the checkpoints, both ends signed.
fn conclude(
    m: Manifest,
    key: &VerifyingKey,
    checked: Result<Rows, Failure>,
    file_hash: &str,
) -> Result<Verified, Failure> {
    let (rows, accounts) = checked?;
    if file_hash != m.entries_sha256 {
        return Err(fail(0, "entries.csv is not the file the manifest describes (entries_sha256)"));
    }
    check_checkpoints(&m, key, &rows, &accounts)?;
    drop((rows, accounts));
    check_both_ends_signed(&m)?;
    Ok(Verified {
        entries: m.entry_count,
        first_seq: m.first_seq,
        last_seq: m.last_seq,
        head_hash: m.head_hash,
        checkpoints: m.checkpoints.len(),
        public_key: m.public_key,
    })
}

/// Checkpoints: signed, on the chain, and their totals consistent with the entries.
fn check_checkpoints(m: &Manifest, key: &VerifyingKey, rows: &[Row], accounts: &[String]) -> Result<(), Failure> {
    // The row of a seq, by position (the first pass checked the seqs are contiguous).
    let index = |seq: i64| usize::try_from(seq - m.first_seq).ok().filter(|i| *i < rows.len());
    // The cumulative totals the next checkpoint must follow from: at the genesis they are empty.
    let genesis = Totals::new();
    let mut previous: Option<(i64, &Totals)> = (m.first_seq == 1 && m.anchor_hash == GENESIS).then_some((0, &genesis));
    for c in &m.checkpoints {
        if !c.public_key.eq_ignore_ascii_case(&m.public_key) || !checkpoint_signed(c, key) {
            return Err(fail(
                c.last_seq,
                format!("the {} checkpoint of {} is not signed by the key", c.kind, c.business_date),
            ));
        }
        let on_chain = match index(c.last_seq) {
            Some(i) => rows[i].hash.as_slice() == c.head_hash.as_bytes(),
            None => c.last_seq == m.first_seq - 1 && c.head_hash == m.anchor_hash,
        };
        if !on_chain {
            return Err(fail(
                c.last_seq,
                format!("the {} checkpoint of {} does not match the chain", c.kind, c.business_date),
            ));
        }
        if c.kind == EXPORT_CHECKPOINT && (c.last_seq != m.last_seq || c.business_date != m.to_date) {
            return Err(fail(
                c.last_seq,
                format!(
                    "the export checkpoint covers seq {} to {}, the manifest says seq {} to {}",
                    c.last_seq, c.business_date, m.last_seq, m.to_date
                ),
            ));
        }
        if let Some((p_seq, p_totals)) = previous {
            // The entries after the previous checkpoint, through this one.
            let from = usize::try_from(p_seq + 1 - m.first_seq).unwrap_or(0).min(rows.len());
            let to = usize::try_from(c.last_seq + 1 - m.first_seq).unwrap_or(0).min(rows.len());
            let mut delta: Vec<Option<(i64, i64)>> = vec![None; accounts.len()];
            for r in rows.get(from..to).unwrap_or_default() {
                let e = delta[r.account].get_or_insert((0, 0));
                e.0 += r.debit;
                e.1 += r.credit;
            }
            let mut expect = p_totals.clone();
            for (a, d) in delta.iter().enumerate() {
                if let Some((dr, cr)) = d {
                    let e = expect.entry(accounts[a].clone()).or_default();
                    e.0 += dr;
                    e.1 += cr;
                }
            }
            if expect != c.totals {
                return Err(fail(
                    c.last_seq,
                    format!("the {} checkpoint's totals do not follow from the entries", c.kind),
                ));
            }
        }
        previous = Some((c.last_seq, &c.totals));
    }
    Ok(())
}

/// Both ends signed (the checkpoints were checked before: each is signed and on the chain). The
/// first entry links to a checkpoint that ends just before it, or is seq 1 on the genesis hash;
/// a checkpoint ends on the last entry. Otherwise the first row no signature covers is named.
fn check_both_ends_signed(m: &Manifest) -> Result<(), Failure> {
    let anchored = (m.first_seq == 1 && m.anchor_hash == GENESIS)
        || m.checkpoints.iter().any(|c| c.last_seq == m.first_seq - 1 && c.head_hash == m.anchor_hash);
    if !anchored {
        return Err(fail(
            m.first_seq,
            format!(
                "the first entry links to neither a signed checkpoint nor the genesis hash (anchor {}): no signature covers seq {} onwards from a known start",
                m.anchor_hash, m.first_seq
            ),
        ));
    }
    let covered = m.checkpoints.iter().map(|c| c.last_seq).filter(|s| *s <= m.last_seq).max().unwrap_or(0);
    if covered < m.last_seq {
        let first_unsigned = (covered + 1).max(m.first_seq);
        return Err(fail(
            first_unsigned,
            format!(
                "no signed checkpoint covers seq {first_unsigned} to {} (the export's tail is unsigned)",
                m.last_seq
            ),
        ));
    }
    Ok(())
}
