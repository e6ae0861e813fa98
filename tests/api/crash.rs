//! Crash tests (issue 14 item 10): `feerecon serve` as a child process, `kill -9` at random
//! moments under load, restarted on the same database and port, the simulated gateways retrying
//! what was not acknowledged as gateways do; then the invariants: nothing acknowledged is lost,
//! nothing is applied twice, the ledger verifies. On SQLite and on PostgreSQL.
//!
//! The harness is built to be extended: `Harness` owns the server process, its database and the
//! simulator; a `Load` is what runs while the server may die (`during`), what is retried after
//! the last restart (`recover`) and what must then hold (`check`). `CallbackLoad` drives gateway
//! callbacks; imports, runs and closes are further `Load`s. `Workload` holds the parameters: CI
//! runs `Workload::ci()` (3 cycles); `FEERECON_CRASH_CYCLES`, `FEERECON_CRASH_PAYMENTS` and
//! `FEERECON_CRASH_SEED` make a longer or a replayed run (README, "Tests").

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use feerecon::domain::Role;
use feerecon::simulator::{Delivery, Faults, SimOutcome, Simulator};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::helpers::{Db, json};

/// How hard a crash test pushes.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Kill-and-restart cycles.
    pub cycles: usize,
    /// Payments created and paid per cycle (each one callback, sometimes duplicated).
    pub payments_per_cycle: usize,
    /// The kill comes at a random moment in this window after the load starts.
    pub kill_window: (Duration, Duration),
    /// Extra copies of a callback, at most (a gateway's duplicates).
    pub max_duplicates: u32,
    /// Each callback leaves after a random delay up to this, so that the kill finds some sent,
    /// some in flight and some not yet sent.
    pub max_delay: Duration,
    pub seed: u64,
}

impl Workload {
    /// What CI runs: a few tens of seconds on two cores, both databases.
    pub fn ci() -> Self {
        Self {
            cycles: 3,
            payments_per_cycle: 36,
            kill_window: (Duration::from_millis(10), Duration::from_millis(250)),
            max_duplicates: 2,
            max_delay: Duration::from_millis(200),
            seed: rand::random(),
        }
    }

    /// `ci()`, with `FEERECON_CRASH_CYCLES`, `FEERECON_CRASH_PAYMENTS` and `FEERECON_CRASH_SEED`
    /// from the environment when set.
    pub fn from_env() -> Self {
        let mut w = Self::ci();
        let num = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(n) = num("FEERECON_CRASH_CYCLES") {
            w.cycles = n.max(1) as usize;
        }
        if let Some(n) = num("FEERECON_CRASH_PAYMENTS") {
            w.payments_per_cycle = n.max(1) as usize;
        }
        if let Some(s) = num("FEERECON_CRASH_SEED") {
            w.seed = s;
        }
        w
    }
}

/// The server process, its database, the simulated gateways and the clients of a crash test.
pub struct Harness {
    pub db: Db,
    pub url: String,
    pub base: String,
    pub env: Vec<(String, String)>,
    pub store: feerecon::store::Store,
    pub sim: Simulator,
    pub client: reqwest::Client,
    pub portal: String,
    pub finance: String,
    server: Mutex<Option<tokio::process::Child>>,
    /// Keeps the SQLite file's directory for the test's duration.
    _dir: Option<tempfile::TempDir>,
    /// Kills so far, and how many of them landed while the load was running.
    pub kills: usize,
    pub kills_mid_load: usize,
}

impl Harness {
    /// A fresh database, the simulator, and `serve` on a port that stays the same across restarts
    /// (the gateways call back to the URL they were given). `None` without PostgreSQL.
    pub async fn start(db: Db, extra_env: &[(&str, &str)]) -> Option<Self> {
        Self::start_clocked(db, extra_env, std::sync::Arc::new(feerecon::domain::SystemClock)).await
    }

