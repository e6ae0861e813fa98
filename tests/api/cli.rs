//! The `feerecon` binary as an operator uses it: importing cases, users and tokens, start-up
//! checks, and stopping on SIGTERM.

use std::process::Stdio;

use feerecon::domain::CaseCode;
use tokio::io::AsyncWriteExt as _;

use crate::both_databases;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `feerecon args...` against `url`, feeding `stdin`.
pub async fn feerecon(url: &str, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_feerecon"));
    cmd.args(args)
        .env("FEERECON_DATABASE_URL", url)
        .env("FEERECON_LEDGER_KEY", crate::helpers::test_key_path(url))
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the binary starts");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn csv_row(seq: u32, date: &str) -> String {
    format!(
        "000.00.12.H62-240715-{seq:04},1.001193,\"Lê Văn {seq}\",online_full,poor_household;student,1,{date},000.00.12.H62\n"
    )
}

const CSV_HEAD: &str = "case_code,procedure_code,applicant_name,channel,subjects,quantity,received_at,receiving_unit\n";

both_databases! {
    async fn importing_cases_is_all_or_nothing(url: String) {
        let dir = tempfile::tempdir().unwrap();
        let store = feerecon::store::Store::connect(&url).await.unwrap();

        let mut good = String::from("\u{feff}");
        good.push_str(CSV_HEAD);
        for seq in 1..=30 {
            good.push_str(&csv_row(seq, "2024-07-15T08:00:00+07:00"));
        }
        let file = write(dir.path(), "good.csv", &good);
        let r = feerecon(&url, &["import", "cases", &file], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("imported 30 cases"), "{}", r.stdout);
        assert!(r.stdout.contains("30 created"), "{}", r.stdout);
        let one = CaseCode::parse("000.00.12.H62-240715-0007").unwrap();
        assert_eq!(store.get_case(&one).await.unwrap().unwrap().case.applicant_name, "Lê Văn 7");

        // A file that updates case 7 and adds case 31, but whose line 5 is bad: nothing changes.
        let mut bad = String::from(CSV_HEAD);
        bad.push_str(&csv_row(7, "2024-07-15T09:00:00+07:00"));
        bad.push_str(&csv_row(31, "2024-07-15T08:00:00+07:00"));
        bad.push_str(&csv_row(32, "2024-07-15T08:00:00+07:00"));
        bad.push_str(&csv_row(33, "2024-07-16T08:00:00+07:00"));
        let file = write(dir.path(), "bad.csv", &bad);
        let r = feerecon(&url, &["import", "cases", &file], "", &[]).await;
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(r.stderr.contains("line 5"), "{}", r.stderr);
        assert!(r.stderr.contains("received_at"), "{}", r.stderr);
        assert_eq!(r.stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{}", r.stderr);
        assert_eq!(store.case_versions(&one).await.unwrap().len(), 1);
        assert!(store.get_case(&CaseCode::parse("000.00.12.H62-240715-0031").unwrap()).await.unwrap().is_none());

        // The JSON form: an array of case objects; a bad record is named by its first line.
        let json = r#"[
  {"case_code": "000.00.12.H62-240715-0040", "procedure_code": "1.001193", "applicant_name": "A",
   "channel": "counter", "received_at": "2024-07-15T10:00:00+07:00", "receiving_unit": "000.00.12.H62"},
  {"case_code": "000.00.12.H62-240715-0041", "procedure_code": "1.001193", "applicant_name": "B",
   "channel": "counter", "received_at": "2024-07-15T10:00:00+07:00", "receiving_unit": "000.00.12.H99"}
]"#;
        let file = write(dir.path(), "cases.json", json);
        let r = feerecon(&url, &["import", "cases", &file], "", &[]).await;
        assert_eq!(r.code, 1);
        assert!(r.stderr.contains("line 4") && r.stderr.contains("receiving_unit"), "{}", r.stderr);
        assert!(store.get_case(&CaseCode::parse("000.00.12.H62-240715-0040").unwrap()).await.unwrap().is_none());
        let file = write(dir.path(), "cases.json", &json.replace("H99", "H62"));
        let r = feerecon(&url, &["import", "cases", &file], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        // Re-importing the same file changes nothing.
        let r = feerecon(&url, &["import", "cases", &file], "", &[]).await;
        assert!(r.stdout.contains("2 unchanged"), "{}", r.stdout);
        store.close().await;
    }
}

both_databases! {
    async fn users_and_tokens_are_administered_on_the_cli(url: String) {
        let r = feerecon(&url, &["user", "add", "--name", "lan.finance", "--role", "finance"], "a long enough password\n", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        let r = feerecon(&url, &["user", "add", "--name", "portal", "--role", "portal"], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("machine client"), "{}", r.stdout);
        // Errors are user errors (exit 1) with one line.
        let r = feerecon(&url, &["user", "add", "--name", "portal", "--role", "portal"], "", &[]).await;
        assert_eq!(r.code, 1);
        assert!(r.stderr.contains("already exists"), "{}", r.stderr);
        let r = feerecon(&url, &["user", "add", "--name", "x", "--role", "boss"], "", &[]).await;
        assert_eq!(r.code, 1);
        assert!(r.stderr.contains("--role"), "{}", r.stderr);
        let r = feerecon(&url, &["token", "create", "--user", "nobody"], "", &[]).await;
        assert_eq!(r.code, 1);

        let r = feerecon(&url, &["token", "create", "--user", "portal", "--name", "portal-prod", "--expires", "90d"], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        let token = r.stdout.lines().last().unwrap().to_owned();
        assert!(token.starts_with("frt_"), "{}", r.stdout);
        let id = r.stdout.lines().next().unwrap().trim_start_matches("token id: ").to_owned();
        assert!(token.contains(&id));

        let store = feerecon::store::Store::connect(&url).await.unwrap();
        let user = store.user_by_name("lan.finance").await.unwrap().unwrap();
        let phc = user.password_hash.clone().unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(feerecon::auth::verify_password(&feerecon::domain::Secret::new("a long enough password"), &phc));

        let r = feerecon(&url, &["token", "list"], "", &[]).await;
        assert_eq!(r.code, 0);
        assert!(r.stdout.contains(&id) && r.stdout.contains("portal-prod"), "{}", r.stdout);
        assert!(!r.stdout.contains(token.rsplit('_').next().unwrap()), "the secret must never be listed");

        let r = feerecon(&url, &["token", "revoke", &id], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        let owner = store.token_owner(&id).await.unwrap().unwrap();
        assert!(owner.revoked_at.is_some());
        let r = feerecon(&url, &["token", "revoke", "0000000000000000"], "", &[]).await;
        assert_eq!(r.code, 1);

        // Every change is in the audit log, chained.
        let log = store.audit_log(0, 100).await.unwrap();
        let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["user.add", "user.add", "token.create", "token.revoke"]);
        for pair in log.windows(2) {
            assert_eq!(pair[1].prev_hash, pair[0].hash);
        }
        store.close().await;
    }
}

#[tokio::test]
async fn bad_configuration_stops_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display());
    for (var, value) in [
        ("FEERECON_REQUEST_TIMEOUT", "soon"),
        ("FEERECON_MAX_UPLOAD", "big"),
        ("FEERECON_VNPAY_TMN_CODE", "T1"),
        ("FEERECON_DB_MAX_CONNECTIONS", "0"),
        ("FEERECON_DB_ACQUIRE_TIMEOUT", "never"),
    ] {
        let r = feerecon(&url, &["serve"], "", &[(var, value)]).await;
        assert_eq!(r.code, 1, "{var}: {}", r.stderr);
        assert!(r.stderr.contains(var) || r.stderr.contains("FEERECON_VNPAY_HASH_SECRET"), "{var}: {}", r.stderr);
    }
    // A secret in a refused configuration is never echoed.
    let r = feerecon(&url, &["serve"], "", &[("FEERECON_VNPAY_HASH_SECRET", "sekrit-value-123")]).await;
    assert_eq!(r.code, 1);
    assert!(!r.stderr.contains("sekrit-value-123"), "{}", r.stderr);
}

#[tokio::test]
async fn flags_help_and_version_use_the_documented_exit_codes() {
    let r = feerecon("sqlite::memory:", &["--version"], "", &[]).await;
    assert_eq!(r.code, 0);
    let r = feerecon("sqlite::memory:", &["token", "--help"], "", &[]).await;
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("create"));
    let r = feerecon("sqlite::memory:", &["import", "cases"], "", &[]).await;
    assert_eq!(r.code, 1);
    let r = feerecon("sqlite::memory:", &["frobnicate"], "", &[]).await;
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
}

