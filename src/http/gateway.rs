//! The gateways' side of the server (SPEC §6.4): callback endpoints, which answer in each
//! gateway's own format, and the return pages citizens land on, which only read.
//!
//! A callback's body is read here from its stream (the framework's body limit applies only to
//! extractors that consult it, which this one does not): a body over
//! `FEERECON_MAX_BODY` is kept as its first `FEERECON_MAX_BODY` bytes with its whole length and
//! answered in the gateway's format (its retry reply), never with the JSON error envelope. Every
//! callback reaches the payment service, so it is kept even when its gateway is not enabled.

use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use super::AppState;
use super::error::Final;
use super::routes::{Access, Route, bytes_schema};
use crate::domain::payment::{Gateway, PaymentStatus};
use crate::gateway::{HttpReply, RawRequest};

pub fn routes() -> Vec<Route> {
    use super::gateway_doc as d;
    const JSON: &str = "application/json";
    let html = || vec![("text/html", bytes_schema("text/html"))];
    let ret =
        |path: &'static str, g: &'static str, name: &'static str| {
            Route::new(Method::GET, path, Access::Gateway, name, get(return_page))
                .parameters(d::return_query(g))
                .answer(200, "A page showing the payment's status (read only: nothing is applied).", html())
        };
    vec![
        Route::new(
            Method::GET,
            "/gateway/vnpay/ipn",
            Access::Gateway,
            "VNPAY IPN (query string, signed).",
            get(vnpay_ipn),
        )
        .parameters(d::vnpay_query())
        .answer(200, "VNPAY's reply format; RspCode 00 stops its retries.", vec![(JSON, d::vnpay_reply())]),
        Route::new(Method::POST, "/gateway/vnpay/ipn", Access::Gateway, "VNPAY IPN as a POST form.", post(vnpay_ipn))
            .raw_body(vec![("application/x-www-form-urlencoded", d::vnpay_form())])
            .answer(200, "VNPAY's reply format; RspCode 00 stops its retries.", vec![(JSON, d::vnpay_reply())]),
        Route::new(Method::POST, "/gateway/momo/ipn", Access::Gateway, "MoMo IPN (JSON, signed).", post(momo_ipn))
            .raw_body(vec![(JSON, d::momo_ipn())])
            .answer(204, "Acknowledged: MoMo stops retrying.", vec![])
            .answer(200, "MoMo's reply format, when not acknowledged.", vec![(JSON, d::dvcqg_reply())]),
        Route::new(
            Method::POST,
            "/gateway/zalopay/callback",
            Access::Gateway,
            "ZaloPay callback (JSON, MAC).",
            post(zalopay_callback),
        )
        .raw_body(vec![(JSON, d::zalopay_callback())])
        .answer(200, "ZaloPay's reply format.", vec![(JSON, d::zalopay_reply())]),
        Route::new(
            Method::POST,
            "/gateway/dvcqg/callback",
            Access::Gateway,
            "DVCQG payment platform: payment-result notification (JSON, MaXacThuc).",
            post(dvcqg_callback),
        )
        .raw_body(vec![(JSON, d::dvcqg_callback())])
        .answer(200, "The platform's reply format.", vec![(JSON, d::dvcqg_reply())]),
        ret("/gateway/vnpay/return", "vnpay", "VNPAY return page: shows the status."),
        ret("/gateway/momo/return", "momo", "MoMo return page: shows the status."),
        ret("/gateway/zalopay/return", "zalopay", "ZaloPay return page: shows the status."),
        ret("/gateway/dvcqg/return", "dvcqg", "DVCQG return page: shows the status."),
    ]
}

/// The headers kept as evidence with a callback.
const KEPT_HEADERS: [&str; 5] = ["content-type", "user-agent", "x-forwarded-for", "x-real-ip", "content-length"];

/// How much of an over-size body is read to learn its length, as a multiple of
/// `FEERECON_MAX_BODY`: past it the reading stops and the length recorded is what was read.
const COUNT_UP_TO: usize = 16;

/// A callback as it arrived: method, path and query as received, the kept headers and the raw
/// body (read before anything parses it), and, for a body over `FEERECON_MAX_BODY`, its whole
/// length (`raw.body` then holds its first `FEERECON_MAX_BODY` bytes).
struct Callback {
    raw: RawRequest,
    body_length: Option<i64>,
}

