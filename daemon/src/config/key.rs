//! What a configuration key is ([`Key`]), and [`declare_keys!`], which turns
//! the one declaration of every key in `keys.rs` into the table [`KEYS`],
//! the struct of unchecked values [`Settings`] with its flags, and the
//! struct of checked values a `Config` is built from.
//!
//! Everything a layer needs is read from the table: the flag is the name in
//! kebab case and its help line carries the default, the variable is
//! `SHARD_CLIENT_` and the name in upper case, the file uses the name as it
//! is, the defaults layer is the defaults, and how much of a value may be
//! shown is the key's [`Secret`].

use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use figment::value::Value;
use shard_store::redact_url;

use super::keys::{KEYS, Settings};
use super::messages::number;

/// The prefix of the environment variables that set configuration keys.
pub(super) const ENV_PREFIX: &str = "SHARD_CLIENT_";

/// One configuration key: everything the flag, the variable, the file, the
/// check and `--help` know of it. Made only by [`declare_keys!`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Key {
    /// The name, as the file spells it.
    pub(super) name: &'static str,
    /// The flag without its `--`: the name in kebab case.
    pub(super) flag: &'static str,
    /// What the key is for, on one line.
    pub(super) help: &'static str,
    /// What `--help` calls the flag's value.
    pub(super) value_name: &'static str,
    /// How a flag and a variable read the value.
    pub(super) value: ValueType,
    /// The value when no layer sets one.
    pub(super) default: DefaultValue,
    /// What the value must be, in the words of the error messages.
    pub(super) must_be: &'static str,
    /// How much of the value may be shown.
    pub(super) secret: Secret,
}

/// How a flag and a `SHARD_CLIENT_` variable read a key's value. The file's
/// TOML values are held to the same Rust type by serde.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ValueType {
    /// Kept as written: `SHARD_CLIENT_RPC_USER=007` stays `007`.
    Text,
    /// A number, possibly fractional; a negative one is read too, for the
    /// check to refuse in the key's words.
    Number,
    /// A whole number.
    Whole,
    /// A file path.
    Path,
}

/// The Rust type of a key's unchecked value, and so how it is read.
pub(super) trait Unchecked: Clone + Send + Sync + 'static {
    /// How a flag and a variable read it.
    const TYPE: ValueType;
}

impl Unchecked for String {
    const TYPE: ValueType = ValueType::Text;
}

impl Unchecked for f64 {
    const TYPE: ValueType = ValueType::Number;
}

impl Unchecked for u64 {
    const TYPE: ValueType = ValueType::Whole;
}

impl Unchecked for PathBuf {
    const TYPE: ValueType = ValueType::Path;
}

