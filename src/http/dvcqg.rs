//! The DVCQG platform's extras over HTTP: its reverse lookup of what a case owes (unsigned in the
//! public code, so behind `FEERECON_DVCQG_LOOKUP_ALLOW`), and the platform's own receipt of a
//! paid payment (GET_BILL), kept with the payment's evidence and served beside our receipt.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ApiPath, Final};
use super::routes::{Access, Route};
use crate::domain::{CaseCode, Timestamp};
use crate::gateway::dvcqg::{lookup_bill, lookup_error, lookup_nothing};
use crate::payments::Owed;

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::POST,
            "/gateway/dvcqg/lookup",
            Access::Gateway,
            "DVCQG reverse lookup {\"MaHoSo\"}: what a case owes (error_code 1 bill, 0 nothing, -1 error); allowed addresses only.",
            post(lookup),
        )
        .raw_body(vec![("application/json", super::gateway_doc::dvcqg_lookup())])
        .answer(200, "error_code 1 with the bill, 0 nothing owed, -1 an error (also 403 and 404 in this format).", vec![(
            "application/json",
            super::gateway_doc::dvcqg_lookup_answer(),
        )]),
        Route::new(
            Method::GET,
            "/api/v1/payments/{payment_id}/gateway-receipt",
            Access::AnyRole,
            "The gateway's own receipt of a paid payment (DVCQG GET_BILL): its state, hash and source, with our e-receipts of the payment.",
            get(gateway_receipt),
        )
        .json::<GatewayReceiptView>(200, "The gateway receipt's state, with our e-receipts of the payment."),
        Route::new(
            Method::GET,
            "/api/v1/payments/{payment_id}/gateway-receipt/file",
            Access::AnyRole,
            "The gateway's receipt document itself (PDF), byte for byte as fetched.",
            get(gateway_receipt_file),
        )
        .answer(200, "The document, in the media type the gateway gave (usually PDF).", vec![
            ("application/pdf", super::routes::bytes_schema("application/pdf")),
            ("application/octet-stream", super::routes::bytes_schema("application/octet-stream")),
        ]),
    ]
}

fn answer(status: StatusCode, v: Value) -> Response {
    let mut res = (status, axum::Json(v)).into_response();
    res.extensions_mut().insert(Final);
    res
}

/// `POST /gateway/dvcqg/lookup`: refused (403) unless the caller's address is allowed.
async fn lookup(State(state): State<AppState>, ConnectInfo(peer): ConnectInfo<SocketAddr>, body: Bytes) -> Response {
    let Some(cfg) = state.config.dvcqg.as_ref() else {
        return answer(StatusCode::NOT_FOUND, lookup_error("the DVCQG gateway is not enabled on this server"));
    };
    if !cfg.lookup_allow.iter().any(|n| n.contains(peer.ip())) {
        tracing::warn!(peer = %peer.ip(), "DVCQG lookup from an address not in FEERECON_DVCQG_LOOKUP_ALLOW");
        return answer(StatusCode::FORBIDDEN, lookup_error("this address may not look up cases"));
    }
    let code = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("MaHoSo").and_then(Value::as_str).map(str::to_owned));
    let Some(code) = code else {
        return answer(StatusCode::BAD_REQUEST, lookup_error("the body must be JSON {\"MaHoSo\": \"...\"}"));
    };
    let Ok(code) = CaseCode::parse(code.trim()) else {
        return answer(StatusCode::OK, lookup_error("MaHoSo is not a case code"));
    };
    match state.payments.owed(&code).await {
        Ok(None) => answer(StatusCode::OK, lookup_error("no such case")),
        Ok(Some(Owed::Settled)) => answer(StatusCode::OK, lookup_nothing("the case is paid")),
        Ok(Some(Owed::Nothing)) => answer(StatusCode::OK, lookup_nothing("the case owes nothing")),
        Ok(Some(Owed::Bill { case, total })) => {
            answer(StatusCode::OK, lookup_bill(cfg, &case, total, state.clock.now()))
        }
        Err(e) => {
            tracing::error!(error = %e, "DVCQG lookup failed");
            answer(StatusCode::OK, lookup_error("internal error"))
        }
    }
}

async fn gateway_receipt(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Response, ApiError> {
    let p = state.store.get_payment(&id).await?.ok_or_else(|| ApiError::NotFound(format!("no payment {id}")))?;
    let r = state
        .store
        .gateway_receipt(&id)
        .await?
        // A row with no attempt is only the expectation its payment's commit wrote.
        .filter(|r| r.attempts > 0 || r.state == "fetched")
        .ok_or_else(|| ApiError::NotFound(format!("payment {id} has no gateway receipt (yet)")))?;
    let ours: Vec<OurReceipt> = state
        .store
        .case_receipts(&p.case_code)
        .await?
        .into_iter()
        .filter(|x| x.payment_id.as_deref() == Some(id.as_str()))
        .map(|x| OurReceipt {
            receipt_id: x.receipt_id,
            template: x.template,
            symbol: x.symbol,
            number: x.number,
            kind: x.kind,
        })
        .collect();
    let fetched = r.state == "fetched";
    Ok(axum::Json(GatewayReceiptView {
        payment_id: r.payment_id,
        gateway: r.gateway,
        state: r.state,
        attempts: r.attempts,
        content_type: r.content_type,
        sha256: r.sha256,
        length: r.body.as_ref().map(Vec::len),
        source_url: r.source_url,
        fetched_at: r.fetched_at.map(Timestamp::at),
        last_error: if fetched { None } else { r.detail },
        file: fetched.then(|| format!("/api/v1/payments/{id}/gateway-receipt/file")),
        receipts: ours,
    })
    .into_response())
}

/// One of our e-receipts of the payment.
#[derive(Serialize, ToSchema)]
struct OurReceipt {
    receipt_id: String,
    template: String,
    symbol: String,
    number: i64,
    kind: crate::domain::receipt::ReceiptKind,
}

/// The gateway's own receipt of a payment (DVCQG GET_BILL).
#[derive(Serialize, ToSchema)]
struct GatewayReceiptView {
    payment_id: String,
    gateway: crate::domain::payment::Gateway,
    /// `pending` or `fetched`.
    state: String,
    attempts: i64,
    content_type: Option<String>,
    /// Hex SHA-256 of the document.
    sha256: Option<String>,
    length: Option<usize>,
    /// Where the gateway said to download it (`UrlBienLai`).
    source_url: Option<String>,
    fetched_at: Option<Timestamp>,
    last_error: Option<String>,
    /// The document's route, once fetched.
    file: Option<String>,
    receipts: Vec<OurReceipt>,
}

async fn gateway_receipt_file(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let r = state.store.gateway_receipt(&id).await?;
    let Some((body, ct)) = r.and_then(|r| Some((r.body?, r.content_type.unwrap_or_else(|| "application/pdf".into()))))
    else {
        return Err(ApiError::NotFound(format!("payment {id} has no fetched gateway receipt")));
    };
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&ct).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    Ok(res)
}
