//! Both backends carry the same migration versions, and readiness follows them.

use std::collections::BTreeSet;

fn versions(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.ends_with(".sql"))
        .map(|n| n.split('_').next().unwrap().to_owned())
        .collect()
}

#[test]
fn sqlite_and_postgres_migrations_have_the_same_versions() {
    let s = versions("sqlite");
    let p = versions("postgres");
    assert!(!s.is_empty());
    assert_eq!(s, p, "migrations/sqlite and migrations/postgres differ");
    use feerecon::store::{Backend, migration_versions};
    assert_eq!(migration_versions(Backend::Sqlite), migration_versions(Backend::Postgres));
}

#[tokio::test]
async fn an_unmigrated_database_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display());
    let store = feerecon::store::Store::connect(&url).await.unwrap();
    assert!(!store.ready().await.unwrap());
    store.migrate().await.unwrap();
    assert!(store.ready().await.unwrap());
}

/// Migration 0011 rebuilds SQLite's `payments` (a CHECK cannot change in place) while other tables
/// reference it: rows, flags and foreign keys survive, and the new values are taken.
#[tokio::test]
async fn the_dvcqg_migration_keeps_sqlite_payments_and_their_references() {
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let dir_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut before = sqlx::migrate::Migrator::new(dir_path.as_path()).await.unwrap();
    before.migrations = before.migrations.iter().filter(|m| m.version < 11).cloned().collect::<Vec<_>>().into();
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    before.run(&mut c).await.unwrap();
    for sql in [
        "INSERT INTO cases VALUES ('000.00.12.H62-240715-0001', 1, 't', 't')",
        "INSERT INTO payments (payment_id, case_code, case_version, gateway, txn_ref, amount, budget_amount, status,
             return_url, client_ip, created_by, idempotency_key, quote, created_at, expires_at, updated_at, last_answer,
             query_count) VALUES ('pay_1', '000.00.12.H62-240715-0001', 1, 'momo', 'FR1', 135000, 0, 'pending', 'r', 'ip',
             'u', 'k', '{}', 't', 't', 't', 'unusable', 3)",
        "INSERT INTO payment_flags VALUES ('pay_1', 'unresolved_pending', 't')",
    ] {
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
    c.close().await.unwrap();
    let store = feerecon::store::Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    assert!(store.ready().await.unwrap());
    store.close().await;
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let row: (String, String, i64, String) =
        sqlx::query_as("SELECT gateway, txn_ref, query_count, last_answer FROM payments WHERE payment_id = 'pay_1'")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(row, ("momo".into(), "FR1".into(), 3, "unusable".into()));
    let flags: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM payment_flags").fetch_one(&mut c).await.unwrap();
    assert_eq!(flags.0, 1);
    assert!(sqlx::query("SELECT 1 FROM pragma_foreign_key_check").fetch_all(&mut c).await.unwrap().is_empty());
    sqlx::query("UPDATE payments SET gateway = 'dvcqg', last_answer = 'undecided' WHERE payment_id = 'pay_1'")
        .execute(&mut c)
        .await
        .unwrap();
    assert!(sqlx::query("UPDATE payments SET gateway = 'paypal'").execute(&mut c).await.is_err());
    // Foreign keys still refer to the rebuilt table.
    assert!(
        sqlx::query("INSERT INTO payment_flags VALUES ('pay_none', 'late_success', 't')")
            .execute(&mut c)
            .await
            .is_err()
    );
}

