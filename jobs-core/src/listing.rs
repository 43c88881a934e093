//! Keyset paging of job lists: the sort orders, the cursor that says where a
//! page ended, and the page itself.
//!
//! A page is read by walking one index of the backend in the sort's order from
//! just after the cursor, so page 10,000 costs what page 1 costs. Filters that
//! the index does not cover (a text search, a type, a queue) are checked on the
//! rows the walk meets, and the walk stops after
//! [`JobFilter::scan_limit`](crate::JobFilter::scan_limit) rows: a page never
//! reads more than that, however rare its matches. A page that stopped there
//! says so ([`JobPage::scan_limited`]) and its cursor continues from the last
//! row it looked at.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::{Error, Job, JobId};

/// The order of a job list. Every order is a walk of one index on the durable
/// backends, and every one is total (ties are broken as each variant says), so
/// a cursor names exactly one position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum JobSort {
    /// Enqueue order, oldest first: what `list` has always returned (the default,
    /// so older callers see no change).
    #[default]
    Oldest,
    /// Enqueue order, newest first.
    Newest,
    /// Waiting jobs only (PENDING, SCHEDULED, RETRYING), by `run_at`, soonest
    /// first; equal `run_at` in enqueue order. Jobs in other statuses are not
    /// listed in this order.
    DueSoonest,
    /// Finished jobs only (COMPLETED, FAILED, DEAD_LETTER), by `completed_at`,
    /// latest first; equal times by id, descending.
    RecentlyFinished,
}

impl JobSort {
    /// Every order, in the order a menu shows them.
    pub const ALL: [JobSort; 4] = [
        JobSort::Newest,
        JobSort::Oldest,
        JobSort::DueSoonest,
        JobSort::RecentlyFinished,
    ];

    /// Its name in URLs and on the command line: `oldest`, `newest`, `due`,
    /// `finished`.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobSort::Oldest => "oldest",
            JobSort::Newest => "newest",
            JobSort::DueSoonest => "due",
            JobSort::RecentlyFinished => "finished",
        }
    }

    /// What an operator reads in a menu.
    pub const fn label(self) -> &'static str {
        match self {
            JobSort::Oldest => "oldest first",
            JobSort::Newest => "newest first",
            JobSort::DueSoonest => "due soonest (waiting)",
            JobSort::RecentlyFinished => "recently finished",
        }
    }

    const fn tag(self) -> char {
        match self {
            JobSort::Oldest => 'o',
            JobSort::Newest => 'n',
            JobSort::DueSoonest => 'd',
            JobSort::RecentlyFinished => 'f',
        }
    }

    fn from_tag(c: char) -> Option<Self> {
        JobSort::ALL.into_iter().find(|s| s.tag() == c)
    }
}

impl fmt::Display for JobSort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobSort {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        JobSort::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| {
                Error::InvalidFilter(format!(
                    "unknown sort order `{s}`; expected one of `oldest`, `newest`, `due`, `finished`"
                ))
            })
    }
}

/// Where a page of a job list ended: the next page starts just after it.
///
/// Opaque to users: get one from [`JobPage::next`], carry it as a string
/// ([`Display`](fmt::Display) / [`FromStr`], URL-safe), hand it back in
/// [`JobFilter::after`](crate::JobFilter::after). A malformed string is
/// refused with [`Error::InvalidFilter`]; a cursor of another sort order is
/// refused by the listing.
///
/// ```
/// use jobs_core::{JobCursor, JobSort};
/// let c = JobCursor::seq(JobSort::Newest, 42);
/// let back: JobCursor = c.to_string().parse().unwrap();
/// assert_eq!(back, c);
/// assert!("n42x".parse::<JobCursor>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobCursor {
    sort: JobSort,
    key: Key,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// Enqueue sequence (Oldest, Newest).
    Seq(i64),
    /// `run_at` in µs, then the enqueue sequence (DueSoonest).
    Due(i64, i64),
    /// `completed_at` in µs, then the id (RecentlyFinished).
    Finished(i64, JobId),
    /// A count of matches to skip: the fallback of backends without keyset paging.
    Offset(u64),
}

impl JobCursor {
    /// A position in enqueue order (`Oldest` or `Newest`): the backend's enqueue
    /// sequence number of the job it ends at.
    pub const fn seq(sort: JobSort, seq: i64) -> Self {
        JobCursor {
            sort,
            key: Key::Seq(seq),
        }
    }

