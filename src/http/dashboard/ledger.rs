//! `/ledger`: the ledger export for auditors (a zip of `entries.csv` and `manifest.json`, byte
//! for byte what `feerecon ledger export` writes: ledger exports are never neutralised, or they
//! would no longer verify), the live verification of the chain on demand, the signed
//! checkpoints and the public key.

use askama::Template;
use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::i18n;
use super::page::{Layout, PageError, render};
use super::session::Viewer;
use crate::domain::BusinessDate;
use crate::http::AppState;
use crate::http::download::{ZIP, download};
use crate::http::routes::{Access, Route};

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/ledger",
            Access::PageStaff,
            "Dashboard: the ledger's export form, checkpoints and verification (?verify=1).",
            get(page),
        ),
        Route::new(
            Method::GET,
            "/ledger/export",
            Access::PageStaff,
            "Dashboard: download the ledger export of dates ?from=&to= (zip).",
            get(export),
        ),
    ]
}

/// How many of the latest checkpoints the page lists.
const CHECKPOINTS: usize = 20;

struct CheckpointRow {
    kind: String,
    date: String,
    gateway: String,
    last_seq: i64,
    written: String,
}

#[derive(Template)]
#[template(path = "dashboard/ledger.html")]
struct LedgerPage {
    l: Layout,
    from: String,
    to: String,
    verify: Option<(bool, String)>,
    checkpoints: Vec<CheckpointRow>,
    public_key: String,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct LedgerQuery {
    from: Option<String>,
    to: Option<String>,
    verify: Option<String>,
}

async fn ledger_page(
    state: &AppState,
    v: &Viewer,
    q: &LedgerQuery,
    error: Option<(StatusCode, String)>,
) -> Result<Response, PageError> {
    let lang = v.lang;
    let t = lang.texts();
    let internal = |e: anyhow::Error| PageError::internal(lang, e).with(v);
    let verify = match super::given(&q.verify) {
        Some(_) => {
            let c = state.ledger.verify_live().await.map_err(internal)?;
            state.metrics.ledger_verified(c.ok);
            let text = if c.ok {
                format!(
                    "{}: {} {} · seq {} · {}",
                    t.verify_ok,
                    lang.count(c.entries),
                    t.entries_unit,
                    c.last_seq,
                    c.head_hash
                )
            } else {
                format!(
                    "{}: seq {} · {}",
                    t.verify_bad,
                    c.first_bad_seq.map(|s| s.to_string()).unwrap_or_default(),
                    c.reason.unwrap_or_default()
                )
            };
            Some((c.ok, text))
        }
        None => None,
    };
    let all = state.store.checkpoints().await.map_err(|e| internal(e.into()))?;
    let checkpoints = all
        .iter()
        .rev()
        .take(CHECKPOINTS)
        .map(|c| CheckpointRow {
            kind: c.kind.clone(),
            date: i18n::date(c.business_date),
            gateway: c.gateway.clone(),
            last_seq: c.last_seq,
            written: i18n::time(c.created_at),
        })
        .collect();
    let public_key = state.ledger.public_key().await.map_err(internal)?;
    let today = BusinessDate::of(state.clock.now()).to_string();
    let (status, error) = match error {
        Some((s, m)) => (s, Some(m)),
        None => (StatusCode::OK, None),
    };
    let page = LedgerPage {
        l: Layout::of(v, "ledger", t.ledger_title),
        from: super::given(&q.from).unwrap_or(&today).to_owned(),
        to: super::given(&q.to).unwrap_or(&today).to_owned(),
        verify,
        checkpoints,
        public_key,
        error,
    };
    Ok(render(status, &page))
}

async fn page(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    req: Request,
) -> Result<Response, PageError> {
    let q: LedgerQuery = super::query(req.uri(), v.lang)?;
    ledger_page(&state, &v, &q, None).await
}

async fn export(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    req: Request,
) -> Result<Response, PageError> {
    let q: LedgerQuery = super::query(req.uri(), v.lang)?;
    let date = |field: &str, s: Option<&str>| -> Result<BusinessDate, String> {
        let s = s.ok_or_else(|| format!("{field}: is required"))?;
        BusinessDate::parse(s).map_err(|e| format!("{field}: {e}"))
    };
    let range = date("from", super::given(&q.from)).and_then(|f| Ok((f, date("to", super::given(&q.to))?)));
    let (from, to) = match range {
        Ok((f, t)) if t < f => {
            let err = (StatusCode::UNPROCESSABLE_ENTITY, "to: is before from".to_owned());
            return ledger_page(&state, &v, &q, Some(err)).await;
        }
        Ok(r) => r,
        Err(m) => return ledger_page(&state, &v, &q, Some((StatusCode::UNPROCESSABLE_ENTITY, m))).await,
    };
    let export =
        state.ledger.export(from.naive(), to.naive()).await.map_err(|e| PageError::internal(v.lang, e).with(&v))?;
    let Some(export) = export else {
        let err = (StatusCode::NOT_FOUND, format!("from, to: no ledger entry is dated {from} to {to}"));
        return ledger_page(&state, &v, &q, Some(err)).await;
    };
    let bytes = crate::ledger::zip(&export).map_err(|e| PageError::internal(v.lang, e).with(&v))?;
    Ok(download(bytes, ZIP, &format!("ledger-{from}-{to}.zip")))
}
