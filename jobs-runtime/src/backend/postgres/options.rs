//! The connection options ([`PostgresBuilder`]), and the names derived from the
//! schema.

use std::sync::Arc;
use std::time::Duration;

use jobs_core::backend::{redact_url, take_url_param};
use jobs_core::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::super::remote_finish::RemoteFinish;
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
    statement_timeout: Duration,
    lock_timeout: Duration,
}

/// The default [`PostgresBuilder::statement_timeout`]: 30 s.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default [`PostgresBuilder::lock_timeout`]: 10 s.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

impl std::fmt::Debug for PostgresBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBuilder")
            .field("url", &redact_url(&self.url))
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("synchronous_claims", &self.synchronous_claims)
            .field("statement_timeout", &self.statement_timeout)
            .field("lock_timeout", &self.lock_timeout)
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
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
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
    /// the biggest cost of a pickup — and a database crash can undo the last
    /// moment's claims: those jobs are claimed again under new lease tokens,
    /// and the first workers' heartbeats and outcomes are refused, so a job
    /// may run twice (at-least-once delivery either way) but no stale outcome
    /// overwrites a newer attempt. Enqueues, outcomes and lease recovery
    /// always wait (`synchronous_commit = on`, whatever the server's default).
    pub fn synchronous_claims(mut self, yes: bool) -> Self {
        self.synchronous_claims = yes;
        self
    }

    /// The longest any statement of the backend may run before the server
    /// cancels it (default [`DEFAULT_STATEMENT_TIMEOUT`], 30 s;
    /// `Duration::ZERO`: no limit). The server then frees the connection and
    /// whatever the statement locked, even if this process is gone; the call
    /// fails with a transient error. Whole milliseconds, at most about 24 days.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// The longest a statement of the backend waits for a row or table lock
    /// before the server cancels it (default [`DEFAULT_LOCK_TIMEOUT`], 10 s;
    /// `Duration::ZERO`: no limit), e.g. behind an operator's long
    /// transaction. The call fails with a transient error and is retried.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The server settings of each kind of the backend's connections, on top
    /// of `base` (the URL's): every one gets the time limits; the own and
    /// lease connections an explicit `synchronous_commit`.
    fn settings(&self, base: &PgConnectOptions) -> Settings {
        let limits = [
            ("statement_timeout", millis(self.statement_timeout)),
            ("lock_timeout", millis(self.lock_timeout)),
        ];
        let with = |synchronous_commit: Option<&str>| {
            let options = base.clone().options(limits.clone());
            match synchronous_commit {
                Some(value) => options.options([("synchronous_commit", value)]),
                None => options,
            }
        };
        Settings {
            // Enqueues, outcomes and recovery wait for the WAL flush whatever
            // the server's or role's default says: a default of `off` would
            // otherwise make them silently asynchronous.
            own: with(Some("on")),
            // Claims and heartbeats commit asynchronously unless asked
            // otherwise: a database crash can undo the last moment's claims,
            // which only hands those jobs out again under new lease tokens
            // (see the module docs).
            lease: with(Some(if self.synchronous_claims { "on" } else { "off" })),
            // LISTEN commits nothing worth waiting for.
            listen: with(None),
        }
    }

    /// Connects, then creates or migrates the schema.
    pub async fn connect(self) -> Result<PostgresBackend> {
        let (url, url_schema) = take_url_param(&self.url, "schema");
        let schema = self
            .schema
            .clone()
            .or(url_schema)
            .unwrap_or_else(|| DEFAULT_SCHEMA.to_owned());
        let bad = |reason: String| Error::connect(&self.url, reason);
        check_schema(&schema).map_err(bad)?;
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| bad(format!("not a PostgreSQL URL: {e}")))?;
        let options = options.application_name("jobs");

        // Without the backend's time limits: a backfill over a big table, or
        // the wait for the table lock behind running statements, must not
        // fail a start.
        migrate(&options, &schema)
            .await
            .map_err(|e| bad(format!("could not prepare schema `{schema}`: {e}")))?;

        // For the caller's own transactions (`pool()`), created lazily, with
        // the server's and role's settings: the caller's rules, not ours.
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .connect_lazy_with(options.clone());
        let Settings {
            own: own_options,
            lease: lease_options,
            listen: listen_options,
        } = self.settings(&options);
        let listen_pool = PgPoolOptions::new()
            .max_connections(64)
            .acquire_timeout(self.acquire_timeout)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(listen_options);
        let conns = Conns::new(
            own_options.clone(),
            self.max_connections,
            self.acquire_timeout,
        );
        let lease_conns = Conns::new(
            lease_options.clone(),
            self.max_connections,
            self.acquire_timeout,
        );
        tracing::debug!(schema = %schema, "postgres backend connected");
        Ok(PostgresBackend {
            inner: Arc::new(Inner {
                sql: Sql::new(&schema),
                channel: channel_name(&schema),
                schema,
                synchronous_claims: self.synchronous_claims,
                pool,
                hints: Hints::default(),
                listen_pool,
                own_options,
                lease_options,
                acquire_timeout: self.acquire_timeout,
                finished: RemoteFinish::default(),
            }),
            conns: Arc::new(conns),
            lease_conns: Arc::new(lease_conns),
        })
    }
}

