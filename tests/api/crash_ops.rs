//! Crash cycles during the finance work of a day (issue 21): each cycle the simulated VNPAY is paid
//! for a fresh business date, then a finance user imports that date's settlement file, runs the
//! reconciliation, closes the date and downloads the ledger export, while `serve` is killed
//! (`kill -9`) at a random moment; an auditor's `feerecon ledger export` is killed the same way.
//! After the restart the user retries what was not acknowledged. Then: an import is all or nothing
//! (one file per date, every line), a run is whole (every item) or absent, a close happened once
//! (one settlement posting per line; a repeated close changes nothing), every export that
//! completed verifies and a killed one is retried to completion, the chain verifies, and the
//! outbox delivered every event to a receiver. On SQLite and PostgreSQL; `Workload` (crash.rs)
//! sets the cycles.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDate;
use feerecon::domain::payment::Gateway;
use feerecon::domain::{Clock, ShiftedClock};
use feerecon::simulator::{Discrepancies, Faults, SimOutcome};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::crash::{Harness, Load, Workload};
use crate::helpers::{Db, json as read_json};

/// One business date's work.
#[derive(Clone, Default)]
struct Day {
    date: String,
    file: Vec<u8>,
    /// (txn_ref, payment_id, case_code)
    payments: Vec<(String, String, String)>,
    imported: bool,
    ran: bool,
    closed: bool,
    exported: bool,
    /// Where this cycle's killed CLI export wrote.
    cli_dir: Option<PathBuf>,
}

#[derive(Default)]
struct OpsState {
    days: Vec<Day>,
    next_case: u32,
    /// Requests of each kind that failed because the server died under them.
    cut: [usize; 4],
    /// Killed CLI exports: left nothing, left files that do not verify, or had finished.
    cli_killed: [usize; 3],
}

pub struct OpsLoad {
    clock: Arc<ShiftedClock>,
    receiver: crate::notify::Receiver,
    dirs: tempfile::TempDir,
    state: Mutex<OpsState>,
}

const STEPS: [&str; 4] = ["import", "run", "close", "export"];

impl OpsLoad {
    fn day(&self, cycle: usize) -> Day {
        self.state.lock().unwrap().days[cycle].clone()
    }

    fn update(&self, cycle: usize, f: impl FnOnce(&mut Day)) {
        f(&mut self.state.lock().unwrap().days[cycle]);
    }

    /// A pending VNPAY payment for a fresh case, then the citizen pays and the callback lands.
    async fn paid_payment(&self, h: &Harness) -> (String, String, String) {
        let seq = {
            let mut s = self.state.lock().unwrap();
            s.next_case += 1;
            s.next_case
        };
        let code = format!("000.00.12.H62-2408{:02}-{:04}", 1 + (seq - 1) / 9_999, (seq - 1) % 9_999 + 1);
        let body = json!({"procedure_code": crate::gateways::GPLX, "applicant_name": "B", "channel": "counter",
            "received_at": "2024-08-01T10:00:00+07:00", "receiving_unit": "000.00.12.H62"});
        let res = h.client.put(format!("{}/api/v1/cases/{code}", h.base)).bearer_auth(&h.portal).json(&body).send();
        assert!(res.await.unwrap().status().is_success());
        let res = h
            .client
            .post(format!("{}/api/v1/cases/{code}/payments", h.base))
            .bearer_auth(&h.portal)
            .header("Idempotency-Key", "ops")
            .json(&json!({"gateway": "vnpay", "return_url": "https://x.vn/", "client_ip": "1.2.3.4"}))
            .send();
        let (s, p) = read_json(res.await.unwrap()).await;
        assert_eq!(s, 201, "{p}");
        let txn_ref = p["txn_ref"].as_str().unwrap().to_owned();
        reqwest::get(p["pay_url"].as_str().unwrap()).await.unwrap();
        let ds = h.sim.pay(&txn_ref, SimOutcome::Success, &Faults::default()).await.unwrap();
        assert!(ds.iter().any(|d| d.body.contains("\"RspCode\":\"00\"")), "{txn_ref}: {:?}", ds);
        (txn_ref, p["payment_id"].as_str().unwrap().to_owned(), code)
    }

