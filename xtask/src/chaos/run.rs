//! The chaos run: a schedule of faults drawn from a seed, a watcher that
//! samples the lab all along, convergence once the faults stop, and the
//! invariants checked at the end.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement};
use shard_master::rng::SplitMix64;
use shard_master::seed::{LabSpec, seed};
use shard_store::Store;
use shard_store::schema::entity::hqes;
use shard_store::testing::Backend;
use tokio_util::sync::CancellationToken;

use super::lab::Lab;
use super::proxy::Mode;
use super::race;

/// The options of `cargo xtask chaos`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Fault rounds (each injects one fault for a period, then heals it).
    #[arg(long, default_value_t = 20)]
    rounds: u32,
    /// Seed of the fault schedule: the same seed, the same schedule.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// One round per fault type, a smaller lab: under two minutes, for CI.
    #[arg(long)]
    quick: bool,
    /// Where the shard databases live. On `mysql` and `postgres` (the
    /// servers of `SHARD_TEST_MYSQL_URL` / `SHARD_TEST_POSTGRES_URL`) each
    /// shard gets a throw-away database, reached through a relay that the
    /// database fault takes down.
    #[arg(long, value_enum, default_value_t = ShardBackend::Sqlite)]
    backend: ShardBackend,
    /// Where the databases and logs go (wiped first).
    #[arg(long, default_value = "target/chaos")]
    dir: std::path::PathBuf,
}

/// `--backend`: where the shard databases live (chaos and soak).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShardBackend {
    Sqlite,
    Mysql,
    Postgres,
}

impl From<ShardBackend> for Backend {
    fn from(b: ShardBackend) -> Backend {
        match b {
            ShardBackend::Sqlite => Backend::Sqlite,
            ShardBackend::Mysql => Backend::MySql,
            ShardBackend::Postgres => Backend::Postgres,
        }
    }
}

/// Every fault the run injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// SIGKILL a shard client at a random moment, then restart it.
    KillClient,
    /// SIGKILL a shard client after the master has answered its heartbeat
    /// (taken its upload) and before the client has read the answer (and
    /// marked the upload), then restart it.
    KillClientUnmarked,
    /// SIGKILL the master, then restart it.
    KillMaster,
    /// The proxy delays every chunk.
    ProxyLatency,
    /// The proxy resets connections.
    ProxyReset,
    /// The proxy cuts responses mid-body.
    ProxyTruncate,
    /// The proxy never answers.
    ProxyHang,
    /// The master answers HTTP 500.
    Master500,
    /// The master answers a body that is not JSON.
    MasterGarbage,
    /// The master's answer carries a record that cannot parse.
    MasterMalformedRecord,
    /// The shard database is unavailable: a SQLite file locked by another
    /// process, a server behind a relay that cuts and refuses connections.
    DatabaseDown,
    /// An entry of a job ends and the client uploads the job; while the
    /// master's answer is held, a second entry of the job ends (the
    /// scheduler finds the job released already). See `race`.
    UploadRace,
}

