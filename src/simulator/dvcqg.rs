//! The simulated DVCQG payment platform: INIT, QUERY and GET_BILL (a PDF, or JSON naming
//! `UrlBienLai`), and checksummed payment-result callbacks to the province's registered URL.
//!
//! The platform does not take a callback or return URL in INIT: both are registered at
//! onboarding [S: reference/dvcqg-payment.md §5]. The simulator's is `SimConfig::dvcqg_callback_url`
//! or `Simulator::set_dvcqg_callback_url`; the return page is the same URL ending in `/return`.
//! Field values the public code does not show are the simulator's own [I]: the callback's
//! `LoaiBanTin` `PAYMENT_RESULT`, `MaLoi` `24` for a cancelled payment, `SoTien` as a JSON
//! integer (TD reads an `int` [S]), the error `MaLoi`s `01` (unknown reference), `02` (not paid),
//! `97` (bad checksum).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Callback, Sim, SimOutcome, SimStatus, SimTxn, field, not_simulated, sign, vn_time};
use crate::domain::payment::Gateway;

const QUERY: [&str; 5] = ["LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD"];
const INIT: [&str; 14] = [
    "LoaiBanTin",
    "PhienBan",
    "MaDoiTac",
    "MaThamChieu",
    "SoTien",
    "LoaiHinhThanhToan",
    "MaKenhThanhToan",
    "MaThietBi",
    "NgonNgu",
    "MaTienTe",
    "MaNganHang",
    "ThongTinGiaoDich",
    "ThoiGianGD",
    "Ip",
];

/// Whether `v`'s `MaXacThuc` is the checksum of its `fields` with `secret`.
fn checks(v: &Value, fields: &[&str], secret: &str) -> bool {
    let values: Vec<String> = fields.iter().map(|f| field(v, f)).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    field(v, "MaXacThuc") == sign::dvcqg_checksum(&refs, secret)
}

fn error(code: &str, text: &str) -> Response {
    Json(json!({"MaLoi": code, "MoTaLoi": text})).into_response()
}

/// The payment-result callback for `t` reporting `outcome` (none for a payment still pending:
/// the platform reports final results), for `amount`, checksummed with a forged secret when
/// `forged`.
pub(super) fn callback(
    sim: &Sim,
    t: &SimTxn,
    outcome: SimOutcome,
    amount: i64,
    forged: bool,
    now: DateTime<Utc>,
) -> Option<Callback> {
    let (partner, secret) = sim.config.dvcqg.clone()?;
    let secret = if forged { "forged-dvcqg-secret".to_owned() } else { secret };
    let ma_loi = match outcome {
        SimOutcome::Success => "00",
        SimOutcome::Failure => "24",
        SimOutcome::Pending => return None,
    };
    let no = if outcome == SimOutcome::Success { t.txn_no.unwrap_or(0).to_string() } else { String::new() };
    let time = vn_time(t.paid_at.unwrap_or(now));
    let amount_text = amount.to_string();
    let values = [
        "PAYMENT_RESULT",
        ma_loi,
        partner.as_str(),
        t.txn_ref.as_str(),
        amount_text.as_str(),
        "VND",
        no.as_str(),
        "VCB",
        time.as_str(),
        t.order_info.as_str(),
    ];
    let body = json!({
        "LoaiBanTin": "PAYMENT_RESULT", "MaLoi": ma_loi, "MaDoiTac": partner, "MaThamChieu": t.txn_ref,
        "SoTien": amount, "MaTienTe": "VND", "MaGiaoDich": no, "MaNganHang": "VCB", "ThoiGianGD": time,
        "ThongTinGiaoDich": t.order_info, "MaXacThuc": sign::dvcqg_checksum(&values, &secret),
    });
    let url = if t.ipn_url.is_empty() { sim.dvcqg_callback()? } else { t.ipn_url.clone() };
    Some(Callback::PostJson(url, body.to_string()))
}

/// `INIT`: checks the checksum and the partner, registers the order, answers `UrlThanhToan`.
pub(super) async fn init(State(sim): State<Arc<Sim>>, headers: HeaderMap, Json(v): Json<Value>) -> Response {
    let Some((partner, secret)) = sim.config.dvcqg.clone() else {
        return not_simulated("DVCQG");
    };
    if !checks(&v, &INIT, &secret) || field(&v, "MaDoiTac") != partner || field(&v, "LoaiBanTin") != "INIT" {
        return error("97", "Mã xác thực không chính xác");
    }
    let txn_ref = field(&v, "MaThamChieu");
    let Ok(amount) = field(&v, "SoTien").parse::<i64>() else {
        return error("04", "Số tiền không hợp lệ");
    };
    if txn_ref.is_empty() || txn_ref.len() > 20 || v.get("ThongTinBienLai").and_then(Value::as_object).is_none() {
        return error("03", "Dữ liệu không hợp lệ");
    }
    let callback = sim.dvcqg_callback().unwrap_or_default();
    let t = SimTxn {
        gateway: Gateway::Dvcqg,
        txn_ref: txn_ref.clone(),
        amount,
        order_info: field(&v, "ThongTinGiaoDich"),
        ipn_url: callback.clone(),
        return_url: callback.strip_suffix("/callback").map(|b| format!("{b}/return")).unwrap_or_default(),
        created: field(&v, "ThoiGianGD"),
        status: SimStatus::Open,
        txn_no: None,
        paid_at: None,
        // The platform's money reaches the province's account whole [I].
        fee: 0,
        expires_at: None,
    };
    if let Err(e) = sim.register(t) {
        return error("02", &e);
    }
    let bearer = headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()).map(str::to_owned);
    sim.dvcqg_inits.lock().unwrap_or_else(|p| p.into_inner()).insert(txn_ref.clone(), (v, bearer));
    let url = format!("{}/sim/dvcqg/pay?ref={txn_ref}", sim.base_url);
    Json(json!({"MaLoi": "00", "MoTaLoi": "Thành công", "UrlThanhToan": url})).into_response()
}

