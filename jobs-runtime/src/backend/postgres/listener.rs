//! The listener workers wait on: [`PgJobListener`], LISTEN/NOTIFY plus a timer
//! for scheduled jobs.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use jobs_core::backend::JobListener;
use jobs_core::{BoxFuture, Result};
use sqlx::postgres::PgListener;

use super::backend::PostgresBackend;

/// How long a cached "earliest scheduled job" is trusted without a signal.
const NEXT_DUE_TTL: Duration = Duration::from_secs(30);

/// LISTEN on the schema's channel, plus a timer for the earliest scheduled job.
pub(super) struct PgJobListener {
    backend: PostgresBackend,
    queues: Vec<String>,
    conn: Option<PgListener>,
    /// The earliest scheduled run_at of our queues (`None` inside: none), and when it was read.
    next_due: Option<(Option<DateTime<Utc>>, Instant)>,
}

impl PgJobListener {
    /// Not subscribed yet: see [`ensure_connected`](Self::ensure_connected).
    pub(super) fn new(backend: PostgresBackend, queues: Vec<String>) -> Self {
        PgJobListener {
            backend,
            queues,
            conn: None,
            next_due: None,
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

    /// Whether a notification concerns us; a `!` token asks to re-read the timer.
    fn relevant(&mut self, payload: &str) -> bool {
        let mut mine = false;
        for token in payload.split(' ') {
            match token {
                "!" => self.next_due = None,
                "*" => mine = true,
                q => mine |= self.queues.iter().any(|mine| mine == q),
            }
        }
        mine
    }

    async fn next_due(&mut self) -> Result<Option<DateTime<Utc>>> {
        if let Some((due, read_at)) = self.next_due {
            let fresh = read_at.elapsed() < NEXT_DUE_TTL;
            if fresh && due.is_none_or(|d| d > Utc::now()) {
                return Ok(due);
            }
        }
        let mut conn = self.backend.inner.conns.get().await?;
        let res = sqlx::query_scalar(&self.backend.inner.sql.next_due)
            .bind(&self.queues)
            .fetch_one(conn.get())
            .await;
        let due: Option<DateTime<Utc>> = conn.done(res)?;
        self.next_due = Some((due, Instant::now()));
        Ok(due)
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
        let until = match self.next_due().await {
            Ok(Some(due)) => {
                let Ok(left) = (due - Utc::now()).to_std() else {
                    return; // a scheduled job is due now
                };
                deadline.min(tokio::time::Instant::now() + left)
            }
            Ok(None) => deadline,
            Err(e) => {
                tracing::debug!(error = %e, "job listener cannot read the next due time");
                backoff().await;
                return;
            }
        };
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            match tokio::time::timeout_at(until, conn.try_recv()).await {
                Err(_) => return,
                Ok(Ok(Some(note))) => {
                    let mut mine = self.relevant(note.payload());
                    // Coalesce a burst of signals into one wake-up.
                    while let Some(more) = self.conn.as_mut().and_then(PgListener::next_buffered) {
                        mine |= self.relevant(more.payload());
                    }
                    if mine {
                        return;
                    }
                }
                Ok(Ok(None)) => {
                    // The connection dropped (it reconnects): signals may be lost, so wake.
                    tracing::debug!("job listener lost its connection");
                    self.next_due = None;
                    return;
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "job listener failed; reconnecting");
                    self.conn = None;
                    self.next_due = None;
                    backoff().await;
                    return;
                }
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
}