const ALL_FAULTS: [Fault; 12] = [
    Fault::KillClient,
    Fault::KillClientUnmarked,
    Fault::KillMaster,
    Fault::ProxyLatency,
    Fault::ProxyReset,
    Fault::ProxyTruncate,
    Fault::ProxyHang,
    Fault::Master500,
    Fault::MasterGarbage,
    Fault::MasterMalformedRecord,
    Fault::DatabaseDown,
    Fault::UploadRace,
];

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::KillClient => "kill shard client",
            Fault::KillClientUnmarked => "kill client, answer unread",
            Fault::KillMaster => "kill master",
            Fault::ProxyLatency => "proxy latency",
            Fault::ProxyReset => "proxy reset",
            Fault::ProxyTruncate => "proxy truncate",
            Fault::ProxyHang => "proxy hang",
            Fault::Master500 => "master HTTP 500",
            Fault::MasterGarbage => "master garbage",
            Fault::MasterMalformedRecord => "master malformed record",
            Fault::DatabaseDown => "shard database unavailable",
            Fault::UploadRace => "entry finished, upload in flight",
        }
    }

    /// The counters a client must show for this fault: failure types (any
    /// of them), or a deserialization failure. `None`: a fault the client
    /// rides out without failing (latency, its own death).
    fn evidence(self) -> Option<&'static [&'static str]> {
        match self {
            // The race makes no heartbeat fail: its proof is the tally of
            // entries it ended while an upload was held.
            Fault::KillClient
            | Fault::KillClientUnmarked
            | Fault::ProxyLatency
            | Fault::UploadRace => None,
            Fault::KillMaster | Fault::ProxyReset => Some(&["connection"]),
            Fault::ProxyTruncate => Some(&["connection", "invalid_response"]),
            Fault::ProxyHang => Some(&["timeout"]),
            Fault::Master500 => Some(&["http_status"]),
            Fault::MasterGarbage => Some(&["invalid_response"]),
            Fault::MasterMalformedRecord => Some(&["deserialization:host"]),
            Fault::DatabaseDown => Some(&["database"]),
        }
    }

    /// How long the fault lasts. A fault the client retries through must
    /// outlast its 6 s retry budget (a locked database its 10 s lock wait)
    /// for a heartbeat to fail and be counted; shorter ones are ridden out.
    fn period(self) -> Duration {
        match self {
            Fault::DatabaseDown => Duration::from_secs(13),
            Fault::ProxyHang | Fault::ProxyReset | Fault::ProxyTruncate | Fault::Master500 => {
                Duration::from_secs(8)
            }
            Fault::KillMaster
            | Fault::KillClient
            | Fault::KillClientUnmarked
            | Fault::UploadRace => Duration::from_secs(2),
            _ => Duration::from_secs(4),
        }
    }
}

/// The faults of the run: every type once (shuffled), then random ones.
fn schedule(rounds: u32, rng: &mut SplitMix64) -> Vec<Fault> {
    let mut faults = ALL_FAULTS.to_vec();
    for i in (1..faults.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        faults.swap(i, j);
    }
    while faults.len() < rounds as usize {
        faults.push(ALL_FAULTS[rng.below(ALL_FAULTS.len() as u64) as usize]);
    }
    faults
}

/// Runs the chaos task.
pub fn run(options: Options) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(chaos(options))
}

