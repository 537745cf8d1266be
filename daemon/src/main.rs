//! `shard-client`: the long-running shard heartbeat daemon. The command line,
//! configuration and loop arrive with the engine issue; until then the binary
//! only says so, and fails, so nobody mistakes it for a working client.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("shard-client is not implemented yet (see the engine and daemon issue)")
}
