//! Chunked writes: each multi-row statement stays under the backend's
//! bind-parameter limit and [`MAX_STATEMENT_BYTES`], so the number of
//! statements grows with chunks, not with rows. Apply, the reference
//! master and the bench's floor write through these.

use sea_orm::sea_query::{self, Expr, ExprTrait, IntoIden, OnConflict, Query};
use sea_orm::{
    ConnectionTrait, DbErr, EntityTrait, IdenStatic, Iterable, ModelTrait, PrimaryKeyToColumn,
    Statement, Value,
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
///
/// The rows of a chunk are kept as one flat list of values, and the SQL
/// text of a chunk is built once per number of rows ([`Texts`]): a big
/// apply is many full chunks of one table, and building each of them
/// through sea-query's expression tree (every value moved into an
/// expression, rendered, cloned out again) was 30% of the inserts' work
/// on our side, over a working set bigger than the CPU's cache once the
/// chunks are full, which made a job dearer the bigger the lab.
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
    let mut texts = Texts::default();
    let mut pending = Chunk::default();
    let mut bytes = 0;
    for row in rows {
        let row = values(row);
        let size: usize = row.iter().map(value_bytes).sum();
        let full = pending.rows == per_statement;
        if full || (pending.rows > 0 && bytes + size > MAX_STATEMENT_BYTES) {
            let chunk = std::mem::take(&mut pending);
            insert_statement(db, table, columns, chunk, upsert, &mut texts).await?;
            bytes = 0;
        }
        bytes += size;
        pending.push(row, columns.len());
    }
    if pending.rows > 0 {
        insert_statement(db, table, columns, pending, upsert, &mut texts).await?;
    }
    Ok(())
}

/// The rows of one statement, as one list of values in row order.
#[derive(Default)]
struct Chunk {
    values: Vec<Value>,
    rows: usize,
    /// The length of the first row that had not one value per column:
    /// sea-query refuses such a statement, and so does this one.
    misfit: Option<usize>,
}

impl Chunk {
    fn push(&mut self, row: Vec<Value>, columns: usize) {
        if self.misfit.is_none() && row.len() != columns {
            self.misfit = Some(row.len());
        }
        self.values.extend(row);
        self.rows += 1;
    }
}

/// The SQL text of the last statement built for one table, by its number
/// of rows: the statements of a chunked insert differ only in their
/// values, and only the last chunk in its number of rows.
#[derive(Default)]
struct Texts {
    last: Option<(usize, String)>,
}

impl Texts {
    fn get(&self, rows: usize) -> Option<&str> {
        match &self.last {
            Some((n, sql)) if *n == rows => Some(sql),
            _ => None,
        }
    }
}

/// One `INSERT` of `chunk`, with an upsert clause if `upsert` says so.
/// Its text is reused from `texts` when a chunk of as many rows was built
/// before, and otherwise built by sea-query, and kept there if sea-query
/// made every value of the chunk a parameter.
async fn insert_statement<E, C>(
    db: &impl ConnectionTrait,
    table: E,
    columns: &[C],
    chunk: Chunk,
    upsert: Option<(&[C], &[C])>,
    texts: &mut Texts,
) -> Result<(), DbErr>
where
    E: EntityTrait,
    C: IntoIden + Copy,
{
    if let Some(val_len) = chunk.misfit {
        let e = sea_query::error::Error::ColValNumMismatch {
            col_len: columns.len(),
            val_len,
        };
        return Err(DbErr::Custom(format!("building an insert: {e}")));
    }
    let backend = db.get_database_backend();
    if let Some(sql) = texts.get(chunk.rows) {
        let stmt = Statement::from_sql_and_values(backend, sql, chunk.values);
        return db.execute_raw(stmt).await.map(|_| ());
    }
    let mut stmt = Query::insert();
    stmt.into_table(table).columns(columns.iter().copied());
    let values = chunk.values.len();
    let mut rest = chunk.values.into_iter();
    for _ in 0..chunk.rows {
        let row = rest.by_ref().take(columns.len()).map(Expr::from);
        stmt.values(row)
            .map_err(|e| DbErr::Custom(format!("building an insert: {e}")))?;
    }
    if let Some((key, rest)) = upsert {
        stmt.on_conflict(
            OnConflict::columns(key.iter().copied())
                .update_columns(rest.iter().copied())
                .to_owned(),
        );
    }
    let built = backend.build(&stmt);
    // Every value a parameter (none written into the text): the text then
    // takes any chunk of as many rows, whose values sea-query would bind
    // in the same order, row by row.
    if built
        .values
        .as_ref()
        .is_some_and(|bound| bound.0.len() == values)
    {
        texts.last = Some((chunk.rows, built.sql.clone()));
    }
    db.execute_raw(built).await.map(|_| ())
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
