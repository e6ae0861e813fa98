//! `/exceptions/{id}`: one exception with its item, and the case, the payment, the settlement
//! line and the raw callbacks side by side, with the resolve, approve and reject forms (four
//! eyes: the service refuses an approval by the requester, and the page says so). A refused form
//! shows the page again with the error and what was typed.
//!
//! The item's fields are rendered from its JSON form, each with its label when it has one, so a
//! field the report gains later shows without changing this page.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;

use super::i18n::{self, Lang};
use super::page::{Layout, PageError, enc, finance_status, render};
use super::session::{CsrfForm, Viewer};
use crate::domain::BusinessDate;
use crate::domain::recon::{Action, Category, ExceptionState};
use crate::http::AppState;
use crate::http::routes::{Access, Route};
use crate::payments::CallbackView;
use crate::recon::ExceptionDetail;

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/exceptions/{id}",
            Access::PageStaff,
            "Dashboard: an exception with its case, payment, callbacks and settlement line.",
            get(detail),
        ),
        Route::new(
            Method::POST,
            "/exceptions/{id}/resolve",
            Access::PageFinance,
            "Dashboard: resolve an exception (form: action, note, case_code).",
            post(resolve),
        ),
        Route::new(
            Method::POST,
            "/exceptions/{id}/approve",
            Access::PageFinance,
            "Dashboard: approve a pending resolution (another finance user; form: note).",
            post(approve),
        ),
        Route::new(
            Method::POST,
            "/exceptions/{id}/reject",
            Access::PageFinance,
            "Dashboard: reject a pending resolution (another finance user; form: note).",
            post(reject),
        ),
    ]
}

/// The longest note a resolution keeps (as the API).
const MAX_NOTE: usize = 2000;

struct Kv {
    label: String,
    value: String,
    mono: bool,
}

fn kv(label: &str, value: impl Into<String>) -> Kv {
    Kv { label: label.to_owned(), value: value.into(), mono: false }
}

fn kv_mono(label: &str, value: impl Into<String>) -> Kv {
    Kv { label: label.to_owned(), value: value.into(), mono: true }
}

/// A report item's fields for people: every field of its JSON form but its state and
/// resolution (shown apart), amounts and dates written as such, labels where known.
fn item_fields(lang: Lang, item: &crate::reconcile::report::ReportItem) -> Vec<Kv> {
    let Ok(Value::Object(map)) = serde_json::to_value(item) else { return vec![] };
    map.iter()
        .filter(|(k, _)| k.as_str() != "state" && k.as_str() != "resolution")
        .map(|(k, val)| {
            let value = match (k.as_str(), val) {
                (_, Value::Null) => "—".to_owned(),
                (k, Value::Number(n)) if k.ends_with("_amount") || k == "fee" => {
                    n.as_i64().map_or_else(|| n.to_string(), |d| lang.money(d))
                }
                ("category", Value::String(c)) => {
                    c.parse().map_or_else(|_| c.clone(), |c: Category| i18n::category(lang, c).to_owned())
                }
                (k, Value::String(d)) if k.ends_with("_date") => {
                    BusinessDate::parse(d).map_or_else(|_| d.clone(), |d| i18n::date(d.naive()))
                }
                ("line_status", Value::String(s)) => i18n::word(lang, s),
                (_, Value::String(s)) => s.clone(),
                (_, other) => other.to_string(),
            };
            let mono = matches!(k.as_str(), "key" | "case_code" | "payment_id" | "txn_ref" | "gateway_txn_no");
            Kv { label: i18n::field(lang, k), value, mono }
        })
        .collect()
}

struct Evidence {
    received: String,
    source: String,
    /// Method and path.
    request: String,
    /// The query string as received (a VNPAY IPN carries its fields there).
    query: String,
    signature_ok: bool,
    result: String,
    detail: String,
    body: String,
    sha256: String,
}

fn evidence(c: &CallbackView) -> Evidence {
    Evidence {
        received: i18n::time(c.received_at.0),
        source: serde_json::to_value(c.source).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        request: format!("{} {}", c.method, c.path),
        query: c.query.clone(),
        signature_ok: c.signature_valid,
        result: serde_json::to_value(c.result).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        detail: c.detail.clone().unwrap_or_default(),
        body: c.body.clone(),
        sha256: c.body_sha256.clone(),
    }
}

