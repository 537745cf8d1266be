//! Each value quirk of §5, each rejection path, and the upload shape.

use serde_json::{Value, json};
use shard_model::testing::{fixture, records};
use shard_model::{
    HeartbeatRequest, HeartbeatResponse, Hqe, Job, RecordKind, ToOne, format_datetime,
};

// The records as a master sends them, as JSON a test garbles a field of.

fn label(id: i32) -> Value {
    serde_json::to_value(records::label(id)).unwrap()
}

fn host(id: i32) -> Value {
    serde_json::to_value(records::host(id).with_dependencies()).unwrap()
}

/// [`records::job`] as a child of suite 1000, with no keyvals and no shard.
fn job(id: i32) -> Value {
    let job = Job {
        parent_job_id: Some(1000),
        jobkeyval_set: Some(vec![]),
        shard: ToOne::Null,
        ..records::job(id)
    };
    serde_json::to_value(job.with_dependencies()).unwrap()
}

fn parse(result: Value) -> HeartbeatResponse {
    HeartbeatResponse::from_json(result.to_string().as_bytes()).expect("envelope parses")
}

fn one_job(j: Value) -> HeartbeatResponse {
    parse(json!({"hosts": [], "jobs": [j], "suite_keyvals": [], "incorrect_host_ids": []}))
}

fn only_rejection(r: &HeartbeatResponse) -> &shard_model::Rejected {
    assert_eq!(r.rejected.len(), 1, "{:?}", r.rejected);
    &r.rejected[0]
}

/// The one defect of a response whose records all parsed: a bad field the
/// apply writes only when its row is new (§6), so it refuses the record
/// then, and only then.
fn only_defect(r: &HeartbeatResponse) -> &shard_model::Defect {
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.defects.len(), 1, "{:?}", r.defects);
    &r.defects[0]
}

#[test]
fn booleans_accept_true_false_and_0_1() {
    let mut j = job(1);
    j["run_verify"] = json!(1);
    j["run_reset"] = json!(0);
    j["parse_failed_repair"] = json!(true);
    let r = one_job(j);
    let job = &r.jobs[0];
    assert!(job.run_verify == Some(true) && !job.run_reset && job.parse_failed_repair);
}

#[test]
fn a_boolean_that_is_7_is_a_defect_of_its_entry_naming_the_field() {
    let mut j = job(12);
    j["hostqueueentry_set"][0]["active"] = json!(7);
    let r = one_job(j);
    assert_eq!(r.jobs.len(), 1);
    let d = only_defect(&r);
    assert_eq!((d.kind, d.index), (RecordKind::Job, 0));
    assert_eq!(d.at, "hostqueueentry_set[0]");
    assert!(
        d.reason.contains("hostqueueentry_set[0].active") && d.reason.contains('7'),
        "{}",
        d.reason
    );
    assert_eq!(r.defects(RecordKind::Job, 0), &r.defects[..]);
    assert!(r.defects(RecordKind::Host, 0).is_empty());
}

#[test]
fn a_bad_whitelisted_field_rejects_its_record() {
    let mut j = job(12);
    j["hostqueueentry_set"][0]["aborted"] = json!(7);
    let r = one_job(j);
    assert!(r.jobs.is_empty());
    let rej = only_rejection(&r);
    assert_eq!((rej.kind, rej.id), (RecordKind::Job, Some(12)));
    assert!(
        rej.reason.contains("hostqueueentry_set[0].aborted") && rej.reason.contains('7'),
        "{}",
        rej.reason
    );
}

#[test]
fn a_field_never_written_is_repaired_without_a_defect() {
    let mut j = job(12);
    j["jobkeyval_set"] = json!([{"id": "x1", "job_id": "y", "key": "k", "value": "v"}]);
    let r = parse(json!({"hosts": [], "jobs": [j], "suite_keyvals": [
        {"id": "x1", "job_id": 12, "key": "suite", "value": "a"}]}));
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert!(r.defects.is_empty(), "{:?}", r.defects);
    assert_eq!(r.jobs[0].jobkeyval_set.as_ref().map(Vec::len), Some(1));
    assert_eq!(r.suite_keyvals[0].id, None);
}

