//! A stand-in for VNPAY, MoMo, ZaloPay and the DVCQG payment platform on loopback (SPEC §6.7), for integrators
//! (`feerecon simulate-gateway`), the tests and the demo.
//!
//! It speaks the gateways' protocols byte for byte: VNPAY's signed pay URL and querydr, MoMo's
//! and ZaloPay's create-order and status-query APIs, pay pages where a person clicks "pay" or
//! "cancel", and signed callbacks to the merchant. Callbacks can carry chosen faults: duplicated
//! ×N (in turn or at once), delayed, reordered, forged, lost, or with a wrong amount; status
//! queries can be answered with an API error, another amount or no transaction number
//! (`QueryFault`). Orders expire as each gateway expires them (VNPAY `vnp_ExpireDate`, MoMo
//! `orderExpireTime`, ZaloPay `expire_duration_seconds`): a citizen cannot pay an expired order.
//! Its signing code (`sign.rs`) is written apart from the adapters' verification code.

mod dvcqg;
mod momo;
pub mod mutate;
mod pages;
mod settlement;
pub mod sign;
mod vnpay;
mod webhook;
mod zalopay;

pub use settlement::{DayFile, Discrepancies};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::domain::payment::Gateway;
use crate::domain::{Clock, vn_offset};

/// The merchant credentials the simulated gateways share with feerecon.
#[derive(Clone, Default)]
pub struct SimConfig {
    /// (tmn_code, hash_secret)
    pub vnpay: Option<(String, String)>,
    /// (partner_code, access_key, secret_key)
    pub momo: Option<(String, String, String)>,
    /// (app_id, key1, key2)
    pub zalopay: Option<(String, String, String)>,
    /// Where VNPAY IPNs go (VNPAY configures it per terminal). Default: the origin of the pay
    /// request's `vnp_ReturnUrl` + `/gateway/vnpay/ipn`.
    pub vnpay_ipn_url: Option<String>,
    /// (partner_code, secret) of the DVCQG platform.
    pub dvcqg: Option<(String, String)>,
    /// Where DVCQG callbacks go (registered at onboarding; settable later with
    /// `Simulator::set_dvcqg_callback_url`).
    pub dvcqg_callback_url: Option<String>,
    /// The folder of settlement profiles the day's files are written in (`None`: the ones
    /// embedded in the binary).
    pub profiles: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("vnpay", &self.vnpay.as_ref().map(|v| &v.0))
            .field("momo", &self.momo.as_ref().map(|v| &v.0))
            .field("zalopay", &self.zalopay.as_ref().map(|v| &v.0))
            .field("dvcqg", &self.dvcqg.as_ref().map(|v| &v.0))
            .finish()
    }
}

impl SimConfig {
    /// The credentials configured for feerecon (`FEERECON_VNPAY_*`, ...): the gateway knows them too.
    pub fn from_config(c: &Config) -> Self {
        Self {
            vnpay: c.vnpay.as_ref().map(|v| (v.tmn_code.clone(), v.hash_secret.expose().to_owned())),
            momo: c
                .momo
                .as_ref()
                .map(|m| (m.partner_code.clone(), m.access_key.expose().to_owned(), m.secret_key.expose().to_owned())),
            zalopay: c
                .zalopay
                .as_ref()
                .map(|z| (z.app_id.clone(), z.key1.expose().to_owned(), z.key2.expose().to_owned())),
            vnpay_ipn_url: None,
            dvcqg: c.dvcqg.as_ref().map(|d| (d.partner_code.clone(), d.secret.expose().to_owned())),
            dvcqg_callback_url: Some(format!("{}/gateway/dvcqg/callback", c.public_url)),
            profiles: Some(c.settlement_profiles.clone()),
        }
    }
}

/// What the citizen does at the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimOutcome {
    Success,
    Failure,
    /// Still being processed (VNPAY 07, MoMo 7000); ZaloPay sends nothing.
    Pending,
}

