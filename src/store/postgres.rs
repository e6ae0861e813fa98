//! The PostgreSQL backend: production, and several instances on one database.
//!
//! Transactions run at READ COMMITTED; whatever must be serialised (a case's payments, a chain's
//! head) is locked row by row with `SELECT ... FOR UPDATE`, which other instances respect.
//! `synchronous_commit` is set `on` for every connection, whatever the server's default: a
//! callback is acknowledged only once its transaction is on disk. TLS follows the URL
//! (`sslmode=require`).

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub(super) async fn connect(url: &str, limits: super::PoolLimits) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?.application_name("feerecon").options([("synchronous_commit", "on")]);
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
/// date): PostgreSQL streams rows cheaply, so one value per row, from one statement's snapshot.
pub(super) async fn fetch_packed(
    pool: &PgPool,
    select: &str,
    gateway: crate::domain::payment::Gateway,
    date: chrono::NaiveDate,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(select).bind(gateway).bind(date).fetch_all(pool).await?;
    Ok(rows.into_iter().map(|(x,)| x).collect())
}
