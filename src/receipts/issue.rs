//! Issuing receipts inside a caller's write transaction, so that a receipt exists exactly when
//! the money it acknowledges is confirmed (issue 18): the payment committer calls
//! `number_for_payments` with the payments a batch confirmed, payment creation calls
//! `issue_for_payments` with a budget-covered case, and finance's corrections go through
//! `replace_in` and `adjust_in`.
//!
//! Numbers: the symbol is the year of issue at +07:00, `T` and the configured letters; the numbers
//! of one call are allocated together from the (template, symbol, year) sequence by one statement
//! that locks the sequence's row until the transaction ends (`store::receipts`). So two
//! transactions, on one instance or on two sharing a PostgreSQL database, never get the same
//! number, and a transaction that rolls back takes its numbers back with it: every number of a
//! sequence belongs to exactly one receipt. Lock order: a transaction that posts to the ledger
//! appends its postings (the chain's head) before it allocates numbers, and a correction locks
//! the receipt it corrects before; no transaction takes them the other way round.
//!
//! Signatures: a receipt's content, number included, is fixed once its number is allocated, so
//! the committer's receipts (`number_for_payments`) are signed on blocking threads while it
//! writes the rest of its batch, and written last (`Signing::insert`): the Ed25519 signatures,
//! about a fifth of a confirmation's instructions, leave the committer's serial path. The rows
//! and the signed bytes are those signing in line gives (a unit test compares them).

use std::collections::HashMap;

use chrono::{DateTime, Datelike as _, Utc};

use super::content::{self, Content, Draft, PaymentFacts};
use super::{Issuer, ReceiptError, content_of, status_of};
use crate::domain::payment::{EventType, Flag, PaymentStatus};
use crate::domain::receipt::{PayerKind, ReceiptKind, ReceiptRef, ReceiptStatus, TEMPLATE};
use crate::domain::{Timestamp, new_id};
use crate::fees::stored::{ReadQuote, read_quote};
use crate::store::{OutboxEvent, Payment, ReceiptRow, StoreError, WriteTx};

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// No ledger key to sign with: nothing is issued, and the confirming transaction fails.
    #[error("no ledger key to sign receipts with")]
    NoKey,
    /// A payment whose stored quote or case cannot be read back: a bug or a hand-edited database.
    #[error("payment {payment_id}: {why}")]
    Corrupt { payment_id: String, why: String },
    /// The numbers ran out (8 digits), or storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A thread signing receipts beside the transaction did not finish (it panicked).
    #[error("signing receipts: {0}")]
    Signing(String),
}

impl IssueError {
    /// Whether trying the whole transaction again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, IssueError::Store(e) if e.is_transient())
    }
}

/// The receipts a transaction issued for payments, by payment: the one the portal's event for
/// that payment carries (the citizen's for a paid payment, the budget's for a budget-covered case).
#[derive(Debug, Clone, Default)]
pub struct Issued {
    pub by_payment: HashMap<String, ReceiptRef>,
}

impl Issued {
    /// Makes each `payment.succeeded`, `payment.duplicate` and `payment.budget_covered` event of
    /// these payments carry its receipt.
    pub fn attach(&self, events: &mut [OutboxEvent]) {
        for e in events {
            let carries =
                matches!(e.event_type, EventType::Succeeded | EventType::Duplicate | EventType::BudgetCovered);
            if let Some(r) = self.by_payment.get(&e.payment_id).filter(|_| carries) {
                e.set_receipt(r);
            }
        }
    }
}

/// Issues, inside `tx`, the original receipts of payments confirmed now: a `paid` payment gets
/// the citizen's receipt (and, unless it is a duplicate, the budget's for its quote's budget
/// part), a `budget_covered` one the budget's; others get none (a waived case collects nothing).
/// Call it after the transaction's ledger postings (see the module's lock order).
pub async fn issue_for_payments(
    tx: &mut WriteTx,
    issuer: &Issuer,
    payments: &[&Payment],
    at: DateTime<Utc>,
) -> Result<Issued, IssueError> {
    let payments: Vec<(&Payment, Option<&ReadQuote>)> = payments.iter().map(|p| (*p, None)).collect();
    let mut signing = number_for_payments(tx, issuer, &payments, at).await?;
    let issued = std::mem::take(&mut signing.issued);
    signing.insert(tx).await?;
    Ok(issued)
}

