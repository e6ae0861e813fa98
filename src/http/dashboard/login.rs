//! Logging in and out, the language switch, and the stylesheet and script.
//!
//! Login checks the password of a user made with `feerecon user add` (argon2id, on a blocking
//! thread), within the rate limit of `session::LoginLimiter`; a user name that does not exist
//! costs the same argon2 work as a wrong password, so timing tells nothing. A machine client (no
//! password) and a portal account cannot log in. A successful login opens a new session (a new
//! id, so a session id planted before login is worthless), audited as `session.login`; logout
//! ends it, audited as `session.logout`.

use std::sync::OnceLock;

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::i18n::Lang;
use super::page::{Layout, PageError, render};
use super::session::{
    ClientAddr, CsrfForm, LANG_COOKIE, LOGIN_COOKIE, SESSION_COOKIE, Viewer, cookie, secure_cookies, set_cookie,
};
use crate::domain::Secret;
use crate::http::AppState;
use crate::http::routes::{Access, Route};

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::GET, "/login", Access::PagePublic, "Dashboard: the login page.", get(login_page)),
        Route::new(
            Method::POST,
            "/login",
            Access::PagePublic,
            "Dashboard: log in (form: name, password; rate-limited).",
            post(login),
        ),
        Route::new(Method::POST, "/logout", Access::PageStaff, "Dashboard: log out.", post(logout)),
        Route::new(
            Method::GET,
            "/lang",
            Access::PagePublic,
            "Dashboard: switch the language (?to=vi|en&next=PATH).",
            get(switch_lang),
        ),
        Route::new(Method::GET, "/assets/app.css", Access::PagePublic, "Dashboard: the stylesheet.", get(css)),
        Route::new(Method::GET, "/assets/app.js", Access::PagePublic, "Dashboard: the script.", get(js)),
    ]
}

/// A local path to go back to after a redirect: `/` unless `next` is a path of this site.
pub fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && !p.chars().any(|c| c.is_control()) =>
        {
            p
        }
        _ => "/",
    }
}

#[derive(Template)]
#[template(path = "dashboard/login.html")]
struct LoginPage<'a> {
    l: Layout,
    csrf: &'a str,
    next: &'a str,
    name: &'a str,
    error: Option<String>,
    info: Option<&'static str>,
}

/// The login page with a fresh login token (in the form and in a short-lived cookie).
fn login_form(
    state: &AppState,
    lang: Lang,
    status: StatusCode,
    next: &str,
    name: &str,
    error: Option<String>,
    info: Option<&'static str>,
) -> Response {
    let token = crate::auth::session::random_token();
    let l = Layout::new(None, lang, "", lang.texts().login_title);
    let mut res = render(status, &LoginPage { l, csrf: token.expose(), next, name, error, info });
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, token.expose(), Some(3600), secure_cookies(state)));
    res
}

#[derive(Deserialize, Default)]
struct LoginQuery {
    next: Option<String>,
    bye: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    req: Request,
) -> Result<Response, PageError> {
    let q: LoginQuery = super::query(req.uri(), lang)?;
    let next = local_path(q.next.as_deref());
    if let Some(id) = cookie(req.headers(), SESSION_COOKIE).filter(|v| crate::auth::session::well_formed(v)) {
        let live = crate::accounts::session_user(&state.store, &Secret::new(id), state.clock.now())
            .await
            .map_err(|e| PageError::internal(lang, e.into()))?;
        if live.is_some() {
            return Ok(Redirect::to(next).into_response());
        }
    }
    let info = q.bye.is_some().then_some(lang.texts().logged_out);
    Ok(login_form(&state, lang, StatusCode::OK, next, "", None, info))
}

#[derive(Deserialize)]
struct LoginBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

/// An argon2id hash to check against when the user does not exist, so that an unknown name
/// costs what a wrong password costs.
fn decoy_hash() -> Option<&'static str> {
    static DECOY: OnceLock<Option<String>> = OnceLock::new();
    DECOY.get_or_init(|| crate::auth::hash_password(&crate::auth::session::random_token()).ok()).as_deref()
}

