//! The one error type of the HTTP API and its envelope (SPEC §4.1):
//! `{"error": {"code": "snake_case", "message": "..."}}`.
//!
//! Handlers return `ApiError`; its `IntoResponse` picks the status and code. A 5xx answer carries
//! a generic message only; the cause is logged once, here. Responses the framework makes itself
//! (no route, wrong method, body too large) are rewritten into the same envelope by
//! `envelope_layer`, so every error a client sees has this shape.
//!
//! Handlers read their inputs through the extractors here, never axum's own: `ApiJson<T>` (a
//! body), `ApiQuery<T>` (the query string) and `ApiPath<T>` (path parameters), whose every
//! rejection is the envelope naming what is wrong: a query parameter that does not parse or is
//! unknown is 422 `invalid_field` naming it, a body over the limit is 413 naming the limit and its
//! variable (`FEERECON_MAX_BODY`; settlement uploads name `FEERECON_MAX_UPLOAD`).

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::domain::FieldError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401 `unauthorized`: no token, or one that is unknown, expired or revoked.
    #[error("{0}")]
    Unauthorized(String),
    /// 403 `forbidden`: the token's role may not use this route.
    #[error("{0}")]
    Forbidden(String),
    /// 404 `not_found`.
    #[error("{0}")]
    NotFound(String),
    /// 400 `invalid_request`: malformed syntax, a missing header.
    #[error("{0}")]
    InvalidRequest(String),
    /// 422 `invalid_field`: the message names the field.
    #[error("{0}")]
    InvalidField(String),
    /// 409 with a specific code (`conflict`, `case_already_paid`, `idempotency_key_reused`, `day_closed`).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 422 with a specific code (`gateway_disabled`, `amount_outside_gateway_limits`).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// 502 `gateway_unavailable`.
    #[error("{0}")]
    GatewayUnavailable(String),
    /// 403 `four_eyes_required`: the requester may not approve their own request.
    #[error("{0}")]
    FourEyes(String),
    /// 413 `payload_too_large`.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415 `unsupported_media_type`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 503 `timeout`.
    #[error("the request took too long")]
    Timeout,
    /// 503 `not_ready`: `/readyz` while the database is unreachable or not migrated.
    #[error("not ready: {0}")]
    NotReady(String),
    /// 500 `internal`: logged with its cause, answered generically.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn field(e: FieldError) -> Self {
        ApiError::InvalidField(e.to_string())
    }

    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::InvalidField(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::GatewayUnavailable(_) => (StatusCode::BAD_GATEWAY, "gateway_unavailable"),
            ApiError::FourEyes(_) => (StatusCode::FORBIDDEN, "four_eyes_required"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            ApiError::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError::Conflict { code: "conflict", message: m },
            other => ApiError::Internal(anyhow::Error::new(other)),
        }
    }
}

/// Marks a response whose body is already final (an envelope, or a gateway's own reply), so
/// `envelope_layer` leaves it alone.
#[derive(Clone, Copy, Debug)]
pub struct Final;

/// The envelope for a status and message.
pub fn envelope(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::to_string(&ErrorEnvelope { error: ErrorBody { code, message } })
        .unwrap_or_else(|_| json!({"error": {"code": "internal", "message": "internal error"}}).to_string());
    let mut r = (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response();
    r.extensions_mut().insert(Final);
    r
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(e) = &self {
            tracing::error!(error.cause_chain = ?e, error.message = %e, "request failed");
            return envelope(status, code, "internal error");
        }
        envelope(status, code, &self.to_string())
    }
}

/// The code the envelope uses for a status the framework produced.
fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 | 503 => "timeout",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "invalid_field",
        502 => "gateway_unavailable",
        _ => "internal",
    }
}

/// The body limit of JSON routes (`FEERECON_MAX_BODY`), as a request extension, so that every
/// 413 can name it.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

impl BodyLimit {
    pub fn too_large(self) -> ApiError {
        ApiError::PayloadTooLarge(format!("the body is larger than FEERECON_MAX_BODY ({} bytes)", self.0))
    }
}

