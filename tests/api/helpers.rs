//! `spawn_app`: the real server on port 0 with a fresh database, and typed helpers around it.

use std::sync::Arc;

use feerecon::config::Config;
use feerecon::domain::{Role, ShiftedClock};
use feerecon::http::{Application, Overrides};
use feerecon::store::Store;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub database_url: String,
    pub clock: Arc<ShiftedClock>,
    pub fees: Arc<feerecon::fees::FeeEngine>,
    pub ledger: Arc<feerecon::ledger::Ledger>,
    pub db: Db,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// Keeps the SQLite file's directory alive for the test's duration.
    _dir: Option<tempfile::TempDir>,
}

/// The default test configuration for a database, listening on a free port.
pub fn test_config(database_url: &str, extra: &[(&str, &str)]) -> Config {
    let mut vars: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    vars.insert("FEERECON_DATABASE_URL".into(), database_url.into());
    vars.insert("FEERECON_LISTEN".into(), "127.0.0.1:0".into());
    vars.insert("FEERECON_LEDGER_KEY".into(), test_key_path(database_url));
    for (k, v) in extra {
        vars.insert((*k).into(), (*v).into());
    }
    Config::from_lookup(|k| vars.get(k).cloned()).expect("the test configuration is valid")
}

/// The ledger key file for a database: instances on one database share it, as they must.
pub fn test_key_path(database_url: &str) -> String {
    use sha2::Digest as _;
    let dir = std::env::temp_dir().join("feerecon-test-keys");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{}.key", &hex::encode(sha2::Sha256::digest(database_url.as_bytes()))[..16])).display().to_string()
}

/// A fresh database of the given kind: its URL and, for SQLite, the directory holding it.
/// `None` when PostgreSQL is unavailable (after a loud skip).
pub async fn fresh_db(db: Db) -> Option<(String, Option<tempfile::TempDir>)> {
    // Matched items in blocks of three (1,000 in production): every test's run spans blocks.
    feerecon::store::recon_blocks::set_block_items(3);
    match db {
        Db::Sqlite => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
            Some((url, Some(dir)))
        }
        Db::Postgres => crate::pg::fresh_database().await.map(|u| (u, None)),
    }
}

pub async fn spawn_app(db: Db) -> Option<TestApp> {
    spawn_app_with(db, &[]).await
}

pub async fn spawn_app_with(db: Db, extra: &[(&str, &str)]) -> Option<TestApp> {
    spawn_app_clocked(db, extra, Arc::new(ShiftedClock::starting_at(chrono::Utc::now()))).await
}

pub async fn spawn_app_clocked(db: Db, extra: &[(&str, &str)], clock: Arc<ShiftedClock>) -> Option<TestApp> {
    let (database_url, dir) = fresh_db(db).await?;
    Some(spawn_app_on(db, database_url, dir, extra, clock).await)
}

/// The server on an existing database (several instances may share one).
pub async fn spawn_app_on(
    db: Db,
    database_url: String,
    dir: Option<tempfile::TempDir>,
    extra: &[(&str, &str)],
    clock: Arc<ShiftedClock>,
) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        feerecon::telemetry::init(feerecon::config::LogFormat::Text, "info");
    }
    let config = test_config(&database_url, extra);
    let app = Application::build(config, Overrides { clock: Some(clock.clone()), ..Default::default() })
        .await
        .expect("the application builds");
    let address = format!("http://{}", app.local_addr().expect("a bound address"));
    let store = app.state().store.clone();
    let fees = app.state().fees.clone();
    let ledger = app.state().ledger.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = rx.await;
        })
        .await
        .expect("the server runs");
    });
    TestApp {
        address,
        client: reqwest::Client::new(),
        store,
        database_url,
        clock,
        fees,
        ledger,
        db,
        shutdown: Some(tx),
        server: Some(server),
        _dir: dir,
    }
}

impl TestApp {
    /// The finance service on this app's database, as the command line builds it: no key to sign
    /// a close's checkpoint, no receipts key (it confirms nothing that needs one).
    pub fn finance_without_key(&self) -> feerecon::recon::Finance {
        feerecon::recon::Finance {
            store: self.store.clone(),
            fees: self.fees.clone(),
            clock: self.clock.clone(),
            profiles: "fixtures/settlement-profiles".into(),
            committer: feerecon::payments::Committer::start(
                self.store.clone(),
                self.clock.clone(),
                std::sync::Arc::new(feerecon::receipts::Issuer::new(Default::default(), self.fees.clone(), None)),
            ),
            key: None,
        }
    }

    /// The policy hash the server quotes with.
    pub fn fees_hash(&self) -> String {
        self.fees.policy.hash.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Adds a user with `role` (no password) and returns a fresh token for it.
    pub async fn token_for(&self, role: Role) -> String {
        let name = format!("{}-{}", role, feerecon::domain::new_id("u"));
        let (_, t) = add_user_token(&self.store, &name, role, None).await;
        t.token.expose().to_owned()
    }

    pub async fn put_json(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client.put(self.url(path)).bearer_auth(token).json(body).send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.expect("request sent")
    }

    /// Stops the server and waits for it to finish; returns the SQLite file's directory, so that
    /// another server can be started on the same database.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            let _ = s.await;
        }
        self._dir.take()
    }
}

