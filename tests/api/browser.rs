//! The daily review in a real browser: headless Chromium driven over WebDriver (chromedriver)
//! from Rust (fantoccini), against the real server and the gateway simulator, on SQLite.
//!
//! A finance officer logs in, imports the simulator's settlement file through the upload form
//! (watching the job page), opens the day from the calendar, runs it, writes off a payment the
//! file left out and keeps the stranger line; a second finance user approves both and closes the
//! day, confirming the dialog. Screenshots of the import's job page, the calendar, an exception
//! and the day view (with exceptions, then closed) go to
//! `<target>/tmp/dashboard-screenshots/`. Debian's `chromium` and `chromium-driver` are needed:
//! without them the test prints a loud SKIPPED line and passes, or fails when
//! `FEERECON_REQUIRE_BROWSER=1` (as `.ci/run` sets).

use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use feerecon::domain::Role;
use serde_json::json;

use crate::dash::{add_person, exception_keys, simulated_day};
use crate::helpers::{Db, spawn_gateway_app};
use crate::pg::loud;

/// Chromium's flags: headless, and nothing that reaches for the network (this machine has none,
/// and Chromium stalls waiting for it otherwise).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1800",
];

/// How long one wait for a page or element may take.
const WAIT: Duration = Duration::from_secs(30);

fn find_on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Chromium and chromedriver, or why not.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let chromium = find_on_path(&["chromium", "chromium-browser"])
        .ok_or("no chromium on PATH (apt-get install chromium chromium-driver)")?;
    let driver = find_on_path(&["chromedriver"])
        .or_else(|| Some(PathBuf::from("/usr/lib/chromium/chromedriver")).filter(|p| p.is_file()))
        .ok_or("no chromedriver on PATH (apt-get install chromium-driver)")?;
    Ok((chromium, driver))
}

/// A chromedriver on a free loopback port, stopped when dropped.
struct Driver {
    _child: tokio::process::Child,
    url: String,
}

async fn start_driver(driver: &Path) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = tokio::process::Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if reqwest::get(format!("{url}/status")).await.is_ok_and(|r| r.status().is_success()) {
            return Driver { _child: child, url };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer on {url}");
}

async fn open_browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| (*s).to_owned()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("goog:chromeOptions".into(), json!({"binary": chromium, "args": args}));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector).capabilities(caps).connect(&driver.url).await.expect("a browser session")
}

async fn wait_for(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
        Ok(e) => e,
        Err(e) => {
            let src = c.source().await.unwrap_or_default();
            panic!("{css} did not appear ({e}) on {:?}:\n{src}", c.current_url().await.ok());
        }
    }
}

async fn text(c: &Client, css: &str) -> String {
    wait_for(c, css).await.text().await.unwrap()
}

async fn log_in(c: &Client, base: &str, name: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    wait_for(c, "#login-name").await.send_keys(name).await.unwrap();
    wait_for(c, "#login-password").await.send_keys(crate::dash::PASSWORD).await.unwrap();
    wait_for(c, "#login-submit").await.click().await.unwrap();
    assert_eq!(text(c, "#user-name").await, name);
}

async fn log_out(c: &Client) {
    wait_for(c, "#logout").await.click().await.unwrap();
    wait_for(c, "#login-form").await;
}

