//! Settlement and reconciliation end to end, over HTTP, on SQLite and PostgreSQL: simulator files
//! with discrepancies, a run with every category, the report in three formats, exceptions under
//! four eyes, the close and what comes after it, and the ledger totals.

use std::collections::{BTreeMap, BTreeSet};

use feerecon::domain::{Clock as _, Role};
use feerecon::simulator::{Discrepancies, Faults, SimOutcome, Simulator};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Db, TestApp, error_code, json, spawn_gateway_app};

macro_rules! with_gateways {
    ($(#[$meta:meta])* async fn $name:ident($app:ident, $sim:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn body($app: TestApp, $sim: Simulator) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (app, sim) = spawn_gateway_app(Db::Sqlite, &[]).await.unwrap();
                body(app, sim).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some((app, sim)) = spawn_gateway_app(Db::Postgres, &[]).await {
                    body(app, sim).await;
                }
            }
        }
    };
}

const GPLX: &str = "1.002804";

struct Day {
    portal: String,
    f1: String,
    f2: String,
    auditor: String,
    /// label → (case_code, payment json)
    p: BTreeMap<&'static str, (String, Value)>,
}

async fn pay_case(app: &TestApp, sim: &Simulator, portal: &str, seq: u32, outcome: Option<Faults>) -> (String, Value) {
    let code = app.new_case(portal, seq, GPLX, "counter", "2024-07-15").await;
    let (s, p) = app.create_payment(portal, &code, "vnpay", "k").await;
    assert_eq!(s, 201, "{p}");
    reqwest::get(p["pay_url"].as_str().unwrap()).await.unwrap();
    if let Some(f) = outcome {
        sim.pay(p["txn_ref"].as_str().unwrap(), SimOutcome::Success, &f).await.unwrap();
    }
    (code, p)
}

fn r(p: &Value) -> String {
    p["txn_ref"].as_str().unwrap().to_owned()
}

async fn upload(app: &TestApp, token: &str, bytes: Vec<u8>, name: &str) -> (u16, Value) {
    let res = app
        .client
        .post(app.url(&format!("/api/v1/settlements?gateway=vnpay&profile=vnpay&name={name}")))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(bytes)
        .send()
        .await
        .unwrap();
    json(res).await
}

async fn run(app: &TestApp, token: &str, date: &str) -> (u16, Value) {
    let res = app
        .client
        .post(app.url("/api/v1/reconciliations"))
        .bearer_auth(token)
        .json(&json!({"date": date, "gateway": "vnpay"}))
        .send()
        .await
        .unwrap();
    json(res).await
}

