//! Tests of the configuration: layer order, every validation error, the
//! command line, and that secrets never show.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::{Figment, Profile, Provider};
use shard_rpc::{ProxyConfig, RpcConfig};
use shard_store::redact_url;

use super::check::has_password;
use super::keys::KEYS;
use super::layers::defaults;
use super::messages::origin;
use super::{Config, ConfigError, Settings, load_from};

/// A TOML file under the temporary directory, removed when dropped.
struct TempToml(PathBuf);

impl TempToml {
    fn new(name: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "shard-client-config-{}-{name}.toml",
            std::process::id()
        ));
        std::fs::write(&path, contents).unwrap();
        // Umasks differ between machines; start from owner-only.
        #[cfg(unix)]
        set_mode(&path, 0o600);
        TempToml(path)
    }
}

impl Drop for TempToml {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    pairs
        .iter()
        .map(|(name, value)| (OsString::from(name), OsString::from(value)))
        .collect()
}

/// The two required keys, as variables, followed by `extra`.
fn required_and(extra: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    let mut all = vars(&[
        ("SHARD_CLIENT_GLOBAL_AFE_HOSTNAME", "cautotest"),
        ("SHARD_CLIENT_SHARD_HOSTNAME", "s1"),
    ]);
    all.extend(vars(extra));
    all
}

/// Loads with the required keys and the variables `extra`, no file, no flags.
fn with_env(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
    load_from(None, required_and(extra), &Settings::default())
}

fn error_with_env(extra: &[(&str, &str)]) -> String {
    with_env(extra).unwrap_err().to_string()
}

fn flags_with_required() -> Settings {
    Settings {
        global_afe_hostname: Some("cautotest".to_owned()),
        shard_hostname: Some("s1".to_owned()),
        ..Settings::default()
    }
}

#[test]
fn defaults_of_section_10() {
    let config = with_env(&[]).unwrap();
    assert_eq!(config.global_afe_hostname, "cautotest");
    assert_eq!(config.shard_hostname, "s1");
    assert_eq!(config.database_url, "sqlite://shard-client.db?mode=rwc");
    assert_eq!(config.database_time_zone, "UTC");
    assert_eq!(config.heartbeat_pause, Duration::from_secs(60));
    assert_eq!(
        config.rpc,
        RpcConfig {
            server: "cautotest".to_owned(),
            path: "/afe/server/noauth/rpc/".to_owned(),
            user: shard_rpc::default_user(),
            delay: Duration::from_secs(5),
            budget: Duration::from_secs(300),
            request_timeout: Duration::from_secs(120),
            max_response_bytes: 256 * 1024 * 1024,
            extra_ca_file: None,
            proxy: ProxyConfig::none(),
        }
    );
    assert_eq!(config.max_upload_jobs, 1000);
    assert_eq!(config.lifetime, None);
    assert_eq!(config.metrics_addr, "127.0.0.1:9464".parse().unwrap());
}

#[test]
fn file_overrides_defaults() {
    let file = TempToml::new(
        "file-over-defaults",
        "global_afe_hostname = \"afe\"\nshard_hostname = \"s1\"\nheartbeat_pause_sec = 7\n",
    );
    let config = load_from(Some(&file.0), vars(&[]), &Settings::default()).unwrap();
    assert_eq!(config.heartbeat_pause, Duration::from_secs(7));
    assert_eq!(config.global_afe_hostname, "afe");
}

#[test]
fn env_overrides_file() {
    let file = TempToml::new("env-over-file", "heartbeat_pause_sec = 7\n");
    let env = required_and(&[("SHARD_CLIENT_HEARTBEAT_PAUSE_SEC", "8")]);
    let config = load_from(Some(&file.0), env, &Settings::default()).unwrap();
    assert_eq!(config.heartbeat_pause, Duration::from_secs(8));
}

#[test]
fn flag_overrides_env() {
    let flags = Settings {
        heartbeat_pause_sec: Some(9.0),
        ..Settings::default()
    };
    let env = required_and(&[("SHARD_CLIENT_HEARTBEAT_PAUSE_SEC", "8")]);
    let config = load_from(None, env, &flags).unwrap();
    assert_eq!(config.heartbeat_pause, Duration::from_secs(9));
}

