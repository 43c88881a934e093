//! Job lists: text search, sort orders, keyset paging with a cursor.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use jobs_core::backend::Outcome;
use jobs_core::{Error, Job, JobCursor, JobFilter, JobId, JobPage, JobSort, JobStatus, NewJob};
use serde_json::json;

use super::support::{claim, complete, enqueue, failure, get, ids_of, record, set, LONG, W1};
use super::Backend;

async fn page(q: &Backend, filter: &JobFilter) -> JobPage {
    q.list_page(filter).await.expect("list_page")
}

/// Every match of `filter`, page by page through the cursor.
async fn walk(q: &Backend, mut filter: JobFilter) -> Vec<JobId> {
    let mut out = Vec::new();
    for _ in 0..1000 {
        let p = page(q, &filter).await;
        out.extend(ids_of(&p.jobs));
        match p.next {
            Some(next) => filter.after = Some(next),
            None => return out,
        }
    }
    panic!("the walk did not end after 1000 pages");
}

/// A search matches the payload's text, the latest error, the error history
/// and the job type, in any case of ASCII letters; not the queue name.
pub async fn search_hits_payload_errors_and_type_in_any_case(q: Backend) {
    let payload = enqueue(
        &q,
        NewJob::new("mail.send", json!({"to": "Ada.Lovelace@Example.com"})).queue("needle-q"),
    )
    .await;
    let typed = enqueue(&q, NewJob::new("Invoice.NEEDLE", json!({"n": 1}))).await;
    let errored = enqueue(&q, NewJob::new("mail.send", json!({"to": "x"}))).await;
    let history = enqueue(&q, NewJob::new("mail.send", json!({"to": "y"}))).await;
    let unicode = enqueue(&q, NewJob::new("mail.send", json!({"city": "Zürich"}))).await;
    let _other = enqueue(
        &q,
        NewJob::new("mail.send", json!({"to": "z"})).queue("needle-q"),
    )
    .await;

    let jobs = claim(&q, W1, &["default"], 10, LONG).await;
    let job = |id: JobId| jobs.iter().find(|j| j.id == id).expect("claimed").clone();
    // `errored`: its latest error says it; `history`: an earlier one did.
    let lost = record(
        &q,
        W1,
        job(errored).fence(),
        Outcome::Fail {
            error: failure("SMTP said: Mailbox FULL", false),
            result: None,
        },
    )
    .await;
    assert!(lost.is_empty());
    let lost = record(
        &q,
        W1,
        job(history).fence(),
        Outcome::Retry {
            delay: Duration::ZERO,
            error: failure("connection reset by PEER", true),
        },
    )
    .await;
    assert!(lost.is_empty());
    let again = claim(&q, W1, &["default"], 10, LONG).await;
    let again = again.iter().find(|j| j.id == history).expect("retried");
    let lost = record(
        &q,
        W1,
        again.fence(),
        Outcome::DeadLetter {
            error: failure("gave up", true),
        },
    )
    .await;
    assert!(lost.is_empty());

    let found = |term: &str| {
        let q = q.clone();
        let f = JobFilter::default().search(term);
        async move { set(&walk(&q, f).await) }
    };
    assert_eq!(found("ada.lovelace@example").await, set(&[payload]));
    assert_eq!(found("LOVELACE").await, set(&[payload]));
    assert_eq!(found("invoice.needle").await, set(&[typed]));
    assert_eq!(found("mailbox full").await, set(&[errored]));
    assert_eq!(found("Reset By Peer").await, set(&[history]));
    assert_eq!(found("Zürich").await, set(&[unicode]));
    assert_eq!(found("needle").await, set(&[typed]), "not the queue name");
    assert_eq!(found("no such text anywhere").await, set::<JobId>(&[]));
    // The older `list` takes a search too (one page of it).
    let listed = q
        .list(&JobFilter::default().search("MAILBOX"))
        .await
        .expect("list");
    assert_eq!(ids_of(&listed), vec![errored]);
    // An empty search is no search.
    assert_eq!(walk(&q, JobFilter::default().search("")).await.len(), 6);
}

