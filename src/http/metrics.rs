//! Prometheus metrics, kept in memory and rendered as text at `/metrics`.
//!
//! Counters and latency histograms are recorded by the `observe` middleware (per matched route,
//! method and status) and by the areas that count events (callbacks by gateway and outcome,
//! notification deliveries). Gauges that describe stored state (payments by status, notifications
//! by state) are read from the database at scrape time, so they are right whichever instance
//! made the change. Latencies are integer microseconds, rendered as seconds.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

/// Histogram bucket bounds in microseconds.
const BUCKETS_US: [u64; 11] =
    [5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000];

#[derive(Default)]
struct Histogram {
    /// Cumulative counts per bucket of `BUCKETS_US`.
    buckets: [u64; BUCKETS_US.len()],
    count: u64,
    sum_us: u64,
}

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, Labels), u64>>,
    histograms: Mutex<BTreeMap<(&'static str, Labels), Histogram>>,
    help: Mutex<BTreeMap<&'static str, &'static str>>,
}

fn seconds(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn render_labels(labels: &[(&'static str, String)], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() { String::new() } else { format!("{{{}}}", parts.join(",")) }
}

impl Metrics {
    /// Adds `by` to a counter.
    pub fn count(&self, name: &'static str, help: &'static str, labels: Labels, by: u64) {
        self.help.lock().unwrap_or_else(|p| p.into_inner()).insert(name, help);
        *self.counters.lock().unwrap_or_else(|p| p.into_inner()).entry((name, labels)).or_default() += by;
    }

    /// Records one observation of a duration.
    pub fn observe(&self, name: &'static str, help: &'static str, labels: Labels, d: Duration) {
        self.help.lock().unwrap_or_else(|p| p.into_inner()).insert(name, help);
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let mut h = self.histograms.lock().unwrap_or_else(|p| p.into_inner());
        let e = h.entry((name, labels)).or_default();
        for (i, bound) in BUCKETS_US.iter().enumerate() {
            if us <= *bound {
                e.buckets[i] += 1;
            }
        }
        e.count += 1;
        e.sum_us = e.sum_us.saturating_add(us);
    }

    /// The Prometheus text exposition of every counter and histogram, then `gauges`
    /// (name, help, labels, value) read by the caller.
    pub fn render(&self, gauges: &[(&'static str, &'static str, Labels, i64)]) -> String {
        let help = self.help.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut out = String::new();
        let mut last = "";
        for ((name, labels), v) in self.counters.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            if *name != last {
                let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} counter", help.get(name).unwrap_or(&""));
                last = name;
            }
            let _ = writeln!(out, "{name}{} {v}", render_labels(labels, None));
        }
        last = "";
        for ((name, labels), h) in self.histograms.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            if *name != last {
                let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} histogram", help.get(name).unwrap_or(&""));
                last = name;
            }
            for (i, bound) in BUCKETS_US.iter().enumerate() {
                let le = seconds(*bound);
                let _ = writeln!(out, "{name}_bucket{} {}", render_labels(labels, Some(("le", &le))), h.buckets[i]);
            }
            let _ = writeln!(out, "{name}_bucket{} {}", render_labels(labels, Some(("le", "+Inf"))), h.count);
            let _ = writeln!(out, "{name}_sum{} {}", render_labels(labels, None), seconds(h.sum_us));
            let _ = writeln!(out, "{name}_count{} {}", render_labels(labels, None), h.count);
        }
        last = "";
        for (name, help, labels, v) in gauges {
            if *name != last {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
                last = name;
            }
            let _ = writeln!(out, "{name}{} {v}", render_labels(labels, None));
        }
        out
    }
}

/// Middleware: counts and times every request by matched route, method and status, and logs it.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().to_string();
    let started = Instant::now();
    let res = next.run(req).await;
    let elapsed = started.elapsed();
    let status = res.status().as_u16();
    tracing::info!(%method, %route, status, latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), "request");
    state.metrics.count(
        "feerecon_http_requests_total",
        "HTTP requests by route, method and status.",
        vec![("route", route.clone()), ("method", method.clone()), ("status", status.to_string())],
        1,
    );
    state.metrics.observe(
        "feerecon_http_request_duration_seconds",
        "HTTP request latency by route and method.",
        vec![("route", route), ("method", method)],
        elapsed,
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_is_prometheus_text() {
        let m = Metrics::default();
        m.count("x_total", "Things.", vec![("kind", "a\"b".into())], 2);
        m.count("x_total", "Things.", vec![("kind", "c".into())], 1);
        m.observe("lat_seconds", "Latency.", vec![], Duration::from_millis(30));
        let text = m.render(&[("g", "A gauge.", vec![("s", "paid".into())], 7)]);
        assert!(text.contains("# TYPE x_total counter\n"), "{text}");
        assert!(text.contains("x_total{kind=\"a\\\"b\"} 2\n"), "{text}");
        assert!(text.contains("lat_seconds_bucket{le=\"0.025000\"} 0\n"), "{text}");
        assert!(text.contains("lat_seconds_bucket{le=\"0.050000\"} 1\n"), "{text}");
        assert!(text.contains("lat_seconds_count 1\n"), "{text}");
        assert!(text.contains("g{s=\"paid\"} 7\n"), "{text}");
    }
}
