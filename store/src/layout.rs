//! [`Layout`]: the adopted `afe_` tables as the database's catalog describes
//! them, read once at start.
//!
//! Real shard databases were created in more than one way (§9, "Schemas
//! found in deployments"): by Autotest's SQL migrations, or by Django from
//! the models, on MySQL or PostgreSQL. They differ in exactly what a
//! client must get right: datetime precision (`datetime` or
//! `datetime(6)`), time zones (`timestamp with time zone`), integer widths
//! (`smallint` priorities), text widths, `NOT NULL` without a default, and
//! which foreign keys exist and whether they are checked at once. Nothing
//! here is taken from our own migration: reading, writing and validation
//! all follow the catalog.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{NaiveDateTime, Timelike};
use sea_orm::sea_query::{Alias, Expr, Func};
use sea_orm::{
    ColumnTrait, ColumnType as OrmType, ConnectionTrait, DbBackend, EntityTrait, IdenStatic,
    Iterable, QuerySelect, Select, Statement, Value,
};
use serde::Serialize;

use crate::error::{Context, StoreError};
use crate::schema::{AFE_TABLES, TEXT_BYTES};

/// What a column holds, as far as the client cares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ColumnType {
    /// A boolean (`boolean`, or MySQL's `tinyint(1)`).
    Bool,
    /// A signed integer of `bits` bits (8, 16, 24, 32 or 64).
    Int {
        /// Width in bits.
        bits: u8,
    },
    /// A string limited in characters (`varchar(n)`, `char(n)`).
    Varchar {
        /// Characters the column holds.
        chars: u32,
    },
    /// A string limited in bytes (`text` and its MySQL siblings); unbounded
    /// text (PostgreSQL, SQLite) is held to MySQL's `text` so a record
    /// fails alike everywhere.
    Text {
        /// Bytes the column holds.
        bytes: u64,
    },
    /// A date and time.
    DateTime {
        /// Fractional digits kept: 0 (MySQL `datetime`), 6 (`datetime(6)`,
        /// PostgreSQL); `None` when the database keeps what it is given
        /// (SQLite stores text).
        precision: Option<u8>,
        /// Stored as an instant (`timestamp with time zone`): naive times
        /// go through the session's time zone.
        time_zone: bool,
    },
    /// Anything else, by its declared name.
    Other {
        /// The type as the catalog names it.
        name: String,
    },
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::Bool => f.write_str("bool"),
            ColumnType::Int { bits } => write!(f, "int{bits}"),
            ColumnType::Varchar { chars } => write!(f, "varchar({chars})"),
            ColumnType::Text { bytes } => write!(f, "text({bytes} bytes)"),
            ColumnType::DateTime {
                precision,
                time_zone,
            } => {
                f.write_str(if *time_zone {
                    "timestamptz"
                } else {
                    "datetime"
                })?;
                match precision {
                    Some(p) => write!(f, "({p})"),
                    None => f.write_str("(any)"),
                }
            }
            ColumnType::Other { name } => f.write_str(name),
        }
    }
}

/// One column of an adopted table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// What it holds.
    #[serde(flatten)]
    pub ty: ColumnType,
    /// Whether it accepts NULL.
    pub nullable: bool,
    /// Whether an insert may leave it out (a default, an auto-increment,
    /// or NULL allowed).
    pub has_default: bool,
    /// The table a foreign key on this column references, if any.
    pub references: Option<String>,
    /// Whether that foreign key is checked at COMMIT unless told otherwise
    /// (`DEFERRABLE INITIALLY DEFERRED`).
    pub deferred: bool,
    /// The character set of a MySQL string column (`latin1` on a database
    /// Autotest's migrations made, `utf8mb4` on ours).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charset: Option<String>,
    /// The collation of a MySQL string column, which decides which names
    /// are equal (`latin1_swedish_ci`, `utf8mb4_general_ci`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collation: Option<String>,
}

