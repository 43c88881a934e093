//! The listener workers wait on: [`PgJobListener`], LISTEN/NOTIFY plus a timer
//! for scheduled jobs.

use std::time::{Duration, Instant};

use jobs_core::backend::JobListener;
use jobs_core::{BoxFuture, Result};
use sqlx::postgres::PgListener;

use super::super::wait::signal_or_due;
use super::backend::PostgresBackend;
use super::control::CANCEL_TOKEN;

/// How long a cached "earliest scheduled job" is trusted without a signal.
const NEXT_DUE_TTL: Duration = Duration::from_secs(30);

/// What ended a wait for a notification.
enum Heard {
    /// A signal for one of our queues.
    Work,
    /// The connection dropped or failed: signals may have been lost.
    Lost,
}

/// LISTEN on the schema's channel, plus a timer for the earliest scheduled job.
pub(super) struct PgJobListener {
    backend: PostgresBackend,
    queues: Vec<String>,
    conn: Option<PgListener>,
    /// When the earliest scheduled job of our queues is due (`None` inside:
    /// none), as a local deadline computed from the database's own "seconds
    /// until due", and when it was read.
    next_due: Option<(Option<Instant>, Instant)>,
    /// A running job's cancellation was requested since the last
    /// `take_cancel_signal`.
    cancel: bool,
}

impl PgJobListener {
    /// Not subscribed yet: see [`ensure_connected`](Self::ensure_connected).
    pub(super) fn new(backend: PostgresBackend, queues: Vec<String>) -> Self {
        PgJobListener {
            backend,
            queues,
            conn: None,
            next_due: None,
            cancel: false,
        }
    }

    /// Subscribes if not subscribed; `Ok(true)` when it had to (re)connect.
    pub(super) async fn ensure_connected(&mut self) -> std::result::Result<bool, sqlx::Error> {
        if self.conn.is_some() {
            return Ok(false);
        }
        let mut l = PgListener::connect_with(&self.backend.inner.listen_pool).await?;
        l.ignore_pool_close_event(true);
        l.listen(&self.backend.inner.channel).await?;
        // Signals may have been missed while disconnected: re-read the timer.
        self.next_due = None;
        self.conn = Some(l);
        Ok(true)
    }

    /// Whether a notification concerns us; a `!` token asks to re-read the
    /// timer; a `!cancel` token says a running job's cancellation was
    /// requested (the worker heartbeats at once to learn which).
    fn relevant(&mut self, payload: &str) -> bool {
        let mut mine = false;
        for token in payload.split(' ') {
            match token {
                "!" => self.next_due = None,
                CANCEL_TOKEN => {
                    self.cancel = true;
                    mine = true;
                }
                "*" => mine = true,
                q => mine |= self.queues.iter().any(|mine| mine == q),
            }
        }
        mine
    }

    /// How long until the earliest scheduled job of our queues is due (zero
    /// once due; `None`: none is scheduled). The database says how far away
    /// it is by its own clock, so the worker's clock never decides; the
    /// answer is kept, as a local deadline, until a signal or the TTL says
    /// to ask again.
    async fn until_due(&mut self) -> Result<Option<Duration>> {
        let now = Instant::now();
        if let Some((due, read_at)) = self.next_due {
            // Once the job is due, ask again: someone may have claimed it.
            if now.duration_since(read_at) < NEXT_DUE_TTL && due.is_none_or(|d| d > now) {
                return Ok(due.map(|d| d - now));
            }
        }
        let mut conn = self.backend.conns.get().await?;
        let res = sqlx::query_scalar(&self.backend.inner.sql.next_due)
            .bind(&self.queues)
            .fetch_one(conn.get())
            .await;
        let secs: Option<f64> = conn.done(res)?;
        let read_at = Instant::now();
        let left = secs.map(|s| Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO));
        // A due time further away than an Instant can hold is as good as none.
        let due = left.and_then(|left| read_at.checked_add(left));
        self.next_due = Some((due, read_at));
        Ok(left.filter(|_| due.is_some()))
    }

    /// Waits for a notification that concerns us, or for the connection to fail.
    async fn heard(&mut self) -> Heard {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Heard::Lost;
            };
            match conn.try_recv().await {
                Ok(Some(note)) => {
                    let mut mine = self.relevant(note.payload());
                    // Coalesce a burst of signals into one wake-up.
                    while let Some(more) = self.conn.as_mut().and_then(PgListener::next_buffered) {
                        mine |= self.relevant(more.payload());
                    }
                    if mine {
                        return Heard::Work;
                    }
                }
                Ok(None) => {
                    // The connection dropped (it reconnects): signals may be lost, so wake.
                    tracing::debug!("job listener lost its connection");
                    self.next_due = None;
                    return Heard::Lost;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "job listener failed; reconnecting");
                    self.conn = None;
                    self.next_due = None;
                    return Heard::Lost;
                }
            }
        }
    }

    async fn wait_inner(&mut self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        // While the database is away, retry no faster than this.
        let backoff = || {
            tokio::time::sleep_until(
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(500)),
            )
        };
        match self.ensure_connected().await {
            Ok(false) => {}
            // Newly subscribed: anything sent before was missed, so wake once.
            Ok(true) => return,
            Err(e) => {
                tracing::debug!(error = %e, "job listener cannot connect; will retry");
                backoff().await;
                return;
            }
        }
        let until_due = match self.until_due().await {
            Ok(Some(Duration::ZERO)) => return, // a scheduled job is due now
            Ok(left) => left,
            Err(e) => {
                tracing::debug!(error = %e, "job listener cannot read the next due time");
                backoff().await;
                return;
            }
        };
        let timeout = deadline.saturating_duration_since(tokio::time::Instant::now());
        if let Some(Heard::Lost) = signal_or_due(self.heard(), until_due, timeout).await {
            if self.conn.is_none() {
                backoff().await;
            }
        }
    }
}

impl JobListener for PgJobListener {
    fn wait(&mut self, timeout: Duration) -> BoxFuture<'_, ()> {
        Box::pin(self.wait_inner(timeout))
    }

    fn signals_all_work(&self) -> bool {
        // LISTEN/NOTIFY reaches every process, and the listener sleeps until the
        // earliest scheduled job is due.
        true
    }

    fn take_cancel_signal(&mut self) -> bool {
        std::mem::take(&mut self.cancel)
    }
}
