//! Portal notifications for staff (SPEC §6.6): the dead letters, and re-sending them.

use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth::Principal;
use super::error::ApiError;
use super::routes::{Access, Route};
use crate::domain::payment::DeliveryState;
use crate::domain::{FieldError, Timestamp};
use crate::store::OutboxEvent;

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/api/v1/notifications",
            Access::Staff,
            "Portal notifications by state (?state=failed for dead letters), paged.",
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
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn list(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Result<Response, ApiError> {
    let st = q.state.unwrap_or_else(|| "failed".into());
    let st: DeliveryState = st.parse().map_err(|e| ApiError::field(FieldError::new("state", e)))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let page = state.store.notifications(Some(st), q.cursor.as_deref(), limit + 1).await?;
    let more = page.len() as i64 > limit;
    let items: Vec<_> = page.iter().take(limit as usize).map(view).collect();
    let next = if more { page.get(limit as usize - 1).map(|e| e.event_id.clone()) } else { None };
    Ok(Json(json!({"items": items, "next_cursor": next})).into_response())
}

async fn resend(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if crate::notify::resend(&state.store, &id, &who.name, state.clock.now()).await? {
        Ok(Json(json!({"event_id": id, "state": "pending"})).into_response())
    } else {
        Err(ApiError::NotFound(format!("no dead-lettered notification {id}")))
    }
}
