//! The command line of `shard-client` (spec §10):
//! `shard-client [--config FILE] [--<key> VALUE …] <run|once|status|migrate>`.
//!
//! Every configuration key of §10 is also a flag, in kebab case. A flag only
//! overrides the other layers when it is given: [`Settings`] serializes the
//! given flags and nothing else, and [`crate::config::load`] merges them last.
//! All of these flags are global, so they may come before or after the
//! subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

/// The version and the git revision the binary was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SHARD_CLIENT_REVISION"),
    ")"
);

/// The parsed command line: where the configuration file is, how to log, the
/// flags that override the configuration, and what to do.
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(
    name = "shard-client",
    version = VERSION,
    about = "Shard client of the Autotest frontend: sends heartbeats to the global AFE and keeps the shard database in sync."
)]
pub struct Cli {
    /// A TOML file of configuration keys (overridden by SHARD_CLIENT_<KEY> variables and flags).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// How log lines are written: `human` for a terminal, `json` for log shippers.
    #[arg(long, global = true, value_enum, default_value = "human")]
    pub log_format: LogFormat,
    /// The configuration keys given as flags.
    #[command(flatten)]
    pub settings: Settings,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The format of log lines (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, for a terminal or journald.
    #[default]
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The subcommands of §10.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Send heartbeats until SIGINT/SIGTERM or the configured lifetime has passed.
    Run,
    /// Send exactly one heartbeat; exit 0 when it succeeded and was applied, 1 when it failed.
    Once,
    /// Print the packet the next heartbeat would send, without contacting the master.
    Status {
        /// Print the packet as JSON, for machines.
        #[arg(long)]
        json: bool,
    },
    /// Create or upgrade the shard database schema.
    Migrate,
    /// Print the effective configuration, secrets hidden, each value with where it came from; exit 2 when it is invalid.
    Config,
    /// Print the afe_ tables as the database's catalog describes them (the column types the client reads, writes and checks by); read-only.
    Schema {
        /// Print the description as JSON, for machines.
        #[arg(long)]
        json: bool,
    },
}

/// One optional flag per configuration key of §10 (plus `rpc_ca_file`).
///
/// Serialized with the keys of the configuration file and only the flags that
/// were given, so that merged as the last layer it overrides exactly those.
/// Values are typed only as far as clap can check them (numbers are numbers);
/// whether they are in range is [`crate::config`]'s business, so a flag and a
/// file entry get the same message.
#[derive(Debug, Clone, Default, PartialEq, Args, Serialize)]
pub struct Settings {
    /// The global AFE (master): host, host:port or http(s) URL.
    #[arg(long, global = true, value_name = "HOST")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_afe_hostname: Option<String>,
    /// This shard's hostname, as the master knows it.
    #[arg(long, global = true, value_name = "HOST")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_hostname: Option<String>,
    /// The shard database: sqlite://PATH, mysql://USER[:PASSWORD]@HOST/DB or postgres://… (default sqlite://shard-client.db?mode=rwc).
    #[arg(long, global = true, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// The time zone naive lab times are stored in, the AFE's TIME_ZONE; PostgreSQL sessions use it (default UTC).
    #[arg(long, global = true, value_name = "ZONE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_time_zone: Option<String>,
    /// Seconds between two heartbeats, ±10 % jitter; may be fractional (default 60).
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        allow_negative_numbers = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_pause_sec: Option<f64>,
    /// The JSON-RPC path on the master (default /afe/server/noauth/rpc/).
    #[arg(long, global = true, value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_path: Option<String>,
    /// The user name sent in the AUTHORIZATION header (default: $USER, else $LOGNAME).
    #[arg(long, global = true, value_name = "USER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_user: Option<String>,
    /// Minutes one heartbeat call may take, retries included; may be fractional (default 5).
    #[arg(
        long,
        global = true,
        value_name = "MINUTES",
        allow_negative_numbers = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_timeout_min: Option<f64>,
    /// Seconds before the first retry, each next one doubling; may be fractional (default 5).
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        allow_negative_numbers = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_delay_sec: Option<f64>,
    /// Seconds one attempt may take; may be fractional (default 120).
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        allow_negative_numbers = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_request_timeout_sec: Option<f64>,
    /// The most finished jobs uploaded by one heartbeat (default 1000).
    #[arg(long, global = true, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_upload_jobs: Option<u64>,
    /// The largest response accepted from the master, in bytes (default 268435456, 256 MiB).
    #[arg(long, global = true, value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_response_bytes: Option<u64>,
    /// Hours after which `run` exits 0; may be fractional (default: never).
    #[arg(
        long,
        global = true,
        value_name = "HOURS",
        allow_negative_numbers = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifetime_hours: Option<f64>,
    /// Where the Prometheus endpoint listens, IP:PORT (default 127.0.0.1:9464).
    #[arg(long, global = true, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<String>,
    /// A PEM file of CA certificates trusted for an https master besides the system's.
    #[arg(long, global = true, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_ca_file: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use serde_json::json;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("shard-client").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn the_command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_and_a_flag_before_the_subcommand() {
        let cli = parse(&["--config", "f.toml", "--shard-hostname", "s1", "run"]);
        assert_eq!(
            cli,
            Cli {
                config: Some(PathBuf::from("f.toml")),
                log_format: LogFormat::Human,
                settings: Settings {
                    shard_hostname: Some("s1".to_owned()),
                    ..Settings::default()
                },
                command: Command::Run,
            }
        );
    }

