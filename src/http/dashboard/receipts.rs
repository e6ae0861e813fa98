//! `/receipts`: e-receipts for people (issue 18). Search by case code and/or date of issue; one
//! receipt with its items, status and related receipts, its printable page; and for finance the
//! two corrections the API offers (TT 91/2026 Art. 20), a replacement and an adjustment, posted
//! as forms with the session's CSRF token. Everything is read and issued by the receipts service
//! (`crate::receipts::Receipts`): the same roles (finance corrects, one person, as the API), the
//! same validation, the same audit. The day's summary is `receipt_summary`.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::i18n::{self, Lang};
use super::page::{Layout, PageError, enc, render};
use super::session::{CsrfForm, Viewer};
use crate::domain::receipt::{ReceiptKind, ReceiptStatus};
use crate::domain::{BusinessDate, CaseCode};
use crate::http::AppState;
use crate::http::routes::{Access, Route};
use crate::receipts::{AdjustItem, AdjustRequest, ReceiptError, ReceiptView, ReplaceRequest};

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/receipts",
            Access::PageStaff,
            "Dashboard: find e-receipts by case code (?case=) and/or date of issue (?date=YYYY-MM-DD).",
            get(search),
        ),
        Route::new(
            Method::GET,
            "/receipts/{receipt_id}",
            Access::PageStaff,
            "Dashboard: one e-receipt with its items, status and related receipts; finance's correction forms.",
            get(detail),
        ),
        Route::new(
            Method::GET,
            "/receipts/{receipt_id}/print",
            Access::PageStaff,
            "Dashboard: the printable page of an e-receipt (the API's page).",
            get(print),
        ),
        Route::new(
            Method::POST,
            "/receipts/{receipt_id}/replace",
            Access::PageFinance,
            "Dashboard: issue the replacement of a receipt in force (reason, payer_name?), as the API.",
            post(replace),
        ),
        Route::new(
            Method::POST,
            "/receipts/{receipt_id}/adjust",
            Access::PageFinance,
            "Dashboard: issue an adjustment of a receipt in force (reason, fee/amount pairs), as the API.",
            post(adjust),
        ),
    ]
}

/// The status and message of a receipts error, as the API gives it (an internal one is logged
/// and not shown).
fn status_of(lang: Lang, e: ReceiptError) -> (StatusCode, String) {
    let m = e.to_string();
    match e {
        ReceiptError::NotFound(_) => (StatusCode::NOT_FOUND, m),
        ReceiptError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, m),
        ReceiptError::Conflict(_) => (StatusCode::CONFLICT, m),
        ReceiptError::Internal(e) => {
            let e = PageError::internal(lang, e);
            (e.status, e.message)
        }
    }
}

pub(crate) fn page_error(v: &Viewer, e: ReceiptError) -> PageError {
    let (status, m) = status_of(v.lang, e);
    PageError::user(v, status, &m)
}

/// The badge class of a status (the stylesheet's state colours).
fn badge(s: ReceiptStatus) -> &'static str {
    match s {
        ReceiptStatus::Issued => "resolved",
        ReceiptStatus::Replaced => "superseded",
        ReceiptStatus::Adjusted => "pending_approval",
    }
}

/// A receipt as a row of the list, written for people.
struct Row {
    href: String,
    print: String,
    receipt_id: String,
    symbol: String,
    number: i64,
    kind: String,
    date: String,
    payer: String,
    total: String,
    status: String,
    status_wire: &'static str,
    badge: &'static str,
    case_code: String,
    /// `EBL01/26TAA/12` of the receipt a correction corrects, with its page.
    related: Option<(String, String)>,
}

fn href(id: &str) -> String {
    format!("/receipts/{}", enc(id))
}

fn row(lang: Lang, r: &ReceiptView) -> Row {
    Row {
        href: href(&r.receipt_id),
        print: format!("{}/print", href(&r.receipt_id)),
        receipt_id: r.receipt_id.clone(),
        symbol: format!("{} / {}", r.template, r.symbol),
        number: r.number,
        kind: i18n::word(lang, r.kind.as_str()),
        date: i18n::date(r.issue_date.naive()),
        payer: r.payer.name.clone(),
        total: lang.money(r.total),
        status: i18n::word(lang, r.status.as_str()),
        status_wire: r.status.as_str(),
        badge: badge(r.status),
        case_code: r.case_code.clone(),
        related: r.related.as_ref().map(|x| (x.reference().to_string(), href(&x.receipt_id))),
    }
}