/// Faults to inject into the callbacks of one payment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Extra copies of the callback (0 = delivered once).
    pub duplicates: u32,
    /// Deliver the copies all at once rather than one after another.
    pub concurrent: bool,
    /// Wait this long before delivering.
    pub delay_ms: u64,
    /// Before the final callback, report "pending"; delivered after the final one (reordered).
    pub reorder: bool,
    /// Sign with a key that is not the merchant's.
    pub forged: bool,
    /// Do not deliver at all (the gateway still knows the outcome: a status query finds it).
    pub lost: bool,
    /// Report an amount this much off (signed properly).
    pub wrong_amount_by: i64,
}

/// How the status queries about one transaction are answered, instead of truthfully.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryFault {
    /// Answer with this API error instead of the status: VNPAY's `vnp_ResponseCode` (`91`,
    /// `94`, `99`), MoMo's `resultCode` (`99`, `10`...), ZaloPay's `sub_return_code` with
    /// `return_code` 2 (`-402`, `-101`).
    pub api_error: Option<String>,
    /// The amount the answer names (default: the transaction's).
    pub amount: Option<i64>,
    /// Leave the gateway's transaction number out (`0` for MoMo and ZaloPay, empty for VNPAY).
    pub unnumbered: bool,
    /// Sign the answer with a key that is not the merchant's (VNPAY; MoMo and ZaloPay do not sign
    /// their answers).
    pub forged: bool,
    /// How many queries it applies to; `None` for every one.
    pub times: Option<u32>,
}

