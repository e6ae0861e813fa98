//! Database faults under callback load (issue 21, SPEC §6.4 step 1 and §9): the database goes
//! away while gateways call back, then comes back, and the running server (never restarted) must
//! have told the gateway to retry every callback it could not commit, acknowledged none that it did
//! not commit, and apply the retries once the database is back.
//!
//! - **PostgreSQL gone and back**: every connection of the server's database is terminated and
//!   new ones refused (`ALLOW_CONNECTIONS false`, which the server sees as a database that went
//!   down, its pool's connections all broken), callbacks sent meanwhile, then connections allowed
//!   again. The shared test server itself is not stopped: other tests use it at the same time.
//! - **PostgreSQL restarted**: a server of the test's own (`pg::OwnServer`) stopped at once
//!   (`pg_ctl stop -m immediate`, as a crash) while callbacks arrive, then started again.
//! - **Connection pool exhausted** (PostgreSQL): `FEERECON_DB_MAX_CONNECTIONS=1` and
//!   `FEERECON_DB_ACQUIRE_TIMEOUT=1s`; a table lock held outside the server keeps its one
//!   connection busy in a callback's transaction while more callbacks arrive and time out waiting
//!   for a connection; then the lock is released.
//! - **Disk full** (SQLite): the database file on a small tmpfs mount, the mount filled up by
//!   another file, callbacks sent (SQLITE_FULL), then the filler removed. Needs `mount` (root);
//!   a loud skip otherwise. A settlement import on the full disk fails whole and succeeds once
//!   space is freed.
//! - **SQLite's writer held elsewhere**: another process keeps a write transaction open; the
//!   callbacks' deadline answers "retry" while the service waits for SQLite's busy timeout.
//!
//! The checks are the same: each reply is "applied" (and then the payment is paid) or the
//! gateway's retry reply (`99`); after recovery every retried callback is applied, each payment has
//! one confirmation posting, the chain verifies.

use std::sync::Arc;
use std::time::Duration;

use feerecon::domain::{Role, ShiftedClock};
use futures_util::StreamExt as _;
use serde_json::json;

use crate::forge::{genuine_numbered, send};
use crate::helpers::{Db, TestApp, json as read_json, spawn_app_on};

/// Creates `n` pending VNPAY payments: (txn_ref, payment_id, amount).
async fn pending(app: &TestApp, portal: &str, first: usize, n: usize) -> Vec<(String, String, i64)> {
    let mut out = Vec::new();
    for i in first..first + n {
        let code = app.new_case(portal, i as u32 + 1, crate::gateways::GPLX, "counter", "2024-07-15").await;
        let (s, p) = app.create_payment(portal, &code, "vnpay", "k").await;
        assert_eq!(s, 201, "{p}");
        out.push((
            p["txn_ref"].as_str().unwrap().to_owned(),
            p["payment_id"].as_str().unwrap().to_owned(),
            p["amount"].as_i64().unwrap(),
        ));
    }
    out
}

/// One payment's genuine VNPAY callback (its transaction number `77001 + no`); the reply's
/// `RspCode`.
async fn callback(client: &reqwest::Client, address: &str, p: &(String, String, i64), no: usize) -> String {
    let (_, payload) = genuine_numbered("vnpay", &p.0, p.2, None, no as u64);
    let (_, body) = send(client, address, "vnpay", "GET", &payload).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("a JSON reply: {body}"));
    v["RspCode"].as_str().map(str::to_owned).unwrap_or(body)
}

/// Sends each payment's genuine callback, eight at a time; returns (payment_id, `RspCode`).
async fn callbacks(app: &TestApp, payments: &[(String, String, i64)], first: usize) -> Vec<(String, String)> {
    futures_util::stream::iter(payments.iter().enumerate())
        .map(|(i, p)| async move { (p.1.clone(), callback(&app.client, &app.address, p, first + i).await) })
        .buffer_unordered(8)
        .collect()
        .await
}

/// Every reply is applied, already confirmed or retry; every payment acknowledged is paid.
async fn nothing_acknowledged_that_is_not_committed(app: &TestApp, replies: &[(String, String)]) {
    for (id, code) in replies {
        assert!(["00", "02", "99"].contains(&code.as_str()), "{id}: only applied or retry: {code}");
        if code != "99" {
            let p = app.store.get_payment(id).await.unwrap().unwrap();
            assert_eq!(p.status.as_str(), "paid", "{id}: acknowledged ({code}), so committed");
        }
    }
}