/// `QUERY`: `TrangThaiGD` 1 paid, 3 pending, 4 failed; a fault answers an API error instead.
pub(super) async fn query(State(sim): State<Arc<Sim>>, Json(v): Json<Value>) -> Response {
    let Some((partner, secret)) = sim.config.dvcqg.clone() else {
        return not_simulated("DVCQG");
    };
    let txn_ref = field(&v, "MaThamChieu");
    if !checks(&v, &QUERY, &secret) || field(&v, "MaDoiTac") != partner || field(&v, "LoaiBanTin") != "QUERY" {
        sim.query_asked(Gateway::Dvcqg, &txn_ref, &v);
        return error("97", "Mã xác thực không chính xác");
    }
    let fault = sim.query_asked(Gateway::Dvcqg, &txn_ref, &v).unwrap_or_default();
    if let Some(code) = &fault.api_error {
        return error(code, "Lỗi hệ thống");
    }
    let Some(t) = sim.txn(&txn_ref).filter(|t| t.gateway == Gateway::Dvcqg) else {
        return error("01", "Không tìm thấy giao dịch");
    };
    let state = match t.status {
        SimStatus::Paid => "1",
        SimStatus::Failed | SimStatus::Expired => "4",
        SimStatus::Open | SimStatus::Pending => "3",
    };
    let no =
        if fault.unnumbered || t.status != SimStatus::Paid { String::new() } else { t.txn_no.unwrap_or(0).to_string() };
    let amount = fault.amount.unwrap_or(t.amount);
    Json(json!({
        "MaLoi": "00", "MoTaLoi": "Thành công", "LoaiBanTin": "QUERY", "MaDoiTac": partner, "MaThamChieu": t.txn_ref,
        "ThoiGianGD": field(&v, "ThoiGianGD"), "SoTien": amount, "MaTienTe": "VND", "MaGiaoDich": no,
        "MaNganHang": if t.status == SimStatus::Paid { "VCB" } else { "" }, "ThongTinGiaoDich": t.order_info,
        "TrangThaiGD": state,
    }))
    .into_response()
}

/// The receipt's bytes: a small PDF naming the transaction.
fn receipt_pdf(t: &SimTxn) -> Vec<u8> {
    format!(
        "%PDF-1.4\n% Bien lai dien tu (simulator)\n% MaThamChieu {} MaGiaoDich {} SoTien {}\n%%EOF\n",
        t.txn_ref,
        t.txn_no.unwrap_or(0),
        t.amount
    )
    .into_bytes()
}

/// `GET_BILL`: the receipt of a paid transaction, as a PDF stream or as JSON naming
/// `UrlBienLai` (`Simulator::dvcqg_bills_as_url`).
pub(super) async fn bill(State(sim): State<Arc<Sim>>, Json(v): Json<Value>) -> Response {
    let Some((partner, secret)) = sim.config.dvcqg.clone() else {
        return not_simulated("DVCQG");
    };
    if !checks(&v, &QUERY, &secret) || field(&v, "MaDoiTac") != partner || field(&v, "LoaiBanTin") != "GET_BILL" {
        return error("97", "Mã xác thực không chính xác");
    }
    let Some(t) = sim.txn(&field(&v, "MaThamChieu")).filter(|t| t.gateway == Gateway::Dvcqg) else {
        return error("01", "Không tìm thấy giao dịch");
    };
    let refuse = sim.dvcqg_bill_refusals.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    if t.status != SimStatus::Paid || refuse {
        return error("02", "Giao dịch chưa thanh toán hoặc biên lai chưa sẵn sàng");
    }
    if sim.dvcqg_bill_as_url.load(Ordering::SeqCst) {
        let url = format!("{}/sim/dvcqg/receipt/{}", sim.base_url, t.txn_ref);
        return Json(json!({"MaLoi": "00", "MoTaLoi": "Thành công", "UrlBienLai": url})).into_response();
    }
    ([(header::CONTENT_TYPE, "application/pdf")], receipt_pdf(&t)).into_response()
}

/// The document a `UrlBienLai` names.
pub(super) async fn receipt(State(sim): State<Arc<Sim>>, Path(txn_ref): Path<String>) -> Response {
    match sim.txn(&txn_ref).filter(|t| t.gateway == Gateway::Dvcqg && t.status == SimStatus::Paid) {
        Some(t) => ([(header::CONTENT_TYPE, "application/pdf")], receipt_pdf(&t)).into_response(),
        None => (StatusCode::NOT_FOUND, "no receipt").into_response(),
    }
}
