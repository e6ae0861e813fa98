//! E-receipts (issue 18): the receipts themselves, append-only, and the number sequences they
//! are numbered from. Reads for the portal (a case's receipts), for the daily summary (a date's
//! receipts, the receipts that refer to them, the ledger's confirmations of that date) and for
//! the numbering check; writes that allocate numbers and insert receipts inside the transaction
//! that confirms the money.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::{Result, Store, StoreError, WriteTx, on_pool, on_tx, on_unique, rows_per_statement};
use crate::domain::receipt::{MAX_NUMBER, PayerKind, ReceiptKind, ReceiptRef};
use crate::domain::{CaseCode, Timestamp};

/// A receipt as stored. `content` is the canonical JSON its `signature` covers; the other
/// columns repeat what queries need from it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReceiptRow {
    pub receipt_id: String,
    pub template: String,
    pub symbol: String,
    pub year: i64,
    pub number: i64,
    pub kind: ReceiptKind,
    /// The receipt a replacement or an adjustment corrects; `None` for an original.
    pub related_receipt_id: Option<String>,
    pub payment_id: Option<String>,
    pub case_code: CaseCode,
    pub payer_kind: PayerKind,
    pub payer_name: String,
    /// Sum of the items (signed for an adjustment).
    pub total: i64,
    pub issued_at: Timestamp,
    pub issue_date: NaiveDate,
    /// `system` for receipts issued with a payment, else the finance user who corrected.
    pub issued_by: String,
    pub reason: Option<String>,
    pub content: String,
    pub signature: String,
    pub public_key: String,
}

impl ReceiptRow {
    pub fn reference(&self) -> ReceiptRef {
        ReceiptRef { template: self.template.clone(), symbol: self.symbol.clone(), number: self.number }
    }
}

const COLUMNS: &str = "receipt_id, template, symbol, year, number, kind, related_receipt_id, payment_id, case_code, \
                       payer_kind, payer_name, total, issued_at, issue_date, issued_by, reason, content, signature, public_key";

/// The ledger's confirmations made in a period: how many postings of confirmed money (a payment
/// confirmed, a case the budget pays) and the money they collected (debits to the gateways'
/// clearing accounts and to the budget receivable).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Confirmations {
    pub postings: i64,
    pub collected: i64,
}

impl Store {
    /// A case's receipts, in the order they were issued.
    pub async fn case_receipts(&self, case_code: &CaseCode) -> Result<Vec<ReceiptRow>> {
        let sql = format!("SELECT {COLUMNS} FROM receipts WHERE case_code = $1 ORDER BY issued_at, symbol, number");
        Ok(on_pool!(self, |p| sqlx::query_as(&sql).bind(case_code).fetch_all(p).await)?)
    }

    pub async fn receipt(&self, receipt_id: &str) -> Result<Option<ReceiptRow>> {
        let sql = format!("SELECT {COLUMNS} FROM receipts WHERE receipt_id = $1");
        Ok(on_pool!(self, |p| sqlx::query_as(&sql).bind(receipt_id).fetch_optional(p).await)?)
    }

    /// The receipts issued on a business date, by template, symbol and number.
    pub async fn receipts_of_date(&self, date: NaiveDate) -> Result<Vec<ReceiptRow>> {
        let sql = format!("SELECT {COLUMNS} FROM receipts WHERE issue_date = $1 ORDER BY template, symbol, number");
        Ok(on_pool!(self, |p| sqlx::query_as(&sql).bind(date).fetch_all(p).await)?)
    }

    /// Receipts by id (those a day's replacements and adjustments refer to).
    pub async fn receipts_by_ids(&self, ids: &[&str]) -> Result<Vec<ReceiptRow>> {
        self.receipts_where("receipt_id", ids).await
    }

    /// The replacements and adjustments that refer to any of these receipts, oldest first.
    pub async fn receipts_referring_to(&self, ids: &[&str]) -> Result<Vec<ReceiptRow>> {
        self.receipts_where("related_receipt_id", ids).await
    }