/// Each order lists the right jobs in the right order, ties broken as
/// documented: enqueue order both ways, due time then enqueue order (waiting
/// jobs only), finish time then id, both descending (finished jobs only).
pub async fn each_sort_order_is_right_with_ties_broken(q: Backend) {
    let base = Utc::now().trunc_subsecs(6) + chrono::Duration::hours(1);
    let at = |m: i64| base + chrono::Duration::minutes(m);
    // Due times with ties (enqueue order decides among equal ones).
    let due_in = [3, 1, 3, 2, 1, 3];
    let mut waiting = Vec::new();
    for (i, m) in due_in.iter().enumerate() {
        let id = enqueue(
            &q,
            NewJob::new("sort.job", json!({ "i": i })).run_at(at(*m)),
        )
        .await;
        waiting.push((*m, id));
    }
    // Finished ones, several per record batch (equal finish times are likely).
    let done_ids: Vec<JobId> = {
        let jobs: Vec<NewJob> = (0..6)
            .map(|i| NewJob::new("sort.done", json!({ "d": i })).queue("done"))
            .collect();
        q.enqueue_batch(jobs)
            .await
            .expect("enqueue")
            .iter()
            .map(|e| e.id())
            .collect()
    };
    let claimed = claim(&q, W1, &["done"], 6, LONG).await;
    assert_eq!(claimed.len(), 6);
    let updates: Vec<_> = claimed
        .iter()
        .map(|j| {
            let outcome = if j.id == done_ids[2] {
                Outcome::Fail {
                    error: failure("no", false),
                    result: None,
                }
            } else {
                Outcome::Complete { result: None }
            };
            jobs_core::backend::OutcomeUpdate::new(j.fence(), outcome)
        })
        .collect();
    assert!(q
        .record(W1, &updates[..3])
        .await
        .expect("record")
        .is_empty());
    assert!(q
        .record(W1, &updates[3..])
        .await
        .expect("record")
        .is_empty());
    let running = enqueue(&q, NewJob::new("sort.run", json!({})).queue("run")).await;
    assert_eq!(claim(&q, W1, &["run"], 1, LONG).await.len(), 1);

    let mut all = Vec::new();
    for (_, id) in &waiting {
        all.push(*id);
    }
    all.extend(&done_ids);
    all.push(running);
    let mut newest = all.clone();
    newest.reverse();

    let mut due = waiting.clone();
    due.sort_by_key(|(m, _)| *m); // stable: enqueue order among equal times
    let due: Vec<JobId> = due.into_iter().map(|(_, id)| id).collect();

    let mut finished: Vec<Job> = Vec::new();
    for id in &done_ids {
        finished.push(get(&q, *id).await);
    }
    let key = |j: &Job| (j.completed_at.map(|t| t.timestamp_micros()), j.id);
    finished.sort_by_key(|j| std::cmp::Reverse(key(j)));
    let finished = ids_of(&finished);

    for (sort, want) in [
        (JobSort::Oldest, all),
        (JobSort::Newest, newest),
        (JobSort::DueSoonest, due),
        (JobSort::RecentlyFinished, finished),
    ] {
        for limit in [100, 1, 2, 5] {
            let got = walk(&q, JobFilter::default().sort(sort).limit(limit)).await;
            assert_eq!(got, want, "order {sort}, pages of {limit}");
        }
    }
    // A status filter narrows an order to its part.
    let failed = walk(
        &q,
        JobFilter::default()
            .sort(JobSort::RecentlyFinished)
            .status(JobStatus::Failed),
    )
    .await;
    assert_eq!(failed, vec![done_ids[2]]);
    let none = walk(
        &q,
        JobFilter::default()
            .sort(JobSort::DueSoonest)
            .status(JobStatus::Running),
    )
    .await;
    assert!(none.is_empty(), "running jobs are not in the due order");
}

