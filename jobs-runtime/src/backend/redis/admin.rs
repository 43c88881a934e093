//! Reading and administering jobs: get, list, cancel, requeue, counts,
//! prune and purge.

use jobs_core::{Error, Job, JobFilter, JobId, JobStatus, PruneRequest, QueueCount, Result};
use redis::{Cmd, Script, Value};

use super::backend::RedisBackend;
use super::row::{array, int, parse_row, text, CorruptRow};
use super::scripts::{
    backend_err, run_pipeline, run_script, script_cmd, unexpected, BACKEND, GET_PER_CALL,
    LIST_SCAN, PER_CALL, SCRIPTS,
};

impl RedisBackend {
    /// Deletes every key of this namespace (the jobs, their indexes and
    /// counters). Meant for tests and for tearing a namespace down; it scans
    /// the keyspace, so it is slow on a big Redis.
    pub async fn purge(&self) -> Result<u64> {
        let mut conn = self.conn().await?;
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

    /// Rows of `ids` (`None` for ids that do not exist), in their order
    /// (an id may come more than once). One round trip: the ids go in
    /// script calls of [`GET_PER_CALL`] each (so no call holds Redis long),
    /// sent together in one pipeline.
    pub(super) async fn get_rows(&self, ids: &[String]) -> Result<Vec<Option<Job>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        let cmds: Vec<Cmd> = ids
            .chunks(GET_PER_CALL)
            .map(|chunk| {
                let bytes = chunk.iter().map(String::len).sum();
                let mut cmd = script_cmd(&SCRIPTS.get, &self.inner.ns, chunk.len(), bytes);
                for id in chunk {
                    cmd.arg(id);
                }
                cmd
            })
            .collect();
        let replies = if let [cmd] = &cmds[..] {
            vec![run_script(&SCRIPTS.get, cmd, &mut conn).await?]
        } else {
            let mut pipe = redis::pipe();
            for cmd in cmds {
                pipe.add_command(cmd);
            }
            run_pipeline(&SCRIPTS.get, &pipe, &mut conn).await?
        };
        let mut out = Vec::with_capacity(ids.len());
        for row in replies.into_iter().flat_map(array) {
            let row = array(row);
            if row.len() <= 1 {
                out.push(None);
            } else {
                out.push(Some(parse_row(&row).map_err(CorruptRow::into_error)?));
            }
        }
        if out.len() != ids.len() {
            return Err(unexpected(format_args!(
                "the get script returned {} rows for {} ids",
                out.len(),
                ids.len()
            )));
        }
        Ok(out)
    }

    pub(super) async fn list_now(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        let all_key = format!("{}:all", self.inner.ns);
        let ids: Vec<String> = if filter.queue.is_none()
            && filter.status.is_none()
            && filter.job_type.is_none()
            && filter.cancelled.is_none()
        {
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
                    .arg(match filter.cancelled {
                        None => "",
                        Some(true) => "1",
                        Some(false) => "0",
                    })
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
        Ok(self.get_rows(&ids).await?.into_iter().flatten().collect())
    }

    /// Runs cancel.lua or requeue.lua (with `args` after the id) and reads
    /// its reply.
    pub(super) async fn change(
        &self,
        script: &Script,
        id: JobId,
        args: &[&str],
        refuse: fn(JobId, JobStatus) -> Error,
    ) -> Result<Job> {
        let mut conn = self.conn().await?;
        let reply: Value = script
            .key(&self.inner.ns)
            .arg(id.to_string())
            .arg(args)
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
            Some("taken") => {
                let holder = items.next().as_ref().and_then(text).unwrap_or_default();
                match holder.parse() {
                    Ok(holder) => Err(Error::UniqueKeyTaken { id, holder }),
                    Err(_) => Err(unexpected(format_args!(
                        "the requeue script named no holder: {holder:?}"
                    ))),
                }
            }
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
            _ => Err(unexpected(format_args!(
                "unexpected reply from the cancel/requeue/delete script: {tag:?}"
            ))),
        }
    }

    pub(super) async fn counts_now(&self) -> Result<Vec<QueueCount>> {
        let mut conn = self.conn().await?;
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
                Some(QueueCount::new(queue, status.parse().ok()?, n as u64))
            })
            .collect();
        out.sort_by(|a, b| (&a.queue, a.status).cmp(&(&b.queue, b.status)));
        Ok(out)
    }

    pub(super) async fn prune_now(&self, req: &PruneRequest) -> Result<u64> {
        let statuses: Vec<&str> = req
            .statuses
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str())
            .collect();
        if statuses.is_empty() || req.limit == 0 {
            return Ok(0);
        }
        let mut conn = self.conn().await?;
        let mut deleted = 0u64;
        let mut left = req.limit;
        // Jobs of the `done` set that stay (other statuses or queues) are
        // stepped over.
        let mut offset = 0usize;
        while left > 0 {
            let ask = left.min(PER_CALL);
            let (n, examined, skipped): (u64, usize, usize) = SCRIPTS
                .prune
                .key(&self.inner.ns)
                .arg(req.before.timestamp_micros())
                .arg(ask)
                .arg(offset)
                .arg(PER_CALL)
                .arg(req.queue.as_deref().unwrap_or(""))
                .arg(&statuses)
                .invoke_async(&mut conn)
                .await
                .map_err(backend_err)?;
            deleted += n;
            left -= (n as usize).min(left);
            offset += skipped;
            if examined < PER_CALL && (n as usize) < ask {
                break;
            }
        }
        Ok(deleted)
    }
}
