//! A throwaway PostgreSQL cluster of a test's own, never the shared one: for
//! tests that restart the server or count every statement it runs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A cluster in a temp dir, on a free port; stopped and deleted on drop.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
    extra: String,
}

impl Cluster {
    fn bin_dir() -> Option<PathBuf> {
        let bin = std::env::var_os("JOBS_TEST_PG_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
        if bin.join("initdb").exists() && bin.join("pg_ctl").exists() {
            Some(bin)
        } else if std::env::var_os("CI").is_some() {
            panic!(
                "CI is set but no initdb/pg_ctl in {}: set JOBS_TEST_PG_BIN",
                bin.display()
            );
        } else {
            eprintln!(
                "skipped: no PostgreSQL server binaries in {} (set JOBS_TEST_PG_BIN)",
                bin.display()
            );
            None
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        out
    }

    fn run_ok(&self, program: &str, args: &[&str]) {
        let out = self.run(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
    }

    pub fn init() -> Option<Cluster> {
        Self::init_with("")
    }

    /// A cluster started with extra server options (`-c name=value ...`).
    pub fn init_with(extra: &str) -> Option<Cluster> {
        let bin = Self::bin_dir()?;
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let dir = std::env::temp_dir().join(format!("jobs-pg-restart-{:016x}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown {} to postgres", dir.display());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Cluster {
            bin,
            dir,
            port,
            as_postgres,
            extra: extra.to_owned(),
        };
        let data = cluster.data();
        cluster.run_ok(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        cluster.start();
        Some(cluster)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    pub fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off {}",
            self.port,
            self.dir.display(),
            self.extra
        );
        let log = self.dir.join("log").display().to_string();
        self.run_ok(
            "pg_ctl",
            &["-D", &self.data(), "-l", &log, "-o", &opts, "-w", "start"],
        );
    }

    /// `pg_ctl stop -m immediate`: the server dies as in a crash (recovery
    /// replays the WAL at the next start).
    pub fn crash(&self) {
        self.run_ok(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    pub fn stop(&self) {
        self.run_ok("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(Path::new(&self.dir));
    }
}
