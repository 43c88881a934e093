//! The writer: the one connection every write of this process goes through,
//! driven by a thread of the backend's own.
//!
//! A change holds the writer from its first statement to its last (a claim,
//! a batch of outcomes, a transaction), across awaits. If the calling task
//! held it, a caller whose runtime stalls — a handler blocking the only
//! thread of a current-thread runtime, or every thread of a multi-threaded
//! one — would keep the writer, and every heartbeat and outcome of this
//! process queued behind it, waiting until that runtime runs again: long
//! enough for leases to expire and for other workers to run the jobs a second
//! time. So each change runs as a task on this thread, which runs nothing
//! else (the writer's changes and the checkpointer), and the caller only
//! waits for the answer. No change depends on the caller's runtime making
//! progress, whichever runtime calls — which is why the backend needs no
//! `Backend::detached` handle. Reads of a database file go through the
//! reader pool on the caller's runtime instead: they hold nothing a write
//! waits for (WAL readers never block the writer).
//!
//! Cost: one hand-off to this thread and one back per call, a few
//! microseconds. The hot path's statements run on this thread itself, on
//! the writer's native connection ([`native`](super::native)); the others
//! go through sqlx, which hands each statement to a thread of its own.
//!
//! # Group commit
//!
//! The hot path's changes (a claim, a batch of outcomes) share their
//! commits. A change of [`write_grouped`](Writer::write_grouped) opens a
//! transaction unless one is open, runs in a savepoint of it (undone alone
//! if it fails or panics), and is answered as soon as its statements have
//! run; the transaction commits once no change is queued for the writer,
//! or once [`MAX_GROUP`] changes share it. Any other change commits it
//! first, and so does closing the backend. Dropping the backend without
//! closing it commits the open group only if no change holds the writer
//! at that moment (its thread tries once, and does not wait); a group
//! left so is undone as a crash's would be (below). While the
//! manager drains a backlog, its claims and its batches of outcomes follow
//! each other without a pause, so a commit (writing every page the group
//! touched to the log) comes once per group instead of once per change:
//! the SQLite W1 drain of 200,000 jobs went 1.41× faster (medians of five
//! interleaved pairs, 33,100 → 46,800 jobs/s; the README has the figures).
//!
//! What a crash can take is unchanged in kind: the changes of a group not
//! yet committed (at most [`MAX_GROUP`], answered within the last few
//! milliseconds) are undone, as if the process had died just before
//! making them. A claim undone leaves its jobs waiting, to be claimed
//! again (one may run twice, as with any crash: delivery is at least once,
//! and the lease token fences the older attempt's outcome); outcomes
//! undone leave their jobs RUNNING until their lease runs out and recovery
//! takes them. A commit that fails undoes the group likewise, reports the
//! failure to the change whose end made the commit, and logs the others.
//! With `synchronous = FULL` (or `EXTRA`), chosen so that every answered
//! change is on disk, each change commits before it is answered: the
//! savepoints stay, the sharing does not.
//!
//! Reads of this process wait for the open group's commit first
//! ([`settle`](Writer::settle)), so they see every change answered before
//! them; other processes see a group once it has committed, a few
//! milliseconds at most after its changes were answered.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use jobs_core::{BackendErrorKind, BoxFuture, Error, Result};
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{oneshot, Mutex};

use super::error::backend_msg;
use super::native::native_err;

/// Most changes that share one transaction of the group commit.
pub(super) const MAX_GROUP: usize = 16;

/// The writer connection and the thread its changes run on. Dropping it ends
/// the thread once its current task yields; queued changes are dropped (no
/// caller is left to wait for them).
pub(super) struct Writer {
    conn: Arc<Mutex<Option<State>>>,
    /// Written to since the last checkpoint (set once a change has run).
    pub(super) dirty: Arc<AtomicBool>,
    /// Changes handed to the writer's thread and not yet started.
    queued: Arc<AtomicUsize>,
    /// A group is open: changes were answered and are not committed yet.
    open: Arc<AtomicBool>,
    /// Whether there is a native connection (a database file).
    native: bool,
    /// The last claim took the limited path (see [`claims_limited`](Self::claims_limited)).
    limited: AtomicBool,
    rt: tokio::runtime::Handle,
    location: Arc<str>,
    _stop: oneshot::Sender<()>,
}

