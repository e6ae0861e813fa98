//! Two `feerecon serve` processes on one PostgreSQL under one duplicated, reordered callback
//! stream (issue 21, SPEC §6.4 item 4): many payments on VNPAY, MoMo and ZaloPay, each genuine
//! callback sent two or three times, every copy to a process picked at random, all copies
//! shuffled and sent concurrently. Then: exactly one copy per payment is answered "applied" and
//! the others "already confirmed"; each payment is paid once (one payment event, one confirmation
//! posting); the chain verifies; and a receiver the test runs gets each notification exactly once.
//! 200 payments in CI; `FEERECON_CONCURRENCY_PAYMENTS` for more (`scripts/long-run.sh`).

use std::collections::BTreeMap;
use std::time::Duration;

use feerecon::domain::Role;
use futures_util::StreamExt as _;
use rand::seq::SliceRandom as _;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::forge::{genuine_numbered, send};
use crate::helpers::{Db, json as read_json};

/// What a gateway's reply says: applied, already confirmed, or something else.
fn reply_kind(gateway: &str, status: u16, body: &str) -> &'static str {
    let has = |s: &str| body.contains(s);
    match gateway {
        "vnpay" if has("\"RspCode\":\"00\"") => "applied",
        "vnpay" if has("\"RspCode\":\"02\"") => "already",
        // MoMo answers both with 204.
        "momo" if status == 204 => "acknowledged",
        "zalopay" if has("\"return_code\":1") => "applied",
        "zalopay" if has("\"return_code\":2") => "already",
        _ => "other",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_apply_a_duplicated_reordered_stream_exactly_once() {
    let Some((url, _)) = crate::helpers::fresh_db(Db::Postgres).await else { return };
    let n: usize =
        std::env::var("FEERECON_CONCURRENCY_PAYMENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200).max(3);
    let seed: u64 =
        std::env::var("FEERECON_CONCURRENCY_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("two processes: {n} payments, FEERECON_CONCURRENCY_SEED={seed} replays the order");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let receiver = crate::notify::Receiver::start(port).await;
    // MoMo and ZaloPay orders are created at the (simulated) gateway; the test sends the callbacks.
    let clock = std::sync::Arc::new(feerecon::domain::SystemClock);
    let sim =
        feerecon::simulator::Simulator::start(crate::helpers::sim_config(), "127.0.0.1:0".parse().unwrap(), clock)
            .await
            .unwrap();
    let mut env = crate::helpers::gateway_env(&sim.url());
    env.push(("FEERECON_PORTAL_WEBHOOK_URL".into(), format!("http://127.0.0.1:{port}/hooks/feerecon")));
    env.push(("FEERECON_PORTAL_WEBHOOK_SECRET".into(), "whsec-two".into()));
    let (_a, base_a) = crate::helpers::serve_process(&url, &env).await;
    let (_b, base_b) = crate::helpers::serve_process(&url, &env).await;
    let bases = [base_a, base_b];
    let store = feerecon::store::Store::connect(&url).await.unwrap();
    let (_, t) = crate::helpers::add_user_token(&store, "portal", Role::Portal, None).await;
    let (_, f) = crate::helpers::add_user_token(&store, "finance", Role::Finance, None).await;
    let (portal, finance) = (t.token.expose().to_owned(), f.token.expose().to_owned());
    let client = reqwest::Client::new();

    // The payments, created through both processes.
    let created: Vec<(String, String, String, i64)> = futures_util::stream::iter(0..n)
        .map(|i| {
            let (client, portal, base) = (client.clone(), portal.clone(), bases[i % 2].clone());
            async move {
                let g = ["vnpay", "momo", "zalopay"][i % 3];
                let code = format!("000.00.12.H62-240715-{:04}", i + 1);
                let body = json!({"procedure_code": crate::gateways::GPLX, "applicant_name": "A", "channel": "counter",
                    "received_at": "2024-07-15T10:00:00+07:00", "receiving_unit": "000.00.12.H62"});
                let res = client.put(format!("{base}/api/v1/cases/{code}")).bearer_auth(&portal).json(&body).send();
                assert_eq!(res.await.unwrap().status(), 201);
                let res = client
                    .post(format!("{base}/api/v1/cases/{code}/payments"))
                    .bearer_auth(&portal)
                    .header("Idempotency-Key", "k")
                    .json(&json!({"gateway": g, "return_url": "https://x.vn/", "client_ip": "1.2.3.4"}))
                    .send();
                let (s, p) = read_json(res.await.unwrap()).await;
                assert_eq!(s, 201, "{p}");
                (
                    g.to_owned(),
                    p["txn_ref"].as_str().unwrap().to_owned(),
                    p["payment_id"].as_str().unwrap().to_owned(),
                    p["amount"].as_i64().unwrap(),
                )
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;

    // Two or three copies of each genuine callback, each to a random process, all shuffled.
    let mut copies = Vec::new();
    for (i, (g, txn_ref, id, amount)) in created.iter().enumerate() {
        let (_, payload) = genuine_numbered(g, txn_ref, *amount, None, i as u64);
        for _ in 0..rng.gen_range(2..=3) {
            copies.push((g.clone(), id.clone(), payload.clone(), bases[rng.gen_range(0..2)].clone()));
        }
    }
    copies.shuffle(&mut rng);
    let sent = copies.len();
    let replies: Vec<(String, String, &str)> = futures_util::stream::iter(copies)
        .map(|(g, id, payload, base)| {
            let client = client.clone();
            async move {
                let (status, body) = send(&client, &base, &g, "POST", &payload).await;
                (g.clone(), id, reply_kind(&g, status, &body))
            }
        })
        .buffer_unordered(24)
        .collect()
        .await;
    let mut by_payment: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (g, id, kind) in &replies {
        assert_ne!(*kind, "other", "{g} {id}: every copy is answered applied or already confirmed");
        by_payment.entry(id.as_str()).or_default().push(kind);
    }
    for (id, kinds) in &by_payment {
        if !kinds.contains(&"acknowledged") {
            assert_eq!(kinds.iter().filter(|k| **k == "applied").count(), 1, "{id}: applied once: {kinds:?}");
        }
    }

    // One payment event and one confirmation posting per payment; the chain verifies.
    let mut pg = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let events: Vec<(String, i64)> =
        sqlx::query_as("SELECT payment_id, COUNT(*) FROM payment_events GROUP BY payment_id")
            .fetch_all(&mut pg)
            .await
            .unwrap();
    assert_eq!(events.len(), n, "every payment has its event");
    assert!(events.iter().all(|(_, c)| *c == 1), "one event per payment: {events:?}");
    let postings: Vec<(String, String)> =
        sqlx::query_as("SELECT DISTINCT posting_id, refs FROM ledger_entries WHERE kind = 'payment_confirmed'")
            .fetch_all(&mut pg)
            .await
            .unwrap();
    for (_, _, id, _) in &created {
        let p = store.get_payment(id).await.unwrap().unwrap();
        assert_eq!((p.status.as_str(), p.flags.len()), ("paid", 0), "{id}");
        let mine: std::collections::BTreeSet<&str> =
            postings.iter().filter(|(_, r)| r.contains(&format!("payment={id};"))).map(|(p, _)| p.as_str()).collect();
        assert_eq!(mine.len(), 1, "{id}: one confirmation posting: {mine:?}");
    }
    let res = client.get(format!("{}/api/v1/ledger/verify", bases[0])).bearer_auth(&finance).send();
    let (s, v) = read_json(res.await.unwrap()).await;
    assert_eq!((s, &v["ok"]), (200, &json!(true)), "{v}");

    // Each notification reaches the receiver exactly once.
    // Deliveries run in the background; a long run's thousands take longer than `wait_for`'s 15 s.
    for _ in 0..(n / 10).max(300) {
        if receiver.counts().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counts = receiver.counts();
    assert_eq!(counts.len(), n, "one event per payment");
    let twice: Vec<_> = counts.iter().filter(|(_, c)| **c != 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    eprintln!("two processes: {n} payments, {sent} callback copies, {} notifications, each once", counts.len());
    store.close().await;
}