#[test]
fn two_bad_fields_of_nested_objects_are_two_defects() {
    let mut h = host(2);
    h["protection"] = json!("high");
    h["labels"] = json!([label(1), label(2)]);
    h["labels"][1]["platform"] = json!("maybe");
    h["labels"][1].as_object_mut().unwrap().remove("invalid");
    let r = parse(json!({"hosts": [host(1), h], "jobs": [], "suite_keyvals": []}));
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    let mut found: Vec<_> = r
        .defects
        .iter()
        .map(|d| (d.index, d.at.as_str(), d.reason.contains("missing field")))
        .collect();
    found.sort();
    // One defect per object: the first bad field found names it.
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!((found[0].0, found[0].1), (1, ""));
    assert_eq!((found[1].0, found[1].1), (1, "labels[1]"));
}

#[test]
fn datetimes_accept_t_space_and_fractions() {
    for (wire, canonical) in [
        ("2014-09-23T15:56:10", "2014-09-23T15:56:10"),
        ("2014-09-23 15:56:10", "2014-09-23T15:56:10"),
        ("2014-09-23T15:56:10.123", "2014-09-23T15:56:10.123000"),
        ("2014-09-23 15:56:10.123456", "2014-09-23T15:56:10.123456"),
        ("2014-09-23T15:56:10.000000", "2014-09-23T15:56:10"),
        ("2014-09-23T15:56:10.1234567", "2014-09-23T15:56:10.123456"),
    ] {
        let mut j = job(1);
        j["created_on"] = json!(wire);
        let r = one_job(j);
        assert!(r.rejected.is_empty(), "{wire}: {:?}", r.rejected);
        assert_eq!(
            r.jobs[0].created_on.map(|t| format_datetime(t).to_string()),
            Some(canonical.to_owned()),
            "{wire}"
        );
    }
}

#[test]
fn a_datetime_that_is_not_one_is_a_defect_of_its_job() {
    for bad in [
        json!("yesterday"),
        json!("2014-13-01T00:00:00"),
        json!(1411487770),
    ] {
        let mut j = job(3);
        j["created_on"] = bad.clone();
        let r = one_job(j);
        let d = only_defect(&r);
        assert_eq!(d.at, "", "{bad}");
        assert!(d.reason.contains("created_on"), "{bad}: {}", d.reason);
    }
}

#[test]
fn ids_accept_numeric_strings() {
    let mut j = job(1);
    j["id"] = json!("77");
    j["hostqueueentry_set"][0]["host_id"] = json!("5");
    let r = one_job(j);
    assert_eq!(r.jobs[0].id, 77);
    assert_eq!(
        r.jobs[0].hostqueueentry_set.as_ref().unwrap()[0].host_id,
        Some(5)
    );
}

/// Found by the apply oracle: the original's Django stores `int(value)`,
/// so a float is truncated toward zero and a boolean is 1 or 0.
#[test]
fn ints_accept_floats_truncated_and_booleans() {
    let mut j = job(1);
    j["id"] = json!(77.0);
    j["synch_count"] = json!(2.9);
    j["priority"] = json!(-1.5);
    j["run_verify"] = json!(true);
    j["timeout"] = json!(true);
    let r = one_job(j);
    assert_eq!(r.rejected, vec![]);
    assert_eq!(
        (
            r.jobs[0].id,
            r.jobs[0].synch_count,
            r.jobs[0].priority,
            r.jobs[0].timeout
        ),
        (77, 2, Some(-1), 1)
    );
}

/// Found by the apply oracle: a whitelisted field that is absent must be
/// told from one that is sent, since absent leaves an existing row alone.
#[test]
fn whitelisted_fields_tell_absent_from_sent() {
    let mut j = job(1);
    j["hostqueueentry_set"][0]
        .as_object_mut()
        .unwrap()
        .remove("aborted");
    j["jobkeyval_set"] = json!([{"job_id": 1, "key": "k"}]);
    let r = one_job(j);
    let parsed = &r.jobs[0];
    assert_eq!(parsed.hostqueueentry_set.as_ref().unwrap()[0].aborted, None);
    assert_eq!(parsed.jobkeyval_set.as_ref().unwrap()[0].value, None);

    let mut h = host(1);
    h.as_object_mut().unwrap().remove("invalid");
    let mut nulled = host(2);
    nulled["invalid"] = Value::Null;
    let r = parse(json!({"hosts": [h, nulled], "jobs": [], "suite_keyvals": []}));
    assert_eq!((r.hosts[0].invalid, r.hosts[1].invalid), (None, Some(None)));

    // Sent, `aborted` must be a boolean: `null` refuses the job.
    let mut j = job(1);
    j["hostqueueentry_set"][0]["aborted"] = Value::Null;
    assert!(only_rejection(&one_job(j)).reason.contains("aborted"));
}

