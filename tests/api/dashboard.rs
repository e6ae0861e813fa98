//! The finance dashboard's pages and forms, over HTTP as a browser sends them, on SQLite and
//! PostgreSQL: login, sessions, rate limit, CSRF, roles, security headers and escaping; the
//! calendar, the day view, exceptions under four eyes, closing, uploads with their errors,
//! downloads, search, the ledger and dead letters. (`browser.rs` does the daily review in a
//! real browser; `access.rs` walks every page and form for every role.)

use feerecon::domain::{Clock as _, Role};
use feerecon::simulator::Simulator;

use crate::both_backends;
use crate::dash::{
    PASSWORD, add_person, anonymous_get, csrf_of, enc, exception_keys, job_path, log_in, person, simulated_day,
    submit_login,
};
use crate::helpers::{Db, TestApp, spawn_gateway_app};

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

#[track_caller]
fn assert_secure_headers(p: &crate::dash::Page) {
    let csp = p.header("content-security-policy");
    for part in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(part), "CSP {csp:?} lacks {part}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(p.header("x-content-type-options"), "nosniff");
    assert_eq!(p.header("referrer-policy"), "no-referrer");
    assert_eq!(p.header("x-frame-options"), "DENY");
}

/// No inline script and no inline style: the CSP would block them, so none may be needed.
#[track_caller]
fn assert_no_inline_code(html: &str) {
    let mut rest = html;
    while let Some(at) = rest.find("<script") {
        let tag = &rest[at..at + rest[at..].find('>').unwrap()];
        assert!(tag.contains("src=\"/assets/"), "an inline script: {tag}");
        rest = &rest[at + 1..];
    }
    assert!(!html.contains(" style=\"") && !html.contains("<style"), "inline style in:\n{html}");
    assert!(!html.contains(" onclick=") && !html.contains(" onsubmit="), "inline handler in:\n{html}");
}

