//! Log setup: `RUST_LOG` filtering (default `info`), human or JSON lines,
//! to stderr so that `status` output on stdout stays clean.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// What is logged when `RUST_LOG` is not set: events at info.
const DEFAULT_FILTER: &str = "info";

/// Targets that trace values holding secrets, capped whatever `RUST_LOG`
/// asks: sea-orm's drivers trace their connect options, database URL and
/// password included; sqlx warns of a URL parameter it does not know with
/// its value (libpq's `sslpassword`, say).
const SECRET_BEARING: [&str; 3] = [
    "sea_orm::driver=debug",
    "sea_orm::database=debug",
    "sqlx_postgres::options::parse=error",
];

/// Installs the global subscriber.
pub fn init(format: LogFormat) {
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    for directive in SECRET_BEARING {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (in tests) is harmless: the first subscriber stays.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
