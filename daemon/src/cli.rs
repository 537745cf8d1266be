//! The command line of `shard-client` (spec §10):
//! `shard-client [--config FILE] [--<key> VALUE …] <run|once|status|migrate>`.
//!
//! Every configuration key is also a flag, in kebab case, made from the
//! table of keys in [`crate::config`] with its help and default: this file
//! holds only what is not a key. A flag only overrides the other layers when
//! it is given: [`Settings`] serializes the given flags and nothing else, and
//! [`crate::config::load`] merges them last. All of these flags are global,
//! so they may come before or after the subcommand.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Settings;

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
    /// The configuration keys given as flags, one per key of the table.
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
    fn help_gives_every_key_with_its_variable_and_default() {
        let help = Cli::command().render_long_help().to_string();
        for (flag, variable_and_default) in [
            (
                "--global-afe-hostname <HOST>",
                "[env: SHARD_CLIENT_GLOBAL_AFE_HOSTNAME] [required]",
            ),
            (
                "--shard-hostname <HOST>",
                "[env: SHARD_CLIENT_SHARD_HOSTNAME] [required]",
            ),
            (
                "--database-url <URL>",
                "[env: SHARD_CLIENT_DATABASE_URL] [default: sqlite://shard-client.db?mode=rwc]",
            ),
            (
                "--database-time-zone <ZONE>",
                "[env: SHARD_CLIENT_DATABASE_TIME_ZONE] [default: UTC]",
            ),
            (
                "--heartbeat-pause-sec <SECONDS>",
                "[env: SHARD_CLIENT_HEARTBEAT_PAUSE_SEC] [default: 60]",
            ),
            (
                "--rpc-path <PATH>",
                "[env: SHARD_CLIENT_RPC_PATH] [default: /afe/server/noauth/rpc/]",
            ),
            (
                "--rpc-user <USER>",
                "[env: SHARD_CLIENT_RPC_USER] [default: from $USER or $LOGNAME]",
            ),
            (
                "--rpc-timeout-min <MINUTES>",
                "[env: SHARD_CLIENT_RPC_TIMEOUT_MIN] [default: 5]",
            ),
            (
                "--rpc-delay-sec <SECONDS>",
                "[env: SHARD_CLIENT_RPC_DELAY_SEC] [default: 5]",
            ),
            (
                "--rpc-request-timeout-sec <SECONDS>",
                "[env: SHARD_CLIENT_RPC_REQUEST_TIMEOUT_SEC] [default: 120]",
            ),
            (
                "--max-upload-jobs <N>",
                "[env: SHARD_CLIENT_MAX_UPLOAD_JOBS] [default: 1000]",
            ),
            (
                "--max-response-bytes <BYTES>",
                "[env: SHARD_CLIENT_MAX_RESPONSE_BYTES] [default: 268435456]",
            ),
            (
                "--lifetime-hours <HOURS>",
                "[env: SHARD_CLIENT_LIFETIME_HOURS] [default: never]",
            ),
            (
                "--metrics-addr <ADDR>",
                "[env: SHARD_CLIENT_METRICS_ADDR] [default: 127.0.0.1:9464]",
            ),
            (
                "--rpc-ca-file <FILE>",
                "[env: SHARD_CLIENT_RPC_CA_FILE] [default: none]",
            ),
        ] {
            let mut lines = help.lines().skip_while(|line| line.trim() != flag);
            assert!(lines.next().is_some(), "no {flag} in:\n{help}");
            let text = lines.next().unwrap_or_default();
            assert!(text.ends_with(variable_and_default), "{flag}: {text}");
        }
    }

    #[test]
    fn a_non_number_is_a_usage_error() {
        let err =
            Cli::try_parse_from(["shard-client", "run", "--max-upload-jobs", "many"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--max-upload-jobs"), "{err}");
    }
}
