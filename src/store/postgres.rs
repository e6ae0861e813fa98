//! The PostgreSQL backend: production, and several instances on one database.
//!
//! Transactions run at READ COMMITTED; whatever must be serialised (a case's payments, a chain's
//! head) is locked row by row with `SELECT ... FOR UPDATE`, which other instances respect.
//! `synchronous_commit` is set `on` for every connection, whatever the server's default: a
//! callback is acknowledged only once its transaction is on disk. TLS follows the URL
//! (`sslmode=require`).

use std::str::FromStr;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub(super) async fn connect(url: &str, limits: super::PoolLimits) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?.application_name("feerecon").options([("synchronous_commit", "on")]);
    // One connection first, within the connect timeout, for its own error: the pool would retry a
    // refused connection until its acquire timeout and then say only that it timed out.
    let wait = limits.connect_timeout;
    let first = tokio::time::timeout(wait, PgConnection::connect_with(&options)).await.map_err(|_| {
        let why = format!("the server did not answer within {} s", wait.as_secs_f32());
        sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, why))
    })??;
    first.close().await?;
    PgPoolOptions::new()
        .max_connections(limits.max_connections.unwrap_or(16))
        .acquire_timeout(limits.acquire_timeout)
        .connect_with(options)
        .await
}

/// A timestamp column as RFC 3339 text, in UTC.
pub(super) fn time_text(column: &str) -> String {
    format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')")
}

/// The packed rows of `select` (one text column `x`, `$1` bound to the gateway and `$2` to the
/// date), from one statement's snapshot, handed to `on_page` as they stream in, concatenated a
/// page of `page_rows` at a time (packed rows need no separator, see `recon_data::pack_sql`).
pub(super) async fn fetch_packed(
    pool: &PgPool,
    select: &str,
    gateway: crate::domain::payment::Gateway,
    date: chrono::NaiveDate,
    page_rows: usize,
    on_page: &mut super::recon_data::OnPage<'_>,
) -> super::Result<()> {
    use futures_util::TryStreamExt;
    let mut rows = sqlx::query_as::<_, (String,)>(select).bind(gateway).bind(date).fetch(pool);
    let (mut page, mut n) = (String::new(), 0);
    while let Some((x,)) = rows.try_next().await? {
        page.push_str(&x);
        n += 1;
        if n == page_rows {
            on_page(std::mem::take(&mut page))?;
            n = 0;
        }
    }
    if !page.is_empty() {
        on_page(page)?;
    }
    Ok(())
}
