//! Throw-away databases on every backend, for tests (feature `testing`).
//!
//! SQLite always runs, in a temporary file. MariaDB/MySQL and PostgreSQL run
//! when `SHARD_TEST_MYSQL_URL` / `SHARD_TEST_POSTGRES_URL` point at a server
//! (e.g. `mysql://root@127.0.0.1:3306`, `postgres://postgres@127.0.0.1:5432`);
//! otherwise their tests print that they were skipped, unless
//! `SHARD_TEST_REQUIRE_BACKENDS=1` makes that a failure (CI sets it).
//! Each [`TestDb`] is a uniquely named database, dropped when it goes out of
//! scope.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sea_orm::{ConnectionTrait, Database};

use crate::Store;

pub mod oracle;
pub mod reference;
pub mod rows;

/// A backend the tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite, always available.
    Sqlite,
    /// MariaDB or MySQL, from `SHARD_TEST_MYSQL_URL`.
    MySql,
    /// PostgreSQL, from `SHARD_TEST_POSTGRES_URL`.
    Postgres,
}

impl Backend {
    /// The environment variable naming this backend's server, if any.
    pub fn env_var(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::MySql => Some("SHARD_TEST_MYSQL_URL"),
            Backend::Postgres => Some("SHARD_TEST_POSTGRES_URL"),
        }
    }
}

/// A shard database as real deployments created it (§9, "Schemas found in
/// deployments"), from DDL written for these tests from the facts there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopted {
    /// MySQL/MariaDB created by Autotest's SQL migrations (production
    /// shards): latin1, `datetime` without fraction, no foreign key on a
    /// job's parent or a keyval's job, `UNIQUE(job_id, host_id)` on entries.
    MySqlAutotest,
    /// MySQL/MariaDB created by Django: `datetime(6)`, `smallint`
    /// priorities, NOT NULL without defaults, foreign keys on a job's parent
    /// and a keyval's job.
    MySqlDjango,
    /// PostgreSQL created by Django: `timestamp with time zone`,
    /// `smallint`, every foreign key `DEFERRABLE INITIALLY DEFERRED`.
    PostgresDjango,
}

impl Adopted {
    /// The server this schema lives on.
    pub fn backend(self) -> Backend {
        match self {
            Adopted::MySqlAutotest | Adopted::MySqlDjango => Backend::MySql,
            Adopted::PostgresDjango => Backend::Postgres,
        }
    }

    /// The statements that create the tables.
    pub fn ddl(self) -> Vec<String> {
        let file = match self {
            Adopted::MySqlAutotest => {
                include_str!("../tests/fixtures/autotest-afe-schema.mysql.sql")
            }
            Adopted::MySqlDjango => include_str!("../tests/fixtures/django-afe-schema.mysql.sql"),
            Adopted::PostgresDjango => {
                include_str!("../tests/fixtures/django-afe-schema.postgres.sql")
            }
        };
        file.split(';')
            .map(|s| {
                s.lines()
                    .filter(|l| !l.trim_start().starts_with("--"))
                    .collect::<Vec<_>>()
                    .join("\n")
                    .trim()
                    .to_owned()
            })
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// A fresh database that is dropped (or deleted) when this value drops.
pub struct TestDb {
    /// The store, connected to the test database.
    pub store: Store,
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    File(PathBuf),
    Drop {
        backend: Backend,
        admin_url: String,
        name: String,
    },
}

impl TestDb {
    /// A fresh database with the AFE schema, or `None` (with a note on
    /// stderr) when the backend is not configured here.
    ///
    /// # Panics
    /// When the backend is configured but unusable, or is required by
    /// `SHARD_TEST_REQUIRE_BACKENDS` but not configured.
    pub async fn migrated(backend: Backend) -> Option<TestDb> {
        let db = TestDb::empty(backend).await?;
        if let Err(e) = db.store.migrate().await {
            panic!("cannot migrate the {backend:?} test database: {e}");
        }
        Some(db)
    }

    /// A fresh database laid out as `schema` (adopted by `migrate`, which
    /// must leave it as it is), or `None` when its backend is not
    /// configured here.
    ///
    /// # Panics
    /// As [`TestDb::migrated`], or when the DDL does not load.
    pub async fn adopted(schema: Adopted) -> Option<TestDb> {
        let db = TestDb::empty(schema.backend()).await?;
        let conn = db.store.connection();
        for statement in schema.ddl() {
            if let Err(e) = conn.execute_unprepared(&statement).await {
                panic!("cannot create the {schema:?} schema: {e}\n{statement}");
            }
        }
        match db.store.migrate().await {
            Ok(report) if report.created.is_empty() => {}
            Ok(report) => panic!(
                "migrate created {:?} in the {schema:?} schema",
                report.created
            ),
            Err(e) => panic!("cannot adopt the {schema:?} schema: {e}"),
        }
        Some(db)
    }

    /// A fresh, empty database (no tables), or `None` when the backend is
    /// not configured here. See [`TestDb::migrated`].
    ///
    /// # Panics
    /// As [`TestDb::migrated`].
    pub async fn empty(backend: Backend) -> Option<TestDb> {
        let name = unique_name();
        let (url, cleanup) = match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                (
                    format!("sqlite://{}?mode=rwc", path.display()),
                    Cleanup::File(path),
                )
            }
            Backend::MySql | Backend::Postgres => {
                let server = server_url(backend)?;
                let (admin_url, url) = match backend {
                    Backend::MySql => (format!("{server}/"), format!("{server}/{name}")),
                    _ => (format!("{server}/postgres"), format!("{server}/{name}")),
                };
                let create = match backend {
                    Backend::MySql => format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"),
                    _ => format!("CREATE DATABASE {name}"),
                };
                let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| {
                    panic!("cannot reach the {backend:?} test server at {admin_url}: {e}")
                });
                if let Err(e) = admin.execute_unprepared(&create).await {
                    panic!("cannot create test database {name}: {e}");
                }
                let _ = admin.close().await;
                let cleanup = Cleanup::Drop {
                    backend,
                    admin_url,
                    name,
                };
                (url, cleanup)
            }
        };
        let store = match Store::connect(&url).await {
            Ok(store) => store,
            Err(e) => panic!("cannot connect to test database {url}: {e}"),
        };
        Some(TestDb {
            store,
            url,
            cleanup,
        })
    }

    /// The URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
            Cleanup::Drop {
                backend,
                admin_url,
                name,
            } => {
                let sql = match backend {
                    Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    _ => format!("DROP DATABASE IF EXISTS {name}"),
                };
                let store = self.store.clone();
                let what = format!("test database {name}");
                run_as_admin(admin_url, sql, Some(store), &what);
            }
        }
    }
}