    /// `start`, with the simulated gateways on `clock` (their payment times, so their business
    /// dates); the server keeps the system clock.
    pub async fn start_clocked(
        db: Db,
        extra_env: &[(&str, &str)],
        clock: std::sync::Arc<dyn feerecon::domain::Clock>,
    ) -> Option<Self> {
        let (url, dir) = crate::helpers::fresh_db(db).await?;
        let sim = Simulator::start(crate::helpers::sim_config(), "127.0.0.1:0".parse().unwrap(), clock).await.unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut env = crate::helpers::gateway_env(&sim.url());
        env.push(("FEERECON_LISTEN".into(), format!("127.0.0.1:{port}")));
        env.push(("FEERECON_PUBLIC_URL".into(), format!("http://127.0.0.1:{port}")));
        env.extend(extra_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let (server, base) = crate::helpers::serve_process(&url, &env).await;
        let store = feerecon::store::Store::connect(&url).await.unwrap();
        let (_, p) = crate::helpers::add_user_token(&store, "crash-portal", Role::Portal, None).await;
        let (_, f) = crate::helpers::add_user_token(&store, "crash-finance", Role::Finance, None).await;
        Some(Self {
            db,
            url,
            base,
            env,
            store,
            sim,
            client: reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap(),
            portal: p.token.expose().to_owned(),
            finance: f.token.expose().to_owned(),
            server: Mutex::new(Some(server)),
            _dir: dir,
            kills: 0,
            kills_mid_load: 0,
        })
    }

    /// Sends SIGKILL (`kill -9`) to the server process, without waiting.
    fn signal_kill(&self) {
        if let Some(s) = self.server.lock().unwrap().as_mut() {
            let _ = s.start_kill();
        }
    }

    /// `kill -9` of the server process, and waits until it is gone.
    pub async fn kill(&mut self) {
        let server = self.server.lock().unwrap().take();
        if let Some(mut s) = server {
            let _ = s.start_kill();
            s.wait().await.unwrap();
            self.kills += 1;
        }
    }

    /// Starts the server again on the same database and port.
    pub async fn restart(&mut self) {
        assert!(self.server.lock().unwrap().is_none(), "kill before restarting");
        let (server, base) = crate::helpers::serve_process(&self.url, &self.env).await;
        assert_eq!(base, self.base, "the server came back on its port");
        *self.server.lock().unwrap() = Some(server);
    }

    /// Runs `cycles` of: `prepare` (the server up), then `during` with a `kill -9` at a random
    /// moment of the kill window (or at its end, when the load finished first), the restart, and
    /// `after_restart`. Then `recover` and `check`.
    pub async fn run(&mut self, load: &dyn Load, w: &Workload) {
        let mut rng = StdRng::seed_from_u64(w.seed);
        eprintln!("crash test on {:?}: {w:?} (FEERECON_CRASH_SEED={} replays it)", self.db, w.seed);
        let started = Instant::now();
        // The shortest load that finished before its kill: later kills are drawn within it, so
        // that on a machine faster than the window assumes the kills still land mid-load.
        let mut fastest: Option<Duration> = None;
        for cycle in 0..w.cycles {
            let (low, mut high) = w.kill_window;
            if let Some(f) = fastest {
                high = high.min(f * 3 / 4).max(low.min(f / 2));
            }
            let low = low.min(high);
            let kill_at = rng.gen_range(low..=high);
            let seed = rng.r#gen::<u64>();
            load.prepare(self, cycle, w, seed).await;
            let mid_load = {
                let this = &*self;
                let during = load.during(this, cycle, w, seed);
                tokio::pin!(during);
                let load_started = Instant::now();
                tokio::select! {
                    () = &mut during => {
                        let took = load_started.elapsed();
                        fastest = Some(fastest.map_or(took, |f| f.min(took)));
                        false
                    }
                    () = tokio::time::sleep(kill_at) => {
                        // The load goes on against a dying server; its requests fail.
                        this.signal_kill();
                        during.await;
                        true
                    }
                }
            };
            self.kills_mid_load += usize::from(mid_load);
            self.kill().await;
            self.restart().await;
            load.after_restart(self, cycle).await;
        }
        load.recover(self).await;
        load.check(self).await;
        assert!(self.kills_mid_load >= 1, "at least one kill landed while the load was in flight");
        eprintln!(
            "crash test on {:?}: {} kills ({} while callbacks were in flight) in {:.1?}; {}",
            self.db,
            self.kills,
            self.kills_mid_load,
            started.elapsed(),
            load.summary()
        );
    }

    /// The ledger, verified by the server.
    pub async fn ledger_verifies(&self) -> Value {
        let res = self.client.get(format!("{}/api/v1/ledger/verify", self.base)).bearer_auth(&self.finance).send();
        let (s, v) = json(res.await.unwrap()).await;
        assert_eq!(s, 200, "{v}");
        v
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.signal_kill();
    }
}

/// What a crash test drives. Each method runs against the live server (`Harness::base`).
#[async_trait::async_trait]
pub trait Load: Send + Sync {
    /// What a cycle needs before the kill window opens (the server is up).
    async fn prepare(&self, h: &Harness, cycle: usize, w: &Workload, seed: u64);
    /// One cycle's work; the server may be killed at any moment while it runs.
    async fn during(&self, h: &Harness, cycle: usize, w: &Workload, seed: u64);
    /// Right after the restart that ends `cycle`: what must already hold.
    async fn after_restart(&self, h: &Harness, cycle: usize);
    /// After the last cycle: retry what was never acknowledged, as its sender would.
    async fn recover(&self, h: &Harness);
    /// The invariants on the final state.
    async fn check(&self, h: &Harness);
    /// The figures to print.
    fn summary(&self) -> String;
}

/// Gateway callbacks under load: each cycle creates payments on the three gateways, the citizen
/// pays each, and the gateway calls back (sometimes duplicated, sometimes concurrently).
#[derive(Default)]
pub struct CallbackLoad {
    state: Mutex<CallbackState>,
}

#[derive(Default)]
struct CallbackState {
    /// txn_ref → (payment_id, gateway)
    payments: BTreeMap<String, (String, String)>,
    /// The payments `prepare` created for the cycle under way: (txn_ref, gateway).
    cycle: Vec<(String, String)>,
    /// References whose callback the server acknowledged (applied or already confirmed).
    acked: BTreeSet<String>,
    deliveries: usize,
    acks: usize,
    redeliveries: usize,
    next_case: u32,
}

/// Whether a gateway's reply acknowledges the callback (it will not be sent again).
fn acknowledges(gateway: &str, d: &Delivery) -> bool {
    match gateway {
        "vnpay" => d.body.contains("\"RspCode\":\"00\"") || d.body.contains("\"RspCode\":\"02\""),
        "momo" => d.status == 204,
        _ => d.body.contains("\"return_code\":1") || d.body.contains("\"return_code\":2"),
    }
}

impl CallbackLoad {
    fn record(&self, txn_ref: &str, gateway: &str, ds: &[Delivery], redelivery: bool) {
        let mut s = self.state.lock().unwrap();
        s.deliveries += ds.len();
        if redelivery {
            s.redeliveries += ds.len();
        }
        let acked = ds.iter().filter(|d| acknowledges(gateway, d)).count();
        s.acks += acked;
        if acked > 0 {
            s.acked.insert(txn_ref.to_owned());
        }
    }

