//! Creates the `afe_` tables of §9 that are missing, with their keys, unique
//! constraints, foreign keys and the indexes the shard client's queries use.
//! A table that exists is adopted untouched: never altered, converted or
//! dropped, and nothing else is added to the database (no bookkeeping
//! table: the schema is Autotest's and fixed, so there is one "migration").
//!
//! Types follow Autotest's MySQL schema (`tinyint(1)` booleans, `smallint`
//! enums, `run_reset` as `smallint`); PostgreSQL gets real `boolean`s and
//! identity columns `BY DEFAULT` (master ids are inserted explicitly).
//! MySQL tables are InnoDB, utf8mb4 with the DYNAMIC row format that the
//! 750-character unique label name needs.

use sea_orm::sea_query::{
    ColumnDef, ForeignKey, Index, IndexCreateStatement, TableCreateStatement,
};
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, EntityTrait, IdenStatic, Iterable, PrimaryKeyToColumn,
};

use crate::layout::Layout;
use crate::schema::entity::{
    attributes, group_hosts, group_users, groups, host_labels, hosts, hqes, job_labels, jobs,
    keyvals, labels, shard_labels, shards, users,
};
use crate::schema::{EMAIL_LIST, LABEL_NAME, NAME, SHORT_NAME, VALUE};

/// Creates the tables `layout` (the catalog as read) lacks, parents first,
/// each with its indexes, and returns their names. On MySQL, which commits
/// each DDL statement on its own, a failure leaves the tables created so
/// far and the next start creates the rest; elsewhere the caller runs this
/// in a transaction.
pub(crate) async fn create_missing(
    db: &impl ConnectionTrait,
    layout: &Layout,
) -> Result<Vec<&'static str>, DbErr> {
    let mut created = Vec::new();
    for table in tables(db.get_database_backend()) {
        if layout.table(table.name).is_some() {
            continue;
        }
        db.execute(&table.create).await?;
        for index in &table.indexes {
            db.execute(index).await?;
        }
        created.push(table.name);
    }
    Ok(created)
}

/// One table to create, with the indexes that are created beside it.
struct Table {
    name: &'static str,
    create: TableCreateStatement,
    indexes: Vec<IndexCreateStatement>,
}

/// Builds one table's statements with the backend's quirks applied.
struct Builder {
    backend: DbBackend,
    name: &'static str,
    create: TableCreateStatement,
    indexes: Vec<IndexCreateStatement>,
}

impl Builder {
    /// The table of `entity`, with its integer primary key.
    fn new<E: EntityTrait>(backend: DbBackend, entity: E) -> Self {
        let name = entity.table_name();
        let mut create = Table::create_statement(name);
        if backend == DbBackend::MySql {
            create
                .engine("InnoDB")
                .character_set("utf8mb4")
                .extra("ROW_FORMAT=DYNAMIC");
        }
        let mut b = Builder {
            backend,
            name,
            create,
            indexes: Vec::new(),
        };
        b.create.col(
            ColumnDef::new(key_of::<E>())
                .integer()
                .not_null()
                .auto_increment()
                .primary_key(),
        );
        b
    }

    fn col(mut self, def: &mut ColumnDef) -> Self {
        self.create.col(def);
        self
    }

    /// A boolean; `run_reset` is the one Autotest stores as `smallint`.
    fn bool_col(self, column: impl IdenStatic, null: bool) -> Self {
        let mut def = ColumnDef::new(column.as_str());
        def.boolean();
        nullability(&mut def, null);
        self.col(&mut def)
    }

    fn smallint_bool(self, column: impl IdenStatic) -> Self {
        let mut def = ColumnDef::new(column.as_str());
        if self.backend == DbBackend::MySql {
            def.small_integer();
        } else {
            def.boolean();
        }
        def.not_null();
        self.col(&mut def)
    }