/// The writer's connections: sqlx's, and for a database file the native one
/// (see [`native`](super::native)). A change uses one of them at a time.
pub(super) struct Conns {
    pub(super) sqlx: SqliteConnection,
    pub(super) native: Option<rusqlite::Connection>,
}

/// The connections and the group commit's state, behind the writer's lock.
struct State {
    conns: Conns,
    /// `synchronous = FULL` or stricter: the user wants each answered
    /// change on disk, so every change commits before it is answered.
    durable: bool,
    /// Changes in the open group (see the module's "Group commit").
    group: usize,
    /// Set while a group is open (the writer's `open`).
    open: Arc<AtomicBool>,
}

impl State {
    /// Commits the open group, if any. If that fails, nothing of the group
    /// stays; the changes answered before are logged, the caller told.
    fn commit_group(&mut self) -> Result<()> {
        let Some(native) = self.conns.native.as_ref().filter(|n| !n.is_autocommit()) else {
            // No transaction to commit: if changes were answered, SQLite
            // ended it itself after an error.
            self.abandon_group("SQLite ended its transaction after an error");
            return Ok(());
        };
        match run(native, "COMMIT").map_err(native_err) {
            Ok(()) => {
                self.group = 0;
                self.open.store(false, Ordering::Release);
                Ok(())
            }
            Err(e) => {
                self.abandon_group(&e.to_string());
                Err(e)
            }
        }
    }

    /// Ends the open group without storing anything of it (its
    /// transaction's state is unknown after `why`).
    fn abandon_group(&mut self, why: &str) {
        let answered = std::mem::take(&mut self.group);
        self.open.store(false, Ordering::Release);
        if let Some(native) = &self.conns.native {
            if !native.is_autocommit() {
                let _ = run(native, "ROLLBACK");
            }
        }
        lost_group(answered, why);
    }
}

/// Logs that the `answered` changes of a group were undone, and why.
fn lost_group(answered: usize, why: &str) {
    if answered > 0 {
        tracing::error!(
            changes = answered,
            error = why,
            "sqlite: a group of claims and outcomes could not be committed and was undone; \
             its jobs will be claimed again, or recovered once their leases expire"
        );
    }
}

/// Runs one statement of the group commit's, prepared once per connection.
fn run(native: &rusqlite::Connection, sql: &str) -> rusqlite::Result<()> {
    native.prepare_cached(sql)?.execute([]).map(|_| ())
}

