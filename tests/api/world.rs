//! A world for tests of days: a server with the simulator on one clock, portal and finance users,
//! and helpers that pay, import, run, resolve and close as people and gateways would.

use std::collections::BTreeMap;

use feerecon::domain::payment::Gateway;
use feerecon::domain::{Clock as _, Role};
use feerecon::settlement::{Line, LineStatus, Profile};
use feerecon::simulator::{Faults, SimOutcome, Simulator};
use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, json, spawn_gateway_app};

pub const GPLX: &str = "1.002804";

/// A server, the simulator, the people, and a clock set by date.
pub struct World {
    pub app: TestApp,
    pub sim: Simulator,
    pub portal: String,
    pub f1: String,
    pub f2: String,
    pub auditor: String,
    pub seq: u32,
    pub files: u32,
}

/// A payment made in a test: its id, gateway, reference, amount and the gateway's number.
#[derive(Debug, Clone)]
pub struct Paid {
    pub id: String,
    pub gateway: Gateway,
    pub case_code: String,
    pub txn_ref: String,
    pub amount: i64,
    pub no: String,
}

impl World {
    pub async fn new(db: Db) -> Option<Self> {
        Self::with(db, &[]).await
    }

    /// A world whose server has the extra configuration `extra`.
    pub async fn with(db: Db, extra: &[(&str, &str)]) -> Option<Self> {
        let (app, sim) = spawn_gateway_app(db, extra).await?;
        let portal = app.token_for(Role::Portal).await;
        let f1 = app.token_for(Role::Finance).await;
        let f2 = app.token_for(Role::Finance).await;
        let auditor = app.token_for(Role::Auditor).await;
        Some(Self { app, sim, portal, f1, f2, auditor, seq: 0, files: 0 })
    }

    /// Moves the shared clock (server and simulator) to `at` (RFC 3339).
    pub fn at(&self, at: &str) {
        let target = chrono::DateTime::parse_from_rfc3339(at).unwrap().to_utc();
        self.app.clock.advance(target - self.app.clock.now());
    }

    /// A case received on `date` and its VNPAY payment at the counter rate (135,000), paid at
    /// the gateway now; `lost` keeps the callback from arriving.
    pub async fn pay(&mut self, date: &str, lost: bool) -> Paid {
        self.seq += 1;
        let code = self.app.new_case(&self.portal, self.seq, GPLX, "counter", date).await;
        self.pay_case(&code, Gateway::Vnpay, "k", SimOutcome::Success, &Faults { lost, ..Faults::default() })
            .await
            .unwrap()
    }

    /// A payment of case `code` at `gateway`, and what the citizen does at the gateway; `None`
    /// when the server refuses to create it (the case is paid already, say).
    pub async fn pay_case(
        &mut self,
        code: &str,
        gateway: Gateway,
        key: &str,
        outcome: SimOutcome,
        faults: &Faults,
    ) -> Option<Paid> {
        let created = self.create(code, gateway, key).await?;
        Some(self.complete(created, outcome, faults).await)
    }

    /// A payment of case `code` created at `gateway` and opened by the citizen, not yet paid;
    /// `None` when the server refuses to create it.
    pub async fn create(&self, code: &str, gateway: Gateway, key: &str) -> Option<Paid> {
        let (s, p) = self.app.create_payment(&self.portal, code, gateway.as_str(), key).await;
        if s != 201 {
            return None;
        }
        reqwest::get(p["pay_url"].as_str().unwrap()).await.unwrap();
        Some(Paid {
            id: p["payment_id"].as_str().unwrap().to_owned(),
            gateway,
            case_code: code.to_owned(),
            txn_ref: p["txn_ref"].as_str().unwrap().to_owned(),
            amount: p["amount"].as_i64().unwrap(),
            no: String::new(),
        })
    }

    /// The citizen completes `created` at the gateway with `outcome`; the gateway's number is
    /// filled in when it gave one.
    pub async fn complete(&self, mut created: Paid, outcome: SimOutcome, faults: &Faults) -> Paid {
        self.sim.pay(&created.txn_ref, outcome, faults).await.unwrap();
        let txn = self.sim.transactions().into_iter().find(|t| t.txn_ref == created.txn_ref).unwrap();
        created.no = txn.txn_no.map(|n| n.to_string()).unwrap_or_default();
        created
    }

    /// The lost callback of `p` arrives now, as a gateway retry would deliver it.
    pub async fn callback(&self, p: &Paid) {
        let d = self.sim.redeliver(&p.txn_ref).await.unwrap();
        assert!(d.iter().all(|d| d.status == 200), "{d:?}");
    }

    /// Imports a canonical settlement file of `lines`: (payment, amount, status, txn_time).
    pub async fn import(&mut self, lines: &[(&Paid, i64, LineStatus, &str)]) {
        self.import_for(Gateway::Vnpay, lines).await;
    }