#[test]
fn a_flag_not_given_overrides_nothing() {
    let file = TempToml::new(
        "absent-flag",
        "global_afe_hostname = \"afe\"\nshard_hostname = \"from-file\"\n",
    );
    let flags = Settings {
        max_upload_jobs: Some(5),
        ..Settings::default()
    };
    let config = load_from(Some(&file.0), vars(&[]), &flags).unwrap();
    assert_eq!(config.shard_hostname, "from-file");
    assert_eq!(config.max_upload_jobs, 5);
}

#[test]
fn every_key_from_flags() {
    let flags = Settings {
        global_afe_hostname: Some("https://afe.example".to_owned()),
        shard_hostname: Some("s1".to_owned()),
        database_url: Some("mysql://afe:pw@db/afe".to_owned()),
        database_time_zone: Some("America/Los_Angeles".to_owned()),
        heartbeat_pause_sec: Some(0.5),
        rpc_path: Some("/rpc/".to_owned()),
        rpc_user: Some("bob".to_owned()),
        rpc_timeout_min: Some(2.0),
        rpc_delay_sec: Some(3.0),
        rpc_request_timeout_sec: Some(4.0),
        max_upload_jobs: Some(5),
        max_response_bytes: Some(6),
        lifetime_hours: Some(7.0),
        metrics_addr: Some("[::1]:8".to_owned()),
        rpc_ca_file: Some(PathBuf::from("ca.pem")),
    };
    let config = load_from(None, vars(&[]), &flags).unwrap();
    assert_eq!(config.database_url, "mysql://afe:pw@db/afe");
    assert_eq!(config.database_time_zone, "America/Los_Angeles");
    assert_eq!(config.heartbeat_pause, Duration::from_millis(500));
    assert_eq!(
        config.rpc,
        RpcConfig {
            server: "https://afe.example".to_owned(),
            path: "/rpc/".to_owned(),
            user: "bob".to_owned(),
            delay: Duration::from_secs(3),
            budget: Duration::from_secs(120),
            request_timeout: Duration::from_secs(4),
            max_response_bytes: 6,
            extra_ca_file: Some(PathBuf::from("ca.pem")),
            proxy: ProxyConfig::none(),
        }
    );
    assert_eq!(config.max_upload_jobs, 5);
    assert_eq!(config.lifetime, Some(Duration::from_secs(7 * 3600)));
    assert_eq!(config.metrics_addr, "[::1]:8".parse().unwrap());
}

#[test]
fn fractional_durations() {
    let config = with_env(&[
        ("SHARD_CLIENT_HEARTBEAT_PAUSE_SEC", "0.05"),
        ("SHARD_CLIENT_RPC_TIMEOUT_MIN", "0.02"),
        ("SHARD_CLIENT_LIFETIME_HOURS", "0.0003"),
    ])
    .unwrap();
    assert_eq!(config.heartbeat_pause, Duration::from_millis(50));
    assert_eq!(config.rpc.budget, Duration::from_millis(1200));
    assert_eq!(config.lifetime, Some(Duration::from_millis(1080)));
}

#[test]
fn fractional_durations_in_toml() {
    let file = TempToml::new(
        "fractional",
        "global_afe_hostname = \"afe\"\nshard_hostname = \"s1\"\n\
         heartbeat_pause_sec = 0.05\nrpc_timeout_min = 0.02\nlifetime_hours = 0.0003\n",
    );
    let config = load_from(Some(&file.0), vars(&[]), &Settings::default()).unwrap();
    assert_eq!(config.heartbeat_pause, Duration::from_millis(50));
    assert_eq!(config.rpc.budget, Duration::from_millis(1200));
    assert_eq!(config.lifetime, Some(Duration::from_millis(1080)));
}

#[test]
fn hostnames_are_trimmed() {
    let config = with_env(&[("SHARD_CLIENT_SHARD_HOSTNAME", " s2 \n")]).unwrap();
    assert_eq!(config.shard_hostname, "s2");
}

#[test]
fn text_variables_are_not_read_as_numbers() {
    let config = with_env(&[
        ("SHARD_CLIENT_SHARD_HOSTNAME", "007"),
        ("SHARD_CLIENT_RPC_USER", "true"),
    ])
    .unwrap();
    assert_eq!(config.shard_hostname, "007");
    assert_eq!(config.rpc.user, "true");
}

#[test]
fn sqlite_forms_sqlx_accepts() {
    for url in [
        "sqlite::memory:",
        "sqlite:shard.db",
        "sqlite:///var/lib/shard.db",
    ] {
        let config = with_env(&[("SHARD_CLIENT_DATABASE_URL", url)]).unwrap();
        assert_eq!(config.database_url, url);
    }
    let config = with_env(&[("SHARD_CLIENT_DATABASE_URL", "postgresql://u@db/afe")]).unwrap();
    assert_eq!(config.database_url, "postgresql://u@db/afe");
}

