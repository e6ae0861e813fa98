//! Status queries (SPEC §6.2, §6.4; issue 14), against the simulator over real HTTP, on SQLite and
//! PostgreSQL: answers that are API errors change nothing and are asked again, "processing"
//! keeps a payment pending, a payment nobody can settle is left to finance instead of being
//! expired or asked forever, orders expire at the gateway with the payment, every answer is
//! labelled with how it was authenticated and linked to its payment, a payment confirmed
//! without a number takes the callback's, and VNPAY is asked from the configured address.

use std::time::Duration;

use feerecon::domain::Role;
use feerecon::simulator::{Faults, QueryFault, SimOutcome, Simulator};
use serde_json::{Value, json};

use crate::gateways::{genuine, pending_payment, reply_code, send, with_gateways};
use crate::helpers::{Db, TestApp, cc, json, spawn_gateway_app};

/// Waits (up to 20 s) until `check` holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never: {what}");
}

fn queries_about(sim: &Simulator, txn_ref: &str) -> usize {
    sim.queries().iter().filter(|q| q.txn_ref == txn_ref).count()
}

async fn evidence(app: &TestApp, finance: &str, id: &str) -> Vec<Value> {
    let (s, ev) = json(app.get(&format!("/api/v1/payments/{id}/callbacks"), finance).await).await;
    assert_eq!(s, 200, "{ev}");
    ev["items"].as_array().unwrap().clone()
}

fn event_types(events: &[feerecon::store::OutboxEvent]) -> Vec<String> {
    events.iter().map(|e| e.event_type.to_string()).collect()
}

with_gateways! {
    /// Issue 14 item 1.
    async fn answers_that_are_api_errors_change_nothing_and_are_asked_again(app, sim)
    env [("FEERECON_PENDING_QUERY_AFTER", "200ms")];
    {
        let portal = app.token_for(Role::Portal).await;
        let finance = app.token_for(Role::Finance).await;
        // (gateway, API error, the amount the error answer names)
        let cases: [(&str, &str, Option<i64>); 8] = [
            ("dvcqg", "91", None),
            ("momo", "99", None),
            ("momo", "99", Some(0)),
            ("momo", "11", None),
            ("zalopay", "-402", None),
            ("zalopay", "-101", Some(0)),
            ("vnpay", "91", None),
            ("vnpay", "99", None),
        ];
        let mut payments = Vec::new();
        for (seq, (g, code, amount)) in cases.iter().enumerate() {
            let (code_, p) = pending_payment(&app, &portal, seq as u32 + 1, g).await;
            let txn_ref = p["txn_ref"].as_str().unwrap().to_owned();
            sim.fault_queries(&txn_ref, QueryFault { api_error: Some((*code).into()), amount: *amount, ..QueryFault::default() });
            payments.push((code_, p["payment_id"].as_str().unwrap().to_owned(), txn_ref, *g, *code));
        }
        // "Processing": MoMo 7000 (the citizen confirmed, the wallet is working), ZaloPay 3.
        let (proc_case, p) = pending_payment(&app, &portal, 20, "momo").await;
        let proc_ref = p["txn_ref"].as_str().unwrap().to_owned();
        sim.pay(&proc_ref, SimOutcome::Pending, &Faults { lost: true, ..Faults::default() }).await.unwrap();
        let (zp_case, p) = pending_payment(&app, &portal, 21, "zalopay").await;
        let zp_ref = p["txn_ref"].as_str().unwrap().to_owned();
        // Each is asked again (with backoff): at least three times.
        for (_, _, txn_ref, _, _) in &payments {
            eventually("asked three times", || async { queries_about(&sim, txn_ref) >= 3 }).await;
        }
        eventually("processing asked three times", || async { queries_about(&sim, &proc_ref) >= 3 && queries_about(&sim, &zp_ref) >= 3 }).await;
        for (case, id, _, g, code) in &payments {
            let p = app.payment(&portal, id).await;
            assert_eq!((p["status"].as_str(), p["flags"].clone()), (Some("pending"), json!([])), "{g} {code}: {p}");
            assert!(app.store.case_events(&cc(case)).await.unwrap().is_empty(), "{g} {code}: no portal event");
            // Kept as evidence, linked to the payment, saying what it was.
            let rows = evidence(&app, &finance, id).await;
            assert!(rows.len() >= 3, "{g} {code}: {rows:?}");
            for r in &rows {
                assert_eq!((r["source"].as_str(), r["result"].as_str(), r["payment_id"].as_str()), (Some("status_query"), Some("not_an_outcome"), Some(id.as_str())), "{g} {code}: {r}");
                assert!(r["detail"].as_str().unwrap().contains(code), "{r}");
            }
        }
        for (case, txn_ref) in [(&proc_case, &proc_ref), (&zp_case, &zp_ref)] {
            let p = app.store.payment_by_txn_ref(txn_ref).await.unwrap().unwrap();
            assert_eq!(p.status.as_str(), "pending");
            assert!(p.flags.is_empty());
            assert!(app.store.case_events(&cc(case)).await.unwrap().is_empty());
            let rows = evidence(&app, &finance, &p.payment_id).await;
            assert!(rows.iter().all(|r| r["result"] == "applied" && r["outcome"] == "pending"), "{rows:?}");
        }
        // Once the gateway answers again, the status it states is applied: paid, once.
        let (case, id, txn_ref, _, _) = &payments[0];
        sim.heal_queries(txn_ref);
        sim.pay(txn_ref, SimOutcome::Success, &Faults { lost: true, ..Faults::default() }).await.unwrap();
        app.wait_for_status(&portal, id, "paid").await;
        assert_eq!(event_types(&app.store.case_events(&cc(case)).await.unwrap()), ["payment.succeeded"]);
    }
}

