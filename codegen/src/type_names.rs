//! The schema's type names, in one table ([`TYPES`]): what each declares (the IR column type,
//! a relation, or `auto`'s primary key), whether it may be a primary key or a part of a
//! composite one, the field keys it takes, and the other spellings "did you mean" knows.
//! Every list of type names (in messages, suggestions, the fuzzer) is derived from it, each
//! in the order its messages have always used.

use crate::ir::{EnumType, FieldType, RelationKind};

/// One type name of the schema.
pub(crate) struct TypeName {
    /// As written in `type:`.
    pub(crate) name: &'static str,
    /// What a field (or primary key) of this type is.
    pub(crate) declares: Declares,
    /// Where it stands in [`PRIMARY_KEY_TYPES`] (`None`: it cannot be a primary key).
    primary_key: Option<usize>,
    /// Where it stands in the list of composite key part types (`None`: it cannot be one).
    key_part: Option<usize>,
    /// The field keys a field of this type takes.
    pub(crate) keys: &'static [&'static str],
    /// Lower-case spellings of the type in SQL, Rust or other ORMs, for "did you mean".
    aliases: &'static [&'static str],
}

/// What a type name declares.
pub(crate) enum Declares {
    /// A column of this IR type. The parameters of `string`, `char`, `decimal` and `enum` are
    /// placeholders: a field's `max_length`, `precision`, `scale` or `values` give them.
    Column(FieldType),
    /// A foreign key or one-to-one column.
    Relation(RelationKind),
    /// A many-to-many relation (a join table, no column).
    ManyToMany,
    /// `auto`: a `big_integer` primary key the database assigns; not a field type.
    AutoKey,
}

const COLUMN_KEYS: &[&str] = &["type", "null", "default", "unique", "column", "index"];
const INTEGER_KEYS: &[&str] = &["type", "null", "default", "unique", "column", "unsigned", "index"];
const DECIMAL_KEYS: &[&str] = &[
    "type",
    "precision",
    "scale",
    "null",
    "default",
    "unique",
    "column",
    "index",
];
const ENUM_KEYS: &[&str] = &["type", "values", "null", "default", "unique", "column", "index"];
const DATETIME_KEYS: &[&str] = &[
    "type",
    "null",
    "default",
    "unique",
    "column",
    "auto_now_add",
    "auto_now",
    "index",
];
const STRING_KEYS: &[&str] = &["type", "max_length", "null", "default", "unique", "column", "index"];
const RELATION_KEYS: &[&str] = &["type", "to", "related_name", "on_delete", "null", "column"];
const M2M_KEYS: &[&str] = &["type", "to", "related_name", "through"];

/// A column type row: `name`, the IR type, its places as a primary key and as a key part.
const fn column(
    name: &'static str,
    ty: FieldType,
    primary_key: Option<usize>,
    key_part: Option<usize>,
    keys: &'static [&'static str],
    aliases: &'static [&'static str],
) -> TypeName {
    TypeName {
        name,
        declares: Declares::Column(ty),
        primary_key,
        key_part,
        keys,
        aliases,
    }
}

/// A relation row (never a key of its own: a foreign key is a key part by its column type).
const fn relation(
    name: &'static str,
    declares: Declares,
    keys: &'static [&'static str],
    aliases: &'static [&'static str],
) -> TypeName {
    TypeName {
        name,
        declares,
        primary_key: None,
        key_part: None,
        keys,
        aliases,
    }
}

