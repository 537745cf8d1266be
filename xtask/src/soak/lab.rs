//! The soak's lab: one master process, per shard a database (a SQLite file
//! or a throw-away database on a server), a `shard-client` process
//! heartbeating with a short pause, and a scheduler simulator.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use shard_store::Store;
use shard_store::testing::{Backend, TestDb};
use shard_tests::scheduler::{Scheduler, SchedulerConfig};
use tokio_util::sync::CancellationToken;

use super::sample::DbTarget;
use crate::demo::procs::{Child, free_port, wait_for_port};

/// The clients' pause between heartbeats: ~15,000 heartbeats an hour.
pub const PAUSE_SEC: &str = "0.2";
/// The scheduler simulators' round.
const TICK: Duration = Duration::from_millis(250);

/// One shard: its database, its client, where to read them.
pub struct Shard {
    /// `shard<n>`.
    pub name: String,
    /// The shard database (the scheduler and the purge write it).
    pub store: Store,
    /// How the client's database connections are counted.
    pub db_target: DbTarget,
    /// The client's JSON log.
    pub log: PathBuf,
    /// Where the client serves its metrics.
    pub metrics_url: String,
    /// The client process.
    pub client: Child,
    /// Scheduler rounds that failed.
    pub scheduler_errors: Arc<AtomicU64>,
    scratch: Option<TestDb>,
}

/// The master and the shards.
pub struct Lab {
    /// The master process.
    pub master: Child,
    /// The shards, in order.
    pub shards: Vec<Shard>,
}

impl Lab {
    /// Starts the master on `master_url` and `shards` shards on `backend`.
    pub async fn start(
        dir: &Path,
        bin: &Path,
        master_url: &str,
        shards: u32,
        backend: Backend,
        stop: &CancellationToken,
    ) -> Result<Lab> {
        let port = free_port()?;
        let master = Child::spawn(
            &bin.join("shard-master"),
            &[
                "--database-url",
                master_url,
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ],
            &dir.join("master.log"),
        )?;
        wait_for_port(port, Duration::from_secs(20))
            .await
            .context("the master did not start")?;
        let mut lab = Lab {
            master,
            shards: Vec::new(),
        };
        for n in 1..=shards {
            let (store, url, db_target, scratch) = match backend {
                Backend::Sqlite => {
                    let file = dir.join(format!("shard-{n}.db"));
                    let url = crate::demo::sqlite_url(&file);
                    let store = Store::connect(&url).await?;
                    store.migrate().await?;
                    (store, url, DbTarget::File(file), None)
                }
                Backend::MySql | Backend::Postgres => {
                    let db = crate::db::fresh(backend).await?;
                    let port = server_port(db.url())?;
                    (
                        db.store.clone(),
                        db.url().to_owned(),
                        DbTarget::Port(port),
                        Some(db),
                    )
                }
            };
            let metrics_port = free_port()?;
            let log = dir.join(format!("shard-{n}.log"));
            let client = Child::spawn(
                &bin.join("shard-client"),
                &[
                    "--global-afe-hostname",
                    &format!("127.0.0.1:{port}"),
                    "--shard-hostname",
                    &format!("shard{n}"),
                    "--database-url",
                    &url,
                    "--heartbeat-pause-sec",
                    PAUSE_SEC,
                    "--rpc-delay-sec",
                    "0.2",
                    "--rpc-timeout-min",
                    "0.5",
                    "--metrics-addr",
                    &format!("127.0.0.1:{metrics_port}"),
                    "--log-format",
                    "json",
                    "run",
                ],
                &log,
            )?;
            let scheduler_errors = Arc::new(AtomicU64::new(0));
            let scheduler = Scheduler::new(
                store.connection().clone(),
                SchedulerConfig {
                    seed: u64::from(n),
                    // One to three seconds per test.
                    run_ticks: 4..=12,
                    ..SchedulerConfig::default()
                },
            );
            tokio::spawn(schedule(
                scheduler,
                format!("shard{n}"),
                Arc::clone(&scheduler_errors),
                stop.clone(),
            ));
            lab.shards.push(Shard {
                name: format!("shard{n}"),
                store,
                db_target,
                log,
                metrics_url: format!("http://127.0.0.1:{metrics_port}/metrics"),
                client,
                scheduler_errors,
                scratch,
            });
        }
        Ok(lab)
    }

    /// Stops every process politely (SIGTERM), then drops the throw-away
    /// databases.
    pub async fn shut_down(mut self) {
        for shard in &mut self.shards {
            shard.client.terminate();
        }
        for shard in &mut self.shards {
            shard.client.wait(Duration::from_secs(5)).await;
        }
        self.master.terminate();
        self.master.wait(Duration::from_secs(5)).await;
        for mut shard in self.shards {
            if let Some(db) = shard.scratch.take()
                && let Err(e) = crate::db::discard(db).await
            {
                eprintln!("soak: {}: {e:#}", shard.name);
            }
        }
    }
}

/// Runs the scheduler simulator every [`TICK`], counting the rounds that
/// fail (the soak's "zero failures" includes the lab's own).
async fn schedule(
    mut scheduler: Scheduler,
    name: String,
    errors: Arc<AtomicU64>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(TICK) => {}
        }
        if let Err(e) = scheduler.tick().await {
            errors.fetch_add(1, Ordering::Relaxed);
            eprintln!("soak: {name}: a scheduler round failed: {e}");
        }
    }
}

/// The port of a server database URL (`scheme://user@host:port/db`).
fn server_port(url: &str) -> Result<u16> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    host_port
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .with_context(|| {
            format!(
                "{} names no port to count connections to",
                shard_store::redact_url(url)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::server_port;

    #[test]
    fn the_port_of_a_server_url() {
        assert_eq!(
            server_port("mysql://root@127.0.0.1:3306/x").ok(),
            Some(3306)
        );
        assert_eq!(
            server_port("postgres://u:p@w@db:5433/x?sslmode=disable").ok(),
            Some(5433)
        );
        assert!(server_port("mysql://root@localhost/x").is_err());
    }
}
