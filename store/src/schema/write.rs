//! Chunked writes: each multi-row statement stays under the backend's
//! bind-parameter limit and [`MAX_STATEMENT_BYTES`], so the number of
//! statements grows with chunks, not with rows. Apply, the reference
//! master and the bench's floor write through these.

use sea_orm::sea_query::{Expr, ExprTrait, IntoIden, OnConflict, Query};
use sea_orm::{
    ConnectionTrait, DbErr, EntityTrait, IdenStatic, Iterable, ModelTrait, PrimaryKeyToColumn,
    Value,
};

use crate::schema::chunk::{self, MAX_STATEMENT_BYTES};
use crate::schema::convert::storable;

/// Roughly how many bytes a value adds to a statement.
pub fn value_bytes(v: &Value) -> usize {
    match v {
        Value::String(Some(s)) => s.len() + 2,
        _ => 8,
    }
}

/// `INSERT INTO table (columns) VALUES (…), (…), …`, chunked by bind
/// parameters and by bytes.
pub async fn insert<E, C, R>(
    db: &impl ConnectionTrait,
    table: E,
    columns: &[C],
    rows: &[R],
    values: impl Fn(&R) -> Vec<Value>,
) -> Result<(), DbErr>
where
    E: EntityTrait,
    C: IntoIden + Copy,
{
    insert_chunked(db, table, columns, rows, values, None).await
}

/// Writes whole rows by primary key, as Django's `save()` of a whole model
/// does: inserted when the key is new, every other column overwritten when
/// it exists. Every column of the entity, chunked as [`insert`] is; times
/// as the backend stores them without rounding.
pub async fn upsert_models<E>(db: &impl ConnectionTrait, models: &[&E::Model]) -> Result<(), DbErr>
where
    E: EntityTrait,
    E::Model: ModelTrait<Entity = E>,
{
    let backend = db.get_database_backend();
    let columns: Vec<E::Column> = E::Column::iter().collect();
    let key: Vec<E::Column> = E::PrimaryKey::iter().map(|k| k.into_column()).collect();
    let rest: Vec<E::Column> = columns
        .iter()
        .filter(|c| !key.iter().any(|k| k.as_str() == c.as_str()))
        .copied()
        .collect();
    let values = |m: &&E::Model| -> Vec<Value> {
        columns
            .iter()
            .map(|c| match m.get(*c) {
                Value::ChronoDateTime(t) => Value::ChronoDateTime(storable(backend, t)),
                v => v,
            })
            .collect()
    };
    insert_chunked(
        db,
        E::default(),
        &columns,
        models,
        values,
        Some((&key, &rest)),
    )
    .await
}

/// [`insert`], or with `upsert` = (key, rest) an upsert on the key
/// columns overwriting the rest.
async fn insert_chunked<E, C, R>(
    db: &impl ConnectionTrait,
    table: E,
    columns: &[C],
    rows: &[R],
    values: impl Fn(&R) -> Vec<Value>,
    upsert: Option<(&[C], &[C])>,
) -> Result<(), DbErr>
where
    E: EntityTrait,
    C: IntoIden + Copy,
{
    let per_statement =
        (chunk::max_params(db.get_database_backend()) / columns.len().max(1)).max(1);
    let mut pending = Vec::new();
    let mut bytes = 0;
    for row in rows {
        let row = values(row);
        let size: usize = row.iter().map(value_bytes).sum();
        if pending.len() == per_statement
            || (!pending.is_empty() && bytes + size > MAX_STATEMENT_BYTES)
        {
            let rows = std::mem::take(&mut pending);
            insert_statement(db, table, columns, rows, upsert).await?;
            bytes = 0;
        }
        bytes += size;
        pending.push(row);
    }
    if !pending.is_empty() {
        insert_statement(db, table, columns, pending, upsert).await?;
    }
    Ok(())
}

