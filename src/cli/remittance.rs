//! `remittance statement`: a period's treasury remittance statement from the command line, as
//! the API serves it (JSON, CSV or XLSX).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use super::output::Sink;
use super::{CliError, open_store, user_err};
use crate::config::Config;
use crate::domain::Clock;
use crate::remittance::statement::Payer;
use crate::remittance::{RemittanceError, Remittances, parse_period, render};

impl From<RemittanceError> for CliError {
    fn from(e: RemittanceError) -> Self {
        match e {
            RemittanceError::Internal(e) => CliError::Internal(e),
            other => CliError::User(other.to_string()),
        }
    }
}

pub(super) async fn statement(
    config: &Config,
    clock: Arc<dyn Clock>,
    period: &str,
    format: &str,
    out: Option<PathBuf>,
) -> Result<(), CliError> {
    let period = parse_period(period).map_err(|e| user_err(format!("--{e}")))?;
    if format == "xlsx" && out.is_none() {
        return Err(user_err("--format xlsx needs --out FILE"));
    }
    let sink = Sink::open(out.as_deref())?;
    let store = open_store(config).await?;
    let service = Remittances {
        store,
        clock,
        settings: config.remittance.clone(),
        payer: Payer {
            name: config.receipts.org_name.clone(),
            tax_code: config.receipts.tax_code.clone(),
            account: config.remittance.payer_account.clone(),
        },
    };
    let s = service.statement(period).await?;
    let bytes = match format {
        "csv" => render::csv(&s),
        "xlsx" => render::xlsx(&s).map_err(|e| CliError::Internal(anyhow::anyhow!("xlsx: {e}")))?,
        _ => format!("{}\n", serde_json::to_string_pretty(&s).context("Failed to write the statement")?).into_bytes(),
    };
    if let Some(path) = sink.write(&bytes)? {
        eprintln!(
            "wrote {} ({}: {} đồng due by {}, {} remitted)",
            path.display(),
            s.period,
            s.total,
            s.deadlines.deposit_by,
            s.standing.remitted
        );
    }
    Ok(())
}
