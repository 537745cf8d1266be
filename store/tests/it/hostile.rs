//! Hostile strings through every text column the client writes, on every
//! backend: what goes in through `apply` reads back byte for byte, and no
//! string is ever taken for SQL (every statement is parameterized).

use crate::common::*;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryOrder, Statement,
};
use shard_model::{
    AclGroup, HeartbeatResponse, Host, Hqe, Job, JobKeyval, Label, RecordKind, Shard, ToOne, User,
};
use shard_store::apply;
use shard_store::schema::convert::{
    group_from_row, host_from_row, hqe_from_row, job_from_row, label_from_row, shard_from_row,
    user_from_row,
};
use shard_store::schema::entity::{
    afe_acl_groups, afe_host_queue_entries, afe_hosts, afe_jobs, afe_labels, afe_shards, afe_users,
};
use shard_store::schema::{
    AFE_TABLES, EMAIL_LIST, LABEL_NAME, NAME, SHORT_NAME, TEXT_BYTES, VALUE,
};
use shard_store::testing::TestDb;

shard_store::backend_tests!(
    hostile_strings_round_trip_through_every_text_column,
    strings_as_wide_as_their_columns_round_trip,
    nul_is_rejected_on_postgres_and_stored_elsewhere,
);

/// Strings that break naive quoting, escaping, `LIKE` patterns or
/// encodings. None holds a NUL (see the last test for that).
const HOSTILE: [&str; 16] = [
    "O'Brien's",
    "\"double\" quotes",
    "'; DROP TABLE afe_jobs; --",
    "\"); DROP TABLE afe_hosts; --",
    "x' OR '1'='1",
    "back\\slash\\",
    // Escapes as literal text: a backslash then n, a backslash then a quote.
    "\\n \\' \\\" \\0 \\x00 \\u0000 \\\\",
    "%_ wildcards % _ [a-z]*",
    "$1 ? :name @p1 {0}",
    "-- comment /* block */ #hash",
    "line\nbreak\ttab\rreturn",
    "\u{7f}\u{1b}[31m escape \u{1}",
    "ünïcødé ✓ 测试 🚀",
    "𝔥𝔢𝔩𝔩𝔬 😀🚀 four-byte",
    "\u{200b}zero width\u{feff} and trailing space ",
    "",
];

/// One host and one job per hostile string, every text column set to it.
/// Label names and logins are unique keys, compared by MySQL under a
/// case-, accent- and trailing-space-insensitive collation, so they get a
/// distinct prefix to stay distinct there.
async fn hostile_strings_round_trip_through_every_text_column(db: TestDb) {
    let conn = db.store.connection();
    let expected: Vec<Strings> = HOSTILE
        .iter()
        .enumerate()
        .map(|(i, s)| Strings::all(i as i32 + 1, s))
        .collect();
    check_round_trip(conn, &expected).await;
}

/// Every text column filled to its width with 4-byte emoji, CJK, quotes,
/// backslashes and wildcards: `varchar(n)` columns with `n` characters,
/// `text` columns with 65,535 bytes.
async fn strings_as_wide_as_their_columns_round_trip(db: TestDb) {
    let conn = db.store.connection();
    check_round_trip(conn, &[Strings::widest(1), Strings::widest(2)]).await;
}

