//! The HTTP server: one `AppState`, one router per area merged at the root (the API's areas and
//! the finance dashboard's pages, `dashboard`).
//!
//! `Application::build` connects and migrates the database, binds the listener (port 0 works,
//! which is how the tests start the real server) and assembles the router: each area's routes
//! wrapped in their access check (`auth`), then, for every request, the metrics and log line
//! (`metrics::observe`), the request timeout, the body limit, and the envelope for errors the
//! framework makes itself (`error::envelope_layer`), and outermost the security headers (`headers`). `run_until_stopped` serves until the given
//! shutdown future resolves, then lets requests in flight finish.

pub mod auth;
mod cases;
pub mod dashboard;
mod download;
mod dvcqg;
pub mod error;
mod exceptions;
mod finance;
mod gateway;
mod gateway_doc;
pub mod headers;
mod health;
mod ledger;
mod notifications;
mod openapi;
pub mod page;
mod payments;
mod receipts;
mod remittances;
pub mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::domain::{Clock, SystemClock};
use crate::fees::FeeEngine;
use crate::store::Store;
use crate::telemetry::metrics::Metrics;
use error::ApiError;
use routes::Route;

/// What every handler can reach. Cheap to clone: everything is behind an `Arc`.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// The checked fee catalogue and policy, loaded at start-up.
    pub fees: Arc<FeeEngine>,
    /// Payments and the gateway write path.
    pub payments: Arc<crate::payments::Service>,
    /// Settlement imports, reconciliation runs, exceptions and closes.
    pub finance: Arc<crate::recon::Finance>,
    /// Checkpoints, export and verification.
    pub ledger: Arc<crate::ledger::Ledger>,
    /// E-receipts: the portal's reads, finance's corrections, the day's summary.
    pub receipts: Arc<crate::receipts::Receipts>,
    /// Treasury remittance: statements by period and sub-item, transfers recorded under four eyes.
    pub remittances: Arc<crate::remittance::Remittances>,
    /// The OpenAPI document, rendered once from the route table.
    pub openapi: Arc<String>,
    /// The dashboard's login rate limit and long operations.
    pub dashboard: Arc<dashboard::Dashboard>,
}

/// Every route of the API, from every area.
pub fn all_routes() -> Vec<Route> {
    let mut r = health::routes();
    r.extend(cases::routes());
    r.extend(payments::routes());
    r.extend(gateway::routes());
    r.extend(dvcqg::routes());
    r.extend(notifications::routes());
    r.extend(finance::routes());
    r.extend(exceptions::routes());
    r.extend(ledger::routes());
    r.extend(dashboard::routes());
    r.extend(receipts::routes());
    r.extend(remittances::routes());
    r
}

pub use crate::config::StartupRefused;

/// The router for `state`, with every layer.
pub fn router(state: AppState) -> Router {
    let mut app: Router<AppState> = Router::new();
    for r in all_routes() {
        let guarded = r.handler.route_layer(from_fn_with_state((state.clone(), r.access), auth::authorize));
        app = app.route(r.path, guarded);
    }
    headers::apply(
        app.fallback(|| async { ApiError::NotFound("no such route".into()) })
            .layer(DefaultBodyLimit::max(state.config.max_body))
            .layer(from_fn_with_state(state.clone(), request_timeout))
            .layer(from_fn_with_state(state.clone(), observe))
            .layer(from_fn_with_state(error::BodyLimit(state.config.max_body), error::envelope_layer))
            .with_state(state),
    )
}

/// Middleware: counts and times every request by matched route, method and status, and logs it.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().to_string();
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    let elapsed = started.elapsed();
    let status = res.status().as_u16();
    tracing::info!(%method, %route, status, latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), "request");
    state.metrics.request(&route, &method, status, elapsed);
    res
}

