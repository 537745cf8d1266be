//! `shard-master`: the reference master for tests and demos.
//!
//! `shard-master --database-url URL migrate` creates the AFE schema;
//! `shard-master --database-url URL serve --listen ADDR [--rpc-path P]
//! [--upstream]` serves `shard_heartbeat` and `get_hosts` until
//! SIGINT/SIGTERM;
//! `shard-master --database-url URL seed [--preset demo|bench] [--shards N] ...`
//! creates a lab on an empty master database and prints what it wrote.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use shard_master::seed::LabSpec;
use shard_store::Store;
use tokio_util::sync::CancellationToken;

/// The reference master's command line.
#[derive(Debug, Parser)]
#[command(
    name = "shard-master",
    version,
    about = "A reference Autotest master (global AFE) serving shard_heartbeat."
)]
struct Cli {
    /// The master's database (sqlite://, mysql:// or postgres://).
    #[arg(
        long,
        global = true,
        env = "SHARD_MASTER_DATABASE_URL",
        default_value = "sqlite://master.db?mode=rwc"
    )]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or adopt the AFE schema, then exit.
    Migrate,
    /// Serve shard_heartbeat and get_hosts until SIGINT or SIGTERM.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The JSON-RPC path.
        #[arg(long, default_value = "/afe/server/noauth/rpc/")]
        rpc_path: String,
        /// TEST ONLY (fault injection): while this file exists and holds
        /// `http_500`, `garbage` or `malformed_record`, every call is answered
        /// with that fault. Never set it for a real lab.
        #[arg(long, value_name = "FILE")]
        fault_file: Option<std::path::PathBuf>,
        /// Behave as the real Autotest master does (spec §11) instead of by
        /// the reference master's stricter rules: no transaction around a
        /// heartbeat, `UnallowedRecordsSentToMain`, no `parent_job_id` in
        /// jobs, jobs follow their board to another shard, aborts resent
        /// only while no entry has started on the master, and ACL checks
        /// (`AclAccessViolation`) for the AUTHORIZATION user.
        #[arg(long)]
        upstream: bool,
    },
    /// Create a lab (shards, boards, hosts, users, suite and child jobs) on
    /// an empty master database, then print what was written.
    Seed(SeedArgs),
}

/// The lab to seed: a preset, with any count overridden.
#[derive(Debug, Args)]
struct SeedArgs {
    /// The lab to start from: `demo` (24 hosts, 60 jobs) or `bench` (2,000
    /// hosts, 10,100 jobs).
    #[arg(long, value_enum, default_value_t = Preset::Demo)]
    preset: Preset,
    /// Shards (`shard1`, `shard2`, ...).
    #[arg(long)]
    shards: Option<u32>,
    /// Boards each shard owns.
    #[arg(long)]
    boards_per_shard: Option<u32>,
    /// Hosts per board.
    #[arg(long)]
    hosts_per_board: Option<u32>,
    /// Hostless suite jobs per board.
    #[arg(long)]
    suites_per_board: Option<u32>,
    /// Child jobs per suite job.
    #[arg(long)]
    jobs_per_suite: Option<u32>,
    /// Meta-host entries per child job.
    #[arg(long)]
    hqes_per_job: Option<u32>,
    /// Labels besides the board on every host (the first is also a
    /// dependency of every child job).
    #[arg(long)]
    extra_labels_per_host: Option<u32>,
    /// ACL groups (every host is in all of them).
    #[arg(long)]
    acl_groups: Option<u32>,
    /// Users per ACL group.
    #[arg(long)]
    users_per_group: Option<u32>,
    /// Attributes per host.
    #[arg(long)]
    attributes_per_host: Option<u32>,
    /// Keyvals per child job.
    #[arg(long)]
    keyvals_per_job: Option<u32>,
    /// Keyvals per suite job.
    #[arg(long)]
    keyvals_per_suite: Option<u32>,
    /// Lease every Nth host (0: none).
    #[arg(long)]
    leased_every: Option<u32>,
    /// Lock every Nth host (0: none).
    #[arg(long)]
    locked_every: Option<u32>,
    /// Seed of the generator (priorities, creation times, serial numbers).
    #[arg(long)]
    seed: Option<u64>,
}

/// The labs `seed` starts from.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Preset {
    /// `LabSpec::default()`: the demo's lab.
    Demo,
    /// `LabSpec::bench()`: the benchmark's large lab.
    Bench,
}

impl SeedArgs {
    /// The preset's spec with the given counts overridden.
    fn spec(&self) -> LabSpec {
        let base = match self.preset {
            Preset::Demo => LabSpec::default(),
            Preset::Bench => LabSpec::bench(),
        };
        LabSpec {
            shards: self.shards.unwrap_or(base.shards),
            boards_per_shard: self.boards_per_shard.unwrap_or(base.boards_per_shard),
            hosts_per_board: self.hosts_per_board.unwrap_or(base.hosts_per_board),
            suites_per_board: self.suites_per_board.unwrap_or(base.suites_per_board),
            jobs_per_suite: self.jobs_per_suite.unwrap_or(base.jobs_per_suite),
            hqes_per_job: self.hqes_per_job.unwrap_or(base.hqes_per_job),
            extra_labels_per_host: self
                .extra_labels_per_host
                .unwrap_or(base.extra_labels_per_host),
            acl_groups: self.acl_groups.unwrap_or(base.acl_groups),
            users_per_group: self.users_per_group.unwrap_or(base.users_per_group),
            attributes_per_host: self.attributes_per_host.unwrap_or(base.attributes_per_host),
            keyvals_per_job: self.keyvals_per_job.unwrap_or(base.keyvals_per_job),
            keyvals_per_suite: self.keyvals_per_suite.unwrap_or(base.keyvals_per_suite),
            leased_every: self.leased_every.unwrap_or(base.leased_every),
            locked_every: self.locked_every.unwrap_or(base.locked_every),
            seed: self.seed.unwrap_or(base.seed),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shard-master: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shard-master: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let store = Store::connect(&cli.database_url).await?;
    store.migrate().await?;
    match cli.command {
        Command::Migrate => Ok(()),
        Command::Seed(args) => {
            let summary = shard_master::seed::seed(store.connection(), &args.spec()).await?;
            println!("{summary}");
            Ok(())
        }
        Command::Serve {
            listen,
            rpc_path,
            fault_file,
            upstream,
        } => {
            let mode = if upstream {
                shard_master::Mode::Upstream
            } else {
                shard_master::Mode::Strict
            };
            if let Some(file) = &fault_file {
                tracing::warn!(file = %file.display(), "fault injection is enabled (test only)");
            }
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let bound = listener.local_addr().context("reading the bound address")?;
            tracing::info!(url = %format!("http://{bound}{rpc_path}"), ?mode, "shard-master serving");
            let shutdown = CancellationToken::new();
            let stop = shutdown.clone();
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .context("installing the SIGTERM handler")?;
            tokio::spawn(async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                stop.cancel();
            });
            let options = shard_master::server::ServeOptions {
                rpc_path,
                mode,
                fault_file,
            };
            shard_master::server::serve_with(
                listener,
                store.connection().clone(),
                options,
                shutdown,
            )
            .await;
            tracing::info!("shard-master stopped");
            Ok(())
        }
    }
}
