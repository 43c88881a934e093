//! How Redis stores what the conformance suite only sees through the port:
//! jobs written by the previous version (without the lease token, error
//! count, cancellation and timeout fields), the capped error history, exact
//! time scores at the largest delay, outcome batches bigger than one script
//! call, and the keys of workflows. Needs `JOBS_TEST_REDIS_URL` (skipped
//! without it, except under `CI`).

use std::time::Duration;

use jobs_core::backend::{ClaimRequest, Fence, LeaseToken, Outcome, OutcomeUpdate};
use jobs_core::{Backend, JobStatus, NewJob, MAX_DELAY, MAX_ERROR_HISTORY};
use jobs_runtime::backend::redis::RedisBackend;
use serde_json::json;

fn redis_url() -> Option<String> {
    match std::env::var("JOBS_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("JOBS_TEST_REDIS_URL is not set, and CI is: Redis tests must run in CI")
        }
        _ => {
            eprintln!("skipped: set JOBS_TEST_REDIS_URL to run the Redis tests");
            None
        }
    }
}

/// A backend on a fresh random prefix, whose keys are deleted when it drops
/// (also when an assertion failed), and a raw connection beside it.
struct Ns {
    backend: RedisBackend,
    url: String,
    raw: redis::aio::MultiplexedConnection,
}

async fn ns() -> Option<Ns> {
    let url = redis_url()?;
    let backend = RedisBackend::builder(&url)
        .prefix(format!("storage-{:016x}", fastrand::u64(..)))
        .connect()
        .await
        .expect("connect to redis");
    let raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    Some(Ns { backend, url, raw })
}

impl Ns {
    fn key(&self, rest: &str) -> String {
        format!("{{{}}}:{rest}", self.backend.prefix())
    }

    async fn hget(&mut self, id: impl std::fmt::Display, field: &str) -> Option<String> {
        redis::cmd("HGET")
            .arg(self.key(&format!("j:{id}")))
            .arg(field)
            .query_async(&mut self.raw)
            .await
            .unwrap()
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let pattern = format!("{{{}}}:*", self.backend.prefix());
        let purge = || -> redis::RedisResult<()> {
            let mut con = redis::Client::open(self.url.as_str())?.get_connection()?;
            let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut con)?;
            for chunk in keys.chunks(1000) {
                redis::cmd("UNLINK").arg(chunk).exec(&mut con)?;
            }
            Ok(())
        };
        if let Err(e) = purge() {
            eprintln!("could not delete the keys of {pattern}: {e}");
        }
    }
}