/// The receipts of payments confirmed now (as `issue_for_payments` issues them), numbered in
/// `tx` and being signed on other threads while the caller writes the rest of its transaction;
/// `Signing::insert` waits for the signatures and writes the receipts. A transaction that fails
/// before `insert` writes no receipt and, rolling back, gives its numbers back. A payment may come
/// with its stored quote already read (the committer reads each once), else it is read here.
pub async fn number_for_payments(
    tx: &mut WriteTx,
    issuer: &Issuer,
    payments: &[(&Payment, Option<&ReadQuote>)],
    at: DateTime<Utc>,
) -> Result<Signing, IssueError> {
    let eligible: Vec<(&Payment, Option<&ReadQuote>)> = payments
        .iter()
        .copied()
        .filter(|(p, _)| matches!(p.status, PaymentStatus::Paid | PaymentStatus::BudgetCovered))
        .collect();
    if eligible.is_empty() {
        return Ok(Signing::default());
    }
    let versions: Vec<(&str, i64)> = eligible.iter().map(|(p, _)| (p.case_code.as_str(), p.case_version)).collect();
    let names = tx.applicant_names(&versions).await?;
    let mut drafts = Vec::new();
    for (p, quote) in &eligible {
        let corrupt = |why: String| IssueError::Corrupt { payment_id: p.payment_id.clone(), why };
        let quote = match quote {
            Some(q) => std::borrow::Cow::Borrowed(*q),
            None => std::borrow::Cow::Owned(read_quote(&p.quote).map_err(|e| corrupt(e.to_string()))?),
        };
        let head = quote.head().map_err(|e| corrupt(e.to_string()))?;
        let items = &quote.items;
        let applicant = names
            .get(&(p.case_code.as_str().to_owned(), p.case_version))
            .ok_or_else(|| corrupt(format!("no version {} of case {}", p.case_version, p.case_code)))?;
        let facts = PaymentFacts {
            payment_id: p.payment_id.clone(),
            case_code: p.case_code.as_str().to_owned(),
            procedure_code: head.procedure_code.clone(),
            applicant: applicant.clone(),
            amount: if p.status == PaymentStatus::Paid { p.amount.dong() } else { 0 },
            lines: items.iter().map(|i| issuer.line(&head.procedure_code, head.as_of, i)).collect(),
            duplicate: p.flags.contains(&Flag::DuplicatePayment),
        };
        drafts.extend(content::originals(&facts, &issuer.settings.budget_payer));
    }
    let rows = number(tx, issuer, drafts, "system", at).await?;
    let mut issued = Issued::default();
    for (p, _) in eligible {
        let carried = if p.status == PaymentStatus::Paid { PayerKind::Citizen } else { PayerKind::Budget };
        if let Some(r) = rows.iter().find(|r| r.payment_id.as_ref() == Some(&p.payment_id) && r.payer_kind == carried) {
            issued.by_payment.insert(p.payment_id.clone(), r.reference());
        }
    }
    Ok(Signing::start(issuer.key()?, rows, issued))
}

/// Receipts at most this many to a thread when their signatures are made beside the transaction.
const SIGNED_PER_THREAD: usize = 16;

