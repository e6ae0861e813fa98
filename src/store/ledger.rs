//! The ledger's tables (SPEC §8): hash-chain heads, entries, postings, signed checkpoints and the
//! signing key's public half. Entries are linked by `ledger::chain`; this file stores and reads.
//! The database itself refuses an unbalanced posting and any change to a written row (triggers).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::{Result, Store, StoreError, WriteTx, on_pool, on_tx, on_unique, rows_per_statement};
use crate::domain::Timestamp;

/// One ledger entry as stored (or to store, already linked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LedgerEntry {
    pub seq: i64,
    pub posting_id: String,
    pub line_no: i64,
    pub business_date: NaiveDate,
    pub kind: String,
    pub account: String,
    pub debit: i64,
    pub credit: i64,
    pub memo: String,
    pub refs: String,
    pub prev_hash: String,
    pub hash: String,
}

impl LedgerEntry {
    /// The fields its hash covers.
    pub fn fields(&self) -> crate::domain::ledger::EntryFields<'_> {
        crate::domain::ledger::EntryFields {
            seq: self.seq,
            business_date: self.business_date,
            posting_id: &self.posting_id,
            kind: &self.kind,
            line_no: self.line_no,
            account: &self.account,
            debit: self.debit,
            credit: self.credit,
            memo: &self.memo,
            refs: &self.refs,
        }
    }
}

const ENTRY_COLUMNS: &str =
    "seq, posting_id, line_no, business_date, kind, account, debit, credit, memo, refs, prev_hash, hash";

/// A posting's row, written after its entries: it completes the posting (the database checks
/// that its entries exist, number `line_count` and balance at `total`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostingRow {
    pub posting_id: String,
    /// Unique per money event: a second posting with the same key is never written.
    pub idem_key: String,
    pub kind: String,
    pub business_date: NaiveDate,
    pub corrects: Option<String>,
    pub line_count: i64,
    pub total: i64,
}

/// A signed checkpoint of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Checkpoint {
    pub checkpoint_id: String,
    pub kind: String,
    pub business_date: NaiveDate,
    pub gateway: String,
    pub last_seq: i64,
    pub head_hash: String,
    /// JSON object: account → [debit, credit], cumulative through `last_seq`.
    pub totals: String,
    pub created_at: DateTime<Utc>,
    pub public_key: String,
    pub signature: String,
}

const CHECKPOINT_COLUMNS: &str =
    "checkpoint_id, kind, business_date, gateway, last_seq, head_hash, totals, created_at, public_key, signature";

/// A hash chain: the ledger's entries or the audit log's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    Ledger,
    Audit,
}

impl Chain {
    fn name(self) -> &'static str {
        match self {
            Chain::Ledger => "ledger",
            Chain::Audit => "audit",
        }
    }
}

impl Store {
    /// The public key recorded for this database, if any.
    pub async fn recorded_ledger_key(&self) -> Result<Option<String>> {
        let sql = "SELECT public_key FROM ledger_keys ORDER BY recorded_at LIMIT 1";
        let row: Option<(String,)> = on_pool!(self, |p| sqlx::query_as(sql).fetch_optional(p).await)?;
        Ok(row.map(|(k,)| k))
    }

