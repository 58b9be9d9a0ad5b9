//! The parameters of the types that take some: the length of a `string` or `char`, the
//! `precision` and `scale` of a `decimal`, the `values` of an `enum` (and their Rust variants).

use heck::ToUpperCamelCase;

use super::context::Validator;
use crate::ir::{EnumType, EnumValue, FieldType};
use crate::parse::{FieldDef, Pos, join};

/// Most digits of a `decimal` (what rust_decimal's `Decimal` holds exactly).
pub const MAX_DECIMAL_PRECISION: i64 = 28;
/// Longest `char` (MySQL's limit for `CHAR(n)`).
pub const MAX_CHAR_LENGTH: i64 = 255;
/// Longest value of an `enum`.
pub const MAX_ENUM_VALUE_LEN: usize = 63;
/// Largest `max_length`.
pub const MAX_STRING_LENGTH: i64 = 65535;

impl Validator<'_> {
    /// A `string` field: its `max_length` is required.
    pub(super) fn string(&mut self, model: &str, name: &str, path: &str, def: &FieldDef, type_pos: Pos) -> FieldType {
        match def.max_length {
            None => {
                self.err(
                    "schema::missing_max_length",
                    type_pos,
                    format!("string field `{model}.{name}` needs `max_length`"),
                    "string without max_length",
                )
                .set_help(format!(
                    "add `max_length: 255` (between 1 and {MAX_STRING_LENGTH}), or use `type: text` for unbounded text"
                ));
                FieldType::String {
                    max_length: MAX_STRING_LENGTH as u32,
                }
            }
            Some(n) => {
                let max_length = self.max_length(n, &join(path, "max_length"));
                FieldType::String {
                    max_length: max_length.unwrap_or(MAX_STRING_LENGTH as u32),
                }
            }
        }
    }

    /// Checks a `max_length` value at `path`.
    pub(super) fn max_length(&mut self, n: i64, path: &str) -> Option<u32> {
        if (1..=MAX_STRING_LENGTH).contains(&n) {
            return Some(n as u32);
        }
        let pos = self.p.value_or_up(path);
        self.err(
            "schema::invalid_max_length",
            pos,
            format!("`max_length` must be between 1 and {MAX_STRING_LENGTH}, got {n}"),
            "out of range",
        )
        .set_help(if n > MAX_STRING_LENGTH {
            format!("use `type: text` for strings longer than {MAX_STRING_LENGTH} characters")
        } else {
            "`max_length` is the longest value in characters: at least 1".to_string()
        });
        None
    }

    /// The type of a `decimal` field: `precision` (1 to 28) and `scale` (0 to `precision`).
    pub(super) fn decimal(&mut self, model: &str, name: &str, path: &str, def: &FieldDef) -> FieldType {
        let fallback = FieldType::Decimal {
            precision: MAX_DECIMAL_PRECISION as u32,
            scale: 0,
        };
        let Some(precision) = def.precision else {
            let pos = self
                .p
                .value(&join(path, "type"))
                .unwrap_or_else(|| self.p.key_or_up(path));
            self.err(
                "schema::invalid_decimal",
                pos,
                format!("decimal field `{model}.{name}` needs `precision`"),
                "decimal without precision",
            )
            .set_help(format!(
                "add `precision:` (total digits, 1 to {MAX_DECIMAL_PRECISION}) and `scale:` (digits after the point), e.g. `{{ type: decimal, precision: 10, scale: 2 }}`"
            ));
            return fallback;
        };
        if !(1..=MAX_DECIMAL_PRECISION).contains(&precision) {
            let pos = self.p.value_or_up(&join(path, "precision"));
            self.err(
                "schema::invalid_decimal",
                pos,
                format!("`precision` must be between 1 and {MAX_DECIMAL_PRECISION}, got {precision}"),
                "out of range",
            )
            .set_help(format!(
                "{MAX_DECIMAL_PRECISION} digits is what a Rust `Decimal` holds exactly; use `float` or `text` for more"
            ));
            return fallback;
        }
        let scale = def.scale.unwrap_or(0);
        if !(0..=precision).contains(&scale) {
            let pos = self.p.value_or_up(&join(path, "scale"));
            self.err(
                "schema::invalid_decimal",
                pos,
                format!("`scale` must be between 0 and the precision ({precision}), got {scale}"),
                "out of range",
            )
            .set_help("`scale` is how many of the `precision` digits come after the decimal point");
            return fallback;
        }
        FieldType::Decimal {
            precision: precision as u32,
            scale: scale as u32,
        }
    }

    /// The type of an `enum` field: its generated Rust type and its `values`, each a
    /// distinct variant name.
    pub(super) fn enumeration(&mut self, model: &str, name: &str, path: &str, def: &FieldDef) -> FieldType {
        let type_name = format!("{model}{}", name.to_upper_camel_case());
        let mut values: Vec<EnumValue> = Vec::new();
        let values_path = join(path, "values");
        match &def.values {
            None => {
                let pos = self
                    .p
                    .value(&join(path, "type"))
                    .unwrap_or_else(|| self.p.key_or_up(path));
                self.err(
                    "schema::invalid_enum",
                    pos,
                    format!("enum field `{model}.{name}` needs `values`"),
                    "enum without values",
                )
                .set_help("list the values, e.g. `{ type: enum, values: [draft, published, archived] }`");
            }
            Some(list) if list.is_empty() => {
                let pos = self.p.value_or_up(&values_path);
                self.err(
                    "schema::invalid_enum",
                    pos,
                    format!("enum field `{model}.{name}` has no values"),
                    "empty",
                )
                .set_help("list at least one value, e.g. `values: [draft, published]`");
            }
            Some(list) => {
                for (i, value) in list.iter().enumerate() {
                    let pos = self.p.value_or_up(&join(&values_path, &i.to_string()));
                    if !valid_enum_value(value) {
                        self.err(
                            "schema::invalid_enum",
                            pos,
                            format!("invalid enum value `{value}` of `{model}.{name}`"),
                            "invalid value",
                        )
                        .set_help(format!(
                            "enum values use ASCII letters, digits, spaces, `-`, `_` and `.`, with at least one letter or digit, at most {MAX_ENUM_VALUE_LEN} characters"
                        ));
                        continue;
                    }
                    let variant = enum_variant(value);
                    if let Some(first) = values.iter().find(|v| v.variant == variant) {
                        let message = if first.value == *value {
                            format!("enum value `{value}` of `{model}.{name}` is listed twice")
                        } else {
                            format!(
                                "enum values `{}` and `{value}` of `{model}.{name}` both become the Rust variant `{variant}`",
                                first.value
                            )
                        };
                        self.err("schema::invalid_enum", pos, message, "repeated")
                            .set_help("enum values must differ in more than case and punctuation");
                        continue;
                    }
                    values.push(EnumValue {
                        value: value.clone(),
                        variant,
                    });
                }
            }
        }
        FieldType::Enum(EnumType {
            name: type_name,
            values,
        })
    }

    /// The length of a `char` field (`max_length`, 1 to 255).
    pub(super) fn char_length(&mut self, model: &str, name: &str, path: &str, def: &FieldDef) -> u32 {
        let Some(n) = def.max_length else {
            let pos = self
                .p
                .value(&join(path, "type"))
                .unwrap_or_else(|| self.p.key_or_up(path));
            self.err(
                "schema::missing_max_length",
                pos,
                format!("char field `{model}.{name}` needs `max_length`"),
                "char without max_length",
            )
            .set_help(format!(
                "add `max_length: 2` (its length, between 1 and {MAX_CHAR_LENGTH})"
            ));
            return 1;
        };
        if (1..=MAX_CHAR_LENGTH).contains(&n) {
            return n as u32;
        }
        let pos = self.p.value_or_up(&join(path, "max_length"));
        self.err(
            "schema::invalid_max_length",
            pos,
            format!("`max_length` of a `char` must be between 1 and {MAX_CHAR_LENGTH}, got {n}"),
            "out of range",
        )
        .set_help("use `type: string` for longer text");
        1
    }
}

/// Whether `value` may be an `enum` value: ASCII letters, digits, spaces, `-`, `_` and `.`,
/// with at least one letter or digit, at most [`MAX_ENUM_VALUE_LEN`] characters.
pub(crate) fn valid_enum_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_ENUM_VALUE_LEN
        && value.chars().any(|c| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'))
}

/// The Rust variant name of an enum value: its words in UpperCamelCase (`PG-13` → `Pg13`),
/// prefixed with `V` when it would start with a digit.
fn enum_variant(value: &str) -> String {
    let words: String = value
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    let camel = words.to_upper_camel_case();
    if camel.starts_with(|c: char| c.is_ascii_digit()) {
        format!("V{camel}")
    } else {
        camel
    }
}
