//! `/receipts/summary?date=D`: the day's receipt summary for the tax office (Mẫu 01/TH-BLĐT,
//! issue 18) for people: its rows in the form's columns, its totals, the numbering of each
//! sequence, its check against the ledger, and the same files the API and the CLI give (CSV,
//! XLSX, JSON). For finance users and auditors only, as the API (`Access::PageFinanceAuditor`).
//! Built by the receipts service (`crate::receipts::summary`); nothing is computed here.

use askama::Template;
use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::i18n::{self, Lang};
use super::page::{Layout, PageError, render};
use super::receipts::page_error;
use super::session::Viewer;
use crate::domain::BusinessDate;
use crate::http::AppState;
use crate::http::routes::{Access, Route};
use crate::receipts::summary;

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/receipts/summary",
            Access::PageFinanceAuditor,
            "Dashboard: the receipts issued on a date (?date=YYYY-MM-DD, default today) as Mẫu 01/TH-BLĐT, with its check against the ledger.",
            get(view),
        ),
        Route::new(
            Method::GET,
            "/receipts/summary/file",
            Access::PageFinanceAuditor,
            "Dashboard: download the day's receipt summary (?date=, ?format=csv, xlsx or json): the API's bytes.",
            get(file),
        ),
    ]
}

#[derive(Deserialize, Default)]
struct DayQuery {
    date: Option<String>,
    format: Option<String>,
}

/// The date asked for (today at +07:00 when none), or a 422 page naming the field.
fn date_of(state: &AppState, v: &Viewer, q: &DayQuery) -> Result<BusinessDate, PageError> {
    match super::given(&q.date) {
        None => Ok(BusinessDate::of(state.clock.now())),
        Some(d) => BusinessDate::parse(d)
            .map_err(|e| PageError::user(v, StatusCode::UNPROCESSABLE_ENTITY, &format!("date: {e}"))),
    }
}

/// The form's status wording in the viewer's language (the form itself is Vietnamese).
fn status_label(lang: Lang, vi: &'static str) -> &'static str {
    match (lang, vi) {
        (Lang::Vi, _) => vi,
        (Lang::En, "Mới") => "New",
        (Lang::En, "Thay thế") => "Replacement",
        (Lang::En, "Điều chỉnh") => "Adjustment",
        (Lang::En, "Đã bị thay thế") => "Replaced",
        (Lang::En, "Đã bị điều chỉnh") => "Adjusted",
        (Lang::En, other) => other,
    }
}

struct Row {
    stt: usize,
    href: String,
    template: String,
    symbol: String,
    number: i64,
    date: String,
    fee_types: String,
    amount: String,
    status: &'static str,
    status_wire: &'static str,
    adjusted_period: String,
    related: String,
    explanation: String,
    note: String,
}

struct Sequence {
    name: String,
    first: i64,
    last: i64,
    count: usize,
    contiguous: bool,
}

#[derive(Template)]
#[template(path = "dashboard/receipt_summary.html")]
struct SummaryPage {
    l: Layout,
    date: String,
    date_shown: String,
    collector: String,
    rows: Vec<Row>,
    receipts: usize,
    originals: String,
    adjustments: String,
    confirmations: i64,
    collected: String,
    matches: bool,
    numbering: Vec<Sequence>,
    csv: String,
    xlsx: String,
    json: String,
}

async fn view(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    req: Request,
) -> Result<Response, PageError> {
    let lang = v.lang;
    let q: DayQuery = super::query(req.uri(), lang)?;
    let date = date_of(&state, &v, &q)?;
    let s = state.receipts.summary(date).await.map_err(|e| page_error(&v, e))?;
    let rows = s
        .rows
        .iter()
        .map(|r| Row {
            stt: r.stt,
            href: format!("/receipts/{}", super::page::enc(&r.receipt_id)),
            template: r.template.clone(),
            symbol: r.symbol.clone(),
            number: r.number,
            date: i18n::date(r.issue_date.naive()),
            fee_types: r.fee_types.clone(),
            amount: lang.money(r.amount),
            status: status_label(lang, r.status_label),
            status_wire: r.status.as_str(),
            adjusted_period: r.adjusted_period.map(|d| i18n::date(d.naive())).unwrap_or_default(),
            related: r.related.clone().unwrap_or_default(),
            explanation: r.explanation.clone().unwrap_or_default(),
            note: r.note.clone().unwrap_or_default(),
        })
        .collect();
    let file = |format: &str| format!("/receipts/summary/file?date={date}&format={format}");
    let page = SummaryPage {
        l: Layout::of(&v, "receipts", format!("{} {}", summary::FORM, i18n::date(date.naive()))),
        date: date.to_string(),
        date_shown: i18n::date(date.naive()),
        collector: format!("{} · MST {}", s.collector.name, s.collector.tax_code),
        rows,
        receipts: s.totals.receipts,
        originals: lang.money(s.totals.originals),
        adjustments: lang.money(s.totals.adjustments),
        confirmations: s.ledger.confirmations,
        collected: lang.money(s.ledger.collected),
        matches: s.ledger.matches,
        numbering: s
            .numbering
            .iter()
            .map(|n| Sequence {
                name: format!("{} / {} ({})", n.template, n.symbol, n.year),
                first: n.first,
                last: n.last,
                count: n.count,
                contiguous: n.contiguous,
            })
            .collect(),
        csv: file("csv"),
        xlsx: file("xlsx"),
        json: file("json"),
    };
    Ok(render(StatusCode::OK, &page))
}

async fn file(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    req: Request,
) -> Result<Response, PageError> {
    let q: DayQuery = super::query(req.uri(), v.lang)?;
    let date = date_of(&state, &v, &q)?;
    let format = super::given(&q.format).unwrap_or("xlsx").to_owned();
    if !matches!(format.as_str(), "json" | "csv" | "xlsx") {
        let m = format!("format: {format:?} must be json, csv or xlsx");
        return Err(PageError::user(&v, StatusCode::UNPROCESSABLE_ENTITY, &m));
    }
    let s = state.receipts.summary(date).await.map_err(|e| page_error(&v, e))?;
    let (body, content_type) = match format.as_str() {
        "csv" => (summary::csv(&s), "text/csv; charset=utf-8"),
        "xlsx" => (
            summary::xlsx(&s).map_err(|e| PageError::internal(v.lang, anyhow::anyhow!("xlsx: {e}")).with(&v))?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        _ => {
            let bytes = serde_json::to_vec(&s)
                .map_err(|e| PageError::internal(v.lang, anyhow::anyhow!("json: {e}")).with(&v))?;
            (bytes, "application/json")
        }
    };
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(d) = HeaderValue::from_str(&format!("attachment; filename=\"01-TH-BLDT-{date}.{format}\"")) {
        h.insert(header::CONTENT_DISPOSITION, d);
    }
    Ok(res)
}
