//! `feerecon demo` (SPEC §3.3): one command plays a whole business day on the embedded default
//! and shows it reconciled.
//!
//! The demo makes a fresh SQLite database in its folder (`--keep` keeps an earlier one), picks
//! the embedded province policy with the fewest unverified bases, generates its own gateway,
//! webhook and login secrets, and starts, on free loopback ports, the real server
//! (`http::Application`), the gateway simulator and a small receiver of the portal's
//! notifications, all on one injected clock that starts at 08:30 of `--date` (so a past date, or
//! a start near midnight, plays the same day). Then, through the server's HTTP API and gateway
//! routes only (nothing is written to the database behind the service's back; users and tokens
//! are added through `accounts`, as `feerecon user add` does):
//!
//! 1. `day`: the portal files the cases and creates payments on all three gateways; citizens pay
//!    at the simulator, whose signed callbacks carry the scenario's faults (`scenario`);
//! 2. `books`: each gateway's settlement file of the day, written by the simulator in the
//!    gateway's profile format, is imported and reconciled; two finance users resolve the
//!    exceptions (four eyes); the clock moves past midnight, the next day's file brings the
//!    late line, the day is re-run and closed; the ledger is exported and verified offline;
//! 3. `summary`: every figure is read back from the API and printed, and written to
//!    `summary.json` in the demo folder.
//!
//! Then the server keeps serving (the dashboard's URL and a login are printed) until Ctrl-C, or
//! stops at once with `--exit`.

mod api;
mod books;
mod day;
mod receiver;
pub mod scenario;
mod summary;

pub use summary::Summary;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use chrono::{NaiveDate, TimeDelta};

use crate::config::Config;
use crate::domain::{BusinessDate, Clock, Role, Secret, ShiftedClock};
use crate::fees::FeeEngine;
use crate::http::{Application, Overrides};
use crate::simulator::{SimConfig, Simulator};

/// The gateways the demo's day is played on: the three wallets. DVCQG is left out (it needs the
/// platform's onboarding settings; its own test plays its day, `tests/api/dvcqg.rs`).
const GATEWAYS: &[crate::domain::payment::Gateway] = &[
    crate::domain::payment::Gateway::Vnpay,
    crate::domain::payment::Gateway::Momo,
    crate::domain::payment::Gateway::Zalopay,
];

/// The seed of the demo's scenario: with the date and the case count, it decides the day.
pub const SEED: u64 = 20_240_715;

/// The file that marks a folder as the demo's (so that a re-run may empty it).
const MARKER: &str = ".feerecon-demo";

/// A demo stopped by what the user asked (exit code 1): a folder that is not the demo's, a
/// date already played in a kept database.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UserError(pub String);

/// What `feerecon demo` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    /// The business date to play.
    pub date: NaiveDate,
    /// The demo folder (database, ledger key, settlement files, export, summary).
    pub dir: PathBuf,
    /// Keep the folder's database from an earlier run and play this date on top of it.
    pub keep: bool,
    /// How many cases the portal files.
    pub cases: usize,
}

/// A demo that has played its day, its server still running.
pub struct Finished {
    pub summary: Summary,
    /// The server's base URL.
    pub base: String,
    /// The dashboard login: (user name, password).
    pub login: (String, Secret),
    /// Resolves when the server has stopped (after `stop` is sent).
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    stop: tokio::sync::oneshot::Sender<()>,
    // Kept alive while the server serves: the gateways and the portal it talks to.
    _sim: Simulator,
    _receiver: receiver::Receiver,
}

impl Finished {
    /// Stops the server (requests in flight finish) and waits for it.
    /// Prints the dashboard's address and login; `serving` says whether the server stays up.
    pub fn print_dashboard(&self, serving: bool) {
        self.summary.print_dashboard(&self.base, &self.login, serving);
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.server.await.context("the server task failed")?
    }
}

/// Progress lines, as the day goes. A closed standard output (`feerecon demo | head -1` once
/// `head` has gone) is no failure of the day: it goes on unseen, where `println!` would panic.
pub fn say(line: impl AsRef<str>) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref()).and_then(|()| out.flush());
}

