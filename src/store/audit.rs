//! The audit log (SPEC §8): every manual action, chained like the ledger. Rows are appended by
//! `ledger::chain`, which links them; this file only stores and reads them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Result, Store, WriteTx, on_pool, on_tx};
use crate::domain::Timestamp;

/// One manual action for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub actor: String,
    pub action: String,
    pub subject: String,
    /// A JSON object with the action's particulars; never a secret.
    pub details: serde_json::Value,
}

impl AuditEvent {
    pub fn new(actor: &str, action: &str, subject: impl Into<String>, details: serde_json::Value) -> Self {
        Self { actor: actor.to_owned(), action: action.to_owned(), subject: subject.into(), details }
    }
}

/// An audit-log row to insert, already linked into the chain.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    /// Compact JSON text, as hashed.
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// An audit-log row as stored, with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(sqlx::FromRow)]
struct StoredAuditRow {
    seq: i64,
    at: Timestamp,
    actor: String,
    action: String,
    subject: String,
    details: crate::domain::sql::JsonText<serde_json::Value>,
    prev_hash: String,
    hash: String,
}

impl From<StoredAuditRow> for AuditEntry {
    fn from(r: StoredAuditRow) -> Self {
        Self {
            seq: r.seq,
            at: r.at,
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            details: r.details.0,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

const COLUMNS: &str = "seq, at, actor, action, subject, details, prev_hash, hash";

impl Store {
    /// The most recent audit entry with this action.
    pub async fn last_audit(&self, action: &str) -> Result<Option<AuditEntry>> {
        let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE action = $1 ORDER BY seq DESC LIMIT 1");
        let row: Option<StoredAuditRow> =
            on_pool!(self, |p| sqlx::query_as(&sql).bind(action).fetch_optional(p).await)?;
        Ok(row.map(AuditEntry::from))
    }

    /// Audit entries with `seq > after`, oldest first, at most `limit`.
    pub async fn audit_log(&self, after: i64, limit: i64) -> Result<Vec<AuditEntry>> {
        let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
        let rows: Vec<StoredAuditRow> =
            on_pool!(self, |p| sqlx::query_as(&sql).bind(after).bind(limit).fetch_all(p).await)?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }
}

impl WriteTx {
    /// Inserts linked audit rows (multi-row statements).
    pub async fn insert_audit_rows(&mut self, rows: &[AuditRow]) -> Result<()> {
        for chunk in rows.chunks(super::rows_per_statement(8)) {
            on_tx!(self, |c| {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash) ",
                );
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(r.seq)
                        .push_bind(Timestamp::at(r.at))
                        .push_bind(&r.actor)
                        .push_bind(&r.action)
                        .push_bind(&r.subject)
                        .push_bind(&r.details)
                        .push_bind(&r.prev_hash)
                        .push_bind(&r.hash);
                });
                q.build().execute(&mut *c).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }
}