#[test]
fn empty_shard_hostname() {
    assert_eq!(
        error_with_env(&[("SHARD_CLIENT_SHARD_HOSTNAME", "  ")]),
        "invalid configuration: `shard_hostname` must not be empty \
         (from environment variable SHARD_CLIENT_SHARD_HOSTNAME)"
    );
}

#[test]
fn missing_global_afe_hostname() {
    let err = load_from(
        None,
        vars(&[]),
        &Settings {
            shard_hostname: Some("s1".to_owned()),
            ..Settings::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.key(), Some("global_afe_hostname"));
    assert_eq!(
        err.to_string(),
        "invalid configuration: `global_afe_hostname` is required: set it in the --config \
         file, as SHARD_CLIENT_GLOBAL_AFE_HOSTNAME or with --global-afe-hostname"
    );
}

#[test]
fn database_url_with_unknown_scheme() {
    let err = load_from(
        None,
        vars(&[]),
        &Settings {
            database_url: Some("ftp://u:secret@h/db".to_owned()),
            ..flags_with_required()
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: `database_url` must be a sqlite://, mysql://, mariadb://, \
         postgres:// or postgresql:// URL, got \"ftp://u:***@h/db\" (from flag --database-url)"
    );
}

#[test]
fn database_url_without_anything_after_the_scheme() {
    for url in ["mysql:", "postgres:db", "sqlite://", "no-scheme"] {
        let err = with_env(&[("SHARD_CLIENT_DATABASE_URL", url)]).unwrap_err();
        assert_eq!(err.key(), Some("database_url"), "{url}");
    }
}

#[test]
fn zero_pause() {
    assert_eq!(
        error_with_env(&[("SHARD_CLIENT_HEARTBEAT_PAUSE_SEC", "0")]),
        "invalid configuration: `heartbeat_pause_sec` must be a positive number of seconds, \
         got 0 (from environment variable SHARD_CLIENT_HEARTBEAT_PAUSE_SEC)"
    );
}

#[test]
fn negative_pause() {
    let err = load_from(
        None,
        vars(&[]),
        &Settings {
            heartbeat_pause_sec: Some(-1.0),
            ..flags_with_required()
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: `heartbeat_pause_sec` must be a positive number of seconds, \
         got -1 (from flag --heartbeat-pause-sec)"
    );
}

#[test]
fn nan_pause() {
    assert_eq!(
        error_with_env(&[("SHARD_CLIENT_HEARTBEAT_PAUSE_SEC", "NaN")]),
        "invalid configuration: `heartbeat_pause_sec` must be a positive number of seconds, \
         got NaN (from environment variable SHARD_CLIENT_HEARTBEAT_PAUSE_SEC)"
    );
}

#[test]
fn pause_that_is_not_a_number() {
    assert_eq!(
        error_with_env(&[("SHARD_CLIENT_HEARTBEAT_PAUSE_SEC", "soon")]),
        "invalid configuration: `heartbeat_pause_sec` must be a positive number of seconds, \
         got \"soon\" (from environment variable SHARD_CLIENT_HEARTBEAT_PAUSE_SEC)"
    );
}

#[test]
fn pause_too_short_to_last_a_nanosecond() {
    let err = with_env(&[("SHARD_CLIENT_HEARTBEAT_PAUSE_SEC", "1e-12")]).unwrap_err();
    assert_eq!(err.key(), Some("heartbeat_pause_sec"));
}

#[test]
fn infinite_and_huge_durations() {
    assert_eq!(
        error_with_env(&[("SHARD_CLIENT_RPC_TIMEOUT_MIN", "1e300")]),
        "invalid configuration: `rpc_timeout_min` is too large, got 1e300 \
         (from environment variable SHARD_CLIENT_RPC_TIMEOUT_MIN)"
    );
    let err = with_env(&[("SHARD_CLIENT_LIFETIME_HOURS", "inf")]).unwrap_err();
    assert_eq!(err.key(), Some("lifetime_hours"));
}

#[test]
fn zero_lifetime() {
    let err = with_env(&[("SHARD_CLIENT_LIFETIME_HOURS", "0")]).unwrap_err();
    assert_eq!(err.key(), Some("lifetime_hours"));
}

#[test]
fn zero_max_upload_jobs() {
    assert_eq!(
        error_with_env(&[("SHARD_CLIENT_MAX_UPLOAD_JOBS", "0")]),
        "invalid configuration: `max_upload_jobs` must be a positive whole number, got 0 \
         (from environment variable SHARD_CLIENT_MAX_UPLOAD_JOBS)"
    );
}

#[test]
fn negative_max_response_bytes() {
    assert_eq!(
        error_with_env(&[("SHARD_CLIENT_MAX_RESPONSE_BYTES", "-1")]),
        "invalid configuration: `max_response_bytes` must be a positive whole number of \
         bytes, got -1 (from environment variable SHARD_CLIENT_MAX_RESPONSE_BYTES)"
    );
}

#[test]
fn bad_metrics_addr() {
    assert_eq!(
        error_with_env(&[("SHARD_CLIENT_METRICS_ADDR", "localhost:9464")]),
        "invalid configuration: `metrics_addr` must be an IP address and port such as \
         127.0.0.1:9464, got \"localhost:9464\" \
         (from environment variable SHARD_CLIENT_METRICS_ADDR)"
    );
}

#[test]
fn rpc_path_without_leading_slash() {
    let err = with_env(&[("SHARD_CLIENT_RPC_PATH", "rpc/")]).unwrap_err();
    assert_eq!(err.key(), Some("rpc_path"));
}

#[test]
fn rpc_user_errors_never_quote_the_user() {
    let err = with_env(&[("SHARD_CLIENT_RPC_USER", "se\ncret")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: `rpc_user` must be a user name of printable ASCII \
         (from environment variable SHARD_CLIENT_RPC_USER)"
    );
}

#[test]
fn a_bad_default_user_points_at_the_environment() {
    let defaults = Figment::from(defaults());
    assert_eq!(
        origin(&defaults, "rpc_user", None).as_deref(),
        Some("from $USER or $LOGNAME, the default")
    );
    assert_eq!(origin(&defaults, "rpc_path", None), None);
}

#[test]
fn empty_rpc_ca_file() {
    let err = with_env(&[("SHARD_CLIENT_RPC_CA_FILE", "")]).unwrap_err();
    assert_eq!(err.key(), Some("rpc_ca_file"));
}

#[test]
fn unknown_key_in_toml() {
    let file = TempToml::new("unknown-key", "shard_hostnme = \"s1\"\n");
    let err = load_from(Some(&file.0), required_and(&[]), &Settings::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "invalid configuration: `shard_hostnme` is not a configuration key (in {})",
            file.0.display()
        )
    );
}

#[test]
fn unknown_variables_are_ignored_with_one_warning_each() {
    // What Kubernetes injects for a Service named `shard-client`, and a typo.
    let config = with_env(&[
        ("SHARD_CLIENT_PORT", "tcp://10.0.0.7:9464"),
        ("SHARD_CLIENT_SERVICE_HOST", "10.0.0.7"),
        ("SHARD_CLIENT_HEARTBEAT_PAUSE", "5"),
    ])
    .unwrap();
    assert_eq!(config.heartbeat_pause, Duration::from_secs(60), "ignored");
    assert_eq!(
        config.warnings(None),
        [
            "environment variable SHARD_CLIENT_HEARTBEAT_PAUSE is not a configuration key and \
             is ignored; did you mean SHARD_CLIENT_HEARTBEAT_PAUSE_SEC?",
            "environment variable SHARD_CLIENT_PORT is not a configuration key and is ignored",
            "environment variable SHARD_CLIENT_SERVICE_HOST is not a configuration key and is \
             ignored",
        ]
    );
}

#[test]
fn variables_without_the_prefix_are_ignored() {
    assert!(with_env(&[("SHARD_CLIENTX", "1"), ("shard_client_foo", "1")]).is_ok());
}

#[test]
fn wrong_type_in_toml() {
    let file = TempToml::new("wrong-type", "shard_hostname = 5\n");
    let err = load_from(Some(&file.0), vars(&[]), &Settings::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "invalid configuration: `shard_hostname` must be a host name, got 5 (in {})",
            file.0.display()
        )
    );
}

#[test]
fn table_in_toml() {
    let file = TempToml::new("table", "[max_upload_jobs]\nn = 5\n");
    let err = load_from(Some(&file.0), required_and(&[]), &Settings::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "invalid configuration: `max_upload_jobs` must be a positive whole number, \
             got a table (in {})",
            file.0.display()
        )
    );
}

#[test]
fn toml_syntax_error_names_the_file_on_one_line() {
    let file = TempToml::new("syntax", "shard_hostname = \n");
    let err = load_from(Some(&file.0), required_and(&[]), &Settings::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "invalid configuration in {}: TOML parse error at line 1, column 18: \
             invalid string: expected `\"`, `'`",
            file.0.display()
        )
    );
}