    fn int(self, column: impl IdenStatic, null: bool) -> Self {
        let mut def = ColumnDef::new(column.as_str());
        def.integer();
        nullability(&mut def, null);
        self.col(&mut def)
    }

    fn smallint(self, column: impl IdenStatic) -> Self {
        self.col(ColumnDef::new(column.as_str()).small_integer().not_null())
    }

    fn string(self, column: impl IdenStatic, len: u32, null: bool) -> Self {
        let mut def = ColumnDef::new(column.as_str());
        def.string_len(len);
        nullability(&mut def, null);
        self.col(&mut def)
    }

    fn text(self, column: impl IdenStatic) -> Self {
        self.col(ColumnDef::new(column.as_str()).text().null())
    }

    fn datetime(self, column: impl IdenStatic) -> Self {
        self.col(ColumnDef::new(column.as_str()).date_time().null())
    }

    /// A foreign key, declared as a table constraint (MySQL ignores a
    /// `REFERENCES` written on the column).
    fn fk<P: EntityTrait>(mut self, column: impl IdenStatic, parent: P) -> Self {
        let column = column.as_str();
        self.create.foreign_key(
            ForeignKey::create()
                .name(format!("{}_{}_fk", self.name, column))
                .from(self.name, column)
                .to(parent.table_name(), key_of::<P>()),
        );
        self
    }

    fn unique<C: IdenStatic>(mut self, columns: &[C]) -> Self {
        let mut index = Index::create();
        index
            .name(format!("{}_{}_uc", self.name, joined(columns)))
            .unique();
        for c in columns {
            index.col(c.as_str());
        }
        self.create.index(&mut index);
        self
    }

    /// A plain index, for the columns the client filters and joins on.
    fn index<C: IdenStatic>(mut self, columns: &[C]) -> Self {
        let mut index = Index::create();
        index
            .name(format!("{}_{}_idx", self.name, joined(columns)))
            .table(self.name);
        for c in columns {
            index.col(c.as_str());
        }
        self.indexes.push(index);
        self
    }

    fn build(self) -> Table {
        Table {
            name: self.name,
            create: self.create,
            indexes: self.indexes,
        }
    }
}

impl Table {
    fn create_statement(name: &'static str) -> TableCreateStatement {
        let mut create = sea_orm::sea_query::Table::create();
        create.table(name).if_not_exists();
        create
    }
}

/// The name of `E`'s integer primary key column.
fn key_of<E: EntityTrait>() -> &'static str {
    E::PrimaryKey::iter()
        .next()
        .map_or("id", |k| k.into_column().as_str())
}

/// Column names joined by `_`, for constraint and index names.
fn joined<C: IdenStatic>(columns: &[C]) -> String {
    columns
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join("_")
}

fn nullability(def: &mut ColumnDef, null: bool) {
    if null {
        def.null();
    } else {
        def.not_null();
    }
}

const NULL: bool = true;
const NOT_NULL: bool = false;

