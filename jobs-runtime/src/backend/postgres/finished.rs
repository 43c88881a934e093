//! [`Backend::wait_finished`](jobs_core::Backend::wait_finished) on the
//! `finished` channel: the statements that finish jobs (record, lease
//! recovery, cancelling a waiting job) send one `NOTIFY` per call on it,
//! naming the jobs, and one `LISTEN` connection per backend wakes the
//! handles awaiting them, in every process.

use std::sync::Arc;
use std::time::Duration;

use jobs_core::{Job, JobId, Result};
use sqlx::postgres::{PgListener, PgPool};

use super::super::remote_finish::Shared;
use super::backend::PostgresBackend;
use super::options::finished_channel_name;

impl PostgresBackend {
    /// Waits on the `finished` channel (see the module docs).
    pub(super) async fn wait_finished_now(
        &self,
        id: JobId,
        timeout: Duration,
    ) -> Result<Option<Job>> {
        let pool = self.inner.listen_pool.clone();
        let channel = finished_channel_name(&self.inner.schema);
        self.inner
            .finished
            .wait(self, id, timeout, move |shared| {
                listen(shared, pool, channel)
            })
            .await
    }

    /// How many times `wait_finished` read a job so far, in every handle on
    /// this store: tests tell a signalled wait from a polling one by it.
    #[doc(hidden)]
    pub fn finish_wait_reads(&self) -> u64 {
        self.inner.finished.reads()
    }
}

/// The listening task: LISTEN, pass each notification on, and after a
/// failure say so (waiters then read their jobs) and subscribe again.
async fn listen(shared: Arc<Shared>, pool: PgPool, channel: String) {
    loop {
        let subscribed = async {
            let mut l = PgListener::connect_with(&pool).await?;
            l.ignore_pool_close_event(true);
            l.listen(&channel).await?;
            Ok::<_, sqlx::Error>(l)
        }
        .await;
        let mut l = match subscribed {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "finish listener cannot subscribe; will retry");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        shared.listening(true);
        loop {
            match l.try_recv().await {
                Ok(Some(note)) => shared.heard(note.payload()),
                // Dropped (notifications may be lost) or failed: subscribe anew.
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "finish listener failed; resubscribing");
                    break;
                }
            }
        }
        shared.listening(false);
        drop(l);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
