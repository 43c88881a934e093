//! Recording outcomes: `record.lua`'s arguments, a batch applied as one unit,
//! and the failing of claimed jobs that could not be read.

use std::borrow::Cow;

use jobs_core::backend::{AttemptFailure, LeaseToken, Outcome, OutcomeUpdate};
use jobs_core::{BackendErrorKind, Error, JobId, Result};
use redis::{Cmd, Value};

use super::backend::RedisBackend;
use super::row::{ids_of, micros, token_arg, CorruptRow};
use super::scripts::{
    backend_err, run_script, script_cmd, BACKEND, CHUNK_BYTES, MAX_VALUE_BYTES, PER_CALL,
    RECORD_SRC, SCRIPTS,
};

/// Values per update in `record.lua`'s arguments.
const UPDATE_ARGS: usize = 7;

/// The arguments of one update: id, token, kind, delay_us, message,
/// retryable, result (JSON, empty for none).
struct UpdateArgs<'a> {
    id: String,
    token: LeaseToken,
    kind: &'static str,
    delay_us: i64,
    message: Cow<'a, str>,
    retryable: bool,
    result: Vec<u8>,
}

impl<'a> UpdateArgs<'a> {
    fn of(u: &'a OutcomeUpdate) -> Result<Self> {
        let result = |r: &Option<serde_json::Value>| -> Result<Vec<u8>> {
            let Some(v) = r else { return Ok(Vec::new()) };
            serde_json::to_vec(v).map_err(|e| {
                data_err(format!(
                    "the result of job {} cannot be stored: {e}",
                    u.fence.id
                ))
            })
        };
        let failed = |kind, delay: i64, e: &'a AttemptFailure, res: Vec<u8>| UpdateArgs {
            id: u.fence.id.to_string(),
            token: u.fence.token,
            kind,
            delay_us: delay,
            message: Cow::Borrowed(&e.message),
            retryable: e.retryable,
            result: res,
        };
        let args = match &u.outcome {
            Outcome::Complete { result: r } => UpdateArgs {
                id: u.fence.id.to_string(),
                token: u.fence.token,
                kind: "C",
                delay_us: 0,
                message: Cow::Borrowed(""),
                retryable: false,
                result: result(r)?,
            },
            Outcome::CompleteAndDelete => UpdateArgs {
                id: u.fence.id.to_string(),
                token: u.fence.token,
                kind: "E",
                delay_us: 0,
                message: Cow::Borrowed(""),
                retryable: false,
                result: Vec::new(),
            },
            // `micros` cuts the delay to MAX_DELAY: no overflow, no error.
            Outcome::Retry { delay, error } => failed("R", micros(*delay), error, Vec::new()),
            Outcome::Fail { error, result: r } => failed("F", 0, error, result(r)?),
            Outcome::DeadLetter { error } => failed("D", 0, error, Vec::new()),
            Outcome::Snooze { delay } => UpdateArgs {
                id: u.fence.id.to_string(),
                token: u.fence.token,
                kind: "S",
                delay_us: micros(*delay),
                message: Cow::Borrowed(""),
                retryable: false,
                result: Vec::new(),
            },
            Outcome::Cancel { error } => failed("X", 0, error, Vec::new()),
            Outcome::Release => UpdateArgs {
                id: u.fence.id.to_string(),
                token: u.fence.token,
                kind: "L",
                delay_us: 0,
                message: Cow::Borrowed(""),
                retryable: false,
                result: Vec::new(),
            },
        };
        for (what, len) in [
            ("result", args.result.len()),
            ("error message", args.message.len()),
        ] {
            if len > MAX_VALUE_BYTES {
                return Err(data_err(format!(
                    "the {what} of job {} is {len} bytes; Redis takes at most {MAX_VALUE_BYTES} \
                     in one value (`proto-max-bulk-len`)",
                    u.fence.id
                )));
            }
        }
        Ok(args)
    }

    fn bytes(&self) -> usize {
        64 + self.message.len() + self.result.len()
    }

    fn push(&self, cmd: &mut Cmd) {
        cmd.arg(&self.id)
            .arg(token_arg(self.token))
            .arg(self.kind)
            .arg(self.delay_us)
            .arg(self.message.as_ref())
            .arg(u8::from(self.retryable))
            .arg(&self.result[..]);
    }
}