/// Receipts numbered, their content fixed, their signatures being made on blocking threads
/// (`number_for_payments`).
#[derive(Default)]
pub struct Signing {
    /// What the portal's events of these payments carry (known once numbered).
    pub issued: Issued,
    rows: Vec<ReceiptRow>,
    /// Per slice of `rows`, in order: its signatures.
    signatures: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Signing {
    fn start(key: std::sync::Arc<crate::ledger::LedgerKey>, mut rows: Vec<ReceiptRow>, issued: Issued) -> Self {
        let public = key.public_hex();
        for r in &mut rows {
            r.public_key.clone_from(&public);
        }
        // As many threads as fill up to `SIGNED_PER_THREAD` each, at most one per core.
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let per = rows.len().div_ceil(threads).max(SIGNED_PER_THREAD);
        let signatures = rows
            .chunks(per)
            .map(|chunk| {
                let messages: Vec<Vec<u8>> = chunk.iter().map(|r| content::signed_message(&r.content)).collect();
                let key = key.clone();
                tokio::task::spawn_blocking(move || messages.iter().map(|m| key.sign_hex(m)).collect())
            })
            .collect();
        Self { issued, rows, signatures }
    }

    /// Waits for the signatures and writes the receipts in `tx`; returns them.
    pub async fn insert(self, tx: &mut WriteTx) -> Result<Vec<ReceiptRow>, IssueError> {
        let rows = self.signed().await?;
        if !rows.is_empty() {
            tx.insert_receipts(&rows).await?;
        }
        Ok(rows)
    }

    /// The rows, each with its signature once made.
    async fn signed(mut self) -> Result<Vec<ReceiptRow>, IssueError> {
        let mut signed = Vec::with_capacity(self.rows.len());
        for handle in std::mem::take(&mut self.signatures) {
            let part = handle.await.map_err(|e| IssueError::Signing(e.to_string()))?;
            signed.extend(part);
        }
        if signed.len() != self.rows.len() {
            return Err(IssueError::Signing(format!("{} signatures for {} receipts", signed.len(), self.rows.len())));
        }
        for (r, s) in self.rows.iter_mut().zip(signed) {
            r.signature = s;
        }
        Ok(self.rows)
    }
}

/// Numbers, signs and inserts drafts issued at `at`, in order.
async fn finish(
    tx: &mut WriteTx,
    issuer: &Issuer,
    drafts: Vec<Draft>,
    issued_by: &str,
    at: DateTime<Utc>,
) -> Result<Vec<ReceiptRow>, IssueError> {
    let mut rows = number(tx, issuer, drafts, issued_by, at).await?;
    for r in &mut rows {
        (r.signature, r.public_key) = issuer.sign(&r.content)?;
    }
    tx.insert_receipts(&rows).await?;
    Ok(rows)
}

/// Numbers drafts issued at `at`, in order: the receipts' rows with their canonical content,
/// not yet signed (empty signature and public key).
async fn number(
    tx: &mut WriteTx,
    issuer: &Issuer,
    drafts: Vec<Draft>,
    issued_by: &str,
    at: DateTime<Utc>,
) -> Result<Vec<ReceiptRow>, IssueError> {
    if drafts.is_empty() {
        return Ok(vec![]);
    }
    if issuer.key.is_none() {
        return Err(IssueError::NoKey);
    }
    let at = Timestamp::at(at);
    let date = at.business_date().naive();
    let year = date.year();
    let symbol = issuer.settings.letters.symbol(year);
    let count = i64::try_from(drafts.len()).unwrap_or(i64::MAX);
    let first = tx.allocate_receipt_numbers(TEMPLATE, &symbol, i64::from(year), count).await?;
    let collector = issuer.collector();
    let mut rows = Vec::with_capacity(drafts.len());
    for (number, d) in (first..).zip(drafts) {
        let (kind, related, payer, reason) =
            (d.kind, d.related.as_ref().map(|r| r.receipt_id.clone()), d.payer.clone(), d.reason.clone());
        let c = d.finish(new_id("rct"), TEMPLATE, &symbol, number, at, collector.clone());
        let canonical = c.canonical();
        rows.push(ReceiptRow {
            receipt_id: c.receipt_id.clone(),
            template: TEMPLATE.to_owned(),
            symbol: symbol.clone(),
            year: i64::from(year),
            number,
            kind,
            related_receipt_id: related,
            payment_id: c.payment_id.clone(),
            case_code: crate::domain::CaseCode::parse(&c.case_code).map_err(|e| IssueError::Corrupt {
                payment_id: c.payment_id.clone().unwrap_or_default(),
                why: e.to_string(),
            })?,
            payer_kind: payer.kind,
            payer_name: payer.name,
            total: c.total,
            issued_at: at,
            issue_date: date,
            issued_by: issued_by.to_owned(),
            reason,
            content: canonical,
            signature: String::new(),
            public_key: String::new(),
        });
    }
    Ok(rows)
}

/// The receipt to correct, held for the transaction, with its content and the receipts that
/// already refer to it; refused unless it is in force and is not itself an adjustment.
async fn correctable(tx: &mut WriteTx, receipt_id: &str) -> Result<(Content, Vec<ReceiptRow>), ReceiptError> {
    let r = tx
        .receipt_for_update(receipt_id)
        .await?
        .ok_or_else(|| ReceiptError::NotFound(format!("no receipt {receipt_id}")))?;
    if r.kind == ReceiptKind::Adjustment {
        return Err(ReceiptError::Conflict(format!(
            "{receipt_id} is an adjustment; correct the receipt it adjusts ({})",
            r.related_receipt_id.as_deref().unwrap_or("")
        )));
    }
    let referring = tx.receipts_referring_to(receipt_id).await?;
    if let (ReceiptStatus::Replaced, Some(by), _) = status_of(receipt_id, &referring) {
        return Err(ReceiptError::Conflict(format!("{receipt_id} was replaced by {by}; correct that one")));
    }
    Ok((content_of(&r)?, referring))
}

/// Issues, inside `tx`, the replacement of a receipt in force that no adjustment touched.
pub async fn replace_in(
    tx: &mut WriteTx,
    issuer: &Issuer,
    receipt_id: &str,
    payer_name: Option<&str>,
    reason: &str,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<ReceiptRow, ReceiptError> {
    let (c, referring) = correctable(tx, receipt_id).await?;
    if !referring.is_empty() {
        return Err(ReceiptError::Conflict(format!(
            "{receipt_id} has adjustments; adjust it again rather than replace it"
        )));
    }
    let draft = content::replacement(&c, payer_name, reason);
    let mut rows = finish(tx, issuer, vec![draft], actor, at).await?;
    rows.pop().ok_or_else(|| ReceiptError::Internal(anyhow::anyhow!("no replacement was written")))
}

/// Issues, inside `tx`, an adjustment of a receipt in force by signed differences per fee item;
/// no item may fall below zero counting the adjustments made before.
pub async fn adjust_in(
    tx: &mut WriteTx,
    issuer: &Issuer,
    receipt_id: &str,
    differences: &[(String, i64)],
    reason: &str,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<ReceiptRow, ReceiptError> {
    let (c, referring) = correctable(tx, receipt_id).await?;
    let mut current: Vec<(String, i64)> = c.items.iter().map(|i| (i.fee.clone(), i.amount)).collect();
    for r in referring.iter().filter(|r| r.kind == ReceiptKind::Adjustment) {
        for i in content_of(r)?.items {
            if let Some(slot) = current.iter_mut().find(|(f, _)| *f == i.fee) {
                slot.1 = slot.1.saturating_add(i.amount);
            }
        }
    }
    let draft =
        content::adjustment(&c, &current, differences, reason).map_err(|e| ReceiptError::Invalid(e.to_string()))?;
    let mut rows = finish(tx, issuer, vec![draft], actor, at).await?;
    rows.pop().ok_or_else(|| ReceiptError::Internal(anyhow::anyhow!("no adjustment was written")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(number: i64) -> ReceiptRow {
        ReceiptRow {
            receipt_id: format!("rct_{number}"),
            template: TEMPLATE.to_owned(),
            symbol: "26TTP".into(),
            year: 2026,
            number,
            kind: ReceiptKind::Original,
            related_receipt_id: None,
            payment_id: Some(format!("pay_{number}")),
            case_code: crate::domain::CaseCode::parse("000.00.12.H62-260302-0001").unwrap(),
            payer_kind: PayerKind::Citizen,
            payer_name: "Lê Thị Hoa".into(),
            total: 600_000,
            issued_at: Timestamp::parse("2026-03-02T10:00:00+07:00").unwrap(),
            issue_date: chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
            issued_by: "system".into(),
            reason: None,
            content: format!(r#"{{"number":{number}}}"#),
            signature: String::new(),
            public_key: String::new(),
        }
    }

    /// Signed beside the transaction, on several threads: each receipt gets the signature of
    /// its own content (Ed25519 is deterministic, so it equals signing it alone), in order,
    /// across the slices the threads took, with the key's public half.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn receipts_signed_beside_the_transaction_each_carry_their_own_contents_signature() {
        let dir = tempfile::tempdir().unwrap();
        let key = std::sync::Arc::new(crate::ledger::LedgerKey::load_or_create(&dir.path().join("k")).unwrap());
        for n in [0usize, 1, SIGNED_PER_THREAD, SIGNED_PER_THREAD + 1, 3 * SIGNED_PER_THREAD + 5] {
            let rows: Vec<ReceiptRow> = (1..=i64::try_from(n).unwrap()).map(row).collect();
            let signed = Signing::start(key.clone(), rows.clone(), Issued::default()).signed().await.unwrap();
            assert_eq!(signed.len(), n);
            for (r, s) in rows.iter().zip(&signed) {
                assert_eq!(s.receipt_id, r.receipt_id);
                assert_eq!(s.signature, key.sign_hex(&content::signed_message(&r.content)), "receipt {}", r.number);
                assert_eq!(s.public_key, key.public_hex());
            }
            let distinct: std::collections::HashSet<&str> = signed.iter().map(|r| r.signature.as_str()).collect();
            assert_eq!(distinct.len(), n, "every content its own signature");
        }
    }
}
