//! Names that must differ from each other: tables across the schema, the members of a model
//! (fields, accessors, the primary key, reverse relations given by other models), the columns
//! of a table, and the Rust types generated for enum fields.

use std::collections::HashMap;

use super::context::{FieldInfo, Member, ModelBuild, ModelInfo, Validator};
use super::keys::DEFAULT_PRIMARY_KEY;
use super::names::MAX_NAME_LEN;
use crate::ir::{FieldType, Reverse, Schema};
use crate::parse::{Pos, join};

impl Validator<'_> {
    /// Records a table name; reports one used already (case-insensitively).
    pub(super) fn register_table(&mut self, table: &str, pos: Pos, what: String) {
        let lower = table.to_lowercase();
        if let Some((first, first_what)) = self.tables.get(&lower) {
            let (first, message) = (
                *first,
                format!("table `{table}` of {what} is already the table of {first_what}"),
            );
            self.err("schema::duplicate_table", pos, message, "duplicate table")
                .add_label(first, "first used here")
                .set_help(
                    "table names must be unique (case-insensitively); set `table:` (or `through:`) to another name",
                );
        } else {
            self.tables.insert(lower, (pos, what));
        }
    }

    /// Adds a name to the model's members (as `what`, declared at `key_pos`); reports it and
    /// returns false when the model has that name already.
    pub(super) fn add_member(
        &mut self,
        build: &mut ModelBuild<'_>,
        info: &ModelInfo<'_>,
        key_pos: Pos,
        name: &str,
        what: String,
    ) -> bool {
        let model_name = info.name;
        if let Some(existing) = build.members.get(name) {
            let (first, message) = (
                existing.pos,
                format!("{what} of `{model_name}` clashes with {}", existing.what),
            );
            let help = if existing.what.starts_with("the primary key") && info.pk_implicit {
                format!(
                    "every model has an implicit primary key `{DEFAULT_PRIMARY_KEY}` (`primary_key: {{ name: id, type: auto }}`); rename this field, or declare `primary_key:` with another name"
                )
            } else {
                "rename one of them".to_string()
            };
            self.err("schema::duplicate_field", key_pos, message, "name clash")
                .add_label(first, "already used here")
                .set_help(help);
            false
        } else {
            build.members.insert(
                name.to_string(),
                Member {
                    pos: key_pos,
                    what,
                    reverse: false,
                },
            );
            true
        }
    }

    /// The column of a field: its `column:` (checked) or `default`; reports a column the
    /// table has already (when `report`: not for a field whose name clashed).
    pub(super) fn column_name(
        &mut self,
        field: &FieldInfo<'_>,
        default: String,
        sql_columns: &mut HashMap<String, (Pos, String)>,
        report: bool,
    ) -> String {
        let (column, pos) = match &field.def.column {
            Some(column) => {
                let pos = self.p.value_or_up(&join(&field.path, "column"));
                self.check_sql_name(column, pos, "column");
                (column.clone(), pos)
            }
            None => {
                let pos = self.p.key_or_up(&field.path);
                if field.name.len() <= MAX_NAME_LEN {
                    self.check_derived_length(
                        &default,
                        pos,
                        &format!("column name `{default}` derived from field `{}`", field.name),
                        "set `column:` to a shorter name",
                    );
                }
                (default, pos)
            }
        };
        let lower = column.to_lowercase();
        match sql_columns.get(&lower) {
            Some((first, what)) if report => {
                let first = *first;
                let message = format!(
                    "column `{column}` of field `{}` is already the column of {what}",
                    field.name
                );
                self.err("schema::duplicate_column", pos, message, "duplicate column")
                    .add_label(first, "first used here")
                    .set_help(
                        "column names must be unique in a table (case-insensitively); set `column:` to another name",
                    );
            }
            Some(_) => {}
            None => {
                sql_columns.insert(lower, (pos, format!("field `{}`", field.name)));
            }
        }
        column
    }

    /// Gives each target model the reverse relations pointing at it (`schema.models[target]`),
    /// reporting a reverse name the target already has (a member, or another reverse).
    pub(super) fn attach_reverses(
        &mut self,
        infos: &[ModelInfo<'_>],
        members: &mut [HashMap<String, Member>],
        reverses: Vec<(usize, Reverse, Pos)>,
        schema: &mut Schema,
    ) {
        for (target, reverse, pos) in reverses {
            let target_name = infos[target].name;
            let (source, field) = (&reverse.source, &reverse.field);
            match members[target].get(&reverse.name) {
                Some(existing) => {
                    let (message, label, first_label, help) = if existing.reverse {
                        (
                            format!(
                                "reverse relation `{}` on `{target_name}` is defined twice: by {} and by `{source}.{field}`",
                                reverse.name, existing.what
                            ),
                            "same related_name",
                            "first defined here",
                            format!(
                                "give `{source}.{field}` a distinct `related_name:` (the default is `<model>_set`, or `<model>` for one_to_one)"
                            ),
                        )
                    } else {
                        (
                            format!(
                                "related name `{}` of `{source}.{field}` clashes with {} of `{target_name}`",
                                reverse.name, existing.what
                            ),
                            "clashing related_name",
                            "already a name on the target",
                            format!("set `related_name:` on `{source}.{field}` to a name `{target_name}` does not use"),
                        )
                    };
                    let first = existing.pos;
                    self.err("schema::reverse_clash", pos, message, label)
                        .add_label(first, first_label)
                        .set_help(help);
                }
                None => {
                    let what = format!("`{source}.{field}`");
                    members[target].insert(
                        reverse.name.clone(),
                        Member {
                            pos,
                            what,
                            reverse: true,
                        },
                    );
                    schema.models[target].reverse.push(reverse);
                }
            }
        }
    }

    /// Reports an `enum` field whose generated Rust type (`<Model><Field>`) has the name of
    /// another generated type: a model, its `New…`, `…Repo`, `…Filter` or `…Changes`, or
    /// another enum.
    pub(super) fn enum_type_clashes(&mut self, infos: &[ModelInfo<'_>], schema: &Schema) {
        let mut taken: HashMap<String, String> = HashMap::new();
        for model in &schema.models {
            let m = &model.name;
            for (name, what) in [
                (m.clone(), format!("model `{m}`")),
                (format!("New{m}"), format!("the new-row struct of `{m}`")),
                (format!("{m}Repo"), format!("the repository of `{m}`")),
                (format!("{m}Filter"), format!("the bulk filter of `{m}`")),
                (format!("{m}Changes"), format!("the bulk changes of `{m}`")),
            ] {
                taken.entry(name).or_insert(what);
            }
        }
        for (model, info) in schema.models.iter().zip(infos) {
            for field in &model.fields {
                let FieldType::Enum(e) = &field.ty else { continue };
                let path = join(&join(&info.path, "fields"), &field.name);
                let pos = self.p.key_or_up(&path);
                match taken.get(&e.name) {
                    Some(what) => {
                        let message = format!(
                            "the Rust enum `{}` of `{}.{}` has the name of {what}",
                            e.name, model.name, field.name
                        );
                        self.err("schema::invalid_enum", pos, message, "name clash")
                            .set_help("an enum field's Rust type is `<Model><Field>`: rename the field");
                    }
                    None => {
                        taken.insert(e.name.clone(), format!("the enum of `{}.{}`", model.name, field.name));
                    }
                }
            }
        }
    }
}