/// Rewrites error responses the framework made (no `Final` marker) into the envelope. `limit` is
/// `FEERECON_MAX_BODY`, which a 413 names.
pub async fn envelope_layer(
    axum::extract::State(limit): axum::extract::State<BodyLimit>,
    mut req: Request,
    next: axum::middleware::Next,
) -> Response {
    req.extensions_mut().insert(limit);
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || res.extensions().get::<Final>().is_some() {
        return res;
    }
    let message = match status.as_u16() {
        404 => "no such route".to_owned(),
        405 => "this route does not accept that method".to_owned(),
        413 => limit.too_large().to_string(),
        s if s >= 500 => "internal error".to_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let mut out = envelope(status, code_for(status), &message);
    if let Some(allow) = res.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}

/// A JSON body whose every problem answers in the envelope: wrong content type → 415, too large →
/// 413, malformed JSON → 400 `invalid_request`, an unknown, missing or mistyped field → 422
/// `invalid_field` naming it.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, state: &S) -> Result<Self, ApiError> {
        let limit = req.extensions().get::<BodyLimit>().copied();
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim();
                v.eq_ignore_ascii_case("application/json") || (v.starts_with("application/") && v.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType("the body must be application/json".into()));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| match e {
            BytesRejection::FailedToBufferBody(ref inner) if inner.status() == StatusCode::PAYLOAD_TOO_LARGE => limit
                .map_or_else(
                    || ApiError::PayloadTooLarge("the body is larger than this route accepts".into()),
                    |l| l.too_large(),
                ),
            other => ApiError::InvalidRequest(format!("cannot read the body: {other}")),
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON document, mapping syntax errors to 400 and data errors to 422 with the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let msg = inner.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
                if path == "." { ApiError::InvalidField(msg) } else { ApiError::field(FieldError::new(path, msg)) }
            }
            _ => ApiError::InvalidRequest(format!("malformed JSON: {inner}")),
        }
    })?;
    de.end().map_err(|e| ApiError::InvalidRequest(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// The error envelope (SPEC §4.1): every error answer of the API has this shape.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorEnvelope<'a> {
    pub error: ErrorBody<'a>,
}

/// What went wrong: a stable code and a message for people (naming the field, for `invalid_field`).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    #[schema(value_type = ErrorCode)]
    pub code: &'a str,
    #[schema(value_type = String)]
    pub message: &'a str,
}

/// Every code an error answer may carry (SPEC §4.1), for the OpenAPI document.
#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 401: no token, or one unknown, expired or revoked.
    Unauthorized,
    /// 403: the role may not use the route.
    Forbidden,
    /// 404.
    NotFound,
    /// 400: malformed JSON or query, a missing header.
    InvalidRequest,
    /// 422: the message names the field or parameter.
    InvalidField,
    /// 409.
    Conflict,
    /// 409: the case has a paid, waived or budget-covered payment.
    CaseAlreadyPaid,
    /// 409: the Idempotency-Key was used with another gateway or return_url.
    IdempotencyKeyReused,
    /// 422.
    AmountOutsideGatewayLimits,
    /// 422.
    GatewayDisabled,
    /// 422: the case's procedure has left the catalogue.
    UnknownProcedure,
    /// 422: no base rate covers the case's receipt date.
    NoBaseRate,
    /// 409.
    DayClosed,
    /// 409: closing a date not yet ended in +07:00.
    DayNotOver,
    /// 409: a newer run of the date exists.
    StaleRun,
    /// 403: the requester may not approve their own request.
    FourEyesRequired,
    /// 502.
    GatewayUnavailable,
    /// 405.
    MethodNotAllowed,
    /// 413: the message names the limit.
    PayloadTooLarge,
    /// 415.
    UnsupportedMediaType,
    /// 503: the request took longer than FEERECON_REQUEST_TIMEOUT.
    Timeout,
    /// 503: `/readyz` only.
    NotReady,
    /// 500: logged with its cause, answered generically.
    Internal,
}

