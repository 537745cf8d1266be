//! Chunked reads: `IN` lists cut to the backend's bind-parameter limit,
//! one statement per chunk, whatever the number of keys.

use std::collections::BTreeSet;
use std::str::FromStr;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TryGetableMany, Value,
};

use crate::schema::chunk;

/// `SELECT columns FROM E WHERE key IN (keys)`, one statement per chunk,
/// ordered by id so that lists (attributes, keyvals) keep their row order.
pub async fn select_in<E, T, K>(
    db: &impl ConnectionTrait,
    keys: &BTreeSet<K>,
    key: E::Column,
    columns: impl IntoIterator<Item = E::Column> + Clone,
) -> Result<Vec<T>, DbErr>
where
    E: EntityTrait,
    T: TryGetableMany + Send,
    K: Into<Value> + Clone,
{
    let keys: Vec<K> = keys.iter().cloned().collect();
    let mut rows = Vec::new();
    for chunk in chunk::by_params(db.get_database_backend(), 1, &keys) {
        let mut select = E::find().select_only();
        for c in columns.clone() {
            select = select.column(c);
        }
        if let Ok(id) = E::Column::from_str("id") {
            select = select.order_by_asc(id);
        }
        rows.extend(
            select
                .filter(key.is_in(chunk.iter().cloned()))
                .into_tuple::<T>()
                .all(db)
                .await?,
        );
    }
    Ok(rows)
}

/// `SELECT * FROM E WHERE column IN (keys) ORDER BY order`, one statement
/// per chunk (each chunk in order).
pub async fn models_in<E: EntityTrait>(
    db: &impl ConnectionTrait,
    column: E::Column,
    order: E::Column,
    keys: &BTreeSet<i32>,
) -> Result<Vec<E::Model>, DbErr> {
    let keys: Vec<i32> = keys.iter().copied().collect();
    let mut out = Vec::new();
    for chunk in chunk::by_params(db.get_database_backend(), 1, &keys) {
        out.extend(
            E::find()
                .filter(column.is_in(chunk.iter().copied()))
                .order_by_asc(order)
                .all(db)
                .await?,
        );
    }
    Ok(out)
}
