//! The route × role table of SPEC §4.2, walked for every route: every role, no token, a wrong,
//! an expired and a revoked token; for the dashboard's pages and forms, every role's session, no
//! session, an ended, an expired and a forged one, and a form without its CSRF token. Every route
//! the server mounts must appear in `SPEC_TABLE`, so a new route cannot be added without deciding
//! who may call it.

use feerecon::domain::Role;
use feerecon::http::routes::Access;

use crate::both_backends;
use crate::helpers::TestApp;

/// SPEC §4.2, transcribed: (method, path, access).
const SPEC_TABLE: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Access::Public),
    ("GET", "/readyz", Access::Public),
    ("GET", "/metrics", Access::Public),
    ("GET", "/api/openapi.json", Access::Public),
    ("PUT", "/api/v1/cases/{case_code}", Access::Portal),
    ("GET", "/api/v1/cases/{case_code}", Access::AnyRole),
    ("GET", "/api/v1/cases/{case_code}/fee", Access::AnyRole),
    ("POST", "/api/v1/cases/{case_code}/payments", Access::Portal),
    ("GET", "/api/v1/cases/{case_code}/payments", Access::AnyRole),
    ("GET", "/api/v1/payments/{payment_id}", Access::AnyRole),
    ("GET", "/api/v1/payments", Access::Staff),
    ("GET", "/api/v1/payments/{payment_id}/callbacks", Access::Staff),
    ("GET", "/gateway/vnpay/ipn", Access::Gateway),
    ("POST", "/gateway/vnpay/ipn", Access::Gateway),
    ("POST", "/gateway/momo/ipn", Access::Gateway),
    ("POST", "/gateway/zalopay/callback", Access::Gateway),
    ("GET", "/gateway/vnpay/return", Access::Gateway),
    ("GET", "/gateway/momo/return", Access::Gateway),
    ("GET", "/gateway/zalopay/return", Access::Gateway),
    ("POST", "/gateway/dvcqg/callback", Access::Gateway),
    ("GET", "/gateway/dvcqg/return", Access::Gateway),
    ("POST", "/gateway/dvcqg/lookup", Access::Gateway),
    ("GET", "/api/v1/payments/{payment_id}/gateway-receipt", Access::AnyRole),
    ("GET", "/api/v1/payments/{payment_id}/gateway-receipt/file", Access::AnyRole),
    ("GET", "/api/v1/notifications", Access::Staff),
    ("POST", "/api/v1/notifications/{event_id}/resend", Access::Finance),
    ("POST", "/api/v1/settlements", Access::Finance),
    ("GET", "/api/v1/settlements", Access::Staff),
    ("GET", "/api/v1/settlements/{file_id}", Access::Staff),
    ("POST", "/api/v1/reconciliations", Access::Finance),
    ("GET", "/api/v1/reconciliations/{date}", Access::Staff),
    ("GET", "/api/v1/reconciliations/{date}/items", Access::Staff),
    ("GET", "/api/v1/exceptions", Access::Staff),
    ("POST", "/api/v1/exceptions/{id}/resolve", Access::Finance),
    ("POST", "/api/v1/exceptions/{id}/approve", Access::Finance),
    ("POST", "/api/v1/exceptions/{id}/reject", Access::Finance),
    ("POST", "/api/v1/days/{date}/close", Access::Finance),
    ("GET", "/api/v1/days/{date}", Access::Staff),
    ("GET", "/api/v1/ledger", Access::Staff),
    ("GET", "/api/v1/ledger/verify", Access::Staff),
    ("GET", "/api/v1/ledger/balances", Access::Staff),
    ("GET", "/api/v1/ledger/export", Access::Staff),
    ("GET", "/api/v1/ledger/public-key", Access::Staff),
    ("GET", "/api/v1/ledger/checkpoints", Access::Staff),
    ("GET", "/api/v1/audit-log", Access::Staff),
    // The dashboard (SPEC §4.2: "the dashboard follows the same table"), by login session.
    ("GET", "/login", Access::PagePublic),
    ("POST", "/login", Access::PagePublic),
    ("POST", "/logout", Access::PageStaff),
    ("GET", "/lang", Access::PagePublic),
    ("GET", "/assets/app.css", Access::PagePublic),
    ("GET", "/assets/app.js", Access::PagePublic),
    ("GET", "/", Access::PageStaff),
    ("GET", "/days/{date}", Access::PageStaff),
    ("POST", "/days/{date}/run", Access::PageFinance),
    ("POST", "/days/{date}/close", Access::PageFinance),
    ("GET", "/days/{date}/report.csv", Access::PageStaff),
    ("GET", "/days/{date}/report.xlsx", Access::PageStaff),
    ("GET", "/exceptions", Access::PageStaff),
    ("GET", "/exceptions/{id}", Access::PageStaff),
    ("POST", "/exceptions/{id}/resolve", Access::PageFinance),
    ("POST", "/exceptions/{id}/approve", Access::PageFinance),
    ("POST", "/exceptions/{id}/reject", Access::PageFinance),
    ("GET", "/payments", Access::PageStaff),
    ("GET", "/payments/{payment_id}", Access::PageStaff),
    ("GET", "/settlements", Access::PageStaff),
    ("POST", "/settlements", Access::PageFinance),
    ("GET", "/jobs/{job_id}", Access::PageStaff),
    ("GET", "/ledger", Access::PageStaff),
    ("GET", "/ledger/export", Access::PageStaff),
    ("GET", "/notifications", Access::PageStaff),
    ("POST", "/notifications/{event_id}/resend", Access::PageFinance),
    ("GET", "/api/v1/cases/{case_code}/receipts", Access::AnyRole),
    ("GET", "/api/v1/receipts/summary", Access::FinanceAuditor),
    ("GET", "/api/v1/receipts/{receipt_id}", Access::AnyRole),
    ("GET", "/api/v1/receipts/{receipt_id}/print", Access::AnyRole),
    ("POST", "/api/v1/receipts/{receipt_id}/replace", Access::Finance),
    ("POST", "/api/v1/receipts/{receipt_id}/adjust", Access::Finance),
    ("GET", "/api/v1/remittances", Access::Staff),
    ("POST", "/api/v1/remittances", Access::Finance),
    ("GET", "/api/v1/remittances/{period}", Access::Staff),
    ("POST", "/api/v1/remittances/{period}/approve", Access::Finance),
    ("POST", "/api/v1/remittances/{period}/reject", Access::Finance),
    ("GET", "/remittances", Access::PageStaff),
    ("POST", "/remittances", Access::PageFinance),
    ("GET", "/remittances/{period}/statement", Access::PageStaff),
    ("POST", "/remittances/{period}/approve", Access::PageFinance),
    ("POST", "/remittances/{period}/reject", Access::PageFinance),
    ("GET", "/receipts", Access::PageStaff),
    ("GET", "/receipts/summary", Access::PageFinanceAuditor),
    ("GET", "/receipts/summary/file", Access::PageFinanceAuditor),
    ("GET", "/receipts/{receipt_id}", Access::PageStaff),
    ("GET", "/receipts/{receipt_id}/print", Access::PageStaff),
    ("POST", "/receipts/{receipt_id}/replace", Access::PageFinance),
    ("POST", "/receipts/{receipt_id}/adjust", Access::PageFinance),
];

