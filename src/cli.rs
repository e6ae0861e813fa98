//! The `feerecon` command: clap subcommands over the library.
//!
//! Exit codes (SPEC §3.2): 0 on success and for `--help`/`--version`; 1 on a user error (bad
//! flags, a bad file, an unknown user), with one line saying what and where; 2 on an internal
//! error. Results go to standard output, progress and logs to standard error.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::{Config, parse_duration};
use crate::domain::{Clock, Role, Secret, SystemClock, Timestamp};
use crate::store::{Store, StoreError};

#[derive(Parser, Debug)]
#[command(
    name = "feerecon",
    version,
    about = "Fees for online public services: quotes, gateway payments, reconciliation and an auditable ledger."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (migrates the database first). Configured by FEERECON_* variables.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Import data files.
    Import {
        #[command(subcommand)]
        what: ImportCommand,
    },
    /// Quote what a case owes: a stored case (--case) or given facts (no database needed).
    Quote(QuoteArgs),
    /// Check policy files.
    Policy {
        #[command(subcommand)]
        action: PolicyCommand,
    },
    /// Settlement files.
    Settlement {
        #[command(subcommand)]
        action: SettlementCommand,
    },
    /// Reconcile one business date of one gateway, and print or write the report.
    Reconcile {
        /// YYYY-MM-DD (Asia/Ho_Chi_Minh).
        #[arg(long)]
        date: String,
        /// vnpay, momo or zalopay.
        #[arg(long)]
        gateway: String,
        /// text, json, csv or xlsx.
        #[arg(long, default_value = "text", value_parser = ["text", "json", "csv", "xlsx"])]
        format: String,
        /// Write to this file instead of standard output (required for xlsx).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The ledger: export a date range for auditors, verify an export offline.
    Ledger {
        #[command(subcommand)]
        action: LedgerCommand,
    },
    /// Run the gateway simulator alone (VNPAY, MoMo, ZaloPay on loopback) for integrators.
    /// Credentials come from the same FEERECON_VNPAY_*, FEERECON_MOMO_* and FEERECON_ZALOPAY_* variables.
    SimulateGateway {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: String,
        /// Where VNPAY IPNs go; default: the origin of each payment's vnp_ReturnUrl + /gateway/vnpay/ipn.
        #[arg(long)]
        vnpay_ipn_url: Option<String>,
    },
    /// Manage users (people and machine clients).
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        action: TokenCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// Import cases from a JSON array or a CSV file (UTF-8, BOM allowed). All or nothing.
    Cases {
        /// The file (.json or .csv).
        file: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
pub struct QuoteArgs {
    /// A stored case's code.
    #[arg(long, conflicts_with_all = ["procedure", "channel", "received", "subject", "fact", "unit", "quantity"])]
    pub case: Option<String>,
    /// Procedure code (mã TTHC), e.g. 1.001193.
    #[arg(long, required_unless_present = "case", requires_all = ["channel", "received"])]
    pub procedure: Option<String>,
    /// online_full, online_partial, counter or post.
    #[arg(long)]
    pub channel: Option<String>,
    /// Receipt date, YYYY-MM-DD (Asia/Ho_Chi_Minh).
    #[arg(long)]
    pub received: Option<String>,
    /// A subject tag of the applicant; repeat for several.
    #[arg(long = "subject")]
    pub subject: Vec<String>,
    /// A fact of the case (e.g. late_registration); repeat for several.
    #[arg(long = "fact")]
    pub fact: Vec<String>,
    /// The receiving unit (e.g. 000.00.12.H62); without it, rules scoped to units do not apply.
    #[arg(long)]
    pub unit: Option<String>,
    /// Quantity (copies, pages, persons) for per-unit items; default 1.
    #[arg(long)]
    pub quantity: Option<u32>,
    /// Policy file; default FEERECON_POLICY.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Catalogue file; default FEERECON_CATALOGUE.
    #[arg(long)]
    pub catalogue: Option<PathBuf>,
    /// text or json.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

#[derive(Subcommand, Debug)]
pub enum LedgerCommand {
    /// Write entries.csv and manifest.json for the entries dated FROM..TO, bracketed by checkpoints; the tail is
    /// signed with FEERECON_LEDGER_KEY, which must be the key the ledger recorded.
    Export {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify an export offline (no database): chain, balances, totals, signatures, both ends signed. Exit 1 names
    /// the first bad seq.
    Verify {
        dir: PathBuf,
        /// Pin the public key (hex, or the JSON of GET /api/v1/ledger/public-key) the checkpoints must be signed with.
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum SettlementCommand {
    /// Import a gateway's settlement file (all or nothing; a file is imported once).
    Import {
        #[arg(long)]
        gateway: String,
        /// A profile name in FEERECON_SETTLEMENT_PROFILES, `canonical`, or a path to a profile.
        #[arg(long)]
        profile: String,
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate a policy file (and its includes) against the catalogue.
    Check {
        file: PathBuf,
        /// Catalogue file; default FEERECON_CATALOGUE.
        #[arg(long)]
        catalogue: Option<PathBuf>,
        /// List, for FROM..TO (YYYY-MM-DD, inclusive), each fee item's dates with no base rate
        /// or that no rule touches.
        #[arg(long, num_args = 2, value_names = ["FROM", "TO"])]
        coverage: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user. The password is read from standard input; an empty one makes a machine client.
    Add {
        #[arg(long)]
        name: String,
        /// portal, finance, auditor or admin.
        #[arg(long)]
        role: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token for a user; prints its id, then the token alone on the last line (shown once).
    Create {
        #[arg(long)]
        user: String,
        /// A label to recognise the token by.
        #[arg(long)]
        name: Option<String>,
        /// Lifetime, e.g. 90d or 12h; no expiry unless given.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token at once.
    Revoke {
        /// The token id, as `token list` shows it.
        id: String,
    },
}

/// A command's failure: the user's (exit 1) or ours (exit 2).
#[derive(Debug)]
pub enum CliError {
    User(String),
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::Internal(e)
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => CliError::User(m),
            other => CliError::Internal(anyhow::Error::new(other)),
        }
    }
}

fn user_err(msg: impl Into<String>) -> CliError {
    CliError::User(msg.into())
}

/// Parses the arguments, runs the command and returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                        ExitCode::from(1)
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                _ => {
                    let text = e.to_string();
                    let first = text.lines().next().unwrap_or("invalid arguments");
                    eprintln!("{first} (see --help)");
                    ExitCode::from(1)
                }
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::User(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(1)
        }
        Err(CliError::Internal(e)) => {
            eprintln!("internal error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn load_config() -> Result<Config, CliError> {
    Config::from_env().map_err(|e| user_err(format!("configuration: {e}")))
}

async fn open_store(config: &Config) -> Result<Store, CliError> {
    let store = Store::connect(config.database_url.expose()).await.context("Failed to open the database")?;
    store.migrate().await.context("Failed to apply migrations")?;
    Ok(store)
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    // Verifying an export needs nothing but the files.
    if let Command::Ledger { action: LedgerCommand::Verify { dir, public_key } } = &cli.command {
        return ledger_verify(dir, public_key.as_deref());
    }
    let config = load_config()?;
    let quiet = if matches!(cli.command, Command::Serve) { "info" } else { "warn" };
    crate::telemetry::init(config.log_format, quiet);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let store = Store::connect(config.database_url.expose()).await.context("Failed to open the database")?;
            store.migrate().await.context("Failed to apply migrations")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Import { what: ImportCommand::Cases { file } } => import_cases(&config, &*clock, &file).await,
        Command::Quote(args) => quote(&config, args).await,
        Command::Settlement { action: SettlementCommand::Import { gateway, profile, file } } => {
            settlement_import(&config, &*clock, &gateway, &profile, &file).await
        }
        Command::Reconcile { date, gateway, format, out } => {
            reconcile(&config, clock, &date, &gateway, &format, out).await
        }
        Command::Ledger { action: LedgerCommand::Export { from, to, out } } => {
            ledger_export(&config, clock, &from, &to, &out).await
        }
        Command::Ledger { action: LedgerCommand::Verify { .. } } => Ok(()),
        Command::SimulateGateway { listen, vnpay_ipn_url } => simulate(&config, &listen, vnpay_ipn_url).await,
        Command::Policy { action: PolicyCommand::Check { file, catalogue, coverage } } => {
            let catalogue = catalogue.unwrap_or_else(|| config.catalogue.clone());
            let range = match coverage.as_slice() {
                [] => None,
                [from, to] => {
                    let d = |s: &str| {
                        crate::domain::BusinessDate::parse(s)
                            .map(crate::domain::BusinessDate::naive)
                            .map_err(|e| user_err(format!("--coverage: {e}")))
                    };
                    let (from, to) = (d(from)?, d(to)?);
                    if to < from {
                        return Err(user_err(format!("--coverage: {to} is before {from}")));
                    }
                    Some((from, to))
                }
                _ => return Err(user_err("--coverage takes two dates: FROM TO")),
            };
            let cat = crate::fees::Catalogue::load(&catalogue).map_err(|e| user_err(e.to_string()))?;
            let policy = crate::fees::Policy::load(&file, &cat).map_err(|e| user_err(e.to_string()))?;
            // A rule whose basis is not verified is applied, but finance must know it.
            for w in policy.warnings() {
                eprintln!("warning: {w}");
            }
            println!(
                "ok: policy {} ({}): {} rules from {} file(s), catalogue {} ({} procedures); hash {}",
                policy.id,
                policy.name,
                policy.rules.len(),
                policy.files.len(),
                catalogue.display(),
                cat.procedures.len(),
                policy.hash
            );
            if let Some((from, to)) = range {
                let gaps = crate::fees::FeeEngine::new(cat, policy).coverage(from, to);
                println!("coverage {from}..{to}: {} gap(s)", gaps.len());
                for g in gaps {
                    println!("  {g}");
                }
            }
            Ok(())
        }
        Command::User { action: UserCommand::Add { name, role } } => user_add(&config, &*clock, &name, &role).await,
        Command::Token { action } => token(&config, &*clock, action).await,
    }
}

async fn serve(config: Config) -> Result<(), CliError> {
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

async fn finance(config: &Config, clock: Arc<dyn Clock>) -> Result<crate::recon::Finance, CliError> {
    let fees = crate::fees::FeeEngine::load(&config.catalogue, &config.policy).map_err(|e| user_err(e.to_string()))?;
    let store = open_store(config).await?;
    Ok(crate::recon::Finance {
        committer: crate::payments::Committer::start(store.clone(), clock.clone()),
        store,
        fees: Arc::new(fees),
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

async fn settlement_import(
    config: &Config,
    clock: &dyn Clock,
    gateway: &str,
    profile: &str,
    file: &std::path::Path,
) -> Result<(), CliError> {
    let gateway = parse_gateway(gateway)?;
    let bytes = std::fs::read(file).map_err(|e| user_err(format!("{}: {e}", file.display())))?;
    let name = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
    let f = finance(config, Arc::new(SystemClock)).await?;
    let shown = file.display().to_string();
    let progress = |n: usize| eprintln!("{shown}: {n} lines");
    let _ = clock;
    let imported = f.import(gateway, profile, &name, &bytes, "cli", &progress).await?;
    println!(
        "imported {} ({} lines) for {gateway} as {}; sha256 {}",
        imported.name, imported.line_count, imported.file_id, imported.sha256
    );
    Ok(())
}

async fn reconcile(
    config: &Config,
    clock: Arc<dyn Clock>,
    date: &str,
    gateway: &str,
    format: &str,
    out: Option<PathBuf>,
) -> Result<(), CliError> {
    let date = crate::domain::BusinessDate::parse(date).map_err(|e| user_err(format!("--date: {e}")))?;
    let gateway = parse_gateway(gateway)?;
    if format == "xlsx" && out.is_none() {
        return Err(user_err("--format xlsx needs --out FILE"));
    }
    let f = finance(config, clock).await?;
    let view = f.run(date.naive(), gateway, "cli").await?;
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
    match out {
        Some(path) => {
            std::fs::write(&path, &bytes).map_err(|e| user_err(format!("--out {}: {e}", path.display())))?;
            eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
        }
        None => {
            std::io::stdout().write_all(&bytes).context("Failed to write the report")?;
        }
    }
    Ok(())
}

async fn ledger_export(
    config: &Config,
    clock: Arc<dyn Clock>,
    from: &str,
    to: &str,
    out: &std::path::Path,
) -> Result<(), CliError> {
    let from = crate::domain::BusinessDate::parse(from).map_err(|e| user_err(format!("--from: {e}")))?;
    let to = crate::domain::BusinessDate::parse(to).map_err(|e| user_err(format!("--to: {e}")))?;
    if to < from {
        return Err(user_err("--to is before --from"));
    }
    // The export signs its tail with the ledger's key: FEERECON_LEDGER_KEY, which must be the key
    // the database recorded (never created here).
    let key = crate::ledger::LedgerKey::load(&config.ledger_key)
        .map_err(|e| user_err(format!("FEERECON_LEDGER_KEY: {e} (an export is signed with the ledger's key)")))?;
    let store = open_store(config).await?;
    match store.recorded_ledger_key().await.context("Failed to read the ledger's key")? {
        Some(recorded) if recorded == key.public_hex() => {}
        Some(recorded) => {
            return Err(user_err(format!(
                "FEERECON_LEDGER_KEY: this key's public key {} is not the one the ledger is signed with ({recorded}); export with the ledger's key",
                key.public_hex()
            )));
        }
        None => {
            return Err(user_err(
                "FEERECON_LEDGER_KEY: this database has recorded no ledger key yet (start `serve` once with the key)",
            ));
        }
    }
    let ledger = crate::ledger::Ledger { store, key: Some(Arc::new(key)), clock };
    let e = ledger
        .export(from.naive(), to.naive())
        .await?
        .ok_or_else(|| user_err(format!("no ledger entry is dated {from} to {to}")))?;
    crate::ledger::write_dir(out, &e).map_err(|err| user_err(format!("--out {}: {err}", out.display())))?;
    let m = &e.manifest;
    println!(
        "exported seq {}..{} ({} entries, {} checkpoints) to {}; head {}",
        m.first_seq,
        m.last_seq,
        m.entry_count,
        m.checkpoints.len(),
        out.display(),
        m.head_hash
    );
    Ok(())
}

fn ledger_verify(dir: &std::path::Path, public_key: Option<&std::path::Path>) -> Result<(), CliError> {
    let read =
        |name: &str| std::fs::read(dir.join(name)).map_err(|e| user_err(format!("{}: {e}", dir.join(name).display())));
    let entries = read("entries.csv")?;
    let manifest = read("manifest.json")?;
    let pinned = match public_key {
        None => None,
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|e| user_err(format!("--public-key {}: {e}", p.display())))?;
            let key = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["public_key"].as_str().map(str::to_owned))
                .unwrap_or_else(|| text.trim().to_owned());
            Some(key)
        }
    };
    match crate::ledger::verify::verify(&entries, &manifest, pinned.as_deref()) {
        Ok(v) => {
            println!(
                "ok: {} entries, seq {}..{}, {} signed checkpoints, head {}, key {}",
                v.entries, v.first_seq, v.last_seq, v.checkpoints, v.head_hash, v.public_key
            );
            Ok(())
        }
        Err(f) => Err(user_err(format!("verification failed: {f}"))),
    }
}

async fn simulate(config: &Config, listen: &str, vnpay_ipn_url: Option<String>) -> Result<(), CliError> {
    let addr: std::net::SocketAddr =
        listen.parse().map_err(|_| user_err(format!("--listen: {listen:?} is not an address like 127.0.0.1:9090")))?;
    let mut sim_config = crate::simulator::SimConfig::from_config(config);
    sim_config.vnpay_ipn_url = vnpay_ipn_url;
    if sim_config.vnpay.is_none() && sim_config.momo.is_none() && sim_config.zalopay.is_none() {
        return Err(user_err(
            "no gateway credentials: set FEERECON_VNPAY_TMN_CODE and FEERECON_VNPAY_HASH_SECRET (or the MoMo / ZaloPay variables)",
        ));
    }
    let sim = crate::simulator::Simulator::start(sim_config, addr, Arc::new(SystemClock)).await?;
    println!("gateway simulator on {}", sim.url());
    println!(
        "  VNPAY pay URL:   {}/paymentv2/vpcpay.html   API: {}/merchant_webapi/api/transaction",
        sim.url(),
        sim.url()
    );
    println!("  MoMo endpoint:   {}   (/v2/gateway/api/create, /query)", sim.url());
    println!("  ZaloPay endpoint: {}   (/v2/create, /v2/query)", sim.url());
    println!(
        "  faults: POST {}/sim/pay {{\"txn_ref\", \"outcome\", \"faults\": {{\"duplicates\", \"delay_ms\", \"reorder\", \"forged\", \"lost\", \"wrong_amount_by\"}}}}",
        sim.url()
    );
    crate::http::shutdown_signal().await;
    Ok(())
}

async fn quote(config: &Config, args: QuoteArgs) -> Result<(), CliError> {
    let catalogue = args.catalogue.unwrap_or_else(|| config.catalogue.clone());
    let policy = args.policy.unwrap_or_else(|| config.policy.clone());
    let engine = crate::fees::FeeEngine::load(&catalogue, &policy).map_err(|e| user_err(e.to_string()))?;
    let stored;
    let given_procedure;
    let given_subjects: Vec<crate::domain::Subject>;
    let given_facts: Vec<crate::domain::Fact>;
    let given_unit: Option<crate::domain::UnitCode>;
    let facts = if let Some(code) = &args.case {
        let code = crate::domain::CaseCode::parse(code).map_err(|e| user_err(format!("--case: {e}")))?;
        let store = open_store(config).await?;
        stored = store.get_case(&code).await?.ok_or_else(|| user_err(format!("--case: no case {code}")))?;
        crate::fees::Facts::of_case(&stored.case)
    } else {
        let p = args.procedure.as_deref().unwrap_or_default();
        given_procedure = crate::domain::ProcedureCode::parse(p).map_err(|e| user_err(format!("--procedure: {e}")))?;
        let channel = args
            .channel
            .as_deref()
            .unwrap_or_default()
            .parse::<crate::domain::Channel>()
            .map_err(|e| user_err(format!("--channel: {e}")))?;
        let as_of = crate::domain::BusinessDate::parse(args.received.as_deref().unwrap_or_default())
            .map_err(|e| user_err(format!("--received: {e}")))?;
        given_subjects = args
            .subject
            .iter()
            .map(|s| s.parse::<crate::domain::Subject>().map_err(|e| user_err(format!("--subject: {e}"))))
            .collect::<Result<_, _>>()?;
        given_facts = args
            .fact
            .iter()
            .map(|s| s.parse::<crate::domain::Fact>().map_err(|e| user_err(format!("--fact: {e}"))))
            .collect::<Result<_, _>>()?;
        given_unit = args
            .unit
            .as_deref()
            .map(|u| crate::domain::UnitCode::parse(u).map_err(|e| user_err(format!("--unit: {e}"))))
            .transpose()?;
        let quantity = args.quantity.unwrap_or(1);
        if !(1..=crate::domain::MAX_QUANTITY).contains(&quantity) {
            return Err(user_err(format!("--quantity: must be 1 to {}", crate::domain::MAX_QUANTITY)));
        }
        crate::fees::Facts {
            case_code: None,
            procedure_code: &given_procedure,
            channel,
            subjects: &given_subjects,
            case_facts: &given_facts,
            receiving_unit: given_unit.as_ref(),
            quantity,
            as_of: as_of.naive(),
        }
    };
    let q = engine.quote(&facts).map_err(|e| user_err(e.to_string()))?;
    if args.format == "json" {
        println!("{}", q.to_json());
    } else {
        print!("{}", q.to_text());
    }
    Ok(())
}

async fn import_cases(config: &Config, clock: &dyn Clock, file: &std::path::Path) -> Result<(), CliError> {
    let catalogue = crate::fees::Catalogue::load(&config.catalogue).map_err(|e| user_err(e.to_string()))?;
    let bytes = std::fs::read(file).map_err(|e| user_err(format!("{}: {e}", file.display())))?;
    let shown = file.display().to_string();
    let progress = |n: usize| eprintln!("{shown}: checked {n} records");
    let known = |p: &crate::domain::ProcedureCode| catalogue.procedure(p).is_some();
    let cases =
        crate::cases::parse_cases(file, &bytes, &known, &progress).map_err(|e| user_err(format!("{shown}: {e}")))?;
    eprintln!("{shown}: {} cases valid; writing", cases.len());
    let store = open_store(config).await?;
    let write_progress = |n: usize| eprintln!("{shown}: wrote {n} of {} cases", cases.len());
    let counts = store.import_cases(&cases, "cli", clock.now(), &write_progress).await?;
    println!(
        "imported {} cases from {shown}: {} created, {} updated, {} unchanged",
        cases.len(),
        counts.created,
        counts.updated,
        counts.unchanged
    );
    Ok(())
}

fn read_password() -> Result<Secret, CliError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password (empty for a machine client that cannot log in): ");
        let _ = std::io::stderr().flush();
    }
    let mut raw = String::new();
    if stdin.is_terminal() {
        stdin.read_line(&mut raw).context("Failed to read the password")?;
    } else {
        stdin.lock().read_to_string(&mut raw).context("Failed to read the password from standard input")?;
    }
    let password = raw.strip_suffix('\n').map(|s| s.strip_suffix('\r').unwrap_or(s)).unwrap_or(&raw);
    Ok(Secret::new(password))
}

async fn user_add(config: &Config, clock: &dyn Clock, name: &str, role: &str) -> Result<(), CliError> {
    crate::auth::check_user_name(name).map_err(user_err)?;
    let role: Role = role.parse().map_err(|e: crate::domain::UnknownTag| user_err(format!("--role: {e}")))?;
    let password = read_password()?;
    let hash = if password.expose().is_empty() {
        None
    } else {
        if password.expose().chars().count() < 12 {
            return Err(user_err("the password must have at least 12 characters (or be empty for a machine client)"));
        }
        let p = password.clone();
        Some(
            tokio::task::spawn_blocking(move || crate::auth::hash_password(&p))
                .await
                .context("password hashing panicked")??,
        )
    };
    let store = open_store(config).await?;
    let user = crate::accounts::add_user(&store, "cli", name, role, hash, clock.now()).await?;
    println!(
        "user {} added with role {}{}",
        user.name,
        user.role,
        if user.password_hash.is_some() { "" } else { " (machine client: no dashboard login)" }
    );
    Ok(())
}

fn show_time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| Timestamp::at(t).to_vn_string())
}

async fn token(config: &Config, clock: &dyn Clock, action: TokenCommand) -> Result<(), CliError> {
    let store = open_store(config).await?;
    match action {
        TokenCommand::Create { user, name, expires } => {
            let expires_at = match expires {
                None => None,
                Some(e) => {
                    let d = parse_duration(&e).map_err(|r| user_err(format!("--expires: {r}")))?;
                    let d = chrono::TimeDelta::from_std(d).map_err(|_| user_err("--expires: too long"))?;
                    Some(clock.now() + d)
                }
            };
            let owner =
                store.user_by_name(&user).await?.ok_or_else(|| user_err(format!("--user: no user named {user:?}")))?;
            let t = crate::auth::new_token();
            crate::accounts::add_token(&store, "cli", &t, &owner, name.as_deref(), clock.now(), expires_at).await?;
            println!("token id: {}", t.id);
            println!("user: {} ({}), expires: {}", owner.name, owner.role, show_time(expires_at));
            println!("{}", t.token.expose());
            Ok(())
        }
        TokenCommand::List => {
            let tokens = store.list_tokens().await?;
            println!("{:<16}  {:<20}  {:<20}  {:<25}  {:<25}  revoked", "id", "user", "label", "created", "expires");
            for t in tokens {
                println!(
                    "{:<16}  {:<20}  {:<20}  {:<25}  {:<25}  {}",
                    t.token_id,
                    t.user_name,
                    t.label.as_deref().unwrap_or("-"),
                    show_time(Some(t.created_at)),
                    show_time(t.expires_at),
                    show_time(t.revoked_at)
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { id } => match crate::accounts::revoke_token(&store, "cli", &id, clock.now()).await? {
            crate::accounts::Revoked::Now => {
                println!("token {id} revoked");
                Ok(())
            }
            crate::accounts::Revoked::Already(at) => {
                println!("token {id} was already revoked at {}", show_time(Some(at)));
                Ok(())
            }
            crate::accounts::Revoked::NoSuchToken => {
                Err(user_err(format!("no token with id {id:?} (see `feerecon token list`)")))
            }
        },
    }
}
