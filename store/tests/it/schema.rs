//! One source of truth per table: each entity names its table's columns
//! once, and the tables `migrate` creates, the rows apply (and the bench's
//! floor) writes and the entities agree, column by column, on every
//! backend.

use sea_orm::ColumnTrait;
use shard_store::Layout;
use shard_store::schema::{AFE_TABLES, entity_columns, rows};
use shard_store::testing::TestDb;

shard_store::backend_tests!(
    created_tables_have_the_entities_columns_in_order,
    every_column_a_row_writes_exists_in_its_table
);

async fn created_tables_have_the_entities_columns_in_order(db: TestDb) {
    let layout = db.store.layout();
    let entities = entity_columns();
    let tables: Vec<&str> = entities.iter().map(|(table, _)| *table).collect();
    assert_eq!(
        tables, AFE_TABLES,
        "the entities are not the tables created"
    );
    for (table, columns) in &entities {
        let info = layout
            .table(table)
            .unwrap_or_else(|| panic!("{table} was not created"));
        let created: Vec<&str> = info.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            &created, columns,
            "{table}: created columns differ from the entity's"
        );
    }
}

async fn every_column_a_row_writes_exists_in_its_table(db: TestDb) {
    fn all_exist<C: ColumnTrait>(layout: &Layout, columns: &[C]) {
        for c in columns {
            assert!(
                layout.column_of(*c).is_some(),
                "a row writes {}, which its table lacks",
                c.as_str()
            );
        }
    }
    let layout = db.store.layout();
    all_exist(&layout, &rows::SHARDS);
    all_exist(&layout, &rows::LABELS);
    all_exist(&layout, &rows::USERS);
    all_exist(&layout, &rows::GROUPS);
    all_exist(&layout, &rows::GROUP_USERS);
    all_exist(&layout, &rows::HOSTS);
    all_exist(&layout, &rows::GROUP_HOSTS);
    all_exist(&layout, &rows::HOST_LABELS);
    all_exist(&layout, &rows::ATTRIBUTES);
    all_exist(&layout, &rows::JOBS);
    all_exist(&layout, &rows::JOB_LABELS);
    all_exist(&layout, &rows::HQES);
    all_exist(&layout, &rows::KEYVALS);
}