/// One `INSERT` of `rows`, with an upsert clause if `upsert` says so.
async fn insert_statement<E, C>(
    db: &impl ConnectionTrait,
    table: E,
    columns: &[C],
    rows: Vec<Vec<Value>>,
    upsert: Option<(&[C], &[C])>,
) -> Result<(), DbErr>
where
    E: EntityTrait,
    C: IntoIden + Copy,
{
    let mut stmt = Query::insert();
    stmt.into_table(table).columns(columns.iter().copied());
    for row in rows {
        stmt.values(row.into_iter().map(Expr::from))
            .map_err(|e| DbErr::Custom(format!("building an insert: {e}")))?;
    }
    if let Some((key, rest)) = upsert {
        stmt.on_conflict(
            OnConflict::columns(key.iter().copied())
                .update_columns(rest.iter().copied())
                .to_owned(),
        );
    }
    db.execute(&stmt).await.map(|_| ())
}

/// [`insert`] of (a, b) pairs: the rows of a link table.
pub async fn insert_links<E, C>(
    db: &impl ConnectionTrait,
    table: E,
    columns: [C; 2],
    pairs: &[(i32, i32)],
) -> Result<(), DbErr>
where
    E: EntityTrait,
    C: IntoIden + Copy,
{
    insert(db, table, &columns, pairs, |&(a, b)| {
        vec![a.into(), b.into()]
    })
    .await
}

/// `DELETE FROM table WHERE column IN (…)`, chunked.
pub async fn delete_in<E: EntityTrait>(
    db: &impl ConnectionTrait,
    table: E,
    column: E::Column,
    keys: &[i32],
) -> Result<(), DbErr> {
    for chunk in chunk::by_params(db.get_database_backend(), 1, keys) {
        let stmt = Query::delete()
            .from_table(table)
            .and_where(Expr::col(column).is_in(chunk.iter().copied()))
            .to_owned();
        db.execute(&stmt).await?;
    }
    Ok(())
}

/// `UPDATE table SET column = value WHERE key IN (…)`, chunked.
pub async fn update_to<E: EntityTrait>(
    db: &impl ConnectionTrait,
    table: E,
    column: E::Column,
    value: Value,
    key: E::Column,
    keys: &[i32],
) -> Result<(), DbErr> {
    for chunk in chunk::by_params(db.get_database_backend(), 1, keys) {
        let stmt = Query::update()
            .table(table)
            .value(column, value.clone())
            .and_where(Expr::col(key).is_in(chunk.iter().copied()))
            .to_owned();
        db.execute(&stmt).await?;
    }
    Ok(())
}

/// Sets `column` per row: `SET column = value WHERE id IN (…)` when a chunk
/// shares one value (the usual case: one shard id, one flag), else one
/// `SET column = CASE WHEN id = ? THEN ? … END WHERE id IN (…)`.
pub async fn update_by_id<E, V>(
    db: &impl ConnectionTrait,
    table: E,
    column: E::Column,
    id: E::Column,
    changes: &[(i32, V)],
) -> Result<(), DbErr>
where
    E: EntityTrait,
    V: Into<Value> + Clone + PartialEq,
{
    for chunk in chunk::by_params(db.get_database_backend(), 3, changes) {
        let Some((_, first)) = chunk.first() else {
            continue;
        };
        let ids = chunk.iter().map(|(i, _)| *i);
        let value: Expr = if chunk.iter().all(|(_, v)| v == first) {
            Expr::val(first.clone().into())
        } else {
            let mut case = Expr::case(Expr::col(id).eq(chunk[0].0), chunk[0].1.clone().into());
            for (i, v) in &chunk[1..] {
                case = case.case(Expr::col(id).eq(*i), v.clone().into());
            }
            case.into()
        };
        let stmt = Query::update()
            .table(table)
            .value(column, value)
            .and_where(Expr::col(id).is_in(ids))
            .to_owned();
        db.execute(&stmt).await?;
    }
    Ok(())
}