    async fn receipts_where(&self, column: &str, ids: &[&str]) -> Result<Vec<ReceiptRow>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(rows_per_statement(1)) {
            let rows: Vec<ReceiptRow> = on_pool!(self, |p| {
                let mut q = sqlx::QueryBuilder::new(format!("SELECT {COLUMNS} FROM receipts WHERE {column} IN ("));
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                q.push(") ORDER BY issued_at, symbol, number");
                q.build_query_as().fetch_all(p).await
            })?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Every number allocated in a sequence and every number a receipt holds, in order: the two
    /// lists are equal when no number was lost.
    pub async fn receipt_numbering(&self, template: &str, symbol: &str, year: i64) -> Result<(i64, Vec<i64>)> {
        let last: Option<(i64,)> = on_pool!(self, |p| sqlx::query_as(
            "SELECT last_number FROM receipt_sequences WHERE template = $1 AND symbol = $2 AND year = $3"
        )
        .bind(template)
        .bind(symbol)
        .bind(year)
        .fetch_optional(p)
        .await)?;
        let numbers: Vec<(i64,)> = on_pool!(self, |p| sqlx::query_as(
            "SELECT number FROM receipts WHERE template = $1 AND symbol = $2 AND year = $3 ORDER BY number"
        )
        .bind(template)
        .bind(symbol)
        .bind(year)
        .fetch_all(p)
        .await)?;
        Ok((last.map_or(0, |(n,)| n), numbers.into_iter().map(|(n,)| n).collect()))
    }

    /// The ledger's confirmations written in `[from, to)`: the postings that confirm money
    /// (`payment_confirmed`, `budget_covered`) and what they collected.
    pub async fn confirmations_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Confirmations> {
        let sql = "SELECT COUNT(DISTINCT p.posting_id),
                          CAST(COALESCE(SUM(CASE WHEN e.account LIKE 'gateway_clearing:%' OR e.account = 'budget_receivable'
                                                 THEN e.debit ELSE 0 END), 0) AS BIGINT)
                   FROM ledger_postings p JOIN ledger_entries e ON e.posting_id = p.posting_id
                   WHERE p.kind IN ('payment_confirmed', 'budget_covered') AND p.created_at >= $1 AND p.created_at < $2";
        let (postings, collected): (i64, i64) = on_pool!(self, |p| sqlx::query_as(sql)
            .bind(Timestamp::at(from))
            .bind(Timestamp::at(to))
            .fetch_one(p)
            .await)?;
        Ok(Confirmations { postings, collected })
    }
}

impl WriteTx {
    /// Allocates `count` consecutive numbers of a sequence and returns the first. The sequence's
    /// row stays locked until this transaction ends; a rollback gives the numbers back.
    /// `Conflict` when the numbers would pass 8 digits (nothing is allocated).
    pub async fn allocate_receipt_numbers(
        &mut self,
        template: &str,
        symbol: &str,
        year: i64,
        count: i64,
    ) -> Result<i64> {
        if count <= 0 {
            return Err(StoreError::Corrupt(format!("cannot allocate {count} receipt numbers")));
        }
        let exhausted = || {
            StoreError::Conflict(format!("receipt numbers of {template}/{symbol} for {year} would pass {MAX_NUMBER}"))
        };
        if count > MAX_NUMBER {
            return Err(exhausted());
        }
        let (last,): (i64,) = on_tx!(self, |c| sqlx::query_as(
            "INSERT INTO receipt_sequences (template, symbol, year, last_number) VALUES ($1, $2, $3, $4)
             ON CONFLICT (template, symbol, year) DO UPDATE SET last_number = receipt_sequences.last_number + EXCLUDED.last_number
             RETURNING last_number"
        )
        .bind(template)
        .bind(symbol)
        .bind(year)
        .bind(count)
        .fetch_one(&mut *c)
        .await)
        .map_err(|e| match &e {
            // The column's CHECK refuses a ninth digit.
            sqlx::Error::Database(d) if d.is_check_violation() => exhausted(),
            _ => StoreError::Database(e),
        })?;
        Ok(last - count + 1)
    }

