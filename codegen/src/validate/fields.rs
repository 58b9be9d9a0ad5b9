//! One field as declared: its name, its `type:` (with the parameters in `type_params`), the
//! keys that apply to that type, its `default:` and `auto_now`/`auto_now_add`.

use super::context::{FieldInfo, Kind, Validator};
use super::type_params::MAX_STRING_LENGTH;
use crate::diagnostic::did_you_mean;
use crate::ir::{DefaultValue, FieldType, RelationKind, SetBy};
use crate::parse::{self, FieldDef, Pos, join};

/// Every field type, in documentation order.
pub const FIELD_TYPES: &[&str] = &[
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
];
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

impl<'a> Validator<'a> {
    /// Reads one field: its name, what it is, its default and whether the database sets it.
    pub(super) fn field_info(&mut self, model: &str, name: &'a str, path: &str, def: &'a FieldDef) -> FieldInfo<'a> {
        let key_pos = self.p.key_or_up(path);
        self.check_snake_name(name, key_pos, "field name");
        let kind = self.kind(model, name, path, def, key_pos);
        if let Some(ty) = def.ty.as_deref() {
            self.check_applicable_keys(path, ty, &kind);
        }
        let mut default = self.field_default(model, name, path, def, &kind);
        let set_by_database = self.set_by_database(model, name, path, def, &mut default);
        FieldInfo {
            name,
            path: path.to_string(),
            def,
            kind,
            default,
            set_by_database,
        }
    }

    /// What a field is, from its `type:` (and, for the types that take them, its parameters);
    /// reports a missing or unknown type.
    fn kind(&mut self, model: &str, name: &str, path: &str, def: &FieldDef, key_pos: Pos) -> Kind {
        let type_pos = self.p.value(&join(path, "type")).unwrap_or(key_pos);
        match def.ty.as_deref() {
            None => {
                self.err(
                    "schema::missing_type",
                    key_pos,
                    format!("field `{model}.{name}` has no `type`"),
                    "no `type:`",
                )
                .set_help(format!("valid types: {}", FIELD_TYPES.join(", ")));
                Kind::Invalid
            }
            Some(ty) => match ty {
                "small_integer" => Kind::Column(FieldType::SmallInt),
                "integer" => Kind::Column(FieldType::Int),
                "positive_integer" => Kind::Column(FieldType::PositiveInt),
                "big_integer" => Kind::Column(FieldType::BigInt),
                "boolean" => Kind::Column(FieldType::Bool),
                "float" => Kind::Column(FieldType::Float),
                "text" => Kind::Column(FieldType::Text),
                "bytes" => Kind::Column(FieldType::Bytes),
                "uuid" => Kind::Column(FieldType::Uuid),
                "date" => Kind::Column(FieldType::Date),
                "time" => Kind::Column(FieldType::Time),
                "datetime" => Kind::Column(FieldType::DateTime),
                "json" => Kind::Column(FieldType::Json),
                "decimal" => Kind::Column(self.decimal(model, name, path, def)),
                "enum" => Kind::Column(self.enumeration(model, name, path, def)),
                "char" => Kind::Column(FieldType::Char {
                    length: self.char_length(model, name, path, def),
                }),
                "foreign_key" => Kind::Relation(RelationKind::ForeignKey),
                "one_to_one" => Kind::Relation(RelationKind::OneToOne),
                "many_to_many" => Kind::ManyToMany,
                "string" => match def.max_length {
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
                        Kind::Column(FieldType::String {
                            max_length: MAX_STRING_LENGTH as u32,
                        })
                    }
                    Some(n) => {
                        let max_length = self.max_length(n, &join(path, "max_length"));
                        Kind::Column(FieldType::String {
                            max_length: max_length.unwrap_or(MAX_STRING_LENGTH as u32),
                        })
                    }
                },
                "auto" => {
                    self.err("schema::unknown_type", type_pos, "`auto` is only a primary key type", "not a field type")
                        .set_help(format!(
                            "declare it as `primary_key: {{ name: {name}, type: auto }}`, or use `big_integer` for a plain column"
                        ));
                    Kind::Invalid
                }
                other => {
                    let help = did_you_mean(other, FIELD_TYPES.iter().copied(), || {
                        type_alias(other).map(|t| format!("did you mean `{t}`?"))
                    });
                    let e = self.err(
                        "schema::unknown_type",
                        type_pos,
                        format!("unknown type `{other}`; valid types: {}", FIELD_TYPES.join(", ")),
                        "unknown type",
                    );
                    if let Some(help) = help {
                        e.set_help(help);
                    }
                    Kind::Invalid
                }
            },
        }
    }

    /// `auto_now_add` / `auto_now` of a `datetime` field (at most one, without a `default`:
    /// the database sets the value, so the field's default becomes "now").
    fn set_by_database(
        &mut self,
        model: &str,
        name: &str,
        path: &str,
        def: &FieldDef,
        default: &mut Option<DefaultValue>,
    ) -> Option<SetBy> {
        let set_by = match (def.auto_now_add == Some(true), def.auto_now == Some(true)) {
            (false, false) => return None,
            (true, true) => {
                let pos = self.p.key_or_up(&join(path, "auto_now"));
                self.err(
                    "schema::invalid_auto_now",
                    pos,
                    format!("`{model}.{name}` has both `auto_now_add` and `auto_now`"),
                    "both given",
                )
                .set_help("`auto_now` sets the time on insert too: keep one of them");
                return None;
            }
            (true, false) => SetBy::Insert,
            (false, true) => SetBy::EveryWrite,
        };
        if def.default.is_some() {
            let pos = self.p.key_or_up(&join(path, "default"));
            self.err(
                "schema::invalid_auto_now",
                pos,
                format!("`{model}.{name}` is set by the database (`auto_now_add` / `auto_now`) and has a `default`"),
                "default not used",
            )
            .set_help("remove `default:`; the database writes the current time");
        }
        *default = Some(DefaultValue::Now);
        Some(set_by)
    }

    /// Reports keys given to a field whose type does not take them.
    fn check_applicable_keys(&mut self, path: &str, ty: &str, kind: &Kind) {
        let allowed = match kind {
            Kind::Invalid => return,
            Kind::Column(FieldType::String { .. } | FieldType::Char { .. }) => STRING_KEYS,
            Kind::Column(FieldType::SmallInt | FieldType::Int | FieldType::BigInt) => INTEGER_KEYS,
            Kind::Column(FieldType::Decimal { .. }) => DECIMAL_KEYS,
            Kind::Column(FieldType::Enum(_)) => ENUM_KEYS,
            Kind::Column(FieldType::DateTime) => DATETIME_KEYS,
            Kind::Column(_) => COLUMN_KEYS,
            Kind::Relation(_) => RELATION_KEYS,
            Kind::ManyToMany => M2M_KEYS,
        };
        let keys: Vec<(String, Pos)> = self.p.keys(path).to_vec();
        for (key, pos) in keys {
            if allowed.contains(&key.as_str()) || !parse::FIELD_KEYS.contains(&key.as_str()) {
                continue;
            }
            let why = match (key.as_str(), kind) {
                ("max_length", _) => "only `string` and `char` fields take `max_length`".to_string(),
                ("precision" | "scale", _) => format!("only `decimal` fields take `{key}`"),
                ("values", _) => "only `enum` fields take `values`".to_string(),
                ("auto_now_add" | "auto_now", _) => format!("only `datetime` fields take `{key}`"),
                ("index", Kind::Relation(_)) => {
                    "foreign keys are indexed already: their rows are the target's reverse collection (or name the column in a model's `indexes:` group)".to_string()
                }
                ("unsigned", Kind::Column(FieldType::PositiveInt)) => {
                    "a `positive_integer` is never negative already".to_string()
                }
                ("unsigned", _) => {
                    "only `small_integer`, `integer` and `big_integer` fields take `unsigned`".to_string()
                }
                ("to" | "related_name" | "on_delete", Kind::Column(_)) => {
                    format!("`{key}` is for relations (foreign_key, one_to_one, many_to_many)")
                }
                ("through", _) => "`through` (the join table) is for many_to_many only".to_string(),
                ("unique", Kind::Relation(RelationKind::ForeignKey)) => {
                    "a unique foreign key is a `one_to_one`: use `type: one_to_one`".to_string()
                }
                ("unique", Kind::Relation(RelationKind::OneToOne)) => {
                    "one_to_one columns are always unique".to_string()
                }
                ("default", Kind::Relation(_)) => "relations take no default value".to_string(),
                (_, Kind::ManyToMany) => {
                    "a many_to_many has no column of its own: it lives in a join table".to_string()
                }
                _ => format!("`{key}` does not apply here"),
            };
            self.err(
                "schema::key_not_applicable",
                pos,
                format!("`{key}` does not apply to `{ty}` fields"),
                "does not apply",
            )
            .set_help(format!(
                "{why}\nkeys that apply to `{ty}` fields: {}",
                allowed.join(", ")
            ));
        }
    }
}

/// The autocache type for a type name from SQL, Rust or other ORMs, for "did you mean".
fn type_alias(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "int" | "int4" | "i32" | "int32" => "integer",
        "smallint" | "int2" | "i16" | "int16" => "small_integer",
        "bigint" | "int8" | "i64" | "int64" | "long" => "big_integer",
        "uint" | "u32" | "unsigned" | "positive" => "positive_integer",
        "bool" => "boolean",
        "double" | "real" | "f64" | "f32" => "float",
        "numeric" | "money" | "decimalfield" => "decimal",
        "enumeration" | "choice" | "choices" => "enum",
        "character" | "bpchar" => "char",
        "str" | "varchar" | "charfield" => "string",
        "textfield" | "clob" | "longtext" => "text",
        "blob" | "binary" | "bytea" | "vec<u8>" => "bytes",
        "timestamp" | "timestamptz" | "datetimefield" => "datetime",
        "fk" | "foreignkey" | "belongs_to" | "reference" => "foreign_key",
        "o2o" | "onetoone" | "has_one" => "one_to_one",
        "m2m" | "manytomany" | "has_many" => "many_to_many",
        "jsonb" => "json",
        _ => return None,
    })
}
