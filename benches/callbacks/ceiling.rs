//! The ceiling: tiny servers that do only the unavoidable part of a callback, on the same stack as
//! the service (tokio's multi-threaded runtime, axum, sqlx), each in a process of its own as the
//! service is (this benchmark binary started again with `FEERECON_BENCH_ROLE=ceiling`):
//!
//! - `hmac`: verify the IPN's HMAC-SHA512 (decode, sort, re-encode, sign, compare) and reply;
//! - `sqlite`, `postgres`: the same, then one durable insert per callback (its `txn_ref`, the raw
//!   query and the time received) through a group committer: one task takes whatever is queued
//!   (up to 256, as the service's committer does), inserts it with multi-row statements in one
//!   transaction, commits, then answers every callback of the batch. SQLite in WAL with
//!   `synchronous = FULL`; PostgreSQL with its durable defaults. Nothing is acknowledged before
//!   its commit.

use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Stdio};
use std::str::FromStr as _;
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, QueryBuilder, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::ipn;

const MAX_BATCH: usize = 256;
/// Rows per INSERT statement (3 bound values each, well under SQLite's limit of 32,766).
const ROWS_PER_STATEMENT: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Hmac,
    Sqlite,
    Postgres,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Hmac => "hmac",
            Kind::Sqlite => "sqlite",
            Kind::Postgres => "postgres",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Kind::Hmac, Kind::Sqlite, Kind::Postgres].into_iter().find(|k| k.name() == s)
    }
}

/// A ceiling server running in a child process.
pub struct Ceiling {
    child: Child,
    pub addr: SocketAddr,
    _stdout: ChildStdout,
}

