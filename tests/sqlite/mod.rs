//! SQLite-specific rules beyond the conformance suite, one concern a file.

mod runtimes;
mod storage;
mod urls;
