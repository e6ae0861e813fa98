//! The finance workflows around reconciliation (SPEC §7.1–§7.3): importing settlement files
//! (`import`), running a (date, gateway) and serving its report (`run`), the exceptions and their
//! four-eyes resolutions (`exceptions`), and closing a day with its settlement postings and
//! signed checkpoint (`close`).
//!
//! Each workflow reads through the store, computes with the pure cores (the `settlement` parser,
//! the `reconcile` matcher, the fee engine), and writes what it decided in one store transaction
//! with its ledger postings and audit entries (`ledger::chain`). Payments a settlement line proves
//! go through the payment committer, like any other payment outcome.

mod close;
mod exceptions;
mod import;
mod run;
mod views;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

pub use close::settlement_posting;
pub use exceptions::{Action, exception_view};
pub use run::{CsvPages, DayView, RunPhase, RunView};
pub use views::{CalendarCell, DayState, ExceptionDetail, PaymentDetail, SearchResult};

use crate::domain::payment::Gateway;
use crate::domain::{BusinessDate, Clock};
use crate::fees::FeeEngine;
use crate::ledger::LedgerKey;
use crate::ledger::chain::AppendError;
use crate::payments::Committer;
use crate::store::{AuditEvent, ExceptionChange, ExceptionRow, Store, StoreError, WriteTx};

#[derive(Debug, thiserror::Error)]
pub enum FinanceError {
    /// A request that cannot be acted on as given (422 / exit 1).
    #[error("{0}")]
    Invalid(String),
    /// A settlement file refused by its parser, with the line, field and reason (422 / exit 1).
    #[error("{name}: {error}")]
    File { name: String, error: crate::settlement::FileError },
    #[error("{0}")]
    NotFound(String),
    /// The same file again (409).
    #[error("{0}")]
    Duplicate(String),
    /// The state does not allow it (409 `conflict`).
    #[error("{0}")]
    Conflict(String),
    /// The (date, gateway) is closed (409 `day_closed`).
    #[error("{0}")]
    DayClosed(String),
    /// The date has not ended yet in Asia/Ho_Chi_Minh (409 `day_not_over`).
    #[error("{0}")]
    DayNotOver(String),
    /// The data changed since the latest run (409 `stale_run`).
    #[error("{0}")]
    StaleRun(String),
    /// The same person may not approve or reject their own request (403).
    #[error("{0}")]
    FourEyes(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for FinanceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => FinanceError::Duplicate(m),
            other => FinanceError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<AppendError> for FinanceError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Store(s) => s.into(),
            other => FinanceError::Internal(anyhow::Error::new(other)),
        }
    }
}

pub type Result<T, E = FinanceError> = std::result::Result<T, E>;

/// The finance service. Cheap to share behind an `Arc`.
pub struct Finance {
    pub store: Store,
    pub fees: Arc<FeeEngine>,
    pub clock: Arc<dyn Clock>,
    /// The folder of settlement profiles.
    pub profiles: PathBuf,
    /// Applies the payments that `confirm_from_settlement` proves.
    pub committer: Committer,
    /// Signs the checkpoint of a close; `None` where nothing is closed (the CLI).
    pub key: Option<Arc<LedgerKey>>,
}

fn vn_date(t: DateTime<Utc>) -> NaiveDate {
    BusinessDate::of(t).naive()
}

/// An exception change, with the posting it makes, written in the same transaction: an approved
/// movement (`records_posting`: its id becomes the exception's `posting_id`) or the reversal of
/// the exception's posting (`posting_id` becomes null: each approved posting is reversed once).
pub(crate) struct Planned {
    pub change: ExceptionChange,
    pub posting: Option<crate::domain::ledger::Posting>,
    pub records_posting: bool,
}

/// Writes planned exception changes with their postings and audit entries inside `tx`; `false`
/// when an exception was no longer in its expected state (the caller drops `tx`: nothing is
/// written).
pub(crate) async fn apply_planned(
    tx: &mut WriteTx,
    planned: Vec<Planned>,
    audit: &[AuditEvent],
    at: DateTime<Utc>,
) -> Result<bool> {
    let postings: Vec<_> = planned.iter().filter_map(|p| p.posting.clone()).collect();
    let mut ids = crate::ledger::chain::append_postings(tx, &postings, at).await?.into_iter();
    let changes: Vec<ExceptionChange> = planned
        .into_iter()
        .map(|p| {
            let mut c = p.change;
            if p.posting.is_some() {
                let id = ids.next();
                if p.records_posting {
                    c.posting_id = id;
                    c.keep_posting = false;
                }
            }
            c
        })
        .collect();
    if !tx.apply_exception_changes(&changes, at).await? {
        return Ok(false);
    }
    crate::ledger::chain::append_audit(tx, audit, at).await?;
    Ok(true)
}

impl Finance {
    /// Every exception of a gateway, by id.
    async fn states(&self, gateway: Gateway) -> Result<std::collections::HashMap<String, ExceptionRow>> {
        Ok(self.store.gateway_exceptions(gateway).await?.into_iter().map(|e| (e.exception_id.clone(), e)).collect())
    }
}
