//! Payments over HTTP (SPEC §4.3, §6.5): the portal creates them; every role reads them; finance,
//! auditors and administrators read the evidence and the flagged list.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Principal;
use super::cases::path_case_code;
use super::error::{ApiError, ApiJson};
use super::list::List;
use super::routes::{Access, Route};
use crate::domain::payment::{Flag, Gateway, PaymentStatus};
use crate::domain::{FieldError, Money, Timestamp};
use crate::payments::{CallbackView, CreateError, CreateRequest, PaymentView};

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
            "A case's payments.",
            get(list_for_case),
        )
        .json::<List<PaymentView>>(200, "Every payment of the case, oldest first."),
        Route::new(Method::GET, "/api/v1/payments/{payment_id}", Access::AnyRole, "One payment.", get(one))
            .json::<PaymentView>(200, "The payment."),
        Route::new(
            Method::GET,
            "/api/v1/payments",
            Access::Staff,
            "Payments carrying a flag (?flag=F), paged.",
            get(flagged),
        )
        .query::<FlagQuery>()
        .json::<List<PaymentView>>(200, "A page of payments carrying the flag."),
        Route::new(
            Method::GET,
            "/api/v1/payments/{payment_id}/callbacks",
            Access::Staff,
            "Every raw callback and status answer of a payment, with its verification and key.",
            get(callbacks),
        )
        .json::<List<CallbackView>>(200, "Every callback and status answer, in arrival order."),
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
    Path(code): Path<String>,
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

async fn list_for_case(State(state): State<AppState>, Path(code): Path<String>) -> Result<Response, ApiError> {
    let code = path_case_code(&code)?;
    if state.store.get_case(&code).await?.is_none() {
        return Err(ApiError::NotFound(format!("no case {code}")));
    }
    let items: Vec<_> = state.store.case_payments(&code).await?.iter().map(PaymentView::of).collect();
    Ok(Json(List::all(items)).into_response())
}

async fn one(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let p = state.store.get_payment(&id).await?.ok_or_else(|| ApiError::NotFound(format!("no payment {id}")))?;
    Ok(Json(PaymentView::of(&p)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct FlagQuery {
    /// Required: `duplicate_payment`, `late_success`, `callback_amount_mismatch`, ...
    #[param(required = true)]
    flag: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    limit: Option<i64>,
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

async fn flagged(State(state): State<AppState>, Query(q): Query<FlagQuery>) -> Result<Response, ApiError> {
    let flag_raw =
        q.flag.ok_or_else(|| ApiError::field(FieldError::new("flag", "is required (?flag=duplicate_payment)")))?;
    let flag: Flag = flag_raw.parse().map_err(|e| ApiError::field(FieldError::new("flag", e)))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let page = state.store.flagged_payments(flag, q.cursor.as_deref(), limit + 1).await?;
    let more = page.len() as i64 > limit;
    let items: Vec<_> = page.iter().take(limit as usize).map(PaymentView::of).collect();
    let next = if more { items.last().map(|p| p.payment_id.clone()) } else { None };
    Ok(Json(List { items, next_cursor: next }).into_response())
}

async fn callbacks(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    if state.store.get_payment(&id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no payment {id}")));
    }
    let items: Vec<_> = state.store.payment_callbacks(&id).await?.into_iter().map(CallbackView::of).collect();
    Ok(Json(List::all(items)).into_response())
}
