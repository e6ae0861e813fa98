//! Payments over HTTP (SPEC §4.3, §6.5): the portal creates them; every role reads them; finance,
//! auditors and administrators read the evidence and the flagged list.

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth::Principal;
use super::cases::path_case_code;
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use super::page::{ListPage, Page, PageQuery};
use super::routes::{Access, Route};
use crate::domain::payment::{Flag, Gateway, PaymentStatus};
use crate::domain::{BusinessDate, FieldError, Timestamp};
use crate::payments::{CallbackView, CreateError, CreateRequest, PaymentView};
use crate::store::PaymentFilter;

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::POST,
            "/api/v1/cases/{case_code}/payments",
            Access::Portal,
            "Create a payment for a case (Idempotency-Key required): 201 new, 200 the same key again.",
            post(create),
        ),
        Route::new(
            Method::GET,
            "/api/v1/cases/{case_code}/payments",
            Access::AnyRole,
            "A case's payments, oldest first, paged (?cursor=&limit=).",
            get(list_for_case),
        ),
        Route::new(Method::GET, "/api/v1/payments/{payment_id}", Access::AnyRole, "One payment.", get(one)),
        Route::new(
            Method::GET,
            "/api/v1/payments",
            Access::Staff,
            "Payments by id: counting on a business date (?date=YYYY-MM-DD: the date paid for a paid payment, else the date created, +07:00), of a gateway (?gateway=G), in a status (?status=S), carrying a flag (?flag=F); paged (?cursor=&limit=).",
            get(list),
        ),
        Route::new(
            Method::GET,
            "/api/v1/payments/{payment_id}/callbacks",
            Access::Staff,
            "Every raw callback and status answer of a payment, with its verification and key, oldest first, paged (?cursor=&limit=).",
            get(callbacks),
        ),
    ]
}

impl From<CreateError> for ApiError {
    fn from(e: CreateError) -> Self {
        let msg = e.to_string();
        match e {
            CreateError::Field(f) => ApiError::field(f),
            CreateError::NoCase(_) => ApiError::NotFound(msg),
            CreateError::CaseAlreadyPaid => ApiError::Conflict { code: "case_already_paid", message: msg },
            CreateError::KeyReused => ApiError::Conflict { code: "idempotency_key_reused", message: msg },
            CreateError::GatewayDisabled(_) => ApiError::Unprocessable { code: "gateway_disabled", message: msg },
            CreateError::OutsideLimits { .. } => {
                ApiError::Unprocessable { code: "amount_outside_gateway_limits", message: msg }
            }
            CreateError::GatewayUnavailable(_) => ApiError::GatewayUnavailable(msg),
            CreateError::Unquotable(q) => ApiError::from(q),
            CreateError::Internal(e) => ApiError::Internal(e),
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let v = headers
        .get("idempotency-key")
        .ok_or_else(|| ApiError::InvalidRequest("the Idempotency-Key header is required".into()))?;
    let v = v.to_str().map_err(|_| ApiError::InvalidRequest("Idempotency-Key must be printable ASCII".into()))?.trim();
    if v.is_empty() || v.len() > 255 || !v.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(ApiError::InvalidRequest("Idempotency-Key must be 1 to 255 printable ASCII characters".into()));
    }
    Ok(v.to_owned())
}

async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(code): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateRequest>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let code = path_case_code(&code)?;
    let created = state.payments.create(&who.user_id, &code, &key, req).await?;
    let p = &created.payment;
    let body = json!({
        "payment_id": p.payment_id,
        "txn_ref": p.txn_ref,
        "gateway": p.gateway,
        "amount": p.amount.dong(),
        "status": p.status,
        "pay_url": p.pay_url,
        "expires_at": Timestamp::at(p.expires_at),
    });
    Ok((if created.new { StatusCode::CREATED } else { StatusCode::OK }, Json(body)).into_response())
}

async fn list_for_case(
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListPage>,
) -> Result<Response, ApiError> {
    let code = path_case_code(&code)?;
    let page = q.page()?;
    if state.store.get_case(&code).await?.is_none() {
        return Err(ApiError::NotFound(format!("no case {code}")));
    }
    let items: Vec<_> = state.store.case_payments(&code).await?.iter().map(PaymentView::of).collect();
    Ok(Page::of_all(items, &page)?.into_response())
}

async fn one(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Response, ApiError> {
    let p = state.store.get_payment(&id).await?.ok_or_else(|| ApiError::NotFound(format!("no payment {id}")))?;
    Ok(Json(PaymentView::of(&p)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    flag: Option<Flag>,
    date: Option<String>,
    gateway: Option<Gateway>,
    status: Option<PaymentStatus>,
    cursor: Option<String>,
    limit: Option<String>,
}

async fn list(State(state): State<AppState>, ApiQuery(q): ApiQuery<ListQuery>) -> Result<Response, ApiError> {
    let page = PageQuery::new(q.cursor, q.limit.as_deref())?;
    let date = match q.date.as_deref() {
        Some(d) => Some(BusinessDate::parse(d).map_err(|e| ApiError::field(FieldError::new("date", e)))?),
        None => None,
    };
    let filter = PaymentFilter { flag: q.flag, gateway: q.gateway, status: q.status, date };
    let rows = state.store.payments_page(&filter, page.cursor(), page.fetch()).await?;
    Ok(Page::from_rows(rows, &page, |p| p.payment_id.clone()).map(|p| PaymentView::of(&p)).into_response())
}

async fn callbacks(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListPage>,
) -> Result<Response, ApiError> {
    let page = q.page()?;
    if state.store.get_payment(&id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no payment {id}")));
    }
    let items: Vec<_> = state.store.payment_callbacks(&id).await?.into_iter().map(CallbackView::of).collect();
    Ok(Page::of_all(items, &page)?.into_response())
}
