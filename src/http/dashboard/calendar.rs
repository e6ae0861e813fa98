//! `/`: a month of business dates, each with its gateways and where each stands (no file,
//! not run, open exceptions, reconciled, closed), linking to the day view.

use askama::Template;
use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use chrono::{Datelike, Months, NaiveDate};
use serde::Deserialize;

use super::i18n::{self, Lang};
use super::page::{Layout, PageError, render};
use super::session::Viewer;
use crate::domain::BusinessDate;
use crate::http::AppState;
use crate::http::routes::{Access, Route};
use crate::recon::DayState;

pub fn routes() -> Vec<Route> {
    vec![Route::new(
        Method::GET,
        "/",
        Access::PageStaff,
        "Dashboard: the calendar of business dates per gateway (?month=YYYY-MM).",
        get(calendar),
    )]
}

/// A state's label and CSS class.
pub fn state_label(lang: Lang, s: DayState) -> String {
    let t = lang.texts();
    match s {
        DayState::NoFile => t.state_no_file.to_owned(),
        DayState::NotRun => t.state_not_run.to_owned(),
        DayState::OpenExceptions { unresolved } => format!("{} ({})", t.state_open_exceptions, lang.count(unresolved)),
        DayState::Reconciled => t.state_reconciled.to_owned(),
        DayState::Closed => t.state_closed.to_owned(),
    }
}

struct Entry {
    gateway: String,
    class: &'static str,
    label: String,
    href: String,
}

struct Cell {
    in_month: bool,
    today: bool,
    day: u32,
    entries: Vec<Entry>,
}

#[derive(Template)]
#[template(path = "dashboard/calendar.html")]
struct CalendarPage {
    l: Layout,
    month_label: String,
    month_value: String,
    prev: String,
    next: String,
    weekdays: Vec<&'static str>,
    weeks: Vec<Vec<Cell>>,
    legend: Vec<(&'static str, String)>,
}

#[derive(Deserialize, Default)]
struct CalendarQuery {
    month: Option<String>,
}

fn parse_month(s: &str) -> Option<NaiveDate> {
    let (y, m) = s.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)
}

async fn calendar(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    req: Request,
) -> Result<Response, PageError> {
    let q: CalendarQuery = super::query(req.uri(), v.lang)?;
    let today = BusinessDate::of(state.clock.now()).naive();
    let first = match super::given(&q.month) {
        Some(m) => parse_month(m).ok_or_else(|| {
            PageError::user(&v, StatusCode::UNPROCESSABLE_ENTITY, &format!("month: {m:?} must be YYYY-MM"))
        })?,
        None => today.with_day(1).unwrap_or(today),
    };
    let next_month = first.checked_add_months(Months::new(1)).unwrap_or(first);
    let prev_month = first.checked_sub_months(Months::new(1)).unwrap_or(first);
    let last = next_month.pred_opt().unwrap_or(first);
    let cells = state.finance.calendar(first, last).await.map_err(|e| PageError::finance(&v, e))?;
    let lang = v.lang;
    // The grid runs Monday to Sunday around the month.
    let start = first - chrono::Days::new(u64::from(first.weekday().num_days_from_monday()));
    let mut weeks = Vec::new();
    let mut day = start;
    while day <= last {
        let mut week = Vec::new();
        for _ in 0..7 {
            let entries = cells
                .iter()
                .filter(|c| c.date == day)
                .map(|c| Entry {
                    gateway: i18n::word(lang, c.gateway.as_str()),
                    class: c.state.as_str(),
                    label: state_label(lang, c.state),
                    href: format!("/days/{day}?gateway={}", c.gateway),
                })
                .collect();
            week.push(Cell { in_month: day.month() == first.month(), today: day == today, day: day.day(), entries });
            day = day.succ_opt().unwrap_or(day);
        }
        weeks.push(week);
    }
    let t = lang.texts();
    let legend = [
        DayState::NoFile,
        DayState::NotRun,
        DayState::OpenExceptions { unresolved: 0 },
        DayState::Reconciled,
        DayState::Closed,
    ]
    .into_iter()
    .map(|s| {
        let label = match s {
            DayState::OpenExceptions { .. } => t.state_open_exceptions.to_owned(),
            other => state_label(lang, other),
        };
        (s.as_str(), label)
    })
    .collect();
    let page = CalendarPage {
        l: Layout::of(&v, "calendar", t.calendar_title),
        month_label: format!("{} {}", t.month, first.format("%m/%Y")),
        month_value: first.format("%Y-%m").to_string(),
        prev: prev_month.format("%Y-%m").to_string(),
        next: next_month.format("%Y-%m").to_string(),
        weekdays: t.weekdays.split(',').collect(),
        weeks,
        legend,
    };
    Ok(render(StatusCode::OK, &page))
}
