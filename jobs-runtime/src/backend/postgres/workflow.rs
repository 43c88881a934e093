//! Workflows: reading a workflow's jobs at once, settling the edges of a
//! finished parent, releasing held steps (migration 9).

use std::collections::{HashMap, HashSet};

use jobs_core::workflow::held_until;
use jobs_core::{Job, JobId, Result};
use sqlx::Row;
use uuid::Uuid;

use super::backend::PostgresBackend;
use super::row::row_to_job;

impl PostgresBackend {
    /// The jobs of `ids`, in their order (`None` for a missing one), read
    /// in one statement.
    pub(super) async fn get_many_jobs(&self, ids: &[JobId]) -> Result<Vec<Option<Job>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let uuids: Vec<Uuid> = ids.iter().map(|id| *id.as_uuid()).collect();
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.get_many)
            .bind(&uuids)
            .fetch_all(conn.get())
            .await;
        let rows = conn.done(res)?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            let job = row_to_job(row)?;
            found.insert(job.id, job);
        }
        Ok(ids.iter().map(|id| found.get(id).cloned()).collect())
    }

    /// Settles `(parent, child)` edges of any parents: one statement records
    /// the new edges and adds them to their children's counts (the
    /// statement is atomic on its own: no transaction around it); the
    /// children of edges settled before, if any, have their counts read by
    /// a second one, whose fresh snapshot sees the settle that got there
    /// first, even one it waited for. Returns each edge's child's count.
    pub(super) async fn settle_pairs(&self, edges: &[(JobId, JobId)]) -> Result<Vec<u32>> {
        if edges.is_empty() {
            return Ok(Vec::new());
        }
        let mut pairs: Vec<(Uuid, Uuid)> = edges
            .iter()
            .map(|(p, c)| (*c.as_uuid(), *p.as_uuid()))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let (kids, parents): (Vec<Uuid>, Vec<Uuid>) = pairs.iter().copied().unzip();
        let mut distinct = kids.clone();
        distinct.dedup();
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.settle)
            .bind(&kids)
            .bind(&parents)
            .fetch_all(conn.get())
            .await;
        let rows = match res {
            Ok(rows) => rows,
            Err(e) => return conn.done(Err(e)),
        };
        let mut counts: HashMap<Uuid, i32> = HashMap::with_capacity(distinct.len());
        if let Err(e) = read_counts(&rows, &mut counts) {
            return conn.done(Err(e));
        }
        if counts.len() < distinct.len() {
            let before: Vec<Uuid> = distinct
                .iter()
                .filter(|c| !counts.contains_key(c))
                .copied()
                .collect();
            let res = sqlx::query(&self.inner.sql.settled)
                .bind(&before)
                .fetch_all(conn.get())
                .await;
            let rows = conn.done(res)?;
            read_counts(&rows, &mut counts).map_err(super::error::db_err)?;
        } else {
            conn.done(Ok(()))?;
        }
        // A child deleted since its edge settled has no edges left: 0.
        Ok(edges
            .iter()
            .map(|(_, c)| {
                counts
                    .get(c.as_uuid())
                    .map_or(0, |&n| u32::try_from(n).unwrap_or(0))
            })
            .collect())
    }

    /// Releases the held steps among `ids` in one statement, which also
    /// notifies their queues' listeners (as an enqueue does).
    pub(super) async fn release_held_jobs(&self, ids: &[JobId]) -> Result<Vec<JobId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let uuids: Vec<Uuid> = ids.iter().map(|id| *id.as_uuid()).collect();
        let mut conn = self.conns.get().await?;
        let res = sqlx::query_scalar::<_, Uuid>(&self.inner.sql.release_held)
            .bind(&uuids)
            .bind(held_until())
            .fetch_all(conn.get())
            .await;
        let released: HashSet<Uuid> = conn.done(res)?.into_iter().collect();
        // In the order asked, each once.
        let mut seen = HashSet::with_capacity(released.len());
        Ok(ids
            .iter()
            .filter(|id| released.contains(id.as_uuid()) && seen.insert(**id))
            .copied()
            .collect())
    }
}

/// Adds the (child, settled) rows to `counts`, the first seen per child.
fn read_counts(
    rows: &[sqlx::postgres::PgRow],
    counts: &mut HashMap<Uuid, i32>,
) -> std::result::Result<(), sqlx::Error> {
    for row in rows {
        let child: Uuid = row.try_get(0)?;
        let n: i32 = row.try_get(1)?;
        counts.entry(child).or_insert(n);
    }
    Ok(())
}