/// Every type name: `auto`, then the field types in documentation order.
#[rustfmt::skip]
const TYPES: &[TypeName] = &[
    TypeName {
        name: "auto",
        declares: Declares::AutoKey,
        primary_key: Some(0),
        key_part: None,
        keys: &[],
        aliases: &[],
    },
    // name, IR type, place among primary key types, place among key part types, keys, aliases
    column("small_integer", FieldType::SmallInt, Some(5), Some(1), INTEGER_KEYS, &["smallint", "int2", "i16", "int16"]),
    column("integer", FieldType::Int, Some(4), Some(0), INTEGER_KEYS, &["int", "int4", "i32", "int32"]),
    column("positive_integer", FieldType::PositiveInt, None, Some(2), COLUMN_KEYS, &["uint", "u32", "unsigned", "positive"]),
    column("big_integer", FieldType::BigInt, Some(3), Some(3), INTEGER_KEYS, &["bigint", "int8", "i64", "int64", "long"]),
    column("boolean", FieldType::Bool, None, None, COLUMN_KEYS, &["bool"]),
    column("float", FieldType::Float, None, None, COLUMN_KEYS, &["double", "real", "f64", "f32"]),
    column("string", FieldType::String { max_length: 0 }, Some(1), Some(4), STRING_KEYS, &["str", "varchar", "charfield"]),
    column("text", FieldType::Text, None, None, COLUMN_KEYS, &["textfield", "clob", "longtext"]),
    column("bytes", FieldType::Bytes, None, None, COLUMN_KEYS, &["blob", "binary", "bytea", "vec<u8>"]),
    column("uuid", FieldType::Uuid, Some(2), Some(5), COLUMN_KEYS, &[]),
    column("date", FieldType::Date, None, Some(6), COLUMN_KEYS, &[]),
    column("time", FieldType::Time, None, None, COLUMN_KEYS, &[]),
    column("datetime", FieldType::DateTime, None, None, DATETIME_KEYS, &["timestamp", "timestamptz", "datetimefield"]),
    column("json", FieldType::Json, None, None, COLUMN_KEYS, &["jsonb"]),
    column("decimal", FieldType::Decimal { precision: 0, scale: 0 }, None, None, DECIMAL_KEYS, &["numeric", "money", "decimalfield"]),
    column("enum", FieldType::Enum(EnumType { name: String::new(), values: Vec::new() }), None, Some(7), ENUM_KEYS, &["enumeration", "choice", "choices"]),
    column("char", FieldType::Char { length: 0 }, None, None, STRING_KEYS, &["character", "bpchar"]),
    relation("foreign_key", Declares::Relation(RelationKind::ForeignKey), RELATION_KEYS, &["fk", "foreignkey", "belongs_to", "reference"]),
    relation("one_to_one", Declares::Relation(RelationKind::OneToOne), RELATION_KEYS, &["o2o", "onetoone", "has_one"]),
    relation("many_to_many", Declares::ManyToMany, M2M_KEYS, &["m2m", "manytomany", "has_many"]),
];

/// Every field type, in documentation order.
pub const FIELD_TYPES: &[&str] = &names::<{ count(List::Field) }>(List::Field);
/// Primary key types.
pub const PRIMARY_KEY_TYPES: &[&str] = &names::<{ count(List::PrimaryKey) }>(List::PrimaryKey);
/// The column types a part of a composite primary key may have, in the order messages list them.
pub(crate) const KEY_PART_TYPES: &[&str] = &names::<{ count(List::KeyPart) }>(List::KeyPart);

/// A list of type names derived from [`TYPES`].
#[derive(Clone, Copy)]
enum List {
    Field,
    PrimaryKey,
    KeyPart,
}

/// Where row `row` of [`TYPES`] stands in `list` (`None`: not in it).
const fn place(row: usize, list: List) -> Option<usize> {
    let ty = &TYPES[row];
    match list {
        List::Field if matches!(ty.declares, Declares::AutoKey) => None,
        List::Field => Some(row),
        List::PrimaryKey => ty.primary_key,
        List::KeyPart => ty.key_part,
    }
}

/// How many names `list` has.
const fn count(list: List) -> usize {
    let (mut n, mut row) = (0, 0);
    while row < TYPES.len() {
        if place(row, list).is_some() {
            n += 1;
        }
        row += 1;
    }
    n
}

/// The `N` names of `list`, by their place in it.
const fn names<const N: usize>(list: List) -> [&'static str; N] {
    let mut out = [""; N];
    let mut last: Option<usize> = None;
    let mut k = 0;
    while k < N {
        // The row with the smallest place after the last one taken.
        let mut best: Option<(usize, usize)> = None;
        let mut row = 0;
        while row < TYPES.len() {
            if let Some(at) = place(row, list) {
                let after_last = match last {
                    Some(last) => at > last,
                    None => true,
                };
                let before_best = match best {
                    Some((best, _)) => at < best,
                    None => true,
                };
                if after_last && before_best {
                    best = Some((at, row));
                }
            }
            row += 1;
        }
        let (at, row) = best.expect("count(list) rows have a place");
        out[k] = TYPES[row].name;
        last = Some(at);
        k += 1;
    }
    out
}

/// The row of type name `name`.
pub(crate) fn by_name(name: &str) -> Option<&'static TypeName> {
    TYPES.iter().find(|t| t.name == name)
}

/// The row of the column type `ty` (its variant; parameters aside).
pub(crate) fn of(ty: &FieldType) -> &'static TypeName {
    TYPES
        .iter()
        .find(|t| matches!(&t.declares, Declares::Column(c) if std::mem::discriminant(c) == std::mem::discriminant(ty)))
        .expect("every column type has a row")
}

