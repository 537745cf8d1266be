//! The chaos lab's moving parts: the master process (with its fault
//! switch), one proxy and one `shard-client` process per shard, and the
//! scheduler simulators, each behind a gate a fault can take to pause it;
//! each process can be killed and restarted.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use shard_store::Store;
use shard_store::testing::{Backend, TestDb};
use shard_tests::scheduler::{Scheduler, SchedulerConfig};
use tokio_util::sync::CancellationToken;

use super::dbproxy::DbProxy;
use super::proxy::Proxy;
use crate::demo::procs::{Child, free_port, wait_for_port};

/// A shard: its client process, the proxy it reaches the master through,
/// its database.
pub struct ShardSlot {
    /// `shard<n>`.
    pub name: String,
    /// The proxy between this client and the master.
    pub proxy: Proxy,
    /// The shard database (the scheduler and the checks read it).
    pub store: Store,
    /// The database URL the client uses (through `db_proxy` on a server).
    pub url: String,
    /// On MariaDB or PostgreSQL: the relay the client reaches its
    /// database through, to take the database away.
    pub db_proxy: Option<DbProxy>,
    /// On MariaDB or PostgreSQL: the throw-away database, dropped at the end.
    scratch: Option<TestDb>,
    /// Held, this pauses the shard's scheduler simulator (after the round
    /// under way), so a fault can end entries itself.
    pub scheduler_gate: Arc<tokio::sync::Mutex<()>>,
    /// Where the client serves its metrics.
    pub metrics_url: String,
    metrics_addr: String,
    client: Option<Child>,
    log: PathBuf,
}

/// Everything the chaos run starts and stops.
pub struct Lab {
    /// The master's database.
    pub master_db: Store,
    master_url: String,
    master_port: u16,
    /// The fault switch of the master.
    pub fault_file: PathBuf,
    master: Option<Child>,
    /// The shards.
    pub shards: Vec<ShardSlot>,
    bin: PathBuf,
    dir: PathBuf,
    stop: CancellationToken,
}

impl Lab {
    /// Starts the master, and per shard a database on `backend`, a proxy,
    /// a client and a scheduler; the binaries are in `bin`.
    pub async fn start(
        dir: &Path,
        bin: &Path,
        master_db: Store,
        master_url: String,
        shards: u32,
        backend: Backend,
        stop: CancellationToken,
    ) -> Result<Lab> {
        let bin = bin.to_owned();
        let master_port = free_port()?;
        let mut lab = Lab {
            master_db,
            master_url,
            master_port,
            fault_file: dir.join("master.fault"),
            master: None,
            shards: Vec::new(),
            bin,
            dir: dir.to_owned(),
            stop,
        };
        lab.start_master().await?;
        let upstream = format!("127.0.0.1:{master_port}")
            .parse()
            .context("the master's address")?;
        for n in 1..=shards {
            let (store, url, db_proxy, scratch) = match backend {
                Backend::Sqlite => {
                    let url = crate::demo::sqlite_url(&dir.join(format!("shard-{n}.db")));
                    let store = Store::connect(&url).await?;
                    store.migrate().await?;
                    (store, url, None, None)
                }
                Backend::MySql | Backend::Postgres => {
                    let db = crate::db::fresh(backend).await?;
                    let upstream = server_addr(db.url()).await?;
                    let db_proxy = DbProxy::start(upstream)
                        .await
                        .context("starting a database proxy")?;
                    let url = through(db.url(), db_proxy.addr())?;
                    (db.store.clone(), url, Some(db_proxy), Some(db))
                }
            };
            let metrics_port = free_port()?;
            let proxy = Proxy::start(upstream).await?;
            let mut slot = ShardSlot {
                name: format!("shard{n}"),
                proxy,
                store,
                url,
                db_proxy,
                scratch,
                scheduler_gate: Arc::default(),
                metrics_url: format!("http://127.0.0.1:{metrics_port}/metrics"),
                metrics_addr: format!("127.0.0.1:{metrics_port}"),
                client: None,
                log: dir.join(format!("shard-{n}.log")),
            };
            lab.start_client(&mut slot)?;
            let scheduler = Scheduler::new(
                slot.store.connection().clone(),
                SchedulerConfig {
                    seed: u64::from(n),
                    // Two to six seconds per test at 250 ms ticks: the work
                    // lasts through the fault schedule.
                    run_ticks: 8..=24,
                    ..SchedulerConfig::default()
                },
            );
            tokio::spawn(scheduler.run_gated(
                Duration::from_millis(250),
                Arc::clone(&slot.scheduler_gate),
                lab.stop.clone(),
            ));
            lab.shards.push(slot);
        }
        Ok(lab)
    }

