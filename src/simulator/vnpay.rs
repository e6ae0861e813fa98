//! The simulated VNPAY: the pay page behind the signed redirect URL, `querydr`, and signed IPNs.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::pages::pay_page_html;
use super::{Callback, Sim, SimOutcome, SimStatus, SimTxn, not_simulated, sign, vn_time};
use crate::domain::payment::Gateway;

/// The signed IPN for `t` reporting `outcome`, for `amount` (signed with a forged secret when `forged`).
pub(super) fn callback(
    sim: &Sim,
    t: &SimTxn,
    outcome: SimOutcome,
    amount: i64,
    forged: bool,
    now: DateTime<Utc>,
) -> Option<Callback> {
    let (tmn, secret) = sim.config.vnpay.clone()?;
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

pub(super) async fn pay_page(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery) -> Response {
    let Some((tmn, secret)) = sim.config.vnpay.clone() else {
        return not_simulated("VNPAY");
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
    let expires_at = crate::gateway::parse_vn_compact(&get("vnp_ExpireDate"));
    if expires_at.is_some_and(|e| e <= sim.clock.now()) && sim.txn(&txn_ref).is_none() {
        return (StatusCode::BAD_REQUEST, Html("<h1>Giao dịch đã quá thời gian chờ thanh toán</h1>".to_owned()))
            .into_response();
    }
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
        expires_at,
    };
    if sim.txn(&txn_ref).is_none() {
        let _ = sim.register(t);
    }
    pay_page_html(&sim, &txn_ref)
}

pub(super) async fn api(State(sim): State<Arc<Sim>>, Json(v): Json<serde_json::Value>) -> Response {
    let Some((tmn, secret)) = sim.config.vnpay.clone() else {
        return not_simulated("VNPAY");
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
    let fault = sim.query_asked(Gateway::Vnpay, &s("vnp_TxnRef"), &v).unwrap_or_default();
    let answer = |code: &str, msg: &str, t: Option<&SimTxn>| {
        let (amount, bank, pay_date, no, status) = match t {
            Some(t) => (
                (fault.amount.unwrap_or(t.amount) * 100).to_string(),
                "NCB".to_owned(),
                t.paid_at.map(vn_time).unwrap_or_default(),
                if fault.unnumbered { String::new() } else { t.txn_no.map(|n| n.to_string()).unwrap_or_default() },
                match t.status {
                    SimStatus::Paid => "00",
                    SimStatus::Failed => "02",
                    // An order that expired unpaid is "not completed" [I: VNPAY's answer for it
                    // is not documented].
                    SimStatus::Open | SimStatus::Pending | SimStatus::Expired => "01",
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
        let key = if fault.forged { "forged-vnpay-secret" } else { secret.as_str() };
        let hash = sign::hmac_sha512(key, &vals.join("|"));
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
    if let Some(code) = &fault.api_error {
        return answer(code, "Loi he thong", None);
    }
    match sim.txn(&s("vnp_TxnRef")) {
        Some(t) if t.gateway == Gateway::Vnpay && t.created == s("vnp_TransactionDate") => {
            answer("00", "QueryDR Success", Some(&t))
        }
        _ => answer("91", "Transaction not found", None),
    }
}
