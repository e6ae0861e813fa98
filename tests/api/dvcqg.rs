//! The DVCQG payment platform (issue 22), against the simulator over real HTTP, on SQLite and
//! PostgreSQL: a payment from INIT to the callback and its reply, a lost callback recovered by
//! QUERY, the platform's receipt fetched and served beside ours, the beneficiary account's
//! statement imported and the day reconciled and closed; forged and mutated callbacks refused;
//! "the platform does not know" kept pending for three days; the reverse lookup behind its list.

use std::time::Duration;

use feerecon::domain::Role;
use feerecon::domain::payment::Gateway;
use feerecon::settlement::Profile;
use feerecon::simulator::{Discrepancies, Faults, SimOutcome, Simulator, mutate};
use rand::SeedableRng;
use serde_json::{Value, json};

use crate::gateways::{pending_payment, with_gateways};
use crate::helpers::{Db, TestApp, json, spawn_gateway_app};
use crate::world::World;

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

fn reply(d: &feerecon::simulator::Delivery) -> Value {
    assert_eq!(d.status, 200, "the platform expects HTTP 200: {}", d.body);
    serde_json::from_str(&d.body).unwrap()
}

async fn post_callback(app: &TestApp, body: &str) -> Value {
    let res = app
        .client
        .post(app.url("/gateway/dvcqg/callback"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

with_gateways! {
    async fn a_dvcqg_payment_goes_from_init_to_the_callback(app, sim) {
        let portal = app.token_for(Role::Portal).await;
        let finance = app.token_for(Role::Finance).await;
        let (code, p) = pending_payment(&app, &portal, 1, "dvcqg").await;
        let txn_ref = p["txn_ref"].as_str().unwrap().to_owned();
        assert!(txn_ref.starts_with("DVC") && txn_ref.len() == 20 && txn_ref.bytes().all(|b| b.is_ascii_alphanumeric()), "{txn_ref}");
        assert!(p["pay_url"].as_str().unwrap().starts_with(&sim.url()));
        // INIT as the platform received it: the receipt object from the case and its quote, the
        // beneficiary from configuration, the bearer token.
        let (init, bearer) = sim.dvcqg_init(&txn_ref).unwrap();
        assert_eq!(bearer.as_deref(), Some("Bearer dvcqg-test-bearer"));
        assert_eq!((init["SoTien"].as_str(), init["MaDoiTac"].as_str(), init["PhienBan"].as_str()), (Some("135000"), Some("000.00.00.H62"), Some("1.0.6")));
        let b = &init["ThongTinBienLai"];
        assert_eq!((b["MaHoSo"].as_str(), b["MaTTHC"].as_str(), b["MaDichVu"].as_str()), (Some(code.as_str()), Some("1.002804"), Some("2")));
        assert_eq!((b["TKThuHuong"].as_str(), b["MaNHThuHuong"].as_str()), (Some("1234567890"), Some("970415")));
        let lines = b["PhiLePhi"].as_array().unwrap();
        assert_eq!(lines.iter().map(|l| l["SoTien"].as_i64().unwrap()).sum::<i64>(), 135_000);
        assert!(lines.iter().all(|l| l["LoaiPhiLePhi"] == "1" || l["LoaiPhiLePhi"] == "2"), "{lines:?}");
        assert!(!b["TenTTHC"].as_str().unwrap().is_empty());
        // The citizen pays; the callback is applied and answered as the platform expects.
        let d = sim.pay(&txn_ref, SimOutcome::Success, &Faults { duplicates: 2, ..Faults::default() }).await.unwrap();
        assert_eq!(d.len(), 3);
        for r in d.iter().map(reply) {
            assert_eq!((r["MaLoi"].as_str(), r["MaThamChieu"].as_str(), r["MaDoiTac"].as_str()), (Some("00"), Some(txn_ref.as_str()), Some("000.00.00.H62")));
            assert_eq!(r["MaXacThuc"].as_str().map(str::len), Some(64), "the received checksum echoed: {r}");
        }
        let id = p["payment_id"].as_str().unwrap();
        let paid = app.payment(&portal, id).await;
        assert_eq!((paid["status"].as_str(), paid["amount"].as_i64()), (Some("paid"), Some(135_000)));
        let no = paid["gateway_txn_no"].as_str().unwrap().to_owned();
        assert_eq!(sim.transactions().iter().find(|t| t.txn_ref == txn_ref).unwrap().txn_no.unwrap().to_string(), no);
        // Three deliveries, one effect: one confirmation posting, one event.
        let events = app.store.case_events(&crate::helpers::cc(&code)).await.unwrap();
        assert_eq!(events.len(), 1);
        let clearing: i64 = app.store.ledger_entries(0, 1000).await.unwrap().iter().filter(|e| e.account == "gateway_clearing:dvcqg").map(|e| e.debit).sum();
        assert_eq!(clearing, 135_000);
        let (_, ev) = json(app.get(&format!("/api/v1/payments/{id}/callbacks"), &finance).await).await;
        let results: Vec<&str> = ev["items"].as_array().unwrap().iter().map(|i| i["result"].as_str().unwrap()).collect();
        assert_eq!(results.iter().filter(|r| **r == "applied").count(), 1, "{results:?}");
        assert!(ev["items"].as_array().unwrap().iter().all(|i| i["signature_valid"] == true && i["key_used"] == "current"));
        // A forged callback (wrong secret) is refused, kept, and changes nothing.
        let forged = sim.pay(&txn_ref, SimOutcome::Failure, &Faults { forged: true, ..Faults::default() }).await.unwrap();
        assert_eq!(reply(&forged[0])["MaLoi"], "97");
        assert_eq!(app.payment(&portal, id).await["status"], "paid");
        // The return page reads the status.
        let page = app.client.get(app.url(&format!("/gateway/dvcqg/return?MaThamChieu={txn_ref}"))).send().await.unwrap();
        assert!(page.text().await.unwrap().contains(r#"data-status="paid""#));
    }
}

with_gateways! {
    async fn mutated_callbacks_are_refused_over_http_and_change_nothing(app, sim) {
        let portal = app.token_for(Role::Portal).await;
        let (_, p) = pending_payment(&app, &portal, 1, "dvcqg").await;
        let txn_ref = p["txn_ref"].as_str().unwrap().to_owned();
        let id = p["payment_id"].as_str().unwrap().to_owned();
        // A genuine callback, kept by the simulator but not delivered.
        sim.pay(&txn_ref, SimOutcome::Success, &Faults { lost: true, ..Faults::default() }).await.unwrap();
        let genuine = genuine_body(&sim, &txn_ref);
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let forgeries = mutate::dvcqg(&genuine, "dvcqg-test-secret", "old", &mut rng);
        assert!(forgeries.len() > 80);
        for m in forgeries.iter().step_by(3) {
            let r = post_callback(&app, m).await;
            assert!(r["MaLoi"] == "97" || r["MaLoi"] == "01", "{m}: {r}");
        }
        assert_eq!(app.payment(&portal, &id).await["status"], "pending");
        // Another amount, properly signed: refused as invalid, flagged.
        let r = post_callback(&app, &resign(&genuine, "SoTien", json!(1000))).await;
        assert_eq!(r["MaLoi"], "04");
        let after = app.payment(&portal, &id).await;
        assert_eq!(after["status"], "pending");
        assert_eq!(after["flags"], json!(["callback_amount_mismatch"]));
        // An unknown reference, properly signed: order not found.
        assert_eq!(post_callback(&app, &resign(&genuine, "MaThamChieu", json!("DVC000000UNKNOWN0000"))).await["MaLoi"], "01");
        // The genuine one is applied.
        assert_eq!(post_callback(&app, &genuine).await["MaLoi"], "00");
        assert_eq!(app.payment(&portal, &id).await["status"], "paid");
    }
}

/// The body of the simulator's callback for `txn_ref`, as it would have delivered it.
fn genuine_body(sim: &Simulator, txn_ref: &str) -> String {
    let t = sim.transactions().into_iter().find(|t| t.txn_ref == txn_ref).unwrap();
    let time = t.paid_at.unwrap().with_timezone(&feerecon::domain::vn_offset()).format("%Y%m%d%H%M%S").to_string();
    let body = json!({
        "LoaiBanTin": "PAYMENT_RESULT", "MaLoi": "00", "MaDoiTac": "000.00.00.H62", "MaThamChieu": t.txn_ref,
        "SoTien": t.amount, "MaTienTe": "VND", "MaGiaoDich": t.txn_no.unwrap().to_string(), "MaNganHang": "VCB",
        "ThoiGianGD": time, "ThongTinGiaoDich": t.order_info, "MaXacThuc": "",
    });
    resign(&body.to_string(), "MaXacThuc", json!(""))
}

/// `body` with `field` set to `value` and its checksum recomputed with the test secret.
fn resign(body: &str, field: &str, value: Value) -> String {
    let mut v: Value = serde_json::from_str(body).unwrap();
    v[field] = value;
    let text = |k: &str| match &v[k] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let values: Vec<String> = feerecon::gateway::dvcqg::CALLBACK_FIELDS.iter().map(|f| text(f)).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    v["MaXacThuc"] = json!(feerecon::simulator::sign::dvcqg_checksum(&refs, "dvcqg-test-secret"));
    v.to_string()
}

/// Waits until the platform's receipt of `p` is fetched; checks the document and the link to our
/// own receipt of the payment; returns the receipt's view.
async fn fetched_receipt(w: &World, p: &crate::world::Paid) -> Value {
    let url = format!("/api/v1/payments/{}/gateway-receipt", p.id);
    let mut last = Value::Null;
    for _ in 0..200 {
        let (s, v) = json(w.app.get(&url, &w.portal).await).await;
        if s == 200 && v["state"] == "fetched" {
            last = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["state"], "fetched", "receipt of {}", p.id);
    assert_eq!(last["receipts"].as_array().unwrap().len(), 1, "our own receipt linked: {last}");
    let file = w.app.get(&format!("{url}/file"), &w.f1).await;
    assert_eq!(file.headers()["content-type"], "application/pdf");
    let bytes = file.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF-") && String::from_utf8_lossy(&bytes).contains(&p.txn_ref));
    use sha2::Digest as _;
    assert_eq!(last["sha256"].as_str(), Some(hex::encode(sha2::Sha256::digest(&bytes)).as_str()));
    last
}

async fn a_dvcqg_day_reconciles_and_closes(db: Db) {
    let Some(mut w) = World::with(db, &[("FEERECON_PENDING_QUERY_AFTER", "200ms")]).await else { return };
    let date = "2024-07-15";
    w.at("2024-07-15T09:00:00+07:00");
    // Two cases paid through the platform: one callback arrives, one is lost.
    let a_case = w.app.new_case(&w.portal, 1, crate::world::GPLX, "counter", date).await;
    let b_case = w.app.new_case(&w.portal, 2, crate::world::GPLX, "counter", date).await;
    let a = w.pay_case(&a_case, Gateway::Dvcqg, "a", SimOutcome::Success, &Faults::default()).await.unwrap();
    assert_eq!(w.app.payment(&w.portal, &a.id).await["status"], "paid");
    // The platform's receipt of the first is fetched as a PDF stream, and served beside ours.
    let a_receipt = fetched_receipt(&w, &a).await;
    assert!(a_receipt["source_url"].is_null(), "{a_receipt}");
    // The platform answers GET_BILL with UrlBienLai from now on.
    w.sim.dvcqg_bills_as_url(true);
    let b = w
        .pay_case(&b_case, Gateway::Dvcqg, "b", SimOutcome::Success, &Faults { lost: true, ..Faults::default() })
        .await
        .unwrap();
    // The lost one is recovered by QUERY (TrangThaiGD 1), with the platform's MaGiaoDich.
    let recovered = w.app.wait_for_status(&w.portal, &b.id, "paid").await;
    assert_eq!(recovered["gateway_txn_no"].as_str(), Some(b.no.as_str()));
    let queries: Vec<_> = w.sim.queries().into_iter().filter(|q| q.txn_ref == b.txn_ref).collect();
    assert!(!queries.is_empty());
    assert_eq!(queries[0].request["LoaiBanTin"], "QUERY");
    let init_time = w.sim.dvcqg_init(&b.txn_ref).unwrap().0["ThoiGianGD"].as_str().unwrap().to_owned();
    assert!(init_time.starts_with("2024071509"), "{init_time}");
    assert_eq!(queries[0].request["ThoiGianGD"].as_str(), Some(init_time.as_str()), "the INIT time, sent again");
    let (_, ev) = json(w.app.get(&format!("/api/v1/payments/{}/callbacks", b.id), &w.f1).await).await;
    assert!(
        ev["items"].as_array().unwrap().iter().any(|i| i["source"] == "status_query" && i["result"] == "applied"),
        "{ev}"
    );
    let b_receipt = fetched_receipt(&w, &b).await;
    assert!(b_receipt["source_url"].as_str().is_some_and(|u| u.contains(&b.txn_ref)), "{b_receipt}");
    // The beneficiary account's statement, with other money on the account, imported with the
    // dvcqg profile.
    let profile = Profile::resolve(std::path::Path::new("fixtures/settlement-profiles"), "dvcqg").unwrap();
    let (lines, carried) = w.sim.settlement_lines(Gateway::Dvcqg, date.parse().unwrap(), &Discrepancies::default());
    assert_eq!((lines.len(), carried.len()), (2, 0));
    let mut csv = String::from_utf8(Simulator::settlement_file(&profile, &lines)).unwrap();
    csv.push_str("\"Lãi tiền gửi\",\"5.000\",15/07/2024 23:00:00,Ghi có\n");
    let res = w
        .app
        .client
        .post(w.app.url("/api/v1/settlements?gateway=dvcqg&profile=dvcqg&name=sao-ke-2024-07-15.csv"))
        .bearer_auth(&w.f1)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let (s, file) = json(res).await;
    assert_eq!((s, file["lines"].as_i64()), (201, Some(2)), "{file}");
    // The day reconciles: both matched, no exception.
    let report = w.run_for(Gateway::Dvcqg, date).await;
    assert_eq!(report["summary"]["matched"], json!({"count": 2, "amount": 270_000}), "{report}");
    assert_eq!(report["items"], json!([]), "{report}");
    assert_eq!(report["totals"]["recorded_paid"], 270_000);
    // And closes, once the day is over. A payment paid with no receipt row (as a server older
    // than migration 0017 paid them) gets its row from the close, and its receipt again.
    crate::helpers::raw_sql(
        &w.app.database_url,
        &format!("DELETE FROM gateway_receipts WHERE payment_id = '{}'", a.id),
    )
    .await
    .unwrap();
    w.at("2024-07-16T00:30:00+07:00");
    let (s, v) = w.close_for(Gateway::Dvcqg, date).await;
    assert_eq!(s, 200, "{v}");
    assert!(w.app.store.gateway_receipt(&a.id).await.unwrap().is_some(), "the close expects its receipt");
    fetched_receipt(&w, &a).await;
    let balances = w.balances().await;
    assert_eq!(balances.get("gateway_clearing:dvcqg").copied().unwrap_or(0), 0, "{balances:?}");
    assert_eq!(balances.get("bank:dvcqg").copied(), Some(270_000), "{balances:?}");
    w.verifies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dvcqg_day_reconciles_and_closes_sqlite() {
    a_dvcqg_day_reconciles_and_closes(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dvcqg_day_reconciles_and_closes_postgres() {
    a_dvcqg_day_reconciles_and_closes(Db::Postgres).await;
}

with_gateways! {
    /// TrangThaiGD 3: the platform does not know yet. Past the TTL the payment is not expired
    /// but asked again, until three days after its creation; then a person decides.
    async fn a_payment_the_platform_cannot_decide_stays_pending_three_days(app, sim)
    env [("FEERECON_PENDING_QUERY_AFTER", "200ms"), ("FEERECON_PAYMENT_TTL", "1s")];
    {
        let portal = app.token_for(Role::Portal).await;
        let (_, p) = pending_payment(&app, &portal, 1, "dvcqg").await;
        let txn_ref = p["txn_ref"].as_str().unwrap().to_owned();
        let id = p["payment_id"].as_str().unwrap().to_owned();
        // The simulator answers 3 for an order nobody finished.
        let asked = || sim.queries().iter().filter(|q| q.txn_ref == txn_ref).count();
        eventually("asked three times past the TTL", || async { asked() >= 3 }).await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let n = asked();
        eventually("asked again past the TTL", || async { asked() > n }).await;
        let still = app.payment(&portal, &id).await;
        assert_eq!((still["status"].as_str(), still["flags"].clone()), (Some("pending"), json!([])), "{still}");
        // Three days on, the next "3" leaves it to a person: flagged, never expired.
        app.clock.advance(chrono::TimeDelta::days(3) + chrono::TimeDelta::minutes(1));
        let flagged = async {
            for _ in 0..300 {
                let p = app.payment(&portal, &id).await;
                if p["flags"] == json!(["unresolved_pending"]) {
                    return p;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("never flagged: {}", app.payment(&portal, &id).await)
        }
        .await;
        assert_eq!(flagged["status"], "pending");
        let events = app.store.case_events(&crate::helpers::cc(flagged["case_code"].as_str().unwrap())).await.unwrap();
        assert!(events.is_empty(), "no payment.expired: {events:?}");
        // Queries stop; a late success still pays it.
        let n = asked();
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(asked(), n, "no more queries");
        sim.pay(&txn_ref, SimOutcome::Success, &Faults::default()).await.unwrap();
        let paid = app.payment(&portal, &id).await;
        assert_eq!((paid["status"].as_str(), paid["flags"].clone()), (Some("paid"), json!([])));
    }
}

with_gateways! {
    async fn the_reverse_lookup_answers_allowed_addresses_from_the_case(app, sim)
    env [("FEERECON_DVCQG_LOOKUP_ALLOW", "127.0.0.1, ::1")];
    {
        let portal = app.token_for(Role::Portal).await;
        let code = app.new_case(&portal, 7, crate::gateways::GPLX, "counter", "2024-07-15").await;
        let lookup = |body: Value| {
            let req = app.client.post(app.url("/gateway/dvcqg/lookup")).json(&body);
            async move {
                let res = req.send().await.unwrap();
                (res.status().as_u16(), res.json::<Value>().await.unwrap())
            }
        };
        let (s, v) = lookup(json!({"MaHoSo": code})).await;
        assert_eq!((s, v["error_code"].as_i64()), (200, Some(1)), "{v}");
        let bill = &v["message"];
        assert_eq!((bill["MaHoSo"].as_str(), bill["SoTien"].as_str(), bill["TKThuHuong"].as_str()), (Some(code.as_str()), Some("135000"), Some("1234567890")));
        assert!(bill["MaTraCuuTT"].as_str().unwrap().starts_with(&code));
        assert_eq!(bill["PhiLePhi"].as_array().unwrap().iter().map(|l| l["SoTien"].as_i64().unwrap()).sum::<i64>(), 135_000);
        // Unknown case, not a case code, not JSON.
        assert_eq!(lookup(json!({"MaHoSo": "000.00.12.H62-240715-0999"})).await.1["error_code"], -1);
        assert_eq!(lookup(json!({"MaHoSo": "x"})).await.1["error_code"], -1);
        let res = app.client.post(app.url("/gateway/dvcqg/lookup")).body("nope").send().await.unwrap();
        assert_eq!(res.status(), 400);
        // Paid: nothing to pay. The lookup changed nothing on its own.
        let (s, p) = app.create_payment(&portal, &code, "dvcqg", "k").await;
        assert_eq!(s, 201);
        sim.pay(p["txn_ref"].as_str().unwrap(), SimOutcome::Success, &Faults::default()).await.unwrap();
        assert_eq!(lookup(json!({"MaHoSo": code})).await.1["error_code"], 0);
        assert_eq!(app.store.case_payments(&crate::helpers::cc(&code)).await.unwrap().len(), 1);
    }
}

with_gateways! {
    async fn the_reverse_lookup_refuses_addresses_not_allowed(app, sim)
    env [("FEERECON_DVCQG_LOOKUP_ALLOW", "203.0.113.0/24")];
    {
        let _ = &sim;
        let portal = app.token_for(Role::Portal).await;
        let code = app.new_case(&portal, 8, crate::gateways::GPLX, "counter", "2024-07-15").await;
        let res = app.client.post(app.url("/gateway/dvcqg/lookup")).json(&json!({"MaHoSo": code})).send().await.unwrap();
        assert_eq!(res.status(), 403);
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error_code"], -1);
        assert!(v.get("message").and_then(Value::as_str).is_some_and(|m| !m.contains(&code)));
    }
}

with_gateways! {
    /// An INIT the platform refuses (here: signed with a secret it does not know) is no payment:
    /// 502 `gateway_unavailable`, nothing created, the same key free to try again.
    async fn an_init_the_platform_refuses_creates_nothing(app, sim)
    env [("FEERECON_DVCQG_SECRET", "not-the-platform-s-secret")];
    {
        let portal = app.token_for(Role::Portal).await;
        let code = app.new_case(&portal, 9, crate::gateways::GPLX, "counter", "2024-07-15").await;
        let (s, v) = app.create_payment(&portal, &code, "dvcqg", "k").await;
        assert_eq!((s, crate::helpers::error_code(&v)), (502, "gateway_unavailable"), "{v}");
        assert!(app.store.case_payments(&crate::helpers::cc(&code)).await.unwrap().is_empty());
        assert!(sim.transactions().is_empty());
        // No gateway receipt for a payment that has none.
        let (s, _) = json(app.get("/api/v1/payments/pay_nothing/gateway-receipt", &portal).await).await;
        assert_eq!(s, 404);
    }
}

with_gateways! {
    /// A receipt the platform does not have yet is asked for again, a minute later, then kept.
    async fn a_receipt_not_ready_is_fetched_on_a_later_attempt(app, sim)
    env [("FEERECON_PENDING_QUERY_AFTER", "200ms")];
    {
        let portal = app.token_for(Role::Portal).await;
        let (_, p) = pending_payment(&app, &portal, 1, "dvcqg").await;
        let id = p["payment_id"].as_str().unwrap().to_owned();
        sim.dvcqg_refuse_bills(1);
        sim.pay(p["txn_ref"].as_str().unwrap(), SimOutcome::Success, &Faults::default()).await.unwrap();
        let url = format!("/api/v1/payments/{id}/gateway-receipt");
        let mut first = Value::Null;
        for _ in 0..100 {
            let (s, v) = json(app.get(&url, &portal).await).await;
            if s == 200 {
                first = v;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!((first["state"].as_str(), first["attempts"].as_i64(), first["file"].clone()), (Some("pending"), Some(1), Value::Null), "{first}");
        assert!(first["last_error"].as_str().unwrap().contains("02"), "{first}");
        // Not asked again before its time.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(json(app.get(&url, &portal).await).await.1["attempts"], 1);
        let (s, _) = json(app.get(&format!("{url}/file"), &portal).await).await;
        assert_eq!(s, 404);
        app.clock.advance(chrono::TimeDelta::minutes(2));
        eventually("fetched", || async { json(app.get(&url, &portal).await).await.1["state"] == "fetched" }).await;
        let v = json(app.get(&url, &portal).await).await.1;
        assert_eq!((v["attempts"].as_i64(), v["last_error"].clone(), v["length"].as_i64().is_some_and(|n| n > 8)), (Some(2), Value::Null, true), "{v}");
    }
}
