//! Treasury remittance over HTTP (issue 19): staff list the periods with what each owes and read a
//! period's statement (JSON, CSV, XLSX); finance requests the record of a transfer and another
//! finance user approves or rejects it (four eyes).

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Principal;
use super::download::{CSV, XLSX, download};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use super::page::{Page, PageQuery};
use super::routes::{Access, Route};
use crate::domain::remittance::PeriodKind;
use crate::domain::{BusinessDate, FieldError};
use crate::remittance::statement::Statement;
use crate::remittance::{ListFilter, PeriodRow, RemittanceError, Request, parse_period, render};

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/api/v1/remittances",
            Access::Staff,
            "Remittance periods with due, remitted, outstanding and late (?kind=day|week|month&from=&to=), paged (?cursor=&limit=).",
            get(list),
        )
        .query::<ListQuery>()
        .json::<Page<PeriodRow>>(200, "The periods, oldest first."),
        Route::new(
            Method::POST,
            "/api/v1/remittances",
            Access::Finance,
            "Request the record of a period's transfer to the treasury: {\"period\", \"amount\", \"transferred_on\", \"reference\", \"note\"}; another finance user approves.",
            post(request),
        )
        .json_body::<RequestBody>()
        .json::<Statement>(201, "The period's statement with the transfer pending approval."),
        Route::new(
            Method::GET,
            "/api/v1/remittances/{period}",
            Access::Staff,
            "A period's remittance statement (C1-02/NS data by budget sub-item) as ?format=json, csv or xlsx.",
            get(statement),
        )
        .query::<StatementQuery>()
        .json_or::<Statement>(200, "The statement: JSON, or CSV / XLSX as a download.", &[CSV, XLSX]),
        Route::new(
            Method::POST,
            "/api/v1/remittances/{period}/approve",
            Access::Finance,
            "Approve a period's pending remittance (another finance user): it is posted in the ledger.",
            post(approve),
        )
        .json_body::<DecideBody>()
        .json::<Statement>(200, "The statement, the transfer posted."),
        Route::new(
            Method::POST,
            "/api/v1/remittances/{period}/reject",
            Access::Finance,
            "Reject a period's pending remittance (another finance user).",
            post(reject),
        )
        .json_body::<DecideBody>()
        .json::<Statement>(200, "The statement, the transfer rejected."),
    ]
}

impl From<RemittanceError> for ApiError {
    fn from(e: RemittanceError) -> Self {
        let m = e.to_string();
        match e {
            RemittanceError::Invalid(_) => ApiError::InvalidField(m),
            RemittanceError::NotFound(_) => ApiError::NotFound(m),
            RemittanceError::Conflict(_) => ApiError::Conflict { code: "conflict", message: m },
            RemittanceError::FourEyes(_) => ApiError::FourEyes(m),
            RemittanceError::Internal(e) => ApiError::Internal(e),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// `day`, `week` or `month` (default: every kind).
    kind: Option<String>,
    /// Periods ending on or after this date, YYYY-MM-DD.
    from: Option<String>,
    /// Periods starting on or before this date, YYYY-MM-DD.
    to: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    limit: Option<String>,
}

fn date(field: &str, v: Option<&str>) -> Result<Option<chrono::NaiveDate>, ApiError> {
    v.map(|v| BusinessDate::parse(v).map(BusinessDate::naive).map_err(|e| ApiError::field(FieldError::new(field, e))))
        .transpose()
}

async fn list(State(state): State<AppState>, ApiQuery(q): ApiQuery<ListQuery>) -> Result<Response, ApiError> {
    let kind = q
        .kind
        .as_deref()
        .map(|k| k.parse::<PeriodKind>().map_err(|e| ApiError::field(FieldError::new("kind", e))))
        .transpose()?;
    let filter = ListFilter { kind, from: date("from", q.from.as_deref())?, to: date("to", q.to.as_deref())? };
    let page = PageQuery::new(q.cursor, q.limit.as_deref())?;
    let items = state.remittances.list(filter).await?;
    Ok(Page::of_all(items, &page)?.into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct StatementQuery {
    /// `json` (default), `csv` or `xlsx`.
    format: Option<String>,
}

async fn statement(
    State(state): State<AppState>,
    ApiPath(period): ApiPath<String>,
    ApiQuery(q): ApiQuery<StatementQuery>,
) -> Result<Response, ApiError> {
    let format = q.format.unwrap_or_else(|| "json".into());
    if !matches!(format.as_str(), "json" | "csv" | "xlsx") {
        return Err(ApiError::field(FieldError::new("format", format!("{format:?} must be json, csv or xlsx"))));
    }
    let period = parse_period(&period)?;
    let s = state.remittances.statement(period).await?;
    let (body, content_type, ext) = match format.as_str() {
        "csv" => (render::csv(&s), CSV, "csv"),
        "xlsx" => (render::xlsx(&s).map_err(|e| ApiError::Internal(anyhow::anyhow!("xlsx: {e}")))?, XLSX, "xlsx"),
        _ => return Ok(Json(s).into_response()),
    };
    Ok(download(body, content_type, &format!("nop-ngan-sach-{period}.{ext}")))
}

/// The record of a transfer to the treasury.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    /// `2024-07`, `2024-W30` or `2024-07-15`.
    period: String,
    /// Whole đồng transferred.
    amount: i64,
    /// YYYY-MM-DD.
    transferred_on: String,
    /// The bank's or treasury's reference of the transfer.
    reference: String,
    #[serde(default)]
    note: String,
}

async fn request(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(b): ApiJson<RequestBody>,
) -> Result<Response, ApiError> {
    let req = Request {
        period: b.period,
        amount: b.amount,
        transferred_on: b.transferred_on,
        reference: b.reference,
        note: b.note,
    };
    let s = state.remittances.request(&req, &who.name).await?;
    Ok((StatusCode::CREATED, Json(s)).into_response())
}

/// An approval or rejection, with an optional note.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    note: Option<String>,
}

async fn decide(
    state: &AppState,
    who: &Principal,
    period: &str,
    approve: bool,
    b: DecideBody,
) -> Result<Response, ApiError> {
    let period = parse_period(period)?;
    let s = state.remittances.decide(period, approve, b.note.as_deref(), &who.name).await?;
    Ok(Json(s).into_response())
}

async fn approve(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(period): ApiPath<String>,
    ApiJson(b): ApiJson<DecideBody>,
) -> Result<Response, ApiError> {
    decide(&state, &who, &period, true, b).await
}

async fn reject(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(period): ApiPath<String>,
    ApiJson(b): ApiJson<DecideBody>,
) -> Result<Response, ApiError> {
    decide(&state, &who, &period, false, b).await
}
