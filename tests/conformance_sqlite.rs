//! The backend conformance suite against SQLite (each test on its own database
//! file, and once more on `sqlite::memory:`), plus what only SQLite has: several
//! independent handles (as separate processes would hold) sharing one file,
//! and (in `sqlite/`) URLs, runtimes and schema upgrades.

mod conformance;
mod sqlite;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobs_core::backend::{ClaimRequest, Outcome, OutcomeUpdate};
use jobs_core::{Backend, JobFilter, JobId, JobStatus, NewJob};
use jobs_runtime::backend::sqlite::SqliteBackend;
use serde_json::json;

fn temp_db(prefix: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("sqlite-tests")
        .join(format!("{prefix}-{}.db", uuid::Uuid::now_v7()))
}

fn url_of(path: &std::path::Path) -> String {
    format!("sqlite://{}", path.display())
}

async fn sqlite_backend() -> Arc<dyn Backend> {
    let url = url_of(&temp_db("conformance"));
    Arc::new(SqliteBackend::connect(&url).await.expect("open sqlite"))
}

jobs_conformance_suite!(sqlite_backend);

mod in_memory {
    use super::*;

    async fn sqlite_memory_backend() -> Arc<dyn Backend> {
        Arc::new(
            SqliteBackend::connect("sqlite::memory:")
                .await
                .expect("open sqlite::memory:"),
        )
    }

    crate::jobs_conformance_suite!(sqlite_memory_backend);
}

/// Two handles with their own connection pools on one file, each with claimers
/// running flat out while both enqueue: every job is claimed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_on_one_file_never_double_claim() {
    const INITIAL: usize = 2000;
    const MORE_BATCHES: usize = 20;
    const BATCH: usize = 50;
    let url = url_of(&temp_db("shared"));
    let a = Arc::new(SqliteBackend::connect(&url).await.expect("open a"));
    let b = Arc::new(SqliteBackend::connect(&url).await.expect("open b"));
    let handles: [Arc<dyn Backend>; 2] = [a.clone(), b.clone()];

    let new_jobs = |n: usize, tag: &str| -> Vec<NewJob> {
        (0..n)
            .map(|i| NewJob::new("shared.job", json!({ "tag": tag, "i": i })))
            .collect()
    };
    let mut produced: Vec<JobId> = a
        .enqueue_batch(new_jobs(INITIAL, "initial"))
        .await
        .expect("enqueue")
        .into_iter()
        .map(|e| e.id())
        .collect();
    let done = Arc::new(AtomicBool::new(false));

    let producer = {
        let (a, b) = (handles[0].clone(), handles[1].clone());
        let done = done.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..MORE_BATCHES {
                let q = if i % 2 == 0 { &a } else { &b };
                ids.extend(
                    q.enqueue_batch(new_jobs(BATCH, "more"))
                        .await
                        .expect("enqueue")
                        .into_iter()
                        .map(|e| e.id()),
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            done.store(true, Ordering::SeqCst);
            ids
        })
    };
    let mut claimers = Vec::new();
    for c in 0..8 {
        let q = handles[c % 2].clone();
        let done = done.clone();
        claimers.push(tokio::spawn(async move {
            let worker = format!("handle-{}-claimer-{c}", c % 2);
            let queues = vec!["default".to_owned()];
            let mut seen = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let jobs = q
                    .claim(ClaimRequest::new(
                        &worker,
                        &queues,
                        1 + (c * 5) % 32,
                        Duration::from_secs(60),
                    ))
                    .await
                    .expect("claim")
                    .jobs;
                if jobs.is_empty() {
                    if finished {
                        break;
                    }
                    tokio::task::yield_now().await;
                    continue;
                }
                for j in &jobs {
                    assert_eq!(j.attempt, 1, "job {} claimed twice", j.id);
                }
                let updates: Vec<OutcomeUpdate> = jobs
                    .iter()
                    .map(|j| OutcomeUpdate::new(j.fence(), Outcome::Complete { result: None }))
                    .collect();
                let lost = q.record(&worker, &updates).await.expect("record");
                assert!(
                    lost.is_empty(),
                    "outcome of a fresh claim refused: {lost:?}"
                );
                seen.extend(jobs.iter().map(|j| j.id));
            }
            seen
        }));
    }
    produced.extend(producer.await.expect("producer"));
    let mut seen = Vec::new();
    for c in claimers {
        seen.extend(c.await.expect("claimer"));
    }
    let unique: HashSet<JobId> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a job was claimed twice");
    assert_eq!(unique, produced.iter().copied().collect::<HashSet<_>>());
    let counts = b.counts().await.expect("counts");
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].status, JobStatus::Completed);
    assert_eq!(counts[0].count as usize, INITIAL + MORE_BATCHES * BATCH);
}