    /// Inserts receipts; a second original for a (payment, payer) or a second replacement of a
    /// receipt is `Conflict`.
    pub async fn insert_receipts(&mut self, rows: &[ReceiptRow]) -> Result<()> {
        for chunk in rows.chunks(rows_per_statement(19)) {
            on_tx!(self, |c| {
                let mut q = sqlx::QueryBuilder::new(format!("INSERT INTO receipts ({COLUMNS}) "));
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(&r.receipt_id)
                        .push_bind(&r.template)
                        .push_bind(&r.symbol)
                        .push_bind(r.year)
                        .push_bind(r.number)
                        .push_bind(r.kind)
                        .push_bind(&r.related_receipt_id)
                        .push_bind(&r.payment_id)
                        .push_bind(&r.case_code)
                        .push_bind(r.payer_kind)
                        .push_bind(&r.payer_name)
                        .push_bind(r.total)
                        .push_bind(r.issued_at)
                        .push_bind(r.issue_date)
                        .push_bind(&r.issued_by)
                        .push_bind(&r.reason)
                        .push_bind(&r.content)
                        .push_bind(&r.signature)
                        .push_bind(&r.public_key);
                });
                q.build().execute(&mut *c).await.map(|r| r.rows_affected())
            })
            .map_err(|e| on_unique(e, || "the receipt was issued already (or replaced already)".into()))?;
        }
        Ok(())
    }

    /// A receipt, held until the transaction ends (on PostgreSQL its row is locked, so two
    /// corrections of one receipt are serialised; SQLite's transaction holds the write lock).
    pub async fn receipt_for_update(&mut self, receipt_id: &str) -> Result<Option<ReceiptRow>> {
        let sql = format!("SELECT {COLUMNS} FROM receipts WHERE receipt_id = $1{}", self.for_update());
        Ok(on_tx!(self, |c| sqlx::query_as(&sql).bind(receipt_id).fetch_optional(&mut *c).await)?)
    }

    /// The replacements and adjustments that refer to a receipt, oldest first.
    pub async fn receipts_referring_to(&mut self, receipt_id: &str) -> Result<Vec<ReceiptRow>> {
        let sql = referring_sql();
        Ok(on_tx!(self, |c| sqlx::query_as(&sql).bind(receipt_id).fetch_all(&mut *c).await)?)
    }

    /// The applicant's name of each (case, version): who a citizen's receipt names.
    pub async fn applicant_names(&mut self, versions: &[(&str, i64)]) -> Result<HashMap<(String, i64), String>> {
        let mut out = HashMap::new();
        for chunk in versions.chunks(rows_per_statement(2)) {
            let rows: Vec<(String, i64, String)> = on_tx!(self, |c| {
                // A row-value `IN` over a `VALUES` list: one primary-key lookup per pair, where
                // an `OR` chain of pairs is planned term by term.
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT case_code, version, applicant_name FROM case_versions WHERE (case_code, version) IN (VALUES ",
                );
                let mut list = q.separated(", ");
                for (code, version) in chunk {
                    list.push("(");
                    list.push_bind_unseparated(*code);
                    list.push_unseparated(", ");
                    list.push_bind_unseparated(*version);
                    list.push_unseparated(")");
                }
                q.push(")");
                q.build_query_as().fetch_all(&mut *c).await
            })?;
            out.extend(rows.into_iter().map(|(c, v, n)| ((c, v), n)));
        }
        Ok(out)
    }
}

/// The statement of `receipts_referring_to`, served by the partial index `receipts_related`
/// (migration 0016; `store::plans`).
pub(super) fn referring_sql() -> String {
    format!("SELECT {COLUMNS} FROM receipts WHERE related_receipt_id = $1 ORDER BY issued_at, number")
}