/// What a key is when no layer sets it.
#[derive(Debug, Clone, Copy)]
pub(super) enum DefaultValue {
    /// Nothing: the key must be set.
    Required,
    /// Nothing, and that is fine; the words say what it means (`never`).
    Unset(&'static str),
    /// This text.
    Text(&'static str),
    /// This number.
    Number(f64),
    /// This whole number.
    Whole(u64),
    /// Read from the process at load time, by the function, from the place
    /// the words name (`$USER or $LOGNAME`): not ours, so an error about it
    /// must say where it came from.
    Computed(fn() -> String, &'static str),
}

impl DefaultValue {
    /// The value of the defaults layer; `None` when there is none.
    pub(super) fn value(self) -> Option<Value> {
        match self {
            DefaultValue::Required | DefaultValue::Unset(_) => None,
            DefaultValue::Text(text) => Some(Value::from(text.to_owned())),
            DefaultValue::Number(x) => Some(Value::from(x)),
            DefaultValue::Whole(n) => Some(Value::from(n)),
            DefaultValue::Computed(value, _) => Some(Value::from(value())),
        }
    }

    /// How `--help` shows it, in clap's own style (`[default: 60]`).
    fn shown(self) -> String {
        match self {
            DefaultValue::Required => "[required]".to_owned(),
            DefaultValue::Unset(meaning) => format!("[default: {meaning}]"),
            DefaultValue::Text(text) => format!("[default: {text}]"),
            DefaultValue::Number(x) => format!("[default: {}]", number(x)),
            DefaultValue::Whole(n) => format!("[default: {n}]"),
            DefaultValue::Computed(_, from) => format!("[default: from {from}]"),
        }
    }
}

/// How much of a key's value may be shown in a log line, an error message
/// or `shard-client config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Secret {
    /// All of it.
    No,
    /// A URL, shown with its password masked (`redact_url`).
    Password,
    /// Nothing: the value is a credential (the `AUTHORIZATION` header).
    Whole,
}

impl Key {
    /// The `SHARD_CLIENT_<KEY>` variable that sets the key.
    pub(super) fn variable(&self) -> String {
        format!("{ENV_PREFIX}{}", self.name.to_ascii_uppercase())
    }

    /// `text`, a value of this key, quoted as an operator may see it.
    pub(super) fn quoted(&self, text: &str) -> String {
        match self.secret {
            Secret::No => format!("{text:?}"),
            Secret::Password => format!("{:?}", redact_url(text)),
            Secret::Whole => "\"<set>\"".to_owned(),
        }
    }

    /// `value`, this key's value in a layer, as TOML writes it and as an
    /// operator may see it.
    pub(super) fn shown(&self, value: &Value) -> String {
        match (self.secret, value.as_str()) {
            (Secret::No, _) => {
                serde_json::to_string(value).unwrap_or_else(|_| "<unprintable>".to_owned())
            }
            (Secret::Password, None) => "<not a string>".to_owned(),
            (Secret::Password | Secret::Whole, text) => self.quoted(text.unwrap_or_default()),
        }
    }

    /// The key's flag: global, so it may come before or after the
    /// subcommand, and without a clap default, so that a flag not given
    /// overrides nothing.
    fn arg(&self) -> Arg {
        let arg = Arg::new(self.name)
            .long(self.flag)
            .global(true)
            .action(ArgAction::Set)
            .value_name(self.value_name)
            .help(format!(
                "{} [env: {}] {}",
                self.help,
                self.variable(),
                self.default.shown()
            ));
        // Values are typed only as far as clap can check them (numbers are
        // numbers); whether they are in range is the check's business, so
        // that a flag and a file entry get the same message.
        match self.value {
            ValueType::Text => arg.value_parser(value_parser!(String)),
            // Else clap would call `-1` an unknown flag.
            ValueType::Number => arg
                .value_parser(value_parser!(f64))
                .allow_negative_numbers(true),
            ValueType::Whole => arg.value_parser(value_parser!(u64)),
            ValueType::Path => arg.value_parser(value_parser!(PathBuf)),
        }
    }
}

/// The key named `name`.
pub(super) fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|key| key.name == name)
}

