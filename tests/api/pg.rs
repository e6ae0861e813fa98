//! A real PostgreSQL server for the tests, started by the harness itself (SPEC §9).
//!
//! One server per test binary, started on first use: `initdb` and `pg_ctl` are found on PATH or
//! in `/usr/lib/postgresql/*/bin`; when the tests run as root they run as the unprivileged
//! `postgres` account (initdb refuses root) in a directory under /tmp that it owns. The schema is
//! migrated once into a template database; each test gets `CREATE DATABASE ... TEMPLATE` of it.
//!
//! libtest has no global teardown, so a watchdog process (its own process group, so Ctrl-C of the
//! tests does not stop it first) waits for this test process to end, then stops the server and
//! removes its directory. `FEERECON_TEST_PG_URL` points at an existing server instead (its test
//! databases are left behind). Without PostgreSQL, PostgreSQL tests print a loud skip, or fail
//! when `FEERECON_REQUIRE_PG=1`.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection as _;

pub struct PgServer {
    /// A URL on the maintenance database, for CREATE DATABASE.
    admin_url: String,
    /// The URL of a database, with `{db}` where its name goes.
    url_pattern: String,
    template: String,
}

static SERVER: OnceLock<Result<PgServer, String>> = OnceLock::new();
static NEXT_DB: AtomicU64 = AtomicU64::new(0);

/// Writes straight to the stderr file descriptor, which libtest's capture does not swallow.
pub fn loud(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

fn require_pg() -> bool {
    std::env::var("FEERECON_REQUIRE_PG").is_ok_and(|v| v == "1")
}

/// A fresh, migrated database URL, or `None` (after a loud skip) when there is no PostgreSQL.
pub async fn fresh_database() -> Option<String> {
    fresh_database_as(None).await
}

/// A fresh, migrated database that sorts text by a language's rules (ICU `en-US`: case and
/// punctuation second), as a server set up in a non-`C` locale does; the tests' own server is
/// initialised with `--no-locale`, whose byte order would hide an order that depends on it.
pub async fn fresh_language_collated_database() -> Option<String> {
    let url = fresh_database_as(Some(
        "TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LC_COLLATE 'C' LC_CTYPE 'C'",
    ))
    .await?;
    let store = feerecon::store::Store::connect(&url).await.expect("connect to the collated database");
    store.migrate().await.expect("migrate the collated database");
    Some(url)
}

/// `CREATE DATABASE` from the migrated template, or with `options` instead (unmigrated).
async fn fresh_database_as(options: Option<&str>) -> Option<String> {
    let server = SERVER.get_or_init(|| {
        // Starting the server is blocking work with its own runtime: do it on its own thread.
        std::thread::spawn(start).join().unwrap_or_else(|_| Err("the PostgreSQL start-up thread panicked".into()))
    });
    let server = match server {
        Ok(s) => s,
        Err(why) => {
            if require_pg() {
                panic!("FEERECON_REQUIRE_PG=1 but PostgreSQL is unavailable: {why}");
            }
            loud(&format!("SKIPPED (PostgreSQL unavailable: {why}); set FEERECON_REQUIRE_PG=1 to make this a failure"));
            return None;
        }
    };
    let name = format!("t_{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::SeqCst));
    let mut conn = sqlx::PgConnection::connect(&server.admin_url).await.expect("connect to the test server");
    let mut attempt = 0;
    loop {
        let sql = match options {
            Some(o) => format!("CREATE DATABASE {name} {o}"),
            None => format!("CREATE DATABASE {name} TEMPLATE {}", server.template),
        };
        match sqlx::query(&sql).execute(&mut conn).await {
            Ok(_) => break,
            // Two copies of one template at the same instant can collide; try again.
            Err(e) if attempt < 20 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                let _ = e;
            }
            Err(e) => panic!("CREATE DATABASE {name}: {e}"),
        }
    }
    let _ = conn.close().await;
    Some(server.url_pattern.replace("{db}", &name))
}

fn find_bin_dir() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return Some(dir);
            }
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// A command run as `postgres` when we are root, as ourselves otherwise, from `cwd`.
fn pg_command(bin: &Path, cwd: &Path) -> Command {
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    c.current_dir(cwd);
    c
}

