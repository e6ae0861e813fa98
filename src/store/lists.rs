//! Finance's paged lists across dates that no other file reads whole: payments by date, gateway,
//! status and flag (SPEC §4.2, issue 20). Each takes the cursor (the last id answered) and a
//! limit, and reads in id order, so a page is one indexed statement whatever the table holds.

use chrono::{DateTime, Utc};

use super::payments::{PAYMENT_COLUMNS, Payment};
use super::{Result, Store, on_pool};
use crate::domain::Timestamp;
use crate::domain::payment::{Flag, Gateway, PaymentStatus};

/// Which payments a list shows; every field narrows it, `None` leaves it open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentFilter {
    pub flag: Option<Flag>,
    pub gateway: Option<Gateway>,
    pub status: Option<PaymentStatus>,
    /// Created or paid in `[from, to)`.
    pub between: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Store {
    /// Payments matching `f` by id, after the id `after`, at most `limit`, with their flags.
    pub async fn payments_page(&self, f: &PaymentFilter, after: Option<&str>, limit: i64) -> Result<Vec<Payment>> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments p
             WHERE ($1 = '' OR EXISTS (SELECT 1 FROM payment_flags f WHERE f.payment_id = p.payment_id AND f.flag = $1))
               AND ($2 = '' OR p.gateway = $2) AND ($3 = '' OR p.status = $3)
               AND (NOT $4 OR (p.created_at >= $5 AND p.created_at < $6) OR (p.paid_at >= $5 AND p.paid_at < $6))
               AND p.payment_id > $7
             ORDER BY p.payment_id LIMIT $8"
        );
        let flag = f.flag.map_or("", Flag::as_str);
        let gateway = f.gateway.map_or("", Gateway::as_str);
        let status = f.status.map_or("", PaymentStatus::as_str);
        let (from, to) = f.between.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, DateTime::<Utc>::UNIX_EPOCH));
        let mut rows: Vec<Payment> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(flag)
            .bind(gateway)
            .bind(status)
            .bind(f.between.is_some())
            .bind(Timestamp::at(from))
            .bind(Timestamp::at(to))
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(p)
            .await)?;
        self.attach_flags(&mut rows).await?;
        Ok(rows)
    }
}
