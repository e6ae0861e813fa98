//! Who is looking at a page: the session cookie, the access check of every page and form, the
//! CSRF check of every form, the login rate limit, and the security headers of every answer.
//!
//! The session cookie (`feerecon_session`) is HttpOnly and SameSite=Strict (and Secure when the
//! public URL is https); its value is the session id, whose SHA-256 finds the session
//! (`accounts::session_user`, which also applies the idle and absolute limits). A page without a
//! live session redirects to `/login`; a role the route does not allow gets a 403 page. Forms
//! carry the session's CSRF token (`auth::session::csrf_token`), checked in constant time by the
//! `CsrfForm` extractor before the handler sees the form; the login form, which has no session
//! yet, carries a token that must equal a short-lived cookie (double submit).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde::de::DeserializeOwned;

use super::i18n::Lang;
use super::page::{PageError, error_page};
use crate::domain::{Role, Secret};
use crate::http::AppState;
use crate::http::routes::Access;

pub const SESSION_COOKIE: &str = "feerecon_session";
pub const LANG_COOKIE: &str = "feerecon_lang";
pub const LOGIN_COOKIE: &str = "feerecon_login";

/// The logged-in user of a page request, put in the request's extensions by `guard`.
#[derive(Clone)]
pub struct Viewer {
    pub user_id: String,
    pub name: String,
    pub role: Role,
    pub lang: Lang,
    /// The path and query of this request (for the language switch's way back).
    pub here: String,
    csrf: Secret,
    session: Secret,
}

impl std::fmt::Debug for Viewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Viewer").field("name", &self.name).field("role", &self.role).finish_non_exhaustive()
    }
}

impl Viewer {
    /// Whether this user may act (resolve, approve, close, import, re-send): finance only.
    pub fn can_act(&self) -> bool {
        Access::PageFinance.allows(self.role)
    }

    /// The CSRF token the page's forms carry.
    pub fn csrf(&self) -> &str {
        self.csrf.expose()
    }

    pub fn session(&self) -> &Secret {
        &self.session
    }
}

/// The client's address, when the server knows it (for the login rate limit).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, on the whole site; `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict{age}{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// Whether cookies must be `Secure` (the service is reached over https).
pub fn secure_cookies(state: &AppState) -> bool {
    state.config.public_url.starts_with("https://")
}

/// The language of a request: the cookie's, else Vietnamese.
pub fn lang_of(headers: &HeaderMap) -> Lang {
    cookie(headers, LANG_COOKIE).and_then(Lang::parse).unwrap_or_default()
}

/// The headers every dashboard answer carries: a CSP that allows no inline script or style
/// and no framing, no MIME sniffing, no referrer, no caching of pages. A page that sets its own
/// CSP keeps it (only the printable receipt does: no script, no load, its inline stylesheet).
pub fn secure(res: &mut Response, https: bool) {
    let h = res.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
    ));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    if https {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
}

/// The page a request shows, for the language switch's way back: the request itself for a
/// `GET`; for a form that re-renders its page (with an error), that page's path.
fn way_back(method: &Method, uri: &axum::http::Uri) -> String {
    if method == Method::GET {
        return uri.path_and_query().map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    }
    let path = uri.path();
    match path.rsplit_once('/') {
        Some((page, "resolve" | "approve" | "reject" | "run" | "close" | "resend" | "replace" | "adjust"))
            if !page.is_empty() =>
        {
            page.to_owned()
        }
        _ => path.to_owned(),
    }
}

/// The viewer of a request with a live session, or `None`.
async fn viewer(state: &AppState, headers: &HeaderMap, lang: Lang, here: String) -> Result<Option<Viewer>, PageError> {
    let Some(id) = cookie(headers, SESSION_COOKIE).filter(|v| crate::auth::session::well_formed(v)) else {
        return Ok(None);
    };
    let session = Secret::new(id);
    let user = crate::accounts::session_user(&state.store, &session, state.clock.now())
        .await
        .map_err(|e| PageError::internal(lang, anyhow::Error::new(e)))?;
    Ok(user.map(|u| Viewer {
        user_id: u.user_id,
        name: u.name,
        role: u.role,
        lang,
        here,
        csrf: Secret::new(crate::auth::session::csrf_token(&session)),
        session,
    }))
}

/// The middleware of every dashboard route: the session and role check for pages and forms,
/// the language for public pages, and the security headers on every answer.
pub async fn guard(state: AppState, access: Access, mut req: Request, next: Next) -> Response {
    let lang = lang_of(req.headers());
    let addr = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    req.extensions_mut().insert(ClientAddr(addr));
    req.extensions_mut().insert(lang);
    let here = way_back(req.method(), req.uri());
    let mut res = if access == Access::PagePublic {
        next.run(req).await
    } else {
        match viewer(&state, req.headers(), lang, here.clone()).await {
            Err(e) => e.into_response(),
            Ok(None) if req.method() == Method::GET => {
                let to =
                    if here == "/" { "/login".to_owned() } else { format!("/login?next={}", super::page::enc(&here)) };
                Redirect::to(&to).into_response()
            }
            Ok(None) => Redirect::to("/login").into_response(),
            Ok(Some(v)) if access.allows(v.role) => {
                req.extensions_mut().insert(v);
                next.run(req).await
            }
            Ok(Some(v)) => error_page(Some(&v), lang, StatusCode::FORBIDDEN, lang.texts().forbidden),
        }
    };
    secure(&mut res, secure_cookies(&state));
    res
}

