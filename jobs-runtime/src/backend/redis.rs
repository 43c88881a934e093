//! The Redis backend (`redis://host:6379`, feature `redis`): many worker
//! processes on many machines share one Redis.
//!
//! ```no_run
//! # async fn demo() -> jobs_core::Result<()> {
//! use jobs_runtime::backend::redis::RedisBackend;
//! // Every key lives under the namespace `{myapp}`; other prefixes are invisible.
//! let backend = RedisBackend::connect("redis://127.0.0.1:6379/?prefix=myapp").await?;
//! let queue = jobs_core::Queue::new(backend);
//! queue.enqueue_raw("email.send", serde_json::json!({"to": "a@example.com"})).await?;
//! # Ok(()) }
//! ```
//!
//! # How it works
//!
//! Every state change (enqueue a batch, claim a batch, heartbeat, record a
//! batch of outcomes, recover expired leases, cancel, requeue, prune) is **one
//! Lua script**, so Redis runs it atomically: a crash of the worker between two
//! commands cannot strand a job. The scripts live next to this file in
//! `redis/*.lua`, each prefixed with `redis/common.lua`, and are sent with
//! `EVALSHA` (loaded again automatically after a Redis restart). "Now" is the
//! Redis server's `TIME`, so workers on many machines share one clock.
//!
//! Every script bounds its own work, so no call blocks Redis for long and no
//! backlog is too big: a claim returns at most 1,000 jobs and promotes at most
//! 1,000 due delayed jobs per queue and call (when more than that come due at
//! once, the next calls promote the rest, so strict priority order among them
//! holds per promoted slice); heartbeats, outcomes, recovery and prune take
//! 1,000 jobs per call (the Rust side loops); a big enqueue batch is cut into
//! chunks of 1,000 jobs that run together in one `MULTI`/`EXEC`, so it stays
//! all or nothing (and therefore blocks Redis for its whole length: enqueue
//! millions of jobs as several batches). Lua never unpacks more than 1,000
//! values at a time, so 20,000 or 1,000,000 jobs coming due at once are fine.
//!
//! # Key layout
//!
//! With prefix `P` (default `jobs`; set it with `?prefix=P` in the URL or
//! [`RedisBuilder::prefix`]) every key starts with the hash tag `{P}`, so a
//! namespace lives in one Redis Cluster slot and scripts may touch all of it:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{P}:j:<id>` | hash | one job (fields below) |
//! | `{P}:ready:<queue>` | zset | due waiting jobs; score `-priority`, member `run_at(17 digits) seq(16 digits) id`, so equal priorities sort by run_at, then enqueue order |
//! | `{P}:delayed:<queue>` | zset | SCHEDULED/RETRYING jobs not yet due; score run_at (µs), same member |
//! | `{P}:leases` | zset | RUNNING jobs; score lease expiry (µs), member id |
//! | `{P}:all` | zset | every job; score enqueue sequence, member id (for `list`) |
//! | `{P}:done` | zset | COMPLETED/FAILED/DEAD_LETTER jobs; score finish time (µs), member id (for `prune`) |
//! | `{P}:counts` | hash | `"<STATUS> <queue>"` → number of jobs |
//! | `{P}:seq` | string | the enqueue sequence counter |
//! | `{P}:abort:<nonce>` | string | short-lived marker of a refused multi-chunk enqueue |
//! | `{P}:wake` | pub/sub channel | a queue's name whenever it may have new work |
//!
//! Job hash fields: `q` queue, `t` job type, `p` payload (JSON), `s` status,
//! `pr` priority, `rc` retry count, `mr` max retries, `ra` run_at, `ca`
//! created_at, `sa` started_at, `fa` completed_at, `em` error message, `er`
//! error history (JSON objects joined by commas), `rd` result (JSON), `md`
//! metadata (JSON), `lb` locked by, `lu` lease until, `at` attempt, `sq`
//! enqueue sequence (`rc` and `at` are absent until they become non-zero). Times are microseconds since the Unix epoch. An empty
//! string means "not set" (scripts clear `lb`/`lu` that way, in the same
//! `HSET` that changes the status).
//!
//! Timestamps in scores are microseconds (below 2^53, so exact in a double);
//! priorities are `i32`, exact too.
//!
//! **Redis Cluster.** Each script gets the namespace tag `{P}` as its one key
//! and builds the others from it; since every key of the namespace hashes to
//! that tag's slot, the script runs on the node owning the slot and touches
//! only keys of that slot, which Redis Cluster accepts. The connection itself
//! is a single-node one (the `redis` crate's cluster client is not enabled in
//! this workspace): against a cluster, point the URL at the node that owns
//! the namespace's slot (`CLUSTER KEYSLOT "{P}"`), or use a cluster-aware
//! proxy. Not yet tested against a real cluster.
//!
//! # Waking idle workers
//!
//! Scripts that make work claimable `PUBLISH` the queue's name on `{P}:wake`.
//! A [listener](JobQueue::listener) holds its own subscribed connection and
//! sleeps until a message for one of its queues arrives, or until the earliest
//! delayed job of its queues comes due, or the caller's timeout. An idle
//! worker makes one small query per wait, nothing else.
//!
//! # Durability: what each Redis persistence setting gives
//!
//! A job is acknowledged when its script returns. What survives depends on
//! the server's configuration, not on this crate:
//!
//! | Redis setting | a crash of Redis (or its machine) loses |
//! |---|---|
//! | no persistence (`save ""`, `appendonly no`) | **everything**: fine for tests, not for jobs |
//! | RDB snapshots only (`save 60 1000` ...) | every change since the last snapshot: minutes of enqueues and outcomes |
//! | AOF, `appendfsync everysec` (the usual) | about the last second of acknowledged changes on power loss; nothing if only the Redis process dies |
//! | AOF, `appendfsync always` | nothing acknowledged: each write is fsynced before the reply (slower writes) |
//!
//! A worker crash never loses a job whatever the setting: its leases expire
//! and [`JobQueue::recover_expired`] returns the jobs as failed attempts. While
//! Redis is down every call returns [`Error::Backend`]; the connection
//! reconnects by itself once Redis is back. With replication, a failover can
//! lose what the old primary had not yet sent to the replica (Redis
//! replication is asynchronous; `WAIT` is not used).
//!
//! # Bad data
//!
//! A job hash that lacks a field or holds a payload that is not JSON is
//! reported as [`Error::Corrupt`] naming the job by `get`, `list`, `cancel` and
//! `requeue`; a `claim` that meets one marks that job FAILED with the reason
//! as its error and returns the others, so a worker never sees it.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_core::Stream;
use jobs_core::{
    AttemptError, BoxFuture, ClaimRequest, Error, Fence, Job, JobFilter, JobId, JobListener,
    JobQueue, JobStatus, NewJob, Outcome, OutcomeUpdate, QueueCount, Recovered, Result,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink, PubSubStream};