/// PostgreSQL cannot store a NUL character in `text`: the statement fails
/// (SQLSTATE 22021), so the record carrying it is isolated and rejected
/// with the database's reason while the rest lands. SQLite and MySQL store
/// it like any other character. This asserts today's behaviour; a client
/// that wanted the same outcome everywhere would refuse NULs in planning.
async fn nul_is_rejected_on_postgres_and_stored_elsewhere(db: TestDb) {
    let conn = db.store.connection();
    // One record per column, so every column is shown to behave alike.
    let columns = Strings::COLUMNS;
    // Entries run on no host, so that a rejected host does not take the
    // job with it; a label or shard is shared by a host and a job, so a
    // NUL there rejects both.
    let records: Vec<Strings> = (0..columns)
        .map(|column| {
            let mut s = Strings::all(column as i32 + 1, "clean");
            let with_nul = format!("{}nul\0here", s.column_mut(column));
            *s.column_mut(column) = with_nul;
            s.hqe_host = None;
            s
        })
        .collect();
    let mut clean = Strings::all(columns as i32 + 1, "clean");
    clean.hqe_host = None;
    let response = response_of(records.iter().chain([&clean]));
    let report = apply(conn, &db.store.layout(), &response).await.unwrap();

    if conn.get_database_backend() == DbBackend::Postgres {
        // A host and a job per record, and a suite keyval per record.
        let mut expected: Vec<(RecordKind, Option<i64>)> = Vec::new();
        for kind in [RecordKind::Host, RecordKind::Job, RecordKind::SuiteKeyval] {
            for s in &records {
                if s.touches(kind) {
                    expected.push((kind, Some(i64::from(s.id))));
                }
            }
        }
        assert_eq!(rejected_ids(&report), expected);
        for r in &report.rejected {
            assert!(
                r.reason.contains("0x00"),
                "the reason names the NUL byte: {}",
                r.reason
            );
        }
        // Everything else landed: the records without a NUL of each set,
        // and the clean set whole.
        let kept = |kind| -> Vec<i32> {
            records
                .iter()
                .chain([&clean])
                .filter(|s| !s.touches(kind))
                .map(|s| s.id)
                .collect()
        };
        assert_eq!(host_ids(conn).await, kept(RecordKind::Host));
        assert_eq!(job_ids(conn).await, kept(RecordKind::Job));
        let suite_jobs: Vec<i32> = keyvals(conn)
            .await
            .iter()
            .filter(|k| k.0 > 100_000)
            .map(|k| k.0 - 100_000)
            .collect();
        assert_eq!(suite_jobs, kept(RecordKind::SuiteKeyval));
        let clean_host = host_row(conn, clean.id).await;
        assert_eq!(clean_host.lock_reason.as_deref(), Some("clean"));
        for table in AFE_TABLES {
            row_count(conn, table).await;
        }
    } else {
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        let mut all = records;
        all.push(clean);
        check_stored(conn, &all).await;
    }
}

/// Every text column of one host, one job and one suite keyval, all with
/// ids derived from `id` so that two sets never share a row.
#[derive(Debug, Clone)]
struct Strings {
    id: i32,
    label_name: String,
    label_kernel_config: String,
    shard_hostname: String,
    user_login: String,
    group_name: String,
    group_description: String,
    host_hostname: String,
    host_status: String,
    host_lock_reason: String,
    attribute: String,
    attribute_value: String,
    job_owner: String,
    job_name: String,
    job_control_file: String,
    job_email_list: String,
    hqe_status: String,
    hqe_execution_subdir: String,
    keyval_key: String,
    keyval_value: String,
    suite_key: String,
    suite_value: String,
    /// The host the job's entry runs on.
    hqe_host: Option<i32>,
}

impl Strings {
    const COLUMNS: usize = 21;

    /// `s` in every column; the unique ones get `id` as a prefix.
    fn all(id: i32, s: &str) -> Strings {
        let unique = format!("{id}:{s}");
        Strings {
            id,
            label_name: unique.clone(),
            label_kernel_config: s.to_owned(),
            shard_hostname: s.to_owned(),
            user_login: unique,
            group_name: s.to_owned(),
            group_description: s.to_owned(),
            host_hostname: s.to_owned(),
            host_status: s.to_owned(),
            host_lock_reason: s.to_owned(),
            attribute: s.to_owned(),
            attribute_value: s.to_owned(),
            job_owner: s.to_owned(),
            job_name: s.to_owned(),
            job_control_file: s.to_owned(),
            job_email_list: s.to_owned(),
            hqe_status: s.to_owned(),
            hqe_execution_subdir: s.to_owned(),
            keyval_key: s.to_owned(),
            keyval_value: s.to_owned(),
            suite_key: s.to_owned(),
            suite_value: s.to_owned(),
            hqe_host: Some(id),
        }
    }

