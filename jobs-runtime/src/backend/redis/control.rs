//! Operator controls and cluster coordination: pausing queues, progress,
//! deleting a job, the worker registry, leadership, schedules' states and
//! the audit log. Every change is one script (`pause.lua`, `progress.lua`,
//! `delete.lua`, `worker.lua`, `lead.lua`, `schedule.lua`, `audit.lua`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::backend::Fence;
use jobs_core::{
    AuditEntry, AuditFilter, BackendErrorKind, Error, JobId, JobStatus, Leader, Progress, Result,
    ScheduleState, WorkerInfo,
};
use redis::Value;

use super::backend::RedisBackend;
use super::row::{array, int, micros, text, token_arg};
use super::scripts::{backend_err, unexpected, BACKEND, PER_CALL, SCRIPTS};

fn json_err(what: &str, e: serde_json::Error) -> Error {
    Error::backend_msg(
        BACKEND,
        BackendErrorKind::Data,
        format!("{what} cannot be stored as JSON: {e}"),
    )
}

fn corrupt(what: &str, id: &str, e: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        backend: BACKEND,
        id: id.to_owned(),
        reason: format!("{what} is not readable: {e}"),
    }
}

fn time(us: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
}

fn bytes(v: &Value) -> &[u8] {
    match v {
        Value::BulkString(b) => b,
        Value::SimpleString(s) => s.as_bytes(),
        _ => &[],
    }
}

impl RedisBackend {
    async fn run(&self, inv: &mut redis::ScriptInvocation<'_>) -> Result<Value> {
        let mut conn = self.conn().await?;
        inv.invoke_async(&mut conn).await.map_err(backend_err)
    }

    pub(super) async fn pause_now(&self, queue: &str, pause: bool) -> Result<()> {
        let mut inv = SCRIPTS.pause.key(&self.inner.ns);
        inv.arg(if pause { "1" } else { "0" }).arg(queue);
        self.run(&mut inv).await.map(drop)
    }

    pub(super) async fn paused_now(&self) -> Result<Vec<String>> {
        let mut conn = self.conn().await?;
        let mut queues: Vec<String> = redis::cmd("SMEMBERS")
            .arg(format!("{}:paused", self.inner.ns))
            .query_async(&mut conn)
            .await
            .map_err(backend_err)?;
        queues.sort();
        Ok(queues)
    }

    pub(super) async fn progress_now(&self, updates: &[(Fence, Progress)]) -> Result<()> {
        for chunk in updates.chunks(PER_CALL) {
            let mut inv = SCRIPTS.progress.key(&self.inner.ns);
            for (fence, progress) in chunk {
                let json = serde_json::to_vec(progress).map_err(|e| json_err("progress", e))?;
                inv.arg(fence.id.to_string())
                    .arg(token_arg(fence.token))
                    .arg(json);
            }
            self.run(&mut inv).await?;
        }
        Ok(())
    }

    pub(super) async fn delete_now(&self, id: JobId) -> Result<()> {
        let mut inv = SCRIPTS.delete.key(&self.inner.ns);
        inv.arg(id.to_string());
        let mut items = array(self.run(&mut inv).await?).into_iter();
        match items.next().as_ref().and_then(text).as_deref() {
            Some("ok") => Ok(()),
            Some("missing") => Err(Error::NotFound(id)),
            Some("state") => Err(Error::cannot_delete(id, JobStatus::Running)),
            other => Err(unexpected(format_args!(
                "unexpected reply from the delete script: {other:?}"
            ))),
        }
    }

    pub(super) async fn register_now(&self, info: &WorkerInfo, ttl: Duration) -> Result<()> {
        let json = serde_json::to_vec(info).map_err(|e| json_err("a worker's entry", e))?;
        let mut inv = SCRIPTS.worker.key(&self.inner.ns);
        inv.arg("reg")
            .arg(&info.id)
            .arg(json)
            .arg(micros(ttl).max(1));
        self.run(&mut inv).await.map(drop)
    }

    pub(super) async fn deregister_now(&self, id: &str) -> Result<()> {
        let mut inv = SCRIPTS.worker.key(&self.inner.ns);
        inv.arg("dereg").arg(id);
        self.run(&mut inv).await.map(drop)
    }