/// The people of the day: the portal (a machine client) and two finance officers.
pub(crate) struct People {
    pub portal: String,
    pub lan: String,
    pub minh: String,
    /// The login printed for the dashboard: (user name, password).
    pub login: (String, Secret),
}

/// What the day's steps share.
pub(crate) struct Ctx {
    pub api: api::Api,
    /// The server's ledger service: the demo writes the end-of-day checkpoint as its worker
    /// would, at once rather than at the worker's next tick (up to 30 s later).
    pub ledger: Arc<crate::ledger::Ledger>,
    pub sim: Simulator,
    pub clock: Arc<ShiftedClock>,
    pub people: People,
    pub date: NaiveDate,
    pub dir: PathBuf,
}

/// Plays the day and returns with the server still serving.
pub async fn run(opts: Options, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Finished> {
    let started = std::time::Instant::now();
    prepare_folder(&opts.dir, opts.keep)?;
    let dir = std::fs::canonicalize(&opts.dir).with_context(|| format!("{}: cannot resolve", opts.dir.display()))?;
    let date = opts.date;
    say(format!("feerecon demo: business date {date}, {} cases, folder {}", opts.cases, dir.display()));

    // The policy: the environment's, or the embedded province policy with the fewest unverified bases.
    let policy = match env("FEERECON_POLICY").filter(|p| !p.trim().is_empty()) {
        Some(p) => PathBuf::from(p),
        None => least_unverified_policy(date, env)?,
    };
    let clock = Arc::new(ShiftedClock::starting_at(at(date, 8, 30)?));
    let secrets = Secrets::generate();
    let receiver = receiver::Receiver::start(secrets.webhook.clone(), clock.clone()).await?;
    let sim_config = SimConfig {
        vnpay: Some((secrets.vnpay_tmn.clone(), secrets.vnpay.expose().to_owned())),
        momo: Some((
            secrets.momo_partner.clone(),
            secrets.momo_access.expose().to_owned(),
            secrets.momo.expose().to_owned(),
        )),
        zalopay: Some((
            secrets.zalopay_app.clone(),
            secrets.zalopay_key1.expose().to_owned(),
            secrets.zalopay_key2.expose().to_owned(),
        )),
        vnpay_ipn_url: None,
        // The demo's day is played on the three wallets' gateways; DVCQG is not enabled in it.
        dvcqg: None,
        dvcqg_callback_url: None,
        profiles: env("FEERECON_SETTLEMENT_PROFILES").filter(|p| !p.trim().is_empty()).map(PathBuf::from),
    };
    let sim = Simulator::start(sim_config, "127.0.0.1:0".parse()?, clock.clone()).await?;
    let config = demo_config(&dir, &policy, &secrets, &sim.url(), &receiver.url(), env)?;
    // A bad policy or catalogue the environment names is the user's to fix (exit 1).
    let fees = Arc::new(FeeEngine::load(&config.catalogue, &config.policy).map_err(|e| UserError(e.to_string()))?);
    say(format!(
        "policy {} ({}), {} rules, hash {}",
        fees.policy.id,
        config.policy.display(),
        fees.policy.rules.len(),
        fees.policy.hash
    ));
    let engine = fees.clone();
    let quote = move |c: &crate::domain::Case| {
        engine.quote(&crate::fees::Facts::of_case(c)).ok().map(|q| (q.citizen_due.dong(), q.budget_due.dong()))
    };
    let engine = fees.clone();
    let corrected = move |c: &crate::domain::Case| {
        let mut subjects = c.subjects.clone();
        subjects.push(crate::domain::Subject::PoorHousehold);
        subjects.sort();
        subjects.dedup();
        let facts = crate::fees::Facts { subjects: &subjects, ..crate::fees::Facts::of_case(c) };
        engine.quote(&facts).ok().map(|q| q.citizen_due.dong())
    };
    let templates = templates()?;
    let seed = SEED ^ u64::try_from(chrono::Datelike::num_days_from_ce(&date)).unwrap_or(0);
    let planned = scenario::cases(date, opts.cases, &templates, seed, &quote)?;
    let scenario = scenario::script(planned, date, seed, &corrected);
    if opts.keep {
        // Checked before the server starts, so that a refused run changes nothing.
        let store = crate::store::Store::connect(config.database_url.expose())
            .await
            .context("Failed to open the kept database")?;
        store.migrate().await.context("Failed to apply migrations")?;
        let refused = refuse_a_played_date(&store, &scenario).await;
        store.close().await;
        refused?;
    }
    let app = Application::build(
        config,
        Overrides { clock: Some(clock.clone()), fees: Some(fees.clone()), ..Default::default() },
    )
    .await?;
    let base = format!("http://{}", app.local_addr().context("Failed to read the server's address")?);
    let store = app.state().store.clone();
    let ledger = app.state().ledger.clone();
    let people = people(&store, &*clock).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    say(format!("server {base}, gateway simulator {}, portal webhook receiver {}", sim.url(), receiver.url()));

    let ctx = Ctx { api: api::Api::new(base.clone())?, ledger, sim, clock, people, date, dir: dir.clone() };
    let played = day::play(&ctx, &scenario).await?;
    let books = books::close_the_day(&ctx, &scenario, &played).await?;
    let summary = summary::read_back(&ctx, &played, &books, &receiver).await?;
    summary.print(started.elapsed());
    std::fs::write(dir.join("summary.json"), serde_json::to_vec_pretty(&summary)?)
        .context("Failed to write summary.json")?;
    let login = (ctx.people.login.0.clone(), ctx.people.login.1.clone());
    Ok(Finished { summary, base, login, server, stop, _sim: ctx.sim, _receiver: receiver })
}

/// `date` at `h:m` in Asia/Ho_Chi_Minh.
fn at(date: NaiveDate, h: u32, m: u32) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    Ok(BusinessDate::new(date).start() + TimeDelta::hours(i64::from(h)) + TimeDelta::minutes(i64::from(m)))
}