use redis::{Client, Cmd, ErrorKind, RedisError, Script, ServerErrorKind, Value};
use serde::Deserialize;

const BACKEND: &str = "redis";

/// The key prefix used when none is given.
pub const DEFAULT_PREFIX: &str = "jobs";

/// Jobs per enqueue script; bigger batches run as several chunks in one MULTI.
const CHUNK_JOBS: usize = 1_000;
/// Bytes of arguments per enqueue script (payloads can be large).
const CHUNK_BYTES: usize = 8 << 20;
/// Due delayed jobs promoted per queue and claim.
const PROMOTE_PER_CLAIM: usize = 1_000;
/// Jobs recovered, pruned, heartbeated or recorded per script call.
const PER_CALL: usize = 1_000;
/// Most jobs one claim returns (a bigger `limit` gets this many).
const CLAIM_PER_CALL: usize = 1_000;
/// Jobs a `list` scan looks at per script call.
const LIST_SCAN: usize = 1_000;

macro_rules! lua {
    ($name:literal) => {
        Script::new(concat!(
            include_str!("redis/common.lua"),
            "\n",
            include_str!(concat!("redis/", $name, ".lua"))
        ))
    };
}

struct Scripts {
    enqueue: Script,
    claim: Script,
    heartbeat: Script,
    record: Script,
    recover: Script,
    cancel: Script,
    requeue: Script,
    prune: Script,
    list: Script,
    next_due: Script,
    get: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    enqueue: lua!("enqueue"),
    claim: lua!("claim"),
    heartbeat: lua!("heartbeat"),
    record: lua!("record"),
    recover: lua!("recover"),
    cancel: lua!("cancel"),
    requeue: lua!("requeue"),
    prune: lua!("prune"),
    list: lua!("list"),
    next_due: lua!("next_due"),
    get: lua!("get"),
});

/// The source of the enqueue script, for `EVAL` inside `MULTI` (where a
/// missing-script error could not be retried).
const ENQUEUE_SRC: &str = concat!(
    include_str!("redis/common.lua"),
    "\n",
    include_str!("redis/enqueue.lua")
);

fn backend_err(e: RedisError) -> Error {
    Error::backend(BACKEND, e)
}

/// `EVALSHA <script> 1 <ns>`, ready for the script's arguments. Built
/// directly instead of through `ScriptInvocation`, which keeps every argument
/// in a vector of its own and copies them all again into the command.
fn script_cmd(script: &Script, ns: &str, n_args: usize, bytes: usize) -> Cmd {
    let mut cmd = Cmd::with_capacity(4 + n_args, 64 + ns.len() + bytes);
    cmd.arg("EVALSHA").arg(script.get_hash()).arg(1).arg(ns);
    cmd
}

/// Runs a command from [`script_cmd`]; loads the script first if Redis lost it
/// (after a restart or `SCRIPT FLUSH`).
async fn run_script(script: &Script, cmd: &Cmd, conn: &mut ConnectionManager) -> Result<Value> {
    match cmd.query_async(conn).await {
        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            script.load_async(conn).await.map_err(backend_err)?;
            cmd.query_async(conn).await.map_err(backend_err)
        }
        other => other.map_err(backend_err),
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 4)
}

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

/// The Redis queue backend. Clones share one multiplexed connection.
#[derive(Clone)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    conn: ConnectionManager,
    /// `{prefix}`: the hash tag every key starts with.
    ns: String,
    prefix: String,
    connection_timeout: Duration,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("prefix", &self.inner.prefix)
            .finish()
    }
}

