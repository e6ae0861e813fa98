//! The route table: every route's method, path, who may call it and what it does.
//!
//! Each area module returns its `Route`s; `http::router` mounts them, wrapping each in the access
//! check its `Access` names, and `/api/openapi.json` is generated from the same list. So a route
//! cannot exist without an access rule or without documentation. A route's `Doc` (its query
//! parameters, headers, request body and answers) is built from the Rust types the handler reads
//! and writes (`ToSchema`, `IntoParams`), next to the handler, with the builder methods below.

use axum::http::Method;
use axum::routing::MethodRouter;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr, Required};
use utoipa::{IntoParams, PartialSchema as _, ToSchema};

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
    /// What the OpenAPI document says of its request and answers.
    pub doc: Doc,
}

/// Named schemas a route's types refer to (the document's `components.schemas`).
pub type Schemas = Vec<(String, RefOr<Schema>)>;

/// Media types and their schemas: a request body's or an answer's content.
pub type Media = Vec<(&'static str, RefOr<Schema>)>;

/// A route's request and answers, for the OpenAPI document.
#[derive(Default)]
pub struct Doc {
    /// Query parameters and headers (path parameters are read from the path).
    pub parameters: Vec<Parameter>,
    /// The request body: its media types and schemas; `required`.
    pub body: Option<(Media, bool)>,
    /// The success answers: status, description, media types and schemas.
    pub answers: Vec<Answer>,
    pub schemas: Schemas,
}

/// One documented success answer.
pub struct Answer {
    pub status: u16,
    pub description: &'static str,
    pub content: Media,
}

/// A schema for a file or a text body: a string of the given media type.
pub fn bytes_schema(media_type: &str) -> RefOr<Schema> {
    RefOr::T(Schema::Object(ObjectBuilder::new().schema_type(Type::String).content_media_type(media_type).build()))
}

fn schema_of<T: ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    T::schemas(schemas);
    let name = T::name();
    // A generic type (a `List<T>`) has one name for every `T`: it is written in place.
    if name.is_empty() || std::any::type_name::<T>().contains('<') {
        return T::schema();
    }
    match T::schema() {
        // A named object or enum is referenced, so a generated client gets one type for it.
        RefOr::T(s @ (Schema::Object(_) | Schema::OneOf(_) | Schema::AllOf(_))) if !matches!(&s, Schema::Object(o) if o.properties.is_empty() && o.enum_values.is_none()) =>
        {
            if !schemas.iter().any(|(n, _)| n == name.as_ref()) {
                schemas.push((name.to_string(), RefOr::T(s)));
            }
            RefOr::Ref(Ref::from_schema_name(name))
        }
        other => other,
    }
}

impl Route {
    pub fn new(
        method: Method,
        path: &'static str,
        access: Access,
        summary: &'static str,
        handler: MethodRouter<AppState>,
    ) -> Self {
        Self { method, path, access, summary, handler, doc: Doc::default() }
    }

    /// The query parameters the handler reads (`Q` derives `IntoParams`).
    pub fn query<Q: IntoParams>(mut self) -> Self {
        self.doc.parameters.extend(Q::into_params(|| Some(ParameterIn::Query)));
        self
    }

    /// Parameters written by hand (a gateway's protocol fields).
    pub fn parameters(mut self, parameters: Vec<Parameter>) -> Self {
        self.doc.parameters.extend(parameters);
        self
    }

    /// A request header the handler reads.
    pub fn header(mut self, name: &str, required: bool, description: &str) -> Self {
        let required = if required { Required::True } else { Required::False };
        self.doc.parameters.push(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(required)
                .description(Some(description))
                .schema(Some(String::schema()))
                .build(),
        );
        self
    }

    /// A required JSON request body of type `T`.
    pub fn json_body<T: ToSchema>(mut self) -> Self {
        let s = schema_of::<T>(&mut self.doc.schemas);
        self.doc.body = Some((vec![("application/json", s)], true));
        self
    }

    /// A JSON request body of type `T` that may be left out (empty).
    pub fn optional_json_body<T: ToSchema>(mut self) -> Self {
        let s = schema_of::<T>(&mut self.doc.schemas);
        self.doc.body = Some((vec![("application/json", s)], false));
        self
    }

    /// A required request body in other media types (a raw file, a multipart form).
    pub fn raw_body(mut self, content: Media) -> Self {
        self.doc.body = Some((content, true));
        self
    }

    /// A JSON answer of type `T` with `status`.
    pub fn json<T: ToSchema>(mut self, status: u16, description: &'static str) -> Self {
        let s = schema_of::<T>(&mut self.doc.schemas);
        self.doc.answers.push(Answer { status, description, content: vec![("application/json", s)] });
        self
    }

    /// A JSON answer of type `T`, or a download in one of `files` media types (chosen by a
    /// `format` query parameter).
    pub fn json_or<T: ToSchema>(mut self, status: u16, description: &'static str, files: &[&'static str]) -> Self {
        let mut content = vec![("application/json", schema_of::<T>(&mut self.doc.schemas))];
        content.extend(files.iter().map(|t| (*t, bytes_schema(t))));
        self.doc.answers.push(Answer { status, description, content });
        self
    }

    /// An answer in other media types (a download, a page, plain text), or one of several
    /// media types chosen by a query parameter.
    pub fn answer(mut self, status: u16, description: &'static str, content: Media) -> Self {
        self.doc.answers.push(Answer { status, description, content });
        self
    }

    /// The schema of `T`, registered with this route's components, for `answer`/`raw_body`.
    pub fn schema<T: ToSchema>(&mut self) -> RefOr<Schema> {
        schema_of::<T>(&mut self.doc.schemas)
    }
}