impl ColumnInfo {
    /// Whether the column can hold `s` at all. A latin1 column cannot hold
    /// most of Unicode, and MySQL refuses even to compare such a string
    /// with its values ("Illegal mix of collations"): asking it would fail
    /// the whole read, not the one record (§9).
    pub fn can_hold(&self, s: &str) -> bool {
        match self.charset.as_deref() {
            Some("latin1") => s.chars().all(in_latin1),
            _ => true,
        }
    }
}

/// Whether MySQL's `latin1` (Windows-1252, with its five unassigned bytes
/// kept as the C1 controls they stand for) has `c`.
fn in_latin1(c: char) -> bool {
    const CP1252: &str = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ";
    match u32::from(c) {
        0..=0x7f | 0xa0..=0xff => true,
        0x81 | 0x8d | 0x8f | 0x90 | 0x9d => true,
        0x80..=0x9f => false,
        _ => CP1252.contains(c),
    }
}

/// One adopted table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableInfo {
    /// Table name.
    pub name: String,
    /// Its columns, in the catalog's order.
    pub columns: Vec<ColumnInfo>,
}

impl TableInfo {
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The `afe_` tables of one database as its catalog describes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    /// `sqlite`, `mysql` or `postgres`.
    pub backend: &'static str,
    /// The tables found, in creation order; missing ones are absent.
    pub tables: Vec<TableInfo>,
    #[serde(skip)]
    db: DbBackend,
}

/// The table an entity's column belongs to.
fn table_of<C: ColumnTrait>() -> &'static str {
    sea_orm::EntityName::table_name(&C::EntityName::default())
}

/// One column as a catalog query reads it: (table, description).
type CatalogRow = (String, ColumnInfo);

impl Layout {
    /// Reads the `afe_` tables' columns and foreign keys from the catalog
    /// (`pragma_table_info`, `information_schema`, `pg_catalog`): three
    /// statements at most, whatever the number of tables.
    pub async fn read(db: &impl ConnectionTrait) -> Result<Layout, StoreError> {
        let backend = db.get_database_backend();
        let columns = match backend {
            DbBackend::Sqlite => sqlite_columns(db).await?,
            DbBackend::MySql => mysql_columns(db).await?,
            _ => postgres_columns(db).await?,
        };
        let foreign_keys = foreign_keys(db).await?;
        let mut by_table: BTreeMap<String, Vec<ColumnInfo>> = BTreeMap::new();
        for (table, column) in columns {
            by_table.entry(table).or_default().push(column);
        }
        for (table, column, references, deferred) in foreign_keys {
            if let Some(c) = by_table
                .get_mut(&table)
                .and_then(|cols| cols.iter_mut().find(|c| c.name == column))
            {
                c.references = Some(references);
                c.deferred = deferred;
            }
        }
        let tables = AFE_TABLES
            .iter()
            .filter_map(|&name| {
                let columns = by_table.remove(name)?;
                Some(TableInfo {
                    name: name.to_owned(),
                    columns,
                })
            })
            .collect();
        Ok(Layout {
            tables,
            ..Layout::none(backend)
        })
    }

    /// A layout that describes no table: nothing is checked and values are
    /// bound as given. For tools that build rows without a database (the
    /// bench counts the rows a response makes).
    pub fn none(backend: DbBackend) -> Layout {
        Layout {
            backend: match backend {
                DbBackend::Sqlite => "sqlite",
                DbBackend::MySql => "mysql",
                _ => "postgres",
            },
            tables: Vec::new(),
            db: backend,
        }
    }

    /// The table named `name`, if the database has it.
    pub fn table(&self, name: &str) -> Option<&TableInfo> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// The column `table.column`, if the database has it.
    pub fn column(&self, table: &str, column: &str) -> Option<&ColumnInfo> {
        self.table(table)?.column(column)
    }

    /// Whether any foreign key is checked only at COMMIT. Such a schema
    /// needs `SET CONSTRAINTS ALL IMMEDIATE` for a refused record to be
    /// found at its own statement, inside its savepoint.
    pub fn has_deferred_constraints(&self) -> bool {
        self.tables
            .iter()
            .flat_map(|t| &t.columns)
            .any(|c| c.deferred)
    }

