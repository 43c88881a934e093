//! Workflows: settling a step's edges and releasing held steps, each one
//! script call (`settle.lua`, `release.lua`).

use jobs_core::{JobId, Result};

use super::backend::RedisBackend;
use super::row::{array, ids_of, int};
use super::scripts::{run_script, script_cmd, unexpected, SCRIPTS};

impl RedisBackend {
    /// Settles `(parent, child)` edges of any parents in one script call;
    /// returns each edge's child's settled edges after the call.
    pub(super) async fn settle_pairs(&self, edges: &[(JobId, JobId)]) -> Result<Vec<u32>> {
        if edges.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = script_cmd(
            &SCRIPTS.settle,
            &self.inner.ns,
            2 * edges.len(),
            2 * edges.len() * 36,
        );
        for (p, c) in edges {
            cmd.arg(p.to_string()).arg(c.to_string());
        }
        let mut conn = self.conn().await?;
        let reply = run_script(&SCRIPTS.settle, &cmd, &mut conn).await?;
        let counts: Vec<u32> = array(reply)
            .iter()
            .map(|v| int(v).and_then(|n| u32::try_from(n).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| unexpected("the settle script returned a count that is not one"))?;
        if counts.len() != edges.len() {
            return Err(unexpected(format_args!(
                "the settle script returned {} counts for {} edges",
                counts.len(),
                edges.len()
            )));
        }
        Ok(counts)
    }

    /// Makes the held steps among `ids` PENDING and due now; returns those
    /// it released.
    pub(super) async fn release_now(&self, ids: &[JobId]) -> Result<Vec<JobId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let held = jobs_core::workflow::held_until().timestamp_micros();
        let mut cmd = script_cmd(
            &SCRIPTS.release,
            &self.inner.ns,
            1 + ids.len(),
            (1 + ids.len()) * 36,
        );
        cmd.arg(held);
        for id in ids {
            cmd.arg(id.to_string());
        }
        let mut conn = self.conn().await?;
        let reply = run_script(&SCRIPTS.release, &cmd, &mut conn).await?;
        Ok(ids_of(reply))
    }
}
