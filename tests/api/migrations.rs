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
