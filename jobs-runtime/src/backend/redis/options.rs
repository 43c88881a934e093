//! Connecting: [`RedisBuilder`], the `?prefix=` of the URL, and the checks
//! and redaction of what the caller gave.

use std::sync::Arc;
use std::time::Duration;

use jobs_core::backend::{redact_url, take_url_param};
use jobs_core::{Error, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Client;

use super::super::remote_finish::RemoteFinish;
use super::backend::{Inner, RedisBackend};
use super::conn::Conn;

/// The key prefix used when none is given.
pub const DEFAULT_PREFIX: &str = "jobs";

fn check_prefix(prefix: &str) -> std::result::Result<(), String> {
    if prefix.is_empty()
        || prefix.len() > 128
        || prefix
            .chars()
            .any(|c| c == '{' || c == '}' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "key prefix {prefix:?} must be 1 to 128 characters without braces, whitespace or control characters"
        ));
    }
    Ok(())
}

/// Configures a [`RedisBackend`] before connecting.
#[derive(Clone)]
pub struct RedisBuilder {
    url: String,
    prefix: Option<String>,
    connection_timeout: Duration,
    response_timeout: Option<Duration>,
}

impl std::fmt::Debug for RedisBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBuilder")
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("connection_timeout", &self.connection_timeout)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

impl RedisBuilder {
    /// The defaults of [`RedisBackend::builder`].
    pub(super) fn new(url: String) -> Self {
        RedisBuilder {
            url,
            prefix: None,
            connection_timeout: Duration::from_secs(2),
            response_timeout: Some(Duration::from_secs(30)),
        }
    }

    /// The key prefix (namespace); overrides a `?prefix=` in the URL.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// How long one connection attempt may take (default 2 s).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How long a call may wait for Redis's reply before failing with
    /// [`Error::Backend`] (default 30 s; `None`: forever).
    pub fn response_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Connects. Fails with [`Error::Connect`] if the URL is unusable or Redis
    /// cannot be reached now; later outages only fail the calls made meanwhile.
    pub async fn connect(self) -> Result<RedisBackend> {
        let connect_err = |reason: String| Error::connect(&self.url, reason);
        let (url, url_prefix) = take_url_param(&self.url, "prefix");
        let prefix = self
            .prefix
            .or(url_prefix)
            .unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
        check_prefix(&prefix).map_err(connect_err)?;
        let client = Client::open(url.as_str()).map_err(|e| connect_err(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1))
            .set_connection_timeout(Some(self.connection_timeout))
            .set_response_timeout(self.response_timeout);
        let conn = ConnectionManager::new_with_config(client.clone(), config.clone())
            .await
            .map_err(|e| connect_err(format!("{e}; is Redis running and reachable?")))?;
        tracing::info!(url = %redact_url(&self.url), prefix = %prefix, "connected to redis");
        let backend = RedisBackend {
            inner: Arc::new(Inner {
                client,
                config,
                ns: format!("{{{prefix}}}"),
                prefix,
                connection_timeout: self.connection_timeout,
                finished: RemoteFinish::default(),
            }),
            conn: Conn::Shared(conn),
        };
        backend.build_due_index().await?;
        Ok(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_comes_out_of_the_url() {
        assert_eq!(
            take_url_param("redis://h:1/0?prefix=app&protocol=resp3", "prefix"),
            (
                "redis://h:1/0?protocol=resp3".to_owned(),
                Some("app".to_owned())
            )
        );
        assert_eq!(
            take_url_param("redis://h:1/?prefix=app", "prefix"),
            ("redis://h:1/".to_owned(), Some("app".to_owned()))
        );
        assert_eq!(
            take_url_param("redis://h:1", "prefix"),
            ("redis://h:1".to_owned(), None)
        );
        assert!(check_prefix("a{b").is_err());
        assert!(check_prefix("").is_err());
        assert!(check_prefix("my-app:v2").is_ok());
    }

    #[test]
    fn passwords_are_redacted() {
        let b = RedisBuilder::new("redis://u:secret@h:1/0".into());
        let shown = format!("{b:?}");
        assert!(
            shown.contains("redis://u:***@h:1/0") && !shown.contains("secret"),
            "{shown}"
        );
    }
}