with_gateways! {
    /// Issue 14 item 3, and item 2 for a gateway disabled since.
    async fn a_payment_nobody_can_settle_is_left_to_finance_and_no_longer_asked(app, sim)
    env [("FEERECON_PENDING_QUERY_AFTER", "200ms"), ("FEERECON_PAYMENT_TTL", "1s")];
    {
        let portal = app.token_for(Role::Portal).await;
        let finance = app.token_for(Role::Finance).await;
        // Answers that are all errors; a success for another amount; answers that do not verify.
        let (err_case, err) = pending_payment(&app, &portal, 1, "momo").await;
        sim.fault_queries(err["txn_ref"].as_str().unwrap(), QueryFault { api_error: Some("99".into()), ..QueryFault::default() });
        let (_, short) = pending_payment(&app, &portal, 2, "zalopay").await;
        let short_ref = short["txn_ref"].as_str().unwrap();
        sim.pay(short_ref, SimOutcome::Success, &Faults { lost: true, ..Faults::default() }).await.unwrap();
        sim.fault_queries(short_ref, QueryFault { amount: Some(1_000), ..QueryFault::default() });
        let (_, forged) = pending_payment(&app, &portal, 3, "vnpay").await;
        sim.fault_queries(forged["txn_ref"].as_str().unwrap(), QueryFault { forged: true, ..QueryFault::default() });
        let ids: Vec<&str> = [&err, &short, &forged].iter().map(|p| p["payment_id"].as_str().unwrap()).collect();
        for id in &ids {
            eventually("flagged unresolved_pending", || async {
                app.payment(&portal, id).await["flags"].as_array().unwrap().iter().any(|f| f == "unresolved_pending")
            }).await;
        }
        // Never expired: still pending, no portal event, asked exactly the bounded number of times.
        for (id, p) in ids.iter().zip([&err, &short, &forged]) {
            let v = app.payment(&portal, id).await;
            assert_eq!(v["status"], "pending", "{v}");
            let txn_ref = p["txn_ref"].as_str().unwrap();
            assert_eq!(queries_about(&sim, txn_ref), feerecon::domain::payment::QUERY_LIMIT as usize, "{txn_ref}");
        }
        assert!(app.store.case_events(&cc(&err_case)).await.unwrap().is_empty());
        let short_flags = app.payment(&portal, ids[1]).await["flags"].clone();
        assert_eq!(short_flags, json!(["callback_amount_mismatch", "unresolved_pending"]));
        let forged_rows = evidence(&app, &finance, ids[2]).await;
        assert!(forged_rows.iter().all(|r| r["result"] == "bad_signature" && r["authenticated_by"] == "none"), "{forged_rows:?}");
        // Queries stopped: longer than the longest interval (8 × 200 ms) passes with no new one.
        let asked = sim.queries().len();
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        assert_eq!(sim.queries().len(), asked, "queries stop once a payment is left to finance");
        // Finance finds them by the flag.
        let (_, list) = json(app.get("/api/v1/payments?flag=unresolved_pending", &finance).await).await;
        let mut listed: Vec<&str> = list["items"].as_array().unwrap().iter().map(|p| p["payment_id"].as_str().unwrap()).collect();
        listed.sort_unstable();
        let mut want = ids.clone();
        want.sort_unstable();
        assert_eq!(listed, want);
        // A genuine callback still settles one: paid, and the flag lifted.
        let err_ref = err["txn_ref"].as_str().unwrap();
        let (method, payload) = genuine("momo", err_ref, 135_000, None);
        let (status, _) = send(&app.client, &app.address, "momo", &method, &payload).await;
        assert_eq!(status, 204);
        let v = app.payment(&portal, ids[0]).await;
        assert_eq!((v["status"].as_str(), v["flags"].clone()), (Some("paid"), json!([])), "{v}");

        // A payment of a gateway disabled since: a server on the same database without MoMo.
        let (_, left) = pending_payment(&app, &portal, 4, "momo").await;
        let left_id = left["payment_id"].as_str().unwrap().to_owned();
        let left_ref = left["txn_ref"].as_str().unwrap().to_owned();
        let vnpay_only: Vec<(&str, &str)> = crate::helpers::GATEWAY_ENV
            .iter()
            .copied()
            .filter(|(k, _)| k.starts_with("FEERECON_VNPAY"))
            .chain([("FEERECON_PENDING_QUERY_AFTER", "200ms"), ("FEERECON_PAYMENT_TTL", "1s")])
            .collect();
        let db = app.db;
        let url = app.database_url.clone();
        let clock = app.clock.clone();
        let dir = app.stop().await;
        let asked_before = queries_about(&sim, &left_ref);
        let app = crate::helpers::spawn_app_on(db, url, dir, &vnpay_only, clock).await;
        eventually("a disabled gateway's payment is left to finance", || async {
            app.payment(&portal, &left_id).await["flags"] == json!(["unresolved_pending"])
        }).await;
        assert_eq!(app.payment(&portal, &left_id).await["status"], "pending");
        assert_eq!(queries_about(&sim, &left_ref), asked_before, "nobody could ask MoMo");
        // Its callback still arrives: kept, answered in MoMo's format, visible with the payment.
        let (method, payload) = genuine("momo", &left_ref, 135_000, None);
        let (status, body) = send(&app.client, &app.address, "momo", &method, &payload).await;
        assert_eq!((status, body.as_str()), (500, ""), "MoMo's retry reply, not the JSON envelope");
        let rows = evidence(&app, &finance, &left_id).await;
        let cb = rows.iter().find(|r| r["source"] == "callback").expect("the callback is kept");
        assert_eq!((cb["result"].as_str(), cb["authenticated_by"].as_str()), (Some("failure"), Some("none")), "{cb}");
        assert!(cb["detail"].as_str().unwrap().contains("not enabled"), "{cb}");
        assert_eq!(app.payment(&portal, &left_id).await["status"], "pending");
    }
}

