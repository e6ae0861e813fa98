//! `GET /api/v1/exceptions`: finance's list of reconciliation exceptions across dates (issue 20),
//! by state (`open`, `pending_approval`, `resolved`, `superseded`, or `unresolved` for the first
//! two), optionally one business date, gateway and category; newest date first, then by id, paged
//! with the cursor of the last one answered. The actions on one exception are in `finance`.

use axum::extract::State;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, ApiQuery};
use super::page::{Page, PageQuery, bad_cursor};
use super::routes::{Access, Route};
use crate::domain::payment::Gateway;
use crate::domain::recon::{Category, ExceptionState, LineStatus};
use crate::domain::{BusinessDate, FieldError, Timestamp};
use crate::recon::exception_view;
use crate::store::{ExceptionFilter, ExceptionListRow};

pub fn routes() -> Vec<Route> {
    vec![Route::new(
        Method::GET,
        "/api/v1/exceptions",
        Access::Staff,
        "Exceptions across dates, newest date first (?state=open|pending_approval|resolved|superseded|unresolved&date=&gateway=&category=), paged (?cursor=&limit=).",
        get(list),
    )
    .query::<ListQuery>()
    .json::<Page<ExceptionListView>>(200, "A page of exceptions, newest date first.")]
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// `open`, `pending_approval`, `resolved`, `superseded`, or `unresolved` (the first two); every state when absent.
    state: Option<String>,
    /// Only this business date, YYYY-MM-DD.
    date: Option<String>,
    /// Only this gateway's exceptions.
    gateway: Option<Gateway>,
    /// Only this category.
    category: Option<Category>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    limit: Option<String>,
}

/// An exception as the list shows it: with its case, reference and amounts.
#[derive(Serialize, ToSchema)]
struct ExceptionListView {
    id: String,
    gateway: Gateway,
    /// YYYY-MM-DD.
    business_date: String,
    category: Category,
    state: ExceptionState,
    /// The action requested or applied, with its note, actor, approver and times; `null` while open.
    resolution: serde_json::Value,
    /// The ledger posting its resolution made, if any.
    posting_id: Option<String>,
    updated_at: Timestamp,
    case_code: Option<String>,
    txn_ref: Option<String>,
    line_status: Option<LineStatus>,
    recorded_amount: Option<i64>,
    settled_amount: Option<i64>,
    /// Whether the latest run of its (date, gateway) still has the item.
    in_latest_run: bool,
}

/// A state's wire name, or `unresolved` (open or pending approval); anything else names `state`
/// and the values allowed.
fn parse_state(raw: &str) -> Result<String, ApiError> {
    if raw == "unresolved" || raw.parse::<ExceptionState>().is_ok() {
        return Ok(raw.to_owned());
    }
    let allowed: Vec<&str> = ExceptionState::ALL.iter().map(|s| s.as_str()).chain(["unresolved"]).collect();
    Err(ApiError::field(FieldError::new("state", format!("{raw:?} is not one of: {}", allowed.join(", ")))))
}

/// The cursor `YYYY-MM-DD/id`: the last exception answered.
fn parse_cursor(raw: &str) -> Result<(NaiveDate, &str), ApiError> {
    let bad = || bad_cursor(&super::page::encode(raw));
    let (d, id) = raw.split_once('/').ok_or_else(bad)?;
    let d = BusinessDate::parse(d).map_err(|_| bad())?;
    Ok((d.naive(), id))
}

fn view(r: &ExceptionListRow) -> ExceptionListView {
    let e = &r.exception;
    ExceptionListView {
        id: e.exception_id.clone(),
        gateway: e.gateway,
        business_date: e.business_date.format("%Y-%m-%d").to_string(),
        category: e.category,
        state: e.state,
        resolution: exception_view(e),
        posting_id: e.posting_id.clone(),
        updated_at: Timestamp::at(e.updated_at),
        case_code: r.case_code.clone(),
        txn_ref: r.txn_ref.clone(),
        line_status: r.line_status,
        recorded_amount: r.recorded_amount,
        settled_amount: r.settled_amount,
        in_latest_run: r.in_latest_run,
    }
}

async fn list(State(state): State<AppState>, ApiQuery(q): ApiQuery<ListQuery>) -> Result<Response, ApiError> {
    let page = PageQuery::new(q.cursor, q.limit.as_deref())?;
    let date = q
        .date
        .as_deref()
        .map(|d| BusinessDate::parse(d).map_err(|e| ApiError::field(FieldError::new("date", e))))
        .transpose()?
        .map(BusinessDate::naive);
    let filter = ExceptionFilter {
        gateway: q.gateway,
        category: q.category,
        state: q.state.as_deref().map(parse_state).transpose()?,
        from: date,
        to: date,
    };
    let after = page.cursor().map(parse_cursor).transpose()?;
    let rows = state.store.exception_list(&filter, after, page.fetch()).await?;
    let key =
        |r: &ExceptionListRow| format!("{}/{}", r.exception.business_date.format("%Y-%m-%d"), r.exception.exception_id);
    Ok(Page::from_rows(rows, &page, key).map(|r| view(&r)).into_response())
}
