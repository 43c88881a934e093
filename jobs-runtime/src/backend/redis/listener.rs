//! Waking idle workers: the `{P}:wake` pub/sub listener, which also hears
//! cancellations of running jobs on `{P}:cancel`.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;
use jobs_core::backend::JobListener;
use jobs_core::{BackendErrorKind, BoxFuture, Error, Result};
use redis::aio::{PubSubSink, PubSubStream};
use redis::RedisError;

use super::backend::RedisBackend;
use super::scripts::{backend_err, BACKEND, SCRIPTS};

impl RedisBackend {
    /// Time until the earliest delayed job of `queues` comes due.
    async fn next_due(&self, queues: &[String]) -> Result<Option<Duration>> {
        if queues.is_empty() {
            return Ok(None);
        }
        let mut conn = self.conn().await?;
        let us: i64 = SCRIPTS
            .next_due
            .key(&self.inner.ns)
            .arg(queues)
            .invoke_async(&mut conn)
            .await
            .map_err(backend_err)?;
        Ok((us >= 0).then(|| Duration::from_micros(us as u64)))
    }

    async fn subscribe(&self) -> Result<(PubSubSink, Pin<Box<PubSubStream>>)> {
        let fut = async {
            let mut ps = self.inner.client.get_async_pubsub().await?;
            ps.subscribe(&[
                format!("{}:wake", self.inner.ns),
                format!("{}:cancel", self.inner.ns),
            ])
            .await?;
            Ok::<_, RedisError>(ps.split())
        };
        match tokio::time::timeout(self.inner.connection_timeout, fut).await {
            Ok(Ok((sink, stream))) => Ok((sink, Box::pin(stream))),
            Ok(Err(e)) => Err(backend_err(e)),
            Err(_) => Err(Error::backend_msg(
                BACKEND,
                BackendErrorKind::Unavailable,
                "timed out subscribing to the wake-up channel",
            )),
        }
    }
}

/// Waits on the `{P}:wake` channel with a connection of its own.
pub(super) struct RedisListener {
    backend: RedisBackend,
    queues: Vec<String>,
    wanted: HashSet<Vec<u8>>,
    /// `None` after the connection dropped; the next wait reconnects.
    sub: Option<(PubSubSink, Pin<Box<PubSubStream>>)>,
    /// When the earliest delayed job of our queues comes due, as last read.
    next_due: Option<Instant>,
    /// When `next_due` was read; `None`: it must be read again, because a
    /// signal came (new jobs may be delayed ones) or we were disconnected.
    due_read_at: Option<Instant>,
    /// The channel cancellations of running jobs are published on.
    cancel_channel: String,
    /// Whether a cancellation was heard since `take_cancel_signal`.
    cancelled: bool,
}

/// Re-read the next due time at least this often, whatever the signals said.
const DUE_REFRESH: Duration = Duration::from_secs(30);

enum Next {
    Wake,
    Other,
    Closed,
    Empty,
}

impl RedisListener {
    /// Subscribes to the wake-up channel, then listens for `queues`.
    pub(super) async fn new(backend: &RedisBackend, queues: &[String]) -> Result<Self> {
        let sub = backend.subscribe().await?;
        Ok(RedisListener {
            backend: backend.clone(),
            queues: queues.to_vec(),
            wanted: queues.iter().map(|q| q.as_bytes().to_vec()).collect(),
            sub: Some(sub),
            next_due: None,
            due_read_at: None,
            cancel_channel: format!("{}:cancel", backend.inner.ns),
            cancelled: false,
        })
    }

    fn classify(&mut self, polled: Poll<Option<redis::Msg>>) -> Next {
        match polled {
            Poll::Ready(Some(msg)) if msg.get_channel_name() == self.cancel_channel => {
                // A running job's cancellation: its worker should heartbeat now.
                self.cancelled = true;
                Next::Wake
            }
            Poll::Ready(Some(msg)) if self.wanted.contains(msg.get_payload_bytes()) => Next::Wake,
            Poll::Ready(Some(_)) => Next::Other,
            Poll::Ready(None) => Next::Closed,
            Poll::Pending => Next::Empty,
        }
    }

    /// Takes every message already buffered; true if one was for our queues.
    fn drain(&mut self) -> Next {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut woke = false;
        loop {
            let Some((_, stream)) = self.sub.as_mut() else {
                return Next::Closed;
            };
            let polled = stream.as_mut().poll_next(&mut cx);
            match self.classify(polled) {
                Next::Wake => woke = true,
                Next::Other => {}
                Next::Closed => {
                    self.sub = None;
                    return Next::Closed;
                }
                Next::Empty => return if woke { Next::Wake } else { Next::Empty },
            }
        }
    }

    async fn wait_inner(&mut self, timeout: Duration) {
        if self.sub.is_none() {
            match self.backend.subscribe().await {
                Ok(sub) => {
                    tracing::info!(prefix = %self.backend.prefix(), "wake-up channel resubscribed");
                    self.sub = Some(sub);
                    self.due_read_at = None;
                    // Work may have arrived while we were away.
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot subscribe to the wake-up channel; retrying");
                    tokio::time::sleep(timeout.min(Duration::from_secs(1))).await;
                    return;
                }
            }
        }
        if matches!(self.drain(), Next::Wake | Next::Closed) {
            self.due_read_at = None;
            return;
        }
        // An idle listener asks Redis for the next due time only when a signal
        // may have changed it, when the last one has passed, or every 30 s.
        let now = Instant::now();
        let fresh = self.due_read_at.is_some_and(|at| now - at < DUE_REFRESH)
            && self.next_due.is_none_or(|due| due > now);
        if !fresh {
            match self.backend.next_due(&self.queues).await {
                Ok(due) => {
                    let now = Instant::now();
                    self.next_due = due.map(|d| now + d);
                    self.due_read_at = Some(now);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot read the next due time");
                    self.next_due = Some(Instant::now() + Duration::from_secs(1));
                    self.due_read_at = None;
                }
            }
        }
        let timeout = match self.next_due {
            Some(due) => due.saturating_duration_since(Instant::now()).min(timeout),
            None => timeout,
        };
        if timeout.is_zero() {
            return;
        }
        let sleep = tokio::time::sleep(timeout);
        tokio::pin!(sleep);
        loop {
            let next = std::future::poll_fn(|cx| {
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                match self.sub.as_mut() {
                    Some((_, stream)) => stream.as_mut().poll_next(cx).map(Some),
                    None => Poll::Ready(None),
                }
            })
            .await;
            match next {
                None => return, // timed out
                Some(msg) => match self.classify(Poll::Ready(msg)) {
                    Next::Wake => {
                        self.due_read_at = None;
                        // Collapse a burst of signals into one wake-up.
                        if let Next::Closed = self.drain() {
                            self.sub = None;
                        }
                        return;
                    }
                    Next::Other | Next::Empty => {}
                    Next::Closed => {
                        self.due_read_at = None;
                        tracing::warn!("wake-up connection to redis closed; reconnecting");
                        self.sub = None;
                        return;
                    }
                },
            }
        }
    }
}

impl JobListener for RedisListener {
    fn wait(&mut self, timeout: Duration) -> BoxFuture<'_, ()> {
        Box::pin(self.wait_inner(timeout))
    }

    fn take_cancel_signal(&mut self) -> bool {
        std::mem::take(&mut self.cancelled)
    }

    fn signals_all_work(&self) -> bool {
        // Pub/sub reaches every process, and the listener sleeps until the
        // earliest delayed job is due.
        true
    }
}
