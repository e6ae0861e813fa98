//! `/exceptions`: the exceptions across dates, filtered by gateway, category, state and dates,
//! newest date first, a page at a time. Each links to its detail (`exception`).

use askama::Template;
use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::Value;

use super::i18n;
use super::page::{Layout, PageError, enc, render};
use super::session::Viewer;
use crate::domain::BusinessDate;
use crate::domain::recon::{Category, ExceptionState};
use crate::http::AppState;
use crate::http::routes::{Access, Route};
use crate::store::ExceptionFilter;

pub fn routes() -> Vec<Route> {
    vec![Route::new(
        Method::GET,
        "/exceptions",
        Access::PageStaff,
        "Dashboard: exceptions across dates (?gateway=&category=&state=&from=&to=), paged.",
        get(list),
    )]
}

/// Rows per page of the list.
const PAGE: i64 = 100;

struct ListRow {
    date: String,
    /// `YYYY-MM-DD`, for the cursor.
    iso_date: String,
    day_href: String,
    gateway: String,
    key: String,
    href: String,
    category: &'static str,
    case_code: String,
    txn_ref: String,
    amount: String,
    state: String,
    state_label: String,
    requested_by: String,
    stale: bool,
}

#[derive(Template)]
#[template(path = "dashboard/exceptions.html")]
struct ListPage {
    l: Layout,
    rows: Vec<ListRow>,
    next: Option<String>,
    gateways: Vec<(&'static str, String, bool)>,
    categories: Vec<(&'static str, &'static str, bool)>,
    states: Vec<(&'static str, String, bool)>,
    from: String,
    to: String,
}

#[derive(Deserialize, Default)]
struct ListQuery {
    gateway: Option<String>,
    category: Option<String>,
    state: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
}

fn bad(v: &Viewer, field: &str, e: impl std::fmt::Display) -> PageError {
    PageError::user(v, StatusCode::UNPROCESSABLE_ENTITY, &format!("{field}: {e}"))
}

fn opt_date(v: &Viewer, field: &str, s: Option<&str>) -> Result<Option<NaiveDate>, PageError> {
    s.map(|d| BusinessDate::parse(d).map(BusinessDate::naive).map_err(|e| bad(v, field, e))).transpose()
}

async fn list(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    req: Request,
) -> Result<Response, PageError> {
    let lang = v.lang;
    let t = lang.texts();
    let q: ListQuery = super::query(req.uri(), lang)?;
    let gateway = super::given(&q.gateway).map(|g| g.parse().map_err(|e| bad(&v, "gateway", e))).transpose()?;
    let category: Option<Category> =
        super::given(&q.category).map(|c| c.parse().map_err(|e| bad(&v, "category", e))).transpose()?;
    let st = super::given(&q.state).unwrap_or("unresolved");
    let state_filter = match st {
        "all" => None,
        "unresolved" => Some("unresolved".to_owned()),
        s => Some(s.parse::<ExceptionState>().map_err(|e| bad(&v, "state", e))?.as_str().to_owned()),
    };
    let from = opt_date(&v, "from", super::given(&q.from))?;
    let to = opt_date(&v, "to", super::given(&q.to))?;
    let after = match super::given(&q.after) {
        Some(a) => {
            let (d, id) = a.split_once('|').ok_or_else(|| bad(&v, "after", "must be DATE|ID"))?;
            Some((BusinessDate::parse(d).map_err(|e| bad(&v, "after", e))?.naive(), id.to_owned()))
        }
        None => None,
    };
    let filter = ExceptionFilter { gateway, category, state: state_filter, from, to };
    let page = state
        .finance
        .exception_list(&filter, after.as_ref().map(|(d, id)| (*d, id.as_str())), PAGE + 1)
        .await
        .map_err(|e| PageError::finance(&v, e))?;
    let more = i64::try_from(page.len()).unwrap_or(i64::MAX) > PAGE;
    let rows: Vec<ListRow> = page
        .into_iter()
        .take(usize::try_from(PAGE).unwrap_or(usize::MAX))
        .map(|r| {
            let e = &r.exception;
            let requested = e
                .resolution
                .as_deref()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .and_then(|j| j["requested_by"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let amount = if r.line_status.is_some() { r.settled_amount } else { r.recorded_amount };
            ListRow {
                date: i18n::date(e.business_date),
                iso_date: e.business_date.to_string(),
                day_href: format!("/days/{}?gateway={}", e.business_date, e.gateway),
                gateway: i18n::word(lang, e.gateway.as_str()),
                key: e.exception_id.clone(),
                href: format!("/exceptions/{}", enc(&e.exception_id)),
                category: i18n::category(lang, e.category),
                case_code: r.case_code.clone().unwrap_or_default(),
                txn_ref: r.txn_ref.clone().unwrap_or_default(),
                amount: lang.money_opt(amount),
                state: e.state.as_str().to_owned(),
                state_label: i18n::word(lang, e.state.as_str()),
                requested_by: requested,
                stale: !r.in_latest_run,
            }
        })
        .collect();
    let mut query = vec![("state", st.to_owned())];
    for (k, val) in [("gateway", &q.gateway), ("category", &q.category), ("from", &q.from), ("to", &q.to)] {
        if let Some(x) = super::given(val) {
            query.push((k, x.to_owned()));
        }
    }
    let next = match (more, rows.last()) {
        (true, Some(last)) => {
            query.push(("after", format!("{}|{}", last.iso_date, last.key)));
            Some(format!("/exceptions?{}", serde_urlencoded::to_string(&query).unwrap_or_default()))
        }
        _ => None,
    };
    let page = ListPage {
        l: Layout::of(&v, "exceptions", t.exceptions_title),
        rows,
        next,
        gateways: crate::domain::payment::Gateway::ALL
            .iter()
            .map(|g| (g.as_str(), i18n::word(lang, g.as_str()), gateway == Some(*g)))
            .collect(),
        categories: Category::ALL
            .iter()
            .filter(|c| **c != Category::Matched)
            .map(|c| (c.as_str(), i18n::category(lang, *c), category == Some(*c)))
            .collect(),
        states: std::iter::once("unresolved")
            .chain(ExceptionState::ALL.iter().map(|s| s.as_str()))
            .chain(std::iter::once("all"))
            .map(|s| {
                let label = match s {
                    "unresolved" => t.unresolved.to_owned(),
                    "all" => t.all.to_owned(),
                    other => i18n::word(lang, other),
                };
                (s, label, s == st)
            })
            .collect(),
        from: q.from.unwrap_or_default(),
        to: q.to.unwrap_or_default(),
    };
    Ok(render(StatusCode::OK, &page))
}
