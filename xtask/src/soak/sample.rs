//! What the soak samples of a running client, from outside it: its
//! resident memory, open descriptors and database connections from
//! `/proc`, and its heartbeats from its JSON log (each "heartbeat done"
//! line carries the phases' times, the bytes sent and received and the
//! known job ids).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// One heartbeat as its log line tells it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beat {
    /// build + call + write, in milliseconds.
    pub ms: f64,
    /// Bytes of the request body.
    pub request_bytes: f64,
    /// Bytes of the response body.
    pub response_bytes: f64,
    /// Jobs the client reported as known.
    pub known_jobs: f64,
}

/// Parses one log line; `None` for anything but a "heartbeat done" event.
pub fn beat(line: &str) -> Option<Beat> {
    if !line.contains("heartbeat done") {
        return None;
    }
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    // The JSON formatter puts an event's fields under "fields"; accept them
    // at the top level too.
    let fields = event.get("fields").unwrap_or(&event);
    if fields.get("message")? != "heartbeat done" {
        return None;
    }
    let number = |key: &str| fields.get(key).and_then(serde_json::Value::as_f64);
    Some(Beat {
        ms: ["build_ms", "call_ms", "write_ms"]
            .iter()
            .filter_map(|k| number(k))
            .sum(),
        request_bytes: number("request_bytes")?,
        response_bytes: number("response_bytes")?,
        known_jobs: number("known_jobs")?,
    })
}

/// Reads a log file on from where it was left, line by line.
pub struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl LogTail {
    /// A tail of `path` from its start.
    pub fn new(path: &Path) -> LogTail {
        LogTail {
            path: path.to_owned(),
            offset: 0,
            partial: String::new(),
        }
    }

    /// The heartbeats logged since the last call.
    pub fn beats(&mut self) -> Vec<Beat> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut bytes = Vec::new();
        let Ok(read) = file.read_to_end(&mut bytes) else {
            return Vec::new();
        };
        self.offset += read as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        // The last line may still be being written: keep it for next time.
        let complete = match self.partial.rfind('\n') {
            Some(end) => end + 1,
            None => return Vec::new(),
        };
        let text: String = self.partial.drain(..complete).collect();
        text.lines().filter_map(beat).collect()
    }
}

/// The `q` quantile (0..=1) of `values`, nearest rank; `None` if empty.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

/// Resident memory of process `pid`, in bytes.
pub fn rss(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024.0)
}

/// Where each open descriptor of `pid` points (`socket:[123]`, a path).
fn fd_targets(pid: u32) -> Option<Vec<String>> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        entries
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .map(|t| t.to_string_lossy().into_owned())
            .collect(),
    )
}

/// Open descriptors of `pid`.
pub fn open_fds(pid: u32) -> Option<f64> {
    fd_targets(pid).map(|t| t.len() as f64)
}

/// How a client reaches its database, to count its connections.
#[derive(Debug, Clone)]
pub enum DbTarget {
    /// A SQLite file: each connection holds it open once.
    File(PathBuf),
    /// A server: each connection is a TCP socket to this port.
    Port(u16),
}

/// Database connections `pid` holds open.
pub fn db_connections(pid: u32, target: &DbTarget) -> Option<f64> {
    let targets = fd_targets(pid)?;
    match target {
        DbTarget::File(path) => {
            let path = path.to_string_lossy();
            Some(targets.iter().filter(|t| **t == *path).count() as f64)
        }
        DbTarget::Port(port) => {
            let inodes: std::collections::HashSet<u64> = targets
                .iter()
                .filter_map(|t| t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
                .collect();
            let mut count = 0;
            for table in ["tcp", "tcp6"] {
                let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
                    continue;
                };
                count += text
                    .lines()
                    .skip(1)
                    .filter(|l| connected_to(l, *port).is_some_and(|inode| inodes.contains(&inode)))
                    .count();
            }
            Some(count as f64)
        }
    }
}

/// The socket inode of a `/proc/net/tcp` line whose remote port is `port`
/// and whose state is ESTABLISHED (01).
fn connected_to(line: &str, port: u16) -> Option<u64> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let remote = fields.get(2)?;
    let state = fields.get(3)?;
    let remote_port = u16::from_str_radix(remote.rsplit(':').next()?, 16).ok()?;
    (remote_port == port && *state == "01").then(|| fields.get(9)?.parse().ok())?
}

/// The sum of every series named `name` (any labels) in an exposition.
pub fn sum_series(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_line_is_read_and_other_lines_are_not() {
        let line = r#"{"timestamp":"t","level":"INFO","fields":{"message":"heartbeat done","known_jobs":12,"request_bytes":300,"response_bytes":4000,"build_ms":1,"call_ms":5,"write_ms":2},"target":"shard_engine"}"#;
        assert_eq!(
            beat(line),
            Some(Beat {
                ms: 8.0,
                request_bytes: 300.0,
                response_bytes: 4000.0,
                known_jobs: 12.0
            })
        );
        assert_eq!(beat(r#"{"fields":{"message":"heartbeat failed"}}"#), None);
        assert_eq!(beat("heartbeat done, but not JSON"), None);
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&values, 0.5), Some(50.0));
        assert_eq!(quantile(&values, 0.99), Some(99.0));
        assert_eq!(quantile(&[7.0], 0.99), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn the_log_is_read_on_from_where_it_was_left() {
        let dir = std::env::temp_dir().join(format!("soak-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("client.log");
        let line = |n: u32| {
            format!(
                r#"{{"fields":{{"message":"heartbeat done","known_jobs":{n},"request_bytes":1,"response_bytes":2,"build_ms":1,"call_ms":1,"write_ms":1}}}}"#
            )
        };
        std::fs::write(&path, format!("{}\n{}", line(1), &line(2)[..10]))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut tail = LogTail::new(&path);
        assert_eq!(tail.beats().len(), 1, "the half-written line waits");
        std::fs::write(&path, format!("{}\n{}\n{}\n", line(1), line(2), line(3)))
            .unwrap_or_else(|e| panic!("{e}"));
        let known: Vec<f64> = tail.beats().iter().map(|b| b.known_jobs).collect();
        assert_eq!(known, [2.0, 3.0]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn series_are_summed_over_their_labels_and_not_their_prefixes() {
        let text = "# HELP x_total x\nx_total{a=\"1\"} 2\nx_total{a=\"2\"} 3\nx_total_other 9\n";
        assert_eq!(sum_series(text, "x_total"), 5.0);
        assert_eq!(sum_series(text, "y"), 0.0);
    }

    #[test]
    fn this_process_has_memory_and_descriptors() {
        let pid = std::process::id();
        assert!(rss(pid).is_some_and(|b| b > 0.0));
        assert!(open_fds(pid).is_some_and(|n| n >= 1.0));
    }

    #[test]
    fn an_established_socket_line_is_matched_by_remote_port() {
        // local 127.0.0.1:40000 → remote 127.0.0.1:3306 (0x0CEA), ESTABLISHED, inode 4242.
        let line = "   1: 0100007F:9C40 0100007F:0CEA 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1";
        assert_eq!(connected_to(line, 3306), Some(4242));
        assert_eq!(connected_to(line, 5432), None);
        let listening = line.replace(" 01 ", " 0A ");
        assert_eq!(connected_to(&listening, 3306), None);
    }
}