impl Writer {
    /// Starts the writer's thread with `conns`; `location` names the database
    /// in errors.
    pub(super) fn start(conns: Conns, location: &str) -> std::io::Result<Writer> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let native = conns.native.is_some();
        let durable = conns.native.as_ref().is_some_and(|n| {
            n.query_row("PRAGMA synchronous", [], |r| r.get::<_, i64>(0))
                .map_or(true, |level| level >= 2)
        });
        let open = Arc::new(AtomicBool::new(false));
        let conn = Arc::new(Mutex::new(Some(State {
            conns,
            durable,
            group: 0,
            open: open.clone(),
        })));
        let last = conn.clone();
        std::thread::Builder::new()
            .name("jobs-sqlite-writer".to_owned())
            .spawn(move || {
                // Runs the spawned changes until the writer is dropped; the
                // runtime, and any change still queued, goes with the thread.
                rt.block_on(async move {
                    let _ = stopped.await;
                    // The open group, if any: its changes were answered.
                    if let Ok(mut state) = last.try_lock() {
                        if let Some(state) = state.as_mut() {
                            let _ = state.commit_group();
                        }
                    }
                });
            })?;
        Ok(Writer {
            conn,
            dirty: Arc::new(AtomicBool::new(false)),
            queued: Arc::new(AtomicUsize::new(0)),
            open,
            native,
            limited: AtomicBool::new(false),
            rt: handle,
            location: Arc::from(location),
            _stop: stop,
        })
    }

    /// Runs `change` on the writer connection, exclusively, on the writer's
    /// thread, and marks the database written for the next checkpoint.
    ///
    /// Once started, a change runs to its end even if the caller stops
    /// waiting (a deadline): a transaction is never cut in the middle by a
    /// caller going away, and the next change finds the connection clean.
    pub(super) async fn write<T, F>(&self, change: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.run(true, |c: &mut Conns| change(&mut c.sqlx)).await
    }

    /// Runs `change` like [`write`](Self::write), with both connections
    /// (the native one only for a database file): for the statements every
    /// job runs.
    pub(super) async fn write_conns<T, F>(&self, change: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conns) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.run(true, change).await
    }

    /// Runs `read` on the writer connection (for `sqlite::memory:`, whose
    /// only connection it is), like [`write`](Self::write) but without
    /// marking anything written.
    pub(super) async fn read<T, F>(&self, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.run(false, |c: &mut Conns| read(&mut c.sqlx)).await
    }

    /// Whether the hot path's changes go through
    /// [`write_grouped`](Self::write_grouped): a database file, which has a
    /// native connection, while claims take the fast path (one statement,
    /// under a queue's cap or not).
    ///
    /// A claim that takes the limited path runs on sqlx's connection, so it
    /// commits the open group before it starts: a group then never holds
    /// more than the outcomes written since the last claim, and their commit
    /// only moves from the record to the claim, at the cost of the
    /// savepoints (and, for jobs with limits of their own, of a fast-path
    /// statement tried in vain before each claim). With every job keyed
    /// (W1k) the drain ran at 0.94× of the build before the group commit
    /// until the hot path stopped sharing commits while claims take the
    /// limited path; now at 0.99× (medians of six interleaved rounds,
    /// 11,820 / 11,120 / 11,650 jobs/s), plain W1 unchanged (1.42×).
    pub(super) fn groups(&self) -> bool {
        self.native && !self.limited.load(Ordering::Relaxed)
    }

    /// Notes which path the last claim took: the limited one (`true`: the
    /// hot path's changes stop sharing commits) or the fast one (`false`:
    /// they share them again). Only a hint: either way every change is
    /// stored as it would be, and its claim or record answered likewise.
    pub(super) fn claims_limited(&self, limited: bool) {
        if self.limited.load(Ordering::Relaxed) != limited {
            self.limited.store(limited, Ordering::Relaxed);
        }
    }

    /// Runs `change` on the native connection, on the writer's thread, in
    /// the group commit's transaction (the module's "Group commit"): it is
    /// answered once its statements have run, and committed with the
    /// changes queued beside it. Only on a database file, which has a
    /// native connection (else it fails as closed); the hot path uses it
    /// where [`groups`](Self::groups) says so.
    pub(super) async fn write_grouped<T, F>(&self, change: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T> + Send + 'static,
    {
        let dirty = self.dirty.clone();
        let location = self.location.clone();
        self.on_thread(move |state, queued| {
            Box::pin(async move { grouped(state, queued, &dirty, &location, change) })
        })
        .await
    }

    /// Waits until what was answered is committed, so that a read on
    /// another connection sees it: free unless a group is open (then one
    /// empty change, which commits it, as any change does).
    pub(super) async fn settle(&self) -> Result<()> {
        if !self.open.load(Ordering::Acquire) {
            return Ok(());
        }
        self.run(false, |_| Box::pin(async { Ok(()) })).await
    }

    async fn run<T, F>(&self, writes: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conns) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let dirty = writes.then(|| self.dirty.clone());
        self.on_thread(move |state, _| {
            Box::pin(async move {
                // The open group first: this change may write through sqlx,
                // whose connection would wait for the native one's lock, and
                // a reader expects to see what was answered before it.
                state.commit_group()?;
                let out = f(&mut state.conns).await;
                if let Some(dirty) = dirty {
                    dirty.store(true, Ordering::Relaxed);
                }
                out
            })
        })
        .await
    }

    /// Runs `f` on the writer's thread with the writer's state, alone
    /// (counted in `queued`, which it is given, until it starts).
    async fn on_thread<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'s> FnOnce(&'s mut State, &'s AtomicUsize) -> BoxFuture<'s, Result<T>>
            + Send
            + 'static,
    {
        let conn = self.conn.clone();
        let queued = self.queued.clone();
        let location = self.location.clone();
        queued.fetch_add(1, Ordering::SeqCst);
        let task = self.rt.spawn(async move {
            let mut guard = conn.lock().await;
            queued.fetch_sub(1, Ordering::SeqCst);
            let Some(state) = guard.as_mut() else {
                return Err(closed(&location));
            };
            f(state, &queued).await
        });
        match task.await {
            Ok(out) => out,
            // The change panicked: the caller sees the panic, as if it had
            // run the change itself.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(closed(&self.location)),
        }
    }

    /// Spawns `task` on the writer's thread (the checkpointer: so it does
    /// not depend on the runtime that opened the backend staying alive).
    pub(super) fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.rt.spawn(task);
    }

    /// Closes the connection once the change in progress, if any, is done;
    /// later changes fail as "closed".
    pub(super) async fn close(&self) {
        let state = self.conn.lock().await.take();
        if let Some(mut state) = state {
            let _ = state.commit_group();
            let conns = state.conns;
            drop(conns.native);
            let _ = conns.sqlx.close().await;
        }
    }
}

