//! Where a cluster test runs: one backend that several managers (and
//! processes) share — a memory backend in this process, a SQLite file, a
//! PostgreSQL schema or a Redis key prefix of the test's own, removed when
//! the test ends.
#![allow(dead_code)]

use std::path::PathBuf;

use jobs::Queue;

/// One shared backend.
pub struct Target {
    pub name: &'static str,
    /// What each manager connects to (`None`: the memory backend, shared
    /// through `queue` — it cannot be reached from another process).
    pub url: Option<String>,
    memory: Option<Queue>,
    cleanup: Cleanup,
}

enum Cleanup {
    None,
    Dir(PathBuf),
    Schema { url: String, schema: String },
    Prefix { url: String, prefix: String },
}

fn tag() -> String {
    format!("{:012x}", fastrand::u64(..) >> 16)
}

/// `var`, or `None` with the reason printed — a failure in CI.
fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but {var} is not: the cluster tests must run on every backend in CI")
        }
        _ => {
            eprintln!("skipped: set {var} to run this cluster test");
            None
        }
    }
}

fn with_param(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

impl Target {
    pub fn memory() -> Option<Target> {
        Some(Target {
            name: "memory",
            url: None,
            memory: Some(jobs::Queue::new(jobs::backend::memory::MemoryBackend::new())),
            cleanup: Cleanup::None,
        })
    }

    pub fn sqlite() -> Option<Target> {
        let dir = std::env::temp_dir().join(format!("jobs-cluster-{}", tag()));
        std::fs::create_dir_all(&dir).unwrap();
        Some(Target {
            name: "sqlite",
            url: Some(format!("sqlite://{}", dir.join("jobs.db").display())),
            memory: None,
            cleanup: Cleanup::Dir(dir),
        })
    }

    pub fn postgres() -> Option<Target> {
        let url = service_url("JOBS_TEST_POSTGRES_URL")?;
        let schema = format!("jobs_test_cluster_{}", tag());
        Some(Target {
            name: "postgres",
            url: Some(with_param(&url, "schema", &schema)),
            memory: None,
            cleanup: Cleanup::Schema { url, schema },
        })
    }

    pub fn redis() -> Option<Target> {
        let url = service_url("JOBS_TEST_REDIS_URL")?;
        let prefix = format!("cluster-{}", tag());
        Some(Target {
            name: "redis",
            url: Some(with_param(&url, "prefix", &prefix)),
            memory: None,
            cleanup: Cleanup::Prefix { url, prefix },
        })
    }

    /// A handle of its own on the shared backend (its own connections), as
    /// another process would have.
    pub async fn queue(&self) -> Queue {
        match (&self.memory, &self.url) {
            (Some(q), _) => q.clone(),
            (None, Some(url)) => jobs::connect(url).await.expect("connect"),
            (None, None) => unreachable!(),
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.cleanup, Cleanup::None) {
            Cleanup::None => {}
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Schema { url, schema } => {
                let _ = std::process::Command::new("psql")
                    .arg(&url)
                    .args([
                        "-qc",
                        &format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
                    ])
                    .output();
            }
            Cleanup::Prefix { url, prefix } => {
                let purge = || -> redis::RedisResult<()> {
                    let mut con = redis::Client::open(url.as_str())?.get_connection()?;
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(format!("{{{prefix}}}:*"))
                        .query(&mut con)?;
                    for chunk in keys.chunks(500) {
                        redis::cmd("DEL").arg(chunk).query::<()>(&mut con)?;
                    }
                    Ok(())
                };
                if let Err(e) = purge() {
                    eprintln!("could not delete the keys of prefix {prefix}: {e}");
                }
            }
        }
    }
}
