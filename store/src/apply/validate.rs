//! Checks on a record that no column type expresses (widths, ranges and
//! `NOT NULL` follow the adopted columns: [`crate::Layout::insert_check`]).

/// A master id written explicitly into an auto-increment key. AFE ids are
/// positive; MySQL would silently replace an id of 0 by a fresh one.
pub(crate) fn id(table: &str, id: i32) -> Result<(), String> {
    if id > 0 {
        Ok(())
    } else {
        Err(format!("`{table}.id` is {id}; ids must be positive"))
    }
}
