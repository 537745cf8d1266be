//! The configuration keys of §10, plus `database_time_zone` and
//! `rpc_ca_file`, each declared once: name, type, flag value name, default,
//! help, what its value must be, how secret it is, and its check. The flags,
//! the `SHARD_CLIENT_` variables, the file, the defaults, the checks, the
//! redaction and `--help` all come from here (see [`declare_keys!`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::check::{
    database_url, file, host, hours, minutes, positive, seconds, socket_addr, time_zone, url_path,
    user,
};
use super::key::declare_keys;

declare_keys! {
    global_afe_hostname: String {
        help: "The global AFE (master): host, host:port or http(s) URL",
        value_name: "HOST",
        default: Required,
        must_be: "a host name or URL",
        secret: No,
        check: host => String,
    },
    shard_hostname: String {
        help: "This shard's hostname, as the master knows it",
        value_name: "HOST",
        default: Required,
        must_be: "a host name",
        secret: No,
        check: host => String,
    },
    database_url: String {
        help: "The shard database: sqlite://PATH, mysql://USER[:PASSWORD]@HOST/DB or postgres://…",
        value_name: "URL",
        // A SQLite file in the working directory, created when missing, so
        // that a first run needs no setup.
        default: Text("sqlite://shard-client.db?mode=rwc"),
        must_be: "a sqlite://, mysql://, mariadb://, postgres:// or postgresql:// URL",
        secret: Password,
        check: database_url => String,
    },
    database_time_zone: String {
        help: "The time zone naive lab times are stored in, the AFE's TIME_ZONE; PostgreSQL sessions use it",
        value_name: "ZONE",
        default: Text("UTC"),
        must_be: "a time zone name such as UTC or America/Los_Angeles",
        secret: No,
        check: time_zone => String,
    },
    heartbeat_pause_sec: f64 {
        help: "Seconds between two heartbeats, ±10 % jitter; may be fractional",
        value_name: "SECONDS",
        default: Number(60.0),
        must_be: "a positive number of seconds",
        secret: No,
        check: seconds => Duration,
    },
    rpc_path: String {
        help: "The JSON-RPC path on the master",
        value_name: "PATH",
        default: Text(shard_rpc::DEFAULT_PATH),
        must_be: "a URL path starting with /",
        secret: No,
        check: url_path => String,
    },
    rpc_user: String {
        help: "The user name sent in the AUTHORIZATION header",
        value_name: "USER",
        default: Computed(shard_rpc::default_user, "$USER or $LOGNAME"),
        must_be: "a user name of printable ASCII",
        secret: Whole,
        check: user => String,
    },
    rpc_timeout_min: f64 {
        help: "Minutes one heartbeat call may take, retries included; may be fractional",
        value_name: "MINUTES",
        default: Number(shard_rpc::DEFAULT_BUDGET.as_secs_f64() / 60.0),
        must_be: "a positive number of minutes",
        secret: No,
        check: minutes => Duration,
    },
    rpc_delay_sec: f64 {
        help: "Seconds before the first retry, each next one doubling; may be fractional",
        value_name: "SECONDS",
        default: Number(shard_rpc::DEFAULT_DELAY.as_secs_f64()),
        must_be: "a positive number of seconds",
        secret: No,
        check: seconds => Duration,
    },
    rpc_request_timeout_sec: f64 {
        help: "Seconds one attempt may take; may be fractional",
        value_name: "SECONDS",
        default: Number(shard_rpc::DEFAULT_REQUEST_TIMEOUT.as_secs_f64()),
        must_be: "a positive number of seconds",
        secret: No,
        check: seconds => Duration,
    },
    max_upload_jobs: u64 {
        help: "The most finished jobs uploaded by one heartbeat",
        value_name: "N",
        // `MAX_UPLOAD_JOBS` of later clients (§7).
        default: Whole(1000),
        must_be: "a positive whole number",
        secret: No,
        check: positive => u64,
    },
    max_response_bytes: u64 {
        help: "The largest response accepted from the master, in bytes",
        value_name: "BYTES",
        default: Whole(shard_rpc::DEFAULT_MAX_RESPONSE_BYTES),
        must_be: "a positive whole number of bytes",
        secret: No,
        check: positive => u64,
    },
    lifetime_hours: f64 {
        help: "Hours after which `run` exits 0; may be fractional",
        value_name: "HOURS",
        default: Unset("never"),
        must_be: "a positive number of hours",
        secret: No,
        check: hours => Duration,
    },
    metrics_addr: String {
        help: "Where the Prometheus endpoint listens, IP:PORT",
        value_name: "ADDR",
        // Loopback only, so that a shard does not expose its metrics to the
        // network unless told to.
        default: Text("127.0.0.1:9464"),
        must_be: "an IP address and port such as 127.0.0.1:9464",
        secret: No,
        check: socket_addr => SocketAddr,
    },
    rpc_ca_file: PathBuf {
        help: "A PEM file of CA certificates trusted for an https master besides the system's",
        value_name: "FILE",
        default: Unset("none"),
        must_be: "a file path",
        secret: No,
        check: file => PathBuf,
    },
}
