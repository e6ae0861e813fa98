//! The service under test: the release `feerecon serve` as a child process on a fresh database,
//! configured only by its environment, a portal token made with its command line
//! (`user add`, `token create`), and cases and VNPAY payments created through its HTTP API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::ipn;

/// The procedure the benchmark's cases name: a construction permit, an ordinary paid case with a phí
/// and a lệ phí (575,000 đ online under the default policy: two ledger credits per confirmation).
const PROCEDURE: &str = "1.009972";

pub struct Service {
    child: Child,
    pub addr: SocketAddr,
    bin: PathBuf,
    env: Vec<(String, String)>,
    dir: PathBuf,
}

impl Service {
    /// Starts `bin serve` on `database_url` with a VNPAY merchant configured, in `dir` (the ledger
    /// key and the server's log go there), and waits until `/readyz` answers 200.
    pub fn start(bin: &Path, database_url: &str, dir: &Path) -> Self {
        let port = super::pg::free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("an address");
        let env: Vec<(String, String)> = [
            ("FEERECON_DATABASE_URL", database_url.to_owned()),
            ("FEERECON_LISTEN", addr.to_string()),
            ("FEERECON_LEDGER_KEY", dir.join("ledger.key").display().to_string()),
            ("FEERECON_VNPAY_TMN_CODE", ipn::TMN_CODE.to_owned()),
            ("FEERECON_VNPAY_HASH_SECRET", ipn::HASH_SECRET.to_owned()),
            // Nothing may leave the machine: status queries would go here (and are not due anyway).
            ("FEERECON_VNPAY_PAY_URL", "http://127.0.0.1:9/paymentv2/vpcpay.html".to_owned()),
            ("FEERECON_VNPAY_API_URL", "http://127.0.0.1:9/merchant_webapi/api/transaction".to_owned()),
            ("FEERECON_PAYMENT_TTL", "1d".to_owned()),
            ("FEERECON_PENDING_QUERY_AFTER", "1d".to_owned()),
            // The defaults, named from the repository since the server runs in a temporary folder.
            ("FEERECON_CATALOGUE", fixture("catalogue.toml")),
            ("FEERECON_POLICY", fixture("policies/vinh-phuc.toml")),
            ("FEERECON_SETTLEMENT_PROFILES", fixture("settlement-profiles")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(
            // Each SQL statement logged (sqlx at debug), to count statements per callback.
            counting_statements()
                .then(|| {
                    [
                        ("RUST_LOG".to_owned(), "info,sqlx::query=debug".to_owned()),
                        ("FEERECON_LOG_FORMAT".to_owned(), "json".to_owned()),
                    ]
                })
                .into_iter()
                .flatten(),
        )
        .collect();
        let log = std::fs::File::create(dir.join("serve.log")).expect("the server's log file");
        let mut cmd = super::callgrind::command(
            bin,
            &format!("serve-{}", if database_url.starts_with("sqlite") { "sqlite" } else { "postgres" }),
        );
        cmd.arg("serve").current_dir(dir).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        clean_env(&mut cmd);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let child = cmd.spawn().expect("start feerecon serve");
        let mut s = Self { child, addr, bin: bin.to_owned(), env, dir: dir.to_owned() };
        s.wait_ready();
        s
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(if super::callgrind::dir().is_some() { 900 } else { 120 });
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(self.addr) {
                use std::io::{Read as _, Write as _};
                let _ = s.write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.log()).unwrap_or_default();
                panic!("feerecon serve was not ready in time; its log:\n{log}");
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.log()).unwrap_or_default();
                panic!("feerecon serve exited ({status}); its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("serve.log")
    }

    /// The log's length now: statements are counted between two marks.
    pub fn log_mark(&self) -> u64 {
        std::fs::metadata(self.log()).map_or(0, |m| m.len())
    }

    /// The SQL statements the server logged between two marks, by their first words, with how
    /// many ran and the seconds they took in all (sqlx's `elapsed_secs`), most frequent first (only
    /// with `FEERECON_BENCH_COUNT_STATEMENTS=1`).
    pub fn statements_between(&self, from: u64, to: u64) -> Vec<(String, usize, f64)> {
        let Ok(bytes) = std::fs::read(self.log()) else { return Vec::new() };
        let range = &bytes
            [usize::try_from(from).unwrap_or(0).min(bytes.len())..usize::try_from(to).unwrap_or(0).min(bytes.len())];
        let mut counts: std::collections::HashMap<String, (usize, f64)> = Default::default();
        for line in String::from_utf8_lossy(range).lines().filter(|l| l.contains("sqlx::query")) {
            // JSON lines (the service's format): the statement's text is `db.statement`.
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            let fields = if v["fields"].is_object() { &v["fields"] } else { &v };
            let sql = fields["db.statement"].as_str().or(fields["summary"].as_str()).unwrap_or("?");
            let words: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
            let short: String = words.chars().take(90).collect();
            let c = counts.entry(short).or_default();
            c.0 += 1;
            c.1 += fields["elapsed_secs"].as_f64().unwrap_or(0.0);
        }
        let mut v: Vec<(String, usize, f64)> = counts.into_iter().map(|(k, (n, t))| (k, n, t)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }

    /// Runs a `feerecon` command with the server's environment; its standard output.
    fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).current_dir(&self.dir).stdin(Stdio::null());
        clean_env(&mut cmd);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let out = cmd.output().expect("run feerecon");
        assert!(
            out.status.success(),
            "feerecon {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A portal user (a machine client) and its token, as README's quick start makes them.
    pub fn portal_token(&self) -> String {
        self.cli(&["user", "add", "--name", "portal", "--role", "portal"]);
        let out = self.cli(&["token", "create", "--user", "portal", "--name", "bench"]);
        out.lines().last().expect("the token on the last line").trim().to_owned()
    }

    /// Creates `n` cases and a VNPAY payment for each through the API (`workers` requests at a
    /// time), and returns what the gateway knows of each payment, in creation order.
    pub fn create_payments(&self, token: &str, n: usize, workers: usize) -> Vec<ipn::Payment> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
        rt.block_on(async {
            let client = reqwest::Client::builder().pool_max_idle_per_host(workers).build().expect("an HTTP client");
            let base = Arc::new(format!("http://{}", self.addr));
            let token = Arc::new(token.to_owned());
            let next = Arc::new(AtomicUsize::new(0));
            let mut tasks = Vec::new();
            for _ in 0..workers {
                let (client, base, token, next) = (client.clone(), base.clone(), token.clone(), next.clone());
                tasks.push(tokio::spawn(async move {
                    let mut made = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        made.push((i, create_one(&client, &base, &token, i).await));
                    }
                    made
                }));
            }
            let mut all = Vec::with_capacity(n);
            for t in tasks {
                all.extend(t.await.expect("a set-up task panicked"));
            }
            all.sort_by_key(|(i, _)| *i);
            all.into_iter().map(|(_, p)| p).collect()
        })
    }

    /// SIGTERM (the server finishes what is in flight), then SIGKILL after 30 s.
    pub fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `FEERECON_BENCH_COUNT_STATEMENTS=1`: the server logs every SQL statement (which slows it down:
/// for counting, not for timing).
pub fn counting_statements() -> bool {
    std::env::var("FEERECON_BENCH_COUNT_STATEMENTS").is_ok_and(|v| v == "1")
}

fn fixture(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel).display().to_string()
}

/// The server sees only the variables we give it (plus PATH, HOME and the like): no FEERECON_* or
/// RUST_LOG of the caller's shell changes what is measured.
fn clean_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("FEERECON_") || k == "RUST_LOG" {
            cmd.env_remove(k.as_ref());
        }
    }
}