    /// A position in [`JobSort::DueSoonest`]: the job's `run_at` and enqueue sequence.
    pub fn due(run_at: DateTime<Utc>, seq: i64) -> Self {
        JobCursor {
            sort: JobSort::DueSoonest,
            key: Key::Due(run_at.timestamp_micros(), seq),
        }
    }

    /// A position in [`JobSort::RecentlyFinished`]: the job's `completed_at` and id.
    pub fn finished(completed_at: DateTime<Utc>, id: JobId) -> Self {
        JobCursor {
            sort: JobSort::RecentlyFinished,
            key: Key::Finished(completed_at.timestamp_micros(), id),
        }
    }

    /// After the first `skipped` matches, for backends that page by offset
    /// (the default [`Backend::list_page`](crate::Backend::list_page)).
    pub const fn offset(sort: JobSort, skipped: u64) -> Self {
        JobCursor {
            sort,
            key: Key::Offset(skipped),
        }
    }

    /// The order it belongs to.
    pub const fn sort(&self) -> JobSort {
        self.sort
    }

    /// The enqueue sequence number, for a cursor of `Oldest` or `Newest`.
    pub const fn as_seq(&self) -> Option<i64> {
        match self.key {
            Key::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// `run_at` (µs since the epoch) and enqueue sequence, for a `DueSoonest` cursor.
    pub const fn as_due(&self) -> Option<(i64, i64)> {
        match self.key {
            Key::Due(at, seq) => Some((at, seq)),
            _ => None,
        }
    }

    /// `completed_at` (µs since the epoch) and id, for a `RecentlyFinished` cursor.
    pub const fn as_finished(&self) -> Option<(i64, JobId)> {
        match self.key {
            Key::Finished(at, id) => Some((at, id)),
            _ => None,
        }
    }

    /// The matches already skipped, for an offset cursor.
    pub const fn as_offset(&self) -> Option<u64> {
        match self.key {
            Key::Offset(n) => Some(n),
            _ => None,
        }
    }

    /// Refuses a cursor that belongs to another order than `sort`, or whose
    /// key is not the kind this backend makes (`keyset`: whether the backend
    /// pages by key, not by offset).
    pub fn check(&self, sort: JobSort, keyset: bool) -> crate::Result<()> {
        if self.sort != sort {
            return Err(Error::InvalidFilter(format!(
                "the cursor `{self}` belongs to the `{}` order, not `{sort}`; start again from the first page",
                self.sort
            )));
        }
        let fits = match (self.key, sort) {
            (Key::Offset(_), _) => !keyset,
            (Key::Seq(_), JobSort::Oldest | JobSort::Newest) => keyset,
            (Key::Due(..), JobSort::DueSoonest) => keyset,
            (Key::Finished(..), JobSort::RecentlyFinished) => keyset,
            _ => false,
        };
        if fits {
            Ok(())
        } else {
            Err(Error::InvalidFilter(format!(
                "the cursor `{self}` was not made by this backend; start again from the first page"
            )))
        }
    }
}

impl fmt::Display for JobCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.sort.tag();
        match self.key {
            Key::Seq(s) => write!(f, "{t}{s}"),
            Key::Due(at, seq) => write!(f, "{t}{at}.{seq}"),
            Key::Finished(at, id) => write!(f, "{t}{at}.{}", id.as_uuid().simple()),
            Key::Offset(n) => write!(f, "{t}+{n}"),
        }
    }
}

impl FromStr for JobCursor {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            let shown: String = s.chars().take(80).collect();
            Error::InvalidFilter(format!(
                "malformed cursor `{shown}`: {why}; use the `next` link of a page, or start from the first page"
            ))
        };
        let mut chars = s.chars();
        let sort = chars
            .next()
            .and_then(JobSort::from_tag)
            .ok_or_else(|| bad("it does not start with a sort order"))?;
        let rest = chars.as_str();
        let int = |v: &str| -> Result<i64, Error> {
            if v.is_empty() || v.len() > 20 {
                return Err(bad("a number is missing or too long"));
            }
            v.parse::<i64>()
                .map_err(|_| bad("a number is not a number"))
        };
        let key = if let Some(n) = rest.strip_prefix('+') {
            Key::Offset(u64::try_from(int(n)?).map_err(|_| bad("a negative offset"))?)
        } else {
            match sort {
                JobSort::Oldest | JobSort::Newest => Key::Seq(int(rest)?),
                JobSort::DueSoonest => {
                    let (a, b) = rest
                        .split_once('.')
                        .ok_or_else(|| bad("a part is missing"))?;
                    let at = int(a)?;
                    DateTime::<Utc>::from_timestamp_micros(at)
                        .ok_or_else(|| bad("no such time"))?;
                    Key::Due(at, int(b)?)
                }
                JobSort::RecentlyFinished => {
                    let (a, b) = rest
                        .split_once('.')
                        .ok_or_else(|| bad("a part is missing"))?;
                    let at = int(a)?;
                    DateTime::<Utc>::from_timestamp_micros(at)
                        .ok_or_else(|| bad("no such time"))?;
                    if b.len() != 32 {
                        return Err(bad("the job id is not 32 hex digits"));
                    }
                    let id =
                        uuid::Uuid::try_parse(b).map_err(|_| bad("the job id is not an id"))?;
                    Key::Finished(at, JobId::from_uuid(id))
                }
            }
        };
        Ok(JobCursor { sort, key })
    }
}

