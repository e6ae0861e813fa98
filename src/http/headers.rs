//! The security headers every answer carries, API and pages alike, whatever made it (a handler,
//! an access check, the error envelope, the fallback): no MIME sniffing, no framing, no referrer,
//! no caching unless the answer says otherwise, and a content policy that loads nothing unless
//! the answer sets its own (the dashboard's pages and the printable receipt do, in
//! `dashboard::session::secure` and `receipts::print`). Set only where absent, so those keep theirs.

use axum::Router;
use axum::http::{HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

/// What an answer that names no content policy gets: nothing may load, nothing may frame it.
pub const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `router` with the headers added to every answer.
pub fn apply(router: Router) -> Router {
    let set = |name, value: &'static str| SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value));
    router
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(header::REFERRER_POLICY, "no-referrer"))
        .layer(set(header::CACHE_CONTROL, "no-store"))
        .layer(set(header::CONTENT_SECURITY_POLICY, DEFAULT_CSP))
}