/// A status query the simulator was asked, as it arrived (for tests: how often, from where).
#[derive(Debug, Clone, Serialize)]
pub struct QueryRecord {
    pub gateway: Gateway,
    pub txn_ref: String,
    pub request: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// One delivery attempt and the merchant's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub status: u16,
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SimStatus {
    Open,
    Paid,
    Failed,
    Pending,
    /// Not paid before the order's expiry: it can no longer be paid.
    Expired,
}

/// A transaction as the simulated gateway knows it.
#[derive(Debug, Clone, Serialize)]
pub struct SimTxn {
    pub gateway: Gateway,
    pub txn_ref: String,
    pub amount: i64,
    pub order_info: String,
    pub ipn_url: String,
    pub return_url: String,
    /// VNPAY `vnp_CreateDate`, MoMo `requestId`, ZaloPay `app_time`: what queries are checked against.
    pub created: String,
    pub status: SimStatus,
    pub txn_no: Option<i64>,
    pub paid_at: Option<DateTime<Utc>>,
    /// The gateway's fee on this transaction (for settlement files): 1.1%, at least 1,100 đ [INF].
    pub fee: i64,
    /// When the order stops being payable, as the merchant asked (`None`: it did not say).
    pub expires_at: Option<DateTime<Utc>>,
}

enum Callback {
    Get(String),
    PostJson(String, String),
}

struct Sim {
    config: SimConfig,
    base_url: String,
    txns: Mutex<HashMap<String, SimTxn>>,
    last_callback: Mutex<HashMap<String, Vec<(String, String)>>>,
    query_faults: Mutex<HashMap<String, QueryFault>>,
    queries: Mutex<Vec<QueryRecord>>,
    /// DVCQG: the registered callback URL, each INIT as received with its Authorization header,
    /// and whether GET_BILL answers with `UrlBienLai` rather than the PDF itself.
    dvcqg_callback_url: Mutex<Option<String>>,
    dvcqg_inits: Mutex<HashMap<String, (serde_json::Value, Option<String>)>>,
    dvcqg_bill_as_url: AtomicBool,
    /// How many GET_BILL requests to answer "not ready" (`02`) before answering.
    dvcqg_bill_refusals: AtomicU32,
    /// Settlement lines a day's file put off to a later day's file: (gateway, date) → lines.
    carried: Mutex<HashMap<(Gateway, chrono::NaiveDate), Vec<crate::settlement::Line>>>,
    next_no: AtomicI64,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

/// A running simulator.
pub struct Simulator {
    pub addr: SocketAddr,
    sim: Arc<Sim>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A JSON field as text: a string as it is, a number in decimal, anything else empty.
fn field(v: &serde_json::Value, k: &str) -> String {
    match v.get(k) {
        Some(serde_json::Value::String(x)) => x.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The answer of a gateway the simulator was not configured for.
fn not_simulated(gateway: &str) -> Response {
    (StatusCode::NOT_FOUND, format!("{gateway} is not simulated")).into_response()
}

fn vn_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&vn_offset()).format("%Y%m%d%H%M%S").to_string()
}

impl Simulator {
    /// Binds `listen` (port 0 for any) and serves until dropped.
    pub async fn start(config: SimConfig, listen: SocketAddr, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let listener =
            tokio::net::TcpListener::bind(listen).await.with_context(|| format!("Failed to listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let sim = Arc::new(Sim {
            config: config.clone(),
            base_url: format!("http://{addr}"),
            txns: Mutex::new(HashMap::new()),
            last_callback: Mutex::new(HashMap::new()),
            query_faults: Mutex::new(HashMap::new()),
            queries: Mutex::new(Vec::new()),
            dvcqg_callback_url: Mutex::new(config.dvcqg_callback_url.clone()),
            dvcqg_inits: Mutex::new(HashMap::new()),
            dvcqg_bill_as_url: AtomicBool::new(false),
            dvcqg_bill_refusals: AtomicU32::new(0),
            carried: Mutex::new(HashMap::new()),
            next_no: AtomicI64::new(14_226_112 + i64::from(addr.port())),
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?,
            clock,
        });
        let app = Router::new()
            .route("/paymentv2/vpcpay.html", get(vnpay::pay_page))
            .route("/merchant_webapi/api/transaction", post(vnpay::api))
            .route("/v2/gateway/api/create", post(momo::create))
            .route("/v2/gateway/api/query", post(momo::query))
            .route("/v2/create", post(zalopay::create))
            .route("/v2/query", post(zalopay::query))
            .route("/dvcqg/init", post(dvcqg::init))
            .route("/dvcqg/query", post(dvcqg::query))
            .route("/dvcqg/bill", post(dvcqg::bill))
            .route("/sim/dvcqg/receipt/{txn_ref}", get(dvcqg::receipt))
            .route("/sim/settlement", post(settlement::settlement_json))
            .merge(pages::routes())
            .with_state(sim.clone())
            .merge(webhook::router());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "simulator stopped");
            }
        });
        Ok(Self { addr, sim, task })
    }

    pub fn url(&self) -> String {
        self.sim.base_url.clone()
    }

    /// The citizen pays (or not) `txn_ref`; callbacks go out with `faults`. Returns the merchant's answers.
    pub async fn pay(&self, txn_ref: &str, outcome: SimOutcome, faults: &Faults) -> anyhow::Result<Vec<Delivery>> {
        self.sim.complete(txn_ref, outcome, faults).await
    }

    /// Delivers the last callback of `txn_ref` again, as a gateway retry would.
    pub async fn redeliver(&self, txn_ref: &str) -> anyhow::Result<Vec<Delivery>> {
        let calls = self.sim.last_callback.lock().unwrap_or_else(|p| p.into_inner()).get(txn_ref).cloned();
        let calls = calls.context("no callback was prepared for this transaction")?;
        let mut out = Vec::new();
        for (kind, payload) in calls {
            let cb = if kind == "GET" { Callback::Get(payload) } else { Callback::PostJson(kind, payload) };
            out.push(self.sim.deliver(&cb).await);
        }
        Ok(out)
    }

    /// Answers the status queries about `txn_ref` with `fault` from now on.
    pub fn fault_queries(&self, txn_ref: &str, fault: QueryFault) {
        self.sim.query_faults.lock().unwrap_or_else(|p| p.into_inner()).insert(txn_ref.to_owned(), fault);
    }

    /// Answers the status queries about `txn_ref` truthfully again.
    pub fn heal_queries(&self, txn_ref: &str) {
        self.sim.query_faults.lock().unwrap_or_else(|p| p.into_inner()).remove(txn_ref);
    }

    /// Every status query asked so far, in order.
    pub fn queries(&self) -> Vec<QueryRecord> {
        self.sim.queries.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Where DVCQG callbacks go from now on (the URL the province registered).
    pub fn set_dvcqg_callback_url(&self, url: &str) {
        *self.sim.dvcqg_callback_url.lock().unwrap_or_else(|p| p.into_inner()) = Some(url.to_owned());
    }

    /// Whether DVCQG's GET_BILL answers with JSON naming `UrlBienLai` (else the PDF itself).
    pub fn dvcqg_bills_as_url(&self, as_url: bool) {
        self.sim.dvcqg_bill_as_url.store(as_url, Ordering::SeqCst);
    }

    /// Answers the next `n` GET_BILL requests "not ready yet" (`MaLoi` `02`).
    pub fn dvcqg_refuse_bills(&self, n: u32) {
        self.sim.dvcqg_bill_refusals.store(n, Ordering::SeqCst);
    }

    /// The DVCQG INIT request for `txn_ref` as received, and its Authorization header.
    pub fn dvcqg_init(&self, txn_ref: &str) -> Option<(serde_json::Value, Option<String>)> {
        self.sim.dvcqg_inits.lock().unwrap_or_else(|p| p.into_inner()).get(txn_ref).cloned()
    }

    /// Every transaction the gateways know.
    pub fn transactions(&self) -> Vec<SimTxn> {
        let mut v: Vec<SimTxn> = self.sim.txns.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        v.sort_by(|a, b| a.txn_ref.cmp(&b.txn_ref));
        v
    }
}

