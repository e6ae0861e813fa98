//! `/payments?q=`: find a payment by case code, payment id or `txn_ref`; `/payments/{id}`: one
//! payment with its case, its raw callbacks and its portal notifications.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::i18n;
use super::page::{Layout, PageError, enc, finance_status, render};
use super::session::Viewer;
use crate::http::AppState;
use crate::http::routes::{Access, Route};
use crate::store::Payment;

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/payments",
            Access::PageStaff,
            "Dashboard: find payments by case code, payment id or txn_ref (?q=).",
            get(search),
        ),
        Route::new(
            Method::GET,
            "/payments/{payment_id}",
            Access::PageStaff,
            "Dashboard: a payment with its case, callbacks and portal notifications.",
            get(detail),
        ),
    ]
}

struct Row {
    href: String,
    payment_id: String,
    case_code: String,
    gateway: String,
    txn_ref: String,
    amount: String,
    status: String,
    status_class: String,
    paid_at: String,
    flags: String,
}

fn row(lang: i18n::Lang, p: &Payment) -> Row {
    Row {
        href: format!("/payments/{}", enc(&p.payment_id)),
        payment_id: p.payment_id.clone(),
        case_code: p.case_code.as_str().to_owned(),
        gateway: i18n::word(lang, p.gateway.as_str()),
        txn_ref: p.txn_ref.clone().unwrap_or_default(),
        amount: lang.money(p.amount.dong()),
        status: i18n::word(lang, p.status.as_str()),
        status_class: if p.status == crate::domain::payment::PaymentStatus::Paid { "resolved" } else { "no_file" }
            .to_owned(),
        paid_at: p.paid_at.map(i18n::time).unwrap_or_default(),
        flags: p.flags.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", "),
    }
}

#[derive(Template)]
#[template(path = "dashboard/payments.html")]
struct SearchPage {
    l: Layout,
    q: String,
    searched: bool,
    read_as: String,
    rows: Vec<Row>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct SearchQuery {
    q: Option<String>,
}

async fn search(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    req: Request,
) -> Result<Response, PageError> {
    let lang = v.lang;
    let t = lang.texts();
    let q: SearchQuery = super::query(req.uri(), lang)?;
    let text = q.q.unwrap_or_default();
    let mut page = SearchPage {
        l: Layout::of(&v, "payments", t.search_title),
        q: text.clone(),
        searched: false,
        read_as: String::new(),
        rows: vec![],
        error: None,
    };
    let mut status = StatusCode::OK;
    if !text.is_empty() {
        page.searched = true;
        match state.finance.search_payments(&text).await {
            Ok(found) => {
                page.read_as = i18n::field(lang, found.read_as);
                page.rows = found.payments.iter().map(|p| row(lang, p)).collect();
            }
            Err(e) => {
                let (s, m) = finance_status(lang, e);
                status = s;
                page.error = Some(m);
            }
        }
    }
    Ok(render(status, &page))
}

struct Event {
    kind: String,
    state: String,
    attempts: i64,
    created: String,
    last_error: String,
}

#[derive(Template)]
#[template(path = "dashboard/payment.html")]
struct DetailPage {
    l: Layout,
    p: Row,
    case: Vec<(&'static str, String)>,
    callbacks: Vec<(String, String, bool, String, String)>,
    events: Vec<Event>,
}

async fn detail(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let lang = v.lang;
    let t = lang.texts();
    let d = state.finance.payment_detail(&id).await.map_err(|e| PageError::finance(&v, e))?;
    let case = d
        .case
        .as_ref()
        .map(|c| {
            vec![
                (t.case_code, c.case.case_code.as_str().to_owned()),
                (t.procedure, c.case.procedure_code.as_str().to_owned()),
                (t.applicant, c.case.applicant_name.clone()),
                (t.channel, i18n::word(lang, c.case.channel.as_str())),
                (t.received_at, i18n::time(c.case.received_at.0)),
                (t.unit, c.case.receiving_unit.as_str().to_owned()),
            ]
        })
        .unwrap_or_default();
    let callbacks = d
        .callbacks
        .iter()
        .map(|c| {
            let result = serde_json::to_value(c.result).ok().and_then(|v| v.as_str().map(str::to_owned));
            let query = if c.query.is_empty() { String::new() } else { format!("?{}\n", c.query) };
            (
                i18n::time(c.received_at.0),
                format!("{} {}", c.method, c.path),
                c.signature_valid,
                result.unwrap_or_default(),
                format!("{query}{}", c.body),
            )
        })
        .collect();
    let events = d
        .events
        .iter()
        .map(|e| Event {
            kind: e.event_type.as_str().to_owned(),
            state: e.state.as_str().to_owned(),
            attempts: e.attempts,
            created: i18n::time(e.created_at),
            last_error: e.last_error.clone().unwrap_or_default(),
        })
        .collect();
    let page = DetailPage {
        l: Layout::of(&v, "payments", format!("{} {id}", t.payment)),
        p: row(lang, &d.payment),
        case,
        callbacks,
        events,
    };
    Ok(render(StatusCode::OK, &page))
}
