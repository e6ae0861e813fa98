//! Reconciling a day of 1,000,000 payments and 1,000,000 settlement lines (issue 6).
//!
//! Run: `cargo bench --bench reconcile` (`FEERECON_BENCH_ROWS=100000` for a smaller day).
//! It generates the day's CSVs once under `target/bench-data/`, then measures:
//! 1. in memory: both CSVs parsed (on two threads) and every payment and line classified;
//! 2. DuckDB on the same CSVs, when `python3 -c "import duckdb"` works (`pip install duckdb`);
//! 3. end to end on SQLite: the settlement file imported (parsed, stored) and the day run
//!    (payments and lines loaded, expected fees recomputed, items classified and stored), with
//!    the day's cases and payments seeded beforehand (not timed: callbacks record them all day).
//!
//! Peak memory is the process's high-water mark (`VmHWM`); the end-to-end step runs in a child
//! process of its own so its figure is not the in-memory step's. `FEERECON_BENCH_STEP=memory` or
//! `=e2e` runs one step alone.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use feerecon::domain::payment::PaymentStatus;
use feerecon::reconcile::{Closed, LineIn, PaymentIn, first_occurrences, reconcile};

const DAY: &str = "2024-07-15";

fn day() -> NaiveDate {
    NaiveDate::parse_from_str(DAY, "%Y-%m-%d").expect("a date")
}

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-07-15T08:00:00+07:00").expect("a time").with_timezone(&Utc)
}

fn vm_hwm_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// Writes payments.csv and lines.csv for `n` payments, with a few discrepancies per thousand.
fn generate(dir: &Path, n: usize) {
    if dir.join("lines.csv").exists() {
        return;
    }
    std::fs::create_dir_all(dir).expect("bench dir");
    let mut p = std::io::BufWriter::new(std::fs::File::create(dir.join("payments.csv")).expect("payments.csv"));
    let mut l = std::io::BufWriter::new(std::fs::File::create(dir.join("lines.csv")).expect("lines.csv"));
    writeln!(p, "payment_id,case_code,txn_ref,gateway_txn_no,amount,status,paid_at,duplicate,expected").expect("write");
    writeln!(l, "gateway_txn_no,txn_ref,amount,fee,txn_time,status").expect("write");
    for i in 0..n {
        let t = (start() + TimeDelta::milliseconds(i as i64 * 40)).with_timezone(&feerecon::domain::vn_offset());
        let time = t.format("%Y-%m-%d %H:%M:%S").to_string();
        let k = i % 1000;
        let (status, duplicate, expected) = match k {
            4 => ("pending", false, 135_000),
            5 => ("paid", true, 135_000),
            6 => ("paid", false, 115_000),
            _ => ("paid", false, 135_000),
        };
        writeln!(
            p,
            "pay_{i:012},{},R{i:09},{},135000,{status},{time},{duplicate},{expected}",
            case_code(i),
            1_000_000_000 + i
        )
        .expect("write");
        let amount = if k == 1 { 134_000 } else { 135_000 };
        if k != 0 {
            let line = format!("{},R{i:09},{amount},1485,{time},success", 1_000_000_000 + i);
            writeln!(l, "{line}").expect("write");
            if k == 2 {
                writeln!(l, "{line}").expect("write");
            }
        }
        if k == 3 {
            writeln!(l, "RF{},R{i:09},135000,0,{time},refund", 1_000_000_000 + i).expect("write");
        }
        if k == 7 {
            writeln!(l, "{},UNKNOWN{i:09},50000,1100,{time},success", 3_000_000_000u64 + i as u64).expect("write");
        }
    }
}

fn case_code(i: usize) -> String {
    let unit = i / 9999;
    format!("000.{:02}.{:02}.H62-240715-{:04}", unit / 100, unit % 100, i % 9999 + 1)
}

/// A payments.csv row: its text (id, case, reference, number) and its other fields.
struct PaymentRow {
    text: [String; 4],
    rest: PaymentIn<'static>,
}

