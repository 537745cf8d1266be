//! Running one sequence on two databases, the bulk apply on one and the
//! reference on the other, and saying how they differ (the two sides and
//! the diff are `shard_store::testing::oracle`'s, which the fuzz target
//! shares).

use sea_orm::ConnectionTrait;
use shard_store::testing::TestDb;
use shard_store::testing::oracle::{self, Outcome};
use shard_store::testing::reference::Columns;

use super::generate::Step;

/// The two databases of one backend, reset before each sequence.
pub struct Pair {
    pub bulk: TestDb,
    pub reference: TestDb,
    columns: Columns,
}

impl Pair {
    pub async fn new(bulk: TestDb, reference: TestDb) -> Result<Pair, String> {
        let columns = Columns::read(reference.store.connection())
            .await
            .map_err(|e| e.to_string())?;
        Ok(Pair {
            bulk,
            reference,
            columns,
        })
    }

    /// Runs `steps` on both databases from empty tables; `Err` says where
    /// and how they first differ.
    pub async fn check(&self, steps: &[Step]) -> Result<(), String> {
        for db in [&self.bulk, &self.reference] {
            oracle::empty(db.store.connection()).await?;
        }
        for (i, step) in steps.iter().enumerate() {
            let at = |what: String| format!("step {} of {}: {what}", i + 1, steps.len());
            match step {
                Step::Response(json) => {
                    let bulk = self.bulk_apply(json).await.map_err(at)?;
                    let reference = self.reference_apply(json).await.map_err(at)?;
                    if !bulk.agrees_with(&reference) {
                        return Err(at(format!(
                            "the outcomes differ\n  bulk:      rejected {:?}, removed {:?}, \
                             resynced {:?}\n    reasons: {:#?}\n  reference: rejected {:?}, \
                             removed {:?}, resynced {:?}\n    reasons: {:#?}",
                            bulk.rejected,
                            bulk.removed,
                            bulk.resynced,
                            bulk.reasons,
                            reference.rejected,
                            reference.removed,
                            reference.resynced,
                            reference.reasons
                        )));
                    }
                }
                Step::Shard(sql) => {
                    let a = self.bulk.store.connection().execute_unprepared(sql).await;
                    let b = self
                        .reference
                        .store
                        .connection()
                        .execute_unprepared(sql)
                        .await;
                    if a.is_ok() != b.is_ok() {
                        return Err(at(format!("`{sql}`: bulk {a:?}, reference {b:?}")));
                    }
                }
            }
            let diff = self.diff().await.map_err(at)?;
            if !diff.is_empty() {
                return Err(at(format!("the tables differ\n{diff}")));
            }
        }
        Ok(())
    }

    async fn bulk_apply(&self, json: &serde_json::Value) -> Result<Outcome, String> {
        let bytes = serde_json::to_vec(json).map_err(|e| e.to_string())?;
        let layout = self.bulk.store.layout();
        oracle::bulk(self.bulk.store.connection(), &layout, &bytes).await
    }

    async fn reference_apply(&self, json: &serde_json::Value) -> Result<Outcome, String> {
        let bytes = serde_json::to_vec(json).map_err(|e| e.to_string())?;
        oracle::reference(self.reference.store.connection(), &bytes).await
    }

    /// Every `afe_` table of both sides, as sorted rows; empty when equal.
    async fn diff(&self) -> Result<String, String> {
        let (bulk, reference) = (
            self.bulk.store.connection(),
            self.reference.store.connection(),
        );
        oracle::diff(bulk, reference, &self.columns).await
    }
}
