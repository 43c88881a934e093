//! Enqueueing: one statement per batch, and for unique jobs the holder
//! lookup and replace mode that follow it.
//!
//! The store decides which unique job is stored: the partial unique index
//! `jobs_unique_idx` holds a key while its job's status is in the job's own
//! bit set, and the insert says `ON CONFLICT DO NOTHING` (a concurrent insert
//! of the same key waits for the other transaction, then does nothing). A
//! batch with unique jobs runs in a transaction (a savepoint inside the
//! caller's): the insert, then — only if some unique job was not stored —
//! one lookup of the holders by key, then a replace per debounced job. A
//! holder can finish between the insert and the lookup (the key is free
//! again); those jobs are inserted again, a bounded number of times.
//! Batches taking several keys concurrently in opposite orders can
//! deadlock; PostgreSQL then refuses one (a transient error, retried).

use chrono::{DateTime, Utc};
use jobs_core::{BackendErrorKind, Enqueued, Error, JobId, JobStatus, NewJob, Result, MAX_DELAY};
use serde_json::Value;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};
use uuid::Uuid;

use super::backend::{micros, PostgresBackend};
use super::error::{corrupt, db_err, enqueue_err, BACKEND};

/// How many times a unique job whose holder vanished meanwhile is inserted again.
const UNIQUE_ROUNDS: usize = 8;

/// A batch as `enqueue.sql` takes it: one array per column.
#[derive(Default)]
struct Columns {
    uuids: Vec<Uuid>,
    queues: Vec<String>,
    types: Vec<String>,
    payloads: Vec<Value>,
    priorities: Vec<i32>,
    max_retries: Vec<i32>,
    run_ats: Vec<Option<DateTime<Utc>>>,
    metadata: Vec<Value>,
    delays: Vec<Option<i64>>,
    timeouts: Vec<Option<i64>>,
    unique_keys: Vec<Option<String>>,
    unique_periods: Vec<Option<i64>>,
    unique_states: Vec<Option<i16>>,
    conc_keys: Vec<Option<String>>,
    conc_maxes: Vec<Option<i32>>,
    rate_keys: Vec<Option<String>>,
    rate_maxes: Vec<Option<i32>>,
    rate_pers: Vec<Option<i64>>,
    seq_keys: Vec<Option<String>>,
}

fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn max_retries(job: &NewJob) -> Result<i32> {
    i32::try_from(job.max_retries).map_err(|_| {
        Error::InvalidJob(format!(
            "max_retries {} of job {} ({}) is too large; at most {}",
            job.max_retries,
            job.id,
            job.job_type,
            i32::MAX
        ))
    })
}

fn timeout_ms(job: &NewJob) -> Option<i64> {
    job.timeout
        .map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
}

/// Resolved by the database's clock (`run_at` wins, as in `NewJob::due_at`).
fn delay(job: &NewJob) -> Option<i64> {
    job.delay.map(|d| micros(d.min(MAX_DELAY)))
}

impl Columns {
    fn new(jobs: impl ExactSizeIterator<Item = NewJob>) -> Result<Columns> {
        let n = jobs.len();
        let mut c = Columns {
            uuids: Vec::with_capacity(n),
            queues: Vec::with_capacity(n),
            types: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
            priorities: Vec::with_capacity(n),
            max_retries: Vec::with_capacity(n),
            run_ats: Vec::with_capacity(n),
            metadata: Vec::with_capacity(n),
            delays: Vec::with_capacity(n),
            timeouts: Vec::with_capacity(n),
            ..Columns::default()
        };
        for job in jobs {
            c.max_retries.push(max_retries(&job)?);
            c.delays.push(delay(&job));
            c.timeouts.push(timeout_ms(&job));
            let u = job.unique.as_ref();
            c.unique_keys.push(u.map(|u| u.key.clone()));
            c.unique_periods.push(
                u.and_then(|u| u.period)
                    .map(|p| i64::try_from(p.as_secs().max(1)).unwrap_or(i64::MAX)),
            );
            c.unique_states.push(u.map(|u| i16::from(u.states.bits())));
            let l = &job.limits;
            c.conc_keys
                .push(l.concurrency.as_ref().map(|c| c.key.clone()));
            c.conc_maxes
                .push(l.concurrency.as_ref().map(|c| int(c.max)));
            c.rate_keys.push(l.rate.as_ref().map(|r| r.key.clone()));
            c.rate_maxes.push(l.rate.as_ref().map(|r| int(r.max)));
            c.rate_pers.push(l.rate.as_ref().map(|r| micros(r.per)));
            c.seq_keys.push(l.sequence.clone());
            c.uuids.push(*job.id.as_uuid());
            c.queues.push(job.queue_name);
            c.types.push(job.job_type);
            c.payloads.push(job.payload);
            c.priorities.push(job.priority);
            c.run_ats.push(job.run_at);
            c.metadata.push(Value::Object(job.metadata));
        }
        Ok(c)
    }
}

