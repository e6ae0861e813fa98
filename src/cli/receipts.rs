//! `receipts summary`: the day's receipt summary for the tax office (Mẫu 01/TH-BLĐT) from the
//! command line, as the API serves it.

use std::path::PathBuf;

use anyhow::Context as _;

use super::output::Sink;
use super::{CliError, open_store, user_err};
use crate::config::Config;
use crate::receipts::{ReceiptError, summary};

impl From<ReceiptError> for CliError {
    fn from(e: ReceiptError) -> Self {
        match e {
            ReceiptError::Internal(e) => CliError::Internal(e),
            other => CliError::User(other.to_string()),
        }
    }
}

pub(super) async fn summary(config: &Config, date: &str, format: &str, out: Option<PathBuf>) -> Result<(), CliError> {
    let date = crate::domain::BusinessDate::parse(date).map_err(|e| user_err(format!("--date: {e}")))?;
    if format == "xlsx" && out.is_none() {
        return Err(user_err("--format xlsx needs --out FILE"));
    }
    let sink = Sink::open(out.as_deref())?;
    let store = open_store(config).await?;
    // Reading issues nothing: the organisation's name and tax code head the summary.
    let collector = crate::receipts::content::Collector {
        name: config.receipts.org_name.clone(),
        tax_code: config.receipts.tax_code.clone(),
    };
    let s = summary::build(&store, &collector, date).await?;
    let bytes = match format {
        "csv" => summary::csv(&s),
        "xlsx" => summary::xlsx(&s).map_err(|e| CliError::Internal(anyhow::anyhow!("xlsx: {e}")))?,
        _ => format!("{}\n", serde_json::to_string_pretty(&s).context("Failed to write the summary")?).into_bytes(),
    };
    if let Some(path) = sink.write(&bytes)? {
        eprintln!(
            "wrote {} ({} receipts, originals {} đồng; ledger {})",
            path.display(),
            s.totals.receipts,
            s.totals.originals,
            if s.ledger.matches { "matches" } else { "DIFFERS" }
        );
    }
    Ok(())
}