impl axum::extract::FromRequest<AppState> for Callback {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Self::Rejection> {
        use futures_util::StreamExt as _;
        let max = state.config.max_body;
        let method = req.method().to_string();
        let uri = req.extensions().get::<OriginalUri>().map_or_else(|| req.uri().clone(), |o| o.0.clone());
        let headers = KEPT_HEADERS
            .iter()
            .filter_map(|h| {
                req.headers().get(*h).map(|v| ((*h).to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            })
            .collect();
        let mut stream = req.into_body().into_data_stream();
        let mut body = Vec::new();
        let mut length: usize = 0;
        while let Some(chunk) = stream.next().await {
            // A body that breaks off is kept as far as it came: it will not verify.
            let Ok(chunk) = chunk else { break };
            length = length.saturating_add(chunk.len());
            let room = max.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if length > max.saturating_mul(COUNT_UP_TO) {
                break;
            }
        }
        let raw = RawRequest {
            method,
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or("").to_owned(),
            headers,
            body,
        };
        let body_length = (length > max).then(|| i64::try_from(length).unwrap_or(i64::MAX));
        Ok(Self { raw, body_length })
    }
}

fn to_response(r: HttpReply) -> Response {
    let mut res = (StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), r.body).into_response();
    if let Some(ct) = r.content_type {
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    res.extensions_mut().insert(Final);
    res
}

async fn handle(state: AppState, gateway: Gateway, cb: Callback) -> Response {
    let (_, reply) = state.payments.callback(gateway, cb.raw, cb.body_length).await;
    to_response(reply)
}

async fn vnpay_ipn(State(state): State<AppState>, cb: Callback) -> Response {
    handle(state, Gateway::Vnpay, cb).await
}

async fn momo_ipn(State(state): State<AppState>, cb: Callback) -> Response {
    handle(state, Gateway::Momo, cb).await
}

async fn zalopay_callback(State(state): State<AppState>, cb: Callback) -> Response {
    handle(state, Gateway::Zalopay, cb).await
}

async fn dvcqg_callback(State(state): State<AppState>, cb: Callback) -> Response {
    handle(state, Gateway::Dvcqg, cb).await
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// Shows the payment's status as stored; never changes anything (the IPN is what records).
async fn return_page(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    Query(params): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let txn_ref = ["vnp_TxnRef", "orderId", "apptransid", "app_trans_id", "MaThamChieu"]
        .iter()
        .find_map(|k| params.get(*k))
        .cloned();
    let payment = match &txn_ref {
        Some(r) => state.store.payment_by_txn_ref(r).await.ok().flatten(),
        None => None,
    };
    let (title, body, refresh) = match &payment {
        None => (
            "Không tìm thấy giao dịch",
            "We could not find this payment. If you paid, it will be confirmed shortly.".to_owned(),
            false,
        ),
        Some(p) => match p.status {
            PaymentStatus::Paid => (
                "Thanh toán thành công",
                format!("Payment for case {} is confirmed.", escape(p.case_code.as_str())),
                false,
            ),
            PaymentStatus::Pending => (
                "Đang xác nhận thanh toán",
                format!(
                    "We are waiting for the gateway to confirm the payment for case {}. This page refreshes by itself.",
                    escape(p.case_code.as_str())
                ),
                true,
            ),
            PaymentStatus::Failed => (
                "Thanh toán không thành công",
                format!("The payment for case {} did not go through.", escape(p.case_code.as_str())),
                false,
            ),
            PaymentStatus::Expired => (
                "Giao dịch đã hết hạn",
                format!("The payment for case {} expired.", escape(p.case_code.as_str())),
                false,
            ),
            PaymentStatus::Waived | PaymentStatus::BudgetCovered => {
                ("Không phải thanh toán", format!("Case {} owes nothing.", escape(p.case_code.as_str())), false)
            }
        },
    };
    let link = payment
        .as_ref()
        .map(|p| {
            format!(r#"<p><a href="{}">Quay lại cổng dịch vụ công / Back to the portal</a></p>"#, escape(&p.return_url))
        })
        .unwrap_or_default();
    let meta = if refresh { r#"<meta http-equiv="refresh" content="5">"# } else { "" };
    let status = payment.as_ref().map(|p| p.status.as_str()).unwrap_or("unknown");
    let _ = uri;
    let html = format!(
        r#"<!doctype html><html lang="vi"><head><meta charset="utf-8">{meta}<title>{title}</title></head>
<body><h1>{title}</h1><p>{body}</p><p>Trạng thái / status: <strong data-status="{status}">{status}</strong></p>{link}</body></html>"#
    );
    let mut res = Html(html).into_response();
    res.extensions_mut().insert(Final);
    res
}
