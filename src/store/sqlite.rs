//! The SQLite backend: the embedded default.
//!
//! WAL journal (readers never block the writer), foreign keys on, a busy timeout for other
//! processes (the CLI beside a running server), `synchronous = FULL` so a committed transaction
//! survives a power cut. Writers take the database's write lock at `BEGIN IMMEDIATE`, after an
//! in-process mutex (`Store::write`): within one process writers queue fairly instead of polling
//! the busy timeout, and a transaction that reads then writes can never fail to upgrade its lock.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub(super) async fn connect(url: &str) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(30));
    SqlitePoolOptions::new()
        .max_connections(8)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
}

/// A timestamp column as RFC 3339 text: SQLite stores them so.
pub(super) fn time_text(column: &str) -> String {
    column.to_owned()
}

/// A table read by rowid ranges (`fetch_packed`), never through an index that merely matches a
/// filter such as the gateway (which would scan the whole index per range).
pub(super) fn scan(table: &str, alias: &str) -> String {
    format!("{table} AS {alias} NOT INDEXED")
}

/// The packed rows of `select` (one text column `x`, `$1` bound to `gateway`, its driving table
/// and its alias `driving`), thousands at a time: the driver hands each result row from its
/// worker thread to the caller separately, which costs more than SQLite's work on a million-row
/// day, so rows are concatenated (`group_concat`) over ranges of the driving table's rowid, read
/// in one transaction so that they share one snapshot.
pub(super) async fn fetch_packed(
    pool: &SqlitePool,
    select: &str,
    driving: (&str, &str),
    gateway: &str,
) -> Result<Vec<String>, sqlx::Error> {
    const SPAN: i64 = 8192;
    let (table, alias) = driving;
    let mut tx = pool.begin().await?;
    let (lo, hi): (Option<i64>, Option<i64>) =
        sqlx::query_as(&format!("SELECT min(rowid), max(rowid) FROM {table}")).fetch_one(&mut *tx).await?;
    let sql = format!("SELECT group_concat(x, '') FROM ({select} AND {alias}.rowid BETWEEN $2 AND $3)");
    // The next range starts at the next rowid that exists, so gaps in rowids cost nothing.
    let next = format!("SELECT min(rowid) FROM {table} WHERE rowid >= $1");
    let mut out = Vec::new();
    let (mut from, hi) = (lo, hi.unwrap_or(i64::MIN));
    while let Some(start) = from.filter(|f| *f <= hi) {
        let end = start.saturating_add(SPAN - 1);
        let (chunk,): (Option<String>,) =
            sqlx::query_as(&sql).bind(gateway).bind(start).bind(end).fetch_one(&mut *tx).await?;
        out.extend(chunk);
        from = match end.checked_add(1) {
            Some(after) => sqlx::query_as::<_, (Option<i64>,)>(&next).bind(after).fetch_one(&mut *tx).await?.0,
            None => None,
        };
    }
    tx.commit().await?;
    Ok(out)
}