fn run(mut c: Command, what: &str) -> Result<(), String> {
    let out = c.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn start() -> Result<PgServer, String> {
    if let Ok(url) = std::env::var("FEERECON_TEST_PG_URL") {
        let template = format!("feerecon_tpl_{}", std::process::id());
        let (base, _) = url.rsplit_once('/').ok_or("FEERECON_TEST_PG_URL must end in /DBNAME")?;
        let server = PgServer { admin_url: url.clone(), url_pattern: format!("{base}/{{db}}"), template };
        make_template(&server)?;
        return Ok(server);
    }
    let (_, _, _, port) = init_and_start()?;
    let server = PgServer {
        admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        url_pattern: format!("postgres://postgres@127.0.0.1:{port}/{{db}}"),
        template: "feerecon_template".into(),
    };
    make_template(&server)?;
    Ok(server)
}

/// A server initialised in a fresh directory under /tmp and started (stopped and removed by the
/// watchdog once this process ends): its bin directory, directory, `pg_ctl -o` options and port.
fn init_and_start() -> Result<(PathBuf, PathBuf, String, u16), String> {
    let bin = find_bin_dir().ok_or("initdb and pg_ctl are neither on PATH nor in /usr/lib/postgresql/*/bin")?;
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let dir = PathBuf::from(format!("/tmp/feerecon-test-pg-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if is_root() {
        run(
            {
                let mut c = Command::new("chown");
                c.args(["postgres:postgres"]).arg(&dir);
                c
            },
            "chown the test server's directory to postgres",
        )?;
    }
    spawn_watchdog(&bin, &dir)?;
    let data = dir.join("data");
    let mut initdb = pg_command(&bin.join("initdb"), &dir);
    initdb.arg("-D").arg(&data).args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"]);
    run(initdb, "initdb")?;
    let port = free_port()?;
    let opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400",
        dir.display()
    );
    let mut pg_ctl = pg_command(&bin.join("pg_ctl"), &dir);
    pg_ctl.arg("-D").arg(&data).arg("-l").arg(dir.join("server.log")).args(["-w", "-t", "60", "-o", &opts, "start"]);
    pg_ctl.stdout(Stdio::null());
    run(pg_ctl, "pg_ctl start")?;
    Ok((bin, dir, opts, port))
}

/// Stops the server and removes its directory once this process is gone.
fn spawn_watchdog(bin: &Path, dir: &Path) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let stop = if is_root() {
        format!(
            "runuser -u postgres -- '{}' -D '{}/data' stop -m immediate",
            bin.join("pg_ctl").display(),
            dir.display()
        )
    } else {
        format!("'{}' -D '{}/data' stop -m immediate", bin.join("pg_ctl").display(), dir.display())
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        dir = dir.display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("start the watchdog: {e}"))?;
    Ok(())
}

fn make_template(server: &PgServer) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&server.admin_url).await.map_err(|e| format!("connect: {e}"))?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {}", server.template))
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::query(&format!("CREATE DATABASE {}", server.template))
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let _ = conn.close().await;
        let url = server.url_pattern.replace("{db}", &server.template);
        let store = feerecon::store::Store::connect(&url).await.map_err(|e| format!("open the template: {e}"))?;
        store.migrate().await.map_err(|e| format!("migrate the template: {e:?}"))?;
        store.close().await;
        Ok(())
    })
}

/// A PostgreSQL server of one test's own, which the test may stop and start again (the shared
/// server cannot be: other tests use it at the same time). Its `postgres` database is migrated.
pub struct OwnServer {
    bin: PathBuf,
    dir: PathBuf,
    opts: String,
    pub url: String,
}

impl OwnServer {
    /// `Ok(None)` after a loud skip when there is no PostgreSQL and it is not required.
    pub async fn start() -> Option<Self> {
        let started = tokio::task::spawn_blocking(init_and_start).await.unwrap_or_else(|e| Err(e.to_string()));
        let (bin, dir, opts, port) = match started {
            Ok(s) => s,
            Err(why) if require_pg() => panic!("FEERECON_REQUIRE_PG=1 but PostgreSQL could not start: {why}"),
            Err(why) => {
                loud(&format!(
                    "SKIPPED (PostgreSQL unavailable: {why}); set FEERECON_REQUIRE_PG=1 to make this a failure"
                ));
                return None;
            }
        };
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let store = feerecon::store::Store::connect(&url).await.expect("connect to the test's own server");
        store.migrate().await.expect("migrate the test's own server");
        store.close().await;
        Some(Self { bin, dir, opts, url })
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`).
    pub async fn kill(&self) {
        let mut c = pg_command(&self.bin.join("pg_ctl"), &self.dir);
        c.arg("-D").arg(self.dir.join("data")).args(["-w", "stop", "-m", "immediate"]).stdout(Stdio::null());
        tokio::task::spawn_blocking(move || run(c, "pg_ctl stop")).await.unwrap().unwrap();
    }

    /// Starts it again on the same port (crash recovery runs first).
    pub async fn start_again(&self) {
        let mut c = pg_command(&self.bin.join("pg_ctl"), &self.dir);
        c.arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &self.opts, "start"])
            .stdout(Stdio::null());
        tokio::task::spawn_blocking(move || run(c, "pg_ctl start")).await.unwrap().unwrap();
    }
}

impl Drop for OwnServer {
    /// Stops the server now rather than when the test binary ends (the watchdog removes its
    /// directory then).
    fn drop(&mut self) {
        let mut c = pg_command(&self.bin.join("pg_ctl"), &self.dir);
        c.arg("-D").arg(self.dir.join("data")).args(["stop", "-m", "immediate"]).stdout(Stdio::null());
        c.stderr(Stdio::null());
        let _ = c.status();
    }
}
