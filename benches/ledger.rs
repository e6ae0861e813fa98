//! Exporting and verifying a ledger of 1,000,000 entries (issue 7).
//!
//! Run: `cargo bench --bench ledger` (`FEERECON_BENCH_ENTRIES=100000` for a smaller chain).
//! It builds a valid chain in memory (payment confirmations of two lines, as the callback path
//! posts them, over ten business dates, an end-of-day checkpoint signed after each date), then:
//! 1. export: renders `entries.csv` and `manifest.json` (as `feerecon ledger export` does after
//!    reading the rows) and writes them to `target/bench-data/ledger-N/`;
//! 2. verify: `feerecon ledger verify`'s work, from reading both files to the verdict
//!    (`verify_file`: entries.csv read in blocks while they are hashed and checked);
//! 3. `sha256sum entries.csv` and `openssl dgst -sha256 entries.csv` on the same file, in the
//!    same run, as the yardsticks (openssl uses the CPU's SHA extensions, as `sha2` does;
//!    coreutils 9.1's sha256sum does not).
//!
//! Goals: verify at ≥ 40% of openssl's speed (issue 23) and ≥ 50% of sha256sum's (issue 7) over
//! the same file. Medians of three (`FEERECON_BENCH_REPEAT` to change). With
//! `FEERECON_BENCH_SUMMARY=FILE` the summary rows for `benches/run.sh` are appended to FILE.

use std::path::Path;
use std::time::Instant;

use chrono::{NaiveDate, TimeDelta};
use feerecon::domain::chain::{GENESIS, link};
use feerecon::domain::ledger::{EntryFields, Totals, checkpoint_message};
use feerecon::ledger::LedgerKey;
use feerecon::store::LedgerEntry;
use feerecon::store::ledger::Checkpoint;

fn chain(n: usize, key: &LedgerKey) -> (Vec<LedgerEntry>, Vec<Checkpoint>) {
    let first = NaiveDate::from_ymd_opt(2024, 7, 15).expect("a date");
    let per_day = n.div_ceil(10).next_multiple_of(2);
    let mut entries = Vec::with_capacity(n);
    let mut checkpoints = Vec::new();
    let mut totals = Totals::new();
    let mut prev = GENESIS.to_owned();
    let at = chrono::DateTime::parse_from_rfc3339("2024-07-16T00:05:00Z").expect("a time").to_utc();
    for i in 0..n {
        let seq = i64::try_from(i).expect("fits") + 1;
        let day = first + TimeDelta::days(i64::try_from(i / per_day).expect("fits"));
        let p = i / 2;
        let amount = 135_000 + (p % 7) as i64 * 1000;
        let (line_no, account, debit, credit, memo) = if i % 2 == 0 {
            (1, "gateway_clearing:vnpay", amount, 0, format!("payment pay_{p:032x}"))
        } else {
            (2, "revenue:le_phi", 0, amount, "le_phi_doi_gplx citizen part".to_owned())
        };
        let posting_id = format!("pst_{p:032x}");
        let refs = format!(
            "payment=pay_{p:032x};txn_ref=R{p:015};gateway_txn_no={};callback_sha256={:064x}",
            14_000_000 + p,
            p
        );
        let canonical = EntryFields {
            seq,
            business_date: day,
            posting_id: &posting_id,
            kind: "payment_confirmed",
            line_no,
            account,
            debit,
            credit,
            memo: &memo,
            refs: &refs,
        }
        .canonical();
        let hash = link(&prev, &canonical).expect("a hex hash");
        let t = totals.entry(account.to_owned()).or_default();
        t.0 += debit;
        t.1 += credit;
        entries.push(LedgerEntry {
            seq,
            posting_id,
            line_no,
            business_date: day,
            kind: "payment_confirmed".into(),
            account: account.into(),
            debit,
            credit,
            memo,
            refs,
            prev_hash: std::mem::replace(&mut prev, hash.clone()),
            hash,
        });
        if (i + 1) % per_day == 0 || i + 1 == n {
            let created_at = at + TimeDelta::days(i64::try_from(i / per_day).expect("fits"));
            let msg = checkpoint_message("end_of_day", day, "", seq, &prev, &totals, &created_at);
            checkpoints.push(Checkpoint {
                checkpoint_id: format!("chk_{seq}"),
                kind: "end_of_day".into(),
                business_date: day,
                gateway: String::new(),
                last_seq: seq,
                head_hash: prev.clone(),
                totals: serde_json::to_string(&totals).expect("totals serialise"),
                created_at,
                public_key: key.public_hex(),
                signature: key.sign_hex(&msg),
            });
        }
    }
    (entries, checkpoints)
}

