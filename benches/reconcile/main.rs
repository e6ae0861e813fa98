//! Reconciling a day of 1,000,000 payments and 1,000,000 settlement lines (issues 6 and 23).
//!
//! Run: `cargo bench --bench reconcile` or `benches/run.sh reconcile`. It generates the day's CSVs
//! once under `target/bench-data/`, then measures:
//! 1. in memory: both CSVs parsed straight into slices of the files (settlement lines by the
//!    production parser's fast path, each file split across two threads) and every payment and
//!    line classified by `reconcile::reconcile_compact`, the run's own form; best and median of three;
//! 2. DuckDB and pandas on the same CSVs, the same classification (`compare.rs`), when the
//!    interpreter (`FEERECON_BENCH_PYTHON`, else `python3`) has them; their counts per category
//!    are checked equal to ours;
//! 3. end to end on SQLite, in a child process of its own (so its peak memory is its own, with
//!    glibc's default arenas: `MALLOC_ARENA_MAX` is removed): settlement import and run, the
//!    day's cases and payments seeded beforehand (not timed: callbacks record them all day) as
//!    the committer records them (status, `paid_at` and the `paid_date` it counts on); its counts
//!    per category are checked equal to the in-memory step's;
//! 4. the same on a database already holding `FEERECON_BENCH_HISTORY_DAYS` (30) closed dates of
//!    `FEERECON_BENCH_HISTORY_ROWS` (as many as the day) payments each, closed as the product
//!    closes them: exceptions resolved, then `Finance::close` (`e2e.rs`).
//!
//! Knobs: `FEERECON_BENCH_ROWS` (1,000,000), `FEERECON_BENCH_STEP=memory|e2e|e2e-history` (one
//! step alone; `compare`: in memory, DuckDB and pandas, no end-to-end step),
//! `FEERECON_BENCH_PHASES=1` (the run's phase logs), `FEERECON_BENCH_SUMMARY=FILE`
//! (append the summary rows for `benches/run.sh`).

mod compare;
mod data;
mod e2e;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use feerecon::domain::payment::PaymentStatus;
use feerecon::reconcile::{Closed, LineIn, PaymentIn, Source, first_occurrences, reconcile_compact};
use feerecon::settlement::{Lines, Profile};

use data::{Day, write_day};

/// Goals (issue 23).
const GOAL_VS_DUCKDB: f64 = 2.0;
const GOAL_VS_PANDAS: f64 = 10.0;
const GOAL_E2E_S: f64 = 8.0;
const GOAL_PEAK_MIB: f64 = 500.0;
const GOAL_HISTORY_SLOWDOWN: f64 = 1.10;

fn vm_hwm_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

fn generate(dir: &Path, n: usize) {
    if dir.join("lines.csv").exists() {
        return;
    }
    std::fs::create_dir_all(dir).expect("bench dir");
    let mut p = std::io::BufWriter::new(std::fs::File::create(dir.join("payments.csv")).expect("payments.csv"));
    let mut l = std::io::BufWriter::new(std::fs::File::create(dir.join("lines.csv")).expect("lines.csv"));
    write_day(Day(0), n, Some(&mut p), &mut l).expect("write the day");
    p.flush().expect("write");
    l.flush().expect("write");
}

/// payments.csv rows (`payment_id,case_code,txn_ref,gateway_txn_no,amount,status,paid_at,
/// duplicate,expected`, written by `data.rs`) straight into the matcher's input, borrowing the text.
fn parse_payments(text: &str) -> Vec<PaymentIn<'_>> {
    // Rows and fields found with `memchr` (a `char` pattern's searcher is several times slower).
    fn part(part: &str, capacity: usize) -> Vec<PaymentIn<'_>> {
        let mut out = Vec::with_capacity(capacity);
        let mut start = 0;
        let tail = (!part.is_empty() && !part.ends_with('\n')).then_some(part.len());
        for end in memchr::memchr_iter(b'\n', part.as_bytes()).chain(tail) {
            let row = &part[start..end];
            start = end + 1;
            let mut fields = [""; 9];
            let mut rest = row;
            for f in fields.iter_mut().take(8) {
                let at = memchr::memchr(b',', rest.as_bytes()).expect("nine fields");
                *f = &rest[..at];
                rest = &rest[at + 1..];
            }
            fields[8] = rest;
            let [id, case, txn_ref, no, amount, status, paid_at, duplicate, expected] = fields;
            let status = if status == "paid" { PaymentStatus::Paid } else { PaymentStatus::Pending };
            let paid_at = feerecon::settlement::parse_iso_local(paid_at).expect("a time");
            let amount = amount.parse::<i64>().expect("an amount");
            out.push(PaymentIn {
                payment_id: id,
                case_code: case,
                case_version: 1,
                txn_ref,
                gateway_txn_no: Some(no),
                amount,
                status,
                business_date: (status == PaymentStatus::Paid).then(|| paid_at.date()),
                home: None,
                duplicate: duplicate == "true",
                expected: Some(expected.parse().expect("an amount")),
                phi: 0,
                le_phi: amount,
            });
        }
        out
    }
    let body = text.split_once('\n').map_or("", |(_, b)| b);
    let cut = body[body.len() / 2..].find('\n').map_or(body.len(), |i| body.len() / 2 + i + 1);
    let (a, b) = body.split_at(cut);
    // The first half's vector is sized for both (about 110 bytes a row), so the second's
    // rows append without moving the first's.
    let (mut left, right) = std::thread::scope(|s| {
        let right = s.spawn(|| part(b, b.len() / 100));
        (part(a, body.len() / 100), right.join().expect("the parsing thread"))
    });
    left.extend(right);
    left
}

