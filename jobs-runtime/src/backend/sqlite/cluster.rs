//! Cluster coordination: the registry of running workers, leadership of
//! roles, and the stored state of periodic schedules. Every time here is
//! the backend's clock.

use std::time::Duration;

use jobs_core::{Error, JobId, Leader, Result, ScheduleState, WorkerInfo};
use sqlx::Row;
use uuid::Uuid;

use super::error::{db_err, BACKEND};
use super::sql;
use super::time::{add_micros, from_micros, micros, now_micros};
use super::SqliteBackend;

impl SqliteBackend {
    pub(super) async fn register_now(&self, info: &WorkerInfo, ttl: Duration) -> Result<()> {
        let now = now_micros();
        let mut info = info.clone();
        info.last_seen = from_micros(now);
        let id = info.id.clone();
        let json = serde_json::to_string(&info)
            .map_err(|e| Error::InvalidJob(format!("worker {id} cannot be stored: {e}")))?;
        let expires = add_micros(now, ttl);
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(sql::expire_workers())
                    .bind(now)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)?;
                sqlx::query(sql::register_worker())
                    .bind(id)
                    .bind(json)
                    .bind(expires)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)?;
                Ok(())
            })
        })
        .await
    }

    pub(super) async fn deregister_now(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(sql::deregister_worker())
                    .bind(id)
                    .execute(conn)
                    .await
                    .map_err(db_err)?;
                Ok(())
            })
        })
        .await
    }

    pub(super) async fn workers_now(&self) -> Result<Vec<WorkerInfo>> {
        let now = now_micros();
        let rows = self
            .read_all(sql::workers().into(), move |q| q.bind(now))
            .await?;
        rows.iter()
            .map(|r| {
                let json: &str = r.try_get(0).map_err(db_err)?;
                serde_json::from_str(json).map_err(|e| Error::Corrupt {
                    backend: BACKEND,
                    id: "(a worker entry)".to_owned(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    pub(super) async fn try_lead_now(
        &self,
        role: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool> {
        let (role, holder) = (role.to_owned(), holder.to_owned());
        let now = now_micros();
        let until = add_micros(now, ttl);
        // One statement: the write lock makes the check and the take one step.
        self.write(move |conn| {
            Box::pin(async move {
                let row = sqlx::query(sql::try_lead())
                    .bind(role)
                    .bind(holder)
                    .bind(until)
                    .bind(now)
                    .fetch_optional(conn)
                    .await
                    .map_err(db_err)?;
                Ok(row.is_some())
            })
        })
        .await
    }

    pub(super) async fn resign_now(&self, role: &str, holder: &str) -> Result<()> {
        let (role, holder) = (role.to_owned(), holder.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(sql::resign())
                    .bind(role)
                    .bind(holder)
                    .execute(conn)
                    .await
                    .map_err(db_err)?;
                Ok(())
            })
        })
        .await
    }

    pub(super) async fn leader_now(&self, role: &str) -> Result<Option<Leader>> {
        let role = role.to_owned();
        let now = now_micros();
        let row = self
            .read_optional(sql::leader().into(), move |q| q.bind(role).bind(now))
            .await?;
        row.map(|r| {
            let holder: String = r.try_get(0).map_err(db_err)?;
            let until: i64 = r.try_get(1).map_err(db_err)?;
            Ok(Leader::new(holder, from_micros(until)))
        })
        .transpose()
    }

    pub(super) async fn schedules_now(&self) -> Result<Vec<ScheduleState>> {
        let rows = self.read_all(sql::schedules().into(), |q| q).await?;
        rows.iter()
            .map(|r| {
                let ts = |col: usize| -> Result<Option<chrono::DateTime<chrono::Utc>>> {
                    Ok(r.try_get::<Option<i64>, _>(col)
                        .map_err(db_err)?
                        .map(from_micros))
                };
                let mut s = ScheduleState::new(
                    r.try_get::<String, _>(0).map_err(db_err)?,
                    r.try_get::<String, _>(1).map_err(db_err)?,
                    r.try_get::<String, _>(2).map_err(db_err)?,
                );
                s.last_tick = ts(3)?;
                s.last_job = r
                    .try_get::<Option<Uuid>, _>(4)
                    .map_err(db_err)?
                    .map(JobId::from_uuid);
                s.next_tick = ts(5)?;
                s.updated_at = from_micros(r.try_get(6).map_err(db_err)?);
                Ok(s)
            })
            .collect()
    }

    pub(super) async fn save_schedule_now(&self, state: &ScheduleState) -> Result<()> {
        let s = state.clone();
        let now = now_micros();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(sql::save_schedule())
                    .bind(s.name.as_str())
                    .bind(s.cron.as_str())
                    .bind(s.timezone.as_str())
                    .bind(s.last_tick.map(micros))
                    .bind(s.last_job.map(|id| *id.as_uuid()))
                    .bind(s.next_tick.map(micros))
                    .bind(now)
                    .execute(conn)
                    .await
                    .map_err(db_err)?;
                Ok(())
            })
        })
        .await
    }
}
