//! The ledger and the audit log for finance, auditors and administrators (SPEC §8).

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::download::{ZIP, download};
use super::error::{ApiError, ApiQuery};
use super::page::{ListPage, Page, PageQuery};
use super::routes::{Access, Route};
use crate::domain::{BusinessDate, FieldError};

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/api/v1/ledger",
            Access::Staff,
            "Ledger entries in seq order, paged (?cursor=&limit=).",
            get(entries),
        ),
        Route::new(
            Method::GET,
            "/api/v1/ledger/verify",
            Access::Staff,
            "Recompute the stored chain: hashes, balances, signatures.",
            get(verify),
        ),
        Route::new(
            Method::GET,
            "/api/v1/ledger/balances",
            Access::Staff,
            "Trial balance per account for a business date (?date=).",
            get(balances),
        ),
        Route::new(
            Method::GET,
            "/api/v1/ledger/export",
            Access::Staff,
            "A zip of entries.csv and manifest.json for dates ?from=&to=.",
            get(export),
        ),
        Route::new(
            Method::GET,
            "/api/v1/ledger/public-key",
            Access::Staff,
            "The Ed25519 public key checkpoints are signed with.",
            get(public_key),
        ),
        Route::new(
            Method::GET,
            "/api/v1/ledger/checkpoints",
            Access::Staff,
            "The signed checkpoints by last seq, paged (?cursor=&limit=).",
            get(checkpoints),
        ),
        Route::new(
            Method::GET,
            "/api/v1/audit-log",
            Access::Staff,
            "The chained audit log of manual actions in seq order, paged (?cursor=&limit=).",
            get(audit_log),
        ),
    ]
}

/// `cursor` and `limit`; `after` is the older name of `cursor`, still accepted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeqPage {
    cursor: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

impl SeqPage {
    fn page(self) -> Result<PageQuery, ApiError> {
        PageQuery::new_or_after(self.cursor, self.after, self.limit.as_deref())
    }
}

async fn entries(State(state): State<AppState>, ApiQuery(q): ApiQuery<SeqPage>) -> Result<Response, ApiError> {
    let q = q.page()?;
    let rows = state.store.ledger_entries(q.seq_cursor()?, q.fetch()).await?;
    Ok(Page::from_rows(rows, &q, |e| e.seq.to_string()).into_response())
}

async fn verify(State(state): State<AppState>) -> Result<Response, ApiError> {
    let check = state.ledger.verify_live().await?;
    state.metrics.ledger_verified(check.ok);
    Ok(Json(check).into_response())
}

fn date(field: &str, v: Option<&str>) -> Result<BusinessDate, ApiError> {
    let v = v.ok_or_else(|| ApiError::field(FieldError::new(field, "is required")))?;
    BusinessDate::parse(v).map_err(|e| ApiError::field(FieldError::new(field, e)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DateQuery {
    date: Option<String>,
}

async fn balances(State(state): State<AppState>, ApiQuery(q): ApiQuery<DateQuery>) -> Result<Response, ApiError> {
    let d = date("date", q.date.as_deref())?;
    let rows = state.store.trial_balance(d.naive()).await?;
    let (dr, cr) = rows.iter().fold((0i64, 0i64), |(a, b), r| (a + r.1, b + r.2));
    let accounts: Vec<_> =
        rows.iter().map(|(a, d, c)| json!({"account": a, "debit": d, "credit": c, "balance": d - c})).collect();
    Ok(Json(json!({"date": d, "accounts": accounts, "total_debit": dr, "total_credit": cr})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
}

async fn export(State(state): State<AppState>, ApiQuery(q): ApiQuery<RangeQuery>) -> Result<Response, ApiError> {
    let from = date("from", q.from.as_deref())?;
    let to = date("to", q.to.as_deref())?;
    if to < from {
        return Err(ApiError::field(FieldError::new("to", "is before from")));
    }
    let e = state
        .ledger
        .export(from.naive(), to.naive())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no ledger entry dated {from} to {to}")))?;
    let bytes = crate::ledger::zip(&e)?;
    Ok(download(bytes, ZIP, &format!("ledger-{from}-{to}.zip")))
}

async fn public_key(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(json!({"algorithm": "ed25519", "public_key": state.ledger.public_key().await?})).into_response())
}

async fn checkpoints(State(state): State<AppState>, ApiQuery(q): ApiQuery<ListPage>) -> Result<Response, ApiError> {
    let q = q.page()?;
    let rows = state.store.checkpoints_page(q.cursor(), q.fetch()).await?;
    if q.names_no_row(&rows) {
        return Err(q.unknown_cursor());
    }
    let page = Page::from_rows(rows, &q, |c| c.checkpoint_id.clone());
    Ok(page.map(|c| crate::ledger::export::manifest_checkpoint(&c)).into_response())
}

async fn audit_log(State(state): State<AppState>, ApiQuery(q): ApiQuery<SeqPage>) -> Result<Response, ApiError> {
    let q = q.page()?;
    let rows = state.store.audit_log(q.seq_cursor()?, q.fetch()).await?;
    Ok(Page::from_rows(rows, &q, |e| e.seq.to_string()).into_response())
}
