//! Work outside the day that grew with the history (issue 23, "a day that does not grow with
//! history"), on SQLite: what a close's checkpoint, a page of payments by date and gateway, and
//! a round of the gateway-receipt worker cost on a database holding a long history, before and
//! after each was bounded.
//!
//! The history is synthetic and written straight into a migrated database (the product would
//! take hours to write millions of entries): `FEERECON_BENCH_HISTORY_PAYMENTS` paid payments
//! (1,000,000; a quarter DVCQG, each with its fetched receipt) and `FEERECON_BENCH_HISTORY_ENTRIES`
//! ledger entries (3,000,000). What is timed goes through the product's own calls
//! (`ledger::write_checkpoint`, `Store::payments_page`, `Store::gateway_receipts_due`); "before"
//! runs the statement the product ran before (quoted below), or, for the checkpoint, the first
//! checkpoint of the ledger, which has no predecessor and sums the whole history as every
//! checkpoint did before. Each figure is the median of `FEERECON_BENCH_REPEAT` (5) runs.

use std::time::Instant;

use chrono::{NaiveDate, Utc};
use feerecon::domain::BusinessDate;
use feerecon::domain::payment::Gateway;
use feerecon::store::Store;
use feerecon::store::lists::PaymentFilter;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

/// The median of `repeat` runs of `f`, in milliseconds.
async fn median_ms<F, Fut>(repeat: usize, mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ms = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let t = Instant::now();
        f().await;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    ms[ms.len() / 2]
}

/// The payments page of 2024-03-05 for VNPAY before `+p.gateway` (commit `93e2303`).
const PAGE_BEFORE: &str = "SELECT p.payment_id FROM payments p WHERE 1 = 1 AND p.gateway = 'vnpay'
    AND (p.paid_date = '2024-03-05' OR (p.paid_date IS NULL AND p.created_at >= '2024-03-04T17:00:00+00:00'
    AND p.created_at < '2024-03-05T17:00:00+00:00')) ORDER BY p.payment_id LIMIT 50";

/// The receipt worker's round before migration 0017.
const DUE_BEFORE: &str = "SELECT p.payment_id, p.txn_ref, p.created_at, COALESCE(r.attempts, 0) AS attempts
    FROM payments p LEFT JOIN gateway_receipts r ON r.payment_id = p.payment_id
    WHERE p.gateway = 'dvcqg' AND p.status = 'paid' AND p.txn_ref IS NOT NULL
      AND (r.payment_id IS NULL OR (r.state = 'pending' AND r.next_attempt_at <= '2030-01-01T00:00:00+00:00'))
    ORDER BY p.paid_at, p.payment_id LIMIT 20";

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    rt.block_on(run());
}