/// After recovery: every payment's callback, sent again, is acknowledged; each payment is paid
/// with one confirmation posting; the chain verifies.
async fn recovers(app: &TestApp, payments: &[(String, String, i64)]) {
    let mut codes = Vec::new();
    for _ in 0..50 {
        codes = callbacks(app, payments, 0).await;
        if codes.iter().all(|(_, c)| c == "00" || c == "02") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(codes.iter().all(|(_, c)| c == "00" || c == "02"), "recovered without a restart: {codes:?}");
    let entries = app.store.ledger_entries(0, 100_000).await.unwrap();
    for (txn_ref, id, _) in payments {
        let p = app.store.get_payment(id).await.unwrap().unwrap();
        assert_eq!(p.status.as_str(), "paid", "{txn_ref}");
        let postings: std::collections::BTreeSet<&str> = entries
            .iter()
            .filter(|e| e.kind == "payment_confirmed" && e.refs.contains(&format!("payment={id};")))
            .map(|e| e.posting_id.as_str())
            .collect();
        assert_eq!(postings.len(), 1, "{txn_ref}: one confirmation posting");
    }
    let finance = app.token_for(Role::Finance).await;
    let (s, v) = read_json(app.get("/api/v1/ledger/verify", &finance).await).await;
    assert_eq!((s, &v["ok"]), (200, &json!(true)), "{v}");
}

/// Half the payments' callbacks one after another while `down` takes the database away, the
/// other half while it is away (each answered retry); then `up` brings it back, nothing was
/// acknowledged that is not committed, and the same server, never restarted, applies every retry.
async fn outage_under_callbacks(
    app: &TestApp,
    payments: &[(String, String, i64)],
    down: impl std::future::Future<Output = ()>,
    up: impl std::future::Future<Output = ()>,
) {
    let (first, second) = payments.split_at(payments.len() / 2);
    let before = tokio::spawn({
        let (address, first) = (app.address.clone(), first.to_vec());
        async move {
            let client = reqwest::Client::new();
            let mut codes = Vec::new();
            for (i, p) in first.iter().enumerate() {
                codes.push((p.1.clone(), callback(&client, &address, p, i).await));
            }
            codes
        }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    down.await;
    let down_codes = callbacks(app, second, first.len()).await;
    assert!(down_codes.iter().all(|(_, c)| c == "99"), "the database is down: retry: {down_codes:?}");
    // Back up before the first half is awaited: its callbacks still in flight then meet the
    // database again instead of each waiting out the deadline.
    up.await;
    let up_front = before.await.unwrap();
    nothing_acknowledged_that_is_not_committed(app, &[up_front, down_codes].concat()).await;
    recovers(app, payments).await;
}

async fn app_on(url: String, dir: Option<tempfile::TempDir>, db: Db) -> TestApp {
    app_with(url, dir, db, &[]).await
}

async fn app_with(url: String, dir: Option<tempfile::TempDir>, db: Db, extra: &[(&str, &str)]) -> TestApp {
    let mut env = crate::helpers::gateway_env("http://127.0.0.1:9");
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    spawn_app_on(db, url, dir, &refs, Arc::new(ShiftedClock::starting_at(chrono::Utc::now()))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_gone_and_back_under_callbacks_loses_nothing() {
    use sqlx::Connection as _;
    let Some((url, _)) = crate::helpers::fresh_db(Db::Postgres).await else { return };
    let app = app_on(url.clone(), None, Db::Postgres).await;
    let portal = app.token_for(Role::Portal).await;
    let payments = pending(&app, &portal, 0, 40).await;
    let (base, name) = url.rsplit_once('/').unwrap();
    let name = name.split('?').next().unwrap().to_owned();
    let admin = format!("{base}/postgres");
    let sql = |sql: String| {
        let admin = admin.clone();
        async move {
            let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(&sql).execute(&mut c).await.unwrap();
        }
    };
    let down = async {
        sql(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await;
        sql(format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")).await;
    };
    outage_under_callbacks(&app, &payments, down, sql(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))).await;
    let _ = app.stop().await;
}

/// The PostgreSQL server itself crashes (`pg_ctl stop -m immediate`) while callbacks arrive and
/// is started again: a server of this test's own, since the shared one serves other tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_restarted_under_callbacks_loses_nothing() {
    let Some(server) = crate::pg::OwnServer::start().await else { return };
    // A callback is answered within three quarters of the request timeout (3 s here, 10 s by
    // default), durable or told to retry.
    let env = [("FEERECON_REQUEST_TIMEOUT", "4s"), ("FEERECON_DB_ACQUIRE_TIMEOUT", "2s")];
    let app = app_with(server.url.clone(), None, Db::Postgres, &env).await;
    let portal = app.token_for(Role::Portal).await;
    let payments = pending(&app, &portal, 0, 40).await;
    outage_under_callbacks(&app, &payments, server.kill(), server.start_again()).await;
    let _ = app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_connection_pool_answers_retry_and_recovers() {
    use sqlx::Connection as _;
    let Some((url, _)) = crate::helpers::fresh_db(Db::Postgres).await else { return };
    let env = [("FEERECON_DB_MAX_CONNECTIONS", "1"), ("FEERECON_DB_ACQUIRE_TIMEOUT", "1s")];
    let app = app_with(url.clone(), None, Db::Postgres, &env).await;
    let portal = app.token_for(Role::Portal).await;
    let payments = pending(&app, &portal, 0, 20).await;
    let portal = portal.clone();
    // A reader holds the server's one connection, waiting on a lock taken elsewhere; the
    // callbacks then find no connection. (Callbacks share one committer, which waits its turn.)
    let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("LOCK TABLE cases IN ACCESS EXCLUSIVE MODE").execute(&mut other).await.unwrap();
    let reader = tokio::spawn({
        let (client, url) = (app.client.clone(), app.url("/api/v1/cases/000.00.12.H62-240715-0001"));
        async move { client.get(url).bearer_auth(portal).send().await.map(|r| r.status().as_u16()) }
    });
    // Until the reader holds the connection, waiting on the lock (a fixed delay raced it under
    // load: the callbacks took the connection first and were all applied).
    let mut waited = 0;
    loop {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut other)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        waited += 1;
        assert!(waited < 600, "the reader never waited on the lock");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The callbacks, each answered on its own; while the lock holds nothing can commit, so the
    // first answer is the committer giving up on a connection. The lock goes then (a fixed 5 s
    // raced the committer: a batch that failed was split, and a job retried after the lock
    // went was applied, so no answer was a retry).
    let (done, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let client = reqwest::Client::new();
    for (i, p) in payments.iter().enumerate() {
        let (client, address, p, done) = (client.clone(), app.address.clone(), p.clone(), done.clone());
        tokio::spawn(async move {
            let code = callback(&client, &address, &p, i).await;
            let _ = done.send((p.1.clone(), code));
        });
    }
    drop(done);
    let first = tokio::time::timeout(Duration::from_secs(60), answers.recv()).await.unwrap().unwrap();
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    let mut replies = vec![first];
    while let Some(r) = answers.recv().await {
        replies.push(r);
    }
    assert_eq!(replies.len(), payments.len());
    assert_eq!(reader.await.unwrap().ok(), Some(200), "the reader is served once the lock goes");
    assert!(replies.iter().any(|(_, c)| c == "99"), "an exhausted pool is a retry: {replies:?}");
    nothing_acknowledged_that_is_not_committed(&app, &replies).await;
    recovers(&app, &payments).await;
    let _ = app.stop().await;
}

/// A tmpfs mount that is unmounted when dropped.
struct Mount(std::path::PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A small tmpfs mount, or `None` (after a loud skip) where mounting is not allowed; as root a
/// failed mount fails the test.
fn small_tmpfs(size: &str) -> Option<Mount> {
    let dir = tempfile::tempdir().unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir.path())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        // CI runs as root: there a mount that fails is a failure, not a skip.
        assert!(!crate::pg::is_root(), "running as root, yet a tmpfs could not be mounted (no CAP_SYS_ADMIN?)");
        crate::pg::loud("SKIPPED disk full: cannot mount a tmpfs here (needs root)");
        return None;
    }
    Some(Mount(dir.path().to_owned(), dir))
}

/// Fills the file system holding `path` up to its last few KiB.
fn fill(path: &std::path::Path) -> u64 {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 4096];
    let mut written = 0;
    while f.write_all(&chunk).is_ok() {
        written += chunk.len() as u64;
    }
    let _ = f.sync_all();
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_under_callbacks_loses_nothing() {
    let Some(mount) = small_tmpfs("24m") else { return };
    let url = format!("sqlite://{}?mode=rwc", mount.0.join("feerecon.db").display());
    let app = app_on(url, None, Db::Sqlite).await;
    let portal = app.token_for(Role::Portal).await;
    let payments = pending(&app, &portal, 0, 40).await;
    let finance = app.token_for(Role::Finance).await;
    let filler = mount.0.join("filler");
    let filled = fill(&filler);
    let codes = callbacks(&app, &payments, 0).await;
    assert!(codes.iter().any(|(_, c)| c == "99"), "a full disk is a retry ({filled} bytes of filler): {codes:?}");
    nothing_acknowledged_that_is_not_committed(&app, &codes).await;
    // A settlement import on the full disk: refused as a server-side failure, nothing of it kept.
    let file = settlement_file(5_000);
    let files_before = crate::recon::stored_files(&app, &finance).await;
    let (status, v) = crate::recon::upload_as(&app, &finance, "vnpay", "canonical", file.clone()).await;
    // SPEC §4.1: a server-side failure is `internal` with a generic message (the cause, SQLite's
    // "database or disk is full", goes to the server's log).
    assert_eq!((status, v["error"]["code"].as_str()), (500, Some("internal")), "an import on a full disk: {v}");
    assert_eq!(crate::recon::stored_files(&app, &finance).await, files_before, "nothing of the import is kept");
    // Space freed: the same server applies the retries, and the same file imports.
    std::fs::remove_file(&filler).unwrap();
    recovers(&app, &payments).await;
    let (status, v) = crate::recon::upload_as(&app, &finance, "vnpay", "canonical", file).await;
    assert_eq!(status, 201, "{v}");
    let _ = app.stop().await;
    drop(mount);
}

/// A canonical VNPAY settlement file of `n` lines (naming no payment: unmatched lines are still
/// stored with the file).
pub(crate) fn settlement_file(n: usize) -> Vec<u8> {
    use feerecon::settlement::{Line, LineStatus, Profile, write};
    let at = chrono::DateTime::parse_from_rfc3339("2024-07-15T09:00:00+07:00").unwrap().to_utc();
    let lines: Vec<Line> = (1..=n)
        .map(|i| Line {
            line_no: i + 1,
            gateway_txn_no: format!("88{i:06}"),
            txn_ref: format!("240715F{i:06}"),
            amount: 135_000,
            fee: 1_100,
            txn_time: at,
            status: LineStatus::Success,
        })
        .collect();
    write(&Profile::canonical(), &lines)
}

/// SQLite's one writer held by another process (a `BEGIN IMMEDIATE` left open, as a stuck
/// maintenance script would): the service's writes wait for SQLite's busy timeout, and callbacks
/// are answered with the gateway's retry reply within the callback deadline instead of waiting;
/// once the other process lets go, the same server applies the retries. SQLite's counterpart of
/// the exhausted pool: its writer is one connection behind a queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_writer_held_elsewhere_answers_retry_and_recovers() {
    use sqlx::Connection as _;
    let Some((url, dir)) = crate::helpers::fresh_db(Db::Sqlite).await else { return };
    let app = app_with(url.clone(), dir, Db::Sqlite, &[("FEERECON_REQUEST_TIMEOUT", "4s")]).await;
    let portal = app.token_for(Role::Portal).await;
    let payments = pending(&app, &portal, 0, 12).await;
    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut other).await.unwrap();
    let codes = callbacks(&app, &payments, 0).await;
    assert!(codes.iter().all(|(_, c)| c == "99"), "the writer is held elsewhere: retry: {codes:?}");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    nothing_acknowledged_that_is_not_committed(&app, &codes).await;
    recovers(&app, &payments).await;
    let _ = app.stop().await;
}