#[test]
fn missing_file_names_the_file() {
    let path = std::env::temp_dir().join("shard-client-config-does-not-exist.toml");
    let err = load_from(Some(&path), required_and(&[]), &Settings::default()).unwrap_err();
    assert!(matches!(err, ConfigError::File { .. }));
    assert!(
        err.to_string().starts_with(&format!(
            "cannot read configuration file {}: ",
            path.display()
        )),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn non_utf8_variable() {
    use std::os::unix::ffi::OsStringExt;
    let mut env = required_and(&[]);
    env.push((
        OsString::from("SHARD_CLIENT_RPC_PATH"),
        OsString::from_vec(vec![b'/', 0xff]),
    ));
    let err = load_from(None, env, &Settings::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: `rpc_path` is not valid UTF-8 \
         (from environment variable SHARD_CLIENT_RPC_PATH)"
    );
}

#[test]
fn display_and_debug_hide_the_secrets() {
    let config = load_from(
        None,
        vars(&[]),
        &Settings {
            database_url: Some("mysql://afe:hunter2@db/afe?password=hunter3".to_owned()),
            rpc_user: Some("alice-the-user".to_owned()),
            ..flags_with_required()
        },
    )
    .unwrap();
    let display = config.to_string();
    let debug = format!("{config:?}");
    for shown in [&display, &debug] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("hunter3"), "{shown}");
        assert!(!shown.contains("alice-the-user"), "{shown}");
    }
    assert_eq!(
        display,
        "global_afe_hostname=cautotest shard_hostname=s1 \
         database_url=mysql://afe:***@db/afe?password=*** database_time_zone=UTC heartbeat_pause=60s \
         rpc_endpoint=http://cautotest/afe/server/noauth/rpc/ rpc_user=<set> rpc_budget=300s \
         rpc_delay=5s rpc_request_timeout=120s max_response_bytes=268435456 \
         rpc_ca_file=none max_upload_jobs=1000 lifetime=none metrics_addr=127.0.0.1:9464 proxy=none"
    );
}

