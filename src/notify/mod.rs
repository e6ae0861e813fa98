//! Portal notifications (SPEC §6.6): a worker that delivers the outbox.
//!
//! Events are written to the outbox by the transaction that causes them (`event` builds them for
//! `payments`);
//! this worker claims due events with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several
//! instances share the work without delivering one event twice in normal operation), posts each
//! to the portal with a fresh `Feerecon-Signature`, and records the outcome: delivered, retried
//! after an exponential backoff with ±20% jitter capped at `FEERECON_NOTIFY_MAX_BACKOFF`, or
//! dead-lettered after `FEERECON_NOTIFY_MAX_ATTEMPTS`. A crash mid-delivery lets the lease lapse
//! and the event is delivered again (at least once); nothing is dropped.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use serde::Serialize;
use tokio::sync::watch;

use crate::domain::payment::{DeliveryState, EventType, Flag};
use crate::domain::receipt::ReceiptRef;
use crate::domain::sql::JsonText;
use crate::domain::{Clock, Money, Secret, Timestamp, new_id};
use crate::gateway::hmac_sha256_hex;
use crate::store::{AuditEvent, OutboxEvent, Payment, Store};
use crate::telemetry::metrics::Metrics;

/// How long one delivery may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed event stays reserved: longer than a delivery can take.
pub const LEASE: Duration = Duration::from_secs(15);
/// The signature's default tolerance for receivers (seconds between `t` and their clock).
pub const TOLERANCE_SECONDS: i64 = 300;

/// The body posted to the portal, keys in SPEC §6.6's order. `receipt` is `null` until receipts
/// exist.
#[derive(Serialize, utoipa::ToSchema)]
struct Body<'a> {
    event_id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    case_code: &'a str,
    payment_id: &'a str,
    status: &'a str,
    amount: i64,
    citizen_due: i64,
    flags: &'a [Flag],
    paid_at: Option<Timestamp>,
    case_seq: i64,
    /// `{"template", "symbol", "number"}` of the receipt the event's transaction issued, or null.
    receipt: Option<ReceiptRef>,
}

/// The portal event of a payment's change (its state and flags after the change), `case_seq`
/// the case's next number, due now. `citizen_due` is what the case owes the citizen in the
/// payment's quote: the portal compares it with `amount`.
pub fn event(kind: EventType, p: &Payment, citizen_due: Money, case_seq: i64, at: DateTime<Utc>) -> OutboxEvent {
    let at = Timestamp::at(at).0;
    OutboxEvent {
        event_id: new_id("evt"),
        event_type: kind,
        case_code: p.case_code.clone(),
        payment_id: p.payment_id.clone(),
        status: p.status,
        amount: p.amount.dong(),
        citizen_due: citizen_due.dong(),
        flags: JsonText(p.flags.clone()),
        paid_at: p.paid_at,
        case_seq,
        created_at: at,
        state: DeliveryState::Pending,
        attempts: 0,
        next_attempt_at: at,
        last_error: None,
        delivered_at: None,
        receipt_template: None,
        receipt_symbol: None,
        receipt_number: None,
    }
}

/// Puts a dead-lettered notification back in the queue now, audited; `false` when there is no
/// such dead letter.
pub async fn resend(store: &Store, event_id: &str, actor: &str, at: DateTime<Utc>) -> anyhow::Result<bool> {
    let mut tx = store.write().await?;
    if !tx.requeue_notification(event_id, at).await? {
        return Ok(false);
    }
    let audit = AuditEvent::new(actor, "notification.resend", event_id, serde_json::json!({}));
    crate::ledger::chain::append_audit(&mut tx, &[audit], at).await?;
    tx.commit().await?;
    Ok(true)
}

/// The exact bytes posted for an event.
pub fn body(e: &OutboxEvent) -> String {
    serde_json::to_string(&Body {
        event_id: &e.event_id,
        kind: e.event_type.as_str(),
        case_code: e.case_code.as_str(),
        payment_id: &e.payment_id,
        status: e.status.as_str(),
        amount: e.amount,
        citizen_due: e.citizen_due,
        flags: &e.flags.0,
        paid_at: e.paid_at.map(Timestamp::at),
        case_seq: e.case_seq,
        receipt: e.receipt(),
    })
    .expect("an event serialises")
}