    #[test]
    fn status_takes_json() {
        assert_eq!(
            parse(&["status", "--json"]).command,
            Command::Status { json: true }
        );
        assert_eq!(parse(&["status"]).command, Command::Status { json: false });
    }

    #[test]
    fn json_belongs_to_status_only() {
        assert!(Cli::try_parse_from(["shard-client", "once", "--json"]).is_err());
    }

    #[test]
    fn global_flags_may_follow_the_subcommand() {
        let cli = parse(&[
            "once",
            "--config",
            "f.toml",
            "--log-format",
            "json",
            "--heartbeat-pause-sec",
            "0.05",
            "--max-upload-jobs",
            "10",
        ]);
        assert_eq!(cli.command, Command::Once);
        assert_eq!(cli.config, Some(PathBuf::from("f.toml")));
        assert_eq!(cli.log_format, LogFormat::Json);
        assert_eq!(cli.settings.heartbeat_pause_sec, Some(0.05));
        assert_eq!(cli.settings.max_upload_jobs, Some(10));
    }

    #[test]
    fn a_subcommand_is_required() {
        assert!(Cli::try_parse_from(["shard-client", "--shard-hostname", "s1"]).is_err());
    }

    #[test]
    fn every_key_has_its_kebab_case_flag() {
        let cli = parse(&[
            "migrate",
            "--global-afe-hostname=afe",
            "--shard-hostname=s1",
            "--database-url=sqlite://x.db",
            "--heartbeat-pause-sec=1",
            "--rpc-path=/rpc/",
            "--rpc-user=u",
            "--rpc-timeout-min=2",
            "--rpc-delay-sec=3",
            "--rpc-request-timeout-sec=4",
            "--max-upload-jobs=5",
            "--max-response-bytes=6",
            "--lifetime-hours=7",
            "--metrics-addr=127.0.0.1:1",
            "--rpc-ca-file=ca.pem",
            "--database-time-zone=America/Los_Angeles",
        ]);
        assert_eq!(
            serde_json::to_value(&cli.settings).unwrap(),
            json!({
                "global_afe_hostname": "afe",
                "shard_hostname": "s1",
                "database_url": "sqlite://x.db",
                "database_time_zone": "America/Los_Angeles",
                "heartbeat_pause_sec": 1.0,
                "rpc_path": "/rpc/",
                "rpc_user": "u",
                "rpc_timeout_min": 2.0,
                "rpc_delay_sec": 3.0,
                "rpc_request_timeout_sec": 4.0,
                "max_upload_jobs": 5,
                "max_response_bytes": 6,
                "lifetime_hours": 7.0,
                "metrics_addr": "127.0.0.1:1",
                "rpc_ca_file": "ca.pem",
            })
        );
    }

    #[test]
    fn only_given_flags_are_serialized() {
        let cli = parse(&["run", "--shard-hostname", "s1"]);
        assert_eq!(
            serde_json::to_value(&cli.settings).unwrap(),
            json!({"shard_hostname": "s1"})
        );
    }

    #[test]
    fn a_negative_number_is_a_value_for_config_to_refuse() {
        // Without allow_negative_numbers clap would call `-1` an unknown
        // flag; the configuration gives the message that names the key.
        let cli = parse(&["run", "--heartbeat-pause-sec", "-1"]);
        assert_eq!(cli.settings.heartbeat_pause_sec, Some(-1.0));
    }

    #[test]
    fn a_non_number_is_a_usage_error() {
        let err =
            Cli::try_parse_from(["shard-client", "run", "--max-upload-jobs", "many"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--max-upload-jobs"), "{err}");
    }
}
