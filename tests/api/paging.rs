//! One way to page and one way to fail (issue 20): every list route walked to its end with a
//! small `limit` finds every row of the one-page answer exactly once, in the same order; the
//! finance lists (exceptions across dates, payments by date) filter and page; query-string, path
//! and body-size errors name the parameter or the limit.

use std::collections::HashSet;

use feerecon::domain::payment::Gateway;
use feerecon::settlement::LineStatus;
use serde_json::Value;

use crate::helpers::{Db, TestApp, error_code, json};
use crate::world::{Paid, World};

use crate::world::across as both_worlds;

const D1: &str = "2026-03-02";
const D2: &str = "2026-03-03";

/// Every page of `path` with `limit`: the items in order, and how many pages it took.
async fn walk(app: &TestApp, token: &str, path: &str, limit: u32) -> (Vec<Value>, usize) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &cursor {
            // A cursor is URL-safe as given: passed back unencoded.
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let (s, v) = json(app.get(&url, token).await).await;
        assert_eq!(s, 200, "{url}: {v}");
        let page = v["items"].as_array().unwrap_or_else(|| panic!("{url}: {v}"));
        assert!(page.len() <= limit as usize, "{url}: {} items", page.len());
        items.extend(page.iter().cloned());
        pages += 1;
        assert!(pages < 500, "{path} never ends");
        match v["next_cursor"].as_str() {
            Some(c) => {
                assert!(!page.is_empty(), "{url}: an empty page with a next cursor");
                assert!(c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{url}: cursor {c:?}");
                cursor = Some(c.to_owned());
            }
            None => return (items, pages),
        }
    }
}

/// Walks `path` two rows at a time, then one, and checks each walk against the one-page answer:
/// the same rows, each once, in the same order (so every cursor of the list is followed once).
/// Returns the rows.
async fn walks_whole(app: &TestApp, token: &str, path: &str) -> Vec<Value> {
    let (all, one) = walk(app, token, path, 1000).await;
    assert_eq!(one, 1, "{path}: everything on one page");
    for limit in [2, 1] {
        let (paged, pages) = walk(app, token, path, limit).await;
        assert_eq!(paged, all, "{path} by {limit}: the pages hold every row once, in order");
        let seen: HashSet<String> = paged.iter().map(Value::to_string).collect();
        assert_eq!(seen.len(), paged.len(), "{path} by {limit}: no row twice");
        let want = all.len().div_ceil(limit as usize).max(1);
        assert_eq!(pages, want, "{path} by {limit}: {} rows in {pages} pages", all.len());
    }
    all
}

/// Two business dates of VNPAY payments: the first settled whole and closed, the second with two
/// payments missing from its settlement file (two open exceptions), both reconciled.
async fn two_days(w: &mut World) -> (Vec<Paid>, Vec<Paid>) {
    w.at(&format!("{D1}T09:00:00+07:00"));
    let mut first = Vec::new();
    for _ in 0..5 {
        first.push(w.pay(D1, false).await);
    }
    w.at(&format!("{D2}T09:00:00+07:00"));
    let mut second = Vec::new();
    for _ in 0..3 {
        second.push(w.pay(D2, false).await);
    }
    let t1 = format!("{D1}T09:00:00+07:00");
    let lines: Vec<_> = first.iter().map(|p| (p, p.amount, LineStatus::Success, t1.as_str())).collect();
    w.import(&lines).await;
    let t2 = format!("{D2}T09:00:00+07:00");
    w.import(&[(&second[0], second[0].amount, LineStatus::Success, t2.as_str())]).await;
    w.run(D1).await;
    let (s, v) = w.close(D1).await;
    assert_eq!(s, 200, "{v}");
    w.at("2026-03-04T01:00:00+07:00");
    w.run(D2).await;
    (first, second)
}

