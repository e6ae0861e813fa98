//! Outcomes you can see (issue 20): the server's log line of each callback outcome and of a
//! status-query recovery, with the ids a person searches by, read from `serve`'s own standard
//! error; and the `/metrics` gauges of stored state (exceptions by state, dates run but not
//! closed, the oldest pending payment) and the ledger verification counter after a small day.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use feerecon::domain::Role;
use feerecon::domain::payment::Gateway;
use feerecon::simulator::{Faults, SimOutcome, Simulator};
use serde_json::Value;

use crate::both_databases;
use crate::helpers::Db;
use crate::world::{GPLX, World};

/// `serve` as a process with JSON logs; every line it writes to standard error is kept.
async fn serve_logged(url: &str, env: &[(String, String)]) -> (tokio::process::Child, String, Arc<Mutex<Vec<Value>>>) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_feerecon"));
    cmd.arg("serve")
        .env("FEERECON_DATABASE_URL", url)
        .env("FEERECON_LISTEN", "127.0.0.1:0")
        .env("FEERECON_LOG_FORMAT", "json")
        .env("FEERECON_LEDGER_KEY", crate::helpers::test_key_path(url))
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
    let logs = Arc::new(Mutex::new(Vec::new()));
    while let Some(line) = lines.next_line().await.unwrap() {
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("a JSON log line: {line}"));
        if let Some(a) = v["addr"].as_str() {
            let base = format!("http://{a}");
            let kept = logs.clone();
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(v) = serde_json::from_str(&line) {
                        kept.lock().unwrap().push(v);
                    }
                }
            });
            return (child, base, logs);
        }
    }
    panic!("the server did not start");
}

/// Waits (up to 20 s) for the log line with `message` about `txn_ref`, and returns it.
async fn line(logs: &Mutex<Vec<Value>>, message: &str, txn_ref: &str) -> Value {
    line_by(logs, message, "txn_ref", txn_ref).await
}

