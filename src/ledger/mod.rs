//! The ledger (SPEC §8): the signing key, signed checkpoints, the auditor's export and its
//! offline verification, and the live chain check.
//!
//! Postings are made where money moves (payments, settlement, resolutions) and appended to the
//! hash chain by the store, in the transaction that moves the money. This module signs what the
//! chain says at a close and at the end of each business date with an Ed25519 key kept in
//! `FEERECON_LEDGER_KEY` (created on the first start of a ledger that has no key yet, mode 0600;
//! never for a ledger that recorded one; every instance on one database must use the same key),
//! and turns a date range into files an auditor can check with nothing but
//! `feerecon ledger verify`.

pub mod chain;
pub mod export;
pub mod verify;

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _};
use tokio::sync::watch;

use crate::domain::chain::link;
use crate::domain::{BusinessDate, Clock, Timestamp};
use crate::store::{Checkpoint, Store, StoreError, WriteTx};

/// The ledger's signing key. `Debug` never shows the secret half.
pub struct LedgerKey {
    key: SigningKey,
}

impl std::fmt::Debug for LedgerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LedgerKey(public {})", self.public_hex())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    /// The key file is not there, and the ledger is signed with a key (its public key): a new key
    /// could not sign for it.
    #[error(
        "{path} does not exist, and this ledger is signed with another key (public key {recorded}): restore that key's file there or point FEERECON_LEDGER_KEY at it; no new key is made for a ledger that has one"
    )]
    Missing { path: String, recorded: String },
}

impl LedgerKey {
    /// The key file, `None` when it does not exist.
    fn read(path: &Path) -> Result<Option<Self>, KeyError> {
        let err = |reason: String| KeyError::File { path: path.display().to_string(), reason };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut seed = [0u8; 32];
                hex::decode_to_slice(text.trim(), &mut seed)
                    .map_err(|_| err("is not a ledger key (64 hex digits)".into()))?;
                Ok(Some(Self { key: SigningKey::from_bytes(&seed) }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(err(format!("cannot read: {e}"))),
        }
    }

    /// The key of a ledger whose recorded public key is `recorded` (`None`: no key yet): the file
    /// is loaded; a missing file is created only for a ledger without a key, and is
    /// `KeyError::Missing` (nothing created) for one that has a key.
    pub fn for_ledger(path: &Path, recorded: Option<&str>) -> Result<Self, KeyError> {
        match (Self::read(path)?, recorded) {
            (Some(key), _) => Ok(key),
            (None, Some(recorded)) => {
                Err(KeyError::Missing { path: path.display().to_string(), recorded: recorded.to_owned() })
            }
            (None, None) => Self::load_or_create(path),
        }
    }

    /// Loads the key file, or creates it (mode 0600) when it does not exist. The file holds the
    /// 32-byte secret seed in hex.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let err = |reason: String| KeyError::File { path: path.display().to_string(), reason };
        match Self::read(path)? {
            Some(key) => Ok(key),
            None => {
                let mut seed = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut f = opts.open(path).map_err(|e| err(format!("cannot create: {e}")))?;
                writeln!(f, "{}", hex::encode(seed)).map_err(|e| err(format!("cannot write: {e}")))?;
                f.sync_all().map_err(|e| err(format!("cannot write: {e}")))?;
                tracing::info!(path = %path.display(), "created the ledger signing key");
                Ok(Self { key: SigningKey::from_bytes(&seed) })
            }
        }
    }

    pub fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    pub fn sign_hex(&self, message: &[u8]) -> String {
        hex::encode(self.key.sign(message).to_bytes())
    }

    /// Whether `signature_hex` is this key's signature of `message`.
    pub fn signed(&self, message: &[u8], signature_hex: &str) -> bool {
        let mut sig = [0u8; 64];
        hex::decode_to_slice(signature_hex, &mut sig).is_ok()
            && self.key.verifying_key().verify(message, &ed25519_dalek::Signature::from_bytes(&sig)).is_ok()
    }
}

/// An export, as files.
pub struct Export {
    pub entries_csv: Vec<u8>,
    pub manifest_json: Vec<u8>,
    pub manifest: export::Manifest,
}

