//! Finance over HTTP (SPEC §4.2, §7): settlement files, reconciliation runs and reports,
//! exceptions, day closing, and the day view of waived and budget-covered cases.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema};
use utoipa::{IntoParams, PartialSchema as _, ToSchema};

use super::AppState;
use super::auth::Principal;
use super::download::{CSV, XLSX, download};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use super::page::{Page, PageQuery};
use super::routes::{Access, Route, bytes_schema};
use crate::domain::payment::Gateway;
use crate::domain::{BusinessDate, FieldError, Timestamp};
use crate::recon::{DayView, FinanceError, exception_view};
use crate::reconcile::render;
use crate::reconcile::report::Report;
use crate::store::ItemRow;

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::POST,
            "/api/v1/settlements",
            Access::Finance,
            "Import a settlement file (?gateway=G&profile=P&name=FILE with the raw CSV body, or multipart gateway/profile/file).",
            post(upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .query::<UploadQuery>()
        .raw_body(vec![
            ("text/csv", bytes_schema("text/csv")),
            ("application/octet-stream", bytes_schema("application/octet-stream")),
            ("multipart/form-data", multipart_schema()),
        ])
        .json::<ImportedFile>(201, "Imported: the file's id, SHA-256 and line count."),
        Route::new(
            Method::GET,
            "/api/v1/settlements",
            Access::Staff,
            "Imported settlement files with their hashes, in import order (?gateway=G), paged (?cursor=&limit=).",
            get(files),
        )
        .query::<FilesQuery>()
        .json::<Page<FileView>>(200, "The imported files, oldest first."),
        Route::new(
            Method::GET,
            "/api/v1/settlements/{file_id}",
            Access::Staff,
            "A settlement file's exact bytes.",
            get(file_bytes),
        )
        .answer(200, "The file's bytes as imported; its SHA-256 in the X-Content-SHA256 header.", vec![(
            "application/octet-stream",
            bytes_schema("application/octet-stream"),
        )]),
        Route::new(
            Method::POST,
            "/api/v1/reconciliations",
            Access::Finance,
            "Run a (date, gateway): 201 with the report, 200 with the stored one when the day is closed.",
            post(run),
        )
        .json_body::<RunBody>()
        .json::<Report>(201, "A new run's report.")
        .json::<Report>(200, "The closed day's stored report."),
        Route::new(
            Method::GET,
            "/api/v1/reconciliations/{date}",
            Access::Staff,
            "The latest report of a (date, ?gateway=G) as ?format=json, csv (every item) or xlsx.",
            get(report),
        )
        .query::<ReportQuery>()
        .json_or::<Report>(
            200,
            "The report: JSON (format=json), every item as CSV (format=csv) or a workbook (format=xlsx), as a download.",
            &[CSV, XLSX],
        ),
        Route::new(
            Method::GET,
            "/api/v1/reconciliations/{date}/items",
            Access::Staff,
            "A run's items (?gateway=G&category=C), paged with a cursor.",
            get(items),
        )
        .query::<ItemsQuery>()
        .json::<Page<ItemRow>>(200, "A page of the run's items."),
        Route::new(
            Method::POST,
            "/api/v1/exceptions/{id}/resolve",
            Access::Finance,
            "Resolve an exception.",
            post(resolve),
        )
        .json_body::<ResolveBody>()
        .json::<ExceptionView>(200, "The exception, resolved or waiting for another finance user's approval."),
        Route::new(
            Method::POST,
            "/api/v1/exceptions/{id}/approve",
            Access::Finance,
            "Approve a pending resolution (another finance user).",
            post(approve),
        )
        .optional_json_body::<DecideBody>()
        .json::<ExceptionView>(200, "The exception, resolved."),
        Route::new(
            Method::POST,
            "/api/v1/exceptions/{id}/reject",
            Access::Finance,
            "Reject a pending resolution (another finance user).",
            post(reject),
        )
        .optional_json_body::<DecideBody>()
        .json::<ExceptionView>(200, "The exception, open again."),
        Route::new(
            Method::POST,
            "/api/v1/days/{date}/close",
            Access::Finance,
            "Close a (date, gateway): posts its settlement.",
            post(close),
        )
        .json_body::<CloseBody>()
        .json::<Report>(200, "The closed day's report."),
        Route::new(
            Method::GET,
            "/api/v1/days/{date}",
            Access::Staff,
            "A date: waived and budget-covered cases, runs and closures.",
            get(day),
        )
        .json::<DayView>(200, "The date across gateways."),
    ]
}