/// Jobs survive closing and reopening the file; a job that was RUNNING when its
/// process went away comes back through lease expiry.
#[tokio::test]
async fn jobs_survive_reopening_the_file() {
    let path = temp_db("reopen");
    let url = url_of(&path);
    let (waiting, running) = {
        let q = SqliteBackend::connect(&url).await.expect("open");
        let ids = q
            .enqueue_batch(vec![
                NewJob::new("r.job", json!({ "k": 1 })),
                NewJob::new("r.job", json!({ "k": 2 })).queue("other"),
            ])
            .await
            .expect("enqueue")
            .into_iter()
            .map(|e| e.id())
            .collect::<Vec<_>>();
        let claimed = q
            .claim(ClaimRequest::new(
                "gone",
                &["other".to_owned()],
                1,
                Duration::from_millis(100),
            ))
            .await
            .expect("claim");
        assert_eq!(claimed.jobs.len(), 1);
        q.close().await;
        (ids[0], ids[1])
    };
    assert!(path.exists());
    let q = SqliteBackend::connect(&url).await.expect("reopen");
    let w = q.get(waiting).await.expect("get").expect("still there");
    assert_eq!(w.status, JobStatus::Pending);
    assert_eq!(w.payload, json!({ "k": 1 }));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let recovered = q.recover_expired().await.expect("recover");
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].job.id, running);
    assert_eq!(recovered[0].now, JobStatus::Retrying);
    assert_eq!(q.list(&JobFilter::default()).await.expect("list").len(), 2);
}

/// Many handles opening a fresh file at once all succeed and share one schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_opens_create_the_schema_once() {
    let url = url_of(&temp_db("race"));
    let opens: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { SqliteBackend::connect(&url).await })
        })
        .collect();
    let mut handles = Vec::new();
    for o in opens {
        handles.push(o.await.expect("task").expect("open"));
    }
    for (i, q) in handles.iter().enumerate() {
        q.enqueue_batch(vec![NewJob::new("race.job", json!({ "i": i }))])
            .await
            .expect("enqueue");
    }
    let all = handles[0].list(&JobFilter::default()).await.expect("list");
    assert_eq!(all.len(), 8);
}

/// `jobs_runtime::connect` reaches this backend for `sqlite:` URLs, and a bad
/// path is a clear connect error.
#[tokio::test]
async fn connect_url_opens_sqlite() {
    let path = temp_db("connect").with_extension("").join("nested/jobs.db");
    let queue = jobs_runtime::connect(&url_of(&path))
        .await
        .expect("connect");
    assert_eq!(queue.backend().backend_name(), "sqlite");
    assert!(path.exists(), "file and parent directories are created");
    let queue = jobs_runtime::connect("sqlite::memory:")
        .await
        .expect("memory");
    assert_eq!(queue.backend().backend_name(), "sqlite");
    let err = jobs_runtime::connect("sqlite:///proc/definitely/not/here.db")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("sqlite:///proc/definitely/not/here.db"),
        "{err}"
    );
}