/// The type name spelled `name` elsewhere (SQL, Rust, other ORMs), for "did you mean".
pub(crate) fn alias(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    TYPES
        .iter()
        .find(|t| t.aliases.contains(&lower.as_str()))
        .map(|t| t.name)
}

/// The field types that take field key `key`, for a message: "`string` and `char`".
pub(crate) fn taking(key: &str) -> String {
    let names: Vec<String> = TYPES
        .iter()
        .filter(|t| t.keys.contains(&key))
        .map(|t| format!("`{}`", t.name))
        .collect();
    spelled(&names, "and")
}

/// Names for a sentence: "a", "a and b", "a, b and c" (with `conjunction` "and").
pub(crate) fn spelled(names: &[impl AsRef<str>], conjunction: &str) -> String {
    let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
    match names.as_slice() {
        [rest @ .., last] if !rest.is_empty() => format!("{} {conjunction} {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// The relation type names (foreign_key, one_to_one, many_to_many), in table order.
pub(crate) fn relations() -> impl Iterator<Item = &'static str> {
    TYPES
        .iter()
        .filter(|t| matches!(t.declares, Declares::Relation(_) | Declares::ManyToMany))
        .map(|t| t.name)
}

/// Whether a column of type `type_key` (`big_integer`, `string(64)`) may be a primary key.
pub(crate) fn is_column_primary_key(type_key: &str) -> bool {
    let name = type_key.split('(').next().unwrap_or(type_key);
    by_name(name).is_some_and(|t| t.is_primary_key() && matches!(t.declares, Declares::Column(_)))
}

impl TypeName {
    /// Whether a column of this type may be a part of a composite primary key.
    pub(crate) fn is_key_part(&self) -> bool {
        self.key_part.is_some()
    }

    /// Whether this type may be a primary key of its own.
    pub(crate) fn is_primary_key(&self) -> bool {
        self.primary_key.is_some()
    }
}

/// The canonical name of a type, as used in the digest and in messages.
pub fn type_key(ty: &FieldType) -> String {
    let name = of(ty).name;
    match ty {
        FieldType::String { max_length } => format!("{name}({max_length})"),
        FieldType::Decimal { precision, scale } => format!("{name}({precision},{scale})"),
        FieldType::Enum(e) => format!(
            "{name}({})",
            e.values.iter().map(|v| v.value.as_str()).collect::<Vec<_>>().join("|")
        ),
        FieldType::Char { length } => format!("{name}({length})"),
        _ => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_keep_their_order() {
        assert_eq!(
            FIELD_TYPES,
            [
                "small_integer",
                "integer",
                "positive_integer",
                "big_integer",
                "boolean",
                "float",
                "string",
                "text",
                "bytes",
                "uuid",
                "date",
                "time",
                "datetime",
                "json",
                "decimal",
                "enum",
                "char",
                "foreign_key",
                "one_to_one",
                "many_to_many",
            ]
        );
        assert_eq!(
            PRIMARY_KEY_TYPES,
            ["auto", "string", "uuid", "big_integer", "integer", "small_integer"]
        );
        assert_eq!(
            KEY_PART_TYPES,
            [
                "integer",
                "small_integer",
                "positive_integer",
                "big_integer",
                "string",
                "uuid",
                "date",
                "enum"
            ]
        );
    }

    #[test]
    fn names_and_types_agree() {
        for ty in TYPES {
            if let Declares::Column(column) = &ty.declares {
                assert_eq!(of(column).name, ty.name);
            }
            assert_eq!(
                TYPES.iter().filter(|t| t.name == ty.name).count(),
                1,
                "{} twice",
                ty.name
            );
        }
        assert_eq!(taking("unsigned"), "`small_integer`, `integer` and `big_integer`");
        assert_eq!(taking("max_length"), "`string` and `char`");
        assert_eq!(taking("values"), "`enum`");
        assert_eq!(spelled(&["a", "b", "c"], "or"), "a, b or c");
        assert_eq!(
            spelled(PRIMARY_KEY_TYPES, "or"),
            "auto, string, uuid, big_integer, integer or small_integer"
        );
        assert!(is_column_primary_key("string(64)") && is_column_primary_key("small_integer"));
        assert!(!is_column_primary_key("auto") && !is_column_primary_key("date"));
        assert_eq!(alias("BIGINT"), Some("big_integer"));
        assert_eq!(
            relations().collect::<Vec<_>>(),
            ["foreign_key", "one_to_one", "many_to_many"]
        );
    }
}
