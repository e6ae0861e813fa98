//! Treasury remittance (issue 19) on SQLite and PostgreSQL, over HTTP against the simulator: a
//! month's statement equals the ledger's revenue by budget sub-item net of refunds decided,
//! budget-covered fees included; a payment confirmed after its month was frozen is remitted with
//! the next month; a transfer is recorded under four eyes, once, posted, audited and exported.
//! Who may call each route is walked by `access.rs`.

use std::collections::BTreeMap;

use feerecon::settlement::LineStatus;
use serde_json::{Value, json};

use crate::helpers::{error_code, json};
use crate::receipts::{case_named, paid, post};
use crate::world::{GPLX, World};

/// The transfers' configuration, Hà Nội's policy (the city budget pays online MoF fees), and no
/// status query before a test delivers a lost callback itself.
const ENV: &[(&str, &str)] = &[
    ("FEERECON_POLICY", "fixtures/policies/ha-noi.toml"),
    ("FEERECON_REMITTANCE_CHAPTER", "418"),
    ("FEERECON_REMITTANCE_PAYER_ACCOUNT", "1234567890 tại Ngân hàng X"),
    ("FEERECON_REMITTANCE_TREASURY", "KBNN Hà Nội"),
    ("FEERECON_REMITTANCE_PHI_ACCOUNT", "3511.0.1234567"),
    ("FEERECON_REMITTANCE_LE_PHI_ACCOUNT", "7111.0.1234567"),
    ("FEERECON_PENDING_QUERY_AFTER", "1d"),
    ("FEERECON_PAYMENT_TTL", "1d"),
];

async fn statement(w: &World, token: &str, period: &str) -> Value {
    let (s, v) = json(w.app.get(&format!("/api/v1/remittances/{period}"), token).await).await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn listed(w: &World, period: &str) -> Value {
    let (s, v) = json(w.app.get("/api/v1/remittances", &w.auditor).await).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["next_cursor"].is_null());
    v["items"].as_array().unwrap().iter().find(|i| i["period"] == period).cloned().unwrap_or(Value::Null)
}

/// The statement's lines as (kind, sub-item) → amount.
fn lines(s: &Value) -> BTreeMap<(String, String), i64> {
    let mut out = BTreeMap::new();
    for t in s["transfers"].as_array().unwrap() {
        for l in t["lines"].as_array().unwrap() {
            let key =
                (t["fee_kind"].as_str().unwrap().to_owned(), l["budget_subitem"].as_str().unwrap_or("").to_owned());
            out.insert(key, l["amount"].as_i64().unwrap());
        }
    }
    out
}

/// The ledger's revenue of business dates in [from, to] remitted by `period_kind`, by (kind,
/// sub-item), read from the entries themselves (the tag ends their refs).
async fn ledger_revenue(w: &World, from: &str, to: &str, period_kind: &str) -> BTreeMap<(String, String), i64> {
    let mut out = BTreeMap::new();
    for e in w.app.store.ledger_entries(0, 100_000).await.unwrap() {
        let d = e.business_date.to_string();
        let Some(kind) = e.account.strip_prefix("revenue:") else { continue };
        if d.as_str() < from || d.as_str() > to {
            continue;
        }
        if !e.refs.ends_with(&format!("remittance_period={period_kind}")) {
            continue;
        }
        let sub = e.refs.split(';').filter_map(|p| p.strip_prefix("budget_subitem=")).next_back().unwrap_or("");
        *out.entry((kind.to_owned(), sub.to_owned())).or_insert(0) += e.credit - e.debit;
    }
    out.retain(|_, v| *v != 0);
    out
}