/// Found by the apply oracle: the original iterates a relation it is
/// given, so `null` fails the record rather than counting as absent.
#[test]
fn a_null_relation_list_rejects_its_record_naming_it() {
    for field in ["dependency_labels", "hostqueueentry_set", "jobkeyval_set"] {
        let mut j = job(1);
        j[field] = Value::Null;
        let r = one_job(j);
        assert!(r.jobs.is_empty(), "{field}");
        assert!(
            only_rejection(&r).reason.contains(field),
            "{field}: {:?}",
            r.rejected
        );
    }
    let mut j = job(1);
    j.as_object_mut().unwrap().remove("jobkeyval_set");
    assert_eq!(
        one_job(j).jobs[0].jobkeyval_set,
        None,
        "absent stays absent"
    );
}

#[test]
fn ints_that_do_not_fit_their_column_reject_the_record_or_are_defects() {
    for value in [json!(5_000_000_000_i64), json!(u64::MAX), json!("1.5")] {
        let mut j = job(1);
        j["id"] = value.clone();
        let r = one_job(j);
        assert!(r.jobs.is_empty(), "id={value}");
        assert!(only_rejection(&r).reason.contains("id"), "id={value}");
    }
    for (field, value) in [
        ("priority", json!(-3_000_000_000_i64)),
        ("reboot_before", json!(40_000)),
        ("timeout", json!("12abc")),
        ("synch_count", json!(1e300)),
        ("synch_count", json!("1.5")),
    ] {
        let mut j = job(1);
        j[field] = value.clone();
        let r = one_job(j);
        assert!(only_defect(&r).reason.contains(field), "{field}={value}");
    }
}

#[test]
fn unknown_fields_are_ignored() {
    let mut h = host(2);
    h["static_labels"] = json!([{"id": 9}]);
    h["labels"][0]["brand_new_field"] = json!({"nested": [1, 2]});
    let r = parse(json!({"hosts": [h], "jobs": [], "suite_keyvals": []}));
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.hosts[0].id, 2);
}

#[test]
fn nullable_columns_accept_null() {
    let mut j = job(1);
    for key in [
        "owner",
        "name",
        "priority",
        "control_file",
        "created_on",
        "run_verify",
    ] {
        j[key] = Value::Null;
    }
    let r = one_job(j);
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    let written = serde_json::to_value(&r.jobs[0]).unwrap();
    assert_eq!(written["name"], Value::Null, "null survives the round trip");
    assert_eq!(written["created_on"], Value::Null);
}

#[test]
fn optional_fields_may_be_absent_or_null() {
    let mut absent = job(1);
    for key in ["require_ssp", "parent_job_id", "shard", "jobkeyval_set"] {
        absent.as_object_mut().unwrap().remove(key);
    }
    absent["hostqueueentry_set"][0]
        .as_object_mut()
        .unwrap()
        .remove("started_on");
    let r = one_job(absent);
    let job = &r.jobs[0];
    assert_eq!((job.require_ssp, job.parent_job_id), (None, None));
    assert!(job.shard.is_absent());
    assert!(
        job.jobkeyval_set.is_none(),
        "an absent set is not an empty one"
    );

    let mut null = job_with_nulls();
    null["shard"] = Value::Null;
    let r = one_job(null);
    assert!(matches!(r.jobs[0].shard, shard_model::ToOne::Null));
}

fn job_with_nulls() -> Value {
    let mut j = job(1);
    j["require_ssp"] = Value::Null;
    j["parent_job_id"] = Value::Null;
    j["hostqueueentry_set"][0]["meta_host"] = Value::Null;
    j
}