#[derive(Template)]
#[template(path = "dashboard/receipts.html")]
struct SearchPage {
    l: Layout,
    case: String,
    date: String,
    searched: bool,
    rows: Vec<Row>,
    /// The finance users and auditors see the summary link (administrators may not open it).
    summary_href: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct SearchQuery {
    case: Option<String>,
    date: Option<String>,
}

/// What a search asks for, checked as the API checks a case code and a date.
fn criteria(q: &SearchQuery) -> Result<(Option<CaseCode>, Option<BusinessDate>), String> {
    let case = super::given(&q.case).map(|c| CaseCode::parse(c).map_err(|e| format!("case: {e}"))).transpose()?;
    let date = super::given(&q.date).map(|d| BusinessDate::parse(d).map_err(|e| format!("date: {e}"))).transpose()?;
    Ok((case, date))
}

async fn search(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    req: Request,
) -> Result<Response, PageError> {
    let lang = v.lang;
    let t = lang.texts();
    let q: SearchQuery = super::query(req.uri(), lang)?;
    let today = BusinessDate::of(state.clock.now());
    let mut page = SearchPage {
        l: Layout::of(&v, "receipts", t.receipts_title),
        case: q.case.clone().unwrap_or_default(),
        date: q.date.clone().unwrap_or_default(),
        searched: false,
        rows: vec![],
        summary_href: Access::PageFinanceAuditor.allows(v.role).then(|| format!("/receipts/summary?date={today}")),
        error: None,
    };
    let (case, date) = match criteria(&q) {
        Ok(c) => c,
        Err(m) => {
            page.error = Some(m);
            return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    if let Some(d) = date {
        page.summary_href = page.summary_href.map(|_| format!("/receipts/summary?date={d}"));
    }
    let found = match (&case, date) {
        (None, None) => return Ok(render(StatusCode::OK, &page)),
        (Some(code), _) => state.receipts.for_case(code).await,
        (None, Some(d)) => state.receipts.of_date(d).await,
    };
    page.searched = true;
    match found {
        Ok(list) => {
            page.rows = list.iter().filter(|r| date.is_none_or(|d| r.issue_date == d)).map(|r| row(lang, r)).collect();
            Ok(render(StatusCode::OK, &page))
        }
        Err(e) => {
            let (status, m) = status_of(lang, e);
            page.error = Some(m);
            Ok(render(status, &page))
        }
    }
}

/// One fee item of a receipt, written for people; `fee` is the catalogue's id (the adjustment
/// form's field).
struct ItemRow {
    fee: String,
    name: String,
    kind: String,
    subitem: String,
    amount: String,
}

#[derive(Template)]
#[template(path = "dashboard/receipt.html")]
struct DetailPage {
    l: Layout,
    r: Row,
    issued_at: String,
    collector: String,
    payer_kind: String,
    applicant: String,
    items: Vec<ItemRow>,
    in_words: String,
    reason: String,
    note: String,
    payment_href: Option<(String, String)>,
    case_href: String,
    replaced_by: Option<String>,
    adjusted_by: Vec<String>,
    /// Finance, and the receipt is one the service would replace (in force, no adjustment).
    can_replace: bool,
    /// Finance, and the receipt is one the service would adjust (in force, not an adjustment).
    can_adjust: bool,
    csrf: String,
    flash: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct DetailQuery {
    done: Option<String>,
}

async fn detail_page(
    state: &AppState,
    v: &Viewer,
    id: &str,
    done: Option<&str>,
    error: Option<(StatusCode, String)>,
) -> Result<Response, PageError> {
    let lang = v.lang;
    let t = lang.texts();
    let r = state.receipts.get(id).await.map_err(|e| page_error(v, e))?;
    let correctable = r.kind != ReceiptKind::Adjustment && r.status != ReceiptStatus::Replaced;
    let (status, error) = error.map_or((StatusCode::OK, None), |(s, m)| (s, Some(m)));
    let page = DetailPage {
        l: Layout::of(v, "receipts", format!("{} {}/{}/{}", t.receipt, r.template, r.symbol, r.number)),
        issued_at: i18n::time(r.issued_at.0),
        collector: format!("{} · MST {}", r.collector.name, r.collector.tax_code),
        payer_kind: i18n::word(lang, r.payer.kind.as_str()),
        applicant: r.applicant.clone(),
        items: r
            .items
            .iter()
            .map(|i| ItemRow {
                fee: i.fee.clone(),
                name: i.name.clone(),
                kind: i18n::word(lang, &i.kind),
                subitem: i.budget_subitem.clone().unwrap_or_default(),
                amount: lang.money(i.amount),
            })
            .collect(),
        in_words: r.total_in_words.clone(),
        reason: r.reason.clone().unwrap_or_default(),
        note: r.note.clone().unwrap_or_default(),
        payment_href: r.payment_id.as_ref().map(|p| (p.clone(), format!("/payments/{}", enc(p)))),
        case_href: format!("/receipts?case={}", enc(&r.case_code)),
        replaced_by: r.replaced_by.as_deref().map(href),
        adjusted_by: r.adjusted_by.iter().map(|a| href(a)).collect(),
        can_replace: v.can_act() && correctable && r.status == ReceiptStatus::Issued,
        can_adjust: v.can_act() && correctable,
        csrf: v.csrf().to_owned(),
        flash: match done {
            Some("replaced") => Some(t.done_replaced),
            Some("adjusted") => Some(t.done_adjusted),
            _ => None,
        },
        error,
        r: row(lang, &r),
    };
    Ok(render(status, &page))
}

async fn detail(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, PageError> {
    let q: DetailQuery = super::query(req.uri(), v.lang)?;
    detail_page(&state, &v, &id, super::given(&q.done), None).await
}

async fn print(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let html = state.receipts.page(&id).await.map_err(|e| page_error(&v, e))?;
    let mut res = super::page::html(StatusCode::OK, html);
    // The API's page is self-contained with its own inline print stylesheet: it keeps its own,
    // stricter policy (nothing to load, nothing to run, no framing).
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; \
             form-action 'none'",
        ),
    );
    Ok(res)
}

#[derive(Deserialize)]
struct ReplaceForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    payer_name: Option<String>,
}

async fn replace(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<ReplaceForm>,
) -> Result<Response, PageError> {
    let req = ReplaceRequest { reason: f.reason, payer_name: super::given(&f.payer_name).map(str::to_owned) };
    match state.receipts.replace(&id, &req, &v.name).await {
        Ok(new) => Ok(Redirect::to(&format!("{}?done=replaced", href(&new.receipt_id))).into_response()),
        Err(e) => detail_page(&state, &v, &id, None, Some(status_of(v.lang, e))).await,
    }
}

/// The adjustment form: `reason`, then `fee` and `amount` fields in pairs (one pair per item of
/// the receipt; a blank amount leaves that item out). An amount is a whole number of đồng with
/// an optional sign, as the API's JSON integer.
fn adjust_request(pairs: &[(String, String)]) -> Result<AdjustRequest, String> {
    let reason = pairs.iter().find(|(k, _)| k == "reason").map(|(_, v)| v.clone()).unwrap_or_default();
    let fees = pairs.iter().filter(|(k, _)| k == "fee").map(|(_, v)| v);
    let amounts = pairs.iter().filter(|(k, _)| k == "amount").map(|(_, v)| v.trim());
    let mut items = Vec::new();
    for (fee, amount) in fees.zip(amounts) {
        if amount.is_empty() {
            continue;
        }
        let amount = amount
            .parse::<i64>()
            .map_err(|_| format!("items: the difference for {fee} must be a whole number of đồng, not {amount:?}"))?;
        items.push(AdjustItem { fee: fee.clone(), amount });
    }
    Ok(AdjustRequest { reason, items })
}

async fn adjust(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let req = match adjust_request(&pairs) {
        Ok(r) => r,
        Err(m) => return detail_page(&state, &v, &id, None, Some((StatusCode::UNPROCESSABLE_ENTITY, m))).await,
    };
    match state.receipts.adjust(&id, &req, &v.name).await {
        Ok(new) => Ok(Redirect::to(&format!("{}?done=adjusted", href(&new.receipt_id))).into_response()),
        Err(e) => detail_page(&state, &v, &id, None, Some(status_of(v.lang, e))).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_adjustment_form_pairs_fees_with_amounts_and_skips_blanks() {
        let r = adjust_request(&pairs(&[
            ("csrf", "x"),
            ("reason", "Hoàn tiền"),
            ("fee", "a"),
            ("amount", "-15000"),
            ("fee", "b"),
            ("amount", " "),
        ]))
        .unwrap();
        assert_eq!(r.reason, "Hoàn tiền");
        assert_eq!(r.items.len(), 1);
        assert_eq!((r.items[0].fee.as_str(), r.items[0].amount), ("a", -15_000));
        let e = adjust_request(&pairs(&[("reason", "x"), ("fee", "a"), ("amount", "15.000")])).unwrap_err();
        assert!(e.contains("whole number"), "{e}");
    }
}
