//! The connection options ([`PostgresBuilder`]), and the names derived from the
//! schema.

use std::sync::Arc;
use std::time::Duration;

use jobs_core::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::backend::{Inner, PostgresBackend};
use super::conns::Conns;
use super::hints::Hints;
use super::migrate::migrate;
use super::sql::Sql;

/// The schema used unless the URL or the builder names another.
pub const DEFAULT_SCHEMA: &str = "jobs";

pub(super) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub(super) fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn check_schema(schema: &str) -> std::result::Result<(), String> {
    let ok = !schema.is_empty()
        && schema.len() <= 40
        && schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit())
        && !schema.starts_with("pg_");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "schema name `{schema}` must be 1 to 40 ASCII letters, digits or `_`, \
             not start with a digit or `pg_`"
        ))
    }
}

/// Splits `?schema=name` off a URL (sqlx does not know the parameter).
fn split_schema(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.split_once('=') {
            Some(("schema", v)) => {
                schema = Some(v.to_owned());
                false
            }
            _ => !kv.is_empty(),
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, schema)
}

/// Options for [`PostgresBackend`]; from [`PostgresBackend::builder`].
#[derive(Debug, Clone)]
pub struct PostgresBuilder {
    url: String,
    schema: Option<String>,
    max_connections: u32,
    acquire_timeout: Duration,
    synchronous_claims: bool,
}

impl PostgresBuilder {
    /// The defaults, for [`PostgresBackend::builder`].
    pub(super) fn new(url: String) -> Self {
        PostgresBuilder {
            url,
            schema: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            synchronous_claims: false,
        }
    }

    /// The schema holding the jobs table (created if missing). Overrides `?schema=` in the URL.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Size of the connection pool for queue operations (default 10). Each
    /// listener holds one more connection of its own.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long a call waits for a pooled connection — or for the database to come
    /// back — before failing with a transient error (default 5 s).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Whether claims and heartbeats wait for their WAL flush like everything
    /// else (default `false`). Without the wait a claim saves a disk flush —
    /// the biggest cost of a pickup — and a database crash can at worst forget
    /// the last moment's claims, so those jobs run again: at-least-once delivery
    /// either way. Enqueues, outcomes and lease recovery always wait.
    pub fn synchronous_claims(mut self, yes: bool) -> Self {
        self.synchronous_claims = yes;
        self
    }

    /// Connects, then creates or migrates the schema.
    pub async fn connect(self) -> Result<PostgresBackend> {
        let (url, url_schema) = split_schema(&self.url);
        let schema = self
            .schema
            .or(url_schema)
            .unwrap_or_else(|| DEFAULT_SCHEMA.to_owned());
        let bad = |reason: String| Error::Connect {
            url: self.url.clone(),
            reason,
        };
        check_schema(&schema).map_err(bad)?;
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| bad(format!("not a PostgreSQL URL: {e}")))?;
        let options = options.application_name("jobs");

        migrate(&options, &schema)
            .await
            .map_err(|e| bad(format!("could not prepare schema `{schema}`: {e}")))?;

        // For the caller's own transactions (`pool()`), created lazily.
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .connect_lazy_with(options.clone());
        let conns = Conns::new(options.clone(), self.max_connections, self.acquire_timeout);
        // Claims and heartbeats commit asynchronously (no wait for the WAL flush):
        // if the database itself crashes, the last fraction of a second of them
        // may be lost, which only hands those jobs out again (at-least-once).
        // Enqueues and outcomes always wait for the flush.
        let lease_conns = Conns::new(
            options.clone().options([(
                "synchronous_commit",
                if self.synchronous_claims { "on" } else { "off" },
            )]),
            self.max_connections,
            self.acquire_timeout,
        );
        let listen_pool = PgPoolOptions::new()
            .max_connections(64)
            .acquire_timeout(self.acquire_timeout)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(options);
        tracing::debug!(schema = %schema, "postgres backend connected");
        Ok(PostgresBackend {
            inner: Arc::new(Inner {
                sql: Sql::new(&schema),
                channel: channel_name(&schema),
                schema,
                synchronous_claims: self.synchronous_claims,
                pool,
                conns,
                hints: Hints::default(),
                lease_conns,
                listen_pool,
            }),
        })
    }
}

pub(super) fn channel_name(schema: &str) -> String {
    format!("{schema}.jobs_wake")
}
