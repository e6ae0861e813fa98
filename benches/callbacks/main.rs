//! Gateway callbacks over HTTP on loopback, against the ceiling measured beside them (issues 10, 23).
//!
//! Run: `cargo bench --bench callbacks` (or `benches/run.sh`, which also installs PostgreSQL and
//! prints the summary of every benchmark). Per round (3 by default; the report gives medians):
//!
//! 1. for each backend (SQLite in a temporary folder; PostgreSQL started durable by the harness, or
//!    `FEERECON_BENCH_PG_URL`): the release `feerecon serve` as a child process on a fresh database,
//!    a portal token from its command line, then N cases and N VNPAY payments per connection count
//!    created through its HTTP API; one IPN per payment pre-signed as VNPAY signs it; then
//!    - first deliveries: N fresh IPNs at C = 16, 64, 256 keep-alive connections to
//!      `GET /gateway/vnpay/ipn`, every answer checked to be `RspCode 00`;
//!    - duplicates: N already-applied IPNs again at each C, every answer checked to be `RspCode 02`;
//! 2. the ceiling, in processes of their own on the same stack (`ceiling.rs`): HMAC verification and
//!    reply only, and that plus one group-committed durable insert per callback on each backend.
//!
//! The service stays fully durable: it answers only after its commit (SQLite `synchronous = FULL`,
//! PostgreSQL's defaults). Throughput is callbacks answered per second of wall time; latency is
//! per request, closed loop (a connection sends its next request when the answer has arrived).
//!
//! Knobs (environment): `FEERECON_BENCH_CALLBACKS` (N, default 5000), `FEERECON_BENCH_CEILING_CALLBACKS`
//! (requests per ceiling phase, 30000: the ceilings take the same IPNs again), `FEERECON_BENCH_CONNECTIONS`
//! (`16,64,256`), `FEERECON_BENCH_ROUNDS` (3), `FEERECON_BENCH_BACKENDS` (`sqlite,postgres`),
//! `FEERECON_BENCH_GEN_THREADS` (the load generator's threads, 1), `FEERECON_BENCH_PG_URL`,
//! `FEERECON_BENCH_PERF=DIR` (record `perf` on the servers during the first round's phases at 64
//! connections), `FEERECON_BENCH_COUNT_STATEMENTS=1` (the server logs every SQL statement; each phase
//! prints statements per callback by kind: for counting, not timing), `FEERECON_BENCH_CALLGRIND=DIR` (run the servers under callgrind, counting instructions
//! only during the first round's phases at 64 connections; use a small N), `FEERECON_BENCH_SUMMARY=FILE` (append the summary rows for `benches/run.sh`).
//! Nothing here is a test: no figure is asserted.

mod callgrind;
mod ceiling;
mod ipn;
mod load;
mod pg;
mod service;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use ceiling::{Ceiling, Kind};
use load::Outcome;

/// Goals (issue 23 and issue 10), at 64 connections.
const GOAL_SQLITE_PER_S: f64 = 10_000.0;
const GOAL_POSTGRES_PER_S: f64 = 5_000.0;
const GOAL_P99_MS: f64 = 25.0;
const GOAL_SQLITE_TO_CEILING: f64 = 0.5;
const HEADLINE_CONNECTIONS: usize = 64;

const APPLIED: load::Expect = r#""RspCode":"00""#;
const ALREADY: load::Expect = r#""RspCode":"02""#;

struct Settings {
    n: usize,
    /// Requests per ceiling phase (the ceiling servers take any valid IPN again: the set is cycled).
    ceiling_n: usize,
    connections: Vec<usize>,
    rounds: usize,
    backends: Vec<String>,
    gen_threads: usize,
    setup_workers: usize,
    perf: Option<PathBuf>,
    summary: Option<PathBuf>,
}

