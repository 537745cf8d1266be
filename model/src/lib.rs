//! Wire types of the Autotest shard heartbeat; filled in by the next commit.