    async fn start_master(&mut self) -> Result<()> {
        let listen = format!("127.0.0.1:{}", self.master_port);
        let fault_file = self.fault_file.display().to_string();
        self.master = Some(Child::spawn(
            &self.bin.join("shard-master"),
            &[
                "--database-url",
                &self.master_url,
                "serve",
                "--listen",
                &listen,
                "--fault-file",
                &fault_file,
            ],
            &self.dir.join("master.log"),
        )?);
        wait_for_port(self.master_port, Duration::from_secs(20))
            .await
            .context("the master did not start")
    }

    fn start_client(&self, slot: &mut ShardSlot) -> Result<()> {
        let proxy = slot.proxy.addr().to_string();
        slot.client = Some(Child::spawn(
            &self.bin.join("shard-client"),
            &[
                "--global-afe-hostname",
                &proxy,
                "--shard-hostname",
                &slot.name,
                "--database-url",
                &slot.url,
                "--heartbeat-pause-sec",
                "0.5",
                "--rpc-delay-sec",
                "0.2",
                "--rpc-timeout-min",
                "0.1",
                "--rpc-request-timeout-sec",
                "2",
                "--metrics-addr",
                &slot.metrics_addr,
                "--log-format",
                "json",
                "run",
            ],
            &slot.log,
        )?);
        Ok(())
    }

    /// SIGKILLs shard `index`'s client, then starts a new one.
    pub async fn kill_and_restart_client(
        &mut self,
        index: usize,
        down_for: Duration,
    ) -> Result<()> {
        let Some(slot) = self.shards.get_mut(index) else {
            return Ok(());
        };
        if let Some(mut client) = slot.client.take() {
            client.kill().await;
        }
        tokio::time::sleep(down_for).await;
        let mut slot = self.shards.remove(index);
        let started = self.start_client(&mut slot);
        self.shards.insert(index, slot);
        started
    }

    /// SIGKILLs the master, then starts a new one on the same port.
    pub async fn kill_and_restart_master(&mut self, down_for: Duration) -> Result<()> {
        if let Some(mut master) = self.master.take() {
            master.kill().await;
        }
        tokio::time::sleep(down_for).await;
        self.start_master().await
    }

    /// Stops every process politely (SIGTERM); the databases stay readable.
    pub async fn shut_down(&mut self) {
        self.stop.cancel();
        for slot in &mut self.shards {
            if let Some(client) = slot.client.as_mut() {
                client.terminate();
                client.wait(Duration::from_secs(5)).await;
            }
        }
        if let Some(master) = self.master.as_mut() {
            master.terminate();
            master.wait(Duration::from_secs(5)).await;
        }
    }

    /// Closes the proxies and drops the throw-away databases, last of all.
    pub async fn close(self) {
        for mut slot in self.shards {
            slot.proxy.shutdown().await;
            drop(slot.db_proxy.take());
            if let Some(db) = slot.scratch.take()
                && let Err(e) = crate::db::discard(db).await
            {
                eprintln!("chaos: {}: {e:#}", slot.name);
            }
        }
    }
}

/// The `host:port` of a server database URL, resolved.
async fn server_addr(url: &str) -> Result<SocketAddr> {
    let (_, host_port, _) = split_authority(url)?;
    tokio::net::lookup_host(host_port)
        .await
        .with_context(|| format!("resolving {host_port}"))?
        .next()
        .with_context(|| format!("{host_port} resolves to no address"))
}

/// `url` with its host and port replaced by `addr` (user, database and
/// parameters kept).
fn through(url: &str, addr: SocketAddr) -> Result<String> {
    let (before, _, after) = split_authority(url)?;
    Ok(format!("{before}{addr}{after}"))
}

/// `scheme://user@`, `host:port`, `/database?…` of a server URL.
fn split_authority(url: &str) -> Result<(&str, &str, &str)> {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        bail!("{} is not a server URL", shard_store::redact_url(url));
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host_start = rest[..authority_end].rfind('@').map_or(0, |i| i + 1);
    let host_port = &rest[host_start..authority_end];
    if !host_port.contains(':') {
        bail!("{} names no port to relay", shard_store::redact_url(url));
    }
    Ok((
        &url[..scheme_end + host_start],
        host_port,
        &rest[authority_end..],
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_server_url_is_rewritten_to_go_through_the_relay() {
        let addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(
            through("mysql://root@127.0.0.1:3306/shard_x", addr).unwrap(),
            "mysql://root@127.0.0.1:4000/shard_x"
        );
        assert_eq!(
            through("postgres://u:p@w@db.example:5432/x?sslmode=disable", addr).unwrap(),
            "postgres://u:p@w@127.0.0.1:4000/x?sslmode=disable"
        );
        assert!(through("mysql://root@localhost/x", addr).is_err());
        assert!(through("sqlite:x.db", addr).is_err());
    }
}
