//! The dashboard's receipt pages (issue 18) on SQLite and PostgreSQL, driven through forms as a
//! browser does: the search by case code and by date, a receipt's page and its printable page,
//! the replacement and adjustment forms (finance only, validated as the API, each creating its
//! receipt in the database), the day's summary (01/TH-BLĐT) with its ledger check and downloads
//! (the API's bytes), and who may see what.

use feerecon::domain::Role;
use feerecon::domain::receipt::ReceiptKind;
use serde_json::Value;

use crate::dash::{Dash, add_person, log_in, person};
use crate::receipts::{paid, receipts_of};
use crate::world::{GPLX, World};

/// `1.234.567 ₫`, as the Vietnamese pages write amounts.
fn vnd(dong: i64) -> String {
    let digits = dong.unsigned_abs().to_string();
    let mut out = String::from(if dong < 0 { "-" } else { "" });
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('.');
        }
        out.push(c);
    }
    out + " ₫"
}

/// The stored receipts of a case, oldest first.
async fn stored(w: &World, code: &str) -> Vec<feerecon::store::ReceiptRow> {
    let code = feerecon::domain::CaseCode::parse(code).unwrap();
    let mut rows = w.app.store.case_receipts(&code).await.unwrap();
    rows.sort_by_key(|r| r.number);
    rows
}

/// The same session reading English.
fn english(d: &Dash) -> Dash {
    Dash {
        base: d.base.clone(),
        client: d.client.clone(),
        cookies: format!("{}; feerecon_lang=en", d.cookies),
        csrf: d.csrf.clone(),
    }
}