/// A job enqueued in the caller's own transaction exists iff it commits.
#[tokio::test]
async fn transactional_enqueue_follows_the_callers_transaction() {
    use jobs_runtime::backend::TransactionalEnqueue;

    let path = temp_db("tx");
    let url = url_of(&path);
    let backend = SqliteBackend::connect(&url).await.expect("open");
    let pool = sqlx::SqlitePool::connect(&url).await.expect("user pool");
    sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        .execute(&pool)
        .await
        .expect("create");

    // Rolled back: neither the order nor the job exists.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.expect("begin");
    sqlx::query("INSERT INTO orders (id) VALUES (1)")
        .execute(&mut *tx)
        .await
        .expect("insert");
    let rolled_back = backend
        .enqueue_in(&mut *tx, NewJob::new("order.ship", json!({ "order": 1 })))
        .await
        .expect("enqueue in tx")
        .id();
    tx.rollback().await.expect("rollback");
    assert!(backend.get(rolled_back).await.expect("get").is_none());

    // Committed: both exist, and the job is claimable.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.expect("begin");
    sqlx::query("INSERT INTO orders (id) VALUES (2)")
        .execute(&mut *tx)
        .await
        .expect("insert");
    let committed = backend
        .enqueue_in(&mut *tx, NewJob::new("order.ship", json!({ "order": 2 })))
        .await
        .expect("enqueue in tx")
        .id();
    assert!(
        backend.get(committed).await.expect("get").is_none(),
        "invisible before commit"
    );
    tx.commit().await.expect("commit");
    backend.notify();
    let job = backend.get(committed).await.expect("get").expect("stored");
    assert_eq!(job.status, JobStatus::Pending);
    let claimed = backend
        .claim(ClaimRequest::new(
            "w",
            &["default".to_owned()],
            10,
            Duration::from_secs(30),
        ))
        .await
        .expect("claim");
    assert_eq!(
        claimed.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![committed]
    );

    // Outside a transaction a batch is still all or none, and the connection
    // is left clean.
    let mut conn = pool.acquire().await.expect("conn");
    let first = NewJob::new("order.ship", json!({ "order": 3 }));
    let first_id = first.id;
    let mut clash = NewJob::new("order.ship", json!({ "order": 4 }));
    clash.id = committed;
    assert!(backend
        .enqueue_many_in(&mut *conn, vec![first, clash])
        .await
        .is_err());
    assert!(backend.get(first_id).await.expect("get").is_none());
    let id = backend
        .enqueue_in(&mut *conn, NewJob::new("order.ship", json!({ "order": 5 })))
        .await
        .expect("connection still usable")
        .id();
    assert!(backend.get(id).await.expect("get").is_some());
}