    /// Every column exactly as wide as it is.
    fn widest(id: i32) -> Strings {
        let prefix = format!("{id}:");
        let unique = |n: u32| format!("{prefix}{}", fill(id, n - prefix.len() as u32));
        let f = |n| fill(id, n);
        Strings {
            id,
            label_name: unique(LABEL_NAME),
            label_kernel_config: f(NAME),
            shard_hostname: f(NAME),
            user_login: unique(NAME),
            group_name: f(NAME),
            group_description: f(NAME),
            host_hostname: f(NAME),
            host_status: f(NAME),
            host_lock_reason: fill_bytes(TEXT_BYTES),
            attribute: f(SHORT_NAME),
            attribute_value: f(VALUE),
            job_owner: f(NAME),
            job_name: f(NAME),
            job_control_file: fill_bytes(TEXT_BYTES),
            job_email_list: f(EMAIL_LIST),
            hqe_status: f(NAME),
            hqe_execution_subdir: f(NAME),
            keyval_key: f(SHORT_NAME),
            keyval_value: f(VALUE),
            suite_key: f(SHORT_NAME),
            suite_value: f(VALUE),
            hqe_host: Some(id),
        }
    }

    /// The `i`th column, in declaration order.
    fn column_mut(&mut self, i: usize) -> &mut String {
        let columns = [
            &mut self.label_name,
            &mut self.label_kernel_config,
            &mut self.shard_hostname,
            &mut self.user_login,
            &mut self.group_name,
            &mut self.group_description,
            &mut self.host_hostname,
            &mut self.host_status,
            &mut self.host_lock_reason,
            &mut self.attribute,
            &mut self.attribute_value,
            &mut self.job_owner,
            &mut self.job_name,
            &mut self.job_control_file,
            &mut self.job_email_list,
            &mut self.hqe_status,
            &mut self.hqe_execution_subdir,
            &mut self.keyval_key,
            &mut self.keyval_value,
            &mut self.suite_key,
            &mut self.suite_value,
        ];
        columns.into_iter().nth(i).expect("a column index")
    }

    /// Whether a record of this kind carries a NUL (only meaningful for
    /// the sets built by the NUL test).
    fn touches(&self, kind: RecordKind) -> bool {
        let shared = [
            &self.label_name,
            &self.label_kernel_config,
            &self.shard_hostname,
        ];
        let host = [
            &self.user_login,
            &self.group_name,
            &self.group_description,
            &self.host_hostname,
            &self.host_status,
            &self.host_lock_reason,
            &self.attribute,
            &self.attribute_value,
        ];
        let job = [
            &self.job_owner,
            &self.job_name,
            &self.job_control_file,
            &self.job_email_list,
            &self.hqe_status,
            &self.hqe_execution_subdir,
            &self.keyval_key,
            &self.keyval_value,
        ];
        let suite = [&self.suite_key, &self.suite_value];
        let nul = |cols: &[&String]| cols.iter().any(|c| c.contains('\0'));
        match kind {
            RecordKind::Host => nul(&shared) || nul(&host),
            RecordKind::Job => nul(&shared) || nul(&job),
            RecordKind::SuiteKeyval => nul(&suite),
            RecordKind::IncorrectHostId => false,
        }
    }

    fn shard(&self) -> Shard {
        Shard {
            id: self.id,
            hostname: self.shard_hostname.clone(),
        }
    }

    fn label(&self) -> Label {
        Label {
            name: Some(self.label_name.clone()),
            kernel_config: Some(self.label_kernel_config.clone()),
            ..label(self.id)
        }
    }

    fn user(&self) -> User {
        user(self.id, &self.user_login)
    }

    fn group(&self) -> AclGroup {
        AclGroup {
            name: Some(self.group_name.clone()),
            description: Some(self.group_description.clone()),
            ..group(self.id, vec![self.user()])
        }
    }

