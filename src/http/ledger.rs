//! The ledger and the audit log for finance, auditors and administrators (SPEC §8).

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::download::{ZIP, download};
use super::error::{ApiError, ApiQuery};
use super::page::{ListPage, Page, PageQuery};
use super::routes::{Access, Route, bytes_schema};
use crate::domain::{BusinessDate, FieldError};

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/api/v1/ledger",
            Access::Staff,
            "Ledger entries in seq order, paged (?cursor=&limit=).",
            get(entries),
        )
        .query::<SeqPage>()
        .json::<Page<crate::store::LedgerEntry>>(
            200,
            "A page of entries; next_cursor (opaque) follows this page when more may follow.",
        ),
        Route::new(
            Method::GET,
            "/api/v1/ledger/verify",
            Access::Staff,
            "Recompute the stored chain: hashes, balances, signatures.",
            get(verify),
        )
        .json::<crate::ledger::LiveCheck>(200, "What the recomputation found."),
        Route::new(
            Method::GET,
            "/api/v1/ledger/balances",
            Access::Staff,
            "Trial balance per account for a business date (?date=).",
            get(balances),
        )
        .query::<DateQuery>()
        .json::<Balances>(200, "Debits, credits and balance per account."),
        Route::new(
            Method::GET,
            "/api/v1/ledger/export",
            Access::Staff,
            "A zip of entries.csv and manifest.json for dates ?from=&to=.",
            get(export),
        )
        .query::<RangeQuery>()
        .answer(
            200,
            "A zip of entries.csv and manifest.json (signed checkpoints), as a download.",
            vec![(ZIP, bytes_schema(ZIP))],
        ),
        Route::new(
            Method::GET,
            "/api/v1/ledger/public-key",
            Access::Staff,
            "The Ed25519 public key checkpoints are signed with.",
            get(public_key),
        )
        .json::<PublicKey>(200, "The verifying key."),
        Route::new(
            Method::GET,
            "/api/v1/ledger/checkpoints",
            Access::Staff,
            "The signed checkpoints by last seq, paged (?cursor=&limit=).",
            get(checkpoints),
        )
        .query::<ListPage>()
        .json::<Page<crate::ledger::export::ManifestCheckpoint>>(200, "Every signed checkpoint, oldest first."),
        Route::new(
            Method::GET,
            "/api/v1/audit-log",
            Access::Staff,
            "The chained audit log of manual actions in seq order, paged (?cursor=&limit=).",
            get(audit_log),
        )
        .query::<SeqPage>()
        .json::<Page<crate::store::AuditEntry>>(
            200,
            "A page of the audit log; next_cursor (opaque) follows this page when more may follow.",
        ),
    ]
}

/// An account's trial balance.
#[derive(Serialize, ToSchema)]
struct AccountBalance {
    account: String,
    debit: i64,
    credit: i64,
    /// debit − credit.
    balance: i64,
}

/// The trial balance of a business date.
#[derive(Serialize, ToSchema)]
struct Balances {
    date: BusinessDate,
    accounts: Vec<AccountBalance>,
    total_debit: i64,
    total_credit: i64,
}

/// The key checkpoints are signed with.
#[derive(Serialize, ToSchema)]
struct PublicKey {
    /// Always `ed25519`.
    algorithm: &'static str,
    /// Hex.
    public_key: String,
}

/// `cursor` and `limit`; `after` (a plain `seq`) is the older way to page, still accepted.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct SeqPage {
    /// The `next_cursor` of the previous page, passed back unchanged (opaque).
    cursor: Option<String>,
    /// The older way to page: the last `seq` answered, as a plain number.
    after: Option<String>,
    /// Entries per page, 1 to 1000 (default 100).
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

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct DateQuery {
    /// Required: YYYY-MM-DD.
    #[param(required = true)]
    date: Option<String>,
}

async fn balances(State(state): State<AppState>, ApiQuery(q): ApiQuery<DateQuery>) -> Result<Response, ApiError> {
    let d = date("date", q.date.as_deref())?;
    let rows = state.store.trial_balance(d.naive()).await?;
    let (dr, cr) = rows.iter().fold((0i64, 0i64), |(a, b), r| (a + r.1, b + r.2));
    let accounts: Vec<_> = rows
        .into_iter()
        .map(|(account, debit, credit)| AccountBalance { account, debit, credit, balance: debit - credit })
        .collect();
    Ok(Json(Balances { date: d, accounts, total_debit: dr, total_credit: cr }).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct RangeQuery {
    /// Required: the first date, YYYY-MM-DD.
    #[param(required = true)]
    from: Option<String>,
    /// Required: the last date, YYYY-MM-DD.
    #[param(required = true)]
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
    Ok(Json(PublicKey { algorithm: "ed25519", public_key: state.ledger.public_key().await? }).into_response())
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