fn tables(backend: DbBackend) -> Vec<Table> {
    vec![
        Builder::new(backend, shards::Entity)
            .string(shards::Column::Hostname, NAME, NOT_NULL)
            .build(),
        Builder::new(backend, labels::Entity)
            .string(labels::Column::Name, LABEL_NAME, NULL)
            .string(labels::Column::KernelConfig, NAME, NULL)
            .bool_col(labels::Column::Platform, NULL)
            .bool_col(labels::Column::Invalid, NOT_NULL)
            .bool_col(labels::Column::OnlyIfNeeded, NOT_NULL)
            .int(labels::Column::AtomicGroupId, NULL)
            .unique(&[labels::Column::Name])
            .build(),
        Builder::new(backend, shard_labels::Entity)
            .int(shard_labels::Column::ShardId, NOT_NULL)
            .int(shard_labels::Column::LabelId, NOT_NULL)
            .unique(&[shard_labels::Column::LabelId])
            .fk(shard_labels::Column::ShardId, shards::Entity)
            .fk(shard_labels::Column::LabelId, labels::Entity)
            .index(&[shard_labels::Column::ShardId])
            .build(),
        Builder::new(backend, users::Entity)
            .string(users::Column::Login, NAME, NULL)
            .int(users::Column::AccessLevel, NULL)
            .smallint(users::Column::RebootBefore)
            .smallint(users::Column::RebootAfter)
            .bool_col(users::Column::ShowExperimental, NOT_NULL)
            .int(users::Column::DroneSetId, NULL)
            .unique(&[users::Column::Login])
            .build(),
        Builder::new(backend, groups::Entity)
            .string(groups::Column::Name, NAME, NULL)
            .string(groups::Column::Description, NAME, NULL)
            .build(),
        Builder::new(backend, group_users::Entity)
            .int(group_users::Column::AclgroupId, NULL)
            .int(group_users::Column::UserId, NULL)
            .unique(&[group_users::Column::AclgroupId, group_users::Column::UserId])
            .fk(group_users::Column::AclgroupId, groups::Entity)
            .fk(group_users::Column::UserId, users::Entity)
            .index(&[group_users::Column::UserId])
            .build(),
        Builder::new(backend, hosts::Entity)
            .string(hosts::Column::Hostname, NAME, NULL)
            .bool_col(hosts::Column::Locked, NULL)
            .int(hosts::Column::SynchId, NULL)
            .string(hosts::Column::Status, NAME, NULL)
            .bool_col(hosts::Column::Invalid, NULL)
            .int(hosts::Column::Protection, NOT_NULL)
            .int(hosts::Column::LockedById, NULL)
            .datetime(hosts::Column::LockTime)
            .bool_col(hosts::Column::Dirty, NOT_NULL)
            .col(
                ColumnDef::new(hosts::Column::Leased.as_str())
                    .boolean()
                    .not_null()
                    .default(true),
            )
            .int(hosts::Column::ShardId, NULL)
            .text(hosts::Column::LockReason)
            .fk(hosts::Column::LockedById, users::Entity)
            .fk(hosts::Column::ShardId, shards::Entity)
            .index(&[hosts::Column::LockedById])
            .index(&[hosts::Column::ShardId])
            .build(),
        Builder::new(backend, group_hosts::Entity)
            .int(group_hosts::Column::AclgroupId, NULL)
            .int(group_hosts::Column::HostId, NULL)
            .unique(&[group_hosts::Column::AclgroupId, group_hosts::Column::HostId])
            .fk(group_hosts::Column::AclgroupId, groups::Entity)
            .fk(group_hosts::Column::HostId, hosts::Entity)
            .index(&[group_hosts::Column::HostId])
            .build(),
        Builder::new(backend, host_labels::Entity)
            .int(host_labels::Column::HostId, NULL)
            .int(host_labels::Column::LabelId, NULL)
            .unique(&[host_labels::Column::LabelId, host_labels::Column::HostId])
            .fk(host_labels::Column::HostId, hosts::Entity)
            .fk(host_labels::Column::LabelId, labels::Entity)
            .index(&[host_labels::Column::HostId])
            .build(),
        Builder::new(backend, attributes::Entity)
            .int(attributes::Column::HostId, NOT_NULL)
            .string(attributes::Column::Attribute, SHORT_NAME, NOT_NULL)
            .string(attributes::Column::Value, VALUE, NOT_NULL)
            .fk(attributes::Column::HostId, hosts::Entity)
            .index(&[attributes::Column::HostId])
            .build(),
        Builder::new(backend, jobs::Entity)
            .string(jobs::Column::Owner, NAME, NULL)
            .string(jobs::Column::Name, NAME, NULL)
            .int(jobs::Column::Priority, NULL)
            .text(jobs::Column::ControlFile)
            .int(jobs::Column::ControlType, NULL)
            .datetime(jobs::Column::CreatedOn)
            .int(jobs::Column::SynchCount, NOT_NULL)
            .int(jobs::Column::Timeout, NOT_NULL)
            .bool_col(jobs::Column::RunVerify, NULL)
            .string(jobs::Column::EmailList, EMAIL_LIST, NOT_NULL)
            .smallint(jobs::Column::RebootBefore)
            .smallint(jobs::Column::RebootAfter)
            .bool_col(jobs::Column::ParseFailedRepair, NOT_NULL)
            .int(jobs::Column::MaxRuntimeHrs, NOT_NULL)
            .int(jobs::Column::DroneSetId, NULL)
            .int(jobs::Column::ParameterizedJobId, NULL)
            .int(jobs::Column::MaxRuntimeMins, NOT_NULL)
            .int(jobs::Column::ParentJobId, NULL)
            .int(jobs::Column::TestRetry, NOT_NULL)
            .smallint_bool(jobs::Column::RunReset)
            .int(jobs::Column::TimeoutMins, NOT_NULL)
            .int(jobs::Column::ShardId, NULL)
            .bool_col(jobs::Column::RequireSsp, NULL)
            .fk(jobs::Column::ShardId, shards::Entity)
            .index(&[jobs::Column::ShardId])
            .index(&[jobs::Column::ParentJobId])
            .build(),
        Builder::new(backend, job_labels::Entity)
            .int(job_labels::Column::JobId, NOT_NULL)
            .int(job_labels::Column::LabelId, NOT_NULL)
            .unique(&[job_labels::Column::JobId, job_labels::Column::LabelId])
            .fk(job_labels::Column::JobId, jobs::Entity)
            .fk(job_labels::Column::LabelId, labels::Entity)
            .index(&[job_labels::Column::LabelId])
            .build(),
        Builder::new(backend, hqes::Entity)
            .int(hqes::Column::JobId, NULL)
            .int(hqes::Column::HostId, NULL)
            .string(hqes::Column::Status, NAME, NULL)
            .int(hqes::Column::MetaHost, NULL)
            .bool_col(hqes::Column::Active, NULL)
            .bool_col(hqes::Column::Complete, NULL)
            .bool_col(hqes::Column::Deleted, NOT_NULL)
            .string(hqes::Column::ExecutionSubdir, NAME, NOT_NULL)
            .int(hqes::Column::AtomicGroupId, NULL)
            .bool_col(hqes::Column::Aborted, NOT_NULL)
            .datetime(hqes::Column::StartedOn)
            .datetime(hqes::Column::FinishedOn)
            .fk(hqes::Column::JobId, jobs::Entity)
            .fk(hqes::Column::HostId, hosts::Entity)
            .fk(hqes::Column::MetaHost, labels::Entity)
            .index(&[hqes::Column::JobId])
            .index(&[hqes::Column::HostId])
            .index(&[hqes::Column::MetaHost])
            .index(&[hqes::Column::Complete, hqes::Column::JobId])
            .build(),
        Builder::new(backend, keyvals::Entity)
            .int(keyvals::Column::JobId, NOT_NULL)
            .string(keyvals::Column::Key, SHORT_NAME, NOT_NULL)
            .string(keyvals::Column::Value, VALUE, NOT_NULL)
            .index(&[keyvals::Column::JobId])
            .build(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The DDL each backend gets, so a reviewer can read it in the test log
    /// (`cargo test -p shard-store ddl -- --nocapture`).
    #[test]
    fn ddl_names_every_table_once_per_backend() {
        for backend in [DbBackend::Sqlite, DbBackend::MySql, DbBackend::Postgres] {
            let tables = tables(backend);
            let names: Vec<_> = tables.iter().map(|t| t.name).collect();
            assert_eq!(names, crate::schema::AFE_TABLES, "{backend:?}");
            for t in &tables {
                println!("{};", backend.build(&t.create));
                for i in &t.indexes {
                    println!("{};", backend.build(i));
                }
            }
        }
    }
}
