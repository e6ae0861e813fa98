//! E-receipts (issue 18) on SQLite and PostgreSQL, over HTTP against the simulator: a receipt per
//! confirmed payment and per budget-covered case, signed and printable, carried by the portal's
//! event; numbering under concurrency on two instances and across a year boundary at +07:00; a
//! correction chain; a day's summary against its receipts and the ledger; who may do what.

use std::collections::BTreeSet;

use feerecon::domain::Clock as _;
use feerecon::domain::payment::Gateway;
use feerecon::domain::receipt::ReceiptRef;
use feerecon::simulator::{Faults, SimOutcome};
use serde_json::{Value, json};

use crate::helpers::{cc, error_code, json};
use crate::world::{GPLX, Paid, World};

/// The organisation the receipts name, and its letters.
pub const ORG: &[(&str, &str)] = &[
    ("FEERECON_RECEIPT_ORG_NAME", "Sở Tư pháp tỉnh Phú Thọ"),
    ("FEERECON_RECEIPT_TAX_CODE", "2600123456"),
    ("FEERECON_RECEIPT_SYMBOL_LETTERS", "TP"),
    ("FEERECON_RECEIPT_BUDGET_PAYER", "Ngân sách thành phố Hà Nội"),
];

/// Runs a test on a world with `ORG` (and `$extra`), on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! receipts_world {
    ($(#[$meta:meta])* async fn $name:ident($w:ident) $(with $extra:expr)? ; $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn env() -> Vec<(&'static str, &'static str)> {
                #[allow(unused_mut)]
                let mut e: Vec<(&'static str, &'static str)> = $crate::receipts::ORG.to_vec();
                $(e.extend_from_slice($extra);)?
                e
            }
            async fn body(mut $w: $crate::world::World) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                body($crate::world::World::with($crate::helpers::Db::Sqlite, &env()).await.unwrap()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(w) = $crate::world::World::with($crate::helpers::Db::Postgres, &env()).await {
                    body(w).await;
                }
            }
        }
    };
}

/// A case of `procedure` received on `date` by an applicant of that name.
pub async fn case_named(w: &mut World, procedure: &str, channel: &str, date: &str, name: &str) -> String {
    w.seq += 1;
    let yymmdd = format!("{}{}{}", &date[2..4], &date[5..7], &date[8..10]);
    let code = format!("000.00.12.H62-{yymmdd}-{:04}", w.seq);
    let body = json!({"procedure_code": procedure, "applicant_name": name, "channel": channel,
        "received_at": format!("{date}T08:00:00+07:00"), "receiving_unit": "000.00.12.H62"});
    let res = w.app.put_json(&format!("/api/v1/cases/{code}"), &w.portal, &body).await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    code
}

/// A case of `procedure` paid now at VNPAY.
pub async fn paid(w: &mut World, procedure: &str, date: &str) -> Paid {
    let code = case_named(w, procedure, "counter", date, "Phạm Thị Hoa").await;
    w.pay_case(&code, Gateway::Vnpay, "k", SimOutcome::Success, &Faults::default()).await.unwrap()
}

pub async fn receipts_of(w: &World, token: &str, code: &str) -> Vec<Value> {
    let (s, v) = json(w.app.get(&format!("/api/v1/cases/{code}/receipts"), token).await).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["next_cursor"].is_null());
    v["items"].as_array().unwrap().clone()
}

pub async fn post(w: &World, token: &str, path: &str, body: Value) -> (u16, Value) {
    json(w.app.client.post(w.app.url(path)).bearer_auth(token).json(&body).send().await.unwrap()).await
}

pub async fn summary(w: &World, token: &str, date: &str) -> Value {
    let (s, v) = json(w.app.get(&format!("/api/v1/receipts/summary?date={date}"), token).await).await;
    assert_eq!(s, 200, "{v}");
    v
}

/// Checks a receipt's Ed25519 signature over its canonical content with its public key.
pub fn signature_holds(r: &Value) -> bool {
    use ed25519_dalek::Verifier as _;
    let sig = &r["signature"];
    let mut pk = [0u8; 32];
    let mut sg = [0u8; 64];
    hex::decode_to_slice(sig["public_key"].as_str().unwrap(), &mut pk).unwrap();
    hex::decode_to_slice(sig["value"].as_str().unwrap(), &mut sg).unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&pk).unwrap();
    let mut message = sig["prefix"].as_str().unwrap().as_bytes().to_vec();
    message.extend_from_slice(sig["content"].as_str().unwrap().as_bytes());
    key.verify(&message, &ed25519_dalek::Signature::from_bytes(&sg)).is_ok()
}

