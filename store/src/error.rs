//! The store's error type, and the line between a record's fault and the
//! database's.

use sea_orm::{DbErr, RuntimeErr};

/// Everything the store can fail with. Every variant is a database failure
/// for the heartbeat (`failure_type="database"`); per-record faults are not
/// errors but [`shard_model::Rejected`] entries in an apply report.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no backend we speak.
    #[error(
        "unsupported database URL `{url}`: expected sqlite://PATH, mysql://USER@HOST/DB or postgres://USER@HOST/DB"
    )]
    UnsupportedUrl {
        /// The URL with any password replaced by `***`.
        url: String,
    },
    /// The database could not be reached or refused the login.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL with any password replaced by `***`.
        url: String,
        /// The driver's error.
        #[source]
        source: DbErr,
    },
    /// PostgreSQL does not know the configured time zone.
    #[error("database_time_zone `{zone}` is not a time zone the database knows: {source}")]
    TimeZone {
        /// The zone as configured.
        zone: String,
        /// The database's refusal.
        #[source]
        source: DbErr,
    },
    /// Creating or adopting the schema failed.
    #[error("cannot create or adopt the AFE schema: {0}")]
    Migrate(#[source] DbErr),
    /// A statement failed for a reason that is not one record's fault (the
    /// server went away, a lock timed out, the disk is full).
    #[error("database error while {operation}: {source}")]
    Database {
        /// What the store was doing, e.g. "reading known job ids".
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: DbErr,
    },
}

/// Attaches what the store was doing to a driver error.
pub(crate) trait Context<T> {
    fn context(self, operation: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, DbErr> {
    fn context(self, operation: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database { operation, source })
    }
}

/// Whether a failed statement was caused by the data it wrote (a constraint,
/// a value the column refuses) rather than by the database being unwell or
/// misconfigured (gone away, locked, out of space, permission denied).
///
/// Only the former may be pinned on a record and isolated; anything else
/// must fail the heartbeat, or a server that went away mid-apply would get
/// every record rejected as bad.
pub(crate) fn is_record_error(err: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(db) = &**e else {
        return false;
    };
    let state = db.code().unwrap_or_default();
    if db
        .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
        .is_some()
    {
        // SQLITE_TOOBIG, SQLITE_CONSTRAINT, SQLITE_MISMATCH, SQLITE_RANGE,
        // compared on the primary code (the low byte of an extended code).
        let code = state.parse::<i32>().unwrap_or(0);
        return matches!(code & 0xff, 18 | 19 | 20 | 25);
    }
    let class = state.get(..2).unwrap_or_default();
    if let Some(mysql) = db.try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>() {
        // SQLSTATE classes 22 (data) and 23 (integrity), a trigger's SIGNAL
        // (45), and the "general error" numbers that are about a value:
        // 1366 incorrect string value (say, for a latin1 column), 1300
        // invalid character string, 3988 conversion failed.
        return matches!(class, "22" | "23" | "45") || matches!(mysql.number(), 1366 | 1300 | 3988);
    }
    // PostgreSQL: data exceptions (22), integrity violations (23) and a
    // trigger's RAISE (P0).
    matches!(class, "22" | "23" | "P0")
}

/// Replaces the password of a database URL by `***`, for messages and logs.
///
/// Passwords are often written unencoded and may hold `@`, `/` or `?`, so
/// the user part runs from the scheme to the *last* `@`. When in doubt this
/// hides too much, never too little.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_survive_redaction() {
        assert_eq!(
            redact_url("mysql://afe:s3cr@t@db.lab:3306/chromeos_autotest_db"),
            "mysql://afe:***@db.lab:3306/chromeos_autotest_db"
        );
        assert_eq!(
            redact_url("postgres://u:p@h/db?sslmode=require"),
            "postgres://u:***@h/db?sslmode=require"
        );
        assert_eq!(
            redact_url("mysql://root@127.0.0.1/db"),
            "mysql://root@127.0.0.1/db"
        );
        assert_eq!(
            redact_url("sqlite://shard.db?mode=rwc"),
            "sqlite://shard.db?mode=rwc"
        );
    }
}