/// Walking N jobs page by page returns each exactly once, in order, though
/// jobs are enqueued between the pages (oldest first: they come at the end;
/// newest first: they are before the start and not listed).
pub async fn a_cursor_walk_returns_each_job_once_while_jobs_arrive(q: Backend) {
    let first: Vec<JobId> = enqueue_many(&q, 25, "walk").await;
    for sort in [JobSort::Oldest, JobSort::Newest] {
        let mut filter = JobFilter::default().queue("walk").sort(sort).limit(4);
        let mut seen = Vec::new();
        let mut added = Vec::new();
        let before = all_of(&q, sort).await;
        loop {
            let p = page(&q, &filter).await;
            assert!(p.jobs.len() <= 4);
            seen.extend(ids_of(&p.jobs));
            match p.next {
                Some(next) => {
                    // Someone enqueues between pages.
                    added.extend(enqueue_many(&q, 3, "walk").await);
                    // The cursor survives a trip through a URL.
                    filter.after = Some(next.to_string().parse().expect("cursor parses"));
                }
                None => break,
            }
            assert!(seen.len() <= 1000, "the walk does not end");
        }
        assert_eq!(set(&seen).len(), seen.len(), "no job twice ({sort})");
        match sort {
            JobSort::Oldest => {
                // Everything there at the start, in order, then every arrival (they came before the end).
                assert_eq!(&seen[..before.len()], &before[..]);
                assert_eq!(set(&seen[before.len()..]), set(&added));
            }
            _ => assert_eq!(
                seen, before,
                "newest first: exactly what was there, newest first"
            ),
        }
    }
    assert!(first.len() == 25);
}

async fn enqueue_many(q: &Backend, n: usize, queue: &str) -> Vec<JobId> {
    let jobs: Vec<NewJob> = (0..n)
        .map(|i| NewJob::new("walk.job", json!({ "w": i })).queue(queue))
        .collect();
    q.enqueue_batch(jobs)
        .await
        .expect("enqueue")
        .iter()
        .map(|e| e.id())
        .collect()
}

async fn all_of(q: &Backend, sort: JobSort) -> Vec<JobId> {
    walk(q, JobFilter::default().queue("walk").sort(sort).limit(1000)).await
}

/// A malformed cursor, one of another order, or a cursor with an offset is
/// refused with `InvalidFilter`, and nothing changes.
pub async fn a_malformed_cursor_is_a_clear_error(q: Backend) {
    enqueue(&q, NewJob::new("c.job", json!({}))).await;
    for bad in ["", "zzz", "o", "oabc", "d12", "f1.notanid", "n-"] {
        let err = bad.parse::<JobCursor>().expect_err(bad);
        assert!(matches!(err, Error::InvalidFilter(_)), "{bad}: {err}");
        assert!(err.to_string().contains("cursor"), "{err}");
    }
    let p = page(&q, &JobFilter::default().sort(JobSort::Newest).limit(1)).await;
    assert_eq!(p.jobs.len(), 1);
    // A cursor made for the newest-first order, used for another order.
    let newest = JobCursor::seq(JobSort::Newest, 1);
    for sort in [
        JobSort::Oldest,
        JobSort::DueSoonest,
        JobSort::RecentlyFinished,
    ] {
        let err = q
            .list_page(&JobFilter::default().sort(sort).after(newest))
            .await
            .expect_err("a cursor of another order");
        assert!(matches!(err, Error::InvalidFilter(_)), "{err}");
    }
    let err = q
        .list_page(
            &JobFilter::default()
                .sort(JobSort::Newest)
                .after(newest)
                .offset(3),
        )
        .await
        .expect_err("cursor and offset");
    assert!(matches!(err, Error::InvalidFilter(_)), "{err}");
    assert_eq!(q.list(&JobFilter::default()).await.expect("list").len(), 1);
}