/// Migration 0016 rebuilds SQLite's `ledger_entries` (to drop the `hash` UNIQUE index) and
/// rewrites its balance check as an AFTER trigger: the rows survive, and the database still refuses
/// an entry added to a completed posting, an unbalanced posting and any change to an entry.
#[tokio::test]
async fn the_callback_writes_migration_keeps_sqlite_entries_and_what_the_ledger_refuses() {
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let dir_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut before = sqlx::migrate::Migrator::new(dir_path.as_path()).await.unwrap();
    before.migrations = before.migrations.iter().filter(|m| m.version < 16).cloned().collect::<Vec<_>>().into();
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    before.run(&mut c).await.unwrap();
    let entry = |seq: i64, posting: &str, line: i64, dr: i64, cr: i64| {
        format!(
            "INSERT INTO ledger_entries (seq, posting_id, line_no, business_date, kind, account, debit, credit, memo, refs, prev_hash, hash)
             VALUES ({seq}, '{posting}', {line}, '2024-07-15', 'test', 'a{line}', {dr}, {cr}, 'm', 'r', 'p{seq}', 'h{seq}')"
        )
    };
    let complete = |posting: &str, lines: i64, total: i64| {
        format!(
            "INSERT INTO ledger_postings (posting_id, idem_key, kind, business_date, created_at, corrects, line_count, total)
             VALUES ('{posting}', '{posting}', 'test', '2024-07-15', 't', NULL, {lines}, {total})"
        )
    };
    for sql in [entry(1, "pst_1", 1, 100, 0), entry(2, "pst_1", 2, 0, 100), complete("pst_1", 2, 100)] {
        sqlx::query(&sql).execute(&mut c).await.unwrap();
    }
    c.close().await.unwrap();
    let store = feerecon::store::Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let rows: Vec<(i64, String, i64, i64, i64, String, String)> = sqlx::query_as(
        "SELECT seq, posting_id, line_no, debit, credit, prev_hash, hash FROM ledger_entries ORDER BY seq",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (1, "pst_1".into(), 1, 100, 0, "p1".into(), "h1".into()),
            (2, "pst_1".into(), 2, 0, 100, "p2".into(), "h2".into())
        ]
    );
    // No unique index covers `hash` any more; (posting_id, line_no) is still unique.
    let unique: Vec<(String,)> = sqlx::query_as(
        "SELECT group_concat(i.name, ',') FROM pragma_index_list('ledger_entries') l, pragma_index_info(l.name) i
         WHERE l.\"unique\" = 1 GROUP BY l.name ORDER BY 1",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(unique, vec![("posting_id,line_no".to_owned(),)]);
    // A completed posting takes no more entries: the statement is refused whole.
    let e = sqlx::query(&format!(
        "{}, (4, 'pst_1', 4, '2024-07-15', 'test', 'a', 0, 0, '', '', 'x', 'h4')",
        entry(3, "pst_1", 3, 0, 0)
    ))
    .execute(&mut c)
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("corrections are new postings"), "{e}");
    // An unbalanced posting, or one without its entries, is refused with its entries.
    let mut tx = c.begin().await.unwrap();
    for sql in [entry(3, "pst_2", 1, 100, 0), entry(4, "pst_2", 2, 0, 90)] {
        sqlx::query(&sql).execute(&mut *tx).await.unwrap();
    }
    let e = sqlx::query(&complete("pst_2", 2, 100)).execute(&mut *tx).await.unwrap_err().to_string();
    assert!(e.contains("unbalanced or incomplete posting"), "{e}");
    tx.rollback().await.unwrap();
    let e = sqlx::query(&complete("pst_3", 1, 0)).execute(&mut c).await.unwrap_err().to_string();
    assert!(e.contains("unbalanced or incomplete posting"), "{e}");
    for q in ["UPDATE ledger_entries SET debit = debit + 1 WHERE seq = 1", "DELETE FROM ledger_entries WHERE seq = 1"] {
        let e = sqlx::query(q).execute(&mut c).await.unwrap_err().to_string();
        assert!(e.contains("append-only"), "{q}: {e}");
    }
    let n: (i64, i64) =
        sqlx::query_as("SELECT (SELECT COUNT(*) FROM ledger_entries), (SELECT COUNT(*) FROM ledger_postings)")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(n, (2, 1));
    // A balanced posting is still accepted after its entries.
    for sql in [entry(3, "pst_4", 1, 50, 0), entry(4, "pst_4", 2, 0, 50), complete("pst_4", 2, 50)] {
        sqlx::query(&sql).execute(&mut c).await.unwrap();
    }
}