    /// The column an entity's `column` names, if the database has it.
    pub fn column_of<C: ColumnTrait>(&self, column: C) -> Option<&ColumnInfo> {
        self.column(table_of::<C>(), column.as_str())
    }

    /// Whether `column` has a foreign key (to any table).
    pub fn has_foreign_key<C: ColumnTrait>(&self, column: C) -> bool {
        self.column_of(column)
            .is_some_and(|c| c.references.is_some())
    }

    /// `t` as `table.column` stores it: cut to the column's fractional
    /// digits rather than letting the database round it (a rounded
    /// `23:59:59.6` would move to the next day).
    pub fn datetime<C: ColumnTrait>(&self, column: C, t: Option<NaiveDateTime>) -> Value {
        let precision = match self.column_of(column).map(|c| &c.ty) {
            Some(ColumnType::DateTime { precision, .. }) => *precision,
            // Not a datetime column, or not there at all: the write fails
            // on its own terms, whatever is bound.
            _ => None,
        };
        Value::ChronoDateTime(t.map(|t| truncate(t, precision)))
    }

    /// What a row inserted with `columns` (of one table) must satisfy: every
    /// value fits its column (width, range, `NOT NULL`), and no column the
    /// insert leaves out needs a value (`NOT NULL` without a default). The
    /// columns are looked up once, for the many rows an apply checks.
    pub fn insert_check<C: ColumnTrait>(&self, columns: &[C]) -> InsertCheck<'_> {
        let Some(info) = self.table(table_of::<C>()) else {
            return InsertCheck::default();
        };
        InsertCheck {
            table: &info.name,
            columns: columns.iter().map(|c| info.column(c.as_str())).collect(),
            unwritten: info.columns.iter().find(|c| {
                !c.has_default && !columns.iter().any(|written| written.as_str() == c.name)
            }),
            nul_refused: self.db == DbBackend::Postgres,
        }
    }

    /// `SELECT` of every column of `E`, each read as the entity's type
    /// whatever the adopted column is: on PostgreSQL (whose driver is
    /// strict about types) a `smallint` read as `integer`, say, or a
    /// `timestamp with time zone` read as the session's local time.
    pub fn select<E: EntityTrait>(&self, entity: E) -> Select<E> {
        let casts: Vec<(E::Column, &'static str)> = E::Column::iter()
            .filter_map(|c| Some((c, self.read_cast(entity.table_name(), &c)?)))
            .collect();
        if casts.is_empty() {
            return E::find();
        }
        let mut select = E::find().select_only();
        for c in E::Column::iter() {
            select = match casts.iter().find(|(cast, _)| cast.as_str() == c.as_str()) {
                Some((_, ty)) => select.column_as(
                    Expr::expr(Func::cast_as(Expr::col((entity, c)), Alias::new(*ty))),
                    c.as_str(),
                ),
                None => select.column(c),
            };
        }
        select
    }

    /// The type `table.column` must be cast to for the driver to decode it
    /// as `column`'s entity type, if it must.
    fn read_cast<C: ColumnTrait>(&self, table: &str, column: &C) -> Option<&'static str> {
        if self.db != DbBackend::Postgres {
            // MySQL's and SQLite's drivers decode any integer width into
            // any Rust integer that holds it, and naive datetimes as they are.
            return None;
        }
        let found = &self.column(table, column.as_str())?.ty;
        match (column.def().get_column_type(), found) {
            (OrmType::Integer, ColumnType::Int { bits }) if *bits != 32 => Some("integer"),
            (OrmType::SmallInteger, ColumnType::Int { bits }) if *bits != 16 => Some("smallint"),
            (
                OrmType::DateTime,
                ColumnType::DateTime {
                    time_zone: true, ..
                },
            ) => Some("timestamp"),
            _ => None,
        }
    }
}

