//! The `feerecon` command: clap subcommands over the library.
//!
//! Exit codes (SPEC §3.2): 0 on success and for `--help`/`--version`; 1 on a user error (bad
//! flags, a bad file, an unknown user), with one line saying what and where; 2 on an internal
//! error. Results go to standard output, progress and logs to standard error.
//!
//! This file holds the command line's shape (clap), the exit codes and the dispatch; each area's
//! commands live in their file: `demo` (the whole day on the embedded default), `serve` (the
//! server, the simulator), `cases` (case imports,
//! quotes, policy checks), `finance` (settlement imports, reconciliation), `ledger` (export,
//! verify), `receipts` (the day's receipt summary), `remittance` (a period's treasury remittance
//! statement), `admin` (users and tokens); `output` checks `--out` before any work.

/// `println!` for commands: through `output::line`, to be followed by `?` (a closed standard
/// output ends the command with exit 0).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::line(format_args!($($arg)*))
    };
}

mod admin;
mod cases;
mod demo;
mod finance;
mod ledger;
mod output;
mod receipts;
mod remittance;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::domain::{Clock, SystemClock};
use crate::store::{OpenMode, PoolLimits, Store, StoreError};

#[derive(Parser, Debug)]
#[command(
    name = "feerecon",
    version,
    about = "Fees for online public services: quotes, gateway payments, reconciliation and an auditable ledger."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Who is acting, for the audit log of imports and reconciliation runs (default: the login
    /// name, from $USER, $LOGNAME or the system).
    #[arg(long, global = true, value_name = "NAME")]
    pub operator: Option<String>,
}