/// The query string, deserialized into `T`: a parameter that does not parse, is missing or is
/// unknown (`T` denies unknown fields) is 422 `invalid_field` naming it, never a bare 400.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or("")).map(ApiQuery)
    }
}

/// Parses a query string into `T`, naming the parameter at fault.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        if path == "." || path == "?" {
            // serde names an unknown or missing parameter in its own message.
            // Only serde's own word is changed, never a parameter's name that holds "field".
            let msg = ["unknown field", "missing field", "duplicate field"]
                .iter()
                .find_map(|p| msg.strip_prefix(p).map(|rest| format!("{} parameter{rest}", &p[..p.len() - 6])))
                .unwrap_or(msg);
            ApiError::InvalidField(format!("query parameter: {msg}"))
        } else {
            ApiError::field(FieldError::new(path, msg))
        }
    })
}

/// Path parameters, deserialized into `T`: one that cannot be read (not UTF-8, not the type) is
/// 422 `invalid_field` naming it.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => Err(match e.kind() {
                ErrorKind::InvalidUtf8InPathParam { key } => {
                    ApiError::field(FieldError::new(key.clone(), "is not valid UTF-8"))
                }
                ErrorKind::ParseErrorAtKey { key, value, expected_type } => {
                    ApiError::field(FieldError::new(key.clone(), format!("{value:?} is not a {expected_type}")))
                }
                ErrorKind::DeserializeError { key, value, message } => {
                    ApiError::field(FieldError::new(key.clone(), format!("{value:?}: {message}")))
                }
                _ => ApiError::InvalidField(format!("path parameter: {}", e.body_text())),
            }),
            Err(other) => Err(ApiError::Internal(anyhow::anyhow!("path parameters: {}", other.body_text()))),
        }
    }
}

#[cfg(test)]
mod envelope_tests {
    use super::*;

    fn listed(code: &str) -> bool {
        serde_json::from_value::<ErrorCode>(serde_json::Value::String(code.to_owned())).is_ok()
    }

    #[test]
    fn every_code_an_error_can_carry_is_in_the_documented_list() {
        for status in 400..600u16 {
            let Ok(s) = StatusCode::from_u16(status) else { continue };
            assert!(listed(code_for(s)), "{status} gives {} which ErrorCode does not list", code_for(s));
        }
        let m = || String::from("m");
        let mut errors = vec![
            ApiError::Unauthorized(m()),
            ApiError::Forbidden(m()),
            ApiError::NotFound(m()),
            ApiError::InvalidRequest(m()),
            ApiError::InvalidField(m()),
            ApiError::GatewayUnavailable(m()),
            ApiError::FourEyes(m()),
            ApiError::PayloadTooLarge(m()),
            ApiError::UnsupportedMediaType(m()),
            ApiError::Timeout,
            ApiError::NotReady(m()),
            ApiError::Internal(anyhow::anyhow!("x")),
        ];
        for code in
            ["conflict", "case_already_paid", "idempotency_key_reused", "day_closed", "day_not_over", "stale_run"]
        {
            errors.push(ApiError::Conflict { code, message: m() });
        }
        for code in ["gateway_disabled", "amount_outside_gateway_limits", "unknown_procedure", "no_base_rate"] {
            errors.push(ApiError::Unprocessable { code, message: m() });
        }
        for e in errors {
            let (_, code) = e.status_and_code();
            assert!(listed(code), "{e:?} answers {code}, which ErrorCode does not list");
        }
        let body =
            serde_json::to_value(ErrorEnvelope { error: ErrorBody { code: "not_found", message: "no case" } }).unwrap();
        assert_eq!(body, json!({"error": {"code": "not_found", "message": "no case"}}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Q {
        fieldset: String,
        limit: Option<String>,
    }

    #[test]
    fn a_missing_parameter_is_named_as_it_is_spelled() {
        let e = parse_query::<Q>("limit=1").unwrap_err().to_string();
        assert!(e.contains("missing parameter `fieldset`"), "{e}");
    }
}
