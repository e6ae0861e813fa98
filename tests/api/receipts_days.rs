//! E-receipts (issue 18), what finance does with them, on SQLite and PostgreSQL: a correction
//! chain (replacement, adjustment, refusals, nothing ever changed), a day's summary (Mẫu
//! 01/TH-BLĐT) against its receipts and the ledger's confirmations of that day (citizens, the
//! budget, a duplicate charge, a waived case), the same summary from the command line, and who
//! may call each route.

use feerecon::domain::Role;
use feerecon::domain::payment::Gateway;
use feerecon::simulator::{Faults, SimOutcome};
use serde_json::{Value, json};

use crate::helpers::{cc, error_code, json};
use crate::receipts::{case_named, paid, post, receipts_of, reference, signature_holds, summary};
use crate::world::GPLX;

crate::receipts_world! {
    /// Original → replacement (payer's name corrected) → adjustment (a partial refund): each a new
    /// signed receipt naming the one it corrects; the corrected ones show their status; what may
    /// not be corrected is refused and changes nothing; no receipt row can be changed or deleted.
    async fn a_correction_chain_replaces_and_adjusts_and_never_changes_a_receipt(w);
    {
        w.at("2026-03-02T10:00:00+07:00");
        let p = paid(&mut w, GPLX, "2026-03-02").await;
        assert_eq!(p.gateway, Gateway::Vnpay);
        let r1 = receipts_of(&w, &w.portal, &p.case_code).await.remove(0);
        let id1 = r1["receipt_id"].as_str().unwrap().to_owned();
        let path = |id: &str, verb: &str| format!("/api/v1/receipts/{id}/{verb}");

        // Only finance corrects.
        for token in [&w.portal, &w.auditor] {
            let (s, v) = post(&w, token, &path(&id1, "replace"), json!({"reason": "x"})).await;
            assert_eq!((s, error_code(&v)), (403, "forbidden"));
        }
        let res = w.app.client.post(w.app.url(&path(&id1, "adjust"))).json(&json!({})).send().await.unwrap();
        assert_eq!(res.status(), 401);
        // Bad requests change nothing.
        for (body, code) in [
            (json!({"reason": ""}), 422),
            (json!({"reason": "x", "payer_name": "a\nb"}), 422),
            (json!({"reason": "x", "colour": "red"}), 422),
        ] {
            let (s, v) = post(&w, &w.f1, &path(&id1, "replace"), body.clone()).await;
            assert_eq!(s, code, "{body}: {v}");
        }

        let (s, r2) = post(&w, &w.f1, &path(&id1, "replace"), json!({"reason": "Sai tên người nộp", "payer_name": "Phạm Thị Hòa"})).await;
        assert_eq!(s, 201, "{r2}");
        let id2 = r2["receipt_id"].as_str().unwrap().to_owned();
        assert_eq!((r2["kind"].as_str(), r2["number"].as_i64(), r2["total"].as_i64()), (Some("replacement"), Some(2), Some(135_000)));
        assert_eq!((r2["payer"]["name"].as_str(), r2["reason"].as_str()), (Some("Phạm Thị Hòa"), Some("Sai tên người nộp")));
        assert_eq!(r2["related"], json!({"receipt_id": id1, "template": "EBL01", "symbol": "26TTP", "number": 1, "issue_date": "2026-03-02"}));
        assert!(signature_holds(&r2));
        let (_, now1) = json(w.app.get(&format!("/api/v1/receipts/{id1}"), &w.f1).await).await;
        assert_eq!((now1["status"].as_str(), now1["replaced_by"].as_str()), (Some("replaced"), Some(id2.as_str())));
        assert_eq!(now1["signature"], r1["signature"], "the original's content and signature never change");
        let page = w.app.get(&path(&id1, "print"), &w.portal).await.text().await.unwrap();
        assert!(page.contains("đã bị thay thế"), "the original's page says it was replaced");

        // A replaced receipt is corrected through its replacement only.
        for verb in ["replace", "adjust"] {
            let (s, v) = post(&w, &w.f1, &path(&id1, verb), json!({"reason": "again", "items": []})).await;
            assert!(s == 409 || s == 422, "{verb}: {v}");
        }
        let (s, v) = post(&w, &w.f1, &path(&id1, "replace"), json!({"reason": "again"})).await;
        assert_eq!((s, error_code(&v)), (409, "conflict"), "{v}");

        // A partial refund: an adjustment of the replacement.
        let fee = r2["items"][0]["fee"].as_str().unwrap().to_owned();
        for (body, why) in [
            (json!({"reason": "hoàn", "items": [{"fee": fee, "amount": -135_001}]}), "below zero"),
            (json!({"reason": "hoàn", "items": [{"fee": "le_phi_khac", "amount": -1}]}), "not an item"),
            (json!({"reason": "hoàn", "items": []}), "at least one"),
            (json!({"reason": "hoàn", "items": [{"fee": fee, "amount": 0}]}), "zero"),
        ] {
            let (s, v) = post(&w, &w.f1, &path(&id2, "adjust"), body).await;
            assert_eq!((s, error_code(&v)), (422, "invalid_field"), "{v}");
            assert!(v["error"]["message"].as_str().unwrap().contains(why), "{v}");
        }
        assert_eq!(w.app.store.receipt_numbering("EBL01", "26TTP", 2026).await.unwrap().0, 2, "refusals allocate nothing");
        let (s, r3) = post(&w, &w.f1, &path(&id2, "adjust"), json!({"reason": "Hoàn trả một phần", "items": [{"fee": fee, "amount": -35_000}]})).await;
        assert_eq!(s, 201, "{r3}");
        let id3 = r3["receipt_id"].as_str().unwrap().to_owned();
        assert_eq!((r3["kind"].as_str(), r3["number"].as_i64(), r3["total"].as_i64()), (Some("adjustment"), Some(3), Some(-35_000)));
        assert_eq!(r3["total_in_words"], "Điều chỉnh giảm ba mươi lăm nghìn đồng");
        assert_eq!(r3["related"]["receipt_id"].as_str(), Some(id2.as_str()));
        // What is left on the item bounds the next adjustment; an adjustment is not itself corrected.
        let (s, v) = post(&w, &w.f1, &path(&id2, "adjust"), json!({"reason": "x", "items": [{"fee": fee, "amount": -100_001}]})).await;
        assert_eq!(s, 422, "{v}");
        let (s, v) = post(&w, &w.f1, &path(&id2, "replace"), json!({"reason": "x"})).await;
        assert_eq!((s, error_code(&v)), (409, "conflict"), "an adjusted receipt is adjusted again, not replaced: {v}");
        let (s, v) = post(&w, &w.f1, &path(&id3, "adjust"), json!({"reason": "x", "items": [{"fee": fee, "amount": -1}]})).await;
        assert_eq!((s, error_code(&v)), (409, "conflict"), "{v}");

        let chain = receipts_of(&w, &w.auditor, &p.case_code).await;
        let states: Vec<(&str, &str, &str)> = chain
            .iter()
            .map(|r| (r["receipt_id"].as_str().unwrap(), r["kind"].as_str().unwrap(), r["status"].as_str().unwrap()))
            .collect();
        assert_eq!(states, vec![(id1.as_str(), "original", "replaced"), (id2.as_str(), "replacement", "adjusted"), (id3.as_str(), "adjustment", "issued")]);
        assert_eq!(chain[1]["adjusted_by"], json!([id3]));
        // The day's summary shows the chain: status as of the end of the day, the related receipt,
        // the period it adjusts and why.
        let s = summary(&w, &w.f1, "2026-03-02").await;
        let rows: Vec<Value> = s["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| json!([r["number"], r["status_label"], r["amount"], r["related"], r["adjusted_period"], r["explanation"]]))
            .collect();
        assert_eq!(rows, vec![
            json!([1, "Đã bị thay thế", 135_000, null, null, null]),
            json!([2, "Đã bị điều chỉnh", 135_000, "EBL01/26TTP/1", "2026-03-02", "Sai tên người nộp"]),
            json!([3, "Điều chỉnh", -35_000, "EBL01/26TTP/2", "2026-03-02", "Hoàn trả một phần"]),
        ]);
        assert_eq!(s["totals"], json!({"receipts": 3, "originals": 135_000, "adjustments": -35_000}));
        assert_eq!(s["ledger"]["matches"], true, "{s}");
        // Audited, and the database refuses to change or delete a receipt.
        let (_, log) = json(w.app.get("/api/v1/audit-log", &w.auditor).await).await;
        let actions: Vec<&str> = log["items"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
        assert!(actions.contains(&"receipt.replace") && actions.contains(&"receipt.adjust"), "{actions:?}");
        for q in ["UPDATE receipts SET total = 1", "DELETE FROM receipts"] {
            let e = crate::helpers::raw_sql(&w.app.database_url, q).await.unwrap_err();
            assert!(e.contains("append-only"), "{q}: {e}");
        }
    }
}

crate::receipts_world! {
    /// One day in Hà Nội: a citizen pays at the counter rate, the city budget pays an online MoF
    /// fee (its receipt names the budget), a case is paid twice (the second charge's receipt says
    /// it is to be refunded, and finance adjusts it to zero), a waived case collects nothing. The
    /// day's summary lists exactly those receipts, and its originals collect what the ledger's
    /// confirmations of that day do; a receipt of the next day is on the next day's summary.
    async fn a_days_summary_matches_its_receipts_and_the_ledgers_confirmations(w)
        with &[("FEERECON_POLICY", "fixtures/policies/ha-noi.toml")];
    {
        w.at("2026-03-02T09:00:00+07:00");
        let citizen = paid(&mut w, GPLX, "2026-03-02").await;
        let budget_case = case_named(&mut w, GPLX, "online_full", "2026-03-02", "Đỗ Minh Khoa").await;
        let (s, b) = w.app.create_payment(&w.portal, &budget_case, "vnpay", "k").await;
        assert_eq!((s, b["status"].as_str()), (201, Some("budget_covered")), "{b}");
        let twice = case_named(&mut w, GPLX, "counter", "2026-03-02", "Vũ Thị Lan").await;
        let mut charges = Vec::new();
        for (g, key) in [(Gateway::Vnpay, "k1"), (Gateway::Momo, "k2")] {
            let (s, p) = w.app.create_payment(&w.portal, &twice, g.as_str(), key).await;
            assert_eq!(s, 201, "{p}");
            reqwest::get(p["pay_url"].as_str().unwrap()).await.unwrap();
            charges.push(p["txn_ref"].as_str().unwrap().to_owned());
        }
        for r in &charges {
            w.sim.pay(r, SimOutcome::Success, &Faults::default()).await.unwrap();
        }
        let waived = case_named(&mut w, "1.000894", "counter", "2026-03-02", "Hồ Văn Tư").await;
        let (s, v) = w.app.create_payment(&w.portal, &waived, "vnpay", "k").await;
        assert_eq!((s, v["status"].as_str()), (201, Some("waived")), "{v}");

        // The budget's receipt, carried by payment.budget_covered.
        let rb = receipts_of(&w, &w.portal, &budget_case).await;
        assert_eq!(rb.len(), 1);
        assert_eq!(rb[0]["payer"], json!({"kind": "budget", "name": "Ngân sách thành phố Hà Nội"}));
        assert_eq!((rb[0]["applicant"].as_str(), rb[0]["total"].as_i64()), (Some("Đỗ Minh Khoa"), Some(135_000)));
        assert!(rb[0]["payment_id"].as_str() == b["payment_id"].as_str());
        let ev = w.app.store.case_events(&cc(&budget_case)).await.unwrap();
        assert_eq!((ev[0].event_type.as_str(), ev[0].receipt()), ("payment.budget_covered", Some(reference("26TTP", rb[0]["number"].as_i64().unwrap()))));
        // The second charge: its own receipt, marked; its event carries it.
        let rt = receipts_of(&w, &w.portal, &twice).await;
        assert_eq!(rt.len(), 2, "{rt:?}");
        assert!(rt[0]["note"].is_null() && rt[1]["note"].as_str().unwrap().contains("hoàn trả"), "{rt:?}");
        let ev = w.app.store.case_events(&cc(&twice)).await.unwrap();
        let types: Vec<(&str, Option<i64>)> = ev.iter().map(|e| (e.event_type.as_str(), e.receipt_number)).collect();
        assert_eq!(types, vec![("payment.succeeded", rt[0]["number"].as_i64()), ("payment.duplicate", rt[1]["number"].as_i64())]);
        // Refunded: adjusted to zero.
        let fee = rt[1]["items"][0]["fee"].as_str().unwrap();
        let (s, adj) = post(&w, &w.f2, &format!("/api/v1/receipts/{}/adjust", rt[1]["receipt_id"].as_str().unwrap()),
            json!({"reason": "Hoàn trả khoản thu trùng", "items": [{"fee": fee, "amount": -135_000}]})).await;
        assert_eq!(s, 201, "{adj}");
        // Nothing collected, nothing receipted.
        assert!(receipts_of(&w, &w.portal, &waived).await.is_empty());
        assert_eq!(w.app.store.case_events(&cc(&waived)).await.unwrap()[0].receipt(), None);

        let s = summary(&w, &w.auditor, "2026-03-02").await;
        assert_eq!((s["form"].as_str(), s["date"].as_str()), (Some("01/TH-BLĐT"), Some("2026-03-02")));
        assert_eq!(s["collector"], json!({"name": "Sở Tư pháp tỉnh Phú Thọ", "tax_code": "2600123456"}));
        let rows = s["rows"].as_array().unwrap();
        let mut expected: Vec<String> = Vec::new();
        for code in [&citizen.case_code, &budget_case, &twice] {
            expected.extend(receipts_of(&w, &w.portal, code).await.iter().map(|r| r["receipt_id"].as_str().unwrap().to_owned()));
        }
        let listed: Vec<String> = rows.iter().map(|r| r["receipt_id"].as_str().unwrap().to_owned()).collect();
        let (mut a, mut b2) = (expected.clone(), listed.clone());
        a.sort();
        b2.sort();
        assert_eq!(a, b2, "exactly the day's receipts");
        let stt: Vec<i64> = rows.iter().map(|r| r["stt"].as_i64().unwrap()).collect();
        assert_eq!(stt, (1..=5).collect::<Vec<_>>());
        let numbers: Vec<i64> = rows.iter().map(|r| r["number"].as_i64().unwrap()).collect();
        assert_eq!(numbers, (1..=5).collect::<Vec<_>>());
        assert!(rows.iter().any(|r| r["payer_kind"] == "budget" && r["note"].as_str().unwrap().contains("Ngân sách thành phố Hà Nội")));
        // The ledger's confirmations of that day, read from the ledger itself.
        let mut collected = 0;
        let mut postings = std::collections::BTreeSet::new();
        for e in w.app.store.ledger_entries(0, 100_000).await.unwrap() {
            let confirms = e.kind == "payment_confirmed" || e.kind == "budget_covered";
            if confirms && e.business_date.to_string() == "2026-03-02" {
                postings.insert(e.posting_id.clone());
                if e.account.starts_with("gateway_clearing:") || e.account == "budget_receivable" {
                    collected += e.debit;
                }
            }
        }
        assert_eq!(collected, 4 * 135_000);
        assert_eq!(s["totals"], json!({"receipts": 5, "originals": collected, "adjustments": -135_000}));
        assert_eq!(s["ledger"], json!({"confirmations": postings.len(), "collected": collected, "matches": true}));

        // CSV and XLSX downloads; the command line writes the same CSV.
        let res = w.app.get("/api/v1/receipts/summary?date=2026-03-02&format=csv", &w.f1).await;
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-disposition"].to_str().unwrap().contains("01-TH-BLDT-2026-03-02.csv"));
        let csv = res.text().await.unwrap();
        assert_eq!(csv.lines().count(), 6, "{csv}");
        assert!(csv.starts_with("STT,Ký hiệu mẫu số biên lai,Ký hiệu biên lai,Số biên lai,Ngày lập,"), "{csv}");
        let res = w.app.get("/api/v1/receipts/summary?date=2026-03-02&format=xlsx", &w.f1).await;
        assert_eq!(res.status(), 200);
        assert_eq!(&res.bytes().await.unwrap()[..2], b"PK");
        let cli = crate::cli::feerecon(&w.app.database_url, &["receipts", "summary", "--date", "2026-03-02", "--format", "csv"], "", &[]).await;
        assert_eq!((cli.code, cli.stdout.as_str()), (0, csv.as_str()), "{}", cli.stderr);
        let cli = crate::cli::feerecon(&w.app.database_url, &["receipts", "summary", "--date", "2026-03-02"], "", &[]).await;
        let from_cli: Value = serde_json::from_str(&cli.stdout).unwrap();
        assert_eq!((from_cli["rows"].clone(), from_cli["ledger"]["matches"].clone()), (s["rows"].clone(), json!(true)));
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("d.xlsx").display().to_string();
        let cli = crate::cli::feerecon(&w.app.database_url, &["receipts", "summary", "--date", "2026-03-02", "--format", "xlsx", "--out", &out], "", &[]).await;
        assert_eq!(cli.code, 0, "{}", cli.stderr);
        assert_eq!(&std::fs::read(&out).unwrap()[..2], b"PK");
        for args in [&["receipts", "summary", "--date", "2026-3-2"][..], &["receipts", "summary", "--date", "2026-03-02", "--format", "xlsx"]] {
            let cli = crate::cli::feerecon(&w.app.database_url, args, "", &[]).await;
            assert_eq!(cli.code, 1, "{args:?}: {}", cli.stderr);
        }

        // The next day's receipt is the next day's.
        w.at("2026-03-03T08:00:00+07:00");
        paid(&mut w, GPLX, "2026-03-03").await;
        assert_eq!(summary(&w, &w.f1, "2026-03-02").await["rows"], s["rows"]);
        let next = summary(&w, &w.f1, "2026-03-03").await;
        assert_eq!((next["rows"].as_array().unwrap().len(), next["rows"][0]["number"].as_i64()), (1, Some(6)));
        assert_eq!(next["ledger"]["matches"], true);
        let empty = summary(&w, &w.f1, "2026-03-04").await;
        assert_eq!((empty["rows"].as_array().unwrap().len(), empty["totals"]["originals"].as_i64()), (0, Some(0)));
    }
}

crate::receipts_world! {
    /// Who may call each receipt route: every role reads and prints; finance corrects; finance
    /// and auditors (not administrators, not the portal) download the summary; nobody without a
    /// token. A bad date or format is 422.
    async fn every_receipt_route_checks_its_roles(w);
    {
        w.at("2026-03-02T10:00:00+07:00");
        let p = paid(&mut w, GPLX, "2026-03-02").await;
        let id = receipts_of(&w, &w.portal, &p.case_code).await[0]["receipt_id"].as_str().unwrap().to_owned();
        let admin = w.app.token_for(Role::Admin).await;
        let tokens = [("portal", &w.portal), ("finance", &w.f1), ("auditor", &w.auditor), ("admin", &admin)];
        let reads = [format!("/api/v1/cases/{}/receipts", p.case_code), format!("/api/v1/receipts/{id}"), format!("/api/v1/receipts/{id}/print")];
        for path in &reads {
            for (role, t) in &tokens {
                assert_eq!(w.app.get(path, t).await.status(), 200, "{role} {path}");
            }
            assert_eq!(w.app.client.get(w.app.url(path)).send().await.unwrap().status(), 401, "{path}");
        }
        for (role, t) in &tokens {
            let status = w.app.get("/api/v1/receipts/summary?date=2026-03-02", t).await.status().as_u16();
            let expected = if matches!(*role, "finance" | "auditor") { 200 } else { 403 };
            assert_eq!(status, expected, "{role} summary");
        }
        assert_eq!(w.app.client.get(w.app.url("/api/v1/receipts/summary?date=2026-03-02")).send().await.unwrap().status(), 401);
        for verb in ["replace", "adjust"] {
            let path = format!("/api/v1/receipts/{id}/{verb}");
            for (role, t) in &tokens {
                if *role == "finance" {
                    continue;
                }
                let (s, _) = post(&w, t, &path, json!({"reason": "x", "items": []})).await;
                assert_eq!(s, 403, "{role} {verb}");
            }
        }
        for q in ["date=2026-02-30", "date=02/03/2026", "", "date=2026-03-02&format=pdf", "date=2026-03-02&colour=red"] {
            let (s, v) = json(w.app.get(&format!("/api/v1/receipts/summary?{q}"), &w.auditor).await).await;
            assert!(s == 422 || s == 400, "{q}: {s} {v}");
        }
        let (s, v) = json(w.app.get("/api/v1/receipts/summary?date=2026-02-30", &w.auditor).await).await;
        assert_eq!((s, error_code(&v)), (422, "invalid_field"));
    }
}