fn parse_payments(path: &Path) -> Vec<PaymentRow> {
    let mut rdr = csv::Reader::from_path(path).expect("payments.csv");
    let mut rec = csv::ByteRecord::new();
    let mut out = Vec::with_capacity(1 << 20);
    let s = |r: &csv::ByteRecord, i: usize| std::str::from_utf8(&r[i]).expect("utf-8").to_owned();
    let n = |r: &csv::ByteRecord, i: usize| std::str::from_utf8(&r[i]).expect("utf-8").parse::<i64>().expect("number");
    while rdr.read_byte_record(&mut rec).expect("a record") {
        let status = if &rec[5] == b"paid" { PaymentStatus::Paid } else { PaymentStatus::Pending };
        let paid_at =
            feerecon::settlement::parse_iso_local(std::str::from_utf8(&rec[6]).expect("utf-8")).expect("time");
        out.push(PaymentRow {
            text: [s(&rec, 0), s(&rec, 1), s(&rec, 2), s(&rec, 3)],
            rest: PaymentIn {
                payment_id: "",
                case_code: "",
                case_version: 1,
                txn_ref: "",
                gateway_txn_no: None,
                amount: n(&rec, 4),
                status,
                business_date: (status == PaymentStatus::Paid).then(|| paid_at.date()),
                home: None,
                duplicate: &rec[7] == b"true",
                expected: Some(n(&rec, 8)),
                phi: 0,
                le_phi: n(&rec, 4),
            },
        });
    }
    out
}

fn parse_lines(path: &Path) -> Vec<feerecon::settlement::Line> {
    let bytes = std::fs::read(path).expect("lines.csv");
    feerecon::settlement::parse(&feerecon::settlement::Profile::canonical(), &bytes, &|_| {}).expect("a valid file")
}

fn in_memory(dir: &Path) -> (f64, usize) {
    let t = Instant::now();
    let (pd, ld) = (dir.join("payments.csv"), dir.join("lines.csv"));
    let pt = std::thread::spawn(move || parse_payments(&pd));
    let parsed_lines = parse_lines(&ld);
    let parsed_payments = pt.join().expect("the parsing thread");
    // The matcher's inputs borrow the parsed text.
    let payments: Vec<PaymentIn<'_>> = parsed_payments
        .iter()
        .map(|r| PaymentIn {
            payment_id: &r.text[0],
            case_code: &r.text[1],
            txn_ref: &r.text[2],
            gateway_txn_no: Some(&r.text[3]),
            ..r.rest.clone()
        })
        .collect();
    let mut lines: Vec<LineIn<'_>> = parsed_lines
        .iter()
        .map(|l| LineIn {
            file: 0,
            line_no: l.line_no,
            business_date: l.business_date(),
            gateway_txn_no: &l.gateway_txn_no,
            txn_ref: &l.txn_ref,
            amount: l.amount,
            fee: l.fee,
            status: l.status,
            first: true,
            home: None,
        })
        .collect();
    // What the store decides at import: the first occurrence of each number and status.
    first_occurrences(&mut lines);
    if std::env::var("FEERECON_BENCH_PHASES").is_ok() {
        eprintln!("  parsed in {:.3} s", t.elapsed().as_secs_f64());
    }
    let o = reconcile("vnpay", day(), &payments, &lines, &["0".repeat(64)], &Closed::new());
    let secs = t.elapsed().as_secs_f64();
    let items = o.items.len();
    std::hint::black_box(&o);
    (secs, items)
}

