//! Portal notifications over real HTTP to a test receiver, on SQLite and PostgreSQL: signatures,
//! retries, dead letters, re-sending, a crash between commit and delivery, and two instances.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use feerecon::domain::{Role, Secret};
use serde_json::Value;

use crate::both_databases;
use crate::helpers::{Db, TestApp, cc, error_code, json, spawn_app_with};

#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub signature: String,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct ReceiverState {
    got: Mutex<Vec<Received>>,
    status: AtomicU16,
    /// Case codes whose events are refused with 500.
    refuse: Mutex<HashSet<String>>,
}

/// A portal stand-in that records every delivery.
pub struct Receiver {
    state: Arc<ReceiverState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(s): State<Arc<ReceiverState>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let refused = s.refuse.lock().unwrap().contains(v["case_code"].as_str().unwrap_or(""));
    s.got.lock().unwrap().push(Received {
        at: Instant::now(),
        signature: headers.get("feerecon-signature").map(|h| h.to_str().unwrap().to_owned()).unwrap_or_default(),
        body: body.to_vec(),
    });
    if refused {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::from_u16(s.status.load(Ordering::SeqCst)).unwrap()
    }
}

impl Receiver {
    pub async fn start(port: u16) -> Self {
        let state = Arc::new(ReceiverState { status: AtomicU16::new(200), ..Default::default() });
        let app = axum::Router::new().route("/hooks/feerecon", post(receive)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { state, task }
    }

    pub fn got(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }

    /// Event ids received, with how many times each.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for r in self.got() {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            *m.entry(v["event_id"].as_str().unwrap().to_owned()).or_insert(0) += 1;
        }
        m
    }

    pub async fn wait_for(&self, n: usize) {
        for _ in 0..300 {
            if self.counts().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("only {} of {n} events arrived", self.counts().len());
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Creates `n` waived payments (marriage in Vietnam, Luật Hộ tịch Art. 11), one event each.
async fn make_events(app: &TestApp, token: &str, first_seq: u32, n: u32) -> Vec<String> {
    let mut codes = Vec::new();
    for seq in first_seq..first_seq + n {
        let code = app.new_case(token, seq, "1.000894", "online_full", "2024-07-15").await;
        let (s, v) = app.create_payment(token, &code, "vnpay", "k").await;
        assert_eq!((s, v["status"].as_str()), (201, Some("waived")), "{v}");
        codes.push(code);
    }
    codes
}

fn webhook_env(port: u16) -> Vec<(String, String)> {
    vec![
        ("FEERECON_PORTAL_WEBHOOK_URL".into(), format!("http://127.0.0.1:{port}/hooks/feerecon")),
        ("FEERECON_PORTAL_WEBHOOK_SECRET".into(), "whsec-current".into()),
        ("FEERECON_PORTAL_WEBHOOK_SECRET_PREVIOUS".into(), "whsec-previous".into()),
    ]
}

async fn app_with(db: Db, port: u16, extra: &[(&str, &str)]) -> Option<TestApp> {
    let mut env = webhook_env(port);
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    spawn_app_with(db, &refs).await
}

macro_rules! both_notify {
    (async fn $name:ident($db:ident) $body:block) => {
        mod $name {
            use super::*;
            async fn body($db: Db) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                body(Db::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if crate::helpers::fresh_db(Db::Postgres).await.is_some() {
                    body(Db::Postgres).await;
                }
            }
        }
    };
}

both_notify! {
    async fn a_delivered_event_verifies_with_either_secret(db) {
        let port = free_port();
        let receiver = Receiver::start(port).await;
        let app = app_with(db, port, &[]).await.unwrap();
        let portal = app.token_for(Role::Portal).await;
        let codes = make_events(&app, &portal, 1, 3).await;
        receiver.wait_for(3).await;
        for r in receiver.got() {
            for secret in ["whsec-current", "whsec-previous"] {
                assert!(feerecon::notify::verify(&r.signature, &r.body, &Secret::new(secret), chrono::Utc::now().timestamp(), 300), "{}", r.signature);
            }
            assert!(!feerecon::notify::verify(&r.signature, &r.body, &Secret::new("whsec-other"), chrono::Utc::now().timestamp(), 300));
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            // SPEC §6.6's keys, in its order.
            let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, ["event_id", "type", "case_code", "payment_id", "status", "amount", "citizen_due", "flags", "paid_at", "case_seq", "receipt"]);
            assert_eq!((v["amount"].as_i64(), v["citizen_due"].as_i64(), v["flags"].clone(), v["receipt"].clone()), (Some(0), Some(0), serde_json::json!([]), Value::Null));
            assert!(v["receipt"].is_null(), "a waived case has no receipt: {v}");
            assert_eq!((v["type"].as_str(), v["status"].as_str(), v["case_seq"].as_i64()), (Some("payment.waived"), Some("waived"), Some(1)));
            assert!(codes.contains(&v["case_code"].as_str().unwrap().to_owned()));
        }
        let counts = receiver.counts();
        assert!(counts.values().all(|n| *n == 1), "{counts:?}");
        // The delivery is recorded after the receiver answered: wait for it.
        for c in &codes {
            let mut state = String::new();
            for _ in 0..100 {
                state = app.store.case_events(&cc(c)).await.unwrap()[0].state.to_string();
                if state == "delivered" {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            assert_eq!(state, "delivered");
        }
    }
}

both_notify! {
    async fn a_receiver_down_for_a_while_gets_every_event_once_it_is_up(db) {
        let port = free_port();
        let app = app_with(db, port, &[("FEERECON_NOTIFY_MAX_BACKOFF", "1s")]).await.unwrap();
        let portal = app.token_for(Role::Portal).await;
        make_events(&app, &portal, 1, 5).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let attempted = app.store.notifications(Some(feerecon::domain::payment::DeliveryState::Pending), None, 100).await.unwrap();
        assert_eq!(attempted.len(), 5);
        assert!(attempted.iter().all(|e| e.attempts >= 1 && e.last_error.is_some()), "{attempted:?}");
        let receiver = Receiver::start(port).await;
        receiver.wait_for(5).await;
        assert!(receiver.counts().values().all(|n| *n == 1));
    }
}

both_notify! {
    async fn retries_grow_then_dead_letter_then_resend_without_blocking_others(db) {
        let port = free_port();
        let receiver = Receiver::start(port).await;
        let app = app_with(db, port, &[("FEERECON_NOTIFY_MAX_ATTEMPTS", "4"), ("FEERECON_NOTIFY_MAX_BACKOFF", "3s")]).await.unwrap();
        let portal = app.token_for(Role::Portal).await;
        let finance = app.token_for(Role::Finance).await;
        let bad = app.new_case(&portal, 1, "1.000894", "online_full", "2024-07-15").await;
        receiver.state.refuse.lock().unwrap().insert(bad.clone());
        app.create_payment(&portal, &bad, "vnpay", "k").await;
        // The dead letter-to-be does not hold the others back.
        let good = make_events(&app, &portal, 2, 2).await;
        let mut dead = None;
        for _ in 0..200 {
            let failed = app.store.notifications(Some(feerecon::domain::payment::DeliveryState::Failed), None, 10).await.unwrap();
            if let Some(e) = failed.into_iter().next() {
                dead = Some(e);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let dead = dead.expect("the event is dead-lettered");
        assert_eq!((dead.case_code.as_str(), dead.attempts), (bad.as_str(), 4));
        let times: Vec<Instant> = receiver.got().iter()
            .filter(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["case_code"] == bad.as_str())
            .map(|r| r.at).collect();
        assert_eq!(times.len(), 4);
        let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps[0] < gaps[1] && gaps[1] < gaps[2], "delays grow: {gaps:?}");
        let first_bad = times[0];
        let good_done = receiver.got().iter()
            .filter(|r| good.contains(&serde_json::from_slice::<Value>(&r.body).unwrap()["case_code"].as_str().unwrap().to_owned()))
            .map(|r| r.at).max().unwrap();
        assert!(good_done < times[3] && good_done >= first_bad - Duration::from_secs(1), "the others were delivered meanwhile");
        // Visible to finance and on /metrics.
        let (_, list) = json(app.get("/api/v1/notifications?state=failed", &finance).await).await;
        assert_eq!(list["items"][0]["event_id"], dead.event_id.as_str());
        assert_eq!(list["items"][0]["attempts"], 4);
        let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains(r#"feerecon_notifications{state="failed"} 1"#), "{metrics}");
        assert!(metrics.contains(r#"feerecon_notification_deliveries_total{result="dead_letter"} 1"#), "{metrics}");
        // Re-sent by finance once the portal is fixed: delivered.
        receiver.state.refuse.lock().unwrap().clear();
        let auditor = app.token_for(Role::Auditor).await;
        let res = app.client.post(app.url(&format!("/api/v1/notifications/{}/resend", dead.event_id))).bearer_auth(&auditor).send().await.unwrap();
        assert_eq!(res.status(), 403);
        let res = app.client.post(app.url(&format!("/api/v1/notifications/{}/resend", dead.event_id))).bearer_auth(&finance).send().await.unwrap();
        assert_eq!(res.status(), 200);
        for _ in 0..100 {
            if app.store.case_events(&cc(&bad)).await.unwrap()[0].state == "delivered" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(app.store.case_events(&cc(&bad)).await.unwrap()[0].state, "delivered");
        let (s, v) = json(app.client.post(app.url(&format!("/api/v1/notifications/{}/resend", dead.event_id))).bearer_auth(&finance).send().await.unwrap()).await;
        assert_eq!((s, error_code(&v)), (404, "not_found"));
        assert!(app.store.audit_log(0, 100).await.unwrap().iter().any(|e| e.action == "notification.resend"));
    }
}

both_databases! {
    async fn a_kill_between_commit_and_delivery_loses_nothing(url: String) {
        let port = free_port();
        let mut env = webhook_env(port);
        env.push(("FEERECON_NOTIFY_MAX_BACKOFF".into(), "1s".into()));
        let (mut server, base) = crate::helpers::serve_process(&url, &env).await;
        let store = feerecon::store::Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let (_, t) = crate::helpers::add_user_token(&store, &format!("portal-{port}"), Role::Portal, None).await;
        let client = reqwest::Client::new();
        let code = "000.00.12.H62-240715-0001";
        let body = serde_json::json!({"procedure_code": "1.000894", "applicant_name": "A", "channel": "online_full",
            "received_at": "2024-07-15T10:00:00+07:00", "receiving_unit": "000.00.12.H62"});
        client.put(format!("{base}/api/v1/cases/{code}")).bearer_auth(t.token.expose()).json(&body).send().await.unwrap();
        let res = client.post(format!("{base}/api/v1/cases/{code}/payments")).bearer_auth(t.token.expose()).header("Idempotency-Key", "k")
            .json(&serde_json::json!({"gateway": "momo", "return_url": "https://x.vn/", "client_ip": "1.2.3.4"})).send().await.unwrap();
        assert_eq!(res.status(), 201);
        // The event is committed; the portal is not listening: kill -9 the server now.
        server.start_kill().unwrap();
        server.wait().await.unwrap();
        assert_eq!(store.case_events(&cc(code)).await.unwrap()[0].state, "pending");
        let receiver = Receiver::start(port).await;
        let (_server, _) = crate::helpers::serve_process(&url, &env).await;
        receiver.wait_for(1).await;
        let v: Value = serde_json::from_slice(&receiver.got()[0].body).unwrap();
        assert_eq!((v["case_code"].as_str(), v["type"].as_str()), (Some(code), Some("payment.waived")));
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgresql_deliver_each_event_once() {
    let Some((url, _)) = crate::helpers::fresh_db(Db::Postgres).await else { return };
    let port = free_port();
    let receiver = Receiver::start(port).await;
    let env = webhook_env(port);
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let clock = Arc::new(feerecon::domain::ShiftedClock::starting_at(chrono::Utc::now()));
    let a = crate::helpers::spawn_app_on(Db::Postgres, url.clone(), None, &refs, clock.clone()).await;
    let b = crate::helpers::spawn_app_on(Db::Postgres, url.clone(), None, &refs, clock).await;
    let portal_a = a.token_for(Role::Portal).await;
    let portal_b = b.token_for(Role::Portal).await;
    let mut codes = BTreeSet::new();
    for i in 0..15u32 {
        codes.extend(make_events(&a, &portal_a, 2 * i + 1, 1).await);
        codes.extend(make_events(&b, &portal_b, 2 * i + 2, 1).await);
    }
    receiver.wait_for(30).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counts = receiver.counts();
    assert_eq!(counts.len(), 30);
    assert!(counts.values().all(|n| *n == 1), "an event was delivered twice: {counts:?}");
}
