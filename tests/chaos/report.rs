//! Reading the workers' logs after a scenario and counting what went wrong:
//! lost jobs, jobs that ran to success twice (and whether a kill or an
//! outage explains it), jobs that ran on two workers at once, and how long a
//! killed worker's jobs waited before another worker picked them up.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use super::worker::Event;

/// Something the orchestrator did, with its time (µs since the epoch).
#[derive(Debug, Clone)]
pub enum Fault {
    /// SIGKILL of a worker process.
    Kill { pid: u32, at: u64 },
    /// The database was down (crashed) or its connections were cut, from
    /// `from` until `to`.
    Outage { from: u64, to: u64 },
}

/// One execution of one job: a start, and its end if the log has one.
#[derive(Debug, Clone)]
struct Execution {
    pid: u32,
    start: u64,
    /// Finish (`F`) or cancel (`C`), if logged.
    end: Option<(char, u64)>,
}

/// One row of the suite's table.
#[derive(Debug, Default, Clone)]
pub struct Row {
    pub scenario: String,
    pub acknowledged: usize,
    pub completed: usize,
    pub lost: usize,
    pub stuck: usize,
    pub twice_explained: usize,
    pub twice_unexplained: usize,
    pub concurrent: usize,
    pub failed_or_dead: usize,
    pub kills: usize,
    pub outages: usize,
    /// Kill → next start of a job the kill cut short, in ms.
    pub recovery_ms: Vec<u64>,
    /// Lease + reap interval, in ms, to compare recovery with.
    pub lease_plus_reap_ms: u64,
    pub notes: Vec<String>,
}

impl Row {
    pub fn header() -> &'static str {
        "| scenario | acknowledged | completed | lost | ran OK twice (kill/outage · unexplained) | ran concurrently | FAILED/DEAD | kills · outages | recovery median / max (lease+reap) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    }

    fn recovery(&self) -> String {
        if self.recovery_ms.is_empty() {
            return format!("— ({} ms)", self.lease_plus_reap_ms);
        }
        let mut v = self.recovery_ms.clone();
        v.sort_unstable();
        let median = v[v.len() / 2];
        let max = *v.last().unwrap();
        format!(
            "{:.1} / {:.1} s ({:.1} s)",
            median as f64 / 1000.0,
            max as f64 / 1000.0,
            self.lease_plus_reap_ms as f64 / 1000.0
        )
    }

    /// What makes the run a failure.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.lost > 0 {
            p.push(format!("{} acknowledged jobs lost", self.lost));
        }
        if self.stuck > 0 {
            p.push(format!("{} jobs stuck (not finished in time)", self.stuck));
        }
        if self.concurrent > 0 {
            p.push(format!(
                "{} jobs ran on two workers at once",
                self.concurrent
            ));
        }
        if self.twice_unexplained > 0 {
            p.push(format!(
                "{} jobs ran to success twice with no kill or outage to explain it",
                self.twice_unexplained
            ));
        }
        p.extend(self.notes.iter().cloned());
        p
    }
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "| {} | {} | {} | {} | {} · {} | {} | {} | {} · {} | {} |",
            self.scenario,
            self.acknowledged,
            self.completed,
            self.lost,
            self.twice_explained,
            self.twice_unexplained,
            self.concurrent,
            self.failed_or_dead,
            self.kills,
            self.outages,
            self.recovery()
        )
    }
}

/// Every event in the `*.log` files of `dir`.
pub fn read_events(dir: &Path) -> Vec<Event> {
    let mut events = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path).unwrap();
            // A line cut by a SIGKILL mid-write does not parse and is skipped.
            events.extend(text.lines().filter_map(Event::parse));
        }
    }
    events
}

