//! Throw-away databases for the bench and chaos runs: fresh, migrated,
//! uniquely named, dropped when done so disk use stays bounded.

use std::any::Any;

use anyhow::{Context, Result, anyhow};
use shard_store::testing::{Backend, TestDb};

/// The name of a backend as the bench prints it and keys its JSON.
pub fn name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::MySql => "mysql",
        Backend::Postgres => "postgres",
    }
}

/// Whether the backend's server is configured here (SQLite always is).
pub fn configured(backend: Backend) -> bool {
    match backend.env_var() {
        None => true,
        Some(var) => std::env::var(var).is_ok_and(|url| !url.trim().is_empty()),
    }
}

/// A fresh database with the AFE schema. [`TestDb`] panics when a server
/// is configured but unusable; that panic becomes an error here.
pub async fn fresh(backend: Backend) -> Result<TestDb> {
    tokio::spawn(TestDb::migrated(backend))
        .await
        .map_err(|e| match e.try_into_panic() {
            Ok(panic) => anyhow!(
                "cannot create a {} database: {}",
                name(backend),
                panic_message(panic.as_ref())
            ),
            Err(e) => anyhow!("creating a {} database failed: {e}", name(backend)),
        })?
        .with_context(|| match backend.env_var() {
            Some(var) => format!("{} is not configured: set {var}", name(backend)),
            None => format!("cannot create a {} database", name(backend)),
        })
}

/// Closes the database's pool, then drops the database (or deletes its
/// file). Dropping a server database blocks, so it runs off the runtime's
/// worker threads.
pub async fn discard(db: TestDb) -> Result<()> {
    db.store
        .clone()
        .close()
        .await
        .context("closing a throw-away database")?;
    tokio::task::spawn_blocking(move || drop(db))
        .await
        .context("dropping a throw-away database")
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        "panicked".to_owned()
    }
}