fn env_or<T: std::str::FromStr>(k: &str, default: T) -> T {
    std::env::var(k).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

impl Settings {
    fn from_env() -> Self {
        let list = |k: &str, d: &str| -> Vec<String> {
            std::env::var(k)
                .unwrap_or_else(|_| d.to_owned())
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        Self {
            n: env_or("FEERECON_BENCH_CALLBACKS", 5000),
            ceiling_n: env_or("FEERECON_BENCH_CEILING_CALLBACKS", 30_000),
            connections: list("FEERECON_BENCH_CONNECTIONS", "16,64,256")
                .iter()
                .map(|c| c.parse().expect("FEERECON_BENCH_CONNECTIONS: numbers separated by commas"))
                .collect(),
            rounds: env_or("FEERECON_BENCH_ROUNDS", 3).max(1),
            backends: list("FEERECON_BENCH_BACKENDS", "sqlite,postgres"),
            gen_threads: env_or("FEERECON_BENCH_GEN_THREADS", 1),
            setup_workers: env_or("FEERECON_BENCH_SETUP_WORKERS", 32),
            perf: std::env::var_os("FEERECON_BENCH_PERF").map(PathBuf::from),
            summary: std::env::var_os("FEERECON_BENCH_SUMMARY").map(PathBuf::from),
        }
    }
}

/// One phase's figures.
#[derive(Clone)]
struct Measure {
    per_s: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    /// CPU time of the server's own process per request (PostgreSQL's backends not included).
    server_cpu_us: f64,
    /// CPU time of the load generator per request.
    gen_cpu_us: f64,
    clean: bool,
}

/// Figures by (figure, connections), one per round.
type Results = BTreeMap<(String, usize), Vec<Measure>>;

const SERVICE_FIRST: &str = "service, first delivery";
const SERVICE_DUP: &str = "service, duplicates";
const CEIL_HMAC: &str = "ceiling: HMAC + reply";
const CEIL_INSERT: &str = "ceiling: HMAC + group-committed insert";

fn figure(what: &str, backend: &str) -> String {
    if what == CEIL_HMAC { what.to_owned() } else { format!("{what} [{backend}]") }
}

fn main() {
    if std::env::var("FEERECON_BENCH_ROLE").as_deref() == Ok("ceiling") {
        ceiling::serve_from_env();
        return;
    }
    let s = Settings::from_env();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_feerecon"));
    eprintln!(
        "callbacks: {} per phase, connections {:?}, {} round(s), backends {:?}, server {}",
        s.n,
        s.connections,
        s.rounds,
        s.backends,
        bin.display()
    );
    let pg = s
        .backends
        .iter()
        .any(|b| b == "postgres")
        .then(|| pg::PgServer::start().expect("PostgreSQL for the benchmark"));
    if let Some(pg) = &pg {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        eprintln!("callbacks: PostgreSQL {}", rt.block_on(pg.version()));
    }
    let mut results = Results::new();
    for round in 0..s.rounds {
        let mut hmac_done = false;
        for backend in &s.backends {
            let requests = run_service(&s, &bin, backend, pg.as_ref(), round, &mut results);
            if !hmac_done {
                run_ceiling(&s, Kind::Hmac, "", "", &requests, round, &mut results);
                hmac_done = true;
            }
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            let tmp = tempfile::tempdir().expect("a temporary folder");
            let (kind, url) = match backend.as_str() {
                "sqlite" => (Kind::Sqlite, format!("sqlite://{}?mode=rwc", tmp.path().join("ceiling.db").display())),
                _ => {
                    let pg = pg.as_ref().expect("a PostgreSQL server");
                    (Kind::Postgres, rt.block_on(pg.fresh_database(&format!("feerecon_bench_ceiling_{round}"))))
                }
            };
            run_ceiling(&s, kind, &url, backend, &requests, round, &mut results);
            if let Some(pg) = pg.as_ref().filter(|_| kind == Kind::Postgres) {
                rt.block_on(pg.drop_database(&format!("feerecon_bench_ceiling_{round}")));
            }
        }
    }
    report(&s, &results);
}

/// The service on `backend`: set-up, first deliveries and duplicates at each connection count.
/// Returns the signed requests (for the ceiling servers).
fn run_service(
    s: &Settings,
    bin: &Path,
    backend: &str,
    pg: Option<&pg::PgServer>,
    round: usize,
    results: &mut Results,
) -> Arc<Vec<Vec<u8>>> {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let db_name = format!("feerecon_bench_service_{round}");
    let url = match backend {
        "sqlite" => format!("sqlite://{}?mode=rwc", tmp.path().join("feerecon.db").display()),
        "postgres" => rt.block_on(pg.expect("a PostgreSQL server").fresh_database(&db_name)),
        other => panic!("FEERECON_BENCH_BACKENDS: unknown backend {other} (sqlite, postgres)"),
    };
    let svc = service::Service::start(bin, &url, tmp.path());
    let token = svc.portal_token();
    let total = s.n * s.connections.len();
    let t0 = Instant::now();
    let payments = svc.create_payments(&token, total, s.setup_workers);
    eprintln!(
        "callbacks: round {} {backend}: {total} cases and payments created through the API in {:.1} s",
        round + 1,
        t0.elapsed().as_secs_f64()
    );
    let pay_date = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).expect("+07:00"));
    let pay_date = pay_date.format("%Y%m%d%H%M%S").to_string();
    let base_no = 10_000_000 + 1_000_000 * round as u64;
    let requests: Vec<Vec<u8>> = payments
        .iter()
        .enumerate()
        .map(|(i, p)| {
            load::get_request(&format!("/gateway/vnpay/ipn?{}", ipn::signed_success(p, base_no + i as u64, &pay_date)))
        })
        .collect();
    let requests = Arc::new(requests);
    for (what, expect, kind) in [(SERVICE_FIRST, APPLIED, "first"), (SERVICE_DUP, ALREADY, "dup")] {
        for (k, &c) in s.connections.iter().enumerate() {
            let slice = Arc::new(requests[k * s.n..(k + 1) * s.n].to_vec());
            let label = format!("{backend}-service-{kind}-c{c}");
            let mark = svc.log_mark();
            let m = phase(s, &label, svc.pid(), svc.addr, slice, c, expect, round);
            if service::counting_statements() {
                std::thread::sleep(std::time::Duration::from_millis(500));
                let counts = svc.statements_between(mark, svc.log_mark());
                let total: usize = counts.iter().map(|(_, n, _)| n).sum();
                let secs: f64 = counts.iter().map(|(_, _, t)| t).sum();
                eprintln!(
                    "callbacks: {label}: {:.2} SQL statements per callback, {:.1} µs of statement time per callback \
                     (per kind: statements per callback, µs per callback)",
                    total as f64 / s.n as f64,
                    secs * 1e6 / s.n as f64
                );
                for (sql, n, t) in counts.iter().take(25) {
                    eprintln!("  {:>7.3} {:>8.1}  {sql}", *n as f64 / s.n as f64, t * 1e6 / s.n as f64);
                }
            }
            results.entry((figure(what, backend), c)).or_default().push(m);
        }
    }
    let log = svc.log();
    svc.stop();
    if let Ok(text) = std::fs::read_to_string(&log) {
        let errors = text.lines().filter(|l| l.contains("ERROR") || l.contains("WARN")).count();
        if errors > 0 {
            eprintln!("callbacks: the server logged {errors} warning or error line(s), e.g.:");
            for l in text.lines().filter(|l| l.contains("ERROR") || l.contains("WARN")).take(3) {
                eprintln!("  {l}");
            }
        }
    }
    if let Some(pg) = pg.filter(|_| backend == "postgres") {
        rt.block_on(pg.drop_database(&db_name));
    }
    requests
}