fn main() {
    let n: usize = std::env::var("FEERECON_BENCH_ENTRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/bench-data/ledger-{n}"));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let key_path = dir.join("ledger.key");
    let _ = std::fs::remove_file(&key_path);
    let key = LedgerKey::load_or_create(&key_path).expect("a key");
    let t = Instant::now();
    let (entries, checkpoints) = chain(n, &key);
    eprintln!("built a chain of {n} entries in {:.1} s (not timed)", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let csv = feerecon::ledger::export::entries_csv(&entries);
    let from = entries.first().map(|e| e.business_date.to_string()).unwrap_or_default();
    let to = entries.last().map(|e| e.business_date.to_string()).unwrap_or_default();
    let manifest = feerecon::ledger::export::manifest(&from, &to, &entries, &csv, &checkpoints, &key.public_hex());
    let export = feerecon::ledger::Export {
        manifest_json: feerecon::ledger::export::manifest_bytes(&manifest),
        entries_csv: csv,
        manifest,
    };
    feerecon::ledger::write_dir(&dir, &export).expect("write the export");
    let export_s = t.elapsed().as_secs_f64();
    let size = export.entries_csv.len();
    drop(export);
    drop(entries);
    let mib = size as f64 / (1024.0 * 1024.0);
    println!("export: {n} entries, entries.csv {mib:.0} MiB, in {export_s:.2} s");

    let repeat: usize = std::env::var("FEERECON_BENCH_REPEAT").ok().and_then(|v| v.parse().ok()).unwrap_or(3).max(1);
    let mut verify_s = Vec::new();
    let mut sha_s = Vec::new();
    let mut openssl_s = Vec::new();
    let file = dir.join("entries.csv");
    for _ in 0..repeat {
        let t = Instant::now();
        // As `feerecon ledger verify` does: entries.csv read block by block while it is checked.
        let manifest_json = std::fs::read(dir.join("manifest.json")).expect("manifest.json");
        let v = feerecon::ledger::verify::verify_file(&file, &manifest_json, Some(&key.public_hex()))
            .expect("entries.csv reads");
        verify_s.push(t.elapsed().as_secs_f64());
        let v = v.expect("the export verifies");
        assert_eq!(v.entries, i64::try_from(n).expect("fits"));
        let t = Instant::now();
        let out = std::process::Command::new("sha256sum").arg(&file).output().expect("sha256sum runs");
        sha_s.push(t.elapsed().as_secs_f64());
        assert!(out.status.success(), "sha256sum failed");
        let t = Instant::now();
        let out =
            std::process::Command::new("openssl").args(["dgst", "-sha256"]).arg(&file).output().expect("openssl runs");
        openssl_s.push(t.elapsed().as_secs_f64());
        assert!(out.status.success(), "openssl dgst failed");
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let all = |v: &[f64]| v.iter().map(|s| format!("{s:.3}")).collect::<Vec<_>>().join(", ");
    println!("verify runs: {} s; sha256sum: {} s; openssl: {} s", all(&verify_s), all(&sha_s), all(&openssl_s));
    let (v, s, o) = (median(&mut verify_s), median(&mut sha_s), median(&mut openssl_s));
    println!(
        "verify: {v:.3} s ({:.0} MiB/s); sha256sum: {s:.3} s ({:.0} MiB/s); openssl dgst -sha256: {o:.3} s ({:.0} MiB/s); \
         verify at {:.0}% of sha256sum's speed and {:.0}% of openssl's (medians of {repeat})",
        mib / v,
        mib / s,
        mib / o,
        100.0 * s / v,
        100.0 * o / v
    );
    if let Some(path) = std::env::var_os("FEERECON_BENCH_SUMMARY") {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("the summary file");
        let rows = [
            (
                format!("ledger verify, {n} entries ({mib:.0} MiB)"),
                format!("{v:.3} s, {:.0} MiB/s", mib / v),
                "-".to_owned(),
                "-".to_owned(),
            ),
            (
                "openssl dgst -sha256, same file".to_owned(),
                format!("{o:.3} s, {:.0} MiB/s", mib / o),
                "-".to_owned(),
                "-".to_owned(),
            ),
            (
                "verify speed ÷ openssl's".to_owned(),
                format!("{:.2}", o / v),
                "≥ 0.40".to_owned(),
                format!("{:.2}", o / v / 0.4),
            ),
            (
                "verify speed ÷ sha256sum's".to_owned(),
                format!("{:.2}", s / v),
                "≥ 0.50 (issue 7)".to_owned(),
                format!("{:.2}", s / v / 0.5),
            ),
        ];
        for (fig, measured, goal, ratio) in rows {
            let _ = writeln!(f, "ledger\t{fig}\t{measured}\t{goal}\t{ratio}");
        }
    }
}
