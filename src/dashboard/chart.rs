//! Throughput over the last hour: per minute, the jobs that completed and
//! those that failed or were dead-lettered, from the history the backend
//! keeps ([`Queue::throughput`](crate::Queue::throughput)) — the work of every
//! worker of the cluster, there as soon as the dashboard opens — drawn as an
//! SVG bar chart, with the failure rate and the retries of the hour.

use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup};

use crate::{minute_of, Error, Queue, ThroughputBucket};

/// Minutes the chart shows, the current one last.
const MINUTES: usize = 60;

/// The last hour, per minute, all queues together.
#[derive(Debug)]
pub(crate) struct Throughput {
    /// Oldest first: (completed, failed or dead, retried).
    minutes: Vec<(u64, u64, u64)>,
    /// Why there is no history, if there is none.
    missing: Option<String>,
}

impl Throughput {
    /// The last hour of `queue`'s backend, ending with the current minute.
    pub(crate) async fn last_hour(queue: &Queue) -> Throughput {
        let now = Utc::now();
        let first = minute_of(now) - Duration::minutes(MINUTES as i64 - 1);
        match queue.throughput(first).await {
            Ok(buckets) => Throughput::from_buckets(&buckets, first),
            Err(e @ Error::Unsupported { .. }) => Throughput::missing(format!(
                "No throughput history: {e}. It needs a backend that keeps one \
                 (all four built-in backends do)."
            )),
            Err(e) => Throughput::missing(format!("The throughput history could not be read: {e}")),
        }
    }

    fn missing(why: String) -> Throughput {
        Throughput {
            minutes: vec![(0, 0, 0); MINUTES],
            missing: Some(why),
        }
    }

    /// Sums `buckets` per minute from `first` on (a bucket of a later minute
    /// than the chart's last, by a backend clock ahead of ours, goes last).
    fn from_buckets(buckets: &[ThroughputBucket], first: DateTime<Utc>) -> Throughput {
        let mut minutes = vec![(0u64, 0u64, 0u64); MINUTES];
        for b in buckets {
            let i = (b.minute - first).num_minutes();
            if i < 0 {
                continue;
            }
            let m = &mut minutes[(i as usize).min(MINUTES - 1)];
            m.0 += b.completed;
            m.1 += b.failed + b.dead;
            m.2 += b.retried;
        }
        Throughput {
            minutes,
            missing: None,
        }
    }

    /// The chart.
    pub(crate) fn chart(&self) -> Markup {
        let (done, failed, retried) = self
            .minutes
            .iter()
            .fold((0, 0, 0), |(d, f, r), m| (d + m.0, f + m.1, r + m.2));
        let max = self
            .minutes
            .iter()
            .map(|m| m.0.max(m.1))
            .max()
            .unwrap_or(0)
            .max(1);
        let (w, h, bar) = (600u32, 80u32, 10u32);
        let y = |v: u64| h - ((v as f64 / max as f64) * f64::from(h - 4)).round() as u32;
        html! {
            div #throughput {
                h2 { "Last hour" }
                @if let Some(why) = &self.missing {
                    p.muted { (why) }
                } @else {
                    p {
                        (done) " completed, " (failed) " failed or dead"
                        @if done + failed > 0 {
                            " — failure rate " (format!("{:.1}%", failed as f64 * 100.0 / (done + failed) as f64))
                        }
                        ", " (retried) " attempts retried"
                        span.muted { " (per minute; peak " (max) ")" }
                    }
                    svg.chart viewBox=(format!("0 0 {w} {h}")) width=(w) height=(h) role="img"
                        aria-label="jobs finished per minute over the last hour"
                        data-completed=(done) data-failed=(failed) data-retried=(retried) {
                        line x1="0" y1=(h - 1) x2=(w) y2=(h - 1) stroke="#d0d5dd" {}
                        @for (i, (d, f, _)) in self.minutes.iter().enumerate() {
                            @let x = i as u32 * bar;
                            @if *d > 0 {
                                rect x=(x) y=(y(*d)) width=(bar / 2) height=(h - y(*d)) fill="#12b76a" {
                                    title { (d) " completed" }
                                }
                            }
                            @if *f > 0 {
                                rect x=(x + bar / 2) y=(y(*f)) width=(bar / 2) height=(h - y(*f)) fill="#f04438" {
                                    title { (f) " failed or dead" }
                                }
                            }
                        }
                    }
                    p.muted { "Green: completed, red: failed (cancellations too) or dead-lettered, per minute of the last hour, all queues and every worker together, as the backend counted them when the jobs changed. The failure rate is failed or dead over all finished jobs; retried attempts are not failures of the job." }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_summed_per_minute_over_queues() {
        let now = minute_of(Utc::now());
        let first = now - Duration::minutes(59);
        let b = |ago: i64, q: &str, c, f, d, r| {
            ThroughputBucket::new(now - Duration::minutes(ago), q).with_counts(c, f, d, r)
        };
        let t = Throughput::from_buckets(
            &[
                b(90, "a", 1000, 0, 0, 0), // before the hour: left out
                b(58, "a", 10, 1, 0, 0),
                b(2, "a", 20, 0, 0, 4),
                b(2, "b", 10, 0, 0, 0),
                b(0, "a", 6, 1, 2, 0),
                b(-1, "b", 1, 0, 0, 0), // a backend clock a minute ahead
            ],
            first,
        );
        assert_eq!(t.minutes.len(), 60);
        assert_eq!(t.minutes[1], (10, 1, 0));
        assert_eq!(t.minutes[57], (30, 0, 4));
        assert_eq!(t.minutes[59], (7, 3, 0));
        let html = t.chart().into_string();
        assert!(html.contains("<svg") && html.contains("47 completed, 4 failed or dead"));
        assert!(html.contains("failure rate 7.8%") && html.contains("4 attempts retried"));
    }

    #[test]
    fn a_backend_without_history_says_so() {
        let t = Throughput::missing("No throughput history: x".into());
        let html = t.chart().into_string();
        assert!(!html.contains("<svg") && html.contains("No throughput history"));
    }
}
