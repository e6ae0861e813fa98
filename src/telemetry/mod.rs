//! What the service tells its operators: structured logs with `tracing` (human-readable text by
//! default, JSON lines with `FEERECON_LOG_FORMAT=json`, filtered by `RUST_LOG`, default `info`;
//! to standard error, so standard output stays clean for command results such as a token;
//! coloured only when standard error is a terminal and `NO_COLOR` is unset), and the Prometheus
//! metrics of `metrics`.

pub mod metrics;

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// How log lines are written (`FEERECON_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Whether log lines are coloured: on a terminal, unless `NO_COLOR` is set (no-color.org).
fn colour_wanted(terminal: bool, no_color: bool) -> bool {
    terminal && !no_color
}

/// Installs the global subscriber; a second call does nothing (the tests call it freely).
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // A span's close is logged with its busy and idle time: how long each phase of a long
    // operation (the `recon.*` spans of a run) took, measured by `tracing`.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: a file, a pipe or journald gets plain text.
        .with_ansi(colour_wanted(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").is_some()))
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}