async fn chaos(options: Options) -> Result<()> {
    let (dir, bin) = crate::demo::prepare_lab(&options.dir)?;

    let rounds = if options.quick {
        ALL_FAULTS.len() as u32
    } else {
        options.rounds.max(ALL_FAULTS.len() as u32)
    };
    // Enough work that the shards are still busy when the last fault
    // strikes (a fault on an idle lab proves little; the upload race needs
    // jobs with two entries still to run), and not much more: the lab gets
    // through some 2.6 entries a second (4 s per test, the hosts that are
    // not locked or leased), i.e. 1.3 jobs of two entries, and a round
    // lasts about 8 s.
    let spec = LabSpec {
        jobs_per_suite: if options.quick { 12 } else { rounds },
        ..LabSpec::default()
    };
    let master_url = crate::demo::sqlite_url(&dir.join("master.db"));
    let master_db = Store::connect(&master_url).await?;
    master_db.migrate().await?;
    let summary = seed(master_db.connection(), &spec).await?;
    println!("seeded: {summary}");

    let stop = CancellationToken::new();
    let mut lab = Lab::start(
        &dir,
        &bin,
        master_db,
        master_url,
        spec.shards,
        options.backend.into(),
        stop.clone(),
    )
    .await?;
    let watch = Arc::new(Mutex::new(Watch::default()));
    let watcher = tokio::spawn(watch_lab(
        lab.master_db.clone(),
        lab.shards.iter().map(|s| s.store.clone()).collect(),
        lab.shards.iter().map(|s| s.metrics_url.clone()).collect(),
        Arc::clone(&watch),
        stop.clone(),
    ));

    let mut rng = SplitMix64::new(options.seed);
    let plan = schedule(rounds, &mut rng);
    let started = Instant::now();
    let mut injected: BTreeMap<Fault, u32> = BTreeMap::new();
    let mut evidence: BTreeMap<Fault, f64> = BTreeMap::new();
    let mut raced = race::Tally::default();
    for (round, fault) in plan.iter().enumerate() {
        let before = totals(&watch);
        let shard = rng.below(lab.shards.len() as u64) as usize;
        println!(
            "round {:>2}/{}: {} ({})",
            round + 1,
            plan.len(),
            fault.name(),
            if matches!(
                fault,
                Fault::KillMaster
                    | Fault::Master500
                    | Fault::MasterGarbage
                    | Fault::MasterMalformedRecord
            ) {
                "master".to_owned()
            } else {
                lab.shards[shard].name.clone()
            }
        );
        inject(&mut lab, *fault, shard, &mut rng, &dir, &mut raced).await?;
        *injected.entry(*fault).or_default() += 1;
        // Let the lab breathe between faults, and the watcher see the
        // failures the fault caused.
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some(series) = fault.evidence() {
            let after = totals(&watch);
            let delta: f64 = series
                .iter()
                .map(|s| {
                    after.get(*s).copied().unwrap_or(0.0) - before.get(*s).copied().unwrap_or(0.0)
                })
                .sum();
            *evidence.entry(*fault).or_default() += delta;
        }
    }
    let faults_done = started.elapsed();
    println!(
        "faults over after {:.1} s; waiting for the lab to converge …",
        faults_done.as_secs_f64()
    );

    let converged = converge(&lab, Duration::from_secs(300)).await;
    let total = started.elapsed();
    // One last sample with every client alive, then stop.
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop.cancel();
    let _ = watcher.await;
    lab.shut_down().await;

    let invariants = check(
        &lab,
        &watch,
        &injected,
        &evidence,
        &raced,
        converged.is_ok(),
    )
    .await;
    let proxied = proxy_line(&lab);
    lab.close().await;
    let report = report(
        &injected,
        &proxied,
        &raced,
        &watch,
        &invariants,
        faults_done,
        total,
        converged.as_ref().err(),
    );
    print!("{report}");
    std::fs::write(dir.join("report.txt"), &report).context("writing the report")?;
    if invariants.iter().all(|(_, ok, _)| *ok) {
        Ok(())
    } else {
        bail!(
            "an invariant does not hold; see the report above and the logs in {}",
            dir.display()
        )
    }
}