#[tokio::test]
async fn serve_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_feerecon"))
        .arg("serve")
        .env("FEERECON_DATABASE_URL", &url)
        .env("FEERECON_LEDGER_KEY", crate::helpers::test_key_path(&url))
        .env("FEERECON_LISTEN", "127.0.0.1:0")
        .env("FEERECON_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
    let mut addr = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("a JSON log line: {line}"));
        if let Some(a) = v["addr"].as_str() {
            addr = Some(a.to_owned());
            break;
        }
    }
    let addr = addr.expect("the server logs its address");
    let res = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(res.status(), 200);
    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait()).await.expect("stops").unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn a_missing_argument_is_named_on_one_line() {
    for (args, names) in [
        (&["import", "cases"][..], &["<FILE>"][..]),
        (&["token", "revoke"][..], &["<ID>"][..]),
        (&["user", "add", "--role", "portal"][..], &["--name <NAME>"][..]),
        (&["quote", "--procedure", "1.001193"][..], &["--channel <CHANNEL>", "--received <RECEIVED>"][..]),
    ] {
        let r = feerecon("sqlite::memory:", args, "", &[]).await;
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("required arguments were not provided"), "{args:?}: {}", r.stderr);
        for n in names {
            assert!(r.stderr.contains(n), "{args:?} should name {n}: {}", r.stderr);
        }
    }
}

