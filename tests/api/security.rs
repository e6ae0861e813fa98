//! Security headers on every answer, and no secret in the logs (issue 21, SPEC §4).
//!
//! Every route of the table, called without credentials and with a finance token (API) or a
//! finance session (pages), and an unmatched path, answers with `nosniff`, no framing, no
//! referrer and a content policy; authenticated API answers are never cached. Then a full run of
//! `feerecon serve` at `RUST_LOG=debug` (every gateway configured, payments, callbacks, a
//! receipt, a webhook, a login) is searched for every configured secret: none appears.

use std::sync::{Arc, Mutex};

use feerecon::domain::Role;
use reqwest::header::HeaderMap;

use crate::access::{SPEC_TABLE, concrete};
use crate::both_backends;

fn check_headers(what: &str, h: &HeaderMap, authenticated_api: bool) {
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("x-frame-options"), "DENY", "{what}");
    assert_eq!(get("referrer-policy"), "no-referrer", "{what}");
    let csp = get("content-security-policy");
    assert!(csp.contains("default-src 'none'"), "{what}: CSP {csp:?}");
    assert!(!get("cache-control").is_empty(), "{what}: no Cache-Control");
    if authenticated_api {
        assert_eq!(get("cache-control"), "no-store", "{what}");
    }
}

both_backends! {
    async fn every_answer_of_every_route_carries_the_security_headers(app: TestApp) {
        let finance = app.token_for(Role::Finance).await;
        let user = crate::dash::add_person(&app, "headers-finance", Role::Finance).await;
        let s = feerecon::accounts::open_session(&app.store, &user, chrono::Utc::now()).await.unwrap();
        let cookie = format!("feerecon_session={}", s.id.expose());
        let csrf = feerecon::auth::session::csrf_token(&s.id);
        let client = crate::dash::client();
        let mut checked = 0;
        for (method, path, access) in SPEC_TABLE {
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            for credentials in [false, true] {
                let mut req = client.request(m.clone(), app.url(&concrete(path)));
                if credentials && access.is_page() {
                    req = req.header("cookie", &cookie);
                } else if credentials {
                    req = req.bearer_auth(&finance);
                }
                if m == reqwest::Method::POST || m == reqwest::Method::PUT {
                    req = if access.is_page() {
                        req.header("content-type", "application/x-www-form-urlencoded").body(format!("csrf={csrf}"))
                    } else {
                        req.header("content-type", "application/json").body("{}")
                    };
                }
                let res = req.send().await.unwrap();
                let what = format!("{method} {path} (credentials: {credentials}): {}", res.status());
                check_headers(&what, res.headers(), credentials && path.starts_with("/api/v1/"));
                checked += 1;
            }
        }
        assert_eq!(checked, SPEC_TABLE.len() * 2);
        let res = client.get(app.url("/no/such/route")).send().await.unwrap();
        assert_eq!(res.status(), 404);
        check_headers("an unmatched path", res.headers(), false);
    }
}

