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
