//! A PostgreSQL for tests and benchmarks: `L3MAP_TEST_DATABASE_URL` when
//! set, otherwise a throwaway cluster in a temporary folder, started once
//! per process from the server binaries on the machine (Debian:
//! `/usr/lib/postgresql/N/bin`; as root they run as the `postgres` user,
//! since initdb refuses root). Each caller gets a database of its own.
//!
//! With no server binaries the tests that need one are skipped with a loud
//! line, unless `L3MAP_REQUIRE_POSTGRES=1` (CI sets it), which makes that a
//! failure: CI can never pass by skipping.
//!
//! The cluster is stopped when the process that started it exits: a
//! watcher (a shell loop on the parent's pid) runs `pg_ctl stop`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// A running server: its admin URL, and its data folder (`None` for
/// `L3MAP_TEST_DATABASE_URL`).
pub struct Cluster {
    pub admin_url: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub data: Option<PathBuf>,
    pub bin: Option<PathBuf>,
    pub log: Option<PathBuf>,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static NEXT: AtomicU32 = AtomicU32::new(0);

/// Whether a test without PostgreSQL must fail rather than skip.
fn required() -> bool {
    std::env::var("L3MAP_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// The server binaries' folder: `L3MAP_PG_BIN`, then Debian's newest,
/// then `pg_ctl` on the PATH.
pub fn server_bin() -> Option<PathBuf> {
    if let Ok(b) = std::env::var("L3MAP_PG_BIN") {
        return Some(PathBuf::from(b));
    }
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").exists())
        .collect();
    debian.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    debian.pop().or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .find(|p| p.join("pg_ctl").exists() && p.join("initdb").exists())
        })
    })
}

/// The shared server, started at first use.
pub fn cluster() -> Result<&'static Cluster, String> {
    CLUSTER.get_or_init(start).as_ref().map_err(Clone::clone)
}

/// A new, empty database on the shared server, as a URL; `None` (after a
/// loud line on stderr) when there is no PostgreSQL and none is required.
/// Panics when one is required and cannot be had.
pub fn database(label: &str) -> Option<String> {
    let c = match cluster() {
        Ok(c) => c,
        Err(e) if !required() => {
            eprintln!("SKIPPED ({label}): no PostgreSQL for this test: {e}. Set L3MAP_TEST_DATABASE_URL, or install the PostgreSQL server packages; CI sets L3MAP_REQUIRE_POSTGRES=1 so it never skips.");
            return None;
        }
        Err(e) => panic!("PostgreSQL is required (L3MAP_REQUIRE_POSTGRES=1) but unavailable: {e}"),
    };
    Some(c.database(label))
}

/// A server of the caller's own (for a test that restarts or stops it:
/// on the shared one it would cut every other test's connections), or
/// `None` as [`database`] says. Stopped when the process exits.
pub fn private(label: &str) -> Option<Cluster> {
    if std::env::var("L3MAP_TEST_DATABASE_URL").is_ok() {
        // Not ours to restart: such tests skip, loudly.
        eprintln!("SKIPPED ({label}): restarts its own PostgreSQL, which L3MAP_TEST_DATABASE_URL does not allow");
        return None;
    }
    match start_local(true) {
        Ok(c) => Some(c),
        Err(e) if !required() => {
            eprintln!("SKIPPED ({label}): no PostgreSQL for this test: {e}");
            None
        }
        Err(e) => panic!("PostgreSQL is required (L3MAP_REQUIRE_POSTGRES=1) but unavailable: {e}"),
    }
}

