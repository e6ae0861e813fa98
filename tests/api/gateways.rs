//! Payments against the gateway simulator, over real HTTP, on SQLite and PostgreSQL: creation,
//! callbacks with faults, status queries, expiry, and the evidence.

use feerecon::domain::Role;
use feerecon::simulator::{Faults, SimOutcome, Simulator};
use serde_json::Value;

pub(crate) use crate::forge::{genuine, send};
use crate::helpers::{Db, TestApp, cc, error_code, json, spawn_gateway_app};

/// Runs a body against a server with the three gateways and a simulator, on both databases.
macro_rules! with_gateways {
    ($(#[$m:meta])* async fn $name:ident($app:ident, $sim:ident) $(env $env:expr;)? $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn body($app: TestApp, $sim: Simulator) $body
            #[allow(unused_variables)]
            fn env() -> Vec<(&'static str, &'static str)> {
                #[allow(unused_mut)]
                let mut e: Vec<(&'static str, &'static str)> = vec![];
                $(e.extend_from_slice(&$env);)?
                e
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (app, sim) = spawn_gateway_app(Db::Sqlite, &env()).await.unwrap();
                body(app, sim).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some((app, sim)) = spawn_gateway_app(Db::Postgres, &env()).await {
                    body(app, sim).await;
                }
            }
        }
    };
}

pub(crate) use with_gateways;

/// A driving-licence exchange filed at the counter on 2024-07-15: 135,000 đ, no reduction.
pub(crate) const GPLX: &str = "1.002804";

pub(crate) async fn pending_payment(app: &TestApp, portal: &str, seq: u32, gateway: &str) -> (String, Value) {
    let code = app.new_case(portal, seq, GPLX, "counter", "2024-07-15").await;
    // The citizen opens the page at once: the clock stands still meanwhile, so a one-second TTL
    // (whose `vnp_ExpireDate` is cut to the second) cannot run out on a loaded machine.
    let held = app.clock.hold();
    let (status, p) = app.create_payment(portal, &code, gateway, &format!("key-{seq}")).await;
    assert_eq!(status, 201, "{p}");
    open_pay_page(&p).await;
    drop(held);
    (code, p)
}

/// The citizen follows `pay_url`. VNPAY learns of a payment only then (its URL is a redirect).
pub(crate) async fn open_pay_page(p: &Value) {
    let page = reqwest::get(p["pay_url"].as_str().unwrap()).await.unwrap();
    assert_eq!(page.status(), 200);
}

pub(crate) fn reply_code(d: &feerecon::simulator::Delivery) -> String {
    match serde_json::from_str::<Value>(&d.body) {
        Ok(v) if v.get("RspCode").is_some() => v["RspCode"].as_str().unwrap().to_owned(),
        Ok(v) if v.get("return_code").is_some() => v["return_code"].to_string(),
        _ => d.status.to_string(),
    }
}

