//! `cargo xtask oracle`: the differential tests of issue 13 with a larger
//! budget than CI's, for a soak: the bulk apply against the reference apply
//! (`store/tests/it/oracle.rs`) and the packet against a plain reading
//! (`store/tests/it/packet_oracle.rs`), on one backend.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::cargo_with_env;

/// Options of `cargo xtask oracle`.
#[derive(Debug, Args)]
pub struct Options {
    /// Random cases per property (CI runs 1,200 on SQLite, 150 on a server).
    #[arg(long, default_value_t = 20_000)]
    cases: u32,
    /// The seed; the same seed and case count replay a run (default: the
    /// current time, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// The backend (MariaDB and PostgreSQL from SHARD_TEST_MYSQL_URL and
    /// SHARD_TEST_POSTGRES_URL, as the backend tests).
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
}

/// A backend of the oracle tests (their test names end with it).
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Backend {
    Sqlite,
    Mysql,
    Postgres,
}

impl Backend {
    fn test_suffix(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Mysql => "mysql",
            Backend::Postgres => "postgres",
        }
    }
}

/// Runs both properties on the chosen backend with `--cases` and `--seed`.
pub fn run(options: Options) -> Result<()> {
    let seed = options.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |now| now.as_secs())
    });
    let suffix = options.backend.test_suffix();
    eprintln!(
        "oracle: {} cases per property on {suffix}, seed {seed} \
         (replay: cargo xtask oracle --backend {suffix} --cases {} --seed {seed})",
        options.cases, options.cases
    );
    let apply = format!("oracle::apply_equals_reference::{suffix}");
    let packet = format!("packet_oracle::packet_equals_plain_reading::{suffix}");
    let cases = options.cases.to_string();
    let seed = seed.to_string();
    let mut env = vec![
        ("SHARD_ORACLE_CASES", cases.as_str()),
        ("SHARD_ORACLE_SEED", seed.as_str()),
    ];
    if !matches!(options.backend, Backend::Sqlite) {
        // A soak that silently skipped its server would prove nothing.
        env.push(("SHARD_TEST_REQUIRE_BACKENDS", "1"));
    }
    cargo_with_env(
        &[
            "test",
            "-p",
            "shard-store",
            "--test",
            "it",
            "--",
            "--exact",
            "--nocapture",
            &apply,
            &packet,
        ],
        &env,
    )
}
