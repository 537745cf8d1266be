//! The standard `process_*` metrics Prometheus client libraries export
//! (resident memory, CPU time, open and maximum file descriptors, start
//! time), read from `/proc/self` when `/metrics` is scraped. Off Linux, or
//! when `/proc` cannot be read, the series are simply absent.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics::{Unit, describe_gauge, gauge};

/// Gauge: resident set size.
pub const RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
/// User and system CPU time. A gauge of the `metrics` facade, whose
/// counters are whole numbers: the seconds need their fraction.
pub const CPU_SECONDS: &str = "process_cpu_seconds_total";
/// Gauge: open file descriptors.
pub const OPEN_FDS: &str = "process_open_fds";
/// Gauge: the limit on open file descriptors.
pub const MAX_FDS: &str = "process_max_fds";
/// Gauge: when the process started, in Unix time.
pub const START_TIME: &str = "process_start_time_seconds";

/// Clock ticks per second of `/proc/self/stat`'s times: the kernel's
/// `USER_HZ`, 100 on every Linux architecture's user ABI.
const USER_HZ: f64 = 100.0;

/// Describes the series and records the start time. Call once, after
/// installing the recorder.
pub fn describe(started: SystemTime) {
    describe_gauge!(RESIDENT_MEMORY, Unit::Bytes, "Resident memory size.");
    describe_gauge!(
        CPU_SECONDS,
        Unit::Seconds,
        "User and system CPU time spent."
    );
    describe_gauge!(OPEN_FDS, "Open file descriptors.");
    describe_gauge!(MAX_FDS, "The limit on open file descriptors.");
    describe_gauge!(
        START_TIME,
        Unit::Seconds,
        "Start time of the process, Unix time."
    );
    let since_epoch = started.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    gauge!(START_TIME).set(since_epoch.as_secs_f64());
}

/// Reads `/proc/self` and updates the series; what cannot be read is left
/// as it was.
pub fn sample() {
    if let Some(kib) = status_kib("VmRSS:") {
        gauge!(RESIDENT_MEMORY).set(kib * 1024.0);
    }
    if let Some(seconds) = cpu_seconds() {
        gauge!(CPU_SECONDS).set(seconds);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        gauge!(OPEN_FDS).set(fds.count() as f64);
    }
    if let Some(max) = max_open_files() {
        gauge!(MAX_FDS).set(max);
    }
}

/// A `kB` line of `/proc/self/status`, e.g. `VmRSS:`.
fn status_kib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// `utime + stime` of `/proc/self/stat`, in seconds.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses: fields are counted
    // after its closing parenthesis, where field 3 (state) starts.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn max_open_files() -> Option<f64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn proc_self_is_read() {
        assert!(status_kib("VmRSS:").is_some_and(|kib| kib > 0.0));
        assert!(cpu_seconds().is_some_and(|s| s >= 0.0));
        assert!(max_open_files().is_some_and(|max| max > 0.0));
    }
}