/// One change of [`Writer::write_grouped`], on the writer's thread.
fn grouped<T>(
    state: &mut State,
    queued: &AtomicUsize,
    dirty: &AtomicBool,
    location: &str,
    change: impl FnOnce(&rusqlite::Connection) -> Result<T>,
) -> Result<T> {
    let Some(native) = &state.conns.native else {
        return Err(closed(location));
    };
    if state.group > 0 && native.is_autocommit() {
        // SQLite ended the group's transaction on its own (logged).
        state.commit_group()?;
    }
    let native = state.conns.native.as_ref().expect("checked above");
    let begun = if native.is_autocommit() {
        run(native, "BEGIN IMMEDIATE")
    } else {
        Ok(())
    }
    .and_then(|()| run(native, "SAVEPOINT jobs_change"));
    if let Err(e) = begun {
        let e = native_err(e);
        state.abandon_group(&e.to_string());
        return Err(e);
    }
    let native = state.conns.native.as_ref().expect("checked above");
    let out = std::panic::catch_unwind(AssertUnwindSafe(|| change(native)));
    let ok = matches!(out, Ok(Ok(_)));
    // A change that failed is undone alone: the group goes on.
    let kept = if ok {
        run(native, "RELEASE jobs_change")
    } else {
        run(native, "ROLLBACK TO jobs_change").and_then(|()| run(native, "RELEASE jobs_change"))
    };
    dirty.store(true, Ordering::Relaxed);
    let ended = match kept {
        Err(e) => {
            // SQLite may have ended the transaction itself: its
            // state is unknown, so none of the group stays.
            let e = native_err(e);
            state.abandon_group(&e.to_string());
            Err(e)
        }
        Ok(()) => {
            if ok {
                state.group += 1;
            }
            if state.durable || state.group >= MAX_GROUP || queued.load(Ordering::SeqCst) == 0 {
                // This change ends the group: it hears of the commit
                // (the others were answered; `commit_group` logs them).
                if ok {
                    state.group -= 1;
                }
                state.commit_group()
            } else {
                state.open.store(true, Ordering::Release);
                Ok(())
            }
        }
    };
    match out {
        Err(panic) => std::panic::resume_unwind(panic),
        Ok(Err(e)) => Err(e),
        Ok(Ok(out)) => ended.map(|()| out),
    }
}

