//! Settlement confirmations (SPEC §7.3 `confirm_from_settlement`), over real HTTP on both
//! databases: a line no payment has, confirmed for a case by two finance users; what the case is
//! told; what a confirmation for another amount leaves in suspense and how it is cleared; and
//! what is refused when it is requested.

use feerecon::domain::Role;
use serde_json::{Value, json};

use crate::gateways::GPLX;
use crate::helpers::{TestApp, cc, json};

/// A finance desk on 2024-07-15 (VNPAY): two finance users, one recorded case, and a settlement
/// file of lines no payment has, imported and reconciled.
struct Desk<'a> {
    app: &'a TestApp,
    f1: String,
    f2: String,
    code: String,
    /// The item keys of the first run, in the report's order (by key).
    keys: Vec<String>,
}

/// Imports `lines` (canonical rows, no header) for VNPAY and runs the date.
async fn desk<'a>(app: &'a TestApp, lines: &str) -> Desk<'a> {
    let portal = app.token_for(Role::Portal).await;
    let (f1, f2) = (app.token_for(Role::Finance).await, app.token_for(Role::Finance).await);
    let code = app.new_case(&portal, 1, GPLX, "counter", "2024-07-15").await;
    let csv = format!("gateway_txn_no,txn_ref,amount,fee,txn_time,status\n{lines}");
    let res = app
        .client
        .post(app.url("/api/v1/settlements?gateway=vnpay&profile=canonical&name=day.csv"))
        .bearer_auth(&f1)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let mut d = Desk { app, f1, f2, code, keys: vec![] };
    let report = d.run().await;
    d.keys = report["items"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap().to_owned()).collect();
    d
}

impl Desk<'_> {
    /// Runs (or re-runs) the date: its report.
    async fn run(&self) -> Value {
        let res = self
            .app
            .client
            .post(self.app.url("/api/v1/reconciliations"))
            .bearer_auth(&self.f1)
            .json(&json!({"date": "2024-07-15", "gateway": "vnpay"}))
            .send()
            .await
            .unwrap();
        let (s, report) = json(res).await;
        assert_eq!(s, 201, "{report}");
        report
    }

    /// `POST /api/v1/exceptions/{key}/{verb}` as `tok`.
    async fn act(&self, tok: &str, key: &str, verb: &str, body: Value) -> (u16, Value) {
        let url = self.app.url(&format!("/api/v1/exceptions/{key}/{verb}"));
        json(self.app.client.post(url).bearer_auth(tok).json(&body).send().await.unwrap()).await
    }

    /// The balance (debit − credit) of every account over the whole ledger.
    async fn balances(&self) -> std::collections::BTreeMap<String, i64> {
        let mut b = std::collections::BTreeMap::new();
        for e in self.app.store.ledger_entries(0, 100_000).await.unwrap() {
            *b.entry(e.account.clone()).or_insert(0) += e.debit - e.credit;
        }
        b
    }

    async fn suspense(&self) -> i64 {
        self.balances().await.get("suspense").copied().unwrap_or(0)
    }
}

crate::both_backends! {
    /// Issue 14 item 11: a settlement confirmation for less than the case owes is no paid case.
    async fn a_settlement_confirmation_for_less_than_the_case_owes_is_flagged(app: TestApp) {
        let d = desk(&app, "VNP900001,240715SETTLE01,50000,1100,2024-07-15 10:00:00,success\n").await;
        let (f1, f2, code, key) = (&d.f1, &d.f2, &d.code, &d.keys[0]);
        let (s, e) = d.act(f1, key, "resolve", json!({"action": "confirm_from_settlement", "case_code": code, "note": "paid at the counter of VNPAY"})).await;
        assert_eq!(s, 200, "{e}");
        let (s, e) = d.act(f2, key, "approve", json!({})).await;
        assert_eq!((s, e["state"].as_str()), (200, Some("resolved")), "{e}");
        let p = &app.store.case_payments(&cc(code)).await.unwrap()[0];
        assert_eq!((p.status.as_str(), p.amount.dong()), ("paid", 50_000));
        assert_eq!(p.flags, [feerecon::domain::payment::Flag::CallbackAmountMismatch]);
        // The portal is told both figures and the flag: it does not treat the case as paid.
        let events = app.store.case_events(&cc(code)).await.unwrap();
        let body: Value = serde_json::from_str(&feerecon::notify::body(&events[0])).unwrap();
        assert_eq!((body["type"].as_str(), body["status"].as_str()), (Some("payment.succeeded"), Some("paid")));
        assert_eq!((body["amount"].as_i64(), body["citizen_due"].as_i64()), (Some(50_000), Some(135_000)));
        assert_eq!(body["flags"], json!(["callback_amount_mismatch"]));
        // What was collected has its receipt (issue 18), for the 50,000 collected.
        assert_eq!(body["receipt"]["template"], "EBL01", "{body}");
        // The evidence says how it was authenticated: by two finance users, not by a signature.
        let (_, ev) = json(app.get(&format!("/api/v1/payments/{}/callbacks", p.payment_id), f1).await).await;
        let row = &ev["items"][0];
        assert_eq!((row["source"].as_str(), row["authenticated_by"].as_str(), row["signature_valid"].as_bool(), row["key_used"].clone()),
            (Some("settlement"), Some("settlement_approval"), Some(false), Value::Null), "{row}");
    }
}

