//! The deployment kit (`deploy/`) against the binary it deploys: the
//! sample configuration sets every key to its default and loads, the
//! dashboard and the alerts name only series the daemon exports, the
//! Kubernetes example and the systemd unit run command lines the binary
//! accepts, and every alert has its runbook entry and its rule test. The
//! files are read as text; `deploy/check` runs the tools that parse them
//! (systemd-analyze, promtool, kubectl).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;
use serde_json::Value;
use shard_store::testing::{Backend, TestDb};
use shard_tests::scrape::{self, Answer};
use shard_tests::{Output, Reply, Script, ScriptedMaster, ShardClient};

/// How long the client may take to start and send its first heartbeats.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one GET of the endpoint may take.
const GET_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the client may take to exit after SIGTERM, here only a guard.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the unit and the Deployment expect the configuration file.
const INSTALLED_CONFIG: &str = "/etc/shard-client/shard-client.toml";

/// The exit code of a configuration the binary refuses.
const EXIT_BAD_CONFIG: i32 = 2;

/// `deploy/` of this repository.
fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// A file of `deploy/`, as text.
fn read(relative: &str) -> String {
    let path = deploy_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every `*.yaml` of `deploy/kubernetes`, by file name.
fn kubernetes_manifests() -> Vec<(String, String)> {
    let dir = deploy_dir().join("kubernetes");
    let mut manifests: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    manifests.sort();
    assert!(
        manifests.len() >= 4,
        "kustomization, deployment, service, secret: {manifests:?}"
    );
    manifests
}

/// Runs `shard-client` with `args` and `env` to its end. `ShardClient`
/// removes the test's own `SHARD_CLIENT_*` and proxy variables, so only
/// `env` and the files configure it.
async fn run_with(args: &[String], env: &[(&str, &str)]) -> Output {
    ShardClient::run_to_end(args, env, RUN_TIMEOUT).await
}

// ---------------------------------------------------------------------------
// `shard-client config`.

/// One line of `shard-client config`: `key = value  # origin`, or
/// `# key  # not set`.
#[derive(Debug, Clone, PartialEq)]
struct Effective {
    key: String,
    /// The value as printed; `None` when the key is not set.
    value: Option<String>,
    /// `default`, `TOML file PATH`, `environment variable NAME`, `flag
    /// --NAME` or `not set`.
    from: String,
}

/// The keys `shard-client config` printed, in its order.
fn effective(stdout: &str) -> Vec<Effective> {
    stdout
        .lines()
        .filter_map(|line| {
            let (setting, from) = line.rsplit_once("  # ")?;
            let setting = setting.trim();
            let (key, value) = match setting.strip_prefix("# ") {
                Some(key) => (key.trim(), None),
                None => {
                    let (key, value) = setting.split_once(" = ")?;
                    (key.trim(), Some(value.trim().to_owned()))
                }
            };
            Some(Effective {
                key: key.to_owned(),
                value,
                from: from.trim().to_owned(),
            })
        })
        .collect()
}

/// Whether two printed values are the same: `60` and `60.0` are.
fn same_value(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<Value>(a),
        serde_json::from_str::<Value>(b),
    ) {
        (Ok(Value::Number(a)), Ok(Value::Number(b))) => a.as_f64() == b.as_f64(),
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[tokio::test]
async fn the_sample_configuration_sets_every_key_and_loads() {
    let sample = deploy_dir().join("shard-client.toml");
    let text = read("shard-client.toml");
    let from_file = format!("TOML file {}", sample.display());

    let output = run_with(
        &[
            "--config".to_owned(),
            sample.display().to_string(),
            "config".to_owned(),
        ],
        &[],
    )
    .await;

    assert_eq!(output.code, Some(0), "{output}");
    let keys = effective(&output.stdout);
    assert!(keys.len() >= 15, "too few keys printed:\n{output}");
    // Every key with a default is set by the file; a key whose default is
    // "not set" is shown commented out, with an example value.
    for key in &keys {
        match &key.value {
            Some(_) => assert_eq!(
                key.from, from_file,
                "{} does not come from the sample; add it to deploy/shard-client.toml",
                key.key
            ),
            None => assert!(
                text.lines()
                    .any(|line| line.starts_with(&format!("# {} = ", key.key))),
                "{} has no default and the sample does not show it as `# {} = …`",
                key.key,
                key.key
            ),
        }
    }
    // And each is its default, but for the two required keys, which have
    // none.
    let defaults = run_with(
        &[
            "--global-afe-hostname",
            "master.example.com",
            "--shard-hostname",
            "shard1",
            "config",
        ]
        .map(str::to_owned),
        &[],
    )
    .await;
    assert_eq!(defaults.code, Some(0), "{defaults}");
    let defaults = effective(&defaults.stdout);
    assert_eq!(
        keys.iter().map(|k| &k.key).collect::<Vec<_>>(),
        defaults.iter().map(|k| &k.key).collect::<Vec<_>>()
    );
    for (sample, default) in keys.iter().zip(&defaults) {
        if ["global_afe_hostname", "shard_hostname"].contains(&sample.key.as_str()) {
            continue;
        }
        let same = match (&sample.value, &default.value) {
            (Some(a), Some(b)) => same_value(a, b),
            (a, b) => a == b,
        };
        assert!(
            same,
            "the sample sets {} to {:?}, its default is {:?}",
            sample.key, sample.value, default.value
        );
    }
    // No secret in the sample: the database URL it sets has no password.
    let url = keys
        .iter()
        .find(|k| k.key == "database_url")
        .and_then(|k| k.value.clone())
        .expect("database_url is printed");
    assert!(
        !url.contains("***"),
        "the sample's database_url has a password: {url}"
    );
}

// ---------------------------------------------------------------------------
// Metric names in the dashboard and the alerts.

/// The metric names of ours (`shard_client_*`, `process_*`) a PromQL
/// expression reads; quoted strings (label values) are skipped.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut chars = expr.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c == '"' || c == '\'' {
            let mut escaped = false;
            for (_, next) in chars.by_ref() {
                match next {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    _ if next == c => break,
                    _ => {}
                }
            }
            continue;
        }
        if !(c.is_ascii_alphabetic() || c == '_' || c == ':') {
            continue;
        }
        let mut end = start + c.len_utf8();
        while let Some(&(at, next)) = chars.peek() {
            if !(next.is_ascii_alphanumeric() || next == '_' || next == ':') {
                break;
            }
            end = at + next.len_utf8();
            chars.next();
        }
        let word = &expr[start..end];
        if word.starts_with("shard_client_") || word.starts_with("process_") {
            names.insert(word.to_owned());
        }
    }
    names
}

