//! Finance's paged lists across dates that no other file reads whole: payments by date, gateway,
//! status and flag (SPEC §4.2, issue 20). Each takes the cursor (the last id answered) and a
//! limit, and reads in id order; the statement holds only the filters given, and the one that
//! drives the read is backed by an index (migration 0012).

use sqlx::QueryBuilder;

use super::payments::{PAYMENT_COLUMNS, Payment};
use super::{Backend, Result, Store, on_pool};
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
    pub async fn payments_page(&self, f: &PaymentFilter, after: Option<&str>, limit: i64) -> Result<Vec<Payment>> {
        let sqlite = self.backend() == Backend::Sqlite;
        let mut rows: Vec<Payment> =
            on_pool!(self, |p| page_query(f, after, limit, sqlite).build_query_as().fetch_all(p).await)?;
        self.attach_flags(&mut rows).await?;
        Ok(rows)
    }
}

/// The statement of `payments_page`. It holds only the filters given; a flag drives the read
/// from `payment_flags` (its `(flag, payment_id)` index), a date from the payments' date indexes.
/// On SQLite, which keeps no statistics here, a gateway or a status beside a flag or a date is
/// marked (`+`) not to drive the read (the same rows come back; only the plan changes): its
/// planner would otherwise read every payment of the gateway (`payments_home`) or status in the
/// history and sort them for each page (170 ms a page at a million payments, against 2 ms by the
/// date; pinned in `store::plans`). Alone, a gateway or a status still drives the read by its
/// index: a rare status is found at once, but a common one is read whole and sorted for each
/// page (170 ms at a million); indexes `(gateway, payment_id)` and `(status, payment_id)` would
/// serve those pages in order, at the price of two more index writes on each payment change.
fn page_query<'a, DB>(f: &'a PaymentFilter, after: Option<&'a str>, limit: i64, sqlite: bool) -> QueryBuilder<'a, DB>
where
    DB: sqlx::Database,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Gateway: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    PaymentStatus: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    chrono::NaiveDate: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Timestamp: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let narrow = if sqlite && (f.date.is_some() || f.flag.is_some()) { " AND +p." } else { " AND p." };
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
        q.push(narrow).push("gateway = ").push_bind(g);
    }
    if let Some(st) = f.status {
        q.push(narrow).push("status = ").push_bind(st);
    }
    if let Some(d) = f.date {
        q.push(" AND (p.paid_date = ").push_bind(d.naive());
        q.push(" OR (p.paid_date IS NULL AND p.created_at >= ").push_bind(Timestamp::at(d.start()));
        q.push(" AND p.created_at < ").push_bind(Timestamp::at(d.succ().start())).push("))");
    }
    // Flagged payments are read in the flag index's order (the join makes the two ids equal).
    let id = if f.flag.is_some() { "f.payment_id" } else { "p.payment_id" };
    if let Some(a) = after {
        q.push(format!(" AND {id} > ")).push_bind(a);
    }
    q.push(format!(" ORDER BY {id} LIMIT ")).push_bind(limit);
    q
}

/// The statement `payments_page` runs on SQLite for `f`, for `store::plans`.
#[cfg(test)]
pub(super) fn page_sql(f: &PaymentFilter) -> String {
    page_query::<sqlx::Sqlite>(f, Some(""), 50, true).into_sql()
}