impl Ceiling {
    /// Starts this binary again as a ceiling server of `kind` on `database_url` (ignored by `hmac`).
    pub fn start(kind: Kind, database_url: &str) -> Self {
        let exe = std::env::current_exe().expect("this benchmark's executable");
        let mut child = super::callgrind::command(&exe, &format!("ceiling-{}", kind.name()))
            .env("FEERECON_BENCH_ROLE", "ceiling")
            .env("FEERECON_BENCH_CEILING", kind.name())
            .env("FEERECON_BENCH_CEILING_DB", database_url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start a ceiling server");
        let mut stdout = child.stdout.take().expect("a piped stdout");
        // The child prints its address on the first line once it listens.
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        use std::io::Read as _;
        while stdout.read(&mut byte).expect("read the ceiling server's address") == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        let addr = String::from_utf8_lossy(&line).trim().parse().expect("the ceiling server's address");
        Self { child, addr, _stdout: stdout }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In the child: serve until killed.
pub fn serve_from_env() {
    let kind = std::env::var("FEERECON_BENCH_CEILING").ok().and_then(|k| Kind::parse(&k)).expect("a ceiling kind");
    let url = std::env::var("FEERECON_BENCH_CEILING_DB").unwrap_or_default();
    // The service's runtime: multi-threaded, one worker per core.
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    rt.block_on(serve(kind, url));
}

struct Job {
    txn_ref: String,
    raw: String,
    received_us: i64,
    done: oneshot::Sender<bool>,
}

#[derive(Clone)]
struct AppState {
    committer: Option<mpsc::Sender<Job>>,
}

async fn serve(kind: Kind, url: String) {
    let committer = match kind {
        Kind::Hmac => None,
        Kind::Sqlite => Some(start_sqlite(&url).await),
        Kind::Postgres => Some(start_postgres(&url).await),
    };
    let app = Router::new().route("/gateway/vnpay/ipn", get(ipn_handler)).with_state(AppState { committer });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    println!("{}", listener.local_addr().expect("an address"));
    axum::serve(listener, app).await.expect("serve");
}

fn vnpay_reply(code: &str, message: &str) -> Response {
    axum::Json(serde_json::json!({"RspCode": code, "Message": message})).into_response()
}

async fn ipn_handler(State(st): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let Some(txn_ref) = ipn::verify(&query) else { return vnpay_reply("97", "Invalid signature") };
    if let Some(tx) = &st.committer {
        let (done, ok) = oneshot::channel();
        let received_us = chrono::Utc::now().timestamp_micros();
        if tx.send(Job { txn_ref, raw: query, received_us, done }).await.is_err() || ok.await != Ok(true) {
            return vnpay_reply("99", "Unknow error");
        }
    }
    vnpay_reply("00", "Confirm Success")
}

/// Takes the first job waiting, then whatever else is queued, up to `MAX_BATCH`.
async fn next_batch(rx: &mut mpsc::Receiver<Job>) -> Option<Vec<Job>> {
    let first = rx.recv().await?;
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(j) => batch.push(j),
            Err(_) => break,
        }
    }
    Some(batch)
}

fn answer(batch: Vec<Job>, ok: bool) {
    for j in batch {
        let _ = j.done.send(ok);
    }
}

async fn start_sqlite(url: &str) -> mpsc::Sender<Job> {
    let options = SqliteConnectOptions::from_str(url)
        .expect("a SQLite URL")
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(30));
    let pool: SqlitePool =
        SqlitePoolOptions::new().max_connections(1).connect_with(options).await.expect("open the SQLite database");
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS callbacks (id INTEGER PRIMARY KEY, txn_ref TEXT NOT NULL, raw TEXT NOT NULL, received_us INTEGER NOT NULL)",
    )
    .execute(&pool)
    .await
    .expect("create the table");
    let (tx, mut rx) = mpsc::channel::<Job>(4 * MAX_BATCH);
    tokio::spawn(async move {
        while let Some(batch) = next_batch(&mut rx).await {
            let ok = async {
                let mut t = pool.begin_with("BEGIN IMMEDIATE").await?;
                for chunk in batch.chunks(ROWS_PER_STATEMENT) {
                    let mut q = QueryBuilder::<sqlx::Sqlite>::new("INSERT INTO callbacks (txn_ref, raw, received_us) ");
                    q.push_values(chunk, |mut b, j| {
                        b.push_bind(j.txn_ref.as_str()).push_bind(j.raw.as_str()).push_bind(j.received_us);
                    });
                    q.build().execute(&mut *t).await?;
                }
                t.commit().await
            }
            .await;
            if let Err(e) = &ok {
                eprintln!("ceiling sqlite commit failed: {e}");
            }
            answer(batch, ok.is_ok());
        }
    });
    tx
}

async fn start_postgres(url: &str) -> mpsc::Sender<Job> {
    let pool =
        sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await.expect("connect to PostgreSQL");
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS callbacks (id BIGSERIAL PRIMARY KEY, txn_ref TEXT NOT NULL, raw TEXT NOT NULL, received_us BIGINT NOT NULL)",
    )
    .execute(&pool)
    .await
    .expect("create the table");
    let (tx, mut rx) = mpsc::channel::<Job>(4 * MAX_BATCH);
    tokio::spawn(async move {
        let pool: PgPool = pool;
        while let Some(batch) = next_batch(&mut rx).await {
            let ok = async {
                let mut t = pool.begin().await?;
                for chunk in batch.chunks(ROWS_PER_STATEMENT) {
                    let mut q =
                        QueryBuilder::<sqlx::Postgres>::new("INSERT INTO callbacks (txn_ref, raw, received_us) ");
                    q.push_values(chunk, |mut b, j| {
                        b.push_bind(j.txn_ref.as_str()).push_bind(j.raw.as_str()).push_bind(j.received_us);
                    });
                    q.build().execute(&mut *t).await?;
                }
                t.commit().await
            }
            .await;
            if let Err(e) = &ok {
                eprintln!("ceiling postgres commit failed: {e}");
            }
            answer(batch, ok.is_ok());
        }
    });
    tx
}
