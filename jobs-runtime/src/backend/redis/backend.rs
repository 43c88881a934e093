//! [`RedisBackend`] itself, and the calls of the worker's path: enqueue,
//! claim, heartbeat, recover (record is in `record.rs`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jobs_core::backend::{ClaimRequest, Fence, HeartbeatReply, LeaseToken, Recovered};
use jobs_core::{Claimed, Enqueued, Error, JobId, JobStatus, NewJob, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Value};

#[cfg(doc)]
use jobs_core::Backend;

use super::super::remote_finish::RemoteFinish;
use super::conn::{Conn, OwnConn};
use super::options::RedisBuilder;
use super::row::{
    array, col, enqueue_reply, ids_of, int, job_args, micros, parse_row, row_of_pairs, text,
    token_arg, JOB_ARGS,
};
use super::scripts::{
    backend_err, run_script, script_cmd, unexpected, CHUNK_BYTES, CHUNK_JOBS, CLAIM_PER_CALL,
    CLAIM_SCAN, ENQUEUE_SRC, PER_CALL, PROMOTE_PER_CLAIM, SCRIPTS,
};

/// The Redis queue backend. Clones share one multiplexed connection; a
/// [detached](Backend::detached) handle opens one of its own.
#[derive(Clone)]
pub struct RedisBackend {
    pub(super) inner: Arc<Inner>,
    pub(super) conn: Conn,
}

/// What every handle of one namespace shares, detached ones included.
pub(super) struct Inner {
    pub(super) client: Client,
    /// How connections are opened (and reopened), for detached handles too.
    pub(super) config: ConnectionManagerConfig,
    /// `{prefix}`: the hash tag every key starts with.
    pub(super) ns: String,
    pub(super) prefix: String,
    pub(super) connection_timeout: Duration,
    /// The `{P}:finished` channel's signal, for `wait_finished`.
    pub(super) finished: RemoteFinish,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("prefix", &self.inner.prefix)
            .field("detached", &matches!(self.conn, Conn::Own(_)))
            .finish()
    }
}

