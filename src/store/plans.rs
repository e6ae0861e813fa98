//! How SQLite reads for the product's statements whose speed rests on one index, pinned by
//! `EXPLAIN QUERY PLAN` on the statements the store runs (not copies of them): a migration that
//! drops or narrows an index, or a statement rewritten so that another index drives it, fails
//! here instead of in a province's database a million rows later. SQLite keeps no statistics in
//! these databases (nothing runs `ANALYZE`), so its plan depends only on the schema and the
//! statement, and is the same in the test as in production.

use super::lists::{PaymentFilter, page_sql};
use super::{Pool, Store};
use crate::domain::BusinessDate;
use crate::domain::payment::{Flag, Gateway, PaymentStatus};

/// The plan's lines for `sql` (parameters unbound), on a migrated, empty SQLite database.
async fn plan(store: &Store, sql: &str) -> Vec<String> {
    let Pool::Sqlite(p) = store.pool() else { unreachable!("a SQLite store") };
    let rows: Vec<(i64, i64, i64, String)> =
        sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}")).fetch_all(p).await.unwrap();
    rows.into_iter().map(|r| r.3).collect()
}

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("plans.db").display())).await.unwrap();
    store.migrate().await.unwrap();
    (dir, store)
}

fn uses(plan: &[String], step: &str) -> bool {
    plan.iter().any(|l| l.contains(step))
}

#[tokio::test]
async fn the_partial_indexes_of_migration_0016_serve_their_readers() {
    let (_dir, store) = store().await;
    let evidence = plan(&store, &super::payments::payment_callbacks_sql()).await;
    assert!(uses(&evidence, "callbacks USING INDEX callbacks_txn_ref (txn_ref=?)"), "{evidence:#?}");
    assert!(uses(&evidence, "callbacks USING INDEX callbacks_payment (payment_id=?)"), "{evidence:#?}");
    let referring = plan(&store, &super::receipts::referring_sql()).await;
    assert!(uses(&referring, "receipts USING INDEX receipts_related (related_receipt_id=?)"), "{referring:#?}");
    let date = BusinessDate::parse("2024-07-15").unwrap();
    let by_date = plan(&store, &page_sql(&PaymentFilter { date: Some(date), ..PaymentFilter::default() })).await;
    assert!(uses(&by_date, "USING INDEX payments_paid_date (paid_date=?)"), "{by_date:#?}");
    assert!(uses(&by_date, "USING INDEX payments_created (created_at>? AND created_at<?)"), "{by_date:#?}");
}

#[tokio::test]
async fn a_payments_page_is_driven_by_its_flag_or_its_date_before_a_gateway_or_status() {
    let (_dir, store) = store().await;
    let date = Some(BusinessDate::parse("2024-07-15").unwrap());
    let (gateway, status) = (Some(Gateway::Vnpay), Some(PaymentStatus::Paid));
    // With a date: its indexes, whatever else narrows the page.
    for f in [
        PaymentFilter { date, gateway, ..PaymentFilter::default() },
        PaymentFilter { date, status, ..PaymentFilter::default() },
        PaymentFilter { date, gateway, status, ..PaymentFilter::default() },
    ] {
        let p = plan(&store, &page_sql(&f)).await;
        assert!(uses(&p, "payments_paid_date (paid_date=?)"), "{f:?}: {p:#?}");
        assert!(!uses(&p, "payments_home") && !uses(&p, "payments_status"), "{f:?}: {p:#?}");
    }
    // A flag: its (flag, payment_id) index.
    let f = PaymentFilter { flag: Some(Flag::UnresolvedPending), gateway, ..PaymentFilter::default() };
    let p = plan(&store, &page_sql(&f)).await;
    assert!(uses(&p, "f USING COVERING INDEX payment_flags_flag (flag=? AND payment_id>?)"), "{p:#?}");
    assert!(!uses(&p, "payments_home") && !uses(&p, "TEMP B-TREE"), "{p:#?}");
}

#[tokio::test]
async fn the_receipts_due_are_read_from_the_pending_rows_not_from_every_paid_payment() {
    let (_dir, store) = store().await;
    let p = plan(&store, super::gateway_receipts::DUE_SQL).await;
    assert!(uses(&p, "r USING INDEX gateway_receipts_due (state=? AND next_attempt_at<?)"), "{p:#?}");
    assert!(uses(&p, "p USING INDEX sqlite_autoindex_payments_1 (payment_id=?)"), "{p:#?}");
    assert!(!uses(&p, "payments_home") && !uses(&p, "SCAN"), "{p:#?}");
}