fn data_err(message: String) -> Error {
    Error::backend_msg(BACKEND, BackendErrorKind::Data, message)
}

impl RedisBackend {
    /// Applies `updates` as one unit: every argument is checked before
    /// anything is sent (a value Redis would refuse fails the whole call with
    /// [`BackendErrorKind::Data`], so the caller can isolate it), and a batch
    /// too big for one script call runs as several inside one `MULTI`.
    pub(super) async fn record_now(
        &self,
        worker: &str,
        updates: &[OutcomeUpdate],
    ) -> Result<Vec<JobId>> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let mut chunks: Vec<(Vec<UpdateArgs<'_>>, usize)> = vec![(Vec::new(), 0)];
        for u in updates {
            let args = UpdateArgs::of(u)?;
            let (last, size) = chunks.last_mut().expect("never empty");
            if !last.is_empty() && (last.len() >= PER_CALL || *size + args.bytes() > CHUNK_BYTES) {
                chunks.push((Vec::new(), 0));
            }
            let (last, size) = chunks.last_mut().expect("never empty");
            *size += args.bytes();
            last.push(args);
        }
        self.record_chunks(worker, &chunks).await
    }

    async fn record_chunks(
        &self,
        worker: &str,
        chunks: &[(Vec<UpdateArgs<'_>>, usize)],
    ) -> Result<Vec<JobId>> {
        let mut conn = self.conn.for_records().await?;
        if let [(chunk, size)] = chunks {
            let n_args = 1 + chunk.len() * UPDATE_ARGS;
            let mut cmd = script_cmd(&SCRIPTS.record, &self.inner.ns, n_args, *size);
            cmd.arg(worker);
            for u in chunk {
                u.push(&mut cmd);
            }
            let reply = run_script(&SCRIPTS.record, &cmd, &mut conn).await?;
            return Ok(ids_of(reply));
        }
        // Several chunks: one MULTI, so the batch is applied whole or not at
        // all (the script cannot fail once it writes). `EVAL` with the source:
        // a missing script could not be loaded again inside the transaction.
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (chunk, size) in chunks {
            let mut cmd =
                Cmd::with_capacity(5 + chunk.len() * UPDATE_ARGS, RECORD_SRC.len() + size);
            cmd.arg("EVAL")
                .arg(RECORD_SRC.as_str())
                .arg(1)
                .arg(&self.inner.ns)
                .arg(worker);
            for u in chunk {
                u.push(&mut cmd);
            }
            pipe.add_command(cmd);
        }
        let replies: Vec<Value> = pipe.query_async(&mut conn).await.map_err(backend_err)?;
        Ok(replies.into_iter().flat_map(ids_of).collect())
    }

    /// Marks claimed jobs that could not be read FAILED, with the reason as
    /// their error, so they neither reach a worker nor come back. `token` is
    /// the lease the claim just took on them.
    pub(super) async fn fail_corrupt(&self, worker: &str, token: LeaseToken, bad: Vec<CorruptRow>) {
        let mut cmd = script_cmd(
            &SCRIPTS.record,
            &self.inner.ns,
            1 + bad.len() * UPDATE_ARGS,
            256,
        );
        cmd.arg(worker);
        for c in &bad {
            tracing::error!(
                job_id = %c.id,
                reason = %c.reason,
                backend = BACKEND,
                "corrupt job data in redis; marking the job FAILED"
            );
            UpdateArgs {
                id: c.id.clone(),
                token,
                kind: "F",
                delay_us: 0,
                message: Cow::Owned(format!(
                    "corrupt job data in redis: {}; fix the hash `{}:j:{}` and requeue the job",
                    c.reason, self.inner.ns, c.id
                )),
                retryable: false,
                result: Vec::new(),
            }
            .push(&mut cmd);
        }
        let done = async {
            let mut conn = self.conn().await?;
            run_script(&SCRIPTS.record, &cmd, &mut conn).await
        };
        if let Err(e) = done.await {
            tracing::error!(error = %e, "could not mark corrupt jobs FAILED; their leases will expire");
        }
    }
}
