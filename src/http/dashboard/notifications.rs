//! `/notifications`: portal notifications in dead letter (delivery gave up), with the re-send
//! button for finance (`notify::resend`, audited).

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::i18n;
use super::page::{Layout, PageError, enc, render};
use super::session::{CsrfForm, Viewer};
use crate::http::AppState;
use crate::http::routes::{Access, Route};

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/notifications",
            Access::PageStaff,
            "Dashboard: dead-lettered portal notifications, paged (?after=ID).",
            get(list),
        ),
        Route::new(
            Method::POST,
            "/notifications/{event_id}/resend",
            Access::PageFinance,
            "Dashboard: queue a dead-lettered notification again.",
            post(resend),
        ),
    ]
}

const PAGE: i64 = 100;

struct Row {
    event_id: String,
    action: String,
    kind: String,
    case_code: String,
    payment_href: String,
    amount: String,
    attempts: i64,
    created: String,
    last_error: String,
}

#[derive(Template)]
#[template(path = "dashboard/notifications.html")]
struct ListPage {
    l: Layout,
    rows: Vec<Row>,
    next: Option<String>,
    can_act: bool,
    csrf: String,
    flash: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct ListQuery {
    after: Option<String>,
    done: Option<String>,
}

async fn list_page(
    state: &AppState,
    v: &Viewer,
    q: &ListQuery,
    error: Option<(StatusCode, String)>,
) -> Result<Response, PageError> {
    let lang = v.lang;
    let t = lang.texts();
    let page =
        state.finance.dead_letters(super::given(&q.after), PAGE + 1).await.map_err(|e| PageError::finance(v, e))?;
    let more = i64::try_from(page.len()).unwrap_or(i64::MAX) > PAGE;
    let rows: Vec<Row> = page
        .iter()
        .take(usize::try_from(PAGE).unwrap_or(usize::MAX))
        .map(|e| Row {
            event_id: e.event_id.clone(),
            action: format!("/notifications/{}/resend", enc(&e.event_id)),
            kind: e.event_type.as_str().to_owned(),
            case_code: e.case_code.as_str().to_owned(),
            payment_href: format!("/payments/{}", enc(&e.payment_id)),
            amount: lang.money(e.amount),
            attempts: e.attempts,
            created: i18n::time(e.created_at),
            last_error: e.last_error.clone().unwrap_or_default(),
        })
        .collect();
    let next = if more { rows.last().map(|r| format!("/notifications?after={}", enc(&r.event_id))) } else { None };
    let (status, error) = match error {
        Some((s, m)) => (s, Some(m)),
        None => (StatusCode::OK, None),
    };
    let page = ListPage {
        l: Layout::of(v, "notifications", t.notifications_title),
        rows,
        next,
        can_act: v.can_act(),
        csrf: v.csrf().to_owned(),
        flash: (super::given(&q.done) == Some("resent")).then_some(t.done_resent),
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
struct Empty {}

async fn resend(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    let done = crate::notify::resend(&state.store, &id, &v.name, state.clock.now())
        .await
        .map_err(|e| PageError::internal(v.lang, e).with(&v))?;
    if done {
        return Ok(Redirect::to("/notifications?done=resent").into_response());
    }
    let err = (StatusCode::NOT_FOUND, format!("{id}: no dead-lettered notification with this id"));
    list_page(&state, &v, &ListQuery::default(), Some(err)).await
}