    /// Imports a canonical settlement file of `gateway`.
    pub async fn import_for(&mut self, gateway: Gateway, lines: &[(&Paid, i64, LineStatus, &str)]) {
        let lines: Vec<Line> = lines
            .iter()
            .enumerate()
            .map(|(i, (p, amount, status, at))| Line {
                line_no: i + 2,
                gateway_txn_no: p.no.clone(),
                txn_ref: p.txn_ref.clone(),
                amount: *amount,
                fee: 1_485,
                txn_time: chrono::DateTime::parse_from_rfc3339(at).unwrap().to_utc(),
                status: *status,
            })
            .collect();
        self.import_lines(gateway, &lines).await;
    }

    /// Imports a canonical settlement file of `gateway` holding `lines`.
    pub async fn import_lines(&mut self, gateway: Gateway, lines: &[Line]) {
        let (s, v) = self.try_import_lines(gateway, lines).await;
        assert_eq!(s, 201, "{v}");
    }

    /// Imports a canonical settlement file of `gateway` holding `lines`: the answer.
    pub async fn try_import_lines(&mut self, gateway: Gateway, lines: &[Line]) -> (u16, Value) {
        self.files += 1;
        let bytes = feerecon::settlement::write(&Profile::canonical(), lines);
        let res = self
            .app
            .client
            .post(self.app.url(&format!(
                "/api/v1/settlements?gateway={}&profile=canonical&name=f{}.csv",
                gateway.as_str(),
                self.files
            )))
            .bearer_auth(&self.f1)
            .header("content-type", "text/csv")
            .body(bytes)
            .send()
            .await
            .unwrap();
        json(res).await
    }

    pub async fn run(&self, date: &str) -> Value {
        self.run_for(Gateway::Vnpay, date).await
    }

    pub async fn run_for(&self, gateway: Gateway, date: &str) -> Value {
        let res = self
            .app
            .client
            .post(self.app.url("/api/v1/reconciliations"))
            .bearer_auth(&self.f1)
            .json(&json!({"date": date, "gateway": gateway}))
            .send()
            .await
            .unwrap();
        let (s, v) = json(res).await;
        assert!(s == 201 || s == 200, "{v}");
        v
    }

    pub async fn act(&self, token: &str, id: &str, verb: &str, body: Value) -> (u16, Value) {
        let res = self
            .app
            .client
            .post(self.app.url(&format!("/api/v1/exceptions/{id}/{verb}")))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        json(res).await
    }

    /// Resolves `key` with `action`, approved by the second finance user when it moves money.
    pub async fn resolve(&self, key: &str, action: &str) -> Value {
        let (s, e) = self.act(&self.f1, key, "resolve", json!({"action": action, "note": "t"})).await;
        assert_eq!(s, 200, "{action} {key}: {e}");
        if e["state"] == "pending_approval" {
            let (s, e) = self.act(&self.f2, key, "approve", json!({})).await;
            assert_eq!(s, 200, "{e}");
            return e;
        }
        e
    }

    pub async fn close(&self, date: &str) -> (u16, Value) {
        self.close_for(Gateway::Vnpay, date).await
    }

    pub async fn close_for(&self, gateway: Gateway, date: &str) -> (u16, Value) {
        let res = self
            .app
            .client
            .post(self.app.url(&format!("/api/v1/days/{date}/close")))
            .bearer_auth(&self.f1)
            .json(&json!({"gateway": gateway}))
            .send()
            .await
            .unwrap();
        json(res).await
    }

    /// The balance (debit − credit) of every account over the whole ledger.
    pub async fn balances(&self) -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        for e in self.app.store.ledger_entries(0, 100_000).await.unwrap() {
            *out.entry(e.account.clone()).or_insert(0) += e.debit - e.credit;
        }
        out
    }

    /// A matched item of a date's latest run (the report lists only exceptions).
    pub async fn matched(&self, date: &str, key: &str) -> Value {
        let (s, page) = json(
            self.app
                .get(
                    &format!("/api/v1/reconciliations/{date}/items?gateway=vnpay&category=matched&limit=1000"),
                    &self.auditor,
                )
                .await,
        )
        .await;
        assert_eq!(s, 200, "{page}");
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["item_key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no matched {key}: {page}"))
    }

    pub async fn exception(&self, key: &str) -> feerecon::store::ExceptionRow {
        self.app.store.get_exception(key).await.unwrap().unwrap_or_else(|| panic!("no exception {key}"))
    }

    pub async fn verifies(&self) {
        let (_, live) = json(self.app.get("/api/v1/ledger/verify", &self.auditor).await).await;
        assert_eq!(live["ok"], true, "{live}");
    }
}

/// A test `body(World)` run twice, on SQLite and on PostgreSQL (skipped loudly when absent).
macro_rules! across {
    ($(#[$meta:meta])* async fn $name:ident($w:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn body(mut $w: World) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                body(World::new(Db::Sqlite).await.unwrap()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(w) = World::new(Db::Postgres).await {
                    body(w).await;
                }
            }
        }
    };
}
pub(crate) use across;