fn concrete(path: &str) -> String {
    path.replace("{case_code}", "000.00.12.H62-240715-0001")
        .replace("{payment_id}", "pay_00000000000000000000000000000000")
        .replace("{id}", "x")
        .replace("{date}", "2024-07-15")
        .replace("{event_id}", "evt_00000000000000000000000000000000")
        .replace("{file_id}", "stf_00000000000000000000000000000000")
        .replace("{job_id}", "job_00000000000000000000000000000000")
        .replace("{receipt_id}", "rct_00000000000000000000000000000000")
        .replace("{period}", "2024-07")
}

#[test]
fn every_mounted_route_is_in_the_spec_table_with_the_same_access() {
    for r in feerecon::http::all_routes() {
        let entry = SPEC_TABLE.iter().find(|(m, p, _)| *m == r.method.as_str() && *p == r.path);
        let Some((_, _, access)) = entry else {
            panic!("{} {} is mounted but not in SPEC_TABLE", r.method, r.path);
        };
        assert_eq!(*access, r.access, "{} {}", r.method, r.path);
    }
    for (m, p, _) in SPEC_TABLE {
        assert!(
            feerecon::http::all_routes().iter().any(|r| r.method.as_str() == *m && r.path == *p),
            "{m} {p} is in SPEC_TABLE but not mounted"
        );
    }
}

#[derive(Debug, Clone, Copy)]
enum Caller {
    Nobody,
    Role(Role),
    Wrong,
    Expired,
    Revoked,
}

async fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> u16 {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app.client.request(method.clone(), app.url(&concrete(path)));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if method == reqwest::Method::PUT || method == reqwest::Method::POST {
        req = req.header("content-type", "application/json").body("{}");
    }
    req.send().await.unwrap().status().as_u16()
}

