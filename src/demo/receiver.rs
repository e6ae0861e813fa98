//! The demo's stand-in for the portal's webhook: a small loopback server that checks each
//! notification's `Feerecon-Signature` (SPEC §6.6) and counts what arrived, by event type.
//!
//! A delivery with a bad signature is refused with 401 and counted apart, so the notifier would
//! retry it; the demo expects none. The same `event_id` delivered twice is counted once in
//! `events` and once more in `redelivered` (at least once, never dropped).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use crate::domain::{Clock, Secret};

/// What the receiver has seen so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Received {
    /// Distinct events, by `type`.
    pub by_type: BTreeMap<String, u64>,
    /// Distinct events.
    pub events: u64,
    /// Deliveries of an event already received.
    pub redelivered: u64,
    /// Deliveries refused for a missing or bad signature.
    pub bad_signature: u64,
}

struct Inner {
    secret: Secret,
    clock: Arc<dyn Clock>,
    seen: Mutex<(BTreeSet<String>, Received)>,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Listens on a free loopback port; deliveries are checked with `secret` at `clock`'s time
    /// (the server signs with the demo's injected clock).
    pub async fn start(secret: Secret, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("Failed to start the receiver")?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner { secret, clock, seen: Mutex::new((BTreeSet::new(), Received::default())) });
        let app = Router::new().route("/portal/events", post(receive)).with_state(inner.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the demo's notification receiver stopped");
            }
        });
        Ok(Self { addr, inner, task })
    }

    /// The URL to give the server as `FEERECON_PORTAL_WEBHOOK_URL`.
    pub fn url(&self) -> String {
        format!("http://{}/portal/events", self.addr)
    }

    pub fn received(&self) -> Received {
        self.inner.seen.lock().unwrap_or_else(|p| p.into_inner()).1.clone()
    }
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = headers.get("feerecon-signature").and_then(|h| h.to_str().ok()).unwrap_or("");
    let now = inner.clock.now().timestamp();
    let mut seen = inner.seen.lock().unwrap_or_else(|p| p.into_inner());
    if !crate::notify::verify(header, &body, &inner.secret, now, 300) {
        seen.1.bad_signature += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let id = event["event_id"].as_str().unwrap_or_default().to_owned();
    let kind = event["type"].as_str().unwrap_or("unknown").to_owned();
    let (ids, received) = &mut *seen;
    if ids.insert(id) {
        received.events += 1;
        *received.by_type.entry(kind).or_insert(0) += 1;
    } else {
        received.redelivered += 1;
    }
    StatusCode::NO_CONTENT
}
