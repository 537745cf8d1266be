//! `shard-master`: the reference master for tests and demos.
//!
//! `shard-master --database-url URL migrate` creates the AFE schema;
//! `shard-master --database-url URL serve --listen ADDR [--rpc-path P]`
//! serves `shard_heartbeat` until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
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
    /// Serve shard_heartbeat until SIGINT or SIGTERM.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The JSON-RPC path.
        #[arg(long, default_value = "/afe/server/noauth/rpc/")]
        rpc_path: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,sea_orm_migration=warn")
            }),
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
        Command::Serve { listen, rpc_path } => {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let bound = listener.local_addr().context("reading the bound address")?;
            tracing::info!(url = %format!("http://{bound}{rpc_path}"), "shard-master serving");
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
            shard_master::server::serve(listener, store.connection().clone(), rpc_path, shutdown)
                .await;
            tracing::info!("shard-master stopped");
            Ok(())
        }
    }
}