fn queues(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn fail(message: &str) -> jobs_core::backend::AttemptFailure {
    jobs_core::backend::AttemptFailure::new(message, true)
}

/// A job the previous version wrote has no lease token, error count,
/// cancellation mark or timeout, and an error history it never capped. It
/// reads back as no token, as many errors as its history holds (the last 20
/// of them shown), not cancelled, no timeout. If it was RUNNING, no fence
/// matches it — its late outcome is refused — and recovery takes it once its
/// lease expires, capping its history and counting on from there.
#[tokio::test]
async fn a_job_written_by_the_previous_version_reads_back_and_recovers() {
    let Some(mut ns) = ns().await else { return };
    let b = ns.backend.clone();
    let id = b
        .enqueue_batch(vec![NewJob::new("t", json!({}))
            .max_retries(100)
            .timeout(Duration::from_secs(5))])
        .await
        .unwrap()[0]
        .id();
    let qs = queues(&["default"]);
    let short = Duration::from_millis(300);
    let job = b
        .claim(ClaimRequest::new("w1", &qs, 1, short))
        .await
        .unwrap()
        .jobs
        .pop()
        .unwrap();
    assert!(job.lease_token.is_some());

    // Now make it what the previous version stored: no new fields, and 25
    // errors. The messages hold the text every entry starts with, escaped
    // inside their JSON strings, to show that entries are not split there.
    let old = MAX_ERROR_HISTORY + 5;
    let history: Vec<String> = (1..=old)
        .map(|a| {
            json!({"a": a, "r": a - 1, "t": 1_700_000_000_000_000i64,
                   "m": format!("old {a} {{\"a\":1}},{{\"a\":2}}"), "y": true, "w": "w0"})
            .to_string()
        })
        .collect();
    let key = ns.key(&format!("j:{id}"));
    redis::pipe()
        .cmd("HDEL")
        .arg(&key)
        .arg(&["lt", "ec", "cx", "to"][..])
        .cmd("HSET")
        .arg(&key)
        .arg("er")
        .arg(history.join(","))
        .exec_async(&mut ns.raw)
        .await
        .unwrap();

    let legacy = b.get(id).await.unwrap().unwrap();
    assert_eq!(legacy.status, JobStatus::Running);
    assert_eq!(legacy.lease_token, None);
    assert_eq!(legacy.cancelled_at, None);
    assert_eq!(legacy.timeout, None);
    assert_eq!(legacy.error_count, old as u32);
    assert_eq!(legacy.errors.len(), MAX_ERROR_HISTORY);
    assert_eq!(legacy.errors[0].message, "old 6 {\"a\":1},{\"a\":2}");

    // The worker that ran it (under a token this job no longer has) and one
    // without a token are both refused.
    for fence in [
        job.fence(),
        Fence::new(id, job.attempt, LeaseToken::default()),
    ] {
        let lost = b
            .record(
                "w1",
                &[OutcomeUpdate::new(
                    fence,
                    Outcome::Complete { result: None },
                )],
            )
            .await
            .unwrap();
        assert_eq!(lost, vec![id]);
        let lost = b.heartbeat("w1", &[fence], short).await.unwrap().lost;
        assert_eq!(lost, vec![id]);
    }

    tokio::time::sleep(short + Duration::from_millis(200)).await;
    let recovered = b.recover_expired().await.unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].now, JobStatus::Retrying);
    let j = b.get(id).await.unwrap().unwrap();
    assert_eq!(j.error_count, old as u32 + 1);
    assert_eq!(j.errors.len(), MAX_ERROR_HISTORY);
    assert_eq!(j.errors[0].message, "old 7 {\"a\":1},{\"a\":2}");
    assert!(j.errors.last().unwrap().message.contains("lease expired"));
    // Stored capped now, with its count.
    let er = ns.hget(id, "er").await.unwrap();
    assert_eq!(er.matches("{\"a\":").count(), MAX_ERROR_HISTORY, "{er}");
    assert_eq!(ns.hget(id, "ec").await.as_deref(), Some("26"));

    // From here on every failure keeps 20 entries and counts on.
    let job = b
        .claim(ClaimRequest::new("w1", &qs, 1, Duration::from_secs(30)))
        .await
        .unwrap()
        .jobs
        .pop()
        .unwrap();
    let retry = Outcome::Retry {
        delay: Duration::ZERO,
        error: fail("new"),
    };
    let update = OutcomeUpdate::new(job.fence(), retry);
    assert!(b.record("w1", &[update]).await.unwrap().is_empty());
    let j = b.get(id).await.unwrap().unwrap();
    assert_eq!((j.error_count, j.errors.len()), (27, MAX_ERROR_HISTORY));
    assert_eq!(j.errors.last().unwrap().message, "new");
    assert_eq!(j.lease_token, None);
}