/// Injects one fault for its period, then heals it.
async fn inject(
    lab: &mut Lab,
    fault: Fault,
    shard: usize,
    rng: &mut SplitMix64,
    dir: &Path,
    raced: &mut race::Tally,
) -> Result<()> {
    let period = fault.period();
    match fault {
        Fault::KillClient => {
            // A random moment: sometimes mid-apply, sometimes between the
            // upload and its mark, sometimes in a pause.
            tokio::time::sleep(Duration::from_millis(rng.below(1500))).await;
            lab.kill_and_restart_client(shard, Duration::from_millis(300))
                .await?;
            tokio::time::sleep(period).await;
        }
        Fault::KillClientUnmarked => {
            // The proxy delivers the next request and drops its answer;
            // once one answer is dropped the client is waiting for it, its
            // upload taken by the master and not yet marked here.
            let proxy = &lab.shards[shard].proxy;
            let before = proxy.stats().swallowed;
            proxy.set_mode(Mode::Swallow);
            let deadline = Instant::now() + Duration::from_secs(10);
            while proxy.stats().swallowed == before && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // New connections pass again; the one holding the dropped
            // answer stays silent until the client dies.
            proxy.set_mode(Mode::Pass);
            lab.kill_and_restart_client(shard, Duration::from_millis(300))
                .await?;
            tokio::time::sleep(period).await;
        }
        Fault::KillMaster => {
            tokio::time::sleep(Duration::from_millis(rng.below(1000))).await;
            // Down longer than the clients' retry budget, so that their
            // heartbeats fail (and are counted) rather than retry through.
            lab.kill_and_restart_master(Duration::from_secs(7)).await?;
            tokio::time::sleep(period).await;
        }
        Fault::ProxyLatency | Fault::ProxyReset | Fault::ProxyTruncate | Fault::ProxyHang => {
            let mode = match fault {
                Fault::ProxyLatency => Mode::Latency(Duration::from_millis(300)),
                Fault::ProxyReset => Mode::Reset,
                Fault::ProxyTruncate => Mode::Truncate,
                _ => Mode::Hang,
            };
            lab.shards[shard].proxy.set_mode(mode);
            tokio::time::sleep(period).await;
            lab.shards[shard].proxy.set_mode(Mode::Pass);
        }
        Fault::Master500 | Fault::MasterGarbage | Fault::MasterMalformedRecord => {
            let word = match fault {
                Fault::Master500 => "http_500",
                Fault::MasterGarbage => "garbage",
                _ => "malformed_record",
            };
            std::fs::write(&lab.fault_file, word).context("switching the master's fault on")?;
            tokio::time::sleep(period).await;
            std::fs::remove_file(&lab.fault_file).context("switching the master's fault off")?;
        }
        Fault::UploadRace => {
            race::finish_during_upload(lab, shard, raced).await?;
            tokio::time::sleep(period).await;
        }
        Fault::DatabaseDown => match &lab.shards[shard].db_proxy {
            Some(relay) => {
                relay.set_up(false);
                tokio::time::sleep(period).await;
                relay.set_up(true);
            }
            None => {
                let url = lab.shards[shard].url.clone();
                let exe = std::env::current_exe().context("finding the xtask binary")?;
                let seconds = period.as_secs().to_string();
                let mut holder = crate::demo::procs::Child::spawn(
                    &exe,
                    &["hold-sqlite-lock", &url, &seconds],
                    &dir.join(format!("lock-{}.log", shard + 1)),
                )?;
                holder.wait(period + Duration::from_secs(10)).await;
            }
        },
    }
    Ok(())
}