/// One flag per key of [`KEYS`].
impl clap::Args for Settings {
    fn augment_args(cmd: Command) -> Command {
        KEYS.iter().fold(cmd, |cmd, key| cmd.arg(key.arg()))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

/// The value of `key`'s flag, when it was given.
pub(super) fn given<T: Unchecked>(
    matches: &ArgMatches,
    key: &Key,
) -> Result<Option<T>, clap::Error> {
    matches
        .try_get_one::<T>(key.name)
        .map(Option::<&T>::cloned)
        .map_err(|error| clap::Error::raw(ErrorKind::InvalidValue, error))
}

/// `name` in kebab case, as bytes, at compile time: clap takes a flag's name
/// only as a `&'static str`.
pub(super) const fn kebab_case<const N: usize>(name: &str) -> [u8; N] {
    let bytes = name.as_bytes();
    let mut kebab = [0; N];
    let mut i = 0;
    while i < N {
        kebab[i] = match bytes[i] {
            b'_' => b'-',
            byte => byte,
        };
        i += 1;
    }
    kebab
}

/// The type a key's value is checked into: an `Option` when the key has no
/// default and needs none.
macro_rules! checked_type {
    (Unset, $checked:ty) => { Option<$checked> };
    ($default:ident, $checked:ty) => { $checked };
}

/// Checks a key's merged value with its check, according to its default.
macro_rules! check_value {
    (Unset, $figment:expr, $key:expr, $value:expr, $check:path) => {
        $crate::config::check::optional($figment, $key, $value, $check)
    };
    ($default:ident, $figment:expr, $key:expr, $value:expr, $check:path) => {
        $crate::config::check::required($figment, $key, $value, $check)
    };
}

/// Declares the configuration keys, one entry each:
///
/// ```text
/// name: Type {
///     help: "what it is for, one line",
///     value_name: "VALUE",
///     default: Required | Unset("meaning") | Text(…) | Number(…) | Whole(…) | Computed(fn, "where"),
///     must_be: "what it must be, for messages",
///     secret: No | Password | Whole,
///     check: function => Checked,
/// }
/// ```
///
/// `Type` is the value as a flag, a variable and the file give it
/// (`String`, `f64`, `u64`, `PathBuf`); `function`, one of `check.rs`,
/// turns it into the `Checked` value the daemon uses or says why not. A key
/// whose default is `Unset` is checked into an `Option<Checked>`.
///
/// Makes `KEYS`, the table; `Settings`, one optional unchecked value per
/// key, with its flags; and `Checked`, every value checked.
macro_rules! declare_keys {
    ($(
        $name:ident: $unchecked:ty {
            help: $help:literal,
            value_name: $value_name:literal,
            default: $default:ident $(($($default_args:tt)*))?,
            must_be: $must_be:literal,
            secret: $secret:ident,
            check: $check:path => $checked:ty $(,)?
        }
    ),* $(,)?) => {
        /// Each key by its name, for the code below.
        struct ByName;

        #[allow(non_upper_case_globals)]
        impl ByName {
            $(
                const $name: $crate::config::key::Key = $crate::config::key::Key {
                    name: stringify!($name),
                    flag: {
                        const FLAG: [u8; stringify!($name).len()] =
                            $crate::config::key::kebab_case(stringify!($name));
                        match ::std::str::from_utf8(&FLAG) {
                            Ok(flag) => flag,
                            Err(_) => panic!("a key's name is ASCII"),
                        }
                    },
                    help: $help,
                    value_name: $value_name,
                    value: <$unchecked as $crate::config::key::Unchecked>::TYPE,
                    default: $crate::config::key::DefaultValue::$default $(($($default_args)*))?,
                    must_be: $must_be,
                    secret: $crate::config::key::Secret::$secret,
                };
            )*
        }

        /// Every key, in the order `--help` and `shard-client config` list
        /// them and the checks run.
        pub(super) const KEYS: &[$crate::config::key::Key] = &[$(ByName::$name),*];

        /// One optional value per key, unchecked: the flags that were given,
        /// and the merged layers as figment extracts them.
        ///
        /// Serialized with only the values that are set, so that merged as
        /// the last layer the flags override exactly those. A key that is
        /// not in the table is refused, so that a typo in the file names
        /// itself instead of being ignored.
        #[derive(Debug, Clone, Default, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Settings {
            $(
                #[doc = $help]
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $name: Option<$unchecked>,
            )*
        }

        impl ::clap::FromArgMatches for Settings {
            fn from_arg_matches(matches: &::clap::ArgMatches) -> Result<Self, ::clap::Error> {
                let mut settings = Settings::default();
                settings.update_from_arg_matches(matches)?;
                Ok(settings)
            }

            fn update_from_arg_matches(
                &mut self,
                matches: &::clap::ArgMatches,
            ) -> Result<(), ::clap::Error> {
                $(
                    if let Some(value) = $crate::config::key::given(matches, &ByName::$name)? {
                        self.$name = Some(value);
                    }
                )*
                Ok(())
            }
        }

        /// Every key's value, checked: what a `Config` is made of.
        pub(super) struct Checked {
            $(
                #[doc = $help]
                pub(super) $name: $crate::config::key::checked_type!($default, $checked),
            )*
        }

        impl Checked {
            /// Checks the merged values key by key, in the order of the
            /// table; the first value refused is the error, naming where it
            /// came from.
            pub(super) fn new(
                figment: &::figment::Figment,
                settings: Settings,
            ) -> Result<Self, $crate::config::ConfigError> {
                Ok(Checked {
                    $(
                        $name: $crate::config::key::check_value!(
                            $default, figment, &ByName::$name, settings.$name, $check
                        )?,
                    )*
                })
            }
        }
    };
}

pub(super) use {check_value, checked_type, declare_keys};
