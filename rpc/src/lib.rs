//! The AFE JSON-RPC client: one POST per call, in the dialect of the Autotest
//! frontend (`{"method", "params": [kwargs], "id"}`), with retries, limits and
//! cancellation. Filled in by the RPC issue; the crate exists so the workspace
//! has its final shape from the first commit.