/// A ceiling server of `kind` on `url` (none for `hmac`): a warm-up, then each connection count.
fn run_ceiling(
    s: &Settings,
    kind: Kind,
    url: &str,
    backend: &str,
    requests: &Arc<Vec<Vec<u8>>>,
    round: usize,
    results: &mut Results,
) {
    let c = Ceiling::start(kind, url);
    let what = if kind == Kind::Hmac { CEIL_HMAC } else { CEIL_INSERT };
    // Warm up (connections, page cache, the allocator) with requests that are not measured.
    let warm = Arc::new(requests[..requests.len().min(500)].to_vec());
    let _ = load::run(c.addr, warm, 16, APPLIED, s.gen_threads);
    for (k, &conns) in s.connections.iter().enumerate() {
        let slice = Arc::new((0..s.ceiling_n).map(|i| requests[(k * s.n + i) % requests.len()].clone()).collect());
        let label = format!("ceiling-{}-c{conns}", kind.name());
        let m = phase(s, &label, c.pid(), c.addr, slice, conns, APPLIED, round);
        results.entry((figure(what, backend), conns)).or_default().push(m);
    }
    c.stop();
}

/// CPU time (user + system) of a process so far, in µs.
fn cpu_us(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the command's closing parenthesis: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(14) + ticks(15)) * 1_000_000.0 / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// `perf record` and `perf stat` attached to the server for one phase, when asked.
struct Perf(Vec<Child>);

impl Perf {
    fn start(dir: &Path, label: &str, pid: u32) -> Self {
        let _ = std::fs::create_dir_all(dir);
        let mut children = Vec::new();
        let record = Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-F", "999", "-g", "-p", &pid.to_string(), "-o"])
            .arg(dir.join(format!("{label}.data")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let stat = Command::new("perf")
            .args([
                "stat",
                "-e",
                "task-clock,context-switches,cpu-migrations,page-faults",
                "-p",
                &pid.to_string(),
                "-o",
            ])
            .arg(dir.join(format!("{label}.stat")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        for c in [record, stat] {
            match c {
                Ok(c) => children.push(c),
                Err(e) => eprintln!("callbacks: perf could not start ({e}); install linux-perf"),
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        Self(children)
    }

    fn stop(self) {
        for mut c in self.0 {
            let _ = Command::new("kill").args(["-INT", &c.id().to_string()]).status();
            let _ = c.wait();
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn phase(
    s: &Settings,
    label: &str,
    server_pid: u32,
    addr: std::net::SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    connections: usize,
    expect: load::Expect,
    round: usize,
) -> Measure {
    let perf = s
        .perf
        .as_deref()
        .filter(|_| round == 0 && connections == HEADLINE_CONNECTIONS)
        .map(|dir| Perf::start(dir, label, server_pid));
    let counting = round == 0 && connections == HEADLINE_CONNECTIONS && callgrind::dir().is_some();
    if counting {
        callgrind::instrument(server_pid, true);
    }
    let (cpu0, gen0) = (cpu_us(server_pid), cpu_us(std::process::id()));
    let o: Outcome = load::run(addr, requests, connections, expect, s.gen_threads);
    let (cpu, gen_cpu) = (cpu_us(server_pid) - cpu0, cpu_us(std::process::id()) - gen0);
    if let Some(p) = perf {
        p.stop();
    }
    if counting {
        callgrind::dump(server_pid, label, o.requests);
        callgrind::instrument(server_pid, false);
    }
    let m = Measure {
        per_s: o.per_second(),
        p50: o.ms(0.5),
        p99: o.ms(0.99),
        p999: o.ms(0.999),
        server_cpu_us: cpu / o.requests.max(1) as f64,
        gen_cpu_us: gen_cpu / o.requests.max(1) as f64,
        clean: o.clean(),
    };
    eprintln!(
        "callbacks: round {} {label:<34} {:>8.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  CPU µs/req: server {:>5.0}, generator {:>3.0}{}",
        round + 1,
        m.per_s,
        m.p50,
        m.p99,
        m.p999,
        m.server_cpu_us,
        m.gen_cpu_us,
        if m.clean {
            String::new()
        } else {
            format!(
                "  !! {} unexpected, {} errors, first: {}",
                o.unexpected,
                o.errors,
                o.first_unexpected.as_deref().unwrap_or("")
            )
        }
    );
    m
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn med(ms: &[Measure], f: impl Fn(&Measure) -> f64) -> f64 {
    median(ms.iter().map(f).collect())
}

/// The median over rounds of (a ÷ b) measured in the same round.
fn ratio(results: &Results, a: &str, b: &str, c: usize) -> Option<f64> {
    let (a, b) = (results.get(&(a.to_owned(), c))?, results.get(&(b.to_owned(), c))?);
    Some(median(a.iter().zip(b).map(|(x, y)| x.per_s / y.per_s).collect()))
}

fn report(s: &Settings, results: &Results) {
    let mut out = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "\nCallbacks over HTTP on loopback: median of {} round(s), {} callbacks per phase\n",
        s.rounds, s.n
    );
    let _ = writeln!(
        out,
        "| figure | conns | callbacks/s (median) | rounds | p50 ms | p99 ms | p99.9 ms | server CPU µs/callback | all answers as expected |"
    );
    let _ = writeln!(out, "|---|---:|---:|---|---:|---:|---:|---:|---|");
    let mut figures: Vec<&String> = results.keys().map(|(f, _)| f).collect();
    figures.dedup();
    let order = |f: &str| {
        let what = [SERVICE_FIRST, SERVICE_DUP, CEIL_HMAC, CEIL_INSERT].iter().position(|p| f.starts_with(p));
        let backend = s.backends.iter().position(|b| f.ends_with(&format!("[{b}]")));
        (backend.unwrap_or(0), what.unwrap_or(9))
    };
    figures.sort_by_key(|f| (order(f), f.to_string()));
    figures.dedup();
    for f in figures {
        for &c in &s.connections {
            let Some(ms) = results.get(&(f.clone(), c)) else { continue };
            let rounds: Vec<String> = ms.iter().map(|m| format!("{:.0}", m.per_s)).collect();
            let _ = writeln!(
                out,
                "| {f} | {c} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {:.0} | {} |",
                med(ms, |m| m.per_s),
                rounds.join(", "),
                med(ms, |m| m.p50),
                med(ms, |m| m.p99),
                med(ms, |m| m.p999),
                med(ms, |m| m.server_cpu_us),
                if ms.iter().all(|m| m.clean) { "yes" } else { "NO" }
            );
        }
    }
    let _ = writeln!(out, "\nRatios to the ceiling measured in the same round (median over rounds):\n");
    let _ = writeln!(
        out,
        "| ratio | {} |",
        s.connections.iter().map(|c| format!("{c} conns")).collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(out, "|---|{}", "---:|".repeat(s.connections.len()));
    for backend in &s.backends {
        for (name, a, b) in [
            ("first delivery ÷ group-committed insert", SERVICE_FIRST, CEIL_INSERT),
            ("first delivery ÷ HMAC + reply", SERVICE_FIRST, CEIL_HMAC),
            ("duplicates ÷ HMAC + reply", SERVICE_DUP, CEIL_HMAC),
        ] {
            let cells: Vec<String> = s
                .connections
                .iter()
                .map(|&c| {
                    ratio(results, &figure(a, backend), &figure(b, backend), c)
                        .map_or("-".into(), |r| format!("{r:.3}"))
                })
                .collect();
            let _ = writeln!(out, "| {backend}: {name} | {} |", cells.join(" | "));
        }
    }
    println!("{out}");

    // The summary rows for benches/run.sh: figure, measured, goal, ratio (≥ 1 meets the goal).
    let mut rows: Vec<(String, String, String, f64)> = Vec::new();
    let c = HEADLINE_CONNECTIONS;
    for (backend, goal) in [("sqlite", GOAL_SQLITE_PER_S), ("postgres", GOAL_POSTGRES_PER_S)] {
        let Some(ms) = results.get(&(figure(SERVICE_FIRST, backend), c)) else { continue };
        let per_s = med(ms, |m| m.per_s);
        rows.push((
            format!("callbacks/s, {backend}, {c} conns"),
            format!("{per_s:.0}"),
            format!("≥ {goal:.0}"),
            per_s / goal,
        ));
        let p99 = med(ms, |m| m.p99);
        rows.push((
            format!("callback p99, {backend}, {c} conns"),
            format!("{p99:.1} ms"),
            format!("< {GOAL_P99_MS:.0} ms"),
            GOAL_P99_MS / p99,
        ));
        if let Some(r) = ratio(results, &figure(SERVICE_FIRST, backend), &figure(CEIL_INSERT, backend), c) {
            let goal =
                if backend == "sqlite" { format!("≥ {GOAL_SQLITE_TO_CEILING} (issue 10)") } else { "-".into() };
            let rr = if backend == "sqlite" { r / GOAL_SQLITE_TO_CEILING } else { f64::NAN };
            rows.push((format!("callbacks ÷ group-commit ceiling, {backend}, {c} conns"), format!("{r:.3}"), goal, rr));
        }
        if let Some(ms) = results.get(&(figure(CEIL_INSERT, backend), c)) {
            rows.push((
                format!("ceiling: group-committed insert, {backend}, {c} conns"),
                format!("{:.0}/s", med(ms, |m| m.per_s)),
                "-".into(),
                f64::NAN,
            ));
        }
    }
    if let Some(ms) = results.get(&(CEIL_HMAC.to_owned(), c)) {
        rows.push((
            format!("ceiling: HMAC + reply, {c} conns"),
            format!("{:.0}/s", med(ms, |m| m.per_s)),
            "-".into(),
            f64::NAN,
        ));
    }
    if let Some(path) = &s.summary {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("the summary file");
        for (fig, measured, goal, r) in &rows {
            let r = if r.is_nan() { "-".to_owned() } else { format!("{r:.2}") };
            let _ = writeln!(f, "callbacks\t{fig}\t{measured}\t{goal}\t{r}");
        }
    }
}
