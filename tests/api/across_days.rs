//! Reconciliation and the ledger across days (issue 12, SPEC §7.2 "Across days", §7.3, §8), over
//! HTTP against the simulator, on SQLite and PostgreSQL: late callbacks and lines, reopened and
//! superseded resolutions, closes racing callbacks, approvals racing rejections, and runs that
//! read only what can fall on their date.

use feerecon::domain::Role;
use feerecon::domain::payment::Gateway;
use feerecon::settlement::LineStatus;
use serde_json::{Value, json};

use std::collections::BTreeMap;

use crate::helpers::{Db, error_code};

use crate::world::across;

use crate::world::{Paid, World};

fn item<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == key)
        .unwrap_or_else(|| panic!("no {key} in {report}"))
}

fn line_key(p: &Paid) -> String {
    format!("vnpay:{}:success", p.no)
}

fn payment_key(p: &Paid) -> String {
    format!("vnpay:payment:{}", p.id)
}

across! {
    /// Items 1, 3 and 4 (closed dates), the issue's own case: a line of the 15th whose callback
    /// is lost; the 15th closes with the line written off; the callback comes on the 16th. The
    /// 16th counts the payment once, against the 15th's line, and moves the line's money from
    /// suspense to the payment, undoing the write-off; once the 16th closes, the 17th counts
    /// nothing again (before: the payment and its line came back on every later date).
    async fn a_late_callback_is_counted_once_against_its_closed_line(w) {
        w.at("2024-07-15T10:00:00+07:00");
        let p = w.pay("2024-07-15", true).await;
        w.import(&[(&p, p.amount, LineStatus::Success, "2024-07-15T10:05:00+07:00")]).await;
        w.at("2024-07-16T01:00:00+07:00");
        let r15 = w.run("2024-07-15").await;
        assert_eq!(item(&r15, &line_key(&p))["category"], "unconfirmed_in_records");
        w.resolve(&line_key(&p), "write_off").await;
        let (s, v) = w.close("2024-07-15").await;
        assert_eq!(s, 200, "{v}");
        w.callback(&p).await;
        let r16 = w.run("2024-07-16").await;
        let i = w.matched("2024-07-16", &payment_key(&p)).await;
        assert_eq!((i["category"].as_str(), i["counterpart_date"].as_str()), (Some("matched"), Some("2024-07-15")), "{i}");
        assert_eq!((r16["totals"]["recorded_paid"].as_i64(), r16["totals"]["settled_gross"].as_i64()), (Some(p.amount), Some(0)));
        w.at("2024-07-17T01:00:00+07:00");
        let (s, v) = w.close("2024-07-16").await;
        assert_eq!(s, 200, "{v}");
        let r17 = w.run("2024-07-17").await;
        assert!(r17["items"].as_array().unwrap().is_empty(), "{r17}");
        assert_eq!((r17["totals"]["recorded_paid"].as_i64(), r17["totals"]["settled_gross"].as_i64()), (Some(0), Some(0)));
        // The money: the write-off reversed (once), the line's money on the payment.
        let b = w.balances().await;
        assert_eq!(b.get("write_offs").copied().unwrap_or(0), 0, "{b:?}");
        assert_eq!(b.get("suspense").copied().unwrap_or(0), 0, "{b:?}");
        assert_eq!(b.get("gateway_clearing:vnpay").copied().unwrap_or(0), 0, "confirmed and settled: {b:?}");
        assert!(w.exception(&line_key(&p)).await.posting_id.is_none(), "its posting reversed");
        w.verifies().await;
    }
}