/// Checks a password on a blocking thread (argon2id is deliberately slow).
async fn password_matches(password: Secret, phc: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || match phc {
        Some(phc) => crate::auth::verify_password(&password, &phc),
        None => {
            if let Some(decoy) = decoy_hash() {
                let _ = crate::auth::verify_password(&password, decoy);
            }
            false
        }
    })
    .await
    .unwrap_or(false)
}

async fn login(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Extension(addr): Extension<ClientAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let t = lang.texts();
    let Ok(form) = serde_urlencoded::from_bytes::<LoginBody>(&body) else {
        return login_form(&state, lang, StatusCode::BAD_REQUEST, "/", "", Some(t.login_failed.into()), None);
    };
    let next = local_path(form.next.as_deref()).to_owned();
    let name = form.name.trim().to_owned();
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !crate::auth::session::tokens_match(&form.csrf, expected) {
        return login_form(&state, lang, StatusCode::FORBIDDEN, &next, &name, Some(t.login_expired_form.into()), None);
    }
    let now = state.clock.now();
    if let Some(wait) = state.dashboard.limiter.wait(&name, addr.0, now) {
        let minutes = (wait.num_seconds() + 59) / 60;
        tracing::warn!(user = %name, "dashboard login refused: too many failures");
        let msg = format!("{} {minutes} {}.", t.login_locked, t.minutes);
        return login_form(&state, lang, StatusCode::TOO_MANY_REQUESTS, &next, &name, Some(msg), None);
    }
    let user = match state.store.user_by_name(&name).await {
        Ok(u) => u,
        Err(e) => return PageError::internal(lang, e.into()).into_response(),
    };
    let phc = user.as_ref().and_then(|u| u.password_hash.clone());
    if !password_matches(Secret::new(form.password), phc).await {
        state.dashboard.limiter.failed(&name, addr.0, now);
        tracing::warn!(user = %name, "dashboard login failed");
        return login_form(&state, lang, StatusCode::UNAUTHORIZED, &next, &name, Some(t.login_failed.into()), None);
    }
    let Some(user) = user else {
        return login_form(&state, lang, StatusCode::UNAUTHORIZED, &next, &name, Some(t.login_failed.into()), None);
    };
    state.dashboard.limiter.succeeded(&name);
    if !Access::PageStaff.allows(user.role) {
        return login_form(&state, lang, StatusCode::FORBIDDEN, &next, &name, Some(t.login_role.into()), None);
    }
    let session = match crate::accounts::open_session(&state.store, &user, now).await {
        Ok(s) => s,
        Err(e) => return PageError::internal(lang, e.into()).into_response(),
    };
    let secure = secure_cookies(&state);
    let mut res = Redirect::to(&next).into_response();
    let max_age = crate::accounts::SESSION_MAX.num_seconds();
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, session.id.expose(), Some(max_age), secure));
    res.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", Some(0), secure));
    res
}

#[derive(Deserialize)]
struct Empty {}

async fn logout(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    crate::accounts::close_session(&state.store, v.session(), &v.name, state.clock.now())
        .await
        .map_err(|e| PageError::internal(v.lang, e.into()))?;
    let mut res = Redirect::to("/login?bye=1").into_response();
    res.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", Some(0), secure_cookies(&state)));
    Ok(res)
}

#[derive(Deserialize, Default)]
struct LangQuery {
    to: Option<String>,
    next: Option<String>,
}

async fn switch_lang(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    req: Request,
) -> Result<Response, PageError> {
    let q: LangQuery = super::query(req.uri(), lang)?;
    let to = q.to.as_deref().and_then(Lang::parse).unwrap_or(lang);
    let mut res = Redirect::to(local_path(q.next.as_deref())).into_response();
    let year = 365 * 24 * 3600;
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(LANG_COOKIE, to.code(), Some(year), secure_cookies(&state)));
    Ok(res)
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

async fn css() -> Response {
    asset(include_str!("static/app.css"), "text/css; charset=utf-8")
}

async fn js() -> Response {
    asset(include_str!("static/app.js"), "text/javascript; charset=utf-8")
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(local_path(Some("/days/2024-07-15?gateway=vnpay")), "/days/2024-07-15?gateway=vnpay");
        for bad in ["https://evil.example", "//evil.example", "/\\evil.example", "javascript:alert(1)", "/a\nb"] {
            assert_eq!(local_path(Some(bad)), "/", "{bad}");
        }
        assert_eq!(local_path(None), "/");
    }
}
