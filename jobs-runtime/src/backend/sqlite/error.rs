//! Mapping the driver's errors to the framework's, with their kind.

use jobs_core::{BackendErrorKind, Error};

pub(super) const BACKEND: &str = "sqlite";

/// The kind of a driver error, by SQLite's primary result code.
pub(super) fn kind_of(e: &sqlx::Error) -> BackendErrorKind {
    use BackendErrorKind::*;
    match e {
        sqlx::Error::Database(db) => {
            let code: i64 = db.code().and_then(|c| c.parse().ok()).unwrap_or(0);
            match code & 0xff {
                // BUSY, LOCKED: another writer holds the database.
                5 | 6 => Transient,
                // NOMEM, IOERR, CANTOPEN, FULL (the disk): the database is out of reach.
                7 | 10 | 13 | 14 => Unavailable,
                // CONSTRAINT.
                19 => Conflict,
                // TOOBIG, MISMATCH, RANGE: the value cannot be stored.
                18 | 20 | 25 => Data,
                _ => Other,
            }
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => Unavailable,
        sqlx::Error::WorkerCrashed => Unavailable,
        sqlx::Error::Encode(_) => Data,
        _ => Other,
    }
}

/// The framework's error for a driver error.
pub(super) fn db_err(e: sqlx::Error) -> Error {
    let kind = kind_of(&e);
    Error::backend(BACKEND, kind, e)
}

/// A backend error described by a message alone.
pub(super) fn backend_msg(kind: BackendErrorKind, message: impl Into<String>) -> Error {
    Error::backend_msg(BACKEND, kind, message)
}