async fn act(app: &TestApp, token: &str, id: &str, verb: &str, body: Value) -> (u16, Value) {
    let res = app
        .client
        .post(app.url(&format!("/api/v1/exceptions/{id}/{verb}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    json(res).await
}

fn item<'a>(report: &'a Value, category: &str, payment: Option<&str>) -> &'a Value {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["category"] == category && payment.is_none_or(|p| i["payment_id"] == p))
        .unwrap_or_else(|| panic!("no {category} item in {}", report["items"]))
}

with_gateways! {
    async fn a_day_is_imported_reconciled_resolved_and_closed(app, sim) {
        let profile = feerecon::settlement::Profile::resolve(std::path::Path::new("fixtures/settlement-profiles"), "vnpay").unwrap();
        let mut day = Day {
            portal: app.token_for(Role::Portal).await,
            f1: app.token_for(Role::Finance).await,
            f2: app.token_for(Role::Finance).await,
            auditor: app.token_for(Role::Auditor).await,
            p: BTreeMap::new(),
        };
        let ok = Some(Faults::default());
        for (seq, label, faults) in [
            (1, "matched", ok.clone()),
            (2, "dup_line", ok.clone()),
            (3, "wrong_amount", ok.clone()),
            (4, "missing", ok.clone()),
            (5, "lost", Some(Faults { lost: true, ..Faults::default() })),
            (6, "refunded", ok.clone()),
            (7, "next_day", ok.clone()),
            (8, "fee_changed", ok.clone()),
        ] {
            let v = pay_case(&app, &sim, &day.portal, seq, faults).await;
            day.p.insert(label, v);
        }
        // A case paid twice.
        let (code9, first) = pay_case(&app, &sim, &day.portal, 9, None).await;
        let (_, second) = app.create_payment(&day.portal, &code9, "vnpay", "k2").await;
        reqwest::get(second["pay_url"].as_str().unwrap()).await.unwrap();
        sim.pay(&r(&first), SimOutcome::Success, &Faults::default()).await.unwrap();
        sim.pay(&r(&second), SimOutcome::Success, &Faults::default()).await.unwrap();
        day.p.insert("duplicate", (code9, second.clone()));
        // The quote of case 8 changes after its payment: filed online, 115,000 under TT 63.
        let (code8, _) = &day.p["fee_changed"];
        let body = json!({"procedure_code": GPLX, "applicant_name": "Phạm Thị Hoa", "channel": "online_full",
            "received_at": "2024-07-15T10:00:00+07:00", "receiving_unit": "000.00.12.H62"});
        assert_eq!(app.put_json(&format!("/api/v1/cases/{code8}"), &day.portal, &body).await.status(), 200);

        let today = feerecon::domain::BusinessDate::of(app.clock.now());
        let date = today.to_string();
        let d = Discrepancies {
            missing: vec![r(&day.p["missing"].1)],
            extra: 1,
            wrong_amount: vec![(r(&day.p["wrong_amount"].1), -1000)],
            duplicated: vec![r(&day.p["dup_line"].1)],
            refunds: vec![r(&day.p["refunded"].1)],
            next_day: vec![r(&day.p["next_day"].1)],
        };
        let (lines, carried) = sim.settlement_lines(feerecon::domain::payment::Gateway::Vnpay, today.naive(), &d);
        let file = Simulator::settlement_file(&profile, &lines);

        // A bad file changes nothing; a good one is imported once.
        let mut broken = String::from_utf8(file.clone()).unwrap();
        broken.push_str("999,R,abc,0,15/07/2024 10:00:00,Thành công\n");
        let (s, v) = upload(&app, &day.f1, broken.into_bytes(), "broken.csv").await;
        assert_eq!((s, error_code(&v)), (422, "invalid_field"), "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(&format!("line {}", lines.len() + 2)), "{v}");
        let (_, files) = json(app.get("/api/v1/settlements", &day.auditor).await).await;
        assert!(files["items"].as_array().unwrap().is_empty());
        let (s, v) = upload(&app, &day.f1, file.clone(), "vnpay-day.csv").await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["lines"].as_i64(), Some(lines.len() as i64));
        let (s, v) = upload(&app, &day.f1, file.clone(), "again.csv").await;
        assert_eq!((s, error_code(&v)), (409, "conflict"));
        let said = v["error"]["message"].as_str().unwrap();
        assert!(said.contains("for vnpay") && said.contains("vnpay-day.csv"), "names the earlier import: {said}");
        let (s, _) = upload(&app, &day.auditor, file.clone(), "x.csv").await;
        assert_eq!(s, 403);

        // The run: every category.
        let (s, report) = run(&app, &day.f1, &date).await;
        assert_eq!(s, 201, "{report}");
        let summary = report["summary"].as_object().unwrap();
        assert_eq!(summary.len(), 9);
        let counts: BTreeMap<&str, i64> = summary.iter().map(|(k, v)| (k.as_str(), v["count"].as_i64().unwrap())).collect();
        assert_eq!(counts["matched"], 4, "{counts:?}");
        assert_eq!(counts["duplicate_settlement_line"], 1);
        assert_eq!(counts["refund"], 1);
        assert_eq!(counts["missing_in_records"], 1);
        assert_eq!(counts["unconfirmed_in_records"], 1);
        assert_eq!(counts["duplicate_payment"], 1);
        assert_eq!(counts["amount_mismatch"], 1);
        assert_eq!(counts["fee_mismatch"], 1);
        assert_eq!(counts["missing_in_settlement"], 2, "missing, and the one settled in the next day's file");
        assert!(report["items"].as_array().unwrap().iter().all(|i| i["category"] != "matched"));
        let fm = item(&report, "fee_mismatch", None);
        assert_eq!((fm["recorded_amount"].as_i64(), fm["expected_amount"].as_i64()), (Some(135_000), Some(115_000)));
        let t = &report["totals"];
        assert_eq!(t["recorded_paid"].as_i64(), Some(9 * 135_000));
        assert_eq!(t["settled_net"].as_i64().unwrap(), t["settled_gross"].as_i64().unwrap() - t["gateway_fees"].as_i64().unwrap() - t["refunds"].as_i64().unwrap());
        assert_eq!(t["by_kind"]["duplicates"].as_i64(), Some(135_000));
        // Re-running with the same inputs gives the same hash.
        let (_, again) = run(&app, &day.f1, &date).await;
        assert_eq!(again["report_hash"], report["report_hash"]);
        assert_ne!(again["run_id"], report["run_id"]);

        // The three formats.
        let (_, j) = json(app.get(&format!("/api/v1/reconciliations/{date}?gateway=vnpay"), &day.auditor).await).await;
        assert_eq!(j["report_hash"], report["report_hash"]);
        let csv = app.get(&format!("/api/v1/reconciliations/{date}?gateway=vnpay&format=csv"), &day.auditor).await.text().await.unwrap();
        let total: i64 = counts.values().sum();
        assert_eq!(csv.lines().count() as i64, total + 1, "every item and the header:\n{csv}");
        assert!(csv.contains(",matched,"));
        let xlsx = app.get(&format!("/api/v1/reconciliations/{date}?gateway=vnpay&format=xlsx"), &day.auditor).await.bytes().await.unwrap();
        assert_eq!(&xlsx[..2], b"PK");
        let (_, page) = json(app.get(&format!("/api/v1/reconciliations/{date}/items?gateway=vnpay&category=matched&limit=3"), &day.auditor).await).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 3);
        let cursor = page["next_cursor"].as_str().unwrap().to_owned();
        let (_, rest) = json(app.get(&format!("/api/v1/reconciliations/{date}/items?gateway=vnpay&category=matched&cursor={cursor}"), &day.auditor).await).await;
        assert_eq!(rest["items"].as_array().unwrap().len(), 1);
        assert!(rest["next_cursor"].is_null());

        // Exceptions, under four eyes.
        let missing_id = item(&report, "missing_in_settlement", day.p["missing"].1["payment_id"].as_str()).get("key").unwrap().as_str().unwrap().to_owned();
        let (s, e) = act(&app, &day.f1, &missing_id, "resolve", json!({"action": "write_off", "note": "gateway confirms it never settled"})).await;
        assert_eq!((s, e["state"].as_str()), (200, Some("pending_approval")), "{e}");
        let (s, e) = act(&app, &day.f1, &missing_id, "approve", json!({})).await;
        assert_eq!((s, error_code(&e)), (403, "four_eyes_required"));
        let (s, e) = act(&app, &day.f2, &missing_id, "approve", json!({})).await;
        assert_eq!((s, e["state"].as_str()), (200, Some("resolved")), "{e}");
        assert!(e["resolution"]["posting_id"].as_str().is_some(), "{e}");
        let unconfirmed_id = item(&report, "unconfirmed_in_records", None)["key"].as_str().unwrap().to_owned();
        act(&app, &day.f1, &unconfirmed_id, "resolve", json!({"action": "confirm_from_settlement", "note": "paid at VNPAY"})).await;
        let (s, e) = act(&app, &day.f2, &unconfirmed_id, "reject", json!({"note": "check with VNPAY first"})).await;
        assert_eq!((s, e["state"].as_str()), (200, Some("open")), "{e}");
        assert_eq!(e["resolution"]["last_rejection"]["note"], "check with VNPAY first");
        act(&app, &day.f1, &unconfirmed_id, "resolve", json!({"action": "confirm_from_settlement", "note": "confirmed by phone"})).await;
        let (s, e) = act(&app, &day.f2, &unconfirmed_id, "approve", json!({})).await;
        assert_eq!((s, e["state"].as_str()), (200, Some("resolved")), "{e}");
        let lost = app.payment(&day.portal, day.p["lost"].1["payment_id"].as_str().unwrap()).await;
        assert_eq!(lost["status"], "paid", "confirmed from the settlement line");
        let extra_id = item(&report, "missing_in_records", None)["key"].as_str().unwrap().to_owned();
        let (s, e) = act(&app, &day.f1, &extra_id, "resolve", json!({"action": "confirm_from_settlement"})).await;
        assert_eq!((s, error_code(&e)), (422, "invalid_field"), "a line no payment has needs a case: {e}");
        let (s, e) = act(&app, &day.f1, &extra_id, "resolve", json!({"action": "teleport"})).await;
        assert_eq!((s, error_code(&e)), (422, "invalid_field"), "{e}");
        let (s, _) = act(&app, &day.auditor, &extra_id, "resolve", json!({"action": "accept"})).await;
        assert_eq!(s, 403);
        act(&app, &day.f1, &extra_id, "resolve", json!({"action": "refund", "note": "not ours"})).await;
        act(&app, &day.f2, &extra_id, "approve", json!({})).await;

        // The close waits for a fresh run and for every exception.
        let close = |tok: String| { let app = &app; let date = date.clone(); async move {
            json(app.client.post(app.url(&format!("/api/v1/days/{date}/close"))).bearer_auth(tok).json(&json!({"gateway": "vnpay"})).send().await.unwrap()).await
        }};
        // Issue 12 item 8: only a date that is over closes.
        let (s, v) = close(day.f1.clone()).await;
        assert_eq!((s, error_code(&v)), (409, "day_not_over"), "{v}");
        let (s, v) = json(app.client.post(app.url("/api/v1/days/2030-01-01/close")).bearer_auth(&day.f1).json(&json!({"gateway": "vnpay"})).send().await.unwrap()).await;
        assert_eq!((s, error_code(&v)), (409, "day_not_over"), "a date of the future: {v}");
        app.clock.advance(chrono::TimeDelta::days(1));
        let (s, v) = close(day.f1.clone()).await;
        assert_eq!((s, error_code(&v)), (409, "stale_run"), "stale run: {v}");
        let (_, report2) = run(&app, &day.f1, &date).await;
        assert_eq!(report2["summary"]["unconfirmed_in_records"]["count"], 0);
        assert_eq!(report2["summary"]["matched"]["count"], 5);
        assert_eq!(item(&report2, "missing_in_settlement", day.p["missing"].1["payment_id"].as_str())["state"], "resolved", "carried over");
        let (s, v) = close(day.f1.clone()).await;
        assert_eq!((s, error_code(&v)), (409, "conflict"), "open exceptions: {v}");
        for i in report2["items"].as_array().unwrap() {
            if i["state"] == "open" {
                // What each open exception's money asks for (README "Resolution postings").
                let action = match i["category"].as_str().unwrap() {
                    "refund" | "duplicate_payment" | "fee_mismatch" => "refund",
                    "amount_mismatch" => "write_off",
                    _ => "accept",
                };
                let key = i["key"].as_str().unwrap();
                let (s, e) = act(&app, &day.f1, key, "resolve", json!({"action": action, "note": "reviewed"})).await;
                assert_eq!(s, 200, "{action} of {i}: {e}");
                if action != "accept" {
                    let (s, e) = act(&app, &day.f2, key, "approve", json!({})).await;
                    assert_eq!(s, 200, "{e}");
                }
            }
        }
        let (s, closed) = close(day.f2.clone()).await;
        assert_eq!(s, 200, "{closed}");

        // After the close: nothing about the day changes.
        let (s, v) = close(day.f1.clone()).await;
        assert_eq!((s, error_code(&v)), (409, "day_closed"));
        let (s, v) = act(&app, &day.f1, &extra_id, "resolve", json!({"action": "accept"})).await;
        assert_eq!((s, error_code(&v)), (409, "day_closed"));
        let (s, stored) = run(&app, &day.f1, &date).await;
        assert_eq!((s, stored["run_id"].clone()), (200, report2["run_id"].clone()));

        // The ledger: clearing debits from the day's payments equal recorded_paid; the credits
        // posted at the close for success lines equal settled_gross.
        let entries = app.store.ledger_entries(0, 10_000).await.unwrap();
        let confirmations: i64 = entries.iter().filter(|e| e.kind == "payment_confirmed" && e.business_date == today.naive() && e.account == "gateway_clearing:vnpay").map(|e| e.debit).sum();
        assert_eq!(confirmations, report2["totals"]["recorded_paid"].as_i64().unwrap());
        let settle_credits: i64 = entries.iter().filter(|e| e.kind == "settlement" && (e.account == "gateway_clearing:vnpay" || e.account == "suspense")).map(|e| e.credit).sum();
        assert_eq!(settle_credits, report2["totals"]["settled_gross"].as_i64().unwrap());
        let posted: BTreeSet<String> = entries.iter().filter(|e| e.kind == "settlement").map(|e| e.posting_id.clone()).collect();
        assert_eq!(posted.len() as i64, report2["summary"].as_object().unwrap().iter().filter(|(k, _)| *k != "duplicate_settlement_line" && *k != "missing_in_settlement").map(|(_, v)| v["count"].as_i64().unwrap()).sum::<i64>());
        assert!(app.store.audit_log(0, 100).await.unwrap().iter().any(|e| e.action == "day.close"));
        let cps = app.store.checkpoints().await.unwrap();
        assert!(cps.iter().any(|c| c.kind == "close" && c.gateway == "vnpay" && c.business_date == today.naive()), "the close is signed");
        let (_, bal) = json(app.get(&format!("/api/v1/ledger/balances?date={date}"), &day.auditor).await).await;
        assert_eq!(bal["total_debit"], bal["total_credit"]);
        let (_, live) = json(app.get("/api/v1/ledger/verify", &day.auditor).await).await;
        assert_eq!(live["ok"], true, "{live}");

        // The next day's file, with the line carried over: reconciled on the next open date.
        let next = today.succ();
        let (s, _) = upload(&app, &day.f1, Simulator::settlement_file(&profile, &carried), "vnpay-next.csv").await;
        assert_eq!(s, 201);
        let (s, n) = run(&app, &day.f1, &next.to_string()).await;
        assert_eq!(s, 201, "{n}");
        assert_eq!(n["summary"]["matched"]["count"], 1, "{n}");
        assert_eq!(n["totals"]["recorded_paid"], 0);
        let (_, dayview) = json(app.get(&format!("/api/v1/days/{date}"), &day.auditor).await).await;
        let vn = dayview["gateways"].as_array().unwrap().iter().find(|g| g["gateway"] == "vnpay").unwrap().clone();
        assert!(vn["closed_at"].as_str().is_some(), "{dayview}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_imports_and_reconciles_in_every_format() {
    let (app, sim) = spawn_gateway_app(Db::Sqlite, &[]).await.unwrap();
    let portal = app.token_for(Role::Portal).await;
    let (_, p) = pay_case(&app, &sim, &portal, 1, Some(Faults::default())).await;
    let _ = p;
    let today = feerecon::domain::BusinessDate::of(app.clock.now());
    let profile = feerecon::settlement::Profile::canonical();
    let (lines, _) = sim.settlement_lines(
        feerecon::domain::payment::Gateway::Vnpay,
        today.naive(),
        &Discrepancies { extra: 1, ..Default::default() },
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vnpay.csv");
    std::fs::write(&file, Simulator::settlement_file(&profile, &lines)).unwrap();
    let url = app.database_url.clone();
    let r = crate::cli::feerecon(
        &url,
        &[
            "settlement",
            "import",
            "--gateway",
            "vnpay",
            "--profile",
            "canonical",
            "--operator",
            "thu.finance",
            file.to_str().unwrap(),
        ],
        "",
        &[],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("2 lines"), "{}", r.stdout);
    // The file records who imported it: the --operator, not "cli".
    let files = app.store.settlement_files(None).await.unwrap();
    assert_eq!(files.iter().map(|f| f.imported_by.as_str()).collect::<Vec<_>>(), ["thu.finance"]);
    let r = crate::cli::feerecon(
        &url,
        &["settlement", "import", "--gateway", "vnpay", "--profile", "canonical", file.to_str().unwrap()],
        "",
        &[],
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("imported before"), "{}", r.stderr);
    let date = today.to_string();
    let r = crate::cli::feerecon(&url, &["reconcile", "--date", &date, "--gateway", "vnpay"], "", &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("missing_in_records") && r.stdout.contains("matched"), "{}", r.stdout);
    let r =
        crate::cli::feerecon(&url, &["reconcile", "--date", &date, "--gateway", "vnpay", "--format", "json"], "", &[])
            .await;
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["summary"]["matched"]["count"], 1);
    let r =
        crate::cli::feerecon(&url, &["reconcile", "--date", &date, "--gateway", "vnpay", "--format", "csv"], "", &[])
            .await;
    assert_eq!(r.stdout.lines().count(), 3, "{}", r.stdout);
    let out = dir.path().join("r.xlsx");
    let r = crate::cli::feerecon(
        &url,
        &["reconcile", "--date", &date, "--gateway", "vnpay", "--format", "xlsx", "--out", out.to_str().unwrap()],
        "",
        &[],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(&std::fs::read(&out).unwrap()[..2], b"PK");
    let r = crate::cli::feerecon(&url, &["reconcile", "--date", "2024-13-01", "--gateway", "vnpay"], "", &[]).await;
    assert_eq!(r.code, 1);
}

with_gateways! {
    /// A gateway's transaction number is whatever its signed callback says; characters that could
    /// pass for separators (`|`, `:`, digits, a newline, non-ASCII) come back unchanged from
    /// the store's bulk read into the report.
    async fn any_text_in_a_callback_survives_the_bulk_read(app, sim) {
        let _ = &sim;
        let portal = app.token_for(Role::Portal).await;
        let finance = app.token_for(Role::Finance).await;
        let code = app.new_case(&portal, 1, GPLX, "counter", "2024-07-15").await;
        let (s, p) = app.create_payment(&portal, &code, "vnpay", "k").await;
        assert_eq!(s, 201, "{p}");
        let weird = "12:7|0\n3:ab đ|";
        let env = |k: &str| crate::helpers::GATEWAY_ENV.iter().find(|(n, _)| *n == k).unwrap().1;
        let params: Vec<(String, String)> = vec![
            ("vnp_Amount".into(), (p["amount"].as_i64().unwrap() * 100).to_string()),
            ("vnp_BankCode".into(), "NCB".into()),
            ("vnp_OrderInfo".into(), "Thanh toan le phi".into()),
            ("vnp_PayDate".into(), "20240715170112".into()),
            ("vnp_ResponseCode".into(), "00".into()),
            ("vnp_TmnCode".into(), env("FEERECON_VNPAY_TMN_CODE").into()),
            ("vnp_TransactionNo".into(), weird.into()),
            ("vnp_TransactionStatus".into(), "00".into()),
            ("vnp_TxnRef".into(), r(&p)),
        ];
        let query = feerecon::simulator::sign::vnpay_signed_query(env("FEERECON_VNPAY_HASH_SECRET"), &params);
        let res = app.client.get(app.url(&format!("/gateway/vnpay/ipn?{query}"))).send().await.unwrap();
        let (s, reply) = json(res).await;
        assert_eq!((s, reply["RspCode"].as_str()), (200, Some("00")), "{reply}");
        // The payment's business date is the gateway's pay date (vnp_PayDate).
        let (s, report) = run(&app, &finance, "2024-07-15").await;
        assert_eq!(s, 201, "{report}");
        let missing = item(&report, "missing_in_settlement", p["payment_id"].as_str());
        assert_eq!(missing["gateway_txn_no"], weird, "{missing}");
        assert_eq!(missing["case_code"], code.as_str(), "{missing}");
        assert_eq!(missing["recorded_amount"], p["amount"], "{missing}");
    }
}

pub(crate) async fn upload_as(
    app: &TestApp,
    token: &str,
    gateway: &str,
    profile: &str,
    bytes: Vec<u8>,
) -> (u16, Value) {
    let res = app
        .client
        .post(app.url(&format!("/api/v1/settlements?gateway={gateway}&profile={profile}&name=day.csv")))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(bytes)
        .send()
        .await
        .unwrap();
    json(res).await
}

pub(crate) async fn stored_files(app: &TestApp, token: &str) -> usize {
    let (_, files) = json(app.get("/api/v1/settlements", token).await).await;
    files["items"].as_array().unwrap().len()
}

fn one_line(no: &str) -> Vec<feerecon::settlement::Line> {
    vec![feerecon::settlement::Line {
        line_no: 2,
        gateway_txn_no: no.into(),
        txn_ref: format!("240715R{no}"),
        amount: 115_000,
        fee: 1_265,
        txn_time: chrono::DateTime::parse_from_rfc3339("2024-07-15T09:00:00+07:00").unwrap().to_utc(),
        status: feerecon::settlement::LineStatus::Success,
    }]
}

both_backends! {
    /// SPEC §7.1, issue 13 items 1–3 through the API and the CLI: a gateway's own profile reads
    /// only its gateway's files (canonical serves any), amounts and the canonical header are read
    /// strictly, and a refused file leaves nothing behind, so the same bytes import afterwards
    /// under the right gateway.
    async fn a_settlement_file_is_refused_for_another_gateway_s_profile_or_a_loose_format(app: TestApp) {
        use feerecon::settlement::{Profile, write};
        let finance = app.token_for(Role::Finance).await;
        let auditor = app.token_for(Role::Auditor).await;
        let dir = std::path::Path::new("fixtures/settlement-profiles");
        let vnpay_file = write(&Profile::resolve(dir, "vnpay").unwrap(), &one_line("1001"));
        for gateway in ["momo", "zalopay"] {
            let (s, v) = upload_as(&app, &finance, gateway, "vnpay", vnpay_file.clone()).await;
            assert_eq!((s, error_code(&v)), (422, "invalid_field"), "{gateway}: {v}");
            let m = v["error"]["message"].as_str().unwrap();
            assert!(m.contains("profile") && m.contains("vnpay") && m.contains(gateway), "{m}");
        }
        let path = tempfile::tempdir().unwrap();
        let file = path.path().join("vnpay.csv");
        std::fs::write(&file, &vnpay_file).unwrap();
        let r = crate::cli::feerecon(&app.database_url, &["settlement", "import", "--gateway", "momo", "--profile", "vnpay", file.to_str().unwrap()], "", &[]).await;
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(r.stderr.contains("profile") && r.stderr.contains("momo"), "{}", r.stderr);
        assert_eq!(stored_files(&app, &auditor).await, 0, "nothing kept of a refused file");
        // The same bytes, for their own gateway: imported (the refusal did not take the hash).
        let r = crate::cli::feerecon(&app.database_url, &["settlement", "import", "--gateway", "vnpay", "--profile", "vnpay", file.to_str().unwrap()], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        // canonical serves every gateway.
        let canonical = Profile::canonical();
        for (i, gateway) in ["vnpay", "momo", "zalopay"].into_iter().enumerate() {
            let bytes = write(&canonical, &one_line(&format!("200{i}")));
            let (s, v) = upload_as(&app, &finance, gateway, "canonical", bytes).await;
            assert_eq!(s, 201, "{gateway}: {v}");
        }
        // A gateway's profile for its own gateway, over HTTP.
        let (s, v) = upload_as(&app, &finance, "momo", "momo", write(&Profile::resolve(dir, "momo").unwrap(), &one_line("3001"))).await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(stored_files(&app, &auditor).await, 5);

        // ZaloPay's "." is a thousands separator: 115000.00 is refused, not read as 11,500,000.
        let zalo = "zp_trans_id\tapp_trans_id\tSố tiền\tPhí\tNgày giao dịch\tTrạng thái\n4001\t240715_R4001\t115000.00\t0\t15-07-2024 09:00:00\tThành công\n";
        let bytes: Vec<u8> = [0xFF, 0xFE].into_iter().chain(zalo.encode_utf16().flat_map(u16::to_le_bytes)).collect();
        let (s, v) = upload_as(&app, &finance, "zalopay", "zalopay", bytes).await;
        assert_eq!((s, error_code(&v)), (422, "invalid_field"), "{v}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains("line 2") && m.contains("field amount") && m.contains("groups of three digits"), "{m}");
        // The canonical header is exact: another order or an extra column is refused.
        for header in ["txn_ref,gateway_txn_no,amount,fee,txn_time,status", "gateway_txn_no,txn_ref,amount,fee,txn_time,status,note"] {
            let extra = if header.ends_with("note") { ",x" } else { "" };
            let body = format!("{header}\n5001,240715R5001,115000,0,2024-07-15 09:00:00,success{extra}\n");
            let (s, v) = upload_as(&app, &finance, "vnpay", "canonical", body.into_bytes()).await;
            assert_eq!((s, error_code(&v)), (422, "invalid_field"), "{header}: {v}");
            assert!(v["error"]["message"].as_str().unwrap().contains("line 1"), "{v}");
        }
        assert_eq!(stored_files(&app, &auditor).await, 5, "refused files change nothing");
    }
}

both_backends! {
    /// Issue 13 item 5: a close and its signed checkpoint are one transaction. Without a key to
    /// sign with, the close changes nothing (before, the closure and its postings were committed
    /// and the checkpoint written after, or never); with one, both land, the checkpoint covering
    /// the close's own settlement postings.
    async fn a_close_and_its_checkpoint_are_written_together(app: TestApp) {
        use feerecon::settlement::{Profile, write};
        let finance = app.token_for(Role::Finance).await;
        let bytes = write(&Profile::canonical(), &one_line("7001"));
        let (s, v) = upload_as(&app, &finance, "vnpay", "canonical", bytes).await;
        assert_eq!(s, 201, "{v}");
        // The stranger line is an exception: its money is written off so that the day can close.
        let (s, report) = run(&app, &finance, "2024-07-15").await;
        assert_eq!(s, 201, "{report}");
        let second = app.token_for(Role::Finance).await;
        for i in report["items"].as_array().unwrap() {
            let (s, v) = act(&app, &finance, i["key"].as_str().unwrap(), "resolve", json!({"action": "write_off", "note": "t"})).await;
            assert_eq!(s, 200, "{v}");
            let (s, v) = act(&app, &second, i["key"].as_str().unwrap(), "approve", json!({})).await;
            assert_eq!(s, 200, "{v}");
        }
        let date = chrono::NaiveDate::from_ymd_opt(2024, 7, 15).unwrap();
        let gateway = feerecon::domain::payment::Gateway::Vnpay;
        let unsigned = app.finance_without_key();
        // A run tells where it is (the dashboard's job page shows it): reading, then matching the
        // rows it read, then saving its items.
        let phases = std::sync::Mutex::new(Vec::new());
        let observe = |p| phases.lock().unwrap().push(p);
        let rerun = unsigned.run_observed(date, gateway, "finance-x", &observe).await.unwrap();
        use feerecon::recon::RunPhase;
        let exceptions = rerun.report.items.len();
        let seen = phases.into_inner().unwrap();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!(seen[0], RunPhase::Reading);
        assert!(matches!(seen[1], RunPhase::Matching { rows } if rows >= 1), "{seen:?}");
        assert!(matches!(seen[2], RunPhase::Saving { items } if items >= exceptions.max(1)), "{seen:?}");
        let head_before = app.store.ledger_head().await.unwrap();
        assert!(unsigned.close(date, gateway, "finance-x").await.is_err(), "no key to sign with: no close");
        assert_eq!(app.store.closure(date, gateway).await.unwrap(), None, "nothing of the close is kept");
        assert_eq!(app.store.ledger_head().await.unwrap(), head_before, "no settlement posting either");

        let res = app.client.post(app.url("/api/v1/days/2024-07-15/close")).bearer_auth(&finance)
            .json(&json!({"gateway": "vnpay"})).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let closed_at = app.store.closure(date, gateway).await.unwrap().expect("closed");
        let (head, _) = app.store.ledger_head().await.unwrap();
        assert!(head > head_before.0, "the close posted the line's settlement");
        let cps = app.store.checkpoints().await.unwrap();
        let cp = cps.iter().find(|c| c.kind == "close" && c.business_date == date && c.gateway == "vnpay").expect("a close checkpoint");
        assert_eq!((cp.last_seq, cp.created_at), (head, closed_at), "signed with the close, over its postings");
    }
}

both_backends! {
    /// A date that has not begun in Asia/Ho_Chi_Minh has nothing to reconcile: its run is
    /// refused, naming the date, and nothing is recorded (a run of today, still going, is allowed).
    async fn a_date_that_has_not_begun_is_not_reconciled(app: TestApp) {
        let f1 = app.token_for(Role::Finance).await;
        let today = feerecon::domain::BusinessDate::of(feerecon::domain::Clock::now(&*app.clock)).naive();
        let tomorrow = (today + chrono::Days::new(1)).to_string();
        for date in [tomorrow.as_str(), "9999-12-31"] {
            let (s, v) = run(&app, &f1, date).await;
            assert_eq!((s, error_code(&v)), (422, "invalid_field"), "{date}: {v}");
            let said = v["error"]["message"].as_str().unwrap();
            assert!(said.starts_with("date:") && said.contains(date), "{said}");
            let (s, v) = json(app.get(&format!("/api/v1/reconciliations/{date}?gateway=vnpay"), &f1).await).await;
            assert_eq!(s, 404, "nothing recorded for {date}: {v}");
        }
        let (s, v) = run(&app, &f1, &today.to_string()).await;
        assert_eq!(s, 201, "today: {v}");
    }
}