/// Parses both files and classifies the day: seconds, and items per category.
fn in_memory(dir: &Path) -> (f64, BTreeMap<String, usize>) {
    let t = Instant::now();
    // The two files side by side: each read, then parsed (each parse splits its file in two),
    // the lines numbered by first occurrence while the payments are still being parsed.
    let read = |name: &'static str| move || std::fs::read(dir.join(name)).expect("a bench file");
    let (line_bytes, payment_bytes) = std::thread::scope(|s| {
        let payments = s.spawn(read("payments.csv"));
        (read("lines.csv")(), payments.join().expect("the reading thread"))
    });
    let (lines, payments) = std::thread::scope(|s| {
        let payments = s.spawn(|| parse_payments(std::str::from_utf8(&payment_bytes).expect("utf-8")));
        let parsed = feerecon::settlement::parse_borrowed(&Profile::canonical(), &line_bytes).expect("a valid file");
        let Lines::Borrowed(parsed) = parsed else { panic!("the canonical file should take the fast path") };
        let mut lines: Vec<LineIn<'_>> = parsed
            .iter()
            .map(|l| LineIn {
                file: 0,
                line_no: l.line_no,
                business_date: l.business_date(),
                gateway_txn_no: l.gateway_txn_no,
                txn_ref: l.txn_ref,
                amount: l.amount,
                fee: l.fee,
                status: l.status,
                first: true,
                home: None,
            })
            .collect();
        // What the store decides at import: the first occurrence of each number and status.
        first_occurrences(&mut lines);
        (lines, payments.join().expect("the parsing thread"))
    });
    if std::env::var("FEERECON_BENCH_PHASES").is_ok() {
        eprintln!("  parsed in {:.3} s", t.elapsed().as_secs_f64());
    }
    // The run's own form: matched items compact (built back into `Item`s only as a save writes
    // them), every other item whole, sorted as the report is.
    let shas = ["0".repeat(64)];
    let src = Source { gateway: "vnpay", date: Day(0).date(), payments: &payments, lines: &lines, file_shas: &shas };
    let o = reconcile_compact(src, &Closed::new());
    let secs = t.elapsed().as_secs_f64();
    let mut counts = BTreeMap::new();
    for i in &o.items {
        *counts.entry(i.category.as_str().to_owned()).or_insert(0) += 1;
    }
    if !o.matched.is_empty() {
        *counts.entry("matched".to_owned()).or_insert(0) += o.matched.len();
    }
    std::hint::black_box(&o);
    (secs, counts)
}

/// What an end-to-end step (a child process) answered on its `E2E` line.
struct E2e {
    import: f64,
    total: f64,
    peak: f64,
    counts: BTreeMap<String, usize>,
}

/// `cat=n,cat=n` (the `E2E` line's counts) and back.
fn counts_text(c: &BTreeMap<String, usize>) -> String {
    c.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(",")
}

fn parse_counts(t: &str) -> Option<BTreeMap<String, usize>> {
    t.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').and_then(|(k, n)| Some((k.to_owned(), n.parse().ok()?))))
        .collect()
}

/// Runs an end-to-end step in a child process (its own peak memory, default malloc arenas) and
/// returns what its `E2E` line says: import s, total s, peak MiB, items per category.
fn child(step: &str) -> Option<E2e> {
    let me = std::env::current_exe().expect("the benchmark's own path");
    let out = std::process::Command::new(me)
        .env("FEERECON_BENCH_STEP", step)
        .env_remove("MALLOC_ARENA_MAX")
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("the end-to-end step starts");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        eprintln!("the {step} step failed");
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find_map(|l| l.strip_prefix("E2E\t"))?;
    let f: Vec<&str> = line.split('\t').collect();
    Some(E2e {
        import: f.first()?.parse().ok()?,
        total: f.get(1)?.parse().ok()?,
        peak: f.get(2)?.parse().ok()?,
        counts: parse_counts(f.get(3)?)?,
    })
}

