//! Workflows: reading a workflow's jobs at once, settling the edges of a
//! finished parent, releasing held steps.
//!
//! Ids go to SQLite as one JSON array of hex strings (`json_each`), so each
//! of these is one statement text whatever the number of ids, with one
//! parameter (no variable limit).

use std::collections::HashMap;

use jobs_core::workflow::held_until;
use jobs_core::{BackendErrorKind, Job, JobId, Result};
use sqlx::{Connection, Row};
use uuid::Uuid;

use super::error::{backend_msg, db_err};
use super::row::job_from_row;
use super::sql;
use super::time::{micros, now_micros};
use super::SqliteBackend;

/// `["<hex>", ..]`: the ids as a JSON array for `json_each`, read back with
/// `unhex(value)`.
fn hex_array<'a>(ids: impl IntoIterator<Item = &'a Uuid>) -> String {
    let mut out = String::from("[");
    for (n, id) in ids.into_iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(id.simple().encode_lower(&mut Uuid::encode_buffer()));
        out.push('"');
    }
    out.push(']');
    out
}

impl SqliteBackend {
    /// The jobs of `ids`, in their order (`None` for a missing one), read
    /// in one statement.
    pub(super) async fn get_many_now(&self, ids: &[JobId]) -> Result<Vec<Option<Job>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = hex_array(ids.iter().map(JobId::as_uuid));
        let rows = self
            .read_all(sql::get_many().into(), move |q| q.bind(list))
            .await?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            let job = job_from_row(row)?.0;
            found.insert(job.id, job);
        }
        Ok(ids.iter().map(|id| found.get(id).cloned()).collect())
    }

    /// Settles `(parent, child)` edges of any parents in one transaction
    /// (two statements per parent); each edge's child's count after it.
    pub(super) async fn settle_pairs(&self, edges: &[(JobId, JobId)]) -> Result<Vec<u32>> {
        if edges.is_empty() {
            return Ok(Vec::new());
        }
        let mut by_parent: Vec<(Uuid, String)> = Vec::new();
        {
            let mut groups: std::collections::BTreeMap<Uuid, Vec<&Uuid>> = Default::default();
            for (p, c) in edges {
                groups.entry(*p.as_uuid()).or_default().push(c.as_uuid());
            }
            for (p, kids) in groups {
                by_parent.push((p, hex_array(kids)));
            }
        }
        let all = hex_array(edges.iter().map(|(_, c)| c.as_uuid()));
        let distinct = edges
            .iter()
            .map(|(_, c)| c)
            .collect::<std::collections::HashSet<_>>()
            .len();
        let counts: HashMap<Uuid, i64> = self
            .write(move |conn| {
                Box::pin(async move {
                    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
                    let mut counts = HashMap::with_capacity(distinct);
                    for (parent, kids) in &by_parent {
                        let fresh: Vec<Uuid> = sqlx::query_scalar(sql::settle_edges())
                            .bind(*parent)
                            .bind(kids.as_str())
                            .fetch_all(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        if fresh.is_empty() {
                            continue;
                        }
                        let rows = sqlx::query(sql::count_settled())
                            .bind(hex_array(&fresh))
                            .fetch_all(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        // A later parent's edge to the same child counts on.
                        for row in &rows {
                            counts.insert(
                                row.try_get::<Uuid, _>(0).map_err(db_err)?,
                                row.try_get::<i64, _>(1).map_err(db_err)?,
                            );
                        }
                    }
                    // Edges settled before: their children's counts as they are.
                    if counts.len() < distinct {
                        let rows = sqlx::query(sql::settled())
                            .bind(all.as_str())
                            .fetch_all(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        for row in &rows {
                            counts
                                .entry(row.try_get::<Uuid, _>(0).map_err(db_err)?)
                                .or_insert(row.try_get::<i64, _>(1).map_err(db_err)?);
                        }
                    }
                    tx.commit().await.map_err(db_err)?;
                    Ok(counts)
                })
            })
            .await?;
        edges
            .iter()
            .map(|(_, child)| {
                counts
                    .get(child.as_uuid())
                    .and_then(|&n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        backend_msg(
                            BackendErrorKind::Data,
                            format!("no settled edge count stored for workflow step {child}"),
                        )
                    })
            })
            .collect()
    }

    /// Releases the held steps among `ids` in one statement: PENDING and due
    /// now, as if enqueued now (the counts' trigger and the indexes follow),
    /// and wakes this process's workers if any was released.
    pub(super) async fn release_held_now(&self, ids: &[JobId]) -> Result<Vec<JobId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = hex_array(ids.iter().map(JobId::as_uuid));
        let now = now_micros();
        let held = micros(held_until());
        let released: Vec<Uuid> = self
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query_scalar(sql::release_held())
                        .bind(now)
                        .bind(list)
                        .bind(held)
                        .fetch_all(conn)
                        .await
                        .map_err(db_err)
                })
            })
            .await?;
        if !released.is_empty() {
            self.wake();
        }
        // In the order asked, each once.
        let released: std::collections::HashSet<Uuid> = released.into_iter().collect();
        let mut seen = std::collections::HashSet::with_capacity(released.len());
        Ok(ids
            .iter()
            .filter(|id| released.contains(id.as_uuid()) && seen.insert(**id))
            .copied()
            .collect())
    }
}
