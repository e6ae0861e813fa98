//! Liveness, readiness, metrics and the API document: the routes anyone may call.

use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::error::ApiError;
use super::routes::{Access, Route, bytes_schema};

fn text() -> super::routes::Media {
    vec![("text/plain", bytes_schema("text/plain"))]
}

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::GET, "/healthz", Access::Public, "Liveness: the process answers.", get(healthz)).answer(
            200,
            "`ok`",
            text(),
        ),
        Route::new(
            Method::GET,
            "/readyz",
            Access::Public,
            "Readiness: the database answers and every migration is applied.",
            get(readyz),
        )
        .answer(200, "`ready`; 503 not_ready otherwise.", text()),
        Route::new(Method::GET, "/metrics", Access::Public, "Prometheus metrics.", get(metrics)).answer(
            200,
            "Prometheus text exposition.",
            vec![("text/plain; version=0.0.4", bytes_schema("text/plain"))],
        ),
        Route::new(Method::GET, "/api/openapi.json", Access::Public, "This API's OpenAPI document.", get(openapi))
            .answer(200, "OpenAPI 3.1.", vec![("application/json", bytes_schema("application/json"))]),
    ]
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Result<Response, ApiError> {
    match state.store.ready().await {
        Ok(true) => Ok((StatusCode::OK, "ready\n").into_response()),
        Ok(false) => Err(not_ready("migrations are not all applied")),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(not_ready("the database does not answer"))
        }
    }
}

fn not_ready(why: &str) -> ApiError {
    ApiError::NotReady(why.to_owned())
}

async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    use crate::domain::payment::{DeliveryState, PaymentStatus};
    use crate::telemetry::metrics::{GatewayLabels, StateLabels, StatusLabels};
    // Gauges of stored state, read now: right whichever instance made the change.
    let m = &state.metrics;
    m.cases.set(state.store.case_count().await?);
    let payments = state.store.payment_counts().await?;
    for s in PaymentStatus::ALL {
        let n = payments.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
        m.payments.get_or_create(&StatusLabels { status: s.as_str() }).set(n);
    }
    let notifications = state.store.notification_counts().await?;
    for s in DeliveryState::ALL {
        let n = notifications.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
        m.notifications.get_or_create(&StateLabels { state: s.as_str() }).set(n);
    }
    let exceptions = state.store.exception_counts().await?;
    for s in crate::domain::recon::ExceptionState::ALL {
        let n = exceptions.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
        m.exceptions.get_or_create(&StateLabels { state: s.as_str() }).set(n);
    }
    let unclosed = state.store.unclosed_run_dates().await?;
    for g in crate::domain::payment::Gateway::ALL {
        let n = unclosed.iter().find(|(k, _)| k == g).map_or(0, |(_, n)| *n);
        m.unclosed_dates.get_or_create(&GatewayLabels { gateway: g.as_str() }).set(n);
    }
    let oldest = state.store.oldest_pending_payment().await?;
    m.oldest_pending_payment_age.set(oldest.map_or(0, |t| (state.clock.now() - t).num_seconds().max(0)));
    let body = m.render();
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"))], body).into_response())
}

async fn openapi(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], state.openapi.as_str().to_owned())
        .into_response()
}