across! {
    /// Items 3 and 4 (closed dates), the other way: the 15th counts the payment, missing in
    /// settlement, written off; its line comes in the 16th's file. The 16th's item is the line's,
    /// matched against the 15th's payment; it counts only the line; its close reverses the
    /// write-off before settling (before: the clearing account was credited twice).
    async fn a_late_line_is_counted_once_against_its_closed_payment(w) {
        w.at("2024-07-15T10:00:00+07:00");
        let p = w.pay("2024-07-15", false).await;
        w.at("2024-07-16T01:00:00+07:00");
        let r15 = w.run("2024-07-15").await;
        assert_eq!(item(&r15, &payment_key(&p))["category"], "missing_in_settlement");
        w.resolve(&payment_key(&p), "write_off").await;
        assert_eq!(w.close("2024-07-15").await.0, 200);
        w.import(&[(&p, p.amount, LineStatus::Success, "2024-07-15T10:05:00+07:00")]).await;
        let r16 = w.run("2024-07-16").await;
        let i = w.matched("2024-07-16", &line_key(&p)).await;
        assert_eq!((i["category"].as_str(), i["counterpart_date"].as_str()), (Some("matched"), Some("2024-07-15")), "{i}");
        assert_eq!((r16["totals"]["recorded_paid"].as_i64(), r16["totals"]["settled_gross"].as_i64()), (Some(0), Some(p.amount)));
        w.at("2024-07-17T01:00:00+07:00");
        assert_eq!(w.close("2024-07-16").await.0, 200);
        let b = w.balances().await;
        assert_eq!(b.get("gateway_clearing:vnpay").copied().unwrap_or(0), 0, "{b:?}");
        assert_eq!(b.get("write_offs").copied().unwrap_or(0), 0, "{b:?}");
        assert!(w.exception(&payment_key(&p)).await.posting_id.is_none());
        let r17 = w.run("2024-07-17").await;
        assert_eq!(r17["totals"]["settled_gross"].as_i64(), Some(0));
        w.verifies().await;
    }
}

across! {
    /// Item 4 (open dates) and 5: on a date still open, a re-run whose item is gone or matched
    /// through another event supersedes the exception and reverses its movement, once; a
    /// confirm_from_settlement that matched its own item stays resolved; nothing moves without an
    /// approval.
    async fn resolutions_whose_reason_goes_are_superseded_and_reversed_once(w) {
        w.at("2024-07-15T10:00:00+07:00");
        let written = w.pay("2024-07-15", false).await;
        let refunded = w.pay("2024-07-15", true).await;
        let confirmed = w.pay("2024-07-15", true).await;
        w.import(&[
            (&refunded, refunded.amount, LineStatus::Success, "2024-07-15T10:05:00+07:00"),
            (&confirmed, confirmed.amount, LineStatus::Success, "2024-07-15T10:06:00+07:00"),
        ])
        .await;
        w.at("2024-07-15T20:00:00+07:00");
        let r = w.run("2024-07-15").await;
        assert_eq!(item(&r, &payment_key(&written))["category"], "missing_in_settlement");
        assert_eq!(item(&r, &line_key(&refunded))["category"], "unconfirmed_in_records");
        let e = w.resolve(&payment_key(&written), "write_off").await;
        let write_off = e["resolution"]["posting_id"].as_str().unwrap().to_owned();
        let e = w.resolve(&line_key(&refunded), "refund").await;
        let refund = e["resolution"]["posting_id"].as_str().unwrap().to_owned();
        w.resolve(&line_key(&confirmed), "confirm_from_settlement").await;
        // The written-off payment's line arrives; the refunded line's callback is recovered.
        w.import(&[(&written, written.amount, LineStatus::Success, "2024-07-15T11:00:00+07:00")]).await;
        w.callback(&refunded).await;
        let r = w.run("2024-07-15").await;
        assert!(r["items"].as_array().unwrap().iter().all(|i| i["category"] == "missing_in_settlement" || i["state"] != "open"), "{r}");
        for (key, posting) in [(payment_key(&written), &write_off), (line_key(&refunded), &refund)] {
            let e = w.exception(&key).await;
            assert_eq!((e.state.as_str(), e.posting_id.as_deref()), ("superseded", None), "{key}");
            let reversals = w.app.store.ledger_entries(0, 10_000).await.unwrap().into_iter()
                .filter(|x| x.refs.contains(&format!("corrects={posting}")) && x.line_no == 1).count();
            assert_eq!(reversals, 1, "{key}: its posting reversed once");
        }
        assert_eq!(w.exception(&line_key(&confirmed)).await.state.as_str(), "resolved", "matched by its own resolution");
        // Running again reverses nothing more.
        let before = w.app.store.ledger_head().await.unwrap().0;
        w.run("2024-07-15").await;
        assert_eq!(w.app.store.ledger_head().await.unwrap().0, before, "no money moves without an approval");
        let b = w.balances().await;
        assert_eq!((b.get("write_offs").copied().unwrap_or(0), b.get("refunds_payable").copied().unwrap_or(0)), (0, 0), "{b:?}");
        w.verifies().await;
    }
}