impl serde::Serialize for JobCursor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for JobCursor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One page of a job list (see [`Backend::list_page`](crate::Backend::list_page)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobPage {
    /// The matching jobs, in the filter's order.
    pub jobs: Vec<Job>,
    /// Where the next page starts, while more jobs may match; `None` after
    /// the last page.
    pub next: Option<JobCursor>,
    /// The page stopped after looking at
    /// [`scan_limit`](crate::JobFilter::scan_limit) jobs, with fewer than
    /// `limit` matches: more may follow [`next`](Self::next) ("searched the
    /// N most recent jobs; continue").
    pub scan_limited: bool,
}

impl JobPage {
    /// A page of `jobs`, continued at `next` (if any).
    pub fn new(jobs: Vec<Job>, next: Option<JobCursor>, scan_limited: bool) -> Self {
        JobPage {
            jobs,
            next,
            scan_limited,
        }
    }
}

/// A search term as the backends match it: ASCII letters folded to lower
/// case (other characters match exactly), `None` for an empty term.
pub fn search_needle(search: Option<&str>) -> Option<String> {
    search
        .filter(|s| !s.is_empty())
        .map(|s| s.to_ascii_lowercase())
}

/// Whether `needle` (from [`search_needle`]) occurs in `job`'s type, its
/// payload's JSON text, its latest error or the message of an error of its
/// history — the text the backends search.
pub fn search_hits(job: &Job, needle: &str) -> bool {
    let has = |text: &str| text.to_ascii_lowercase().contains(needle);
    has(&job.job_type)
        || has(&job.payload.to_string())
        || job.error_message.as_deref().is_some_and(has)
        || job.errors.iter().any(|e| has(&e.message))
}

/// How many jobs a page looks at, at most, by default.
pub const DEFAULT_SCAN_LIMIT: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let id = JobId::new();
        let at = DateTime::<Utc>::from_timestamp_micros(1_733_240_000_123_456).unwrap();
        for c in [
            JobCursor::seq(JobSort::Oldest, 0),
            JobCursor::seq(JobSort::Newest, i64::MAX),
            JobCursor::due(at, 7),
            JobCursor::finished(at, id),
            JobCursor::offset(JobSort::Oldest, 300),
        ] {
            let s = c.to_string();
            assert!(s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)));
            assert_eq!(s.parse::<JobCursor>().unwrap(), c, "{s}");
        }
        for bad in [
            "",
            "x1",
            "o",
            "oabc",
            "o1.2",
            "d1",
            "d1.x",
            "f1.abc",
            "o+-1",
            "o99999999999999999999999",
            "d9000000000000000000.1",
        ] {
            let err = bad.parse::<JobCursor>().unwrap_err();
            assert!(matches!(err, Error::InvalidFilter(_)), "{bad}: {err}");
            assert!(err.to_string().contains("malformed cursor"), "{err}");
        }
        let c = JobCursor::seq(JobSort::Newest, 3);
        assert!(c.check(JobSort::Newest, true).is_ok());
        assert!(c.check(JobSort::Oldest, true).is_err());
        assert!(c.check(JobSort::Newest, false).is_err());
    }

    #[test]
    fn search_folds_ascii_case_only() {
        let mut job = Job::new(
            JobId::new(),
            "Email.Send",
            serde_json::json!({"to": "Ada@Example.com"}),
        );
        assert!(search_hits(&job, &search_needle(Some("ADA@")).unwrap()));
        assert!(search_hits(&job, "email.send"));
        assert!(!search_hits(&job, "bob"));
        job.error_message = Some("SMTP refused".into());
        assert!(search_hits(&job, "smtp"));
        assert_eq!(search_needle(Some("")), None);
    }
}