both_backends! {
    async fn every_route_answers_every_caller_as_the_table_says(app: TestApp) {
        let mut tokens = std::collections::HashMap::new();
        for role in Role::ALL {
            tokens.insert(role.as_str(), app.token_for(*role).await);
        }
        // An expired token: minted with an expiry, then the clock moves past it.
        let soon = app.clock.now() + chrono::TimeDelta::hours(1);
        let (user, t) = crate::helpers::add_user_token(&app.store, "expiring", Role::Finance, Some(soon)).await;
        let expired = t.token.expose().to_owned();
        app.clock.advance(chrono::TimeDelta::hours(2));
        // A revoked token.
        let r = feerecon::auth::new_token();
        feerecon::accounts::add_token(&app.store, "test", &r, &user, None, chrono::Utc::now(), None).await.unwrap();
        assert_eq!(
            feerecon::accounts::revoke_token(&app.store, "test", &r.id, chrono::Utc::now()).await.unwrap(),
            feerecon::accounts::Revoked::Now
        );
        let revoked = r.token.expose().to_owned();
        // A well-formed token that was never issued.
        let wrong = feerecon::auth::new_token().token.expose().to_owned();

        use feerecon::domain::Clock as _;
        let callers = [Caller::Nobody, Caller::Role(Role::Portal), Caller::Role(Role::Finance), Caller::Role(Role::Auditor),
            Caller::Role(Role::Admin), Caller::Wrong, Caller::Expired, Caller::Revoked];
        for (method, path, access) in SPEC_TABLE {
            if access.is_page() {
                continue; // by session: `every_page_answers_every_session_as_the_table_says`
            }
            for caller in callers {
                let token = match caller {
                    Caller::Nobody => None,
                    Caller::Role(r) => Some(tokens[r.as_str()].as_str()),
                    Caller::Wrong => Some(wrong.as_str()),
                    Caller::Expired => Some(expired.as_str()),
                    Caller::Revoked => Some(revoked.as_str()),
                };
                let status = call(&app, method, path, token).await;
                let expected: Option<u16> = match (access, caller) {
                    (Access::Public, _) => None,
                    (Access::Gateway, Caller::Nobody) => None,
                    (_, Caller::Nobody | Caller::Wrong | Caller::Expired | Caller::Revoked) => Some(401),
                    (a, Caller::Role(r)) if a.allows(r) => None,
                    (_, Caller::Role(_)) => Some(403),
                };
                match expected {
                    Some(code) => assert_eq!(status, code, "{method} {path} as {caller:?}"),
                    None => assert!(status != 401 && status != 403, "{method} {path} as {caller:?} got {status}"),
                }
            }
        }
    }
}

both_backends! {
    async fn a_revoked_token_stops_working_at_once(app: TestApp) {
        let (_, t) = crate::helpers::add_user_token(&app.store, "portal-x", Role::Portal, None).await;
        let token = t.token.expose();
        assert_eq!(app.get("/api/v1/cases/000.00.12.H62-240715-0001", token).await.status(), 404);
        feerecon::accounts::revoke_token(&app.store, "test", &t.id, chrono::Utc::now()).await.unwrap();
        let (status, v) = crate::helpers::json(app.get("/api/v1/cases/000.00.12.H62-240715-0001", token).await).await;
        assert_eq!(status, 401);
        assert!(v["error"]["message"].as_str().unwrap().contains("revoked"), "{v}");
        // A token whose secret part is altered is refused even though its id exists.
        let mut forged = token.to_owned();
        let last = forged.pop().unwrap();
        forged.push(if last == '0' { '1' } else { '0' });
        assert_eq!(app.get("/api/v1/cases/000.00.12.H62-240715-0001", &forged).await.status(), 401);
    }
}

#[derive(Debug, Clone, Copy)]
enum Visitor {
    NoSession,
    Session(Role),
    /// A finance session posting a form without the CSRF token.
    FinanceWithoutCsrf,
    LoggedOut,
    Expired,
    Forged,
}

/// A session for `user` opened at `at`: its cookie and CSRF token.
async fn session_for(
    app: &TestApp,
    user: &feerecon::store::User,
    at: chrono::DateTime<chrono::Utc>,
) -> (String, String) {
    let s = feerecon::accounts::open_session(&app.store, user, at).await.unwrap();
    (format!("feerecon_session={}", s.id.expose()), feerecon::auth::session::csrf_token(&s.id))
}