with_gateways! {
    /// Issue 14 item 4.
    async fn orders_expire_at_the_gateway_with_the_payment(app, sim)
    env [("FEERECON_PENDING_QUERY_AFTER", "200ms"), ("FEERECON_PAYMENT_TTL", "1s")];
    {
        let portal = app.token_for(Role::Portal).await;
        let mut p = std::collections::BTreeMap::new();
        for (seq, g) in [(1, "vnpay"), (2, "momo"), (3, "zalopay"), (4, "momo"), (5, "zalopay")] {
            let (code, v) = pending_payment(&app, &portal, seq, g).await;
            app.wait_for_status(&portal, v["payment_id"].as_str().unwrap(), "expired").await;
            p.insert(seq, (code, v));
        }
        let r = |seq: u32| p[&seq].1["txn_ref"].as_str().unwrap().to_owned();
        let id = |seq: u32| p[&seq].1["payment_id"].as_str().unwrap().to_owned();
        // The gateways were told: VNPAY's URL expires with the payment; MoMo in whole minutes;
        // ZaloPay no sooner than 300 s.
        let known = sim.transactions();
        let expiry = |seq: u32| known.iter().find(|t| t.txn_ref == r(seq)).unwrap().expires_at.expect("an expiry was sent");
        let mut created = std::collections::BTreeMap::new();
        for seq in 1..=3 {
            created.insert(seq, app.store.get_payment(&id(seq)).await.unwrap().unwrap().created_at);
        }
        assert!((expiry(1) - created[&1]).num_milliseconds() <= 1_000, "vnp_ExpireDate, to the second");
        assert!((expiry(2) - created[&2]).num_seconds() <= 61);
        assert!((expiry(3) - created[&3]).num_seconds() >= 299);
        // VNPAY: the citizen cannot pay an expired payment.
        assert!(sim.pay(&r(1), SimOutcome::Success, &Faults::default()).await.is_err());
        // MoMo and ZaloPay still take it within their window: paid, flagged late.
        for seq in [2, 3] {
            let d = sim.pay(&r(seq), SimOutcome::Success, &Faults::default()).await.unwrap();
            assert!(["204", "1"].contains(&reply_code(&d[0]).as_str()), "{d:?}");
            let v = app.payment(&portal, &id(seq)).await;
            assert_eq!((v["status"].as_str(), v["flags"].clone()), (Some("paid"), json!(["late_success"])), "{v}");
            assert_eq!(event_types(&app.store.case_events(&cc(&p[&seq].0)).await.unwrap()), ["payment.expired", "payment.succeeded"]);
        }
        // After their window, not any more.
        app.clock.advance(chrono::TimeDelta::minutes(2));
        assert!(sim.pay(&r(4), SimOutcome::Success, &Faults::default()).await.is_err(), "MoMo's order expired");
        assert!(sim.pay(&r(5), SimOutcome::Success, &Faults::default()).await.is_ok(), "ZaloPay's lasts 300 s");
        app.clock.advance(chrono::TimeDelta::minutes(10));
        let (_, late) = pending_payment(&app, &portal, 6, "zalopay").await;
        app.wait_for_status(&portal, late["payment_id"].as_str().unwrap(), "expired").await;
        app.clock.advance(chrono::TimeDelta::minutes(6));
        assert!(sim.pay(late["txn_ref"].as_str().unwrap(), SimOutcome::Success, &Faults::default()).await.is_err());
    }
}