    /// The public key recorded for this database, recording `candidate` if there is none yet.
    pub async fn ledger_key(&self, candidate: &str, at: DateTime<Utc>) -> Result<String> {
        let mut tx = self.write().await?;
        let existing: Option<(String,)> =
            on_tx!(tx, |c| sqlx::query_as("SELECT public_key FROM ledger_keys ORDER BY recorded_at LIMIT 1")
                .fetch_optional(&mut *c)
                .await)?;
        if let Some((k,)) = existing {
            return Ok(k);
        }
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO ledger_keys (public_key, recorded_at) VALUES ($1, $2) ON CONFLICT (public_key) DO NOTHING"
        )
        .bind(candidate)
        .bind(Timestamp::at(at))
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(candidate.to_owned())
    }

    /// Every checkpoint, by `last_seq` then time.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let sql =
            format!("SELECT {CHECKPOINT_COLUMNS} FROM ledger_checkpoints ORDER BY last_seq, created_at, checkpoint_id");
        Ok(on_pool!(self, |p| sqlx::query_as(&sql).fetch_all(p).await)?)
    }

    /// Checkpoints in the order of `checkpoints`, after the one with id `after`, at most `limit`.
    pub async fn checkpoints_page(&self, after: Option<&str>, limit: i64) -> Result<Vec<Checkpoint>> {
        let sql = format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM ledger_checkpoints c
             WHERE $1 = '' OR (c.last_seq, c.created_at, c.checkpoint_id) >
                   (SELECT a.last_seq, a.created_at, a.checkpoint_id FROM ledger_checkpoints a WHERE a.checkpoint_id = $1)
             ORDER BY c.last_seq, c.created_at, c.checkpoint_id LIMIT $2"
        );
        Ok(on_pool!(self, |p| sqlx::query_as(&sql).bind(after.unwrap_or("")).bind(limit).fetch_all(p).await)?)
    }

    /// The lowest and highest seq of entries whose business date is in [from, to].
    pub async fn ledger_seq_range(&self, from: NaiveDate, to: NaiveDate) -> Result<Option<(i64, i64)>> {
        let sql = "SELECT MIN(seq), MAX(seq) FROM ledger_entries WHERE business_date >= $1 AND business_date <= $2";
        let row: (Option<i64>, Option<i64>) =
            on_pool!(self, |p| sqlx::query_as(sql).bind(from).bind(to).fetch_one(p).await)?;
        Ok(match row {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        })
    }

    /// The chain's head: last seq and its hash.
    pub async fn ledger_head(&self) -> Result<(i64, String)> {
        let sql = "SELECT last_seq, last_hash FROM chain_heads WHERE chain = 'ledger'";
        Ok(on_pool!(self, |p| sqlx::query_as(sql).fetch_one(p).await)?)
    }

    /// Entries with seq in [from, to], in order.
    pub async fn ledger_slice(&self, from: i64, to: i64) -> Result<Vec<LedgerEntry>> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE seq >= $1 AND seq <= $2 ORDER BY seq");
        Ok(on_pool!(self, |p| sqlx::query_as(&sql).bind(from).bind(to).fetch_all(p).await)?)
    }

    /// Ledger entries with `seq > after`, in order, at most `limit`.
    pub async fn ledger_entries(&self, after: i64, limit: i64) -> Result<Vec<LedgerEntry>> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE seq > $1 ORDER BY seq LIMIT $2");
        Ok(on_pool!(self, |p| sqlx::query_as(&sql).bind(after).bind(limit).fetch_all(p).await)?)
    }

    /// The entries of one posting, in line order.
    pub async fn posting_entries(&self, posting_id: &str) -> Result<Vec<LedgerEntry>> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE posting_id = $1 ORDER BY line_no");
        Ok(on_pool!(self, |p| sqlx::query_as(&sql).bind(posting_id).fetch_all(p).await)?)
    }

    /// When a posting was made (its entries' time); `None` for an unknown posting.
    pub async fn posting_created_at(&self, posting_id: &str) -> Result<Option<DateTime<Utc>>> {
        let sql = "SELECT created_at FROM ledger_postings WHERE posting_id = $1";
        let row: Option<(DateTime<Utc>,)> =
            on_pool!(self, |p| sqlx::query_as(sql).bind(posting_id).fetch_optional(p).await)?;
        Ok(row.map(|(t,)| t))
    }

    /// Debit and credit per account for entries of one business date.
    pub async fn trial_balance(&self, date: NaiveDate) -> Result<Vec<(String, i64, i64)>> {
        let sql = "SELECT account, CAST(COALESCE(SUM(debit), 0) AS BIGINT), CAST(COALESCE(SUM(credit), 0) AS BIGINT)
                   FROM ledger_entries WHERE business_date = $1 GROUP BY account ORDER BY account";
        Ok(on_pool!(self, |p| sqlx::query_as(sql).bind(date).fetch_all(p).await)?)
    }

    /// The earliest business date in the ledger.
    pub async fn first_ledger_date(&self) -> Result<Option<NaiveDate>> {
        let (d,): (Option<NaiveDate>,) =
            on_pool!(self, |p| sqlx::query_as("SELECT MIN(business_date) FROM ledger_entries").fetch_one(p).await)?;
        Ok(d)
    }
}

impl WriteTx {
    /// The head of a chain (last seq and hash), locked until commit.
    pub async fn lock_chain_head(&mut self, chain: Chain) -> Result<(i64, String)> {
        let sql = format!("SELECT last_seq, last_hash FROM chain_heads WHERE chain = $1{}", self.for_update());
        Ok(on_tx!(self, |c| sqlx::query_as(&sql).bind(chain.name()).fetch_one(&mut *c).await)?)
    }

