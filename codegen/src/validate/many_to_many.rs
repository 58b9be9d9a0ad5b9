//! Many-to-many relations: the join table (derived, named by `through:`, or a through
//! model's table) and its two columns, the reverse relation given to the target, and the
//! rules a through model follows.

use heck::ToSnakeCase;

use super::context::{Column, FieldInfo, ModelBuild, ModelInfo, Validator};
use super::names::{MAX_NAME_LEN, MAX_SQL_IDENTIFIER};
use crate::ir::{ManyToMany, Model, PrimaryKey, RelationKind, ReverseKind, Schema};
use crate::parse::{Pos, join};

impl Validator<'_> {
    /// Reads a many-to-many of `info`: its join table and columns, its target, and the
    /// reverse relation it gives its target.
    pub(super) fn many_to_many_field(
        &mut self,
        info: &ModelInfo<'_>,
        field: &FieldInfo<'_>,
        build: &mut ModelBuild<'_>,
    ) {
        let model_name = info.name;
        let key_pos = self.p.key_or_up(&field.path);
        self.add_member(
            build,
            info,
            key_pos,
            field.name,
            format!("many_to_many `{}`", field.name),
        );
        build.columns.insert(
            field.name.to_string(),
            Column {
                ir_name: field.name.to_string(),
                ty: None,
                many_to_many: true,
            },
        );
        let target = self.target(build.infos, build.known, model_name, field);
        let related_name = self.related_name(field, format!("{}_set", info.snake));
        let (through, through_model) = self.join_table(info, field, build.infos);
        let target_name = field.def.to.clone().unwrap_or_default();
        let target_snake = target
            .map(|(_, t)| t.snake.clone())
            .unwrap_or_else(|| target_name.to_snake_case());
        let (source_column, target_column) = if target_name == model_name {
            (format!("from_{}_id", info.snake), format!("to_{target_snake}_id"))
        } else {
            (format!("{}_id", info.snake), format!("{target_snake}_id"))
        };
        let target_ok = target.is_some_and(|(_, t)| t.name.len() <= MAX_NAME_LEN);
        if target_ok && model_name.len() <= MAX_NAME_LEN {
            for column in [&source_column, &target_column] {
                self.check_derived_length(
                    column,
                    key_pos,
                    &format!(
                        "join table column `{column}` of many_to_many `{model_name}.{}`",
                        field.name
                    ),
                    "join table columns are named after the models (`<model>_id`): shorten the model name",
                );
            }
        }
        if let Some((target_index, _)) = target {
            self.add_reverse(build, info, field, target_index, &related_name, ReverseKind::ManyToMany);
        }
        build.many_to_many.push(ManyToMany {
            name: field.name.to_string(),
            target: target_name,
            related_name,
            through,
            through_model,
            source_column,
            target_column,
        });
    }

    /// The join table of many-to-many `field` of `info`, and the through model when
    /// `through:` names one of `infos` (its table and columns are set by `through_models`);
    /// a join table of its own is checked and registered.
    fn join_table(
        &mut self,
        info: &ModelInfo<'_>,
        field: &FieldInfo<'_>,
        infos: &[ModelInfo<'_>],
    ) -> (String, Option<String>) {
        let model_name = info.name;
        let key_pos = self.p.key_or_up(&field.path);
        // A `through:` naming a model: its table and columns are set once every
        // model is known (see `through_models`).
        let through_model = field
            .def
            .through
            .clone()
            .filter(|through| infos.iter().any(|m| m.name == through));
        let through = match &field.def.through {
            Some(through) if through_model.is_some() => through.clone(),
            Some(through) => {
                let pos = self.p.value_or_up(&join(&field.path, "through"));
                self.check_sql_name(through, pos, "join table");
                through.clone()
            }
            None => {
                let through = format!("{}_{}", info.table, field.name);
                if info.table.len() <= MAX_SQL_IDENTIFIER && field.name.len() <= MAX_NAME_LEN {
                    self.check_derived_length(
                        &through,
                        key_pos,
                        &format!("join table name `{through}` derived from `{model_name}.{}`", field.name),
                        "set `through:` to a shorter name",
                    );
                }
                through
            }
        };
        let through_pos = self.p.value(&join(&field.path, "through")).unwrap_or(key_pos);
        if through_model.is_none() {
            self.register_table(
                &through,
                through_pos,
                format!("many_to_many `{model_name}.{}`", field.name),
            );
        }
        (through, through_model)
    }

    /// Checks each many-to-many whose `through:` names a model and points it at that model's
    /// table and foreign-key columns: the through model's composite key is exactly one
    /// foreign key to each side, and its other fields are plain columns an `add_…` insert can
    /// leave out (nullable, defaulted or set by the database; no relation, unique or index).
    pub(super) fn through_models(&mut self, schema: &mut Schema) {
        let mut used: Vec<String> = Vec::new();
        for index in 0..schema.models.len() {
            for m2m_index in 0..schema.models[index].many_to_many.len() {
                let source = &schema.models[index];
                let m2m = &source.many_to_many[m2m_index];
                let Some(name) = m2m.through_model.clone() else {
                    continue;
                };
                let path = format!("models.{}.fields.{}.through", source.name, m2m.name);
                let pos = self.p.value_or_up(&path);
                let relation = format!("many_to_many `{}.{}`", source.name, m2m.name);
                let Some(through) = schema.models.iter().find(|m| m.name == name) else {
                    continue;
                };
                let foreign_key = |to: &str| {
                    let mut found = through.fields.iter().filter(|f| {
                        f.relation
                            .as_ref()
                            .is_some_and(|r| r.target == to && r.kind == RelationKind::ForeignKey)
                    });
                    match (found.next(), found.next()) {
                        (Some(field), None) => Some(field),
                        _ => None,
                    }
                };
                let sides = (foreign_key(&source.name), foreign_key(&m2m.target));
                let problem = match (&through.primary_key, sides) {
                    _ if source.name == m2m.target => {
                        Some("a many_to_many of a model with itself cannot have a through model".to_string())
                    }
                    _ if used.contains(&name) => {
                        Some(format!("`{name}` is already the through model of another many_to_many"))
                    }
                    (PrimaryKey::Composite(parts), (Some(this), Some(other)))
                        if parts.len() == 2 && parts.contains(&this.name) && parts.contains(&other.name) =>
                    {
                        None
                    }
                    _ => Some(format!(
                        "through model `{name}` of {relation} needs `primary_key: [<its foreign key to `{}`>, <its foreign key to `{}`>]`: exactly one `foreign_key` (not `one_to_one`) to each side, together its key",
                        source.name, m2m.target
                    )),
                };
                if let Some(message) = problem {
                    self.err("schema::invalid_through_model", pos, message, "through model")
                        .set_help("declare the pair's model with exactly one foreign key to each side, and `primary_key:` made of those two");
                    continue;
                }
                used.push(name.clone());
                let (this, other) = (sides.0.map(|f| f.column.clone()), sides.1.map(|f| f.column.clone()));
                self.through_columns(through, &source.name, &m2m.target, &relation, pos);
                let table = through.table.clone();
                let m2m = &mut schema.models[index].many_to_many[m2m_index];
                m2m.through = table;
                (m2m.source_column, m2m.target_column) = (this.unwrap_or_default(), other.unwrap_or_default());
            }
        }
    }

    /// Reports the columns of `through` (the through model of `relation`, used at `pos`,
    /// between `source` and `target`) that an `add_…` insert could not leave out, and its
    /// indexes.
    fn through_columns(&mut self, through: &Model, source: &str, target: &str, relation: &str, pos: Pos) {
        let name = &through.name;
        let mut problems = Vec::new();
        for field in &through.fields {
            if field
                .relation
                .as_ref()
                .is_some_and(|r| r.target == source || r.target == target)
            {
                continue;
            }
            let yaml_name = field.relation.as_ref().map_or(&field.name, |r| &r.name);
            let plain = field.relation.is_none() && !field.unique;
            if !plain || !(field.nullable || field.default.is_some() || field.set_by_database.is_some()) {
                let field_pos = self.p.key_or_up(&format!("models.{name}.fields.{yaml_name}"));
                problems.push((field_pos, format!(
                    "field `{name}.{yaml_name}` of through model `{name}` ({relation}) must be a plain column (no relation or `unique`) with `null: true`, a `default` or `auto_now`/`auto_now_add`"
                )));
            }
        }
        if !through.indexes.is_empty() || !through.unique_together.is_empty() {
            let model_pos = self.p.key_or_up(&format!("models.{name}"));
            problems.push((
                model_pos,
                format!("through model `{name}` ({relation}) cannot have `indexes`, `index` or `unique_together`"),
            ));
        }
        for (problem_pos, message) in problems {
            self.err(
                "schema::invalid_through_model",
                problem_pos,
                message,
                "through model column",
            )
            .add_label(pos, "used as a through model here")
            .set_help(
                "`add_…` inserts a pair with its two keys only: the other columns need a value the database gives",
            );
        }
    }
}