with_gateways! {
    /// Issue 14 items 5 and 6.
    async fn answers_are_labelled_linked_and_a_missing_number_is_no_conflict(app, sim)
    env [("FEERECON_PENDING_QUERY_AFTER", "200ms"), ("FEERECON_PAYMENT_TTL", "2s")];
    {
        let portal = app.token_for(Role::Portal).await;
        let finance = app.token_for(Role::Finance).await;
        // Lost callbacks, recovered by status answers that give no transaction number.
        for (seq, g, signed) in [(1, "vnpay", true), (2, "momo", false), (3, "zalopay", false)] {
            let (code, p) = pending_payment(&app, &portal, seq, g).await;
            let id = p["payment_id"].as_str().unwrap();
            let txn_ref = p["txn_ref"].as_str().unwrap();
            sim.fault_queries(txn_ref, QueryFault { unnumbered: true, ..QueryFault::default() });
            sim.pay(txn_ref, SimOutcome::Success, &Faults { lost: true, ..Faults::default() }).await.unwrap();
            let paid = app.wait_for_status(&portal, id, "paid").await;
            assert_eq!(paid["gateway_txn_no"], Value::Null, "{g}: the answer gave none");
            let rows = evidence(&app, &finance, id).await;
            let answer = rows.iter().find(|r| r["source"] == "status_query" && r["result"] == "applied" && r["outcome"] == "success").unwrap();
            assert_eq!(answer["payment_id"], id, "{g}: the confirming answer is linked");
            // VNPAY signs its answers; MoMo and ZaloPay do not (over the simulator's plain HTTP:
            // authenticated by nothing but the request we made).
            let (auth, valid, key) = if signed { ("signature_current", true, json!("current")) } else { ("none", false, Value::Null) };
            assert_eq!((answer["authenticated_by"].as_str(), answer["signature_valid"].as_bool(), answer["key_used"].clone()), (Some(auth), Some(valid), key), "{g}: {answer}");
            // The callback arrives at last, with the gateway's number: recorded, no conflict.
            let d = sim.redeliver(txn_ref).await.unwrap();
            assert!(["00", "204", "1"].contains(&reply_code(&d[0]).as_str()), "{g}: {d:?}");
            let v = app.payment(&portal, id).await;
            assert_eq!(v["flags"], json!([]), "{g}: {v}");
            assert!(v["gateway_txn_no"].as_str().is_some_and(|n| !n.is_empty() && n != "0"), "{g}: {v}");
            let again = sim.redeliver(txn_ref).await.unwrap();
            assert!(["02", "204", "2"].contains(&reply_code(&again[0]).as_str()), "{g}: {again:?}");
            assert_eq!(event_types(&app.store.case_events(&cc(&code)).await.unwrap()), ["payment.succeeded"]);
        }
        // Status answers that expired a payment are linked to it, saying so.
        for (seq, g) in [(4, "vnpay"), (5, "zalopay")] {
            let (_, p) = pending_payment(&app, &portal, seq, g).await;
            let id = p["payment_id"].as_str().unwrap();
            app.wait_for_status(&portal, id, "expired").await;
            let rows = evidence(&app, &finance, id).await;
            let last = rows.iter().rev().find(|r| r["source"] == "status_query").unwrap();
            assert_eq!(last["payment_id"], id, "{g}: {last}");
            assert!(last["detail"].as_str().unwrap().contains("expired"), "{g}: {last}");
        }
    }
}

with_gateways! {
    /// Issue 14 item 9: `vnp_IpAddr` is the server's configured address.
    async fn vnpay_is_asked_from_the_configured_address(app, sim)
    env [("FEERECON_PENDING_QUERY_AFTER", "200ms"), ("FEERECON_VNPAY_SERVER_IP", "203.0.113.10")];
    {
        let portal = app.token_for(Role::Portal).await;
        let (_, p) = pending_payment(&app, &portal, 1, "vnpay").await;
        let txn_ref = p["txn_ref"].as_str().unwrap().to_owned();
        eventually("asked", || async { queries_about(&sim, &txn_ref) >= 1 }).await;
        let q = sim.queries().into_iter().find(|q| q.txn_ref == txn_ref).unwrap();
        assert_eq!(q.request["vnp_IpAddr"], "203.0.113.10");
    }
}
