//! Throughput over the last hour, as the dashboard sees it: every time it
//! counts the jobs (a page or a poll of the overview, a scrape of
//! `/metrics`) it keeps a sample of the COMPLETED and FAILED + DEAD_LETTER
//! totals (at most one per 10 s, for an hour), and draws the increase per
//! minute as an SVG bar chart. Its limits, said under the chart: it covers
//! only the time this dashboard was up and watched, and pruning, deletion
//! or a requeue lowers a total (such a minute counts as 0). The exact
//! figures come from the runtime's counters in each worker process, through
//! the `metrics` facade and the exporter the application installs.

use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup};

use super::live::QueueRow;
use crate::JobStatus;

/// Samples, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Samples(Mutex<VecDeque<Sample>>);

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: DateTime<Utc>,
    completed: u64,
    failed: u64,
}

const EVERY: i64 = 10;
const MINUTES: i64 = 60;

impl Samples {
    /// Keeps the totals of `rows` if the last sample is 10 s old.
    pub(crate) fn record(&self, rows: &[QueueRow]) {
        let now = Utc::now();
        let completed = rows.iter().map(|r| r.count(JobStatus::Completed)).sum();
        let failed = rows
            .iter()
            .map(|r| r.count(JobStatus::Failed) + r.count(JobStatus::DeadLetter))
            .sum();
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if s.back()
            .is_some_and(|last| now - last.at < Duration::seconds(EVERY))
        {
            return;
        }
        s.push_back(Sample {
            at: now,
            completed,
            failed,
        });
        while s
            .front()
            .is_some_and(|f| now - f.at > Duration::minutes(MINUTES + 1))
        {
            s.pop_front();
        }
    }

    /// Completed and failed per minute over the last hour, oldest first, and
    /// whether any minute has a figure.
    fn per_minute(&self, now: DateTime<Utc>) -> (Vec<(u64, u64)>, bool) {
        let s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut buckets = vec![(0u64, 0u64); MINUTES as usize];
        let mut any = false;
        for (a, b) in s.iter().zip(s.iter().skip(1)) {
            let age = (now - b.at).num_minutes();
            if !(0..MINUTES).contains(&age) {
                continue;
            }
            any = true;
            let i = (MINUTES - 1 - age) as usize;
            buckets[i].0 += b.completed.saturating_sub(a.completed);
            buckets[i].1 += b.failed.saturating_sub(a.failed);
        }
        (buckets, any)
    }

    /// The chart.
    pub(crate) fn chart(&self) -> Markup {
        let now = Utc::now();
        let (buckets, any) = self.per_minute(now);
        let (done, failed): (u64, u64) =
            buckets.iter().fold((0, 0), |(d, f), (a, b)| (d + a, f + b));
        let max = buckets
            .iter()
            .map(|(a, b)| a.max(b))
            .max()
            .copied()
            .unwrap_or(0)
            .max(1);
        let (w, h, bar) = (600u32, 80u32, 10u32);
        let y = |v: u64| h - ((v as f64 / max as f64) * f64::from(h - 4)).round() as u32;
        html! {
            div #throughput {
                h2 { "Last hour" }
                @if any {
                    p {
                        (done) " completed, " (failed) " failed or dead"
                        @if done + failed > 0 {
                            " — failure rate " (format!("{:.1}%", failed as f64 * 100.0 / (done + failed) as f64))
                        }
                        span.muted { " (per minute; peak " (max) ")" }
                    }
                    svg.chart viewBox=(format!("0 0 {w} {h}")) width=(w) height=(h) role="img"
                        aria-label="jobs finished per minute over the last hour" {
                        line x1="0" y1=(h - 1) x2=(w) y2=(h - 1) stroke="#d0d5dd" {}
                        @for (i, (d, f)) in buckets.iter().enumerate() {
                            @let x = i as u32 * bar;
                            @if *d > 0 {
                                rect x=(x) y=(y(*d)) width=(bar / 2) height=(h - y(*d)) fill="#12b76a" {
                                    title { (d) " completed" }
                                }
                            }
                            @if *f > 0 {
                                rect x=(x + bar / 2) y=(y(*f)) width=(bar / 2) height=(h - y(*f)) fill="#f04438" {
                                    title { (f) " failed" }
                                }
                            }
                        }
                    }
                    p.muted { "Green: completed, red: failed or dead, per minute, as this dashboard sampled the counts while it was open (pruning and requeues lower them). The exact counters are the workers' own, through the metrics facade." }
                } @else {
                    p.muted { "Throughput shows here once this dashboard has counted the jobs twice, 10 s apart (keep the overview open)." }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(points: &[(i64, u64, u64)]) -> Samples {
        let now = Utc::now();
        let s = Samples::default();
        for &(secs_ago, completed, failed) in points {
            s.0.lock().unwrap().push_back(Sample {
                at: now - Duration::seconds(secs_ago),
                completed,
                failed,
            });
        }
        s
    }

    #[test]
    fn minutes_get_the_increase_of_their_samples() {
        let s = samples(&[
            (7200, 0, 0),  // too old: its pair ends an hour ago
            (3500, 10, 1), // ends the first pair (+10, +1), 58 minutes ago
            (130, 40, 1),  // +30 two minutes ago
            (125, 20, 0),  // pruned: a drop counts as 0
            (5, 26, 3),    // +6, +3 in the last minute
        ]);
        let (buckets, any) = s.per_minute(Utc::now());
        assert!(any);
        assert_eq!(buckets.len(), 60);
        assert_eq!(buckets[1], (10, 1));
        assert_eq!(buckets[57], (30, 0));
        assert_eq!(buckets[59], (6, 3));
        assert_eq!(buckets.iter().map(|b| b.0).sum::<u64>(), 46);
        let html = s.chart().into_string();
        assert!(html.contains("<svg") && html.contains("46 completed, 4 failed or dead"));
        assert!(html.contains("failure rate 8.0%"));
    }

    #[test]
    fn one_sample_draws_nothing_yet() {
        let s = samples(&[(5, 3, 0)]);
        let html = s.chart().into_string();
        assert!(!html.contains("<svg") && html.contains("counted the jobs twice"));
    }
}