/// The live chain check (`GET /api/v1/ledger/verify`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LiveCheck {
    pub ok: bool,
    pub entries: i64,
    pub last_seq: i64,
    pub head_hash: String,
    pub checkpoints: usize,
    pub first_bad_seq: Option<i64>,
    pub reason: Option<String>,
}

pub struct Ledger {
    pub store: Store,
    /// The signing key; `None` for read-only uses (the CLI's export).
    pub key: Option<Arc<LedgerKey>>,
    pub clock: Arc<dyn Clock>,
}

impl Ledger {
    /// Records this key as the database's, or refuses a different one.
    pub async fn check_key(&self) -> anyhow::Result<()> {
        let Some(key) = &self.key else { return Ok(()) };
        let mine = key.public_hex();
        let recorded = self.store.ledger_key(&mine, self.clock.now()).await?;
        if recorded != mine {
            return Err(crate::config::StartupRefused(format!(
                "FEERECON_LEDGER_KEY: this key's public key {mine} differs from the one this database's ledger is signed with ({recorded}); every instance must use the same key"
            ))
            .into());
        }
        Ok(())
    }

    /// Writes a checkpoint (`close` of a (date, gateway), or `end_of_day` of a date) unless one
    /// exists, in its own transaction.
    pub async fn checkpoint(&self, kind: &str, date: NaiveDate, gateway: &str) -> anyhow::Result<Option<Checkpoint>> {
        let Some(key) = self.key.clone() else { anyhow::bail!("no ledger key to sign with") };
        let mut tx = self.store.write().await?;
        let cp = write_checkpoint(&mut tx, &key, kind, date, gateway, self.clock.now()).await?;
        tx.commit().await?;
        Ok(cp)
    }

    /// The public key the ledger is signed with: the one recorded for this database.
    pub async fn public_key(&self) -> anyhow::Result<String> {
        match (self.store.recorded_ledger_key().await?, &self.key) {
            (Some(k), _) => Ok(k),
            (None, Some(k)) => Ok(k.public_hex()),
            (None, None) => anyhow::bail!("this database has no ledger key yet (start `serve` once)"),
        }
    }

    /// Writes the end-of-day checkpoint of every past business date that lacks one, from the
    /// ledger's first date. Returns how many it wrote.
    pub async fn end_of_days(&self) -> anyhow::Result<usize> {
        let Some(first) = self.store.first_ledger_date().await? else { return Ok(0) };
        let today = BusinessDate::of(self.clock.now()).naive();
        let have: std::collections::BTreeSet<NaiveDate> = self
            .store
            .checkpoints()
            .await?
            .into_iter()
            .filter(|c| c.kind == "end_of_day")
            .map(|c| c.business_date)
            .collect();
        let mut written = 0;
        let mut d = first;
        while d < today {
            if !have.contains(&d) && self.checkpoint("end_of_day", d, "").await?.is_some() {
                written += 1;
            }
            d = d.succ_opt().unwrap_or(today);
        }
        Ok(written)
    }