impl Cluster {
    /// A new, empty database on this server, as a URL.
    pub fn database(&self, label: &str) -> String {
        let c = self;
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let name = format!("l3map_{}_{}_{n}", sanitize(label), std::process::id());
        let sql = format!("CREATE DATABASE {name}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        // A thread of its own: the caller may be inside a runtime.
        let admin = c.admin_url.clone();
        let created = std::thread::spawn(move || {
            rt.block_on(async move {
                let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                client.batch_execute(&sql).await.map_err(|e| e.to_string())
            })
        })
        .join()
        .expect("create database");
        if let Err(e) = created {
            panic!("cannot create a test database: {e}");
        }
        format!(
            "host={} port={} user={} dbname={name}",
            c.host, c.port, c.user
        )
    }

    /// `pg_ctl restart -m immediate`: the chaos tests' database crash.
    pub fn restart_immediate(&self) -> Result<(), String> {
        let (Some(bin), Some(data), Some(log)) = (&self.bin, &self.data, &self.log) else {
            return Err("the cluster is L3MAP_TEST_DATABASE_URL's, not ours to restart".into());
        };
        run_as(
            is_root(),
            &bin.join("pg_ctl"),
            &[
                "-D",
                path(data),
                "-l",
                path(log),
                "-m",
                "immediate",
                "-w",
                "-t",
                "60",
                "restart",
            ],
        )
    }
}

fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(30)
        .collect()
}

fn start() -> Result<Cluster, String> {
    if let Ok(url) = std::env::var("L3MAP_TEST_DATABASE_URL") {
        let cfg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| format!("L3MAP_TEST_DATABASE_URL: {e}"))?;
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "127.0.0.1".into(),
        };
        return Ok(Cluster {
            host,
            port: cfg.get_ports().first().copied().unwrap_or(5432),
            user: cfg.get_user().unwrap_or("postgres").to_string(),
            admin_url: url,
            data: None,
            bin: None,
            log: None,
        });
    }
    start_local(false)
}

/// A cluster of this process's own, in a new temporary folder. `durable`:
/// commits are flushed before they are acknowledged (a test that crashes
/// the server must not lose what it was told was written); the shared one
/// is not, for speed.
fn start_local(durable: bool) -> Result<Cluster, String> {
    let bin = server_bin().ok_or("no PostgreSQL server binaries (initdb, pg_ctl) were found")?;
    let root = is_root();
    let base = std::env::temp_dir().join(format!(
        "l3map-pg-{}-{:08x}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    let data = base.join("data");
    let log = base.join("server.log");
    if root {
        chown_postgres(&base)?;
    }
    let port = free_port()?;
    let user = "l3map";
    run_as(
        root,
        &bin.join("initdb"),
        &[
            "-D",
            path(&data),
            "-U",
            user,
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ],
    )?;
    let opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit={} -c full_page_writes=off -c max_connections=300",
        path(&base),
        if durable { "on" } else { "off" }
    );
    run_as(
        root,
        &bin.join("pg_ctl"),
        &[
            "-D",
            path(&data),
            "-l",
            path(&log),
            "-o",
            &opts,
            "-w",
            "-t",
            "60",
            "start",
        ],
    )
    .map_err(|e| {
        format!(
            "{e}; server log: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    })?;
    watch(root, &bin, &data, &base);
    Ok(Cluster {
        admin_url: format!("host=127.0.0.1 port={port} user={user} dbname=postgres"),
        host: "127.0.0.1".into(),
        port,
        user: user.into(),
        data: Some(data),
        bin: Some(bin),
        log: Some(log),
    })
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn chown_postgres(dir: &Path) -> Result<(), String> {
    let ok = Command::new("chown")
        .args(["-R", "postgres:postgres", path(dir)])
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(())
        .ok_or_else(|| format!("cannot give {} to the postgres user", dir.display()))
}

/// Runs a server binary, as `postgres` when we are root.
pub fn run_as(root: bool, program: &Path, args: &[&str]) -> Result<(), String> {
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let out = cmd
        .args(args)
        .output()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ))
    }
}

/// Stops the cluster and removes its folder once this process is gone.
fn watch(root: bool, bin: &Path, data: &Path, base: &Path) {
    let stop = format!(
        "{} -D {} stop -m immediate -w >/dev/null 2>&1",
        path(&bin.join("pg_ctl")),
        path(data)
    );
    let stop = if root {
        format!("runuser -u postgres -- {stop}")
    } else {
        stop
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop}; rm -rf {base}",
        pid = std::process::id(),
        base = path(base)
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}