/// Reads a response as JSON, with the status.
pub async fn json(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.expect("a body");
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, v)
}

/// Asserts the error envelope with `code`, returning the message.
pub fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error envelope: {v}"))
}

/// A valid case body.
pub fn case_body(code: &str) -> Value {
    let date = &code[14..20];
    let (yy, mm, dd) = (&date[0..2], &date[2..4], &date[4..6]);
    serde_json::json!({
        "case_code": code,
        "procedure_code": "1.001193",
        "applicant_name": "Nguyễn Văn A",
        "channel": "online_full",
        "subjects": ["poor_household"],
        "quantity": 1,
        "received_at": format!("20{yy}-{mm}-{dd}T09:30:00+07:00"),
        "receiving_unit": &code[..13],
    })
}

/// Runs one test body on SQLite and on PostgreSQL, as two tests named `sqlite` and `postgres`
/// in a module named after the test.
#[macro_export]
macro_rules! both_backends {
    ($(#[$meta:meta])* async fn $name:ident($app:ident : TestApp) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            async fn body($app: $crate::helpers::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::spawn_app($crate::helpers::Db::Sqlite).await.expect("SQLite is always there");
                body(app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::helpers::spawn_app($crate::helpers::Db::Postgres).await {
                    body(app).await;
                }
            }
        }
    };
}

/// One test per database, `sqlite` and `postgres`, each calling `$run(Db)` (for tests that start
/// their own servers, such as the crash harness).
#[macro_export]
macro_rules! per_database {
    ($name:ident, $run:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $run($crate::helpers::Db::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $run($crate::helpers::Db::Postgres).await;
            }
        }
    };
}

/// Like `both_backends!`, but the body gets a fresh database URL and no server.
#[macro_export]
macro_rules! both_databases {
    ($(#[$meta:meta])* async fn $name:ident($url:ident : String) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            async fn body($url: String) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (url, _dir) = $crate::helpers::fresh_db($crate::helpers::Db::Sqlite).await.expect("SQLite is always there");
                let store = feerecon::store::Store::connect(&url).await.expect("open");
                store.migrate().await.expect("migrate");
                store.close().await;
                body(url).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some((url, _)) = $crate::helpers::fresh_db($crate::helpers::Db::Postgres).await {
                    body(url).await;
                }
            }
        }
    };
}

/// Test credentials shared by the server and the simulator.
pub const GATEWAY_ENV: &[(&str, &str)] = &[
    ("FEERECON_VNPAY_TMN_CODE", "TESTTMN1"),
    ("FEERECON_VNPAY_HASH_SECRET", "vnpay-test-secret-0123456789"),
    ("FEERECON_MOMO_PARTNER_CODE", "MOMOTEST01"),
    ("FEERECON_MOMO_ACCESS_KEY", "momo-test-access"),
    ("FEERECON_MOMO_SECRET_KEY", "momo-test-secret"),
    ("FEERECON_ZALOPAY_APP_ID", "2554"),
    ("FEERECON_ZALOPAY_KEY1", "zalopay-test-key1"),
    ("FEERECON_ZALOPAY_KEY2", "zalopay-test-key2"),
    ("FEERECON_DVCQG_PARTNER_CODE", "000.00.00.H62"),
    ("FEERECON_DVCQG_SECRET", "dvcqg-test-secret"),
    ("FEERECON_DVCQG_BENEFICIARY", "1234567890,970415,Sở Tài chính tỉnh (thử nghiệm)"),
    ("FEERECON_DVCQG_TOKEN", "dvcqg-test-bearer"),
];

pub fn sim_config() -> feerecon::simulator::SimConfig {
    let get = |k: &str| GATEWAY_ENV.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned()).unwrap();
    feerecon::simulator::SimConfig {
        vnpay: Some((get("FEERECON_VNPAY_TMN_CODE"), get("FEERECON_VNPAY_HASH_SECRET"))),
        momo: Some((
            get("FEERECON_MOMO_PARTNER_CODE"),
            get("FEERECON_MOMO_ACCESS_KEY"),
            get("FEERECON_MOMO_SECRET_KEY"),
        )),
        zalopay: Some((get("FEERECON_ZALOPAY_APP_ID"), get("FEERECON_ZALOPAY_KEY1"), get("FEERECON_ZALOPAY_KEY2"))),
        vnpay_ipn_url: None,
        dvcqg: Some((get("FEERECON_DVCQG_PARTNER_CODE"), get("FEERECON_DVCQG_SECRET"))),
        // Registered once the server's address is known (`spawn_gateway_app`).
        dvcqg_callback_url: None,
        profiles: None,
    }
}

