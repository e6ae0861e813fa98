//! `/settlements`: the imported settlement files, and the form that imports one from the browser
//! (gateway, profile, file). The import runs as a job with progress (`jobs`); a refused file
//! shows its line, field and reason there. A form missing a field is shown again with the error.

use askama::Template;
use axum::Extension;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::i18n::{self, Lang};
use super::jobs::{JobKind, Outcome};
use super::page::{Layout, PageError, render};
use super::session::Viewer;
use crate::domain::payment::Gateway;
use crate::http::AppState;
use crate::http::routes::{Access, Route};

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/settlements",
            Access::PageStaff,
            "Dashboard: imported settlement files and the import form.",
            get(page),
        ),
        Route::new(
            Method::POST,
            "/settlements",
            Access::PageFinance,
            "Dashboard: import a settlement file (multipart: csrf, gateway, profile, file); shows its progress.",
            post(upload).layer(axum::extract::DefaultBodyLimit::disable()),
        ),
    ]
}

struct FileRow {
    imported_at: String,
    gateway: String,
    profile: String,
    name: String,
    lines: String,
    sha256: String,
    by: String,
}

#[derive(Template)]
#[template(path = "dashboard/settlements.html")]
struct SettlementsPage {
    l: Layout,
    can_act: bool,
    csrf: String,
    gateways: Vec<(&'static str, String, bool)>,
    profiles: Vec<(String, bool)>,
    files: Vec<FileRow>,
    error: Option<String>,
}

/// The page, with the form's previous choices and an error when a submission was refused.
async fn settlements_page(
    state: &AppState,
    v: &Viewer,
    chosen: (Option<&str>, Option<&str>),
    error: Option<(StatusCode, String)>,
) -> Result<Response, PageError> {
    let lang = v.lang;
    let files = state.finance.files(None).await.map_err(|e| PageError::finance(v, e))?;
    let files = files
        .iter()
        .rev()
        .map(|f| FileRow {
            imported_at: i18n::time(f.imported_at),
            gateway: i18n::word(lang, f.gateway.as_str()),
            profile: f.profile.clone(),
            name: f.name.clone(),
            lines: lang.count(f.line_count),
            sha256: f.sha256.clone(),
            by: f.imported_by.clone(),
        })
        .collect();
    let (status, error) = match error {
        Some((s, m)) => (s, Some(m)),
        None => (StatusCode::OK, None),
    };
    let page = SettlementsPage {
        l: Layout::of(v, "settlements", lang.texts().settlements_title),
        can_act: v.can_act(),
        csrf: v.csrf().to_owned(),
        gateways: Gateway::ALL
            .iter()
            .map(|g| (g.as_str(), i18n::word(lang, g.as_str()), chosen.0 == Some(g.as_str())))
            .collect(),
        profiles: state
            .finance
            .profile_names()
            .into_iter()
            .map(|p| {
                let on = chosen.1 == Some(p.as_str());
                (p, on)
            })
            .collect(),
        files,
        error,
    };
    Ok(render(status, &page))
}

async fn page(State(state): State<AppState>, Extension(v): Extension<Viewer>) -> Result<Response, PageError> {
    settlements_page(&state, &v, (None, None), None).await
}

/// A file name as given by the browser, cut to its last component and to printable text.
fn clean_name(raw: Option<&str>) -> String {
    let base = raw.unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("");
    let name: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if name.trim().is_empty() { "settlement.csv".to_owned() } else { name }
}

/// The lines a file probably holds (line feeds, less the header): the progress bar's total.
fn estimate_lines(bytes: &[u8]) -> u64 {
    let n = bytes.iter().filter(|b| **b == b'\n').count();
    u64::try_from(n.saturating_sub(1)).unwrap_or(0)
}

async fn upload(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    req: Request,
) -> Result<Response, PageError> {
    let lang: Lang = v.lang;
    let limit = state.config.max_upload;
    let bad_request = |m: String| PageError::user(&v, StatusCode::BAD_REQUEST, &m);
    let mut mp = Multipart::from_request(req, &state).await.map_err(|e| bad_request(e.body_text()))?;
    let (mut csrf, mut gateway, mut profile, mut file) = (None::<String>, None::<String>, None::<String>, None);
    while let Some(mut field) = mp.next_field().await.map_err(|e| bad_request(e.body_text()))? {
        let name = field.name().unwrap_or("").to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let mut data = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| bad_request(e.body_text()))? {
            if data.len() + chunk.len() > limit {
                let m = format!("file: larger than FEERECON_MAX_UPLOAD ({limit} bytes)");
                return Err(PageError::user(&v, StatusCode::PAYLOAD_TOO_LARGE, &m));
            }
            data.extend_from_slice(&chunk);
        }
        let text = || String::from_utf8_lossy(&data).trim().to_owned();
        match name.as_str() {
            "csrf" => csrf = Some(text()),
            "gateway" => gateway = Some(text()),
            "profile" => profile = Some(text()),
            "file" => file = Some((clean_name(file_name.as_deref()), data)),
            _ => {}
        }
    }
    if !crate::auth::session::tokens_match(csrf.as_deref().unwrap_or(""), v.csrf()) {
        return Err(PageError::user(&v, StatusCode::FORBIDDEN, lang.texts().csrf_failed));
    }
    let chosen = (gateway.as_deref().filter(|s| !s.is_empty()), profile.as_deref().filter(|s| !s.is_empty()));
    let refuse = |m: String| Some((StatusCode::UNPROCESSABLE_ENTITY, m));
    let g: Gateway = match chosen.0.map(str::parse::<Gateway>) {
        None => return settlements_page(&state, &v, chosen, refuse("gateway: is required".into())).await,
        Some(Err(e)) => return settlements_page(&state, &v, chosen, refuse(format!("gateway: {e}"))).await,
        Some(Ok(g)) => g,
    };
    let Some(p) = chosen.1.map(str::to_owned) else {
        return settlements_page(&state, &v, chosen, refuse("profile: is required".into())).await;
    };
    let Some((name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return settlements_page(&state, &v, chosen, refuse("file: choose a non-empty file".into())).await;
    };
    let job = state.dashboard.jobs.start(
        &v.user_id,
        JobKind::Import { gateway: g, name: name.clone() },
        estimate_lines(&bytes),
    );
    let (finance, actor, task) = (state.finance.clone(), v.name.clone(), job.clone());
    tokio::spawn(async move {
        let progress = |n: usize| task.progress(n);
        match finance.import(g, &p, &name, &bytes, &actor, &progress).await {
            Ok(f) => task.finish(Outcome::Imported { lines: f.line_count, sha256: f.sha256 }),
            Err(e) => task.fail(lang, e),
        }
    });
    Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_their_last_component_only() {
        assert_eq!(clean_name(Some("C:\\Users\\lan\\vnpay 15-07.csv")), "vnpay 15-07.csv");
        assert_eq!(clean_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_name(Some("a\nb.csv")), "ab.csv");
        assert_eq!(clean_name(None), "settlement.csv");
    }

    #[test]
    fn the_estimate_counts_lines_after_the_header() {
        assert_eq!(estimate_lines(b"h\n1\n2\n"), 2);
        assert_eq!(estimate_lines(b""), 0);
    }
}
