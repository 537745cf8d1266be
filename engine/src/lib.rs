//! One heartbeat of the shard client, step by step as in §7 of the protocol:
//! build the packet, call `shard_heartbeat`, mark uploads, apply the response,
//! remove incorrect hosts, re-sync completed jobs. Filled in by the engine
//! issue.
