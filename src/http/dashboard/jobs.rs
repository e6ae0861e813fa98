//! Long operations shown with their progress: importing a settlement file and running a day.
//!
//! The form that starts one answers at once with a redirect to `/jobs/{id}`, and the work goes
//! on in a task of its own (so no request timeout cuts it short). The job page shows the phase,
//! the lines done against an estimate of the total and the time elapsed, and reloads itself
//! every second (a `<meta>` refresh: no script needed) until the job ends; then it shows the
//! result or the error (an import's line, field and reason), or, for a run, goes to the day.
//! Jobs live in the memory of the instance that runs them, visible to the user who started
//! them; the last `KEEP` are kept.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::NaiveDate;

use super::i18n;
use super::page::{Layout, PageError, finance_status, render};
use super::session::Viewer;
use crate::domain::new_id;
use crate::domain::payment::Gateway;
use crate::http::AppState;
use crate::http::routes::{Access, Route};
use crate::recon::{FinanceError, RunPhase};
use crate::settlement::FileError;

pub fn routes() -> Vec<Route> {
    vec![Route::new(
        Method::GET,
        "/jobs/{job_id}",
        Access::PageStaff,
        "Dashboard: the progress of a long operation started by this user.",
        get(job_page),
    )]
}

/// How many jobs an instance remembers.
const KEEP: usize = 50;

#[derive(Debug, Clone)]
pub enum JobKind {
    Import { gateway: Gateway, name: String },
    Run { date: NaiveDate, gateway: Gateway },
}

/// How a job ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Imported { lines: i64, sha256: String },
    Ran,
    Failed { status: StatusCode, message: String, file: Option<FileError> },
}

pub struct Job {
    pub id: String,
    /// The user who started it: nobody else sees it.
    owner: String,
    pub kind: JobKind,
    started: Instant,
    /// An estimate of the lines to go through (0: unknown).
    total: u64,
    done: AtomicU64,
    /// The import went from reading the file to writing its lines.
    writing: AtomicBool,
    /// A run's phase: 0 reading, 1 matching, 2 saving (`RunPhase`); `done` counts its rows.
    run_phase: AtomicU8,
    outcome: Mutex<Option<Outcome>>,
}

impl Job {
    /// Progress reported by an import: lines read, then (counting again from the start) lines
    /// written.
    pub fn progress(&self, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        if n < self.done.load(Ordering::Relaxed) {
            self.writing.store(true, Ordering::Relaxed);
        }
        self.done.store(n, Ordering::Relaxed);
    }