/// The unique jobs an insert did not store (their index in the batch, and
/// their stored key).
struct Inserted {
    missing: Vec<(usize, String)>,
}

impl PostgresBackend {
    /// Stores `jobs` with `conn`, all or none (see the module's doc).
    pub(super) async fn enqueue_with(
        &self,
        conn: &mut PgConnection,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Enqueued>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        if jobs.iter().all(|j| j.unique.is_none()) {
            // The common case: one statement, no transaction.
            let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
            let stored = self.insert(conn, Columns::new(jobs.into_iter())?).await?;
            if stored != ids.len() {
                return Err(Error::backend_msg(
                    BACKEND,
                    BackendErrorKind::Other,
                    format!("stored {stored} of {} jobs", ids.len()),
                ));
            }
            return Ok(ids.into_iter().map(Enqueued::Inserted).collect());
        }
        let mut tx = conn.begin().await.map_err(db_err)?;
        let out = self.enqueue_unique(&mut tx, &jobs).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(out)
    }

    /// The batch's statement with its columns bound, the unique ones last
    /// (only `enqueue_unique.sql` takes them). A column no job uses goes as
    /// an empty array (`unnest` pads it with NULLs).
    fn bind<'q>(
        sql: &'q str,
        c: Columns,
        unique: bool,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        fn used<T: Send + sqlx::Type<sqlx::Postgres>>(v: Vec<Option<T>>) -> Vec<Option<T>> {
            if v.iter().all(Option::is_none) {
                Vec::new()
            } else {
                v
            }
        }
        let q = sqlx::query(sql)
            .bind(c.uuids)
            .bind(c.queues)
            .bind(c.types)
            .bind(c.payloads)
            .bind(c.priorities)
            .bind(c.max_retries)
            .bind(c.run_ats)
            .bind(c.metadata)
            .bind(c.delays)
            .bind(c.timeouts)
            .bind(used(c.conc_keys))
            .bind(used(c.conc_maxes))
            .bind(used(c.rate_keys))
            .bind(used(c.rate_maxes))
            .bind(used(c.rate_pers))
            .bind(used(c.seq_keys));
        if unique {
            q.bind(c.unique_keys)
                .bind(c.unique_periods)
                .bind(c.unique_states)
        } else {
            q
        }
    }

    /// Inserts a batch without unique jobs; how many rows it stored.
    async fn insert(&self, conn: &mut PgConnection, c: Columns) -> Result<usize> {
        let row = Self::bind(&self.inner.sql.enqueue, c, false)
            .fetch_one(&mut *conn)
            .await
            .map_err(enqueue_err)?;
        let stored: i64 = row.try_get("n").map_err(db_err)?;
        Ok(usize::try_from(stored).unwrap_or(0))
    }

    /// Inserts a batch with unique jobs: which were not stored.
    async fn insert_unique(&self, conn: &mut PgConnection, c: Columns) -> Result<Inserted> {
        let row = Self::bind(&self.inner.sql.enqueue_unique, c, true)
            .fetch_one(&mut *conn)
            .await
            .map_err(enqueue_err)?;
        let ords: Vec<i32> = row.try_get("missing_ord").map_err(db_err)?;
        let keys: Vec<String> = row.try_get("missing_key").map_err(db_err)?;
        Ok(Inserted {
            // ORDINALITY counts from 1.
            missing: ords
                .into_iter()
                .map(|o| usize::try_from(o - 1).unwrap_or(0))
                .zip(keys)
                .collect(),
        })
    }

    /// A batch with unique jobs, inside a transaction.
    async fn enqueue_unique(
        &self,
        conn: &mut PgConnection,
        jobs: &[NewJob],
    ) -> Result<Vec<Enqueued>> {
        let mut out: Vec<Option<Enqueued>> = vec![None; jobs.len()];
        let mut todo: Vec<usize> = (0..jobs.len()).collect();
        for _ in 0..UNIQUE_ROUNDS {
            let batch = todo.iter().map(|&i| jobs[i].clone());
            let done = self.insert_unique(conn, Columns::new(batch)?).await?;
            // Positions in `todo` → positions in `jobs`.
            let missing: Vec<(usize, String)> = done
                .missing
                .into_iter()
                .map(|(at, key)| (todo[at], key))
                .collect();
            for &i in &todo {
                if !missing.iter().any(|(m, _)| *m == i) {
                    out[i] = Some(Enqueued::Inserted(jobs[i].id));
                }
            }
            if missing.is_empty() {
                todo.clear();
                break;
            }
            let holders = self.holders(conn, &missing).await?;
            let mut again = Vec::new();
            for (i, _) in missing {
                let Some(&(_, holder, status)) = holders.iter().find(|h| h.0 == i) else {
                    // The holder finished meanwhile: the key is free again.
                    again.push(i);
                    continue;
                };
                let replace = jobs[i].unique.as_ref().is_some_and(|u| u.replace);
                out[i] = Some(if replace && status.is_waiting() {
                    if self.replace(conn, holder, &jobs[i]).await? {
                        Enqueued::Replaced(holder)
                    } else {
                        Enqueued::Duplicate(holder)
                    }
                } else {
                    Enqueued::Duplicate(holder)
                });
            }
            todo = again;
            if todo.is_empty() {
                break;
            }
        }
        if !todo.is_empty() {
            return Err(Error::backend_msg(
                BACKEND,
                BackendErrorKind::Transient,
                "the holders of a unique key kept changing during the enqueue; try again",
            ));
        }
        Ok(out
            .into_iter()
            .map(|e| e.expect("every job settled"))
            .collect())
    }

    /// The jobs holding `keys` now: (the index given with the key, holder, its status).
    pub(super) async fn holders(
        &self,
        conn: &mut PgConnection,
        keys: &[(usize, String)],
    ) -> Result<Vec<(usize, JobId, JobStatus)>> {
        let ords: Vec<i32> = keys
            .iter()
            .map(|(i, _)| i32::try_from(*i).unwrap_or(i32::MAX))
            .collect();
        let names: Vec<&str> = keys.iter().map(|(_, k)| k.as_str()).collect();
        let rows = sqlx::query(&self.inner.sql.holders)
            .bind(names)
            .bind(ords)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let ord: i32 = row.try_get("ord").map_err(db_err)?;
            let id: Uuid = row.try_get("id").map_err(db_err)?;
            let status: String = row.try_get("status").map_err(db_err)?;
            let status = status.parse().map_err(|e| corrupt(id, e))?;
            out.push((
                usize::try_from(ord).unwrap_or(0),
                JobId::from_uuid(id),
                status,
            ));
        }
        Ok(out)
    }

    /// Debounce: the waiting `holder` takes `job`'s payload, options and due
    /// time. False if it is no longer waiting.
    async fn replace(&self, conn: &mut PgConnection, holder: JobId, job: &NewJob) -> Result<bool> {
        let row = sqlx::query(&self.inner.sql.replace)
            .bind(holder.as_uuid())
            .bind(&job.payload)
            .bind(Value::Object(job.metadata.clone()))
            .bind(job.priority)
            .bind(max_retries(job)?)
            .bind(timeout_ms(job))
            .bind(job.run_at)
            .bind(delay(job))
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
        Ok(row.is_some())
    }
}
