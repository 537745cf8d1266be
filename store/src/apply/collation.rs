//! Names compared as the database compares them (§9: "Names compare as
//! the database's collation says"). A record's labels, users, attributes
//! and keyvals are found by name; the plan matches names in memory, and it
//! must find the same rows the original's `WHERE name = ?` finds.
//!
//! SQLite's `BINARY` and PostgreSQL's deterministic collations call two
//! names equal only when they are the same string. MySQL's and MariaDB's
//! usual collations do not (`Serial` = `serial`, `board:a ` = `board:a`,
//! `é` = `e` under `utf8mb4_general_ci`), and no rule short of the server's
//! own tables says which names meet. So on MySQL the server is asked: each
//! name's key is its collation weight (`WEIGHT_STRING`), trailing spaces
//! dropped first where the collation pads with spaces, and names with equal
//! keys are one name. The project never folds case itself.

use std::collections::{BTreeSet, HashMap};

use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

use crate::error::{Context, StoreError};
use crate::layout::{ColumnInfo, Layout};
use crate::schema::entity::{attributes, keyvals, labels, users};

/// A column a record's objects are looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum NameColumn {
    LabelName,
    Login,
    Attribute,
    KeyvalKey,
}

impl NameColumn {
    const ALL: [NameColumn; 4] = [
        NameColumn::LabelName,
        NameColumn::Login,
        NameColumn::Attribute,
        NameColumn::KeyvalKey,
    ];

    /// The column as the database has it, if it does.
    fn info(self, layout: &Layout) -> Option<&ColumnInfo> {
        match self {
            NameColumn::LabelName => layout.column_of(labels::Column::Name),
            NameColumn::Login => layout.column_of(users::Column::Login),
            NameColumn::Attribute => layout.column_of(attributes::Column::Attribute),
            NameColumn::KeyvalKey => layout.column_of(keyvals::Column::Key),
        }
    }
}

/// Names a batch mentions, per column.
pub(crate) type Names<'n> = HashMap<NameColumn, BTreeSet<&'n str>>;

/// Names per column to a string that is equal exactly when the database
/// finds the names equal. Empty where names are keys of themselves.
#[derive(Debug, Default)]
pub(crate) struct Collation {
    keys: HashMap<NameColumn, HashMap<String, String>>,
}

/// Names whose keys one statement asks for: each is one `SELECT` of a
/// `UNION ALL`, which keeps the statement small.
const NAMES_PER_STATEMENT: usize = 500;

impl Collation {
    /// The key of `name` in `column`.
    pub(crate) fn key<'s>(&'s self, column: NameColumn, name: &'s str) -> &'s str {
        self.keys
            .get(&column)
            .and_then(|keys| keys.get(name))
            .map_or(name, String::as_str)
    }

    /// Whether `a` and `b` are one name in `column`.
    pub(crate) fn same(&self, column: NameColumn, a: &str, b: &str) -> bool {
        a == b || self.key(column, a) == self.key(column, b)
    }

    /// Asks the database for the keys of `names` (on MySQL/MariaDB only):
    /// one statement per [`NAMES_PER_STATEMENT`] names.
    pub(crate) async fn read(
        db: &impl ConnectionTrait,
        layout: &Layout,
        names: &Names<'_>,
    ) -> Result<Collation, StoreError> {
        let mut collation = Collation::default();
        if db.get_database_backend() != DbBackend::MySql {
            return Ok(collation);
        }
        // (column, name, the SQL of its key), for every name to ask about.
        let mut asked: Vec<(NameColumn, &str, &str)> = Vec::new();
        let weights: Vec<(NameColumn, &ColumnInfo, String)> = NameColumn::ALL
            .into_iter()
            .filter_map(|column| {
                let info = column.info(layout)?;
                Some((column, info, weight_expression(info)?))
            })
            .collect();
        for (column, info, weight) in &weights {
            let Some(wanted) = names.get(column) else {
                continue;
            };
            let keys = collation.keys.entry(*column).or_default();
            for &name in wanted {
                if info.can_hold(name) {
                    asked.push((*column, name, weight));
                } else {
                    // No row holds it, and MySQL would refuse to convert
                    // it: a key of itself, marked so it meets no weight.
                    keys.insert(name.to_owned(), format!("\u{1}{name}"));
                }
            }
        }
        for chunk in asked.chunks(NAMES_PER_STATEMENT) {
            let sql = (chunk.iter().enumerate())
                .map(|(i, (_, _, weight))| format!("SELECT {i}, {weight}"))
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            let values: Vec<Value> = chunk.iter().map(|&(_, name, _)| name.into()).collect();
            let rows = db
                .query_all_raw(Statement::from_sql_and_values(
                    DbBackend::MySql,
                    sql,
                    values,
                ))
                .await
                .context("asking the database how it compares names")?;
            for row in rows {
                let i: i64 = row
                    .try_get_by_index(0)
                    .context("reading a name's collation key")?;
                let key: Option<String> = row
                    .try_get_by_index(1)
                    .context("reading a name's collation key")?;
                let asked = usize::try_from(i).ok().and_then(|i| chunk.get(i));
                if let (Some(&(column, name, _)), Some(key)) = (asked, key) {
                    let keys = collation.keys.entry(column).or_default();
                    keys.insert(name.to_owned(), format!("\u{0}{key}"));
                }
            }
        }
        Ok(collation)
    }
}

/// The SQL that turns the bound name `?` into its key under the column's
/// collation, or `None` when the column compares bytes (no collation, or
/// `binary`).
fn weight_expression(info: &ColumnInfo) -> Option<String> {
    let collation = info.collation.as_deref()?;
    let charset = info.charset.as_deref()?;
    let plain = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if collation == "binary" || !plain(collation) || !plain(charset) {
        return None;
    }
    let value = format!("CONVERT(? USING {charset}) COLLATE {collation}");
    // MariaDB's `_nopad_` and MySQL 8's `_0900_` collations keep trailing
    // spaces; every other one compares as if the shorter name were padded.
    let no_pad = collation.contains("_nopad") || collation.contains("_0900_");
    let value = if no_pad {
        value
    } else {
        format!("TRIM(TRAILING ' ' FROM {value})")
    };
    Some(format!("HEX(WEIGHT_STRING({value}))"))
}