/// The secrets a full run is configured with or hands out.
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn add(&mut self, what: &str, value: &str) {
        assert!(value.len() >= 8, "{what} is long enough to search for");
        self.0.push((what.to_owned(), value.to_owned()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_at_debug_level_logs_no_secret() {
    use feerecon::domain::Clock as _;
    let (url, _dir) = crate::helpers::fresh_db(crate::helpers::Db::Sqlite).await.unwrap();
    let clock = Arc::new(feerecon::domain::ShiftedClock::starting_at(chrono::Utc::now()));
    let sim = feerecon::simulator::Simulator::start(
        crate::helpers::sim_config(),
        "127.0.0.1:0".parse().unwrap(),
        clock.clone(),
    )
    .await
    .unwrap();
    // The portal's webhook receiver: takes every notification.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}", listener.local_addr().unwrap());
    let receiver = axum::Router::new().route("/webhook", axum::routing::post(|| async { axum::http::StatusCode::OK }));
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let mut secrets = Secrets(Vec::new());
    let mut env = crate::helpers::gateway_env(&sim.url());
    for (k, v) in crate::helpers::GATEWAY_ENV {
        if k.contains("SECRET") || k.contains("KEY") || k.ends_with("TOKEN") {
            secrets.add(k, v);
        }
    }
    let webhook_secret = "webhook-secret-never-logged";
    env.push(("FEERECON_PORTAL_WEBHOOK_URL".into(), format!("{hook}/webhook")));
    env.push(("FEERECON_PORTAL_WEBHOOK_SECRET".into(), webhook_secret.into()));
    secrets.add("FEERECON_PORTAL_WEBHOOK_SECRET", webhook_secret);

    // The server, at debug level, every line of its output kept.
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_feerecon"));
    cmd.arg("serve")
        .env("FEERECON_DATABASE_URL", &url)
        .env("FEERECON_LISTEN", "127.0.0.1:0")
        .env("FEERECON_LOG_FORMAT", "json")
        .env("FEERECON_LEDGER_KEY", crate::helpers::test_key_path(&url))
        .env("RUST_LOG", "debug")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let logs = Arc::new(Mutex::new(Vec::<String>::new()));
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel::<String>();
    let mut addr_tx = Some(addr_tx);
    let mut err_lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stderr.take().unwrap()));
    let mut out_lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().unwrap()));
    let kept = logs.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = err_lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(a) = v["addr"].as_str()
                && let Some(tx) = addr_tx.take()
            {
                let _ = tx.send(format!("http://{a}"));
            }
            kept.lock().unwrap().push(line);
        }
    });
    let kept = logs.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = out_lines.next_line().await {
            kept.lock().unwrap().push(line);
        }
    });
    let base = addr_rx.await.expect("the server started");
    sim.set_dvcqg_callback_url(&format!("{base}/gateway/dvcqg/callback"));

    // Its users: a portal token and a finance person who logs in with a password.
    let store = feerecon::store::Store::connect(&url).await.unwrap();
    let (_, t) = crate::helpers::add_user_token(&store, "portal", Role::Portal, None).await;
    let portal = t.token.expose().to_owned();
    secrets.add("the portal's token", &portal);
    let hash = feerecon::auth::hash_password(&feerecon::domain::Secret::new(crate::dash::PASSWORD)).unwrap();
    feerecon::accounts::add_user(&store, "test", "finance-person", Role::Finance, Some(hash), chrono::Utc::now())
        .await
        .unwrap();
    secrets.add("the finance person's password", crate::dash::PASSWORD);
    let key = std::fs::read_to_string(crate::helpers::test_key_path(&url)).unwrap_or_default();
    for word in key.split_whitespace().filter(|w| w.len() >= 16) {
        secrets.add("the ledger signing key", word);
    }

    // A day's business: a case and a payment per gateway, each paid by a genuine callback.
    let client = crate::dash::client();
    let mut receipts_seen = 0;
    for (seq, g) in (1..).zip(crate::forge::GATEWAYS) {
        let code = format!("000.00.12.H62-240715-{seq:04}");
        let body = serde_json::json!({
            "procedure_code": crate::gateways::GPLX, "applicant_name": "Phạm Thị Hoa", "channel": "counter",
            "received_at": "2024-07-15T10:00:00+07:00", "receiving_unit": "000.00.12.H62",
        });
        let res =
            client.put(format!("{base}/api/v1/cases/{code}")).bearer_auth(&portal).json(&body).send().await.unwrap();
        assert!(res.status().is_success(), "{}", res.text().await.unwrap());
        let res = client
            .post(format!("{base}/api/v1/cases/{code}/payments"))
            .bearer_auth(&portal)
            .header("Idempotency-Key", format!("k{seq}"))
            .json(
                &serde_json::json!({"gateway": g, "return_url": "https://dvc.example.vn/", "client_ip": "203.0.113.9"}),
            )
            .send()
            .await
            .unwrap();
        let (status, p) = crate::helpers::json(res).await;
        assert_eq!(status, 201, "{g}: {p}");
        crate::gateways::open_pay_page(&p).await;
        let amount = p["amount"].as_i64().unwrap();
        let (method, payload) = crate::forge::genuine(g, p["txn_ref"].as_str().unwrap(), amount, None);
        let (status, reply) = crate::forge::send(&client, &base, g, &method, &payload).await;
        assert!(crate::forge::accepted(g, status, &reply), "{g}: {status} {reply}");
        let res = client.get(format!("{base}/api/v1/cases/{code}/receipts")).bearer_auth(&portal).send().await.unwrap();
        let (status, r) = crate::helpers::json(res).await;
        assert_eq!(status, 200, "{r}");
        receipts_seen += r["items"].as_array().map_or(0, Vec::len);
    }
    assert!(receipts_seen >= 1, "a receipt was issued");
    // The dashboard: log in with the password, open a page.
    let form = client.get(format!("{base}/login")).send().await.unwrap();
    let login_cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("feerecon_login="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = crate::dash::csrf_of(&form.text().await.unwrap());
    let body = serde_urlencoded::to_string([
        ("csrf", csrf.as_str()),
        ("name", "finance-person"),
        ("password", crate::dash::PASSWORD),
        ("next", "/"),
    ])
    .unwrap();
    let res = client
        .post(format!("{base}/login"))
        .header("cookie", login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "the login succeeds");
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("feerecon_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    secrets.add("the session cookie", session.trim_start_matches("feerecon_session="));
    let res = client.get(format!("{base}/payments")).header("cookie", &session).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // The webhook receives the portal's events (so the signing path ran).
    let mut delivered = 0;
    for _ in 0..100 {
        delivered = store
            .notifications(Some(feerecon::domain::payment::DeliveryState::Delivered), None, 100)
            .await
            .unwrap()
            .len();
        if delivered >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(delivered >= 4, "the signed webhook deliveries ran: {delivered} delivered");
    let _ = clock.now();
    child.kill().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let logs = logs.lock().unwrap().join("\n");
    assert!(logs.lines().count() > 50, "the run logged at debug level:\n{logs}");
    assert!(logs.contains("\"level\":\"DEBUG\""), "debug lines were written");
    for (what, value) in &secrets.0 {
        assert!(!logs.contains(value.as_str()), "{what} appears in the logs");
    }
}
