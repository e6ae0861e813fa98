//! Prometheus metrics (SPEC §4.1 `/metrics`), kept in memory by `prometheus-client`.
//!
//! Counters and histograms are recorded where things happen: every HTTP request by matched
//! route, method and status (the server's middleware), callbacks by gateway and outcome (the
//! payment service), notification delivery attempts by result (the notifier), ledger
//! verifications by result (the verify route and the dashboard's check). Recording takes no lock
//! shared between requests beyond the label map's read lock (a `Family` is an `RwLock`ed map,
//! write-locked only the first time a label set is seen; the `Registry` is only read, by
//! `render`). Gauges that describe stored state (payments by status, notifications by state,
//! cases, exceptions by state, dates run but not closed, the oldest pending payment's age) are
//! set from the database at scrape time by the caller of `render`, so they are right whichever
//! instance made the change.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallbackLabels {
    pub gateway: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GatewayLabels {
    pub gateway: &'static str,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0].into_iter()
}

/// Every metric of one server. One per `Application` (the tests run several in a process).
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_duration: Family<RouteLabels, Histogram>,
    pub callbacks: Family<CallbackLabels, Counter>,
    pub notification_deliveries: Family<ResultLabels, Counter>,
    pub payments: Family<StatusLabels, Gauge>,
    pub notifications: Family<StateLabels, Gauge>,
    pub cases: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub exceptions: Family<StateLabels, Gauge>,
    pub unclosed_dates: Family<GatewayLabels, Gauge>,
    pub oldest_pending_payment_age: Gauge,
    pub ledger_verifications: Family<ResultLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "feerecon_http_requests",
            "HTTP requests by route, method and status.",
            http_requests.clone(),
        );
        let http_duration =
            Family::<RouteLabels, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()));
        registry.register(
            "feerecon_http_request_duration_seconds",
            "HTTP request latency by route and method.",
            http_duration.clone(),
        );
        let callbacks = Family::<CallbackLabels, Counter>::default();
        registry.register("feerecon_callbacks", "Gateway callbacks by gateway and outcome.", callbacks.clone());
        let notification_deliveries = Family::<ResultLabels, Counter>::default();
        registry.register(
            "feerecon_notification_deliveries",
            "Portal notification delivery attempts by result.",
            notification_deliveries.clone(),
        );
        let payments = Family::<StatusLabels, Gauge>::default();
        registry.register("feerecon_payments", "Payments by status.", payments.clone());
        let notifications = Family::<StateLabels, Gauge>::default();
        registry.register("feerecon_notifications", "Portal notifications by state.", notifications.clone());
        let cases = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        registry.register("feerecon_cases", "Cases known.", cases.clone());
        let exceptions = Family::<StateLabels, Gauge>::default();
        registry.register(
            "feerecon_exceptions",
            "Reconciliation exceptions by state (open and pending_approval wait for finance).",
            exceptions.clone(),
        );
        let unclosed_dates = Family::<GatewayLabels, Gauge>::default();
        registry.register(
            "feerecon_dates_run_not_closed",
            "Business dates reconciled at least once but not closed, by gateway.",
            unclosed_dates.clone(),
        );
        let oldest_pending_payment_age = Gauge::default();
        registry.register(
            "feerecon_oldest_pending_payment_age_seconds",
            "Age of the oldest payment still pending, in seconds (0: none pending).",
            oldest_pending_payment_age.clone(),
        );
        let ledger_verifications = Family::<ResultLabels, Counter>::default();
        registry.register(
            "feerecon_ledger_verifications",
            "Verifications of the stored ledger chain by result (ok, broken).",
            ledger_verifications.clone(),
        );
        // Both results from 0, so a rate or an alert on `broken` has a series before the first break.
        for result in ["ok", "broken"] {
            drop(ledger_verifications.get_or_create(&ResultLabels { result }));
        }
        Self {
            registry,
            http_requests,
            http_duration,
            callbacks,
            notification_deliveries,
            payments,
            notifications,
            cases,
            exceptions,
            unclosed_dates,
            oldest_pending_payment_age,
            ledger_verifications,
        }
    }
}

impl Metrics {
    /// Counts and times one HTTP request.
    pub fn request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.http_requests
            .get_or_create(&RequestLabels { route: route.to_owned(), method: method.to_owned(), status })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels { route: route.to_owned(), method: method.to_owned() })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one gateway callback by its outcome.
    pub fn callback(&self, gateway: &'static str, outcome: &'static str) {
        self.callbacks.get_or_create(&CallbackLabels { gateway, outcome }).inc();
    }

    /// Counts one notification delivery attempt by its result.
    pub fn delivery(&self, result: &'static str) {
        self.notification_deliveries.get_or_create(&ResultLabels { result }).inc();
    }

    /// Counts one verification of the stored ledger by its verdict.
    pub fn ledger_verified(&self, ok: bool) {
        self.ledger_verifications.get_or_create(&ResultLabels { result: if ok { "ok" } else { "broken" } }).inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_is_prometheus_text() {
        let m = Metrics::default();
        m.request("/x", "GET", 200, Duration::from_millis(30));
        m.callback("vnpay", "applied");
        m.callback("vnpay", "applied");
        m.payments.get_or_create(&StatusLabels { status: "paid" }).set(7);
        m.ledger_verified(true);
        m.ledger_verified(false);
        m.ledger_verified(true);
        let text = m.render();
        assert!(text.contains("# TYPE feerecon_http_requests counter\n"), "{text}");
        assert!(
            text.contains("feerecon_http_requests_total{route=\"/x\",method=\"GET\",status=\"200\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "feerecon_http_request_duration_seconds_bucket{le=\"0.025\",route=\"/x\",method=\"GET\"} 0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("feerecon_http_request_duration_seconds_bucket{le=\"0.05\",route=\"/x\",method=\"GET\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("feerecon_callbacks_total{gateway=\"vnpay\",outcome=\"applied\"} 2\n"), "{text}");
        assert!(text.contains("feerecon_payments{status=\"paid\"} 7\n"), "{text}");
        assert!(text.contains("feerecon_ledger_verifications_total{result=\"ok\"} 2\n"), "{text}");
        assert!(text.contains("feerecon_ledger_verifications_total{result=\"broken\"} 1\n"), "{text}");
    }

    #[test]
    fn ledger_verifications_start_at_zero_for_both_results() {
        let text = Metrics::default().render();
        assert!(text.contains("feerecon_ledger_verifications_total{result=\"ok\"} 0\n"), "{text}");
        assert!(text.contains("feerecon_ledger_verifications_total{result=\"broken\"} 0\n"), "{text}");
    }
}
