//! Cluster coordination: the worker registry, leadership and the periodic
//! schedules' state.
//!
//! Roles are leased by the database's clock: an upsert that takes the role
//! only if it is free, expired or already the caller's, checked on the
//! newest row version under the row lock, so at most one holder wins.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::{Error, JobId, Leader, Result, ScheduleState, WorkerInfo};
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

use super::backend::{micros, PostgresBackend};
use super::error::{corrupt, db_err};

impl PostgresBackend {
    pub(super) async fn register(&self, info: &WorkerInfo, ttl: Duration) -> Result<()> {
        let value = serde_json::to_value(info)
            .map_err(|e| Error::InvalidJob(format!("worker info is not JSON: {e}")))?;
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.register_worker)
            .bind(&info.id)
            .bind(value)
            .bind(micros(ttl))
            .execute(conn.get())
            .await;
        conn.done(res).map(drop)
    }

    pub(super) async fn deregister(&self, id: &str) -> Result<()> {
        self.exec_text(&self.inner.sql.deregister_worker, id).await
    }

    pub(super) async fn live_workers(&self) -> Result<Vec<WorkerInfo>> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.workers)
            .fetch_all(conn.get())
            .await;
        let rows = conn.done(res)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let info: Value = row.try_get("info").map_err(db_err)?;
            let mut info: WorkerInfo =
                serde_json::from_value(info).map_err(|e| corrupt("(worker)", e))?;
            info.last_seen = row.try_get("last_seen").map_err(db_err)?;
            out.push(info);
        }
        Ok(out)
    }

    pub(super) async fn lead(&self, role: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.try_lead)
            .bind(role)
            .bind(holder)
            .bind(micros(ttl))
            .fetch_optional(conn.get())
            .await;
        Ok(conn.done(res)?.is_some())
    }

    pub(super) async fn resign_role(&self, role: &str, holder: &str) -> Result<()> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.resign)
            .bind(role)
            .bind(holder)
            .execute(conn.get())
            .await;
        conn.done(res).map(drop)
    }

    pub(super) async fn leader_of(&self, role: &str) -> Result<Option<Leader>> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.leader)
            .bind(role)
            .fetch_optional(conn.get())
            .await;
        let Some(row) = conn.done(res)? else {
            return Ok(None);
        };
        let holder: String = row.try_get("holder").map_err(db_err)?;
        let until: DateTime<Utc> = row.try_get("until").map_err(db_err)?;
        Ok(Some(Leader::new(holder, until)))
    }

    pub(super) async fn load_schedules(&self) -> Result<Vec<ScheduleState>> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.schedules)
            .fetch_all(conn.get())
            .await;
        let rows = conn.done(res)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let name: String = row.try_get("name").map_err(db_err)?;
            let cron: String = row.try_get("cron").map_err(db_err)?;
            let timezone: String = row.try_get("timezone").map_err(db_err)?;
            let mut s = ScheduleState::new(name, cron, timezone);
            s.last_tick = row.try_get("last_tick").map_err(db_err)?;
            s.last_job = row
                .try_get::<Option<Uuid>, _>("last_job")
                .map_err(db_err)?
                .map(JobId::from_uuid);
            s.next_tick = row.try_get("next_tick").map_err(db_err)?;
            s.updated_at = row.try_get("updated_at").map_err(db_err)?;
            out.push(s);
        }
        Ok(out)
    }

    pub(super) async fn store_schedule(&self, s: &ScheduleState) -> Result<()> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.save_schedule)
            .bind(&s.name)
            .bind(&s.cron)
            .bind(&s.timezone)
            .bind(s.last_tick)
            .bind(s.last_job.map(|id| *id.as_uuid()))
            .bind(s.next_tick)
            .execute(conn.get())
            .await;
        conn.done(res).map(drop)
    }
}
