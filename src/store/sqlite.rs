//! The SQLite backend: the embedded default.
//!
//! WAL journal (readers never block the writer), foreign keys on, a busy timeout for other
//! processes (the CLI beside a running server), `synchronous = FULL` so a committed transaction
//! survives a power cut. Reads use a pool of connections; writes use one connection of their own
//! with a large page cache (`connect`). Writers take the database's write lock at `BEGIN IMMEDIATE`, after an
//! in-process mutex (`Store::write`): within one process writers queue fairly instead of polling
//! the busy timeout, and a transaction that reads then writes can never fail to upgrade its lock.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The writer's page cache, in KiB (SQLite's negative `cache_size`): the pages a callback batch
/// touches stay in memory between its transactions.
const WRITER_CACHE_KIB: i64 = 64 * 1024;

/// Prepared statements the writer keeps (sqlx's default is 100). A callback batch's multi-row
/// statements have a text per row count, about fifteen texts per batch size; with batch sizes
/// that vary from one transaction to the next, 100 were evicted before they came round again and
/// every batch prepared its statements anew (parsing and compiling a statement of a few hundred
/// rows, its triggers included).
const WRITER_STATEMENTS: usize = 2048;

/// Opens the readers' pool and the writer's: (readers, writer). With `OpenMode::Existing` a file
/// that is not there is `StoreError::Missing`, and none is created.
pub(super) async fn connect(
    url: &str,
    limits: super::PoolLimits,
    mode: super::OpenMode,
) -> super::Result<(SqlitePool, SqlitePool)> {
    let options = SqliteConnectOptions::from_str(url)?;
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let create = match mode {
        super::OpenMode::Create => true,
        super::OpenMode::Existing if in_memory => true,
        super::OpenMode::Existing => {
            let file = options.get_filename();
            if !file.exists() {
                return Err(super::StoreError::Missing(file.display().to_string()));
            }
            false
        }
    };
    let options = options
        .create_if_missing(create)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(30));
    let readers = SqlitePoolOptions::new()
        .max_connections(limits.max_connections.unwrap_or(8))
        .min_connections(1)
        .acquire_timeout(limits.acquire_timeout)
        .connect_with(options.clone())
        .await?;
    // One connection for every write transaction of this process: writes are serialised anyway
    // (SQLite has one writer; `Store::write` queues them), and a connection's page cache is
    // dropped whenever another connection writes, so a writer that is always the same
    // connection keeps its cache warm instead of reading its pages back from the file each time.
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .acquire_timeout(limits.acquire_timeout)
        .connect_with(
            options.pragma("cache_size", format!("-{WRITER_CACHE_KIB}")).statement_cache_capacity(WRITER_STATEMENTS),
        )
        .await?;
    Ok((readers, writer))
}

/// A timestamp column as RFC 3339 text: SQLite stores them so.
pub(super) fn time_text(column: &str) -> String {
    column.to_owned()
}

/// What `fetch_selected` reads: the packed rows `select` (one packed text expression `... AS x`)
/// of the rows that the `fill` statements name. `fill` are index-using `SELECT rowid ...`
/// statements with `$1` the gateway, `$2` the date and `$3` the text `extra` (a statement naming
/// `$3` names `$2` too); their row ids are collected in a temporary table, which `from` joins as
/// `r` (its column `rid`).
pub(super) struct Selected<'a> {
    pub fill: &'a [&'a str],
    pub select: &'a str,
    pub from: &'a str,
    pub gateway: crate::domain::payment::Gateway,
    pub date: chrono::NaiveDate,
    pub extra: &'a str,
    /// Rows per page.
    pub page_rows: usize,
}

/// The rows of `s`, handed to `on_page` a page of `s.page_rows` at a time as they are read. The
/// driver hands each result row from its worker thread to the caller separately, which costs more
/// than SQLite's work on a million-row day, so a page's rows are concatenated (`group_concat`),
/// in one transaction so that every page shares one snapshot.
pub(super) async fn fetch_selected(
    pool: &SqlitePool,
    s: Selected<'_>,
    on_page: &mut super::recon_data::OnPage<'_>,
) -> super::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("CREATE TEMP TABLE IF NOT EXISTS recon_rows (rid INTEGER PRIMARY KEY)").execute(&mut *tx).await?;
    sqlx::query("DELETE FROM temp.recon_rows").execute(&mut *tx).await?;
    for f in s.fill {
        let insert = format!("INSERT OR IGNORE INTO temp.recon_rows {f}");
        let q = sqlx::query(&insert).bind(s.gateway);
        let q = if f.contains("$2") { q.bind(s.date) } else { q };
        let q = if f.contains("$3") { q.bind(s.extra) } else { q };
        q.execute(&mut *tx).await?;
    }
    let page = format!(
        "SELECT group_concat(x, ''), max(rid) FROM (SELECT r.rid AS rid, {} FROM {} WHERE r.rid > $1 ORDER BY r.rid LIMIT {})",
        s.select, s.from, s.page_rows
    );
    let mut after = i64::MIN;
    loop {
        let (chunk, last): (Option<String>, Option<i64>) =
            sqlx::query_as(&page).bind(after).fetch_one(&mut *tx).await?;
        let Some(last) = last else { break };
        if let Some(chunk) = chunk.filter(|c| !c.is_empty()) {
            on_page(chunk)?;
        }
        after = last;
    }
    // The temporary rows go with the transaction.
    tx.rollback().await?;
    Ok(())
}