/// A row as the scripts return it: id, then the fields of `FIELDS` in
/// `common.lua`.
mod col {
    pub const Q: usize = 1;
    pub const T: usize = 2;
    pub const P: usize = 3;
    pub const S: usize = 4;
    pub const PR: usize = 5;
    pub const RC: usize = 6;
    pub const MR: usize = 7;
    pub const RA: usize = 8;
    pub const CA: usize = 9;
    pub const SA: usize = 10;
    pub const FA: usize = 11;
    pub const EM: usize = 12;
    pub const ER: usize = 13;
    pub const RD: usize = 14;
    pub const MD: usize = 15;
    pub const LB: usize = 16;
    pub const LU: usize = 17;
    pub const AT: usize = 18;
    pub const LEN: usize = 19;
}

/// A job that could not be read back.
#[derive(Debug)]
struct CorruptRow {
    id: String,
    attempt: Option<u32>,
    reason: String,
}

impl CorruptRow {
    fn into_error(self) -> Error {
        Error::Corrupt {
            backend: BACKEND,
            id: self.id,
            reason: self.reason,
        }
    }
}

/// One failed attempt as stored in field `er`.
#[derive(Deserialize)]
struct StoredError {
    a: u32,
    r: u32,
    t: i64,
    m: String,
    y: bool,
    #[serde(default)]
    w: Option<String>,
}

/// The bytes of a string reply; an empty string counts as absent (scripts
/// clear a field by setting it to `""`, one command instead of two).
fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) if !b.is_empty() => Some(b),
        Value::SimpleString(s) if !s.is_empty() => Some(s.as_bytes()),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Int(i) => Some(i.to_string()),
        other => bytes(other).map(|b| String::from_utf8_lossy(b).into_owned()),
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => std::str::from_utf8(bytes(other)?).ok()?.parse().ok(),
    }
}

fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        Value::Nil => Vec::new(),
        other => vec![other],
    }
}

fn ts(us: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
}

const FIELD_NAMES: [&str; col::LEN] = [
    "id",
    "q (queue_name)",
    "t (job_type)",
    "p (payload)",
    "s (status)",
    "pr (priority)",
    "rc (retry_count)",
    "mr (max_retries)",
    "ra (run_at)",
    "ca (created_at)",
    "sa (started_at)",
    "fa (completed_at)",
    "em (error_message)",
    "er (errors)",
    "rd (result_data)",
    "md (metadata)",
    "lb (locked_by)",
    "lu (lease_until)",
    "at (attempt)",
];

/// Reads a job row; every problem names the field.
fn parse_row(row: &[Value]) -> std::result::Result<Job, CorruptRow> {
    let id_text = row.first().and_then(text).unwrap_or_default();
    let attempt = row
        .get(col::AT)
        .and_then(int)
        .and_then(|a| u32::try_from(a).ok());
    let corrupt = |reason: String| CorruptRow {
        id: id_text.clone(),
        attempt,
        reason,
    };
    if row.len() < col::LEN {
        return Err(corrupt(format!(
            "expected {} fields, got {}",
            col::LEN,
            row.len()
        )));
    }
    let missing = |i: usize| corrupt(format!("field `{}` is missing", FIELD_NAMES[i]));
    let bad = |i: usize, why: &dyn std::fmt::Display| {
        corrupt(format!("field `{}` is invalid: {why}", FIELD_NAMES[i]))
    };
    let req_text = |i: usize| text(&row[i]).ok_or_else(|| missing(i));
    let req_int = |i: usize| -> std::result::Result<i64, CorruptRow> {
        let v = &row[i];
        if !matches!(v, Value::Int(_)) && bytes(v).is_none() {
            return Err(missing(i));
        }
        int(v).ok_or_else(|| bad(i, &"not an integer"))
    };
    let opt_int = |i: usize| -> std::result::Result<Option<i64>, CorruptRow> {
        match &row[i] {
            Value::Int(n) => Ok(Some(*n)),
            v if bytes(v).is_none() => Ok(None),
            v => int(v).map(Some).ok_or_else(|| bad(i, &"not an integer")),
        }
    };
    let time = |i: usize, us: i64| ts(us).ok_or_else(|| bad(i, &"timestamp out of range"));
    let opt_time = |i: usize| -> std::result::Result<Option<DateTime<Utc>>, CorruptRow> {
        opt_int(i)?.map(|us| time(i, us)).transpose()
    };
    let u32_of = |i: usize| -> std::result::Result<u32, CorruptRow> {
        u32::try_from(req_int(i)?).map_err(|e| bad(i, &e))
    };
    // Counters a fresh job does not store yet.
    let u32_or_zero = |i: usize| -> std::result::Result<u32, CorruptRow> {
        u32::try_from(opt_int(i)?.unwrap_or(0)).map_err(|e| bad(i, &e))
    };
    let opt_json = |i: usize| -> std::result::Result<Option<serde_json::Value>, CorruptRow> {
        match bytes(&row[i]) {
            None => Ok(None),
            Some(b) => serde_json::from_slice(b)
                .map(Some)
                .map_err(|e| bad(i, &format_args!("not valid JSON: {e}"))),
        }
    };

    let id: JobId = id_text
        .parse()
        .map_err(|e| corrupt(format!("the id is not a UUID: {e}")))?;
    let payload = opt_json(col::P)?.ok_or_else(|| missing(col::P))?;
    let status: JobStatus = req_text(col::S)?.parse().map_err(|e| bad(col::S, &e))?;
    let priority = i32::try_from(req_int(col::PR)?).map_err(|e| bad(col::PR, &e))?;
    let metadata = match opt_json(col::MD)? {
        None => serde_json::Map::new(),
        Some(serde_json::Value::Object(m)) => m,
        Some(_) => return Err(bad(col::MD, &"not a JSON object")),
    };
    let errors = match bytes(&row[col::ER]) {
        None => Vec::new(),
        Some(b) => {
            let mut buf = Vec::with_capacity(b.len() + 2);
            buf.push(b'[');
            buf.extend_from_slice(b);
            buf.push(b']');
            let stored: Vec<StoredError> =
                serde_json::from_slice(&buf).map_err(|e| bad(col::ER, &e))?;
            stored
                .into_iter()
                .map(|e| {
                    Ok(AttemptError {
                        attempt: e.a,
                        retry_count: e.r,
                        at: time(col::ER, e.t)?,
                        message: e.m,
                        retryable: e.y,
                        worker: e.w,
                    })
                })
                .collect::<std::result::Result<Vec<_>, CorruptRow>>()?
        }
    };
    Ok(Job {
        id,
        queue_name: req_text(col::Q)?,
        job_type: req_text(col::T)?,
        payload,
        status,
        priority,
        retry_count: u32_or_zero(col::RC)?,
        max_retries: u32_of(col::MR)?,
        run_at: time(col::RA, req_int(col::RA)?)?,
        created_at: time(col::CA, req_int(col::CA)?)?,
        started_at: opt_time(col::SA)?,
        completed_at: opt_time(col::FA)?,
        error_message: text(&row[col::EM]),
        errors,
        result_data: opt_json(col::RD)?,
        metadata,
        locked_by: text(&row[col::LB]),
        lease_until: opt_time(col::LU)?,
        attempt: u32_or_zero(col::AT)?,
    })
}

