//! Cases (SPEC §4.3): the portal writes them, every role reads them.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Json};

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ApiJson, ApiPath};
use super::routes::{Access, Route};
use crate::domain::{CaseCode, CaseInput, FieldError};
use crate::store::{AuditEvent, StoredCase, Upserted};

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::PUT,
            "/api/v1/cases/{case_code}",
            Access::Portal,
            "Create (201) or update (200) a case; every version is kept, an identical update adds none; `result` says created, updated or unchanged, and an update goes to the audit log.",
            put(put_case),
        )
        .json_body::<CaseInput>()
        .json::<PutAnswer>(201, "Created: the case's first version.")
        .json::<PutAnswer>(200, "Updated (a new version), or unchanged."),
        Route::new(
            Method::GET,
            "/api/v1/cases/{case_code}",
            Access::AnyRole,
            "The current version of a case.",
            get(get_case),
        )
        .json::<StoredCase>(200, "The case's current version."),
        Route::new(
            Method::GET,
            "/api/v1/cases/{case_code}/fee",
            Access::AnyRole,
            "The quote for a case's current version under the policy in force on its receipt date.",
            get(get_fee),
        )
        .json::<crate::fees::QuoteJson<'static>>(
            200,
            "The quote (SPEC §5): canonical JSON, the same facts give the same bytes.",
        ),
    ]
}

/// Parses a case code from the path; a malformed one is a 422 naming `case_code`.
pub fn path_case_code(raw: &str) -> Result<CaseCode, ApiError> {
    CaseCode::parse(raw).map_err(|e| ApiError::field(FieldError::new("case_code", e)))
}

async fn put_case(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(code): ApiPath<String>,
    ApiJson(input): ApiJson<CaseInput>,
) -> Result<Response, ApiError> {
    let code = path_case_code(&code)?;
    let case = input.validate(Some(&code)).map_err(ApiError::field)?;
    check_procedure(&state, &case)?;
    let now = state.clock.now();
    let mut tx = state.store.write().await?;
    let (what, stored) = tx.upsert_case(&case, &who.name, now).await?;
    if what == Upserted::Updated {
        // A case changed after it was filed: who changed it, and to which version (SPEC §8).
        let details = serde_json::json!({"version": stored.version, "source": "api"});
        let event = AuditEvent::new(&who.name, "case.update", code.as_str(), details);
        crate::ledger::chain::append_audit(&mut tx, &[event], now).await?;
    }
    tx.commit().await?;
    let status = if what == Upserted::Created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(PutAnswer { stored, result: what })).into_response())
}

/// What `PUT /api/v1/cases/{case_code}` answers: the case as stored, and what the request did.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct PutAnswer {
    #[serde(flatten)]
    stored: StoredCase,
    /// `created`, `updated` (a new version) or `unchanged`.
    result: Upserted,
}

/// A case must name a procedure of the catalogue: otherwise it cannot be quoted or paid.
fn check_procedure(state: &AppState, case: &crate::domain::Case) -> Result<(), ApiError> {
    if state.fees.catalogue.procedure(&case.procedure_code).is_none() {
        return Err(ApiError::field(FieldError::new(
            "procedure_code",
            format!("{} is not in the fee catalogue", case.procedure_code),
        )));
    }
    Ok(())
}

async fn get_fee(State(state): State<AppState>, ApiPath(code): ApiPath<String>) -> Result<Response, ApiError> {
    let code = path_case_code(&code)?;
    let stored = state.store.get_case(&code).await?.ok_or_else(|| ApiError::NotFound(format!("no case {code}")))?;
    let quote = state.fees.quote(&crate::fees::Facts::of_case(&stored.case))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], quote.to_json()).into_response())
}

/// A stored case whose procedure has left the catalogue is 422 `unknown_procedure`; one whose
/// receipt date no base rate covers is 422 `no_base_rate`; both name what is missing.
impl From<crate::fees::QuoteError> for ApiError {
    fn from(e: crate::fees::QuoteError) -> Self {
        use crate::fees::QuoteError;
        let message = e.to_string();
        match e {
            QuoteError::UnknownProcedure(_) => ApiError::Unprocessable { code: "unknown_procedure", message },
            QuoteError::NoBase { .. } => ApiError::Unprocessable { code: "no_base_rate", message },
            QuoteError::Overflow(_) => ApiError::Internal(anyhow::Error::new(e)),
        }
    }
}

async fn get_case(State(state): State<AppState>, ApiPath(code): ApiPath<String>) -> Result<Response, ApiError> {
    let code = path_case_code(&code)?;
    let stored = state.store.get_case(&code).await?.ok_or_else(|| ApiError::NotFound(format!("no case {code}")))?;
    Ok(Json(stored).into_response())
}
