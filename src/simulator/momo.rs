//! The simulated MoMo: create-order and query APIs, and signed IPNs.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Callback, Sim, SimOutcome, SimStatus, SimTxn, field, not_simulated, sign};

use crate::domain::payment::Gateway;

/// The signed IPN for `t` reporting `outcome`, for `amount` (signed with a forged key when `forged`).
pub(super) fn callback(
    sim: &Sim,
    t: &SimTxn,
    outcome: SimOutcome,
    amount: i64,
    forged: bool,
    now: DateTime<Utc>,
) -> Option<Callback> {
    let (partner, access, secret) = sim.config.momo.clone()?;
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

pub(super) async fn create(State(sim): State<Arc<Sim>>, Json(v): Json<serde_json::Value>) -> Response {
    let Some((partner, access, secret)) = sim.config.momo.clone() else {
        return not_simulated("MoMo");
    };
    let s = |k: &str| field(&v, k);
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
    // `orderExpireTime`, in minutes [I]; without it the order does not expire here.
    let expires_at = v
        .get("orderExpireTime")
        .and_then(serde_json::Value::as_i64)
        .map(|m| sim.clock.now() + chrono::TimeDelta::minutes(m));
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
        expires_at,
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

pub(super) async fn query(State(sim): State<Arc<Sim>>, Json(v): Json<serde_json::Value>) -> Response {
    let Some((partner, access, secret)) = sim.config.momo.clone() else {
        return not_simulated("MoMo");
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
    let fault = sim.query_asked(Gateway::Momo, &s("orderId"), &v);
    match sim.txn(&s("orderId")).filter(|t| t.gateway == Gateway::Momo) {
        None => Json(json!({"partnerCode": partner, "orderId": s("orderId"), "requestId": s("requestId"), "resultCode": 42, "message": "Giao dịch không tồn tại.", "amount": 0, "responseTime": now})).into_response(),
        Some(t) => {
            let (mut code, mut msg) = match t.status {
                SimStatus::Paid => (0, "Thành công."),
                SimStatus::Failed => (1006, "Giao dịch bị từ chối bởi người dùng."),
                SimStatus::Pending => (7000, "Giao dịch đang được xử lý."),
                SimStatus::Open => (1000, "Giao dịch đã được khởi tạo, chờ người dùng xác nhận thanh toán."),
                SimStatus::Expired => (1005, "Giao dịch thất bại do url hoặc QR code đã hết hạn."),
            };
            let fault = fault.unwrap_or_default();
            if let Some(e) = &fault.api_error {
                code = e.parse().unwrap_or(99);
                msg = "Lỗi hệ thống.";
            }
            let trans_id = if fault.unnumbered { 0 } else { t.txn_no.unwrap_or(0) };
            Json(json!({
                "partnerCode": partner, "requestId": s("requestId"), "orderId": t.txn_ref, "extraData": "",
                "amount": fault.amount.unwrap_or(t.amount), "transId": trans_id, "payType": "qr", "resultCode": code,
                "refundTrans": [], "message": msg, "responseTime": now,
            }))
            .into_response()
        }
    }
}