/// Makes the folder ready: created, or emptied when it is an earlier demo's (never a folder the
/// demo did not make), or kept with `--keep`.
fn prepare_folder(dir: &Path, keep: bool) -> anyhow::Result<()> {
    let marker = dir.join(MARKER);
    if dir.exists() {
        let empty = std::fs::read_dir(dir).with_context(|| format!("{}: cannot read", dir.display()))?.next().is_none();
        if !empty && !marker.exists() {
            return Err(UserError(format!(
                "{} exists and is not a demo folder (no {MARKER} in it); give another --dir",
                dir.display()
            ))
            .into());
        }
        if keep && !empty {
            return Ok(());
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("{}: cannot empty the demo folder", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    std::fs::write(&marker, "This folder belongs to `feerecon demo`, which empties it on each run without --keep.\n")
        .with_context(|| format!("{}: cannot write", marker.display()))?;
    Ok(())
}

/// With `--keep`, a date already played in the kept database is refused (its cases are there,
/// and paid), and so is a date before the kept ledger's last one: the clock, and the ledger's
/// dates, only go forward.
async fn refuse_a_played_date(store: &crate::store::Store, s: &scenario::Scenario) -> anyhow::Result<()> {
    let refuse =
        |why: String| Err(UserError(format!("{why}; choose a later --date, or drop --keep to start clean")).into());
    if let Some(first) = s.cases.first()
        && store.get_case(&first.case.case_code).await?.is_some()
    {
        return refuse(format!("{} was already played in the kept database", s.date));
    }
    let (head, _) = store.ledger_head().await?;
    if let Some(last) = store.ledger_entries(head - 1, 1).await?.first()
        && last.business_date >= s.date
    {
        return refuse(format!("the kept ledger already holds {}, and {} is not after it", last.business_date, s.date));
    }
    Ok(())
}

/// How a policy ranks for the demo, lowest first: (no budget support in force, bases not verified,
/// fewer rules in force).
type PolicyRank = (bool, usize, std::cmp::Reverse<usize>);

/// The embedded province policy the day is played under: among those whose rules in force on
/// `date` include the budget's support (so that the day can show budget-covered cases, which the
/// demo must), the one with the fewest bases not `verified` among its rules in force (the bases
/// the day's quotes can cite); ties go to the policy with more rules in force (the richer day),
/// then to the name's order. When no policy has support in force on the date (2024–2025), the
/// fewest unverified bases alone decide.
fn least_unverified_policy(date: NaiveDate, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<PathBuf> {
    let catalogue = env("FEERECON_CATALOGUE")
        .filter(|p| !p.trim().is_empty())
        .map_or_else(|| PathBuf::from(crate::embedded::CATALOGUE), PathBuf::from);
    let folder = PathBuf::from(crate::embedded::POLICIES);
    let mut best: Option<(PolicyRank, PathBuf)> = None;
    for name in crate::embedded::list_dir(&folder).unwrap_or_default() {
        if name == "national.toml" {
            continue; // included by the provinces; not a province itself
        }
        let path = folder.join(name);
        let engine = FeeEngine::load(&catalogue, &path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let in_force: Vec<_> = engine
            .policy
            .rules
            .iter()
            .filter(|r| r.effective_from <= date && r.effective_to.is_none_or(|to| date <= to))
            .collect();
        let unverified = in_force.iter().filter(|r| r.basis_status != crate::fees::BasisStatus::Verified).count();
        let support =
            in_force.iter().any(|r| matches!(r.effect, crate::fees::Effect::PayPercent { budget_pays_rest: true, .. }));
        let rank = (!support, unverified, std::cmp::Reverse(in_force.len()));
        if best.as_ref().is_none_or(|(b, _)| rank < *b) {
            best = Some((rank, path));
        }
    }
    best.map(|(_, p)| p).context("no province policy is embedded in this binary")
}

/// The case fixtures embedded in the binary: the templates of the demo's cases.
fn templates() -> anyhow::Result<Vec<crate::domain::Case>> {
    let mut out = Vec::new();
    for name in crate::embedded::CASES {
        let path = Path::new(name);
        let bytes = crate::embedded::read(path)?;
        out.extend(crate::cases::parse_cases(path, &bytes, &|_| true, &|_| {}).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    Ok(out)
}

/// The secrets the demo generates for its own run (SPEC §3.1: only the demo generates secrets).
struct Secrets {
    vnpay_tmn: String,
    vnpay: Secret,
    momo_partner: String,
    momo_access: Secret,
    momo: Secret,
    zalopay_app: String,
    zalopay_key1: Secret,
    zalopay_key2: Secret,
    webhook: Secret,
}

impl Secrets {
    fn generate() -> Self {
        let r = crate::auth::session::random_token;
        Self {
            vnpay_tmn: "FEEDEMO1".into(),
            vnpay: r(),
            momo_partner: "MOMOFEEDEMO".into(),
            momo_access: r(),
            momo: r(),
            zalopay_app: "2553".into(),
            zalopay_key1: r(),
            zalopay_key2: r(),
            webhook: r(),
        }
    }
}

/// The server's configuration: the demo's own database, key, gateways (the simulator), webhook
/// (the receiver) and a short status-query delay; other `FEERECON_*` variables of the
/// environment apply (the catalogue, profiles and receipts), except those naming a database,
/// an address, gateway credentials or a webhook, which are the demo's.
fn demo_config(
    dir: &Path,
    policy: &Path,
    s: &Secrets,
    sim: &str,
    receiver: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Config> {
    let mut vars: std::collections::HashMap<&str, String> = std::collections::HashMap::new();
    vars.insert("FEERECON_DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.join("feerecon-demo.db").display()));
    vars.insert("FEERECON_LISTEN", "127.0.0.1:0".into());
    vars.insert("FEERECON_LEDGER_KEY", dir.join("ledger.key").display().to_string());
    vars.insert("FEERECON_POLICY", policy.display().to_string());
    vars.insert("FEERECON_PENDING_QUERY_AFTER", "2s".into());
    vars.insert("FEERECON_NOTIFY_MAX_BACKOFF", "5s".into());
    vars.insert("FEERECON_VNPAY_TMN_CODE", s.vnpay_tmn.clone());
    vars.insert("FEERECON_VNPAY_HASH_SECRET", s.vnpay.expose().to_owned());
    vars.insert("FEERECON_VNPAY_PAY_URL", format!("{sim}/paymentv2/vpcpay.html"));
    vars.insert("FEERECON_VNPAY_API_URL", format!("{sim}/merchant_webapi/api/transaction"));
    vars.insert("FEERECON_MOMO_PARTNER_CODE", s.momo_partner.clone());
    vars.insert("FEERECON_MOMO_ACCESS_KEY", s.momo_access.expose().to_owned());
    vars.insert("FEERECON_MOMO_SECRET_KEY", s.momo.expose().to_owned());
    vars.insert("FEERECON_MOMO_ENDPOINT", sim.to_owned());
    vars.insert("FEERECON_ZALOPAY_APP_ID", s.zalopay_app.clone());
    vars.insert("FEERECON_ZALOPAY_KEY1", s.zalopay_key1.expose().to_owned());
    vars.insert("FEERECON_ZALOPAY_KEY2", s.zalopay_key2.expose().to_owned());
    vars.insert("FEERECON_ZALOPAY_ENDPOINT", sim.to_owned());
    vars.insert("FEERECON_PORTAL_WEBHOOK_URL", receiver.to_owned());
    vars.insert("FEERECON_PORTAL_WEBHOOK_SECRET", s.webhook.expose().to_owned());
    if env("FEERECON_RECEIPT_ORG_NAME").is_none() && env("FEERECON_RECEIPT_TAX_CODE").is_none() {
        vars.insert("FEERECON_RECEIPT_ORG_NAME", "Đơn vị thu phí (feerecon demo)".into());
        vars.insert("FEERECON_RECEIPT_TAX_CODE", crate::config::PLACEHOLDER_TAX_CODE.into());
    }
    let theirs = |k: &str| {
        let demo_owned = ["FEERECON_VNPAY_", "FEERECON_MOMO_", "FEERECON_ZALOPAY_", "FEERECON_PORTAL_WEBHOOK_"]
            .iter()
            .any(|p| k.starts_with(p))
            || ["FEERECON_DATABASE_URL", "FEERECON_LISTEN", "FEERECON_PUBLIC_URL", "FEERECON_LEDGER_KEY"].contains(&k);
        if demo_owned { None } else { env(k) }
    };
    Config::from_lookup(|k| vars.get(k).cloned().or_else(|| theirs(k)))
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))
}

/// A name not taken yet: `base`, else `base-2`, `base-3`... (a kept database has the earlier
/// run's users, whose passwords this run does not know).
async fn free_name(store: &crate::store::Store, base: &str) -> anyhow::Result<String> {
    for n in 1..1000 {
        let name = if n == 1 { base.to_owned() } else { format!("{base}-{n}") };
        if store.user_by_name(&name).await?.is_none() {
            return Ok(name);
        }
    }
    bail!("no free user name like {base}")
}

/// A password a person can type: four groups of four letters and digits.
fn readable_password() -> Secret {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    let groups: Vec<String> =
        (0..4).map(|_| (0..4).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect()).collect();
    Secret::new(groups.join("-"))
}

/// Adds the portal client and the two finance officers, with a token each; the first officer
/// can also log in to the dashboard.
async fn people(store: &crate::store::Store, clock: &dyn Clock) -> anyhow::Result<People> {
    let now = clock.now();
    let mut tokens = Vec::new();
    let password = readable_password();
    let mut login_name = String::new();
    for (base, role, can_log_in) in
        [("portal", Role::Portal, false), ("lan", Role::Finance, true), ("minh", Role::Finance, false)]
    {
        let name = free_name(store, base).await?;
        let hash = if can_log_in {
            let p = password.clone();
            login_name.clone_from(&name);
            Some(
                tokio::task::spawn_blocking(move || crate::auth::hash_password(&p))
                    .await
                    .context("hashing panicked")??,
            )
        } else {
            None
        };
        let user = crate::accounts::add_user(store, "demo", &name, role, hash, now).await?;
        let t = crate::auth::new_token();
        crate::accounts::add_token(store, "demo", &t, &user, Some("demo"), now, None).await?;
        tokens.push(t.token.expose().to_owned());
    }
    let [portal, lan, minh]: [String; 3] = tokens.try_into().map_err(|_| anyhow::anyhow!("three tokens were made"))?;
    Ok(People { portal, lan, minh, login: (login_name, password) })
}
