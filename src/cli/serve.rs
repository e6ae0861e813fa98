//! `serve` and `simulate-gateway`.

use std::sync::Arc;

use anyhow::Context as _;

use super::{CliError, user_err};
use crate::config::Config;
use crate::domain::SystemClock;

pub(super) async fn serve(config: Config) -> Result<(), CliError> {
    // A bad policy or catalogue is the operator's to fix: exit 1 with file, line and reason.
    let fees = crate::fees::FeeEngine::load(&config.catalogue, &config.policy).map_err(|e| user_err(e.to_string()))?;
    let overrides = crate::http::Overrides { fees: Some(Arc::new(fees)), ..Default::default() };
    let app = crate::http::Application::build(config, overrides).await.map_err(|e| match e
        .downcast_ref::<crate::http::StartupRefused>()
    {
        Some(r) => user_err(r.0.clone()),
        None => CliError::Internal(e),
    })?;
    let addr = app.local_addr().context("Failed to read the listening address")?;
    tracing::info!(%addr, "feerecon listening on http://{addr}");
    app.run_until_stopped(crate::http::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

pub(super) async fn simulate(config: &Config, listen: &str, vnpay_ipn_url: Option<String>) -> Result<(), CliError> {
    let addr: std::net::SocketAddr =
        listen.parse().map_err(|_| user_err(format!("--listen: {listen:?} is not an address like 127.0.0.1:9090")))?;
    let mut sim_config = crate::simulator::SimConfig::from_config(config);
    sim_config.vnpay_ipn_url = vnpay_ipn_url;
    if sim_config.vnpay.is_none()
        && sim_config.momo.is_none()
        && sim_config.zalopay.is_none()
        && sim_config.dvcqg.is_none()
    {
        return Err(user_err(
            "no gateway credentials: set FEERECON_VNPAY_TMN_CODE and FEERECON_VNPAY_HASH_SECRET (or the MoMo / ZaloPay / DVCQG variables)",
        ));
    }
    // Binding is the only I/O of start-up: an address in use is the operator's to fix (exit 1).
    let sim = crate::simulator::Simulator::start(sim_config, addr, Arc::new(SystemClock)).await.map_err(|e| {
        match e.downcast_ref::<std::io::Error>() {
            Some(io) => user_err(format!("--listen: cannot listen on {addr}: {io}")),
            None => CliError::Internal(e),
        }
    })?;
    outln!("gateway simulator on {}", sim.url())?;
    outln!(
        "  VNPAY pay URL:   {}/paymentv2/vpcpay.html   API: {}/merchant_webapi/api/transaction",
        sim.url(),
        sim.url()
    )?;
    outln!("  MoMo endpoint:   {}   (/v2/gateway/api/create, /query)", sim.url())?;
    outln!("  ZaloPay endpoint: {}   (/v2/create, /v2/query)", sim.url())?;
    outln!(
        "  DVCQG URLs:      {0}/dvcqg/init, {0}/dvcqg/query, {0}/dvcqg/bill; callbacks to FEERECON_PUBLIC_URL/gateway/dvcqg/callback",
        sim.url()
    )?;
    outln!(
        "  faults: POST {}/sim/pay {{\"txn_ref\", \"outcome\", \"faults\": {{\"duplicates\", \"delay_ms\", \"reorder\", \"forged\", \"lost\", \"wrong_amount_by\"}}}}",
        sim.url()
    )?;
    outln!(
        "  settlement files: POST {}/sim/settlement {{\"gateway\", \"date\", \"profile\", \"discrepancies\"}}, or `feerecon settlement simulate --simulator {}`",
        sim.url(),
        sim.url()
    )?;
    crate::http::shutdown_signal().await;
    Ok(())
}
