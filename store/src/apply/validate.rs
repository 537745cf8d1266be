//! Checks that a value fits its column before it is written (§9: SQLite
//! would store anything, so the check must happen here for the outcome to
//! be the same on every backend).

use crate::schema::TEXT_BYTES;

/// A master id written explicitly into an auto-increment key. AFE ids are
/// positive; MySQL would silently replace an id of 0 by a fresh one.
pub(crate) fn id(table: &str, id: i32) -> Result<(), String> {
    if id > 0 {
        Ok(())
    } else {
        Err(format!("`{table}.id` is {id}; ids must be positive"))
    }
}

/// A `varchar(max)` column: `max` characters, as MySQL and PostgreSQL count.
pub(crate) fn varchar(column: &str, value: Option<&str>, max: u32) -> Result<(), String> {
    let Some(value) = value else {
        return Ok(());
    };
    let chars = value.chars().count();
    if chars > max as usize {
        return Err(format!(
            "`{column}` is {chars} characters long; the column holds {max}"
        ));
    }
    Ok(())
}

/// A `text` column: MySQL's 65,535 bytes.
pub(crate) fn text(column: &str, value: Option<&str>) -> Result<(), String> {
    let Some(value) = value else {
        return Ok(());
    };
    if value.len() > TEXT_BYTES {
        return Err(format!(
            "`{column}` is {} bytes long; the column holds {TEXT_BYTES}",
            value.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varchar_counts_characters_not_bytes() {
        let cafe = "é".repeat(255);
        assert!(
            varchar("t.c", Some(&cafe), 255).is_ok(),
            "510 bytes, 255 chars"
        );
        let err = varchar("afe_hosts.hostname", Some(&"x".repeat(256)), 255).unwrap_err();
        assert_eq!(
            err,
            "`afe_hosts.hostname` is 256 characters long; the column holds 255"
        );
        assert!(varchar("t.c", None, 1).is_ok());
    }

    #[test]
    fn text_counts_bytes() {
        assert!(text("t.c", Some(&"x".repeat(65_535))).is_ok());
        assert!(
            text("t.c", Some(&"é".repeat(32_768))).is_err(),
            "65,536 bytes"
        );
    }
}