crate::both_backends! {
    /// The shortfall of a short settlement confirmation sits in suspense (SPEC §8: the difference
    /// between a payment's amount and its `citizen_due`); its fee_mismatch cannot be accepted
    /// with money there, and writing it off empties suspense so that the day can close.
    async fn a_short_confirmation_s_shortfall_is_written_off_out_of_suspense(app: TestApp) {
        let d = desk(&app, "VNP900001,240715SETTLE01,50000,1100,2024-07-15 10:00:00,success\n").await;
        let (f1, f2, key) = (&d.f1, &d.f2, &d.keys[0]);
        let (s, e) = d.act(f1, key, "resolve", json!({"action": "confirm_from_settlement", "case_code": d.code, "note": "paid at the counter"})).await;
        assert_eq!(s, 200, "{e}");
        let (s, e) = d.act(f2, key, "approve", json!({})).await;
        assert_eq!(s, 200, "{e}");
        assert_eq!(d.suspense().await, 135_000 - 50_000, "the shortfall is in suspense");
        // The next run sees the payment against what the case owes.
        let report = d.run().await;
        let item = &report["items"][0];
        assert_eq!((item["key"].as_str(), item["category"].as_str()), (Some(key.as_str()), Some("fee_mismatch")), "{report}");
        let (s, e) = d.act(f1, key, "resolve", json!({"action": "accept", "note": "fine"})).await;
        assert_eq!(s, 422, "accepting would leave the shortfall in suspense: {e}");
        assert!(e["error"]["message"].as_str().unwrap_or_default().contains("suspense"), "{e}");
        assert_eq!(d.suspense().await, 85_000, "a refused resolution changes nothing");
        let (s, e) = d.act(f1, key, "resolve", json!({"action": "write_off", "note": "the citizen will not pay the rest"})).await;
        assert_eq!(s, 200, "{e}");
        let (s, e) = d.act(f2, key, "approve", json!({})).await;
        assert_eq!((s, e["state"].as_str()), (200, Some("resolved")), "{e}");
        assert_eq!(d.suspense().await, 0, "the shortfall is given up");
        let res = app.client.post(app.url("/api/v1/days/2024-07-15/close")).bearer_auth(f1)
            .json(&json!({"gateway": "vnpay"})).send().await.unwrap();
        let (s, v) = json(res).await;
        assert_eq!(s, 200, "{v}");
        let b = d.balances().await;
        assert_eq!(b.get("write_offs").copied(), Some(85_000), "{b:?}");
        assert_eq!(b.get("suspense").copied().unwrap_or(0), 0, "{b:?}");
        assert_eq!(b.get("gateway_clearing:vnpay").copied().unwrap_or(0), 0, "confirmed and settled: {b:?}");
    }
}