/// Every `expr` string anywhere in a Grafana dashboard.
fn dashboard_exprs(value: &Value, exprs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Value::String(expr)) => exprs.push(expr.clone()),
                    _ => dashboard_exprs(value, exprs),
                }
            }
        }
        Value::Array(values) => {
            for value in values {
                dashboard_exprs(value, exprs);
            }
        }
        _ => {}
    }
}

/// The `expr:` values of a Prometheus rules file, one-line or block
/// scalars (`expr: |` and the lines indented under it).
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut exprs = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if !["|", "|-", ">", ">-"].contains(&rest) {
            exprs.push(rest.trim_matches(|c| c == '\'' || c == '"').to_owned());
            continue;
        }
        let block: Vec<&str> = lines[at + 1..]
            .iter()
            .take_while(|next| next.trim().is_empty() || indent(next) > indent(line))
            .copied()
            .collect();
        exprs.push(block.join("\n"));
    }
    exprs
}

/// The names of the samples of a Prometheus text exposition (a histogram's
/// are its `_bucket`, `_sum` and `_count`).
fn exposed_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_alerts_name_is_exported() {
    let dashboard: Value = serde_json::from_str(&read("grafana/shard-client.json")).unwrap();
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard, &mut exprs);
    let from_dashboard: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    let from_alerts: BTreeSet<String> = rule_exprs(&read("prometheus/alerts.yml"))
        .iter()
        .flat_map(|e| metric_names(e))
        .collect();
    // Guards against an extraction that finds nothing to check.
    assert!(from_dashboard.len() >= 20, "{from_dashboard:?}");
    assert!(from_alerts.len() >= 5, "{from_alerts:?}");

    // One success (every histogram has a sample then; the counters start
    // at zero), then the client waits on its next call.
    let db = TestDb::empty(Backend::Sqlite)
        .await
        .expect("SQLite always runs");
    let master = ScriptedMaster::start(Script::new([Reply::empty()]).then_wait_for_push()).await;
    let (running, base) = run_with_endpoint(args("run", &master, &db), &ENV).await;
    master.wait_for_requests(2, START_TIMEOUT).await.unwrap();
    let Answer { status, body } = scrape::get(&format!("{base}/metrics"), GET_TIMEOUT)
        .await
        .unwrap();
    running.terminate();
    let output = running.wait(EXIT_TIMEOUT).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(output.code, Some(0), "{output}");
    let exposed = exposed_names(&body);
    for (file, names) in [
        ("deploy/grafana/shard-client.json", &from_dashboard),
        ("deploy/prometheus/alerts.yml", &from_alerts),
    ] {
        let missing: Vec<&String> = names.difference(&exposed).collect();
        assert!(
            missing.is_empty(),
            "{file} reads series the client does not export: {missing:?}\nexported:\n{body}"
        );
    }
    master.assert_no_violations();
}

