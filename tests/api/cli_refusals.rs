//! The command line refuses bad input before it changes anything, and fails in the way SPEC
//! §3.2 says: an `--out` that cannot be written, a database that does not exist or cannot be
//! reached, a missing ledger key, a closed standard output; and every `--help` says what each
//! command and argument is.

use crate::cli::feerecon;

/// The actions of the audit log, in order.
async fn audit_actions(url: &str) -> Vec<String> {
    let store = feerecon::store::Store::connect(url).await.unwrap();
    let actions = store.audit_log(0, 1000).await.unwrap().into_iter().map(|e| e.action).collect();
    store.close().await;
    actions
}

crate::both_databases! {
    async fn an_out_path_that_cannot_be_written_changes_nothing(url: String) {
        let dir = tempfile::tempdir().unwrap();
        let nowhere = dir.path().join("no-such-folder").join("x.csv");
        let nowhere = nowhere.to_str().unwrap();
        let folder = dir.path().to_str().unwrap();
        for out in [nowhere, folder] {
            let args = ["reconcile", "--date", "2024-07-16", "--gateway", "vnpay", "--format", "csv", "--out", out];
            let r = feerecon(&url, &args, "", &[]).await;
            assert_eq!(r.code, 1, "{out}: {}", r.stderr);
            assert!(r.stderr.contains(out) && r.stderr.contains("--out"), "{out}: {}", r.stderr);
            assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        }
        // No run, no audit entry.
        assert!(audit_actions(&url).await.is_empty(), "{:?}", audit_actions(&url).await);
        for args in [
            &["receipts", "summary", "--date", "2024-07-16", "--out", nowhere][..],
            &["remittance", "statement", "--period", "2024-07", "--out", nowhere][..],
        ] {
            let r = feerecon(&url, args, "", &[]).await;
            assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
            assert!(r.stderr.contains(nowhere), "{args:?}: {}", r.stderr);
        }
        // A folder under a file cannot be made: named before the key or the ledger is looked at.
        let file = dir.path().join("plain");
        std::fs::write(&file, "x").unwrap();
        let under = file.join("export");
        let args = ["ledger", "export", "--from", "2024-07-16", "--to", "2024-07-16", "--out", under.to_str().unwrap()];
        let r = feerecon(&url, &args, "", &[]).await;
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(r.stderr.contains(under.to_str().unwrap()), "{}", r.stderr);

        // A good path: the run is recorded and the file written; a file the command did not get to
        // write is not left behind.
        let good = dir.path().join("report.csv");
        let args = ["reconcile", "--date", "2024-07-16", "--gateway", "vnpay", "--format", "csv", "--out", good.to_str().unwrap()];
        let r = feerecon(&url, &args, "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(std::fs::metadata(&good).unwrap().len() > 0);
        assert_eq!(audit_actions(&url).await, ["reconciliation.run"]);
        // `ledger export` fails here (no key is recorded yet), after its folder was made: gone again.
        let fresh = dir.path().join("fresh-export");
        let args = ["ledger", "export", "--from", "2024-07-16", "--to", "2024-07-16", "--out", fresh.to_str().unwrap()];
        let r = feerecon(&url, &args, "", &[]).await;
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(!fresh.exists(), "{}", r.stderr);
        // A device is written as it is (it cannot be truncated): `--out /dev/null` works.
        let args = ["reconcile", "--date", "2024-07-16", "--gateway", "vnpay", "--out", "/dev/null"];
        let r = feerecon(&url, &args, "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
}

#[tokio::test]
async fn a_command_on_a_database_that_does_not_exist_refuses_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nothing-here.db");
    let shown = db.display().to_string();
    // With and without `mode=rwc` (the default URL carries it).
    for url in [format!("sqlite://{shown}?mode=rwc"), format!("sqlite://{shown}")] {
        for args in [
            &["user", "list"][..],
            &["token", "list"][..],
            &["reconcile", "--date", "2024-07-16", "--gateway", "vnpay"][..],
            &["receipts", "summary", "--date", "2024-07-16"][..],
            &["quote", "--case", "000.00.12.H62-240715-0001"][..],
        ] {
            let r = feerecon(&url, args, "", &[]).await;
            assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
            assert!(r.stderr.contains(&shown) && r.stderr.contains("feerecon migrate"), "{args:?}: {}", r.stderr);
            assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
            assert!(!db.exists(), "{args:?} created {shown}");
        }
    }
    // `migrate` makes it; then the commands work.
    let url = format!("sqlite://{shown}?mode=rwc");
    let r = feerecon(&url, &["migrate"], "", &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = feerecon(&url, &["user", "list"], "", &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);

    // The default URL (no FEERECON_DATABASE_URL): feerecon.db in the working folder.
    let here = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_feerecon"))
        .args(["token", "list"])
        .current_dir(here.path())
        .env_remove("FEERECON_DATABASE_URL")
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("feerecon.db") && stderr.contains("feerecon migrate"), "{stderr}");
    assert!(!here.path().join("feerecon.db").exists());
}

#[tokio::test]
async fn an_unreachable_database_is_a_configuration_error_without_its_password() {
    // Nothing listens on port 1.
    let url = "postgres://nobody:hunter2-sekrit@127.0.0.1:1/x";
    for args in [&["user", "list"][..], &["reconcile", "--date", "2024-07-16", "--gateway", "vnpay"][..]] {
        let r = feerecon(url, args, "", &[]).await;
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("FEERECON_DATABASE_URL"), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("nobody") && r.stderr.contains("127.0.0.1:1"), "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("hunter2-sekrit"), "the password is shown: {}", r.stderr);
        assert!(!r.stderr.contains("internal error"), "{}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    }
    // A password in the query string is hidden too; the server refuses the same way.
    let url = "postgresql://127.0.0.1:1/x?user=nobody&password=hunter2-sekrit";
    let r = feerecon(url, &["serve"], "", &[("FEERECON_LISTEN", "127.0.0.1:0")]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("FEERECON_DATABASE_URL"), "{}", r.stderr);
    assert!(!r.stderr.contains("hunter2-sekrit"), "the password is shown: {}", r.stderr);
}

crate::both_databases! {
    async fn a_missing_ledger_key_file_is_refused_when_the_ledger_has_a_key(url: String) {
        let dir = tempfile::tempdir().unwrap();
        // The ledger records a key, as the first `serve` does.
        let first = dir.path().join("first.key");
        let key = feerecon::ledger::LedgerKey::load_or_create(&first).unwrap();
        let store = feerecon::store::Store::connect(&url).await.unwrap();
        store.ledger_key(&key.public_hex(), chrono::Utc::now()).await.unwrap();
        store.close().await;

        let missing = dir.path().join("missing.key");
        let env = [("FEERECON_LEDGER_KEY", missing.to_str().unwrap()), ("FEERECON_LISTEN", "127.0.0.1:0")];
        let out = dir.path().join("x");
        let export = ["ledger", "export", "--from", "2024-07-16", "--to", "2024-07-16", "--out", out.to_str().unwrap()];
        for args in [&["serve"][..], &export[..]] {
            let r = feerecon(&url, args, "", &env).await;
            assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
            let last = r.stderr.lines().last().unwrap_or_default();
            assert!(last.contains("FEERECON_LEDGER_KEY") && last.contains(missing.to_str().unwrap()), "{args:?}: {}", r.stderr);
            assert!(last.contains(&key.public_hex()) && last.contains("another key"), "{args:?}: {}", r.stderr);
            assert!(!missing.exists(), "{args:?} created a key file the ledger cannot use");
        }
    }
}

/// Runs `feerecon args...` on `url` with its standard output a stream whose reading end is
/// already closed (writes fail with EPIPE), as `feerecon ... | head -1` after `head` has gone.
fn run_into_a_closed_pipe(url: &str, args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::os::unix::net::UnixStream::pair().unwrap();
    drop(reader);
    let writer = std::process::Stdio::from(std::os::fd::OwnedFd::from(writer));
    let cwd = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_feerecon"))
        .args(args)
        .current_dir(cwd.path())
        .env("FEERECON_DATABASE_URL", url)
        .env("FEERECON_LEDGER_KEY", crate::helpers::test_key_path(url))
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

crate::both_databases! {
    async fn a_closed_standard_output_ends_a_command_quietly(url: String) {
        let r = feerecon(&url, &["user", "add", "--name", "portal", "--role", "portal"], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        for args in [
            &["user", "list"][..],
            &["token", "list"][..],
            &["reconcile", "--date", "2024-07-16", "--gateway", "vnpay"][..],
            &["receipts", "summary", "--date", "2024-07-16", "--format", "csv"][..],
            &["quote", "--procedure", "1.001193", "--channel", "online_full", "--received", "2024-07-16"][..],
            &["policy", "check", concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/policies/vinh-phuc.toml")][..],
            // The demo's progress lines (its own database, in the working folder).
            &["demo", "--exit", "--cases", "10", "--date", "2026-03-16"][..],
        ] {
            let (url, args): (String, Vec<String>) = (url.clone(), args.iter().map(|a| (*a).to_owned()).collect());
            let (code, stderr) = tokio::task::spawn_blocking(move || {
                run_into_a_closed_pipe(&url, &args.iter().map(String::as_str).collect::<Vec<_>>())
            })
            .await
            .unwrap();
            assert!(!stderr.contains("panicked"), "{stderr}");
            assert_eq!(code, Some(0), "{stderr}");
        }
    }
}
