//! `/days/{date}?gateway=G`: one business date of one gateway. Summary cards per category
//! (counts and amounts), a bar chart of amounts by category, the totals (by fee kind, gateway
//! fees, refunds), the waived and budget-covered cases of the date, and the exceptions with
//! filters. Finance runs the reconciliation (a job with progress) and closes the day here; every
//! role downloads the report as CSV or XLSX (text neutralised against formulas, as the reports
//! are).

use askama::Template;
use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::NaiveDate;
use serde::Deserialize;

use super::chart::{self, BarChart};
use super::i18n::{self, Lang};
use super::jobs::JobKind;
use super::page::{Layout, PageError, enc, render};
use super::session::{CsrfForm, Viewer};
use crate::domain::BusinessDate;
use crate::domain::payment::{Gateway, PaymentStatus};
use crate::domain::recon::{Category, ExceptionState};
use crate::http::AppState;
use crate::http::download::{CSV, XLSX, download};
use crate::http::routes::{Access, Route};
use crate::recon::{FinanceError, RunView};
use crate::reconcile::render;

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/days/{date}",
            Access::PageStaff,
            "Dashboard: a business date of a gateway (?gateway=G&category=C&state=S).",
            get(day),
        ),
        Route::new(
            Method::POST,
            "/days/{date}/run",
            Access::PageFinance,
            "Dashboard: run the reconciliation of a (date, gateway) (form: gateway); shows its progress.",
            post(run),
        ),
        Route::new(
            Method::POST,
            "/days/{date}/close",
            Access::PageFinance,
            "Dashboard: close a (date, gateway) (form: gateway).",
            post(close),
        ),
        Route::new(
            Method::GET,
            "/days/{date}/report.csv",
            Access::PageStaff,
            "Dashboard: the report of a (date, ?gateway=G) as CSV (every item).",
            get(report_csv),
        ),
        Route::new(
            Method::GET,
            "/days/{date}/report.xlsx",
            Access::PageStaff,
            "Dashboard: the report of a (date, ?gateway=G) as XLSX.",
            get(report_xlsx),
        ),
    ]
}

/// How many waived and budget-covered cases the day view lists.
const NO_GATEWAY_ROWS: i64 = 50;
/// How many exceptions the day view lists (the exception list pages through the rest).
const EXCEPTION_ROWS: usize = 500;

pub fn parse_date(v: &Viewer, s: &str) -> Result<NaiveDate, PageError> {
    BusinessDate::parse(s)
        .map(BusinessDate::naive)
        .map_err(|e| PageError::user(v, StatusCode::UNPROCESSABLE_ENTITY, &format!("date: {e}")))
}

pub fn parse_gateway(v: &Viewer, s: Option<&str>) -> Result<Gateway, PageError> {
    match s {
        None => Ok(Gateway::ALL[0]),
        Some(g) => {
            g.parse().map_err(|e| PageError::user(v, StatusCode::UNPROCESSABLE_ENTITY, &format!("gateway: {e}")))
        }
    }
}

struct Tab {
    label: String,
    href: String,
    on: bool,
    class: &'static str,
    state: String,
}

struct Card {
    class: &'static str,
    label: &'static str,
    count: String,
    amount: String,
    exception: bool,
    zero: bool,
}

struct NoGatewayRow {
    case_code: String,
    procedure: String,
    status: String,
    citizen: String,
    budget: String,
    payment_href: String,
}

struct ExceptionRow {
    key: String,
    href: String,
    category: &'static str,
    case_code: String,
    txn_ref: String,
    recorded: String,
    settled: String,
    expected: String,
    state: &'static str,
    state_label: String,
    action: String,
}

struct RunInfo {
    at: String,
    by: String,
    run_id: String,
    hash: String,
    files: Vec<String>,
}