crate::receipts_world! {
    /// March 2026 in Hà Nội: a citizen pays a licence charge at the counter, the city budget pays
    /// another online (budget-covered), a land file pays a phí and a lệ phí, a fourth payment is
    /// refunded by the gateway and the refund decided under four eyes, and a passport charge
    /// (remitted weekly) is paid. The month's statement
    /// is the ledger's revenue of March by fee kind and sub-item, net of the refund, with the
    /// budget's part; its deadlines are 6 April (5 April 2026 is a Sunday) and 20 April; CSV, XLSX
    /// and the command line give the same figures; the list shows it due, then late after 6 April.
    async fn a_months_statement_is_the_ledgers_revenue_by_sub_item_net_of_refunds(w) with ENV;
    {
        w.at("2026-03-02T09:00:00+07:00");
        let citizen = paid(&mut w, GPLX, "2026-03-02").await;
        let budget = case_named(&mut w, GPLX, "online_full", "2026-03-02", "Đỗ Minh Khoa").await;
        let (s, b) = w.app.create_payment(&w.portal, &budget, "vnpay", "k").await;
        assert_eq!((s, b["status"].as_str()), (201, Some("budget_covered")), "{b}");
        let land = paid(&mut w, "1.003003", "2026-03-02").await;
        let refunded = paid(&mut w, GPLX, "2026-03-02").await;
        let passport = paid(&mut w, "2.002163", "2026-03-02").await;
        for p in [&citizen, &land, &refunded, &passport] {
            w.app.wait_for_status(&w.portal, &p.id, "paid").await;
        }
        let t = "2026-03-02T10:00:00+07:00";
        w.import(&[
            (&citizen, citizen.amount, LineStatus::Success, t),
            (&land, land.amount, LineStatus::Success, t),
            (&refunded, refunded.amount, LineStatus::Success, t),
            (&refunded, refunded.amount, LineStatus::Refund, t),
        ])
        .await;
        w.at("2026-03-03T09:00:00+07:00");
        let report = w.run("2026-03-02").await;
        let refund = report["items"].as_array().unwrap().iter().find(|i| i["category"] == "refund").unwrap();
        w.resolve(refund["key"].as_str().unwrap(), "refund").await;

        let s = statement(&w, &w.auditor, "2026-03").await;
        let ledger = ledger_revenue(&w, "2026-03-01", "2026-03-31", "month").await;
        assert_eq!(lines(&s), ledger, "the statement is the ledger's revenue by sub-item: {s}");
        // The licence charges: the citizen's and the budget's; the refunded one nets to nothing.
        assert_eq!(ledger[&("le_phi".to_owned(), "2853".to_owned())], 2 * 135_000);
        let refunds: Vec<_> = w.app.store.ledger_entries(0, 100_000).await.unwrap().into_iter()
            .filter(|e| e.account == "revenue:le_phi" && e.debit == 135_000).collect();
        assert_eq!(refunds.len(), 1, "the refund decided is taken from revenue");
        assert!(refunds[0].refs.ends_with("budget_subitem=2853;remittance_period=month"), "{}", refunds[0].refs);
        assert!(ledger.contains_key(&("phi".to_owned(), "2627".to_owned())), "{ledger:?}");
        assert_eq!(s["total"].as_i64(), Some(ledger.values().sum::<i64>()));
        assert_eq!((s["period_kind"].as_str(), s["from"].as_str(), s["to"].as_str()), (Some("month"), Some("2026-03-01"), Some("2026-03-31")));
        assert_eq!(s["deadlines"], json!({"deposit_by": "2026-04-06", "pay_in_by": "2026-04-20"}));
        assert_eq!(s["payer"], json!({"name": "Sở Tư pháp tỉnh Phú Thọ", "tax_code": "2600123456", "account": "1234567890 tại Ngân hàng X"}));
        let kinds: Vec<(&str, &str)> = s["transfers"].as_array().unwrap().iter()
            .map(|t| (t["fee_kind"].as_str().unwrap(), t["to_account"].as_str().unwrap())).collect();
        assert_eq!(kinds, vec![("le_phi", "7111.0.1234567"), ("phi", "3511.0.1234567")]);
        let first = &s["transfers"][0]["lines"][0];
        assert_eq!((first["chapter"].as_str(), first["budget_subitem"].as_str()), (Some("418"), Some("2805")));
        assert_eq!(s["warnings"], json!([]));
        assert!(s["frozen"].is_null() && s["remittance"].is_null());

        // Passport charges are deposited weekly, by the Thursday after the week (TT 25/2021 Art.
        // 6(1)): Monday 2 March 2026 is in ISO week 10, deposited by Thursday 12 March.
        assert!(!ledger.keys().any(|(_, sub)| sub == "2752"), "not in the month's statement");
        let week = statement(&w, &w.auditor, "2026-W10").await;
        assert_eq!(lines(&week), ledger_revenue(&w, "2026-03-02", "2026-03-08", "week").await);
        assert_eq!(lines(&week), BTreeMap::from([(("le_phi".to_owned(), "2752".to_owned()), passport.amount)]));
        assert_eq!((week["period_kind"].as_str(), week["deadlines"]["deposit_by"].as_str()), (Some("week"), Some("2026-03-12")));
        let (_, weeks) = json(w.app.get("/api/v1/remittances?kind=week", &w.auditor).await).await;
        let periods: Vec<&str> = weeks["items"].as_array().unwrap().iter().map(|i| i["period"].as_str().unwrap()).collect();
        assert_eq!(periods, vec!["2026-W10"]);
        let (_, none) = json(w.app.get("/api/v1/remittances?from=2026-04-01&to=2026-04-30", &w.auditor).await).await;
        assert_eq!(none["items"], json!([]), "no period of April has money");
        // A period the filter's end cuts is listed whole: March's money came on the 2nd.
        let (_, cut) = json(w.app.get("/api/v1/remittances?kind=month&to=2026-03-01", &w.auditor).await).await;
        let march = &cut["items"][0];
        assert_eq!((march["period"].as_str(), march["due"].as_i64()), (Some("2026-03"), s["total"].as_i64()), "{cut}");
        for (bad, status) in [("kind=year", 422), ("from=2026-3-1", 422), ("to=x", 422), ("page=2", 422)] {
            let (code, v) = json(w.app.get(&format!("/api/v1/remittances?{bad}"), &w.auditor).await).await;
            assert_eq!(code, status, "{bad}: {v}");
        }
        let (code, v) = json(w.app.get("/api/v1/remittances/2026-03?format=pdf", &w.auditor).await).await;
        assert_eq!((code, error_code(&v)), (422, "invalid_field"));

        // CSV, XLSX, and the command line's CSV.
        let res = w.app.get("/api/v1/remittances/2026-03?format=csv", &w.f1).await;
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-disposition"].to_str().unwrap().contains("nop-ngan-sach-2026-03.csv"));
        let csv = res.text().await.unwrap();
        assert_eq!(csv.lines().count(), 1 + ledger.len(), "{csv}");
        assert!(csv.contains(",2853,418,270000,0,2026-04-06,2026-04-20,open"), "{csv}");
        let res = w.app.get("/api/v1/remittances/2026-03?format=xlsx", &w.f1).await;
        assert_eq!(&res.bytes().await.unwrap()[..2], b"PK");
        let env: Vec<(&str, &str)> = crate::receipts::ORG.iter().chain(ENV).copied().collect();
        let cli = crate::cli::feerecon(&w.app.database_url, &["remittance", "statement", "--period", "2026-03", "--format", "csv"], "", &env).await;
        assert_eq!((cli.code, cli.stdout.as_str()), (0, csv.as_str()), "{}", cli.stderr);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("s.xlsx").display().to_string();
        let cli = crate::cli::feerecon(&w.app.database_url, &["remittance", "statement", "--period", "2026-03", "--format", "xlsx", "--out", &out], "", &env).await;
        assert_eq!(cli.code, 0, "{}", cli.stderr);
        assert_eq!(&std::fs::read(&out).unwrap()[..2], b"PK");
        for bad in ["2026-3", "2026-13"] {
            let cli = crate::cli::feerecon(&w.app.database_url, &["remittance", "statement", "--period", bad], "", &env).await;
            assert_eq!(cli.code, 1, "{bad}: {}", cli.stderr);
        }
        let (code, v) = json(w.app.get("/api/v1/remittances/2026-13", &w.auditor).await).await;
        assert_eq!((code, error_code(&v)), (422, "invalid_field"));

        // The list: due and outstanding, then late once 6 April has passed with nothing recorded.
        let row = listed(&w, "2026-03").await;
        assert_eq!((row["due"].as_i64(), row["remitted"].as_i64(), row["outstanding"].as_i64()), (s["total"].as_i64(), Some(0), s["total"].as_i64()));
        assert_eq!((row["late"].as_bool(), row["state"].as_str()), (Some(false), Some("open")));
        w.at("2026-04-06T23:00:00+07:00");
        assert_eq!(listed(&w, "2026-03").await["late"], false, "the deadline day is on time");
        w.at("2026-04-07T08:00:00+07:00");
        assert_eq!(listed(&w, "2026-03").await["late"], true);
    }
}