async fn run() {
    let payments = knob("FEERECON_BENCH_HISTORY_PAYMENTS", 1_000_000);
    let entries = knob("FEERECON_BENCH_HISTORY_ENTRIES", 3_000_000);
    let repeat = knob("FEERECON_BENCH_REPEAT", 5).max(1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("history.db").display());
    let store = Store::connect(&url).await.expect("open");
    store.migrate().await.expect("migrate");
    let raw = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect(&url).await.expect("a raw pool");
    let t = Instant::now();
    // Paid payments over 2024, a quarter each of VNPAY, MoMo, ZaloPay and DVCQG; every DVCQG one
    // with its receipt fetched (the steady state: nothing due).
    for sql in [
        "INSERT INTO cases VALUES ('000.00.12.H62-240715-0001', 1, '2024-01-01T00:00:00+00:00', '2024-01-01T00:00:00+00:00')"
            .to_owned(),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {payments}),
                 d(i, day) AS (SELECT i, printf('2024-%02d-%02d', 1 + (i / 33000) % 12, 1 + (i / 1100) % 28) FROM n)
             INSERT INTO payments (payment_id, case_code, case_version, gateway, txn_ref, amount, budget_amount, status,
                 return_url, client_ip, created_by, idempotency_key, quote, created_at, expires_at, updated_at, last_answer,
                 query_count, paid_at, paid_date)
             SELECT printf('pay_%09d', i), '000.00.12.H62-240715-0001', 1,
                 CASE i % 4 WHEN 0 THEN 'vnpay' WHEN 1 THEN 'momo' WHEN 2 THEN 'zalopay' ELSE 'dvcqg' END,
                 printf('R%09d', i), 135000, 0, 'paid', 'r', 'ip', 'u', printf('k%09d', i), '{{}}',
                 day || 'T03:00:00+00:00', day || 'T03:15:00+00:00', day || 'T03:05:00+00:00', 'status', 0,
                 day || 'T03:05:00+00:00', day FROM d"
        ),
        "INSERT INTO gateway_receipts (payment_id, gateway, state, attempts, next_attempt_at, body, sha256, fetched_at, updated_at)
         SELECT payment_id, gateway, 'fetched', 1, paid_at, x'255044462d', 'h', paid_at, paid_at FROM payments
         WHERE gateway = 'dvcqg'"
            .to_owned(),
    ] {
        sqlx::query(&sql).execute(&raw).await.expect("the synthetic payments");
    }
    eprintln!("  {payments} paid payments written in {:.1} s (not timed)", t.elapsed().as_secs_f64());

    // The payments page.
    let date = BusinessDate::new(NaiveDate::from_ymd_opt(2024, 3, 5).expect("a date"));
    let filter = PaymentFilter { date: Some(date), gateway: Some(Gateway::Vnpay), ..PaymentFilter::default() };
    let page_before = median_ms(repeat, || async {
        sqlx::query(PAGE_BEFORE).fetch_all(&raw).await.expect("the page, before");
    })
    .await;
    let page_after = median_ms(repeat, || async {
        store.payments_page(&filter, None, 50).await.expect("the page");
    })
    .await;
    // The receipt worker's round.
    let due_before = median_ms(repeat, || async {
        sqlx::query(DUE_BEFORE).fetch_all(&raw).await.expect("the receipts due, before");
    })
    .await;
    let due_after = median_ms(repeat, || async {
        store.gateway_receipts_due(Gateway::Dvcqg, Utc::now(), 20).await.expect("the receipts due");
    })
    .await;

    // The checkpoint: the history, then a day of 100,000 entries on top (a tenth of it when
    // smaller). Entries need no posting row to be summed.
    let day = (entries / 30).clamp(1, 100_000);
    // Then the chain's head moves to the last entry, as the product's appends move it.
    let write_entries = |from: usize, to: usize| {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM n WHERE i < {to})
             INSERT INTO ledger_entries (seq, posting_id, line_no, business_date, kind, account, debit, credit, memo, refs,
                 prev_hash, hash)
             SELECT i, 'pst_' || (i / 3), i % 3, '2024-07-15', 'payment',
                 CASE i % 3 WHEN 0 THEN 'gateway_clearing:vnpay' WHEN 1 THEN 'revenue:le_phi' ELSE 'revenue:phi' END,
                 CASE WHEN i % 3 = 0 THEN 135000 ELSE 0 END, CASE WHEN i % 3 = 0 THEN 0 ELSE 67500 END,
                 'a memo of some length', 'payment=pay_0123456789abcdef', printf('%064d', i - 1), printf('%064d', i) FROM n;
             UPDATE chain_heads SET last_seq = {to}, last_hash = printf('%064d', {to}) WHERE chain = 'ledger'"
        )
    };
    let key_path = dir.path().join("ledger.key");
    let key = feerecon::ledger::LedgerKey::load_or_create(&key_path).expect("a ledger key");
    let t = Instant::now();
    sqlx::query(&write_entries(1, entries - day)).execute(&raw).await.expect("the history's entries");
    eprintln!("  {} ledger entries written in {:.1} s (not timed)", entries - day, t.elapsed().as_secs_f64());
    let checkpoint = |date: NaiveDate, through: usize| {
        let (store, key) = (&store, &key);
        async move {
            let mut tx = store.write().await.expect("a write transaction");
            let c = feerecon::ledger::write_checkpoint(&mut tx, key, "close", date, "vnpay", Utc::now())
                .await
                .expect("a checkpoint")
                .expect("a new checkpoint");
            tx.commit().await.expect("commit");
            assert_eq!(c.last_seq, through as i64, "the checkpoint covers the entries written");
            let totals: feerecon::domain::ledger::Totals = serde_json::from_str(&c.totals).expect("its totals");
            let debits: i64 = totals.values().map(|t| t.0).sum();
            assert_eq!(debits, (through / 3) as i64 * 135_000, "every entry summed");
        }
    };
    let first = NaiveDate::from_ymd_opt(2024, 7, 14).expect("a date");
    let t = Instant::now();
    checkpoint(first, entries - day).await;
    let checkpoint_before = t.elapsed().as_secs_f64() * 1e3;
    sqlx::query(&write_entries(entries - day + 1, entries)).execute(&raw).await.expect("the day's entries");
    let t = Instant::now();
    checkpoint(first.succ_opt().expect("a date"), entries).await;
    let checkpoint_after = t.elapsed().as_secs_f64() * 1e3;

    let rows = [
        (
            format!("a close's checkpoint, {entries} entries, the last {day} since the previous one"),
            checkpoint_before,
            checkpoint_after,
        ),
        (format!("a page of payments by date and gateway, {payments} payments"), page_before, page_after),
        (format!("a round of the receipt worker, {} paid DVCQG payments", payments / 4), due_before, due_after),
    ];
    for (figure, before, after) in &rows {
        eprintln!("history: {figure}: before {before:.1} ms, after {after:.2} ms");
    }
    if let Ok(path) = std::env::var("FEERECON_BENCH_SUMMARY") {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new().append(true).create(true).open(path).expect("the summary file");
        for (figure, before, after) in &rows {
            writeln!(f, "history\t{figure}\t{after:.2} ms (was {before:.1} ms)\tbounded by the day\t-")
                .expect("a summary row");
        }
    }
}
