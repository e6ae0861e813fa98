//! The stored state `/metrics` reads at scrape time (SPEC §4.1, issue 20): reconciliation
//! exceptions by state, the dates run but not closed, the oldest pending payment. One cheap
//! query each (the first two scan small tables; the third walks the `payments_status` index), so
//! each instance reports what the database holds, whichever instance made the change.

use chrono::{DateTime, Utc};

use super::{Result, Store, on_pool};
use crate::domain::payment::{Gateway, PaymentStatus};
use crate::domain::recon::ExceptionState;

impl Store {
    /// How many reconciliation exceptions are in each state (states with none are absent).
    pub async fn exception_counts(&self) -> Result<Vec<(ExceptionState, i64)>> {
        let sql = "SELECT state, COUNT(*) FROM exceptions GROUP BY state ORDER BY state";
        Ok(on_pool!(self, |p| sqlx::query_as(sql).fetch_all(p).await)?)
    }

    /// Per gateway, how many business dates have a reconciliation run but are not closed.
    pub async fn unclosed_run_dates(&self) -> Result<Vec<(Gateway, i64)>> {
        let sql = "SELECT r.gateway, COUNT(DISTINCT r.business_date) FROM reconciliation_runs r
                   WHERE NOT EXISTS (SELECT 1 FROM day_closures c
                                     WHERE c.business_date = r.business_date AND c.gateway = r.gateway)
                   GROUP BY r.gateway ORDER BY r.gateway";
        Ok(on_pool!(self, |p| sqlx::query_as(sql).fetch_all(p).await)?)
    }

    /// When the oldest payment still pending was created, if any is.
    pub async fn oldest_pending_payment(&self) -> Result<Option<DateTime<Utc>>> {
        let sql = "SELECT created_at FROM payments WHERE status = $1 ORDER BY created_at LIMIT 1";
        let row: Option<(DateTime<Utc>,)> =
            on_pool!(self, |p| sqlx::query_as(sql).bind(PaymentStatus::Pending).fetch_optional(p).await)?;
        Ok(row.map(|(t,)| t))
    }
}