#[tokio::test]
async fn a_port_in_use_is_a_user_error_naming_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let r = feerecon(&url, &["serve"], "", &[("FEERECON_LISTEN", &addr)]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    let last = r.stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: FEERECON_LISTEN: cannot listen on ") && last.contains(&addr), "{}", r.stderr);
    assert!(!r.stderr.contains("internal error"), "{}", r.stderr);
    // The simulator too.
    let env = crate::helpers::gateway_env("http://127.0.0.1:9");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = feerecon(&url, &["simulate-gateway", "--listen", &addr], "", &env).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("--listen") && r.stderr.contains(&addr), "{}", r.stderr);
    drop(taken);
}

#[tokio::test]
async fn logs_to_a_pipe_have_no_colour() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_feerecon"))
        .arg("serve")
        .env("FEERECON_DATABASE_URL", &url)
        .env("FEERECON_LEDGER_KEY", crate::helpers::test_key_path(&url))
        .env("FEERECON_LISTEN", "127.0.0.1:0")
        .env_remove("FEERECON_LOG_FORMAT")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
    let mut seen = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        let listening = line.contains("listening on http://");
        seen.push(line);
        if listening {
            break;
        }
    }
    child.start_kill().unwrap();
    assert!(seen.last().is_some_and(|l| l.contains("listening on")), "{seen:?}");
    assert!(seen.iter().all(|l| !l.contains('\u{1b}')), "ANSI escapes in piped logs: {seen:?}");
}

both_databases! {
    async fn user_list_shows_tokens_by_state_and_revoking_twice_says_so(url: String) {
        let r = feerecon(&url, &["user", "add", "--name", "lan.finance", "--role", "finance"], "a long enough password\n", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        let r = feerecon(&url, &["user", "add", "--name", "portal", "--role", "portal"], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        let mut secrets = Vec::new();
        let mut ids = Vec::new();
        for label in ["a", "b", "c"] {
            let r = feerecon(&url, &["token", "create", "--user", "portal", "--name", label], "", &[]).await;
            assert_eq!(r.code, 0, "{}", r.stderr);
            secrets.push(r.stdout.lines().last().unwrap().to_owned());
            ids.push(r.stdout.lines().next().unwrap().trim_start_matches("token id: ").to_owned());
        }
        let r = feerecon(&url, &["token", "revoke", &ids[1]], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("revoked") && !r.stdout.contains("already"), "{}", r.stdout);

        let r = feerecon(&url, &["user", "list"], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        let rows: Vec<Vec<&str>> = r.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows[0][..6], ["name", "role", "login", "active", "revoked", "expired"], "{}", r.stdout);
        assert_eq!(rows[1][..6], ["lan.finance", "finance", "yes", "0", "0", "0"], "{}", r.stdout);
        assert_eq!(rows[2][..6], ["portal", "portal", "machine", "2", "1", "0"], "{}", r.stdout);
        assert_eq!(rows.len(), 3, "{}", r.stdout);
        for s in &secrets {
            assert!(!r.stdout.contains(s.rsplit('_').next().unwrap()), "a token's secret is listed: {}", r.stdout);
        }
        assert!(!r.stdout.contains("$argon2"), "{}", r.stdout);

        // Revoking again changes nothing, says so and when, and exits 0: the token is revoked, as asked.
        let r = feerecon(&url, &["token", "revoke", &ids[1]], "", &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains(&format!("token {} was already revoked at ", ids[1])), "{}", r.stdout);
        assert!(r.stdout.contains("nothing changed"), "{}", r.stdout);
        let store = feerecon::store::Store::connect(&url).await.unwrap();
        let revokes = store.audit_log(0, 100).await.unwrap().iter().filter(|e| e.action == "token.revoke").count();
        assert_eq!(revokes, 1);
        store.close().await;
    }
}