/// Filters combine (queue, status, type, cancelled, search, order), and a
/// page that reached its scan limit says so and goes on from where it
/// stopped: a walk still finds every match once.
pub async fn filters_combine_and_a_scan_limited_walk_finds_every_match(q: Backend) {
    let mut rare = Vec::new();
    for i in 0..60 {
        let hit = i % 13 == 5;
        let job = NewJob::new(
            if i % 2 == 0 { "even.job" } else { "odd.job" },
            json!({ "i": i, "tag": if hit { "Rare-Marker" } else { "common" } }),
        )
        .queue(if i % 3 == 0 { "q3" } else { "qx" });
        let id = enqueue(&q, job).await;
        if hit {
            rare.push((i, id));
        }
    }
    let rare_ids: Vec<JobId> = rare.iter().map(|(_, id)| *id).collect();
    // i = 5, 18, 31, 44, 57.
    assert_eq!(rare_ids.len(), 5);

    // A scan limit of 7 rows per page: pages end early, and say so.
    let filter = JobFilter::default()
        .search("rare-marker")
        .scan_limit(7)
        .limit(10);
    let first = page(&q, &filter).await;
    assert!(first.scan_limited, "7 rows hold one match of five");
    assert!(first.next.is_some());
    assert_eq!(ids_of(&first.jobs), vec![rare_ids[0]]);
    assert_eq!(walk(&q, filter.clone()).await, rare_ids);
    assert_eq!(
        walk(&q, filter.clone().sort(JobSort::Newest)).await,
        rare_ids.iter().rev().copied().collect::<Vec<_>>()
    );
    // Without a limit in the way the same walk takes one page.
    let whole = page(&q, &JobFilter::default().search("RARE-marker")).await;
    assert_eq!(ids_of(&whole.jobs), rare_ids);
    assert!(!whole.scan_limited);
    assert!(whole.next.is_none());

    // Combined: search + type + queue.
    let pick = |keep: &dyn Fn(i32) -> bool| {
        rare.iter()
            .filter(|(i, _)| keep(*i))
            .map(|(_, id)| *id)
            .collect::<Vec<_>>()
    };
    let even = JobFilter::default().search("rare").job_type("even.job");
    assert_eq!(walk(&q, even.clone()).await, pick(&|i| i % 2 == 0));
    assert_eq!(
        walk(&q, even.clone().queue("qx")).await,
        pick(&|i| i % 2 == 0 && i % 3 != 0)
    );
    assert_eq!(
        walk(&q, even.clone().queue("qx").scan_limit(3).limit(1)).await,
        pick(&|i| i % 2 == 0 && i % 3 != 0)
    );
    // Status and cancelled: cancel one rare job.
    q.cancel(rare_ids[1], &jobs_core::CancelRequest::default())
        .await
        .expect("cancel");
    let failed = JobFilter::default()
        .search("rare")
        .status(JobStatus::Failed);
    assert_eq!(walk(&q, failed.clone()).await, vec![rare_ids[1]]);
    assert_eq!(walk(&q, failed.cancelled(true)).await, vec![rare_ids[1]]);
    let pending = JobFilter::default()
        .search("rare")
        .status(JobStatus::Pending);
    let mut rest = rare_ids.clone();
    rest.remove(1);
    assert_eq!(walk(&q, pending.clone()).await, rest);
    assert_eq!(
        walk(&q, pending.clone().cancelled(true)).await,
        Vec::<JobId>::new()
    );
    assert_eq!(
        walk(&q, pending.sort(JobSort::DueSoonest).queue("q3")).await,
        pick(&|i| i % 3 == 0 && i != 18)
    );
    // The first page with an offset skips that many matches.
    let skipped = page(&q, &JobFilter::default().search("rare").offset(2)).await;
    assert_eq!(ids_of(&skipped.jobs), rare_ids[2..].to_vec());
    let done = claim(&q, W1, &["qx"], 1, LONG).await;
    complete(&q, W1, &done[0]).await;
    let finished = walk(
        &q,
        JobFilter::default()
            .sort(JobSort::RecentlyFinished)
            .queue("qx"),
    )
    .await;
    assert_eq!(finished, vec![done[0].id]);
}
