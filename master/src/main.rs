//! `shard-master`: the reference master used by tests and the demo. It is
//! built by the master issue; until then the binary only says so, and fails.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("shard-master is not implemented yet (see the master issue)")
}