    /// Progress reported by a run: its phase, and the rows it matches or the items it saves.
    pub fn run_phase(&self, p: RunPhase) {
        let (code, n) = match p {
            RunPhase::Reading => (0, 0),
            RunPhase::Matching { rows } => (1, rows),
            RunPhase::Saving { items } => (2, items),
        };
        self.run_phase.store(code, Ordering::Relaxed);
        self.done.store(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn finish(&self, outcome: Outcome) {
        *self.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
    }

    /// A failed job, from the service's error.
    pub fn fail(&self, lang: i18n::Lang, e: FinanceError) {
        let file = match &e {
            FinanceError::File { error, .. } => Some(error.clone()),
            _ => None,
        };
        let (status, message) = finance_status(lang, e);
        self.finish(Outcome::Failed { status, message, file });
    }

    fn outcome(&self) -> Option<Outcome> {
        self.outcome.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The jobs of this instance.
#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<Vec<Arc<Job>>>,
}

impl Jobs {
    /// Registers a job for `owner`; the caller spawns the work.
    pub fn start(&self, owner: &str, kind: JobKind, total: u64) -> Arc<Job> {
        let job = Arc::new(Job {
            id: new_id("job"),
            owner: owner.to_owned(),
            kind,
            started: Instant::now(),
            total,
            done: AtomicU64::new(0),
            writing: AtomicBool::new(false),
            run_phase: AtomicU8::new(0),
            outcome: Mutex::new(None),
        });
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if jobs.len() >= KEEP {
            // Forget the oldest finished job (or the oldest job, if none has finished).
            let at = jobs.iter().position(|j| j.outcome().is_some()).unwrap_or(0);
            jobs.remove(at);
        }
        jobs.push(job.clone());
        job
    }

    fn get(&self, id: &str, owner: &str) -> Option<Arc<Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|j| j.id == id && j.owner == owner).cloned()
    }
}

#[derive(Template)]
#[template(path = "dashboard/job.html")]
struct JobPage {
    l: Layout,
    running: bool,
    heading: String,
    phase: &'static str,
    done: u64,
    done_label: String,
    total: u64,
    elapsed: String,
    ok: Option<String>,
    error: Option<String>,
    file_error: Option<(String, String, String)>,
    back_href: String,
    back_label: &'static str,
}

async fn job_page(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let lang = v.lang;
    let t = lang.texts();
    let job = state
        .dashboard
        .jobs
        .get(&id, &v.user_id)
        .ok_or_else(|| PageError::user(&v, StatusCode::NOT_FOUND, &format!("no job {id}")))?;
    let outcome = job.outcome();
    let (heading, back_href, back_label) = match &job.kind {
        JobKind::Import { gateway, name } => (
            format!("{} {name} ({})", t.job_import, i18n::word(lang, gateway.as_str())),
            "/settlements".to_owned(),
            t.nav_settlements,
        ),
        JobKind::Run { date, gateway } => (
            format!("{} {} · {}", t.job_run, i18n::date(*date), i18n::word(lang, gateway.as_str())),
            format!("/days/{date}?gateway={gateway}"),
            t.open_day,
        ),
    };
    if let (Some(Outcome::Ran), JobKind::Run { .. }) = (&outcome, &job.kind) {
        return Ok(Redirect::to(&back_href).into_response());
    }
    let done = job.done.load(Ordering::Relaxed);
    let status = match &outcome {
        Some(Outcome::Failed { status, .. }) => *status,
        _ => StatusCode::OK,
    };
    let (ok, error, file_error) = match outcome.clone() {
        None | Some(Outcome::Ran) => (None, None, None),
        Some(Outcome::Imported { lines, sha256 }) => (
            Some(format!("{}: {} {} · SHA-256 {sha256}", t.job_done_import, lang.count(lines), t.lines_unit)),
            None,
            None,
        ),
        Some(Outcome::Failed { message, file, .. }) => {
            (None, Some(message), file.map(|f| (f.line.to_string(), f.field.unwrap_or_default(), f.reason)))
        }
    };
    let (phase, unit) = match (&job.kind, job.writing.load(Ordering::Relaxed)) {
        (JobKind::Import { .. }, false) => (t.job_reading, t.lines_unit),
        (JobKind::Import { .. }, true) => (t.job_writing, t.lines_unit),
        (JobKind::Run { .. }, _) => match job.run_phase.load(Ordering::Relaxed) {
            0 => (t.job_run_reading, t.rows_unit),
            1 => (t.job_run_matching, t.rows_unit),
            _ => (t.job_run_saving, t.items_unit),
        },
    };
    let page = JobPage {
        l: Layout::of(&v, "", heading.clone()),
        running: outcome.is_none(),
        heading,
        phase,
        done: done.min(job.total),
        done_label: format!("{} {unit}", lang.count(i64::try_from(done).unwrap_or(i64::MAX))),
        total: job.total,
        elapsed: format!("{} {} {}", t.elapsed, job.started.elapsed().as_secs(), t.seconds),
        ok,
        error,
        file_error,
        back_href,
        back_label,
    };
    Ok(render(status, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_import_reads_then_writes_and_its_job_says_which() {
        let jobs = Jobs::default();
        let job = jobs.start("usr_1", JobKind::Import { gateway: Gateway::Vnpay, name: "f.csv".into() }, 300_000);
        job.progress(100_000);
        job.progress(200_000);
        assert!(!job.writing.load(Ordering::Relaxed), "still reading");
        job.progress(5_000);
        assert!(job.writing.load(Ordering::Relaxed), "the count started again: writing");
        assert_eq!(job.done.load(Ordering::Relaxed), 5_000);
        assert!(jobs.get(&job.id, "usr_1").is_some());
        assert!(jobs.get(&job.id, "usr_2").is_none(), "only its owner sees a job");
        job.finish(Outcome::Ran);
        assert!(job.outcome().is_some());
        let run = jobs.start("usr_1", JobKind::Run { date: NaiveDate::MIN, gateway: Gateway::Momo }, 0);
        run.run_phase(RunPhase::Matching { rows: 1_200 });
        assert_eq!((run.run_phase.load(Ordering::Relaxed), run.done.load(Ordering::Relaxed)), (1, 1_200));
        run.run_phase(RunPhase::Saving { items: 900 });
        assert_eq!((run.run_phase.load(Ordering::Relaxed), run.done.load(Ordering::Relaxed)), (2, 900));
    }

    #[test]
    fn an_instance_keeps_the_last_jobs_only() {
        let jobs = Jobs::default();
        let first = jobs.start("u", JobKind::Run { date: NaiveDate::MIN, gateway: Gateway::Momo }, 0);
        first.finish(Outcome::Ran);
        for _ in 0..KEEP {
            jobs.start("u", JobKind::Run { date: NaiveDate::MIN, gateway: Gateway::Momo }, 0);
        }
        assert!(jobs.get(&first.id, "u").is_none(), "the oldest finished job is forgotten first");
        assert_eq!(jobs.jobs.lock().unwrap().len(), KEEP);
    }
}
