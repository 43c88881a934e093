//! Work over many jobs at once: the throughput history (kept by every
//! script that changes jobs, see `flush_counts` in common.lua) and bulk
//! requeue.

use chrono::{DateTime, Utc};
use jobs_core::{JobId, RequeueFilter, RequeueReport, Result, ThroughputBucket};
use redis::Value;

use super::backend::RedisBackend;
use super::row::{array, text};
use super::scripts::{backend_err, unexpected, PER_CALL, SCRIPTS};

impl RedisBackend {
    pub(super) async fn throughput_now(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<ThroughputBucket>> {
        // The first minute that starts at or after `since`.
        let secs = since.timestamp() + i64::from(since.timestamp_subsec_nanos() > 0);
        let first = secs.div_euclid(60) * 60 + i64::from(secs.rem_euclid(60) != 0) * 60;
        let mut conn = self.conn().await?;
        let reply: Value = SCRIPTS
            .throughput
            .key(&self.inner.ns)
            .arg(first)
            .invoke_async(&mut conn)
            .await
            .map_err(backend_err)?;
        let mut out: Vec<ThroughputBucket> = Vec::new();
        let mut items = array(reply).into_iter();
        while let (Some(minute), Some(fields)) = (items.next(), items.next()) {
            let minute: i64 = text(&minute)
                .and_then(|m| m.parse().ok())
                .ok_or_else(|| unexpected("a throughput minute that is not a number"))?;
            let at = DateTime::from_timestamp(minute, 0)
                .ok_or_else(|| unexpected(format_args!("throughput minute {minute}")))?;
            let start = out.len();
            let mut fields = array(fields).into_iter();
            while let (Some(field), Some(n)) = (fields.next(), fields.next()) {
                let (Some(field), Some(n)) = (text(&field), text(&n)) else {
                    continue;
                };
                let Some((kind, queue)) = field.split_once(' ') else {
                    continue;
                };
                let n: u64 = n.parse().unwrap_or(0);
                let i = match out[start..].iter().position(|b| b.queue == queue) {
                    Some(i) => start + i,
                    None => {
                        out.push(ThroughputBucket::new(at, queue));
                        out.len() - 1
                    }
                };
                let b = &mut out[i];
                match kind {
                    "c" => b.completed += n,
                    "f" => b.failed += n,
                    "d" => b.dead += n,
                    "r" => b.retried += n,
                    _ => {}
                }
            }
        }
        out.sort();
        Ok(out)
    }

    pub(super) async fn requeue_many_now(&self, filter: &RequeueFilter) -> Result<RequeueReport> {
        filter.validate()?;
        let mut report = RequeueReport::default();
        let mut after = String::from("-inf");
        let mut conn = self.conn().await?;
        loop {
            let left = filter.limit.saturating_sub(report.requeued as usize);
            if left == 0 {
                break;
            }
            let (examined, last, requeued, skipped): (usize, String, u64, Vec<String>) = SCRIPTS
                .requeue_many
                .key(&self.inner.ns)
                .arg(filter.status.as_str())
                .arg(filter.queue.as_deref().unwrap_or(""))
                .arg(filter.job_type.as_deref().unwrap_or(""))
                .arg(&after)
                .arg(PER_CALL)
                .arg(left.min(PER_CALL))
                .invoke_async(&mut conn)
                .await
                .map_err(backend_err)?;
            report.requeued += requeued;
            for id in skipped {
                let id: JobId = id
                    .parse()
                    .map_err(|_| unexpected(format_args!("a skipped job id {id:?}")))?;
                report.skipped_unique.push(id);
            }
            // A batch that saw fewer jobs than it could, without stopping
            // at its quota, reached the end.
            let want = left.min(PER_CALL);
            if last.is_empty() || (examined < PER_CALL && (requeued as usize) < want) {
                break;
            }
            after = last;
        }
        Ok(report)
    }
}