    /// Creates a pending payment (the server is alive at the start of a cycle).
    async fn create(&self, h: &Harness, gateway: &str) -> Option<(String, String)> {
        let seq = {
            let mut s = self.state.lock().unwrap();
            s.next_case += 1;
            s.next_case
        };
        // 9,999 cases per date: later ones on the following days.
        let day = 15 + (seq - 1) / 9_999;
        let code = format!("000.00.12.H62-2407{day:02}-{:04}", (seq - 1) % 9_999 + 1);
        let body = serde_json::json!({"procedure_code": crate::gateways::GPLX, "applicant_name": "A", "channel": "counter",
            "received_at": format!("2024-07-{day:02}T10:00:00+07:00"), "receiving_unit": "000.00.12.H62"});
        let res = h
            .client
            .put(format!("{}/api/v1/cases/{code}", h.base))
            .bearer_auth(&h.portal)
            .json(&body)
            .send()
            .await
            .ok()?;
        if !res.status().is_success() {
            return None;
        }
        let res = h
            .client
            .post(format!("{}/api/v1/cases/{code}/payments", h.base))
            .bearer_auth(&h.portal)
            .header("Idempotency-Key", "crash")
            .json(&serde_json::json!({"gateway": gateway, "return_url": "https://x.vn/", "client_ip": "1.2.3.4"}))
            .send()
            .await
            .ok()?;
        let (s, p) = json(res).await;
        if s != 201 {
            return None;
        }
        let txn_ref = p["txn_ref"].as_str()?.to_owned();
        if gateway == "vnpay" {
            reqwest::get(p["pay_url"].as_str()?).await.ok()?;
        }
        self.state
            .lock()
            .unwrap()
            .payments
            .insert(txn_ref.clone(), (p["payment_id"].as_str()?.to_owned(), gateway.into()));
        Some((txn_ref, gateway.to_owned()))
    }
}

#[async_trait::async_trait]
impl Load for CallbackLoad {
    async fn prepare(&self, h: &Harness, cycle: usize, w: &Workload, _seed: u64) {
        let mut created = Vec::new();
        for i in 0..w.payments_per_cycle {
            let g = ["vnpay", "momo", "zalopay"][i % 3];
            created.push(self.create(h, g).await.unwrap_or_else(|| panic!("cycle {cycle}: a payment is created")));
        }
        self.state.lock().unwrap().cycle = created;
    }

