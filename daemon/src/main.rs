//! `shard-client`: the long-running shard heartbeat daemon (§10).
//!
//! Exit codes: 0 success (and a clean shutdown), 1 a failed heartbeat
//! (`once`) or a failure to start, 2 a usage or configuration error.

mod cli;
mod config;
mod health;
mod logging;
mod notify;
mod process;
mod run;
mod schema;
mod serve;
mod status;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use shard_engine::{Carried, Shard};
use shard_rpc::{AfeClient, FailureKind};
use shard_store::{Store, StoreOptions};
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::health::Health;
use crate::notify::Notifier;

/// A configuration or usage error (clap uses 2 as well).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Validation comes before anything else: with a bad configuration
    // nothing is logged as started and nothing reaches the master.
    let config = match config::load(cli.config.as_deref(), &cli.settings) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("shard-client: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Before the client: building it may warn (an empty system CA store).
    logging::init(cli.log_format);
    // Built before `config` prints, so that it also refuses an unusable CA
    // file or proxy variable.
    let client = match AfeClient::new(config.rpc.clone()) {
        Ok(client) => client,
        Err(e) if e.kind() == FailureKind::Config => {
            eprintln!("shard-client: invalid configuration: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => {
            eprintln!("shard-client: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Config = cli.command {
        // The operator checking a configuration wants its warnings too.
        for warning in config.warnings(cli.config.as_deref()) {
            tracing::warn!("{warning}");
        }
        print!("{}", config.effective());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shard-client: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli, config, client)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shard-client: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// `e` and its causes on one line, each said once: sea-orm and sqlx repeat
/// their cause in their own message, so a cause whose text the line
/// already holds is left out.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Runs the command; `config` is handled in `main`, before the runtime.
async fn dispatch(cli: Cli, config: Config, client: AfeClient) -> anyhow::Result<ExitCode> {
    for warning in config.warnings(cli.config.as_deref()) {
        tracing::warn!("{warning}");
    }
    match cli.command {
        Command::Run => run_daemon(config, client).await,
        Command::Once => once(config, client).await,
        Command::Status { json } => status(&config, json).await,
        Command::Schema { json } => schema(&config, json).await,
        Command::Migrate => {
            open_store(&config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config => Ok(ExitCode::SUCCESS),
    }
}

/// `once`: exactly one heartbeat; the database must be reachable now.
async fn once(config: Config, client: AfeClient) -> anyhow::Result<ExitCode> {
    let shard = shard(&config, open_store(&config).await?, client);
    let stop = shutdown_on_signal()?;
    match shard_engine::heartbeat(&shard, &stop).await {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("shard-client: heartbeat failed ({}): {e}", e.failure_type());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `schema`: the catalog as it is, without creating anything.
async fn schema(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_read_only(config).await?;
    let layout = store.layout();
    if json {
        println!("{}", serde_json::to_string_pretty(&*layout)?);
    } else {
        print!("{}", schema::table(&layout));
    }
    Ok(ExitCode::SUCCESS)
}

/// The shard a heartbeat works for.
fn shard(config: &Config, store: Store, client: AfeClient) -> Shard {
    Shard {
        hostname: config.shard_hostname.clone(),
        store,
        client,
        max_upload_jobs: config.max_upload_jobs,
        carried: Carried::default(),
    }
}

/// `run`: SIGTERM is handled and the metrics endpoint served from the first
/// instant, the database is waited for (see [`wait_for_store`]), then
/// heartbeats go out until SIGTERM or the configured lifetime.
async fn run_daemon(config: Config, client: AfeClient) -> anyhow::Result<ExitCode> {
    tracing::info!(version = cli::VERSION, config = %config, "shard-client starting");
    let stop = shutdown_on_signal()?;
    let handle = serve::install_recorder()?;
    let health = Arc::new(Health::new(
        config.heartbeat_pause,
        config.rpc.budget,
        config.rpc.request_timeout,
    ));
    let bound = serve::serve(
        config.metrics_addr,
        handle,
        Arc::clone(&health),
        stop.clone(),
    )
    .await?;
    tracing::info!(
        metrics = %format!("http://{bound}/metrics"),
        healthz = %format!("http://{bound}/healthz"),
        "metrics endpoint listening"
    );
    let notifier = Notifier::from_env();
    if let Some(interval) = Notifier::watchdog_interval() {
        tokio::spawn(watchdog(interval, Arc::clone(&health), stop.clone()));
    }
    notifier.status("waiting for the shard database");
    let Some(store) = wait_for_store(&config, &stop, &health).await else {
        notifier.stopping();
        tracing::info!("shard-client stopped before the database was reachable");
        return Ok(ExitCode::SUCCESS);
    };
    notifier.ready("sending heartbeats");
    let shard = shard(&config, store, client);
    run::run(
        &shard,
        config.heartbeat_pause,
        config.lifetime,
        &health,
        stop,
    )
    .await;
    notifier.stopping();
    tracing::info!("shard-client stopped");
    Ok(ExitCode::SUCCESS)
}

/// Tells systemd's watchdog the service is alive every `interval`, for as
/// long as the loop is (`/livez`): a wedged loop stops the pings and
/// systemd restarts the service.
async fn watchdog(interval: Duration, health: Arc<Health>, stop: CancellationToken) {
    let notifier = Notifier::from_env();
    loop {
        if health.liveness().healthy {
            notifier.watchdog();
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Connects to the shard database and creates or adopts the schema, which
/// every command does first (§10).
async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect_with(&config.database_url, &store_options(config)).await?;
    let report = store.migrate().await?;
    if !report.created.is_empty() {
        tracing::info!(tables = ?report.created, "created the missing AFE tables");
    }
    if !report.adopted.is_empty() && !report.created.is_empty() {
        tracing::info!(tables = ?report.adopted, "adopted existing AFE tables");
    }
    Ok(store)
}

/// The first pause after `run` fails to reach the database; it doubles up
/// to [`DATABASE_RETRY_MAX`].
const DATABASE_RETRY_FIRST: Duration = Duration::from_secs(1);

/// The longest pause between two attempts to reach the database.
const DATABASE_RETRY_MAX: Duration = Duration::from_secs(30);

/// [`open_store`] until it succeeds, for `run`: a database that is down at
/// start (restarting with the machine, say) is waited for with backoff,
/// each failure logged with its real cause and counted. `None` when `stop`
/// is cancelled first.
async fn wait_for_store(
    config: &Config,
    stop: &CancellationToken,
    health: &Health,
) -> Option<Store> {
    let mut pause = DATABASE_RETRY_FIRST;
    for attempt in 1u64.. {
        // Each attempt is a tick of a live loop (`/livez`).
        health.tick();
        let failure = tokio::select! {
            () = stop.cancelled() => return None,
            opened = open_store(config) => match opened {
                Ok(store) => return Some(store),
                Err(e) => e,
            },
        };
        metrics::counter!(shard_engine::metrics::DATABASE_CONNECT_FAILURES).increment(1);
        tracing::warn!(
            attempt,
            retry_in_s = pause.as_secs(),
            error = %one_line(&failure),
            "the shard database is not reachable yet; waiting for it"
        );
        tokio::select! {
            () = stop.cancelled() => return None,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(DATABASE_RETRY_MAX);
    }
    None
}

/// `status`: the packet the next heartbeat would send, read without
/// writing anything, from a database whose tables must all be there.
async fn status(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_read_only(config).await?;
    let layout = store.layout();
    let missing: Vec<&str> = shard_store::schema::AFE_TABLES
        .iter()
        .copied()
        .filter(|t| layout.table(t).is_none())
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "the shard database {} lacks the AFE tables {}: is it the right database? \
             `shard-client migrate` creates them",
            shard_store::redact_url(&config.database_url),
            missing.join(", ")
        );
    }
    let packet =
        status::next_packet(&store, &config.shard_hostname, config.max_upload_jobs).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&packet)?);
    } else {
        print!("{}", status::table(&packet));
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the shard database for reading only (`status`, `schema`): a
/// mistyped SQLite path is reported, not created.
async fn open_read_only(config: &Config) -> anyhow::Result<Store> {
    let settings = StoreOptions {
        read_only: true,
        ..store_options(config)
    };
    Ok(Store::connect_with(&config.database_url, &settings).await?)
}

/// How the store opens the database, from the configuration.
fn store_options(config: &Config) -> StoreOptions {
    StoreOptions {
        time_zone: config.database_time_zone.clone(),
        read_only: false,
    }
}

/// A token cancelled by SIGINT or SIGTERM.
///
/// A second signal ends the process at once, with 128 + the signal's number
/// as its exit code (the shell's convention): an operator who asks twice
/// does not want to wait for a write the database is holding up.
fn shutdown_on_signal() -> anyhow::Result<CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};
    let stop = CancellationToken::new();
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let token = stop.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutdown requested");
        token.cancel();
        let (name, code) = tokio::select! {
            _ = term.recv() => ("SIGTERM", 128 + 15),
            _ = int.recv() => ("SIGINT", 128 + 2),
        };
        tracing::warn!(signal = name, "second signal: exiting without finishing");
        std::process::exit(code);
    });
    Ok(stop)
}
