//! E-receipts over HTTP (issue 18): every role reads a case's receipts and prints one; finance
//! replaces or adjusts a receipt; finance and auditors download the day's summary for the tax
//! office (Mẫu 01/TH-BLĐT) as JSON, CSV or XLSX.

use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::auth::Principal;
use super::cases::path_case_code;
use super::download::{CSV, XLSX, download};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use super::page::Page;
use super::routes::{Access, Route, bytes_schema};
use crate::domain::{BusinessDate, FieldError};
use crate::receipts::{AdjustRequest, ReceiptError, ReceiptView, ReplaceRequest, summary};

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/api/v1/cases/{case_code}/receipts",
            Access::AnyRole,
            "A case's e-receipts (originals, replacements, adjustments) with their status and signature.",
            get(for_case),
        )
        .query::<super::page::ListPage>()
        .json::<Page<ReceiptView>>(200, "The case's e-receipts, in issue order, paged."),
        Route::new(
            Method::GET,
            "/api/v1/receipts/summary",
            Access::FinanceAuditor,
            "The receipts issued on a date (?date=YYYY-MM-DD) as Mẫu 01/TH-BLĐT, ?format=json, csv or xlsx.",
            get(summary_of_date),
        )
        .query::<SummaryQuery>()
        .json_or::<summary::Summary>(200, "The summary: JSON, or CSV / XLSX as a download.", &[CSV, XLSX]),
        Route::new(Method::GET, "/api/v1/receipts/{receipt_id}", Access::AnyRole, "One e-receipt.", get(one))
            .json::<ReceiptView>(200, "The e-receipt."),
        Route::new(
            Method::GET,
            "/api/v1/receipts/{receipt_id}/print",
            Access::AnyRole,
            "The printable page of an e-receipt (HTML with a print stylesheet).",
            get(print),
        )
        .answer(200, "A self-contained HTML page.", vec![("text/html", bytes_schema("text/html"))]),
        Route::new(
            Method::POST,
            "/api/v1/receipts/{receipt_id}/replace",
            Access::Finance,
            "Issue the replacement of a receipt in force: {\"reason\", \"payer_name\"?} (TT 91/2026 Art. 20).",
            post(replace),
        )
        .json_body::<ReplaceRequest>()
        .json::<ReceiptView>(201, "The replacement receipt."),
        Route::new(
            Method::POST,
            "/api/v1/receipts/{receipt_id}/adjust",
            Access::Finance,
            "Issue an adjustment of a receipt in force: {\"reason\", \"items\": [{\"fee\", \"amount\"}]}, signed differences (a refund is negative).",
            post(adjust),
        )
        .json_body::<AdjustRequest>()
        .json::<ReceiptView>(201, "The adjustment receipt."),
    ]
}

impl From<ReceiptError> for ApiError {
    fn from(e: ReceiptError) -> Self {
        let m = e.to_string();
        match e {
            ReceiptError::NotFound(_) => ApiError::NotFound(m),
            ReceiptError::Invalid(_) => ApiError::InvalidField(m),
            ReceiptError::Conflict(_) => ApiError::Conflict { code: "conflict", message: m },
            ReceiptError::Internal(e) => ApiError::Internal(e),
        }
    }
}

async fn for_case(
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
    ApiQuery(q): ApiQuery<super::page::ListPage>,
) -> Result<Response, ApiError> {
    let code = path_case_code(&code)?;
    let page = q.page()?;
    if state.store.get_case(&code).await?.is_none() {
        return Err(ApiError::NotFound(format!("no case {code}")));
    }
    let items = state.receipts.for_case(&code).await?;
    Ok(Page::of_all(items, &page)?.into_response())
}

async fn one(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Response, ApiError> {
    Ok(Json(state.receipts.get(&id).await?).into_response())
}

async fn print(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Response, ApiError> {
    let html = state.receipts.page(&id).await?;
    let mut res = (StatusCode::OK, html).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // A self-contained page: nothing to load, nothing to run.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:"),
    );
    Ok(res)
}

async fn replace(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ReplaceRequest>,
) -> Result<Response, ApiError> {
    let v = state.receipts.replace(&id, &req, &who.name).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn adjust(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<AdjustRequest>,
) -> Result<Response, ApiError> {
    let v = state.receipts.adjust(&id, &req, &who.name).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct SummaryQuery {
    /// Required: YYYY-MM-DD.
    #[param(required = true)]
    date: Option<String>,
    /// `json` (default), `csv` or `xlsx`.
    format: Option<String>,
}

async fn summary_of_date(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SummaryQuery>,
) -> Result<Response, ApiError> {
    let raw = q.date.ok_or_else(|| ApiError::field(FieldError::new("date", "is required")))?;
    let date = BusinessDate::parse(&raw).map_err(|e| ApiError::field(FieldError::new("date", e)))?;
    let format = q.format.unwrap_or_else(|| "json".into());
    if !matches!(format.as_str(), "json" | "csv" | "xlsx") {
        return Err(ApiError::field(FieldError::new("format", format!("{format:?} must be json, csv or xlsx"))));
    }
    let s = state.receipts.summary(date).await?;
    let file = format!("01-TH-BLDT-{date}");
    let (body, content_type, ext) = match format.as_str() {
        "csv" => (summary::csv(&s), CSV, "csv"),
        "xlsx" => (summary::xlsx(&s).map_err(|e| ApiError::Internal(anyhow::anyhow!("xlsx: {e}")))?, XLSX, "xlsx"),
        _ => return Ok(Json(s).into_response()),
    };
    Ok(download(body, content_type, &format!("{file}.{ext}")))
}
