//! The budget both oracles share (`oracle.rs`, `packet_oracle.rs`):
//! `SHARD_ORACLE_CASES` cases (else the test's default) from the seed
//! `SHARD_ORACLE_SEED` (default 1, so CI runs the same cases every time),
//! shrinking failures and writing nothing to disk.

use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// A runner of `default_cases` cases, or as the environment says; returns
/// it with the cases and the seed, for the failure message.
pub fn runner(default_cases: u32) -> (TestRunner, u32, u64) {
    let cases = env_number("SHARD_ORACLE_CASES").map_or(default_cases, |n| {
        u32::try_from(n).unwrap_or_else(|_| panic!("SHARD_ORACLE_CASES={n} is too large"))
    });
    let seed = env_number("SHARD_ORACLE_SEED").unwrap_or(1);
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    (TestRunner::new_with_rng(config, rng(seed)), cases, seed)
}

fn env_number(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

/// A 32-byte ChaCha seed from a number.
fn rng(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(
            &(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes(),
        );
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}
