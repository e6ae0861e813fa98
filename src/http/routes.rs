//! The route table: every route's method, path, who may call it and what it does.
//!
//! Each area module returns its `Route`s; `http::router` mounts them, wrapping each in the access
//! check its `Access` names, and `/api/openapi.json` is generated from the same list. So a route
//! cannot exist without an access rule or without documentation.

use axum::http::Method;
use axum::routing::MethodRouter;

use super::AppState;
use crate::domain::Role;

/// Who may call a route (SPEC §4.2). A role outside the set gets 403; no token gets 401 unless
/// the route is `Public` or `Gateway`. Dashboard pages and forms (`Page*`) follow the same table
/// with a login session instead of a token: no live session redirects to `/login`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Health, readiness, metrics, the OpenAPI document: anyone, with or without a token.
    Public,
    /// Gateway callbacks and return pages: authenticated by the gateway's signature, not by a
    /// token; a token of any role is refused (403), as the table says.
    Gateway,
    /// The portal writing cases and payments.
    Portal,
    /// Every role reading cases and payments.
    AnyRole,
    /// Finance staff acting: imports, runs, resolutions, closes, re-sends.
    Finance,
    /// Finance, auditors and administrators reading reports, ledger, evidence.
    Staff,
    /// Dashboard: the login page, the language switch, the stylesheet and script; anyone.
    PagePublic,
    /// Dashboard: a page, for a logged-in finance user, auditor or administrator.
    PageStaff,
    /// Dashboard: a form that changes something, for a logged-in finance user, with the
    /// session's CSRF token.
    PageFinance,
    /// Finance and auditors only: the day's receipt summary for the tax office (issue 18).
    FinanceAuditor,
    /// Dashboard: the day's receipt summary, for a logged-in finance user or auditor (as
    /// `FinanceAuditor`).
    PageFinanceAuditor,
}

impl Access {
    /// Whether `role` may use a route with this access. `None` for `Public`/`Gateway`, which
    /// need no token.
    pub fn allows(self, role: Role) -> bool {
        match self {
            Access::Public | Access::PagePublic => true,
            Access::Gateway => false,
            Access::Portal => role == Role::Portal,
            Access::AnyRole => true,
            Access::Finance | Access::PageFinance => role == Role::Finance,
            Access::Staff | Access::PageStaff => matches!(role, Role::Finance | Role::Auditor | Role::Admin),
            Access::FinanceAuditor | Access::PageFinanceAuditor => matches!(role, Role::Finance | Role::Auditor),
        }
    }

    pub fn needs_token(self) -> bool {
        !matches!(self, Access::Public | Access::Gateway) && !self.is_page()
    }

    /// A dashboard route: session cookie, not token.
    pub fn is_page(self) -> bool {
        matches!(self, Access::PagePublic | Access::PageStaff | Access::PageFinance | Access::PageFinanceAuditor)
    }

    /// A dashboard route that needs a login session.
    pub fn needs_session(self) -> bool {
        matches!(self, Access::PageStaff | Access::PageFinance | Access::PageFinanceAuditor)
    }

    /// The roles allowed, for the OpenAPI document.
    pub fn roles(self) -> Vec<&'static str> {
        Role::ALL.iter().filter(|r| self.allows(**r)).map(|r| r.as_str()).collect()
    }
}

/// One route.
pub struct Route {
    pub method: Method,
    /// axum path syntax (`/api/v1/cases/{case_code}`), which is also OpenAPI's.
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    pub handler: MethodRouter<AppState>,
}

impl Route {
    pub fn new(
        method: Method,
        path: &'static str,
        access: Access,
        summary: &'static str,
        handler: MethodRouter<AppState>,
    ) -> Self {
        Self { method, path, access, summary, handler }
    }
}
