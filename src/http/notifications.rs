//! Portal notifications for staff (SPEC §6.6): the dead letters, and re-sending them.

use axum::extract::State;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ApiPath, ApiQuery};
use super::page::{Page, PageQuery};
use super::routes::{Access, Route};
use crate::domain::payment::{DeliveryState, EventType, PaymentStatus};
use crate::domain::{CaseCode, Timestamp};
use crate::store::OutboxEvent;

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/api/v1/notifications",
            Access::Staff,
            "Portal notifications by id, every state or one (?state=failed for dead letters), paged (?cursor=&limit=).",
            get(list),
        )
        .query::<ListQuery>()
        .json::<Page<NotificationView>>(200, "A page of notifications, oldest first."),
        Route::new(
            Method::POST,
            "/api/v1/notifications/{event_id}/resend",
            Access::Finance,
            "Queue a dead-lettered notification again, now.",
            post(resend),
        )
        .json::<Resent>(200, "Queued: the event is pending delivery again."),
    ]
}

/// A portal notification and its delivery.
#[derive(Serialize, ToSchema)]
struct NotificationView {
    event_id: String,
    #[serde(rename = "type")]
    event_type: EventType,
    case_code: CaseCode,
    payment_id: String,
    status: PaymentStatus,
    /// Whole đồng.
    amount: i64,
    paid_at: Option<Timestamp>,
    case_seq: i64,
    state: DeliveryState,
    attempts: i64,
    next_attempt_at: Timestamp,
    last_error: Option<String>,
    delivered_at: Option<Timestamp>,
    created_at: Timestamp,
}

/// A re-sent notification.
#[derive(Serialize, ToSchema)]
struct Resent {
    event_id: String,
    /// Always `pending`.
    state: DeliveryState,
}

fn view(e: &OutboxEvent) -> NotificationView {
    NotificationView {
        event_id: e.event_id.clone(),
        event_type: e.event_type,
        case_code: e.case_code.clone(),
        payment_id: e.payment_id.clone(),
        status: e.status,
        amount: e.amount,
        paid_at: e.paid_at.map(Timestamp::at),
        case_seq: e.case_seq,
        state: e.state,
        attempts: e.attempts,
        next_attempt_at: Timestamp::at(e.next_attempt_at),
        last_error: e.last_error.clone(),
        delivered_at: e.delivered_at.map(Timestamp::at),
        created_at: Timestamp::at(e.created_at),
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// `pending`, `delivered` or `failed`; every state when absent.
    state: Option<DeliveryState>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
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
        Ok(Json(Resent { event_id: id, state: DeliveryState::Pending }).into_response())
    } else {
        Err(ApiError::NotFound(format!("no dead-lettered notification {id}")))
    }
}
