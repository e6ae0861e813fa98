//! The auditor's export (SPEC §8): `entries.csv`, one row per entry of a contiguous seq range,
//! and `manifest.json`, which says what the range is and what it must add up to. Pure.
//!
//! The range holds every entry whose business date is in [from, to], widened to checkpoints on
//! both sides: from just after the last checkpoint below the first such entry (whose head hash
//! anchors the first entry's `prev_hash`), up to the first checkpoint at or after the last one,
//! or the head. Exports are byte-exact: values are written as stored, never altered for
//! spreadsheets.
//!
//! An export is signed at both ends. Its first entry links to the checkpoint before it (carried
//! in the manifest) or to the genesis hash; its last entry is covered by a stored checkpoint when
//! the range ends on one, else by an export checkpoint (`tail_checkpoint`): kind `export`,
//! business date `to`, gateway `*`, the cumulative totals through the last entry, and the last
//! entry's time, signed with the ledger key. It is never stored and never widens a range, and
//! two exports of one range are the same bytes.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::ledger::{EXPORT_CHECKPOINT, EXPORT_CHECKPOINT_GATEWAY, Totals, checkpoint_message};
use crate::store::LedgerEntry;
use crate::store::ledger::Checkpoint;

pub const ENTRIES_HEADER: [&str; 12] = [
    "seq",
    "business_date",
    "posting_id",
    "kind",
    "line_no",
    "account",
    "debit",
    "credit",
    "memo",
    "refs",
    "prev_hash",
    "hash",
];

/// A checkpoint as the manifest carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ManifestCheckpoint {
    pub kind: String,
    pub business_date: String,
    pub gateway: String,
    pub last_seq: i64,
    pub head_hash: String,
    /// account → [debit, credit], cumulative through `last_seq`.
    pub totals: BTreeMap<String, (i64, i64)>,
    /// RFC 3339 UTC with microseconds, exactly as signed.
    pub created_at: String,
    pub public_key: String,
    pub signature: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Sides {
    pub debit: i64,
    pub credit: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Manifest {
    pub format: String,
    pub from_date: String,
    pub to_date: String,
    pub first_seq: i64,
    pub last_seq: i64,
    pub entry_count: i64,
    /// The `prev_hash` of the first entry (the head hash of the checkpoint before the range, or
    /// 64 zeros at the start of the chain).
    pub anchor_hash: String,
    /// The hash of the last entry.
    pub head_hash: String,
    /// Per account, over the range.
    pub totals_by_account: BTreeMap<String, Sides>,
    /// Per business date, then per account, over the range.
    pub totals_by_date: BTreeMap<String, BTreeMap<String, Sides>>,
    /// The checkpoints that bracket and fall within the range, by seq; last, the export
    /// checkpoint over the last entry when no stored one ends on it.
    pub checkpoints: Vec<ManifestCheckpoint>,
    pub public_key: String,
    /// SHA-256 of `entries.csv`.
    pub entries_sha256: String,
}

pub const FORMAT: &str = "feerecon-ledger-export-v1";

/// The seq range to export for entries of dates [from, to] spanning seqs [lo, hi].
pub fn bracket(lo: i64, hi: i64, head: i64, checkpoints: &[Checkpoint]) -> (i64, i64) {
    let start = checkpoints.iter().filter(|c| c.last_seq < lo).map(|c| c.last_seq).max().map_or(1, |s| s + 1);
    let end = checkpoints.iter().filter(|c| c.last_seq >= hi).map(|c| c.last_seq).min().unwrap_or(head);
    (start, end)
}

pub fn manifest_checkpoint(c: &Checkpoint) -> ManifestCheckpoint {
    ManifestCheckpoint {
        kind: c.kind.clone(),
        business_date: c.business_date.format("%Y-%m-%d").to_string(),
        gateway: c.gateway.clone(),
        last_seq: c.last_seq,
        head_hash: c.head_hash.clone(),
        totals: serde_json::from_str(&c.totals).unwrap_or_default(),
        created_at: c.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        public_key: c.public_key.clone(),
        signature: c.signature.clone(),
    }
}

/// Whether the slice's last entry needs an export checkpoint: it does unless a stored checkpoint
/// ends on it. `None` for an empty slice.
pub fn unsigned_tail<'a>(entries: &'a [LedgerEntry], checkpoints: &[Checkpoint]) -> Option<&'a LedgerEntry> {
    entries.last().filter(|last| !checkpoints.iter().any(|c| c.last_seq == last.seq && c.head_hash == last.hash))
}

