//! `settlement import` and `reconcile`: the finance service from the command line.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use super::output::Sink;
use super::{CliError, open_store, user_err};
use crate::config::Config;
use crate::domain::{Clock, SystemClock};

pub(super) async fn finance(config: &Config, clock: Arc<dyn Clock>) -> Result<crate::recon::Finance, CliError> {
    let fees = crate::fees::FeeEngine::load(&config.catalogue, &config.policy).map_err(|e| user_err(e.to_string()))?;
    let store = open_store(config).await?;
    let fees = Arc::new(fees);
    // The command line confirms no payment: its issuer has no key, so it could not issue a receipt.
    let issuer = Arc::new(crate::receipts::Issuer::new(config.receipts.clone(), fees.clone(), None));
    Ok(crate::recon::Finance {
        committer: crate::payments::Committer::start(store.clone(), clock.clone(), issuer),
        store,
        fees,
        clock,
        profiles: config.settlement_profiles.clone(),
        key: None,
    })
}

impl From<crate::recon::FinanceError> for CliError {
    fn from(e: crate::recon::FinanceError) -> Self {
        use crate::recon::FinanceError as F;
        match e {
            F::Internal(e) => CliError::Internal(e),
            other => CliError::User(other.to_string()),
        }
    }
}

fn parse_gateway(g: &str) -> Result<crate::domain::payment::Gateway, CliError> {
    g.parse().map_err(|e: crate::domain::UnknownTag| user_err(format!("--gateway: {e}")))
}

pub(super) async fn settlement_import(
    config: &Config,
    clock: &dyn Clock,
    gateway: &str,
    profile: &str,
    file: &std::path::Path,
    operator: &str,
) -> Result<(), CliError> {
    let gateway = parse_gateway(gateway)?;
    let bytes = std::fs::read(file).map_err(|e| user_err(format!("{}: {e}", file.display())))?;
    let name = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
    let f = finance(config, Arc::new(SystemClock)).await?;
    let shown = file.display().to_string();
    let progress = |n: usize| eprintln!("{shown}: {n} lines");
    let _ = clock;
    let imported = f.import(gateway, profile, &name, &bytes, operator, &progress).await?;
    outln!(
        "imported {} ({} lines) for {gateway} as {}; sha256 {}",
        imported.name,
        imported.line_count,
        imported.file_id,
        imported.sha256
    )?;
    Ok(())
}

pub(super) async fn reconcile(
    config: &Config,
    clock: Arc<dyn Clock>,
    date: &str,
    gateway: &str,
    format: &str,
    out: Option<PathBuf>,
    operator: &str,
) -> Result<(), CliError> {
    let date = crate::domain::BusinessDate::parse(date).map_err(|e| user_err(format!("--date: {e}")))?;
    let gateway = parse_gateway(gateway)?;
    if format == "xlsx" && out.is_none() {
        return Err(user_err("--format xlsx needs --out FILE"));
    }
    // Before the run: a report that cannot be written must not leave a run recorded.
    let sink = Sink::open(out.as_deref())?;
    let f = finance(config, clock).await?;
    let view = f.run(date.naive(), gateway, operator).await?;
    let bytes: Vec<u8> = match format {
        "json" => format!("{}\n", serde_json::to_string_pretty(&view.report).unwrap_or_default()).into_bytes(),
        "xlsx" => crate::reconcile::render::xlsx(&view.report)
            .map_err(|e| CliError::Internal(anyhow::anyhow!("xlsx: {e}")))?,
        "csv" => {
            let mut pages = f.csv(date.naive(), gateway).await?;
            let mut out = Vec::new();
            while let Some(chunk) = pages.next().await? {
                out.extend_from_slice(&chunk);
            }
            out
        }
        _ => crate::reconcile::render::text(&view.report).into_bytes(),
    };
    if let Some(path) = sink.write(&bytes)? {
        eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
    }
    Ok(())
}

/// `settlement simulate`: asks a running simulator for a gateway's settlement file of a date.
pub(super) async fn settlement_simulate(
    simulator: &str,
    gateway: &str,
    date: &str,
    profile: Option<&str>,
    out: Option<&std::path::Path>,
) -> Result<(), CliError> {
    let gateway = parse_gateway(gateway)?;
    let date = crate::domain::BusinessDate::parse(date).map_err(|e| user_err(format!("--date: {e}")))?;
    let sink = Sink::open(out)?;
    let url = format!("{}/sim/settlement", simulator.trim_end_matches('/'));
    let body = serde_json::json!({"gateway": gateway, "date": date, "profile": profile});
    let res = reqwest::Client::new()
        .post(&url)
        .json(&body)
        .send()
        .await
        .map_err(|e| user_err(format!("--simulator {simulator}: {}", e.without_url())))?;
    let status = res.status();
    let bytes = res.bytes().await.context("Failed to read the simulator's answer")?;
    if !status.is_success() {
        return Err(user_err(format!("the simulator answered {status}: {}", String::from_utf8_lossy(&bytes))));
    }
    if let Some(path) = sink.write(&bytes)? {
        eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
    }
    Ok(())
}