across! {
    /// Item 5: a resolved exception whose category changes reopens with its posting reversed and
    /// `posting_id` null; a later re-run does not reverse the reversal; accepting after a reopen
    /// moves nothing and keeps it null.
    async fn a_reopened_exception_holds_no_posting_and_reverses_once(w) {
        w.at("2024-07-15T10:00:00+07:00");
        let p = w.pay("2024-07-15", true).await;
        // The gateway settled less than the payment.
        w.import(&[(&p, p.amount - 5_000, LineStatus::Success, "2024-07-15T10:05:00+07:00")]).await;
        w.at("2024-07-15T20:00:00+07:00");
        let r = w.run("2024-07-15").await;
        assert_eq!(item(&r, &line_key(&p))["category"], "unconfirmed_in_records");
        let e = w.resolve(&line_key(&p), "refund").await;
        let refund = e["resolution"]["posting_id"].as_str().unwrap().to_owned();
        w.callback(&p).await;
        let r = w.run("2024-07-15").await;
        assert_eq!(item(&r, &line_key(&p))["category"], "amount_mismatch");
        let e = w.exception(&line_key(&p)).await;
        assert_eq!((e.state.as_str(), e.posting_id.as_deref()), ("open", None));
        let head = w.app.store.ledger_head().await.unwrap().0;
        w.run("2024-07-15").await;
        assert_eq!(w.app.store.ledger_head().await.unwrap().0, head, "the reversal is not reversed");
        let (s, v) = w.act(&w.f1, &line_key(&p), "resolve", json!({"action": "accept", "note": "t"})).await;
        assert_eq!((s, error_code(&v)), (422, "invalid_field"), "a shortfall is written off, not accepted: {v}");
        let e = w.resolve(&line_key(&p), "write_off").await;
        assert_ne!(e["resolution"]["posting_id"].as_str(), Some(refund.as_str()));
        w.verifies().await;
    }
}

across! {
    /// Item 2: callbacks racing a close. The close holds its gateway's events: a callback commits
    /// before it (the close then refuses a stale run) or after it (the next open date counts it).
    /// Each payment is counted on exactly one closed date.
    async fn callbacks_racing_closes_are_each_counted_on_one_date(w) {
        w.at("2024-07-15T10:00:00+07:00");
        let mut lost = Vec::new();
        for _ in 0..12 {
            lost.push(w.pay("2024-07-15", true).await);
        }
        w.at("2024-07-16T01:00:00+07:00");
        let mut counted: BTreeMap<String, i64> = BTreeMap::new();
        let sim = &w.sim;
        for (i, date) in ["2024-07-15", "2024-07-16", "2024-07-17"].into_iter().enumerate() {
            loop {
                let report = w.run(date).await;
                for it in report["items"].as_array().unwrap() {
                    if it["state"] == "open" {
                        w.resolve(it["key"].as_str().unwrap(), "accept").await;
                    }
                }
                // Half the lost callbacks race the first close.
                let racing = async {
                    if i == 0 {
                        futures_util::future::join_all(lost.iter().step_by(2).map(|p| sim.redeliver(&p.txn_ref))).await;
                    }
                };
                let ((s, v), ()) = tokio::join!(w.close(date), racing);
                if s == 200 {
                    counted.insert(date.to_owned(), v["totals"]["recorded_paid"].as_i64().unwrap());
                    break;
                }
                assert_eq!(error_code(&v), "stale_run", "{v}");
            }
            if i == 0 {
                for p in lost.iter().skip(1).step_by(2) {
                    w.callback(p).await;
                }
            }
            w.app.clock.advance(chrono::TimeDelta::days(1));
        }
        let total: i64 = counted.values().sum();
        assert_eq!(total, 12 * 135_000, "every payment once: {counted:?}");
        w.verifies().await;
    }
}

