//! Portal notifications for staff (SPEC §6.6): the dead letters, and re-sending them.

use axum::extract::State;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ApiPath, ApiQuery};
use super::page::{Page, PageQuery};
use super::routes::{Access, Route};
use crate::domain::Timestamp;
use crate::domain::payment::DeliveryState;
use crate::store::OutboxEvent;

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/api/v1/notifications",
            Access::Staff,
            "Portal notifications by id, every state or one (?state=failed for dead letters), paged (?cursor=&limit=).",
            get(list),
        ),
        Route::new(
            Method::POST,
            "/api/v1/notifications/{event_id}/resend",
            Access::Finance,
            "Queue a dead-lettered notification again, now.",
            post(resend),
        ),
    ]
}

fn view(e: &OutboxEvent) -> serde_json::Value {
    json!({
        "event_id": e.event_id, "type": e.event_type, "case_code": e.case_code, "payment_id": e.payment_id,
        "status": e.status, "amount": e.amount, "paid_at": e.paid_at.map(Timestamp::at), "case_seq": e.case_seq,
        "state": e.state, "attempts": e.attempts, "next_attempt_at": Timestamp::at(e.next_attempt_at),
        "last_error": e.last_error, "delivered_at": e.delivered_at.map(Timestamp::at), "created_at": Timestamp::at(e.created_at),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// `pending`, `delivered` or `failed`; every state when absent.
    state: Option<DeliveryState>,
    cursor: Option<String>,
    limit: Option<String>,
}

async fn list(State(state): State<AppState>, ApiQuery(q): ApiQuery<ListQuery>) -> Result<Response, ApiError> {
    let page = PageQuery::new(q.cursor, q.limit.as_deref())?;
    let rows = state.store.notifications(q.state, page.cursor(), page.fetch()).await?;
    Ok(Page::from_rows(rows, &page, |e| e.event_id.clone()).map(|e| view(&e)).into_response())
}

async fn resend(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    if crate::notify::resend(&state.store, &id, &who.name, state.clock.now()).await? {
        Ok(Json(json!({"event_id": id, "state": "pending"})).into_response())
    } else {
        Err(ApiError::NotFound(format!("no dead-lettered notification {id}")))
    }
}
