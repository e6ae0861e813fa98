//! The day end to end on SQLite: the day's cases and payments seeded (not timed: callbacks record
//! them all day), then timed `Finance::import` of its settlement file and `Finance::run`. With a
//! history, the database first holds `days` earlier dates, each seeded, imported and run by the
//! same code, then closed as finance closes a date: each exception resolved (accepted, else
//! written off, else refunded; a money-moving resolution approved by a second person), then
//! `Finance::close` (settlement postings, home dates, the signed checkpoint).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::TimeDelta;

use crate::data::{Day, write_day};

/// Inserts the day's `n` cases, their versions and payments (and the duplicate-payment flags).
pub async fn seed(url: &str, day: Day, n: usize) {
    use sqlx::Connection as _;
    let mut c = sqlx::SqliteConnection::connect(url).await.expect("connect");
    sqlx::query("PRAGMA synchronous = OFF").execute(&mut c).await.expect("pragma");
    let mut tx = c.begin().await.expect("begin");
    // The quote each payment stored at its creation, as the product writes it.
    let fees = fee_engine();
    let procedure = feerecon::domain::ProcedureCode::parse("1.002804").expect("a procedure code");
    let unit = feerecon::domain::UnitCode::parse(&day.case_code(0)[..13]).expect("a unit code");
    let facts = feerecon::fees::Facts {
        case_code: None,
        procedure_code: &procedure,
        channel: feerecon::domain::Channel::Counter,
        subjects: &[],
        case_facts: &[],
        receiving_unit: Some(&unit),
        quantity: 1,
        as_of: day.date(),
    };
    let quote = fees.quote(&facts).expect("the bench's procedure has a quote").to_json().replace('\'', "''");
    let received = (day.start() - TimeDelta::hours(2)).to_rfc3339();
    for chunk in (0..n).collect::<Vec<_>>().chunks(2000) {
        let mut cases = String::from("INSERT INTO cases (case_code, current_version, created_at, updated_at) VALUES ");
        let mut versions = String::from(
            "INSERT INTO case_versions (case_code, version, procedure_code, applicant_name, channel, subjects, quantity, received_at, receiving_unit, recorded_at, recorded_by) VALUES ",
        );
        let mut payments = String::from(
            "INSERT INTO payments (payment_id, case_code, case_version, gateway, txn_ref, amount, budget_amount, status, gateway_txn_no, paid_at, pay_url, return_url, client_ip, created_by, idempotency_key, quote, created_at, expires_at, updated_at, confirmed_at, phi_due, le_phi_due, paid_date) VALUES ",
        );
        let mut flags = Vec::new();
        for (j, &i) in chunk.iter().enumerate() {
            let sep = if j > 0 { "," } else { "" };
            let code = day.case_code(i);
            let unit = &code[..13];
            let k = i % 1000;
            let channel = if k == 6 { "online_full" } else { "counter" };
            let status = if k == 4 { "pending" } else { "paid" };
            let paid = day.at(i).to_rfc3339();
            // What the committer records with a paid outcome: the payment's natural date.
            let paid_date = if status == "paid" { format!("'{}'", day.date()) } else { "NULL".into() };
            let (id, txn_ref, no) = (day.payment_id(i), day.txn_ref(i), day.txn_no(i));
            cases.push_str(&format!("{sep}('{code}', 1, '{paid}', '{paid}')"));
            versions.push_str(&format!(
                "{sep}('{code}', 1, '1.002804', 'A', '{channel}', '[]', 1, '{received}', '{unit}', '{paid}', 'bench')"
            ));
            payments.push_str(&format!(
                "{sep}('{id}', '{code}', 1, 'vnpay', '{txn_ref}', 135000, 0, '{status}', '{no}', '{paid}', NULL, 'x', '1.1.1.1', 'bench', 'k', '{quote}', '{paid}', '{paid}', '{paid}', '{paid}', 0, 135000, {paid_date})",
            ));
            if k == 5 {
                flags.push(format!("('{id}', 'duplicate_payment', '{paid}')"));
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

fn fee_engine() -> feerecon::fees::FeeEngine {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    feerecon::fees::FeeEngine::load(
        &root.join("fixtures/catalogue.toml"),
        &root.join("fixtures/policies/vinh-phuc.toml"),
    )
    .expect("fixtures")
}

fn finance(store: feerecon::store::Store, key: Option<Arc<feerecon::ledger::LedgerKey>>) -> feerecon::recon::Finance {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fees = fee_engine();
    let clock: Arc<dyn feerecon::domain::Clock> =
        Arc::new(feerecon::domain::ShiftedClock::starting_at(Day(0).start() + TimeDelta::days(1)));
    let fees = Arc::new(fees);
    let issuer = Arc::new(feerecon::receipts::Issuer::new(Default::default(), fees.clone(), None));
    feerecon::recon::Finance {
        committer: feerecon::payments::Committer::start(store.clone(), clock.clone(), issuer),
        store,
        fees,
        clock,
        profiles: root.join("fixtures/settlement-profiles"),
        key,
    }
}

/// Items per category.
pub type Counts = std::collections::BTreeMap<String, usize>;

/// What one timed day gave.
pub struct Timed {
    pub import: f64,
    pub total: f64,
    pub items: usize,
    /// Items per category, as the run's report counts them.
    pub counts: std::collections::BTreeMap<String, usize>,
}

/// The process's resident and peak resident memory, from `/proc/self/status`.
fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |key: &str| {
        status.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
    };
    format!("RSS {} MiB, peak {} MiB", get("VmRSS:").unwrap_or(0) / 1024, get("VmHWM:").unwrap_or(0) / 1024)
}

/// Imports `bytes` as the settlement file of `day` and runs the day.
async fn import_and_run(finance: &feerecon::recon::Finance, day: Day, bytes: &[u8]) -> (f64, f64, Counts, String) {
    let gw = feerecon::domain::payment::Gateway::Vnpay;
    let t = Instant::now();
    finance
        .import(gw, "canonical", &format!("lines-{}.csv", day.date()), bytes, "bench", &|_| {})
        .await
        .expect("import");
    let import = t.elapsed().as_secs_f64();
    // With FEERECON_BENCH_PHASES, the memory held as each phase starts: what holds the peak.
    let phases = std::env::var("FEERECON_BENCH_PHASES").is_ok();
    if phases {
        eprintln!("  memory after import: {}", memory());
    }
    let view = finance
        .run_observed(day.date(), gw, "bench", &|phase| {
            if phases {
                eprintln!("  memory as {phase:?} starts: {}", memory());
            }
        })
        .await
        .expect("run");
    if phases {
        eprintln!("  memory after the run: {}", memory());
    }
    let total = t.elapsed().as_secs_f64();
    let counts = feerecon::domain::recon::Category::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), usize::try_from(view.report.head.summary.get(*c).count).unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    (import, total, counts, view.run.run_id.clone())
}

/// Resolves every open exception of `day` as finance would: accepted where that is the
/// resolution, else written off, else refunded; one that moves money approved by a second
/// person. Returns how many.
async fn resolve_all(finance: &feerecon::recon::Finance, day: Day) -> usize {
    use feerecon::domain::recon::ExceptionState;
    let open: Vec<_> = finance
        .store
        .gateway_exceptions(feerecon::domain::payment::Gateway::Vnpay)
        .await
        .expect("the exceptions")
        .into_iter()
        .filter(|e| e.business_date == day.date() && e.state == ExceptionState::Open)
        .collect();
    for e in &open {
        let id = &e.exception_id;
        let mut done = None;
        let mut refused = Vec::new();
        for action in ["accept", "write_off", "refund"] {
            match finance.resolve(id, action, "bench history", None, "bench").await {
                Ok(r) => {
                    done = Some(r);
                    break;
                }
                Err(err) => refused.push(format!("{action}: {err}")),
            }
        }
        let r = done.unwrap_or_else(|| panic!("no resolution applies to {id} ({}): {refused:?}", e.category));
        if r.state == ExceptionState::PendingApproval {
            finance.decide(id, true, None, "bench-approver").await.expect("an approval");
        }
    }
    open.len()
}

/// The measured day on a fresh database holding `history` earlier closed dates of
/// `history_rows` payments each.
pub async fn end_to_end(dir: &Path, n: usize, history: usize, history_rows: usize) -> Timed {
    let db_dir = tempfile::tempdir().expect("a temporary directory");
    let db_path = db_dir.path().join("bench.db");
    let url = format!("sqlite://{}?mode=rwc", db_path.display());
    let key_path = db_dir.path().join("ledger.key");
    if std::env::var("FEERECON_BENCH_KEEP").is_ok() {
        eprintln!("  database kept: {}", db_path.display());
        std::mem::forget(db_dir);
    }
    let store = feerecon::store::Store::connect(&url).await.expect("open");
    store.migrate().await.expect("migrate");
    let key = feerecon::ledger::LedgerKey::load_or_create(&key_path).expect("a ledger key");
    let finance = finance(store, Some(Arc::new(key)));
    if history > 0 {
        let t = Instant::now();
        for k in (1..=history).rev() {
            let day = Day(k);
            seed(&url, day, history_rows).await;
            let mut bytes = Vec::new();
            write_day(day, history_rows, None, &mut bytes).expect("a settlement file in memory");
            let (_, total, counts, _) = import_and_run(&finance, day, &bytes).await;
            let items: usize = counts.values().sum();
            let resolved = resolve_all(&finance, day).await;
            finance.close(day.date(), feerecon::domain::payment::Gateway::Vnpay, "bench").await.expect("the close");
            eprintln!(
                "  history: {} seeded, imported and run ({total:.1} s, {items} items), {resolved} exceptions resolved, closed",
                day.date()
            );
        }
        let size = std::fs::metadata(&db_path).map(|m| m.len()).unwrap_or(0) >> 20;
        eprintln!(
            "  history of {history} closed days ready in {:.0} s (not timed); database {size} MiB",
            t.elapsed().as_secs_f64()
        );
    }
    let t = Instant::now();
    seed(&url, Day(0), n).await;
    eprintln!("  seeded {n} cases and payments in {:.1} s (not timed)", t.elapsed().as_secs_f64());
    let bytes = std::fs::read(dir.join("lines.csv")).expect("lines.csv");
    // Seeding and the history are not part of the measure: reset the peak-memory mark
    // (Linux: writing `5` to clear_refs resets VmHWM).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (import, total, counts, _) = import_and_run(&finance, Day(0), &bytes).await;
    Timed { import, total, items: counts.values().sum(), counts }
}
