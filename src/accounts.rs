//! Users and tokens administered on the server's CLI (SPEC §3.2), and the dashboard's login
//! sessions: each change is written with its audit entry in one transaction. Minting and hashing
//! credentials is `auth`'s (pure).

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::auth::NewToken;
use crate::domain::{Role, Secret, Timestamp, new_id};
use crate::ledger::chain::append_audit;
use crate::store::{AuditEvent, Store, StoreError, User};

/// Adds a user; a taken name is `StoreError::Conflict`.
pub async fn add_user(
    store: &Store,
    actor: &str,
    name: &str,
    role: Role,
    password_hash: Option<String>,
    at: DateTime<Utc>,
) -> Result<User, StoreError> {
    let user =
        User { user_id: new_id("usr"), name: name.to_owned(), role, password_hash, created_at: Timestamp::at(at).0 };
    let mut tx = store.write().await?;
    tx.insert_user(&user).await?;
    let details = json!({"role": role.as_str(), "can_log_in": user.password_hash.is_some()});
    append_audit(&mut tx, &[AuditEvent::new(actor, "user.add", name, details)], at).await?;
    tx.commit().await?;
    Ok(user)
}

/// Records a minted token for a user (only its hash).
pub async fn add_token(
    store: &Store,
    actor: &str,
    token: &NewToken,
    user: &User,
    label: Option<&str>,
    at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let mut tx = store.write().await?;
    tx.insert_token(&token.id, &user.user_id, label, &token.secret_hash, at, expires_at).await?;
    let details = json!({
        "user": user.name,
        "label": label,
        "expires_at": expires_at.map(|t| Timestamp::at(t).to_vn_string()),
    });
    append_audit(&mut tx, &[AuditEvent::new(actor, "token.create", token.id.clone(), details)], at).await?;
    tx.commit().await
}

/// What revoking a token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Now,
    /// It was revoked before, at this time: nothing changed.
    Already(DateTime<Utc>),
    NoSuchToken,
}

/// Revokes a token at once (the bearer check reads the database on every request).
pub async fn revoke_token(
    store: &Store,
    actor: &str,
    token_id: &str,
    at: DateTime<Utc>,
) -> Result<Revoked, StoreError> {
    let mut tx = store.write().await?;
    let out = match tx.revoke_token(token_id, at).await? {
        None => Revoked::NoSuchToken,
        Some((when, true)) => Revoked::Already(when),
        Some((_, false)) => {
            append_audit(&mut tx, &[AuditEvent::new(actor, "token.revoke", token_id, json!({}))], at).await?;
            Revoked::Now
        }
    };
    tx.commit().await?;
    Ok(out)
}

/// How long a dashboard session lives without a request (then the user logs in again).
pub const SESSION_IDLE: chrono::TimeDelta = chrono::TimeDelta::minutes(30);
/// How long a dashboard session lives at most, however busy.
pub const SESSION_MAX: chrono::TimeDelta = chrono::TimeDelta::hours(12);
/// `last_seen_at` is moved at most this often (a write per page view would be waste).
const SESSION_TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// Opens a dashboard session for a user whose password was checked, audited as `session.login`;
/// returns the session id for the cookie (only its hash is stored). Sessions past their absolute
/// end are swept in the same transaction.
pub async fn open_session(
    store: &Store,
    user: &User,
    at: DateTime<Utc>,
) -> Result<crate::auth::session::NewSessionId, StoreError> {
    let s = crate::auth::session::new_session_id();
    let expires_at = at + SESSION_MAX;
    let mut tx = store.write().await?;
    tx.delete_sessions_expired_before(at).await?;
    tx.insert_session(&crate::store::NewSession {
        session_sha256: s.sha256.clone(),
        user_id: user.user_id.clone(),
        at,
        expires_at,
    })
    .await?;
    let details = json!({"role": user.role.as_str(), "expires_at": Timestamp::at(expires_at).to_vn_string()});
    append_audit(&mut tx, &[AuditEvent::new(&user.name, "session.login", &user.name, details)], at).await?;
    tx.commit().await?;
    Ok(s)
}

/// The user of a live session (not logged out, within its idle and absolute limits), marking
/// it used at `at`; `None` for an unknown, ended or expired session.
pub async fn session_user(store: &Store, id: &Secret, at: DateTime<Utc>) -> Result<Option<User>, StoreError> {
    let hash = crate::auth::session::session_hash(id);
    let Some(s) = store.session(&hash).await? else { return Ok(None) };
    if s.ended_at.is_some() || s.expires_at <= at || s.last_seen_at + SESSION_IDLE <= at {
        return Ok(None);
    }
    if at - s.last_seen_at >= SESSION_TOUCH_EVERY {
        let mut tx = store.write().await?;
        tx.touch_session(&hash, at).await?;
        tx.commit().await?;
    }
    Ok(Some(s.user))
}

/// Ends a session (logout), audited as `session.logout`; `false` when it was not live.
pub async fn close_session(store: &Store, id: &Secret, actor: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
    let mut tx = store.write().await?;
    if !tx.end_session(&crate::auth::session::session_hash(id), at).await? {
        return Ok(false);
    }
    append_audit(&mut tx, &[AuditEvent::new(actor, "session.logout", actor, json!({}))], at).await?;
    tx.commit().await?;
    Ok(true)
}
