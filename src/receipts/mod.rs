//! E-receipts (issue 18; NĐ 254/2026 Art. 22–29, TT 91/2026; `../shared/reference/after-collection.md`
//! §1): a receipt for every fee collected, issued in the transaction that confirms the money,
//! never changed afterwards, and the day's summary for the tax office (Mẫu 01/TH-BLĐT).
//!
//! - `issue`: inside a caller's write transaction, the receipts of payments confirmed now (the
//!   payment committer) and of cases the budget pays (payment creation), and the replacements and
//!   adjustments finance issues; numbers come from one sequence per (template, symbol, year),
//!   allocated in that same transaction (`store::receipts`).
//! - `content` (pure): what a receipt says and the canonical bytes its Ed25519 signature covers;
//!   `words` (pure): amounts in Vietnamese words.
//! - `summary`: the day's summary (JSON, CSV, XLSX); `page`: the printable HTML page.
//!
//! What rests on facts the reference tags [I] (inferred, not read in a source) is marked so here
//! and in the README: the payer named on a receipt, the status labels of the summary, the wording
//! of an adjustment, a receipt for a duplicate charge.

pub mod content;
pub mod issue;
pub mod page;
pub mod summary;
pub mod words;

use std::sync::Arc;

use serde::Serialize;

use crate::config::ReceiptConfig;
use crate::domain::receipt::{ReceiptKind, ReceiptStatus};
use crate::domain::{BusinessDate, CaseCode, Clock, Timestamp};
use crate::fees::FeeEngine;
use crate::ledger::LedgerKey;
use crate::store::{AuditEvent, ReceiptRow, Store, StoreError};
use content::{Collector, Content, Item, Payer, QuotedLine, Related, SIGNED_PREFIX};

pub use issue::{IssueError, Issued, Signing, issue_for_payments, number_for_payments};

/// What issues receipts: the organisation as configured, the catalogue (fee names and budget
/// sub-items) and the ledger's signing key. Without a key nothing can be issued, so a
/// transaction that must issue a receipt fails whole (`IssueError::NoKey`).
pub struct Issuer {
    pub settings: ReceiptConfig,
    fees: Arc<FeeEngine>,
    key: Option<Arc<LedgerKey>>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").field("settings", &self.settings).field("key", &self.key).finish_non_exhaustive()
    }
}

impl Issuer {
    pub fn new(settings: ReceiptConfig, fees: Arc<FeeEngine>, key: Option<Arc<LedgerKey>>) -> Self {
        Self { settings, fees, key }
    }

    /// The fee engine whose catalogue names fees and their budget sub-items.
    pub fn fees(&self) -> &Arc<FeeEngine> {
        &self.fees
    }

    /// The collecting organisation, as configured now.
    pub fn collector(&self) -> Collector {
        Collector { name: self.settings.org_name.clone(), tax_code: self.settings.tax_code.clone() }
    }

    /// A stored quote's item with the catalogue's name and budget sub-item of the fee in force on
    /// the quote's date; the fee id as its name when the catalogue no longer has it.
    fn line(&self, procedure: &str, as_of: chrono::NaiveDate, i: &crate::domain::ledger::QuotedItem) -> QuotedLine {
        let entry = crate::domain::ProcedureCode::parse(procedure)
            .ok()
            .and_then(|code| self.fees.catalogue.procedure(&code))
            .and_then(|p| {
                let mut same = p.fees.iter().filter(|f| f.id == i.fee);
                let first = same.clone().next();
                same.find(|f| f.in_force(as_of)).or(first)
            });
        QuotedLine {
            fee: i.fee.clone(),
            name: entry.map_or_else(|| i.fee.clone(), |f| f.name.clone()),
            kind: i.kind.clone(),
            budget_subitem: entry.and_then(|f| f.budget_subitem.clone()),
            citizen_due: i.citizen_due,
            budget_due: i.budget_due,
        }
    }

    /// The signature (hex) and public key (hex) of a receipt's canonical content.
    fn sign(&self, canonical: &str) -> Result<(String, String), IssueError> {
        let key = self.key.as_ref().ok_or(IssueError::NoKey)?;
        Ok((key.sign_hex(&content::signed_message(canonical)), key.public_hex()))
    }

    /// The signing key, to sign on other threads (`issue::number_for_payments`).
    fn key(&self) -> Result<Arc<LedgerKey>, IssueError> {
        self.key.clone().ok_or(IssueError::NoKey)
    }
}