pub fn reference(symbol: &str, number: i64) -> ReceiptRef {
    ReceiptRef { template: "EBL01".into(), symbol: symbol.into(), number }
}

crate::receipts_world! {
    /// A confirmed payment has exactly one receipt (however many copies of its callback come),
    /// with Art. 23(2)'s content, a valid signature by the ledger's key, a printable page, and the
    /// portal's payment.succeeded event carries its symbol and number.
    async fn a_confirmed_payment_has_one_signed_printable_receipt_its_event_carries(w);
    {
        w.at("2026-03-02T10:00:00+07:00");
        let code = case_named(&mut w, "1.003003", "counter", "2026-03-02", "Lê <Thị> & \"Hoa\"").await;
        let faults = Faults { duplicates: 3, concurrent: true, ..Faults::default() };
        let p = w.pay_case(&code, Gateway::Vnpay, "k", SimOutcome::Success, &faults).await.unwrap();
        w.app.wait_for_status(&w.portal, &p.id, "paid").await;
        let rs = receipts_of(&w, &w.portal, &code).await;
        assert_eq!(rs.len(), 1, "one receipt, whatever the copies: {rs:?}");
        let r = &rs[0];
        assert_eq!(
            (r["template"].as_str(), r["symbol"].as_str(), r["number"].as_i64(), r["kind"].as_str(), r["status"].as_str()),
            (Some("EBL01"), Some("26TTP"), Some(1), Some("original"), Some("issued")),
            "{r}"
        );
        assert_eq!((r["total"].as_i64(), r["total_in_words"].as_str()), (Some(600_000), Some("Sáu trăm nghìn đồng")));
        assert_eq!(r["collector"], json!({"name": "Sở Tư pháp tỉnh Phú Thọ", "tax_code": "2600123456"}));
        assert_eq!(r["payer"], json!({"kind": "citizen", "name": "Lê <Thị> & \"Hoa\""}));
        assert_eq!((r["case_code"].as_str(), r["payment_id"].as_str()), (Some(code.as_str()), Some(p.id.as_str())));
        assert_eq!((r["issue_date"].as_str(), r["currency"].as_str()), (Some("2026-03-02"), Some("VND")));
        let items: Vec<(String, String, String, i64)> = r["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (i["fee"].as_str().unwrap().into(), i["kind"].as_str().unwrap().into(),
                 i["budget_subitem"].as_str().unwrap().into(), i["amount"].as_i64().unwrap())
            })
            .collect();
        assert_eq!(items, vec![
            ("le_phi_cap_gcn_lan_dau".into(), "le_phi".into(), "2805".into(), 100_000),
            ("phi_tham_dinh_gcn_lan_dau".into(), "phi".into(), "2627".into(), 500_000),
        ]);
        assert!(r["items"][0]["name"].as_str().unwrap().starts_with("Lệ phí"), "{r}");
        // Signed by the ledger's key over exactly the content served.
        assert!(signature_holds(r));
        let (_, pk) = json(w.app.get("/api/v1/ledger/public-key", &w.auditor).await).await;
        assert_eq!(r["signature"]["public_key"], pk["public_key"], "{pk}");
        let mut forged = r.clone();
        forged["signature"]["content"] = json!(r["signature"]["content"].as_str().unwrap().replace("600000", "60000"));
        assert!(!signature_holds(&forged), "a changed amount breaks the signature");
        let content: Value = serde_json::from_str(r["signature"]["content"].as_str().unwrap()).unwrap();
        assert_eq!((content["total"].as_i64(), content["number"].as_i64()), (Some(600_000), Some(1)));
        // One receipt, read by id by every role; the printable page escapes what it shows.
        let id = r["receipt_id"].as_str().unwrap();
        for token in [&w.portal, &w.f1, &w.auditor] {
            let (s, one) = json(w.app.get(&format!("/api/v1/receipts/{id}"), token).await).await;
            assert_eq!((s, &one), (200, r));
        }
        let res = w.app.get(&format!("/api/v1/receipts/{id}/print"), &w.portal).await;
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let page = res.text().await.unwrap();
        for shown in ["26TTP", "EBL01", "Sáu trăm nghìn đồng", "600.000", "2805", "2627", "Sở Tư pháp tỉnh Phú Thọ",
                      "Lê &lt;Thị&gt; &amp; &quot;Hoa&quot;", "@media print", "Ngày 02 tháng 03 năm 2026"] {
            assert!(page.contains(shown), "{shown} not on the page");
        }
        assert!(!page.contains("<Thị>"), "unescaped text on the page");
        // The portal's event names the receipt.
        let events = w.app.store.case_events(&cc(&code)).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].event_type.as_str(), events[0].receipt()), ("payment.succeeded", Some(reference("26TTP", 1))));
        assert!(feerecon::notify::body(&events[0]).contains(r#""receipt":{"template":"EBL01","symbol":"26TTP","number":1}"#));
        // Unknown receipts and cases.
        assert_eq!(w.app.get("/api/v1/receipts/rct_nope", &w.portal).await.status(), 404);
        assert_eq!(w.app.get("/api/v1/receipts/rct_nope/print", &w.portal).await.status(), 404);
        assert_eq!(w.app.get("/api/v1/cases/000.00.12.H62-260302-0999/receipts", &w.portal).await.status(), 404);
        let (s, v) = json(w.app.get("/api/v1/cases/not-a-code/receipts", &w.portal).await).await;
        assert_eq!((s, error_code(&v)), (422, "invalid_field"));
    }
}