/// Stops a request that runs longer than `FEERECON_REQUEST_TIMEOUT` with 503 `timeout`.
async fn request_timeout(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(state.config.request_timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// A built server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    /// Tells the background workers to stop.
    shutdown: watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

/// What `Application::build` may be given instead of the defaults (the tests and the demo inject a clock).
#[derive(Default)]
pub struct Overrides {
    pub clock: Option<Arc<dyn Clock>>,
    pub store: Option<Store>,
    pub fees: Option<Arc<FeeEngine>>,
}

impl Application {
    /// Loads the catalogue and policy, connects to the database, migrates it and binds
    /// `config.listen`. A bad policy or catalogue is a `fees::LoadError` in the chain.
    pub async fn build(mut config: Config, overrides: Overrides) -> anyhow::Result<Self> {
        let fees = match overrides.fees {
            Some(f) => f,
            None => Arc::new(FeeEngine::load(&config.catalogue, &config.policy)?),
        };
        let store = match overrides.store {
            Some(s) => s,
            None => Store::connect_with(
                config.database_url.expose(),
                crate::store::PoolLimits {
                    max_connections: config.db_max_connections,
                    acquire_timeout: config.db_acquire_timeout,
                    connect_timeout: config.db_acquire_timeout,
                },
                crate::store::OpenMode::Create,
            )
            .await
            .map_err(|e| match e {
                // Unreachable or refused: the operator's to fix (exit 1), the password hidden.
                crate::store::StoreError::Connect(_) => anyhow::Error::new(StartupRefused(config.about_database(&e))),
                other => anyhow::Error::new(other).context("Failed to open the database"),
            })?,
        };
        store.migrate().await.context("Failed to apply migrations")?;
        let clock = overrides.clock.unwrap_or_else(|| Arc::new(SystemClock));
        record_policy_load(&store, &fees, &*clock).await?;
        // An address in use or not ours to bind is the operator's to fix (exit 1), named.
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| StartupRefused(format!("FEERECON_LISTEN: cannot listen on {}: {e}", config.listen)))?;
        let bound = listener.local_addr().context("Failed to read the listening address")?;
        if config.public_url == format!("http://{}", config.listen) {
            // The default public URL follows the address actually bound (port 0 in tests).
            config.public_url = format!("http://{bound}");
        }
        let openapi = openapi::document(&all_routes()).to_json().context("Failed to render the OpenAPI document")?;
        let metrics = Arc::new(Metrics::default());
        // A key file is made only for a ledger that has no key yet (`check_key` records it).
        let recorded = store.recorded_ledger_key().await.context("Failed to read the ledger's key")?;
        let key = Arc::new(
            crate::ledger::LedgerKey::for_ledger(&config.ledger_key, recorded.as_deref())
                .map_err(|e| StartupRefused(format!("FEERECON_LEDGER_KEY: {e}")))?,
        );
        let issuer = Arc::new(crate::receipts::Issuer::new(config.receipts.clone(), fees.clone(), Some(key.clone())));
        if !config.receipts.configured {
            tracing::warn!(
                "FEERECON_RECEIPT_ORG_NAME and FEERECON_RECEIPT_TAX_CODE are not both set: receipts name a placeholder organisation and are not valid vouchers"
            );
        }
        let committer = crate::payments::Committer::start(store.clone(), clock.clone(), issuer.clone());
        let payments = Arc::new(crate::payments::Service {
            store: store.clone(),
            fees: fees.clone(),
            gateways: crate::gateway::Gateways::from_config(&config),
            clock: clock.clone(),
            committer: committer.clone(),
            metrics: metrics.clone(),
            public_url: config.public_url.clone(),
            payment_ttl: config.payment_ttl,
            pending_query_after: config.pending_query_after,
            callback_deadline: crate::payments::callback_deadline(config.request_timeout),
        });
        let ledger =
            Arc::new(crate::ledger::Ledger { store: store.clone(), key: Some(key.clone()), clock: clock.clone() });
        ledger.check_key().await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut workers = vec![
            tokio::spawn(payments.clone().run_query_worker(shutdown_rx.clone())),
            tokio::spawn(ledger.clone().run_end_of_day_worker(shutdown_rx.clone())),
        ];
        if let Some(webhook) = &config.webhook {
            let notifier = Arc::new(crate::notify::Notifier::new(
                store.clone(),
                clock.clone(),
                metrics.clone(),
                webhook,
                config.notify_max_attempts,
                config.notify_max_backoff,
            ));
            workers.push(tokio::spawn(notifier.run(shutdown_rx)));
        }
        let finance = Arc::new(crate::recon::Finance {
            store: store.clone(),
            fees: fees.clone(),
            clock: clock.clone(),
            profiles: config.settlement_profiles.clone(),
            committer,
            key: Some(key),
        });
        let receipts = Arc::new(crate::receipts::Receipts { store: store.clone(), issuer, clock: clock.clone() });
        let remittances = Arc::new(crate::remittance::Remittances {
            store: store.clone(),
            clock: clock.clone(),
            settings: config.remittance.clone(),
            payer: crate::remittance::statement::Payer {
                name: config.receipts.org_name.clone(),
                tax_code: config.receipts.tax_code.clone(),
                account: config.remittance.payer_account.clone(),
            },
        });
        let state = AppState {
            receipts,
            remittances,
            store,
            config: Arc::new(config),
            clock,
            metrics,
            fees,
            payments,
            finance,
            ledger,
            openapi: Arc::new(openapi),
            dashboard: Arc::new(dashboard::Dashboard::default()),
        };
        Ok(Self { router: router(state.clone()), listener, state, shutdown, workers })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then finishes requests in flight and closes the database.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let store = self.state.store.clone();
        // The peer address reaches handlers for the dashboard's login rate limit.
        let app = self.router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, app).with_graceful_shutdown(shutdown).await.context("server error")?;
        let _ = self.shutdown.send(true);
        for w in self.workers {
            let _ = w.await;
        }
        drop(self.state);
        store.close().await;
        Ok(())
    }
}

/// Writes `policy.load` to the audit log when the policy in force differs from the last one
/// recorded, so the log shows every policy the service has run under, and when it started.
async fn record_policy_load(store: &Store, fees: &FeeEngine, clock: &dyn Clock) -> anyhow::Result<()> {
    let last = store.last_audit("policy.load").await.context("Failed to read the audit log")?;
    if last.as_ref().and_then(|e| e.details.get("hash")).and_then(|h| h.as_str()) == Some(fees.policy.hash.as_str()) {
        return Ok(());
    }
    let files: Vec<String> = fees.policy.files.iter().map(|f| f.display().to_string()).collect();
    let event = crate::store::AuditEvent::new(
        "system",
        "policy.load",
        fees.policy.id.clone(),
        serde_json::json!({"hash": fees.policy.hash, "files": files, "rules": fees.policy.rules.len()}),
    );
    let mut tx = store.write().await?;
    crate::ledger::chain::append_audit(&mut tx, &[event], clock.now())
        .await
        .context("Failed to write the audit log")?;
    tx.commit().await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing requests in flight");
}
