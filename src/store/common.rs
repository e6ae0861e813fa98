//! The SQL both dialects accept, written once.
//!
//! `impl_store!` expands to the `Store` implementation for one backend. It needs from the backend
//! type: a `pool` field, `begin_write()` (a transaction that holds the write lock: `BEGIN
//! IMMEDIATE` on SQLite, a plain `BEGIN` on PostgreSQL, whose row locks do the rest), and the
//! `for_update` suffix for row locks (`" FOR UPDATE"` on PostgreSQL, empty on SQLite, where the
//! transaction already holds the only write lock). Row types here derive `FromRow` generically,
//! so they decode on both.

use chrono::{DateTime, Utc};

use super::{AuditEntry, StoreError, StoredCase, TokenOwner, User};
use crate::domain::{CaseCode, Channel, Fact, ProcedureCode, Role, Subject, Timestamp, UnitCode};

#[derive(sqlx::FromRow)]
pub(super) struct CaseVersionRow {
    pub case_code: String,
    pub version: i64,
    pub procedure_code: String,
    pub applicant_name: String,
    pub channel: String,
    pub subjects: String,
    pub facts: String,
    pub quantity: i64,
    pub received_at: DateTime<Utc>,
    pub receiving_unit: String,
    pub recorded_at: DateTime<Utc>,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

impl CaseVersionRow {
    pub fn into_stored(self) -> Result<StoredCase, StoreError> {
        let subjects: Vec<String> = serde_json::from_str(&self.subjects).map_err(|e| corrupt("subjects", e))?;
        let subjects = subjects
            .iter()
            .map(|s| s.parse::<Subject>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| corrupt("subjects", e))?;
        let facts: Vec<String> = serde_json::from_str(&self.facts).map_err(|e| corrupt("facts", e))?;
        let facts =
            facts.iter().map(|s| s.parse::<Fact>()).collect::<Result<Vec<_>, _>>().map_err(|e| corrupt("facts", e))?;
        Ok(StoredCase {
            case: crate::domain::Case {
                case_code: CaseCode::parse(&self.case_code).map_err(|e| corrupt("case_code", e))?,
                procedure_code: ProcedureCode::parse(&self.procedure_code).map_err(|e| corrupt("procedure_code", e))?,
                applicant_name: self.applicant_name,
                channel: self.channel.parse::<Channel>().map_err(|e| corrupt("channel", e))?,
                subjects,
                facts,
                quantity: u32::try_from(self.quantity).map_err(|e| corrupt("quantity", e))?,
                received_at: Timestamp::at(self.received_at),
                receiving_unit: UnitCode::parse(&self.receiving_unit).map_err(|e| corrupt("receiving_unit", e))?,
            },
            version: self.version,
            recorded_at: Timestamp::at(self.recorded_at),
        })
    }
}

pub(super) fn subjects_json(subjects: &[Subject]) -> String {
    let names: Vec<&str> = subjects.iter().map(|s| s.as_str()).collect();
    serde_json::to_string(&names).expect("a list of strings serialises")
}

pub(super) fn facts_json(facts: &[Fact]) -> String {
    let names: Vec<&str> = facts.iter().map(|f| f.as_str()).collect();
    serde_json::to_string(&names).expect("a list of strings serialises")
}

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    pub user_id: String,
    pub name: String,
    pub role: String,
    pub password_hash: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl UserRow {
    pub fn into_user(self) -> Result<User, StoreError> {
        Ok(User {
            role: self.role.parse::<Role>().map_err(|e| corrupt("role", e))?,
            user_id: self.user_id,
            name: self.name,
            password_hash: self.password_hash,
            created_at: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct TokenOwnerRow {
    pub secret_sha256: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub user_id: String,
    pub name: String,
    pub role: String,
    pub password_hash: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl TokenOwnerRow {
    pub fn into_owner(self) -> Result<TokenOwner, StoreError> {
        Ok(TokenOwner {
            secret_sha256: self.secret_sha256,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            user: UserRow {
                user_id: self.user_id,
                name: self.name,
                role: self.role,
                password_hash: self.password_hash,
                created_at: self.created_at,
            }
            .into_user()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct AuditRow {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRow {
    pub fn into_entry(self) -> Result<AuditEntry, StoreError> {
        Ok(AuditEntry {
            seq: self.seq,
            at: Timestamp::at(self.at),
            actor: self.actor,
            action: self.action,
            subject: self.subject,
            details: serde_json::from_str(&self.details).map_err(|e| corrupt("audit details", e))?,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

/// A write transaction, with the in-process write lock when the backend has one (SQLite).
/// Derefs to the sqlx transaction; dropping it without `commit` rolls back.
pub(super) struct WriteTx<'a, DB: sqlx::Database> {
    tx: sqlx::Transaction<'static, DB>,
    _guard: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl<'a, DB: sqlx::Database> WriteTx<'a, DB> {
    pub fn new(tx: sqlx::Transaction<'static, DB>, guard: Option<tokio::sync::MutexGuard<'a, ()>>) -> Self {
        Self { tx, _guard: guard }
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl<DB: sqlx::Database> std::ops::Deref for WriteTx<'_, DB> {
    type Target = sqlx::Transaction<'static, DB>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for WriteTx<'_, DB> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// Maps a unique-constraint violation to `Conflict(what)`; other errors pass through.
pub(super) fn on_unique(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Database(e),
    }
}

/// Expands to `impl Store for $store` over the database `$db`; see the module docs.
macro_rules! impl_store {
    ($store:ty, $db:ty, for_update = $for_update:literal) => {
        impl $store {
            /// Upserts one case inside `tx`.
            async fn upsert_case_tx(
                tx: &mut sqlx::Transaction<'static, $db>,
                case: &$crate::domain::Case,
                actor: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::Result<($crate::store::Upserted, $crate::store::StoredCase)> {
                use $crate::store::Upserted;
                let code = case.case_code.as_str();
                let inserted = sqlx::query(
                    "INSERT INTO cases (case_code, current_version, created_at, updated_at) VALUES ($1, 1, $2, $2)
                     ON CONFLICT (case_code) DO NOTHING",
                )
                .bind(code)
                .bind(at)
                .execute(&mut **tx)
                .await?
                .rows_affected()
                    == 1;
                let version: i64 = if inserted {
                    1
                } else {
                    let (current,): (i64,) =
                        sqlx::query_as(concat!("SELECT current_version FROM cases WHERE case_code = $1", $for_update))
                            .bind(code)
                            .fetch_one(&mut **tx)
                            .await?;
                    let row: $crate::store::common::CaseVersionRow = sqlx::query_as(
                        "SELECT case_code, version, procedure_code, applicant_name, channel, subjects, facts, quantity,
                                received_at, receiving_unit, recorded_at
                         FROM case_versions WHERE case_code = $1 AND version = $2",
                    )
                    .bind(code)
                    .bind(current)
                    .fetch_one(&mut **tx)
                    .await?;
                    let stored = row.into_stored()?;
                    if &stored.case == case {
                        return Ok((Upserted::Unchanged, stored));
                    }
                    sqlx::query("UPDATE cases SET current_version = $1, updated_at = $2 WHERE case_code = $3")
                        .bind(current + 1)
                        .bind(at)
                        .bind(code)
                        .execute(&mut **tx)
                        .await?;
                    current + 1
                };
                sqlx::query(
                    "INSERT INTO case_versions (case_code, version, procedure_code, applicant_name, channel, subjects,
                                                quantity, received_at, receiving_unit, recorded_at, recorded_by, facts)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(code)
                .bind(version)
                .bind(case.procedure_code.as_str())
                .bind(&case.applicant_name)
                .bind(case.channel.as_str())
                .bind($crate::store::common::subjects_json(&case.subjects))
                .bind(i64::from(case.quantity))
                .bind(case.received_at.0)
                .bind(case.receiving_unit.as_str())
                .bind(at)
                .bind(actor)
                .bind($crate::store::common::facts_json(&case.facts))
                .execute(&mut **tx)
                .await?;
                let stored = $crate::store::StoredCase {
                    case: case.clone(),
                    version,
                    recorded_at: $crate::domain::Timestamp::at(at),
                };
                Ok((if inserted { Upserted::Created } else { Upserted::Updated }, stored))
            }

            /// Appends audit events inside `tx`, moving the chain head.
            async fn audit_tx(
                tx: &mut sqlx::Transaction<'static, $db>,
                events: &[$crate::store::AuditEvent],
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::Result<()> {
                if events.is_empty() {
                    return Ok(());
                }
                let at = $crate::domain::Timestamp::at(at).0;
                let (mut seq, mut prev): (i64, String) = sqlx::query_as(concat!(
                    "SELECT last_seq, last_hash FROM chain_heads WHERE chain = 'audit'",
                    $for_update
                ))
                .fetch_one(&mut **tx)
                .await?;
                for e in events {
                    seq += 1;
                    let details = e.details.to_string();
                    let canonical =
                        $crate::domain::chain::audit_canonical(seq, &at, &e.actor, &e.action, &e.subject, &details);
                    let hash = $crate::domain::chain::link(&prev, &canonical)
                        .ok_or_else(|| $crate::store::StoreError::Corrupt("audit chain head is not a hash".into()))?;
                    sqlx::query(
                        "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(seq)
                    .bind(at)
                    .bind(&e.actor)
                    .bind(&e.action)
                    .bind(&e.subject)
                    .bind(&details)
                    .bind(&prev)
                    .bind(&hash)
                    .execute(&mut **tx)
                    .await?;
                    prev = hash;
                }
                sqlx::query("UPDATE chain_heads SET last_seq = $1, last_hash = $2 WHERE chain = 'audit'")
                    .bind(seq)
                    .bind(&prev)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> $crate::store::Backend {
                Self::BACKEND
            }

            async fn migrate(&self) -> $crate::store::Result<()> {
                MIGRATOR.run(&self.pool).await?;
                Ok(())
            }

            async fn ready(&self) -> $crate::store::Result<bool> {
                let applied: Vec<(i64,)> =
                    match sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                        .fetch_all(&self.pool)
                        .await
                    {
                        Ok(v) => v,
                        // No migrations table yet: reachable, not ready.
                        Err(sqlx::Error::Database(_)) => return Ok(false),
                        Err(e) => return Err(e.into()),
                    };
                let applied: Vec<i64> = applied.into_iter().map(|(v,)| v).collect();
                Ok(MIGRATOR.iter().all(|m| applied.contains(&m.version)))
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            async fn gauges(&self) -> $crate::store::Result<Vec<$crate::store::Gauge>> {
                let (cases,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM cases").fetch_one(&self.pool).await?;
                let mut out: Vec<$crate::store::Gauge> = vec![("feerecon_cases", "Cases known.", vec![], cases)];
                let by_status: Vec<(String, i64)> =
                    sqlx::query_as("SELECT status, COUNT(*) FROM payments GROUP BY status ORDER BY status").fetch_all(&self.pool).await?;
                for s in $crate::domain::payment::PaymentStatus::ALL {
                    let n = by_status.iter().find(|(k, _)| k == s.as_str()).map_or(0, |(_, n)| *n);
                    out.push(("feerecon_payments", "Payments by status.", vec![("status", s.as_str().to_owned())], n));
                }
                let by_state: Vec<(String, i64)> =
                    sqlx::query_as("SELECT state, COUNT(*) FROM outbox GROUP BY state ORDER BY state").fetch_all(&self.pool).await?;
                for st in ["pending", "delivered", "failed"] {
                    let n = by_state.iter().find(|(k, _)| k == st).map_or(0, |(_, n)| *n);
                    out.push(("feerecon_notifications", "Portal notifications by state.", vec![("state", st.to_owned())], n));
                }
                Ok(out)
            }

            async fn create_payment(&self, new: &$crate::store::NewPayment, at: chrono::DateTime<chrono::Utc>) -> $crate::store::Result<$crate::store::CreatePayment> {
                self.create_payment_impl(new, at).await
            }

            async fn payment_by_key(&self, created_by: &str, case_code: &str, key: &str) -> $crate::store::Result<Option<$crate::store::Payment>> {
                let sql = format!(
                    "SELECT {} FROM payments WHERE created_by = $1 AND case_code = $2 AND idempotency_key = $3",
                    $crate::store::payments::PAYMENT_COLUMNS
                );
                let row: Option<$crate::store::payments::PaymentRow> =
                    sqlx::query_as(&sql).bind(created_by).bind(case_code).bind(key).fetch_optional(&self.pool).await?;
                Ok(self.load_payments(row.into_iter().collect()).await?.pop())
            }

            async fn case_is_settled(&self, case_code: &str) -> $crate::store::Result<bool> {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM payments WHERE case_code = $1 AND status IN ('paid', 'waived', 'budget_covered')",
                )
                .bind(case_code)
                .fetch_one(&self.pool)
                .await?;
                Ok(n > 0)
            }

            async fn get_payment(&self, payment_id: &str) -> $crate::store::Result<Option<$crate::store::Payment>> {
                self.payment_where("payment_id = $1", payment_id).await
            }

            async fn payment_by_txn_ref(&self, txn_ref: &str) -> $crate::store::Result<Option<$crate::store::Payment>> {
                self.payment_where("txn_ref = $1", txn_ref).await
            }

            async fn case_payments(&self, case_code: &str) -> $crate::store::Result<Vec<$crate::store::Payment>> {
                let sql = format!(
                    "SELECT {} FROM payments WHERE case_code = $1 ORDER BY created_at, payment_id",
                    $crate::store::payments::PAYMENT_COLUMNS
                );
                let rows: Vec<$crate::store::payments::PaymentRow> = sqlx::query_as(&sql).bind(case_code).fetch_all(&self.pool).await?;
                self.load_payments(rows).await
            }

            async fn flagged_payments(
                &self,
                flag: $crate::domain::payment::Flag,
                after: Option<&str>,
                limit: i64,
            ) -> $crate::store::Result<Vec<$crate::store::Payment>> {
                let cols = $crate::store::payments::PAYMENT_COLUMNS.split(", ").map(|c| format!("p.{c}")).collect::<Vec<_>>().join(", ");
                let sql = format!(
                    "SELECT {cols} FROM payments p JOIN payment_flags f ON f.payment_id = p.payment_id
                     WHERE f.flag = $1 AND p.payment_id > $2 ORDER BY p.payment_id LIMIT $3"
                );
                let rows: Vec<$crate::store::payments::PaymentRow> =
                    sqlx::query_as(&sql).bind(flag.as_str()).bind(after.unwrap_or("")).bind(limit).fetch_all(&self.pool).await?;
                self.load_payments(rows).await
            }

            async fn payment_callbacks(&self, payment_id: &str) -> $crate::store::Result<Vec<$crate::store::CallbackRecord>> {
                let rows: Vec<$crate::store::payments::CallbackRow> = sqlx::query_as(
                    "SELECT callback_id, source, gateway, method, path, query, headers, body, sha256, received_at, signature_valid,
                            key_used, txn_ref, gateway_txn_no, amount, outcome, result, detail
                     FROM callbacks WHERE payment_id = $1 OR (payment_id IS NULL AND txn_ref = (SELECT txn_ref FROM payments WHERE payment_id = $1))
                     ORDER BY received_at, callback_id",
                )
                .bind(payment_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|r| r.into_record()).collect())
            }

            async fn process_gateway_events(
                &self,
                jobs: &[$crate::store::EventJob],
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::Result<Vec<$crate::store::JobResult>> {
                self.process_gateway_events_impl(jobs, at).await
            }

            async fn payments_due_for_query(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                created_before: chrono::DateTime<chrono::Utc>,
                queried_before: chrono::DateTime<chrono::Utc>,
                limit: i64,
            ) -> $crate::store::Result<Vec<$crate::store::Payment>> {
                let sql = format!(
                    "SELECT {} FROM payments
                     WHERE status = 'pending' AND txn_ref IS NOT NULL AND (created_at <= $1 OR expires_at <= $2)
                       AND (last_queried_at IS NULL OR last_queried_at <= $3)
                     ORDER BY created_at LIMIT $4",
                    $crate::store::payments::PAYMENT_COLUMNS
                );
                let rows: Vec<$crate::store::payments::PaymentRow> =
                    sqlx::query_as(&sql).bind(created_before).bind(now).bind(queried_before).bind(limit).fetch_all(&self.pool).await?;
                self.load_payments(rows).await
            }

            async fn claim_query(
                &self,
                payment_id: &str,
                now: chrono::DateTime<chrono::Utc>,
                queried_before: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::Result<bool> {
                let mut tx = self.begin_write().await?;
                let n = sqlx::query(
                    "UPDATE payments SET last_queried_at = $1
                     WHERE payment_id = $2 AND status = 'pending' AND (last_queried_at IS NULL OR last_queried_at <= $3)",
                )
                .bind(now)
                .bind(payment_id)
                .bind(queried_before)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(n == 1)
            }

            async fn case_events(&self, case_code: &str) -> $crate::store::Result<Vec<$crate::store::OutboxEvent>> {
                let sql = format!("SELECT {} FROM outbox WHERE case_code = $1 ORDER BY case_seq", $crate::store::payments::OUTBOX_COLUMNS);
                Ok(sqlx::query_as(&sql).bind(case_code).fetch_all(&self.pool).await?)
            }

            async fn claim_notifications(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                lease_until: chrono::DateTime<chrono::Utc>,
                limit: i64,
            ) -> $crate::store::Result<Vec<$crate::store::OutboxEvent>> {
                self.claim_notifications_impl(now, lease_until, limit).await
            }

            async fn record_delivery(
                &self,
                event_id: &str,
                delivered: bool,
                retry_at: Option<chrono::DateTime<chrono::Utc>>,
                error: Option<&str>,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::Result<()> {
                let mut tx = self.begin_write().await?;
                let q = if delivered {
                    sqlx::query(
                        "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, delivered_at = $1, locked_until = NULL, last_error = NULL
                         WHERE event_id = $2",
                    )
                    .bind(at)
                    .bind(event_id)
                } else if let Some(retry) = retry_at {
                    sqlx::query(
                        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, locked_until = NULL, last_error = $2 WHERE event_id = $3",
                    )
                    .bind(retry)
                    .bind(error)
                    .bind(event_id)
                } else {
                    sqlx::query("UPDATE outbox SET state = 'failed', attempts = attempts + 1, locked_until = NULL, last_error = $1 WHERE event_id = $2")
                        .bind(error)
                        .bind(event_id)
                };
                q.execute(&mut **tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn notifications(&self, state: &str, after: Option<&str>, limit: i64) -> $crate::store::Result<Vec<$crate::store::OutboxEvent>> {
                let sql = format!(
                    "SELECT {} FROM outbox WHERE state = $1 AND event_id > $2 ORDER BY event_id LIMIT $3",
                    $crate::store::payments::OUTBOX_COLUMNS
                );
                Ok(sqlx::query_as(&sql).bind(state).bind(after.unwrap_or("")).bind(limit).fetch_all(&self.pool).await?)
            }

            async fn resend_notification(&self, event_id: &str, actor: &str, at: chrono::DateTime<chrono::Utc>) -> $crate::store::Result<bool> {
                let mut tx = self.begin_write().await?;
                let n = sqlx::query(
                    "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $1, locked_until = NULL WHERE event_id = $2 AND state = 'failed'",
                )
                .bind(at)
                .bind(event_id)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if n == 1 {
                    let event = $crate::store::AuditEvent {
                        actor: actor.to_owned(),
                        action: "notification.resend".into(),
                        subject: event_id.to_owned(),
                        details: serde_json::json!({}),
                    };
                    Self::audit_tx(&mut tx, std::slice::from_ref(&event), at).await?;
                }
                tx.commit().await?;
                Ok(n == 1)
            }

            async fn import_settlement(
                &self,
                f: &$crate::store::NewSettlementFile<'_>,
                at: chrono::DateTime<chrono::Utc>,
                progress: &$crate::store::Progress<'_>,
            ) -> $crate::store::Result<$crate::store::SettlementFile> {
                self.import_settlement_impl(f, at, progress).await
            }

            async fn settlement_files(&self, gateway: Option<&str>) -> $crate::store::Result<Vec<$crate::store::SettlementFile>> {
                let sql = format!(
                    "SELECT {} FROM settlement_files WHERE ($1 = '' OR gateway = $1) ORDER BY import_seq",
                    $crate::store::recon::FILE_COLUMNS
                );
                Ok(sqlx::query_as(&sql).bind(gateway.unwrap_or("")).fetch_all(&self.pool).await?)
            }

            async fn settlement_file_bytes(&self, file_id: &str) -> $crate::store::Result<Option<($crate::store::SettlementFile, Vec<u8>)>> {
                let sql = format!("SELECT {} FROM settlement_files WHERE file_id = $1", $crate::store::recon::FILE_COLUMNS);
                let f: Option<$crate::store::SettlementFile> = sqlx::query_as(&sql).bind(file_id).fetch_optional(&self.pool).await?;
                let Some(f) = f else { return Ok(None) };
                let (bytes,): (Vec<u8>,) = sqlx::query_as("SELECT bytes FROM settlement_files WHERE file_id = $1").bind(file_id).fetch_one(&self.pool).await?;
                Ok(Some((f, bytes)))
            }

            async fn settlement_line(&self, gateway: &str, gateway_txn_no: &str, status: &str) -> $crate::store::Result<Option<$crate::store::recon::LineRow>> {
                Ok(sqlx::query_as(
                    "SELECT f.file_id, l.line_no, l.gateway_txn_no, l.txn_ref, l.amount, l.fee, l.txn_time, l.business_date, l.status
                     FROM settlement_lines l JOIN settlement_files f ON f.import_seq = l.file_seq
                     WHERE l.gateway = $1 AND l.gateway_txn_no = $2 AND l.status = $3 ORDER BY l.file_seq, l.line_no LIMIT 1",
                )
                .bind(gateway)
                .bind(gateway_txn_no)
                .bind(status)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn recon_data(&self, gateway: &str) -> $crate::store::Result<$crate::store::ReconData> {
                self.recon_data_impl(gateway).await
            }

            async fn save_run(
                &self,
                run: &$crate::store::RunRecord,
                items: &[$crate::reconcile::Item<'_>],
                changes: &[$crate::store::ExceptionChange],
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::Result<bool> {
                self.save_run_impl(run, items, changes, at).await
            }

            async fn latest_run(&self, date: chrono::NaiveDate, gateway: &str) -> $crate::store::Result<Option<$crate::store::RunRecord>> {
                Ok(sqlx::query_as(
                    "SELECT run_id, business_date, gateway, created_at, created_by, report_hash, report FROM reconciliation_runs
                     WHERE business_date = $1 AND gateway = $2 ORDER BY created_at DESC, run_id DESC LIMIT 1",
                )
                .bind(date)
                .bind(gateway)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn run_items(
                &self,
                run_id: &str,
                category: Option<&str>,
                exceptions_only: bool,
                after: Option<&str>,
                limit: i64,
            ) -> $crate::store::Result<Vec<$crate::store::ItemRow>> {
                let sql = format!(
                    "SELECT {} FROM reconciliation_items
                     WHERE run_seq = (SELECT run_seq FROM reconciliation_runs WHERE run_id = $1) AND ($2 = '' OR category = $2) AND (NOT $3 OR category <> 'matched') AND item_key > $4
                     ORDER BY item_key LIMIT $5",
                    $crate::store::recon::ITEM_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(run_id)
                    .bind(category.unwrap_or(""))
                    .bind(exceptions_only)
                    .bind(after.unwrap_or(""))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn run_item(&self, run_id: &str, key: &str) -> $crate::store::Result<Option<$crate::store::ItemRow>> {
                let sql = format!(
                    "SELECT {} FROM reconciliation_items
                     WHERE run_seq = (SELECT run_seq FROM reconciliation_runs WHERE run_id = $1) AND item_key = $2",
                    $crate::store::recon::ITEM_COLUMNS
                );
                Ok(sqlx::query_as(&sql).bind(run_id).bind(key).fetch_optional(&self.pool).await?)
            }

            async fn gateway_exceptions(&self, gateway: &str) -> $crate::store::Result<Vec<$crate::store::ExceptionRow>> {
                let sql = format!("SELECT {} FROM exceptions WHERE gateway = $1", $crate::store::recon::EXCEPTION_COLUMNS);
                Ok(sqlx::query_as(&sql).bind(gateway).fetch_all(&self.pool).await?)
            }

            async fn get_exception(&self, id: &str) -> $crate::store::Result<Option<$crate::store::ExceptionRow>> {
                let sql = format!("SELECT {} FROM exceptions WHERE exception_id = $1", $crate::store::recon::EXCEPTION_COLUMNS);
                Ok(sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?)
            }

            async fn change_exceptions(
                &self,
                changes: &[$crate::store::ExceptionChange],
                audit: &[$crate::store::AuditEvent],
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::Result<bool> {
                let mut tx = self.begin_write().await?;
                if !Self::apply_exception_changes_tx(&mut tx, changes, at).await? {
                    return Ok(false);
                }
                Self::audit_tx(&mut tx, audit, at).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn closure(&self, date: chrono::NaiveDate, gateway: &str) -> $crate::store::Result<Option<chrono::DateTime<chrono::Utc>>> {
                let row: Option<(chrono::DateTime<chrono::Utc>,)> =
                    sqlx::query_as("SELECT closed_at FROM day_closures WHERE business_date = $1 AND gateway = $2")
                        .bind(date)
                        .bind(gateway)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.map(|(t,)| t))
            }

            async fn close_day(
                &self,
                date: chrono::NaiveDate,
                gateway: &str,
                run_id: &str,
                actor: &str,
                postings: &[$crate::domain::ledger::Posting],
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::Result<bool> {
                let at = $crate::domain::Timestamp::at(at).0;
                let mut tx = self.begin_write().await?;
                let n = sqlx::query(
                    "INSERT INTO day_closures (business_date, gateway, run_id, closed_at, closed_by) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (business_date, gateway) DO NOTHING",
                )
                .bind(date)
                .bind(gateway)
                .bind(run_id)
                .bind(at)
                .bind(actor)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                Self::append_postings_tx(&mut tx, postings, at).await?;
                let event = $crate::store::AuditEvent {
                    actor: actor.to_owned(),
                    action: "day.close".into(),
                    subject: format!("{date}/{gateway}"),
                    details: serde_json::json!({"run_id": run_id, "postings": postings.len()}),
                };
                Self::audit_tx(&mut tx, std::slice::from_ref(&event), at).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn no_gateway_sums(
                &self,
                date: chrono::NaiveDate,
            ) -> $crate::store::Result<($crate::store::NoGatewaySums, $crate::store::NoGatewaySums)> {
                let start = $crate::domain::BusinessDate::new(date).start();
                let end = $crate::domain::BusinessDate::new(date).succ().start();
                let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
                    "SELECT status, COUNT(*), CAST(COALESCE(SUM(amount), 0) AS BIGINT), CAST(COALESCE(SUM(budget_amount), 0) AS BIGINT) FROM payments
                     WHERE status IN ('waived', 'budget_covered') AND created_at >= $1 AND created_at < $2 GROUP BY status",
                )
                .bind(start)
                .bind(end)
                .fetch_all(&self.pool)
                .await?;
                let get = |s: &str| {
                    rows.iter()
                        .find(|r| r.0 == s)
                        .map(|r| $crate::store::NoGatewaySums { count: r.1, citizen_due: r.2, budget_due: r.3 })
                        .unwrap_or_default()
                };
                Ok((get("waived"), get("budget_covered")))
            }

            async fn day_gateways(&self, date: chrono::NaiveDate) -> $crate::store::Result<Vec<$crate::store::DayGateway>> {
                let mut out = Vec::new();
                for g in $crate::domain::payment::Gateway::ALL {
                    let run = self.latest_run(date, g.as_str()).await?;
                    let closed = self.closure(date, g.as_str()).await?;
                    out.push($crate::store::DayGateway {
                        gateway: g.as_str().to_owned(),
                        report_hash: run.as_ref().map(|r| r.report_hash.clone()),
                        run_at: run.map(|r| $crate::domain::Timestamp::at(r.created_at)),
                        closed_at: closed.map($crate::domain::Timestamp::at),
                    });
                }
                Ok(out)
            }

            async fn ledger_key(&self, candidate: &str, at: chrono::DateTime<chrono::Utc>) -> $crate::store::Result<String> {
                let mut tx = self.begin_write().await?;
                let existing: Option<(String,)> = sqlx::query_as("SELECT public_key FROM ledger_keys ORDER BY recorded_at LIMIT 1")
                    .fetch_optional(&mut **tx)
                    .await?;
                if let Some((k,)) = existing {
                    return Ok(k);
                }
                sqlx::query("INSERT INTO ledger_keys (public_key, recorded_at) VALUES ($1, $2) ON CONFLICT (public_key) DO NOTHING")
                    .bind(candidate)
                    .bind(at)
                    .execute(&mut **tx)
                    .await?;
                tx.commit().await?;
                Ok(candidate.to_owned())
            }

            async fn recorded_ledger_key(&self) -> $crate::store::Result<Option<String>> {
                let row: Option<(String,)> = sqlx::query_as("SELECT public_key FROM ledger_keys ORDER BY recorded_at LIMIT 1")
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|(k,)| k))
            }

            async fn write_checkpoint(
                &self,
                kind: &str,
                date: chrono::NaiveDate,
                gateway: &str,
                at: chrono::DateTime<chrono::Utc>,
                public_key: &str,
                sign: &$crate::store::ledger::Signer<'_>,
            ) -> $crate::store::Result<Option<$crate::store::ledger::Checkpoint>> {
                self.write_checkpoint_impl(kind, date, gateway, at, public_key, sign).await
            }

            async fn checkpoints(&self) -> $crate::store::Result<Vec<$crate::store::ledger::Checkpoint>> {
                let sql = format!("SELECT {} FROM ledger_checkpoints ORDER BY last_seq, created_at, checkpoint_id", $crate::store::ledger::CHECKPOINT_COLUMNS);
                Ok(sqlx::query_as(&sql).fetch_all(&self.pool).await?)
            }

            async fn ledger_seq_range(&self, from: chrono::NaiveDate, to: chrono::NaiveDate) -> $crate::store::Result<Option<(i64, i64)>> {
                let row: (Option<i64>, Option<i64>) =
                    sqlx::query_as("SELECT MIN(seq), MAX(seq) FROM ledger_entries WHERE business_date >= $1 AND business_date <= $2")
                        .bind(from)
                        .bind(to)
                        .fetch_one(&self.pool)
                        .await?;
                Ok(match row {
                    (Some(a), Some(b)) => Some((a, b)),
                    _ => None,
                })
            }

            async fn ledger_head(&self) -> $crate::store::Result<(i64, String)> {
                Ok(sqlx::query_as("SELECT last_seq, last_hash FROM chain_heads WHERE chain = 'ledger'").fetch_one(&self.pool).await?)
            }

            async fn ledger_slice(&self, from: i64, to: i64) -> $crate::store::Result<Vec<$crate::store::LedgerEntry>> {
                let sql = format!("SELECT {} FROM ledger_entries WHERE seq >= $1 AND seq <= $2 ORDER BY seq", $crate::store::payments::LEDGER_COLUMNS);
                Ok(sqlx::query_as(&sql).bind(from).bind(to).fetch_all(&self.pool).await?)
            }

            async fn trial_balance(&self, date: chrono::NaiveDate) -> $crate::store::Result<Vec<(String, i64, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT account, CAST(COALESCE(SUM(debit), 0) AS BIGINT), CAST(COALESCE(SUM(credit), 0) AS BIGINT) FROM ledger_entries
                     WHERE business_date = $1 GROUP BY account ORDER BY account",
                )
                .bind(date)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn first_ledger_date(&self) -> $crate::store::Result<Option<chrono::NaiveDate>> {
                let (d,): (Option<chrono::NaiveDate>,) =
                    sqlx::query_as("SELECT MIN(business_date) FROM ledger_entries").fetch_one(&self.pool).await?;
                Ok(d)
            }

            async fn posting_entries(&self, posting_id: &str) -> $crate::store::Result<Vec<$crate::store::LedgerEntry>> {
                let sql = format!("SELECT {} FROM ledger_entries WHERE posting_id = $1 ORDER BY line_no", $crate::store::payments::LEDGER_COLUMNS);
                Ok(sqlx::query_as(&sql).bind(posting_id).fetch_all(&self.pool).await?)
            }

            async fn ledger_entries(&self, after: i64, limit: i64) -> $crate::store::Result<Vec<$crate::store::LedgerEntry>> {
                let sql = format!("SELECT {} FROM ledger_entries WHERE seq > $1 ORDER BY seq LIMIT $2", $crate::store::payments::LEDGER_COLUMNS);
                Ok(sqlx::query_as(&sql).bind(after).bind(limit).fetch_all(&self.pool).await?)
            }

            async fn expire_payment(&self, payment_id: &str, at: chrono::DateTime<chrono::Utc>) -> $crate::store::Result<bool> {
                self.expire_payment_impl(payment_id, at).await
            }

            async fn upsert_case(
                &self,
                case: &$crate::domain::Case,
                actor: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::Result<($crate::store::Upserted, $crate::store::StoredCase)> {
                let mut tx = self.begin_write().await?;
                let out = Self::upsert_case_tx(&mut tx, case, actor, at).await?;
                tx.commit().await?;
                Ok(out)
            }

            async fn import_cases(
                &self,
                cases: &[$crate::domain::Case],
                actor: &str,
                at: chrono::DateTime<chrono::Utc>,
                progress: &$crate::store::Progress<'_>,
            ) -> $crate::store::Result<$crate::store::ImportCounts> {
                let mut counts = $crate::store::ImportCounts::default();
                let mut tx = self.begin_write().await?;
                for (i, case) in cases.iter().enumerate() {
                    if i > 0 && i % $crate::store::PROGRESS_EVERY == 0 {
                        progress(i);
                    }
                    match Self::upsert_case_tx(&mut tx, case, actor, at).await?.0 {
                        $crate::store::Upserted::Created => counts.created += 1,
                        $crate::store::Upserted::Updated => counts.updated += 1,
                        $crate::store::Upserted::Unchanged => counts.unchanged += 1,
                    }
                }
                tx.commit().await?;
                Ok(counts)
            }

            async fn get_case(
                &self,
                code: &$crate::domain::CaseCode,
            ) -> $crate::store::Result<Option<$crate::store::StoredCase>> {
                let row: Option<$crate::store::common::CaseVersionRow> = sqlx::query_as(
                    "SELECT v.case_code, v.version, v.procedure_code, v.applicant_name, v.channel, v.subjects, v.facts, v.quantity,
                            v.received_at, v.receiving_unit, v.recorded_at
                     FROM cases c JOIN case_versions v ON v.case_code = c.case_code AND v.version = c.current_version
                     WHERE c.case_code = $1",
                )
                .bind(code.as_str())
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| r.into_stored()).transpose()
            }

            async fn case_versions(
                &self,
                code: &$crate::domain::CaseCode,
            ) -> $crate::store::Result<Vec<$crate::store::StoredCase>> {
                let rows: Vec<$crate::store::common::CaseVersionRow> = sqlx::query_as(
                    "SELECT case_code, version, procedure_code, applicant_name, channel, subjects, facts, quantity,
                            received_at, receiving_unit, recorded_at
                     FROM case_versions WHERE case_code = $1 ORDER BY version",
                )
                .bind(code.as_str())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(|r| r.into_stored()).collect()
            }

            async fn add_user(
                &self,
                name: &str,
                role: $crate::domain::Role,
                password_hash: Option<String>,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::Result<$crate::store::User> {
                let at = $crate::domain::Timestamp::at(at).0;
                let user = $crate::store::User {
                    user_id: $crate::domain::new_id("usr"),
                    name: name.to_owned(),
                    role,
                    password_hash,
                    created_at: at,
                };
                let mut tx = self.begin_write().await?;
                sqlx::query("INSERT INTO users (user_id, name, role, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&user.user_id)
                    .bind(&user.name)
                    .bind(role.as_str())
                    .bind(&user.password_hash)
                    .bind(at)
                    .execute(&mut **tx)
                    .await
                    .map_err(|e| $crate::store::common::on_unique(e, || format!("a user named {name:?} already exists")))?;
                let event = $crate::store::AuditEvent {
                    actor: "cli".into(),
                    action: "user.add".into(),
                    subject: name.to_owned(),
                    details: serde_json::json!({"role": role.as_str(), "can_log_in": user.password_hash.is_some()}),
                };
                Self::audit_tx(&mut tx, std::slice::from_ref(&event), at).await?;
                tx.commit().await?;
                Ok(user)
            }

            async fn user_by_name(&self, name: &str) -> $crate::store::Result<Option<$crate::store::User>> {
                let row: Option<$crate::store::common::UserRow> =
                    sqlx::query_as("SELECT user_id, name, role, password_hash, created_at FROM users WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(|r| r.into_user()).transpose()
            }

            async fn add_token(
                &self,
                token_id: &str,
                user: &$crate::store::User,
                label: Option<&str>,
                secret_sha256: &str,
                at: chrono::DateTime<chrono::Utc>,
                expires_at: Option<chrono::DateTime<chrono::Utc>>,
            ) -> $crate::store::Result<()> {
                let at = $crate::domain::Timestamp::at(at).0;
                let expires_at = expires_at.map(|t| $crate::domain::Timestamp::at(t).0);
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO api_tokens (token_id, user_id, label, secret_sha256, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(token_id)
                .bind(&user.user_id)
                .bind(label)
                .bind(secret_sha256)
                .bind(at)
                .bind(expires_at)
                .execute(&mut **tx)
                .await
                .map_err(|e| $crate::store::common::on_unique(e, || format!("token id {token_id} already exists")))?;
                let event = $crate::store::AuditEvent {
                    actor: "cli".into(),
                    action: "token.create".into(),
                    subject: token_id.to_owned(),
                    details: serde_json::json!({
                        "user": user.name,
                        "label": label,
                        "expires_at": expires_at.map(|t| $crate::domain::Timestamp::at(t).to_vn_string()),
                    }),
                };
                Self::audit_tx(&mut tx, std::slice::from_ref(&event), at).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_tokens(&self) -> $crate::store::Result<Vec<$crate::store::TokenInfo>> {
                let rows: Vec<(
                    String,
                    String,
                    Option<String>,
                    chrono::DateTime<chrono::Utc>,
                    Option<chrono::DateTime<chrono::Utc>>,
                    Option<chrono::DateTime<chrono::Utc>>,
                )> = sqlx::query_as(
                    "SELECT t.token_id, u.name, t.label, t.created_at, t.expires_at, t.revoked_at
                     FROM api_tokens t JOIN users u ON u.user_id = t.user_id
                     ORDER BY t.created_at, t.token_id",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(token_id, user_name, label, created_at, expires_at, revoked_at)| $crate::store::TokenInfo {
                        token_id,
                        user_name,
                        label,
                        created_at,
                        expires_at,
                        revoked_at,
                    })
                    .collect())
            }

            async fn revoke_token(
                &self,
                token_id: &str,
                actor: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::Result<bool> {
                let at = $crate::domain::Timestamp::at(at).0;
                let mut tx = self.begin_write().await?;
                let exists: Option<(Option<chrono::DateTime<chrono::Utc>>,)> =
                    sqlx::query_as(concat!("SELECT revoked_at FROM api_tokens WHERE token_id = $1", $for_update))
                        .bind(token_id)
                        .fetch_optional(&mut **tx)
                        .await?;
                let Some((revoked_at,)) = exists else {
                    return Ok(false);
                };
                if revoked_at.is_none() {
                    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE token_id = $2")
                        .bind(at)
                        .bind(token_id)
                        .execute(&mut **tx)
                        .await?;
                    let event = $crate::store::AuditEvent {
                        actor: actor.to_owned(),
                        action: "token.revoke".into(),
                        subject: token_id.to_owned(),
                        details: serde_json::json!({}),
                    };
                    Self::audit_tx(&mut tx, std::slice::from_ref(&event), at).await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn token_owner(&self, token_id: &str) -> $crate::store::Result<Option<$crate::store::TokenOwner>> {
                let row: Option<$crate::store::common::TokenOwnerRow> = sqlx::query_as(
                    "SELECT t.secret_sha256, t.expires_at, t.revoked_at, u.user_id, u.name, u.role, u.password_hash, u.created_at
                     FROM api_tokens t JOIN users u ON u.user_id = t.user_id WHERE t.token_id = $1",
                )
                .bind(token_id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| r.into_owner()).transpose()
            }

            async fn audit(
                &self,
                events: &[$crate::store::AuditEvent],
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::Result<()> {
                let mut tx = self.begin_write().await?;
                Self::audit_tx(&mut tx, events, at).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn last_audit(&self, action: &str) -> $crate::store::Result<Option<$crate::store::AuditEntry>> {
                let row: Option<$crate::store::common::AuditRow> = sqlx::query_as(
                    "SELECT seq, at, actor, action, subject, details, prev_hash, hash
                     FROM audit_log WHERE action = $1 ORDER BY seq DESC LIMIT 1",
                )
                .bind(action)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| r.into_entry()).transpose()
            }

            async fn audit_log(&self, after: i64, limit: i64) -> $crate::store::Result<Vec<$crate::store::AuditEntry>> {
                let rows: Vec<$crate::store::common::AuditRow> = sqlx::query_as(
                    "SELECT seq, at, actor, action, subject, details, prev_hash, hash
                     FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(|r| r.into_entry()).collect()
            }
        }
    };
}

pub(super) use impl_store;