/// Times are microseconds, kept exact in Lua's doubles: at the largest delay
/// (`MAX_DELAY` from Redis's now, at enqueue and on retry) the stored time
/// and the index score are the same integer, and the delay is exactly
/// `MAX_DELAY` by the one clock of the script.
#[tokio::test]
async fn the_largest_delay_is_stored_exactly() {
    let Some(mut ns) = ns().await else { return };
    let b = ns.backend.clone();
    let max_us = MAX_DELAY.as_micros() as i64;
    let id = b
        .enqueue_batch(vec![NewJob::new("t", json!({}))
            .queue("far")
            .delay(Duration::MAX)])
        .await
        .unwrap()[0]
        .id();
    let j = b.get(id).await.unwrap().unwrap();
    assert_eq!(j.status, JobStatus::Scheduled);
    assert_eq!(
        j.run_at.timestamp_micros() - j.created_at.timestamp_micros(),
        max_us
    );
    let ra = ns.hget(id, "ra").await.unwrap();
    assert_eq!(ra, j.run_at.timestamp_micros().to_string());
    let scored: Vec<(String, String)> = redis::cmd("ZRANGE")
        .arg(ns.key("delayed:far"))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut ns.raw)
        .await
        .unwrap();
    assert_eq!(scored.len(), 1);
    assert!(scored[0].0.ends_with(&id.to_string()));
    assert_eq!(scored[0].1, ra, "the score is the exact integer");

    let id = b
        .enqueue_batch(vec![NewJob::new("t", json!({})).queue("near")])
        .await
        .unwrap()[0]
        .id();
    let qs = queues(&["near"]);
    let job = b
        .claim(ClaimRequest::new("w1", &qs, 1, Duration::from_secs(30)))
        .await
        .unwrap()
        .jobs
        .pop()
        .unwrap();
    let retry = Outcome::Retry {
        delay: Duration::MAX,
        error: fail("much later"),
    };
    assert!(b
        .record("w1", &[OutcomeUpdate::new(job.fence(), retry)])
        .await
        .unwrap()
        .is_empty());
    let j = b.get(id).await.unwrap().unwrap();
    assert_eq!(j.status, JobStatus::Retrying);
    assert_eq!(
        j.run_at.timestamp_micros() - j.errors[0].at.timestamp_micros(),
        max_us
    );
    let ra = ns.hget(id, "ra").await.unwrap();
    let score: String = redis::cmd("ZRANGE")
        .arg(ns.key("delayed:near"))
        .arg(0)
        .arg(0)
        .arg("WITHSCORES")
        .query_async::<Vec<String>>(&mut ns.raw)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(score, ra);
}