impl From<FinanceError> for ApiError {
    fn from(e: FinanceError) -> Self {
        let m = e.to_string();
        match e {
            FinanceError::Invalid(_) | FinanceError::File { .. } => ApiError::InvalidField(m),
            FinanceError::NotFound(_) => ApiError::NotFound(m),
            FinanceError::Duplicate(_) | FinanceError::Conflict(_) => {
                ApiError::Conflict { code: "conflict", message: m }
            }
            FinanceError::DayClosed(_) => ApiError::Conflict { code: "day_closed", message: m },
            FinanceError::DayNotOver(_) => ApiError::Conflict { code: "day_not_over", message: m },
            FinanceError::StaleRun(_) => ApiError::Conflict { code: "stale_run", message: m },
            FinanceError::FourEyes(_) => ApiError::FourEyes(m),
            FinanceError::Internal(e) => ApiError::Internal(e),
        }
    }
}

fn parse_gateway(v: Option<&str>) -> Result<Gateway, ApiError> {
    let v = v.ok_or_else(|| ApiError::field(FieldError::new("gateway", "is required")))?;
    v.parse().map_err(|e| ApiError::field(FieldError::new("gateway", e)))
}

fn parse_date(v: &str) -> Result<BusinessDate, ApiError> {
    BusinessDate::parse(v).map_err(|e| ApiError::field(FieldError::new("date", e)))
}

/// Where the raw body's file comes from (multipart fields of the same names win).
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    gateway: Option<String>,
    profile: Option<String>,
    name: Option<String>,
}