both_worlds! {
    async fn every_list_pages_to_its_end_once(w) {
        let (first, second) = two_days(&mut w).await;
        let app = &w.app;
        let a = w.auditor.clone();
        let ledger = walks_whole(app, &a, "/api/v1/ledger").await;
        assert!(ledger.len() > 10, "{} entries", ledger.len());
        let audit = walks_whole(app, &a, "/api/v1/audit-log").await;
        assert!(audit.iter().any(|e| e["action"] == "reconciliation.run"), "runs are audited");
        walks_whole(app, &a, "/api/v1/ledger/checkpoints").await;
        assert_eq!(walks_whole(app, &a, "/api/v1/settlements").await.len(), 2);
        assert_eq!(walks_whole(app, &a, "/api/v1/settlements?gateway=vnpay").await.len(), 2);
        assert_eq!(walks_whole(app, &a, &format!("/api/v1/reconciliations/{D1}/items?gateway=vnpay")).await.len(), 5);
        // Without `state`, every notification in every state: the union of the per-state lists.
        let every = walks_whole(app, &a, "/api/v1/notifications").await;
        assert!(every.len() >= 8, "one per paid payment at least: {}", every.len());
        let mut by_state = Vec::new();
        for st in ["pending", "delivered", "failed"] {
            let these = walks_whole(app, &a, &format!("/api/v1/notifications?state={st}")).await;
            assert!(these.iter().all(|n| n["state"] == st), "{st}: {these:?}");
            by_state.extend(these);
        }
        let ids = |v: &[Value]| v.iter().map(|n| n["event_id"].as_str().unwrap().to_owned()).collect::<HashSet<_>>();
        assert_eq!((every.len(), ids(&every)), (by_state.len(), ids(&by_state)));
        let states = |v: &[Value]| v.iter().map(|n| n["state"].as_str().unwrap().to_owned()).collect::<HashSet<_>>();
        assert_eq!(states(&every), states(&by_state));
        assert_eq!(walks_whole(app, &a, "/api/v1/payments").await.len(), 8);
        assert_eq!(walks_whole(app, &a, &format!("/api/v1/payments?date={D1}")).await.len(), 5);
        assert_eq!(walks_whole(app, &a, "/api/v1/exceptions?state=open").await.len(), 2);
        let code = &second[1].case_code;
        walks_whole(app, &a, &format!("/api/v1/cases/{code}/payments")).await;
        walks_whole(app, &a, &format!("/api/v1/cases/{code}/receipts")).await;
        walks_whole(app, &a, &format!("/api/v1/payments/{}/callbacks", first[0].id)).await;
        walks_whole(app, &a, "/api/v1/remittances").await;

        // `after=` is still read as the cursor of the ledger and the audit log.
        let seq = ledger[3]["seq"].as_i64().unwrap();
        let (_, v) = json(app.get(&format!("/api/v1/ledger?after={seq}&limit=1"), &a).await).await;
        assert_eq!(v["items"][0]["seq"].as_i64(), Some(seq + 1), "{v}");
        // A cursor this API did not give is refused, naming `cursor`: one that does not decode,
        // and one that decodes but names no checkpoint or settlement file.
        let unknown = "bm8tc3VjaC1yb3c"; // base64url of "no-such-row"
        for path in ["/api/v1/ledger?cursor=abc", "/api/v1/payments?cursor=%2F%2F", "/api/v1/exceptions?cursor=x",
                     &format!("/api/v1/ledger/checkpoints?cursor={unknown}"), &format!("/api/v1/settlements?cursor={unknown}")] {
            let (s, v) = json(app.get(path, &a).await).await;
            assert_eq!((s, error_code(&v)), (422, "invalid_field"), "{path}: {v}");
            assert!(v["error"]["message"].as_str().unwrap().contains("cursor"), "{path}: {v}");
        }
    }
}

both_worlds! {
    async fn finance_lists_filter_by_state_date_gateway_and_status(w) {
        let (first, second) = two_days(&mut w).await;
        let app = &w.app;
        let f = w.f1.clone();
        let get = |path: String| {
            let f = f.clone();
            async move {
                let (s, v) = json(app.get(&path, &f).await).await;
                assert_eq!(s, 200, "{path}: {v}");
                v["items"].as_array().unwrap().clone()
            }
        };
        // Exceptions across dates: the two open ones of D2, none of D1, none at MoMo.
        let open = get("/api/v1/exceptions?state=open".into()).await;
        assert_eq!(open.len(), 2);
        assert!(open.iter().all(|e| e["state"] == "open" && e["business_date"] == D2 && e["gateway"] == "vnpay"), "{open:?}");
        let refs: HashSet<&str> = open.iter().map(|e| e["txn_ref"].as_str().unwrap()).collect();
        assert_eq!(refs, HashSet::from([second[1].txn_ref.as_str(), second[2].txn_ref.as_str()]));
        assert!(get(format!("/api/v1/exceptions?state=open&date={D1}")).await.is_empty());
        assert_eq!(get(format!("/api/v1/exceptions?state=open&date={D2}&gateway=vnpay")).await.len(), 2);
        assert!(get("/api/v1/exceptions?state=open&gateway=momo".into()).await.is_empty());
        // One resolution waits for approval: it leaves `open` and shows under `pending_approval`.
        let id = open[0]["id"].as_str().unwrap().to_owned();
        let (s, e) = w.act(&w.f1, &id, "resolve", serde_json::json!({"action": "write_off", "note": "n"})).await;
        assert_eq!(s, 200, "{e}");
        assert_eq!(get("/api/v1/exceptions?state=open".into()).await.len(), 1);
        let pending = get("/api/v1/exceptions?state=pending_approval".into()).await;
        assert_eq!(pending.iter().map(|e| e["id"].as_str().unwrap()).collect::<Vec<_>>(), [id.as_str()]);
        assert_eq!(get("/api/v1/exceptions?state=unresolved".into()).await.len(), 2);
        assert_eq!(get("/api/v1/exceptions".into()).await.len(), 2);

        // Payments by the date they were created or paid on, in +07:00.
        let ids = |v: &[Value]| v.iter().map(|p| p["payment_id"].as_str().unwrap().to_owned()).collect::<HashSet<_>>();
        let d1 = get(format!("/api/v1/payments?date={D1}&gateway=vnpay")).await;
        assert_eq!(ids(&d1), first.iter().map(|p| p.id.clone()).collect());
        let d2 = get(format!("/api/v1/payments?date={D2}&status=paid")).await;
        assert_eq!(ids(&d2), second.iter().map(|p| p.id.clone()).collect());
        assert!(get(format!("/api/v1/payments?date={D1}&gateway=momo")).await.is_empty());
        assert!(get(format!("/api/v1/payments?date={D1}&status=pending")).await.is_empty());
        assert!(get("/api/v1/payments?date=2026-03-05".into()).await.is_empty());
        // The flag filter still works, alone.
        assert!(get("/api/v1/payments?flag=duplicate_payment".into()).await.is_empty());
        // The portal may not read them.
        let (s, _) = json(app.get("/api/v1/exceptions", &w.portal).await).await;
        assert_eq!(s, 403);
        let _ = Gateway::Vnpay;
    }
}

