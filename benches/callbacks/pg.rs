//! A PostgreSQL server for the benchmark, started as `tests/api/pg.rs` starts the tests' one
//! (`initdb` and `pg_ctl` found on PATH or in `/usr/lib/postgresql/*/bin`, run as the `postgres`
//! account when we are root, in a directory under /tmp), but durable: PostgreSQL's defaults
//! (`fsync`, `synchronous_commit`, `full_page_writes` on), where the tests turn them off.
//! A watchdog stops it and removes its directory once the benchmark process is gone.
//! `FEERECON_BENCH_PG_URL=postgres://user@host/postgres` uses an existing server instead (the user
//! must be allowed to create databases; the benchmark's databases are dropped at the end).

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sqlx::Connection as _;

pub struct PgServer {
    /// The maintenance database, for CREATE DATABASE.
    admin_url: String,
    /// `{db}` where a database's name goes.
    url_pattern: String,
    /// Our own server: (pg_ctl, data directory's parent); `None` for a given URL.
    own: Option<(PathBuf, PathBuf)>,
    created: std::sync::Mutex<Vec<String>>,
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

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

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

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("a local address").port()
}

impl PgServer {
    pub fn start() -> Result<Self, String> {
        if let Ok(url) = std::env::var("FEERECON_BENCH_PG_URL") {
            let (base, _) = url.rsplit_once('/').ok_or("FEERECON_BENCH_PG_URL must end in /DBNAME")?;
            return Ok(Self {
                url_pattern: format!("{base}/{{db}}"),
                admin_url: url.clone(),
                own: None,
                created: Default::default(),
            });
        }
        let bin = find_bin_dir().ok_or("initdb and pg_ctl are neither on PATH nor in /usr/lib/postgresql/*/bin")?;
        let dir =
            tempfile::Builder::new().prefix("feerecon-bench-pg-").tempdir_in("/tmp").map_err(|e| e.to_string())?.keep();
        if is_root() {
            let mut c = Command::new("chown");
            c.args(["postgres:postgres"]).arg(&dir);
            run(c, "chown the server's directory to postgres")?;
        }
        spawn_watchdog(&bin, &dir)?;
        let data = dir.join("data");
        let mut initdb = pg_command(&bin.join("initdb"), &dir);
        initdb.arg("-D").arg(&data).args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"]);
        run(initdb, "initdb")?;
        let port = free_port();
        // Durable: PostgreSQL's defaults for fsync, synchronous_commit and full_page_writes.
        let opts = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200", dir.display());
        let pg_ctl = bin.join("pg_ctl");
        let mut start = pg_command(&pg_ctl, &dir);
        start.arg("-D").arg(&data).arg("-l").arg(dir.join("server.log")).args(["-w", "-t", "60", "-o", &opts, "start"]);
        start.stdout(Stdio::null());
        run(start, "pg_ctl start")?;
        Ok(Self {
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            url_pattern: format!("postgres://postgres@127.0.0.1:{port}/{{db}}"),
            own: Some((pg_ctl, dir)),
            created: Default::default(),
        })
    }

    /// A new, empty database's URL.
    pub async fn fresh_database(&self, name: &str) -> String {
        let mut conn = sqlx::PgConnection::connect(&self.admin_url).await.expect("connect to PostgreSQL");
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut conn).await.expect("drop database");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create database");
        let _ = conn.close().await;
        self.created.lock().unwrap_or_else(|p| p.into_inner()).push(name.to_owned());
        self.url_pattern.replace("{db}", name)
    }

    /// The server's version, for the report.
    pub async fn version(&self) -> String {
        let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin_url).await else { return "?".into() };
        let v: (String,) = sqlx::query_as("SHOW server_version").fetch_one(&mut conn).await.unwrap_or(("?".into(),));
        let _ = conn.close().await;
        v.0
    }

    /// Drops a database made by `fresh_database` (an existing server keeps nothing of ours).
    pub async fn drop_database(&self, name: &str) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
            let _ = conn.close().await;
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some((pg_ctl, dir)) = &self.own {
            let mut stop = pg_command(pg_ctl, dir);
            stop.arg("-D").arg(dir.join("data")).args(["stop", "-m", "fast"]).stdout(Stdio::null());
            let _ = run(stop, "pg_ctl stop");
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Stops the server and removes its directory once this process is gone (Ctrl-C, a panic).
fn spawn_watchdog(bin: &Path, dir: &Path) -> Result<(), String> {
    use std::os::unix::process::CommandExt as _;
    let pg_ctl = bin.join("pg_ctl");
    let stop = if is_root() {
        format!("runuser -u postgres -- '{}' -D '{}/data' stop -m immediate", pg_ctl.display(), dir.display())
    } else {
        format!("'{}' -D '{}/data' stop -m immediate", pg_ctl.display(), dir.display())
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; if [ -d '{dir}/data' ]; then {stop} >/dev/null 2>&1; fi; rm -rf '{dir}'",
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
