//! SQLite-specific rules beyond the conformance suite, one concern a file.

mod counts;
mod runtimes;
mod storage;
mod urls;
