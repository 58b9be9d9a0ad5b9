//! One field as declared: its name, its `type:` (a name of `type_names`, with the parameters in
//! `type_params`), the keys that apply to that type, its `default:` and `auto_now`/`auto_now_add`.

use super::context::{FieldInfo, Kind, Validator};
use crate::diagnostic::did_you_mean;
use crate::ir::{DefaultValue, FieldType, RelationKind, SetBy};
use crate::parse::{self, FieldDef, Pos, join};
use crate::type_names::{self, Declares, FIELD_TYPES};

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
            Some(ty) => match type_names::by_name(ty).map(|t| &t.declares) {
                Some(Declares::Column(FieldType::String { .. })) => {
                    Kind::Column(self.string(model, name, path, def, type_pos))
                }
                Some(Declares::Column(FieldType::Decimal { .. })) => Kind::Column(self.decimal(model, name, path, def)),
                Some(Declares::Column(FieldType::Enum(_))) => Kind::Column(self.enumeration(model, name, path, def)),
                Some(Declares::Column(FieldType::Char { .. })) => Kind::Column(FieldType::Char {
                    length: self.char_length(model, name, path, def),
                }),
                Some(Declares::Column(ty)) => Kind::Column(ty.clone()),
                Some(Declares::Relation(kind)) => Kind::Relation(*kind),
                Some(Declares::ManyToMany) => Kind::ManyToMany,
                Some(Declares::AutoKey) => {
                    self.err("schema::unknown_type", type_pos, "`auto` is only a primary key type", "not a field type")
                        .set_help(format!(
                            "declare it as `primary_key: {{ name: {name}, type: auto }}`, or use `big_integer` for a plain column"
                        ));
                    Kind::Invalid
                }
                None => {
                    let help = did_you_mean(ty, FIELD_TYPES.iter().copied(), || {
                        type_names::alias(ty).map(|t| format!("did you mean `{t}`?"))
                    });
                    let e = self.err(
                        "schema::unknown_type",
                        type_pos,
                        format!("unknown type `{ty}`; valid types: {}", FIELD_TYPES.join(", ")),
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
        let Some(allowed) = type_names::by_name(ty)
            .filter(|_| !matches!(kind, Kind::Invalid))
            .map(|t| t.keys)
        else {
            return;
        };
        let keys: Vec<(String, Pos)> = self.p.keys(path).to_vec();
        for (key, pos) in keys {
            if allowed.contains(&key.as_str()) || !parse::FIELD_KEYS.contains(&key.as_str()) {
                continue;
            }
            let why = match (key.as_str(), kind) {
                ("index", Kind::Relation(_)) => {
                    "foreign keys are indexed already: their rows are the target's reverse collection (or name the column in a model's `indexes:` group)".to_string()
                }
                ("unsigned", Kind::Column(FieldType::PositiveInt)) => {
                    "a `positive_integer` is never negative already".to_string()
                }
                ("max_length" | "precision" | "scale" | "values" | "auto_now_add" | "auto_now" | "unsigned", _) => {
                    format!("only {} fields take `{key}`", type_names::taking(&key))
                }
                ("to" | "related_name" | "on_delete", Kind::Column(_)) => {
                    let relations: Vec<&str> = type_names::relations().collect();
                    format!("`{key}` is for relations ({})", relations.join(", "))
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