/// Why a receipt request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error("{0}")]
    NotFound(String),
    /// A request that cannot be acted on as given (422, the message names the field).
    #[error("{0}")]
    Invalid(String),
    /// The receipt's state does not allow it (409): replaced already, an adjustment, ...
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for ReceiptError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ReceiptError::Conflict(m),
            other => ReceiptError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<IssueError> for ReceiptError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Store(s) => s.into(),
            other => ReceiptError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<crate::ledger::chain::AppendError> for ReceiptError {
    fn from(e: crate::ledger::chain::AppendError) -> Self {
        ReceiptError::Internal(anyhow::Error::new(e))
    }
}

pub type Result<T, E = ReceiptError> = std::result::Result<T, E>;

/// How a receipt's signature is checked, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SignatureView {
    pub algorithm: &'static str,
    pub public_key: String,
    /// Hex Ed25519 signature of `prefix` followed by `content`'s UTF-8 bytes.
    pub value: String,
    pub prefix: &'static str,
    /// The canonical content, exactly as signed.
    pub content: String,
}

/// A receipt as the API shows it: its content, where it stands, and how to check it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReceiptView {
    pub receipt_id: String,
    pub template: String,
    pub symbol: String,
    pub number: i64,
    pub kind: ReceiptKind,
    pub status: ReceiptStatus,
    pub issued_at: Timestamp,
    pub issue_date: BusinessDate,
    pub case_code: String,
    pub payment_id: Option<String>,
    pub collector: Collector,
    pub payer: Payer,
    pub applicant: String,
    pub items: Vec<Item>,
    pub total: i64,
    pub total_in_words: String,
    pub currency: String,
    pub related: Option<Related>,
    pub reason: Option<String>,
    pub note: Option<String>,
    /// The replacement that took its place, if any.
    pub replaced_by: Option<String>,
    /// The adjustments made to it, oldest first.
    pub adjusted_by: Vec<String>,
    pub print_url: String,
    pub signature: SignatureView,
}

/// A receipt's status from the receipts that refer to it (`referring`: any receipts; only
/// those that name it count).
pub fn status_of(receipt_id: &str, referring: &[ReceiptRow]) -> (ReceiptStatus, Option<String>, Vec<String>) {
    let mine = referring.iter().filter(|r| r.related_receipt_id.as_deref() == Some(receipt_id));
    let mut replaced_by = None;
    let mut adjusted_by = Vec::new();
    for r in mine {
        match r.kind {
            ReceiptKind::Replacement => replaced_by = Some(r.receipt_id.clone()),
            ReceiptKind::Adjustment => adjusted_by.push(r.receipt_id.clone()),
            ReceiptKind::Original => {}
        }
    }
    let status = if replaced_by.is_some() {
        ReceiptStatus::Replaced
    } else if !adjusted_by.is_empty() {
        ReceiptStatus::Adjusted
    } else {
        ReceiptStatus::Issued
    };
    (status, replaced_by, adjusted_by)
}

/// The stored content of a receipt.
pub fn content_of(r: &ReceiptRow) -> Result<Content> {
    serde_json::from_str(&r.content).map_err(|e| {
        ReceiptError::Internal(anyhow::anyhow!("receipt {}: stored content unreadable: {e}", r.receipt_id))
    })
}

fn view(r: &ReceiptRow, referring: &[ReceiptRow]) -> Result<ReceiptView> {
    let c = content_of(r)?;
    let (status, replaced_by, adjusted_by) = status_of(&r.receipt_id, referring);
    Ok(ReceiptView {
        receipt_id: r.receipt_id.clone(),
        template: c.template,
        symbol: c.symbol,
        number: c.number,
        kind: c.kind,
        status,
        issued_at: c.issued_at,
        issue_date: c.issue_date,
        case_code: c.case_code,
        payment_id: c.payment_id,
        collector: c.collector,
        payer: c.payer,
        applicant: c.applicant,
        items: c.items,
        total: c.total,
        total_in_words: c.total_in_words,
        currency: c.currency,
        related: c.related,
        reason: c.reason,
        note: c.note,
        replaced_by,
        adjusted_by,
        print_url: format!("/api/v1/receipts/{}/print", r.receipt_id),
        signature: SignatureView {
            algorithm: "ed25519",
            public_key: r.public_key.clone(),
            value: r.signature.clone(),
            prefix: SIGNED_PREFIX,
            content: r.content.clone(),
        },
    })
}

/// A replacement request (TT 91 Art. 20(2)): why, and the payer's name when that is what was wrong.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceRequest {
    pub reason: String,
    #[serde(default)]
    pub payer_name: Option<String>,
}

/// An adjustment request: why (a refund, say), and the signed difference of each fee item.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustRequest {
    pub reason: String,
    pub items: Vec<AdjustItem>,
}

#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustItem {
    pub fee: String,
    /// Signed đồng: negative for a refund.
    pub amount: i64,
}

