//! The process's CPU time over a stretch of the bench (Linux: user + system
//! time from `/proc/self/stat`, in clock ticks of 10 ms), printed beside a
//! rate as CPU per job: on a machine of 2 cores, a drain of `r` jobs a second
//! can spend at most `2 / r` seconds of CPU a job, so this says how close a
//! figure is to what the cores allow, and how much of the time they idle.

use std::time::Instant;

/// CPU time and wall time at the start of a stretch.
pub struct Clock {
    cpu: Option<u64>,
    wall: Instant,
}

/// The process's user + system time so far, in clock ticks (none off Linux).
fn ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (which may hold spaces), from the
    // third on: utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ').skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// Clock ticks per second of `/proc/self/stat` (`sysconf(_SC_CLK_TCK)`,
/// 100 on every Linux this bench runs on).
const TICKS_PER_SEC: f64 = 100.0;

impl Clock {
    pub fn start() -> Clock {
        Clock {
            cpu: ticks(),
            wall: Instant::now(),
        }
    }

    /// " CPU x µs a job (y cores) |" since the start, for `n` jobs; empty
    /// where the process's CPU time cannot be read.
    pub fn per_job(&self, n: usize) -> String {
        let (Some(start), Some(now)) = (self.cpu, ticks()) else {
            return String::new();
        };
        let cpu = now.saturating_sub(start) as f64 / TICKS_PER_SEC;
        let wall = self.wall.elapsed().as_secs_f64();
        format!(
            " CPU {:.2} µs a job ({:.2} cores) |",
            cpu * 1e6 / n.max(1) as f64,
            cpu / wall
        )
    }
}