/// How long dropping a test database waits for its pool to close.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `sql` on the server of `admin_url` from a `Drop` (after closing
/// `store`, whose connections would hold what is dropped), warning on
/// stderr with `what` if it fails. `Drop` runs inside the test's runtime,
/// which cannot be blocked on; a short-lived runtime on its own thread can.
pub fn run_as_admin(admin_url: &str, sql: String, store: Option<Store>, what: &str) {
    let admin_url = admin_url.to_owned();
    let done = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async move {
            if let Some(store) = store {
                // Closing waits for every connection to come back; one a
                // task of the finished test still holds (or leaked) would
                // hang the test for good, and the drop below does not
                // need it.
                let _ = tokio::time::timeout(CLOSE_WAIT, store.close()).await;
            }
            let admin = Database::connect(&admin_url)
                .await
                .map_err(|e| e.to_string())?;
            admin
                .execute_unprepared(&sql)
                .await
                .map_err(|e| e.to_string())?;
            let _ = admin.close().await;
            Ok::<_, String>(())
        })
    })
    .join();
    if let Ok(Err(e)) | Err(e) = done.map_err(|_| "panicked".to_owned()) {
        eprintln!("warning: could not drop {what}: {e}");
    }
}

/// The server URL for a backend (without a database path), or `None` when
/// it is not configured and not required.
fn server_url(backend: Backend) -> Option<String> {
    let var = backend.env_var()?;
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => {
            let url = url.trim().trim_end_matches('/');
            // Keep scheme://authority; a database path in the variable is
            // ignored because every test makes its own database.
            let authority_end = url
                .find("://")
                .and_then(|i| url[i + 3..].find('/').map(|j| i + 3 + j))
                .unwrap_or(url.len());
            Some(url[..authority_end].to_owned())
        }
        _ if std::env::var("SHARD_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1") => {
            panic!("{var} is not set but SHARD_TEST_REQUIRE_BACKENDS=1 requires {backend:?}")
        }
        _ => {
            eprintln!("skipped: {var} is not set, so this {backend:?} test does not run here");
            None
        }
    }
}

fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "shard_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000
    )
}

/// [`backend_tests!`] for every listed test, and [`adopted_schema_tests!`]
/// for those after `everywhere:`, so each name is written once: the first
/// list runs only on the schema we create (on every backend), the second
/// also on every schema found in deployments (§9).
#[macro_export]
macro_rules! every_schema_tests {
    (ours: [$($ours:ident),* $(,)?], everywhere: [$($all:ident),* $(,)?] $(,)?) => {
        $crate::backend_tests!($($ours,)* $($all),*);
        $crate::adopted_schema_tests!($($all),*);
    };
}

/// Generates one `#[tokio::test]` per schema found in deployments (§9)
/// for each listed `async fn name(db: TestDb)`, in modules
/// `mysql_autotest`, `mysql_django` and `postgres_django`: the tests that
/// make sense on a schema the client adopted rather than created.
#[macro_export]
macro_rules! adopted_schema_tests {
    ($($name:ident),* $(,)?) => {
        $crate::adopted_schema_tests!(@schema mysql_autotest, MySqlAutotest, $($name),*);
        $crate::adopted_schema_tests!(@schema mysql_django, MySqlDjango, $($name),*);
        $crate::adopted_schema_tests!(@schema postgres_django, PostgresDjango, $($name),*);
    };
    (@schema $module:ident, $schema:ident, $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let schema = $crate::testing::Adopted::$schema;
                    if let Some(db) = $crate::testing::TestDb::adopted(schema).await {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
}

/// Generates one `#[tokio::test]` per backend for each listed
/// `async fn name(db: TestDb)`, in modules `sqlite`, `mysql` and `postgres`
/// so the backend shows in every test's name.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $crate::backend_tests!(@backend sqlite, Sqlite, $($name),*);
        $crate::backend_tests!(@backend mysql, MySql, $($name),*);
        $crate::backend_tests!(@backend postgres, Postgres, $($name),*);
    };
    (@backend $module:ident, $backend:ident, $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let backend = $crate::testing::Backend::$backend;
                    if let Some(db) = $crate::testing::TestDb::migrated(backend).await {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
}
