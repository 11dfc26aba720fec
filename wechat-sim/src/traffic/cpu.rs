//! CPU time that processes spend over a benchmark's measured window, per callback.
//!
//! On a machine whose speed drifts, callbacks/s of one run is a noisy figure; the CPU
//! each process (gateway, nats-server, the load generator itself) spends per callback
//! is steadier within a session, and it says where a 2-core budget goes. Read from Linux's
//! `/proc/{pid}/stat` (user + system time of all the process's threads).

use std::time::Duration;

use tokio::time::Instant;

/// Clock ticks per second of `/proc/{pid}/stat` times: Linux's `USER_HZ`, which is
/// 100 on every architecture this runs on (the kernel's own `HZ` does not leak here).
const USER_HZ: u64 = 100;

/// A process to account for, by a name for the report and its pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedProcess {
    /// The name in the report (`gateway`, `nats-server`…).
    pub name: String,
    /// Its process id.
    pub pid: u32,
}

impl WatchedProcess {
    /// This process, named `name`.
    pub fn this(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            pid: std::process::id(),
        }
    }

    /// Parses `NAME=PID`, as given on the command line.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (name, pid) = spec
            .split_once('=')
            .ok_or_else(|| format!("expected NAME=PID, got {spec:?}"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("no process name in {spec:?}"));
        }
        let pid = pid
            .trim()
            .parse()
            .map_err(|_| format!("{:?} is not a process id", pid.trim()))?;
        Ok(Self {
            name: name.to_owned(),
            pid,
        })
    }
}

/// What one process spent over the measured window.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProcessCpu {
    /// The name given for it.
    pub process: String,
    /// Its process id.
    pub pid: u32,
    /// User + system CPU seconds in the window.
    pub cpu_secs: f64,
    /// Average cores busy (`cpu_secs` over the window's length).
    pub cores: f64,
    /// CPU microseconds per callback (or per ack) counted in the window.
    pub us_per_op: f64,
}

/// CPU times of the watched processes at one instant (`None`: unreadable then).
#[derive(Debug, Clone)]
pub struct CpuSnapshot {
    at: Instant,
    times: Vec<(WatchedProcess, Option<Duration>)>,
}

impl CpuSnapshot {
    /// Reads every watched process's CPU time now.
    pub fn take(processes: &[WatchedProcess]) -> Self {
        Self {
            at: Instant::now(),
            times: processes
                .iter()
                .map(|p| (p.clone(), cpu_time(p.pid)))
                .collect(),
        }
    }

    /// What each process spent between `self` and `later`, per one of `ops`
    /// operations; a process unreadable at either end (gone, not Linux) is left out.
    pub fn spent_until(&self, later: &CpuSnapshot, ops: u64) -> Vec<ProcessCpu> {
        let window = later.at.saturating_duration_since(self.at).as_secs_f64();
        self.times
            .iter()
            .zip(&later.times)
            .filter_map(|((process, before), (_, after))| {
                let spent = after.as_ref()?.checked_sub(*before.as_ref()?)?;
                let cpu_secs = spent.as_secs_f64();
                Some(ProcessCpu {
                    process: process.name.clone(),
                    pid: process.pid,
                    cpu_secs,
                    cores: if window > 0.0 { cpu_secs / window } else { 0.0 },
                    us_per_op: if ops > 0 {
                        cpu_secs * 1e6 / ops as f64
                    } else {
                        0.0
                    },
                })
            })
            .collect()
    }
}

/// Snapshots, at `from` and at `until` (a benchmark's measured window), of this
/// process's CPU, reported as `own_name`, and of the `others`' CPU.
pub fn measure_window(
    own_name: &str,
    others: &[WatchedProcess],
    from: Instant,
    until: Instant,
) -> impl Future<Output = (CpuSnapshot, CpuSnapshot)> + Send + 'static {
    let mut watched = vec![WatchedProcess::this(own_name)];
    watched.extend_from_slice(others);
    async move {
        tokio::time::sleep_until(from).await;
        let first = CpuSnapshot::take(&watched);
        tokio::time::sleep_until(until).await;
        (first, CpuSnapshot::take(&watched))
    }
}

/// User + system CPU time a process has used so far, all threads; `None` where
/// `/proc` does not have it.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu(&stat)
}

/// `utime + stime` (fields 14 and 15) of a `/proc/{pid}/stat` line. The command name
/// (field 2) is in parentheses and may itself hold spaces and `)`, so fields are
/// counted after the last `)`.
fn parse_stat_cpu(stat: &str) -> Option<Duration> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name come fields 3 (state), 4, …: utime is field 14, stime field 15.
    let mut fields = after_name.split_ascii_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_nanos(
        (utime + stime).checked_mul(1_000_000_000 / USER_HZ)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utime_and_stime_are_read_after_the_command_name() {
        // A name with a space and a parenthesis, as a thread may be named.
        let stat =
            "4242 (nats (srv) x) S 1 4242 4242 0 -1 4194560 1 0 0 0 1234 567 0 0 20 0 8 0 100 0 0";
        assert_eq!(parse_stat_cpu(stat), Some(Duration::from_millis(18_010)));
    }

    #[test]
    fn a_truncated_stat_line_is_no_reading() {
        assert_eq!(parse_stat_cpu("4242 (gateway) S 1 2 3"), None);
        assert_eq!(parse_stat_cpu("garbage"), None);
    }

    #[test]
    fn this_process_has_a_cpu_time_that_grows_with_work() {
        let me = WatchedProcess::this("test");
        let before = CpuSnapshot::take(std::slice::from_ref(&me));
        let at_start = cpu_time(me.pid).unwrap();
        // Work until the kernel has counted three clock ticks (30 ms) of CPU.
        let mut x = 0u64;
        while cpu_time(me.pid).unwrap() < at_start + Duration::from_millis(30) {
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
        }
        std::hint::black_box(x);
        let after = CpuSnapshot::take(std::slice::from_ref(&me));
        let spent = before.spent_until(&after, 1000);
        assert_eq!(spent.len(), 1, "/proc/self/stat is readable on Linux");
        assert_eq!(spent[0].process, "test");
        assert!(spent[0].cpu_secs >= 0.03, "{spent:?}");
        assert!((spent[0].us_per_op - spent[0].cpu_secs * 1000.0).abs() < 1e-6);
    }

    #[test]
    fn a_gone_process_is_left_out() {
        let gone = WatchedProcess {
            name: "gone".into(),
            pid: u32::MAX,
        };
        let before = CpuSnapshot::take(std::slice::from_ref(&gone));
        let after = CpuSnapshot::take(std::slice::from_ref(&gone));
        assert!(before.spent_until(&after, 10).is_empty());
    }

    #[test]
    fn name_equals_pid_parses() {
        assert_eq!(
            WatchedProcess::parse("nats-server=812"),
            Ok(WatchedProcess {
                name: "nats-server".into(),
                pid: 812
            })
        );
        assert!(WatchedProcess::parse("812").is_err());
        assert!(WatchedProcess::parse("=812").is_err());
        assert!(WatchedProcess::parse("gateway=x").is_err());
    }
}
