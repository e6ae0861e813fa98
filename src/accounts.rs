//! Users and tokens administered on the server's CLI (SPEC §3.2): each change is written with
//! its audit entry in one transaction. Minting and hashing credentials is `auth`'s (pure).

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::auth::NewToken;
use crate::domain::{Role, Timestamp, new_id};
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
