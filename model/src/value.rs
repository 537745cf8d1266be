//! Tolerant (de)serializers for the scalar quirks of §5: booleans as `0`/`1`,
//! ids and counts as numeric strings, and naive datetimes with a `T` or a
//! space, with or without a fraction.
//!
//! Each deserializer names what it expected and what it got, so a rejected
//! record says exactly which value was wrong.

use std::fmt;
use std::marker::PhantomData;

use chrono::{NaiveDateTime, Timelike};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A boolean as a real master sends it: `true`/`false`, or `0`/`1` from
/// MySQL's `tinyint(1)` columns. Any other number is an error.
pub(crate) fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    d.deserialize_any(BoolVisitor)
}

/// Like [`bool`], but `null` (or an absent field, with `#[serde(default)]`)
/// is `None`.
pub(crate) fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    d.deserialize_option(OptionVisitor(BoolVisitor))
}

/// An integer that may arrive as a JSON number or as a numeric string
/// (`"3"`), checked against the width of the target column type. A float
/// is truncated toward zero and a boolean is 1 or 0, as the original's
/// Django stores them (`IntegerField.get_prep_value` is Python's `int()`,
/// and `int(2.5) == 2`, `int(True) == 1`).
pub(crate) fn int<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    d.deserialize_any(IntVisitor(PhantomData))
}

/// Like [`int`], but `null` (or an absent field) is `None`.
pub(crate) fn opt_int<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    d.deserialize_option(OptionVisitor(IntVisitor(PhantomData)))
}

/// A key that may be absent but, when present, must be a `T`: absent (with
/// `#[serde(default)]`) is `None`. For a to-many relation, `null` is then
/// an error that refuses the record, as the original iterates the value;
/// for a whitelisted field (§6), `None` leaves an existing row's column
/// alone, as the original sets only the keys it is sent.
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// [`present`] for a boolean of [`bool`]'s shapes.
pub(crate) fn present_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    bool(d).map(Some)
}

/// [`present`] for a nullable boolean: absent is `None`, `null` is
/// `Some(None)`.
pub(crate) fn present_opt_bool<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<bool>>, D::Error> {
    opt_bool(d).map(Some)
}

/// A naive datetime in any of the shapes of §5; `null` (or an absent
/// field) is `None`.
pub(crate) fn opt_datetime<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<NaiveDateTime>, D::Error> {
    d.deserialize_option(OptionVisitor(DateTimeVisitor))
}

/// Writes a datetime as the original's encoder does: `YYYY-MM-DDTHH:MM:SS`,
/// plus six fraction digits only when the fraction is not zero.
pub(crate) fn ser_opt_datetime<S: Serializer>(
    v: &Option<NaiveDateTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(&format_datetime(*v)),
        None => s.serialize_none(),
    }
}

/// Formats a datetime in the wire shape of §5 (see [`ser_datetime`]).
pub fn format_datetime(v: NaiveDateTime) -> impl fmt::Display {
    if v.nanosecond() == 0 {
        v.format("%Y-%m-%dT%H:%M:%S")
    } else {
        v.format("%Y-%m-%dT%H:%M:%S%.6f")
    }
}

/// Parses a datetime in any of the wire shapes of §5. The fraction is kept
/// to microseconds, the precision of every backend's datetime column.
pub fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()?;
    let micros = t.nanosecond() / 1_000 * 1_000;
    t.with_nanosecond(micros)
}

struct BoolVisitor;

impl<'de> Visitor<'de> for BoolVisitor {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boolean (true/false or 0/1)")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
        }
    }
}

struct IntVisitor<T>(PhantomData<T>);

impl<T: TryFrom<i64>> IntVisitor<T> {
    fn fit<E: de::Error>(v: i64) -> Result<T, E> {
        T::try_from(v).map_err(|_| {
            E::invalid_value(
                de::Unexpected::Signed(v),
                &"an integer that fits its column",
            )
        })
    }
}

impl<'de, T: TryFrom<i64>> Visitor<'de> for IntVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer (a number or a numeric string)")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Self::fit(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        let v = i64::try_from(v).map_err(|_| {
            E::invalid_value(
                de::Unexpected::Unsigned(v),
                &"an integer that fits its column",
            )
        })?;
        Self::fit(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        let n: i64 = v
            .trim()
            .parse()
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))?;
        Self::fit(n)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        let truncated = v.trunc();
        // i64::MAX is not an f64; 2^63 is the first value beyond it.
        if !truncated.is_finite() || truncated < -(2f64.powi(63)) || truncated >= 2f64.powi(63) {
            return Err(E::invalid_value(
                de::Unexpected::Float(v),
                &"an integer that fits its column",
            ));
        }
        #[allow(clippy::cast_possible_truncation)] // In range, checked above.
        Self::fit(truncated as i64)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        Self::fit(i64::from(v))
    }
}

struct DateTimeVisitor;

impl<'de> Visitor<'de> for DateTimeVisitor {
    type Value = NaiveDateTime;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a datetime like \"2014-09-23T15:56:10\" or \"2014-09-23 15:56:10.123\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<NaiveDateTime, E> {
        parse_datetime(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

/// Lifts a scalar visitor to `Option`, so `null` becomes `None`.
struct OptionVisitor<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for OptionVisitor<V> {
    type Value = Option<V::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)?;
        f.write_str(" or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self.0).map(Some)
    }
}

/// A to-one relation as it arrived on the wire.
///
/// The original treats the three cases differently: an absent key leaves the
/// link alone, `null` clears it, a record sets it. `Option<Option<T>>` would
/// say the same with less meaning, so the states get names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ToOne<T> {
    /// The key was not in the record: the link is not touched.
    #[default]
    Absent,
    /// The key was `null`: the link is cleared.
    Null,
    /// The key held a record: the link points to it.
    Set(T),
}

impl<T> ToOne<T> {
    /// True when the key was not in the record.
    pub fn is_absent(&self) -> bool {
        matches!(self, ToOne::Absent)
    }

    /// The linked record, if the key held one.
    pub fn as_set(&self) -> Option<&T> {
        match self {
            ToOne::Set(t) => Some(t),
            ToOne::Absent | ToOne::Null => None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ToOne<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            Some(t) => ToOne::Set(t),
            None => ToOne::Null,
        })
    }
}

impl<T: Serialize> Serialize for ToOne<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ToOne::Set(t) => t.serialize(s),
            ToOne::Absent | ToOne::Null => s.serialize_none(),
        }
    }
}