/// The case code of the benchmark's case `i`: unit `000.00.UU.H62` (UU from 10), sequence 1..=9999.
pub fn case_code(i: usize) -> String {
    format!("000.00.{:02}.H62-240715-{:04}", 10 + i / 9999, i % 9999 + 1)
}

async fn create_one(client: &reqwest::Client, base: &str, token: &str, i: usize) -> ipn::Payment {
    let code = case_code(i);
    let unit = &code[..13];
    let case = json!({
        "procedure_code": PROCEDURE,
        "applicant_name": "Nguyễn Văn A",
        "channel": "online_full",
        "received_at": "2024-07-15T09:30:00+07:00",
        "receiving_unit": unit,
    });
    let r = send(client.put(format!("{base}/api/v1/cases/{code}")).bearer_auth(token).json(&case)).await;
    assert!(r.0 == 201 || r.0 == 200, "PUT case {code}: {} {}", r.0, r.1);
    let body = json!({"gateway": "vnpay", "return_url": "https://portal.example/return", "client_ip": "127.0.0.1"});
    let r = send(
        client
            .post(format!("{base}/api/v1/cases/{code}/payments"))
            .bearer_auth(token)
            .header("idempotency-key", format!("bench-{i}"))
            .json(&body),
    )
    .await;
    assert!(r.0 == 201 || r.0 == 200, "POST payment for {code}: {} {}", r.0, r.1);
    let v: serde_json::Value = serde_json::from_str(&r.1).expect("a JSON answer");
    let pay_url = v["pay_url"].as_str().expect("a pay_url");
    ipn::Payment {
        txn_ref: v["txn_ref"].as_str().expect("a txn_ref").to_owned(),
        amount: v["amount"].as_i64().expect("an amount"),
        order_info: ipn::query_param(pay_url, "vnp_OrderInfo").expect("vnp_OrderInfo in the pay URL"),
    }
}

/// Sends a set-up request, retrying connection errors a few times (the machine is busy).
async fn send(req: reqwest::RequestBuilder) -> (u16, String) {
    let mut attempt = 0;
    loop {
        let r = req.try_clone().expect("a cloneable request").send().await;
        match r {
            Ok(r) => {
                let status = r.status().as_u16();
                return (status, r.text().await.unwrap_or_default());
            }
            Err(e) if attempt < 5 => {
                attempt += 1;
                eprintln!("set-up request failed ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => panic!("set-up request failed: {e}"),
        }
    }
}