    fn host(&self) -> Host {
        Host {
            hostname: Some(self.host_hostname.clone()),
            status: Some(self.host_status.clone()),
            lock_reason: Some(self.host_lock_reason.clone()),
            aclgroup_set: Some(vec![self.group()]),
            hostattribute_set: Some(vec![attribute(&self.attribute, &self.attribute_value)]),
            labels: Some(vec![self.label()]),
            shard: ToOne::Set(self.shard()),
            ..host(self.id)
        }
    }

    fn hqe(&self) -> Hqe {
        Hqe {
            status: Some(self.hqe_status.clone()),
            execution_subdir: self.hqe_execution_subdir.clone(),
            meta_host: ToOne::Set(self.label()),
            ..hqe(self.id, self.hqe_host)
        }
    }

    fn job(&self) -> Job {
        Job {
            owner: Some(self.job_owner.clone()),
            name: Some(self.job_name.clone()),
            control_file: Some(self.job_control_file.clone()),
            email_list: self.job_email_list.clone(),
            dependency_labels: Some(vec![self.label()]),
            hostqueueentry_set: Some(vec![self.hqe()]),
            jobkeyval_set: Some(vec![keyval(self.id, &self.keyval_key, &self.keyval_value)]),
            shard: ToOne::Set(self.shard()),
            ..job(self.id)
        }
    }

    /// The suite job's id: beside the jobs, never one of them.
    fn suite_job_id(&self) -> i32 {
        100_000 + self.id
    }

    /// The suite keyval, with this set's id as its own.
    fn suite_keyval(&self) -> JobKeyval {
        JobKeyval {
            id: Some(self.id),
            ..keyval(self.suite_job_id(), &self.suite_key, &self.suite_value)
        }
    }
}

/// `n` characters cycling through 4-byte emoji, CJK and SQL metacharacters,
/// starting at a different place for each `seed`.
fn fill(seed: i32, n: u32) -> String {
    const POOL: [char; 12] = [
        '🚀', '测', '\'', '😀', '\\', '%', '試', '"', '_', '𝔥', ';', 'é',
    ];
    (0..n as usize)
        .map(|i| POOL[(i + seed as usize) % POOL.len()])
        .collect()
}

/// Exactly `bytes` bytes, mostly 4-byte emoji, ending in SQL metacharacters.
fn fill_bytes(bytes: usize) -> String {
    let tail = ["", "'", "'\\", "'\\%"][bytes % 4];
    format!("{}{tail}", "🚀".repeat(bytes / 4))
}

/// A response carrying every set's host, job and suite keyval.
fn response_of<'a>(sets: impl Iterator<Item = &'a Strings>) -> HeartbeatResponse {
    let sets: Vec<&Strings> = sets.collect();
    response(
        sets.iter().map(|s| s.host()).collect(),
        sets.iter().map(|s| s.job()).collect(),
        sets.iter().map(|s| s.suite_keyval()).collect(),
    )
}

async fn check_round_trip(conn: &DatabaseConnection, sets: &[Strings]) {
    let report = apply(
        conn,
        &shard_store::Layout::read(conn).await.unwrap(),
        &response_of(sets.iter()),
    )
    .await
    .unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    check_stored(conn, sets).await;
}