async fn visit(
    app: &TestApp,
    method: &str,
    path: &str,
    session: Option<(String, String)>,
    with_csrf: bool,
) -> (u16, String) {
    let client = crate::dash::client();
    let url = app.url(&concrete(path));
    let mut req = if method == "POST" { client.post(url) } else { client.get(url) };
    let csrf = session.as_ref().filter(|_| with_csrf).map(|s| s.1.clone()).unwrap_or_default();
    if let Some((cookie, _)) = &session {
        req = req.header("cookie", cookie);
    }
    if method == "POST" && path == "/settlements" {
        let b = "XbOuNdArY";
        let mut body = String::new();
        if with_csrf {
            body.push_str(&format!("--{b}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n"));
        }
        body.push_str(&format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"gateway\"\r\n\r\nvnpay\r\n--{b}--\r\n"
        ));
        req = req.header("content-type", format!("multipart/form-data; boundary={b}")).body(body);
    } else if method == "POST" {
        let body = if with_csrf { format!("csrf={csrf}&gateway=vnpay") } else { "gateway=vnpay".to_owned() };
        req = req.header("content-type", "application/x-www-form-urlencoded").body(body);
    }
    let res = req.send().await.unwrap();
    let location = res.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    (res.status().as_u16(), location)
}

both_backends! {
    async fn every_page_answers_every_session_as_the_table_says(app: TestApp) {
        use feerecon::domain::Clock as _;
        let mut users = std::collections::HashMap::new();
        for role in Role::ALL {
            let u = crate::dash::add_person(&app, &format!("page-{role}"), *role).await;
            users.insert(role.as_str(), u);
        }
        let visitors = [Visitor::NoSession, Visitor::Session(Role::Portal), Visitor::Session(Role::Finance),
            Visitor::Session(Role::Auditor), Visitor::Session(Role::Admin), Visitor::FinanceWithoutCsrf,
            Visitor::LoggedOut, Visitor::Expired, Visitor::Forged];
        for (method, path, access) in SPEC_TABLE.iter().filter(|r| r.2.is_page()) {
            for visitor in visitors {
                let now = app.clock.now();
                let (session, with_csrf) = match visitor {
                    Visitor::NoSession => (None, true),
                    Visitor::Session(r) => (Some(session_for(&app, &users[r.as_str()], now).await), true),
                    Visitor::FinanceWithoutCsrf => (Some(session_for(&app, &users["finance"], now).await), false),
                    Visitor::LoggedOut => {
                        let s = feerecon::accounts::open_session(&app.store, &users["finance"], now).await.unwrap();
                        feerecon::accounts::close_session(&app.store, &s.id, "test", now).await.unwrap();
                        (Some((format!("feerecon_session={}", s.id.expose()), feerecon::auth::session::csrf_token(&s.id))), true)
                    }
                    Visitor::Expired => {
                        let idle = feerecon::accounts::SESSION_IDLE + chrono::TimeDelta::minutes(1);
                        (Some(session_for(&app, &users["finance"], now - idle).await), true)
                    }
                    Visitor::Forged => {
                        let id = feerecon::auth::session::random_token();
                        (Some((format!("feerecon_session={}", id.expose()), feerecon::auth::session::csrf_token(&id))), true)
                    }
                };
                let (status, location) = visit(&app, method, path, session, with_csrf).await;
                // Sent to log in (a logout's own redirect, `/login?bye=1`, is not that).
                let to_login = status == 303 && (location == "/login" || location.starts_with("/login?next="));
                let what = format!("{method} {path} as {visitor:?}: {status} {location}");
                assert!(status < 500, "{what}");
                match (access, visitor) {
                    (Access::PagePublic, _) => assert!(!to_login && status != 401, "{what}"),
                    (_, Visitor::NoSession | Visitor::LoggedOut | Visitor::Expired | Visitor::Forged) => {
                        assert!(to_login, "{what}")
                    }
                    // Every form needs its CSRF token, whoever may post it.
                    (_, Visitor::FinanceWithoutCsrf) if *method == "POST" => assert_eq!(status, 403, "{what}"),
                    (_, Visitor::FinanceWithoutCsrf) => assert!(!to_login && status != 403, "{what}"),
                    (a, Visitor::Session(r)) if a.allows(r) => assert!(!to_login && status != 403 && status != 401, "{what}"),
                    (_, Visitor::Session(_)) => assert_eq!(status, 403, "{what}"),
                }
            }
        }
    }
}
