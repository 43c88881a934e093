//! The memory backend's limit: the manager's skeleton with no framework — the
//! least a worker with the manager's guarantees does per job, written
//! directly on tokio, so W1 on memory can be printed as a percentage of it
//! (as each database backend's W1 is printed against its bare SQL or
//! commands).
//!
//! What it keeps of the manager's shape: jobs claimed in batches for the free
//! slots only (never more than the concurrency), from a map under one lock,
//! each claimed job cloned out of it with a new status; one long-lived task
//! per slot that runs them, taking the next waiting job when its own ends
//! (the manager's slot tasks); a handler future per job; each outcome handed
//! to a recorder on a thread of its own (which the manager needs so that
//! handlers blocking the runtime's threads never stop it from recording),
//! which writes them in batches under the same lock; at most twice the
//! concurrency of outcomes not yet recorded; and the claim's wait for a
//! full batch while draining a backlog (at most 1 ms). What it leaves out is
//! what the manager adds: leases, tokens and heartbeats, the table of held
//! jobs, cancellation tokens, time limits, panic guards, the watchdog,
//! tracing spans, metrics, payloads handed over as JSON, retries, and every
//! index the memory backend keeps (listing, counts, uniqueness, limits).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
struct Job {
    id: u64,
    queue: String,
    payload: serde_json::Value,
    status: u8,
}

struct Store {
    ready: VecDeque<u64>,
    jobs: HashMap<u64, Job>,
}

/// Claimed jobs waiting for a slot task.
#[derive(Default)]
struct Waiting {
    jobs: Mutex<VecDeque<(Job, OwnedSemaphorePermit)>>,
    ready: Notify,
    closed: AtomicBool,
}

async fn handler(job: &Job) -> Result<(), String> {
    if job.payload.is_null() || job.queue.is_empty() {
        return Err("no payload".to_owned());
    }
    Ok(())
}

/// Where the skeleton's recorder runs.
#[derive(Clone, Copy)]
enum Recorder {
    /// On a thread of its own, as the manager's (the limit).
    Thread,
    /// As a task on the bench's runtime, which the manager's recorder may
    /// not be (a handler blocking the runtime's threads would hold up the
    /// recording of every other job's outcome): measured beside the limit,
    /// to show what that thread costs on this machine.
    Task,
}

/// Drains `n` jobs at `concurrency`; returns jobs per second. Runs on the
/// bench's runtime, its claim loop a task of its own, as the manager's is.
/// Then drains them again with the recorder on the runtime, and prints that
/// beside it (not a limit: the manager cannot run that way).
pub async fn measure(n: usize, concurrency: usize) -> f64 {
    let mut limit = 0.0;
    for recorder in [Recorder::Thread, Recorder::Task] {
        let (rate, cpu) = tokio::spawn(run(n, concurrency, recorder))
            .await
            .expect("the skeleton never panics");
        let label = match recorder {
            Recorder::Thread => {
                limit = rate;
                "limit: the manager's skeleton (slot tasks, a recorder thread)"
            }
            Recorder::Task => "for comparison: the skeleton with its recorder on the runtime",
        };
        println!(
            "| {label}, concurrency {concurrency} {n:>9} jobs | {:>8.2} s | {rate:>9.0} jobs/s |{cpu}",
            n as f64 / rate
        );
    }
    limit
}

/// Jobs per second, and CPU per job (from the first claim on).
async fn run(n: usize, concurrency: usize, on: Recorder) -> (f64, String) {
    let mut store = Store {
        ready: VecDeque::with_capacity(n),
        jobs: HashMap::with_capacity(n),
    };
    for i in 0..n as u64 {
        store.ready.push_back(i);
        let job = Job {
            id: i,
            queue: "bench".to_owned(),
            payload: serde_json::json!({ "i": i }),
            status: 0,
        };
        store.jobs.insert(i, job);
    }
    let store = Arc::new(Mutex::new(store));
    let recorded = Arc::new(AtomicUsize::new(0));
    let window = Arc::new(Semaphore::new(concurrency * 2));
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, OwnedSemaphorePermit)>();
    let recording = {
        let (store, recorded) = (store.clone(), recorded.clone());
        async move {
            let mut batch = Vec::with_capacity(512);
            while rx.recv_many(&mut batch, 512).await > 0 {
                {
                    let mut s = store.lock().unwrap();
                    for (id, _) in &batch {
                        s.jobs.get_mut(id).expect("claimed").status = 2;
                    }
                }
                recorded.fetch_add(batch.len(), Ordering::Relaxed);
                // The window's permits go back once written.
                batch.clear();
            }
        }
    };
    let recorder = match on {
        Recorder::Thread => Ok(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(recording)
        })),
        Recorder::Task => Err(tokio::spawn(recording)),
    };
    let waiting = Arc::new(Waiting::default());
    let mut slot_tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (waiting, tx, window) = (waiting.clone(), tx.clone(), window.clone());
        slot_tasks.push(tokio::spawn(async move {
            loop {
                let next = waiting.jobs.lock().unwrap().pop_front();
                match next {
                    Some((job, slot)) => {
                        let _ = handler(&job).await;
                        let permit = window.clone().acquire_owned().await.expect("open");
                        drop(slot);
                        let _ = tx.send((job.id, permit));
                    }
                    None => {
                        let ready = waiting.ready.notified();
                        tokio::pin!(ready);
                        ready.as_mut().enable();
                        if waiting.closed.load(Ordering::SeqCst) {
                            return;
                        }
                        if waiting.jobs.lock().unwrap().is_empty() {
                            ready.await;
                        }
                    }
                }
            }
        }));
    }
    drop(tx);
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut permits = Vec::with_capacity(concurrency);
    let mut claimed = Vec::with_capacity(concurrency);
    let mut backlog = false;
    let cpu = crate::cpu::Clock::start();
    let t = Instant::now();
    loop {
        permits.push(slots.clone().acquire_owned().await.expect("open"));
        while let Ok(p) = slots.clone().try_acquire_owned() {
            permits.push(p);
        }
        if backlog && permits.len() < concurrency {
            let deadline = tokio::time::sleep(Duration::from_millis(1));
            tokio::pin!(deadline);
            while permits.len() < concurrency {
                tokio::select! {
                    p = slots.clone().acquire_owned() => permits.push(p.expect("open")),
                    _ = &mut deadline => break,
                }
            }
        }
        {
            let mut s = store.lock().unwrap();
            for _ in 0..permits.len() {
                let Some(id) = s.ready.pop_front() else { break };
                let job = s.jobs.get_mut(&id).expect("stored");
                job.status = 1;
                claimed.push(job.clone());
            }
        }
        if claimed.is_empty() {
            break;
        }
        backlog = claimed.len() == permits.len();
        let handed = claimed.len();
        waiting
            .jobs
            .lock()
            .unwrap()
            .extend(claimed.drain(..).zip(permits.drain(..)));
        for _ in 0..handed {
            waiting.ready.notify_one();
        }
        permits.clear();
    }
    while recorded.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    let cpu = cpu.per_job(n);
    waiting.closed.store(true, Ordering::SeqCst);
    waiting.ready.notify_waiters();
    for t in slot_tasks {
        let _ = t.await;
    }
    match recorder {
        Ok(thread) => thread.join().expect("the recorder never panics"),
        Err(task) => task.await.expect("the recorder never panics"),
    }
    (rate, cpu)
}