/// A form body whose CSRF token (field `csrf`) matched the viewer's session, parsed into `T`
/// (fields it does not name are ignored). A wrong or missing token is a 403 page; the handler
/// never runs.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        let viewer = req.extensions().get::<Viewer>().cloned();
        let lang = viewer.as_ref().map_or_else(|| lang_of(req.headers()), |v| v.lang);
        let Some(viewer) = viewer else {
            return Err(PageError::new(lang, StatusCode::FORBIDDEN, lang.texts().forbidden));
        };
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| PageError::new(lang, StatusCode::BAD_REQUEST, &e.body_text()).with(&viewer))?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| PageError::new(lang, StatusCode::BAD_REQUEST, &e.to_string()).with(&viewer))?;
        let presented = pairs.iter().find(|(k, _)| k == "csrf").map_or("", |(_, v)| v.as_str());
        if !crate::auth::session::tokens_match(presented, viewer.csrf()) {
            return Err(PageError::new(lang, StatusCode::FORBIDDEN, lang.texts().csrf_failed).with(&viewer));
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| PageError::new(lang, StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()).with(&viewer))?;
        Ok(CsrfForm(form))
    }
}

/// Failed logins per user name and per client address within a window: past the limit, logins
/// for that name or from that address are refused until the oldest failure leaves the window.
/// Held in memory, per instance; a successful login clears its name's failures.
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<DateTime<Utc>>>>,
}

/// The window failures count in.
pub const LOGIN_WINDOW: TimeDelta = TimeDelta::minutes(15);
/// Failures per user name within the window.
pub const LOGIN_FAILURES_PER_NAME: usize = 5;
/// Failures per client address within the window.
pub const LOGIN_FAILURES_PER_ADDR: usize = 20;
/// Beyond this many names and addresses remembered, the oldest entries are forgotten first.
const MAX_KEYS: usize = 10_000;

impl Default for LoginLimiter {
    fn default() -> Self {
        Self { failures: Mutex::new(HashMap::new()) }
    }
}

fn limit_keys(name: &str, addr: Option<IpAddr>) -> Vec<(String, usize)> {
    let mut keys = vec![(format!("name:{}", name.to_lowercase()), LOGIN_FAILURES_PER_NAME)];
    if let Some(a) = addr {
        keys.push((format!("addr:{a}"), LOGIN_FAILURES_PER_ADDR));
    }
    keys
}

impl LoginLimiter {
    /// How long until a login for `name` from `addr` may be tried, when it may not be now.
    pub fn wait(&self, name: &str, addr: Option<IpAddr>, now: DateTime<Utc>) -> Option<TimeDelta> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = None;
        for (key, limit) in limit_keys(name, addr) {
            if let Some(times) = map.get_mut(&key) {
                times.retain(|t| *t + LOGIN_WINDOW > now);
                if times.len() >= limit {
                    let until = times[times.len() - limit] + LOGIN_WINDOW - now;
                    wait = Some(wait.map_or(until, |w: TimeDelta| w.max(until)));
                }
            }
        }
        wait
    }

    /// Records a failed login.
    pub fn failed(&self, name: &str, addr: Option<IpAddr>, now: DateTime<Utc>) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, times| times.iter().any(|t| *t + LOGIN_WINDOW > now));
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        for (key, _) in limit_keys(name, addr) {
            map.entry(key).or_default().push(now);
        }
    }

    /// Forgets a name's failures (after it logged in).
    pub fn succeeded(&self, name: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("name:{}", name.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_s_way_back_is_its_page() {
        let uri = |s: &str| s.parse::<axum::http::Uri>().unwrap();
        assert_eq!(way_back(&Method::GET, &uri("/days/2024-07-15?gateway=momo")), "/days/2024-07-15?gateway=momo");
        assert_eq!(
            way_back(&Method::POST, &uri("/exceptions/vnpay%3A1%3Asuccess/resolve")),
            "/exceptions/vnpay%3A1%3Asuccess"
        );
        assert_eq!(way_back(&Method::POST, &uri("/settlements")), "/settlements");
    }

    #[test]
    fn cookies_are_read_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; feerecon_session=abc"));
        h.append(header::COOKIE, HeaderValue::from_static("feerecon_lang=en"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(lang_of(&h), Lang::En);
        assert_eq!(cookie(&h, "b"), None);
        let c = set_cookie(SESSION_COOKIE, "x", None, true);
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"), "{c}");
    }

    #[test]
    fn the_limiter_locks_a_name_after_its_failures_and_lets_go_after_the_window() {
        let l = LoginLimiter::default();
        let t0 = DateTime::parse_from_rfc3339("2024-07-15T09:00:00+07:00").unwrap().to_utc();
        let addr: Option<IpAddr> = Some("127.0.0.1".parse().unwrap());
        for i in 0..LOGIN_FAILURES_PER_NAME {
            assert_eq!(l.wait("Lan", addr, t0), None, "attempt {i}");
            l.failed("Lan", addr, t0);
        }
        let w = l.wait("lan", addr, t0 + TimeDelta::minutes(1)).expect("locked, whatever the case of the name");
        assert_eq!(w, TimeDelta::minutes(14));
        assert_eq!(l.wait("other", None, t0), None, "another name is not locked");
        assert_eq!(l.wait("lan", addr, t0 + LOGIN_WINDOW), None, "the window passed");
        l.failed("lan", addr, t0);
        l.succeeded("lan");
        assert_eq!(l.wait("lan", None, t0), None);
    }

    #[test]
    fn the_limiter_locks_an_address_that_tries_many_names() {
        let l = LoginLimiter::default();
        let t0 = Utc::now();
        let addr: Option<IpAddr> = Some("10.0.0.7".parse().unwrap());
        for i in 0..LOGIN_FAILURES_PER_ADDR {
            l.failed(&format!("user{i}"), addr, t0);
        }
        assert!(l.wait("fresh-name", addr, t0).is_some());
        assert!(l.wait("fresh-name", None, t0).is_none());
    }
}
