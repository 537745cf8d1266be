//! [`Store`]: one pooled connection to the shard database, opened with the
//! per-backend settings §9 asks for, and counting its statements.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use sea_orm::sqlx::Executor;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::error::{StoreError, redact_url};
use crate::layout::Layout;
use crate::schema::AFE_TABLES;
use crate::schema::create;
use sea_orm::{DbErr, RuntimeErr};

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

/// The shard database: a connection pool, the adopted tables as the catalog
/// describes them, and a count of the statements executed through the pool
/// (tests and the benchmark read the count).
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    statements: Arc<AtomicU64>,
    layout: Arc<RwLock<Arc<Layout>>>,
}

/// How to open the shard database beyond its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// The zone naive lab-local times are stored in (the AFE's
    /// `TIME_ZONE`, e.g. `America/Los_Angeles`). PostgreSQL sessions use
    /// it, so a `timestamp with time zone` column holds the same instant
    /// Django would write; `datetime` columns are naive and need none.
    pub time_zone: String,
    /// Open the database for reading only (`status`, `schema`): a SQLite
    /// file is never created, and every session refuses to write.
    pub read_only: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            time_zone: "UTC".to_owned(),
            read_only: false,
        }
    }
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
    /// URL (§9) with the default options (times in UTC).
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, &StoreOptions::default()).await
    }

    /// Opens a pool on a `sqlite:`, `mysql:` or `postgres:`/`postgresql:`
    /// URL (§9) and reads the adopted tables from the catalog. SQLite gets
    /// foreign keys, WAL and a busy timeout; MySQL gets utf8mb4 and strict
    /// SQL mode on every connection; PostgreSQL the time zone of `settings`.
    pub async fn connect_with(url: &str, settings: &StoreOptions) -> Result<Store, StoreError> {
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
                let read_only = settings.read_only;
                options.map_sqlx_sqlite_opts(move |o| {
                    let o = o
                        .statement_cache_capacity(STATEMENT_CACHE)
                        .foreign_keys(true)
                        .busy_timeout(LOCK_WAIT);
                    if read_only {
                        // Setting the journal mode would write.
                        o.read_only(true).create_if_missing(false)
                    } else {
                        o.journal_mode(SqliteJournalMode::Wal)
                            .synchronous(SqliteSynchronous::Normal)
                    }
                });
            }
            "mysql" | "mariadb" => {
                let read_only = settings.read_only;
                options
                    .map_sqlx_mysql_opts(|o| o.charset("utf8mb4"))
                    .map_sqlx_mysql_pool_opts(move |pool| {
                        pool.after_connect(move |conn, _meta| {
                            Box::pin(async move {
                                // Strict mode makes MySQL refuse what does
                                // not fit instead of truncating it.
                                conn.execute(
                                    "SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')",
                                )
                                .await?;
                                if read_only {
                                    conn.execute("SET SESSION TRANSACTION READ ONLY").await?;
                                }
                                Ok(())
                            })
                        })
                    });
            }
            "postgres" | "postgresql" => {
                let zone = settings.time_zone.clone();
                let read_only = settings.read_only;
                options
                    .map_sqlx_postgres_opts(|o| o.statement_cache_capacity(STATEMENT_CACHE))
                    .map_sqlx_postgres_pool_opts(move |pool| {
                        let zone = zone.clone();
                        pool.after_connect(move |conn, _meta| {
                            let zone = zone.clone();
                            Box::pin(async move {
                                // Bound, not spliced: the zone comes from
                                // the configuration (checked by the probe,
                                // as the pool would only retry a failure).
                                sea_orm::sqlx::query("SELECT set_config('TimeZone', $1, false)")
                                    .bind(zone)
                                    .execute(&mut *conn)
                                    .await?;
                                if read_only {
                                    conn.execute("SET default_transaction_read_only = on")
                                        .await?;
                                }
                                Ok(())
                            })
                        })
                    });
            }
            _ => {
                return Err(StoreError::UnsupportedUrl {
                    url: redact_url(url),
                });
            }
        }
        probe(scheme, url, settings).await?;
        let mut db = Database::connect(options)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact_url(url),
                source,
            })?;
        let layout = Layout::read(&db).await?;
        let statements = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&statements);
        db.set_metric_callback(move |_info| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        Ok(Store {
            db,
            statements,
            layout: Arc::new(RwLock::new(Arc::new(layout))),
        })
    }

    /// The adopted tables as the catalog described them at connect (or
    /// after [`Store::migrate`] created the missing ones).
    pub fn layout(&self) -> Arc<Layout> {
        Arc::clone(&self.layout.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Reads the catalog again (after a test or an operator changed the
    /// schema under a running store).
    pub async fn refresh_layout(&self) -> Result<Arc<Layout>, StoreError> {
        let layout = Arc::new(Layout::read(&self.db).await?);
        *self.layout.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&layout);
        Ok(layout)
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
    /// When every table exists nothing is written at all: a client whose
    /// database user may only read and write rows (or a read-only
    /// `status`) still starts.
    pub async fn migrate(&self) -> Result<MigrateReport, StoreError> {
        let before = self.refresh_layout().await?;
        if before.tables.len() < AFE_TABLES.len() {
            if self.backend() == DbBackend::MySql {
                // MySQL commits each DDL statement on its own.
                create::create_missing(&self.db, &before)
                    .await
                    .map_err(StoreError::Migrate)?;
            } else {
                // SQLite and PostgreSQL create all of it or none: a table
                // left without its indexes would never get them, since a
                // table that exists is adopted as it is.
                let txn = self.db.begin().await.map_err(StoreError::Migrate)?;
                create::create_missing(&txn, &before)
                    .await
                    .map_err(StoreError::Migrate)?;
                txn.commit().await.map_err(StoreError::Migrate)?;
            }
        }
        // What exists now, created or adopted, is what every later read,
        // write and check follows.
        self.refresh_layout().await?;
        let (adopted, created) = AFE_TABLES.iter().partition(|t| before.table(t).is_some());
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

/// Opens one connection of its own before the pool does, and closes it.
/// The pool retries a failed connection until its acquire timeout and then
/// reports only "pool timed out", hiding the cause (connection refused, a
/// wrong password, no such database); here the cause comes out at once. On
/// PostgreSQL the probe also sets the time zone, which in the pool's
/// connect hook would likewise only be retried, so an unknown zone is
/// reported by name.
async fn probe(scheme: &str, url: &str, settings: &StoreOptions) -> Result<(), StoreError> {
    use sea_orm::sqlx::sqlite::SqliteConnectOptions;
    use sea_orm::sqlx::{ConnectOptions as _, Connection, MySqlConnection, PgConnection};
    let connect_error = |e: sea_orm::sqlx::Error| StoreError::Connect {
        url: redact_url(url),
        source: DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))),
    };
    let attempt = async {
        match scheme {
            "sqlite" => {
                let mut options = SqliteConnectOptions::from_str(url)?;
                if settings.read_only {
                    options = options.read_only(true).create_if_missing(false);
                }
                options.connect().await?.close().await
            }
            "mysql" | "mariadb" => MySqlConnection::connect(url).await?.close().await,
            _ => {
                let mut conn = PgConnection::connect(url).await?;
                if let Err(e) = sea_orm::sqlx::query("SELECT set_config('TimeZone', $1, false)")
                    .bind(&settings.time_zone)
                    .execute(&mut conn)
                    .await
                {
                    let _ = conn.close().await;
                    return Ok(Err(StoreError::TimeZone {
                        zone: settings.time_zone.clone(),
                        source: DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))),
                    }));
                }
                conn.close().await
            }
        }
        .map(Ok)
    };
    match tokio::time::timeout(LOCK_WAIT, attempt).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => Err(connect_error(e)),
        Err(_) => Err(connect_error(sea_orm::sqlx::Error::PoolTimedOut)),
    }
}

/// Starts a transaction that will write (a savepoint when `db` is already a
/// transaction). On SQLite it takes the write lock at once (`BEGIN
/// IMMEDIATE`): a deferred transaction that reads first and writes later
/// fails outright if the scheduler wrote in between. On PostgreSQL every
/// constraint is made immediate: a schema whose foreign keys are `DEFERRABLE
/// INITIALLY DEFERRED` (Django's) would otherwise report a refused record at
/// COMMIT, after its savepoint, failing every record with it (§9).
pub async fn begin_write<C>(db: &C) -> Result<DatabaseTransaction, StoreError>
where
    C: TransactionTrait<Transaction = DatabaseTransaction>,
{
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    };
    let txn = db
        .begin_with_options(options)
        .await
        .map_err(|source| StoreError::Database {
            operation: "starting a write transaction",
            source,
        })?;
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("SET CONSTRAINTS ALL IMMEDIATE")
            .await
            .map_err(|source| StoreError::Database {
                operation: "making constraints immediate",
                source,
            })?;
    }
    Ok(txn)
}
