//! The runtime of `jobs`: the [`WorkerManager`] that claims, runs, retries and
//! dead-letters jobs, and the queue backends (`memory`, and behind cargo
//! features `sqlite`, `postgres`, `redis`), reached through [`connect`].

pub mod backend;
mod connect;

pub use connect::{connect, SCHEMES};