across! {
    /// Item 7: approving a confirm_from_settlement confirms the payment in the transaction that
    /// resolves the exception. Raced against a rejection, either the approval won (the payment is
    /// paid, the exception resolved) or the rejection did (the payment still pending, nothing
    /// posted): never money moved on an open exception.
    async fn a_confirmation_approval_is_atomic_with_its_exception(w) {
        w.at("2024-07-15T10:00:00+07:00");
        let f3 = w.app.token_for(Role::Finance).await;
        let mut ps = Vec::new();
        for _ in 0..8 {
            ps.push(w.pay("2024-07-15", true).await);
        }
        let lines: Vec<(&Paid, i64, LineStatus, &str)> = ps.iter().map(|p| (p, p.amount, LineStatus::Success, "2024-07-15T10:05:00+07:00")).collect();
        w.import(&lines).await;
        w.at("2024-07-15T20:00:00+07:00");
        w.run("2024-07-15").await;
        for p in &ps {
            let (s, v) = w.act(&w.f1, &line_key(p), "resolve", json!({"action": "confirm_from_settlement", "note": "t"})).await;
            assert_eq!(s, 200, "{v}");
        }
        let races = ps.iter().map(|p| {
            let key = line_key(p);
            let (w, f3) = (&w, &f3);
            async move {
                tokio::join!(w.act(&w.f2, &key, "approve", json!({})), w.act(f3, &key, "reject", json!({"note": "no"})))
            }
        });
        futures_util::future::join_all(races).await;
        for p in &ps {
            let e = w.exception(&line_key(p)).await;
            let paid = w.app.payment(&w.portal, &p.id).await;
            let confirmations = w.app.store.ledger_entries(0, 10_000).await.unwrap().into_iter()
                .filter(|x| x.kind == "payment_confirmed" && x.refs.contains(&p.id)).count();
            match e.state.as_str() {
                "resolved" => assert_eq!((paid["status"].as_str(), confirmations > 0), (Some("paid"), true)),
                "open" => assert_eq!((paid["status"].as_str(), confirmations), (Some("pending"), 0), "a rejected approval moved money"),
                other => panic!("{other}"),
            }
        }
        w.verifies().await;
    }
}

across! {
    /// Item 9: a run reads the events that can fall on its date and their counterparts, not the
    /// history: the rows it loads do not grow with the number of closed dates before it.
    async fn a_run_reads_what_can_fall_on_its_date_not_the_history(w) {
        let mut loaded = Vec::new();
        for day in 15..=19 {
            let date = format!("2024-07-{day}");
            w.at(&format!("{date}T10:00:00+07:00"));
            let a = w.pay(&date, false).await;
            let b = w.pay(&date, false).await;
            w.import(&[(&a, a.amount, LineStatus::Success, &format!("{date}T10:05:00+07:00")), (&b, b.amount, LineStatus::Success, &format!("{date}T10:06:00+07:00"))]).await;
            w.at(&format!("2024-07-{}T01:00:00+07:00", day + 1));
            let d = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").unwrap();
            let data = w.app.store.recon_data(Gateway::Vnpay, d).await.unwrap();
            loaded.push(data.payments().count() + data.lines().count());
            w.run(&date).await;
            assert_eq!(w.close(&date).await.0, 200);
        }
        assert!(loaded.iter().all(|n| *n == 4), "two payments and two lines each day, whatever came before: {loaded:?}");
    }
}

