//! Rendering pages: the layout every page shares, HTML answers, the error page, and the error
//! type of page handlers.
//!
//! Pages are askama templates (`templates/dashboard/`), which escape every value they print.
//! Handlers hand templates values already written for people (amounts, dates, labels), so a
//! template holds markup only. Every HTML answer carries the `Final` marker, so the API's error
//! envelope never rewrites a page.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::i18n::{Lang, Texts};
use super::session::Viewer;
use crate::http::error::Final;
use crate::recon::FinanceError;

/// Characters kept as they are in a URL component: RFC 3986's unreserved set.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// A value as one URL path segment or query value.
pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// Which menu entry a page belongs to (the layout marks it): `calendar`, `exceptions`,
/// `settlements`, `payments`, `notifications`, `ledger`, `remittances`, `receipts`, or empty.
pub type Nav = &'static str;

/// What the shared layout shows: the menu, the user, the language switch, the logout form.
pub struct Layout {
    pub t: &'static Texts,
    pub lang: &'static str,
    pub title: String,
    /// The language switch: its target language, label and the way back here.
    pub switch_href: String,
    pub switch_label: &'static str,
    pub nav: Nav,
    /// `None` on the login page.
    pub user: Option<UserBar>,
}

pub struct UserBar {
    pub name: String,
    pub role: &'static str,
    pub read_only: bool,
    pub csrf: String,
}

impl Layout {
    pub fn new(v: Option<&Viewer>, lang: Lang, nav: Nav, title: impl Into<String>) -> Self {
        let here = v.map_or("/", |v| v.here.as_str());
        Self {
            t: lang.texts(),
            lang: lang.code(),
            title: title.into(),
            switch_href: format!("/lang?to={}&next={}", lang.other().code(), enc(here)),
            switch_label: lang.texts().lang_switch,
            nav,
            user: v.map(|v| UserBar {
                name: v.name.clone(),
                role: v.role.as_str(),
                read_only: !v.can_act(),
                csrf: v.csrf().to_owned(),
            }),
        }
    }

    pub fn of(v: &Viewer, nav: Nav, title: impl Into<String>) -> Self {
        Self::new(Some(v), v.lang, nav, title)
    }
}

/// An HTML answer.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r.extensions_mut().insert(Final);
    r
}

/// A rendered template; a template that fails to render is a logged 500.
pub fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = %e, "a dashboard template failed to render");
            html(StatusCode::INTERNAL_SERVER_ERROR, "<!doctype html><title>500</title><p>internal error".into())
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard/error.html")]
struct ErrorPage<'a> {
    l: Layout,
    status: u16,
    message: &'a str,
}

/// The error page, with the layout when a user is logged in.
pub fn error_page(v: Option<&Viewer>, lang: Lang, status: StatusCode, message: &str) -> Response {
    let l = Layout::new(v, lang, "", lang.texts().error_title);
    render(status, &ErrorPage { l, status: status.as_u16(), message })
}

/// Why a page handler could not answer with its page.
#[derive(Debug)]
pub struct PageError {
    lang: Lang,
    pub status: StatusCode,
    pub message: String,
    /// Boxed: a page error travels through every handler's `Result`.
    viewer: Option<Box<Viewer>>,
}

impl PageError {
    pub fn new(lang: Lang, status: StatusCode, message: &str) -> Self {
        Self { lang, status, message: message.to_owned(), viewer: None }
    }

    /// Shows the page with the viewer's layout.
    pub fn with(mut self, v: &Viewer) -> Self {
        self.viewer = Some(Box::new(v.clone()));
        self
    }

    /// An internal error: logged with its cause, shown generically.
    pub fn internal(lang: Lang, e: anyhow::Error) -> Self {
        tracing::error!(error.cause_chain = ?e, error.message = %e, "dashboard request failed");
        Self::new(lang, StatusCode::INTERNAL_SERVER_ERROR, lang.texts().internal_error)
    }

    /// A 4xx for the viewer.
    pub fn user(v: &Viewer, status: StatusCode, message: &str) -> Self {
        Self::new(v.lang, status, message).with(v)
    }

    /// A finance service error, with the status the API gives it.
    pub fn finance(v: &Viewer, e: FinanceError) -> Self {
        let (status, message) = finance_status(v.lang, e);
        Self::new(v.lang, status, &message).with(v)
    }
}

/// The status and message of a finance error (an internal one is logged and not shown).
pub fn finance_status(lang: Lang, e: FinanceError) -> (StatusCode, String) {
    let m = e.to_string();
    let status = match e {
        FinanceError::Invalid(_) | FinanceError::File { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        FinanceError::NotFound(_) => StatusCode::NOT_FOUND,
        FinanceError::Duplicate(_)
        | FinanceError::Conflict(_)
        | FinanceError::DayClosed(_)
        | FinanceError::DayNotOver(_)
        | FinanceError::StaleRun(_) => StatusCode::CONFLICT,
        FinanceError::FourEyes(_) => StatusCode::FORBIDDEN,
        FinanceError::Internal(e) => {
            let e = PageError::internal(lang, e);
            return (e.status, e.message);
        }
    };
    (status, m)
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        error_page(self.viewer.as_deref(), self.lang, self.status, &self.message)
    }
}