    /// Writes end-of-day checkpoints as dates pass, until `shutdown`.
    pub async fn run_end_of_day_worker(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.end_of_days().await {
                tracing::warn!(error = %e, "end-of-day checkpoint failed; will retry");
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(30)) => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
        }
    }

    /// The export of entries dated [from, to], bracketed by checkpoints and signed at its tail
    /// (`export::tail_checkpoint`) with this ledger's key, which must be the one the database
    /// recorded; `None` when no entry falls in the range.
    pub async fn export(&self, from: NaiveDate, to: NaiveDate) -> anyhow::Result<Option<Export>> {
        let Some(key) = self.key.clone() else { anyhow::bail!("no ledger key to sign the export with") };
        let public = self.public_key().await?;
        if public != key.public_hex() {
            anyhow::bail!(
                "the ledger is signed with {public}, not with this key ({}): an export is signed with the ledger's key",
                key.public_hex()
            );
        }
        let Some((lo, hi)) = self.store.ledger_seq_range(from, to).await? else { return Ok(None) };
        let checkpoints = self.store.checkpoints().await?;
        let (head, _) = self.store.ledger_head().await?;
        let (start, end) = export::bracket(lo, hi, head, &checkpoints);
        let entries = self.store.ledger_slice(start, end).await?;
        let csv = export::entries_csv(&entries);
        let mut m = export::manifest(&from.to_string(), &to.to_string(), &entries, &csv, &checkpoints, &public);
        if let Some(last) = export::unsigned_tail(&entries, &checkpoints) {
            let at = self.store.posting_created_at(&last.posting_id).await?.ok_or_else(|| {
                anyhow::anyhow!("posting {} of seq {} is not in the ledger", last.posting_id, last.seq)
            })?;
            m.checkpoints
                .push(export::tail_checkpoint(to, &entries, &checkpoints, at, &key).map_err(anyhow::Error::msg)?);
        }
        Ok(Some(Export { manifest_json: export::manifest_bytes(&m), entries_csv: csv, manifest: m }))
    }

    /// Recomputes the whole stored chain: hashes, links, balances, signatures.
    pub async fn verify_live(&self) -> anyhow::Result<LiveCheck> {
        let checkpoints = self.store.checkpoints().await?;
        let key_hex = self.public_key().await?;
        let mut prev = crate::domain::chain::GENESIS.to_owned();
        let mut after = 0;
        let mut count = 0i64;
        let mut hashes = std::collections::HashMap::new();
        let bad = |seq: i64, why: &str, count: i64, prev: &str| LiveCheck {
            ok: false,
            entries: count,
            last_seq: seq - 1,
            head_hash: prev.to_owned(),
            checkpoints: checkpoints.len(),
            first_bad_seq: Some(seq),
            reason: Some(why.to_owned()),
        };
        let mut posting: Option<(String, i64, i64, i64)> = None;
        loop {
            let page = self.store.ledger_entries(after, 10_000).await?;
            if page.is_empty() {
                break;
            }
            for e in &page {
                if e.seq != after + 1 {
                    return Ok(bad(after + 1, "a gap in seq", count, &prev));
                }
                let canonical = e.fields().canonical();
                if e.prev_hash != prev || link(&prev, &canonical).as_deref() != Some(e.hash.as_str()) {
                    return Ok(bad(e.seq, "the hash chain breaks here", count, &prev));
                }
                match &mut posting {
                    Some((id, _, dr, cr)) if *id == e.posting_id => {
                        *dr += e.debit;
                        *cr += e.credit;
                    }
                    _ => {
                        if let Some((_, start, dr, cr)) = &posting
                            && dr != cr
                        {
                            return Ok(bad(*start, "a posting does not balance", count, &prev));
                        }
                        posting = Some((e.posting_id.clone(), e.seq, e.debit, e.credit));
                    }
                }
                prev = e.hash.clone();
                after = e.seq;
                count += 1;
                hashes.insert(e.seq, e.hash.clone());
            }
        }
        if let Some((_, start, dr, cr)) = &posting
            && dr != cr
        {
            return Ok(bad(*start, "a posting does not balance", count, &prev));
        }
        let key = verify::checkpoint_signed;
        let vk = {
            let mut b = [0u8; 32];
            hex::decode_to_slice(&key_hex, &mut b).ok();
            ed25519_dalek::VerifyingKey::from_bytes(&b)?
        };
        for c in &checkpoints {
            let mc = export::manifest_checkpoint(c);
            let on_chain = c.last_seq == 0 || hashes.get(&c.last_seq).is_some_and(|h| *h == c.head_hash);
            if !key(&mc, &vk) || !on_chain {
                return Ok(bad(
                    c.last_seq.max(1),
                    "a checkpoint is not signed by the key or not on the chain",
                    count,
                    &prev,
                ));
            }
        }
        Ok(LiveCheck {
            ok: true,
            entries: count,
            last_seq: after,
            head_hash: prev,
            checkpoints: checkpoints.len(),
            first_bad_seq: None,
            reason: None,
        })
    }
}