across! {
    /// Issue 23 (the day after closed days): a payment matched and closed on the 15th, then a
    /// refund line and a second charge for it in the 16th's file. The 16th still reads the 15th's
    /// payment for both: a homed payment's late line can come any time after its close, so the
    /// run finds that payment from the lines whose payment it did not read otherwise, not from a
    /// set its close recorded. The refund names it; the second charge is a duplicate payment,
    /// not a line missing in records.
    async fn late_lines_of_a_matched_closed_payment_still_find_it(w) {
        w.at("2024-07-15T10:00:00+07:00");
        let p = w.pay("2024-07-15", false).await;
        w.import(&[(&p, p.amount, LineStatus::Success, "2024-07-15T10:05:00+07:00")]).await;
        w.at("2024-07-16T01:00:00+07:00");
        let r15 = w.run("2024-07-15").await;
        assert!(r15["items"].as_array().unwrap().is_empty(), "{r15}");
        assert_eq!(w.close("2024-07-15").await.0, 200);
        let second = Paid { no: format!("{}9", p.no), ..p.clone() };
        w.import(&[
            (&p, p.amount, LineStatus::Refund, "2024-07-16T09:00:00+07:00"),
            (&second, p.amount, LineStatus::Success, "2024-07-16T09:05:00+07:00"),
        ])
        .await;
        w.at("2024-07-17T01:00:00+07:00");
        let r16 = w.run("2024-07-16").await;
        let refund = item(&r16, &format!("vnpay:{}:refund", p.no));
        assert_eq!(
            (refund["category"].as_str(), refund["payment_id"].as_str(), refund["counterpart_date"].as_str()),
            (Some("refund"), Some(p.id.as_str()), Some("2024-07-15")),
            "{refund}"
        );
        let charge = item(&r16, &line_key(&second));
        assert_eq!(
            (charge["category"].as_str(), charge["payment_id"].as_str(), charge["counterpart_date"].as_str()),
            (Some("duplicate_payment"), Some(p.id.as_str()), Some("2024-07-15")),
            "{charge}"
        );
    }
}

across! {
    /// Issue 23: the lines a close homes without their payment are what later runs join (the
    /// set of migration 0015). The 15th closes a line whose payment is still pending and another
    /// whose payment it counts; the 16th closes a third line whose callback is lost too. When
    /// both callbacks come on the 17th, the 17th reads both closed lines and no other: each
    /// payment is matched against its own closed line, named by its date.
    async fn closed_lines_without_their_payment_are_read_by_later_runs(w) {
        w.at("2024-07-15T10:00:00+07:00");
        let lost15 = w.pay("2024-07-15", true).await;
        let paid15 = w.pay("2024-07-15", false).await;
        w.import(&[
            (&lost15, lost15.amount, LineStatus::Success, "2024-07-15T10:05:00+07:00"),
            (&paid15, paid15.amount, LineStatus::Success, "2024-07-15T10:06:00+07:00"),
        ])
        .await;
        w.at("2024-07-16T10:00:00+07:00");
        let lost16 = w.pay("2024-07-16", true).await;
        w.import(&[(&lost16, lost16.amount, LineStatus::Success, "2024-07-16T10:05:00+07:00")]).await;
        w.at("2024-07-17T01:00:00+07:00");
        for (date, lost) in [("2024-07-15", &lost15), ("2024-07-16", &lost16)] {
            let r = w.run(date).await;
            assert_eq!(item(&r, &line_key(lost))["category"], "unconfirmed_in_records", "{r}");
            w.resolve(&line_key(lost), "write_off").await;
            let (s, v) = w.close(date).await;
            assert_eq!(s, 200, "{v}");
        }
        w.callback(&lost15).await;
        w.callback(&lost16).await;
        let d = chrono::NaiveDate::from_ymd_opt(2024, 7, 17).unwrap();
        let data = w.app.store.recon_data(Gateway::Vnpay, d).await.unwrap();
        let mut refs: Vec<String> = data.lines().map(|l| l.unwrap().txn_ref.to_owned()).collect();
        refs.sort();
        let mut want = vec![lost15.txn_ref.clone(), lost16.txn_ref.clone()];
        want.sort();
        assert_eq!(refs, want, "the two closed lines whose payments were pending, not the matched one");
        w.at("2024-07-18T01:00:00+07:00");
        w.run("2024-07-17").await;
        for (lost, date) in [(&lost15, "2024-07-15"), (&lost16, "2024-07-16")] {
            let i = w.matched("2024-07-17", &payment_key(lost)).await;
            assert_eq!((i["category"].as_str(), i["counterpart_date"].as_str()), (Some("matched"), Some(date)), "{i}");
        }
    }
}