fn closed(location: &str) -> Error {
    backend_msg(
        BackendErrorKind::Unavailable,
        format!("the sqlite backend for `{location}` was closed"),
    )
}

#[cfg(test)]
mod tests {
    use jobs_core::Error;
    use tokio::task::JoinSet;

    use super::super::SqliteBackend;

    /// Changes queued together share a transaction, and one that fails or
    /// panics is undone alone: every other change of its group is stored,
    /// and seen by another connection once the writer is idle.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_keeps_every_change_but_those_that_failed() {
        let (path, url) = scratch();
        let backend = SqliteBackend::connect(&url).await.expect("open");
        let writer = &backend.inner.writer;
        assert!(writer.groups(), "a database file has a native connection");
        create_table(writer).await;
        let mut calls = JoinSet::new();
        for i in 0..64i64 {
            let backend = backend.clone();
            calls.spawn(async move {
                let out = backend
                    .inner
                    .writer
                    .write_grouped(move |n| {
                        n.execute("INSERT INTO group_test (x) VALUES (?1)", [i])
                            .map_err(super::native_err)?;
                        match i {
                            7 => Err(Error::Config("refused after writing".to_owned())),
                            13 => panic!("a change panicked after writing"),
                            _ => Ok(i),
                        }
                    })
                    .await;
                (i, out)
            });
        }
        let (mut ok, mut failed, mut panicked) = (Vec::new(), Vec::new(), 0);
        while let Some(joined) = calls.join_next().await {
            match joined {
                Ok((i, Ok(x))) => {
                    assert_eq!(i, x);
                    ok.push(i);
                }
                Ok((i, Err(_))) => failed.push(i),
                Err(e) if e.is_panic() => panicked += 1,
                Err(e) => panic!("the call's task ended: {e}"),
            }
        }
        assert_eq!(failed, vec![7], "only the change that failed reports it");
        assert_eq!(panicked, 1, "the panic reaches its caller, and only it");
        ok.sort_unstable();
        // Another connection, as a reader or another process sees the file.
        let reader = rusqlite::Connection::open(&path).expect("open a reader");
        let mut stmt = reader
            .prepare("SELECT x FROM group_test ORDER BY x")
            .expect("prepare");
        let stored: Vec<i64> = stmt
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(stored, ok, "every answered change is stored, nothing else");
        assert_eq!(stored.len(), 62);
        drop(stmt);
        drop(reader);
        backend.close().await;
        remove(&path);
    }

    /// A change answered while its group stays open (another is queued) is
    /// seen by this process's next read: the read waits for the commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_sees_what_was_answered_before_it() {
        use sqlx::Row;
        let (path, url) = scratch();
        let backend = SqliteBackend::connect(&url).await.expect("open");
        let writer = &backend.inner.writer;
        create_table(writer).await;
        let insert = |x, pause| insert(writer, x, pause);
        // Polled in this order: the first holds the writer while the other
        // two queue; the second is answered with the third still queued, so
        // its group stays open while the third runs (300 ms).
        let (_, seen, _) = tokio::join!(
            insert(1, 100),
            async {
                insert(2, 0).await.expect("insert");
                let row = backend
                    .read_optional("SELECT count(*) FROM group_test".into(), |q| q)
                    .await
                    .expect("read")
                    .expect("a row");
                row.get::<i64, _>(0)
            },
            insert(3, 300)
        );
        assert!(
            seen >= 2,
            "the read saw {seen} rows: it must see both changes answered before it"
        );
        backend.close().await;
        remove(&path);
    }

    /// With `synchronous = FULL`, a change is committed before it is
    /// answered, even with others queued behind it: another connection
    /// sees it at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_synchronous_full_every_change_commits_before_its_answer() {
        use sqlx::sqlite::SqliteSynchronous;
        let (path, url) = scratch();
        let options = SqliteBackend::options(&url)
            .expect("options")
            .synchronous(SqliteSynchronous::Full);
        let backend = SqliteBackend::connect_with(&url, options, false)
            .await
            .expect("open");
        let writer = &backend.inner.writer;
        create_table(writer).await;
        let insert = |x, pause| insert(writer, x, pause);
        let reader = rusqlite::Connection::open(&path).expect("open a reader");
        let (_, seen, _) = tokio::join!(
            insert(1, 100),
            async {
                insert(2, 0).await.expect("insert");
                // Not through the backend: no waiting for a commit here.
                reader
                    .query_row("SELECT count(*) FROM group_test", [], |r| {
                        r.get::<_, i64>(0)
                    })
                    .expect("read")
            },
            insert(3, 300)
        );
        assert_eq!(seen, 2, "both answered changes are committed");
        drop(reader);
        backend.close().await;
        remove(&path);
    }

    /// The hot path shares commits while claims take the fast path (under a
    /// queue's running caps too: one statement), stops once a claim takes
    /// the limited path (a queue's rate, or a job with limits of its own
    /// among the candidates), and starts again with the next claim on the
    /// fast path.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn claims_on_the_limited_path_stop_the_sharing_of_commits() {
        use std::time::Duration;

        use jobs_core::backend::{Backend, ClaimRequest};
        use jobs_core::{ClaimLimit, NewJob};

        let (path, url) = scratch();
        let backend = SqliteBackend::connect(&url).await.expect("open");
        let writer = &backend.inner.writer;
        let plain = |q: &str| NewJob::new("t", serde_json::json!({})).queue(q);
        backend
            .enqueue_batch(vec![
                plain("plain"),
                plain("plain"),
                plain("capped"),
                plain("rated"),
                plain("keyed").concurrency("k", 1),
            ])
            .await
            .expect("enqueue");
        let lease = Duration::from_secs(60);
        let claim = |queue: &'static str, limits: Vec<ClaimLimit>| {
            let backend = &backend;
            async move {
                let queues = [queue.to_owned()];
                let req = ClaimRequest::new("w", &queues, 1, lease).with_limits(&limits);
                let claimed = backend.claim(req).await.expect("claim");
                assert_eq!(claimed.jobs.len(), 1, "one job of `{queue}` claimed");
            }
        };
        assert!(writer.groups(), "a fresh backend shares commits");
        claim("keyed", vec![]).await;
        assert!(
            !writer.groups(),
            "a job with a key of its own took the limited path"
        );
        claim("plain", vec![]).await;
        assert!(writer.groups(), "the fast path again");
        claim("capped", vec![ClaimLimit::new("capped").global(4).take(2)]).await;
        assert!(writer.groups(), "a queue's running caps keep the fast path");
        let per_minute = Duration::from_secs(60);
        claim("rated", vec![ClaimLimit::new("rated").rate(10, per_minute)]).await;
        assert!(!writer.groups(), "a queue's rate took the limited path");
        claim("plain", vec![]).await;
        assert!(writer.groups(), "the fast path again");
        backend.close().await;
        remove(&path);
    }

    /// A fresh database file's path, and its URL.
    fn scratch() -> (std::path::PathBuf, String) {
        let path = std::env::temp_dir().join(format!("jobs-group-{}.db", uuid::Uuid::new_v4()));
        let url = format!("sqlite://{}", path.display());
        (path, url)
    }

    async fn create_table(writer: &super::Writer) {
        writer
            .write_grouped(|n| {
                n.execute_batch("CREATE TABLE group_test (x INTEGER NOT NULL)")
                    .map_err(super::native_err)
            })
            .await
            .expect("create");
    }

    /// Inserts `x` after holding the writer's thread for `pause` ms (so
    /// that the changes behind it queue up).
    fn insert(
        writer: &super::Writer,
        x: i64,
        pause: u64,
    ) -> impl std::future::Future<Output = jobs_core::Result<usize>> + '_ {
        writer.write_grouped(move |n| {
            std::thread::sleep(std::time::Duration::from_millis(pause));
            n.execute("INSERT INTO group_test (x) VALUES (?1)", [x])
                .map_err(super::native_err)
        })
    }

    fn remove(path: &std::path::Path) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