impl RedisBackend {
    /// Connects to `url` (`redis://[user:password@]host:port[/db][?prefix=P]`,
    /// `rediss://` for TLS if the `redis` crate was built with it).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect().await
    }

    /// A builder, to set the prefix or timeouts before connecting.
    pub fn builder(url: impl Into<String>) -> RedisBuilder {
        RedisBuilder::new(url.into())
    }

    /// The key prefix of this namespace.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// A connection for one call (a detached handle opens its own on first use).
    pub(super) async fn conn(&self) -> Result<ConnectionManager> {
        self.conn.get().await
    }

    /// The same namespace, scripts and settings, with a connection of its own
    /// that is opened by the first call, on that call's runtime — for every
    /// call but records, which keep this handle's connection (see `conn.rs`).
    pub(super) fn detached_handle(&self) -> RedisBackend {
        let records = match &self.conn {
            Conn::Shared(conn) => Some(conn.clone()),
            Conn::Own(own) => own.records.clone(),
        };
        RedisBackend {
            inner: self.inner.clone(),
            conn: Conn::Own(Arc::new(OwnConn::new(
                self.inner.client.clone(),
                self.inner.config.clone(),
                records,
            ))),
        }
    }

    pub(super) async fn enqueue_now(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut seen = HashSet::with_capacity(jobs.len());
        for job in &jobs {
            job.validate()?;
            if !seen.insert(job.id) {
                return Err(Error::DuplicateId(job.id));
            }
        }
        let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();

        // Cut into chunks by count and size.
        let mut chunks: Vec<Vec<Vec<Vec<u8>>>> = vec![Vec::new()];
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

        let mut conn = self.conn().await?;
        if chunks.len() == 1 {
            let chunk = &chunks[0];
            let mut cmd = script_cmd(
                &SCRIPTS.enqueue,
                &self.inner.ns,
                3 + chunk.len() * JOB_ARGS,
                size,
            );
            cmd.arg("").arg(0).arg(chunk.len());
            for args in chunk {
                for a in args {
                    cmd.arg(&a[..]);
                }
            }
            let reply = run_script(&SCRIPTS.enqueue, &cmd, &mut conn).await?;
            return enqueue_reply(&reply, &ids);
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
                .arg(ENQUEUE_SRC.as_str())
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
        let mut out = Vec::with_capacity(ids.len());
        let mut rest = &ids[..];
        for (reply, chunk) in replies.iter().zip(&chunks) {
            let (these, after) = rest.split_at(chunk.len());
            out.extend(enqueue_reply(reply, these)?);
            rest = after;
        }
        Ok(out)
    }

    pub(super) async fn claim_now(&self, req: ClaimRequest<'_>) -> Result<Claimed> {
        if req.limit == 0 || req.queues.is_empty() {
            return Ok(Claimed::default());
        }
        let mut conn = self.conn().await?;
        // One fresh token for the jobs of this claim: it tells this lease
        // apart from every other, whatever their attempt numbers.
        let token = LeaseToken::random();
        let mut cmd = script_cmd(
            &SCRIPTS.claim,
            &self.inner.ns,
            7 + req.queues.len() * 5,
            128,
        );
        cmd.arg(req.worker_id)
            .arg(token_arg(token))
            .arg(req.limit.min(CLAIM_PER_CALL))
            .arg(micros(req.lease))
            .arg(PROMOTE_PER_CLAIM)
            .arg(CLAIM_SCAN)
            .arg(req.queues.len());
        let opt = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
        for q in req.queues {
            let l = req.limit_of(q);
            let rate = l.and_then(|l| l.rate);
            cmd.arg(q)
                .arg(opt(l.and_then(|l| l.take)))
                .arg(opt(l.and_then(|l| l.global)))
                .arg(opt(rate.map(|r| r.0)))
                .arg(
                    rate.map(|r| micros(r.1).max(1).to_string())
                        .unwrap_or_default(),
                )
                .arg(recording_arg(l));
        }
        let reply = run_script(&SCRIPTS.claim, &cmd, &mut conn).await?;
        // `limited`, the claim's time and lease end, then per job its id, its
        // new attempt and its hash as it was: the claim's other changes are
        // known here (RUNNING, started now, locked by this worker under this
        // lease).
        let mut values = array(reply).into_iter();
        let mut head = || {
            values
                .next()
                .ok_or_else(|| unexpected("the claim script's reply is cut short"))
        };
        let limited = int(&head()?) == Some(1);
        let (now, lease_until) = (head()?, head()?);
        let (worker, token_text) = (
            Value::BulkString(req.worker_id.as_bytes().to_vec()),
            Value::BulkString(token_arg(token).into_bytes()),
        );
        let mut jobs = Vec::new();
        let mut corrupt = Vec::new();
        while let Some(id) = values.next() {
            let (Some(attempt), Some(Value::Array(pairs))) = (values.next(), values.next()) else {
                return Err(unexpected("a claimed job of the claim script has no hash"));
            };
            let mut row = row_of_pairs(id, pairs);
            row[col::S] = Value::SimpleString("RUNNING".to_owned());
            row[col::AT] = attempt;
            row[col::SA] = now.clone();
            row[col::LB] = worker.clone();
            row[col::LU] = lease_until.clone();
            row[col::LT] = token_text.clone();
            match parse_row(&row) {
                Ok(job) => jobs.push(job),
                Err(c) => corrupt.push(c),
            }
        }
        if !corrupt.is_empty() {
            self.fail_corrupt(req.worker_id, token, corrupt).await;
        }
        Ok(Claimed::limited(jobs, limited))
    }

    pub(super) async fn heartbeat_now(
        &self,
        worker: &str,
        fences: &[Fence],
        lease: Duration,
    ) -> Result<HeartbeatReply> {
        let mut out = HeartbeatReply::default();
        let mut conn = self.conn().await?;
        for chunk in fences.chunks(PER_CALL) {
            let mut inv = SCRIPTS.heartbeat.key(&self.inner.ns);
            inv.arg(worker).arg(micros(lease));
            for f in chunk {
                inv.arg(f.id.to_string()).arg(token_arg(f.token));
            }
            let reply: Value = inv.invoke_async(&mut conn).await.map_err(backend_err)?;
            let mut parts = array(reply).into_iter();
            out.lost
                .extend(parts.next().map(ids_of).unwrap_or_default());
            out.cancel
                .extend(parts.next().map(ids_of).unwrap_or_default());
        }
        Ok(out)
    }

    pub(super) async fn recover_now(&self) -> Result<Vec<Recovered>> {
        let mut out = Vec::new();
        let mut conn = self.conn().await?;
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
                        out.push(Recovered::new(job, now));
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
}

/// A queue's jobs whose outcomes are being recorded, as `claim.lua` reads
/// them: `id token id token ...` (only a queue with a global cap needs them).
fn recording_arg(limit: Option<&jobs_core::ClaimLimit>) -> String {
    let Some(l) = limit.filter(|l| l.global.is_some()) else {
        return String::new();
    };
    let mut out = String::new();
    for f in &l.recording {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&f.id.to_string());
        out.push(' ');
        out.push_str(&super::row::token_arg(f.token));
    }
    out
}