async fn screenshot(c: &Client, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let path = dir.join(name);
    std::fs::write(&path, png).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finance_officer_does_the_daily_review_in_a_browser() {
    let (chromium, driver) = match browser() {
        Ok(b) => b,
        Err(why) => {
            if std::env::var("FEERECON_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
                panic!("FEERECON_REQUIRE_BROWSER=1 but the browser is unavailable: {why}");
            }
            loud(&format!(
                "SKIPPED (browser unavailable: {why}); set FEERECON_REQUIRE_BROWSER=1 to make this a failure"
            ));
            return;
        }
    };
    let (app, sim) = spawn_gateway_app(Db::Sqlite, &[]).await.unwrap();
    add_person(&app, "lan.finance", Role::Finance).await;
    add_person(&app, "hoa.finance", Role::Finance).await;
    let (date, file) = simulated_day(&app, &sim, 3).await;
    let files = tempfile::tempdir().unwrap();
    let upload = files.path().join("vnpay-day.csv");
    std::fs::write(&upload, &file).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let driver = start_driver(&driver).await;
    let c = open_browser(&driver, &chromium, profile.path()).await;
    let base = app.address.clone();

    // Lan logs in (a page asked for first comes back after the login) and imports the file.
    c.goto(&format!("{base}/settlements")).await.unwrap();
    wait_for(&c, "#login-form").await;
    log_in(&c, &base, "lan.finance").await;
    c.goto(&format!("{base}/settlements")).await.unwrap();
    wait_for(&c, "#upload-gateway").await.select_by_value("vnpay").await.unwrap();
    wait_for(&c, "#upload-profile").await.select_by_value("vnpay").await.unwrap();
    wait_for(&c, "#upload-file").await.send_keys(upload.to_str().unwrap()).await.unwrap();
    wait_for(&c, "#upload-submit").await.click().await.unwrap();
    assert!(text(&c, "#job-ok").await.contains("SHA-256"), "the job page reports the import");
    screenshot(&c, "import-job.png").await;

    // The calendar shows the day as not run; open it and run it.
    c.goto(&format!("{base}/?month={}", &date[..7])).await.unwrap();
    let link = format!(r#"a[href="/days/{date}?gateway=vnpay"]"#);
    wait_for(&c, "#calendar").await;
    screenshot(&c, "calendar.png").await;
    assert_eq!(wait_for(&c, &link).await.attr("data-state").await.unwrap().as_deref(), Some("not_run"));
    wait_for(&c, &link).await.click().await.unwrap();
    wait_for(&c, "#not-run").await;
    wait_for(&c, "#run-button").await.click().await.unwrap();
    wait_for(&c, "#summary-cards").await;
    assert_eq!(wait_for(&c, "#day-state").await.attr("data-state").await.unwrap().as_deref(), Some("open_exceptions"));
    assert!(wait_for(&c, "#amount-chart").await.is_displayed().await.unwrap(), "the chart is drawn");
    let shot = screenshot(&c, "day-with-exceptions.png").await;
    loud(&format!("screenshot: {}", shot.display()));
    let keys = exception_keys(&c.source().await.unwrap());
    assert_eq!(keys.len(), 2, "{keys:?}");
    let missing = keys.iter().find(|(k, _)| k.contains(":payment:")).unwrap().0.clone();
    let stranger = keys.iter().find(|(k, _)| !k.contains(":payment:")).unwrap().0.clone();

    // Lan writes off the payment the file left out: it waits for another's approval.
    let row = format!(r#"tr[data-key="{missing}"] a.details"#);
    wait_for(&c, &row).await.click().await.unwrap();
    assert!(text(&c, "#side-payment").await.contains("135.000 ₫"), "the payment beside the item");
    screenshot(&c, "exception.png").await;
    wait_for(&c, "#resolve-action").await.select_by_value("write_off").await.unwrap();
    wait_for(&c, "#resolve-note").await.send_keys("VNPAY xác nhận không quyết toán").await.unwrap();
    wait_for(&c, "#resolve-submit").await.click().await.unwrap();
    wait_for(&c, "#flash").await;
    assert_eq!(
        wait_for(&c, "#exception-state").await.attr("data-state").await.unwrap().as_deref(),
        Some("pending_approval")
    );
    wait_for(&c, "#own-request").await;
    // The stranger line's money sits in suspense: Lan keeps it (a write-off), also for approval.
    c.goto(&format!("{base}/exceptions/{}", crate::dash::enc(&stranger))).await.unwrap();
    wait_for(&c, "#resolve-action").await.select_by_value("write_off").await.unwrap();
    wait_for(&c, "#resolve-note").await.send_keys("dòng thử của cổng").await.unwrap();
    wait_for(&c, "#resolve-submit").await.click().await.unwrap();
    wait_for(&c, "#flash").await;
    log_out(&c).await;

    // Hoa approves both, and closes the day.
    log_in(&c, &base, "hoa.finance").await;
    c.goto(&format!("{base}/exceptions/{}", crate::dash::enc(&missing))).await.unwrap();
    wait_for(&c, "#approve-submit").await.click().await.unwrap();
    wait_for(&c, "#flash").await;
    assert_eq!(wait_for(&c, "#exception-state").await.attr("data-state").await.unwrap().as_deref(), Some("resolved"));
    c.goto(&format!("{base}/exceptions/{}", crate::dash::enc(&stranger))).await.unwrap();
    wait_for(&c, "#approve-submit").await.click().await.unwrap();
    wait_for(&c, "#flash").await;
    assert_eq!(wait_for(&c, "#exception-state").await.attr("data-state").await.unwrap().as_deref(), Some("resolved"));
    wait_for(&c, "#day-link").await.click().await.unwrap();
    assert_eq!(wait_for(&c, "#day-state").await.attr("data-state").await.unwrap().as_deref(), Some("reconciled"));
    wait_for(&c, "#close-button").await.click().await.unwrap();
    // The confirmation dialog (app.js): closing cannot be undone.
    let mut accepted = false;
    for _ in 0..50 {
        if c.accept_alert().await.is_ok() {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted, "closing asks for confirmation");
    assert!(text(&c, "#closed-notice").await.contains("khóa sổ"));
    assert_eq!(wait_for(&c, "#day-state").await.attr("data-state").await.unwrap().as_deref(), Some("closed"));
    assert!(c.find(Locator::Css("#close-form")).await.is_err(), "no close form on a closed day");
    let shot = screenshot(&c, "day-closed.png").await;
    loud(&format!("screenshot: {}", shot.display()));

    // What the service recorded matches what the page said.
    let today = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").unwrap();
    assert!(app.store.closure(today, feerecon::domain::payment::Gateway::Vnpay).await.unwrap().is_some());
    let audit = app.store.audit_log(0, 200).await.unwrap();
    let did = |action: &str, who: &str| audit.iter().any(|e| e.action == action && e.actor == who);
    assert!(
        did("exception.resolve", "lan.finance")
            && did("exception.approve", "hoa.finance")
            && did("day.close", "hoa.finance")
    );
    c.close().await.unwrap();
}