/// The checks of inserting rows into one table with one column list.
#[derive(Debug, Default)]
pub struct InsertCheck<'l> {
    table: &'l str,
    /// Each written column as the catalog describes it, in the row's order.
    columns: Vec<Option<&'l ColumnInfo>>,
    /// A column that needs a value the insert does not write.
    unwritten: Option<&'l ColumnInfo>,
    /// Whether a string may not hold a NUL byte (PostgreSQL's text types
    /// refuse it; MySQL and SQLite store it).
    nul_refused: bool,
}

impl InsertCheck<'_> {
    /// Whether a row of `values` (in the column order this was made for)
    /// can be inserted; the error names the column.
    pub fn check(&self, values: &[Value]) -> Result<(), String> {
        if let Some(missing) = self.unwritten {
            return Err(format!(
                "`{}.{}` is NOT NULL without a default, and the client never writes it",
                self.table, missing.name
            ));
        }
        for (column, value) in self.columns.iter().zip(values) {
            if let Some(c) = column {
                check_value(self.table, c, value)?;
                if self.nul_refused
                    && let Value::String(Some(s)) = value
                    && s.contains('\0')
                {
                    return Err(format!(
                        "`{}.{}` holds a NUL byte (0x00), which PostgreSQL's text cannot store",
                        self.table, c.name
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `t` cut to `precision` fractional digits (`None`: kept whole).
fn truncate(t: NaiveDateTime, precision: Option<u8>) -> NaiveDateTime {
    let Some(p) = precision else {
        return t;
    };
    let unit = 10u32.pow(9u32.saturating_sub(u32::from(p.min(9))));
    let nanos = t.nanosecond() % 1_000_000_000;
    // A leap second's nanos (>= 1e9) are kept as the whole second.
    t.with_nanosecond(nanos - nanos % unit).unwrap_or(t)
}

fn check_value(table: &str, c: &ColumnInfo, value: &Value) -> Result<(), String> {
    let name = &c.name;
    let int = match value {
        Value::Bool(v) => v.map(i64::from),
        Value::TinyInt(v) => v.map(i64::from),
        Value::SmallInt(v) => v.map(i64::from),
        Value::Int(v) => v.map(i64::from),
        Value::BigInt(v) => *v,
        Value::String(Some(s)) => return check_str(table, c, s),
        Value::String(None) | Value::ChronoDateTime(None) => None,
        Value::ChronoDateTime(Some(_)) => return Ok(()),
        _ => return Ok(()),
    };
    let Some(n) = int else {
        if c.nullable {
            return Ok(());
        }
        return Err(format!("`{table}.{name}` is null; the column is NOT NULL"));
    };
    if let ColumnType::Int { bits } = c.ty
        && (8..64).contains(&bits)
    {
        let max = (1i64 << (bits - 1)) - 1;
        if n > max || n < -max - 1 {
            return Err(format!(
                "`{table}.{name}` is {n}; the column ({}) holds {} to {max}",
                c.ty,
                -max - 1
            ));
        }
    }
    Ok(())
}

fn check_str(table: &str, c: &ColumnInfo, s: &str) -> Result<(), String> {
    let name = &c.name;
    match c.ty {
        ColumnType::Varchar { chars } => {
            let n = s.chars().count();
            if n > chars as usize {
                return Err(format!(
                    "`{table}.{name}` is {n} characters long; the column holds {chars}"
                ));
            }
        }
        ColumnType::Text { bytes } if s.len() as u64 > bytes => {
            return Err(format!(
                "`{table}.{name}` is {} bytes long; the column holds {bytes}",
                s.len()
            ));
        }
        _ => {}
    }
    Ok(())
}

/// The type a declared SQL type name (SQLite's free text, MySQL's
/// `COLUMN_TYPE`) stands for.
fn parse_declared(declared: &str, mysql: bool) -> ColumnType {
    let t = declared.trim().to_ascii_lowercase();
    let arg = || -> Option<u32> {
        let open = t.find('(')?;
        let close = t[open..].find(')')? + open;
        t[open + 1..close].split(',').next()?.trim().parse().ok()
    };
    let base = t.split(['(', ' ']).next().unwrap_or_default();
    match base {
        "bool" | "boolean" => ColumnType::Bool,
        "tinyint" if mysql && arg() == Some(1) => ColumnType::Bool,
        "tinyint" => ColumnType::Int { bits: 8 },
        "smallint" | "int2" => ColumnType::Int { bits: 16 },
        "mediumint" => ColumnType::Int { bits: 24 },
        "int" | "integer" | "int4" => ColumnType::Int { bits: 32 },
        "bigint" | "int8" => ColumnType::Int { bits: 64 },
        "varchar" | "char" | "character" | "nvarchar" | "nchar" => match arg() {
            Some(chars) => ColumnType::Varchar { chars },
            None => ColumnType::Text {
                bytes: TEXT_BYTES as u64,
            },
        },
        "tinytext" => ColumnType::Text { bytes: 255 },
        "mediumtext" => ColumnType::Text { bytes: 16_777_215 },
        "longtext" => ColumnType::Text {
            bytes: 4_294_967_295,
        },
        "text" | "clob" => ColumnType::Text {
            bytes: TEXT_BYTES as u64,
        },
        _ if base.contains("date") || base.contains("time") => ColumnType::DateTime {
            // SQLite keeps the text it is given; MySQL's `datetime(n)`
            // keeps n digits and a bare `datetime` none.
            precision: if mysql {
                Some(arg().unwrap_or(0) as u8)
            } else {
                None
            },
            time_zone: mysql && base == "timestamp",
        },
        // SQLite's type affinity: a name containing INT is an integer.
        _ if !mysql && base.contains("int") => ColumnType::Int { bits: 64 },
        _ => ColumnType::Other { name: t },
    }
}

/// The type a PostgreSQL `information_schema.columns.data_type` names.
fn parse_postgres(data_type: &str, chars: Option<i32>, precision: Option<i32>) -> ColumnType {
    match data_type {
        "boolean" => ColumnType::Bool,
        "smallint" => ColumnType::Int { bits: 16 },
        "integer" => ColumnType::Int { bits: 32 },
        "bigint" => ColumnType::Int { bits: 64 },
        "character varying" | "character" => match chars.and_then(|n| u32::try_from(n).ok()) {
            Some(chars) => ColumnType::Varchar { chars },
            None => ColumnType::Text {
                bytes: TEXT_BYTES as u64,
            },
        },
        "text" => ColumnType::Text {
            bytes: TEXT_BYTES as u64,
        },
        "timestamp without time zone" | "timestamp with time zone" => ColumnType::DateTime {
            precision: Some(precision.and_then(|p| u8::try_from(p).ok()).unwrap_or(6)),
            time_zone: data_type == "timestamp with time zone",
        },
        other => ColumnType::Other {
            name: other.to_owned(),
        },
    }
}

fn column(name: String, ty: ColumnType, nullable: bool, has_default: bool) -> ColumnInfo {
    ColumnInfo {
        name,
        ty,
        nullable,
        has_default: has_default || nullable,
        references: None,
        deferred: false,
        charset: None,
        collation: None,
    }
}

async fn rows(
    db: &impl ConnectionTrait,
    sql: &str,
) -> Result<Vec<sea_orm::QueryResult>, StoreError> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .context("reading the schema from the catalog")
}

fn get<T: sea_orm::TryGetable>(row: &sea_orm::QueryResult, i: usize) -> Result<T, StoreError> {
    row.try_get_by_index(i)
        .context("reading the schema from the catalog")
}

/// `('afe_shards', 'afe_labels', ...)`, for catalog queries.
fn table_list() -> String {
    let names: Vec<String> = AFE_TABLES.iter().map(|t| format!("'{t}'")).collect();
    format!("({})", names.join(", "))
}

async fn sqlite_columns(db: &impl ConnectionTrait) -> Result<Vec<CatalogRow>, StoreError> {
    let sql = format!(
        "SELECT m.name, p.name, p.type, p.\"notnull\", p.dflt_value IS NOT NULL, p.pk \
         FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name IN {} ORDER BY m.name, p.cid",
        table_list()
    );
    let mut out = Vec::new();
    for row in rows(db, &sql).await? {
        let declared: String = get(&row, 2)?;
        let not_null: i64 = get(&row, 3)?;
        let default: i64 = get(&row, 4)?;
        let pk: i64 = get(&row, 5)?;
        let ty = parse_declared(&declared, false);
        // An INTEGER PRIMARY KEY is the rowid: SQLite fills it in.
        out.push((
            get(&row, 0)?,
            column(
                get(&row, 1)?,
                ty,
                not_null == 0 && pk == 0,
                default != 0 || pk > 0,
            ),
        ));
    }
    Ok(out)
}

/// `(table, column, referenced table, checked at COMMIT)` of every foreign
/// key of the `afe_` tables, whatever the backend: one statement.
async fn foreign_keys(
    db: &impl ConnectionTrait,
) -> Result<Vec<(String, String, String, bool)>, StoreError> {
    // The fourth column is 1 for a key checked at COMMIT; only PostgreSQL
    // says (SQLite and MySQL check every key at its statement).
    let sql = match db.get_database_backend() {
        DbBackend::Sqlite => format!(
            "SELECT m.name, f.\"from\", f.\"table\", 0 \
             FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f \
             WHERE m.type = 'table' AND m.name IN {}",
            table_list()
        ),
        DbBackend::MySql => format!(
            "SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR), \
             CAST(REFERENCED_TABLE_NAME AS CHAR), 0 \
             FROM information_schema.KEY_COLUMN_USAGE \
             WHERE TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL \
             AND TABLE_NAME IN {}",
            table_list()
        ),
        _ => format!(
            "SELECT t.relname::text, a.attname::text, r.relname::text, \
             CASE WHEN c.condeferred THEN 1 ELSE 0 END \
             FROM pg_constraint c \
             JOIN pg_class t ON t.oid = c.conrelid \
             JOIN pg_class r ON r.oid = c.confrelid \
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
             WHERE c.contype = 'f' AND t.relnamespace = current_schema()::regnamespace \
             AND t.relname::text IN {}",
            table_list()
        ),
    };
    let mut out = Vec::new();
    for row in rows(db, &sql).await? {
        let deferred: i32 = get(&row, 3)?;
        out.push((get(&row, 0)?, get(&row, 1)?, get(&row, 2)?, deferred != 0));
    }
    Ok(out)
}

async fn mysql_columns(db: &impl ConnectionTrait) -> Result<Vec<CatalogRow>, StoreError> {
    // Every value as text: MySQL 8 reports some catalog columns as binary.
    let sql = format!(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR), CAST(COLUMN_TYPE AS CHAR), \
         IS_NULLABLE = 'YES', (COLUMN_DEFAULT IS NOT NULL OR EXTRA LIKE '%auto_increment%'), \
         CAST(CHARACTER_SET_NAME AS CHAR), CAST(COLLATION_NAME AS CHAR) \
         FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN {} \
         ORDER BY TABLE_NAME, ORDINAL_POSITION",
        table_list()
    );
    let mut out = Vec::new();
    for row in rows(db, &sql).await? {
        let declared: String = get(&row, 2)?;
        let nullable: i64 = get(&row, 3)?;
        let default: i64 = get(&row, 4)?;
        let mut info = column(
            get(&row, 1)?,
            parse_declared(&declared, true),
            nullable != 0,
            default != 0,
        );
        info.charset = get(&row, 5)?;
        info.collation = get(&row, 6)?;
        out.push((get(&row, 0)?, info));
    }
    Ok(out)
}

async fn postgres_columns(db: &impl ConnectionTrait) -> Result<Vec<CatalogRow>, StoreError> {
    // The catalog's own domain types (sql_identifier, cardinal_number) are
    // cast to plain ones the driver decodes.
    let sql = format!(
        "SELECT table_name::text, column_name::text, data_type::text, \
         character_maximum_length::int4, datetime_precision::int4, \
         is_nullable::text = 'YES', \
         (column_default IS NOT NULL OR is_identity::text = 'YES') \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name::text IN {} \
         ORDER BY table_name, ordinal_position",
        table_list()
    );
    let mut out = Vec::new();
    for row in rows(db, &sql).await? {
        let data_type: String = get(&row, 2)?;
        let chars: Option<i32> = get(&row, 3)?;
        let precision: Option<i32> = get(&row, 4)?;
        out.push((
            get(&row, 0)?,
            column(
                get(&row, 1)?,
                parse_postgres(&data_type, chars, precision),
                get(&row, 5)?,
                get(&row, 6)?,
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_are_read_as_the_catalog_means_them() {
        assert_eq!(parse_declared("tinyint(1)", true), ColumnType::Bool);
        assert_eq!(
            parse_declared("tinyint(4)", true),
            ColumnType::Int { bits: 8 }
        );
        assert_eq!(
            parse_declared("smallint(6)", true),
            ColumnType::Int { bits: 16 }
        );
        assert_eq!(
            parse_declared("int(11)", true),
            ColumnType::Int { bits: 32 }
        );
        assert_eq!(
            parse_declared("varchar(750)", true),
            ColumnType::Varchar { chars: 750 }
        );
        assert_eq!(
            parse_declared("datetime(6)", true),
            ColumnType::DateTime {
                precision: Some(6),
                time_zone: false
            }
        );
        assert_eq!(
            parse_declared("datetime", true),
            ColumnType::DateTime {
                precision: Some(0),
                time_zone: false
            }
        );
        assert_eq!(
            parse_declared("datetime_text", false),
            ColumnType::DateTime {
                precision: None,
                time_zone: false
            }
        );
        assert_eq!(
            parse_declared("integer", false),
            ColumnType::Int { bits: 32 }
        );
        assert_eq!(
            parse_declared("mediumtext", true),
            ColumnType::Text { bytes: 16_777_215 }
        );
    }

    #[test]
    fn datetimes_are_cut_to_the_column_precision_never_rounded() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 11, 29)
            .and_then(|d| d.and_hms_nano_opt(23, 59, 59, 987_654_321))
            .unwrap_or_default();
        assert_eq!(truncate(t, Some(0)).nanosecond(), 0);
        assert_eq!(truncate(t, Some(3)).nanosecond(), 987_000_000);
        assert_eq!(truncate(t, Some(6)).nanosecond(), 987_654_000);
        assert_eq!(truncate(t, None), t);
    }

    #[test]
    fn values_are_checked_against_the_adopted_column() {
        let small = column(
            "priority".into(),
            ColumnType::Int { bits: 16 },
            false,
            false,
        );
        assert!(check_value("afe_jobs", &small, &Value::Int(Some(32_767))).is_ok());
        let err = check_value("afe_jobs", &small, &Value::Int(Some(40_000))).unwrap_err();
        assert_eq!(
            err,
            "`afe_jobs.priority` is 40000; the column (int16) holds -32768 to 32767"
        );
        let err = check_value("afe_jobs", &small, &Value::Int(None)).unwrap_err();
        assert_eq!(err, "`afe_jobs.priority` is null; the column is NOT NULL");
        let reason = column(
            "lock_reason".into(),
            ColumnType::Varchar { chars: 255 },
            true,
            true,
        );
        assert!(check_value("afe_hosts", &reason, &Value::String(None)).is_ok());
        let long = Value::String(Some("x".repeat(256)));
        assert_eq!(
            check_value("afe_hosts", &reason, &long).unwrap_err(),
            "`afe_hosts.lock_reason` is 256 characters long; the column holds 255"
        );
    }
}