crate::receipts_world! {
    /// Two instances on one database confirm payments at once: every payment gets one receipt,
    /// the numbers are 1..N with no duplicate and no gap, and the sequence's counter says N.
    async fn numbering_under_concurrency_on_two_instances_has_no_duplicate_and_no_gap(w);
    {
        w.at("2026-03-02T10:00:00+07:00");
        let mut env = crate::helpers::gateway_env(&w.sim.url());
        env.extend(ORG.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let other = crate::helpers::spawn_app_on(w.app.db, w.app.database_url.clone(), None, &refs, w.app.clock.clone()).await;
        const N: i64 = 24;
        let mut payments = Vec::new();
        for i in 0..N {
            let code = case_named(&mut w, GPLX, "counter", "2026-03-02", "Trần Văn Nam").await;
            // Created on both instances, so that each instance's committer confirms half.
            let target = if i % 2 == 0 { &w.app } else { &other };
            let (s, p) = target.create_payment(&w.portal, &code, "vnpay", "k").await;
            assert_eq!(s, 201, "{p}");
            reqwest::get(p["pay_url"].as_str().unwrap()).await.unwrap();
            payments.push((code, p["payment_id"].as_str().unwrap().to_owned(), p["txn_ref"].as_str().unwrap().to_owned()));
        }
        let faults = Faults { duplicates: 1, concurrent: true, ..Faults::default() };
        let answers = futures_util::future::join_all(payments.iter().map(|(_, _, r)| w.sim.pay(r, SimOutcome::Success, &faults))).await;
        for a in answers {
            assert!(a.unwrap().iter().all(|d| d.status == 200));
        }
        let mut numbers = BTreeSet::new();
        for (code, id, _) in &payments {
            w.app.wait_for_status(&w.portal, id, "paid").await;
            let rs = receipts_of(&w, &w.portal, code).await;
            assert_eq!(rs.len(), 1, "{rs:?}");
            assert_eq!(rs[0]["payment_id"].as_str(), Some(id.as_str()));
            assert!(numbers.insert(rs[0]["number"].as_i64().unwrap()), "a number twice: {rs:?}");
        }
        let (last, stored) = w.app.store.receipt_numbering("EBL01", "26TTP", 2026).await.unwrap();
        assert_eq!(last, N);
        assert_eq!(stored, (1..=N).collect::<Vec<_>>());
        assert_eq!(numbers.into_iter().collect::<Vec<_>>(), stored);
        let s = summary(&w, &w.f1, "2026-03-02").await;
        assert_eq!(s["numbering"], json!([{"template": "EBL01", "symbol": "26TTP", "year": 2026, "first": 1, "last": N, "count": N, "contiguous": true}]));
        assert_eq!(s["ledger"]["matches"], true, "{s}");
        other.stop().await;
    }
}

crate::both_databases! {
    /// The sequence itself: a rolled-back allocation gives its numbers back (no gap), concurrent
    /// allocations never overlap, the counter never goes back, and a ninth digit is refused.
    async fn numbers_are_allocated_once_and_a_rollback_leaves_no_gap(url: String) {
        let store = feerecon::store::Store::connect(&url).await.unwrap();
        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.allocate_receipt_numbers("EBL01", "26TAA", 2026, 3).await.unwrap(), 1);
        drop(tx);
        let mut handles = Vec::new();
        for t in 0..16u32 {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                let mut tx = store.write().await.unwrap();
                let first = tx.allocate_receipt_numbers("EBL01", "26TAA", 2026, 2).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                if t % 4 == 3 {
                    drop(tx);
                    None
                } else {
                    tx.commit().await.unwrap();
                    Some(first)
                }
            }));
        }
        let mut taken = Vec::new();
        for h in handles {
            if let Some(first) = h.await.unwrap() {
                taken.extend([first, first + 1]);
            }
        }
        taken.sort_unstable();
        assert_eq!(taken, (1..=24).collect::<Vec<i64>>(), "12 commits of 2 numbers: 1..24, nothing lost");
        // Another symbol or year is another sequence.
        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.allocate_receipt_numbers("EBL01", "27TAA", 2027, 1).await.unwrap(), 1);
        let e = tx.allocate_receipt_numbers("EBL01", "26TAA", 2026, feerecon::domain::receipt::MAX_NUMBER).await.unwrap_err();
        assert!(matches!(e, feerecon::store::StoreError::Conflict(_)), "{e}");
        tx.commit().await.unwrap();
        assert_eq!(store.receipt_numbering("EBL01", "26TAA", 2026).await.unwrap().0, 24);
        for q in ["UPDATE receipt_sequences SET last_number = 1", "DELETE FROM receipt_sequences"] {
            let e = crate::helpers::raw_sql(&url, q).await.unwrap_err();
            assert!(e.contains("only move forward") || e.contains("append-only"), "{q}: {e}");
        }
        store.close().await;
    }
}

