//! A stand-in for VNPAY, MoMo and ZaloPay on loopback (SPEC §6.7), for integrators
//! (`feerecon simulate-gateway`), the tests and the demo.
//!
//! It speaks the gateways' protocols byte for byte: VNPAY's signed pay URL and querydr, MoMo's
//! and ZaloPay's create-order and status-query APIs, pay pages where a person clicks "pay" or
//! "cancel", and signed callbacks to the merchant. Callbacks can carry chosen faults: duplicated
//! ×N (in turn or at once), delayed, reordered, forged, lost, or with a wrong amount. Its signing
//! code (`sign.rs`) is written apart from the adapters' verification code.

pub mod mutate;
pub mod sign;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{Form, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

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
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("vnpay", &self.vnpay.as_ref().map(|v| &v.0))
            .field("momo", &self.momo.as_ref().map(|v| &v.0))
            .field("zalopay", &self.zalopay.as_ref().map(|v| &v.0))
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
            config,
            base_url: format!("http://{addr}"),
            txns: Mutex::new(HashMap::new()),
            last_callback: Mutex::new(HashMap::new()),
            next_no: AtomicI64::new(14_226_112 + i64::from(addr.port())),
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?,
            clock,
        });
        let app = Router::new()
            .route("/paymentv2/vpcpay.html", get(vnpay_pay_page))
            .route("/merchant_webapi/api/transaction", post(vnpay_api))
            .route("/v2/gateway/api/create", post(momo_create))
            .route("/v2/gateway/api/query", post(momo_query))
            .route("/v2/create", post(zalopay_create))
            .route("/v2/query", post(zalopay_query))
            .route("/sim/{gateway}/pay", get(pay_page).post(pay_form))
            .route("/sim/pay", post(pay_json))
            .route("/sim/transactions", get(list_txns))
            .with_state(sim.clone());
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

    fn put(&self, t: SimTxn) {
        self.txns.lock().unwrap_or_else(|p| p.into_inner()).insert(t.txn_ref.clone(), t);
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

    /// The signed callback for `t` reporting `outcome`, with `amount` and a signing `key`.
    fn callback(&self, t: &SimTxn, outcome: SimOutcome, amount: i64, forged: bool) -> Option<Callback> {
        let now = self.clock.now();
        match t.gateway {
            Gateway::Vnpay => {
                let (tmn, secret) = self.config.vnpay.clone()?;
                let secret = if forged { "forged-vnpay-secret".to_owned() } else { secret };
                let (code, status, no) = match outcome {
                    SimOutcome::Success => ("00", "00", t.txn_no.unwrap_or(0).to_string()),
                    SimOutcome::Failure => ("24", "02", "0".to_owned()),
                    SimOutcome::Pending => ("07", "01", t.txn_no.unwrap_or(0).to_string()),
                };
                let mut p: Vec<(String, String)> = vec![
                    ("vnp_Amount".into(), (amount * 100).to_string()),
                    ("vnp_BankCode".into(), "NCB".into()),
                    ("vnp_CardType".into(), "ATM".into()),
                    ("vnp_OrderInfo".into(), t.order_info.clone()),
                    ("vnp_PayDate".into(), vn_time(t.paid_at.unwrap_or(now))),
                    ("vnp_ResponseCode".into(), code.into()),
                    ("vnp_TmnCode".into(), tmn),
                    ("vnp_TransactionNo".into(), no.clone()),
                    ("vnp_TransactionStatus".into(), status.into()),
                    ("vnp_TxnRef".into(), t.txn_ref.clone()),
                ];
                if outcome == SimOutcome::Success {
                    p.push(("vnp_BankTranNo".into(), format!("VNP{no}")));
                }
                Some(Callback::Get(format!("{}?{}", t.ipn_url, sign::vnpay_signed_query(&secret, &p))))
            }
            Gateway::Momo => {
                let (partner, access, secret) = self.config.momo.clone()?;
                let secret = if forged { "forged-momo-secret".to_owned() } else { secret };
                let (code, message) = match outcome {
                    SimOutcome::Success => (0, "Thành công."),
                    SimOutcome::Failure => (1006, "Giao dịch bị từ chối bởi người dùng."),
                    SimOutcome::Pending => (7000, "Giao dịch đang được xử lý."),
                };
                let trans_id = t.txn_no.unwrap_or(0);
                let response_time = t.paid_at.unwrap_or(now).timestamp_millis();
                let raw = sign::momo_raw(&[
                    ("accessKey", access),
                    ("amount", amount.to_string()),
                    ("extraData", String::new()),
                    ("message", message.into()),
                    ("orderId", t.txn_ref.clone()),
                    ("orderInfo", t.order_info.clone()),
                    ("orderType", "momo_wallet".into()),
                    ("partnerCode", partner.clone()),
                    ("payType", "qr".into()),
                    ("requestId", t.created.clone()),
                    ("responseTime", response_time.to_string()),
                    ("resultCode", code.to_string()),
                    ("transId", trans_id.to_string()),
                ]);
                let body = json!({
                    "partnerCode": partner, "orderId": t.txn_ref, "requestId": t.created, "amount": amount,
                    "orderInfo": t.order_info, "orderType": "momo_wallet", "transId": trans_id, "resultCode": code,
                    "message": message, "payType": "qr", "responseTime": response_time, "extraData": "",
                    "signature": sign::hmac_sha256(&secret, &raw),
                });
                Some(Callback::PostJson(t.ipn_url.clone(), body.to_string()))
            }
            Gateway::Zalopay => {
                if outcome != SimOutcome::Success {
                    return None; // ZaloPay calls back on success only
                }
                let (app_id, _key1, key2) = self.config.zalopay.clone()?;
                let key2 = if forged { "forged-zalopay-key2".to_owned() } else { key2 };
                let server_time = t.paid_at.unwrap_or(now).timestamp_millis();
                let data = format!(
                    r#"{{"app_id":{app_id},"app_trans_id":"{}","app_time":{},"app_user":"feerecon","amount":{amount},"embed_data":"{{}}","item":"[]","zp_trans_id":{},"server_time":{server_time},"channel":38,"merchant_user_id":"","user_fee_amount":0,"discount_amount":0}}"#,
                    t.txn_ref,
                    t.created,
                    t.txn_no.unwrap_or(0)
                );
                let body = json!({"data": data, "mac": sign::zalopay_mac(&key2, &data), "type": 1});
                Some(Callback::PostJson(t.ipn_url.clone(), body.to_string()))
            }
        }
    }

    async fn complete(&self, txn_ref: &str, outcome: SimOutcome, f: &Faults) -> anyhow::Result<Vec<Delivery>> {
        let mut t = self.txn(txn_ref).with_context(|| format!("the gateway does not know {txn_ref}"))?;
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
                let results = futures_join(self, cb, copies).await;
                out.extend(results);
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

/// Delivers `copies` of a callback at once.
async fn futures_join(sim: &Sim, cb: &Callback, copies: usize) -> Vec<Delivery> {
    let (url, body, get) = match cb {
        Callback::Get(u) => (u.clone(), String::new(), true),
        Callback::PostJson(u, b) => (u.clone(), b.clone(), false),
    };
    let mut handles = Vec::with_capacity(copies);
    for _ in 0..copies {
        let (http, url, body) = (sim.http.clone(), url.clone(), body.clone());
        handles.push(tokio::spawn(async move {
            let res = if get {
                http.get(&url).send().await
            } else {
                http.post(&url).header("content-type", "application/json").body(body).send().await
            };
            match res {
                Ok(r) => {
                    let status = r.status().as_u16();
                    Delivery { status, body: r.text().await.unwrap_or_default() }
                }
                Err(e) => Delivery { status: 0, body: e.without_url().to_string() },
            }
        }));
    }
    let mut out = Vec::with_capacity(copies);
    for h in handles {
        out.push(h.await.unwrap_or(Delivery { status: 0, body: "task failed".into() }));
    }
    out
}

// ---------------------------------------------------------------- VNPAY

async fn vnpay_pay_page(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery) -> Response {
    let Some((tmn, secret)) = sim.config.vnpay.clone() else {
        return (StatusCode::NOT_FOUND, "VNPAY is not simulated").into_response();
    };
    let params = match sign::vnpay_check_query(&secret, q.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(e) => return (StatusCode::BAD_REQUEST, Html(format!("<h1>Sai chữ ký</h1><p>{e}</p>"))).into_response(),
    };
    let get = |k: &str| params.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.clone()).unwrap_or_default();
    if get("vnp_TmnCode") != tmn || get("vnp_Version") != "2.1.0" || get("vnp_Command") != "pay" {
        return (StatusCode::BAD_REQUEST, "unknown terminal, version or command (code 02/03)").into_response();
    }
    let amount: i64 = get("vnp_Amount").parse().unwrap_or(-1);
    if amount <= 0 || amount % 100 != 0 {
        return (StatusCode::BAD_REQUEST, "vnp_Amount must be a positive multiple of 100").into_response();
    }
    if !get("vnp_OrderInfo").is_ascii() {
        return (StatusCode::BAD_REQUEST, "vnp_OrderInfo must be Vietnamese without diacritics").into_response();
    }
    let return_url = get("vnp_ReturnUrl");
    let ipn_url = sim.config.vnpay_ipn_url.clone().unwrap_or_else(|| {
        let origin = return_url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
        format!("{origin}/gateway/vnpay/ipn")
    });
    let txn_ref = get("vnp_TxnRef");
    let t = SimTxn {
        gateway: Gateway::Vnpay,
        txn_ref: txn_ref.clone(),
        amount: amount / 100,
        order_info: get("vnp_OrderInfo"),
        ipn_url,
        return_url,
        created: get("vnp_CreateDate"),
        status: SimStatus::Open,
        txn_no: None,
        paid_at: None,
        fee: Sim::fee_for(amount / 100),
    };
    if sim.txn(&txn_ref).is_none() {
        let _ = sim.register(t);
    }
    pay_page_html(&sim, &txn_ref)
}

async fn vnpay_api(State(sim): State<Arc<Sim>>, Json(v): Json<serde_json::Value>) -> Response {
    let Some((tmn, secret)) = sim.config.vnpay.clone() else {
        return (StatusCode::NOT_FOUND, "VNPAY is not simulated").into_response();
    };
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
    let fields = [
        s("vnp_RequestId"),
        s("vnp_Version"),
        s("vnp_Command"),
        s("vnp_TmnCode"),
        s("vnp_TxnRef"),
        s("vnp_TransactionDate"),
        s("vnp_CreateDate"),
        s("vnp_IpAddr"),
        s("vnp_OrderInfo"),
    ];
    let refs: [&str; 9] = std::array::from_fn(|i| fields[i].as_str());
    let response_id = format!("R{}", sim.next_no.fetch_add(1, Ordering::SeqCst));
    let answer = |code: &str, msg: &str, t: Option<&SimTxn>| {
        let (amount, bank, pay_date, no, status) = match t {
            Some(t) => (
                (t.amount * 100).to_string(),
                "NCB".to_owned(),
                t.paid_at.map(vn_time).unwrap_or_default(),
                t.txn_no.map(|n| n.to_string()).unwrap_or_default(),
                match t.status {
                    SimStatus::Paid => "00",
                    SimStatus::Failed => "02",
                    SimStatus::Open | SimStatus::Pending => "01",
                }
                .to_owned(),
            ),
            None => Default::default(),
        };
        let vals = [
            response_id.clone(),
            "querydr".to_owned(),
            code.to_owned(),
            msg.to_owned(),
            tmn.clone(),
            s("vnp_TxnRef"),
            amount,
            bank,
            pay_date,
            no,
            "01".to_owned(),
            status,
            s("vnp_OrderInfo"),
            String::new(),
            String::new(),
        ];
        let hash = sign::hmac_sha512(&secret, &vals.join("|"));
        Json(json!({
            "vnp_ResponseId": vals[0], "vnp_Command": vals[1], "vnp_ResponseCode": vals[2], "vnp_Message": vals[3],
            "vnp_TmnCode": vals[4], "vnp_TxnRef": vals[5], "vnp_Amount": vals[6], "vnp_BankCode": vals[7],
            "vnp_PayDate": vals[8], "vnp_TransactionNo": vals[9], "vnp_TransactionType": vals[10],
            "vnp_TransactionStatus": vals[11], "vnp_OrderInfo": vals[12], "vnp_PromotionCode": vals[13],
            "vnp_PromotionAmount": vals[14], "vnp_SecureHash": hash,
        }))
        .into_response()
    };
    if s("vnp_SecureHash").to_lowercase() != sign::vnpay_querydr_request_hash(&secret, &refs) {
        return answer("97", "Invalid Checksum", None);
    }
    if s("vnp_Command") != "querydr" || s("vnp_TmnCode") != tmn {
        return answer("02", "Invalid TmnCode or command", None);
    }
    match sim.txn(&s("vnp_TxnRef")) {
        Some(t) if t.gateway == Gateway::Vnpay && t.created == s("vnp_TransactionDate") => {
            answer("00", "QueryDR Success", Some(&t))
        }
        _ => answer("91", "Transaction not found", None),
    }
}

// ---------------------------------------------------------------- MoMo

async fn momo_create(State(sim): State<Arc<Sim>>, Json(v): Json<serde_json::Value>) -> Response {
    let Some((partner, access, secret)) = sim.config.momo.clone() else {
        return (StatusCode::NOT_FOUND, "MoMo is not simulated").into_response();
    };
    let s = |k: &str| match v.get(k) {
        Some(serde_json::Value::String(x)) => x.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let raw = sign::momo_raw(&[
        ("accessKey", access),
        ("amount", s("amount")),
        ("extraData", s("extraData")),
        ("ipnUrl", s("ipnUrl")),
        ("orderId", s("orderId")),
        ("orderInfo", s("orderInfo")),
        ("partnerCode", s("partnerCode")),
        ("redirectUrl", s("redirectUrl")),
        ("requestId", s("requestId")),
        ("requestType", s("requestType")),
    ]);
    let fail = |code: i64, msg: &str| {
        Json(json!({"partnerCode": partner, "orderId": s("orderId"), "resultCode": code, "message": msg}))
            .into_response()
    };
    if s("signature") != sign::hmac_sha256(&secret, &raw) {
        return fail(11, "Truy cập bị từ chối: chữ ký không hợp lệ.");
    }
    let amount: i64 = s("amount").parse().unwrap_or(0);
    if !(1_000..=50_000_000).contains(&amount) {
        return fail(22, "Số tiền giao dịch không hợp lệ.");
    }
    let order_id = s("orderId");
    let t = SimTxn {
        gateway: Gateway::Momo,
        txn_ref: order_id.clone(),
        amount,
        order_info: s("orderInfo"),
        ipn_url: s("ipnUrl"),
        return_url: s("redirectUrl"),
        created: s("requestId"),
        status: SimStatus::Open,
        txn_no: None,
        paid_at: None,
        fee: Sim::fee_for(amount),
    };
    if let Err(e) = sim.register(t) {
        return fail(41, &e);
    }
    let pay_url = format!("{}/sim/momo/pay?ref={order_id}", sim.base_url);
    Json(json!({
        "partnerCode": partner, "orderId": order_id, "requestId": s("requestId"), "amount": amount,
        "responseTime": sim.clock.now().timestamp_millis(), "message": "Thành công.", "resultCode": 0,
        "payUrl": pay_url, "deeplink": format!("momo://pay?ref={order_id}"), "qrCodeUrl": pay_url,
    }))
    .into_response()
}

async fn momo_query(State(sim): State<Arc<Sim>>, Json(v): Json<serde_json::Value>) -> Response {
    let Some((partner, access, secret)) = sim.config.momo.clone() else {
        return (StatusCode::NOT_FOUND, "MoMo is not simulated").into_response();
    };
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
    let raw = sign::momo_raw(&[
        ("accessKey", access),
        ("orderId", s("orderId")),
        ("partnerCode", s("partnerCode")),
        ("requestId", s("requestId")),
    ]);
    let now = sim.clock.now().timestamp_millis();
    if s("signature") != sign::hmac_sha256(&secret, &raw) {
        return Json(json!({"partnerCode": partner, "orderId": s("orderId"), "requestId": s("requestId"), "resultCode": 11, "message": "Chữ ký không hợp lệ.", "amount": 0, "responseTime": now})).into_response();
    }
    match sim.txn(&s("orderId")).filter(|t| t.gateway == Gateway::Momo) {
        None => Json(json!({"partnerCode": partner, "orderId": s("orderId"), "requestId": s("requestId"), "resultCode": 42, "message": "Giao dịch không tồn tại.", "amount": 0, "responseTime": now})).into_response(),
        Some(t) => {
            let (code, msg) = match t.status {
                SimStatus::Paid => (0, "Thành công."),
                SimStatus::Failed => (1006, "Giao dịch bị từ chối bởi người dùng."),
                SimStatus::Pending => (7000, "Giao dịch đang được xử lý."),
                SimStatus::Open => (1000, "Giao dịch đã được khởi tạo, chờ người dùng xác nhận thanh toán."),
            };
            Json(json!({
                "partnerCode": partner, "requestId": s("requestId"), "orderId": t.txn_ref, "extraData": "",
                "amount": t.amount, "transId": t.txn_no.unwrap_or(0), "payType": "qr", "resultCode": code,
                "refundTrans": [], "message": msg, "responseTime": now,
            }))
            .into_response()
        }
    }
}

// ---------------------------------------------------------------- ZaloPay

async fn zalopay_create(State(sim): State<Arc<Sim>>, Json(v): Json<serde_json::Value>) -> Response {
    let Some((app_id, key1, _)) = sim.config.zalopay.clone() else {
        return (StatusCode::NOT_FOUND, "ZaloPay is not simulated").into_response();
    };
    let s = |k: &str| match v.get(k) {
        Some(serde_json::Value::String(x)) => x.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let data = format!(
        "{}|{}|{}|{}|{}|{}|{}",
        s("app_id"),
        s("app_trans_id"),
        s("app_user"),
        s("amount"),
        s("app_time"),
        s("embed_data"),
        s("item")
    );
    let fail = |sub: i64, msg: &str| {
        Json(json!({"return_code": 2, "return_message": msg, "sub_return_code": sub})).into_response()
    };
    if s("mac") != sign::zalopay_mac(&key1, &data) || s("app_id") != app_id {
        return fail(-402, "mac không hợp lệ");
    }
    let today = sim.clock.now().with_timezone(&vn_offset()).format("%y%m%d").to_string();
    let txn_ref = s("app_trans_id");
    if !txn_ref.starts_with(&format!("{today}_")) {
        return fail(-92, "app_trans_id phải bắt đầu bằng yymmdd của ngày hiện tại (GMT+7)");
    }
    let amount: i64 = s("amount").parse().unwrap_or(0);
    let redirect = serde_json::from_str::<serde_json::Value>(&s("embed_data"))
        .ok()
        .and_then(|e| e.get("redirecturl").and_then(|r| r.as_str()).map(str::to_owned))
        .unwrap_or_default();
    let t = SimTxn {
        gateway: Gateway::Zalopay,
        txn_ref: txn_ref.clone(),
        amount,
        order_info: s("description"),
        ipn_url: s("callback_url"),
        return_url: redirect,
        created: s("app_time"),
        status: SimStatus::Open,
        txn_no: None,
        paid_at: None,
        fee: Sim::fee_for(amount),
    };
    if let Err(e) = sim.register(t) {
        return fail(-68, &e);
    }
    let url = format!("{}/sim/zalopay/pay?ref={txn_ref}", sim.base_url);
    Json(json!({"return_code": 1, "return_message": "Giao dịch thành công", "sub_return_code": 1, "order_url": url, "zp_trans_token": txn_ref, "order_token": txn_ref, "qr_code": url})).into_response()
}

async fn zalopay_query(State(sim): State<Arc<Sim>>, Json(v): Json<serde_json::Value>) -> Response {
    let Some((app_id, key1, _)) = sim.config.zalopay.clone() else {
        return (StatusCode::NOT_FOUND, "ZaloPay is not simulated").into_response();
    };
    let s = |k: &str| match v.get(k) {
        Some(serde_json::Value::String(x)) => x.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let expected = sign::zalopay_mac(&key1, &format!("{}|{}|{}", s("app_id"), s("app_trans_id"), key1));
    if s("mac") != expected || s("app_id") != app_id {
        return Json(json!({"return_code": 2, "return_message": "mac không hợp lệ", "sub_return_code": -402, "is_processing": false, "amount": 0, "zp_trans_id": 0})).into_response();
    }
    let (code, processing, amount, no) = match sim.txn(&s("app_trans_id")).filter(|t| t.gateway == Gateway::Zalopay) {
        None => (2, false, 0, 0),
        Some(t) => match t.status {
            SimStatus::Paid => (1, false, t.amount, t.txn_no.unwrap_or(0)),
            SimStatus::Failed => (2, false, t.amount, 0),
            SimStatus::Open | SimStatus::Pending => (3, true, t.amount, 0),
        },
    };
    Json(json!({"return_code": code, "return_message": "", "sub_return_code": code, "is_processing": processing, "amount": amount, "zp_trans_id": no})).into_response()
}

// ---------------------------------------------------------------- pay pages and control

fn pay_page_html(sim: &Sim, txn_ref: &str) -> Response {
    let Some(t) = sim.txn(txn_ref) else {
        return (StatusCode::NOT_FOUND, "unknown transaction").into_response();
    };
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;");
    Html(format!(
        r#"<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>{g} (simulator)</title></head><body>
<h1>{g} — cổng thanh toán giả lập</h1><p>{info}</p><p>Số tiền: <strong>{amount} đ</strong></p>
<form method="post" action="/sim/{gw}/pay"><input type="hidden" name="ref" value="{r}">
<button name="action" value="pay">Thanh toán / Pay</button> <button name="action" value="cancel">Hủy / Cancel</button></form>
</body></html>"#,
        g = t.gateway.as_str().to_uppercase(),
        gw = t.gateway.as_str(),
        info = esc(&t.order_info),
        amount = t.amount,
        r = esc(&t.txn_ref)
    ))
    .into_response()
}

#[derive(Deserialize)]
struct RefQuery {
    r#ref: String,
}

async fn pay_page(State(sim): State<Arc<Sim>>, Query(q): Query<RefQuery>) -> Response {
    pay_page_html(&sim, &q.r#ref)
}

#[derive(Deserialize)]
struct PayForm {
    r#ref: String,
    action: String,
}

/// A person clicked "pay" or "cancel": callbacks go out, the browser returns to the merchant.
async fn pay_form(State(sim): State<Arc<Sim>>, Form(f): Form<PayForm>) -> Response {
    let outcome = if f.action == "pay" { SimOutcome::Success } else { SimOutcome::Failure };
    if let Err(e) = sim.complete(&f.r#ref, outcome, &Faults::default()).await {
        return (StatusCode::NOT_FOUND, e.to_string()).into_response();
    }
    let Some(t) = sim.txn(&f.r#ref) else {
        return (StatusCode::NOT_FOUND, "unknown transaction").into_response();
    };
    let back = match t.gateway {
        Gateway::Vnpay => {
            let code = if outcome == SimOutcome::Success { "00" } else { "24" };
            let (tmn, secret) = sim.config.vnpay.clone().unwrap_or_default();
            let p: Vec<(String, String)> = vec![
                ("vnp_Amount".into(), (t.amount * 100).to_string()),
                ("vnp_ResponseCode".into(), code.into()),
                ("vnp_TmnCode".into(), tmn),
                ("vnp_TransactionNo".into(), t.txn_no.unwrap_or(0).to_string()),
                ("vnp_TransactionStatus".into(), if code == "00" { "00".into() } else { "02".into() }),
                ("vnp_TxnRef".into(), t.txn_ref.clone()),
            ];
            format!("{}?{}", t.return_url, sign::vnpay_signed_query(&secret, &p))
        }
        Gateway::Momo => format!(
            "{}?orderId={}&resultCode={}",
            t.return_url,
            t.txn_ref,
            if outcome == SimOutcome::Success { 0 } else { 1006 }
        ),
        Gateway::Zalopay => format!(
            "{}?apptransid={}&status={}",
            t.return_url,
            t.txn_ref,
            if outcome == SimOutcome::Success { 1 } else { -1 }
        ),
    };
    Redirect::to(&back).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayJson {
    txn_ref: String,
    outcome: SimOutcome,
    #[serde(default)]
    faults: Faults,
}

/// `POST /sim/pay {"txn_ref", "outcome", "faults": {...}}`: pay with injected faults.
async fn pay_json(State(sim): State<Arc<Sim>>, Json(p): Json<PayJson>) -> Response {
    match sim.complete(&p.txn_ref, p.outcome, &p.faults).await {
        Ok(d) => Json(json!({"deliveries": d})).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

async fn list_txns(State(sim): State<Arc<Sim>>) -> Response {
    let mut v: Vec<SimTxn> = sim.txns.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
    v.sort_by(|a, b| a.txn_ref.cmp(&b.txn_ref));
    Json(json!({"items": v})).into_response()
}

/// Differences to put into a gateway's settlement file (SPEC §7 tests and the demo).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Discrepancies {
    /// References left out of the file.
    pub missing: Vec<String>,
    /// Lines for transactions the merchant never recorded.
    pub extra: u32,
    /// (reference, amount difference).
    pub wrong_amount: Vec<(String, i64)>,
    /// References whose line appears twice.
    pub duplicated: Vec<String>,
    /// References refunded on the day (a refund line).
    pub refunds: Vec<String>,
    /// References whose line the gateway puts in the next day's file instead.
    pub next_day: Vec<String>,
}

impl Simulator {
    /// The lines of `gateway`'s settlement for business date `date`: every transaction paid that
    /// day, with `d` applied. Returns the lines of that day's file and the lines carried to the
    /// next day's file.
    pub fn settlement_lines(
        &self,
        gateway: Gateway,
        date: chrono::NaiveDate,
        d: &Discrepancies,
    ) -> (Vec<crate::settlement::Line>, Vec<crate::settlement::Line>) {
        use crate::settlement::{Line, LineStatus};
        let mut lines = Vec::new();
        let mut carried = Vec::new();
        let paid: Vec<SimTxn> = self
            .transactions()
            .into_iter()
            .filter(|t| t.gateway == gateway && t.status == SimStatus::Paid)
            .filter(|t| t.paid_at.is_some_and(|p| p.with_timezone(&vn_offset()).date_naive() == date))
            .collect();
        for t in &paid {
            if d.missing.contains(&t.txn_ref) {
                continue;
            }
            let delta = d.wrong_amount.iter().find(|(r, _)| *r == t.txn_ref).map_or(0, |(_, x)| *x);
            let line = Line {
                line_no: 0,
                gateway_txn_no: t.txn_no.unwrap_or(0).to_string(),
                txn_ref: t.txn_ref.clone(),
                amount: t.amount + delta,
                fee: t.fee,
                txn_time: t.paid_at.unwrap_or_else(|| self.sim.clock.now()),
                status: LineStatus::Success,
            };
            if d.next_day.contains(&t.txn_ref) {
                carried.push(line);
                continue;
            }
            if d.duplicated.contains(&t.txn_ref) {
                lines.push(line.clone());
            }
            lines.push(line);
        }
        for t in paid.iter().filter(|t| d.refunds.contains(&t.txn_ref)) {
            lines.push(Line {
                line_no: 0,
                gateway_txn_no: format!("RF{}", t.txn_no.unwrap_or(0)),
                txn_ref: t.txn_ref.clone(),
                amount: t.amount,
                fee: 0,
                txn_time: date
                    .and_hms_opt(16, 0, 0)
                    .and_then(|n| n.and_local_timezone(vn_offset()).single())
                    .map_or_else(|| self.sim.clock.now(), |t| t.with_timezone(&Utc)),
                status: LineStatus::Refund,
            });
        }
        for i in 0..d.extra {
            let no = self.sim.next_no.fetch_add(1, Ordering::SeqCst);
            lines.push(Line {
                line_no: 0,
                gateway_txn_no: no.to_string(),
                txn_ref: format!("UNKNOWN{no}{i}"),
                amount: 50_000,
                fee: Sim::fee_for(50_000),
                txn_time: date
                    .and_hms_opt(12, 0, 0)
                    .and_then(|n| n.and_local_timezone(vn_offset()).single())
                    .map_or_else(|| self.sim.clock.now(), |t| t.with_timezone(&Utc)),
                status: LineStatus::Success,
            });
        }
        (lines, carried)
    }

    /// A settlement file of `lines` in `profile`'s format, as the gateway's portal exports it.
    pub fn settlement_file(profile: &crate::settlement::Profile, lines: &[crate::settlement::Line]) -> Vec<u8> {
        crate::settlement::write(profile, lines)
    }
}