/// `Feerecon-Signature: t=<unix>,v1=<hex>[,v1=<hex>]`: HMAC-SHA256 of `"<t>.<body>"`, one `v1`
/// per secret (current first, then the previous one during a rotation).
pub fn signature_header(t: i64, body: &str, secrets: &[&Secret]) -> String {
    let payload = format!("{t}.{body}");
    let mut out = format!("t={t}");
    for s in secrets {
        out.push_str(",v1=");
        out.push_str(&hmac_sha256_hex(s, payload.as_bytes()));
    }
    out
}

/// How a portal checks a delivery (the reference for integrators; the tests' receiver uses it):
/// some `v1` must match in constant time, and `t` must be within `tolerance` seconds of `now`.
pub fn verify(header: &str, body: &[u8], secret: &Secret, now: i64, tolerance: i64) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(v),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now - t).abs() > tolerance {
        return false;
    }
    let mut payload = format!("{t}.").into_bytes();
    payload.extend_from_slice(body);
    let expected = hmac_sha256_hex(secret, &payload);
    sigs.iter().any(|s| crate::gateway::hex_matches(s, &expected))
}

/// The delay before attempt `attempt + 1`, after `attempt` failed ones: 1 s, doubling, with
/// ±20% jitter, capped at `max`.
pub fn backoff(attempt: u32, max: Duration) -> Duration {
    let base_ms = 1_000u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(40));
    let spread = base_ms / 5;
    let jittered = base_ms - spread + rand::thread_rng().gen_range(0..=2 * spread);
    Duration::from_millis(jittered).min(max)
}

/// The delivery worker.
pub struct Notifier {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub url: String,
    pub secrets: Vec<Secret>,
    pub max_attempts: u32,
    pub max_backoff: Duration,
    http: reqwest::Client,
}

