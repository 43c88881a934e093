//! The audit log: operator actions, newest first, pruned in batches.

use chrono::{DateTime, Utc};
use jobs_core::{AuditEntry, AuditFilter, Result};
use sqlx::Row;

use super::backend::PostgresBackend;
use super::error::db_err;

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PostgresBackend {
    pub(super) async fn audit(&self, e: &AuditEntry) -> Result<()> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.append_audit)
            .bind(e.at)
            .bind(&e.actor)
            .bind(&e.action)
            .bind(&e.target)
            .bind(e.ok)
            .bind(&e.detail)
            .execute(conn.get())
            .await;
        conn.done(res).map(drop)
    }

    pub(super) async fn audit_entries(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.audit_log)
            .bind(f.before)
            .bind(limit(f.limit))
            .bind(limit(f.offset))
            .fetch_all(conn.get())
            .await;
        let rows = conn.done(res)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let actor: String = row.try_get("actor").map_err(db_err)?;
            let action: String = row.try_get("action").map_err(db_err)?;
            let target: String = row.try_get("target").map_err(db_err)?;
            let ok: bool = row.try_get("ok").map_err(db_err)?;
            let detail: String = row.try_get("detail").map_err(db_err)?;
            let at: DateTime<Utc> = row.try_get("at").map_err(db_err)?;
            out.push(AuditEntry::new(actor, action, target).at(at).result(if ok {
                Ok(detail)
            } else {
                Err(detail)
            }));
        }
        Ok(out)
    }

    pub(super) async fn prune_audit_log(&self, before: DateTime<Utc>, n: usize) -> Result<u64> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.prune_audit)
            .bind(before)
            .bind(limit(n))
            .execute(conn.get())
            .await;
        Ok(conn.done(res)?.rows_affected())
    }
}