crate::receipts_world! {
    /// The last evening of March: one payment confirmed at once, one whose callback is lost. On 1
    /// April finance asks to record March's transfer, which freezes its statement; bad requests
    /// change nothing. The lost callback then arrives: the payment is March's, but March is frozen,
    /// so April counts it (carried in). The requester cannot approve; a rejection reopens the
    /// month with the same frozen figures; a second user's approval posts Dr remitted / Cr
    /// treasury transfers once; asking or approving again is refused. The audit log and the
    /// ledger export show it.
    async fn a_remittance_is_recorded_under_four_eyes_once_and_a_late_payment_moves_to_the_next_month(w) with ENV;
    {
        w.at("2026-03-31T23:50:00+07:00");
        let on_time = paid(&mut w, GPLX, "2026-03-31").await;
        w.app.wait_for_status(&w.portal, &on_time.id, "paid").await;
        let late = w.pay("2026-03-31", true).await;
        w.at("2026-04-01T08:00:00+07:00");
        let before = statement(&w, &w.f1, "2026-03").await;
        assert_eq!(before["total"], 135_000);
        let ask = |amount: i64, on: &str, period: &str, reference: &str| json!({"period": period, "amount": amount, "transferred_on": on, "reference": reference, "note": "UNC"});

        // Bad requests: a clear error, nothing frozen, nothing recorded.
        for (body, code, field) in [
            (ask(135_001, "2026-04-01", "2026-03", "UNC 12"), 422, "amount"),
            (ask(135_000, "2026-03-30", "2026-03", "UNC 12"), 422, "transferred_on"),
            (ask(135_000, "2026-04-02", "2026-03", "UNC 12"), 422, "transferred_on"),
            (ask(135_000, "2026-04-01", "2026-03", " "), 422, "reference"),
            (ask(135_000, "2026-04-01", "2026-3", "UNC 12"), 422, "period"),
            (ask(135_000, "2026-04-01", "2026-04", "UNC 12"), 409, "2026-04 ends on 2026-04-30"),
        ] {
            let (s, v) = post(&w, &w.f1, "/api/v1/remittances", body.clone()).await;
            assert_eq!(s, code, "{body}: {v}");
            assert!(v["error"]["message"].as_str().unwrap().contains(field), "{v}");
        }
        let (s, v) = post(&w, &w.auditor, "/api/v1/remittances", ask(135_000, "2026-04-01", "2026-03", "UNC 12")).await;
        assert_eq!(s, 403, "{v}");
        let unchanged = statement(&w, &w.f1, "2026-03").await;
        assert!(unchanged["frozen"].is_null() && unchanged["history"] == json!([]), "{unchanged}");

        let (s, v) = post(&w, &w.f1, "/api/v1/remittances", ask(135_000, "2026-04-01", "2026-03", "UNC 12")).await;
        assert_eq!(s, 201, "{v}");
        assert_eq!((v["remittance"]["state"].as_str(), v["frozen"].is_null()), (Some("pending_approval"), false));
        let (s, again) = post(&w, &w.f2, "/api/v1/remittances", ask(135_000, "2026-04-01", "2026-03", "UNC 13")).await;
        assert_eq!((s, error_code(&again)), (409, "conflict"), "one request at a time");

        // The lost callback arrives after March froze.
        w.callback(&late).await;
        w.app.wait_for_status(&w.portal, &late.id, "paid").await;
        let posted: Vec<_> = w.app.store.ledger_entries(0, 100_000).await.unwrap().into_iter()
            .filter(|e| e.account == "revenue:le_phi" && e.refs.contains(&late.id)).collect();
        assert_eq!(posted[0].business_date.to_string(), "2026-03-31", "the payment is March's");
        let march = statement(&w, &w.f1, "2026-03").await;
        assert_eq!((march["total"].as_i64(), march["through_seq"].clone()), (Some(135_000), v["through_seq"].clone()), "frozen");
        let april = statement(&w, &w.f1, "2026-04").await;
        assert_eq!((april["total"].as_i64(), april["carried_in"].as_i64()), (Some(135_000), Some(135_000)), "{april}");

        // Four eyes: not the requester; a rejection reopens the month, frozen as it was.
        let (s, e) = post(&w, &w.f1, "/api/v1/remittances/2026-03/approve", json!({})).await;
        assert_eq!((s, error_code(&e)), (403, "four_eyes_required"), "{e}");
        let (s, r) = post(&w, &w.f2, "/api/v1/remittances/2026-03/reject", json!({"note": "sai số UNC"})).await;
        assert_eq!((s, r["remittance"].clone(), r["history"][0]["state"].as_str()), (200, Value::Null, Some("rejected")), "{r}");
        assert_eq!(r["through_seq"], v["through_seq"]);
        let (s, v) = post(&w, &w.f2, "/api/v1/remittances", ask(135_000, "2026-04-01", "2026-03", "UNC 13")).await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["total"], 135_000, "the same frozen figures, the late payment still April's");
        let (s, e) = post(&w, &w.f2, "/api/v1/remittances/2026-03/approve", json!({})).await;
        assert_eq!((s, error_code(&e)), (403, "four_eyes_required"));
        let (s, done) = post(&w, &w.f1, "/api/v1/remittances/2026-03/approve", json!({"note": "đã đối chiếu"})).await;
        assert_eq!(s, 200, "{done}");
        assert_eq!((done["remittance"]["state"].as_str(), done["remitted"].as_i64(), done["outstanding"].as_i64(), done["late"].as_bool()),
            (Some("recorded"), Some(135_000), Some(0), Some(false)));

        // Once: approving or asking again is refused, and the ledger holds one remittance posting.
        let (s, _) = post(&w, &w.f2, "/api/v1/remittances/2026-03/approve", json!({})).await;
        assert_eq!(s, 409);
        let (s, _) = post(&w, &w.f2, "/api/v1/remittances", ask(135_000, "2026-04-01", "2026-03", "UNC 14")).await;
        assert_eq!(s, 409);
        let entries: Vec<_> = w.app.store.ledger_entries(0, 100_000).await.unwrap().into_iter().filter(|e| e.kind == "remittance").collect();
        let shape: Vec<(&str, i64, i64, String)> = entries.iter().map(|e| (e.account.as_str(), e.debit, e.credit, e.business_date.to_string())).collect();
        assert_eq!(shape, vec![("remitted:le_phi", 135_000, 0, "2026-04-01".to_owned()), ("treasury_transfers", 0, 135_000, "2026-04-01".to_owned())]);
        assert!(entries[0].refs.ends_with("budget_subitem=2853;remittance_period=month"), "{}", entries[0].refs);
        assert_eq!(done["remittance"]["posting_id"].as_str(), Some(entries[0].posting_id.as_str()));
        let b = w.balances().await;
        assert_eq!((b["remitted:le_phi"], b["treasury_transfers"]), (135_000, -135_000));
        w.verifies().await;

        // The list, the audit log and the export.
        let row = listed(&w, "2026-03").await;
        assert_eq!((row["state"].as_str(), row["remitted"].as_i64(), row["outstanding"].as_i64(), row["transferred_on"].as_str()),
            (Some("recorded"), Some(135_000), Some(0), Some("2026-04-01")));
        assert_eq!((listed(&w, "2026-04").await["due"].as_i64(), listed(&w, "2026-04").await["state"].as_str()), (Some(135_000), Some("open")));
        let (_, log) = json(w.app.get("/api/v1/audit-log", &w.auditor).await).await;
        let actions: Vec<&str> = log["items"].as_array().unwrap().iter().filter(|e| e["subject"] == "2026-03").map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions.iter().filter(|a| a.starts_with("remittance.")).count(), 4, "{actions:?}");
        for a in ["remittance.request", "remittance.reject", "remittance.approve"] {
            assert!(actions.contains(&a), "{actions:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("export");
        let r = crate::cli::feerecon(&w.app.database_url, &["ledger", "export", "--from", "2026-04-01", "--to", "2026-04-01", "--out", out.to_str().unwrap()], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        let csv = std::fs::read_to_string(out.join("entries.csv")).unwrap();
        assert!(csv.contains("remitted:le_phi") && csv.contains("treasury_transfers"), "{csv}");
        let r = crate::cli::feerecon(&w.app.database_url, &["ledger", "verify", out.to_str().unwrap()], "", &[]).await;
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    }
}

crate::receipts_world! {
    /// A finance officer in the dashboard: March's row with its deadline, amounts and downloads;
    /// the statement as XLSX; one officer records the transfer, the same officer cannot approve
    /// it, a second one does, and the row shows it recorded; a form with a wrong amount changes
    /// nothing.
    async fn the_dashboard_lists_periods_downloads_statements_and_records_under_four_eyes(w) with ENV;
    {
        w.at("2026-03-02T09:00:00+07:00");
        let p = paid(&mut w, GPLX, "2026-03-02").await;
        w.app.wait_for_status(&w.portal, &p.id, "paid").await;
        w.at("2026-04-02T09:00:00+07:00");
        let lan = crate::dash::person(&w.app, "lan.finance", feerecon::domain::Role::Finance).await;
        let hoa = crate::dash::person(&w.app, "hoa.finance", feerecon::domain::Role::Finance).await;
        let page = lan.get("/remittances").await;
        page.assert(200, "data-period=\"2026-03\"").assert(200, "135.000 ₫").assert(200, "06/04/2026");
        let file = lan.get("/remittances/2026-03/statement?format=xlsx").await;
        assert_eq!(file.status, 200);
        assert!(file.header("content-disposition").contains("nop-ngan-sach-2026-03.xlsx"));
        let form = [("period", "2026-03"), ("amount", "135001"), ("transferred_on", "2026-04-02"), ("reference", "UNC 5")];
        lan.post("/remittances", &form).await.assert(422, "135000");
        assert_eq!(statement(&w, &w.auditor, "2026-03").await["history"], json!([]), "nothing recorded");
        let form = [("period", "2026-03"), ("amount", "135000"), ("transferred_on", "2026-04-02"), ("reference", "UNC 5")];
        let r = lan.post("/remittances", &form).await;
        assert_eq!((r.status, r.location()), (303, "/remittances?done=requested"));
        lan.post("/remittances/2026-03/approve", &[]).await.assert(403, "another finance user must decide");
        let ok = hoa.post("/remittances/2026-03/approve", &[]).await;
        assert_eq!((ok.status, ok.location()), (303, "/remittances?done=approved"));
        lan.get("/remittances?done=approved").await.assert(200, "Đã ghi nhận");
        let s = statement(&w, &w.auditor, "2026-03").await;
        assert_eq!((s["remittance"]["requested_by"].as_str(), s["remittance"]["decided_by"].as_str()), (Some("lan.finance"), Some("hoa.finance")));
    }
}