crate::both_backends! {
    /// A confirmation's case is checked when it is requested, not only when it is approved: a
    /// case that is not recorded, or that a payment already settles, is refused at once and the
    /// exception stays open.
    async fn a_confirmation_names_a_recorded_unpaid_case_when_requested(app: TestApp) {
        let d = desk(&app, "VNP900001,240715SETTLE01,135000,1100,2024-07-15 10:00:00,success\nVNP900002,240715SETTLE02,135000,1100,2024-07-15 10:05:00,success\n").await;
        let (f1, f2, code, keys) = (&d.f1, &d.f2, &d.code, &d.keys);
        assert_eq!(keys.len(), 2, "{keys:?}");
        let nobody = "000.00.12.H62-240715-9999";
        let (s, e) = d.act(f1, &keys[0], "resolve", json!({"action": "confirm_from_settlement", "case_code": nobody, "note": "n"})).await;
        assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_field")), "{e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("case_code:") && message.contains(nobody), "{message}");
        let (s, e) = d.act(f1, &keys[0], "resolve", json!({"action": "confirm_from_settlement", "case_code": code, "note": "n"})).await;
        assert_eq!((s, e["state"].as_str()), (200, Some("pending_approval")), "the refusal left it open: {e}");
        let (s, e) = d.act(f2, &keys[0], "approve", json!({})).await;
        assert_eq!((s, e["state"].as_str()), (200, Some("resolved")), "{e}");
        let (s, e) = d.act(f1, &keys[1], "resolve", json!({"action": "confirm_from_settlement", "case_code": code, "note": "n"})).await;
        assert_eq!((s, e["error"]["code"].as_str()), (409, Some("conflict")), "{e}");
        assert!(e["error"]["message"].as_str().unwrap().contains("already"), "{e}");
        let (s, e) = d.act(f1, &keys[1], "resolve", json!({"action": "refund", "note": "a second charge"})).await;
        assert_eq!((s, e["state"].as_str()), (200, Some("pending_approval")), "{e}");
    }
}

crate::both_backends! {
    /// A short confirmation whose case is then corrected to the amount paid (counter → online,
    /// 135,000 → 115,000): the payment still differs from its own quote, so its item stays an
    /// exception (it would be `matched` by rule 7 alone, its 20,000 left in suspense with
    /// nothing open); write_off brings revenue to what the case owes and empties suspense,
    /// giving nothing up.
    async fn a_confirmation_for_a_case_corrected_to_the_amount_paid_clears_suspense(app: TestApp) {
        let d = desk(&app, "VNP900001,240715SETTLE01,115000,1100,2024-07-15 10:00:00,success\n").await;
        let (f1, f2, key) = (&d.f1, &d.f2, &d.keys[0]);
        let (s, e) = d.act(f1, key, "resolve", json!({"action": "confirm_from_settlement", "case_code": d.code, "note": "n"})).await;
        assert_eq!(s, 200, "{e}");
        let (s, e) = d.act(f2, key, "approve", json!({})).await;
        assert_eq!(s, 200, "{e}");
        assert_eq!(d.suspense().await, 20_000);
        let portal = app.token_for(Role::Portal).await;
        assert_eq!(app.new_case(&portal, 1, GPLX, "online_full", "2024-07-15").await, d.code, "the same case, corrected");
        let (_, fee) = json(app.get(&format!("/api/v1/cases/{}/fee", d.code), f1).await).await;
        assert_eq!(fee["citizen_due"].as_i64(), Some(115_000), "{fee}");
        let report = d.run().await;
        assert_eq!(report["items"][0]["category"], "fee_mismatch", "{report}");
        let (s, e) = d.act(f1, key, "resolve", json!({"action": "accept", "note": "n"})).await;
        assert_eq!(s, 422, "{e}");
        let (s, e) = d.act(f1, key, "resolve", json!({"action": "write_off", "note": "the case owes what was paid"})).await;
        assert_eq!(s, 200, "{e}");
        let (s, e) = d.act(f2, key, "approve", json!({})).await;
        assert_eq!((s, e["state"].as_str()), (200, Some("resolved")), "{e}");
        let b = d.balances().await;
        assert_eq!(b.get("suspense").copied().unwrap_or(0), 0, "{b:?}");
        assert_eq!(b.get("write_offs").copied().unwrap_or(0), 0, "nothing given up: {b:?}");
        let revenue: i64 = b.iter().filter(|(a, _)| a.starts_with("revenue:")).map(|(_, v)| -v).sum();
        assert_eq!(revenue, 115_000, "revenue is what the case owes: {b:?}");
    }
}
