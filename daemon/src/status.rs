//! `shard-client status`: what the next heartbeat would send, read from the
//! shard database without contacting the master.

use std::fmt::Write as _;

use shard_model::HeartbeatRequest;
use shard_store::Store;

/// The packet the next heartbeat would send.
pub async fn next_packet(
    store: &Store,
    shard_hostname: &str,
    max_upload_jobs: u64,
) -> anyhow::Result<HeartbeatRequest> {
    Ok(store
        .build_packet(shard_hostname, max_upload_jobs)
        .await?
        .request)
}

/// The packet as a table for people.
pub fn table(packet: &HeartbeatRequest) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "shard {}", packet.shard_hostname);
    let _ = writeln!(out, "\nknown jobs: {}", packet.known_job_ids.len());
    for line in wrap_ids(&packet.known_job_ids) {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(out, "\nknown hosts: {}", packet.known_host_ids.len());
    if !packet.known_host_ids.is_empty() {
        let _ = writeln!(out, "  {:>10}  STATUS", "ID");
    }
    for (id, status) in packet
        .known_host_ids
        .iter()
        .zip(&packet.known_host_statuses)
    {
        let _ = writeln!(out, "  {id:>10}  {}", status.as_deref().unwrap_or("-"));
    }
    let _ = writeln!(
        out,
        "\njobs to upload: {} (with {} entries)",
        packet.jobs.len(),
        packet.hqes.len()
    );
    if !packet.jobs.is_empty() {
        let _ = writeln!(out, "  {:>10}  NAME", "ID");
    }
    for job in &packet.jobs {
        let _ = writeln!(
            out,
            "  {:>10}  {}",
            job.id,
            job.name.as_deref().unwrap_or("-")
        );
    }
    out
}

/// Ids ten to a line.
fn wrap_ids(ids: &[i32]) -> Vec<String> {
    ids.chunks(10)
        .map(|c| c.iter().map(i32::to_string).collect::<Vec<_>>().join(" "))
        .collect()
}
