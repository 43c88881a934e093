//! The connection options ([`PostgresBuilder`]), and the names derived from the
//! schema.

use std::sync::Arc;
use std::time::Duration;

use jobs_core::backend::{redact_url, take_url_param};
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

/// Options for [`PostgresBackend`]; from [`PostgresBackend::builder`].
#[derive(Clone)]
pub struct PostgresBuilder {
    url: String,
    schema: Option<String>,
    max_connections: u32,
    acquire_timeout: Duration,
    synchronous_claims: bool,
}

impl std::fmt::Debug for PostgresBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBuilder")
            .field("url", &redact_url(&self.url))
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("synchronous_claims", &self.synchronous_claims)
            .finish()
    }
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
        let (url, url_schema) = take_url_param(&self.url, "schema");
        let schema = self
            .schema
            .or(url_schema)
            .unwrap_or_else(|| DEFAULT_SCHEMA.to_owned());
        let bad = |reason: String| Error::connect(&self.url, reason);
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
