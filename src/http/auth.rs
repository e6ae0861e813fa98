//! The bearer-token check in front of every route that needs one.
//!
//! `Authorization: Bearer frt_<id>_<secret>`: the id finds the token, the secret is checked
//! against the stored SHA-256 in constant time, then revocation and expiry are checked against
//! the database on every request (so a revocation is effective at once), then the route's
//! `Access` decides between 403 and passing the `Principal` on to the handler. Dashboard routes
//! are checked by their login session instead (`dashboard::session::guard`).

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::error::ApiError;
use super::routes::Access;
use crate::domain::Role;

/// Who is calling. Handlers of token routes read it from the request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub name: String,
    pub role: Role,
}

/// Resolves a presented token to its user; `Unauthorized` with the reason otherwise.
pub async fn authenticate(state: &AppState, header_value: Option<&str>) -> Result<Option<Principal>, ApiError> {
    let Some(value) = header_value else {
        return Ok(None);
    };
    let presented = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| ApiError::Unauthorized("the Authorization header must be 'Bearer <token>'".into()))?
        .trim();
    let invalid = || ApiError::Unauthorized("the token is not valid".into());
    let (id, secret) = crate::auth::split_token(presented).ok_or_else(invalid)?;
    let owner = state.store.token_owner(id).await?.ok_or_else(invalid)?;
    if !crate::auth::secret_matches(secret, &owner.secret_sha256) {
        return Err(invalid());
    }
    if owner.revoked_at.is_some() {
        return Err(ApiError::Unauthorized("the token has been revoked".into()));
    }
    if owner.expires_at.is_some_and(|t| t <= state.clock.now()) {
        return Err(ApiError::Unauthorized("the token has expired".into()));
    }
    Ok(Some(Principal { user_id: owner.user.user_id, name: owner.user.name, role: owner.user.role }))
}

/// The middleware: applies `access` to the request.
pub async fn authorize(
    State((state, access)): State<(AppState, Access)>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if access == Access::Public {
        return Ok(next.run(req).await);
    }
    if access.is_page() {
        return Ok(super::dashboard::session::guard(state, access, req, next).await);
    }
    let header_value = req.headers().get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
    let principal = authenticate(&state, header_value).await?;
    match (access, principal) {
        (Access::Gateway, None) => Ok(next.run(req).await),
        (_, None) => Err(ApiError::Unauthorized("this route needs a bearer token".into())),
        (access, Some(p)) if access.allows(p.role) => {
            req.extensions_mut().insert(p);
            Ok(next.run(req).await)
        }
        (_, Some(p)) => Err(ApiError::Forbidden(format!("the role {} may not use this route", p.role))),
    }
}
