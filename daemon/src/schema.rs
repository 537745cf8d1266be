//! `shard-client schema`: the `afe_` tables as the client detected them in
//! the database's catalog (the types it reads, writes and checks by).

use std::fmt::Write as _;

use shard_store::Layout;
use shard_store::layout::ColumnInfo;
use shard_store::schema::AFE_TABLES;

/// The layout as a table for people: one block per table, one line per
/// column, and the tables the database lacks.
pub fn table(layout: &Layout) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} of {} afe_ tables",
        layout.backend,
        layout.tables.len(),
        AFE_TABLES.len()
    );
    let missing: Vec<&str> = AFE_TABLES
        .iter()
        .copied()
        .filter(|t| layout.table(t).is_none())
        .collect();
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "missing (`migrate` creates them): {}",
            missing.join(", ")
        );
    }
    if layout.has_deferred_constraints() {
        let _ = writeln!(
            out,
            "deferred foreign keys: made immediate in every write transaction"
        );
    }
    for t in &layout.tables {
        let _ = writeln!(out, "\n{}", t.name);
        let width = t.columns.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &t.columns {
            let _ = writeln!(out, "  {:width$}  {}", c.name, describe(c));
        }
    }
    out
}

fn describe(c: &ColumnInfo) -> String {
    let mut s = format!("{:<14}", c.ty.to_string());
    s.push_str(if c.nullable {
        "  NULL    "
    } else {
        "  NOT NULL"
    });
    if !c.has_default {
        s.push_str("  no default");
    }
    if let Some(target) = &c.references {
        let _ = write!(s, "  -> {target}");
        if c.deferred {
            s.push_str(" (deferred)");
        }
    }
    s.trim_end().to_owned()
}
