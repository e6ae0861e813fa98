//! Forgery over HTTP (issue 21): a generated corpus of mutated callbacks per gateway, sent to the
//! real server with real pending payments. Every one is refused with the gateway's "bad
//! signature" reply, nothing changes (payments, ledger, outbox), and each refusal is counted on
//! `/metrics` (`feerecon_callbacks_total{gateway, outcome="bad_signature"}`). The genuine message
//! each corpus was made from is then sent and applied, so the forgeries were refused for being
//! forged, not for pointing at nothing.
//!
//! 1,000 forgeries per gateway by default; `FEERECON_FORGERIES_PER_GATEWAY` sets another count
//! (the long run, `scripts/long-run.sh`, sends 10,000).

use std::collections::HashMap;

use feerecon::domain::Role;
use futures_util::StreamExt as _;
use rand::SeedableRng;

use crate::forge::{GATEWAYS, accepted, forgeries, genuine, send};
use crate::gateways::{pending_payment, with_gateways};
use crate::helpers::{Db, TestApp, spawn_gateway_app};
use feerecon::simulator::Simulator;

fn per_gateway() -> usize {
    std::env::var("FEERECON_FORGERIES_PER_GATEWAY").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000)
}

/// `feerecon_callbacks_total` by (gateway, outcome).
async fn callback_counts(app: &TestApp) -> HashMap<(String, String), u64> {
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| l.starts_with("feerecon_callbacks_total{")) {
        let label = |name: &str| {
            let start = line.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            line[start..].split('"').next().unwrap().to_owned()
        };
        let value: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        out.insert((label("gateway"), label("outcome")), value);
    }
    out
}

fn delta(before: &HashMap<(String, String), u64>, after: &HashMap<(String, String), u64>, g: &str, o: &str) -> u64 {
    let key = (g.to_owned(), o.to_owned());
    after.get(&key).copied().unwrap_or(0) - before.get(&key).copied().unwrap_or(0)
}

/// Everything a callback could change: the payments, the ledger, the outbox.
async fn state(app: &TestApp, payment_ids: &[String]) -> String {
    let mut s = String::new();
    for id in payment_ids {
        s.push_str(&format!("{:?}\n", app.store.get_payment(id).await.unwrap()));
    }
    s.push_str(&format!("{:?}\n", app.store.ledger_entries(0, 100_000).await.unwrap()));
    s.push_str(&format!("{:?}\n", app.store.notifications(None, None, 100_000).await.unwrap()));
    s
}

with_gateways! {
    async fn a_corpus_of_forgeries_per_gateway_is_refused_over_http_counted_and_changes_nothing(app, sim) {
        let _ = &sim;
        let n = per_gateway();
        let portal = app.token_for(Role::Portal).await;
        let mut rng = rand::rngs::StdRng::seed_from_u64(21);
        let mut ids = Vec::new();
        let mut genuine_messages = Vec::new();
        let mut corpus: Vec<(&str, String, String)> = Vec::new();
        for (seq, g) in (1..).zip(GATEWAYS) {
            let (_, p) = pending_payment(&app, &portal, seq, g).await;
            ids.push(p["payment_id"].as_str().unwrap().to_owned());
            let txn_ref = p["txn_ref"].as_str().unwrap();
            let (method, payload) = genuine(g, txn_ref, 135_000, None);
            // Distinct forgeries only: the mutations of one message repeat (a dropped field, an
            // empty signature), so each round mutates a genuine message of another amount too.
            let mut made = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for round in 0..n {
                let base = if round == 0 { payload.clone() } else { genuine(g, txn_ref, 135_000 + 1_000 * round as i64, None).1 };
                made.extend(forgeries(g, &base, &mut rng).into_iter().filter(|f| seen.insert(f.clone())));
                if made.len() >= n {
                    break;
                }
            }
            assert!(made.len() >= n, "{g}: only {} distinct forgeries", made.len());
            made.truncate(n);
            corpus.extend(made.into_iter().map(|f| (g, method.clone(), f)));
            genuine_messages.push((g, method, payload));
        }
        let before = state(&app, &ids).await;
        let counted_before = callback_counts(&app).await;

        let results: Vec<_> = futures_util::stream::iter(corpus.iter())
            .map(|(g, method, f)| {
                let (client, base) = (app.client.clone(), app.address.clone());
                async move { (g, f, send(&client, &base, g, method, f).await) }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        for (g, f, (status, body)) in &results {
            assert!(!accepted(g, *status, body), "{g} accepted a forgery: {f}\n{status} {body}");
        }
        assert_eq!(results.len(), n * GATEWAYS.len());
        assert_eq!(state(&app, &ids).await, before, "a forgery changed a payment, the ledger or the outbox");
        let counted = callback_counts(&app).await;
        for g in GATEWAYS {
            assert_eq!(delta(&counted_before, &counted, g, "bad_signature"), n as u64, "{g}: refusals counted");
            for o in ["applied", "already_confirmed", "order_not_found", "invalid_amount", "not_an_outcome", "failure"] {
                assert_eq!(delta(&counted_before, &counted, g, o), 0, "{g}: {o}");
            }
        }

        // The genuine messages the corpus came from are applied: the payments were there to forge.
        for ((g, method, payload), id) in genuine_messages.iter().zip(&ids) {
            let (status, body) = send(&app.client, &app.address, g, method, payload).await;
            assert!(accepted(g, status, &body), "{g}: {status} {body}");
            assert_eq!(app.payment(&portal, id).await["status"], "paid", "{g}");
        }
        let after = callback_counts(&app).await;
        for g in GATEWAYS {
            assert_eq!(delta(&counted, &after, g, "applied"), 1, "{g}");
        }
    }
}