/// Migration 0017 writes the expected gateway receipt of each DVCQG payment paid before it whose
/// receipt was never attempted: pending, no attempt, due at its payment time, so the worker, which
/// now reads only the pending rows, still fetches it. A fetched receipt and other gateways'
/// payments are left alone. On both databases.
async fn the_expected_receipts_migration_makes_earlier_paid_payments_due(db: crate::helpers::Db) {
    let Some((url, _dir)) = crate::helpers::fresh_db(db).await else { return };
    let sqlite = url.starts_with("sqlite:");
    // The database as migration 16 left it, holding payments paid then: the schema is the same
    // but for 0017's rows, so the test migrates fully, writes those payments and forgets 0017.
    let store = feerecon::store::Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    let paid_at = "2024-07-15T03:00:00+00:00";
    let payment = |id: &str, gateway: &str| {
        format!(
            "INSERT INTO payments (payment_id, case_code, case_version, gateway, txn_ref, amount, budget_amount, status,
                 return_url, client_ip, created_by, idempotency_key, quote, created_at, expires_at, updated_at, last_answer,
                 query_count, paid_at, paid_date) VALUES ('{id}', '000.00.12.H62-240715-0001', 1, '{gateway}', 'R{id}', 135000, 0,
                 'paid', 'r', 'ip', 'u', 'k{id}', '{{}}', '{paid_at}', '{paid_at}', '{paid_at}', 'status', 0, '{paid_at}', '2024-07-15')"
        )
    };
    let pdf = if sqlite { "x'25504446'" } else { "'\\x25504446'::bytea" };
    for sql in [
        format!("INSERT INTO cases VALUES ('000.00.12.H62-240715-0001', 1, '{paid_at}', '{paid_at}')"),
        payment("pay_never", "dvcqg"),
        payment("pay_fetched", "dvcqg"),
        payment("pay_vnpay", "vnpay"),
        format!(
            "INSERT INTO gateway_receipts (payment_id, gateway, state, attempts, next_attempt_at, body, updated_at)
             VALUES ('pay_fetched', 'dvcqg', 'fetched', 2, '{paid_at}', {pdf}, '{paid_at}')"
        ),
        "DELETE FROM _sqlx_migrations WHERE version = 17".to_owned(),
    ] {
        crate::helpers::raw_sql(&url, &sql).await.unwrap();
    }
    let store = feerecon::store::Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let now = chrono::DateTime::parse_from_rfc3339("2024-07-15T04:00:00Z").unwrap().to_utc();
    let due = store.gateway_receipts_due(feerecon::domain::payment::Gateway::Dvcqg, now, 20).await.unwrap();
    assert_eq!(due.iter().map(|d| (d.payment_id.as_str(), d.attempts)).collect::<Vec<_>>(), [("pay_never", 0)]);
    let fetched = store.gateway_receipt("pay_fetched").await.unwrap().unwrap();
    assert_eq!((fetched.state.as_str(), fetched.attempts), ("fetched", 2));
    assert!(store.gateway_receipt("pay_vnpay").await.unwrap().is_none());
    // Not due before its payment time.
    let early = chrono::DateTime::parse_from_rfc3339("2024-07-15T02:00:00Z").unwrap().to_utc();
    assert!(store.gateway_receipts_due(feerecon::domain::payment::Gateway::Dvcqg, early, 20).await.unwrap().is_empty());
    store.close().await;
}

#[tokio::test]
async fn the_expected_receipts_migration_makes_earlier_paid_payments_due_sqlite() {
    the_expected_receipts_migration_makes_earlier_paid_payments_due(crate::helpers::Db::Sqlite).await;
}

#[tokio::test]
async fn the_expected_receipts_migration_makes_earlier_paid_payments_due_postgres() {
    the_expected_receipts_migration_makes_earlier_paid_payments_due(crate::helpers::Db::Postgres).await;
}
