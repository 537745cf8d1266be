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
use sea_orm::{ConnectionTrait, DbBackend, DbErr};

use crate::layout::Layout;
use crate::schema::{EMAIL_LIST, LABEL_NAME, NAME, SHORT_NAME, VALUE};

/// Creates the tables `layout` (the catalog as read) lacks, parents first,
/// each with its indexes, and returns their names. MySQL commits each DDL
/// statement on its own, so a failure leaves the tables created so far;
/// the next start creates the rest.
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
    fn new(backend: DbBackend, name: &'static str) -> Self {
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
            ColumnDef::new("id")
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
    fn bool_col(self, name: &'static str, null: bool) -> Self {
        let mut def = ColumnDef::new(name);
        def.boolean();
        nullability(&mut def, null);
        self.col(&mut def)
    }

    fn smallint_bool(self, name: &'static str) -> Self {
        let mut def = ColumnDef::new(name);
        if self.backend == DbBackend::MySql {
            def.small_integer();
        } else {
            def.boolean();
        }
        def.not_null();
        self.col(&mut def)
    }

    fn int(self, name: &'static str, null: bool) -> Self {
        let mut def = ColumnDef::new(name);
        def.integer();
        nullability(&mut def, null);
        self.col(&mut def)
    }

    fn smallint(self, name: &'static str) -> Self {
        self.col(ColumnDef::new(name).small_integer().not_null())
    }

    fn string(self, name: &'static str, len: u32, null: bool) -> Self {
        let mut def = ColumnDef::new(name);
        def.string_len(len);
        nullability(&mut def, null);
        self.col(&mut def)
    }

    fn text(self, name: &'static str) -> Self {
        self.col(ColumnDef::new(name).text().null())
    }

    fn datetime(self, name: &'static str) -> Self {
        self.col(ColumnDef::new(name).date_time().null())
    }

    /// A foreign key, declared as a table constraint (MySQL ignores a
    /// `REFERENCES` written on the column).
    fn fk(mut self, column: &'static str, parent: &'static str) -> Self {
        self.create.foreign_key(
            ForeignKey::create()
                .name(format!("{}_{}_fk", self.name, column))
                .from(self.name, column)
                .to(parent, "id"),
        );
        self
    }

    fn unique(mut self, columns: &[&'static str]) -> Self {
        let mut index = Index::create();
        index
            .name(format!("{}_{}_uc", self.name, columns.join("_")))
            .unique();
        for c in columns {
            index.col(*c);
        }
        self.create.index(&mut index);
        self
    }

    /// A plain index, for the columns the client filters and joins on.
    fn index(mut self, columns: &[&'static str]) -> Self {
        let mut index = Index::create();
        index
            .name(format!("{}_{}_idx", self.name, columns.join("_")))
            .table(self.name);
        for c in columns {
            index.col(*c);
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
    let t = |name| Builder::new(backend, name);
    vec![
        t("afe_shards").string("hostname", NAME, NOT_NULL).build(),
        t("afe_labels")
            .string("name", LABEL_NAME, NULL)
            .string("kernel_config", NAME, NULL)
            .bool_col("platform", NULL)
            .bool_col("invalid", NOT_NULL)
            .bool_col("only_if_needed", NOT_NULL)
            .int("atomic_group_id", NULL)
            .unique(&["name"])
            .build(),
        t("afe_shards_labels")
            .int("shard_id", NOT_NULL)
            .int("label_id", NOT_NULL)
            .unique(&["label_id"])
            .fk("shard_id", "afe_shards")
            .fk("label_id", "afe_labels")
            .index(&["shard_id"])
            .build(),
        t("afe_users")
            .string("login", NAME, NULL)
            .int("access_level", NULL)
            .smallint("reboot_before")
            .smallint("reboot_after")
            .bool_col("show_experimental", NOT_NULL)
            .int("drone_set_id", NULL)
            .unique(&["login"])
            .build(),
        t("afe_acl_groups")
            .string("name", NAME, NULL)
            .string("description", NAME, NULL)
            .build(),
        t("afe_acl_groups_users")
            .int("aclgroup_id", NULL)
            .int("user_id", NULL)
            .unique(&["aclgroup_id", "user_id"])
            .fk("aclgroup_id", "afe_acl_groups")
            .fk("user_id", "afe_users")
            .index(&["user_id"])
            .build(),
        t("afe_hosts")
            .string("hostname", NAME, NULL)
            .bool_col("locked", NULL)
            .int("synch_id", NULL)
            .string("status", NAME, NULL)
            .bool_col("invalid", NULL)
            .int("protection", NOT_NULL)
            .int("locked_by_id", NULL)
            .datetime("lock_time")
            .bool_col("dirty", NOT_NULL)
            .col(ColumnDef::new("leased").boolean().not_null().default(true))
            .int("shard_id", NULL)
            .text("lock_reason")
            .fk("locked_by_id", "afe_users")
            .fk("shard_id", "afe_shards")
            .index(&["locked_by_id"])
            .index(&["shard_id"])
            .build(),
        t("afe_acl_groups_hosts")
            .int("aclgroup_id", NULL)
            .int("host_id", NULL)
            .unique(&["aclgroup_id", "host_id"])
            .fk("aclgroup_id", "afe_acl_groups")
            .fk("host_id", "afe_hosts")
            .index(&["host_id"])
            .build(),
        t("afe_hosts_labels")
            .int("host_id", NULL)
            .int("label_id", NULL)
            .unique(&["label_id", "host_id"])
            .fk("host_id", "afe_hosts")
            .fk("label_id", "afe_labels")
            .index(&["host_id"])
            .build(),
        t("afe_host_attributes")
            .int("host_id", NOT_NULL)
            .string("attribute", SHORT_NAME, NOT_NULL)
            .string("value", VALUE, NOT_NULL)
            .fk("host_id", "afe_hosts")
            .index(&["host_id"])
            .build(),
        t("afe_jobs")
            .string("owner", NAME, NULL)
            .string("name", NAME, NULL)
            .int("priority", NULL)
            .text("control_file")
            .int("control_type", NULL)
            .datetime("created_on")
            .int("synch_count", NOT_NULL)
            .int("timeout", NOT_NULL)
            .bool_col("run_verify", NULL)
            .string("email_list", EMAIL_LIST, NOT_NULL)
            .smallint("reboot_before")
            .smallint("reboot_after")
            .bool_col("parse_failed_repair", NOT_NULL)
            .int("max_runtime_hrs", NOT_NULL)
            .int("drone_set_id", NULL)
            .int("parameterized_job_id", NULL)
            .int("max_runtime_mins", NOT_NULL)
            .int("parent_job_id", NULL)
            .int("test_retry", NOT_NULL)
            .smallint_bool("run_reset")
            .int("timeout_mins", NOT_NULL)
            .int("shard_id", NULL)
            .bool_col("require_ssp", NULL)
            .fk("shard_id", "afe_shards")
            .index(&["shard_id"])
            .index(&["parent_job_id"])
            .build(),
        t("afe_jobs_dependency_labels")
            .int("job_id", NOT_NULL)
            .int("label_id", NOT_NULL)
            .unique(&["job_id", "label_id"])
            .fk("job_id", "afe_jobs")
            .fk("label_id", "afe_labels")
            .index(&["label_id"])
            .build(),
        t("afe_host_queue_entries")
            .int("job_id", NULL)
            .int("host_id", NULL)
            .string("status", NAME, NULL)
            .int("meta_host", NULL)
            .bool_col("active", NULL)
            .bool_col("complete", NULL)
            .bool_col("deleted", NOT_NULL)
            .string("execution_subdir", NAME, NOT_NULL)
            .int("atomic_group_id", NULL)
            .bool_col("aborted", NOT_NULL)
            .datetime("started_on")
            .datetime("finished_on")
            .fk("job_id", "afe_jobs")
            .fk("host_id", "afe_hosts")
            .fk("meta_host", "afe_labels")
            .index(&["job_id"])
            .index(&["host_id"])
            .index(&["meta_host"])
            .index(&["complete", "job_id"])
            .build(),
        t("afe_job_keyvals")
            .int("job_id", NOT_NULL)
            .string("key", SHORT_NAME, NOT_NULL)
            .string("value", VALUE, NOT_NULL)
            .index(&["job_id"])
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
