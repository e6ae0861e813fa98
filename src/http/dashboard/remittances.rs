//! `/remittances`: treasury remittance for people (issue 19): every period with what it owes,
//! its deadline and where it stands, the statement to download (CSV, XLSX), and for finance the
//! four-eyes forms: request the record of a transfer, approve or reject another user's request.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::i18n::{self, Lang};
use super::page::{Layout, PageError, enc, render};
use super::session::{CsrfForm, Viewer};
use crate::domain::BusinessDate;
use crate::http::AppState;
use crate::http::download::{CSV, XLSX, download};
use crate::http::routes::{Access, Route};
use crate::remittance::{ListFilter, RemittanceError, Request as RemitRequest, parse_period, render as files};

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/remittances",
            Access::PageStaff,
            "Dashboard: remittance periods with due, remitted, outstanding, late; finance's four-eyes forms.",
            get(list),
        ),
        Route::new(
            Method::POST,
            "/remittances",
            Access::PageFinance,
            "Dashboard: request the record of a period's transfer to the treasury.",
            post(request),
        ),
        Route::new(
            Method::GET,
            "/remittances/{period}/statement",
            Access::PageStaff,
            "Dashboard: download a period's remittance statement (?format=csv or xlsx).",
            get(statement),
        ),
        Route::new(
            Method::POST,
            "/remittances/{period}/approve",
            Access::PageFinance,
            "Dashboard: approve a period's pending remittance (another finance user).",
            post(approve),
        ),
        Route::new(
            Method::POST,
            "/remittances/{period}/reject",
            Access::PageFinance,
            "Dashboard: reject a period's pending remittance (another finance user).",
            post(reject),
        ),
    ]
}

struct Row {
    period: String,
    kind: String,
    span: String,
    deposit_by: String,
    due: String,
    due_dong: i64,
    remitted: String,
    outstanding: String,
    state: String,
    late: bool,
    csv: String,
    xlsx: String,
    /// Finance may request it: over, money due, nothing pending or recorded.
    can_request: bool,
    /// A request awaits a decision.
    pending: bool,
    approve: String,
    reject: String,
    today: String,
}

#[derive(Template)]
#[template(path = "dashboard/remittances.html")]
struct ListPage {
    l: Layout,
    rows: Vec<Row>,
    can_act: bool,
    csrf: String,
    flash: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct ListQuery {
    done: Option<String>,
}

fn status_of(lang: Lang, e: RemittanceError) -> (StatusCode, String) {
    let m = e.to_string();
    match e {
        RemittanceError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, m),
        RemittanceError::NotFound(_) => (StatusCode::NOT_FOUND, m),
        RemittanceError::Conflict(_) => (StatusCode::CONFLICT, m),
        RemittanceError::FourEyes(_) => (StatusCode::FORBIDDEN, m),
        RemittanceError::Internal(e) => {
            tracing::error!(error.cause_chain = ?e, error.message = %e, "dashboard request failed");
            (StatusCode::INTERNAL_SERVER_ERROR, lang.texts().internal_error.to_owned())
        }
    }
}

fn page_error(v: &Viewer, e: RemittanceError) -> PageError {
    let (status, m) = status_of(v.lang, e);
    PageError::user(v, status, &m)
}

async fn list_page(
    state: &AppState,
    v: &Viewer,
    q: &ListQuery,
    error: Option<(StatusCode, String)>,
) -> Result<Response, PageError> {
    let lang = v.lang;
    let t = lang.texts();
    let periods = state.remittances.list(ListFilter::default()).await.map_err(|e| page_error(v, e))?;
    let today = BusinessDate::of(state.clock.now()).naive();
    let rows = periods
        .iter()
        .rev()
        .map(|p| {
            let key = enc(&p.period.to_string());
            Row {
                period: p.period.to_string(),
                kind: i18n::word(lang, p.period_kind.as_str()),
                span: format!("{} – {}", i18n::date(p.from), i18n::date(p.to)),
                deposit_by: i18n::date(p.deposit_by),
                due: lang.money(p.standing.due),
                due_dong: p.standing.due,
                remitted: lang.money(p.standing.remitted),
                outstanding: lang.money(p.standing.outstanding),
                state: i18n::word(lang, p.state),
                late: p.standing.late,
                csv: format!("/remittances/{key}/statement?format=csv"),
                xlsx: format!("/remittances/{key}/statement?format=xlsx"),
                can_request: p.state == "open" && p.to < today && p.standing.due > 0,
                pending: p.state == "pending_approval",
                approve: format!("/remittances/{key}/approve"),
                reject: format!("/remittances/{key}/reject"),
                today: today.to_string(),
            }
        })
        .collect();
    let (status, error) = match error {
        Some((s, m)) => (s, Some(m)),
        None => (StatusCode::OK, None),
    };
    let flash = match super::given(&q.done) {
        Some("requested") => Some(t.done_requested),
        Some("approved") => Some(t.done_recorded),
        Some("rejected") => Some(t.done_remittance_rejected),
        _ => None,
    };
    let page = ListPage {
        l: Layout::of(v, "remittances", t.remittances_title),
        rows,
        can_act: v.can_act(),
        csrf: v.csrf().to_owned(),
        flash,
        error,
    };
    Ok(render(status, &page))
}