async fn message_of(app: &TestApp, token: &str, path: &str) -> String {
    let (s, v) = json(app.get(path, token).await).await;
    assert_eq!((s, error_code(&v)), (422, "invalid_field"), "{path}: {v}");
    v["error"]["message"].as_str().unwrap().to_owned()
}

crate::both_backends! {
    async fn query_and_path_errors_name_the_parameter(app: TestApp) {
        let t = app.token_for(feerecon::domain::Role::Finance).await;
        for path in ["/api/v1/ledger?limit=abc", "/api/v1/audit-log?limit=0", "/api/v1/payments?limit=5000", "/api/v1/exceptions?limit=-1"] {
            let m = message_of(&app, &t, path).await;
            assert!(m.contains("limit") && m.contains("1000"), "{path}: {m}");
        }
        let m = message_of(&app, &t, "/api/v1/notifications?state=foo").await;
        assert!(m.contains("state") && m.contains("failed") && m.contains("delivered"), "{m}");
        let m = message_of(&app, &t, "/api/v1/exceptions?state=foo").await;
        assert!(m.contains("state") && m.contains("open") && m.contains("pending_approval"), "{m}");
        let m = message_of(&app, &t, "/api/v1/payments?gateway=paypal").await;
        assert!(m.contains("gateway") && m.contains("vnpay"), "{m}");
        let m = message_of(&app, &t, "/api/v1/payments?date=2026-02-30").await;
        assert!(m.contains("date"), "{m}");
        let m = message_of(&app, &t, "/api/v1/ledger?colour=red").await;
        assert!(m.contains("colour"), "{m}");
        let m = message_of(&app, &t, "/api/v1/days/2026-13-01").await;
        assert!(m.contains("date"), "{m}");
        let m = message_of(&app, &t, "/api/v1/reconciliations/yesterday/items?gateway=vnpay").await;
        assert!(m.contains("date"), "{m}");
        // Notifications without a state: every state.
        let (s, v) = json(app.get("/api/v1/notifications", &t).await).await;
        assert_eq!(s, 200, "{v}");
        assert!(v["items"].is_array() && v.get("next_cursor").is_some(), "{v}");
    }
}

mod payloads_too_large_name_the_limit {
    use super::*;
    use crate::helpers::spawn_app_with;

