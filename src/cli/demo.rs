//! `demo`: the whole day on the embedded default (SPEC §3.3); the work is in `crate::demo`.

use super::{CliError, user_err};
use crate::domain::BusinessDate;

pub(super) async fn demo(args: super::DemoArgs) -> Result<(), CliError> {
    let date = match &args.date {
        Some(d) => BusinessDate::parse(d).map_err(|e| user_err(format!("--date: {e}")))?,
        None => BusinessDate::of(chrono::Utc::now()),
    };
    let json = std::env::var("FEERECON_LOG_FORMAT").is_ok_and(|f| f.trim() == "json");
    let format = if json { crate::config::LogFormat::Json } else { crate::config::LogFormat::Text };
    crate::telemetry::init(format, "warn");
    let opts =
        crate::demo::Options { date: date.naive(), dir: args.dir, keep: args.keep, cases: usize::from(args.cases) };
    let finished = crate::demo::run(opts, &|k| std::env::var(k).ok()).await.map_err(|e| match e
        .downcast_ref::<crate::demo::UserError>()
    {
        Some(u) => user_err(u.0.clone()),
        None => CliError::Internal(e),
    })?;
    // The dashboard's address and login, also with `--exit` (SPEC §3.3 prints them, then stops).
    finished.print_dashboard(!args.exit);
    if !args.exit {
        crate::http::shutdown_signal().await;
    }
    finished.stop().await?;
    Ok(())
}