/// Writes a signed checkpoint of the chain's head inside `tx` (`None` when this (kind, date,
/// gateway) has one already). Holding the head's lock, no entry can be appended while the
/// totals are summed.
pub async fn write_checkpoint(
    tx: &mut WriteTx,
    key: &LedgerKey,
    kind: &str,
    date: NaiveDate,
    gateway: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Checkpoint>, StoreError> {
    if tx.checkpoint_exists(kind, date, gateway).await? {
        return Ok(None);
    }
    let at = Timestamp::at(at).0;
    let (last_seq, head) = tx.lock_chain_head(crate::store::ledger::Chain::Ledger).await?;
    let totals = cumulative_totals(tx, key, last_seq).await?;
    let message = crate::domain::ledger::checkpoint_message(kind, date, gateway, last_seq, &head, &totals, &at);
    let cp = Checkpoint {
        checkpoint_id: crate::domain::new_id("ckp"),
        kind: kind.to_owned(),
        business_date: date,
        gateway: gateway.to_owned(),
        last_seq,
        head_hash: head,
        totals: serde_json::to_string(&totals).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: at,
        public_key: key.public_hex(),
        signature: key.sign_hex(&message),
    };
    tx.insert_checkpoint(&cp).await?;
    Ok(Some(cp))
}

/// The cumulative debit and credit per account through `last_seq`: the newest checkpoint's
/// totals at or before it plus the entries since (as `verify` checks them), so that a close
/// holding the chain's head sums one day's entries, not the history. A predecessor is trusted only
/// if it is signed with this key and its head is the entry at its `last_seq`; otherwise the
/// whole ledger is summed (and `verify` reports the bad one).
async fn cumulative_totals(
    tx: &mut WriteTx,
    key: &LedgerKey,
    last_seq: i64,
) -> Result<crate::domain::ledger::Totals, StoreError> {
    let base = match tx.checkpoint_through(last_seq).await? {
        Some(c) => {
            let trusted = trusted_totals(tx, key, &c).await?;
            if trusted.is_none() {
                tracing::error!(
                    checkpoint_id = %c.checkpoint_id,
                    last_seq = c.last_seq,
                    "a stored checkpoint does not verify; the new checkpoint's totals are summed from the whole ledger"
                );
            }
            trusted.map(|t| (c.last_seq, t))
        }
        None => None,
    };
    let (after, mut totals) = base.unwrap_or_default();
    for (account, debit, credit) in tx.account_totals(after, last_seq).await? {
        let t = totals.entry(account).or_insert((0, 0));
        t.0 += debit;
        t.1 += credit;
    }
    Ok(totals)
}

/// A stored checkpoint's totals, if it is this key's signature over them and its head is the
/// chain's entry at its `last_seq`.
async fn trusted_totals(
    tx: &mut WriteTx,
    key: &LedgerKey,
    c: &Checkpoint,
) -> Result<Option<crate::domain::ledger::Totals>, StoreError> {
    let Ok(totals) = serde_json::from_str::<crate::domain::ledger::Totals>(&c.totals) else { return Ok(None) };
    let message = crate::domain::ledger::checkpoint_message(
        &c.kind,
        c.business_date,
        &c.gateway,
        c.last_seq,
        &c.head_hash,
        &totals,
        &c.created_at,
    );
    if c.public_key != key.public_hex() || !key.signed(&message, &c.signature) {
        return Ok(None);
    }
    let head = if c.last_seq == 0 {
        Some(crate::domain::chain::GENESIS.to_owned())
    } else {
        tx.entry_hash(c.last_seq).await?
    };
    Ok((head.as_deref() == Some(c.head_hash.as_str())).then_some(totals))
}

/// Writes an export to a folder.
pub fn write_dir(dir: &Path, e: &Export) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("entries.csv"), &e.entries_csv)?;
    std::fs::write(dir.join("manifest.json"), &e.manifest_json)
}

/// The two files as a zip (the API's export).
pub fn zip(e: &Export) -> anyhow::Result<Vec<u8>> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    w.start_file("entries.csv", opts)?;
    w.write_all(&e.entries_csv)?;
    w.start_file("manifest.json", opts)?;
    w.write_all(&e.manifest_json)?;
    Ok(w.finish()?.into_inner())
}
