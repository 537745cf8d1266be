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

/// Query parameters that carry a secret in a database URL: libpq's
/// `password` and `sslpassword`, and the spellings MySQL drivers and
/// connection strings use.
const SECRET_PARAMETERS: [&str; 6] = ["password", "pass", "passwd", "pwd", "sslpassword", "secret"];

/// `url` fit to print: the password of its user-info and the value of every
/// secret query parameter (`password=`, `sslpassword=`, ...) replaced by
/// `***`, the rest as given. One function for the whole workspace, built on
/// a URL parser rather than on string splitting; a URL it cannot parse is
/// not printed at all beyond its scheme.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
        return format!("{scheme}://(a URL that does not parse; not shown)");
    };
    let secret = |name: &str| {
        SECRET_PARAMETERS
            .iter()
            .any(|secret| name.eq_ignore_ascii_case(secret))
    };
    let query_secret = parsed.query_pairs().any(|(name, _)| secret(&name));
    if parsed.password().is_none() && !query_secret {
        // Nothing to hide: the URL exactly as the operator wrote it.
        return url.to_owned();
    }
    if parsed.password().is_some() {
        // Fails only for URLs that cannot have a password at all.
        let _ = parsed.set_password(Some("***"));
    }
    if query_secret {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let value = if secret(&name) { "***".into() } else { value };
                (name.into_owned(), value.into_owned())
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
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

    #[test]
    fn secret_query_parameters_are_hidden_whatever_their_case() {
        assert_eq!(
            redact_url("postgres://afe@127.0.0.1:1/db?password=hunter2"),
            "postgres://afe@127.0.0.1:1/db?password=***"
        );
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=require&SSLPassword=k3y&pass=x"),
            "postgres://u@h/db?sslmode=require&SSLPassword=***&pass=***"
        );
        assert_eq!(
            redact_url("mysql://u:pw@h/db?pwd=a&passwd=b&secret=c&timeout=5"),
            "mysql://u:***@h/db?pwd=***&passwd=***&secret=***&timeout=5"
        );
    }

    #[test]
    fn a_url_that_does_not_parse_is_not_shown() {
        let shown = redact_url("postgres://u:hunter2@[::1/db");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.starts_with("postgres://"), "{shown}");
    }
}