    pub(super) async fn workers_now(&self) -> Result<Vec<WorkerInfo>> {
        let mut inv = SCRIPTS.worker.key(&self.inner.ns);
        inv.arg("list");
        let mut out = Vec::new();
        for row in array(self.run(&mut inv).await?) {
            let row = array(row);
            let [id, info, seen] = &row[..] else {
                return Err(unexpected("unexpected row from the worker script"));
            };
            let id = text(id).unwrap_or_default();
            let mut w: WorkerInfo =
                serde_json::from_slice(bytes(info)).map_err(|e| corrupt("worker entry", &id, e))?;
            if let Some(seen) = int(seen).and_then(time) {
                w.last_seen = seen;
            }
            out.push(w);
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    pub(super) async fn try_lead_now(
        &self,
        role: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool> {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut inv = SCRIPTS.lead.key(&self.inner.ns);
        inv.arg("try").arg(role).arg(holder).arg(ms);
        Ok(int(&self.run(&mut inv).await?) == Some(1))
    }

    pub(super) async fn resign_now(&self, role: &str, holder: &str) -> Result<()> {
        let mut inv = SCRIPTS.lead.key(&self.inner.ns);
        inv.arg("resign").arg(role).arg(holder);
        self.run(&mut inv).await.map(drop)
    }

    pub(super) async fn leader_now(&self, role: &str) -> Result<Option<Leader>> {
        let mut inv = SCRIPTS.lead.key(&self.inner.ns);
        inv.arg("get").arg(role);
        let row = array(self.run(&mut inv).await?);
        match &row[..] {
            [holder, until] => match (text(holder), int(until).and_then(time)) {
                (Some(h), Some(until)) => Ok(Some(Leader::new(h, until))),
                _ => Err(unexpected("unexpected reply from the lead script")),
            },
            _ => Ok(None),
        }
    }

    pub(super) async fn schedules_now(&self) -> Result<Vec<ScheduleState>> {
        let mut inv = SCRIPTS.schedule.key(&self.inner.ns);
        inv.arg("list");
        let mut out = Vec::new();
        for row in array(self.run(&mut inv).await?) {
            let row = array(row);
            let [name, state, at] = &row[..] else {
                return Err(unexpected("unexpected row from the schedule script"));
            };
            let name = text(name).unwrap_or_default();
            let mut s: ScheduleState = serde_json::from_slice(bytes(state))
                .map_err(|e| corrupt("schedule state", &name, e))?;
            if let Some(at) = int(at).and_then(time) {
                s.updated_at = at;
            }
            out.push(s);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub(super) async fn save_schedule_now(&self, state: &ScheduleState) -> Result<()> {
        let json = serde_json::to_vec(state).map_err(|e| json_err("a schedule's state", e))?;
        let mut inv = SCRIPTS.schedule.key(&self.inner.ns);
        inv.arg("save").arg(&state.name).arg(json);
        self.run(&mut inv).await.map(drop)
    }

    pub(super) async fn append_audit_now(&self, entry: &AuditEntry) -> Result<()> {
        let json = serde_json::to_vec(entry).map_err(|e| json_err("an audit entry", e))?;
        let mut inv = SCRIPTS.audit.key(&self.inner.ns);
        inv.arg("append").arg(entry.at.timestamp_micros()).arg(json);
        self.run(&mut inv).await.map(drop)
    }

    pub(super) async fn audit_log_now(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        let mut inv = SCRIPTS.audit.key(&self.inner.ns);
        inv.arg("list")
            .arg(
                filter
                    .before
                    .map(|b| b.timestamp_micros().to_string())
                    .unwrap_or_default(),
            )
            .arg(filter.offset.min(i64::MAX as usize))
            .arg(filter.limit.min(i64::MAX as usize));
        array(self.run(&mut inv).await?)
            .iter()
            .map(|v| {
                serde_json::from_slice(bytes(v)).map_err(|e| corrupt("audit entry", "audit", e))
            })
            .collect()
    }

    pub(super) async fn prune_audit_now(&self, before: DateTime<Utc>, limit: usize) -> Result<u64> {
        let mut gone = 0u64;
        let mut left = limit;
        while left > 0 {
            let ask = left.min(PER_CALL);
            let mut inv = SCRIPTS.audit.key(&self.inner.ns);
            inv.arg("prune").arg(before.timestamp_micros()).arg(ask);
            let n = int(&self.run(&mut inv).await?).unwrap_or(0).max(0) as usize;
            gone += n as u64;
            left -= n.min(left);
            if n < ask {
                break;
            }
        }
        Ok(gone)
    }
}