fn duckdb(dir: &Path) -> Option<f64> {
    let script = format!(
        r#"
import duckdb, time
con = duckdb.connect()
t = time.perf_counter()
con.execute("CREATE TABLE p AS SELECT * FROM read_csv('{d}/payments.csv', header=true, types={{'gateway_txn_no':'VARCHAR'}})")
con.execute("CREATE TABLE l AS SELECT *, row_number() OVER () AS line_no FROM read_csv('{d}/lines.csv', header=true, types={{'gateway_txn_no':'VARCHAR'}})")
con.execute('''CREATE TABLE lf AS SELECT *, row_number() OVER (PARTITION BY gateway_txn_no, status ORDER BY line_no) AS occ FROM l''')
con.execute('''CREATE TABLE items AS
  SELECT lf.gateway_txn_no, lf.txn_ref, p.payment_id, lf.amount AS settled, p.amount AS recorded,
    CASE WHEN occ > 1 THEN 'duplicate_settlement_line' WHEN lf.status = 'refund' THEN 'refund'
         WHEN p.payment_id IS NULL THEN 'missing_in_records' WHEN p.status <> 'paid' THEN 'unconfirmed_in_records'
         WHEN p.duplicate OR p.gateway_txn_no <> lf.gateway_txn_no THEN 'duplicate_payment' WHEN lf.amount <> p.amount THEN 'amount_mismatch'
         WHEN p.expected <> p.amount THEN 'fee_mismatch' ELSE 'matched' END AS category
  FROM lf LEFT JOIN p ON p.txn_ref = lf.txn_ref
  UNION ALL
  SELECT NULL, p.txn_ref, p.payment_id, NULL, p.amount, CASE WHEN p.duplicate THEN 'duplicate_payment' ELSE 'missing_in_settlement' END
  FROM p WHERE p.status = 'paid' AND NOT EXISTS (SELECT 1 FROM l WHERE l.txn_ref = p.txn_ref AND l.status = 'success')''')
n = con.execute("SELECT count(*) FROM items").fetchone()[0]
print(time.perf_counter() - t, n)
"#,
        d = dir.display()
    );
    let out = std::process::Command::new("python3").arg("-c").arg(script).output().ok()?;
    if !out.status.success() {
        eprintln!("duckdb: {}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""));
        return None;
    }
    String::from_utf8_lossy(&out.stdout).split_whitespace().next()?.parse().ok()
}

async fn seed(url: &str, n: usize) {
    use sqlx::Connection as _;
    let store = feerecon::store::Store::connect(url).await.expect("open");
    store.migrate().await.expect("migrate");
    store.close().await;
    let mut c = sqlx::SqliteConnection::connect(url).await.expect("connect");
    sqlx::query("PRAGMA synchronous = OFF").execute(&mut c).await.expect("pragma");
    let mut tx = c.begin().await.expect("begin");
    let quote = r#"{"items":[{"fee":"le_phi_doi_gplx","kind":"le_phi","base":135000,"quantity":1,"applied":null,"citizen_due":135000,"budget_due":0,"rounded":false}]}"#;
    let at = start();
    for chunk in (0..n).collect::<Vec<_>>().chunks(2000) {
        let mut cases = String::from("INSERT INTO cases (case_code, current_version, created_at, updated_at) VALUES ");
        let mut versions = String::from(
            "INSERT INTO case_versions (case_code, version, procedure_code, applicant_name, channel, subjects, quantity, received_at, receiving_unit, recorded_at, recorded_by) VALUES ",
        );
        let mut payments = String::from(
            "INSERT INTO payments (payment_id, case_code, case_version, gateway, txn_ref, amount, budget_amount, status, gateway_txn_no, paid_at, pay_url, return_url, client_ip, created_by, idempotency_key, quote, created_at, expires_at, updated_at, confirmed_at, phi_due, le_phi_due) VALUES ",
        );
        let mut flags = Vec::new();
        for (j, &i) in chunk.iter().enumerate() {
            let sep = if j > 0 { "," } else { "" };
            let code = case_code(i);
            let unit = &code[..13];
            let k = i % 1000;
            let channel = if k == 6 { "online_full" } else { "counter" };
            let status = if k == 4 { "pending" } else { "paid" };
            let paid = (at + TimeDelta::milliseconds(i as i64 * 40)).to_rfc3339();
            cases.push_str(&format!("{sep}('{code}', 1, '{paid}', '{paid}')"));
            versions.push_str(&format!("{sep}('{code}', 1, '1.002804', 'A', '{channel}', '[]', 1, '2024-07-15T03:00:00+00:00', '{unit}', '{paid}', 'bench')"));
            payments.push_str(&format!(
                "{sep}('pay_{i:012}', '{code}', 1, 'vnpay', 'R{i:09}', 135000, 0, '{status}', '{}', '{paid}', NULL, 'x', '1.1.1.1', 'bench', 'k', '{quote}', '{paid}', '{paid}', '{paid}', '{paid}', 0, 135000)",
                1_000_000_000 + i
            ));
            if k == 5 {
                flags.push(format!("('pay_{i:012}', 'duplicate_payment', '{paid}')"));
            }
        }
        sqlx::query(&cases).execute(&mut *tx).await.expect("cases");
        sqlx::query(&versions).execute(&mut *tx).await.expect("versions");
        sqlx::query(&payments).execute(&mut *tx).await.expect("payments");
        if !flags.is_empty() {
            sqlx::query(&format!("INSERT INTO payment_flags (payment_id, flag, raised_at) VALUES {}", flags.join(",")))
                .execute(&mut *tx)
                .await
                .expect("flags");
        }
    }
    tx.commit().await.expect("commit");
}

async fn end_to_end(dir: &Path, n: usize) -> (f64, f64, usize) {
    let db_dir = tempfile::tempdir().expect("a temporary directory");
    let db_path = db_dir.path().join("bench.db");
    let url = format!("sqlite://{}?mode=rwc", db_path.display());
    if std::env::var("FEERECON_BENCH_KEEP").is_ok() {
        eprintln!("  database kept: {}", db_path.display());
        std::mem::forget(db_dir);
    }
    let t = Instant::now();
    seed(&url, n).await;
    eprintln!("  seeded {n} cases and payments in {:.1} s (not timed)", t.elapsed().as_secs_f64());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fees = feerecon::fees::FeeEngine::load(
        &root.join("fixtures/catalogue.toml"),
        &root.join("fixtures/policies/vinh-phuc.toml"),
    )
    .expect("fixtures");
    let clock: Arc<dyn feerecon::domain::Clock> =
        Arc::new(feerecon::domain::ShiftedClock::starting_at(start() + TimeDelta::days(1)));
    let store = feerecon::store::Store::connect(&url).await.expect("open");
    let fees = Arc::new(fees);
    let issuer = Arc::new(feerecon::receipts::Issuer::new(Default::default(), fees.clone(), None));
    let finance = feerecon::recon::Finance {
        committer: feerecon::payments::Committer::start(store.clone(), clock.clone(), issuer),
        store,
        fees,
        clock,
        profiles: root.join("fixtures/settlement-profiles"),
        key: None,
    };
    let bytes = std::fs::read(dir.join("lines.csv")).expect("lines.csv");
    let t = Instant::now();
    let parsed =
        feerecon::settlement::parse(&feerecon::settlement::Profile::canonical(), &bytes, &|_| {}).expect("valid");
    eprintln!("  parse alone: {:.2} s for {} lines", t.elapsed().as_secs_f64(), parsed.len());
    drop(parsed);
    // Seeding and the parse above are not part of the measure: reset the peak-memory mark
    // (Linux: writing `5` to clear_refs resets VmHWM).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let t = Instant::now();
    let f = finance
        .import(feerecon::domain::payment::Gateway::Vnpay, "canonical", "lines.csv", &bytes, "bench", &|_| {})
        .await
        .expect("import");
    let import = t.elapsed().as_secs_f64();
    drop(bytes);
    let view = finance.run(day(), feerecon::domain::payment::Gateway::Vnpay, "bench").await.expect("run");
    let total = t.elapsed().as_secs_f64();
    let items: i64 =
        feerecon::domain::recon::Category::ALL.iter().map(|c| view.report.head.summary.get(*c).count).sum();
    let _ = f;
    (import, total, usize::try_from(items).unwrap_or(0))
}

fn main() {
    let n: usize = std::env::var("FEERECON_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/bench-data/reconcile-{n}"));
    let t = Instant::now();
    generate(&dir, n);
    eprintln!("data: {} ({:.1} s to generate if new)", dir.display(), t.elapsed().as_secs_f64());
    match std::env::var("FEERECON_BENCH_STEP").as_deref() {
        Ok("memory") => {
            for _ in 0..2 {
                let (s, n) = in_memory(&dir);
                println!("in memory: {s:.3} s, {n} items; peak RSS {} MiB", vm_hwm_mib());
            }
            return;
        }
        Ok("e2e") => {
            if std::env::var("FEERECON_BENCH_PHASES").is_ok() {
                tracing_subscriber::fmt().with_writer(std::io::stderr).init();
            }
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
            let (import, total, items) = rt.block_on(end_to_end(&dir, n));
            println!(
                "end to end on SQLite: import {import:.1} s, import + run + store {total:.1} s, {items} items; \
                 peak RSS {} MiB (from after seeding)",
                vm_hwm_mib()
            );
            return;
        }
        _ => {}
    }
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(in_memory(&dir));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!(
        "in memory (CSV → classified items): best {:.3} s, median {:.3} s, {} items; peak RSS {} MiB",
        runs[0].0,
        runs[1].0,
        runs[0].1,
        vm_hwm_mib()
    );
    match duckdb(&dir) {
        Some(s) => println!("duckdb (same CSVs → classified items): {s:.3} s  → ratio {:.2}×", s / runs[1].0),
        None => println!("duckdb: not available (pip install duckdb)"),
    }
    // The end-to-end step runs in a fresh process so that its peak memory is its own.
    let me = std::env::current_exe().expect("the benchmark's own path");
    let status =
        std::process::Command::new(me).env("FEERECON_BENCH_STEP", "e2e").status().expect("the end-to-end step starts");
    assert!(status.success(), "the end-to-end step failed");
}