/// The operator the audit log names for a CLI action: `--operator`, else the login name.
pub(super) fn operator(given: Option<&str>) -> Result<String, CliError> {
    if given.is_some_and(|g| g.trim().is_empty()) {
        return Err(user_err("--operator is blank: pass the name of the person acting"));
    }
    let from_env = || ["USER", "LOGNAME"].iter().find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()));
    let name = given
        .map(str::to_owned)
        .or_else(from_env)
        .or_else(|| whoami::fallible::username().ok())
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    name.ok_or_else(|| user_err("--operator: no login name found ($USER, $LOGNAME); pass --operator NAME"))
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Play a whole business day on a fresh embedded database: cases, payments on the three
    /// simulated gateways with faults, settlement files, reconciliation, four-eyes resolutions,
    /// the close, the ledger exported and verified; then serve the dashboard until Ctrl-C.
    Demo(DemoArgs),
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
        /// vnpay, momo, zalopay or dvcqg.
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
    /// E-receipts: the day's summary for the tax office (Mẫu 01/TH-BLĐT).
    Receipts {
        #[command(subcommand)]
        action: ReceiptsCommand,
    },
    /// Treasury remittance: a period's statement of collected fees by budget sub-item.
    Remittance {
        #[command(subcommand)]
        action: RemittanceCommand,
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
pub struct DemoArgs {
    /// The business date to play, YYYY-MM-DD (Asia/Ho_Chi_Minh); default today.
    #[arg(long)]
    pub date: Option<String>,
    /// Stop after printing the summary instead of serving the dashboard.
    #[arg(long)]
    pub exit: bool,
    /// Keep the demo folder's database from an earlier run and play this date on top of it.
    #[arg(long)]
    pub keep: bool,
    /// The demo folder: its database, ledger key, settlement files, export and summary.json.
    #[arg(long, default_value = "feerecon-demo")]
    pub dir: PathBuf,
    /// How many cases the portal files (10 to 5000).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u16).range(10..=5000))]
    pub cases: u16,
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
        /// The first business date, YYYY-MM-DD (Asia/Ho_Chi_Minh).
        #[arg(long)]
        from: String,
        /// The last business date, YYYY-MM-DD, inclusive.
        #[arg(long)]
        to: String,
        /// The folder to write entries.csv and manifest.json into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify an export offline (no database): chain, balances, totals, signatures, both ends signed. Exit 1 names
    /// the first bad seq.
    Verify {
        /// The export's folder (entries.csv and manifest.json).
        dir: PathBuf,
        /// Pin the public key (hex, or the JSON of GET /api/v1/ledger/public-key) the checkpoints must be signed with.
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReceiptsCommand {
    /// The receipts issued on a date, in the columns of Mẫu 01/TH-BLĐT, checked against the ledger.
    Summary {
        /// YYYY-MM-DD (Asia/Ho_Chi_Minh): the date of issue.
        #[arg(long)]
        date: String,
        /// json, csv or xlsx.
        #[arg(long, default_value = "json", value_parser = ["json", "csv", "xlsx"])]
        format: String,
        /// Write to this file instead of standard output (required for xlsx).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum RemittanceCommand {
    /// A period's remittance statement (the C1-02/NS data by budget sub-item), from the ledger.
    Statement {
        /// YYYY-MM (a month), YYYY-Www (an ISO week) or YYYY-MM-DD (a day), in Asia/Ho_Chi_Minh.
        #[arg(long)]
        period: String,
        /// json, csv or xlsx.
        #[arg(long, default_value = "json", value_parser = ["json", "csv", "xlsx"])]
        format: String,
        /// Write to this file instead of standard output (required for xlsx).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `settlement import --help`: the canonical file format (SPEC §7.1), so an operator need not
/// open SPEC.md to write or check a file.
const SETTLEMENT_FORMAT: &str = "\
The canonical settlement file (--profile canonical, SPEC §7.1):
  encoding   UTF-8, with or without a BOM; comma-separated; one header line, then one line per
             transaction
  header     exactly: gateway_txn_no,txn_ref,amount,fee,txn_time,status
             (another order, spelling, a missing or an extra column is refused on line 1)
  columns    gateway_txn_no  the gateway's transaction number
             txn_ref         our payment reference (the payment's txn_ref)
             amount          whole đồng, digits only, never negative (115000, not 115.000 or 115000.00)
             fee             the gateway's fee in whole đồng, digits only (0 when none)
             txn_time        YYYY-MM-DD HH:MM:SS in Asia/Ho_Chi_Minh, or RFC 3339 with an offset
             status          success or refund (a refund is a line whose status is refund)
  example    gateway_txn_no,txn_ref,amount,fee,txn_time,status
             14512345,240715K7Q2M9XW4R,115000,1100,2024-07-15 10:02:11,success

A gateway's own profile (vnpay, momo, zalopay, dvcqg in fixtures/settlement-profiles/, or
FEERECON_SETTLEMENT_PROFILES) maps that gateway's columns, encoding, delimiter, thousands
separator and amount scale to these fields, and reads only that gateway's files. A header-only
file is a valid day with no transactions. A bad line fails the whole file with its line number,
field and reason (exit 1); the same bytes (SHA-256) are refused the second time.";

#[derive(Subcommand, Debug)]
pub enum SettlementCommand {
    /// Import a gateway's settlement file (all or nothing; a file is imported once).
    #[command(after_long_help = SETTLEMENT_FORMAT)]
    Import {
        /// The gateway whose file it is: vnpay, momo, zalopay or dvcqg.
        #[arg(long)]
        gateway: String,
        /// A profile name in FEERECON_SETTLEMENT_PROFILES, `canonical`, or a path to a profile.
        #[arg(long)]
        profile: String,
        /// The settlement file, as the gateway's portal exports it.
        file: PathBuf,
    },
    /// Ask a running gateway simulator (`simulate-gateway`) for a gateway's settlement file of
    /// a date, in the gateway's profile format (or --profile).
    Simulate {
        /// The simulator's base URL.
        #[arg(long, default_value = "http://127.0.0.1:9090")]
        simulator: String,
        /// vnpay, momo, zalopay or dvcqg.
        #[arg(long)]
        gateway: String,
        /// YYYY-MM-DD (Asia/Ho_Chi_Minh).
        #[arg(long)]
        date: String,
        /// A profile name (`canonical`, or one in the simulator's profiles folder); default the gateway's.
        #[arg(long)]
        profile: Option<String>,
        /// Write the file here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate a policy file (and its includes) against the catalogue.
    Check {
        /// The policy file (TOML); its includes are read from beside it.
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
        /// The user's name (login name for people), e.g. lan.finance.
        #[arg(long)]
        name: String,
        /// portal, finance, auditor or admin.
        #[arg(long)]
        role: String,
    },
    /// List users: name, role, whether they can log in, their tokens (active, revoked, expired)
    /// and when they were added. Never a password or a token's secret.
    List,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token for a user; prints its id, then the token alone on the last line (shown once).
    Create {
        /// The user the token acts as (`user list` names them).
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
    /// Revoke a token at once. Revoking one already revoked changes nothing, says when it was
    /// revoked, and exits 0 (the token is revoked, as asked); an unknown id exits 1.
    Revoke {
        /// The token id, as `token list` shows it.
        id: String,
    },
}

/// How a command ends early: the user's error (exit 1), ours (exit 2), or a closed standard
/// output (exit 0, nothing said: whoever read the output has gone, as after `| head -1`).
#[derive(Debug)]
pub enum CliError {
    User(String),
    Internal(anyhow::Error),
    Closed,
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

pub(super) fn user_err(msg: impl Into<String>) -> CliError {
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
                    eprintln!("{} (see --help)", one_line(&e.to_string()));
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
        Err(CliError::Closed) => ExitCode::SUCCESS,
    }
}

/// Clap's error as one line: its first paragraph, whose later lines (the names of missing
/// arguments, one per line) follow the first joined by commas; the usage and tips are left out.
fn one_line(text: &str) -> String {
    let mut lines = text.lines().map(str::trim).take_while(|l| !l.is_empty());
    let first = lines.next().unwrap_or("error: invalid arguments").to_owned();
    let rest: Vec<&str> = lines.collect();
    if rest.is_empty() { first } else { format!("{first} {}", rest.join(", ")) }
}

pub(super) fn load_config() -> Result<Config, CliError> {
    Config::from_env().map_err(|e| user_err(format!("configuration: {e}")))
}

/// The database, for every command but `serve` and `migrate`: it must exist already (a command
/// that reads or adds to it never makes an empty one).
pub(super) async fn open_store(config: &Config) -> Result<Store, CliError> {
    connect(config, OpenMode::Existing).await
}

/// How long a command waits for an unreachable database before it gives up (exit 1).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Connects and applies pending migrations.
async fn connect(config: &Config, mode: OpenMode) -> Result<Store, CliError> {
    let limits = PoolLimits { connect_timeout: CONNECT_TIMEOUT, ..PoolLimits::default() };
    let store = Store::connect_with(config.database_url.expose(), limits, mode).await.map_err(|e| {
        match e {
            StoreError::Connect(_) => user_err(config.about_database(&e)),
            StoreError::Missing(path) => user_err(format!(
                "FEERECON_DATABASE_URL: the database {path} does not exist; create it with `feerecon migrate` (or start `feerecon serve`) first"
            )),
            other => CliError::Internal(anyhow::Error::new(other).context("Failed to open the database")),
        }
    })?;
    store.migrate().await.context("Failed to apply migrations")?;
    Ok(store)
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    // Verifying an export needs nothing but the files.
    if let Command::Ledger { action: LedgerCommand::Verify { dir, public_key } } = &cli.command {
        return ledger::ledger_verify(dir, public_key.as_deref());
    }
    // The demo makes its own configuration (its database, secrets and ports).
    if let Command::Demo(args) = cli.command {
        return demo::demo(args).await;
    }
    if let Command::Settlement { action: SettlementCommand::Simulate { simulator, gateway, date, profile, out } } =
        &cli.command
    {
        return finance::settlement_simulate(simulator, gateway, date, profile.as_deref(), out.as_deref()).await;
    }
    let config = load_config()?;
    let quiet = if matches!(cli.command, Command::Serve) { "info" } else { "warn" };
    crate::telemetry::init(config.log_format, quiet);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command {
        Command::Demo(_) | Command::Settlement { action: SettlementCommand::Simulate { .. } } => Ok(()),
        Command::Serve => serve::serve(config).await,
        Command::Migrate => {
            connect(&config, OpenMode::Create).await?;
            outln!("migrations applied")?;
            Ok(())
        }
        Command::Import { what: ImportCommand::Cases { file } } => {
            cases::import_cases(&config, &*clock, &file, &operator(cli.operator.as_deref())?).await
        }
        Command::Quote(args) => cases::quote(&config, args).await,
        Command::Settlement { action: SettlementCommand::Import { gateway, profile, file } } => {
            finance::settlement_import(&config, &*clock, &gateway, &profile, &file, &operator(cli.operator.as_deref())?)
                .await
        }
        Command::Reconcile { date, gateway, format, out } => {
            let who = operator(cli.operator.as_deref())?;
            finance::reconcile(&config, clock, &date, &gateway, &format, out, &who).await
        }
        Command::Ledger { action: LedgerCommand::Export { from, to, out } } => {
            ledger::ledger_export(&config, clock, &from, &to, &out).await
        }
        Command::Ledger { action: LedgerCommand::Verify { .. } } => Ok(()),
        Command::Receipts { action: ReceiptsCommand::Summary { date, format, out } } => {
            receipts::summary(&config, &date, &format, out).await
        }
        Command::Remittance { action: RemittanceCommand::Statement { period, format, out } } => {
            remittance::statement(&config, clock, &period, &format, out).await
        }
        Command::SimulateGateway { listen, vnpay_ipn_url } => serve::simulate(&config, &listen, vnpay_ipn_url).await,
        Command::Policy { action: PolicyCommand::Check { file, catalogue, coverage } } => {
            cases::policy_check(&config, &file, catalogue, &coverage)
        }
        Command::User { action: UserCommand::Add { name, role } } => {
            admin::user_add(&config, &*clock, &operator(cli.operator.as_deref())?, &name, &role).await
        }
        Command::User { action: UserCommand::List } => admin::user_list(&config, &*clock).await,
        Command::Token { action } => {
            let by = match action {
                TokenCommand::List => String::new(),
                _ => operator(cli.operator.as_deref())?,
            };
            admin::token(&config, &*clock, &by, action).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parse_error_keeps_the_names_clap_lists_under_its_first_line() {
        let e = Cli::try_parse_from(["feerecon", "quote", "--procedure", "1.001193"]).unwrap_err();
        let line = one_line(&e.to_string());
        assert!(line.starts_with("error: the following required arguments were not provided: "), "{line}");
        assert!(line.contains("--channel <CHANNEL>, --received <RECEIVED>"), "{line}");
        assert!(!line.contains("Usage"), "{line}");
        let e = Cli::try_parse_from(["feerecon", "frobnicate"]).unwrap_err();
        assert_eq!(one_line(&e.to_string()), "error: unrecognized subcommand 'frobnicate'");
    }

    /// Every subcommand and argument has a line of help (clap derive takes the `///` comment).
    #[test]
    fn every_command_and_argument_says_what_it_is() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if id != "help" && id != "version" && a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} <{id}>"));
                }
            }
            for sub in cmd.get_subcommands() {
                let here = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(here.clone());
                }
                walk(sub, &here, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&<Cli as clap::CommandFactory>::command(), "feerecon", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }
}
