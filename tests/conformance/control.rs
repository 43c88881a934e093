//! Operator controls and cluster coordination: pausing queues, cancelling
//! running jobs, snoozes, progress, the worker registry, leadership and the
//! schedules' stored state.

use std::time::Duration;

use chrono::Utc;
use jobs_core::backend::{Fence, LeaseToken, Outcome};
use jobs_core::{
    CancelRequest, JobFilter, JobStatus, Leader, NewJob, Progress, PruneRequest, ScheduleState,
    WorkerInfo,
};
use serde_json::json;

use super::support::{
    claim, claim_one, complete, enqueue, failure, get, list, queues, record, LONG, W1, W2,
};
use super::Backend;

/// A paused queue is not claimed by anyone until it is resumed; other queues
/// go on; resuming wakes a listener at once.
pub async fn a_paused_queue_is_not_claimed_until_resumed(q: Backend) {
    let p = enqueue(&q, NewJob::new("t", json!({})).queue("p")).await;
    let o = enqueue(&q, NewJob::new("t", json!({})).queue("o")).await;
    q.pause_queue("p").await.expect("pause");
    q.pause_queue("p").await.expect("pausing twice is fine");
    assert_eq!(
        q.paused_queues().await.expect("paused"),
        vec!["p".to_owned()]
    );
    let got = claim(&q, W1, &["p", "o"], 10, LONG).await;
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), vec![o]);
    assert!(claim(&q, W1, &["p"], 10, LONG).await.is_empty());

    let names = queues(&["p"]);
    let mut listener = q.listener(&names).await.expect("listener");
    let resumer = {
        let q = q.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            q.resume_queue("p").await.expect("resume");
        })
    };
    let started = std::time::Instant::now();
    listener.wait(Duration::from_secs(10)).await;
    resumer.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "resuming wakes a listener: {:?}",
        started.elapsed()
    );
    assert!(q.paused_queues().await.expect("paused").is_empty());
    let got = claim(&q, W1, &["p"], 10, LONG).await;
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), vec![p]);
}

/// Cancelling a running job marks it at once (it stays RUNNING); its worker
/// learns from the heartbeat's reply and records `Cancel`: FAILED, marked,
/// its error saying who cancelled it and why. A worker that dies instead
/// leaves it FAILED at recovery, not retried; one that completes it anyway
/// completes it; a retry asked for after the cancellation is refused.
pub async fn a_running_job_is_cancelled_through_its_worker(q: Backend) {
    let id = enqueue(&q, NewJob::new("t", json!({}))).await;
    let job = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("claimed");
    let request = CancelRequest::by("alice").reason("duplicate order");
    let c = q.cancel(id, &request).await.expect("cancel a running job");
    assert_eq!(c.status, JobStatus::Running);
    assert!(c.cancelled_at.is_some());
    let reply = q
        .heartbeat(W1, &[job.fence()], LONG)
        .await
        .expect("heartbeat");
    assert!(reply.lost.is_empty());
    assert_eq!(reply.cancel, vec![id], "the heartbeat tells its worker");
    let lost = record(
        &q,
        W1,
        job.fence(),
        Outcome::Cancel {
            error: failure("cancelled while running: the handler stopped", false),
        },
    )
    .await;
    assert!(lost.is_empty());
    let j = get(&q, id).await;
    assert_eq!(j.status, JobStatus::Failed);
    assert!(j.cancelled_at.is_some());
    assert_eq!(
        j.error_message.as_deref(),
        Some("cancelled by alice: duplicate order")
    );
    assert_eq!(
        list(&q, JobFilter::default().cancelled(true)).await,
        vec![id]
    );

    // Its worker died: recovery makes it FAILED, not RETRYING.
    let dead = enqueue(&q, NewJob::new("t", json!({})).queue("dead")).await;
    claim_one(&q, W2, &["dead"], Duration::from_millis(200))
        .await
        .expect("claimed");
    q.cancel(dead, &CancelRequest::default())
        .await
        .expect("cancel");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let recovered = q.recover_expired().await.expect("recover");
    let r = recovered
        .iter()
        .find(|r| r.job.id == dead)
        .expect("recovered");
    assert_eq!(r.now, JobStatus::Failed);
    let j = get(&q, dead).await;
    assert_eq!(j.status, JobStatus::Failed);
    assert!(j.cancelled_at.is_some());

    // It finished before the cancellation reached it: completed, unmarked.
    let late = enqueue(&q, NewJob::new("t", json!({})).queue("late")).await;
    let job = claim_one(&q, W1, &["late"], LONG).await.expect("claimed");
    q.cancel(late, &CancelRequest::default())
        .await
        .expect("cancel");
    complete(&q, W1, &job).await;
    let j = get(&q, late).await;
    assert_eq!(j.status, JobStatus::Completed);
    assert_eq!(j.cancelled_at, None);

    // A retry after the cancellation is not made.
    let retry = enqueue(&q, NewJob::new("t", json!({})).queue("retry")).await;
    let job = claim_one(&q, W1, &["retry"], LONG).await.expect("claimed");
    q.cancel(retry, &CancelRequest::default())
        .await
        .expect("cancel");
    let lost = record(
        &q,
        W1,
        job.fence(),
        Outcome::Retry {
            delay: Duration::ZERO,
            error: failure("flaky", true),
        },
    )
    .await;
    assert!(lost.is_empty());
    let j = get(&q, retry).await;
    assert_eq!(
        j.status,
        JobStatus::Failed,
        "a cancelled job is not retried"
    );
    assert!(j.cancelled_at.is_some());
}