/// Arguments of one job for `enqueue.lua`.
fn job_args(job: &NewJob) -> Result<[Vec<u8>; 8]> {
    let payload = serde_json::to_vec(&job.payload).map_err(|e| Error::InvalidPayload {
        job_type: job.job_type.clone(),
        reason: e.to_string(),
    })?;
    let metadata = if job.metadata.is_empty() {
        Vec::new()
    } else {
        serde_json::to_vec(&job.metadata).map_err(|e| {
            Error::InvalidJob(format!("metadata of job {} is not JSON: {e}", job.id))
        })?
    };
    Ok([
        job.id.to_string().into_bytes(),
        job.queue_name.clone().into_bytes(),
        job.job_type.clone().into_bytes(),
        payload,
        job.priority.to_string().into_bytes(),
        job.max_retries.to_string().into_bytes(),
        job.run_at
            .map(|t| t.timestamp_micros().to_string().into_bytes())
            .unwrap_or_default(),
        metadata,
    ])
}

/// What `enqueue.lua` said.
fn enqueue_reply(v: &Value) -> Result<()> {
    let items = match v {
        Value::Array(items) => items.as_slice(),
        Value::ServerError(e) => {
            return Err(Error::Backend {
                backend: BACKEND,
                message: format!("enqueue script failed: {e:?}"),
                source: None,
            })
        }
        _ => &[],
    };
    match items.first().and_then(text).as_deref() {
        Some("ok") => Ok(()),
        Some("dup") => Err(Error::InvalidJob(format!(
            "a job with id {} already exists; nothing was stored",
            items.get(1).and_then(text).unwrap_or_default()
        ))),
        Some("aborted") => Err(Error::InvalidJob(
            "a job of the batch already exists; nothing was stored".to_owned(),
        )),
        _ => Err(Error::Backend {
            backend: BACKEND,
            message: format!("unexpected reply from the enqueue script: {v:?}"),
            source: None,
        }),
    }
}

fn ids_of(v: Value) -> Vec<JobId> {
    array(v)
        .iter()
        .filter_map(|v| text(v)?.parse().ok())
        .collect()
}

