//! [`Store`]: one pooled connection to the shard database, opened with the
//! per-backend settings §9 asks for, and counting its statements.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::sqlx::Executor;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

use crate::error::{StoreError, redact_url};
use crate::migration::Migrator;
use crate::schema::AFE_TABLES;

/// How long a statement waits for a lock or a pooled connection before the
/// heartbeat gives up on the database (and retries next tick).
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Prepared statements SQLite and PostgreSQL connections keep: none. The
/// statements that matter are multi-row writes and `IN` lists with
/// thousands of parameters; a cached one pins its metadata in this process
/// (a SQLite program, PostgreSQL's parameter types), which `cargo xtask
/// bench` measured at 1.7× (SQLite) and 0.8× (PostgreSQL) the response
/// size, kept for the daemon's lifetime, for a few percent of apply time.
/// MySQL keeps its statements on the server and little here, and
/// re-preparing a big statement there doubles the apply time, so its
/// connections keep sqlx's default cache.
const STATEMENT_CACHE: usize = 0;

/// The shard database: a connection pool plus a count of the statements
/// executed through it (tests and the benchmark read the count).
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    statements: Arc<AtomicU64>,
}

/// What [`Store::migrate`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateReport {
    /// `afe_` tables that were missing and have been created.
    pub created: Vec<&'static str>,
    /// `afe_` tables that already existed and were adopted untouched.
    pub adopted: Vec<&'static str>,
}

impl Store {
    /// Opens a pool on a `sqlite:`, `mysql:` or `postgres:`/`postgresql:`
    /// URL (§9). SQLite gets foreign keys, WAL and a busy timeout; MySQL
    /// gets utf8mb4 and strict SQL mode on every connection.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
        let mut options = ConnectOptions::new(url);
        options
            .sqlx_logging(false)
            .connect_timeout(LOCK_WAIT)
            .acquire_timeout(LOCK_WAIT);
        match scheme {
            "sqlite" => {
                if url.contains(":memory:") || url.contains("mode=memory") {
                    // Every connection of an in-memory database is its own
                    // database: keep exactly one.
                    options.max_connections(1).min_connections(1);
                }
                options.map_sqlx_sqlite_opts(|o| {
                    o.statement_cache_capacity(STATEMENT_CACHE)
                        .foreign_keys(true)
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal)
                        .busy_timeout(LOCK_WAIT)
                });
            }
            "mysql" | "mariadb" => {
                options
                    .map_sqlx_mysql_opts(|o| o.charset("utf8mb4"))
                    .map_sqlx_mysql_pool_opts(|pool| {
                        pool.after_connect(|conn, _meta| {
                            Box::pin(async move {
                                // Strict mode makes MySQL refuse what does
                                // not fit instead of truncating it.
                                conn.execute(
                                    "SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')",
                                )
                                .await?;
                                Ok(())
                            })
                        })
                    });
            }
            "postgres" | "postgresql" => {
                options.map_sqlx_postgres_opts(|o| o.statement_cache_capacity(STATEMENT_CACHE));
            }
            _ => {
                return Err(StoreError::UnsupportedUrl {
                    url: redact_url(url),
                });
            }
        }
        let mut db = Database::connect(options)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact_url(url),
                source,
            })?;
        let statements = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&statements);
        db.set_metric_callback(move |_info| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        Ok(Store { db, statements })
    }

    /// The pool, for the store's query functions and for tests.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Which SQL dialect the database speaks.
    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Statements executed through this store so far (all clones share
    /// the count). Transaction control (BEGIN, SAVEPOINT) is not counted.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Creates the missing `afe_` tables and adopts the existing ones
    /// untouched (§9), then reports which were which.
    ///
    /// When every table exists nothing is written at all, not even the
    /// migration tool's bookkeeping table: a client whose database user may
    /// only read and write rows (or a read-only `status`) still starts.
    pub async fn migrate(&self) -> Result<MigrateReport, StoreError> {
        let manager = sea_orm_migration::SchemaManager::new(&self.db);
        let mut before = Vec::new();
        for table in AFE_TABLES {
            if manager
                .has_table(table)
                .await
                .map_err(StoreError::Migrate)?
            {
                before.push(table);
            }
        }
        if before.len() < AFE_TABLES.len() {
            Migrator::up(&self.db, None)
                .await
                .map_err(StoreError::Migrate)?;
        }
        let (adopted, created) = AFE_TABLES.iter().partition(|t| before.contains(t));
        Ok(MigrateReport { created, adopted })
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(self) -> Result<(), StoreError> {
        self.db
            .close()
            .await
            .map_err(|source| StoreError::Database {
                operation: "closing the pool",
                source,
            })
    }
}

/// Starts a transaction that will write (a savepoint when `db` is already a
/// transaction). On SQLite it takes the write lock at once (`BEGIN
/// IMMEDIATE`): a deferred transaction that reads first and writes later
/// fails outright if the scheduler wrote in between.
pub async fn begin_write<C>(db: &C) -> Result<DatabaseTransaction, StoreError>
where
    C: TransactionTrait<Transaction = DatabaseTransaction>,
{
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    };
    db.begin_with_options(options)
        .await
        .map_err(|source| StoreError::Database {
            operation: "starting a write transaction",
            source,
        })
}