/// Fills the log-derived columns of `row` from `events` and `faults`.
/// `end_of_run` closes executions whose worker was still alive at the end.
pub fn analyse(row: &mut Row, events: &[Event], faults: &[Fault], end_of_run: u64) {
    let kill_of: HashMap<u32, u64> = faults
        .iter()
        .filter_map(|f| match f {
            Fault::Kill { pid, at } => Some((*pid, *at)),
            _ => None,
        })
        .collect();
    row.kills = kill_of.len();
    let outages: Vec<(u64, u64)> = faults
        .iter()
        .filter_map(|f| match f {
            Fault::Outage { from, to } => Some((*from, *to)),
            _ => None,
        })
        .collect();
    row.outages = outages.len();

    // Executions per job, keyed by (job, token, pid): a lease token is one claim.
    let mut runs: BTreeMap<String, BTreeMap<(String, u32), Execution>> = BTreeMap::new();
    for e in events {
        let key = (e.token.clone(), e.pid);
        let job = runs.entry(e.job.clone()).or_default();
        match e.kind {
            'S' => {
                job.insert(
                    key,
                    Execution {
                        pid: e.pid,
                        start: e.at,
                        end: None,
                    },
                );
            }
            kind @ ('F' | 'C') => {
                if let Some(x) = job.get_mut(&key) {
                    x.end = Some((kind, e.at));
                }
            }
            _ => {}
        }
    }

    for execs in runs.values() {
        let mut execs: Vec<&Execution> = execs.values().collect();
        execs.sort_by_key(|x| x.start);
        // When each execution stopped running: its logged end, its worker's
        // kill, or the end of the run.
        let stop = |x: &Execution| {
            x.end
                .map(|(_, t)| t)
                .or_else(|| kill_of.get(&x.pid).copied().filter(|k| *k >= x.start))
                .unwrap_or(end_of_run)
        };
        let overlapping = execs.iter().enumerate().any(|(i, a)| {
            execs[i + 1..]
                .iter()
                .any(|b| b.pid != a.pid && b.start < stop(a) && a.start < stop(b))
        });
        if overlapping {
            row.concurrent += 1;
        }
        let oks: Vec<&&Execution> = execs
            .iter()
            .filter(|x| matches!(x.end, Some(('F', _))))
            .collect();
        if oks.len() > 1 {
            let explained = oks.windows(2).all(|w| {
                let (first, second) = (w[0], w[1]);
                let done = first.end.unwrap().1;
                let killed_before_recording = kill_of
                    .get(&first.pid)
                    .is_some_and(|k| *k >= done && *k <= second.start);
                let outage = outages
                    .iter()
                    .any(|(from, to)| *from <= second.start && *to + 1_000_000 >= done);
                killed_before_recording || outage
            });
            if explained {
                row.twice_explained += 1;
            } else {
                row.twice_unexplained += 1;
            }
        }
        // Jobs a kill cut short: how long until they ran again.
        for (i, x) in execs.iter().enumerate() {
            let Some(killed) = kill_of.get(&x.pid) else {
                continue;
            };
            if x.end.is_none() && *killed >= x.start {
                if let Some(next) = execs[i + 1..].iter().find(|n| n.start >= *killed) {
                    row.recovery_ms.push((next.start - killed) / 1000);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: char, job: &str, token: &str, pid: u32, at: u64) -> Event {
        Event {
            kind,
            job: job.into(),
            token: token.into(),
            attempt: 1,
            pid,
            at,
        }
    }

    #[test]
    fn counts_overlaps_duplicates_and_recovery() {
        let events = vec![
            // a: killed mid-run on 1, run again on 2 after 3 s.
            ev('S', "a", "t1", 1, 1_000_000),
            ev('S', "a", "t2", 2, 5_000_000),
            ev('F', "a", "t2", 2, 5_100_000),
            // b: finished on 1 just before the kill, ran again: explained.
            ev('S', "b", "t3", 1, 1_000_000),
            ev('F', "b", "t3", 1, 1_900_000),
            ev('S', "b", "t4", 2, 6_000_000),
            ev('F', "b", "t4", 2, 6_100_000),
            // c: two successes, no fault in between: unexplained.
            ev('S', "c", "t5", 3, 1_000_000),
            ev('F', "c", "t5", 3, 1_100_000),
            ev('S', "c", "t6", 2, 1_200_000),
            ev('F', "c", "t6", 2, 1_300_000),
            // d: two workers at once.
            ev('S', "d", "t7", 3, 1_000_000),
            ev('S', "d", "t8", 2, 1_050_000),
            ev('F', "d", "t7", 3, 1_100_000),
            ev('F', "d", "t8", 2, 1_150_000),
        ];
        let faults = vec![Fault::Kill {
            pid: 1,
            at: 2_000_000,
        }];
        let mut row = Row::default();
        analyse(&mut row, &events, &faults, 10_000_000);
        assert_eq!(row.concurrent, 1, "{row:?}");
        assert_eq!(row.twice_explained, 1, "{row:?}");
        assert_eq!(row.twice_unexplained, 2, "c and d: {row:?}");
        assert_eq!(row.recovery_ms, vec![3_000]);
        assert_eq!(row.kills, 1);
    }
}