impl RedisBackend {
    /// Connects to `url` (`redis://[user:password@]host:port[/db][?prefix=P]`,
    /// `rediss://` for TLS if the `redis` crate was built with it).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect().await
    }

    /// A builder, to set the prefix or timeouts before connecting.
    pub fn builder(url: impl Into<String>) -> RedisBuilder {
        RedisBuilder {
            url: url.into(),
            prefix: None,
            connection_timeout: Duration::from_secs(2),
            response_timeout: Some(Duration::from_secs(30)),
        }
    }

    /// The key prefix of this namespace.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    /// Deletes every key of this namespace (the jobs, their indexes and
    /// counters). Meant for tests and for tearing a namespace down; it scans
    /// the keyspace, so it is slow on a big Redis.
    pub async fn purge(&self) -> Result<u64> {
        let mut conn = self.conn();
        let mut pattern = String::with_capacity(self.inner.ns.len() + 4);
        for c in self.inner.ns.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push_str(":*");
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(backend_err)?;
            if !keys.is_empty() {
                let n: u64 = redis::cmd("UNLINK")
                    .arg(&keys)
                    .query_async(&mut conn)
                    .await
                    .map_err(backend_err)?;
                deleted += n;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    async fn enqueue_now(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut seen = HashSet::with_capacity(jobs.len());
        for job in &jobs {
            job.validate()?;
            if !seen.insert(job.id) {
                return Err(Error::InvalidJob(format!(
                    "job id {} appears twice in one batch; nothing was stored",
                    job.id
                )));
            }
        }
        let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();

        // Cut into chunks by count and size.
        let mut chunks: Vec<Vec<[Vec<u8>; 8]>> = vec![Vec::new()];
        let mut size = 0;
        for job in &jobs {
            let args = job_args(job)?;
            let len: usize = args.iter().map(Vec::len).sum();
            let last = chunks.last_mut().expect("never empty");
            if !last.is_empty() && (last.len() >= CHUNK_JOBS || size + len > CHUNK_BYTES) {
                chunks.push(Vec::new());
                size = 0;
            }
            size += len;
            chunks.last_mut().expect("never empty").push(args);
        }
        drop(jobs);

        let mut conn = self.conn();
        if chunks.len() == 1 {
            let chunk = &chunks[0];
            let mut cmd = script_cmd(&SCRIPTS.enqueue, &self.inner.ns, 3 + chunk.len() * 8, size);
            cmd.arg("").arg(0).arg(chunk.len());
            for args in chunk {
                for a in args {
                    cmd.arg(&a[..]);
                }
            }
            let reply = run_script(&SCRIPTS.enqueue, &cmd, &mut conn).await?;
            enqueue_reply(&reply)?;
            return Ok(ids);
        }

        // Several chunks: one MULTI, so all or nothing is visible. The first
        // chunk checks every id; if one exists it leaves an abort marker that
        // the later chunks obey.
        let flag = JobId::new().to_string();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (i, chunk) in chunks.iter().enumerate() {
            let cmd = pipe
                .cmd("EVAL")
                .arg(ENQUEUE_SRC)
                .arg(1)
                .arg(&self.inner.ns)
                .arg(&flag);
            if i == 0 {
                cmd.arg(ids.len());
                for id in &ids {
                    cmd.arg(id.to_string());
                }
            } else {
                cmd.arg(0);
            }
            cmd.arg(chunk.len());
            for args in chunk {
                for a in args {
                    cmd.arg(&a[..]);
                }
            }
        }
        pipe.cmd("DEL")
            .arg(format!("{}:abort:{flag}", self.inner.ns))
            .ignore();
        let replies: Vec<Value> = pipe.query_async(&mut conn).await.map_err(backend_err)?;
        for reply in &replies {
            enqueue_reply(reply)?;
        }
        Ok(ids)
    }

    async fn claim_now(&self, req: ClaimRequest<'_>) -> Result<Vec<Job>> {
        if req.limit == 0 || req.queues.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn();
        let mut cmd = script_cmd(&SCRIPTS.claim, &self.inner.ns, 5 + req.queues.len(), 128);
        cmd.arg(req.worker_id)
            .arg(req.limit.min(CLAIM_PER_CALL))
            .arg(micros(req.lease))
            .arg(PROMOTE_PER_CLAIM)
            .arg(req.queues.len())
            .arg(req.queues);
        let reply = run_script(&SCRIPTS.claim, &cmd, &mut conn).await?;
        // One flat array: `col::LEN` values per job.
        let values = array(reply);
        let mut jobs = Vec::with_capacity(values.len() / col::LEN);
        let mut corrupt = Vec::new();
        for row in values.chunks_exact(col::LEN) {
            match parse_row(row) {
                Ok(job) => jobs.push(job),
                Err(c) => corrupt.push(c),
            }
        }
        if !corrupt.is_empty() {
            self.fail_corrupt(req.worker_id, corrupt).await;
        }
        Ok(jobs)
    }

    /// Marks claimed jobs that could not be read FAILED, with the reason as
    /// their error, so they neither reach a worker nor come back.
    async fn fail_corrupt(&self, worker: &str, bad: Vec<CorruptRow>) {
        let mut inv = SCRIPTS.record.key(&self.inner.ns);
        inv.arg(worker);
        for c in &bad {
            tracing::error!(
                job_id = %c.id,
                reason = %c.reason,
                backend = BACKEND,
                "corrupt job data in redis; marking the job FAILED"
            );
            inv.arg(&c.id)
                .arg(c.attempt.unwrap_or(0))
                .arg("F")
                .arg(0)
                .arg(format!(
                    "corrupt job data in redis: {}; fix the hash `{}:j:{}` and requeue the job",
                    c.reason, self.inner.ns, c.id
                ))
                .arg(0);
        }
        let mut conn = self.conn();
        if let Err(e) = inv.invoke_async::<Value>(&mut conn).await {
            tracing::error!(error = %e, "could not mark corrupt jobs FAILED; their leases will expire");
        }
    }

    async fn heartbeat_now(
        &self,
        worker: &str,
        fences: &[Fence],
        lease: Duration,
    ) -> Result<Vec<JobId>> {
        let mut lost = Vec::new();
        let mut conn = self.conn();
        for chunk in fences.chunks(PER_CALL) {
            let mut inv = SCRIPTS.heartbeat.key(&self.inner.ns);
            inv.arg(worker).arg(micros(lease));
            for f in chunk {
                inv.arg(f.id.to_string()).arg(f.attempt);
            }
            let reply: Value = inv.invoke_async(&mut conn).await.map_err(backend_err)?;
            lost.extend(ids_of(reply));
        }
        Ok(lost)
    }

    async fn record_now(&self, worker: &str, updates: &[OutcomeUpdate]) -> Result<Vec<JobId>> {
        let mut lost = Vec::new();
        let mut conn = self.conn();
        for chunk in updates.chunks(PER_CALL) {
            let mut cmd = script_cmd(
                &SCRIPTS.record,
                &self.inner.ns,
                1 + chunk.len() * 6,
                64 * chunk.len(),
            );
            cmd.arg(worker);
            let mut id = String::with_capacity(36);
            for u in chunk {
                id.clear();
                write!(id, "{}", u.fence.id).expect("writing to a String cannot fail");
                cmd.arg(id.as_str()).arg(u.fence.attempt);
                match &u.outcome {
                    Outcome::Complete { result } => {
                        let data = match result {
                            Some(v) => serde_json::to_vec(v).map_err(|e| {
                                Error::InvalidJob(format!(
                                    "result of job {} is not JSON: {e}",
                                    u.fence.id
                                ))
                            })?,
                            None => Vec::new(),
                        };
                        cmd.arg("C").arg(0).arg(data).arg(0);
                    }
                    Outcome::Retry { delay, error } => {
                        cmd.arg("R")
                            .arg(micros(*delay))
                            .arg(&error.message)
                            .arg(u8::from(error.retryable));
                    }
                    Outcome::Fail { error } => {
                        cmd.arg("F")
                            .arg(0)
                            .arg(&error.message)
                            .arg(u8::from(error.retryable));
                    }
                    Outcome::DeadLetter { error } => {
                        cmd.arg("D")
                            .arg(0)
                            .arg(&error.message)
                            .arg(u8::from(error.retryable));
                    }
                    Outcome::Release => {
                        cmd.arg("L").arg(0).arg("").arg(0);
                    }
                }
            }
            let reply = run_script(&SCRIPTS.record, &cmd, &mut conn).await?;
            lost.extend(ids_of(reply));
        }
        Ok(lost)
    }

    async fn recover_now(&self) -> Result<Vec<Recovered>> {
        let mut out = Vec::new();
        let mut conn = self.conn();
        loop {
            let reply: Value = SCRIPTS
                .recover
                .key(&self.inner.ns)
                .arg(PER_CALL)
                .invoke_async(&mut conn)
                .await
                .map_err(backend_err)?;
            let rows = array(reply);
            let n = rows.len();
            for row in rows {
                let mut row = array(row);
                let now = row.pop().as_ref().and_then(text);
                match (
                    parse_row(&row),
                    now.and_then(|s| s.parse::<JobStatus>().ok()),
                ) {
                    (Ok(job), Some(now)) => {
                        // The manager that recovered it logs it, with its own context.
                        out.push(Recovered { job, now });
                    }
                    (Err(c), _) => tracing::error!(
                        job_id = %c.id,
                        reason = %c.reason,
                        "recovered a job whose lease expired, but its data is corrupt"
                    ),
                    (Ok(job), None) => tracing::error!(
                        job_id = %job.id,
                        "recover script returned no new status"
                    ),
                }
            }
            if n < PER_CALL {
                return Ok(out);
            }
        }
    }

    /// Rows of `ids` (`None` for ids that do not exist).
    async fn get_many(&self, ids: &[String]) -> Result<Vec<Option<Job>>> {
        let mut out = Vec::with_capacity(ids.len());
        let mut conn = self.conn();
        for chunk in ids.chunks(500) {
            let reply: Value = SCRIPTS
                .get
                .key(&self.inner.ns)
                .arg(chunk)
                .invoke_async(&mut conn)
                .await
                .map_err(backend_err)?;
            for row in array(reply) {
                let row = array(row);
                if row.len() <= 1 {
                    out.push(None);
                } else {
                    out.push(Some(parse_row(&row).map_err(CorruptRow::into_error)?));
                }
            }
        }
        Ok(out)
    }

    async fn list_now(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn();
        let all_key = format!("{}:all", self.inner.ns);
        let ids: Vec<String> =
            if filter.queue.is_none() && filter.status.is_none() && filter.job_type.is_none() {
                // Redis ranks are i64: `limit: usize::MAX` means "all".
                let max = i64::MAX as usize;
                let start = filter.offset.min(max);
                let stop = start.saturating_add(filter.limit).min(max) - 1;
                redis::cmd("ZRANGE")
                    .arg(&all_key)
                    .arg(start)
                    .arg(stop)
                    .query_async(&mut conn)
                    .await
                    .map_err(backend_err)?
            } else {
                let mut ids = Vec::new();
                let mut skip = filter.offset;
                let mut start: i64 = 0;
                while start >= 0 && ids.len() < filter.limit {
                    let reply: Value = SCRIPTS
                        .list
                        .key(&self.inner.ns)
                        .arg(start)
                        .arg(LIST_SCAN)
                        .arg(filter.queue.as_deref().unwrap_or(""))
                        .arg(filter.status.map(JobStatus::as_str).unwrap_or(""))
                        .arg(filter.job_type.as_deref().unwrap_or(""))
                        .invoke_async(&mut conn)
                        .await
                        .map_err(backend_err)?;
                    let mut items = array(reply).into_iter();
                    start = items.next().as_ref().and_then(int).unwrap_or(-1);
                    for v in items {
                        if skip > 0 {
                            skip -= 1;
                        } else if ids.len() < filter.limit {
                            ids.extend(text(&v));
                        }
                    }
                }
                ids
            };
        // Jobs pruned between the two steps are left out.
        Ok(self.get_many(&ids).await?.into_iter().flatten().collect())
    }

    /// Runs cancel.lua or requeue.lua and reads its reply.
    async fn change(
        &self,
        script: &Script,
        id: JobId,
        refuse: fn(JobId, JobStatus) -> Error,
    ) -> Result<Job> {
        let mut conn = self.conn();
        let reply: Value = script
            .key(&self.inner.ns)
            .arg(id.to_string())
            .invoke_async(&mut conn)
            .await
            .map_err(backend_err)?;
        let mut items = array(reply).into_iter();
        let tag = items.next().as_ref().and_then(text);
        match tag.as_deref() {
            Some("ok") => {
                let row = array(items.next().unwrap_or(Value::Nil));
                parse_row(&row).map_err(CorruptRow::into_error)
            }
            Some("missing") => Err(Error::NotFound(id)),
            Some("state") => {
                let status = items.next().as_ref().and_then(text).unwrap_or_default();
                match status.parse::<JobStatus>() {
                    Ok(from) => Err(refuse(id, from)),
                    Err(_) => Err(Error::Corrupt {
                        backend: BACKEND,
                        id: id.to_string(),
                        reason: format!("field `s (status)` is invalid: {status:?}"),
                    }),
                }
            }
            _ => Err(Error::Backend {
                backend: BACKEND,
                message: format!("unexpected reply from the cancel/requeue script: {tag:?}"),
                source: None,
            }),
        }
    }

    async fn counts_now(&self) -> Result<Vec<QueueCount>> {
        let mut conn = self.conn();
        let raw: Vec<(String, i64)> = redis::cmd("HGETALL")
            .arg(format!("{}:counts", self.inner.ns))
            .query_async(&mut conn)
            .await
            .map_err(backend_err)?;
        let mut out: Vec<QueueCount> = raw
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .filter_map(|(key, n)| {
                let (status, queue) = key.split_once(' ')?;
                Some(QueueCount {
                    queue: queue.to_owned(),
                    status: status.parse().ok()?,
                    count: n as u64,
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.queue, a.status).cmp(&(&b.queue, b.status)));
        Ok(out)
    }

    async fn prune_now(&self, before: DateTime<Utc>, limit: usize) -> Result<u64> {
        let mut conn = self.conn();
        let mut deleted = 0u64;
        let mut left = limit;
        while left > 0 {
            let ask = left.min(PER_CALL);
            let (n, examined): (u64, usize) = SCRIPTS
                .prune
                .key(&self.inner.ns)
                .arg(before.timestamp_micros())
                .arg(ask)
                .invoke_async(&mut conn)
                .await
                .map_err(backend_err)?;
            deleted += n;
            left -= (n as usize).min(left);
            if examined < ask {
                break;
            }
        }
        Ok(deleted)
    }

    /// Time until the earliest delayed job of `queues` comes due.
    async fn next_due(&self, queues: &[String]) -> Result<Option<Duration>> {
        if queues.is_empty() {
            return Ok(None);
        }
        let mut conn = self.conn();
        let us: i64 = SCRIPTS
            .next_due
            .key(&self.inner.ns)
            .arg(queues)
            .invoke_async(&mut conn)
            .await
            .map_err(backend_err)?;
        Ok((us >= 0).then(|| Duration::from_micros(us as u64)))
    }

    async fn subscribe(&self) -> Result<(PubSubSink, Pin<Box<PubSubStream>>)> {
        let fut = async {
            let mut ps = self.inner.client.get_async_pubsub().await?;
            ps.subscribe(format!("{}:wake", self.inner.ns)).await?;
            Ok::<_, RedisError>(ps.split())
        };
        match tokio::time::timeout(self.inner.connection_timeout, fut).await {
            Ok(Ok((sink, stream))) => Ok((sink, Box::pin(stream))),
            Ok(Err(e)) => Err(backend_err(e)),
            Err(_) => Err(Error::Backend {
                backend: BACKEND,
                message: "timed out subscribing to the wake-up channel".to_owned(),
                source: None,
            }),
        }
    }
}

impl JobQueue for RedisBackend {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn enqueue_batch(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>>> {
        Box::pin(self.enqueue_now(jobs))
    }

    fn claim<'a>(&'a self, req: ClaimRequest<'a>) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(self.claim_now(req))
    }

    fn heartbeat<'a>(
        &'a self,
        worker_id: &'a str,
        fences: &'a [Fence],
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(self.heartbeat_now(worker_id, fences, lease))
    }

    fn record<'a>(
        &'a self,
        worker_id: &'a str,
        updates: &'a [OutcomeUpdate],
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(self.record_now(worker_id, updates))
    }

    fn recover_expired(&self) -> BoxFuture<'_, Result<Vec<Recovered>>> {
        Box::pin(self.recover_now())
    }

    fn get(&self, id: JobId) -> BoxFuture<'_, Result<Option<Job>>> {
        Box::pin(async move {
            let mut rows = self.get_many(&[id.to_string()]).await?;
            Ok(rows.pop().flatten())
        })
    }

    fn list<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(self.list_now(filter))
    }

    fn cancel(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(self.change(&SCRIPTS.cancel, id, Error::cannot_cancel))
    }

    fn requeue(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(self.change(&SCRIPTS.requeue, id, Error::cannot_requeue))
    }

    fn counts(&self) -> BoxFuture<'_, Result<Vec<QueueCount>>> {
        Box::pin(self.counts_now())
    }

    fn prune(&self, before: DateTime<Utc>, limit: usize) -> BoxFuture<'_, Result<u64>> {
        Box::pin(self.prune_now(before, limit))
    }

    fn listener<'a>(&'a self, queues: &'a [String]) -> BoxFuture<'a, Result<Box<dyn JobListener>>> {
        Box::pin(async move {
            let sub = self.subscribe().await?;
            let listener: Box<dyn JobListener> = Box::new(RedisListener {
                backend: self.clone(),
                queues: queues.to_vec(),
                wanted: queues.iter().map(|q| q.as_bytes().to_vec()).collect(),
                sub: Some(sub),
                next_due: None,
                due_read_at: None,
            });
            Ok(listener)
        })
    }
}