across! {
    /// Migration 0015's backfill, on a database whose dates were closed before it: the set it
    /// derives from the closes' home dates is the set those closes record, and a later run reads
    /// through it as through the recorded one.
    async fn the_backfill_of_closed_lines_equals_what_the_closes_recorded(w) {
        w.at("2024-07-15T10:00:00+07:00");
        let lost = w.pay("2024-07-15", true).await;
        let paid = w.pay("2024-07-15", false).await;
        w.import(&[
            (&lost, lost.amount, LineStatus::Success, "2024-07-15T10:05:00+07:00"),
            (&paid, paid.amount, LineStatus::Success, "2024-07-15T10:06:00+07:00"),
        ])
        .await;
        w.at("2024-07-16T01:00:00+07:00");
        w.run("2024-07-15").await;
        w.resolve(&line_key(&lost), "write_off").await;
        let (s, v) = w.close("2024-07-15").await;
        assert_eq!(s, 200, "{v}");
        let url = w.app.database_url.clone();
        let recorded = homed_alone(&url).await;
        assert_eq!(recorded.iter().map(|r| r.3.as_str()).collect::<Vec<_>>(), [lost.txn_ref.as_str()], "{recorded:?}");
        // The database as migration 14 left it, holding the same closed date; then migrated again.
        for q in ["DROP TABLE lines_homed_alone", "DELETE FROM _sqlx_migrations WHERE version = 15"] {
            crate::helpers::raw_sql(&url, q).await.unwrap();
        }
        w.app.store.migrate().await.unwrap();
        assert_eq!(homed_alone(&url).await, recorded, "the backfill");
        w.callback(&lost).await;
        w.at("2024-07-17T01:00:00+07:00");
        w.run("2024-07-16").await;
        let i = w.matched("2024-07-16", &payment_key(&lost)).await;
        assert_eq!((i["category"].as_str(), i["counterpart_date"].as_str()), (Some("matched"), Some("2024-07-15")), "{i}");
    }
}

/// `lines_homed_alone` as text, in key order.
async fn homed_alone(url: &str) -> Vec<(String, i64, i64, String, String)> {
    use sqlx::Connection as _;
    let sql = "SELECT CAST(gateway AS TEXT), file_seq, line_no, txn_ref, CAST(home_date AS TEXT) FROM lines_homed_alone
               ORDER BY 1, 2, 3";
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
    }
}

across! {
    /// A checkpoint's cumulative totals are summed from the newest checkpoint before it and the
    /// entries since (a close sums one day's entries, not the history): they are still, for every
    /// checkpoint, the sums of every entry through its `last_seq`, and the chain verifies.
    async fn each_checkpoint_s_totals_are_the_sums_of_every_entry_through_it(w) {
        for (day, next) in [("2024-07-15", "2024-07-16"), ("2024-07-16", "2024-07-17"), ("2024-07-17", "2024-07-18")] {
            w.at(&format!("{day}T10:00:00+07:00"));
            let a = w.pay(day, false).await;
            let lost = w.pay(day, true).await;
            w.import(&[
                (&a, a.amount, LineStatus::Success, &format!("{day}T10:05:00+07:00")),
                (&lost, lost.amount, LineStatus::Success, &format!("{day}T10:06:00+07:00")),
            ])
            .await;
            w.at(&format!("{next}T01:00:00+07:00"));
            w.run(day).await;
            w.resolve(&line_key(&lost), "write_off").await;
            let (s, v) = w.close(day).await;
            assert_eq!(s, 200, "{v}");
        }
        // A gateway closed with nothing to post: its checkpoint ends where the vnpay close's did.
        w.run_for(Gateway::Momo, "2024-07-17").await;
        let (s, v) = w.close_for(Gateway::Momo, "2024-07-17").await;
        assert_eq!(s, 200, "{v}");
        assert_checkpoint_totals(&w).await;
        let checkpoints = w.app.store.checkpoints().await.unwrap();
        let seqs: std::collections::BTreeSet<i64> = checkpoints.iter().map(|c| c.last_seq).collect();
        assert!(checkpoints.len() >= 4 && seqs.len() < checkpoints.len(), "two share a last_seq: {checkpoints:?}");
        w.verifies().await;
    }
}

