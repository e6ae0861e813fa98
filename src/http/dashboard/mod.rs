//! The finance dashboard (SPEC §4.2): server-rendered pages for finance staff, auditors and
//! administrators, inside `serve`.
//!
//! One router module per page group, each returning its `Route`s with their `Access` like the
//! API's areas, so the route × role table covers every page and form: `login` (login, logout,
//! language, assets), `calendar`, `day` (the day view, runs, closes, report downloads),
//! `exceptions` (the list), `exception` (detail, resolve / approve / reject), `payments`
//! (search, detail), `settlements` (files and upload), `jobs` (progress of long operations),
//! `ledger` (export, verification), `notifications` (dead letters, re-send), `remittances`
//! (treasury remittance), `receipts` (e-receipts: search, detail, print, corrections) and
//! `receipt_summary` (the day's Mẫu 01/TH-BLĐT with its downloads). `session` holds
//! the access check, the CSRF check and the security headers; `page` the layout and errors;
//! `i18n` the two languages; `chart` the bar chart's geometry. Templates are in
//! `templates/dashboard/` (compiled in by askama), the stylesheet and the one script in
//! `static/` (embedded with `include_str!`): nothing to build, nothing to ship beside the binary.

mod calendar;
mod chart;
mod day;
mod exception;
mod exceptions;
pub mod i18n;
mod jobs;
mod ledger;
mod login;
mod notifications;
mod page;
mod payments;
mod receipt_summary;
mod receipts;
mod remittances;
pub mod session;
mod settlements;

use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::routes::Route;
use i18n::Lang;
use page::PageError;

/// What the dashboard keeps in memory: the login rate limit and the long operations under way.
#[derive(Default)]
pub struct Dashboard {
    pub limiter: session::LoginLimiter,
    pub jobs: jobs::Jobs,
}

/// Every page and form of the dashboard.
pub fn routes() -> Vec<Route> {
    let mut r = login::routes();
    r.extend(calendar::routes());
    r.extend(day::routes());
    r.extend(exceptions::routes());
    r.extend(exception::routes());
    r.extend(payments::routes());
    r.extend(settlements::routes());
    r.extend(jobs::routes());
    r.extend(ledger::routes());
    r.extend(notifications::routes());
    r.extend(remittances::routes());
    r.extend(receipts::routes());
    r.extend(receipt_summary::routes());
    r
}

/// A page's query string parsed into `T` (absent fields take their defaults); a malformed one
/// is a 400 page.
pub(crate) fn query<T: DeserializeOwned>(uri: &axum::http::Uri, lang: Lang) -> Result<T, PageError> {
    serde_urlencoded::from_str(uri.query().unwrap_or(""))
        .map_err(|e| PageError::new(lang, StatusCode::BAD_REQUEST, &format!("query: {e}")))
}

/// An optional form or query value: `None` when absent or blank.
pub(crate) fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}
