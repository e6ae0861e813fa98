//! Finance's paged lists across dates that no other file reads whole: payments by date, gateway,
//! status and flag (SPEC §4.2, issue 20). Each takes the cursor (the last id answered) and a
//! limit, and reads in id order; the statement holds only the filters given, each backed by an
//! index (migration 0012).

use sqlx::QueryBuilder;

use super::payments::{PAYMENT_COLUMNS, Payment};
use super::{Result, Store, on_pool};
use crate::domain::payment::{Flag, Gateway, PaymentStatus};
use crate::domain::{BusinessDate, Timestamp};

/// Which payments a list shows; every field narrows it, `None` leaves it open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentFilter {
    pub flag: Option<Flag>,
    pub gateway: Option<Gateway>,
    pub status: Option<PaymentStatus>,
    /// The business date the payment counts on, as reconciliation counts it: the date it was
    /// paid (`paid_date`, +07:00) for a paid payment, the date it was created (+07:00) otherwise.
    pub date: Option<BusinessDate>,
}

impl Store {
    /// Payments matching `f` by id, after the id `after`, at most `limit`, with their flags.
    /// The statement holds only the filters given; a flag drives the read from `payment_flags`
    /// (its `(flag, payment_id)` index), a date from the payments' date indexes.
    pub async fn payments_page(&self, f: &PaymentFilter, after: Option<&str>, limit: i64) -> Result<Vec<Payment>> {
        let mut rows: Vec<Payment> = on_pool!(self, |p| {
            let mut q = QueryBuilder::new(format!("SELECT {PAYMENT_COLUMNS} FROM "));
            match f.flag {
                Some(flag) => {
                    q.push("payment_flags f JOIN payments p ON p.payment_id = f.payment_id WHERE f.flag = ");
                    q.push_bind(flag.as_str());
                }
                None => {
                    q.push("payments p WHERE 1 = 1");
                }
            }
            if let Some(g) = f.gateway {
                q.push(" AND p.gateway = ").push_bind(g);
            }
            if let Some(st) = f.status {
                q.push(" AND p.status = ").push_bind(st);
            }
            if let Some(d) = f.date {
                q.push(" AND (p.paid_date = ").push_bind(d.naive());
                q.push(" OR (p.paid_date IS NULL AND p.created_at >= ").push_bind(Timestamp::at(d.start()));
                q.push(" AND p.created_at < ").push_bind(Timestamp::at(d.succ().start())).push("))");
            }
            if let Some(a) = after {
                q.push(" AND p.payment_id > ").push_bind(a);
            }
            q.push(" ORDER BY p.payment_id LIMIT ").push_bind(limit);
            q.build_query_as().fetch_all(p).await
        })?;
        self.attach_flags(&mut rows).await?;
        Ok(rows)
    }
}