#[derive(Template)]
#[template(path = "dashboard/exception.html")]
struct DetailPage {
    l: Layout,
    id: String,
    id_enc: String,
    category: &'static str,
    state: &'static str,
    state_label: String,
    day_label: String,
    day_href: String,
    closed: Option<String>,
    stale: bool,
    fields: Vec<Kv>,
    case: Vec<Kv>,
    payment: Vec<Kv>,
    payment_href: Option<String>,
    line: Vec<Kv>,
    callbacks: Vec<Evidence>,
    resolution: Vec<Kv>,
    rejection: Vec<Kv>,
    can_resolve: bool,
    can_decide: bool,
    own_request: bool,
    csrf: String,
    actions: Vec<(&'static str, String, bool)>,
    note: String,
    case_code: String,
    flash: Option<&'static str>,
    error: Option<String>,
}

/// A resolution's or rejection's JSON as label/value pairs.
fn json_fields(lang: Lang, j: &Value) -> Vec<Kv> {
    let Value::Object(map) = j else { return vec![] };
    let t = lang.texts();
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .filter_map(|(k, v)| {
            let label = match k.as_str() {
                "action" => t.action,
                "note" => t.note,
                "requested_by" => t.requested_by,
                "approved_by" => t.approved_by,
                "case_code" => t.case_code,
                "last_rejection" => return None,
                other => other,
            };
            let value = match (k.as_str(), v) {
                ("action", Value::String(a)) => i18n::word(lang, a),
                (k, Value::String(s)) if k.ends_with("_at") || k == "at" => {
                    crate::domain::Timestamp::parse(s).map_or_else(|_| s.clone(), |ts| i18n::time(ts.0))
                }
                (_, Value::String(s)) => s.clone(),
                (_, other) => other.to_string(),
            };
            Some(Kv { label: label.to_owned(), value, mono: false })
        })
        .collect()
}

/// What the forms held when they were refused, so the page shows them again.
#[derive(Default)]
struct Submitted {
    action: Option<String>,
    note: String,
    case_code: String,
}

async fn detail_page(
    state: &AppState,
    v: &Viewer,
    id: &str,
    flash: Option<&'static str>,
    error: Option<(StatusCode, String)>,
    submitted: Submitted,
) -> Result<Response, PageError> {
    let lang = v.lang;
    let t = lang.texts();
    let d: ExceptionDetail = state.finance.exception_detail(id).await.map_err(|e| PageError::finance(v, e))?;
    let e = &d.exception;
    let resolution = crate::recon::exception_view(e);
    let requested_by = resolution["requested_by"].as_str().unwrap_or("");
    let case = d
        .case
        .as_ref()
        .map(|c| {
            vec![
                kv_mono(t.case_code, c.case.case_code.as_str()),
                kv_mono(t.procedure, c.case.procedure_code.as_str()),
                kv(t.applicant, c.case.applicant_name.clone()),
                kv(t.channel, i18n::word(lang, c.case.channel.as_str())),
                kv(t.received_at, i18n::time(c.case.received_at.0)),
                kv_mono(t.unit, c.case.receiving_unit.as_str()),
                kv(t.version, c.version.to_string()),
            ]
        })
        .unwrap_or_default();
    let payment = d
        .payment
        .as_ref()
        .map(|p| {
            vec![
                kv_mono(t.payment_id, p.payment_id.clone()),
                kv(t.status, i18n::word(lang, p.status.as_str())),
                kv(t.amount, lang.money(p.amount.dong())),
                kv_mono(t.txn_ref, p.txn_ref.clone().unwrap_or_default()),
                kv_mono(t.gateway_txn_no, p.gateway_txn_no.clone().unwrap_or_default()),
                kv(t.paid_at, p.paid_at.map(i18n::time).unwrap_or_default()),
                kv(t.flags, p.flags.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")),
            ]
        })
        .unwrap_or_default();
    let line = d
        .line
        .as_ref()
        .map(|(l, f)| {
            vec![
                kv(t.file, f.as_ref().map(|f| f.name.clone()).unwrap_or_else(|| l.file_id.clone())),
                kv(t.line_no, l.line_no.to_string()),
                kv_mono(t.gateway_txn_no, l.gateway_txn_no.clone()),
                kv_mono(t.txn_ref, l.txn_ref.clone()),
                kv(t.amount, lang.money(l.amount)),
                kv(t.fee, lang.money(l.fee)),
                kv(t.txn_time, i18n::time(l.txn_time)),
                kv(t.status, i18n::word(lang, l.status.as_str())),
            ]
        })
        .unwrap_or_default();
    let open = e.state == ExceptionState::Open;
    let pending = e.state == ExceptionState::PendingApproval;
    let actionable = v.can_act() && d.closed_at.is_none() && d.item.is_some();
    // The form offers every action (a refused one says why); it starts on one that applies,
    // the least money-moving first.
    let preferred = [Action::Accept, Action::ConfirmFromSettlement, Action::WriteOff, Action::Refund];
    let default = preferred.iter().find(|a| d.actions.contains(a)).map_or("accept", |a| a.as_str());
    let chosen = submitted.action.as_deref().unwrap_or(default);
    let (status, error) = match error {
        Some((s, m)) => (s, Some(m)),
        None => (StatusCode::OK, None),
    };
    let page = DetailPage {
        l: Layout::of(v, "exceptions", format!("{} {id}", t.exception_title)),
        id: id.to_owned(),
        id_enc: enc(id),
        category: i18n::category(lang, e.category),
        state: e.state.as_str(),
        state_label: i18n::word(lang, e.state.as_str()),
        day_label: format!("{} · {}", i18n::date(e.business_date), i18n::word(lang, e.gateway.as_str())),
        day_href: format!("/days/{}?gateway={}", e.business_date, e.gateway),
        closed: d.closed_at.map(i18n::time),
        stale: d.item.is_none(),
        fields: d.item.as_ref().map(|i| item_fields(lang, i)).unwrap_or_default(),
        case,
        payment,
        payment_href: d.payment.as_ref().map(|p| format!("/payments/{}", enc(&p.payment_id))),
        line,
        callbacks: d.callbacks.iter().map(evidence).collect(),
        resolution: json_fields(lang, &resolution),
        rejection: json_fields(lang, &resolution["last_rejection"]),
        can_resolve: actionable && open,
        can_decide: actionable && pending && requested_by != v.name,
        own_request: actionable && pending && requested_by == v.name,
        csrf: v.csrf().to_owned(),
        actions: Action::ALL.iter().map(|a| (a.as_str(), i18n::word(lang, a.as_str()), a.as_str() == chosen)).collect(),
        note: submitted.note,
        case_code: submitted.case_code,
        flash,
        error,
    };
    Ok(render(status, &page))
}

#[derive(Deserialize, Default)]
struct DetailQuery {
    done: Option<String>,
}

async fn detail(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, PageError> {
    let q: DetailQuery = super::query(req.uri(), v.lang)?;
    let t = v.lang.texts();
    let flash = match super::given(&q.done) {
        Some("resolved") => Some(t.done_resolved),
        Some("approved") => Some(t.done_approved),
        Some("rejected") => Some(t.done_rejected),
        _ => None,
    };
    detail_page(&state, &v, &id, flash, None, Submitted::default()).await
}

#[derive(Deserialize)]
struct ResolveForm {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    note: String,
    #[serde(default)]
    case_code: Option<String>,
}

async fn resolve(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<ResolveForm>,
) -> Result<Response, PageError> {
    let submitted = Submitted {
        action: f.action.clone(),
        note: f.note.clone(),
        case_code: f.case_code.clone().unwrap_or_default(),
    };
    let refuse = |status, message: String| (status, message);
    let outcome = match super::given(&f.action) {
        None => Err(refuse(StatusCode::UNPROCESSABLE_ENTITY, "action: is required".to_owned())),
        Some(_) if f.note.chars().count() > MAX_NOTE => {
            Err(refuse(StatusCode::UNPROCESSABLE_ENTITY, format!("note: is longer than {MAX_NOTE} characters")))
        }
        Some(action) => {
            let case_code = super::given(&f.case_code);
            state
                .finance
                .resolve(&id, action, f.note.trim(), case_code, &v.name)
                .await
                .map_err(|e| finance_status(v.lang, e))
        }
    };
    match outcome {
        Ok(_) => Ok(Redirect::to(&format!("/exceptions/{}?done=resolved", enc(&id))).into_response()),
        Err(err) => detail_page(&state, &v, &id, None, Some(err), submitted).await,
    }
}

#[derive(Deserialize)]
struct DecideForm {
    #[serde(default)]
    note: String,
}

async fn decide(state: AppState, v: Viewer, id: String, f: DecideForm, approve: bool) -> Result<Response, PageError> {
    if f.note.chars().count() > MAX_NOTE {
        let err = (StatusCode::UNPROCESSABLE_ENTITY, format!("note: is longer than {MAX_NOTE} characters"));
        return detail_page(&state, &v, &id, None, Some(err), Submitted::default()).await;
    }
    let note = Some(f.note.trim()).filter(|n| !n.is_empty());
    match state.finance.decide(&id, approve, note, &v.name).await {
        Ok(_) => {
            let done = if approve { "approved" } else { "rejected" };
            Ok(Redirect::to(&format!("/exceptions/{}?done={done}", enc(&id))).into_response())
        }
        Err(e) => {
            let err = finance_status(v.lang, e);
            detail_page(&state, &v, &id, None, Some(err), Submitted::default()).await
        }
    }
}

async fn approve(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<DecideForm>,
) -> Result<Response, PageError> {
    decide(state, v, id, f, true).await
}

async fn reject(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<DecideForm>,
) -> Result<Response, PageError> {
    decide(state, v, id, f, false).await
}
