//! The PostgreSQL backend: production, and several instances on one database.
//!
//! Transactions run at READ COMMITTED; whatever must be serialised (a case's versions, a chain's
//! head) is locked row by row with `SELECT ... FOR UPDATE`, which other instances respect.
//! TLS follows the URL (`sslmode=require`).

use std::str::FromStr;
use std::time::Duration;

use sqlx::Postgres;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::Backend;
use super::common::{WriteTx, impl_store};
use super::ledger::impl_ledger;
use super::payments::impl_payments;
use super::recon::impl_recon;

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    const BACKEND: Backend = Backend::Postgres;

    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let options = PgConnectOptions::from_str(url)?.application_name("feerecon");
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    async fn begin_write(&self) -> Result<WriteTx<'_, Postgres>, sqlx::Error> {
        Ok(WriteTx::new(self.pool.begin().await?, None))
    }

    /// A timestamp column as RFC 3339 text, in UTC.
    fn time_text(column: &str) -> String {
        format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')")
    }

    /// A table to scan: the planner chooses how.
    fn scan(table: &str, alias: &str) -> String {
        format!("{table} AS {alias}")
    }

    /// The packed rows of `select` (one text column `x`, `$1` bound to `gateway`): PostgreSQL
    /// streams rows cheaply, so one value per row, from one statement's snapshot.
    async fn fetch_packed(
        &self,
        select: &str,
        _driving: (&str, &str),
        gateway: &str,
    ) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<(String,)> = sqlx::query_as(select).bind(gateway).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|(x,)| x).collect())
    }
}

impl_store!(PgStore, sqlx::Postgres, for_update = " FOR UPDATE");
impl_payments!(PgStore, sqlx::Postgres, for_update = " FOR UPDATE", skip_locked = " FOR UPDATE SKIP LOCKED");
impl_recon!(PgStore, sqlx::Postgres, for_update = " FOR UPDATE");
impl_ledger!(PgStore, sqlx::Postgres, for_update = " FOR UPDATE");