with_gateways! {
    async fn each_gateway_pays_end_to_end(app, sim) {
        let portal = app.token_for(Role::Portal).await;
        let finance = app.token_for(Role::Finance).await;
        for (i, (gateway, applied)) in [("vnpay", "00"), ("momo", "204"), ("zalopay", "1")].into_iter().enumerate() {
            let (code, p) = pending_payment(&app, &portal, i as u32 + 1, gateway).await;
            assert_eq!((p["status"].as_str(), p["amount"].as_i64(), p["gateway"].as_str()), (Some("pending"), Some(135_000), Some(gateway)));
            let txn_ref = p["txn_ref"].as_str().unwrap();
            match gateway {
                "vnpay" => assert!(txn_ref.len() == 16 && txn_ref.bytes().all(|b| b.is_ascii_alphanumeric()), "{txn_ref}"),
                "momo" => assert!(txn_ref.starts_with("FR"), "{txn_ref}"),
                _ => assert_eq!(&txn_ref[6..7], "_", "{txn_ref}"),
            }
            let pay_url = p["pay_url"].as_str().unwrap();
            assert!(pay_url.starts_with(&sim.url()), "{pay_url}");
            if gateway == "vnpay" {
                // The simulated VNPAY checked the URL's signature when the citizen opened it.
                assert!(pay_url.contains("vnp_Amount=13500000"), "{pay_url}");
            }
            let deliveries = sim.pay(txn_ref, SimOutcome::Success, &Faults::default()).await.unwrap();
            assert_eq!(deliveries.iter().map(reply_code).collect::<Vec<_>>(), vec![applied.to_owned()], "{gateway}");
            let paid = app.payment(&portal, p["payment_id"].as_str().unwrap()).await;
            assert_eq!(paid["status"], "paid", "{gateway}: {paid}");
            assert!(paid["gateway_txn_no"].as_str().is_some_and(|n| !n.is_empty()));
            assert!(paid["paid_at"].as_str().unwrap().ends_with("+07:00"));
            // The evidence: the raw callback, verified with the current key.
            let (_, ev) = json(app.get(&format!("/api/v1/payments/{}/callbacks", p["payment_id"].as_str().unwrap()), &finance).await).await;
            let items = ev["items"].as_array().unwrap();
            assert_eq!(items.len(), 1, "{ev}");
            assert_eq!((items[0]["signature_valid"].as_bool(), items[0]["key_used"].as_str(), items[0]["result"].as_str()), (Some(true), Some("current"), Some("applied")));
            // The portal event was written with the change.
            let events = app.store.case_events(&cc(&code)).await.unwrap();
            assert_eq!(events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(), ["payment.succeeded"]);
            // The return page reads the status and changes nothing.
            let page = app.client.get(app.url(&format!("/gateway/{gateway}/return?{}={txn_ref}", match gateway { "vnpay" => "vnp_TxnRef", "momo" => "orderId", _ => "apptransid" }))).send().await.unwrap();
            assert!(page.text().await.unwrap().contains(r#"data-status="paid""#));
        }
        // Each payment is posted: clearing debited 135,000, revenue credited.
        let entries = app.store.ledger_entries(0, 100).await.unwrap();
        for g in ["vnpay", "momo", "zalopay"] {
            let debit: i64 = entries.iter().filter(|e| e.account == format!("gateway_clearing:{g}")).map(|e| e.debit).sum();
            assert_eq!(debit, 135_000, "{g}");
        }
        let revenue: i64 = entries.iter().filter(|e| e.account == "revenue:le_phi").map(|e| e.credit).sum();
        assert_eq!(revenue, 3 * 135_000);
        for w in entries.windows(2) {
            assert_eq!(w[1].prev_hash, w[0].hash);
            assert_eq!(w[1].seq, w[0].seq + 1);
        }
        assert!(entries.iter().any(|e| e.refs.contains("raw_sha256=")));
    }
}

with_gateways! {
    async fn fifty_concurrent_deliveries_have_one_effect(app, sim) {
        let portal = app.token_for(Role::Portal).await;
        let (code, p) = pending_payment(&app, &portal, 1, "vnpay").await;
        let faults = Faults { duplicates: 49, concurrent: true, ..Faults::default() };
        let d = sim.pay(p["txn_ref"].as_str().unwrap(), SimOutcome::Success, &faults).await.unwrap();
        let codes: Vec<String> = d.iter().map(reply_code).collect();
        assert_eq!(codes.len(), 50);
        assert_eq!(codes.iter().filter(|c| *c == "00").count(), 1, "{codes:?}");
        assert_eq!(codes.iter().filter(|c| *c == "02").count(), 49, "{codes:?}");
        assert_eq!(app.store.case_events(&cc(&code)).await.unwrap().len(), 1);
        let postings: std::collections::BTreeSet<String> = app.store.ledger_entries(0, 1000).await.unwrap().into_iter().map(|e| e.posting_id).collect();
        assert_eq!(postings.len(), 1);
        // MoMo and ZaloPay too, one after another this time.
        for (seq, g) in [(2, "momo"), (3, "zalopay")] {
            let (code, p) = pending_payment(&app, &portal, seq, g).await;
            let d = sim.pay(p["txn_ref"].as_str().unwrap(), SimOutcome::Success, &Faults { duplicates: 4, ..Faults::default() }).await.unwrap();
            let codes: Vec<String> = d.iter().map(reply_code).collect();
            let (first, again) = if g == "momo" { ("204", "204") } else { ("1", "2") };
            assert_eq!(codes[0], first);
            assert!(codes[1..].iter().all(|c| c == again), "{codes:?}");
            assert_eq!(app.store.case_events(&cc(&code)).await.unwrap().len(), 1);
        }
    }
}

with_gateways! {
    async fn forged_and_wrong_amount_callbacks_change_nothing_but_are_kept(app, sim) {
        let portal = app.token_for(Role::Portal).await;
        let finance = app.token_for(Role::Finance).await;
        let (code, p) = pending_payment(&app, &portal, 1, "vnpay").await;
        let id = p["payment_id"].as_str().unwrap();
        let txn_ref = p["txn_ref"].as_str().unwrap();
        let d = sim.pay(txn_ref, SimOutcome::Success, &Faults { forged: true, ..Faults::default() }).await.unwrap();
        assert_eq!(reply_code(&d[0]), "97");
        let d = sim.pay(txn_ref, SimOutcome::Success, &Faults { wrong_amount_by: 1000, ..Faults::default() }).await.unwrap();
        assert_eq!(reply_code(&d[0]), "04");
        let p = app.payment(&portal, id).await;
        assert_eq!(p["status"], "pending");
        assert_eq!(p["flags"], serde_json::json!(["callback_amount_mismatch"]));
        assert!(app.store.case_events(&cc(&code)).await.unwrap().is_empty());
        assert!(app.store.ledger_entries(0, 10).await.unwrap().is_empty());
        let (_, ev) = json(app.get(&format!("/api/v1/payments/{id}/callbacks"), &finance).await).await;
        let results: Vec<(&str, bool)> = ev["items"].as_array().unwrap().iter().map(|c| (c["result"].as_str().unwrap(), c["signature_valid"].as_bool().unwrap())).collect();
        assert_eq!(results, [("bad_signature", false), ("invalid_amount", true)]);
        // Flagged payments are listed for finance.
        let (_, list) = json(app.get("/api/v1/payments?flag=callback_amount_mismatch", &finance).await).await;
        assert_eq!(list["items"][0]["payment_id"], id);
        // The right callback still pays it.
        let d = sim.pay(txn_ref, SimOutcome::Success, &Faults::default()).await.unwrap();
        assert_eq!(reply_code(&d[0]), "00");
        assert_eq!(app.payment(&portal, id).await["status"], "paid");
    }
}

with_gateways! {
    async fn late_success_after_failure_and_reordered_reports(app, sim) {
        let portal = app.token_for(Role::Portal).await;
        let (code, p) = pending_payment(&app, &portal, 1, "momo").await;
        let id = p["payment_id"].as_str().unwrap();
        let txn_ref = p["txn_ref"].as_str().unwrap();
        let d = sim.pay(txn_ref, SimOutcome::Failure, &Faults::default()).await.unwrap();
        assert_eq!(reply_code(&d[0]), "204");
        assert_eq!(app.payment(&portal, id).await["status"], "failed");
        // The citizen retries at the gateway and the money is taken: paid, flagged late.
        let d = sim.pay(txn_ref, SimOutcome::Success, &Faults { reorder: true, ..Faults::default() }).await.unwrap();
        assert_eq!(d.len(), 2, "the success, then a stale 'pending' report");
        let p = app.payment(&portal, id).await;
        assert_eq!((p["status"].as_str(), p["flags"].clone()), (Some("paid"), serde_json::json!(["late_success"])));
        // A failure after paid changes nothing.
        let d = sim.pay(txn_ref, SimOutcome::Failure, &Faults::default()).await.unwrap();
        assert_eq!(reply_code(&d[0]), "204");
        assert_eq!(app.payment(&portal, id).await["status"], "paid");
        let types: Vec<String> = app.store.case_events(&cc(&code)).await.unwrap().into_iter().map(|e| e.event_type.to_string()).collect();
        assert_eq!(types, ["payment.failed", "payment.succeeded"]);
    }
}

with_gateways! {
    async fn a_second_success_for_a_paid_case_is_a_flagged_duplicate(app, sim) {
        let portal = app.token_for(Role::Portal).await;
        let code = app.new_case(&portal, 1, GPLX, "counter", "2024-07-15").await;
        let (_, a) = app.create_payment(&portal, &code, "vnpay", "first").await;
        let (_, b) = app.create_payment(&portal, &code, "zalopay", "second").await;
        assert_eq!(b["status"], "pending", "a retrying citizen may hold two pending payments");
        open_pay_page(&a).await;
        open_pay_page(&b).await;
        sim.pay(a["txn_ref"].as_str().unwrap(), SimOutcome::Success, &Faults::default()).await.unwrap();
        sim.pay(b["txn_ref"].as_str().unwrap(), SimOutcome::Success, &Faults::default()).await.unwrap();
        let b = app.payment(&portal, b["payment_id"].as_str().unwrap()).await;
        assert_eq!((b["status"].as_str(), b["flags"].clone()), (Some("paid"), serde_json::json!(["duplicate_payment"])));
        let types: Vec<String> = app.store.case_events(&cc(&code)).await.unwrap().into_iter().map(|e| e.event_type.to_string()).collect();
        assert_eq!(types, ["payment.succeeded", "payment.duplicate"]);
        let entries = app.store.ledger_entries(0, 100).await.unwrap();
        let refunds: i64 = entries.iter().filter(|e| e.account == "refunds_payable").map(|e| e.credit).sum();
        assert_eq!(refunds, 135_000);
        // No third payment for a paid case.
        let (status, v) = app.create_payment(&portal, &code, "momo", "third").await;
        assert_eq!((status, error_code(&v)), (409, "case_already_paid"));
    }
}

with_gateways! {
    async fn a_lost_callback_is_recovered_by_the_status_query(app, sim)
    env [("FEERECON_PENDING_QUERY_AFTER", "300ms")];
    {
        let portal = app.token_for(Role::Portal).await;
        let finance = app.token_for(Role::Finance).await;
        for (seq, g, again) in [(1, "vnpay", "02"), (2, "momo", "204"), (3, "zalopay", "2")] {
            let (code, p) = pending_payment(&app, &portal, seq, g).await;
            let id = p["payment_id"].as_str().unwrap();
            let txn_ref = p["txn_ref"].as_str().unwrap();
            let d = sim.pay(txn_ref, SimOutcome::Success, &Faults { lost: true, ..Faults::default() }).await.unwrap();
            assert!(d.is_empty());
            let paid = app.wait_for_status(&portal, id, "paid").await;
            let created = app.store.get_payment(id).await.unwrap().unwrap().created_at;
            if g != "vnpay" {
                // MoMo and ZaloPay answers carry no payment time: the creation time, never the clock at recovery.
                assert_eq!(paid["paid_at"], serde_json::json!(feerecon::domain::Timestamp::at(created)), "{g}");
            }
            // The callback arriving after the query changes nothing.
            let d = sim.redeliver(txn_ref).await.unwrap();
            assert_eq!(reply_code(&d[0]), again, "{g}");
            assert_eq!(app.store.case_events(&cc(&code)).await.unwrap().len(), 1);
            let (_, ev) = json(app.get(&format!("/api/v1/payments/{id}/callbacks"), &finance).await).await;
            let sources: Vec<&str> = ev["items"].as_array().unwrap().iter().map(|c| c["source"].as_str().unwrap()).collect();
            assert!(sources.contains(&"status_query") && sources.last() == Some(&"callback"), "{sources:?}");
        }
        let postings: std::collections::BTreeSet<String> = app.store.ledger_entries(0, 1000).await.unwrap().into_iter().map(|e| e.posting_id).collect();
        assert_eq!(postings.len(), 3);
    }
}

with_gateways! {
    async fn creation_follows_the_rules_of_the_portal_api(app, sim) {
        let _ = &sim;
        let portal = app.token_for(Role::Portal).await;
        let code = app.new_case(&portal, 1, GPLX, "counter", "2024-07-15").await;
        let (s1, a) = app.create_payment(&portal, &code, "vnpay", "k1").await;
        let (s2, b) = app.create_payment(&portal, &code, "vnpay", "k1").await;
        assert_eq!((s1, s2), (201, 200));
        assert_eq!(a, b, "the same key gives the same payment");
        let (s, v) = app.create_payment(&portal, &code, "momo", "k1").await;
        assert_eq!((s, error_code(&v)), (409, "idempotency_key_reused"));
        // Another portal user's key space is its own.
        let other = app.token_for(Role::Portal).await;
        let (s, _) = app.create_payment(&other, &code, "vnpay", "k1").await;
        assert_eq!(s, 201);
        // Without the header: 400.
        let res = app.client.post(app.url(&format!("/api/v1/cases/{code}/payments"))).bearer_auth(&portal)
            .json(&serde_json::json!({"gateway": "vnpay", "return_url": "https://x.vn/", "client_ip": "1.2.3.4"})).send().await.unwrap();
        let (s, v) = json(res).await;
        assert_eq!((s, error_code(&v)), (400, "invalid_request"));
        // Bad fields: 422 naming them.
        for (field, body) in [
            ("gateway", serde_json::json!({"gateway": "paypal", "return_url": "https://x.vn/", "client_ip": "1.2.3.4"})),
            ("return_url", serde_json::json!({"gateway": "vnpay", "return_url": "javascript:alert(1)", "client_ip": "1.2.3.4"})),
            ("client_ip", serde_json::json!({"gateway": "vnpay", "return_url": "https://x.vn/", "client_ip": "localhost"})),
        ] {
            let res = app.client.post(app.url(&format!("/api/v1/cases/{code}/payments"))).bearer_auth(&portal)
                .header("Idempotency-Key", format!("bad-{field}")).json(&body).send().await.unwrap();
            let (s, v) = json(res).await;
            assert_eq!((s, error_code(&v)), (422, "invalid_field"), "{field}");
            assert!(v["error"]["message"].as_str().unwrap().contains(field), "{v}");
        }
        // Outside MoMo's limits: a 9,000,000,000 đ case is impossible here, so check VNPAY's floor
        // with a 3,000 đ certification (2,000 đ per page, 1 page... 1,500 pages would be 3,000,000).
        let small = app.new_case(&portal, 2, "2.000815", "counter", "2024-07-15").await;
        let (s, v) = app.create_payment(&portal, &small, "vnpay", "k2").await;
        assert_eq!((s, error_code(&v)), (422, "amount_outside_gateway_limits"), "{v}");
        // A waived case needs no gateway: Luật Hộ tịch waives a marriage in Vietnam.
        let free = app.new_case(&portal, 3, "1.000894", "counter", "2024-07-15").await;
        let (s, v) = app.create_payment(&portal, &free, "momo", "k3").await;
        assert_eq!((s, v["status"].as_str(), v["pay_url"].is_null(), v["amount"].as_i64()), (201, Some("waived"), true, Some(0)), "{v}");
        let (s, v) = app.create_payment(&portal, &free, "momo", "k4").await;
        assert_eq!((s, error_code(&v)), (409, "case_already_paid"));
        let types: Vec<String> = app.store.case_events(&cc(&free)).await.unwrap().into_iter().map(|e| e.event_type.to_string()).collect();
        assert_eq!(types, ["payment.waived"]);
        let waiver = app.store.ledger_entries(0, 100).await.unwrap();
        assert!(waiver.iter().any(|e| e.kind == "waiver" && e.memo.contains("LHT-11-1B-KET-HON")), "{waiver:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_covered_cases_and_disabled_or_unreachable_gateways() {
    // Hà Nội 2026: a ministry fee filed online is owed by the city budget.
    let (app, _sim) =
        spawn_gateway_app(Db::Sqlite, &[("FEERECON_POLICY", "fixtures/policies/ha-noi.toml")]).await.unwrap();
    let portal = app.token_for(Role::Portal).await;
    let code = app.new_case(&portal, 1, GPLX, "online_full", "2026-03-02").await;
    let (s, v) = app.create_payment(&portal, &code, "vnpay", "k").await;
    assert_eq!((s, v["status"].as_str(), v["amount"].as_i64()), (201, Some("budget_covered"), Some(0)), "{v}");
    let entries = app.store.ledger_entries(0, 100).await.unwrap();
    assert_eq!(entries.iter().filter(|e| e.account == "budget_receivable").map(|e| e.debit).sum::<i64>(), 135_000);
    assert_eq!(app.store.case_events(&cc(&code)).await.unwrap()[0].event_type, "payment.budget_covered");

    // A server with no gateway configured, and one whose gateways do not answer.
    let bare = crate::helpers::spawn_app(Db::Sqlite).await.unwrap();
    let portal = bare.token_for(Role::Portal).await;
    let code = bare.new_case(&portal, 1, GPLX, "counter", "2024-07-15").await;
    let (s, v) = bare.create_payment(&portal, &code, "momo", "k").await;
    assert_eq!((s, error_code(&v)), (422, "gateway_disabled"));

    let mut env = crate::helpers::gateway_env("http://127.0.0.1:9");
    env.push(("FEERECON_DATABASE_URL".into(), String::new()));
    let refs: Vec<(&str, &str)> =
        env.iter().filter(|(k, _)| k != "FEERECON_DATABASE_URL").map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let down = crate::helpers::spawn_app_with(Db::Sqlite, &refs).await.unwrap();
    let portal = down.token_for(Role::Portal).await;
    let code = down.new_case(&portal, 1, GPLX, "counter", "2024-07-15").await;
    for g in ["momo", "zalopay"] {
        let (s, v) = down.create_payment(&portal, &code, g, &format!("k-{g}")).await;
        assert_eq!((s, error_code(&v)), (502, "gateway_unavailable"), "{g}");
    }
    assert!(down.store.case_payments(&cc(&code)).await.unwrap().is_empty(), "no payment is created");
}

with_gateways! {
    async fn forgeries_over_http_change_nothing(app, sim) {
        use rand::SeedableRng;
        let _ = &sim;
        let portal = app.token_for(Role::Portal).await;
        let env = |k: &str| crate::helpers::GATEWAY_ENV.iter().find(|(n, _)| *n == k).unwrap().1;
        let mut rng = rand::rngs::StdRng::seed_from_u64(99);
        for (seq, g) in [(1, "vnpay"), (2, "momo"), (3, "zalopay")] {
            let (code, p) = pending_payment(&app, &portal, seq, g).await;
            let txn_ref = p["txn_ref"].as_str().unwrap();
            let (method, payload) = genuine(g, txn_ref, 135_000, None);
            let forgeries = match g {
                "vnpay" => feerecon::simulator::mutate::vnpay(&payload, env("FEERECON_VNPAY_HASH_SECRET"), "old", &mut rng),
                "momo" => feerecon::simulator::mutate::momo(&payload, env("FEERECON_MOMO_SECRET_KEY"), "old", env("FEERECON_MOMO_ACCESS_KEY"), &mut rng),
                _ => feerecon::simulator::mutate::zalopay(&payload, env("FEERECON_ZALOPAY_KEY2"), "old", env("FEERECON_ZALOPAY_KEY1"), &mut rng),
            };
            for f in forgeries.iter().step_by(3).take(25) {
                let (status, body) = send(&app.client, &app.address, g, &method, f).await;
                let refused = match g {
                    "vnpay" => !body.contains("\"00\"") && !body.contains("\"02\""),
                    "momo" => status != 204,
                    _ => !body.contains("\"return_code\":1") && !body.contains("\"return_code\":2"),
                };
                assert!(refused, "{g} accepted {f}: {status} {body}");
            }
            let pay = app.payment(&portal, p["payment_id"].as_str().unwrap()).await;
            assert_eq!(pay["status"], "pending", "{g}");
            assert!(app.store.case_events(&cc(&code)).await.unwrap().is_empty());
            // The genuine message, sent last, is applied.
            let (status, body) = send(&app.client, &app.address, g, &method, &payload).await;
            assert!(status == 204 || body.contains("\"00\"") || body.contains("\"return_code\":1"), "{g}: {status} {body}");
            assert_eq!(app.payment(&portal, p["payment_id"].as_str().unwrap()).await["status"], "paid");
        }
        assert!(!app.store.ledger_entries(0, 100).await.unwrap().is_empty());
    }
}

with_gateways! {
    async fn the_previous_secret_is_accepted_and_recorded_during_rotation(app, sim)
    env [("FEERECON_VNPAY_HASH_SECRET_PREVIOUS", "the-old-vnpay-secret")];
    {
        let _ = &sim;
        let portal = app.token_for(Role::Portal).await;
        let finance = app.token_for(Role::Finance).await;
        let (_, p) = pending_payment(&app, &portal, 1, "vnpay").await;
        let (_, payload) = genuine("vnpay", p["txn_ref"].as_str().unwrap(), 135_000, Some("the-old-vnpay-secret"));
        let (_, body) = send(&app.client, &app.address, "vnpay", "GET", &payload).await;
        assert!(body.contains("\"00\""), "{body}");
        let (_, ev) = json(app.get(&format!("/api/v1/payments/{}/callbacks", p["payment_id"].as_str().unwrap()), &finance).await).await;
        assert_eq!(ev["items"][0]["key_used"], "previous");
        // A POST form is accepted as well as the query string.
        let (_, p2) = pending_payment(&app, &portal, 2, "vnpay").await;
        let (_, payload) = genuine("vnpay", p2["txn_ref"].as_str().unwrap(), 135_000, None);
        let res = app.client.post(app.url("/gateway/vnpay/ipn")).header("content-type", "application/x-www-form-urlencoded").body(payload).send().await.unwrap();
        assert!(res.text().await.unwrap().contains("\"00\""));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_on_one_postgresql_apply_a_callback_once() {
    let Some((url, _)) = crate::helpers::fresh_db(Db::Postgres).await else { return };
    let env = crate::helpers::gateway_env("http://127.0.0.1:9");
    let (_a, base_a) = crate::helpers::serve_process(&url, &env).await;
    let (_b, base_b) = crate::helpers::serve_process(&url, &env).await;
    let store = feerecon::store::Store::connect(&url).await.unwrap();
    let (_, t) = crate::helpers::add_user_token(&store, "portal", Role::Portal, None).await;
    let token = t.token.expose().to_owned();
    let client = reqwest::Client::new();
    let code = "000.00.12.H62-240715-0001";
    let body = serde_json::json!({"procedure_code": GPLX, "applicant_name": "A", "channel": "counter",
        "received_at": "2024-07-15T10:00:00+07:00", "receiving_unit": "000.00.12.H62"});
    let res = client.put(format!("{base_a}/api/v1/cases/{code}")).bearer_auth(&token).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let res = client
        .post(format!("{base_b}/api/v1/cases/{code}/payments"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "k")
        .json(&serde_json::json!({"gateway": "vnpay", "return_url": "https://x.vn/", "client_ip": "1.2.3.4"}))
        .send()
        .await
        .unwrap();
    let (status, p) = json(res).await;
    assert_eq!(status, 201, "{p}");
    let txn_ref = p["txn_ref"].as_str().unwrap().to_owned();
    for (g, _) in [("vnpay", 0)] {
        let (_, payload) = genuine(g, &txn_ref, 135_000, None);
        let mut handles = Vec::new();
        for i in 0..40 {
            let (client, base, payload) =
                (client.clone(), if i % 2 == 0 { base_a.clone() } else { base_b.clone() }, payload.clone());
            handles.push(tokio::spawn(async move { send(&client, &base, "vnpay", "GET", &payload).await.1 }));
        }
        let mut bodies = Vec::new();
        for h in handles {
            bodies.push(h.await.unwrap());
        }
        assert_eq!(bodies.iter().filter(|b| b.contains("\"00\"")).count(), 1, "{bodies:?}");
        assert_eq!(bodies.iter().filter(|b| b.contains("\"02\"")).count(), 39, "{bodies:?}");
    }
    assert_eq!(store.case_events(&cc(code)).await.unwrap().len(), 1);
    let postings: std::collections::BTreeSet<String> =
        store.ledger_entries(0, 100).await.unwrap().into_iter().map(|e| e.posting_id).collect();
    assert_eq!(postings.len(), 1);
    store.close().await;
}

with_gateways! {
    /// Issue 14 item 2: a message is kept whatever it comes to, and answered in its gateway's format.
    async fn every_message_is_kept_even_one_over_the_size_limit_or_that_cannot_be_applied(app, sim)
    env [("FEERECON_MAX_BODY", "4KiB")];
    {
        let _ = &sim;
        let portal = app.token_for(Role::Portal).await;
        let finance = app.token_for(Role::Finance).await;
        // Over FEERECON_MAX_BODY: its first 4096 bytes and its length kept, the gateway's retry reply.
        let padding = "x".repeat(6_000);
        for (seq, g) in [(1, "vnpay"), (2, "momo"), (3, "zalopay")] {
            let (_, p) = pending_payment(&app, &portal, seq, g).await;
            let id = p["payment_id"].as_str().unwrap();
            let (_, payload) = genuine(g, p["txn_ref"].as_str().unwrap(), 135_000, None);
            let res = match g {
                "vnpay" => app.client.post(app.url("/gateway/vnpay/ipn"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("{payload}&padding={padding}")),
                "momo" => app.client.post(app.url("/gateway/momo/ipn")).header("content-type", "application/json")
                    .body(payload.replacen('}', &format!(r#","padding":"{padding}"}}"#), 1)),
                _ => app.client.post(app.url("/gateway/zalopay/callback")).header("content-type", "application/json")
                    .body(format!(r#"{},"padding":"{padding}"}}"#, payload.trim_end_matches('}'))),
            }.send().await.unwrap();
            let (status, body) = (res.status().as_u16(), res.text().await.unwrap());
            let expected = match g {
                "vnpay" => (200, r#"{"RspCode":"99","Message":"Unknow error"}"#),
                "momo" => (500, ""),
                _ => (200, r#"{"return_code":0,"return_message":"internal error"}"#),
            };
            assert_eq!((status, body.as_str()), expected, "{g}: the gateway's own retry reply");
            assert_eq!(app.payment(&portal, id).await["status"], "pending");
            let (_, ev) = json(app.get(&format!("/api/v1/payments/{id}/callbacks"), &finance).await).await;
            let row = &ev["items"][0];
            assert_eq!((row["result"].as_str(), row["authenticated_by"].as_str(), row["signature_valid"].as_bool()), (Some("failure"), Some("none"), Some(false)), "{g}: {row}");
            assert_eq!(row["body"].as_str().unwrap().len(), 4096, "{g}");
            assert!(row["body_length"].as_i64().unwrap() > 6_000, "{g}: {row}");
            assert!(row["detail"].as_str().unwrap().contains("FEERECON_MAX_BODY"), "{g}: {row}");
        }
        // The portal's JSON routes keep the envelope for a body over the limit.
        let code = app.new_case(&portal, 9, GPLX, "counter", "2024-07-15").await;
        let res = app.client.post(app.url(&format!("/api/v1/cases/{code}/payments"))).bearer_auth(&portal)
            .header("Idempotency-Key", "big").header("content-type", "application/json").body(format!(r#"{{"gateway":"{padding}"}}"#)).send().await.unwrap();
        let (s, v) = json(res).await;
        assert_eq!((s, error_code(&v)), (413, "payload_too_large"));

        // A message that cannot be applied (its payment's stored quote is unreadable): kept in a
        // transaction of its own, answered with the retry reply, visible with the payment.
        let (_, p) = pending_payment(&app, &portal, 4, "vnpay").await;
        let id = p["payment_id"].as_str().unwrap();
        crate::helpers::raw_sql(&app.database_url, &format!("UPDATE payments SET quote = '{{}}' WHERE payment_id = '{id}'")).await.unwrap();
        let (method, payload) = genuine("vnpay", p["txn_ref"].as_str().unwrap(), 135_000, None);
        let (_, body) = send(&app.client, &app.address, "vnpay", &method, &payload).await;
        assert!(body.contains("\"99\""), "{body}");
        let (_, ev) = json(app.get(&format!("/api/v1/payments/{id}/callbacks"), &finance).await).await;
        let row = &ev["items"][0];
        assert_eq!((row["result"].as_str(), row["authenticated_by"].as_str()), (Some("failure"), Some("signature_current")), "{row}");
        assert!(row["detail"].as_str().unwrap().starts_with("not applied"), "{row}");
        assert_eq!(app.payment(&portal, id).await["status"], "pending");
    }
}

with_gateways! {
    /// Issue 14 item 8: tolerant of what gateways add, strict with the portal.
    async fn fields_a_gateway_adds_are_accepted_and_the_portal_stays_strict(app, sim) {
        let _ = &sim;
        let portal = app.token_for(Role::Portal).await;
        let (_, p) = pending_payment(&app, &portal, 1, "zalopay").await;
        let (method, payload) = genuine("zalopay", p["txn_ref"].as_str().unwrap(), 135_000, None);
        let added = payload.replacen('{', r#"{"version":2,"extra":{"channel":"qr"},"#, 1);
        let (_, body) = send(&app.client, &app.address, "zalopay", &method, &added).await;
        assert!(body.contains("\"return_code\":1"), "{body}");
        assert_eq!(app.payment(&portal, p["payment_id"].as_str().unwrap()).await["status"], "paid");
        let code = app.new_case(&portal, 2, GPLX, "counter", "2024-07-15").await;
        let res = app.client.post(app.url(&format!("/api/v1/cases/{code}/payments"))).bearer_auth(&portal)
            .header("Idempotency-Key", "k")
            .json(&serde_json::json!({"gateway": "momo", "return_url": "https://x.vn/", "client_ip": "1.2.3.4", "coupon": "x"}))
            .send().await.unwrap();
        let (s, v) = json(res).await;
        assert_eq!((s, error_code(&v)), (422, "invalid_field"));
        assert!(v["error"]["message"].as_str().unwrap().contains("coupon"), "{v}");
    }
}

crate::both_databases! {
    /// Issue 14 item 9: an acknowledged callback is on disk, whatever the server's default.
    async fn postgresql_commits_synchronously_whatever_the_server_says(url: String) {
        if url.starts_with("sqlite:") {
            let store = feerecon::store::Store::connect(&url).await.unwrap();
            assert_eq!(store.synchronous_commit().await.unwrap(), None, "SQLite uses synchronous = FULL");
            return;
        }
        use sqlx::Connection as _;
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', current_database()); END $$")
            .execute(&mut c).await.unwrap();
        c.close().await.unwrap();
        // A connection of its own now gets the server's weaker setting ...
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        let (plain,): (String,) = sqlx::query_as("SHOW synchronous_commit").fetch_one(&mut c).await.unwrap();
        assert_eq!(plain, "off");
        // ... and every connection of the store's pool sets it back.
        let store = feerecon::store::Store::connect(&url).await.unwrap();
        for _ in 0..4 {
            assert_eq!(store.synchronous_commit().await.unwrap().as_deref(), Some("on"));
        }
        store.close().await;
    }
}