    /// One step as the finance user does it: `Some((status, body))`, or `None` when the server
    /// died under it.
    async fn step(&self, h: &Harness, d: &Day, what: &str) -> Option<(u16, Value)> {
        let req = match what {
            "import" => h
                .client
                .post(format!("{}/api/v1/settlements?gateway=vnpay&profile=canonical&name={}.csv", h.base, d.date))
                .header("content-type", "text/csv")
                .body(d.file.clone()),
            "run" => h
                .client
                .post(format!("{}/api/v1/reconciliations", h.base))
                .json(&json!({"date": d.date, "gateway": "vnpay"})),
            "close" => {
                h.client.post(format!("{}/api/v1/days/{}/close", h.base, d.date)).json(&json!({"gateway": "vnpay"}))
            }
            _ => h.client.get(format!("{}/api/v1/ledger/export?from={}&to={}", h.base, d.date, d.date)),
        };
        let res = req.bearer_auth(&h.finance).send().await.ok()?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await.ok()?;
        if what == "export" && status == 200 {
            let (csv, manifest) = unzip(&bytes);
            let v = feerecon::ledger::verify::verify(&csv, &manifest, None);
            assert!(v.is_ok(), "{}: an export the server completed verifies: {v:?}", d.date);
            return Some((status, Value::Null));
        }
        Some((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// `feerecon ledger export` of a date into `dir`; killed after `kill_after` when given.
    async fn cli_export(h: &Harness, date: &str, dir: &Path, kill_after: Option<Duration>) -> Option<bool> {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_feerecon"));
        cmd.args(["ledger", "export", "--from", date, "--to", date, "--out"])
            .arg(dir)
            .env("FEERECON_DATABASE_URL", &h.url)
            .env("FEERECON_LEDGER_KEY", crate::helpers::test_key_path(&h.url))
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        if let Some(after) = kill_after {
            tokio::select! {
                st = child.wait() => return Some(st.unwrap().success()),
                () = tokio::time::sleep(after) => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    return None;
                }
            }
        }
        Some(child.wait().await.unwrap().success())
    }
}

/// The two files of the API's export zip.
fn unzip(bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
    use std::io::Read as _;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut read = |name: &str| {
        let mut out = Vec::new();
        z.by_name(name).unwrap().read_to_end(&mut out).unwrap();
        out
    };
    (read("entries.csv"), read("manifest.json"))
}

/// Whether a folder holds an export that verifies: `None` when it holds nothing.
fn dir_verifies(dir: &Path) -> Option<bool> {
    let csv = std::fs::read(dir.join("entries.csv")).ok();
    let manifest = std::fs::read(dir.join("manifest.json")).ok();
    match (csv, manifest) {
        (None, None) => None,
        (Some(c), Some(m)) => Some(feerecon::ledger::verify::verify(&c, &m, None).is_ok()),
        _ => Some(false),
    }
}

#[async_trait::async_trait]
impl Load for OpsLoad {
    async fn prepare(&self, h: &Harness, cycle: usize, w: &Workload, _seed: u64) {
        if cycle > 0 {
            self.clock.advance(chrono::TimeDelta::days(1));
        }
        let date: NaiveDate = self.clock.now().with_timezone(&feerecon::domain::vn_offset()).date_naive();
        let mut payments = Vec::new();
        for _ in 0..w.payments_per_cycle.div_ceil(3) {
            payments.push(self.paid_payment(h).await);
        }
        let file = h.sim.day_file(Gateway::Vnpay, date, Some("canonical"), &Discrepancies::default()).unwrap();
        assert_eq!(file.lines, payments.len());
        self.state.lock().unwrap().days.push(Day {
            date: date.to_string(),
            file: file.bytes,
            payments,
            ..Day::default()
        });
    }

    async fn during(&self, h: &Harness, cycle: usize, _w: &Workload, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let d = self.day(cycle);
        let cli_dir = self.dirs.path().join(format!("cli-{cycle}"));
        let kill_cli = Duration::from_millis(rng.gen_range(0..=60));
        let cli = async {
            let done = Self::cli_export(h, &d.date, &cli_dir, Some(kill_cli)).await;
            self.update(cycle, |d| d.cli_dir = Some(cli_dir.clone()));
            done
        };
        let steps = async {
            for (i, what) in STEPS.iter().enumerate() {
                let Some((status, v)) = self.step(h, &d, what).await else {
                    self.state.lock().unwrap().cut[i] += 1;
                    return;
                };
                let ok = matches!((*what, status), ("import", 201) | ("run", 201) | ("close" | "export", 200));
                assert!(ok || status >= 500, "{} {what}: {status} {v}", d.date);
                if !ok {
                    return;
                }
                self.update(cycle, |d| match *what {
                    "import" => d.imported = true,
                    "run" => d.ran = true,
                    "close" => d.closed = true,
                    _ => d.exported = true,
                });
            }
        };
        let (cli_done, ()) = tokio::join!(cli, steps);
        let kind = match (cli_done, dir_verifies(&cli_dir)) {
            (Some(true), v) => {
                assert_eq!(v, Some(true), "{}: a finished CLI export verifies", d.date);
                2
            }
            (_, None) => 0,
            (_, Some(_)) => 1,
        };
        self.state.lock().unwrap().cli_killed[kind] += 1;
    }

    async fn after_restart(&self, h: &Harness, cycle: usize) {
        let days = self.state.lock().unwrap().days.clone();
        let files = h.store.settlement_files(Some(Gateway::Vnpay)).await.unwrap();
        for d in &days[..=cycle] {
            let name = format!("{}.csv", d.date);
            let stored: Vec<_> = files.iter().filter(|f| f.name == name).collect();
            assert!(stored.len() <= 1, "{name}: imported once");
            assert!(!d.imported || stored.len() == 1, "{name}: acknowledged, so kept");
            if let Some(f) = stored.first() {
                assert_eq!(f.line_count as usize, d.payments.len(), "{name}: every line or none");
            }
            let date: NaiveDate = d.date.parse().unwrap();
            let run = h.store.latest_run(date, Gateway::Vnpay).await.unwrap();
            assert!(!d.ran || run.is_some(), "{}: an acknowledged run is kept", d.date);
            if let Some(r) = run {
                let items = h.store.run_items(&r.run_id, None, false, None, 100_000).await.unwrap();
                assert_eq!(items.len(), d.payments.len(), "{}: a run is stored whole", d.date);
            }
            let closed = h.store.closure(date, Gateway::Vnpay).await.unwrap();
            assert!(!d.closed || closed.is_some(), "{}: an acknowledged close is kept", d.date);
        }
    }

    async fn recover(&self, h: &Harness) {
        let days = self.state.lock().unwrap().days.clone();
        for (cycle, d) in days.iter().enumerate() {
            // Each step again, as the user would: a repeated import is refused as a duplicate, a
            // repeated close of a closed date changes nothing (an import acknowledged is a duplicate).
            let (s, v) = self.step(h, d, "import").await.unwrap();
            assert!(s == 409 || (s == 201 && !d.imported), "{} import again: {s} {v}", d.date);
            let (s, v) = self.step(h, d, "run").await.unwrap();
            assert!(s == 201 || s == 200, "{} run again: {s} {v}", d.date);
            let (s, v) = self.step(h, d, "close").await.unwrap();
            assert!(s == 200 || (s == 409 && v["error"]["code"] == "day_closed"), "{} close again: {s} {v}", d.date);
            let (s, _) = self.step(h, d, "export").await.unwrap();
            assert_eq!(s, 200, "{} export again", d.date);
            // The killed CLI export, run again into the same folder, completes and verifies.
            if let Some(dir) = &d.cli_dir {
                assert_eq!(Self::cli_export(h, &d.date, dir, None).await, Some(true), "{}", d.date);
                assert_eq!(dir_verifies(dir), Some(true), "{}: the retried CLI export verifies", d.date);
            }
            self.update(cycle, |d| d.closed = true);
        }
    }

    async fn check(&self, h: &Harness) {
        let days = self.state.lock().unwrap().days.clone();
        let files = h.store.settlement_files(Some(Gateway::Vnpay)).await.unwrap();
        assert_eq!(files.len(), days.len(), "one file per date");
        let entries = h.all_ledger_entries().await;
        let mut events = BTreeSet::new();
        for d in &days {
            let date: NaiveDate = d.date.parse().unwrap();
            assert!(h.store.closure(date, Gateway::Vnpay).await.unwrap().is_some(), "{} closed", d.date);
            for (txn_ref, id, code) in &d.payments {
                let p = h.store.get_payment(id).await.unwrap().unwrap();
                assert_eq!(p.status.as_str(), "paid", "{txn_ref}");
                let postings = |kind: &str| {
                    entries
                        .iter()
                        .filter(|e| e.kind == kind && e.refs.contains(&format!("payment={id}")))
                        .map(|e| e.posting_id.as_str())
                        .collect::<BTreeSet<_>>()
                        .len()
                };
                assert_eq!(postings("payment_confirmed"), 1, "{txn_ref}: one confirmation");
                assert_eq!(postings("settlement"), 1, "{txn_ref}: settled once");
                crate::crash::one_signed_receipt(h, &p).await;
                for e in h.store.case_events(&crate::helpers::cc(code)).await.unwrap() {
                    events.insert(e.event_id);
                }
            }
        }
        let v = h.ledger_verifies().await;
        assert_eq!(v["ok"], true, "{v}");
        // The outbox delivered every event, each once it was acknowledged.
        self.receiver.wait_for(events.len()).await;
        let got = self.receiver.counts();
        for e in &events {
            assert!(got.contains_key(e), "{e} delivered");
        }
    }

    fn summary(&self) -> String {
        let s = self.state.lock().unwrap();
        let payments: usize = s.days.iter().map(|d| d.payments.len()).sum();
        let cut: Vec<String> = STEPS.iter().zip(s.cut).map(|(w, n)| format!("{w} {n}")).collect();
        format!(
            "{} dates, {payments} payments; requests cut by the kill: {}; CLI exports killed: {} left nothing, {} left files that do not verify, {} had finished",
            s.days.len(),
            cut.join(", "),
            s.cli_killed[0],
            s.cli_killed[1],
            s.cli_killed[2]
        )
    }
}

async fn finance_work_survives_kill_9(db: Db) {
    let mut w = Workload::from_env();
    // The four requests of a cycle take tens of milliseconds: the kill lands among them.
    w.kill_window = (Duration::from_millis(1), Duration::from_millis(60));
    // Each cycle pays on its own business date, in the past (a date closes once it is over).
    let start = chrono::Utc::now() - chrono::TimeDelta::days(w.cycles as i64 + 2);
    let clock = Arc::new(ShiftedClock::starting_at(start));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let receiver = crate::notify::Receiver::start(port).await;
    let hook = format!("http://127.0.0.1:{port}/hooks/feerecon");
    let env = [("FEERECON_PORTAL_WEBHOOK_URL", hook.as_str()), ("FEERECON_PORTAL_WEBHOOK_SECRET", "whsec-ops")];
    let Some(mut h) = Harness::start_clocked(db, &env, clock.clone()).await else { return };
    let load = OpsLoad { clock, receiver, dirs: tempfile::tempdir().unwrap(), state: Mutex::default() };
    h.run(&load, &w).await;
    assert_eq!(h.kills, w.cycles);
}

crate::per_database!(finance_work_survives_kill_9_at_random_moments, super::finance_work_survives_kill_9);

crate::both_backends! {
    /// `feerecon settlement import` killed (`kill -9`) at a tenth, three tenths... of the time a
    /// whole import takes (measured first on a database of its own): the file is
    /// whole (its first and last lines, the row's line count) or absent, never partial; the
    /// user's retry imports it once, and a retry after a whole import is refused naming it.
    async fn a_killed_cli_settlement_import_is_whole_or_absent(app: TestApp) {
        use feerecon::settlement::LineStatus;
        const LINES: usize = 20_000;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vnpay-day.csv");
        std::fs::write(&file, crate::db_faults::settlement_file(LINES)).unwrap();
        let (first, last) = ("88000001".to_owned(), format!("88{LINES:06}"));
        let whole_or_absent = || async {
            let files = app.store.settlement_files(None).await.unwrap();
            let a = app.store.settlement_line(Gateway::Vnpay, &first, LineStatus::Success).await.unwrap();
            let b = app.store.settlement_line(Gateway::Vnpay, &last, LineStatus::Success).await.unwrap();
            match files.as_slice() {
                [] => assert!(a.is_none() && b.is_none(), "no file, no lines"),
                [f] => {
                    assert_eq!(f.line_count, LINES as i64, "the file row counts every line");
                    assert!(a.is_some() && b.is_some(), "a stored file has its first and last lines");
                }
                more => panic!("one import at most: {} files", more.len()),
            }
            files.len()
        };
        // How long one whole import takes here, on a database of its own: the kills are spread
        // over that time, so most land while the file is being written, not before it starts.
        let path = file.to_str().unwrap();
        let args = ["settlement", "import", "--gateway", "vnpay", "--profile", "canonical", "--operator", "thu", path];
        let db = if app.database_url.starts_with("sqlite") { Db::Sqlite } else { Db::Postgres };
        let (probe, _probe_dir) = crate::helpers::fresh_db(db).await.unwrap();
        let made = crate::cli::feerecon(&probe, &["migrate"], "", &[]).await;
        assert_eq!(made.code, 0, "{}", made.stderr);
        let started = std::time::Instant::now();
        let whole = crate::cli::feerecon(&probe, &args, "", &[]).await;
        assert_eq!(whole.code, 0, "{}", whole.stderr);
        let full = started.elapsed();
        let mut killed = 0;
        for tenths in [1u32, 3, 5, 7, 9] {
            let after = full * tenths / 10;
            if whole_or_absent().await == 1 {
                break;
            }
            let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_feerecon"))
                .args(["settlement", "import", "--gateway", "vnpay", "--profile", "canonical", "--operator", "thu"])
                .arg(&file)
                .env("FEERECON_DATABASE_URL", &app.database_url)
                .env("FEERECON_LEDGER_KEY", crate::helpers::test_key_path(&app.database_url))
                .env_remove("RUST_LOG")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            tokio::select! {
                st = child.wait() => assert!(st.unwrap().success(), "an import that ran to its end succeeds"),
                () = tokio::time::sleep(after) => {
                    child.start_kill().unwrap();
                    let _ = child.wait().await;
                    killed += 1;
                }
            }
        }
        assert!(killed >= 1, "the import was killed at least once (the first kill comes at a tenth of its time)");
        crate::pg::loud(&format!(
            "settlement import ({} ms whole): {killed} kills, stored after them: {}",
            full.as_millis(),
            whole_or_absent().await
        ));
        if whole_or_absent().await == 0 {
            let r = crate::cli::feerecon(&app.database_url, &args, "", &[]).await;
            assert_eq!(r.code, 0, "the retry after {killed} kills imports: {}", r.stderr);
        }
        assert_eq!(whole_or_absent().await, 1);
        let again = crate::cli::feerecon(&app.database_url, &args, "", &[]).await;
        assert_ne!(again.code, 0, "the same file twice is refused");
        assert_eq!(whole_or_absent().await, 1);
    }
}
