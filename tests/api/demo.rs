//! `feerecon demo` as a new user runs it, checked against the database and the ledger it leaves
//! in its folder: the figures it prints are the closed reports' and the scenario's; a re-run
//! starts clean and plays the same figures; `--keep` plays another date on top. And the
//! simulator's settlement files (`POST /sim/settlement`, `feerecon settlement simulate`).

use std::collections::BTreeMap;
use std::path::Path;

use feerecon::domain::payment::{DeliveryState, Gateway, PaymentStatus};
use feerecon::domain::recon::ExceptionState;
use feerecon::settlement::Profile;
use feerecon::store::Store;
use serde_json::Value;

use crate::cli::Run;
use crate::helpers::{Db, json};
use crate::world::World;

/// The gateways the demo plays (DVCQG is left to its own test).
const PLAYED: &[Gateway] = &[Gateway::Vnpay, Gateway::Momo, Gateway::Zalopay];

const DATE: &str = "2026-03-16";
const CASES: &str = "60";

/// Runs `feerecon demo args...` in `cwd` with a clean environment for the demo's variables.
async fn demo(cwd: &Path, args: &[&str]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_feerecon"))
        .arg("demo")
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .env_remove("FEERECON_POLICY")
        .env_remove("FEERECON_CATALOGUE")
        .env_remove("FEERECON_SETTLEMENT_PROFILES")
        .kill_on_drop(true)
        .output()
        .await
        .expect("the binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The figures printed under each gateway's heading: gateway → category → (count, amount).
fn printed(stdout: &str) -> BTreeMap<String, BTreeMap<String, (i64, i64)>> {
    let mut out: BTreeMap<String, BTreeMap<String, (i64, i64)>> = BTreeMap::new();
    let mut current = None;
    for line in stdout.lines().skip_while(|l| !l.starts_with("=== ")) {
        if let Some(g) = ["VNPAY (", "MOMO (", "ZALOPAY ("].iter().find(|g| line.starts_with(**g)) {
            current = Some(g.trim_end_matches(" (").to_lowercase());
            continue;
        }
        let cells: Vec<&str> = line.split_whitespace().collect();
        if let (Some(g), [category, count, amount, "đ"]) = (&current, cells.as_slice())
            && line.starts_with("  ")
            && let Ok(count) = count.parse::<i64>()
        {
            let amount: i64 = amount.replace('.', "").parse().unwrap();
            out.entry(g.clone()).or_default().insert((*category).to_owned(), (count, amount));
        }
    }
    out
}

/// The latest report of the date per gateway, as the database holds it: category → (count, amount).
async fn stored(store: &Store, date: &str) -> BTreeMap<String, BTreeMap<String, (i64, i64)>> {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    let mut out = BTreeMap::new();
    for g in PLAYED {
        let run = store.latest_run(d, *g).await.unwrap().expect("a run per gateway");
        let report: Value = serde_json::from_str(&run.report).unwrap();
        let summary = report["summary"].as_object().unwrap();
        let figures = summary
            .iter()
            .map(|(k, v)| (k.clone(), (v["count"].as_i64().unwrap(), v["amount"].as_i64().unwrap())))
            .collect();
        out.insert(g.as_str().to_owned(), figures);
    }
    out
}

async fn open(folder: &Path) -> Store {
    let url = format!("sqlite://{}?mode=rw", folder.join("feerecon-demo.db").display());
    Store::connect(&url).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_plays_a_day_that_the_database_and_the_ledger_confirm() {
    let cwd = tempfile::tempdir().unwrap();
    let folder = cwd.path().join("feerecon-demo");
    let run = demo(cwd.path(), &["--exit", "--date", DATE, "--cases", CASES]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let shown = printed(&run.stdout);
    let store = open(&folder).await;
    let db = stored(&store, DATE).await;
    // Every printed figure is the closed report's.
    assert_eq!(shown, db, "{}", run.stdout);
    let fig = |g: &str, c: &str| db[g][c];
    // The scenario's wrong lines, each where it was injected.
    assert_eq!(fig("vnpay", "duplicate_settlement_line").0, 1);
    assert_eq!(fig("vnpay", "missing_in_records"), (1, 50_000), "the stranger's line");
    assert_eq!(fig("vnpay", "fee_mismatch").0, 1, "the case corrected after payment");
    assert_eq!(fig("vnpay", "missing_in_settlement").0, 1, "the line VNPAY left out");
    assert_eq!(fig("vnpay", "unconfirmed_in_records").0, 0, "the wrong-amount payment was confirmed from its line");
    assert_eq!(fig("momo", "refund").0, 1);
    assert_eq!(fig("momo", "amount_mismatch").0, 1);
    assert_eq!(fig("zalopay", "duplicate_payment").0, 1, "the case paid twice");
    assert_eq!(fig("zalopay", "missing_in_settlement").0, 0, "the next day's file brought the late line");
    for g in ["vnpay", "momo", "zalopay"] {
        assert!(fig(g, "matched").0 > 0, "{g}");
    }
    // Closed, with every exception of the date decided.
    let d = chrono::NaiveDate::parse_from_str(DATE, "%Y-%m-%d").unwrap();
    let days = store.day_gateways(d).await.unwrap();
    assert_eq!(days.iter().filter(|g| g.closed_at.is_some()).count(), 3, "{days:?}");
    let mut states = BTreeMap::new();
    let mut approved = 0;
    for g in PLAYED {
        for e in store.gateway_exceptions(*g).await.unwrap() {
            *states.entry(e.state).or_insert(0) += 1;
            let r: Option<serde_json::Value> = e.resolution.as_deref().map(|r| serde_json::from_str(r).unwrap());
            approved +=
                usize::from(e.state == ExceptionState::Resolved && r.is_some_and(|r| r["approved_by"].is_string()));
        }
    }
    assert!((1..8).contains(&approved), "some resolutions moved money, some were accepts: {approved}");
    assert_eq!(states.get(&ExceptionState::Resolved), Some(&8), "{states:?}");
    assert_eq!(states.get(&ExceptionState::Superseded), Some(&1), "the late line's exception: {states:?}");
    assert_eq!(states.len(), 2, "nothing open or pending: {states:?}");
    // The resolved count it printed is the database's, and the dashboard's address and login are
    // printed with --exit too.
    let said = format!("exceptions: 8 resolved, {approved} of them moving money under four eyes");
    assert!(run.stdout.contains(&said), "{said}: {}", run.stdout);
    assert!(run.stdout.contains("; 60 cases\n"), "the cases, read back from /metrics: {}", run.stdout);
    assert!(
        run.stdout.contains("dashboard: http://127.0.0.1:") && run.stdout.contains("--exit: the server stops now"),
        "{}",
        run.stdout
    );
    // The cases, the payments and the notifications.
    assert_eq!(store.case_count().await.unwrap(), 60);
    let payments: BTreeMap<PaymentStatus, i64> = store.payment_counts().await.unwrap().into_iter().collect();
    let summary: Value = serde_json::from_slice(&std::fs::read(folder.join("summary.json")).unwrap()).unwrap();
    assert_eq!(payments.get(&PaymentStatus::Waived).copied().unwrap_or(0), summary["waived"][0].as_i64().unwrap());
    assert_eq!(
        payments.get(&PaymentStatus::BudgetCovered).copied().unwrap_or(0),
        summary["budget_covered"][0].as_i64().unwrap()
    );
    assert!(summary["budget_covered"][0].as_i64().unwrap() > 0, "Hà Nội's budget supports MoF fees online in 2026");
    assert_eq!(payments.get(&PaymentStatus::Pending), None, "no payment is left pending: {payments:?}");
    let notes: BTreeMap<DeliveryState, i64> = store.notification_counts().await.unwrap().into_iter().collect();
    let delivered = notes.get(&DeliveryState::Delivered).copied().unwrap_or(0);
    assert_eq!(notes.len(), 1, "every notification delivered: {notes:?}");
    assert_eq!(summary["received"]["events"].as_i64(), Some(delivered), "the receiver counted each event once");
    assert_eq!(delivered, payments.values().sum::<i64>(), "one event per payment, at its last change: {payments:?}");
    assert!(run.stdout.contains(r#"{"RspCode":"97","Message":"Invalid signature"}"#), "{}", run.stdout);
    assert_eq!(summary["flags"]["duplicate_payment"], 1);
    // A receipt for each payment that collected money or that the budget owes, matching the ledger.
    assert_eq!(summary["receipts"][2], true, "{}", summary["receipts"]);
    assert_eq!(
        summary["receipts"][0].as_i64(),
        Some(payments[&PaymentStatus::Paid] + payments[&PaymentStatus::BudgetCovered]),
        "{payments:?}"
    );
    assert_eq!(summary["flags"]["callback_amount_mismatch"], 1);
    // The ledger: the chain in the database, the export in the folder, the accounts' meanings.
    let mut balances: BTreeMap<String, i64> = BTreeMap::new();
    let entries = store.ledger_entries(0, 1_000_000).await.unwrap();
    for e in &entries {
        *balances.entry(e.account.clone()).or_insert(0) += e.debit - e.credit;
    }
    assert_eq!(balances.values().sum::<i64>(), 0, "every posting balances");
    assert_eq!(balances.get("suspense").copied().unwrap_or(0), 0, "every settled line is explained: {balances:?}");
    assert_eq!(
        balances.get("gateway_clearing:vnpay").copied().unwrap_or(0),
        fig("vnpay", "missing_in_settlement").1,
        "VNPAY still owes the payment it left out: {balances:?}"
    );
    let export = folder.join(format!("ledger-export-{DATE}"));
    let key: Value = serde_json::from_slice(&std::fs::read(folder.join("ledger-public-key.json")).unwrap()).unwrap();
    let verified = feerecon::ledger::verify::verify(
        &std::fs::read(export.join("entries.csv")).unwrap(),
        &std::fs::read(export.join("manifest.json")).unwrap(),
        key["public_key"].as_str(),
    )
    .unwrap();
    assert_eq!(verified.entries, summary["export_entries"].as_i64().unwrap());
    assert_eq!(verified.last_seq, entries.last().unwrap().seq, "the export holds the whole day");
    store.close().await;

    // A re-run starts clean and plays the same figures.
    let again = demo(cwd.path(), &["--exit", "--date", DATE, "--cases", CASES]).await;
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert_eq!(printed(&again.stdout), shown, "the same date and seed give the same figures");
    let store = open(&folder).await;
    assert_eq!(store.case_count().await.unwrap(), 60, "the earlier run's cases are gone");
    let hash_clean = store.latest_run(d, Gateway::Vnpay).await.unwrap().unwrap().report_hash;
    store.close().await;

    // --keep plays the next date on top; the closed date is untouched; a played date is refused.
    let kept = demo(cwd.path(), &["--exit", "--keep", "--date", "2026-03-17", "--cases", "20"]).await;
    assert_eq!(kept.code, 0, "{}\n{}", kept.stdout, kept.stderr);
    let store = open(&folder).await;
    assert_eq!(store.case_count().await.unwrap(), 80);
    assert_eq!(store.latest_run(d, Gateway::Vnpay).await.unwrap().unwrap().report_hash, hash_clean);
    assert!(store.user_by_name("lan-2").await.unwrap().is_some(), "a kept run adds its own officers");
    store.close().await;
    let twice = demo(cwd.path(), &["--exit", "--keep", "--date", "2026-03-17", "--cases", "20"]).await;
    assert_eq!(twice.code, 1, "{}\n{}", twice.stdout, twice.stderr);
    assert!(twice.stderr.contains("already played"), "{}", twice.stderr);
    let earlier = demo(cwd.path(), &["--exit", "--keep", "--date", "2026-03-10", "--cases", "20"]).await;
    assert_eq!(earlier.code, 1, "the ledger's dates only go forward: {}", earlier.stderr);
    assert!(earlier.stderr.contains("is not after it"), "{}", earlier.stderr);

    // A folder the demo did not make is never emptied.
    let foreign = cwd.path().join("mine");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "keep me").unwrap();
    let refused = demo(cwd.path(), &["--exit", "--dir", "mine", "--date", DATE]).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert_eq!(std::fs::read_to_string(foreign.join("notes.txt")).unwrap(), "keep me");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_writes_a_day_s_settlement_file_in_the_gateway_s_format() {
    let mut w = World::new(Db::Sqlite).await.unwrap();
    w.at("2026-03-16T10:00:00+07:00");
    let early = w.pay("2026-03-16", false).await;
    let late = w.pay("2026-03-16", false).await;
    // The day's file over HTTP, with one line put off to the next day's file.
    let ask = |date: &str, next_day: Vec<String>| serde_json::json!({"gateway": "vnpay", "date": date, "discrepancies": {"next_day": next_day}});
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/sim/settlement", w.sim.url()))
        .json(&ask("2026-03-16", vec![late.txn_ref.clone()]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let day = res.bytes().await.unwrap().to_vec();
    let profile = Profile::resolve(Path::new(feerecon::embedded::PROFILES), "vnpay").unwrap();
    let lines = feerecon::settlement::parse(&profile, &day, &|_| {}).unwrap();
    assert_eq!(lines.iter().map(|l| l.txn_ref.as_str()).collect::<Vec<_>>(), [early.txn_ref.as_str()]);
    assert_eq!(lines[0].amount, early.amount);
    // The server imports it with the gateway's own profile.
    let (s, v) = json(
        w.app
            .client
            .post(w.app.url("/api/v1/settlements?gateway=vnpay&profile=vnpay&name=vnpay-2026-03-16.csv"))
            .bearer_auth(&w.f1)
            .header("content-type", "text/csv")
            .body(day)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, v["lines"].as_i64()), (201, Some(1)), "{v}");
    // The next day's file, asked from the command line, brings the late line.
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("next.csv");
    let run = crate::cli::feerecon(
        "sqlite://unused.db",
        &[
            "settlement",
            "simulate",
            "--simulator",
            &w.sim.url(),
            "--gateway",
            "vnpay",
            "--date",
            "2026-03-17",
            "--out",
            file.to_str().unwrap(),
        ],
        "",
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let next = feerecon::settlement::parse(&profile, &std::fs::read(&file).unwrap(), &|_| {}).unwrap();
    assert_eq!(next.iter().map(|l| l.txn_ref.as_str()).collect::<Vec<_>>(), [late.txn_ref.as_str()]);
    // A path is not a profile name: the simulator reads no file a caller names.
    let res = http
        .post(format!("{}/sim/settlement", w.sim.url()))
        .json(&serde_json::json!({"gateway": "vnpay", "date": "2026-03-16", "profile": "/etc/passwd"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_defaults_work_outside_the_repository() {
    // A folder with no fixtures in it, and no FEERECON_POLICY / CATALOGUE / PROFILES set.
    let cwd = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_feerecon"))
        .args([
            "quote",
            "--procedure",
            "1.001193",
            "--channel",
            "counter",
            "--received",
            "2024-07-15",
            "--format",
            "json",
        ])
        .current_dir(cwd.path())
        .env_remove("FEERECON_POLICY")
        .env_remove("FEERECON_CATALOGUE")
        .env_remove("FEERECON_SETTLEMENT_PROFILES")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let q: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(q["policy"]["id"], "vinh-phuc", "the default policy, from the binary: {q}");
    // The default profiles too: the server's import names them.
    let profiles = feerecon::recon::Finance::profile_names_in(Path::new(feerecon::embedded::PROFILES));
    assert_eq!(profiles, ["canonical", "dvcqg", "momo", "vnpay", "zalopay"]);
    // A file named by the environment still wins, and its errors name it.
    let bad = cwd.path().join("policy.toml");
    std::fs::write(&bad, "[policy]\nid = \"x\"\n").unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_feerecon"))
        .args(["quote", "--procedure", "1.001193", "--channel", "counter", "--received", "2024-07-15"])
        .current_dir(cwd.path())
        .env("FEERECON_POLICY", &bad)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("policy.toml"), "{}", String::from_utf8_lossy(&out.stderr));
}