#[test]
fn a_not_null_field_that_is_missing_or_null_is_a_defect() {
    let mut missing = job(4);
    missing.as_object_mut().unwrap().remove("synch_count");
    let mut null_name = job(5);
    null_name["email_list"] = Value::Null;
    let r = parse(json!({"hosts": [], "jobs": [missing, null_name], "suite_keyvals": []}));
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.jobs.len(), 2);
    let reasons: Vec<_> = r
        .defects
        .iter()
        .map(|x| (x.index, x.reason.clone()))
        .collect();
    assert_eq!(reasons[0].0, 0);
    assert!(reasons[0].1.contains("synch_count"), "{}", reasons[0].1);
    assert_eq!(reasons[1].0, 1);
    assert!(reasons[1].1.contains("email_list"), "{}", reasons[1].1);
}

#[test]
fn a_missing_identity_rejects_the_record() {
    let mut missing = host(4);
    missing.as_object_mut().unwrap().remove("id");
    let r = parse(json!({"hosts": [missing], "jobs": [], "suite_keyvals": []}));
    assert!(only_rejection(&r).reason.contains("missing field `id`"));
}

#[test]
fn incorrect_host_ids_absent_is_empty_and_strings_are_ids() {
    let r = parse(json!({"hosts": [], "jobs": [], "suite_keyvals": []}));
    assert!(r.incorrect_host_ids.is_empty());
    // §2: a list that is not a list fails the whole response; `null` too.
    for not_a_list in [json!(null), json!(3), json!({})] {
        let result = json!({"hosts": [], "jobs": [], "suite_keyvals": [],
                            "incorrect_host_ids": not_a_list});
        assert!(
            HeartbeatResponse::from_json(result.to_string().as_bytes()).is_err(),
            "{not_a_list}"
        );
    }
    let r = parse(json!({"hosts": [], "jobs": [], "suite_keyvals": [],
                         "incorrect_host_ids": [3, "4", "x", null]}));
    assert_eq!(r.incorrect_host_ids, [3, 4]);
    assert_eq!(r.rejected.len(), 2);
    assert!(
        r.rejected
            .iter()
            .all(|x| x.kind == RecordKind::IncorrectHostId)
    );
}

#[test]
fn one_bad_record_leaves_its_siblings_usable() {
    let mut bad_host = host(3);
    bad_host["invalid"] = json!("yes");
    let mut bad_keyval = json!({"id": 1, "job_id": 1000, "key": "k", "value": "v"});
    bad_keyval["value"] = json!(["not", "a", "string"]);
    let r = parse(json!({
        "hosts": [host(2), bad_host, "not a record", host(4)],
        "jobs": [job(10), 42, job(11)],
        "suite_keyvals": [{"id": 2, "job_id": 1000, "key": "build", "value": "b"}, bad_keyval],
    }));
    assert_eq!(r.hosts.iter().map(|h| h.id).collect::<Vec<_>>(), [2, 4]);
    assert_eq!(r.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [10, 11]);
    assert_eq!(r.suite_keyvals.len(), 1);
    let rejected: Vec<_> = r.rejected.iter().map(|x| (x.kind, x.id)).collect();
    assert_eq!(
        rejected,
        [
            (RecordKind::Host, Some(3)),
            (RecordKind::Host, None),
            (RecordKind::Job, None),
            (RecordKind::SuiteKeyval, Some(1)),
        ]
    );
    assert_eq!(r.received(RecordKind::Host), 4);
    assert!(
        r.rejected[0].reason.contains("invalid"),
        "{}",
        r.rejected[0].reason
    );
}

#[test]
fn a_broken_envelope_fails_the_whole_response() {
    for broken in [
        json!(null),
        json!([]),
        json!("hosts"),
        json!({"hosts": {}, "jobs": [], "suite_keyvals": []}),
        json!({"hosts": [], "jobs": null, "suite_keyvals": []}),
        json!({"hosts": [], "jobs": []}),
        json!({"hosts": [], "jobs": [], "suite_keyvals": [], "incorrect_host_ids": 3}),
    ] {
        assert!(
            HeartbeatResponse::from_json(broken.to_string().as_bytes()).is_err(),
            "{broken}"
        );
    }
}