#[test]
fn proxies_come_from_the_environment_and_are_shown_without_credentials() {
    let config = with_env(&[
        ("https_proxy", "http://alice:hunter2@squid.lab:3128"),
        ("HTTP_PROXY", "http://plain.lab:3128"),
        ("no_proxy", ".corp"),
    ])
    .unwrap();
    assert_eq!(
        config.rpc.proxy,
        ProxyConfig {
            http: Some("http://plain.lab:3128".to_owned()),
            https: Some("http://alice:hunter2@squid.lab:3128".to_owned()),
            all: None,
            no_proxy: Some(".corp".to_owned()),
        }
    );
    let effective = config.effective();
    let display = config.to_string();
    for shown in [&effective, &display] {
        assert!(
            !shown.contains("hunter2") && !shown.contains("alice"),
            "{shown}"
        );
        assert!(
            shown.contains("https_proxy=http://***@squid.lab:3128"),
            "{shown}"
        );
        assert!(
            shown.contains("http_proxy=http://plain.lab:3128"),
            "{shown}"
        );
    }
}

#[test]
fn a_time_zone_with_quotes_or_spaces_is_refused_by_name() {
    for zone in ["", "  ", "UTC'; DROP", "America/Los Angeles"] {
        let err = load_from(
            None,
            vars(&[]),
            &Settings {
                database_time_zone: Some(zone.to_owned()),
                ..flags_with_required()
            },
        )
        .unwrap_err();
        assert_eq!(err.key(), Some("database_time_zone"), "{zone:?}: {err}");
    }
    let config = load_from(
        None,
        vars(&[("SHARD_CLIENT_DATABASE_TIME_ZONE", "Etc/GMT+8")]),
        &flags_with_required(),
    )
    .unwrap();
    assert_eq!(config.database_time_zone, "Etc/GMT+8");
}