/// Waits on the `{P}:wake` channel with a connection of its own.
struct RedisListener {
    backend: RedisBackend,
    queues: Vec<String>,
    wanted: HashSet<Vec<u8>>,
    /// `None` after the connection dropped; the next wait reconnects.
    sub: Option<(PubSubSink, Pin<Box<PubSubStream>>)>,
    /// When the earliest delayed job of our queues comes due, as last read.
    next_due: Option<Instant>,
    /// When `next_due` was read; `None`: it must be read again, because a
    /// signal came (new jobs may be delayed ones) or we were disconnected.
    due_read_at: Option<Instant>,
}

/// Re-read the next due time at least this often, whatever the signals said.
const DUE_REFRESH: Duration = Duration::from_secs(30);

enum Next {
    Wake,
    Other,
    Closed,
    Empty,
}

impl RedisListener {
    fn classify(&self, polled: Poll<Option<redis::Msg>>) -> Next {
        match polled {
            Poll::Ready(Some(msg)) if self.wanted.contains(msg.get_payload_bytes()) => Next::Wake,
            Poll::Ready(Some(_)) => Next::Other,
            Poll::Ready(None) => Next::Closed,
            Poll::Pending => Next::Empty,
        }
    }

    /// Takes every message already buffered; true if one was for our queues.
    fn drain(&mut self) -> Next {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut woke = false;
        loop {
            let Some((_, stream)) = self.sub.as_mut() else {
                return Next::Closed;
            };
            let polled = stream.as_mut().poll_next(&mut cx);
            match self.classify(polled) {
                Next::Wake => woke = true,
                Next::Other => {}
                Next::Closed => {
                    self.sub = None;
                    return Next::Closed;
                }
                Next::Empty => return if woke { Next::Wake } else { Next::Empty },
            }
        }
    }