/// Acknowledged writes reach the database file within about a second, not only
/// the write-ahead log, even when the queue is too quiet for SQLite's own
/// checkpoint: that bounds what a power loss can take.
#[tokio::test]
async fn quiet_writes_are_checkpointed_within_seconds() {
    let path = temp_db("checkpoint");
    let q = SqliteBackend::connect(&url_of(&path)).await.expect("open");
    let big = "x".repeat(1 << 20);
    q.enqueue_batch(vec![NewJob::new("big.job", json!({ "blob": big }))])
        .await
        .expect("enqueue");
    let db_size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    assert!(
        db_size() < 1 << 20,
        "the payload should sit in the WAL right after the commit"
    );
    let start = std::time::Instant::now();
    while db_size() < 1 << 20 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no checkpoint within 10 s of a write"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Limits and unique keys hold across handles with connections of their own
/// on one file (as separate processes would have): claimers on both never
/// run more jobs of a concurrency key than its max, and producers on both
/// store one job per unique key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_unique_keys_hold_across_handles_on_one_file() {
    use std::sync::atomic::AtomicU32;

    use jobs_core::Uniqueness;

    let url = url_of(&temp_db("shared-limits"));
    let a = Arc::new(SqliteBackend::connect(&url).await.expect("open a"));
    let b = Arc::new(SqliteBackend::connect(&url).await.expect("open b"));
    let handles: [Arc<dyn Backend>; 2] = [a, b];

    // Unique keys: 8 producers, 4 on each handle, 100 enqueues each, of 5 keys.
    let mut producers = Vec::new();
    for p in 0..8 {
        let q = handles[p % 2].clone();
        producers.push(tokio::spawn(async move {
            let mut inserted = 0;
            for i in 0..100 {
                let key = format!("key-{}", i % 5);
                let job = NewJob::new("unique.job", json!({ "p": p, "i": i }))
                    .queue("unique")
                    .unique(Uniqueness::new(key));
                let out = q.enqueue_batch(vec![job]).await.expect("enqueue");
                inserted += usize::from(out[0].is_inserted());
            }
            inserted
        }));
    }
    let mut inserted = 0;
    for p in producers {
        inserted += p.await.expect("producer");
    }
    assert_eq!(inserted, 5, "one job per key");
    let stored = handles[0]
        .list(&JobFilter::default().queue("unique").limit(100))
        .await
        .expect("list");
    assert_eq!(stored.len(), 5);

    // A concurrency key with max 2, claimed from both handles at once.
    let jobs: Vec<NewJob> = (0..30)
        .map(|n| NewJob::new("limited.job", json!({ "n": n })).concurrency("hot", 2))
        .collect();
    handles[0].enqueue_batch(jobs).await.expect("enqueue");
    let running = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let done = Arc::new(AtomicU32::new(0));
    let mut claimers = Vec::new();
    for c in 0..6 {
        let q = handles[c % 2].clone();
        let (running, peak, done) = (running.clone(), peak.clone(), done.clone());
        claimers.push(tokio::spawn(async move {
            let worker = format!("claimer-{c}");
            let queues = vec!["default".to_owned()];
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while done.load(Ordering::SeqCst) < 30 {
                assert!(std::time::Instant::now() < deadline, "stalled");
                let got = q
                    .claim(ClaimRequest::new(
                        &worker,
                        &queues,
                        2,
                        Duration::from_secs(60),
                    ))
                    .await
                    .expect("claim")
                    .jobs;
                if got.is_empty() {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                let n = got.len() as u32;
                peak.fetch_max(running.fetch_add(n, Ordering::SeqCst) + n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                running.fetch_sub(n, Ordering::SeqCst);
                let updates: Vec<OutcomeUpdate> = got
                    .iter()
                    .map(|j| OutcomeUpdate::new(j.fence(), Outcome::Complete { result: None }))
                    .collect();
                assert!(q
                    .record(&worker, &updates)
                    .await
                    .expect("record")
                    .is_empty());
                done.fetch_add(n, Ordering::SeqCst);
            }
        }));
    }
    for c in claimers {
        c.await.expect("claimer");
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&peak),
        "{peak} jobs of a key with max 2 ran at once"
    );
}

/// When a job with limits that this handle claimed ends, idle workers of
/// the file are woken at once: a slot of its key is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_a_limited_job_wakes_listeners() {
    let q = Arc::new(
        SqliteBackend::connect(&url_of(&temp_db("limited-wake")))
            .await
            .expect("open"),
    );
    let jobs: Vec<NewJob> = (0..2)
        .map(|n| NewJob::new("t", json!({ "n": n })).concurrency("one", 1))
        .collect();
    q.enqueue_batch(jobs).await.expect("enqueue");
    let queues = vec!["default".to_owned()];
    let claim = || ClaimRequest::new("w", &queues, 10, Duration::from_secs(60));
    let first = q.claim(claim()).await.expect("claim");
    assert_eq!(first.jobs.len(), 1);
    assert!(first.limited);
    let mut listener = q.listener(&queues).await.expect("listener");
    let finisher = {
        let q = q.clone();
        let job = first.jobs[0].clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let done = OutcomeUpdate::new(job.fence(), Outcome::Complete { result: None });
            assert!(q.record("w", &[done]).await.expect("record").is_empty());
        })
    };
    let started = std::time::Instant::now();
    listener.wait(Duration::from_secs(10)).await;
    finisher.await.expect("finisher");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not woken: {:?}",
        started.elapsed()
    );
    assert_eq!(q.claim(claim()).await.expect("claim").jobs.len(), 1);
}

/// The limited claim path walks past many held-back jobs (several pages of
/// candidates) to the free ones behind them.
#[tokio::test]
async fn a_claim_walks_past_many_held_back_jobs() {
    let q = SqliteBackend::connect(&url_of(&temp_db("walk")))
        .await
        .expect("open");
    let mut jobs: Vec<NewJob> = (0..500)
        .map(|n| NewJob::new("t", json!({ "n": n })).sequence("long"))
        .collect();
    let free = NewJob::new("t", json!({ "free": true }));
    let (head, free_id) = (jobs[0].id, free.id);
    jobs.push(free);
    q.enqueue_batch(jobs).await.expect("enqueue");
    let queues = vec!["default".to_owned()];
    let claim = || ClaimRequest::new("w", &queues, 10, Duration::from_secs(60));
    let got = q.claim(claim()).await.expect("claim");
    let ids: HashSet<JobId> = got.jobs.iter().map(|j| j.id).collect();
    assert_eq!(ids, HashSet::from([head, free_id]));
    assert!(got.limited);
    let again = q.claim(claim()).await.expect("claim");
    assert!(again.jobs.is_empty() && again.limited);
}
