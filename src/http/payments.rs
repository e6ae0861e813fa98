//! Payments over HTTP (SPEC §4.3, §6.5): the portal creates them; every role reads them; finance,
//! auditors and administrators read the evidence and the flagged list.

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Principal;
use super::cases::path_case_code;
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use super::page::{ListPage, Page, PageQuery};
use super::routes::{Access, Route};
use crate::domain::payment::{Flag, Gateway, PaymentStatus};
use crate::domain::{BusinessDate, FieldError, Money, Timestamp};
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
        )
        .header("Idempotency-Key", true, "1 to 255 printable ASCII characters, scoped per (user, case): the same key again answers the same payment (200).")
        .json_body::<CreateRequest>()
        .json::<CreatedPayment>(201, "A new payment: pending with a pay_url, or waived / budget_covered without one.")
        .json::<CreatedPayment>(200, "The payment this Idempotency-Key already created."),
        Route::new(
            Method::GET,
            "/api/v1/cases/{case_code}/payments",
            Access::AnyRole,
            "A case's payments, oldest first, paged (?cursor=&limit=).",
            get(list_for_case),
        )
        .query::<ListPage>()
        .json::<Page<PaymentView>>(200, "The case's payments, oldest first, paged."),
        Route::new(Method::GET, "/api/v1/payments/{payment_id}", Access::AnyRole, "One payment.", get(one))
            .json::<PaymentView>(200, "The payment."),
        Route::new(
            Method::GET,
            "/api/v1/payments",
            Access::Staff,
            "Payments by id: counting on a business date (?date=YYYY-MM-DD: the date paid for a paid payment, else the date created, +07:00), of a gateway (?gateway=G), in a status (?status=S), carrying a flag (?flag=F); paged (?cursor=&limit=).",
            get(list),
        )
        .query::<ListQuery>()
        .json::<Page<PaymentView>>(200, "A page of payments, by id."),
        Route::new(
            Method::GET,
            "/api/v1/payments/{payment_id}/callbacks",
            Access::Staff,
            "Every raw callback and status answer of a payment, with its verification and key, oldest first, paged (?cursor=&limit=).",
            get(callbacks),
        )
        .query::<ListPage>()
        .json::<Page<CallbackView>>(200, "The callbacks and status answers, in arrival order, paged."),
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
    let body = CreatedPayment {
        payment_id: p.payment_id.clone(),
        txn_ref: p.txn_ref.clone(),
        gateway: p.gateway,
        amount: p.amount,
        status: p.status,
        pay_url: p.pay_url.clone(),
        expires_at: Timestamp::at(p.expires_at),
    };
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

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only payments carrying this flag.
    flag: Option<Flag>,
    /// Only payments created or paid on this date in +07:00, YYYY-MM-DD.
    date: Option<String>,
    /// Only this gateway's payments.
    gateway: Option<Gateway>,
    /// Only payments in this status.
    status: Option<PaymentStatus>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    limit: Option<String>,
}

/// What creating a payment answers (SPEC §4.3).
#[derive(Serialize, ToSchema)]
struct CreatedPayment {
    payment_id: String,
    /// The reference sent to the gateway; `null` for waived and budget-covered payments.
    txn_ref: Option<String>,
    gateway: Gateway,
    /// What the citizen pays, whole đồng.
    amount: Money,
    status: PaymentStatus,
    /// Where to send the citizen; `null` when nothing is to pay.
    pay_url: Option<String>,
    expires_at: Timestamp,
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