fn env_usize(k: &str, default: usize) -> usize {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let n = env_usize("FEERECON_BENCH_ROWS", 1_000_000);
    let history = env_usize("FEERECON_BENCH_HISTORY_DAYS", 30);
    let history_rows = env_usize("FEERECON_BENCH_HISTORY_ROWS", n);
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/bench-data/reconcile-v2-{n}"));
    let t = Instant::now();
    generate(&dir, n);
    eprintln!("data: {} ({:.1} s to generate if new)", dir.display(), t.elapsed().as_secs_f64());
    let step = std::env::var("FEERECON_BENCH_STEP").unwrap_or_default();
    if step.starts_with("e2e") {
        if std::env::var("FEERECON_BENCH_PHASES").is_ok() {
            // Each span's time when it closes: recon.load, recon.inputs, recon.compute, recon.save.
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
                .init();
        }
        let days = if step == "e2e-history" { history } else { 0 };
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
        let r = rt.block_on(e2e::end_to_end(&dir, n, days, history_rows));
        let peak = vm_hwm_mib();
        println!(
            "end to end on SQLite ({days} closed days before): import {:.1} s, import + run + store {:.1} s, {} items {:?}; \
             peak RSS {peak} MiB (from after seeding)",
            r.import, r.total, r.items, r.counts
        );
        println!("E2E\t{}\t{}\t{peak}\t{}", r.import, r.total, counts_text(&r.counts));
        return;
    }
    let mut runs = Vec::new();
    for _ in 0..if step == "memory" { 2 } else { 3 } {
        runs.push(in_memory(&dir));
        eprintln!("  in memory: {:.3} s", runs.last().map_or(0.0, |r| r.0));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (best, median, ours) = (runs[0].0, runs[runs.len() / 2].0, runs[0].1.clone());
    let total: usize = ours.values().sum();
    println!(
        "in memory (CSV → classified items): best {best:.3} s, median {median:.3} s, {total} items {ours:?}; peak RSS {} MiB",
        vm_hwm_mib()
    );
    if step == "memory" {
        return;
    }
    let mut rows: Vec<[String; 4]> = vec![[
        format!("reconcile in memory, {n} payments (best / median of 3)"),
        format!("{best:.3} / {median:.3} s"),
        "-".into(),
        "-".into(),
    ]];
    for (name, answer, goal) in
        [("DuckDB", compare::duckdb(&dir), GOAL_VS_DUCKDB), ("pandas", compare::pandas(&dir), GOAL_VS_PANDAS)]
    {
        let Some(a) = answer else {
            println!("{name}: not available (benches/run.sh installs it in a venv)");
            rows.push([format!("in memory vs {name}"), "not measured".into(), format!("≥ {goal}×"), "-".into()]);
            continue;
        };
        let same = a.counts == ours;
        let ratio = a.secs / median;
        println!(
            "{name} {} (same CSVs → classified items): {:.3} s → ours {ratio:.2}× faster (median); counts {}",
            a.version,
            a.secs,
            if same { "equal".to_owned() } else { format!("DIFFER: {:?}", a.counts) }
        );
        rows.push([format!("{name} {}, same CSVs", a.version), format!("{:.3} s", a.secs), "-".into(), "-".into()]);
        rows.push([
            format!("in memory vs {name} (counts {})", if same { "equal" } else { "DIFFER" }),
            format!("{ratio:.2}×"),
            format!("≥ {goal}×"),
            format!("{:.2}", ratio / goal),
        ]);
    }
    if step == "compare" {
        // In memory against DuckDB and pandas only, without the end-to-end steps.
        write_summary(rows);
        return;
    }
    let plain = child("e2e");
    if let Some(E2e { import, total, peak, counts }) = &plain {
        // The run classifies what the in-memory step classifies: the same counts per category.
        let same = *counts == ours;
        if !same {
            println!("end to end: counts DIFFER from the in-memory step's: {counts:?}");
        }
        rows.push([
            format!(
                "day end to end on SQLite, {n} rows (import {import:.1} s; counts {} the in-memory step's)",
                if same { "equal" } else { "DIFFER from" }
            ),
            format!("{total:.1} s"),
            format!("< {GOAL_E2E_S} s"),
            format!("{:.2}", GOAL_E2E_S / total),
        ]);
        rows.push([
            "day end to end, peak RSS (default malloc)".into(),
            format!("{peak:.0} MiB"),
            format!("< {GOAL_PEAK_MIB} MiB"),
            format!("{:.2}", GOAL_PEAK_MIB / peak),
        ]);
    }
    if history > 0
        && let Some(E2e { total, peak, counts, .. }) = child("e2e-history")
    {
        let base = plain.as_ref().map_or(f64::NAN, |p| p.total);
        if counts != ours {
            println!("after the history: counts DIFFER from the in-memory step's: {counts:?}");
        }
        rows.push([
            format!("the same day after {history} closed days of {history_rows} rows"),
            format!("{total:.1} s ({:.2}× the fresh database), peak {peak:.0} MiB", total / base),
            format!("≤ {GOAL_HISTORY_SLOWDOWN}× the fresh database"),
            format!("{:.2}", GOAL_HISTORY_SLOWDOWN * base / total),
        ]);
    }
    write_summary(rows);
}

/// Appends the summary rows for `benches/run.sh` to `FEERECON_BENCH_SUMMARY`, when set.
fn write_summary(rows: Vec<[String; 4]>) {
    if let Some(path) = std::env::var_os("FEERECON_BENCH_SUMMARY") {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("the summary file");
        for [fig, measured, goal, ratio] in rows {
            let _ = writeln!(f, "reconcile\t{fig}\t{measured}\t{goal}\t{ratio}");
        }
    }
}