async fn upload(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let limit = state.config.max_upload;
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let too_large =
        || ApiError::PayloadTooLarge(format!("the file is larger than FEERECON_MAX_UPLOAD ({limit} bytes)"));
    let (gateway, profile, name, bytes) = if is_multipart {
        let mut mp = Multipart::from_request(req, &state).await.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
        let (mut g, mut p, mut n, mut b) = (q.gateway, q.profile, q.name, None::<Bytes>);
        while let Some(field) = mp.next_field().await.map_err(|e| ApiError::InvalidRequest(e.body_text()))? {
            let fname = field.name().unwrap_or("").to_owned();
            let file_name = field.file_name().map(str::to_owned);
            let data = field.bytes().await.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
            if data.len() > limit {
                return Err(too_large());
            }
            match fname.as_str() {
                "gateway" => g = Some(String::from_utf8_lossy(&data).into_owned()),
                "profile" => p = Some(String::from_utf8_lossy(&data).into_owned()),
                "name" => n = Some(String::from_utf8_lossy(&data).into_owned()),
                "file" => {
                    n = n.or(file_name);
                    b = Some(data);
                }
                other => return Err(ApiError::field(FieldError::new(other, "unknown multipart field"))),
            }
        }
        (g, p, n, b.ok_or_else(|| ApiError::field(FieldError::new("file", "is required")))?)
    } else {
        let bytes = axum::body::to_bytes(req.into_body(), limit).await.map_err(|_| too_large())?;
        (q.gateway, q.profile, q.name, bytes)
    };
    let gateway = parse_gateway(gateway.as_deref())?;
    let profile = profile.ok_or_else(|| ApiError::field(FieldError::new("profile", "is required")))?;
    let name = name.unwrap_or_else(|| "settlement.csv".into());
    let file = state.finance.import(gateway, &profile, &name, &bytes, &who.name, &|_| {}).await?;
    let body = ImportedFile { file_id: file.file_id, name: file.name, sha256: file.sha256, lines: file.line_count };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// An imported settlement file.
#[derive(Serialize, ToSchema)]
struct ImportedFile {
    file_id: String,
    name: String,
    /// Hex SHA-256 of the bytes: the same bytes are refused the second time.
    sha256: String,
    /// Transaction lines (the header not counted).
    lines: i64,
}

/// A settlement file as listed.
#[derive(Serialize, ToSchema)]
struct FileView {
    file_id: String,
    gateway: Gateway,
    profile: String,
    name: String,
    sha256: String,
    lines: i64,
    imported_at: Timestamp,
    imported_by: String,
}

/// The multipart form of an upload: `gateway`, `profile`, optional `name`, and `file`.
fn multipart_schema() -> RefOr<Schema> {
    RefOr::T(Schema::Object(
        ObjectBuilder::new()
            .property("gateway", String::schema())
            .property("profile", String::schema())
            .property("name", String::schema())
            .property("file", bytes_schema("application/octet-stream"))
            .required("file")
            .build(),
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct FilesQuery {
    /// Only this gateway's files.
    gateway: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    limit: Option<String>,
}

async fn files(State(state): State<AppState>, ApiQuery(q): ApiQuery<FilesQuery>) -> Result<Response, ApiError> {
    let gateway = q.gateway.as_deref().map(|g| parse_gateway(Some(g))).transpose()?;
    let q = PageQuery::new(q.cursor, q.limit.as_deref())?;
    let rows = state.store.settlement_files_page(gateway, q.cursor(), q.fetch()).await?;
    if q.names_no_row(&rows) {
        return Err(q.unknown_cursor());
    }
    let page = Page::from_rows(rows, &q, |f| f.file_id.clone()).map(|f| FileView {
        file_id: f.file_id,
        gateway: f.gateway,
        profile: f.profile,
        name: f.name,
        sha256: f.sha256,
        lines: f.line_count,
        imported_at: Timestamp::at(f.imported_at),
        imported_by: f.imported_by,
    });
    Ok(page.into_response())
}

async fn file_bytes(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Response, ApiError> {
    let (f, bytes) = state.finance.file(&id).await?;
    let mut res = (StatusCode::OK, bytes).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if let Ok(v) = HeaderValue::from_str(&f.sha256) {
        h.insert("x-content-sha256", v);
    }
    Ok(res)
}

/// Which (date, gateway) to run.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RunBody {
    /// YYYY-MM-DD.
    date: String,
    gateway: String,
}

async fn run(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(b): ApiJson<RunBody>,
) -> Result<Response, ApiError> {
    let date = parse_date(&b.date)?;
    let gateway = parse_gateway(Some(&b.gateway))?;
    let view = state.finance.run(date.naive(), gateway, &who.name).await?;
    Ok((if view.new { StatusCode::CREATED } else { StatusCode::OK }, Json(view.report)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// Required: `vnpay`, `momo`, `zalopay` or `dvcqg`.
    #[param(required = true)]
    gateway: Option<String>,
    /// `json` (default), `csv` or `xlsx`.
    format: Option<String>,
}

async fn report(
    State(state): State<AppState>,
    ApiPath(date): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    let date = parse_date(&date)?;
    let gateway = parse_gateway(q.gateway.as_deref())?;
    let view = state.finance.report(date.naive(), gateway).await?;
    let file = format!("doi-soat-{}-{gateway}", date);
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(view.report).into_response()),
        "xlsx" => {
            let bytes = render::xlsx(&view.report).map_err(|e| ApiError::Internal(anyhow::anyhow!("xlsx: {e}")))?;
            Ok(download(bytes, XLSX, &format!("{file}.xlsx")))
        }
        "csv" => {
            // Every item, streamed page by page.
            let pages = state.finance.csv(date.naive(), gateway).await?;
            let stream = futures_util::stream::unfold(pages, |mut pages| async move {
                match pages.next().await {
                    Ok(Some(chunk)) => Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), pages)),
                    Ok(None) => None,
                    Err(e) => Some((Err(std::io::Error::other(e.to_string())), pages)),
                }
            });
            Ok(download(Body::from_stream(stream), CSV, &format!("{file}.csv")))
        }
        other => Err(ApiError::field(FieldError::new("format", format!("{other:?} must be json, csv or xlsx")))),
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ItemsQuery {
    /// Required: the run's gateway.
    #[param(required = true)]
    gateway: Option<String>,
    /// Only items of this category (`matched`, `missing_in_settlement`, ...).
    category: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    limit: Option<String>,
}

async fn items(
    State(state): State<AppState>,
    ApiPath(date): ApiPath<String>,
    ApiQuery(q): ApiQuery<ItemsQuery>,
) -> Result<Response, ApiError> {
    let date = parse_date(&date)?;
    let gateway = parse_gateway(q.gateway.as_deref())?;
    let category: Option<crate::domain::recon::Category> = match &q.category {
        Some(c) => Some(c.parse().map_err(|e| ApiError::field(FieldError::new("category", e)))?),
        None => None,
    };
    let page = PageQuery::new(q.cursor, q.limit.as_deref())?;
    let view = state.finance.report(date.naive(), gateway).await?;
    let rows = state.finance.items(&view.run.run_id, category, page.cursor(), page.fetch()).await?;
    Ok(Page::from_rows(rows, &page, |i| i.item_key.clone()).into_response())
}

/// A resolution (SPEC §7.3).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    /// What to do: `refund`, `write_off`, `confirm_from_settlement` or `accept`.
    #[schema(value_type = crate::domain::recon::Action)]
    action: String,
    /// Up to 2000 characters.
    #[serde(default)]
    note: String,
    /// The case a `missing_in_records` line pays, for `confirm_from_settlement`.
    #[serde(default)]
    case_code: Option<String>,
}

/// An exception as the API answers it.
#[derive(Serialize, ToSchema)]
struct ExceptionView {
    id: String,
    gateway: Gateway,
    /// YYYY-MM-DD.
    business_date: String,
    category: crate::domain::recon::Category,
    state: crate::domain::recon::ExceptionState,
    /// The action requested or applied, with its note, actor, approver and times; `null` while open.
    resolution: serde_json::Value,
    updated_at: Timestamp,
}

fn exception_json(e: &crate::store::ExceptionRow) -> ExceptionView {
    ExceptionView {
        id: e.exception_id.clone(),
        gateway: e.gateway,
        business_date: e.business_date.format("%Y-%m-%d").to_string(),
        category: e.category,
        state: e.state,
        resolution: exception_view(e),
        updated_at: Timestamp::at(e.updated_at),
    }
}

async fn resolve(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ResolveBody>,
) -> Result<Response, ApiError> {
    if b.note.chars().count() > 2000 {
        return Err(ApiError::field(FieldError::new("note", "is longer than 2000 characters")));
    }
    let e = state.finance.resolve(&id, &b.action, &b.note, b.case_code.as_deref(), &who.name).await?;
    Ok(Json(exception_json(&e)).into_response())
}

/// An approval or rejection: an optional note (the body may be empty).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    #[serde(default)]
    note: Option<String>,
}

async fn decide(state: AppState, who: Principal, id: String, body: Bytes, approve: bool) -> Result<Response, ApiError> {
    let b: DecideBody = if body.is_empty() { DecideBody::default() } else { super::error::parse_json(&body)? };
    let e = state.finance.decide(&id, approve, b.note.as_deref(), &who.name).await?;
    Ok(Json(exception_json(&e)).into_response())
}

async fn approve(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    decide(state, who, id, body, true).await
}

async fn reject(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    decide(state, who, id, body, false).await
}

/// Which gateway's date to close.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CloseBody {
    gateway: String,
}

async fn close(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(date): ApiPath<String>,
    ApiJson(b): ApiJson<CloseBody>,
) -> Result<Response, ApiError> {
    let date = parse_date(&date)?;
    let gateway = parse_gateway(Some(&b.gateway))?;
    let view = state.finance.close(date.naive(), gateway, &who.name).await?;
    Ok(Json(view.report).into_response())
}

async fn day(State(state): State<AppState>, ApiPath(date): ApiPath<String>) -> Result<Response, ApiError> {
    let date = parse_date(&date)?;
    Ok(Json(state.finance.day(date.naive()).await?).into_response())
}
