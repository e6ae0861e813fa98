//! The simulated ZaloPay: create-order and query APIs, and MAC-signed callbacks (on success only).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Callback, Sim, SimOutcome, SimStatus, SimTxn, field, not_simulated, sign};
use crate::domain::payment::Gateway;
use crate::domain::vn_offset;

/// The callback for `t` reporting `outcome`, for `amount` (MAC with a forged key when `forged`).
pub(super) fn callback(
    sim: &Sim,
    t: &SimTxn,
    outcome: SimOutcome,
    amount: i64,
    forged: bool,
    now: DateTime<Utc>,
) -> Option<Callback> {
    if outcome != SimOutcome::Success {
        return None; // ZaloPay calls back on success only
    }
    let (app_id, _key1, key2) = sim.config.zalopay.clone()?;
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

pub(super) async fn create(State(sim): State<Arc<Sim>>, Json(v): Json<serde_json::Value>) -> Response {
    let Some((app_id, key1, _)) = sim.config.zalopay.clone() else {
        return not_simulated("ZaloPay");
    };
    let s = |k: &str| field(&v, k);
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
    let expire: i64 = s("expire_duration_seconds").parse().unwrap_or(900);
    if !(300..=2_592_000).contains(&expire) {
        return fail(-401, "expire_duration_seconds phải từ 300 đến 2592000");
    }
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
        expires_at: Some(sim.clock.now() + chrono::TimeDelta::seconds(expire)),
    };
    if let Err(e) = sim.register(t) {
        return fail(-68, &e);
    }
    let url = format!("{}/sim/zalopay/pay?ref={txn_ref}", sim.base_url);
    Json(json!({"return_code": 1, "return_message": "Giao dịch thành công", "sub_return_code": 1, "order_url": url, "zp_trans_token": txn_ref, "order_token": txn_ref, "qr_code": url})).into_response()
}

pub(super) async fn query(State(sim): State<Arc<Sim>>, Json(v): Json<serde_json::Value>) -> Response {
    let Some((app_id, key1, _)) = sim.config.zalopay.clone() else {
        return not_simulated("ZaloPay");
    };
    let s = |k: &str| field(&v, k);
    let expected = sign::zalopay_mac(&key1, &format!("{}|{}|{}", s("app_id"), s("app_trans_id"), key1));
    if s("mac") != expected || s("app_id") != app_id {
        sim.query_asked(Gateway::Zalopay, &s("app_trans_id"), &v);
        return Json(json!({"return_code": 2, "return_message": "mac không hợp lệ", "sub_return_code": -402, "is_processing": false, "amount": 0, "zp_trans_id": 0})).into_response();
    }
    let fault = sim.query_asked(Gateway::Zalopay, &s("app_trans_id"), &v).unwrap_or_default();
    let (code, sub, processing, amount, no) =
        match sim.txn(&s("app_trans_id")).filter(|t| t.gateway == Gateway::Zalopay) {
            None => (2, -101, false, 0, 0),
            Some(t) => match t.status {
                SimStatus::Paid => (1, 1, false, t.amount, t.txn_no.unwrap_or(0)),
                SimStatus::Failed => (2, -217, false, t.amount, 0),
                SimStatus::Expired => (2, -54, false, 0, 0),
                SimStatus::Open | SimStatus::Pending => (3, 3, true, 0, 0),
            },
        };
    let (code, sub) = match &fault.api_error {
        Some(e) => (2, e.parse().unwrap_or(-500)),
        None => (code, sub),
    };
    let no = if fault.unnumbered { 0 } else { no };
    Json(json!({"return_code": code, "return_message": "", "sub_return_code": sub, "is_processing": processing, "amount": fault.amount.unwrap_or(amount), "zp_trans_id": no})).into_response()
}