/// The largest difference one adjustment item may carry, in đồng (far above any fee).
const MAX_DIFFERENCE: u64 = 1_000_000_000_000;

/// A text a finance user gives (a reason, a name): one line, 1 to 500 characters.
fn checked_text(field: &str, v: &str) -> Result<String> {
    let t = v.trim();
    if t.is_empty() || t.chars().count() > 500 || t.chars().any(char::is_control) {
        return Err(ReceiptError::Invalid(format!("{field}: must be one line of 1 to 500 characters")));
    }
    Ok(t.to_owned())
}

/// The receipts service: reads for the portal, corrections for finance, the day's summary.
pub struct Receipts {
    pub store: Store,
    pub issuer: Arc<Issuer>,
    pub clock: Arc<dyn Clock>,
}

impl Receipts {
    /// A case's receipts, each with its status.
    pub async fn for_case(&self, code: &CaseCode) -> Result<Vec<ReceiptView>> {
        let rows = self.store.case_receipts(code).await?;
        // Corrections carry the case code too: every receipt referring to one is in `rows`.
        rows.iter().map(|r| view(r, &rows)).collect()
    }

    /// The receipts issued on a business date (in +07:00), in sequence order, each with its
    /// status now (the summary's rows are as of the end of the date instead).
    pub async fn of_date(&self, date: BusinessDate) -> Result<Vec<ReceiptView>> {
        let rows = self.store.receipts_of_date(date.naive()).await?;
        let ids: Vec<&str> = rows.iter().map(|r| r.receipt_id.as_str()).collect();
        let referring = self.store.receipts_referring_to(&ids).await?;
        rows.iter().map(|r| view(r, &referring)).collect()
    }

    pub async fn get(&self, receipt_id: &str) -> Result<ReceiptView> {
        let r = self
            .store
            .receipt(receipt_id)
            .await?
            .ok_or_else(|| ReceiptError::NotFound(format!("no receipt {receipt_id}")))?;
        let referring = self.store.receipts_referring_to(&[receipt_id]).await?;
        view(&r, &referring)
    }

    /// The printable HTML page of a receipt.
    pub async fn page(&self, receipt_id: &str) -> Result<String> {
        Ok(page::render(&self.get(receipt_id).await?))
    }

    /// Issues the replacement of a receipt, audited, in one transaction.
    pub async fn replace(&self, receipt_id: &str, req: &ReplaceRequest, actor: &str) -> Result<ReceiptView> {
        let reason = checked_text("reason", &req.reason)?;
        let payer_name = req.payer_name.as_deref().map(|n| checked_text("payer_name", n)).transpose()?;
        let now = self.clock.now();
        let mut tx = self.store.write().await?;
        let row =
            issue::replace_in(&mut tx, &self.issuer, receipt_id, payer_name.as_deref(), &reason, actor, now).await?;
        let audit = AuditEvent::new(
            actor,
            "receipt.replace",
            receipt_id,
            serde_json::json!({"replacement": row.receipt_id, "reference": row.reference(), "reason": reason, "payer_name": payer_name}),
        );
        crate::ledger::chain::append_audit(&mut tx, &[audit], now).await?;
        tx.commit().await?;
        self.get(&row.receipt_id).await
    }

    /// Issues an adjustment of a receipt, audited, in one transaction.
    pub async fn adjust(&self, receipt_id: &str, req: &AdjustRequest, actor: &str) -> Result<ReceiptView> {
        let reason = checked_text("reason", &req.reason)?;
        if let Some(i) = req.items.iter().find(|i| i.amount.unsigned_abs() > MAX_DIFFERENCE) {
            return Err(ReceiptError::Invalid(format!("items: {} differs by more than {MAX_DIFFERENCE} đồng", i.fee)));
        }
        let differences: Vec<(String, i64)> = req.items.iter().map(|i| (i.fee.clone(), i.amount)).collect();
        let now = self.clock.now();
        let mut tx = self.store.write().await?;
        let row = issue::adjust_in(&mut tx, &self.issuer, receipt_id, &differences, &reason, actor, now).await?;
        let audit = AuditEvent::new(
            actor,
            "receipt.adjust",
            receipt_id,
            serde_json::json!({"adjustment": row.receipt_id, "reference": row.reference(), "reason": reason, "total": row.total}),
        );
        crate::ledger::chain::append_audit(&mut tx, &[audit], now).await?;
        tx.commit().await?;
        self.get(&row.receipt_id).await
    }

    /// The summary of the receipts issued on a business date.
    pub async fn summary(&self, date: BusinessDate) -> Result<summary::Summary> {
        summary::build(&self.store, &self.issuer.collector(), date).await
    }
}