// ---------------------------------------------------------------------------
// Kubernetes.

/// The value of the first `key: value` line after the line `after`, in
/// `text` (quotes removed).
fn value_after(text: &str, after: &str, key: &str) -> Option<String> {
    text.lines()
        .skip_while(|line| line.trim() != after)
        .find_map(|line| line.trim().strip_prefix(&format!("{key}:")))
        .map(|value| value.trim().trim_matches('"').to_owned())
}

/// The items of the block list under the line `key:` (`- item` lines).
fn list_after(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .skip_while(|line| line.trim() != format!("{key}:"))
        .skip(1)
        .map_while(|line| line.trim().strip_prefix("- "))
        .map(|item| item.trim().trim_matches('"').to_owned())
        .collect()
}

/// Every `SHARD_CLIENT_*` name the manifests mention.
fn client_variables(manifests: &[(String, String)]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let lines = manifests
        .iter()
        .flat_map(|(_, text)| text.lines())
        .filter(|line| !line.trim_start().starts_with('#'));
    for line in lines {
        let mut rest = line;
        while let Some(at) = rest.find("SHARD_CLIENT_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            names.insert(name);
        }
    }
    names
}

/// The value the manifests give `name`: `value:` right under `- name:
/// NAME`, or a `NAME: value` entry (a Secret's `stringData`).
fn manifest_value(manifests: &[(String, String)], name: &str) -> Option<String> {
    let entry = format!("- name: {name}");
    let lines: Vec<&str> = manifests
        .iter()
        .flat_map(|(_, text)| text.lines())
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .collect();
    let unquote = |value: &str| value.trim().trim_matches('"').to_owned();
    let under_name = lines
        .windows(2)
        .find(|pair| pair[0] == entry)
        .and_then(|pair| pair[1].strip_prefix("value:"))
        .map(unquote);
    under_name.or_else(|| {
        lines
            .iter()
            .find_map(|line| line.strip_prefix(&format!("{name}:")))
            .map(unquote)
            .filter(|value| !value.is_empty())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_example_probes_the_daemons_endpoints() {
    let manifests = kubernetes_manifests();
    let deployment = &manifests
        .iter()
        .find(|(name, _)| name == "deployment.yaml")
        .expect("deployment.yaml")
        .1;
    let kustomization = read("kubernetes/kustomization.yaml");
    let toml = deploy_dir().join("kubernetes/shard-client.toml");

    // The probes name the daemon's endpoints, on its metrics port.
    assert_eq!(
        value_after(deployment, "livenessProbe:", "path").as_deref(),
        Some("/livez")
    );
    assert_eq!(
        value_after(deployment, "readinessProbe:", "path").as_deref(),
        Some("/readyz")
    );
    assert_eq!(
        value_after(deployment, "livenessProbe:", "port").as_deref(),
        Some("metrics")
    );
    assert_eq!(
        value_after(deployment, "readinessProbe:", "port").as_deref(),
        Some("metrics")
    );
    let port = value_after(deployment, "- name: metrics", "containerPort").expect("containerPort");
    // The configuration comes from the generated ConfigMap at the path the
    // arguments name.
    assert!(
        list_after(&kustomization, "files").contains(&"shard-client.toml".to_owned()),
        "{kustomization}"
    );
    assert_eq!(
        value_after(deployment, "- name: config", "mountPath").as_deref(),
        Some("/etc/shard-client")
    );
    let args = list_after(deployment, "args");
    assert_eq!(
        args.iter()
            .position(|arg| arg == "--config")
            .map(|at| args[at + 1].as_str()),
        Some(INSTALLED_CONFIG),
        "{args:?}"
    );
    assert_eq!(args.last().map(String::as_str), Some("run"), "{args:?}");
    let args: Vec<String> = args
        .iter()
        .map(|arg| match arg.as_str() {
            INSTALLED_CONFIG => toml.display().to_string(),
            _ => arg.clone(),
        })
        .collect();

    // Every SHARD_CLIENT_ variable the manifests set is a key the client
    // reads (`config` names it as the origin of its value), and the
    // configuration listens where the container port is.
    let variables = client_variables(&manifests);
    assert!(
        variables.contains("SHARD_CLIENT_DATABASE_URL"),
        "{variables:?}"
    );
    let values: Vec<(String, String)> = variables
        .iter()
        .map(|name| {
            let value = manifest_value(&manifests, name)
                .unwrap_or_else(|| panic!("the manifests give {name} no value"));
            (name.clone(), value)
        })
        .collect();
    let env: Vec<(&str, &str)> = values
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let mut config_args = args.clone();
    *config_args.last_mut().unwrap() = "config".to_owned();
    let output = run_with(&config_args, &env).await;
    assert_eq!(output.code, Some(0), "{output}");
    for name in &variables {
        assert!(
            output
                .stdout
                .contains(&format!("# environment variable {name}\n")),
            "{name} is not a configuration key:\n{output}"
        );
    }
    let keys = effective(&output.stdout);
    let metrics_addr = keys
        .iter()
        .find(|k| k.key == "metrics_addr")
        .and_then(|k| k.value.clone());
    assert_eq!(
        metrics_addr,
        Some(format!("\"0.0.0.0:{port}\"")),
        "{output}"
    );

    // The pod's command line runs, and its probes answer: alive at once,
    // ready after a successful heartbeat. The master, the database and
    // the port are the test's, and the pause short.
    let db = TestDb::empty(Backend::Sqlite)
        .await
        .expect("SQLite always runs");
    let master = ScriptedMaster::start(Script::new([Reply::empty()]).then_wait_for_push()).await;
    let run_args: Vec<String> = args
        .into_iter()
        .chain(
            [
                "--global-afe-hostname",
                &master.url(),
                "--metrics-addr",
                "127.0.0.1:0",
                "--heartbeat-pause-sec",
                "0.1",
            ]
            .map(str::to_owned),
        )
        .collect();
    let env: Vec<(&str, &str)> = env
        .into_iter()
        .map(|(name, value)| match name {
            "SHARD_CLIENT_DATABASE_URL" => (name, db.url()),
            _ => (name, value),
        })
        .collect();
    let (running, base) = run_with_endpoint(run_args, &env).await;
    let live = scrape::get(&format!("{base}/livez"), GET_TIMEOUT)
        .await
        .unwrap();
    master.wait_for_requests(2, START_TIMEOUT).await.unwrap();
    let ready = scrape::get(&format!("{base}/readyz"), GET_TIMEOUT)
        .await
        .unwrap();
    running.terminate();
    let output = running.wait(EXIT_TIMEOUT).await;

    assert_eq!(live.status, 200, "{}", live.body);
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(output.code, Some(0), "{output}");
    assert!(
        !output.stderr.contains("is not a configuration key"),
        "{output}"
    );
    master.assert_no_violations();
}

// ---------------------------------------------------------------------------
// systemd.

/// The value of `Key=` in a unit file; the last one wins, as in systemd.
fn unit_value(unit: &str, key: &str) -> Option<String> {
    unit.lines()
        .rev()
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
}

#[tokio::test]
async fn the_systemd_unit_runs_a_command_line_the_binary_accepts() {
    let unit = read("shard-client.service");
    let sample = deploy_dir().join("shard-client.toml");
    let exec_start = unit_value(&unit, "ExecStart").expect("ExecStart=");
    let mut words = exec_start.split_whitespace().map(str::to_owned);
    let binary = words.next().expect("a command");
    let args: Vec<String> = words.collect();
    assert!(binary.ends_with("/shard-client"), "{exec_start}");
    assert_eq!(args.last().map(String::as_str), Some("run"), "{exec_start}");
    assert!(
        args.iter().any(|arg| arg == INSTALLED_CONFIG),
        "the unit reads {INSTALLED_CONFIG}, where the README installs the sample: {exec_start}"
    );
    let args: Vec<String> = args
        .iter()
        .map(|arg| match arg.as_str() {
            INSTALLED_CONFIG => sample.display().to_string(),
            _ => arg.clone(),
        })
        .collect();

    // Its flags, with the sample, make a configuration the binary loads.
    let mut config_args = args.clone();
    *config_args.last_mut().unwrap() = "config".to_owned();
    let output = run_with(&config_args, &[]).await;
    assert_eq!(output.code, Some(0), "{output}");

    // A configuration the binary refuses is not restarted: `run` exits
    // with the code the unit lists in RestartPreventExitStatus=.
    let refused = run_with(&set(args, "--heartbeat-pause-sec", "0"), &[]).await;
    assert_eq!(refused.code, Some(EXIT_BAD_CONFIG), "{refused}");
    assert_eq!(
        unit_value(&unit, "RestartPreventExitStatus"),
        Some(EXIT_BAD_CONFIG.to_string())
    );

    // The daemon speaks sd_notify and pings the watchdog.
    assert_eq!(unit_value(&unit, "Type").as_deref(), Some("notify"));
    let watchdog = unit_value(&unit, "WatchdogSec").expect("WatchdogSec=");
    assert!(
        watchdog
            .trim_end_matches('s')
            .parse::<u32>()
            .is_ok_and(|s| s > 0),
        "{watchdog}"
    );
    // The sample's relative SQLite default lands in the state directory.
    let state = unit_value(&unit, "StateDirectory").expect("StateDirectory=");
    assert_eq!(
        unit_value(&unit, "WorkingDirectory"),
        Some(format!("%S/{state}"))
    );
}

// ---------------------------------------------------------------------------
// Runbooks and rule tests.

/// GitHub's anchor of a Markdown heading: lower case, punctuation other
/// than `-` and `_` dropped, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_alert_has_a_runbook_entry_and_a_rule_test() {
    let alerts = read("prometheus/alerts.yml");
    let tests = read("prometheus/alerts_test.yml");
    let operations_path = deploy_dir().join("../docs/operations.md");
    let operations = std::fs::read_to_string(&operations_path).unwrap();
    let anchors: BTreeSet<String> = operations
        .lines()
        .filter(|line| line.starts_with('#'))
        .map(|line| anchor(line.trim_start_matches('#')))
        .collect();
    let names: Vec<&str> = alerts
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert:"))
        .map(str::trim)
        .collect();
    let runbooks: Vec<&str> = alerts
        .lines()
        .filter_map(|line| line.trim().strip_prefix("runbook_url:"))
        .map(|url| url.trim().trim_matches('"'))
        .collect();
    assert!(names.len() >= 7, "{names:?}");
    assert_eq!(names.len(), runbooks.len(), "one runbook_url per alert");

    for (name, url) in names.iter().zip(&runbooks) {
        let (file, fragment) = url
            .split_once('#')
            .unwrap_or_else(|| panic!("{name}: {url} has no anchor"));
        assert_eq!(file, "docs/operations.md", "{name}");
        assert_eq!(
            fragment,
            anchor(name),
            "{name}: its entry is named after it"
        );
        assert!(
            anchors.contains(fragment),
            "{name}: docs/operations.md has no heading for #{fragment}"
        );
        // Expected to fire at least once: `exp_alerts:` with a list under
        // it rather than `exp_alerts: []`.
        let test_lines: Vec<&str> = tests.lines().map(str::trim).collect();
        assert!(
            test_lines
                .windows(2)
                .any(|pair| pair == [format!("alertname: {name}").as_str(), "exp_alerts:"]),
            "alerts_test.yml never expects {name} to fire"
        );
    }
}