impl Notifier {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        webhook: &crate::config::WebhookConfig,
        max_attempts: u32,
        max_backoff: Duration,
    ) -> Self {
        let mut secrets = vec![webhook.secret.clone()];
        secrets.extend(webhook.secret_previous.clone());
        Self {
            store,
            clock,
            metrics,
            url: webhook.url.clone(),
            secrets,
            max_attempts,
            max_backoff,
            http: reqwest::Client::builder()
                .timeout(DELIVERY_TIMEOUT)
                .connect_timeout(Duration::from_secs(5))
                .build()
                .expect("a reqwest client with timeouts builds"),
        }
    }

    /// One attempt to deliver an event; `Err` says why it failed.
    async fn post(&self, e: &OutboxEvent) -> Result<(), String> {
        let body = body(e);
        let refs: Vec<&Secret> = self.secrets.iter().collect();
        let header = signature_header(self.clock.now().timestamp(), &body, &refs);
        let res = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("Feerecon-Signature", header)
            .body(body)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if res.status().is_success() { Ok(()) } else { Err(format!("HTTP {}", res.status())) }
    }

    async fn deliver(&self, e: OutboxEvent) -> anyhow::Result<()> {
        let outcome = self.post(&e).await;
        let now = self.clock.now();
        let attempts = u32::try_from(e.attempts).unwrap_or(u32::MAX).saturating_add(1);
        let (result, retry_at): (&'static str, Option<DateTime<Utc>>) = match &outcome {
            Ok(()) => ("delivered", None),
            Err(_) if attempts >= self.max_attempts => ("dead_letter", None),
            Err(_) => (
                "retry",
                Some(now + TimeDelta::from_std(backoff(attempts, self.max_backoff)).unwrap_or(TimeDelta::seconds(1))),
            ),
        };
        // One line per attempt, with the ids a person searches by; a dead letter needs a person.
        let (case_code, payment_id, event_type) = (e.case_code.as_str(), e.payment_id.as_str(), e.event_type.as_str());
        match (&outcome, retry_at) {
            (Ok(()), _) => {
                tracing::info!(event_id = %e.event_id, case_code, payment_id, event_type, attempts, result, "portal notification delivered")
            }
            (Err(why), Some(at)) => {
                tracing::info!(event_id = %e.event_id, case_code, payment_id, event_type, attempts, error = %why, result, next_attempt_at = %at.to_rfc3339(), "portal notification not delivered; will retry")
            }
            (Err(why), None) => {
                tracing::warn!(event_id = %e.event_id, case_code, payment_id, event_type, attempts, error = %why, result, "portal notification dead-lettered after {attempts} attempts")
            }
        }
        self.store.record_delivery(&e.event_id, outcome.is_ok(), retry_at, outcome.err().as_deref(), now).await?;
        self.metrics.delivery(result);
        Ok(())
    }

    /// Claims and delivers one batch of due events, concurrently; returns how many.
    pub async fn run_once(self: &Arc<Self>) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let lease = now + TimeDelta::from_std(LEASE).unwrap_or(TimeDelta::seconds(15));
        let batch = self.store.claim_notifications(now, lease, 32).await?;
        let n = batch.len();
        let mut handles = Vec::with_capacity(n);
        for e in batch {
            let me = self.clone();
            handles.push(tokio::spawn(async move { me.deliver(e).await }));
        }
        for h in handles {
            match h.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "recording a delivery failed; the lease will lapse and it is retried")
                }
                Err(e) => tracing::error!(error = %e, "a delivery task failed"),
            }
        }
        Ok(n)
    }

    /// Delivers until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let busy = match self.run_once().await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::warn!(error = %e, "notification round failed");
                    false
                }
            };
            if *shutdown.borrow() {
                break;
            }
            if !busy {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = shutdown.changed() => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> OutboxEvent {
        let t = DateTime::parse_from_rfc3339("2024-07-15T03:00:00Z").unwrap().with_timezone(&Utc);
        OutboxEvent {
            event_id: "evt_0123".into(),
            event_type: EventType::Succeeded,
            case_code: crate::domain::CaseCode::parse("000.00.12.H62-240715-0001").unwrap(),
            payment_id: "pay_0456".into(),
            status: crate::domain::payment::PaymentStatus::Paid,
            amount: 115_000,
            citizen_due: 115_000,
            flags: JsonText(vec![]),
            paid_at: Some(t),
            case_seq: 1,
            created_at: t,
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_at: t,
            last_error: None,
            delivered_at: None,
            receipt_template: Some("EBL01".into()),
            receipt_symbol: Some("24TAA".into()),
            receipt_number: Some(1),
        }
    }

    /// The test vector the README gives portal integrators.
    #[test]
    fn the_readme_vector_holds() {
        let b = body(&event());
        assert_eq!(
            b,
            r#"{"event_id":"evt_0123","type":"payment.succeeded","case_code":"000.00.12.H62-240715-0001","payment_id":"pay_0456","status":"paid","amount":115000,"citizen_due":115000,"flags":[],"paid_at":"2024-07-15T10:00:00+07:00","case_seq":1,"receipt":{"template":"EBL01","symbol":"24TAA","number":1}}"#
        );
        let secret = Secret::new("whsec_test_portal");
        let h = signature_header(1_721_012_400, &b, &[&secret]);
        // Computed independently: python3 hmac.new(b"whsec_test_portal", b"1721012400." + body, sha256).
        assert_eq!(h, "t=1721012400,v1=67a28ee920596f5f583e6a5e74690c0117b4f2aa215f641435b84576d26b00fa");
        assert!(verify(&h, b.as_bytes(), &secret, 1_721_012_400 + 10, TOLERANCE_SECONDS));
        assert!(!verify(&h, b.as_bytes(), &secret, 1_721_012_400 + 301, TOLERANCE_SECONDS), "outside the window");
        assert!(!verify(&h, b.replace("115000", "115001").as_bytes(), &secret, 1_721_012_400, TOLERANCE_SECONDS));
        assert!(!verify(&h, b.as_bytes(), &Secret::new("other"), 1_721_012_400, TOLERANCE_SECONDS));
    }

    #[test]
    fn an_event_without_a_receipt_says_null() {
        let mut e = event();
        e.receipt_number = None;
        assert!(body(&e).ends_with(r#""case_seq":1,"receipt":null}"#));
    }

    #[test]
    fn every_configured_secret_signs_and_either_verifies() {
        let (new, old) = (Secret::new("new"), Secret::new("old"));
        let h = signature_header(100, "{}", &[&new, &old]);
        assert_eq!(h.matches("v1=").count(), 2);
        assert!(verify(&h, b"{}", &new, 100, 300));
        assert!(verify(&h, b"{}", &old, 100, 300));
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        for attempt in 1..=6u32 {
            let base = 1000u64 << (attempt - 1);
            for _ in 0..50 {
                let d = backoff(attempt, Duration::from_secs(3600)).as_millis() as u64;
                assert!(d >= base * 8 / 10 && d <= base * 12 / 10, "attempt {attempt}: {d}");
            }
        }
        assert_eq!(backoff(30, Duration::from_secs(60)), Duration::from_secs(60));
    }
}