/// The environment pointing the server's gateways at a simulator.
pub fn gateway_env(sim_url: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = GATEWAY_ENV.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    env.push(("FEERECON_VNPAY_PAY_URL".into(), format!("{sim_url}/paymentv2/vpcpay.html")));
    env.push(("FEERECON_VNPAY_API_URL".into(), format!("{sim_url}/merchant_webapi/api/transaction")));
    env.push(("FEERECON_MOMO_ENDPOINT".into(), sim_url.to_owned()));
    env.push(("FEERECON_ZALOPAY_ENDPOINT".into(), sim_url.to_owned()));
    env.push(("FEERECON_DVCQG_INIT_URL".into(), format!("{sim_url}/dvcqg/init")));
    env.push(("FEERECON_DVCQG_QUERY_URL".into(), format!("{sim_url}/dvcqg/query")));
    env.push(("FEERECON_DVCQG_BILL_URL".into(), format!("{sim_url}/dvcqg/bill")));
    env
}

/// A server with all three gateways enabled against a fresh simulator sharing its clock.
pub async fn spawn_gateway_app(db: Db, extra: &[(&str, &str)]) -> Option<(TestApp, feerecon::simulator::Simulator)> {
    let clock = Arc::new(ShiftedClock::starting_at(chrono::Utc::now()));
    let sim = feerecon::simulator::Simulator::start(sim_config(), "127.0.0.1:0".parse().unwrap(), clock.clone())
        .await
        .unwrap();
    let mut env = gateway_env(&sim.url());
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = spawn_app_clocked(db, &refs, clock).await?;
    sim.set_dvcqg_callback_url(&app.url("/gateway/dvcqg/callback"));
    Some((app, sim))
}

impl TestApp {
    /// Creates a case for `procedure` received on `date` at the counter (no reduction), returning its code.
    pub async fn new_case(&self, token: &str, seq: u32, procedure: &str, channel: &str, date: &str) -> String {
        let yymmdd = format!("{}{}{}", &date[2..4], &date[5..7], &date[8..10]);
        let code = format!("000.00.12.H62-{yymmdd}-{seq:04}");
        let body = serde_json::json!({
            "procedure_code": procedure, "applicant_name": "Phạm Thị Hoa", "channel": channel,
            "received_at": format!("{date}T10:00:00+07:00"), "receiving_unit": "000.00.12.H62",
        });
        let res = self.put_json(&format!("/api/v1/cases/{code}"), token, &body).await;
        assert!(res.status().is_success(), "case {code}: {}", res.text().await.unwrap());
        code
    }

    /// `POST /api/v1/cases/{code}/payments`.
    pub async fn create_payment(&self, token: &str, code: &str, gateway: &str, key: &str) -> (u16, Value) {
        let body = serde_json::json!({"gateway": gateway, "return_url": "https://dichvucong.example.vn/ho-so/done", "client_ip": "203.0.113.9"});
        let res = self
            .client
            .post(self.url(&format!("/api/v1/cases/{code}/payments")))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        json(res).await
    }

    pub async fn payment(&self, token: &str, id: &str) -> Value {
        json(self.get(&format!("/api/v1/payments/{id}"), token).await).await.1
    }

    /// Waits (up to 15 s) until the payment's status is `status`.
    pub async fn wait_for_status(&self, token: &str, id: &str, status: &str) -> Value {
        for _ in 0..150 {
            let p = self.payment(token, id).await;
            if p["status"] == status {
                return p;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("payment {id} never became {status}: {}", self.payment(token, id).await);
    }
}

/// Starts `feerecon serve` as a separate process; returns it and its base URL.
pub async fn serve_process(url: &str, env: &[(String, String)]) -> (tokio::process::Child, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_feerecon"));
    cmd.arg("serve")
        .env("FEERECON_DATABASE_URL", url)
        .env("FEERECON_LISTEN", "127.0.0.1:0")
        .env("FEERECON_LOG_FORMAT", "json")
        .env("FEERECON_LEDGER_KEY", test_key_path(url))
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && let Some(a) = v["addr"].as_str()
        {
            let base = format!("http://{a}");
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return (child, base);
        }
    }
    panic!("the server did not start");
}

/// A case code the test knows is valid.
pub fn cc(s: &str) -> feerecon::domain::CaseCode {
    feerecon::domain::CaseCode::parse(s).expect("a valid case code")
}

/// Adds a user and a token for it, through the audited account service.
pub async fn add_user_token(
    store: &Store,
    name: &str,
    role: Role,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> (feerecon::store::User, feerecon::auth::NewToken) {
    let user =
        feerecon::accounts::add_user(store, "test", name, role, None, chrono::Utc::now()).await.expect("add user");
    let t = feerecon::auth::new_token();
    feerecon::accounts::add_token(store, "test", &t, &user, None, chrono::Utc::now(), expires_at)
        .await
        .expect("add token");
    (user, t)
}

/// Runs one statement on the database directly, outside the server (as an intruder
/// with SQL access would, or as an older version left it); its error as text.
pub async fn raw_sql(url: &str, q: &str) -> Result<u64, String> {
    use sqlx::Connection as _;
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(q).execute(&mut c).await.map(|r| r.rows_affected()).map_err(|e| e.to_string())
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(q).execute(&mut c).await.map(|r| r.rows_affected()).map_err(|e| e.to_string())
    }
}