crate::receipts_world! {
    /// Finance finds a paid case's receipt by case code and by date (symbol, number, date, payer,
    /// total, status), prints it, replaces it through the form (a blank reason changes nothing),
    /// then adjusts the replacement (a malformed or too large difference changes nothing); each
    /// correction is in the database, names the receipt it corrects and its issuer, and the list
    /// shows the chain's statuses. An auditor reads the same pages without the forms and may not
    /// post them.
    async fn finance_finds_prints_replaces_and_adjusts_receipts_through_the_dashboard(w);
    {
        w.at("2026-03-02T09:00:00+07:00");
        let p = paid(&mut w, GPLX, "2026-03-02").await;
        w.app.wait_for_status(&w.portal, &p.id, "paid").await;
        let api: Vec<Value> = receipts_of(&w, &w.portal, &p.case_code).await;
        assert_eq!(api.len(), 1);
        let (id, total) = (api[0]["receipt_id"].as_str().unwrap().to_owned(), api[0]["total"].as_i64().unwrap());
        let lan = person(&w.app, "lan.finance", Role::Finance).await;
        let an = person(&w.app, "an.auditor", Role::Auditor).await;

        // The search: by case code, by date, both; bad input names its field.
        let list = lan.get(&format!("/receipts?case={}", p.case_code)).await;
        list.assert(200, &format!("data-receipt=\"{id}\" data-status=\"issued\""))
            .assert(200, "EBL01 / 26TTP")
            .assert(200, "02/03/2026")
            .assert(200, "Phạm Thị Hoa")
            .assert(200, &vnd(total))
            .assert(200, &format!("href=\"/receipts/{id}/print\""))
            .assert(200, "id=\"nav-receipts\" class=\"on\"");
        lan.get("/receipts?date=2026-03-02").await.assert(200, &format!("data-receipt=\"{id}\""));
        let other_day = lan.get(&format!("/receipts?case={}&date=2026-03-03", p.case_code)).await;
        other_day.assert(200, "id=\"no-receipts\"");
        assert!(!other_day.body.contains(&id));
        lan.get("/receipts?date=2026-02-30").await.assert(422, "date:");
        lan.get("/receipts?case=not-a-code").await.assert(422, "case:");
        english(&lan).get(&format!("/receipts?case={}", p.case_code)).await.assert(200, "E-receipts").assert(200, &vnd(total).replace('.', ","));

        // The printable page: the API's page, with its own stylesheet allowed.
        let print = lan.get(&format!("/receipts/{id}/print")).await;
        print.assert(200, "BIÊN LAI THU PHÍ, LỆ PHÍ").assert(200, "Phạm Thị Hoa");
        assert!(print.header("content-security-policy").contains("style-src 'unsafe-inline'"), "{:?}", print.headers);
        assert!(!print.header("content-security-policy").contains("script-src"), "{:?}", print.headers);

        // The receipt's page: finance gets both forms, an auditor none and may not post.
        lan.get(&format!("/receipts/{id}")).await.assert(200, "id=\"replace-form\"").assert(200, "id=\"adjust-form\"");
        let seen = an.get(&format!("/receipts/{id}")).await;
        seen.assert(200, &vnd(total));
        assert!(!seen.body.contains("replace-form") && !seen.body.contains("adjust-form"));
        an.post(&format!("/receipts/{id}/replace"), &[("reason", "x")]).await.assert(403, "");
        lan.get("/receipts/rct_00000000000000000000000000000000").await.assert(404, "no receipt");

        // A replacement: a blank reason is refused as the API refuses it; then issued.
        lan.post(&format!("/receipts/{id}/replace"), &[("reason", " ")]).await.assert(422, "reason");
        assert_eq!(stored(&w, &p.case_code).await.len(), 1, "nothing issued");
        let r = lan.post(&format!("/receipts/{id}/replace"), &[("reason", "Sai mã số thuế"), ("payer_name", "Phạm Thị Hòa")]).await;
        assert_eq!(r.status, 303, "{}", r.body);
        let rows = stored(&w, &p.case_code).await;
        assert_eq!(rows.len(), 2);
        let rep = &rows[1];
        assert_eq!((rep.kind, rep.related_receipt_id.as_deref(), rep.issued_by.as_str()), (ReceiptKind::Replacement, Some(id.as_str()), "lan.finance"));
        assert_eq!((rep.payer_name.as_str(), rep.total, rep.number), ("Phạm Thị Hòa", total, 2));
        assert_eq!(r.location(), format!("/receipts/{}?done=replaced", rep.receipt_id));
        lan.get(r.location()).await.assert(200, "Đã lập biên lai thay thế").assert(200, "EBL01/26TTP/1").assert(200, "Phạm Thị Hòa");
        let old = lan.get(&format!("/receipts/{id}")).await;
        old.assert(200, "data-status=\"replaced\"");
        assert!(!old.body.contains("replace-form") && !old.body.contains("adjust-form"), "a replaced receipt is corrected through its replacement");
        lan.post(&format!("/receipts/{id}/replace"), &[("reason", "again")]).await.assert(409, "was replaced by");

        // An adjustment of the replacement, per fee item.
        let all = receipts_of(&w, &w.portal, &p.case_code).await;
        let replacement = all.iter().find(|r| r["receipt_id"].as_str() == Some(rep.receipt_id.as_str())).unwrap();
        let items = replacement["items"].as_array().unwrap().clone();
        let (fee, amount) = (items[0]["fee"].as_str().unwrap().to_owned(), items[0]["amount"].as_i64().unwrap());
        let at = format!("/receipts/{}/adjust", rep.receipt_id);
        lan.post(&at, &[("reason", "Hoàn tiền"), ("fee", &fee), ("amount", "10.000")]).await.assert(422, "whole number");
        let too_much = (-(amount + 1)).to_string();
        lan.post(&at, &[("reason", "Hoàn tiền"), ("fee", &fee), ("amount", &too_much)]).await.assert(422, "items");
        assert_eq!(stored(&w, &p.case_code).await.len(), 2, "nothing issued");
        let a = lan.post(&at, &[("reason", "Hoàn tiền một phần"), ("fee", &fee), ("amount", "-10000")]).await;
        assert_eq!(a.status, 303, "{}", a.body);
        let rows = stored(&w, &p.case_code).await;
        assert_eq!(rows.len(), 3);
        let adj = &rows[2];
        assert_eq!((adj.kind, adj.related_receipt_id.as_deref(), adj.total), (ReceiptKind::Adjustment, Some(rep.receipt_id.as_str()), -10_000));
        assert_eq!(a.location(), format!("/receipts/{}?done=adjusted", adj.receipt_id));
        let adj_page = lan.get(a.location()).await;
        adj_page.assert(200, "Đã lập biên lai điều chỉnh").assert(200, "-10.000 ₫");
        assert!(!adj_page.body.contains("adjust-form"), "an adjustment is not itself corrected");
        lan.post(&format!("/receipts/{}/adjust", adj.receipt_id), &[("reason", "x"), ("fee", &fee), ("amount", "-1")]).await.assert(409, "is an adjustment");

        // The chain in the list.
        let list = lan.get(&format!("/receipts?case={}", p.case_code)).await;
        list.assert(200, &format!("data-receipt=\"{id}\" data-status=\"replaced\""))
            .assert(200, &format!("data-receipt=\"{}\" data-status=\"adjusted\"", rep.receipt_id))
            .assert(200, &format!("data-receipt=\"{}\" data-status=\"issued\"", adj.receipt_id))
            .assert(200, "EBL01/26TTP/2");
    }
}