/// The export checkpoint over the slice's last entry (see the module docs), signed with `key`.
/// `last_entry_at` is the time of the last entry's posting. The cumulative totals are those of
/// the stored checkpoint just before the slice (none at seq 1) plus the slice's entries. An error
/// says why the totals cannot be anchored (a slice that does not start after a checkpoint).
pub fn tail_checkpoint(
    to: NaiveDate,
    entries: &[LedgerEntry],
    checkpoints: &[Checkpoint],
    last_entry_at: DateTime<Utc>,
    key: &super::LedgerKey,
) -> Result<ManifestCheckpoint, String> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Err("an export checkpoint needs an entry to cover".into());
    };
    let mut totals: Totals = if first.seq == 1 {
        Totals::new()
    } else {
        let anchor =
            checkpoints.iter().find(|c| c.last_seq == first.seq - 1 && c.head_hash == first.prev_hash).ok_or_else(
                || format!("no stored checkpoint ends at seq {} to anchor the export's totals", first.seq - 1),
            )?;
        serde_json::from_str(&anchor.totals)
            .map_err(|e| format!("the totals of checkpoint {} cannot be read: {e}", anchor.checkpoint_id))?
    };
    for e in entries {
        let t = totals.entry(e.account.clone()).or_default();
        t.0 += e.debit;
        t.1 += e.credit;
    }
    // As stored times are: microseconds, so that the signed text and the manifest's agree.
    let at = crate::domain::Timestamp::at(last_entry_at).0;
    let message =
        checkpoint_message(EXPORT_CHECKPOINT, to, EXPORT_CHECKPOINT_GATEWAY, last.seq, &last.hash, &totals, &at);
    Ok(ManifestCheckpoint {
        kind: EXPORT_CHECKPOINT.into(),
        business_date: to.format("%Y-%m-%d").to_string(),
        gateway: EXPORT_CHECKPOINT_GATEWAY.into(),
        last_seq: last.seq,
        head_hash: last.hash.clone(),
        totals,
        created_at: at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        public_key: key.public_hex(),
        signature: key.sign_hex(&message),
    })
}

/// `entries.csv` for a slice of the chain.
pub fn entries_csv(entries: &[LedgerEntry]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    let _ = w.write_record(ENTRIES_HEADER);
    for e in entries {
        let _ = w.write_record([
            e.seq.to_string(),
            e.business_date.format("%Y-%m-%d").to_string(),
            e.posting_id.clone(),
            e.kind.clone(),
            e.line_no.to_string(),
            e.account.clone(),
            e.debit.to_string(),
            e.credit.to_string(),
            e.memo.clone(),
            e.refs.clone(),
            e.prev_hash.clone(),
            e.hash.clone(),
        ]);
    }
    w.into_inner().unwrap_or_default()
}

/// The manifest for an exported slice.
pub fn manifest(
    from: &str,
    to: &str,
    entries: &[LedgerEntry],
    entries_csv: &[u8],
    checkpoints: &[Checkpoint],
    public_key: &str,
) -> Manifest {
    use sha2::Digest as _;
    let first = entries.first().map_or(0, |e| e.seq);
    let last = entries.last().map_or(0, |e| e.seq);
    let mut by_account: BTreeMap<String, Sides> = BTreeMap::new();
    let mut by_date: BTreeMap<String, BTreeMap<String, Sides>> = BTreeMap::new();
    for e in entries {
        let a = by_account.entry(e.account.clone()).or_default();
        a.debit += e.debit;
        a.credit += e.credit;
        let d = by_date
            .entry(e.business_date.format("%Y-%m-%d").to_string())
            .or_default()
            .entry(e.account.clone())
            .or_default();
        d.debit += e.debit;
        d.credit += e.credit;
    }
    Manifest {
        format: FORMAT.into(),
        from_date: from.into(),
        to_date: to.into(),
        first_seq: first,
        last_seq: last,
        entry_count: i64::try_from(entries.len()).unwrap_or(i64::MAX),
        anchor_hash: entries
            .first()
            .map(|e| e.prev_hash.clone())
            .unwrap_or_else(|| crate::domain::chain::GENESIS.into()),
        head_hash: entries.last().map(|e| e.hash.clone()).unwrap_or_else(|| crate::domain::chain::GENESIS.into()),
        totals_by_account: by_account,
        totals_by_date: by_date,
        checkpoints: checkpoints
            .iter()
            .filter(|c| c.last_seq >= first - 1 && c.last_seq <= last)
            .map(manifest_checkpoint)
            .collect(),
        public_key: public_key.into(),
        entries_sha256: hex::encode(sha2::Sha256::digest(entries_csv)),
    }
}

/// The manifest as written: pretty JSON with a final newline.
pub fn manifest_bytes(m: &Manifest) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(m).unwrap_or_default();
    b.push(b'\n');
    b
}
