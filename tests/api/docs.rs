//! The documentation people read first, checked against the code so it cannot drift: the
//! variables `src/config.rs` reads are all in `.env.example` and README, `settlement import
//! --help` describes the canonical file, and README's integrator walk-through runs as written.

use std::collections::BTreeSet;

use crate::cli::feerecon;

fn repo_file(rel: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every complete `"FEERECON_..."` name quoted in `text` (prefixes such as `FEERECON_VNPAY_`
/// used in messages end with `_` and are left out).
fn quoted_variables(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for chunk in text.split('"').skip(1).step_by(2) {
        if chunk.starts_with("FEERECON_")
            && !chunk.ends_with('_')
            && chunk.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            out.insert(chunk.to_owned());
        }
    }
    out
}

/// The variables the configuration reads: `src/config.rs` and the files of `src/config/`.
fn config_variables() -> BTreeSet<String> {
    let mut vars = quoted_variables(&repo_file("src/config.rs"));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            vars.extend(quoted_variables(&std::fs::read_to_string(path).unwrap()));
        }
    }
    vars
}

#[test]
fn env_example_and_readme_name_every_variable_the_configuration_reads() {
    let vars = config_variables();
    assert!(vars.len() > 40, "the scan of src/config.rs found only {vars:?}");
    assert!(vars.contains("FEERECON_DVCQG_BENEFICIARY") && vars.contains("FEERECON_ZALOPAY_KEY2_PREVIOUS"));
    let example = repo_file(".env.example");
    // A variable counts when a line sets it (commented or not): `#FEERECON_X=...` or `FEERECON_X=...`.
    let set: BTreeSet<String> = example
        .lines()
        .filter_map(|l| l.trim_start_matches('#').split_once('='))
        .map(|(name, _)| name.trim().to_owned())
        .filter(|n| n.starts_with("FEERECON_") || n == "RUST_LOG")
        .collect();
    let missing: Vec<_> = vars.iter().filter(|v| !set.contains(*v)).collect();
    assert!(missing.is_empty(), ".env.example does not set {missing:?}");
    let unknown: Vec<_> = set.iter().filter(|v| !vars.contains(*v) && *v != "RUST_LOG").collect();
    assert!(unknown.is_empty(), ".env.example sets variables config.rs never reads: {unknown:?}");
    let readme = repo_file("README.md");
    let missing: Vec<_> = vars.iter().filter(|v| !readme.contains(&format!("`{v}`"))).collect();
    assert!(missing.is_empty(), "README does not name {missing:?} in full");
}

#[test]
fn secrets_in_env_example_are_placeholders() {
    for line in repo_file(".env.example").lines() {
        let Some((name, value)) = line.trim_start_matches('#').split_once('=') else { continue };
        let secretish = ["SECRET", "KEY1", "KEY2", "ACCESS_KEY", "TOKEN"].iter().any(|s| name.contains(s));
        if secretish && name.starts_with("FEERECON_") && name != "FEERECON_LEDGER_KEY" {
            assert!(value.starts_with('<') && value.ends_with('>'), "{name} has a value, not a placeholder: {line}");
        }
    }
}

#[tokio::test]
async fn settlement_import_help_describes_the_canonical_format() {
    let r = feerecon("sqlite::memory:", &["settlement", "import", "--help"], "", &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let help = r.stdout;
    assert!(help.contains("gateway_txn_no,txn_ref,amount,fee,txn_time,status"), "{help}");
    for column in ["gateway_txn_no", "txn_ref", "amount", "fee", "txn_time", "status"] {
        // A line of the columns' list starts with the column's name (after the `columns` label on the first).
        let explained = help.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.first() == Some(&column) || (words.first() == Some(&"columns") && words.get(1) == Some(&column))
        });
        assert!(explained, "no line explains {column}:\n{help}");
    }
    for words in ["UTF-8", "whole đồng", "Asia/Ho_Chi_Minh", "success or refund", "example"] {
        assert!(help.contains(words), "the help does not say {words:?}:\n{help}");
    }
    // The example line parses with the canonical profile: the help cannot show a refused file.
    let example: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.contains("example"))
        .take(2)
        .map(|l| l.trim().trim_start_matches("example").trim())
        .collect();
    let file = format!("{}\n{}\n", example[0], example[1]);
    let lines = feerecon::settlement::parse(&feerecon::settlement::Profile::canonical(), file.as_bytes(), &|_| {})
        .unwrap_or_else(|e| panic!("the help's example is refused: {e:?}\n{file}"));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].amount, 115_000);
}

/// The fenced block that follows `marker` in `text`.
fn block_after(text: &str, marker: &str) -> String {
    let at = text.find(marker).unwrap_or_else(|| panic!("README has no {marker}"));
    let rest = &text[at + marker.len()..];
    let open = rest.find("```").unwrap();
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn have(tool: &str) -> bool {
    std::process::Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_integrator_walkthrough_in_readme_runs_as_written() {
    if !(have("curl") && have("jq")) {
        let required = ["FEERECON_REQUIRE_PG", "FEERECON_REQUIRE_BROWSER"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|x| x == "1"));
        assert!(!required, "README's walk-through needs curl and jq on PATH (.ci/run installs them)");
        eprintln!("SKIPPED the_integrator_walkthrough_in_readme_runs_as_written: curl or jq is not on PATH");
        return;
    }
    let readme = repo_file("README.md");
    let script = format!(
        "{}\n{}",
        block_after(&readme, "<!-- walkthrough:setup -->"),
        block_after(&readme, "<!-- walkthrough:run -->")
    );
    let expected = block_after(&readme, "<!-- walkthrough:output -->");
    let dir = tempfile::tempdir().unwrap();
    // `feerecon` on PATH, as `cargo install` would put it.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_feerecon"), bin.join("feerecon")).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg("-c")
        .arg(&script)
        .current_dir(&work)
        .env("PATH", path)
        .env("API", format!("http://127.0.0.1:{}", free_port()))
        .env("SIM", format!("http://127.0.0.1:{}", free_port()))
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        // Files, not pipes: the server and the simulator keep them open after the script ends.
        .stdout(std::fs::File::create(dir.path().join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
        .process_group(0)
        .kill_on_drop(true);
    for (k, _) in std::env::vars() {
        if k.starts_with("FEERECON_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd.spawn().unwrap();
    let pgid = child.id().unwrap();
    let status = tokio::time::timeout(std::time::Duration::from_secs(120), child.wait()).await;
    // The script leaves the server and the simulator running in its process group: stop them.
    let _ = std::process::Command::new("kill").arg("--").arg(format!("-{pgid}")).status();
    status.expect("the walk-through finished within 120 s").unwrap();
    let stdout = std::fs::read_to_string(dir.path().join("stdout")).unwrap();
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert_eq!(
        stdout.trim(),
        expected.trim(),
        "README's walk-through printed something else than README says.\nstderr (tail):\n{}",
        stderr.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    );
}