/// The connect options of each kind of the backend's connections.
struct Settings {
    own: PgConnectOptions,
    lease: PgConnectOptions,
    listen: PgConnectOptions,
}

/// A duration as a server setting: whole milliseconds (0 turns the limit off).
fn millis(d: Duration) -> String {
    let ms = d.as_millis().min(i32::MAX as u128);
    // Below a millisecond would read as "no limit": round a tiny limit up.
    let ms = if ms == 0 && !d.is_zero() { 1 } else { ms };
    format!("{ms}")
}

pub(super) fn channel_name(schema: &str) -> String {
    format!("{schema}.jobs_wake")
}

/// The NOTIFY channel that says jobs finished (see `finished.rs`).
pub(super) fn finished_channel_name(schema: &str) -> String {
    format!("{schema}.jobs_finished")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_gets_time_limits_and_an_explicit_commit_mode() {
        let base: PgConnectOptions = "postgres://u@h/db?options=-c%20search_path%3Dx"
            .parse()
            .unwrap();
        // The `-c name=value` settings, in order.
        let opts = |o: &PgConnectOptions| -> Vec<String> {
            let all = o.get_options().unwrap_or_default();
            all.split("-c ")
                .map(|kv| kv.trim().to_owned())
                .filter(|kv| !kv.is_empty())
                .collect()
        };
        let builder = PostgresBuilder::new("postgres://u@h/db".into())
            .statement_timeout(Duration::from_secs(7))
            .lock_timeout(Duration::from_micros(10));
        let s = builder.clone().settings(&base);
        let limits = ["search_path=x", "statement_timeout=7000", "lock_timeout=1"];
        // The URL's own options stay; ours come after, so they win.
        assert_eq!(
            opts(&s.own),
            [&limits[..], &["synchronous_commit=on"]].concat()
        );
        assert_eq!(
            opts(&s.lease),
            [&limits[..], &["synchronous_commit=off"]].concat()
        );
        assert_eq!(opts(&s.listen), limits);
        let sync = builder.synchronous_claims(true).settings(&base);
        assert_eq!(opts(&sync.lease).last().unwrap(), "synchronous_commit=on");
        let defaults = PostgresBuilder::new(String::new()).settings(&base);
        assert_eq!(
            opts(&defaults.own)[1..3],
            ["statement_timeout=30000", "lock_timeout=10000"]
        );
        let off = PostgresBuilder::new(String::new())
            .statement_timeout(Duration::ZERO)
            .settings(&base);
        assert_eq!(opts(&off.own)[1], "statement_timeout=0");
    }
}