/// A batch of outcomes too big for one script call (more than 1,000, or more
/// than 8 MiB of arguments) runs as several calls inside one MULTI; stale
/// fences in it are reported, the rest applied.
#[tokio::test]
async fn outcome_batches_bigger_than_one_script_call() {
    let Some(ns) = ns().await else { return };
    let b = ns.backend.clone();
    let n = 1_100;
    let ids = b
        .enqueue_batch(
            (0..n)
                .map(|i| NewJob::new("t", json!({ "i": i })))
                .collect(),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>();
    let qs = queues(&["default"]);
    let mut jobs = Vec::new();
    while jobs.len() < n {
        let got = b
            .claim(ClaimRequest::new("w1", &qs, n, Duration::from_secs(60)))
            .await
            .unwrap()
            .jobs;
        assert!(!got.is_empty());
        jobs.extend(got);
    }
    let stale = jobs[1_050].id;
    let updates: Vec<OutcomeUpdate> = jobs
        .iter()
        .map(|j| {
            let fence = if j.id == stale {
                Fence::new(j.id, j.attempt, LeaseToken::random())
            } else {
                j.fence()
            };
            OutcomeUpdate::new(
                fence,
                Outcome::Complete {
                    result: Some(j.payload["i"].clone()),
                },
            )
        })
        .collect();
    assert_eq!(b.record("w1", &updates).await.unwrap(), vec![stale]);
    for (i, id) in ids.iter().enumerate().step_by(97) {
        let j = b.get(*id).await.unwrap().unwrap();
        if *id == stale {
            assert_eq!(j.status, JobStatus::Running);
        } else {
            assert_eq!(
                (j.status, j.result_data),
                (JobStatus::Completed, Some(json!(i)))
            );
        }
    }
    let counts = b.counts().await.unwrap();
    let count = |s: JobStatus| counts.iter().find(|c| c.status == s).map_or(0, |c| c.count);
    assert_eq!(
        (count(JobStatus::Completed), count(JobStatus::Running)),
        (n as u64 - 1, 1)
    );

    // Big results: four of 3 MiB make more than one call's worth of bytes.
    let big = "x".repeat(3 << 20);
    let ids = b
        .enqueue_batch((0..4).map(|_| NewJob::new("t", json!({}))).collect())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>();
    let jobs = b
        .claim(ClaimRequest::new("w1", &qs, 10, Duration::from_secs(60)))
        .await
        .unwrap()
        .jobs;
    assert_eq!(jobs.len(), 4);
    let updates: Vec<OutcomeUpdate> = jobs
        .iter()
        .map(|j| {
            OutcomeUpdate::new(
                j.fence(),
                Outcome::Fail {
                    error: fail("too big to succeed"),
                    result: Some(json!({ "body": big })),
                },
            )
        })
        .collect();
    assert!(b.record("w1", &updates).await.unwrap().is_empty());
    for id in ids {
        let j = b.get(id).await.unwrap().unwrap();
        assert_eq!(j.status, JobStatus::Failed);
        assert_eq!(
            j.result_data.unwrap()["body"].as_str().unwrap().len(),
            3 << 20
        );
    }
}

/// A cancellation is marked with Redis's time and filterable; requeue
/// clears the mark (the conformance rule checks the same through the port;
/// here: the field itself).
#[tokio::test]
async fn the_cancellation_mark_is_a_field_of_its_own() {
    let Some(mut ns) = ns().await else { return };
    let b = ns.backend.clone();
    let id = b
        .enqueue_batch(vec![NewJob::new("t", json!({}))])
        .await
        .unwrap()[0]
        .id();
    let c = b
        .cancel(id, &jobs_core::CancelRequest::default())
        .await
        .unwrap();
    let cx = ns.hget(id, "cx").await.unwrap();
    assert_eq!(cx, c.cancelled_at.unwrap().timestamp_micros().to_string());
    assert_eq!(ns.hget(id, "fa").await.unwrap(), cx);
    b.requeue(id).await.unwrap();
    assert_eq!(ns.hget(id, "cx").await, None);
    assert_eq!(b.get(id).await.unwrap().unwrap().cancelled_at, None);
}

/// What `counts()` answers, as `(queue, status) → n`.
async fn counted(b: &RedisBackend) -> std::collections::BTreeMap<(String, String), u64> {
    b.counts()
        .await
        .unwrap()
        .into_iter()
        .map(|c| ((c.queue, c.status.as_str().to_owned()), c.count))
        .collect()
}

impl Ns {
    /// Every job hash of the namespace, grouped by `(queue, status)`: the
    /// full scan `{P}:counts` stands for. Also checks the counter hash
    /// itself: exactly the pairs that have jobs, no field at zero or below.
    async fn scanned(&mut self) -> std::collections::BTreeMap<(String, String), u64> {
        let mut out = std::collections::BTreeMap::new();
        // A SCAN walks the whole shared keyspace: allow it more than the
        // client's default half second per reply on a busy machine.
        self.raw.set_response_timeout(Duration::from_secs(30));
        let pattern = self.key("j:*");
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                // Few round trips on a shared Redis with many other keys.
                .arg(10_000)
                .query_async(&mut self.raw)
                .await
                .unwrap();
            let mut pipe = redis::pipe();
            for k in &keys {
                pipe.cmd("HMGET").arg(k).arg("s").arg("q");
            }
            let rows: Vec<(String, String)> = if keys.is_empty() {
                Vec::new()
            } else {
                pipe.query_async(&mut self.raw).await.unwrap()
            };
            for (s, q) in rows {
                *out.entry((q, s)).or_insert(0) += 1;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let raw: Vec<(String, i64)> = redis::cmd("HGETALL")
            .arg(self.key("counts"))
            .query_async(&mut self.raw)
            .await
            .unwrap();
        // The counter itself: a field per (status, queue) that has jobs,
        // none left at zero (or below).
        let raw: std::collections::BTreeMap<(String, String), u64> = raw
            .into_iter()
            .map(|(field, n)| {
                assert!(n > 0, "counter field `{field}` is {n}");
                let (s, q) = field.split_once(' ').expect("`<STATUS> <queue>`");
                ((q.to_owned(), s.to_owned()), n as u64)
            })
            .collect();
        assert_eq!(raw, out, "{{P}}:counts against a full scan");
        out
    }

    /// `counts()` agrees with a full scan of the jobs.
    async fn check_counts(&mut self, after: &str) {
        let b = self.backend.clone();
        let scanned = self.scanned().await;
        assert_eq!(counted(&b).await, scanned, "counts() after {after}");
    }
}

/// `counts()` reads `{P}:counts`, which every script that changes a status
/// keeps up to date: it must agree with a full scan of the job hashes after
/// every kind of change — enqueue (now, delayed, unique, with limits), claim,
/// each outcome (complete, retry, fail, dead letter, release, snooze, cancel),
/// cancel of waiting and running jobs, requeue, delete, prune (all, by queue,
/// by status, partial), recovery of expired leases, and unique replaces.
#[tokio::test]
async fn counts_stay_exact_through_every_kind_of_change() {
    use jobs_core::backend::Outcome as O;
    use jobs_core::{CancelRequest, JobId, PruneRequest, Uniqueness};
    let Some(mut ns) = ns().await else { return };
    let b = ns.backend.clone();
    const W: &str = "w-counts";
    let long = Duration::from_secs(600);
    let record = |ups: Vec<OutcomeUpdate>| {
        let b = b.clone();
        async move {
            let lost = b.record(W, &ups).await.unwrap();
            assert!(lost.is_empty(), "no outcome is lost: {lost:?}");
        }
    };
    ns.check_counts("nothing").await;

    // Enqueue: due, delayed, with retries, with limits, unique.
    let mut batch = Vec::new();
    for i in 0..40 {
        batch.push(
            NewJob::new("t", json!({ "i": i }))
                .queue(if i % 4 == 0 { "b" } else { "a" })
                .max_retries(if i % 3 == 0 { 0 } else { 2 }),
        );
    }
    for i in 0..5 {
        batch.push(
            NewJob::new("t", json!({ "d": i }))
                .queue("a")
                .delay(Duration::from_secs(3600)),
        );
    }
    for i in 0..6 {
        batch.push(
            NewJob::new("t", json!({ "l": i }))
                .queue("lim")
                .concurrency("c", 2),
        );
        batch.push(
            NewJob::new("t", json!({ "s": i }))
                .queue("lim")
                .sequence("seq"),
        );
    }
    b.enqueue_batch(batch).await.unwrap();
    let u = |v: i64, delay: u64| {
        NewJob::new("u", json!({ "v": v }))
            .queue("u")
            .delay(Duration::from_secs(delay))
            .unique(Uniqueness::new("debounce").replace(true))
    };
    let held = b.enqueue_batch(vec![u(1, 3600)]).await.unwrap()[0].id();
    ns.check_counts("enqueue").await;
    // Unique replaces: SCHEDULED → PENDING → SCHEDULED, and duplicates.
    for (v, delay) in [(2, 0), (3, 3600), (4, 0)] {
        let r = b.enqueue_batch(vec![u(v, delay)]).await.unwrap();
        assert_eq!(r[0], jobs_core::Enqueued::Replaced(held));
    }
    let dup = NewJob::new("u", json!({}))
        .queue("u")
        .unique(Uniqueness::new("debounce"));
    assert_eq!(
        b.enqueue_batch(vec![dup]).await.unwrap()[0],
        jobs_core::Enqueued::Duplicate(held)
    );
    ns.check_counts("unique replaces").await;

    // Claims, and every outcome.
    let claimed = b
        .claim(ClaimRequest::new(
            W,
            &queues(&["a", "b", "lim", "u"]),
            40,
            long,
        ))
        .await
        .unwrap()
        .jobs;
    assert!(claimed.len() >= 30, "claimed {}", claimed.len());
    ns.check_counts("claim").await;
    // Cancel two running jobs (marked only) and two waiting ones (FAILED).
    let cancel = CancelRequest::by("test");
    b.cancel(claimed[0].id, &cancel).await.unwrap();
    b.cancel(claimed[1].id, &cancel).await.unwrap();
    let waiting: Vec<JobId> = b
        .list(&jobs_core::JobFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.status == JobStatus::Pending)
        .map(|j| j.id)
        .take(2)
        .collect();
    for id in &waiting {
        b.cancel(*id, &cancel).await.unwrap();
    }
    ns.check_counts("cancels").await;
    // Kind `k` of outcome; the `i`th job (a snooze is due now or later).
    let outcome = |k: usize, i: usize| match k {
        0 | 1 => O::Cancel {
            error: fail("cancelled by test"),
        },
        2 => O::Complete { result: None },
        3 => O::Retry {
            delay: Duration::ZERO,
            error: fail("again"),
        },
        4 => O::Fail {
            error: fail("no"),
            result: None,
        },
        5 => O::DeadLetter {
            error: fail("dead"),
        },
        6 => O::Release,
        _ => O::Snooze {
            delay: if i.is_multiple_of(2) {
                Duration::ZERO
            } else {
                Duration::from_secs(3600)
            },
        },
    };
    let ups: Vec<OutcomeUpdate> = claimed
        .iter()
        .enumerate()
        .map(|(i, j)| {
            OutcomeUpdate::new(
                j.fence(),
                if i < 2 {
                    outcome(i, i)
                } else {
                    outcome(i % 6 + 2, i / 6)
                },
            )
        })
        .collect();
    record(ups).await;
    ns.check_counts("outcomes").await;

    // A stale outcome (the job is no longer RUNNING) changes nothing.
    let stale = b
        .record(
            W,
            &[OutcomeUpdate::new(
                claimed[2].fence(),
                O::Complete { result: None },
            )],
        )
        .await
        .unwrap();
    assert_eq!(stale, vec![claimed[2].id]);
    ns.check_counts("a stale outcome").await;

    // Requeue every FAILED and DEAD_LETTER job, delete some jobs.
    let all = b.list(&jobs_core::JobFilter::default()).await.unwrap();
    for j in &all {
        if matches!(j.status, JobStatus::Failed | JobStatus::DeadLetter) {
            b.requeue(j.id).await.unwrap();
        }
    }
    ns.check_counts("requeues").await;
    let all = b.list(&jobs_core::JobFilter::default()).await.unwrap();
    let mut deleted = 0;
    for j in all
        .iter()
        .filter(|j| j.status != JobStatus::Running)
        .step_by(5)
    {
        b.delete_job(j.id).await.unwrap();
        deleted += 1;
    }
    assert!(deleted > 3);
    ns.check_counts("deletes").await;

    // Leases that expire: recovery makes them RETRYING or DEAD_LETTER.
    let short = Duration::from_millis(200);
    let leased = b
        .claim(ClaimRequest::new(
            W,
            &queues(&["a", "b", "lim", "u"]),
            20,
            short,
        ))
        .await
        .unwrap()
        .jobs;
    assert!(!leased.is_empty());
    // One of them with its cancellation requested: recovery fails it.
    b.cancel(leased[0].id, &cancel).await.unwrap();
    ns.check_counts("short claims").await;
    tokio::time::sleep(short + Duration::from_millis(300)).await;
    let recovered = b.recover_expired().await.unwrap();
    assert_eq!(recovered.len(), leased.len());
    ns.check_counts("recovery").await;

    // Drain what is due to terminal states, then prune in several ways.
    loop {
        let jobs = b
            .claim(ClaimRequest::new(
                W,
                &queues(&["a", "b", "lim", "u"]),
                7,
                long,
            ))
            .await
            .unwrap()
            .jobs;
        if jobs.is_empty() {
            break;
        }
        let ups = jobs
            .iter()
            .enumerate()
            .map(|(i, j)| {
                let o = match i % 3 {
                    0 => O::Complete { result: None },
                    1 => O::Fail {
                        error: fail("no"),
                        result: None,
                    },
                    _ => O::DeadLetter {
                        error: fail("dead"),
                    },
                };
                OutcomeUpdate::new(j.fence(), o)
            })
            .collect();
        record(ups).await;
    }
    ns.check_counts("the drain").await;
    let later = chrono::Utc::now() + chrono::Duration::seconds(5);
    assert!(b.prune(&PruneRequest::new(later, 3)).await.unwrap() > 0);
    ns.check_counts("a partial prune").await;
    b.prune(&PruneRequest::new(later, 1000).queue("b"))
        .await
        .unwrap();
    ns.check_counts("a prune of one queue").await;
    b.prune(&PruneRequest::new(later, 1000).statuses([JobStatus::Failed]))
        .await
        .unwrap();
    ns.check_counts("a prune of one status").await;
    b.prune(&PruneRequest::new(later, 1000)).await.unwrap();
    ns.check_counts("a full prune").await;
    let left = counted(&b).await;
    assert!(
        left.keys()
            .all(|(_, s)| s == "SCHEDULED" || s == "PENDING" || s == "RETRYING"),
        "only waiting jobs are left: {left:?}"
    );
}

/// Concurrent producers, claimers and recorders: every script is atomic, so
/// the counter still matches a full scan.
#[tokio::test]
async fn counts_stay_exact_under_concurrent_workers() {
    use jobs_core::backend::Outcome as O;
    let Some(mut ns) = ns().await else { return };
    let b = ns.backend.clone();
    let qs = queues(&["c1", "c2"]);
    let mut tasks = Vec::new();
    for t in 0..4u32 {
        let b = b.clone();
        let qs = qs.clone();
        tasks.push(tokio::spawn(async move {
            let worker = format!("w{t}");
            for round in 0..10u32 {
                let jobs = (0..50)
                    .map(|i| {
                        NewJob::new("t", json!({ "i": i }))
                            .queue(if i % 2 == 0 { "c1" } else { "c2" })
                            .max_retries(1)
                    })
                    .collect();
                b.enqueue_batch(jobs).await.unwrap();
                let jobs = b
                    .claim(ClaimRequest::new(
                        &worker,
                        &qs,
                        40,
                        Duration::from_secs(600),
                    ))
                    .await
                    .unwrap()
                    .jobs;
                let ups: Vec<OutcomeUpdate> = jobs
                    .iter()
                    .enumerate()
                    .map(|(i, j)| {
                        let o = match (i + round as usize) % 4 {
                            0 => O::Complete { result: None },
                            1 => O::Retry {
                                delay: Duration::ZERO,
                                error: fail("again"),
                            },
                            2 => O::Release,
                            _ => O::DeadLetter {
                                error: fail("dead"),
                            },
                        };
                        OutcomeUpdate::new(j.fence(), o)
                    })
                    .collect();
                b.record(&worker, &ups).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    ns.check_counts("concurrent workers").await;
    let total: u64 = counted(&b).await.values().sum();
    assert_eq!(total, 4 * 10 * 50);
}

/// A namespace an older version wrote may hold counter fields at zero (it
/// never deleted them): `counts()` leaves them out, and a field goes once its
/// pair next comes down to zero.
#[tokio::test]
async fn counter_fields_left_at_zero_by_an_older_version() {
    use jobs_core::backend::Outcome;
    let Some(mut ns) = ns().await else { return };
    let b = ns.backend.clone();
    let counts_key = ns.key("counts");
    let _: () = redis::cmd("HSET")
        .arg(&counts_key)
        .arg("RUNNING old")
        .arg(0)
        .arg("PENDING gone")
        .arg(0)
        .query_async(&mut ns.raw)
        .await
        .unwrap();
    assert!(b.counts().await.unwrap().is_empty());
    b.enqueue_batch(vec![NewJob::new("t", json!({})).queue("old")])
        .await
        .unwrap();
    let job = b
        .claim(ClaimRequest::new(
            "w",
            &queues(&["old"]),
            1,
            Duration::from_secs(60),
        ))
        .await
        .unwrap()
        .jobs
        .remove(0);
    b.record(
        "w",
        &[OutcomeUpdate::new(
            job.fence(),
            Outcome::Complete { result: None },
        )],
    )
    .await
    .unwrap();
    let fields: Vec<String> = redis::cmd("HKEYS")
        .arg(&counts_key)
        .query_async(&mut ns.raw)
        .await
        .unwrap();
    assert_eq!(
        set(fields),
        set(["COMPLETED old".to_owned(), "PENDING gone".to_owned()]),
        "RUNNING and PENDING of `old` came down to zero and went; the untouched pair stays"
    );
    let counts = counted(&b).await;
    assert_eq!(
        counts,
        [(("old".to_owned(), "COMPLETED".to_owned()), 1)].into()
    );
}

/// Workflows: a held step waits in its delayed set at the far-future
/// `held_until` (stored exactly), and its release moves it to the ready set
/// with counts following. Settled edges live in `{P}:settled:<child>`, which
/// goes with the child however it goes (deleted, pruned, dropped on
/// completion); a settle for a child that no longer exists leaves a set that
/// expires. A `get_many` bigger than one script call keeps order.
#[tokio::test]
async fn workflow_keys_follow_their_jobs() {
    use jobs_core::workflow::held_until;
    use jobs_core::{CancelRequest, JobId, PruneRequest};
    let Some(mut ns) = ns().await else { return };
    let b = ns.backend.clone();
    let held = |q: &str| NewJob::new("wf", json!({})).queue(q).run_at(held_until());
    let ids: Vec<JobId> = b
        .enqueue_batch(vec![held("wf"), held("wf"), held("wf")])
        .await
        .unwrap()
        .iter()
        .map(|e| e.id())
        .collect();
    let (pruned, dropped, deleted) = (ids[0], ids[1], ids[2]);
    let held_us = held_until().timestamp_micros();
    assert_eq!(ns.hget(pruned, "ra").await, Some(held_us.to_string()));
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg(ns.key("delayed:wf"))
        .arg(format!("{held_us:017}0000000000000001{pruned}"))
        .query_async(&mut ns.raw)
        .await
        .unwrap();
    assert_eq!(score, Some(held_us as f64), "held in the delayed set");
    ns.check_counts("enqueueing held steps").await;

    let parent = JobId::new();
    assert_eq!(
        b.settle_dependencies(parent, &ids).await.unwrap(),
        vec![1, 1, 1]
    );
    let settled = |id: JobId| ns.key(&format!("settled:{id}"));
    let (k_pruned, k_dropped, k_deleted) = (settled(pruned), settled(dropped), settled(deleted));
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(&k_pruned)
        .query_async(&mut ns.raw)
        .await
        .unwrap();
    assert_eq!(members, vec![parent.to_string()]);
    let ttl: i64 = redis::cmd("TTL")
        .arg(&k_pruned)
        .query_async(&mut ns.raw)
        .await
        .unwrap();
    assert_eq!(ttl, -1, "the set of a job that exists does not expire");

    // Released: ready, PENDING, counted so.
    assert_eq!(
        b.release_held(&[dropped, pruned]).await.unwrap(),
        vec![dropped, pruned]
    );
    let ready: i64 = redis::cmd("ZCARD")
        .arg(ns.key("ready:wf"))
        .query_async(&mut ns.raw)
        .await
        .unwrap();
    assert_eq!(ready, 2);
    ns.check_counts("a release").await;

    // Dropped on completion.
    let qs = queues(&["wf"]);
    let claimed = b
        .claim(ClaimRequest::new("w", &qs, 2, Duration::from_secs(60)))
        .await
        .unwrap()
        .jobs;
    assert_eq!(claimed.len(), 2);
    let ups: Vec<OutcomeUpdate> = claimed
        .iter()
        .map(|j| {
            let o = if j.id == dropped {
                Outcome::CompleteAndDelete
            } else {
                Outcome::Complete { result: None }
            };
            OutcomeUpdate::new(j.fence(), o)
        })
        .collect();
    assert!(b.record("w", &ups).await.unwrap().is_empty());
    // Pruned.
    let later = chrono::Utc::now() + chrono::Duration::seconds(5);
    assert_eq!(b.prune(&PruneRequest::new(later, 10)).await.unwrap(), 1);
    // Deleted.
    b.cancel(deleted, &CancelRequest::by("test")).await.unwrap();
    b.delete_job(deleted).await.unwrap();
    let left: i64 = redis::cmd("EXISTS")
        .arg(&k_pruned)
        .arg(&k_dropped)
        .arg(&k_deleted)
        .query_async(&mut ns.raw)
        .await
        .unwrap();
    assert_eq!(left, 0, "settled edges go with their job");
    ns.check_counts("completion, prune and delete").await;

    // A child that is gone: its new set expires.
    assert_eq!(
        b.settle_dependencies(parent, &[deleted]).await.unwrap(),
        vec![1]
    );
    let ttl: i64 = redis::cmd("TTL")
        .arg(&k_deleted)
        .query_async(&mut ns.raw)
        .await
        .unwrap();
    assert!(ttl > 0, "expires: {ttl}");

    // More ids than one `get` call reads, with missing ones, in order.
    let jobs: Vec<NewJob> = (0..700)
        .map(|i| NewJob::new("g", json!({ "i": i })))
        .collect();
    let stored: Vec<JobId> = b
        .enqueue_batch(jobs)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id())
        .collect();
    let mut ask = Vec::new();
    for (i, id) in stored.iter().enumerate() {
        ask.push(*id);
        if i % 100 == 0 {
            ask.push(JobId::new());
        }
    }
    ask.extend(stored.iter().rev().take(300));
    let got = b.get_many(&ask).await.unwrap();
    assert_eq!(got.len(), ask.len());
    for (want, job) in ask.iter().zip(&got) {
        match job {
            Some(job) => {
                assert_eq!(job.id, *want);
                let i = stored.iter().position(|s| s == want).unwrap();
                assert_eq!(job.payload, json!({ "i": i }));
            }
            None => assert!(!stored.contains(want)),
        }
    }
    assert_eq!(got.iter().filter(|j| j.is_none()).count(), 7);
}

fn set<T: Ord>(v: impl IntoIterator<Item = T>) -> std::collections::BTreeSet<T> {
    v.into_iter().collect()
}
