//! Connecting: [`RedisBuilder`], the `?prefix=` of the URL, and the checks
//! and redaction of what the caller gave.

use std::sync::Arc;
use std::time::Duration;

use jobs_core::{Error, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Client;

use super::backend::{Inner, RedisBackend};

/// The key prefix used when none is given.
pub const DEFAULT_PREFIX: &str = "jobs";

/// Hides the password of a URL for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Splits our own `prefix` parameter off a Redis URL.
fn split_prefix(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut prefix = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("prefix=") {
            Some(p) => {
                prefix = Some(p.to_owned());
                false
            }
            None => !kv.is_empty(),
        })
        .collect();
    if rest.is_empty() {
        (base.to_owned(), prefix)
    } else {
        (format!("{base}?{}", rest.join("&")), prefix)
    }
}

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
#[derive(Debug, Clone)]
pub struct RedisBuilder {
    url: String,
    prefix: Option<String>,
    connection_timeout: Duration,
    response_timeout: Option<Duration>,
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
        let shown = redact(&self.url);
        let connect_err = |reason: String| Error::Connect {
            url: shown.clone(),
            reason,
        };
        let (url, url_prefix) = split_prefix(&self.url);
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
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| connect_err(format!("{e}; is Redis running and reachable?")))?;
        tracing::info!(url = %shown, prefix = %prefix, "connected to redis");
        Ok(RedisBackend {
            inner: Arc::new(Inner {
                client,
                conn,
                ns: format!("{{{prefix}}}"),
                prefix,
                connection_timeout: self.connection_timeout,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_comes_out_of_the_url() {
        assert_eq!(
            split_prefix("redis://h:1/0?prefix=app&protocol=resp3"),
            (
                "redis://h:1/0?protocol=resp3".to_owned(),
                Some("app".to_owned())
            )
        );
        assert_eq!(
            split_prefix("redis://h:1/?prefix=app"),
            ("redis://h:1/".to_owned(), Some("app".to_owned()))
        );
        assert_eq!(
            split_prefix("redis://h:1"),
            ("redis://h:1".to_owned(), None)
        );
        assert!(check_prefix("a{b").is_err());
        assert!(check_prefix("").is_err());
        assert!(check_prefix("my-app:v2").is_ok());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact("redis://h:1/0"), "redis://h:1/0");
    }
}
