//! An operator's changes to single jobs and finished ones: cancel, requeue,
//! delete, prune.

use jobs_core::{CancelRequest, Error, Job, JobId, JobStatus, PruneRequest, Result};
use sqlx::Row;
use uuid::Uuid;

use super::error::db_err;
use super::row::job_from_row;
use super::sql;
use super::time::{micros, now_micros};
use super::SqliteBackend;

/// How a requeue went on the writer.
enum Requeued {
    Done(Box<Job>),
    /// Not FAILED or DEAD_LETTER, or not there.
    Refused,
    /// Another job holds its unique key now.
    KeyTaken(JobId),
}

impl SqliteBackend {
    pub(super) async fn cancel_now(&self, id: JobId, request: &CancelRequest) -> Result<Job> {
        let now = now_micros();
        let message = request.message();
        let row = self
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(sql::cancel())
                        .bind(now)
                        .bind(*id.as_uuid())
                        .bind(message)
                        .fetch_optional(conn)
                        .await
                        .map_err(db_err)
                })
            })
            .await?;
        match row {
            Some(row) => {
                let job = job_from_row(&row)?.0;
                if job.status == JobStatus::Running {
                    self.signal_cancel();
                }
                Ok(job)
            }
            None => Err(self.refusal(id, Error::cannot_cancel).await?),
        }
    }

    pub(super) async fn requeue_now(&self, id: JobId) -> Result<Job> {
        let now = now_micros();
        let done = self
            .write(move |conn| {
                Box::pin(async move {
                    let uuid = *id.as_uuid();
                    let result = sqlx::query(sql::requeue())
                        .bind(now)
                        .bind(uuid)
                        .fetch_optional(&mut *conn)
                        .await;
                    match result {
                        Ok(Some(row)) => Ok(Requeued::Done(Box::new(job_from_row(&row)?.0))),
                        Ok(None) => Ok(Requeued::Refused),
                        // The unique index refused a second holder of its key.
                        Err(e)
                            if e.as_database_error()
                                .is_some_and(|d| d.is_unique_violation()) =>
                        {
                            let key: Option<String> = sqlx::query_scalar(sql::unique_key_of())
                                .bind(uuid)
                                .fetch_optional(&mut *conn)
                                .await
                                .map_err(db_err)?
                                .flatten();
                            let holder = match key {
                                Some(key) => sqlx::query(sql::unique_holder())
                                    .bind(key)
                                    .bind(uuid)
                                    .fetch_optional(&mut *conn)
                                    .await
                                    .map_err(db_err)?,
                                None => None,
                            };
                            match holder {
                                Some(row) => Ok(Requeued::KeyTaken(JobId::from_uuid(
                                    row.try_get::<Uuid, _>(0).map_err(db_err)?,
                                ))),
                                None => Err(db_err(e)),
                            }
                        }
                        Err(e) => Err(db_err(e)),
                    }
                })
            })
            .await?;
        match done {
            Requeued::Done(job) => {
                self.wake();
                Ok(*job)
            }
            Requeued::KeyTaken(holder) => Err(Error::UniqueKeyTaken { id, holder }),
            Requeued::Refused => Err(self.refusal(id, Error::cannot_requeue).await?),
        }
    }

    pub(super) async fn delete_now(&self, id: JobId) -> Result<()> {
        let deleted = self
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(sql::delete())
                        .bind(*id.as_uuid())
                        .fetch_optional(conn)
                        .await
                        .map_err(db_err)
                })
            })
            .await?;
        match deleted {
            Some(_) => Ok(()),
            None => Err(self.refusal(id, Error::cannot_delete).await?),
        }
    }

    pub(super) async fn prune_now(&self, req: &PruneRequest) -> Result<u64> {
        let statuses: Vec<JobStatus> = req
            .statuses
            .iter()
            .copied()
            .filter(|s| s.is_terminal())
            .collect();
        if req.limit == 0 || statuses.is_empty() {
            return Ok(0);
        }
        let sql = sql::prune(&statuses, req.queue.is_some());
        let before = micros(req.before);
        let limit = i64::try_from(req.limit).unwrap_or(i64::MAX);
        let queue = req.queue.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(&sql)
                    .bind(before)
                    .bind(limit)
                    .bind(queue)
                    .execute(conn)
                    .await
                    .map_err(db_err)?;
                Ok(done.rows_affected())
            })
        })
        .await
    }

    /// Why a change of job `id` matched nothing: it is not there, or
    /// `refuse` says what its status does not allow.
    async fn refusal(&self, id: JobId, refuse: fn(JobId, JobStatus) -> Error) -> Result<Error> {
        Ok(match self.fetch_job(id).await? {
            None => Error::NotFound(id),
            Some(job) => refuse(id, job.status),
        })
    }
}
