//! `connect(url)`: a queue handle from a URL.

use jobs_core::{Error, Queue, Result};

use crate::backend::memory::MemoryBackend;

/// The URL schemes `connect` knows, whether or not their feature is enabled.
pub const SCHEMES: &[&str] = &["memory://", "sqlite://", "postgres://", "redis://"];

/// Opens a queue from a URL:
///
/// * `memory://` — in-process, for tests and demos (nothing survives the process);
/// * `sqlite://path/to/jobs.db` (or `sqlite::memory:`) — embedded and durable (feature `sqlite`);
/// * `postgres://user@host/db` — many workers on many machines (feature `postgres`);
/// * `redis://host:6379` — many workers on many machines (feature `redis`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> jobs_core::Result<()> {
/// let queue = jobs_runtime::connect("memory://").await?;
/// let err = jobs_runtime::connect("mysql://localhost").await.unwrap_err();
/// assert!(err.to_string().contains("unknown scheme `mysql`"));
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<Queue> {
    let scheme = url.split_once(':').map_or(url, |(s, _)| s);
    match scheme {
        "memory" => Ok(Queue::new(MemoryBackend::new())),
        "sqlite" => connect_sqlite(url).await,
        "postgres" | "postgresql" => connect_postgres(url).await,
        "redis" | "rediss" => connect_redis(url).await,
        _ => Err(Error::connect(
            url,
            format!(
                "unknown scheme `{scheme}`; expected one of {}",
                SCHEMES.join(", ")
            ),
        )),
    }
}

#[cfg(not(all(feature = "sqlite", feature = "postgres", feature = "redis")))]
fn feature_off(url: &str, feature: &str) -> Error {
    Error::connect(
        url,
        format!(
            "the `{feature}` backend is not compiled in; enable the `{feature}` feature of `jobs`"
        ),
    )
}

#[cfg(feature = "sqlite")]
async fn connect_sqlite(url: &str) -> Result<Queue> {
    crate::backend::sqlite::SqliteBackend::connect(url)
        .await
        .map(Queue::new)
}

#[cfg(not(feature = "sqlite"))]
async fn connect_sqlite(url: &str) -> Result<Queue> {
    Err(feature_off(url, "sqlite"))
}

#[cfg(feature = "postgres")]
async fn connect_postgres(url: &str) -> Result<Queue> {
    crate::backend::postgres::PostgresBackend::connect(url)
        .await
        .map(Queue::new)
}

#[cfg(not(feature = "postgres"))]
async fn connect_postgres(url: &str) -> Result<Queue> {
    Err(feature_off(url, "postgres"))
}

#[cfg(feature = "redis")]
async fn connect_redis(url: &str) -> Result<Queue> {
    crate::backend::redis::RedisBackend::connect(url)
        .await
        .map(Queue::new)
}

#[cfg(not(feature = "redis"))]
async fn connect_redis(url: &str) -> Result<Queue> {
    Err(feature_off(url, "redis"))
}
