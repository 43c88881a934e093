//! Connections: the one a [`RedisBackend`] opens when it connects, and the
//! one a [detached](jobs_core::Backend::detached) handle opens for itself.
//!
//! A `ConnectionManager` multiplexes every call over one socket whose I/O task
//! runs on the tokio runtime that opened it (and it reconnects on the runtime
//! that notices the loss). A `WorkerManager` renews leases and records
//! outcomes on a single-threaded runtime of its own, precisely so that
//! handlers blocking the application's runtime cannot stall them; if those
//! calls went through the application's connection, its I/O task would still
//! be stuck behind the blocked threads. So a detached handle opens its own
//! connection, lazily, on the first call, from whichever runtime makes it.
//!
//! Except for outcomes: a detached handle records them through the
//! connection it was detached from. Claims and records then travel on one
//! socket, and Redis — the bottleneck of a busy worker — reads and answers
//! them together instead of serving two connections: W1 drained 1.1–1.45×
//! faster in back-to-back pairs (README). Blocked threads can only delay records that way, never
//! cost a lease: the heartbeat (on the handle's own connection) renews a
//! job until its outcome is written.

use std::sync::Arc;

use jobs_core::Result;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Client;
use tokio_util::sync::CancellationToken;

use super::scripts::backend_err;

/// Where a handle's calls go.
#[derive(Clone)]
pub(super) enum Conn {
    /// Opened by `connect`, on the caller's runtime; clones share it.
    Shared(ConnectionManager),
    /// A detached handle's own, opened on first use.
    Own(Arc<OwnConn>),
}

impl Conn {
    /// The connection outcomes are recorded through: a detached handle's is
    /// the one it was detached from (see the module's docs).
    pub(super) async fn for_records(&self) -> Result<ConnectionManager> {
        match self {
            Conn::Own(own) => match &own.records {
                Some(conn) => Ok(conn.clone()),
                None => own.get().await,
            },
            Conn::Shared(_) => self.get().await,
        }
    }
}

/// The connection of a detached handle: none until the first call, then one
/// for as long as the runtime that opened it lives. A `WorkerManager` that is
/// stopped and started again runs its loops on a new runtime; the connection
/// of the old one died with it, so the next call opens a fresh one instead
/// of failing once on the dead one.
pub(super) struct OwnConn {
    client: Client,
    config: ConnectionManagerConfig,
    /// The connection of the handle this one was detached from, for records.
    pub(super) records: Option<ConnectionManager>,
    /// The connection, and a token cancelled when the runtime that opened it
    /// shuts down. A tokio mutex: opening awaits, and concurrent first calls
    /// should share one connection rather than race to open several.
    slot: tokio::sync::Mutex<Option<(ConnectionManager, CancellationToken)>>,
}

impl OwnConn {
    pub(super) fn new(
        client: Client,
        config: ConnectionManagerConfig,
        records: Option<ConnectionManager>,
    ) -> Self {
        OwnConn {
            client,
            config,
            records,
            slot: tokio::sync::Mutex::new(None),
        }
    }

    /// The connection, opened on the calling runtime if there is none yet or
    /// the runtime that opened the last one is gone.
    async fn get(&self) -> Result<ConnectionManager> {
        let mut slot = self.slot.lock().await;
        if let Some((conn, gone)) = slot.as_ref() {
            if !gone.is_cancelled() {
                return Ok(conn.clone());
            }
        }
        let conn = ConnectionManager::new_with_config(self.client.clone(), self.config.clone())
            .await
            .map_err(backend_err)?;
        // A task that lives exactly as long as this runtime: when the runtime
        // shuts down, the task is dropped and its guard cancels `gone`.
        let gone = CancellationToken::new();
        let guard = gone.clone().drop_guard();
        tokio::spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        *slot = Some((conn.clone(), gone));
        Ok(conn)
    }
}

impl Conn {
    /// A connection to call Redis with.
    pub(super) async fn get(&self) -> Result<ConnectionManager> {
        match self {
            Conn::Shared(conn) => Ok(conn.clone()),
            Conn::Own(own) => own.get().await,
        }
    }
}