/// The log line `message` whose field `key` is `value`, waited for.
async fn line_by(logs: &Mutex<Vec<Value>>, message: &str, key: &str, txn_ref: &str) -> Value {
    for _ in 0..200 {
        let found = logs.lock().unwrap().iter().find(|v| v["message"] == message && v[key] == txn_ref).cloned();
        if let Some(v) = found {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all: Vec<String> = logs.lock().unwrap().iter().map(Value::to_string).collect();
    panic!("no log line {message:?} about {txn_ref}:\n{}", all.join("\n"));
}

both_databases! {
    async fn callback_outcomes_and_a_recovery_are_logged_with_their_ids(url: String) {
        let sim = Simulator::start(crate::helpers::sim_config(), "127.0.0.1:0".parse().unwrap(), Arc::new(feerecon::domain::SystemClock))
            .await
            .unwrap();
        let mut env = crate::helpers::gateway_env(&sim.url());
        // Lost callbacks are asked about two seconds after their payment's creation.
        env.push(("FEERECON_PENDING_QUERY_AFTER".into(), "2s".into()));
        let (_server, base, logs) = serve_logged(&url, &env).await;
        let store = feerecon::store::Store::connect(&url).await.unwrap();
        let (_, t) = crate::helpers::add_user_token(&store, "portal-logs", Role::Portal, None).await;
        let client = reqwest::Client::new();
        let secret = crate::helpers::GATEWAY_ENV.iter().find(|(k, _)| *k == "FEERECON_VNPAY_HASH_SECRET").unwrap().1;

        // Four cases paid at VNPAY: twice (a duplicate), forged, with a wrong amount, and lost.
        let mut paid = Vec::new();
        for (seq, faults) in [
            Faults { duplicates: 1, ..Faults::default() },
            Faults { forged: true, ..Faults::default() },
            Faults { wrong_amount_by: 1_000, ..Faults::default() },
            Faults { lost: true, ..Faults::default() },
        ]
        .into_iter()
        .enumerate()
        {
            let code = format!("000.00.12.H62-240715-{:04}", 70 + seq);
            let body = serde_json::json!({"procedure_code": GPLX, "applicant_name": "Phạm Thị Hoa", "channel": "counter",
                "received_at": "2024-07-15T10:00:00+07:00", "receiving_unit": "000.00.12.H62"});
            let res = client.put(format!("{base}/api/v1/cases/{code}")).bearer_auth(t.token.expose()).json(&body).send().await.unwrap();
            assert!(res.status().is_success(), "{}", res.text().await.unwrap());
            let res = client.post(format!("{base}/api/v1/cases/{code}/payments")).bearer_auth(t.token.expose())
                .header("Idempotency-Key", "k")
                .json(&serde_json::json!({"gateway": "vnpay", "return_url": "https://dichvucong.example.vn/", "client_ip": "203.0.113.9"}))
                .send().await.unwrap();
            assert_eq!(res.status(), 201);
            let p: Value = res.json().await.unwrap();
            reqwest::get(p["pay_url"].as_str().unwrap()).await.unwrap();
            let txn_ref = p["txn_ref"].as_str().unwrap().to_owned();
            sim.pay(&txn_ref, SimOutcome::Success, &faults).await.unwrap();
            paid.push((code, txn_ref, p["payment_id"].as_str().unwrap().to_owned()));
        }
        let ids = |v: &Value, (code, txn_ref, _): &(String, String, String)| {
            assert_eq!((v["case_code"].as_str(), v["txn_ref"].as_str(), v["gateway"].as_str()), (Some(code.as_str()), Some(txn_ref.as_str()), Some("vnpay")), "{v}");
            assert_eq!(v["level"], "INFO", "{v}");
        };

        let applied = line(&logs, "callback applied", &paid[0].1).await;
        ids(&applied, &paid[0]);
        assert_eq!((applied["payment_id"].as_str(), applied["status"].as_str()), (Some(paid[0].2.as_str()), Some("paid")), "{applied}");
        let duplicate = line(&logs, "callback duplicate", &paid[0].1).await;
        ids(&duplicate, &paid[0]);
        assert_eq!(duplicate["result"], "already_confirmed", "{duplicate}");

        // A forged message's reference is only a claim: logged as such, with no case looked up for it.
        let forged = line_by(&logs, "callback refused", "claimed_txn_ref", &paid[1].1).await;
        assert_eq!((forged["case_code"].as_str(), forged["txn_ref"].as_str(), forged["gateway"].as_str()), (None, None, Some("vnpay")), "{forged}");
        assert_eq!(forged["level"], "INFO", "{forged}");
        assert_eq!(forged["result"], "bad_signature", "{forged}");
        assert!(forged["reason"].as_str().is_some_and(|r| !r.is_empty()), "{forged}");

        let wrong = line(&logs, "callback refused", &paid[2].1).await;
        ids(&wrong, &paid[2]);
        assert_eq!(wrong["result"], "invalid_amount", "{wrong}");
        let amount = store.get_payment(&paid[2].2).await.unwrap().unwrap().amount.dong();
        assert_eq!(wrong["reason"].as_str(), Some(format!("the payment's amount is {amount}").as_str()), "{wrong}");

        let recovered = line(&logs, "status query recovered", &paid[3].1).await;
        ids(&recovered, &paid[3]);
        assert_eq!((recovered["status"].as_str(), recovered["result"].as_str()), (Some("paid"), Some("applied")), "{recovered}");
        assert_eq!(store.get_payment(&paid[3].2).await.unwrap().unwrap().status.as_str(), "paid");

        // No line holds the gateway's secret or a signature.
        let all: Vec<String> = logs.lock().unwrap().iter().map(Value::to_string).collect();
        assert!(all.iter().all(|l| !l.contains(secret) && !l.contains("vnp_SecureHash=")), "{all:?}");
        store.close().await;
    }
}

async fn metrics(w: &World) -> String {
    w.app.client.get(w.app.url("/metrics")).send().await.unwrap().text().await.unwrap()
}

/// The value of the sample `name` (with its labels) in a Prometheus text exposition.
fn sample(text: &str, name: &str) -> Option<i64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn metrics_show_what_waits_for_a_person(db: Db) {
    let Some(mut w) = World::new(db).await else { return };
    w.at("2024-07-15T10:00:00+07:00");
    let before = metrics(&w).await;
    assert_eq!(sample(&before, "feerecon_oldest_pending_payment_age_seconds"), Some(0), "{before}");
    assert_eq!(sample(&before, r#"feerecon_exceptions{state="open"}"#), Some(0), "{before}");
    assert_eq!(sample(&before, r#"feerecon_dates_run_not_closed{gateway="vnpay"}"#), Some(0), "{before}");
    // A payment confirmed with no settlement line (an exception once the date runs), and one left pending.
    let _paid = w.pay("2024-07-15", false).await;
    let code = w.app.new_case(&w.portal, 90, GPLX, "counter", "2024-07-15").await;
    let pending = w.create(&code, Gateway::Vnpay, "k").await.unwrap();
    w.app.clock.advance(chrono::TimeDelta::seconds(600));
    let report = w.run("2024-07-15").await;
    let exceptions = report["items"].as_array().unwrap().len();
    assert!(exceptions >= 1, "{report}");
    w.verifies().await;
    w.verifies().await;

    let text = metrics(&w).await;
    assert_eq!(
        sample(&text, r#"feerecon_exceptions{state="open"}"#),
        Some(i64::try_from(exceptions).unwrap()),
        "{text}"
    );
    assert_eq!(sample(&text, r#"feerecon_exceptions{state="pending_approval"}"#), Some(0), "{text}");
    assert_eq!(sample(&text, r#"feerecon_dates_run_not_closed{gateway="vnpay"}"#), Some(1), "{text}");
    assert_eq!(sample(&text, r#"feerecon_dates_run_not_closed{gateway="momo"}"#), Some(0), "{text}");
    // Ten minutes on the shared clock, and the moments the test itself took.
    let age = sample(&text, "feerecon_oldest_pending_payment_age_seconds").unwrap();
    assert!((600..900).contains(&age), "{age}: {text}");
    assert_eq!(w.app.store.get_payment(&pending.id).await.unwrap().unwrap().status.as_str(), "pending");
    assert_eq!(sample(&text, r#"feerecon_ledger_verifications_total{result="ok"}"#), Some(2), "{text}");
    assert_eq!(sample(&text, r#"feerecon_ledger_verifications_total{result="broken"}"#), Some(0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_what_waits_for_a_person_sqlite() {
    metrics_show_what_waits_for_a_person(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_what_waits_for_a_person_postgres() {
    metrics_show_what_waits_for_a_person(Db::Postgres).await;
}