    async fn body(app: TestApp) {
        let portal = app.token_for(feerecon::domain::Role::Portal).await;
        let finance = app.token_for(feerecon::domain::Role::Finance).await;
        let big = serde_json::json!({"applicant_name": "x".repeat(5000)});
        // A JSON body over FEERECON_MAX_BODY, read by the route's own extractor.
        let res = app.put_json("/api/v1/cases/000.00.12.H62-240715-0001", &portal, &big).await;
        let (s, v) = json(res).await;
        assert_eq!((s, error_code(&v)), (413, "payload_too_large"), "{v}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains("FEERECON_MAX_BODY") && m.contains("4096"), "{m}");
        // A body the framework refuses before any handler reads it as JSON.
        let res = app
            .client
            .post(app.url("/api/v1/exceptions/x/approve"))
            .bearer_auth(&finance)
            .header("content-type", "application/json")
            .body(big.to_string())
            .send()
            .await
            .unwrap();
        let (s, v) = json(res).await;
        assert_eq!((s, error_code(&v)), (413, "payload_too_large"), "{v}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains("FEERECON_MAX_BODY") && m.contains("4096"), "{m}");
        // A settlement upload over FEERECON_MAX_UPLOAD.
        let res = app
            .client
            .post(app.url("/api/v1/settlements?gateway=vnpay&profile=canonical"))
            .bearer_auth(&finance)
            .header("content-type", "text/csv")
            .body("y".repeat(20_000))
            .send()
            .await
            .unwrap();
        let (s, v) = json(res).await;
        assert_eq!((s, error_code(&v)), (413, "payload_too_large"), "{v}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains("FEERECON_MAX_UPLOAD") && m.contains("10240"), "{m}");
    }

    const LIMITS: &[(&str, &str)] = &[("FEERECON_MAX_BODY", "4096"), ("FEERECON_MAX_UPLOAD", "10240")];

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        body(spawn_app_with(Db::Sqlite, LIMITS).await.unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(app) = spawn_app_with(Db::Postgres, LIMITS).await {
            body(app).await;
        }
    }
}

both_worlds! {
    /// `date=` is the business date a payment counts on, as reconciliation counts it: the date
    /// it was paid for a paid payment, the date it was created otherwise (both in +07:00).
    #[allow(unused_mut)]
    async fn a_payment_lists_on_the_date_it_counts_on(w) {
        w.at(&format!("{D1}T23:55:00+07:00"));
        let code = w.app.new_case(&w.portal, 1, crate::world::GPLX, "counter", D1).await;
        let late = w.create(&code, Gateway::Vnpay, "k").await.unwrap();
        let other = w.app.new_case(&w.portal, 2, crate::world::GPLX, "counter", D1).await;
        let pending = w.create(&other, Gateway::Vnpay, "k").await.unwrap();
        // Paid ten minutes later, within the payment's time at the gateway, on the next date.
        w.at(&format!("{D2}T00:05:00+07:00"));
        w.complete(late.clone(), feerecon::simulator::SimOutcome::Success, &feerecon::simulator::Faults::default()).await;
        let f = w.f1.clone();
        let ids = |path: String| {
            let (app, f) = (&w.app, f.clone());
            async move {
                let (s, v) = json(app.get(&path, &f).await).await;
                assert_eq!(s, 200, "{path}: {v}");
                v["items"].as_array().unwrap().iter().map(|p| p["payment_id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
            }
        };
        assert_eq!(ids(format!("/api/v1/payments?date={D1}")).await, vec![pending.id.clone()]);
        assert_eq!(ids(format!("/api/v1/payments?date={D2}")).await, vec![late.id.clone()]);
        assert_eq!(ids(format!("/api/v1/payments?date={D2}&status=paid&gateway=vnpay")).await, vec![late.id.clone()]);
        assert!(ids(format!("/api/v1/payments?date={D1}&status=paid")).await.is_empty());
    }
}

both_worlds! {
    /// Open exceptions on two dates, two on each: walked one at a time, every cursor path runs
    /// (within a date by id, and across to the older date), newest date first.
    #[allow(unused_mut)]
    async fn exceptions_page_across_dates_one_at_a_time(w) {
        let (_, second) = two_days(&mut w).await;
        let d3 = "2026-03-04";
        w.at(&format!("{d3}T09:00:00+07:00"));
        let third = [w.pay(d3, false).await, w.pay(d3, false).await];
        w.at("2026-03-05T01:00:00+07:00");
        w.run(d3).await;
        let a = w.auditor.clone();
        let open = walks_whole(&w.app, &a, "/api/v1/exceptions?state=open").await;
        let seen: Vec<(String, String)> = open
            .iter()
            .map(|e| (e["business_date"].as_str().unwrap().to_owned(), e["txn_ref"].as_str().unwrap().to_owned()))
            .collect();
        let dates: Vec<&str> = seen.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(dates, [d3, d3, D2, D2], "{seen:?}");
        let refs: HashSet<&str> = seen.iter().map(|(_, r)| r.as_str()).collect();
        let want: HashSet<&str> =
            [&third[0], &third[1], &second[1], &second[2]].iter().map(|p| p.txn_ref.as_str()).collect();
        assert_eq!(refs, want);
        // Within a date, by exception id (the tie-break the cursor carries).
        for pair in open.windows(2).filter(|p| p[0]["business_date"] == p[1]["business_date"]) {
            assert!(pair[0]["id"].as_str() < pair[1]["id"].as_str(), "{pair:?}");
        }
    }
}
