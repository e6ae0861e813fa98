//! Users and their API tokens (SPEC §3.2). Only the SHA-256 of a token's secret is stored.

use chrono::{DateTime, Utc};

use super::{Result, Store, WriteTx, on_pool, on_tx, on_unique};
use crate::domain::{Role, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    pub user_id: String,
    pub name: String,
    pub role: Role,
    /// argon2id PHC string; `None` for a machine client, which cannot log in to the dashboard.
    pub password_hash: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A token's row without anything secret.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenInfo {
    pub token_id: String,
    pub user_name: String,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token row with the user it acts as, for authentication.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    pub secret_sha256: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub user: User,
}

#[derive(sqlx::FromRow)]
struct TokenOwnerRow {
    secret_sha256: String,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    user: User,
}

impl Store {
    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        let sql = "SELECT user_id, name, role, password_hash, created_at FROM users WHERE name = $1";
        Ok(on_pool!(self, |p| sqlx::query_as(sql).bind(name).fetch_optional(p).await)?)
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<User>> {
        let sql = "SELECT user_id, name, role, password_hash, created_at FROM users ORDER BY name";
        Ok(on_pool!(self, |p| sqlx::query_as(sql).fetch_all(p).await)?)
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>> {
        let sql = "SELECT t.token_id, u.name AS user_name, t.label, t.created_at, t.expires_at, t.revoked_at
                   FROM api_tokens t JOIN users u ON u.user_id = t.user_id ORDER BY t.created_at, t.token_id";
        Ok(on_pool!(self, |p| sqlx::query_as(sql).fetch_all(p).await)?)
    }

    /// The token's hash, state and user, for the bearer check.
    pub async fn token_owner(&self, token_id: &str) -> Result<Option<TokenOwner>> {
        let sql = "SELECT t.secret_sha256, t.expires_at, t.revoked_at, u.user_id, u.name, u.role, u.password_hash, u.created_at
                   FROM api_tokens t JOIN users u ON u.user_id = t.user_id WHERE t.token_id = $1";
        let row: Option<TokenOwnerRow> =
            on_pool!(self, |p| sqlx::query_as(sql).bind(token_id).fetch_optional(p).await)?;
        Ok(row.map(|r| TokenOwner {
            secret_sha256: r.secret_sha256,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            user: r.user,
        }))
    }
}

impl WriteTx {
    /// Adds a user; a taken name is `Conflict`.
    pub async fn insert_user(&mut self, user: &User) -> Result<()> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO users (user_id, name, role, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(&user.user_id)
        .bind(&user.name)
        .bind(user.role)
        .bind(&user.password_hash)
        .bind(Timestamp::at(user.created_at))
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| on_unique(e, || format!("a user named {:?} already exists", user.name)))?;
        Ok(())
    }

    /// Records a token for a user (only the hash of its secret).
    pub async fn insert_token(
        &mut self,
        token_id: &str,
        user_id: &str,
        label: Option<&str>,
        secret_sha256: &str,
        at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO api_tokens (token_id, user_id, label, secret_sha256, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_id)
        .bind(user_id)
        .bind(label)
        .bind(secret_sha256)
        .bind(Timestamp::at(at))
        .bind(expires_at.map(Timestamp::at))
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| on_unique(e, || format!("token id {token_id} already exists")))?;
        Ok(())
    }

    /// Revokes a token, holding its row: `None` when no such token exists, else when it was
    /// revoked (now, or earlier: revoking twice keeps the first time) and whether it was already.
    pub async fn revoke_token(&mut self, token_id: &str, at: DateTime<Utc>) -> Result<Option<(DateTime<Utc>, bool)>> {
        let sql = format!("SELECT revoked_at FROM api_tokens WHERE token_id = $1{}", self.for_update());
        let row: Option<(Option<DateTime<Utc>>,)> =
            on_tx!(self, |c| sqlx::query_as(&sql).bind(token_id).fetch_optional(&mut *c).await)?;
        let Some((revoked_at,)) = row else { return Ok(None) };
        if let Some(earlier) = revoked_at {
            return Ok(Some((earlier, true)));
        }
        let at = Timestamp::at(at);
        on_tx!(self, |c| sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE token_id = $2")
            .bind(at)
            .bind(token_id)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(Some((at.0, false)))
    }
}
