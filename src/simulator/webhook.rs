//! A stand-in for the portal's notification endpoint, so an integrator can watch the webhook
//! arrive before writing their own: `POST /sim/webhook` keeps each delivery (its
//! `Feerecon-Signature` header and its JSON body) and answers 204; `GET /sim/webhooks` lists the
//! deliveries received, oldest first. Only the latest `KEPT` are kept. It verifies nothing: the
//! portal's own code must (README, "For portal integrators").

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// How many deliveries are kept.
const KEPT: usize = 1000;

type Deliveries = Arc<Mutex<Vec<Value>>>;

/// The two routes, with their own store.
pub fn router() -> Router {
    let kept: Deliveries = Arc::new(Mutex::new(Vec::new()));
    Router::new().route("/sim/webhook", post(receive)).route("/sim/webhooks", get(list)).with_state(kept)
}

async fn receive(State(kept): State<Deliveries>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = headers.get("feerecon-signature").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let event = serde_json::from_slice::<Value>(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let mut kept = kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if kept.len() >= KEPT {
        kept.remove(0);
    }
    kept.push(json!({"signature": signature, "event": event}));
    StatusCode::NO_CONTENT.into_response()
}

async fn list(State(kept): State<Deliveries>) -> Response {
    let kept = kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    axum::Json(json!({"items": kept})).into_response()
}