async fn list(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    req: Request,
) -> Result<Response, PageError> {
    let q: ListQuery = super::query(req.uri(), v.lang)?;
    list_page(&state, &v, &q, None).await
}

#[derive(Deserialize)]
struct StatementQuery {
    format: Option<String>,
}

async fn statement(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(period): Path<String>,
    req: Request,
) -> Result<Response, PageError> {
    let q: StatementQuery = super::query(req.uri(), v.lang)?;
    let period = parse_period(&period).map_err(|e| page_error(&v, e))?;
    let s = state.remittances.statement(period).await.map_err(|e| page_error(&v, e))?;
    let (bytes, content_type, ext) = match q.format.as_deref().unwrap_or("xlsx") {
        "csv" => (files::csv(&s), CSV, "csv"),
        "xlsx" => (
            files::xlsx(&s).map_err(|e| PageError::internal(v.lang, anyhow::anyhow!("xlsx: {e}")).with(&v))?,
            XLSX,
            "xlsx",
        ),
        other => {
            return Err(PageError::user(
                &v,
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("format: {other:?} must be csv or xlsx"),
            ));
        }
    };
    Ok(download(bytes, content_type, &format!("nop-ngan-sach-{period}.{ext}")))
}

#[derive(Deserialize)]
struct RequestForm {
    period: String,
    amount: String,
    transferred_on: String,
    reference: String,
    #[serde(default)]
    note: String,
}

async fn request(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    CsrfForm(f): CsrfForm<RequestForm>,
) -> Result<Response, PageError> {
    let Ok(amount) = f.amount.trim().parse::<i64>() else {
        let err = (StatusCode::UNPROCESSABLE_ENTITY, "amount: must be a whole number of đồng".to_owned());
        return list_page(&state, &v, &ListQuery::default(), Some(err)).await;
    };
    let req = RemitRequest {
        period: f.period,
        amount,
        transferred_on: f.transferred_on,
        reference: f.reference,
        note: f.note,
    };
    match state.remittances.request(&req, &v.name).await {
        Ok(_) => Ok(Redirect::to("/remittances?done=requested").into_response()),
        Err(e) => list_page(&state, &v, &ListQuery::default(), Some(status_of(v.lang, e))).await,
    }
}

#[derive(Deserialize)]
struct DecideForm {
    #[serde(default)]
    note: String,
}

async fn decide(
    state: &AppState,
    v: &Viewer,
    period: &str,
    approve: bool,
    f: DecideForm,
) -> Result<Response, PageError> {
    let period = parse_period(period).map_err(|e| page_error(v, e))?;
    let note = super::given(&Some(f.note)).map(str::to_owned);
    match state.remittances.decide(period, approve, note.as_deref(), &v.name).await {
        Ok(_) => {
            let done = if approve { "approved" } else { "rejected" };
            Ok(Redirect::to(&format!("/remittances?done={done}")).into_response())
        }
        Err(e) => list_page(state, v, &ListQuery::default(), Some(status_of(v.lang, e))).await,
    }
}

async fn approve(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(period): Path<String>,
    CsrfForm(f): CsrfForm<DecideForm>,
) -> Result<Response, PageError> {
    decide(&state, &v, &period, true, f).await
}

async fn reject(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(period): Path<String>,
    CsrfForm(f): CsrfForm<DecideForm>,
) -> Result<Response, PageError> {
    decide(&state, &v, &period, false, f).await
}
