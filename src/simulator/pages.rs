//! The simulator's own pages and control routes: the pay page where a person clicks "pay" or
//! "cancel" (then the browser returns to the merchant the way each gateway returns it), and the
//! JSON routes the tests and the demo drive it with (`/sim/pay` with faults, `/sim/query-fault`,
//! `/sim/transactions`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use axum::Router;
use axum::routing::{get, post};

use super::{Faults, QueryFault, Sim, SimOutcome, SimTxn, sign};
use crate::domain::payment::Gateway;

/// The pay pages and the control routes, under `/sim/`.
pub(super) fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/sim/{gateway}/pay", get(pay_page).post(pay_form))
        .route("/sim/pay", post(pay_json))
        .route("/sim/query-fault", post(query_fault_json))
        .route("/sim/transactions", get(list_txns))
}

pub(super) fn pay_page_html(sim: &Sim, txn_ref: &str) -> Response {
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
        Gateway::Dvcqg => format!(
            "{}?MaThamChieu={}&MaLoi={}",
            t.return_url,
            t.txn_ref,
            if outcome == SimOutcome::Success { "00" } else { "24" }
        ),
    };
    Redirect::to(&back).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryFaultJson {
    txn_ref: String,
    fault: QueryFault,
}

/// `POST /sim/query-fault {"txn_ref", "fault": {"api_error", "amount", "unnumbered", "times"}}`:
/// answer the status queries about a transaction with a fault.
async fn query_fault_json(State(sim): State<Arc<Sim>>, Json(q): Json<QueryFaultJson>) -> Response {
    sim.query_faults.lock().unwrap_or_else(|p| p.into_inner()).insert(q.txn_ref, q.fault);
    StatusCode::NO_CONTENT.into_response()
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