impl Sim {
    fn txn(&self, txn_ref: &str) -> Option<SimTxn> {
        self.txns.lock().unwrap_or_else(|p| p.into_inner()).get(txn_ref).cloned()
    }

    fn dvcqg_callback(&self) -> Option<String> {
        self.dvcqg_callback_url.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn put(&self, t: SimTxn) {
        self.txns.lock().unwrap_or_else(|p| p.into_inner()).insert(t.txn_ref.clone(), t);
    }

    /// Records a status query and returns the fault to answer it with, if any (counting it).
    fn query_asked(&self, gateway: Gateway, txn_ref: &str, request: &serde_json::Value) -> Option<QueryFault> {
        let at = self.clock.now();
        self.queries.lock().unwrap_or_else(|p| p.into_inner()).push(QueryRecord {
            gateway,
            txn_ref: txn_ref.to_owned(),
            request: request.clone(),
            at,
        });
        self.expire_if_due(txn_ref);
        let mut faults = self.query_faults.lock().unwrap_or_else(|p| p.into_inner());
        let fault = faults.get_mut(txn_ref)?;
        match &mut fault.times {
            Some(0) => None,
            Some(n) => {
                *n -= 1;
                Some(fault.clone())
            }
            None => Some(fault.clone()),
        }
    }

    /// Marks an open order past its expiry as expired (as the gateway does at its deadline).
    fn expire_if_due(&self, txn_ref: &str) -> Option<SimTxn> {
        let now = self.clock.now();
        let mut txns = self.txns.lock().unwrap_or_else(|p| p.into_inner());
        let t = txns.get_mut(txn_ref)?;
        if matches!(t.status, SimStatus::Open | SimStatus::Pending) && t.expires_at.is_some_and(|e| e <= now) {
            t.status = SimStatus::Expired;
        }
        Some(t.clone())
    }

    fn fee_for(amount: i64) -> i64 {
        (amount * 11 / 1000).max(1_100).min(amount)
    }

    async fn deliver(&self, cb: &Callback) -> Delivery {
        let res = match cb {
            Callback::Get(url) => self.http.get(url).send().await,
            Callback::PostJson(url, body) => {
                self.http.post(url).header("content-type", "application/json").body(body.clone()).send().await
            }
        };
        match res {
            Ok(r) => {
                let status = r.status().as_u16();
                Delivery { status, body: r.text().await.unwrap_or_default() }
            }
            Err(e) => Delivery { status: 0, body: e.without_url().to_string() },
        }
    }

    /// The signed callback for `t` reporting `outcome`, in its gateway's protocol.
    fn callback(&self, t: &SimTxn, outcome: SimOutcome, amount: i64, forged: bool) -> Option<Callback> {
        let now = self.clock.now();
        match t.gateway {
            Gateway::Vnpay => vnpay::callback(self, t, outcome, amount, forged, now),
            Gateway::Momo => momo::callback(self, t, outcome, amount, forged, now),
            Gateway::Zalopay => zalopay::callback(self, t, outcome, amount, forged, now),
            Gateway::Dvcqg => dvcqg::callback(self, t, outcome, amount, forged, now),
        }
    }

    async fn complete(&self, txn_ref: &str, outcome: SimOutcome, f: &Faults) -> anyhow::Result<Vec<Delivery>> {
        let mut t = self.expire_if_due(txn_ref).with_context(|| format!("the gateway does not know {txn_ref}"))?;
        if t.status == SimStatus::Expired {
            anyhow::bail!("the order {txn_ref} expired at {} and can no longer be paid", t.gateway);
        }
        let now = self.clock.now();
        if t.txn_no.is_none() {
            t.txn_no = Some(self.next_no.fetch_add(1, Ordering::SeqCst));
        }
        t.status = match outcome {
            SimOutcome::Success => SimStatus::Paid,
            SimOutcome::Failure => SimStatus::Failed,
            SimOutcome::Pending => SimStatus::Pending,
        };
        if outcome == SimOutcome::Success {
            t.paid_at = Some(now);
        }
        self.put(t.clone());
        let amount = t.amount + f.wrong_amount_by;
        let mut calls = Vec::new();
        if let Some(cb) = self.callback(&t, outcome, amount, f.forged) {
            calls.push(cb);
        }
        if f.reorder
            && let Some(pending) = self.callback(&t, SimOutcome::Pending, amount, f.forged)
        {
            // The "pending" report was sent first but arrives last.
            calls.push(pending);
        }
        let remembered: Vec<(String, String)> = calls
            .iter()
            .map(|c| match c {
                Callback::Get(u) => ("GET".to_owned(), u.clone()),
                Callback::PostJson(u, b) => (u.clone(), b.clone()),
            })
            .collect();
        self.last_callback.lock().unwrap_or_else(|p| p.into_inner()).insert(txn_ref.to_owned(), remembered);
        if f.lost || calls.is_empty() {
            return Ok(vec![]);
        }
        if f.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(f.delay_ms)).await;
        }
        let mut out = Vec::new();
        for cb in &calls {
            let copies = 1 + f.duplicates as usize;
            if f.concurrent {
                out.extend(futures_util::future::join_all((0..copies).map(|_| self.deliver(cb))).await);
            } else {
                for _ in 0..copies {
                    out.push(self.deliver(cb).await);
                }
            }
        }
        Ok(out)
    }

    fn register(&self, t: SimTxn) -> Result<(), String> {
        let mut txns = self.txns.lock().unwrap_or_else(|p| p.into_inner());
        if txns.contains_key(&t.txn_ref) {
            return Err(format!("duplicate reference {}", t.txn_ref));
        }
        txns.insert(t.txn_ref.clone(), t);
        Ok(())
    }
}