    async fn during(&self, h: &Harness, _cycle: usize, w: &Workload, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let created = std::mem::take(&mut self.state.lock().unwrap().cycle);
        let pays = created.into_iter().map(|(txn_ref, g)| {
            let faults = Faults {
                duplicates: rng.gen_range(0..=w.max_duplicates),
                concurrent: rng.gen_bool(0.5),
                delay_ms: rng.gen_range(0..=w.max_delay.as_millis() as u64),
                ..Faults::default()
            };
            async move {
                if let Ok(ds) = h.sim.pay(&txn_ref, SimOutcome::Success, &faults).await {
                    self.record(&txn_ref, &g, &ds, false);
                }
            }
        });
        futures_util::future::join_all(pays).await;
    }

    async fn after_restart(&self, h: &Harness, cycle: usize) {
        // Nothing acknowledged is lost: every acknowledged callback's payment is paid already.
        let acked: Vec<String> = self.state.lock().unwrap().acked.iter().cloned().collect();
        for txn_ref in acked {
            let p = h.store.payment_by_txn_ref(&txn_ref).await.unwrap().expect("an acknowledged payment exists");
            assert_eq!(p.status.as_str(), "paid", "cycle {cycle}: {txn_ref} was acknowledged before the kill");
        }
    }

    async fn recover(&self, h: &Harness) {
        let waiting: Vec<(String, String)> = {
            let s = self.state.lock().unwrap();
            s.payments.iter().filter(|(r, _)| !s.acked.contains(*r)).map(|(r, (_, g))| (r.clone(), g.clone())).collect()
        };
        for (txn_ref, g) in waiting {
            for attempt in 0.. {
                assert!(attempt < 20, "{txn_ref} is never acknowledged");
                // The citizen's payment may not have reached the gateway before the kill.
                let ds = match h.sim.redeliver(&txn_ref).await {
                    Ok(ds) => ds,
                    Err(_) => h.sim.pay(&txn_ref, SimOutcome::Success, &Faults::default()).await.unwrap(),
                };
                self.record(&txn_ref, &g, &ds, true);
                if ds.iter().any(|d| acknowledges(&g, d)) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    async fn check(&self, h: &Harness) {
        let payments = self.state.lock().unwrap().payments.clone();
        let entries = h.all_ledger_entries().await;
        for (txn_ref, (id, g)) in &payments {
            let p = h.store.get_payment(id).await.unwrap().unwrap();
            assert_eq!((p.status.as_str(), p.flags.as_slice()), ("paid", &[][..]), "{g} {txn_ref}");
            // Applied once: one portal event, one confirmation posting.
            let events = h.store.case_events(&p.case_code).await.unwrap();
            assert_eq!(
                events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(),
                ["payment.succeeded"],
                "{txn_ref}"
            );
            let postings: BTreeSet<&str> = entries
                .iter()
                .filter(|e| e.kind == "payment_confirmed" && e.refs.contains(&format!("payment={id};")))
                .map(|e| e.posting_id.as_str())
                .collect();
            assert_eq!(postings.len(), 1, "{txn_ref}: one confirmation posting");
            one_signed_receipt(h, &p).await;
        }
        let v = h.ledger_verifies().await;
        assert_eq!(v["ok"], true, "{v}");
    }

    fn summary(&self) -> String {
        let s = self.state.lock().unwrap();
        format!(
            "{} payments, {} callback deliveries ({} acknowledged, {} retried after a kill)",
            s.payments.len(),
            s.deliveries,
            s.acks,
            s.redeliveries
        )
    }
}

async fn callbacks_survive_kill_9(db: Db) {
    let Some(mut h) = Harness::start(db, &[]).await else { return };
    let w = Workload::from_env();
    let load = CallbackLoad::default();
    h.run(&load, &w).await;
    assert_eq!(h.kills, w.cycles);
}

crate::per_database!(callbacks_survive_kill_9_at_random_moments, super::callbacks_survive_kill_9);

/// A paid payment has exactly one receipt (issued in its confirmation's transaction), for its
/// amount, whose Ed25519 signature holds over the receipt's canonical content; the receipt
/// numbers of its series have no duplicate and no gap.
pub async fn one_signed_receipt(h: &Harness, p: &feerecon::store::Payment) {
    use ed25519_dalek::Verifier as _;
    let receipts = h.store.case_receipts(&p.case_code).await.unwrap();
    let mine: Vec<_> = receipts.iter().filter(|r| r.payment_id.as_deref() == Some(p.payment_id.as_str())).collect();
    assert_eq!(mine.len(), 1, "{}: one receipt per paid payment", p.payment_id);
    let r = mine[0];
    assert_eq!(r.total, p.amount.dong(), "{}: the receipt is for the amount paid", p.payment_id);
    let mut pk = [0u8; 32];
    let mut sg = [0u8; 64];
    hex::decode_to_slice(&r.public_key, &mut pk).unwrap();
    hex::decode_to_slice(&r.signature, &mut sg).unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&pk).unwrap();
    let message = [feerecon::receipts::content::SIGNED_PREFIX.as_bytes(), r.content.as_bytes()].concat();
    assert!(key.verify(&message, &ed25519_dalek::Signature::from_bytes(&sg)).is_ok(), "{}: signature", r.receipt_id);
    let (last, numbers) = h.store.receipt_numbering(&r.template, &r.symbol, r.year).await.unwrap();
    assert_eq!(numbers, (1..=last).collect::<Vec<_>>(), "receipt numbers without duplicate or gap");
}

impl Harness {
    /// Every ledger entry, read page by page.
    pub async fn all_ledger_entries(&self) -> Vec<feerecon::store::LedgerEntry> {
        let (mut all, mut after) = (Vec::new(), 0);
        loop {
            let page = self.store.ledger_entries(after, 10_000).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.seq;
            all.extend(page);
        }
        all
    }
}