crate::receipts_world! {
    /// The symbol carries the year of issue at +07:00: a payment confirmed at 23:59 on 31
    /// December is 25TTP no. 1; one confirmed half a minute after midnight in Hà Nội (still
    /// 31 December in UTC) starts 26TTP at 1.
    async fn numbering_restarts_at_1_on_1_january_in_hanoi_time(w);
    {
        w.at("2025-12-31T23:59:00+07:00");
        let a = paid(&mut w, GPLX, "2025-12-31").await;
        w.at("2026-01-01T00:00:30+07:00");
        assert_eq!(w.app.clock.now().format("%Y-%m-%d").to_string(), "2025-12-31", "UTC is still in 2025");
        let b = paid(&mut w, GPLX, "2025-12-31").await;
        let c = paid(&mut w, GPLX, "2025-12-31").await;
        let ra = receipts_of(&w, &w.portal, &a.case_code).await.remove(0);
        let rb = receipts_of(&w, &w.portal, &b.case_code).await.remove(0);
        let rc = receipts_of(&w, &w.portal, &c.case_code).await.remove(0);
        let at = |r: &Value| (r["symbol"].as_str().unwrap().to_owned(), r["number"].as_i64().unwrap(), r["issue_date"].as_str().unwrap().to_owned());
        assert_eq!(at(&ra), ("25TTP".into(), 1, "2025-12-31".into()));
        assert_eq!(at(&rb), ("26TTP".into(), 1, "2026-01-01".into()));
        assert_eq!(at(&rc), ("26TTP".into(), 2, "2026-01-01".into()));
        assert!(rb["issued_at"].as_str().unwrap().starts_with("2026-01-01T00:00:"), "{rb}");
        assert_eq!(w.app.store.receipt_numbering("EBL01", "25TTP", 2025).await.unwrap(), (1, vec![1]));
        assert_eq!(w.app.store.receipt_numbering("EBL01", "26TTP", 2026).await.unwrap(), (2, vec![1, 2]));
        assert_eq!(summary(&w, &w.auditor, "2025-12-31").await["rows"].as_array().unwrap().len(), 1);
        let jan = summary(&w, &w.auditor, "2026-01-01").await;
        assert_eq!(jan["rows"].as_array().unwrap().len(), 2);
        assert_eq!(jan["ledger"]["matches"], true, "{jan}");
    }
}