crate::receipts_world! {
    /// The day's summary in the dashboard: its rows in the form's wording, totals, numbering and
    /// the ledger check; its downloads are the API's bytes; a correction shows on its day; an
    /// administrator (like the API's) may not open it, nor is offered the link.
    async fn the_days_summary_shows_its_rows_and_ledger_check_and_downloads_the_apis_files(w);
    {
        w.at("2026-03-02T09:00:00+07:00");
        let a = paid(&mut w, GPLX, "2026-03-02").await;
        let b = paid(&mut w, GPLX, "2026-03-02").await;
        for p in [&a, &b] {
            w.app.wait_for_status(&w.portal, &p.id, "paid").await;
        }
        let mut total = 0;
        for p in [&a, &b] {
            total += receipts_of(&w, &w.portal, &p.case_code).await[0]["total"].as_i64().unwrap();
        }
        let an = person(&w.app, "an.auditor", Role::Auditor).await;
        add_person(&w.app, "lan.finance", Role::Finance).await;
        add_person(&w.app, "binh.admin", Role::Admin).await;

        let s = an.get("/receipts/summary?date=2026-03-02").await;
        s.assert(200, "01/TH-BLĐT")
            .assert(200, "02/03/2026")
            .assert(200, "id=\"ledger-check\" data-matches=\"true\"")
            .assert(200, &format!("<dd id=\"summary-originals\">{}</dd>", vnd(total)))
            .assert(200, &format!("<dd id=\"ledger-collected\">{}</dd>", vnd(total)))
            .assert(200, "<dd id=\"summary-count\">2</dd>")
            .assert(200, "Mới")
            .assert(200, "liên tục")
            .assert(200, "Sở Tư pháp tỉnh Phú Thọ · MST 2600123456");
        assert_eq!(s.body.matches("<tr data-status=\"issued\">").count(), 2, "{}", s.body);
        an.get("/receipts/summary?date=2026-03-03").await.assert(200, "id=\"no-receipts\"").assert(200, "data-matches=\"true\"");
        an.get("/receipts/summary?date=03/02/2026").await.assert(422, "date:");
        english(&an).get("/receipts/summary?date=2026-03-02").await.assert(200, "Matches the ledger").assert(200, "New");

        // The downloads are the API's files.
        for (format, name) in [("csv", "01-TH-BLDT-2026-03-02.csv"), ("json", "01-TH-BLDT-2026-03-02.json"), ("xlsx", "01-TH-BLDT-2026-03-02.xlsx")] {
            let res = w.app.client.get(w.app.url(&format!("/receipts/summary/file?date=2026-03-02&format={format}")))
                .header("cookie", &an.cookies).send().await.unwrap();
            assert_eq!(res.status(), 200, "{format}");
            let disposition = res.headers()["content-disposition"].to_str().unwrap().to_owned();
            assert!(disposition.contains(name), "{disposition}");
            let mine = res.bytes().await.unwrap();
            let theirs = w.app.get(&format!("/api/v1/receipts/summary?date=2026-03-02&format={format}"), &w.auditor).await.bytes().await.unwrap();
            match format {
                "xlsx" => assert!(mine.starts_with(b"PK") && mine.len() > 1000, "a workbook"),
                _ => assert_eq!(mine, theirs, "{format}"),
            }
            if format == "csv" {
                assert!(String::from_utf8_lossy(&mine).contains("Ký hiệu biên lai"));
            }
        }
        an.get("/receipts/summary/file?date=2026-03-02&format=pdf").await.assert(422, "must be json, csv or xlsx");

        // A correction on the next day is on that day's summary, naming what it corrects.
        w.at("2026-03-03T10:00:00+07:00");
        // A day later the sessions have ended: everyone logs in again.
        assert!(an.get("/receipts").await.location().starts_with("/login"), "the session ended");
        let (an, lan, admin) = (log_in(&w.app, "an.auditor").await, log_in(&w.app, "lan.finance").await, log_in(&w.app, "binh.admin").await);
        let first = receipts_of(&w, &w.portal, &a.case_code).await.remove(0);
        let id = first["receipt_id"].as_str().unwrap();
        let r = lan.post(&format!("/receipts/{id}/replace"), &[("reason", "Sai mã số thuế")]).await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert!(r.location().starts_with("/receipts/rct_") && r.location().ends_with("?done=replaced"), "{}", r.location());
        let next = an.get("/receipts/summary?date=2026-03-03").await;
        next.assert(200, "<tr data-status=\"issued\">").assert(200, "Thay thế").assert(200, &format!("EBL01/26TTP/{}", first["number"])).assert(200, "02/03/2026");
        // The day before still reads as it was sent (as of its end).
        assert!(!an.get("/receipts/summary?date=2026-03-02").await.body.contains("Đã bị thay thế"));

        // Who may: an administrator reads receipts but not the summary.
        let list = admin.get("/receipts?date=2026-03-02").await;
        list.assert(200, "data-receipt=");
        assert!(!list.body.contains("summary-link"));
        admin.get("/receipts/summary?date=2026-03-02").await.assert(403, "");
        admin.get("/receipts/summary/file?date=2026-03-02&format=csv").await.assert(403, "");
        an.get("/receipts?date=2026-03-02").await.assert(200, "id=\"summary-link\" href=\"/receipts/summary?date=2026-03-02\"");
    }
}
