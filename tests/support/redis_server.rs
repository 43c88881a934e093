//! A throwaway `redis-server` of a test's own, on a free port, with AOF and
//! `appendfsync always` (so a SIGKILL loses nothing acknowledged): for tests
//! that crash and restart Redis. Never the shared server.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child, killed (and its directory removed) when dropped.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one in a fresh temp directory; `None` (with the reason printed)
    /// when `redis-server` cannot run — a failure under `CI`.
    pub fn start() -> Option<RedisServer> {
        let dir = std::env::temp_dir().join(format!("jobs-redis-{:016x}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = RedisServer {
            port,
            dir,
            child: None,
        };
        server.child = Some(server.spawn()?);
        server.wait_ready();
        Some(server)
    }

    fn spawn(&self) -> Option<Child> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(c) => Some(c),
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("cannot start redis-server (needed in CI): {e}")
            }
            Err(e) => {
                eprintln!("skipped: cannot start redis-server: {e}");
                None
            }
        }
    }

    /// `redis://127.0.0.1:<port>/?prefix=<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("redis://127.0.0.1:{}/?prefix={prefix}", self.port)
    }

    pub fn wait_ready(&self) {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.port)).unwrap();
        let start = Instant::now();
        loop {
            if let Ok(mut con) = client.get_connection() {
                // Loading the AOF answers PING with an error until done.
                if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                    return;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "redis-server on port {} did not come up",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: a crash, not a clean shutdown (which would flush on its own).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Starts it again on the same port and data (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        self.kill();
        self.child = Some(self.spawn().expect("restart redis-server"));
        self.wait_ready();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(Path::new(&self.dir));
    }
}
