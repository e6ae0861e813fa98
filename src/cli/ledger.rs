//! `ledger export` and `ledger verify`: the auditor's files.

use std::sync::Arc;

use anyhow::Context as _;

use super::output::OutDir;
use super::{CliError, open_store, user_err};
use crate::config::Config;
use crate::domain::Clock;

pub(super) async fn ledger_export(
    config: &Config,
    clock: Arc<dyn Clock>,
    from: &str,
    to: &str,
    out: &std::path::Path,
) -> Result<(), CliError> {
    let from = crate::domain::BusinessDate::parse(from).map_err(|e| user_err(format!("--from: {e}")))?;
    let to = crate::domain::BusinessDate::parse(to).map_err(|e| user_err(format!("--to: {e}")))?;
    if to < from {
        return Err(user_err("--to is before --from"));
    }
    // The folder and its files before anything else: a path that cannot be written is named first.
    let files = OutDir::open("--out", out, &["entries.csv", "manifest.json"])?;
    // The export signs its tail with the ledger's key: FEERECON_LEDGER_KEY, which must be the key
    // the database recorded (never created here).
    let store = open_store(config).await?;
    let Some(recorded) = store.recorded_ledger_key().await.context("Failed to read the ledger's key")? else {
        return Err(user_err(
            "FEERECON_LEDGER_KEY: this database has recorded no ledger key yet (start `serve` once with the key)",
        ));
    };
    let key = crate::ledger::LedgerKey::for_ledger(&config.ledger_key, Some(&recorded))
        .map_err(|e| user_err(format!("FEERECON_LEDGER_KEY: {e}")))?;
    if recorded != key.public_hex() {
        return Err(user_err(format!(
            "FEERECON_LEDGER_KEY: this key's public key {} is not the one the ledger is signed with ({recorded}); export with the ledger's key",
            key.public_hex()
        )));
    }
    let ledger = crate::ledger::Ledger { store, key: Some(Arc::new(key)), clock };
    let e = ledger
        .export(from.naive(), to.naive())
        .await?
        .ok_or_else(|| user_err(format!("no ledger entry is dated {from} to {to}")))?;
    files.write(&[&e.entries_csv, &e.manifest_json])?;
    let m = &e.manifest;
    outln!(
        "exported seq {}..{} ({} entries, {} checkpoints) to {}; head {}",
        m.first_seq,
        m.last_seq,
        m.entry_count,
        m.checkpoints.len(),
        out.display(),
        m.head_hash
    )?;
    Ok(())
}

pub(super) fn ledger_verify(dir: &std::path::Path, public_key: Option<&std::path::Path>) -> Result<(), CliError> {
    let read =
        |name: &str| std::fs::read(dir.join(name)).map_err(|e| user_err(format!("{}: {e}", dir.join(name).display())));
    // entries.csv is read by `verify_file`, block by block while it checks (issue 23).
    let entries = dir.join("entries.csv");
    let entries_error = |e: std::io::Error| user_err(format!("{}: {e}", entries.display()));
    std::fs::File::open(&entries).map_err(entries_error)?;
    let manifest = read("manifest.json")?;
    let pinned = match public_key {
        None => None,
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|e| user_err(format!("--public-key {}: {e}", p.display())))?;
            let key = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["public_key"].as_str().map(str::to_owned))
                .unwrap_or_else(|| text.trim().to_owned());
            Some(key)
        }
    };
    match crate::ledger::verify::verify_file(&entries, &manifest, pinned.as_deref()).map_err(entries_error)? {
        Ok(v) => {
            outln!(
                "ok: {} entries, seq {}..{}, {} signed checkpoints, head {}, key {}",
                v.entries,
                v.first_seq,
                v.last_seq,
                v.checkpoints,
                v.head_hash,
                v.public_key
            )?;
            Ok(())
        }
        Err(f) => Err(user_err(format!("verification failed: {f}"))),
    }
}
