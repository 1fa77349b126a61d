//! A PostgreSQL cluster of one test's own, for a test that restarts it
//! (`pg_ctl restart -m immediate`) again and again: the shared cluster
//! (`l3map::runtime::store::postgres::cluster`) serves every other test of
//! the process, and a restart there would fail their connections (a
//! database being created, `l3map status`) at random.
//!
//! Built as the shared one is, from the same server binaries (as the
//! `postgres` user when we are root), with one difference: commits are
//! durable (`synchronous_commit = on`). The shared cluster answers a commit
//! before its WAL is written, so an immediate restart loses the last
//! acknowledged transactions (events already answered, claims, budget
//! takes), which no production server does. `fsync` stays off: an
//! immediate restart is not an OS crash.
//!
//! Stopped and removed when dropped, or, if the test process dies first,
//! by a watcher (a shell loop on its pid), as the shared one is.

use l3map::runtime::store::postgres::cluster::{run_as, server_bin};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct OwnCluster {
    pub port: u16,
    bin: PathBuf,
    base: PathBuf,
    root: bool,
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

impl OwnCluster {
    /// initdb and start; `Err` when there are no server binaries or they
    /// fail (the caller decides whether that skips or fails the test).
    pub fn start(label: &str) -> Result<OwnCluster, String> {
        let bin = server_bin().ok_or("no PostgreSQL server binaries (initdb, pg_ctl)")?;
        let root = is_root();
        let base = std::env::temp_dir().join(format!(
            "l3map-pg-{label}-{}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
        if root {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres", path(&base)])
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(format!("cannot give {} to postgres", base.display()));
            }
        }
        let port = super::free_port();
        let c = OwnCluster {
            port,
            bin,
            base,
            root,
        };
        run_as(
            root,
            &c.bin.join("initdb"),
            &[
                "-D",
                path(&c.data()),
                "-U",
                "l3map",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        )?;
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=on -c full_page_writes=off -c max_connections=100",
            path(&c.base)
        );
        c.pg_ctl(&["-o", &opts, "start"])?;
        c.watch();
        Ok(c)
    }

    fn data(&self) -> PathBuf {
        self.base.join("data")
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let data = self.data();
        let log = self.base.join("server.log");
        let mut all = vec!["-D", path(&data), "-l", path(&log), "-w", "-t", "60"];
        all.extend_from_slice(args);
        run_as(self.root, &self.bin.join("pg_ctl"), &all).map_err(|e| {
            format!(
                "{e}; server log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })
    }

    /// `pg_ctl restart -m immediate`: the server crashes and recovers.
    pub fn restart_immediate(&self) -> Result<(), String> {
        self.pg_ctl(&["-m", "immediate", "restart"])
    }

    /// A new database on it, as a connection string.
    pub fn database(&self, name: &str) -> String {
        let admin = format!(
            "host=127.0.0.1 port={} user=l3map dbname=postgres",
            self.port
        );
        let sql = format!("CREATE DATABASE {name}");
        // A thread of its own: the caller may be inside a runtime.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                    .await
                    .expect("the test cluster");
                tokio::spawn(conn);
                client.batch_execute(&sql).await.expect("create database");
            })
        })
        .join()
        .expect("create database");
        format!("host=127.0.0.1 port={} user=l3map dbname={name}", self.port)
    }

    /// Stops the server and removes its folder once this process is gone,
    /// if the test never got to drop it.
    fn watch(&self) {
        let stop = format!(
            "{} -D {} stop -m immediate -w >/dev/null 2>&1",
            path(&self.bin.join("pg_ctl")),
            path(&self.data())
        );
        let stop = if self.root {
            format!("runuser -u postgres -- {stop}")
        } else {
            stop
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null && [ -d {base} ]; do sleep 1; done; \
             if [ -d {base} ]; then {stop}; rm -rf {base}; fi",
            pid = std::process::id(),
            base = path(&self.base)
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.base);
    }
}
