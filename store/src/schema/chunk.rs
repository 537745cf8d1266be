//! Cutting work into statements: every multi-row statement stays under the
//! backend's bind-parameter limit and a size that any server accepts, so the
//! number of statements grows with chunks, not with rows.

use sea_orm::DbBackend;

/// Bind parameters one statement may carry: SQLite's limit is 32,766, the
/// MySQL and PostgreSQL protocols' 65,535. A little headroom is kept.
pub fn max_params(backend: DbBackend) -> usize {
    match backend {
        DbBackend::Sqlite => 32_000,
        _ => 65_000,
    }
}

/// Bytes of bound text one statement may carry, well under MySQL's default
/// `max_allowed_packet` (16 MiB on MariaDB, 64 MiB on MySQL 8).
pub const MAX_STATEMENT_BYTES: usize = 4 << 20;

/// Splits `items` into chunks of at most `max_params / params_each` items.
pub fn by_params<T>(
    backend: DbBackend,
    params_each: usize,
    items: &[T],
) -> impl Iterator<Item = &[T]> {
    let per_chunk = (max_params(backend) / params_each.max(1)).max(1);
    items.chunks(per_chunk)
}
