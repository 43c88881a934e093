//! [`Backend::wait_finished`](jobs_core::Backend::wait_finished) on the
//! `{P}:finished` channel: the scripts that finish jobs (`record.lua`,
//! `recover.lua`, `cancel.lua` for a waiting job) publish the ids of the
//! jobs they finished there, once per call, and one subscription per backend
//! wakes the handles awaiting them, in every process.

use std::sync::Arc;
use std::time::Duration;

use futures_core::Stream;
use jobs_core::{Job, JobId, Result};
use redis::{Client, RedisError};

use super::super::remote_finish::Shared;
use super::backend::RedisBackend;

impl RedisBackend {
    /// Waits on the `{P}:finished` channel (see the module docs).
    pub(super) async fn wait_finished_now(
        &self,
        id: JobId,
        timeout: Duration,
    ) -> Result<Option<Job>> {
        let client = self.inner.client.clone();
        let channel = format!("{}:finished", self.inner.ns);
        let limit = self.inner.connection_timeout;
        self.inner
            .finished
            .wait(self, id, timeout, move |shared| {
                listen(shared, client, channel, limit)
            })
            .await
    }

    /// How many times `wait_finished` read a job so far, in every handle on
    /// this namespace: tests tell a signalled wait from a polling one by it.
    #[doc(hidden)]
    pub fn finish_wait_reads(&self) -> u64 {
        self.inner.finished.reads()
    }
}

/// The listening task: SUBSCRIBE, pass each message on, and after a failure
/// say so (waiters then read their jobs) and subscribe again.
async fn listen(shared: Arc<Shared>, client: Client, channel: String, limit: Duration) {
    loop {
        let subscribed = async {
            let mut ps = client.get_async_pubsub().await?;
            ps.subscribe(&channel).await?;
            Ok::<_, RedisError>(ps.split())
        };
        let (sink, stream) = match tokio::time::timeout(limit, subscribed).await {
            Ok(Ok(sub)) => sub,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "finish listener cannot subscribe; will retry");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Err(_) => {
                tracing::debug!("finish listener timed out subscribing; will retry");
                continue;
            }
        };
        shared.listening(true);
        let mut stream = Box::pin(stream);
        // Until the connection closes.
        while let Some(msg) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
            match std::str::from_utf8(msg.get_payload_bytes()) {
                Ok(payload) => shared.heard(payload),
                Err(_) => shared.heard(super::super::remote_finish::ANY_JOB),
            }
        }
        tracing::debug!("finish listener lost its connection; resubscribing");
        shared.listening(false);
        drop(sink);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