    /// Moves a chain's head.
    pub async fn set_chain_head(&mut self, chain: Chain, seq: i64, hash: &str) -> Result<()> {
        on_tx!(self, |c| sqlx::query("UPDATE chain_heads SET last_seq = $1, last_hash = $2 WHERE chain = $3")
            .bind(seq)
            .bind(hash)
            .bind(chain.name())
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The postings already written under these idempotency keys: key → posting id.
    pub async fn postings_by_idem(&mut self, keys: &[&str]) -> Result<HashMap<String, String>> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(String, String)> = on_tx!(self, |c| {
            let mut q = sqlx::QueryBuilder::new("SELECT idem_key, posting_id FROM ledger_postings WHERE idem_key IN (");
            let mut list = q.separated(", ");
            for k in keys {
                list.push_bind(*k);
            }
            q.push(")");
            q.build_query_as().fetch_all(&mut *c).await
        })?;
        Ok(rows.into_iter().collect())
    }

    /// Writes linked entries, then the posting rows that complete them.
    pub async fn insert_postings(
        &mut self,
        entries: &[LedgerEntry],
        postings: &[PostingRow],
        at: DateTime<Utc>,
    ) -> Result<()> {
        for chunk in entries.chunks(rows_per_statement(12)) {
            on_tx!(self, |c| {
                let mut q = sqlx::QueryBuilder::new(format!("INSERT INTO ledger_entries ({ENTRY_COLUMNS}) "));
                q.push_values(chunk, |mut b, e| {
                    b.push_bind(e.seq)
                        .push_bind(&e.posting_id)
                        .push_bind(e.line_no)
                        .push_bind(e.business_date)
                        .push_bind(&e.kind)
                        .push_bind(&e.account)
                        .push_bind(e.debit)
                        .push_bind(e.credit)
                        .push_bind(&e.memo)
                        .push_bind(&e.refs)
                        .push_bind(&e.prev_hash)
                        .push_bind(&e.hash);
                });
                q.build().execute(&mut *c).await.map(|r| r.rows_affected())
            })?;
        }
        let at = Timestamp::at(at);
        for chunk in postings.chunks(rows_per_statement(8)) {
            on_tx!(self, |c| {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO ledger_postings (posting_id, idem_key, kind, business_date, created_at, corrects, line_count, total) ",
                );
                q.push_values(chunk, |mut b, p| {
                    b.push_bind(&p.posting_id)
                        .push_bind(&p.idem_key)
                        .push_bind(&p.kind)
                        .push_bind(p.business_date)
                        .push_bind(at)
                        .push_bind(&p.corrects)
                        .push_bind(p.line_count)
                        .push_bind(p.total);
                });
                q.build().execute(&mut *c).await.map(|r| r.rows_affected())
            })
            .map_err(|e| on_unique(e, || "a posting with this idempotency key exists".into()))?;
        }
        Ok(())
    }

    /// Debit and credit per account of the entries after `after` through `last_seq` (a range of
    /// the primary key: the entries since a checkpoint, not the history).
    pub async fn account_totals(&mut self, after: i64, last_seq: i64) -> Result<Vec<(String, i64, i64)>> {
        Ok(on_tx!(self, |c| sqlx::query_as(
            "SELECT account, CAST(COALESCE(SUM(debit), 0) AS BIGINT), CAST(COALESCE(SUM(credit), 0) AS BIGINT)
             FROM ledger_entries WHERE seq > $1 AND seq <= $2 GROUP BY account"
        )
        .bind(after)
        .bind(last_seq)
        .fetch_all(&mut *c)
        .await)?)
    }

    /// The newest checkpoint through `last_seq`, read by `ledger_checkpoints_seq`.
    pub async fn checkpoint_through(&mut self, last_seq: i64) -> Result<Option<Checkpoint>> {
        let sql = format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM ledger_checkpoints WHERE last_seq <= $1
             ORDER BY last_seq DESC, created_at DESC LIMIT 1"
        );
        Ok(on_tx!(self, |c| sqlx::query_as(&sql).bind(last_seq).fetch_optional(&mut *c).await)?)
    }

    /// The hash of the ledger entry `seq`, if there is one.
    pub async fn entry_hash(&mut self, seq: i64) -> Result<Option<String>> {
        let row: Option<(String,)> =
            on_tx!(self, |c| sqlx::query_as("SELECT hash FROM ledger_entries WHERE seq = $1")
                .bind(seq)
                .fetch_optional(&mut *c)
                .await)?;
        Ok(row.map(|(h,)| h))
    }

    /// Whether a checkpoint of this (kind, date, gateway) exists.
    pub async fn checkpoint_exists(&mut self, kind: &str, date: NaiveDate, gateway: &str) -> Result<bool> {
        let row: Option<(String,)> = on_tx!(self, |c| sqlx::query_as(
            "SELECT checkpoint_id FROM ledger_checkpoints WHERE kind = $1 AND business_date = $2 AND gateway = $3"
        )
        .bind(kind)
        .bind(date)
        .bind(gateway)
        .fetch_optional(&mut *c)
        .await)?;
        Ok(row.is_some())
    }

    /// Writes a signed checkpoint; one of the same (kind, date, gateway) is `Conflict`.
    pub async fn insert_checkpoint(&mut self, cp: &Checkpoint) -> Result<()> {
        on_tx!(self, |c| sqlx::query(&format!(
            "INSERT INTO ledger_checkpoints ({CHECKPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&cp.checkpoint_id)
        .bind(&cp.kind)
        .bind(cp.business_date)
        .bind(&cp.gateway)
        .bind(cp.last_seq)
        .bind(&cp.head_hash)
        .bind(&cp.totals)
        .bind(Timestamp::at(cp.created_at))
        .bind(&cp.public_key)
        .bind(&cp.signature)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| on_unique(e, || "checkpoint exists".into()))?;
        Ok(())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
