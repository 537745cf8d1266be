//! Arbitrary bytes as the `result` of a `shard_heartbeat` response.
//!
//! Parsing must never panic. A response that parses must serialize (in the
//! master's "with dependencies" shape), parse again with nothing rejected,
//! and come back equal, up to two documented losses of that shape:
//!
//! - records rejected while parsing have no wire form and are left out;
//! - an absent relation (`"labels"` missing, say) is written as an empty
//!   list, so it comes back as present-and-empty. The two mean different
//!   things when applied (absent keeps a host's attributes or a job's
//!   keyvals, empty clears them), but a master always sends every relation
//!   (Django's `serialize` with dependencies does), so the shape has no
//!   way to say "absent" and does not need one. The comparison normalizes
//!   absent to empty.
//!
//! Serializing the re-parsed response must then give the same bytes again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shard_model::{HeartbeatResponse, Host, Job};

fuzz_target!(|data: &[u8]| {
    let Ok(first) = HeartbeatResponse::from_json(data) else {
        return;
    };
    // Counting must agree with what arrived, parsed or not.
    for kind in [
        shard_model::RecordKind::Host,
        shard_model::RecordKind::Job,
        shard_model::RecordKind::SuiteKeyval,
        shard_model::RecordKind::IncorrectHostId,
    ] {
        let _ = first.received(kind);
    }
    for rejected in &first.rejected {
        let _ = rejected.to_string();
    }

    let text = serde_json::to_vec(&first).expect("a parsed response serializes");
    let second = HeartbeatResponse::from_json(&text).unwrap_or_else(|e| {
        panic!(
            "a serialized response does not parse: {e}\n{}",
            String::from_utf8_lossy(&text)
        )
    });
    assert!(
        second.rejected.is_empty(),
        "records written by the serializer are rejected: {:?}\n{}",
        second.rejected,
        String::from_utf8_lossy(&text)
    );
    assert_eq!(
        second,
        wire_form(first),
        "the round trip changed the response"
    );
    let again = serde_json::to_vec(&second).expect("a parsed response serializes");
    assert_eq!(again, text, "serializing is not stable");
});

/// What survives a trip through the wire shape: no rejected records, and
/// every relation present (absent ones as empty lists).
fn wire_form(mut r: HeartbeatResponse) -> HeartbeatResponse {
    r.rejected.clear();
    r.hosts.iter_mut().for_each(host_wire_form);
    r.jobs.iter_mut().for_each(job_wire_form);
    r
}

fn host_wire_form(h: &mut Host) {
    for g in h.aclgroup_set.get_or_insert_default() {
        g.users.get_or_insert_default();
    }
    h.hostattribute_set.get_or_insert_default();
    h.labels.get_or_insert_default();
}

fn job_wire_form(j: &mut Job) {
    j.dependency_labels.get_or_insert_default();
    j.hostqueueentry_set.get_or_insert_default();
    j.jobkeyval_set.get_or_insert_default();
}