/// Waits until every entry on the master is complete, completing finished
/// suites (the master's own scheduler's job) meanwhile.
async fn converge(lab: &Lab, within: Duration) -> Result<Duration> {
    let started = Instant::now();
    loop {
        shard_master::suites::complete_finished_suites(lab.master_db.connection()).await?;
        let left = scalar(
            &lab.master_db,
            "SELECT COUNT(*) FROM afe_host_queue_entries WHERE complete = 0 OR complete IS NULL",
        )
        .await?;
        if left == 0 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > within {
            bail!("{left} entries still incomplete on the master after {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What the watcher saw while the faults ran.
#[derive(Debug, Default)]
struct Watch {
    /// Master entries seen complete, then incomplete again.
    regressions: HashSet<i64>,
    /// Jobs seen in two shard databases at once.
    crossings: HashSet<i32>,
    /// Per shard and series: the total of earlier client incarnations and
    /// the last value of the current one.
    counters: HashMap<(usize, String), (f64, f64)>,
    samples: u64,
}

impl Watch {
    fn counter(&self, series: &str) -> f64 {
        self.counters
            .iter()
            .filter(|((_, s), _)| s == series)
            .map(|(_, (before, now))| before + now)
            .sum()
    }
}

/// Every series' total over all clients and incarnations, now.
fn totals(watch: &Arc<Mutex<Watch>>) -> HashMap<String, f64> {
    let Ok(w) = watch.lock() else {
        return HashMap::new();
    };
    series()
        .into_iter()
        .map(|(name, _)| {
            let total = w.counter(&name);
            (name, total)
        })
        .collect()
}

/// The series the watcher follows, by a short name.
fn series() -> Vec<(String, String)> {
    let mut out = vec![(
        "heartbeats".to_owned(),
        "shard_client_heartbeats_total".to_owned(),
    )];
    for t in shard_engine::metrics::FAILURE_TYPES {
        out.push((
            t.to_owned(),
            format!("shard_client_heartbeat_failures_total{{failure_type=\"{t}\"}}"),
        ));
    }
    out.push((
        "deserialization:host".to_owned(),
        "shard_client_deserialization_failures_total{kind=\"host\"}".to_owned(),
    ));
    out
}

async fn watch_lab(
    master: Store,
    shards: Vec<Store>,
    metrics: Vec<String>,
    watch: Arc<Mutex<Watch>>,
    stop: CancellationToken,
) {
    let mut complete_seen: HashSet<i64> = HashSet::new();
    let series = series();
    loop {
        // Master entries: complete is never taken back.
        if let Ok(rows) = pairs(
            &master,
            "SELECT id, CASE WHEN complete = 1 THEN 1 ELSE 0 END FROM afe_host_queue_entries",
        )
        .await
        {
            let mut regressed = Vec::new();
            for (id, complete) in rows {
                if complete == 1 {
                    complete_seen.insert(id);
                } else if complete_seen.contains(&id) {
                    regressed.push(id);
                }
            }
            if let Ok(mut w) = watch.lock() {
                w.regressions.extend(regressed);
            }
        }
        // Shard databases: no job in two at once.
        let mut holders: HashMap<i32, usize> = HashMap::new();
        let mut crossed = Vec::new();
        for (n, shard) in shards.iter().enumerate() {
            if let Ok(ids) = ids(shard, "SELECT id FROM afe_jobs").await {
                for id in ids {
                    if holders.insert(id, n).is_some_and(|other| other != n) {
                        crossed.push(id);
                    }
                }
            }
        }
        // Metrics: a value that drops means a new incarnation.
        let mut scraped = Vec::new();
        for url in &metrics {
            scraped.push(
                shard_tests::scrape::get(url, Duration::from_millis(500))
                    .await
                    .ok()
                    .map(|a| a.body),
            );
        }
        if let Ok(mut w) = watch.lock() {
            w.crossings.extend(crossed);
            w.samples += 1;
            for (n, body) in scraped.iter().enumerate() {
                let Some(body) = body else { continue };
                for (name, full) in &series {
                    let value = shard_tests::scrape::sample(body, full).unwrap_or(0.0);
                    let entry = w.counters.entry((n, name.clone())).or_insert((0.0, 0.0));
                    if value < entry.1 {
                        entry.0 += entry.1;
                    }
                    entry.1 = value;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
            () = stop.cancelled() => break,
        }
    }
}

/// `(name, holds, detail)` for every invariant.
async fn check(
    lab: &Lab,
    watch: &Arc<Mutex<Watch>>,
    injected: &BTreeMap<Fault, u32>,
    evidence: &BTreeMap<Fault, f64>,
    raced: &race::Tally,
    converged: bool,
) -> Vec<(String, bool, String)> {
    let mut out = Vec::new();
    let incomplete = scalar(
        &lab.master_db,
        "SELECT COUNT(*) FROM afe_host_queue_entries WHERE complete = 0 OR complete IS NULL",
    )
    .await;
    out.push((
        "every job complete on the master".to_owned(),
        converged && matches!(incomplete, Ok(0)),
        format!(
            "{} incomplete entries",
            incomplete.map_or_else(|e| e.to_string(), |n| n.to_string())
        ),
    ));
    let (regressions, crossings) = watch
        .lock()
        .map(|w| (w.regressions.len(), w.crossings.len()))
        .unwrap_or((usize::MAX, usize::MAX));
    out.push((
        "no entry status regressed on the master".to_owned(),
        regressions == 0,
        format!("{regressions} regressions"),
    ));
    out.push((
        "no job assigned to two shards".to_owned(),
        crossings == 0,
        format!("{crossings} jobs seen on two shards"),
    ));
    let shards: Vec<(&str, &Store)> = lab
        .shards
        .iter()
        .map(|s| (s.name.as_str(), &s.store))
        .collect();
    let (same, detail) = match ends_missing_on_master(&lab.master_db, &shards).await {
        Ok(missing) => (missing.offenders.is_empty(), missing.to_string()),
        Err(e) => (false, format!("{e:#}")),
    };
    out.push((
        "every entry complete on a shard is complete on the master, same status".to_owned(),
        same,
        detail,
    ));
    let assigned_twice = scalar(
        &lab.master_db,
        "SELECT COUNT(*) FROM afe_jobs WHERE parent_job_id IS NOT NULL AND shard_id IS NULL",
    )
    .await;
    out.push((
        "every child job assigned to a shard on the master".to_owned(),
        matches!(assigned_twice, Ok(0)),
        format!(
            "{} unassigned",
            assigned_twice.map_or_else(|e| e.to_string(), |n| n.to_string())
        ),
    ));
    for slot in &lab.shards {
        let db = &slot.store;
        let checks = [
            (
                "no job without its entries",
                "SELECT COUNT(*) FROM afe_jobs j WHERE NOT EXISTS (SELECT 1 FROM afe_host_queue_entries q WHERE q.job_id = j.id)",
            ),
            (
                "no entry without its job",
                "SELECT COUNT(*) FROM afe_host_queue_entries q WHERE q.job_id IS NULL OR NOT EXISTS (SELECT 1 FROM afe_jobs j WHERE j.id = q.job_id)",
            ),
            (
                "no dangling host label link",
                "SELECT COUNT(*) FROM afe_hosts_labels l WHERE NOT EXISTS (SELECT 1 FROM afe_hosts h WHERE h.id = l.host_id) OR NOT EXISTS (SELECT 1 FROM afe_labels b WHERE b.id = l.label_id)",
            ),
            (
                "no dangling ACL group link",
                "SELECT COUNT(*) FROM afe_acl_groups_hosts l WHERE NOT EXISTS (SELECT 1 FROM afe_hosts h WHERE h.id = l.host_id) OR NOT EXISTS (SELECT 1 FROM afe_acl_groups g WHERE g.id = l.aclgroup_id)",
            ),
            (
                "no dangling group member link",
                "SELECT COUNT(*) FROM afe_acl_groups_users l WHERE NOT EXISTS (SELECT 1 FROM afe_users u WHERE u.id = l.user_id) OR NOT EXISTS (SELECT 1 FROM afe_acl_groups g WHERE g.id = l.aclgroup_id)",
            ),
            (
                "no dangling dependency link",
                "SELECT COUNT(*) FROM afe_jobs_dependency_labels l WHERE NOT EXISTS (SELECT 1 FROM afe_jobs j WHERE j.id = l.job_id) OR NOT EXISTS (SELECT 1 FROM afe_labels b WHERE b.id = l.label_id)",
            ),
            (
                "no duplicate keyval",
                "SELECT COUNT(*) FROM (SELECT job_id, {key} FROM afe_job_keyvals GROUP BY job_id, {key} HAVING COUNT(*) > 1) d",
            ),
            (
                "no duplicate attribute",
                "SELECT COUNT(*) FROM (SELECT host_id, attribute FROM afe_host_attributes GROUP BY host_id, attribute HAVING COUNT(*) > 1) d",
            ),
        ];
        // `key` is a reserved word, quoted as each dialect quotes names.
        let key = match db.connection().get_database_backend() {
            DbBackend::MySql => "`key`",
            _ => "\"key\"",
        };
        for (name, sql) in checks {
            let found = scalar(db, &sql.replace("{key}", key)).await;
            out.push((
                format!("{}: {name}", slot.name),
                matches!(found, Ok(0)),
                found.map_or_else(|e| e.to_string(), |n| format!("{n} found")),
            ));
        }
    }
    // Each fault must show in the counters *while it lasted*: a failure
    // counted for another fault does not count for this one.
    for (fault, count) in injected {
        let Some(series) = fault.evidence() else {
            continue;
        };
        let seen = evidence.get(fault).copied().unwrap_or(0.0);
        out.push((
            format!(
                "{} ({count}×) seen in the clients' counters as {} while it lasted",
                fault.name(),
                series.join(" or ")
            ),
            seen > 0.0,
            format!("{seen}"),
        ));
    }
    if let Some(count) = injected.get(&Fault::UploadRace) {
        out.push((
            format!(
                "{} ({count}×) ended an entry while its job's upload was held",
                Fault::UploadRace.name()
            ),
            raced.raced > 0,
            format!(
                "{} raced, {} ended by the fault",
                raced.raced, raced.finished
            ),
        ));
    }
    out
}

/// Entries complete on a shard whose end the master does not have.
#[derive(Debug, Default)]
pub struct Missing {
    /// Complete entries on the shards, compared.
    pub checked: usize,
    /// `#<id> on <shard>: <status>, master: <status>[ incomplete]`, by shard
    /// and id.
    pub offenders: Vec<String>,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        /// Offenders listed in the report; the rest are counted.
        const LISTED: usize = 5;
        if self.offenders.is_empty() {
            return write!(f, "{} complete entries checked", self.checked);
        }
        write!(
            f,
            "{} of {} differ: {}",
            self.offenders.len(),
            self.checked,
            self.offenders[..self.offenders.len().min(LISTED)].join("; ")
        )?;
        if self.offenders.len() > LISTED {
            write!(f, "; …")?;
        }
        Ok(())
    }
}

/// Compares every entry complete on a shard database with the master's
/// row: the shard's end must have reached the master, status and all. A
/// completion that never arrives is the loss an upload race causes.
pub async fn ends_missing_on_master(master: &Store, shards: &[(&str, &Store)]) -> Result<Missing> {
    let master: HashMap<i32, (Option<String>, Option<bool>)> = hqes::Entity::find()
        .all(master.connection())
        .await
        .context("reading the master's entries")?
        .into_iter()
        .map(|e| (e.id, (e.status, e.complete)))
        .collect();
    let mut missing = Missing::default();
    for &(name, store) in shards {
        let mut complete = hqes::Entity::find()
            .filter(hqes::Column::Complete.eq(true))
            .all(store.connection())
            .await
            .with_context(|| format!("reading the complete entries of {name}"))?;
        complete.sort_by_key(|e| e.id);
        missing.checked += complete.len();
        for entry in complete {
            let shard_status = entry.status.as_deref().unwrap_or("NULL");
            let offence = match master.get(&entry.id) {
                None => Some("missing".to_owned()),
                Some((status, complete)) => {
                    let status = status.as_deref().unwrap_or("NULL");
                    match (status == shard_status, *complete == Some(true)) {
                        (true, true) => None,
                        (_, true) => Some(status.to_owned()),
                        (_, false) => Some(format!("{status} incomplete")),
                    }
                }
            };
            if let Some(offence) = offence {
                missing.offenders.push(format!(
                    "#{} on {name}: {shard_status}, master: {offence}",
                    entry.id
                ));
            }
        }
    }
    Ok(missing)
}

/// What the proxies did, summed over the shards.
fn proxy_line(lab: &Lab) -> String {
    let mut total = super::proxy::Stats::default();
    for slot in &lab.shards {
        let s = slot.proxy.stats();
        total.connections += s.connections;
        total.delayed += s.delayed;
        total.resets += s.resets;
        total.truncations += s.truncations;
        total.hangs += s.hangs;
        total.swallowed += s.swallowed;
        total.held += s.held;
    }
    let mut line = format!(
        "{} connections, {} exchanges delayed, {} reset, {} truncated, {} left hanging, \
         {} answers dropped, {} held",
        total.connections,
        total.delayed,
        total.resets,
        total.truncations,
        total.hangs,
        total.swallowed,
        total.held
    );
    let relays: Vec<_> = lab
        .shards
        .iter()
        .filter_map(|s| s.db_proxy.as_ref())
        .collect();
    if !relays.is_empty() {
        let refused: u64 = relays.iter().map(|r| r.refused()).sum();
        let _ = write!(line, "; database relays refused {refused} connections");
    }
    line
}

#[allow(clippy::too_many_arguments)]
fn report(
    injected: &BTreeMap<Fault, u32>,
    proxied: &str,
    raced: &race::Tally,
    watch: &Arc<Mutex<Watch>>,
    invariants: &[(String, bool, String)],
    faults_done: Duration,
    total: Duration,
    not_converged: Option<&anyhow::Error>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\nchaos report");
    let _ = writeln!(out, "  faults injected:");
    for (fault, count) in injected {
        let _ = writeln!(out, "    {:<32} {count}", fault.name());
    }
    let _ = writeln!(out, "  proxies: {proxied}");
    if injected.contains_key(&Fault::UploadRace) {
        let _ = writeln!(
            out,
            "  upload race: {} entries ended by the fault, {} of them while their job's upload \
             was held ({})",
            raced.finished,
            raced.raced,
            if raced.jobs.is_empty() {
                "none".to_owned()
            } else {
                raced.jobs.join(", ")
            }
        );
    }
    if let Ok(w) = watch.lock() {
        let _ = writeln!(
            out,
            "  heartbeats (all clients, all restarts): {}",
            w.counter("heartbeats")
        );
        let _ = writeln!(out, "  failures by type:");
        for t in shard_engine::metrics::FAILURE_TYPES {
            let _ = writeln!(out, "    {t:<26} {}", w.counter(t));
        }
        let _ = writeln!(
            out,
            "    {:<26} {}",
            "records refused (host)",
            w.counter("deserialization:host")
        );
        let _ = writeln!(out, "  watcher samples: {}", w.samples);
    }
    match not_converged {
        None => {
            let _ = writeln!(
                out,
                "  converged {:.1} s after the last fault ({:.1} s in all)",
                (total - faults_done).as_secs_f64(),
                total.as_secs_f64()
            );
        }
        Some(e) => {
            let _ = writeln!(out, "  did NOT converge: {e:#}");
        }
    }
    let _ = writeln!(out, "  invariants:");
    for (name, ok, detail) in invariants {
        let _ = writeln!(
            out,
            "    [{}] {name} ({detail})",
            if *ok { "pass" } else { "FAIL" }
        );
    }
    out
}

async fn scalar(db: &Store, sql: &str) -> Result<i64> {
    let conn = db.connection();
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            sql.to_owned(),
        ))
        .await?
        .context("no row")?;
    Ok(row.try_get_by_index(0)?)
}

/// The ids a query selects (`INT` columns on every backend).
async fn ids(db: &Store, sql: &str) -> Result<Vec<i32>> {
    let conn = db.connection();
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            sql.to_owned(),
        ))
        .await?;
    rows.iter()
        .map(|row| Ok(row.try_get_by_index(0)?))
        .collect()
}

async fn pairs(db: &Store, sql: &str) -> Result<Vec<(i64, i64)>> {
    let rows = db
        .connection()
        .query_all_raw(Statement::from_string(DbBackend::Sqlite, sql.to_owned()))
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
        .collect()
}

/// Holds an exclusive write lock on a SQLite database for `seconds`, from
/// its own process (`cargo xtask hold-sqlite-lock URL SECONDS`).
pub fn hold_sqlite_lock(url: &str, seconds: u64) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let db = sea_orm::Database::connect(url).await?;
        let txn = sea_orm::TransactionTrait::begin_with_options(
            &db,
            sea_orm::TransactionOptions {
                sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Exclusive),
                ..Default::default()
            },
        )
        .await?;
        // A write makes the lock a real one whatever the journal mode.
        txn.execute_unprepared("UPDATE afe_shards SET hostname = hostname WHERE 0 = 1")
            .await?;
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        txn.rollback().await?;
        Ok(())
    })
}
