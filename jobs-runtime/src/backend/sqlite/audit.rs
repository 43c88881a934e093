//! The audit log: operator actions, appended and listed newest first.

use chrono::{DateTime, Utc};
use jobs_core::{AuditEntry, AuditFilter, Result};
use sqlx::Row;

use super::error::db_err;
use super::sql;
use super::time::{from_micros, micros};
use super::SqliteBackend;

impl SqliteBackend {
    pub(super) async fn append_audit_now(&self, entry: &AuditEntry) -> Result<()> {
        let e = entry.clone();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(sql::append_audit())
                    .bind(micros(e.at))
                    .bind(e.actor)
                    .bind(e.action)
                    .bind(e.target)
                    .bind(e.ok)
                    .bind(e.detail)
                    .execute(conn)
                    .await
                    .map_err(db_err)?;
                Ok(())
            })
        })
        .await
    }

    pub(super) async fn audit_log_now(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let before = filter.before.map_or(i64::MAX, micros);
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
        let rows = self
            .read_all(sql::audit_log().into(), move |q| {
                q.bind(before).bind(limit).bind(offset)
            })
            .await?;
        rows.iter()
            .map(|r| {
                let mut e = AuditEntry::new(
                    r.try_get::<String, _>(1).map_err(db_err)?,
                    r.try_get::<String, _>(2).map_err(db_err)?,
                    r.try_get::<String, _>(3).map_err(db_err)?,
                )
                .at(from_micros(r.try_get(0).map_err(db_err)?));
                e.ok = r.try_get(4).map_err(db_err)?;
                e.detail = r.try_get(5).map_err(db_err)?;
                Ok(e)
            })
            .collect()
    }

    pub(super) async fn prune_audit_now(&self, before: DateTime<Utc>, limit: usize) -> Result<u64> {
        if limit == 0 {
            return Ok(0);
        }
        let before = micros(before);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(sql::prune_audit())
                    .bind(before)
                    .bind(limit)
                    .execute(conn)
                    .await
                    .map_err(db_err)?;
                Ok(done.rows_affected())
            })
        })
        .await
    }
}