/// Every stored checkpoint's totals are the sums of every entry through its `last_seq`.
async fn assert_checkpoint_totals(w: &World) {
    let entries = w.app.store.ledger_entries(0, 10_000).await.unwrap();
    let checkpoints = w.app.store.checkpoints().await.unwrap();
    assert!(checkpoints.len() >= 3, "{checkpoints:?}");
    {
        for c in &checkpoints {
            let mut want: BTreeMap<String, (i64, i64)> = BTreeMap::new();
            for e in entries.iter().filter(|e| e.seq <= c.last_seq) {
                let t = want.entry(e.account.clone()).or_default();
                t.0 += e.debit;
                t.1 += e.credit;
            }
            let stored: BTreeMap<String, (i64, i64)> = serde_json::from_str(&c.totals).unwrap();
            assert_eq!(stored, want, "the {} checkpoint of {} at seq {}", c.kind, c.business_date, c.last_seq);
        }
    }
}

across! {
    /// A stored checkpoint whose totals were changed behind the ledger's back (its signature no
    /// longer holds) is not carried into the next: that one sums the whole ledger, and is right.
    async fn a_tampered_checkpoint_s_totals_are_not_carried_forward(w) {
        for (day, next) in [("2024-07-15", "2024-07-16"), ("2024-07-16", "2024-07-17")] {
            w.at(&format!("{day}T10:00:00+07:00"));
            let a = w.pay(day, false).await;
            w.import(&[(&a, a.amount, LineStatus::Success, &format!("{day}T10:05:00+07:00"))]).await;
            w.at(&format!("{next}T01:00:00+07:00"));
            w.run(day).await;
            if day == "2024-07-16" {
                let url = w.app.database_url.clone();
                let (off, on) = if url.starts_with("sqlite:") {
                    ("DROP TRIGGER ledger_checkpoints_no_update", None)
                } else {
                    ("ALTER TABLE ledger_checkpoints DISABLE TRIGGER ledger_checkpoints_append_only",
                     Some("ALTER TABLE ledger_checkpoints ENABLE TRIGGER ledger_checkpoints_append_only"))
                };
                crate::helpers::raw_sql(&url, off).await.unwrap();
                let n = crate::helpers::raw_sql(&url, "UPDATE ledger_checkpoints SET totals = '{\"suspense\":[1,0]}'").await.unwrap();
                assert!(n >= 1);
                if let Some(on) = on {
                    crate::helpers::raw_sql(&url, on).await.unwrap();
                }
            }
            let (s, v) = w.close(day).await;
            assert_eq!(s, 200, "{v}");
        }
        let entries = w.app.store.ledger_entries(0, 10_000).await.unwrap();
        let newest = w.app.store.checkpoints().await.unwrap().into_iter().max_by_key(|c| c.last_seq).unwrap();
        let mut want: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for e in entries.iter().filter(|e| e.seq <= newest.last_seq) {
            let t = want.entry(e.account.clone()).or_default();
            t.0 += e.debit;
            t.1 += e.credit;
        }
        let stored: BTreeMap<String, (i64, i64)> = serde_json::from_str(&newest.totals).unwrap();
        assert_eq!(stored, want);
    }
}