/// Reads every row back and compares it with what `sets` wrote, exactly;
/// then checks that every table is still there with the rows it should
/// hold (and nothing more).
async fn check_stored(conn: &impl ConnectionTrait, sets: &[Strings]) {
    let stripped_host = |s: &Strings| Host {
        aclgroup_set: None,
        hostattribute_set: None,
        labels: None,
        shard: ToOne::Absent,
        ..s.host()
    };
    let stripped_job = |s: &Strings| Job {
        dependency_labels: None,
        hostqueueentry_set: None,
        jobkeyval_set: None,
        shard: ToOne::Absent,
        ..s.job()
    };
    let stripped_hqe = |s: &Strings| Hqe {
        meta_host: ToOne::Absent,
        ..s.hqe()
    };
    let stripped_group = |s: &Strings| AclGroup {
        users: None,
        ..s.group()
    };

    let got = read_back(conn, afe_shards::Column::Id, shard_from_row).await;
    assert_eq!(got, sets.iter().map(Strings::shard).collect::<Vec<_>>());
    let got = read_back(conn, afe_labels::Column::Id, label_from_row).await;
    assert_eq!(got, sets.iter().map(Strings::label).collect::<Vec<_>>());
    let got = read_back(conn, afe_users::Column::Id, user_from_row).await;
    assert_eq!(got, sets.iter().map(Strings::user).collect::<Vec<_>>());
    let got = read_back(conn, afe_acl_groups::Column::Id, group_from_row).await;
    assert_eq!(got, sets.iter().map(stripped_group).collect::<Vec<_>>());
    let got = read_back(conn, afe_hosts::Column::Id, host_from_row).await;
    assert_eq!(got, sets.iter().map(stripped_host).collect::<Vec<_>>());
    let got = read_back(conn, afe_jobs::Column::Id, job_from_row).await;
    assert_eq!(got, sets.iter().map(stripped_job).collect::<Vec<_>>());
    let got = read_back(conn, afe_host_queue_entries::Column::Id, hqe_from_row).await;
    assert_eq!(got, sets.iter().map(stripped_hqe).collect::<Vec<_>>());

    let expected: Vec<(i32, String, String)> = sets
        .iter()
        .map(|s| (s.id, s.attribute.clone(), s.attribute_value.clone()))
        .collect();
    assert_eq!(attributes(conn).await, expected);
    let mut expected: Vec<(i32, String, String)> = sets
        .iter()
        .flat_map(|s| {
            [
                (s.id, s.keyval_key.clone(), s.keyval_value.clone()),
                (s.suite_job_id(), s.suite_key.clone(), s.suite_value.clone()),
            ]
        })
        .collect();
    expected.sort();
    assert_eq!(sorted_keyvals(conn).await, expected);

    let ids: Vec<i32> = sets.iter().map(|s| s.id).collect();
    let pairs: Vec<(i32, i32)> = ids.iter().map(|&id| (id, id)).collect();
    assert_eq!(group_users(conn).await, pairs);
    assert_eq!(group_hosts(conn).await, pairs);
    assert_eq!(host_labels(conn).await, pairs);
    assert_eq!(job_labels(conn).await, pairs);

    let n = sets.len() as i64;
    let mut counts = Vec::new();
    for table in AFE_TABLES {
        counts.push((table, row_count(conn, table).await));
    }
    let expected: Vec<(&str, i64)> = AFE_TABLES
        .iter()
        .map(|&table| match table {
            "afe_shards_labels" => (table, 0),
            "afe_job_keyvals" => (table, 2 * n),
            _ => (table, n),
        })
        .collect();
    assert_eq!(counts, expected, "every table is there with its rows");
}

/// Every row of `by`'s table, ordered by `by`, as `from_row` reads it.
async fn read_back<C, T>(
    conn: &impl ConnectionTrait,
    by: C,
    from_row: impl Fn(<C::EntityName as EntityTrait>::Model) -> T,
) -> Vec<T>
where
    C: ColumnTrait,
    C::EntityName: EntityTrait,
{
    <C::EntityName as EntityTrait>::find()
        .order_by_asc(by)
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(from_row)
        .collect()
}

/// `SELECT COUNT(*)`, which fails if the table is gone.
async fn row_count(conn: &impl ConnectionTrait, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table}");
    let stmt = Statement::from_string(conn.get_database_backend(), sql);
    let row = conn
        .query_one_raw(stmt)
        .await
        .unwrap_or_else(|e| panic!("counting {table}: {e}"))
        .expect("a count");
    row.try_get::<i64>("", "n").unwrap()
}
