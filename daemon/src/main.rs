//! `shard-client`: the long-running shard heartbeat daemon (§10).

mod cli;
mod config;

fn main() -> anyhow::Result<()> {
    anyhow::bail!("shard-client is being built (issue 4)")
}