#[test]
fn redaction_covers_the_query() {
    assert_eq!(
        redact_url("postgres://u@h/db?sslmode=require&password=p"),
        "postgres://u@h/db?sslmode=require&password=***"
    );
    assert!(has_password("mysql://u:p@h/db"));
    assert!(!has_password("mysql://u@h/db"));
    assert!(!has_password("sqlite://shard.db?mode=rwc"));
}

#[test]
fn no_warnings_by_default() {
    assert_eq!(with_env(&[]).unwrap().warnings(None), Vec::<String>::new());
}

#[test]
fn warns_when_metrics_leave_loopback() {
    let config = with_env(&[("SHARD_CLIENT_METRICS_ADDR", "0.0.0.0:9464")]).unwrap();
    assert_eq!(
        config.warnings(None),
        ["metrics_addr 0.0.0.0:9464 is not a loopback address: metrics are served to other hosts"]
    );
}

#[cfg(unix)]
#[test]
fn warns_when_a_readable_file_holds_the_password() {
    let file = TempToml::new(
        "readable-password",
        "global_afe_hostname = \"afe\"\nshard_hostname = \"s1\"\n\
         database_url = \"mysql://afe:pw@db/afe\"\n",
    );
    let config = load_from(Some(&file.0), vars(&[]), &Settings::default()).unwrap();
    assert_eq!(config.warnings(Some(&file.0)), Vec::<String>::new());
    set_mode(&file.0, 0o644);
    assert_eq!(
        config.warnings(Some(&file.0)),
        [format!(
            "configuration file {} holds the database password and is readable by other \
             users; make it readable by its owner only (chmod o-r)",
            file.0.display()
        )]
    );
}

#[cfg(unix)]
#[test]
fn no_password_warning_when_the_password_is_not_in_the_file() {
    let file = TempToml::new(
        "readable-no-password",
        "global_afe_hostname = \"afe\"\nshard_hostname = \"s1\"\n",
    );
    set_mode(&file.0, 0o644);
    let env = vars(&[("SHARD_CLIENT_DATABASE_URL", "mysql://afe:pw@db/afe")]);
    let config = load_from(Some(&file.0), env, &Settings::default()).unwrap();
    assert_eq!(config.warnings(Some(&file.0)), Vec::<String>::new());
}

#[test]
fn every_key_is_in_the_table() {
    let defaults = Figment::from(defaults());
    let flags = Settings {
        global_afe_hostname: Some(String::new()),
        shard_hostname: Some(String::new()),
        lifetime_hours: Some(1.0),
        rpc_ca_file: Some(PathBuf::new()),
        ..Settings::default()
    };
    let all = defaults.merge(super::flags(&flags));
    let keys: Vec<String> = all
        .data()
        .unwrap()
        .remove(&Profile::Default)
        .unwrap()
        .into_keys()
        .collect();
    let mut table: Vec<String> = KEYS.iter().map(|key| key.name.to_owned()).collect();
    table.sort();
    assert_eq!(keys, table);
}

#[test]
fn the_effective_configuration_names_each_origin_and_hides_secrets() {
    let file = TempToml::new(
        "effective",
        "shard_hostname = \"s1\"\ndatabase_url = \"mysql://afe:hunter2@db/afe?password=hunter3\"\n",
    );
    let config = load_from(
        Some(&file.0),
        vars(&[("SHARD_CLIENT_RPC_USER", "alice-the-user")]),
        &Settings {
            global_afe_hostname: Some("afe".to_owned()),
            ..Settings::default()
        },
    )
    .unwrap();
    let shown = config.effective();
    let line = |key: &str| {
        shown
            .lines()
            .find(|l| l.starts_with(&format!("{key} ")) || l.starts_with(&format!("# {key}")))
            .unwrap_or_else(|| panic!("no {key} in:\n{shown}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("global_afe_hostname"),
        "global_afe_hostname = \"afe\" # flag --global-afe-hostname"
    );
    assert_eq!(
        line("database_url"),
        format!(
            "database_url = \"mysql://afe:***@db/afe?password=***\" # TOML file {}",
            file.0.display()
        )
    );
    assert_eq!(
        line("rpc_user"),
        "rpc_user = \"<set>\" # environment variable SHARD_CLIENT_RPC_USER"
    );
    assert_eq!(
        line("heartbeat_pause_sec"),
        "heartbeat_pause_sec = 60.0 # default"
    );
    assert_eq!(line("lifetime_hours"), "# lifetime_hours # not set");
    assert_eq!(shown.lines().count(), KEYS.len());
    for secret in ["hunter2", "hunter3", "alice-the-user"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}