both_backends! {
    /// An unauthenticated page redirects to /login; a login sets an HttpOnly, SameSite=Strict
    /// session cookie whose id the database never holds in clear; logout needs the CSRF token,
    /// ends the session and is audited like the login.
    async fn login_opens_a_strict_http_only_session_and_logout_ends_it(app: TestApp) {
        let p = anonymous_get(&app, "/").await;
        assert_eq!((p.status, p.location()), (303, "/login"));
        assert_secure_headers(&p);
        let p = anonymous_get(&app, "/days/2024-07-15?gateway=momo").await;
        assert_eq!((p.status, p.location()), (303, "/login?next=%2Fdays%2F2024-07-15%3Fgateway%3Dmomo"));
        let p = anonymous_get(&app, "/login").await;
        p.assert(200, r#"id="login-form""#);
        assert_secure_headers(&p);
        assert_no_inline_code(&p.body);
        let login_cookie = p.set_cookie("feerecon_login").unwrap();
        assert!(login_cookie.contains("HttpOnly") && login_cookie.contains("SameSite=Strict"), "{login_cookie}");

        add_person(&app, "lan.finance", Role::Finance).await;
        let p = submit_login(&app, "lan.finance", "not the password", "/").await;
        p.assert(401, "Sai tên đăng nhập hoặc mật khẩu");
        assert!(p.set_cookie("feerecon_session").is_none());
        let p = submit_login(&app, "no.such.user", PASSWORD, "/").await;
        p.assert(401, "Sai tên đăng nhập hoặc mật khẩu");
        // A login form without its token cookie is refused.
        let (form, _) = crate::dash::login_form(&app).await;
        let body = serde_urlencoded::to_string([("csrf", csrf_of(&form.body).as_str()), ("name", "lan.finance"), ("password", PASSWORD)]).unwrap();
        let res = crate::dash::client().post(app.url("/login")).header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap();
        assert_eq!(res.status(), 403);

        let p = submit_login(&app, "lan.finance", PASSWORD, "/days/2024-07-15?gateway=momo").await;
        assert_eq!((p.status, p.location()), (303, "/days/2024-07-15?gateway=momo"), "{}", p.body);
        let cookie = p.set_cookie("feerecon_session").unwrap();
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
            assert!(cookie.contains(attr), "{cookie} lacks {attr}");
        }
        let id = cookie.split(';').next().unwrap().trim_start_matches("feerecon_session=").to_owned();
        assert_eq!(id.len(), 64);
        let hash = feerecon::auth::sha256_hex(id.as_bytes());
        assert!(app.store.session(&hash).await.unwrap().is_some(), "the hash is stored");
        assert!(app.store.session(&id).await.unwrap().is_none(), "the id itself is not");
        // An open redirect is refused: next must be a local path.
        let p = submit_login(&app, "lan.finance", PASSWORD, "https://evil.example/").await;
        assert_eq!((p.status, p.location()), (303, "/"));

        let d = log_in(&app, "lan.finance").await;
        let home = d.get("/").await;
        home.assert(200, r#"id="user-name">lan.finance<"#);
        assert_secure_headers(&home);
        assert_no_inline_code(&home.body);
        let p = d.post_raw("/logout", "").await;
        p.assert(403, "mã chống giả mạo");
        let p = d.post_raw("/logout", "csrf=0000").await;
        assert_eq!(p.status, 403);
        let p = d.post("/logout", &[]).await;
        assert_eq!((p.status, p.location()), (303, "/login?bye=1"));
        assert!(p.set_cookie("feerecon_session").unwrap().contains("Max-Age=0"));
        let p = d.get("/").await;
        assert_eq!((p.status, p.location()), (303, "/login"), "the session is over");
        let actions: Vec<(String, String)> = app.store.audit_log(0, 100).await.unwrap().into_iter().map(|e| (e.action, e.actor)).collect();
        assert!(actions.contains(&("session.login".into(), "lan.finance".into())), "{actions:?}");
        assert!(actions.contains(&("session.logout".into(), "lan.finance".into())), "{actions:?}");
        let text = format!("{:?}", app.store.audit_log(0, 100).await.unwrap());
        assert!(!text.contains(&id) && !text.contains(&hash), "no session id or hash in the audit log");
    }
}

both_backends! {
    /// Five wrong passwords lock the name for the window (even the right password is refused
    /// then); the window passing lets it in. A machine client has no password to log in with,
    /// and a portal account may not use the dashboard.
    async fn login_attempts_are_rate_limited_and_only_staff_log_in(app: TestApp) {
        add_person(&app, "hoa.finance", Role::Finance).await;
        for _ in 0..5 {
            assert_eq!(submit_login(&app, "hoa.finance", "wrong", "/").await.status, 401);
        }
        let p = submit_login(&app, "hoa.finance", PASSWORD, "/").await;
        p.assert(429, "Đăng nhập sai quá nhiều lần");
        assert!(p.set_cookie("feerecon_session").is_none());
        app.clock.advance(chrono::TimeDelta::minutes(16));
        assert_eq!(submit_login(&app, "hoa.finance", PASSWORD, "/").await.status, 303);

        feerecon::accounts::add_user(&app.store, "test", "portal-client", Role::Portal, None, chrono::Utc::now()).await.unwrap();
        submit_login(&app, "portal-client", "", "/").await.assert(401, "Sai tên đăng nhập");
        add_person(&app, "portal-person", Role::Portal).await;
        submit_login(&app, "portal-person", PASSWORD, "/").await.assert(403, "không dùng được bảng điều khiển");
        add_person(&app, "kiem.toan", Role::Auditor).await;
        add_person(&app, "quan.tri", Role::Admin).await;
        for who in ["kiem.toan", "quan.tri"] {
            assert_eq!(submit_login(&app, who, PASSWORD, "/").await.status, 303, "{who}");
        }
    }
}

both_backends! {
    /// A session left alone past the idle limit is over; one in use stays; none outlives its
    /// absolute limit.
    async fn sessions_expire(app: TestApp) {
        let d = person(&app, "an.finance", Role::Finance).await;
        app.clock.advance(chrono::TimeDelta::minutes(20));
        assert_eq!(d.get("/").await.status, 200, "used within the idle limit");
        app.clock.advance(chrono::TimeDelta::minutes(20));
        assert_eq!(d.get("/").await.status, 200, "the last use moved the idle limit");
        app.clock.advance(chrono::TimeDelta::minutes(31));
        let p = d.get("/").await;
        assert_eq!((p.status, p.location()), (303, "/login"), "idle too long");
        let d = log_in(&app, "an.finance").await;
        for _ in 0..25 {
            app.clock.advance(chrono::TimeDelta::minutes(29));
            if d.get("/").await.status != 200 {
                break;
            }
        }
        let p = d.get("/").await;
        assert_eq!(p.status, 303, "no session lives beyond its absolute limit");
    }
}

both_backends! {
    /// Pages escape what they show, keep English and Vietnamese apart, and answer bad input in
    /// the page, naming the field.
    async fn pages_escape_data_switch_language_and_name_bad_input(app: TestApp) {
        let d = person(&app, "mai.finance", Role::Finance).await;
        let p = d.get("/payments?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(!p.body.contains("<script>alert(1)"), "escaped");
        assert!(p.body.contains("&#60;script&#62;alert(1)") || p.body.contains("&lt;script&gt;alert(1)"), "{}", p.body);
        d.get("/payments?q=%01x").await.assert(422, "q:");
        d.get("/days/2024-13-40?gateway=vnpay").await.assert(422, "date:");
        d.get("/days/2024-07-15?gateway=paypal").await.assert(422, "gateway:");
        d.get("/?month=2024-7").await.assert(422, "month:");
        d.get("/exceptions?from=15/07/2024").await.assert(422, "from:");
        d.get("/exceptions/nope").await.assert(404, "no exception nope");
        let p = d.get("/ledger/export?from=2024-07-16&to=2024-07-15").await;
        p.assert(422, "to: is before from");
        d.get("/ledger/export?from=2024-07-15").await.assert(422, "to: is required");

        let css = anonymous_get(&app, "/assets/app.css").await;
        assert_eq!((css.status, css.header("content-type")), (200, "text/css; charset=utf-8"));
        assert_eq!(css.header("x-content-type-options"), "nosniff");
        let js = anonymous_get(&app, "/assets/app.js").await;
        assert_eq!((js.status, js.header("content-type")), (200, "text/javascript; charset=utf-8"));

        let p = d.get("/lang?to=en&next=%2Fpayments").await;
        assert_eq!((p.status, p.location()), (303, "/payments"));
        let lang = p.set_cookie("feerecon_lang").unwrap();
        let en = crate::dash::Dash { cookies: format!("{}; {}", d.cookies, lang.split(';').next().unwrap()), ..d };
        en.get("/payments").await.assert(200, "Find a payment");
        en.get("/payments?q=000.00.12.H62-240715-0001").await.assert(200, "Nothing found");
        let p = en.get("/lang?to=vi&next=https%3A%2F%2Fevil.example").await;
        assert_eq!(p.location(), "/", "no open redirect");
    }
}

both_backends! {
    /// An auditor sees every page and may do nothing: no forms on the pages, and each form
    /// posted anyway is refused.
    async fn auditors_see_everything_and_change_nothing(app: TestApp) {
        let a = person(&app, "kt.auditor", Role::Auditor).await;
        for path in ["/", "/exceptions", "/settlements", "/payments", "/notifications", "/ledger", "/days/2024-07-15?gateway=vnpay"] {
            let p = a.get(path).await;
            assert_eq!(p.status, 200, "{path}: {}", p.body);
            assert_secure_headers(&p);
            assert_no_inline_code(&p.body);
            for form in ["upload-form", "run-form", "close-form", "resolve-form", "approve-form"] {
                assert!(!p.body.contains(&format!("id=\"{form}\"")), "{path} shows {form} to an auditor");
            }
        }
        for path in ["/days/2024-07-15/run", "/days/2024-07-15/close", "/exceptions/x/resolve", "/exceptions/x/approve", "/notifications/evt_x/resend"] {
            a.post(path, &[("gateway", "vnpay"), ("action", "accept")]).await.assert(403, "Vai trò của bạn");
        }
        let p = a.upload(&a.csrf, "vnpay", "canonical", "x.csv", b"gateway_txn_no,txn_ref,amount,fee,txn_time,status\n").await;
        assert_eq!(p.status, 403);
        assert!(app.store.settlement_files(None).await.unwrap().is_empty());
    }
}

with_gateways! {
    /// The whole daily review through the pages: upload (a refused file shows line, field and
    /// reason, and changes nothing), the job's progress page, the calendar's states, the day
    /// view, exceptions under four eyes with their errors in the page, the close, downloads.
    async fn the_daily_review_through_the_pages(app, sim) {
        let lan = person(&app, "lan.finance", Role::Finance).await;
        let hoa = person(&app, "hoa.finance", Role::Finance).await;
        let (date, file) = simulated_day(&app, &sim, 3).await;
        let day = format!("/days/{date}?gateway=vnpay");
        let month = &date[..7];
        let cal = lan.get(&format!("/?month={month}")).await;
        cal.assert(200, r#"id="calendar""#);
        assert!(cal.body.contains(&format!(r#"href="/days/{date}?gateway=vnpay" data-state="no_file""#)), "{}", cal.body);

        // The upload form: a missing field is named in the page; a bad CSRF token is refused.
        lan.upload(&lan.csrf, "", "vnpay", "day.csv", &file).await.assert(422, "gateway: is required");
        lan.upload(&lan.csrf, "vnpay", "vnpay", "empty.csv", b"").await.assert(422, "file:");
        lan.upload("forged", "vnpay", "vnpay", "day.csv", &file).await.assert(403, "mã chống giả mạo");
        // A refused file: the job page shows line, field and reason; nothing is kept.
        let mut broken = String::from_utf8(file.clone()).unwrap();
        broken.push_str("999,R999,12x,0,15/07/2024 10:00:00,Thành công\n");
        let lines = String::from_utf8(file.clone()).unwrap().lines().count();
        let job = job_path(&lan.upload(&lan.csrf, "vnpay", "vnpay", "broken.csv", broken.as_bytes()).await);
        let p = lan.wait_job(&job).await;
        p.assert(422, r#"id="import-errors""#);
        assert!(p.body.contains(&format!(r#"<td class="num">{}</td>"#, lines + 1)), "the line: {}", p.body);
        assert!(p.body.contains(r#"<td class="mono">amount</td>"#), "the field: {}", p.body);
        assert!(app.store.settlement_files(None).await.unwrap().is_empty());
        // Another user does not see the job.
        assert_eq!(hoa.get(&job).await.status, 404);
        // The good file.
        let job = job_path(&lan.upload(&lan.csrf, "vnpay", "vnpay", "vnpay-day.csv", &file).await);
        lan.wait_job(&job).await.assert(200, r#"id="job-ok""#);
        lan.get("/settlements").await.assert(200, "vnpay-day.csv");
        let job = job_path(&lan.upload(&lan.csrf, "vnpay", "vnpay", "again.csv", &file).await);
        lan.wait_job(&job).await.assert(409, "imported");
        lan.get(&format!("/?month={month}")).await.assert(200, &format!(r#"href="/days/{date}?gateway=vnpay" data-state="not_run""#));

        // The run, as a job that ends on the day view.
        let before = lan.get(&day).await;
        before.assert(200, r#"id="not-run""#);
        let job = job_path(&lan.post(&format!("/days/{date}/run"), &[("gateway", "vnpay")]).await);
        let p = lan.wait_job(&job).await;
        assert_eq!((p.status, p.location()), (303, day.as_str()), "{}", p.body);
        let p = lan.get(&day).await;
        p.assert(200, r#"id="summary-cards""#);
        assert!(p.body.contains(r#"data-state="open_exceptions""#));
        assert!(p.body.contains("<svg class=\"chart\""), "the chart");
        assert!(p.body.contains(r#"<rect class="bar c-matched""#));
        assert!(p.body.contains("270.000 ₫"), "two matched payments of 135.000 ₫: {}", p.body);
        assert!(p.body.contains(r#"id="totals""#) && p.body.contains(r#"id="by-kind""#) && p.body.contains(r#"id="no-gateway""#));
        let keys = exception_keys(&p.body);
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(keys.iter().all(|(_, s)| s == "open"));
        let missing = keys.iter().find(|(k, _)| k.contains(":payment:")).unwrap().0.clone();
        let stranger = keys.iter().find(|(k, _)| !k.contains(":payment:")).unwrap().0.clone();
        // Filters.
        let f = lan.get(&format!("/days/{date}?gateway=vnpay&category=missing_in_records")).await;
        assert_eq!(exception_keys(&f.body).len(), 1);
        let f = lan.get(&format!("/exceptions?state=open&gateway=vnpay&from={date}&to={date}")).await;
        f.assert(200, r#"id="exception-list""#);
        assert!(f.body.contains(&stranger) && f.body.contains(&missing));
        lan.get("/exceptions?state=resolved").await.assert(200, r#"id="no-exceptions""#);

        // The detail: the payment and the raw callback side by side, the line of the stranger.
        let m = lan.get(&format!("/exceptions/{}", enc(&missing))).await;
        m.assert(200, r#"id="side-payment""#);
        assert!(m.body.contains("vnp_TxnRef") || m.body.contains("vnp_Amount"), "the raw callback: {}", m.body);
        assert!(m.body.contains(r#"id="resolve-form""#));
        let s = lan.get(&format!("/exceptions/{}", enc(&stranger))).await;
        s.assert(200, "50.000 ₫");
        assert!(s.body.contains("vnpay-day.csv"), "the line's file: {}", s.body);
        // The form starts on an action that applies: waiting for a missing line; for a line no
        // payment has, confirming it for a case (accepting it would be refused).
        assert!(m.body.contains(r#"<option value="accept" selected>"#), "{}", m.body);
        assert!(s.body.contains(r#"<option value="confirm_from_settlement" selected>"#), "{}", s.body);

        // Resolve: errors are named in the page and change nothing.
        let resolve = format!("/exceptions/{}/resolve", enc(&missing));
        lan.post(&resolve, &[("note", "x")]).await.assert(422, "action: is required");
        lan.post(&resolve, &[("action", "teleport")]).await.assert(422, "action: must be");
        let long = "n".repeat(2001);
        lan.post(&resolve, &[("action", "accept"), ("note", &long)]).await.assert(422, "note:");
        lan.post(&format!("/exceptions/{}/resolve", enc(&stranger)), &[("action", "confirm_from_settlement")]).await.assert(422, "case_code");
        lan.post_raw(&resolve, "action=write_off").await.assert(403, "mã chống giả mạo");
        lan.get(&day).await.assert(200, r#"data-state="open""#);
        // Four eyes: the requester cannot approve; another finance user can.
        let p = lan.post(&resolve, &[("action", "write_off"), ("note", "VNPAY confirms it never settled")]).await;
        assert_eq!((p.status, p.location()), (303, format!("/exceptions/{}?done=resolved", enc(&missing)).as_str()));
        let p = lan.get(p.location()).await;
        p.assert(200, r#"id="own-request""#);
        assert!(!p.body.contains(r#"id="approve-form""#));
        lan.post(&format!("/exceptions/{}/approve", enc(&missing)), &[]).await.assert(403, "another finance user must decide");
        let p = hoa.get(&format!("/exceptions/{}", enc(&missing))).await;
        p.assert(200, r#"id="approve-form""#);
        let p = hoa.post(&format!("/exceptions/{}/reject", enc(&missing)), &[("note", "ask VNPAY in writing")]).await;
        assert_eq!(p.status, 303);
        hoa.get(p.location()).await.assert(200, "ask VNPAY in writing");
        lan.post(&resolve, &[("action", "write_off"), ("note", "in writing now")]).await;
        let p = hoa.post(&format!("/exceptions/{}/approve", enc(&missing)), &[("note", "ok")]).await;
        assert_eq!(p.status, 303, "{}", p.body);
        hoa.get(p.location()).await.assert(200, r#"data-state="resolved""#);

        // The close waits for every exception, and says so in the page.
        let close = format!("/days/{date}/close");
        lan.post(&close, &[("gateway", "vnpay")]).await.assert(409, "open or pending approval");
        // A line no payment has sits in suspense: kept (written off) under four eyes.
        let p = lan.post(&format!("/exceptions/{}/resolve", enc(&stranger)), &[("action", "write_off"), ("note", "a test line")]).await;
        assert_eq!(p.status, 303, "{}", p.body);
        let p = hoa.post(&format!("/exceptions/{}/approve", enc(&stranger)), &[("note", "ok")]).await;
        assert_eq!(p.status, 303, "{}", p.body);
        lan.get(&format!("/?month={month}")).await.assert(200, &format!(r#"href="/days/{date}?gateway=vnpay" data-state="reconciled""#));
        lan.post(&close, &[("gateway", "paypal")]).await.assert(422, "gateway:");
        let p = lan.post(&close, &[("gateway", "vnpay")]).await;
        assert_eq!((p.status, p.location()), (303, format!("{day}&done=closed").as_str()), "{}", p.body);
        let p = lan.get(p.location()).await;
        p.assert(200, r#"id="closed-notice""#);
        assert!(!p.body.contains(r#"id="close-form""#) && !p.body.contains(r#"id="run-form""#));
        lan.post(&close, &[("gateway", "vnpay")]).await.assert(409, "already closed");
        lan.post(&format!("/exceptions/{}/resolve", enc(&stranger)), &[("action", "accept")]).await.assert(409, "closed");
        lan.get(&format!("/?month={month}")).await.assert(200, &format!(r#"href="/days/{date}?gateway=vnpay" data-state="closed""#));
        let audit: Vec<String> = app.store.audit_log(0, 200).await.unwrap().into_iter().map(|e| e.action).collect();
        for a in ["settlement.import", "exception.resolve", "exception.reject", "exception.approve", "day.close"] {
            assert!(audit.iter().any(|x| x == a), "{a} in {audit:?}");
        }

        // Downloads: the report as CSV (every item) and XLSX.
        let csv = lan.get(&format!("/days/{date}/report.csv?gateway=vnpay")).await;
        assert_eq!(csv.status, 200);
        assert!(csv.header("content-disposition").contains(&format!("doi-soat-{date}-vnpay.csv")));
        assert_eq!(csv.body.lines().count(), 1 + 4, "the header and every item:\n{}", csv.body);
        let auditor = person(&app, "kt.auditor", Role::Auditor).await;
        let res = auditor.client.get(auditor.url(&format!("/days/{date}/report.xlsx?gateway=vnpay"))).header("cookie", &auditor.cookies).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(&res.bytes().await.unwrap()[..2], b"PK");
        auditor.get(&format!("/days/{date}/report.csv?gateway=momo")).await.assert(404, "no reconciliation");
    }
}

both_backends! {
    /// Text a spreadsheet would run as a formula is neutralised in the dashboard's downloads.
    async fn downloads_neutralise_formulas(app: TestApp) {
        let lan = person(&app, "lan.finance", Role::Finance).await;
        let file = "gateway_txn_no,txn_ref,amount,fee,txn_time,status\n=1+1,=HYPERLINK(\"http://x\"),115000,0,2024-07-15 09:00:00,success\n";
        let job = job_path(&lan.upload(&lan.csrf, "vnpay", "canonical", "formula.csv", file.as_bytes()).await);
        lan.wait_job(&job).await.assert(200, r#"id="job-ok""#);
        let job = job_path(&lan.post("/days/2024-07-15/run", &[("gateway", "vnpay")]).await);
        assert_eq!(lan.wait_job(&job).await.status, 303);
        let csv = lan.get("/days/2024-07-15/report.csv?gateway=vnpay").await;
        assert_eq!(csv.status, 200);
        assert!(csv.body.contains("'=1+1") && csv.body.contains("\"'=HYPERLINK"), "{}", csv.body);
        assert!(!csv.body.contains(",=1+1") && !csv.body.contains(",=HYPERLINK"), "{}", csv.body);
        // The page shows the same text escaped, as text.
        let p = lan.get("/days/2024-07-15?gateway=vnpay").await;
        assert!(p.body.contains("=HYPERLINK(&#34;http://x&#34;)") || p.body.contains("=HYPERLINK(&quot;http://x&quot;)"), "{}", p.body);
    }
}

both_backends! {
    /// Payments are found by case code, payment id and txn_ref; the ledger export downloads as
    /// the CLI writes it; dead letters are listed and re-sent by finance, audited.
    async fn search_ledger_and_dead_letters(app: TestApp) {
        let portal = app.token_for(Role::Portal).await;
        let code = "000.00.12.H62-240715-0001";
        let res = app.put_json(&format!("/api/v1/cases/{code}"), &portal, &crate::helpers::case_body(code)).await;
        assert_eq!(res.status(), 201);
        let (s, p) = app.create_payment(&portal, code, "vnpay", "k1").await;
        assert!(s == 201 || s == 200, "{p}");
        let pid = p["payment_id"].as_str().unwrap().to_owned();
        let lan = person(&app, "lan.finance", Role::Finance).await;
        let found = lan.get(&format!("/payments?q={code}")).await;
        found.assert(200, &pid);
        lan.get(&format!("/payments?q={pid}")).await.assert(200, r#"id="search-results""#);
        if let Some(r) = p["txn_ref"].as_str() {
            lan.get(&format!("/payments?q={r}")).await.assert(200, &pid);
        }
        lan.get(&format!("/payments/{pid}")).await.assert(200, code);
        lan.get("/payments/pay_nope").await.assert(404, "no payment");

        // The ledger: verify, export as a zip the offline verifier accepts.
        lan.get("/ledger?verify=1").await.assert(200, r#"id="verify-result""#);
        let day = feerecon::domain::BusinessDate::of(app.clock.now());
        let res = lan.client.get(lan.url(&format!("/ledger/export?from={day}&to={day}"))).header("cookie", &lan.cookies).send().await.unwrap();
        let status = res.status().as_u16();
        let bytes = res.bytes().await.unwrap();
        if status == 200 {
            assert_eq!(&bytes[..2], b"PK");
        } else {
            assert_eq!(status, 404, "{}", String::from_utf8_lossy(&bytes));
        }
        lan.get("/ledger/export?from=1999-01-01&to=1999-01-02").await.assert(404, "no ledger entry");

        // A dead letter.
        let ev = app.store.case_events(&crate::helpers::cc(code)).await.unwrap();
        let mut dead = ev.first().cloned().expect("the waived payment's event");
        dead.event_id = "evt_dead_letter_test".into();
        dead.state = feerecon::domain::payment::DeliveryState::Failed;
        dead.case_seq += 100;
        let mut tx = app.store.write().await.unwrap();
        tx.insert_outbox(&[dead.clone()]).await.unwrap();
        tx.commit().await.unwrap();
        let list = lan.get("/notifications").await;
        list.assert(200, "evt_dead_letter_test");
        let auditor = person(&app, "kt.auditor", Role::Auditor).await;
        let a = auditor.get("/notifications").await;
        a.assert(200, "evt_dead_letter_test");
        assert!(!a.body.contains("/resend"), "no re-send button for an auditor");
        auditor.post("/notifications/evt_dead_letter_test/resend", &[]).await.assert(403, "Vai trò");
        let p = lan.post("/notifications/evt_dead_letter_test/resend", &[]).await;
        assert_eq!((p.status, p.location()), (303, "/notifications?done=resent"));
        lan.get(p.location()).await.assert(200, r#"id="no-dead-letters""#);
        lan.post("/notifications/evt_dead_letter_test/resend", &[]).await.assert(404, "no dead-lettered notification");
        assert!(app.store.audit_log(0, 100).await.unwrap().iter().any(|e| e.action == "notification.resend" && e.actor == "lan.finance"));
    }
}
