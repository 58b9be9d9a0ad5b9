//! Primary keys: a column of its own (its name, a primary key type, `max_length` for a
//! string) or composite (two or more non-null fields of a key type, none twice).

use std::collections::HashMap;

use super::context::{Column, ModelInfo, Validator};
use super::type_params::MAX_STRING_LENGTH;
use crate::diagnostic::did_you_mean;
use crate::ir::{Field, FieldType};
use crate::parse::{ModelDef, Pos, PrimaryKeyDef, PrimaryKeySpec, join};
use crate::type_names::{self, Declares, KEY_PART_TYPES, PRIMARY_KEY_TYPES, type_key};

/// Default primary key name.
pub const DEFAULT_PRIMARY_KEY: &str = "id";

impl Validator<'_> {
    /// A model's own primary key column (`primary_key: { name, type, max_length }`, or the
    /// implicit `id`): the field (`None` if invalid or composite), where it is, whether implicit.
    pub(super) fn primary_key(&mut self, model: &str, path: &str, def: &ModelDef) -> (Option<Field>, Pos, bool) {
        let pk_path = join(path, "primary_key");
        let pk = match &def.primary_key {
            None => {
                let pos = self.p.key_or_up(path);
                return (Some(pk_field(DEFAULT_PRIMARY_KEY, FieldType::BigInt, true)), pos, true);
            }
            // Its parts are checked with the fields (see `composite_key`).
            Some(PrimaryKeySpec::Composite(_)) => return (None, self.p.value_or_up(&pk_path), false),
            Some(PrimaryKeySpec::Column(pk)) => pk,
        };
        let name = pk.name.as_deref().unwrap_or(DEFAULT_PRIMARY_KEY);
        let name_pos = self
            .p
            .value(&join(&pk_path, "name"))
            .unwrap_or_else(|| self.p.key_or_up(&pk_path));
        let mut ok = self.check_snake_name(name, name_pos, "primary key name");
        let ty_name = pk.ty.as_deref().unwrap_or("auto");
        let declares = type_names::by_name(ty_name)
            .filter(|t| t.is_primary_key())
            .map(|t| &t.declares);
        let ty = self.primary_key_type(model, ty_name, declares, pk, &pk_path);
        let is_string = matches!(declares, Some(Declares::Column(FieldType::String { .. })));
        if !is_string && pk.max_length.is_some() {
            let pos = self.p.key_or_up(&join(&pk_path, "max_length"));
            self.err(
                "schema::key_not_applicable",
                pos,
                format!("`max_length` does not apply to a `{ty_name}` primary key"),
                "does not apply",
            )
            .set_help("only `string` primary keys take `max_length`");
            ok = false;
        }
        let field = ty
            .filter(|_| ok)
            .map(|ty| pk_field(name, ty, matches!(declares, Some(Declares::AutoKey))));
        (field, name_pos, false)
    }

    /// The IR type of a primary key of type `ty_name` (what it `declares`, if it may be a
    /// primary key); reports a type that cannot be one, or a string without `max_length`.
    fn primary_key_type(
        &mut self,
        model: &str,
        ty_name: &str,
        declares: Option<&Declares>,
        pk: &PrimaryKeyDef,
        pk_path: &str,
    ) -> Option<FieldType> {
        let type_pos = self
            .p
            .value(&join(pk_path, "type"))
            .unwrap_or_else(|| self.p.key_or_up(pk_path));
        match declares {
            Some(Declares::AutoKey) => Some(FieldType::BigInt),
            Some(Declares::Column(FieldType::String { .. })) => match pk.max_length {
                None => {
                    self.err(
                        "schema::missing_max_length",
                        type_pos,
                        format!("the string primary key of `{model}` needs `max_length`"),
                        "string without max_length",
                    )
                    .set_help(format!("add `max_length: 64` (between 1 and {MAX_STRING_LENGTH})"));
                    None
                }
                Some(n) => self
                    .max_length(n, &join(pk_path, "max_length"))
                    .map(|n| FieldType::String { max_length: n }),
            },
            Some(Declares::Column(ty)) => Some(ty.clone()),
            _ => {
                let help = did_you_mean(ty_name, PRIMARY_KEY_TYPES.iter().copied(), || None);
                let e = self.err(
                    "schema::invalid_primary_key",
                    type_pos,
                    format!(
                        "`{ty_name}` cannot be a primary key type; valid primary key types: {}",
                        PRIMARY_KEY_TYPES.join(", ")
                    ),
                    "invalid primary key type",
                );
                if let Some(help) = help {
                    e.set_help(help);
                }
                None
            }
        }
    }

    /// The fields (IR names) of a composite key `parts`: at least two, each a non-null
    /// column of the model (a field or a foreign key) of a type that keys compare and spell
    /// exactly, none twice, none set by the database.
    pub(super) fn composite_key(
        &mut self,
        info: &ModelInfo<'_>,
        parts: &[String],
        columns: &HashMap<String, Column>,
        fields: &[Field],
    ) -> Vec<String> {
        let path = join(&info.path, "primary_key");
        if parts.len() < 2 {
            let pos = self.p.value_or_up(&path);
            self.err(
                "schema::invalid_primary_key",
                pos,
                format!(
                    "a composite primary key needs at least two fields; `{}` lists {}",
                    info.name,
                    parts.len()
                ),
                "fewer than two fields",
            )
            .set_help("list two or more fields (`primary_key: [student, course]`), or declare one column as `primary_key: { name: id, type: integer }`");
            return Vec::new();
        }
        let mut names: Vec<String> = Vec::new();
        let mut seen: HashMap<String, Pos> = HashMap::new();
        for (i, part) in parts.iter().enumerate() {
            let pos = self.p.value_or_up(&join(&path, &i.to_string()));
            let Some((ir_name, _)) = self.resolve_column(info, columns, part, pos, "the primary key") else {
                continue;
            };
            if let Some(&first) = seen.get(&ir_name) {
                self.err(
                    "schema::invalid_primary_key",
                    pos,
                    format!("the primary key of `{}` names `{part}` twice", info.name),
                    "repeated",
                )
                .add_label(first, "first here")
                .set_help("each field may appear once in a composite primary key");
                continue;
            }
            seen.insert(ir_name.clone(), pos);
            let Some(field) = fields.iter().find(|f| f.name == ir_name) else {
                continue;
            };
            let problem = if field.nullable {
                Some("is nullable (`null: true`)".to_owned())
            } else if field.set_by_database.is_some() {
                Some("is set by the database".to_owned())
            } else if !type_names::of(&field.ty).is_key_part() {
                Some(format!("has type `{}`", type_key(&field.ty)))
            } else {
                None
            };
            if let Some(problem) = problem {
                self.err(
                    "schema::invalid_primary_key",
                    pos,
                    format!("`{}.{part}` cannot be part of the primary key: it {problem}", info.name),
                    "not a key part",
                )
                .set_help(format!(
                    "key parts are non-null foreign keys or fields of type {}, that the program sets",
                    type_names::spelled(KEY_PART_TYPES, "or")
                ));
                continue;
            }
            names.push(ir_name);
        }
        names
    }
}

/// The primary key column.
pub(super) fn pk_field(name: &str, ty: FieldType, auto: bool) -> Field {
    Field {
        name: name.to_string(),
        column: name.to_string(),
        ty,
        nullable: false,
        default: None,
        unique: false,
        auto,
        unsigned: false,
        set_by_database: None,
        relation: None,
    }
}