/// A listener hears that a running job was cancelled, so its worker can
/// heartbeat at once instead of at its next interval.
pub async fn a_listener_hears_cancellations(q: Backend) {
    let id = enqueue(&q, NewJob::new("t", json!({})).queue("c")).await;
    claim_one(&q, W1, &["c"], LONG).await.expect("claimed");
    let names = queues(&["elsewhere"]);
    let mut listener = q.listener(&names).await.expect("listener");
    assert!(!listener.take_cancel_signal());
    let canceller = {
        let q = q.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            q.cancel(id, &CancelRequest::default())
                .await
                .expect("cancel");
        })
    };
    let started = std::time::Instant::now();
    let mut heard = false;
    while started.elapsed() < Duration::from_secs(5) && !heard {
        listener.wait(Duration::from_millis(500)).await;
        heard = listener.take_cancel_signal();
    }
    canceller.await.unwrap();
    assert!(heard, "no cancellation signal within 5 s");
    assert!(!listener.take_cancel_signal(), "a signal is taken once");
}

/// A snooze puts the job back to waiting until its delay passed (backend
/// clock): not a failure, no retry spent, counted in `snoozes`.
pub async fn a_snooze_waits_without_spending_a_retry(q: Backend) {
    let id = enqueue(&q, NewJob::new("t", json!({}))).await;
    let job = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("claimed");
    let lost = record(
        &q,
        W1,
        job.fence(),
        Outcome::Snooze {
            delay: Duration::from_millis(400),
        },
    )
    .await;
    assert!(lost.is_empty());
    let j = get(&q, id).await;
    assert_eq!(j.status, JobStatus::Scheduled);
    assert_eq!((j.snoozes, j.retry_count, j.error_count), (1, 0, 0));
    assert!(j.errors.is_empty() && j.error_message.is_none());
    assert_eq!(j.lease_token, None);
    assert!(
        claim_one(&q, W1, &["default"], LONG).await.is_none(),
        "not before its time"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let again = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("due again");
    assert_eq!((again.id, again.attempt, again.snoozes), (id, 2, 1));
}

/// Progress is stored for a job running under the fence (a stale fence's
/// report is dropped) and kept after it finishes.
pub async fn progress_is_stored_under_its_fence(q: Backend) {
    let id = enqueue(&q, NewJob::new("t", json!({}))).await;
    let job = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("claimed");
    let half = Progress::new(Some(50.0), Some(json!({"step": "render"})));
    q.record_progress(&[(job.fence(), half.clone())])
        .await
        .expect("progress");
    let stale = Fence::new(id, job.attempt, LeaseToken::random());
    q.record_progress(&[(stale, Progress::new(Some(99.0), None))])
        .await
        .expect("a stale report is dropped, not an error");
    let j = get(&q, id).await;
    let p = j.progress.expect("stored");
    assert_eq!(p.percent, Some(50.0));
    assert_eq!(p.data, Some(json!({"step": "render"})));
    complete(&q, W1, &job).await;
    assert_eq!(
        get(&q, id).await.progress.map(|p| p.percent),
        Some(Some(50.0))
    );
}

/// Pruning honours the statuses and the queue asked for.
pub async fn prune_honours_statuses_and_queue(q: Backend) {
    let mut ids = Vec::new();
    for queue in ["q1", "q2"] {
        for fail in [false, true] {
            let id = enqueue(&q, NewJob::new("t", json!({})).queue(queue)).await;
            let job = claim_one(&q, W1, &[queue], LONG).await.expect("claimed");
            let outcome = if fail {
                Outcome::Fail {
                    error: failure("no", false),
                    result: None,
                }
            } else {
                Outcome::Complete { result: None }
            };
            assert!(record(&q, W1, job.fence(), outcome).await.is_empty());
            ids.push((queue, fail, id));
        }
    }
    let later = Utc::now() + chrono::Duration::seconds(10);
    let req = PruneRequest::new(later, 100)
        .statuses([JobStatus::Failed])
        .queue("q1");
    assert_eq!(q.prune(&req).await.expect("prune"), 1);
    for (queue, fail, id) in ids {
        let gone = queue == "q1" && fail;
        assert_eq!(
            q.get(id).await.expect("get").is_none(),
            gone,
            "{queue} {fail}"
        );
    }
}

/// Workers register with a time to live; expired entries disappear; a
/// refresh updates the entry; a deregistered worker is gone at once.
pub async fn workers_register_refresh_and_expire(q: Backend) {
    let mut a = WorkerInfo::new("worker-a");
    a.queues = queues(&["emails", "default"]);
    a.concurrency = 8;
    a.host = "host-a".into();
    let b = WorkerInfo::new("worker-b");
    q.register_worker(&a, Duration::from_secs(60))
        .await
        .expect("register");
    q.register_worker(&b, Duration::from_millis(300))
        .await
        .expect("register");
    let ids = |ws: Vec<WorkerInfo>| ws.into_iter().map(|w| w.id).collect::<Vec<_>>();
    assert_eq!(
        ids(q.workers().await.expect("workers")),
        vec!["worker-a", "worker-b"]
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let live = q.workers().await.expect("workers");
    assert_eq!(
        ids(live.clone()),
        vec!["worker-a"],
        "an entry not refreshed expires"
    );
    assert_eq!(live[0].queues, queues(&["emails", "default"]));
    assert_eq!((live[0].concurrency, live[0].host.as_str()), (8, "host-a"));
    let first_seen = live[0].last_seen;

    a.running = 3;
    q.register_worker(&a, Duration::from_secs(60))
        .await
        .expect("refresh");
    let live = q.workers().await.expect("workers");
    assert_eq!(live[0].running, 3);
    assert!(live[0].last_seen >= first_seen);
    q.deregister_worker("worker-a").await.expect("deregister");
    assert!(q.workers().await.expect("workers").is_empty());
}

/// One holder of a role at a time, even under a hammer of candidates; the
/// holder renews; others get it once its lease has run out, or at once after
/// it resigns.
pub async fn one_leader_at_a_time_and_handover(q: Backend) {
    let ttl = Duration::from_millis(600);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let me = format!("candidate-{i}");
            let won = q.try_lead("maintainer", &me, ttl).await.expect("try_lead");
            (me, won)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (me, won) = t.await.unwrap();
        if won {
            winners.push(me);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one leader: {winners:?}");
    let leader = winners.remove(0);
    let other = if leader == "candidate-0" {
        "candidate-1"
    } else {
        "candidate-0"
    };
    assert!(q.try_lead("maintainer", &leader, ttl).await.expect("renew"));
    assert!(!q.try_lead("maintainer", other, ttl).await.expect("try"));
    let held: Option<Leader> = q.leader("maintainer").await.expect("leader");
    assert_eq!(held.map(|l| l.holder), Some(leader.clone()));
    assert!(q
        .try_lead("other-role", other, ttl)
        .await
        .expect("roles are separate"));

    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    assert_eq!(q.leader("maintainer").await.expect("leader"), None);
    assert!(q
        .try_lead("maintainer", other, ttl)
        .await
        .expect("hand over"));
    q.resign("maintainer", &leader)
        .await
        .expect("resign of a non-holder does nothing");
    assert_eq!(
        q.leader("maintainer")
            .await
            .expect("leader")
            .map(|l| l.holder),
        Some(other.to_owned())
    );
    q.resign("maintainer", other).await.expect("resign");
    assert!(q
        .try_lead("maintainer", &leader, ttl)
        .await
        .expect("free at once"));
}

/// Schedules' states are stored by name and replaced on save.
pub async fn schedules_are_saved_by_name(q: Backend) {
    let mut daily = ScheduleState::new("daily-report", "0 3 * * *", "Europe/Berlin");
    let hourly = ScheduleState::new("hourly", "0 * * * *", "UTC");
    q.save_schedule(&daily).await.expect("save");
    q.save_schedule(&hourly).await.expect("save");
    let tick = Utc::now();
    daily.last_tick = Some(tick);
    daily.next_tick = Some(tick + chrono::Duration::days(1));
    q.save_schedule(&daily).await.expect("replace");
    let all = q.schedules().await.expect("schedules");
    assert_eq!(
        all.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        vec!["daily-report", "hourly"]
    );
    assert_eq!(all[0].cron, "0 3 * * *");
    assert_eq!(all[0].timezone, "Europe/Berlin");
    let stored_tick = all[0].last_tick.expect("stored");
    assert!(
        (stored_tick - tick).num_milliseconds().abs() <= 1,
        "{stored_tick} vs {tick}"
    );
    assert_eq!(all[1].last_tick, None);
}
