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

/// The connection of a detached handle: none until the first call, then one
/// for as long as the runtime that opened it lives. A `WorkerManager` that is
/// stopped and started again runs its loops on a new runtime; the connection
/// of the old one died with it, so the next call opens a fresh one instead
/// of failing once on the dead one.
pub(super) struct OwnConn {
    client: Client,
    config: ConnectionManagerConfig,
    /// The connection, and a token cancelled when the runtime that opened it
    /// shuts down. A tokio mutex: opening awaits, and concurrent first calls
    /// should share one connection rather than race to open several.
    slot: tokio::sync::Mutex<Option<(ConnectionManager, CancellationToken)>>,
}

impl OwnConn {
    pub(super) fn new(client: Client, config: ConnectionManagerConfig) -> Self {
        OwnConn {
            client,
            config,
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