#[derive(Template)]
#[template(path = "dashboard/day.html")]
struct DayPage {
    l: Layout,
    date_label: String,
    date: String,
    month: String,
    gateway: &'static str,
    gateway_label: String,
    tabs: Vec<Tab>,
    state_class: &'static str,
    state_label: String,
    closed_at: Option<String>,
    run: Option<RunInfo>,
    can_act: bool,
    csrf: String,
    close_confirm: &'static str,
    cards: Vec<Card>,
    chart: Option<BarChart>,
    totals: Vec<(&'static str, String)>,
    by_kind: Vec<(&'static str, String)>,
    waived: (String, String, String),
    budget: (String, String, String),
    no_gateway: Vec<NoGatewayRow>,
    no_gateway_more: bool,
    exceptions: Vec<ExceptionRow>,
    exception_count: usize,
    /// More exceptions match than are listed: a link to the paged list.
    exceptions_more: Option<String>,
    categories: Vec<(&'static str, &'static str, bool)>,
    states: Vec<(&'static str, String, bool)>,
    flash: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct DayQuery {
    gateway: Option<String>,
    category: Option<String>,
    state: Option<String>,
    done: Option<String>,
}

/// What the page shows besides the day: a filter, a message after a form, an error.
#[derive(Default)]
struct Extras {
    category: Option<String>,
    state: Option<String>,
    flash: Option<String>,
    error: Option<(StatusCode, String)>,
}

async fn day(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(date): Path<String>,
    req: Request,
) -> Result<Response, PageError> {
    let q: DayQuery = super::query(req.uri(), v.lang)?;
    let date = parse_date(&v, &date)?;
    let gateway = parse_gateway(&v, super::given(&q.gateway))?;
    let t = v.lang.texts();
    let flash = match super::given(&q.done) {
        Some("closed") => Some(t.done_closed.to_owned()),
        _ => None,
    };
    let extras = Extras {
        category: super::given(&q.category).map(str::to_owned),
        state: super::given(&q.state).map(str::to_owned),
        flash,
        error: None,
    };
    day_page(&state, &v, date, gateway, extras).await
}

/// The day view, with `extras` (a form's error re-renders it with the error and its status).
async fn day_page(
    state: &AppState,
    v: &Viewer,
    date: NaiveDate,
    gateway: Gateway,
    extras: Extras,
) -> Result<Response, PageError> {
    let lang = v.lang;
    let t = lang.texts();
    let fin = |e| PageError::finance(v, e);
    let states = state.finance.calendar(date, date).await.map_err(fin)?;
    let day = state.finance.day(date).await.map_err(fin)?;
    let view = match state.finance.report(date, gateway).await {
        Ok(view) => Some(view),
        Err(FinanceError::NotFound(_)) => None,
        Err(e) => return Err(fin(e)),
    };
    let no_gateway = state.finance.no_gateway_payments(date, NO_GATEWAY_ROWS + 1).await.map_err(fin)?;
    let closed_at = day.gateways.iter().find(|g| g.gateway == gateway).and_then(|g| g.closed_at);
    let tabs = Gateway::ALL
        .iter()
        .map(|g| {
            let s = states.iter().find(|c| c.gateway == *g).map(|c| c.state);
            Tab {
                label: i18n::word(lang, g.as_str()),
                href: format!("/days/{date}?gateway={g}"),
                on: *g == gateway,
                class: s.map_or("", crate::recon::DayState::as_str),
                state: s.map(|s| super::calendar::state_label(lang, s)).unwrap_or_default(),
            }
        })
        .collect::<Vec<_>>();
    let (state_class, state_label) =
        tabs.iter().find(|t| t.on).map(|t| (t.class, t.state.clone())).unwrap_or(("", String::new()));
    let category_filter: Option<Category> = extras.category.as_deref().and_then(|c| c.parse().ok());
    let state_filter = extras.state.clone();
    let (cards, chart, totals, by_kind, run, exceptions) = match &view {
        Some(view) => day_report(lang, view, category_filter, state_filter.as_deref()),
        None => (vec![], None, vec![], vec![], None, vec![]),
    };
    let sums =
        |s: &crate::store::NoGatewaySums| (lang.count(s.count), lang.money(s.citizen_due), lang.money(s.budget_due));
    let more = i64::try_from(no_gateway.len()).unwrap_or(i64::MAX) > NO_GATEWAY_ROWS;
    let no_gateway_rows = no_gateway
        .into_iter()
        .take(usize::try_from(NO_GATEWAY_ROWS).unwrap_or(usize::MAX))
        .map(|p| NoGatewayRow {
            case_code: p.case_code.as_str().to_owned(),
            procedure: p.procedure_code,
            status: if p.status == PaymentStatus::Waived { t.waived.to_owned() } else { t.budget_covered.to_owned() },
            citizen: lang.money(p.amount.dong()),
            budget: lang.money(p.budget_amount.dong()),
            payment_href: format!("/payments/{}", enc(&p.payment_id)),
        })
        .collect();
    let categories = Category::ALL
        .iter()
        .filter(|c| **c != Category::Matched)
        .map(|c| (c.as_str(), i18n::category(lang, *c), category_filter == Some(*c)))
        .collect();
    let states_opts = ExceptionState::ALL
        .iter()
        .map(|s| (s.as_str(), i18n::word(lang, s.as_str()), state_filter.as_deref() == Some(s.as_str())))
        .collect();
    let (status, error) = match extras.error {
        Some((s, m)) => (s, Some(m)),
        None => (StatusCode::OK, None),
    };
    let exception_count = view.as_ref().map_or(0, |v| v.report.items.len());
    let exceptions_more = (exceptions.len() > EXCEPTION_ROWS)
        .then(|| format!("/exceptions?state=all&gateway={gateway}&from={date}&to={date}"));
    let mut exceptions = exceptions;
    exceptions.truncate(EXCEPTION_ROWS);
    let page = DayPage {
        l: Layout::of(v, "calendar", format!("{} {}", t.day_title, i18n::date(date))),
        date_label: i18n::date(date),
        date: date.to_string(),
        month: date.format("%Y-%m").to_string(),
        gateway: gateway.as_str(),
        gateway_label: i18n::word(lang, gateway.as_str()),
        tabs,
        state_class,
        state_label,
        closed_at: closed_at.map(|c| i18n::time(c.0)),
        run,
        can_act: v.can_act() && closed_at.is_none(),
        csrf: v.csrf().to_owned(),
        close_confirm: t.close_confirm,
        cards,
        chart,
        totals,
        by_kind,
        waived: sums(&day.waived),
        budget: sums(&day.budget_covered),
        no_gateway: no_gateway_rows,
        no_gateway_more: more,
        exceptions,
        exception_count,
        exceptions_more,
        categories,
        states: states_opts,
        flash: extras.flash,
        error,
    };
    Ok(render(status, &page))
}

type ReportParts = (
    Vec<Card>,
    Option<BarChart>,
    Vec<(&'static str, String)>,
    Vec<(&'static str, String)>,
    Option<RunInfo>,
    Vec<ExceptionRow>,
);

/// The parts of the page a report fills.
fn day_report(lang: Lang, view: &RunView, category: Option<Category>, state: Option<&str>) -> ReportParts {
    let t = lang.texts();
    let h = &view.report.head;
    let cards = Category::ALL
        .iter()
        .map(|c| {
            let s = h.summary.get(*c);
            Card {
                class: c.as_str(),
                label: i18n::category(lang, *c),
                count: lang.count(s.count),
                amount: lang.money(s.amount),
                exception: *c != Category::Matched,
                zero: s.count == 0,
            }
        })
        .collect();
    let rows: Vec<(&str, String, i64, String)> = Category::ALL
        .iter()
        .map(|c| {
            let s = h.summary.get(*c);
            (c.as_str(), i18n::category(lang, *c).to_owned(), s.amount, lang.money(s.amount))
        })
        .collect();
    let tt = &h.totals;
    let totals = vec![
        (t.recorded_paid, lang.money(tt.recorded_paid)),
        (t.settled_gross, lang.money(tt.settled_gross)),
        (t.gateway_fees, lang.money(tt.gateway_fees)),
        (t.refunds, lang.money(tt.refunds)),
        (t.settled_net, lang.money(tt.settled_net)),
    ];
    let by_kind = vec![
        (t.kind_phi, lang.money(tt.by_kind.phi)),
        (t.kind_le_phi, lang.money(tt.by_kind.le_phi)),
        (t.kind_duplicates, lang.money(tt.by_kind.duplicates)),
        (t.kind_unallocated, lang.money(tt.by_kind.unallocated)),
    ];
    let run = RunInfo {
        at: i18n::time(view.run.created_at),
        by: view.run.created_by.clone(),
        run_id: view.run.run_id.clone(),
        hash: h.report_hash.clone(),
        files: h.inputs.settlement_files.iter().map(|f| f.name.clone()).collect(),
    };
    let exceptions = view
        .report
        .items
        .iter()
        .filter(|i| category.is_none_or(|c| i.category == c))
        .filter(|i| state.is_none_or(|s| i.state == s))
        .map(|i| ExceptionRow {
            key: i.key.clone(),
            href: format!("/exceptions/{}", enc(&i.key)),
            category: i18n::category(lang, i.category),
            case_code: i.case_code.clone().unwrap_or_default(),
            txn_ref: i.txn_ref.clone().unwrap_or_default(),
            recorded: lang.money_opt(i.recorded_amount),
            settled: lang.money_opt(i.settled_amount),
            expected: lang.money_opt(i.expected_amount),
            state: i.state,
            state_label: i18n::word(lang, i.state),
            action: i.resolution["action"].as_str().map(|a| i18n::word(lang, a)).unwrap_or_default(),
        })
        .collect();
    (cards, Some(chart::bars(&rows)), totals, by_kind, Some(run), exceptions)
}

#[derive(Deserialize)]
struct GatewayForm {
    #[serde(default)]
    gateway: Option<String>,
}

async fn run(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(date): Path<String>,
    CsrfForm(f): CsrfForm<GatewayForm>,
) -> Result<Response, PageError> {
    let date = parse_date(&v, &date)?;
    let gateway = parse_gateway(&v, super::given(&f.gateway))?;
    let job = state.dashboard.jobs.start(&v.user_id, JobKind::Run { date, gateway }, 0);
    let (finance, name, lang, task) = (state.finance.clone(), v.name.clone(), v.lang, job.clone());
    tokio::spawn(async move {
        let observe = |p| task.run_phase(p);
        match finance.run_observed(date, gateway, &name, &observe).await {
            Ok(_) => task.finish(super::jobs::Outcome::Ran),
            Err(e) => task.fail(lang, e),
        }
    });
    Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response())
}

async fn close(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(date): Path<String>,
    CsrfForm(f): CsrfForm<GatewayForm>,
) -> Result<Response, PageError> {
    let date = parse_date(&v, &date)?;
    let gateway = parse_gateway(&v, super::given(&f.gateway))?;
    match state.finance.close(date, gateway, &v.name).await {
        Ok(_) => Ok(Redirect::to(&format!("/days/{date}?gateway={gateway}&done=closed")).into_response()),
        Err(e) => {
            let (status, message) = super::page::finance_status(v.lang, e);
            day_page(&state, &v, date, gateway, Extras { error: Some((status, message)), ..Extras::default() }).await
        }
    }
}

#[derive(Deserialize, Default)]
struct ReportQuery {
    gateway: Option<String>,
}

/// The (date, gateway) a report download names: the path's date and the `gateway` query.
fn report_of(v: &Viewer, date: &str, req: &Request) -> Result<(NaiveDate, Gateway), PageError> {
    let q: ReportQuery = super::query(req.uri(), v.lang)?;
    Ok((parse_date(v, date)?, parse_gateway(v, super::given(&q.gateway))?))
}

async fn report_csv(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(date): Path<String>,
    req: Request,
) -> Result<Response, PageError> {
    let (date, gateway) = report_of(&v, &date, &req)?;
    let pages = state.finance.csv(date, gateway).await.map_err(|e| PageError::finance(&v, e))?;
    let stream = futures_util::stream::unfold(pages, |mut pages| async move {
        match pages.next().await {
            Ok(Some(chunk)) => Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), pages)),
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e.to_string())), pages)),
        }
    });
    Ok(download(Body::from_stream(stream), CSV, &format!("doi-soat-{date}-{gateway}.csv")))
}

async fn report_xlsx(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(date): Path<String>,
    req: Request,
) -> Result<Response, PageError> {
    let (date, gateway) = report_of(&v, &date, &req)?;
    let view = state.finance.report(date, gateway).await.map_err(|e| PageError::finance(&v, e))?;
    let bytes =
        render::xlsx(&view.report).map_err(|e| PageError::internal(v.lang, anyhow::anyhow!("xlsx: {e}")).with(&v))?;
    Ok(download(Body::from(bytes), XLSX, &format!("doi-soat-{date}-{gateway}.xlsx")))
}