    async fn wait_inner(&mut self, timeout: Duration) {
        if self.sub.is_none() {
            match self.backend.subscribe().await {
                Ok(sub) => {
                    tracing::info!(prefix = %self.backend.prefix(), "wake-up channel resubscribed");
                    self.sub = Some(sub);
                    self.due_read_at = None;
                    // Work may have arrived while we were away.
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot subscribe to the wake-up channel; retrying");
                    tokio::time::sleep(timeout.min(Duration::from_secs(1))).await;
                    return;
                }
            }
        }
        if matches!(self.drain(), Next::Wake | Next::Closed) {
            self.due_read_at = None;
            return;
        }
        // An idle listener asks Redis for the next due time only when a signal
        // may have changed it, when the last one has passed, or every 30 s.
        let now = Instant::now();
        let fresh = self.due_read_at.is_some_and(|at| now - at < DUE_REFRESH)
            && self.next_due.is_none_or(|due| due > now);
        if !fresh {
            match self.backend.next_due(&self.queues).await {
                Ok(due) => {
                    let now = Instant::now();
                    self.next_due = due.map(|d| now + d);
                    self.due_read_at = Some(now);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot read the next due time");
                    self.next_due = Some(Instant::now() + Duration::from_secs(1));
                    self.due_read_at = None;
                }
            }
        }
        let timeout = match self.next_due {
            Some(due) => due.saturating_duration_since(Instant::now()).min(timeout),
            None => timeout,
        };
        if timeout.is_zero() {
            return;
        }
        let sleep = tokio::time::sleep(timeout);
        tokio::pin!(sleep);
        loop {
            let next = std::future::poll_fn(|cx| {
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                match self.sub.as_mut() {
                    Some((_, stream)) => stream.as_mut().poll_next(cx).map(Some),
                    None => Poll::Ready(None),
                }
            })
            .await;
            match next {
                None => return, // timed out
                Some(msg) => match self.classify(Poll::Ready(msg)) {
                    Next::Wake => {
                        self.due_read_at = None;
                        // Collapse a burst of signals into one wake-up.
                        if let Next::Closed = self.drain() {
                            self.sub = None;
                        }
                        return;
                    }
                    Next::Other | Next::Empty => {}
                    Next::Closed => {
                        self.due_read_at = None;
                        tracing::warn!("wake-up connection to redis closed; reconnecting");
                        self.sub = None;
                        return;
                    }
                },
            }
        }
    }
}

impl JobListener for RedisListener {
    fn wait(&mut self, timeout: Duration) -> BoxFuture<'_, ()> {
        Box::pin(self.wait_inner(timeout))
    }

    fn signals_all_work(&self) -> bool {
        // Pub/sub reaches every process, and the listener sleeps until the
        // earliest delayed job is due.
        true
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

    #[test]
    fn a_row_with_a_missing_field_names_it() {
        let id = JobId::new();
        let mut row = vec![Value::BulkString(id.to_string().into_bytes())];
        row.resize(col::LEN, Value::Nil);
        let err = parse_row(&row).unwrap_err();
        assert_eq!(err.id, id.to_string());
        assert!(err.reason.contains("payload"), "{}", err.reason);
    }
}
