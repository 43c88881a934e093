//! Operator controls of running work: pausing queues, progress reports.

use jobs_core::backend::Fence;
use jobs_core::{BackendErrorKind, Progress, Result};
use sqlx::Connection;
use uuid::Uuid;

use super::error::{backend_msg, db_err};
use super::sql;
use super::time::now_micros;
use super::SqliteBackend;

impl SqliteBackend {
    pub(super) async fn pause_now(&self, queue: &str) -> Result<()> {
        let queue = queue.to_owned();
        let now = now_micros();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(sql::pause())
                    .bind(queue)
                    .bind(now)
                    .execute(conn)
                    .await
                    .map_err(db_err)?;
                Ok(())
            })
        })
        .await
    }

    pub(super) async fn resume_now(&self, queue: &str) -> Result<()> {
        let queue = queue.to_owned();
        let resumed = self
            .write(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query(sql::resume())
                        .bind(queue)
                        .execute(conn)
                        .await
                        .map_err(db_err)?;
                    Ok(done.rows_affected() > 0)
                })
            })
            .await?;
        if resumed {
            self.wake();
        }
        Ok(())
    }

    pub(super) async fn paused_now(&self) -> Result<Vec<String>> {
        let rows = self.read_all(sql::paused().into(), |q| q).await?;
        rows.iter()
            .map(|r| sqlx::Row::try_get(r, 0).map_err(db_err))
            .collect()
    }

    pub(super) async fn progress_now(&self, updates: &[(Fence, Progress)]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let rows = updates
            .iter()
            .map(|(fence, p)| {
                let json = serde_json::to_string(p).map_err(|e| {
                    backend_msg(
                        BackendErrorKind::Data,
                        format!("the progress of job {} cannot be stored: {e}", fence.id),
                    )
                })?;
                Ok((*fence.id.as_uuid(), fence.token.as_i64(), json))
            })
            .collect::<Result<Vec<(Uuid, i64, String)>>>()?;
        self.write(move |conn| {
            Box::pin(async move {
                // Only the latest report counts: a stale one (its lease
                // lost) updates nothing.
                let mut tx = conn.begin().await.map_err(db_err)?;
                for (id, token, json) in &rows {
                    sqlx::query(sql::progress())
                        .bind(*id)
                        .bind(*token)
                        .bind(json.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                }
                tx.commit().await.map_err(db_err)
            })
        })
        .await
    }
}