#[test]
fn truncated_and_garbage_input_is_an_error_not_a_panic() {
    let full = json!({"hosts": [host(2)], "jobs": [job(1)], "suite_keyvals": []}).to_string();
    for cut in 0..full.len() {
        let _ = HeartbeatResponse::from_json(&full.as_bytes()[..cut]);
    }
    for garbage in [
        &b"\xff\xfe"[..],
        b"{\"hosts\": [",
        b"[[[[[[[[[[[[[[[[[[[[[[",
        b"",
    ] {
        assert!(HeartbeatResponse::from_json(garbage).is_err());
    }
    // Nesting deeper than serde_json's recursion limit inside one record
    // rejects that record; the envelope around it stays usable.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let nested = format!(r#"{{"hosts": [{deep}], "jobs": [], "suite_keyvals": []}}"#);
    let r = HeartbeatResponse::from_json(nested.as_bytes()).expect("envelope parses");
    assert_eq!(r.rejected.len(), 1);
    assert!(r.hosts.is_empty());
}

#[test]
fn oversized_strings_parse_here_and_are_left_to_the_store_to_refuse() {
    let mut j = job(1);
    j["name"] = json!("n".repeat(1_000_000));
    let r = one_job(j);
    assert_eq!(r.jobs[0].name.as_ref().map(String::len), Some(1_000_000));
}

/// The keys of `object`, sorted.
fn keys(object: &Value) -> Vec<String> {
    let mut keys: Vec<_> = object.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

/// The keys of the first record of `list` in the spec's example upload
/// (`request-upload.json`), sorted: exactly the fields an upload carries
/// (§3).
fn upload_keys(list: &str) -> Vec<String> {
    let envelope: Value = serde_json::from_slice(&fixture("request-upload.json")).unwrap();
    keys(&envelope["params"][0][list][0])
}

#[test]
fn upload_job_has_exactly_the_local_fields() {
    let r = one_job(job(1));
    let uploaded = serde_json::to_value(&r.jobs[0]).unwrap();

    assert_eq!(keys(&uploaded), upload_keys("jobs"));
}

#[test]
fn upload_hqe_has_local_fields_and_host_id_but_no_meta_host() {
    let r = one_job(job(1));
    let hqe: &Hqe = &r.jobs[0].hostqueueentry_set.as_ref().unwrap()[0];
    let uploaded = serde_json::to_value(hqe).unwrap();

    assert_eq!(keys(&uploaded), upload_keys("hqes"));
}

#[test]
fn datetimes_are_written_with_a_fraction_only_when_it_is_not_zero() {
    let mut j = job(1);
    j["created_on"] = json!("2014-09-23 15:56:10.5");
    let r = one_job(j);
    let written = serde_json::to_value(&r.jobs[0]).unwrap();
    assert_eq!(written["created_on"], "2014-09-23T15:56:10.500000");
    let r = one_job(job(1));
    let written = serde_json::to_value(&r.jobs[0]).unwrap();
    assert_eq!(written["created_on"], "2014-09-23T15:56:10");
}

#[test]
fn a_request_serializes_with_params_in_the_shape_of_section_3() {
    let r = one_job(job(1));
    let mut upload: Job = r.jobs[0].clone();
    upload.dependency_labels = None;
    let request = HeartbeatRequest {
        shard_hostname: "shard1".into(),
        known_job_ids: vec![2],
        known_host_ids: vec![3],
        known_host_statuses: vec![Some("Ready".into())],
        hqes: upload.hostqueueentry_set.clone().unwrap(),
        jobs: vec![upload],
    };
    let v = serde_json::to_value(&request).unwrap();
    assert_eq!(v["shard_hostname"], "shard1");
    assert!(v["jobs"][0].get("hostqueueentry_set").is_none());
    assert!(v["jobs"][0].get("shard").is_none());
    assert!(v["jobs"][0].get("parent_job_id").is_none());
    assert!(v["hqes"][0].get("meta_host").is_none());
}

#[test]
fn sent_job_ids_include_jobs_that_did_not_parse() {
    let json = r#"{"hosts": [], "suite_keyvals": [],
        "jobs": [{"id": 5, "hostqueueentry_set": 1}, {"id": "6x"}, {"id": 7, "shard": 2}]}"#;
    let response = HeartbeatResponse::from_json(json.as_bytes()).expect("envelope");
    assert_eq!(response.rejected.len(), 3, "{:?}", response.rejected);
    assert_eq!(response.sent_job_ids(), [5, 7]);
}
