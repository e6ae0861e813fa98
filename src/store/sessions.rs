//! Dashboard login sessions (SPEC §4.1): one row per login, keyed by the SHA-256 of the session
//! id the browser holds; the id itself is never stored. Whether a session is still usable (idle
//! and absolute limits, logout) is the service's decision; this file only stores and reads.

use chrono::{DateTime, Utc};

use super::{Result, Store, WriteTx, on_pool, on_tx, on_unique};
use crate::domain::Timestamp;

use super::auth::User;

/// A session as stored, with the user it acts as (read from `users` on every request, so a
/// change of role applies at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Lower-case hex SHA-256 of the session id.
    pub session_sha256: String,
    pub created_at: DateTime<Utc>,
    /// The last request that used it (updated at most once a minute).
    pub last_seen_at: DateTime<Utc>,
    /// The absolute end, set at login.
    pub expires_at: DateTime<Utc>,
    /// Set by a logout; the session is unusable from then on.
    pub ended_at: Option<DateTime<Utc>>,
    pub user: User,
}

#[derive(sqlx::FromRow)]
struct Row {
    session_sha256: String,
    s_created_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    user: User,
}

/// A session to record at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub session_sha256: String,
    pub user_id: String,
    pub at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// The session with this hash and its user, whatever its state.
    pub async fn session(&self, session_sha256: &str) -> Result<Option<SessionRow>> {
        let sql = "SELECT s.session_sha256, s.created_at AS s_created_at, s.last_seen_at, s.expires_at, s.ended_at,
                          u.user_id, u.name, u.role, u.password_hash, u.created_at
                   FROM dashboard_sessions s JOIN users u ON u.user_id = s.user_id WHERE s.session_sha256 = $1";
        let row: Option<Row> = on_pool!(self, |p| sqlx::query_as(sql).bind(session_sha256).fetch_optional(p).await)?;
        Ok(row.map(|r| SessionRow {
            session_sha256: r.session_sha256,
            created_at: r.s_created_at,
            last_seen_at: r.last_seen_at,
            expires_at: r.expires_at,
            ended_at: r.ended_at,
            user: r.user,
        }))
    }
}

impl WriteTx {
    /// Records a new session; a hash already present is `Conflict` (256 random bits: never).
    pub async fn insert_session(&mut self, s: &NewSession) -> Result<()> {
        let at = Timestamp::at(s.at);
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO dashboard_sessions (session_sha256, user_id, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(&s.session_sha256)
        .bind(&s.user_id)
        .bind(at)
        .bind(at)
        .bind(Timestamp::at(s.expires_at))
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| on_unique(e, || "a session with this id already exists".to_owned()))?;
        Ok(())
    }

    /// Moves a live session's `last_seen_at` to `at`.
    pub async fn touch_session(&mut self, session_sha256: &str, at: DateTime<Utc>) -> Result<()> {
        on_tx!(self, |c| sqlx::query(
            "UPDATE dashboard_sessions SET last_seen_at = $1 WHERE session_sha256 = $2 AND ended_at IS NULL"
        )
        .bind(Timestamp::at(at))
        .bind(session_sha256)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Ends a session (logout): `false` when there was no live session with this hash.
    pub async fn end_session(&mut self, session_sha256: &str, at: DateTime<Utc>) -> Result<bool> {
        let n = on_tx!(self, |c| sqlx::query(
            "UPDATE dashboard_sessions SET ended_at = $1 WHERE session_sha256 = $2 AND ended_at IS NULL"
        )
        .bind(Timestamp::at(at))
        .bind(session_sha256)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Deletes sessions whose absolute end is before `before` (they can never be used again).
    pub async fn delete_sessions_expired_before(&mut self, before: DateTime<Utc>) -> Result<u64> {
        Ok(on_tx!(self, |c| sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at < $1")
            .bind(Timestamp::at(before))
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))?)
    }
}
