//! Foreign keys and one-to-ones: the target (`to:`, a model with a single-column key), the
//! column and its type, `on_delete`, the reverse relation given to the target, and cycles of
//! NOT NULL foreign keys (whose first row could never be inserted).

use super::context::{Column, FieldInfo, ModelBuild, ModelInfo, Validator, listing};
use crate::diagnostic::did_you_mean;
use crate::ir::{Field, FieldType, OnDelete, Relation, RelationKind, Reverse, ReverseKind, Schema};
use crate::parse::{Pos, join};

/// `on_delete:` values.
pub const ON_DELETE_VALUES: &[&str] = &["cascade", "set_null", "restrict"];

impl Validator<'_> {
    /// Resolves `to:` of a relation; reports a missing or unknown target.
    pub(super) fn target<'m, 'i>(
        &mut self,
        infos: &'m [ModelInfo<'i>],
        known: &[&str],
        model: &str,
        field: &FieldInfo<'_>,
    ) -> Option<(usize, &'m ModelInfo<'i>)> {
        let ty = field.def.ty.as_deref().unwrap_or("?");
        let Some(to) = field.def.to.as_deref() else {
            let pos = self.p.key_or_up(&field.path);
            self.err(
                "schema::missing_target",
                pos,
                format!("`{ty}` field `{model}.{}` needs `to:` (the target model)", field.name),
                "no `to:`",
            )
            .set_help(format!("known models: {}", listing(known)));
            return None;
        };
        if let Some((index, target)) = infos.iter().enumerate().find(|(_, m)| m.name == to) {
            if target.composite.is_some() {
                let pos = self.p.value_or_up(&join(&field.path, "to"));
                self.err(
                    "schema::composite_target",
                    pos,
                    format!("`{model}.{}` points at `{to}`, whose primary key is composite", field.name),
                    "composite key",
                )
                .set_help(format!(
                    "relations can point only at models with a single-column primary key; reach `{to}` rows through its own foreign keys"
                ));
                return None;
            }
            return Some((index, target));
        }
        let pos = self.p.value_or_up(&join(&field.path, "to"));
        let help = did_you_mean(to, known.iter().copied(), || None);
        let e = self.err(
            "schema::unknown_model",
            pos,
            format!("unknown model `{to}` in `to`; known models: {}", listing(known)),
            "unknown model",
        );
        e.set_help(help.unwrap_or_else(|| "declare the model under `models:`, or fix the name".to_string()));
        None
    }

    /// The `related_name:` of a relation (checked), else `default`.
    pub(super) fn related_name(&mut self, field: &FieldInfo<'_>, default: String) -> String {
        match &field.def.related_name {
            Some(name) => {
                let pos = self.p.value_or_up(&join(&field.path, "related_name"));
                self.check_snake_name(name, pos, "related_name");
                name.clone()
            }
            None => default,
        }
    }

    /// Reads a foreign key or one-to-one of `info`: its `<name>_id` column and IR field, its
    /// target and `on_delete`, and the reverse relation it gives its target.
    pub(super) fn relation_field(
        &mut self,
        info: &ModelInfo<'_>,
        field: &FieldInfo<'_>,
        kind: RelationKind,
        build: &mut ModelBuild<'_>,
    ) {
        let model_name = info.name;
        let key_pos = self.p.key_or_up(&field.path);
        let ir_name = format!("{}_id", field.name);
        let (kind_word, reverse_kind) = match kind {
            RelationKind::ForeignKey => ("foreign key", ReverseKind::Collection),
            RelationKind::OneToOne => ("one_to_one", ReverseKind::One),
        };
        let fresh = self.add_member(
            build,
            info,
            key_pos,
            field.name,
            format!("{kind_word} `{}`", field.name),
        ) & self.add_member(
            build,
            info,
            key_pos,
            &ir_name,
            format!("column `{ir_name}` of {kind_word} `{}`", field.name),
        );
        let target = self.target(build.infos, build.known, model_name, field);
        let ty = match target {
            Some((_, t)) => t.pk.as_ref().map(|pk| fk_type(&pk.ty)).unwrap_or(FieldType::BigInt),
            None => FieldType::BigInt,
        };
        // Named by either name: the relation's or its column's.
        for name in [field.name.to_string(), ir_name.clone()] {
            let column = Column {
                ir_name: ir_name.clone(),
                ty: Some(ty.clone()),
                many_to_many: false,
            };
            build.columns.insert(name, column);
        }
        let nullable = field.def.null.unwrap_or(false);
        let on_delete = self.on_delete(model_name, field, nullable);
        let default_related = match kind {
            RelationKind::ForeignKey => format!("{}_set", info.snake),
            RelationKind::OneToOne => info.snake.clone(),
        };
        let related_name = self.related_name(field, default_related);
        let column = self.column_name(field, ir_name.clone(), &mut build.sql_columns, fresh);
        let target_name = field.def.to.clone().unwrap_or_default();
        if let Some((target_index, _)) = target {
            self.add_reverse(build, info, field, target_index, &related_name, reverse_kind);
        }
        build.fields.push(Field {
            name: ir_name,
            column,
            ty,
            nullable,
            default: None,
            unique: kind == RelationKind::OneToOne,
            auto: false,
            unsigned: false,
            set_by_database: None,
            relation: Some(Relation {
                kind,
                name: field.name.to_string(),
                target: target_name,
                related_name,
                on_delete,
            }),
        });
    }

    /// Records the reverse relation (`name`, of `kind`) that `field` of `info` gives the
    /// model at `target`.
    pub(super) fn add_reverse(
        &self,
        build: &mut ModelBuild<'_>,
        info: &ModelInfo<'_>,
        field: &FieldInfo<'_>,
        target: usize,
        name: &str,
        kind: ReverseKind,
    ) {
        let pos = self.reverse_pos(field);
        let reverse = Reverse {
            name: name.to_owned(),
            source: info.name.to_string(),
            field: field.name.to_string(),
            kind,
        };
        build.reverses.push((target, reverse, pos));
    }

    /// Where a reverse-name problem is reported: the `related_name`, else `to`, else the field.
    fn reverse_pos(&self, field: &FieldInfo<'_>) -> Pos {
        self.p
            .value(&join(&field.path, "related_name"))
            .or_else(|| self.p.value(&join(&field.path, "to")))
            .unwrap_or_else(|| self.p.key_or_up(&field.path))
    }

    /// `on_delete:` of a relation: cascade (the default), set_null or restrict; `set_null`
    /// needs a `nullable` column.
    fn on_delete(&mut self, model_name: &str, field: &FieldInfo<'_>, nullable: bool) -> OnDelete {
        let on_delete = match field.def.on_delete.as_deref() {
            None | Some("cascade") => OnDelete::Cascade,
            Some("set_null") => OnDelete::SetNull,
            Some("restrict") => OnDelete::Restrict,
            Some(other) => {
                let pos = self.p.value_or_up(&join(&field.path, "on_delete"));
                let help = did_you_mean(other, ON_DELETE_VALUES.iter().copied(), || None);
                let e = self.err(
                    "schema::unknown_on_delete",
                    pos,
                    format!(
                        "unknown `on_delete` value `{other}`; valid values: {}",
                        ON_DELETE_VALUES.join(", ")
                    ),
                    "unknown value",
                );
                if let Some(help) = help {
                    e.set_help(help);
                }
                OnDelete::Cascade
            }
        };
        if on_delete == OnDelete::SetNull && !nullable {
            let pos = self.p.value_or_up(&join(&field.path, "on_delete"));
            let message = format!(
                "`on_delete: set_null` on `{model_name}.{}` requires `null: true`",
                field.name
            );
            self.err("schema::set_null_not_nullable", pos, message, "column is not nullable")
                .set_help(format!(
                    "add `null: true` to `{}`, or use `on_delete: cascade` or `on_delete: restrict`",
                    field.name
                ));
        }
        on_delete
    }

    /// Reports every cycle of foreign keys (or one-to-ones) whose columns are all NOT NULL:
    /// the first row of such a cycle could never be inserted. A model pointing at itself is
    /// such a cycle when the database assigns its primary key (`auto`); otherwise its first
    /// row can point at itself. One error per cycle, at its first field in declaration order.
    pub(super) fn not_null_cycles(&mut self, infos: &[ModelInfo<'_>], schema: &Schema) {
        let index = |name: &str| schema.models.iter().position(|m| m.name == name);
        // (source model, target model, field name) of every NOT NULL foreign key.
        let edges: Vec<(usize, usize, &str)> = schema
            .models
            .iter()
            .enumerate()
            .flat_map(|(source, model)| {
                model.fields.iter().filter(|f| !f.nullable).filter_map(move |f| {
                    let relation = f.relation.as_ref()?;
                    Some((source, relation.target.as_str(), relation.name.as_str()))
                })
            })
            .filter_map(|(source, target, field)| Some((source, index(target)?, field)))
            .filter(|&(source, target, _)| {
                source != target || schema.models[source].key_column().is_some_and(|key| key.auto)
            })
            .collect();
        let n = schema.models.len();
        let mut reach = vec![vec![false; n]; n];
        for &(source, target, _) in &edges {
            reach[source][target] = true;
        }
        for k in 0..n {
            let via = reach[k].clone();
            for row in &mut reach {
                if row[k] {
                    row.iter_mut().zip(&via).for_each(|(cell, &through)| *cell |= through);
                }
            }
        }
        let mut reported = vec![false; n];
        for model in 0..n {
            if reported[model] || !reach[model][model] {
                continue;
            }
            let cycle: Vec<usize> = (0..n).filter(|&m| reach[model][m] && reach[m][model]).collect();
            cycle.iter().for_each(|&m| reported[m] = true);
            let inside: Vec<&(usize, usize, &str)> = edges
                .iter()
                .filter(|(source, target, _)| cycle.contains(source) && cycle.contains(target))
                .collect();
            let names: Vec<String> = inside
                .iter()
                .map(|(source, target, field)| {
                    format!(
                        "`{}.{field}` → `{}`",
                        schema.models[*source].name, schema.models[*target].name
                    )
                })
                .collect();
            let &&(source, _, field) = inside.first().expect("a cycle has an edge");
            let Some(info) = infos
                .get(source)
                .and_then(|i| i.fields.iter().find(|f| f.name == field))
            else {
                continue;
            };
            let pos = self.p.value_or_up(&join(&info.path, "to"));
            self.err(
                "schema::not_null_cycle",
                pos,
                format!(
                    "foreign keys form a cycle of NOT NULL columns: {}; the first row of the cycle could never be inserted",
                    names.join(", ")
                ),
                "NOT NULL cycle",
            )
            .set_help(
                "make one of these fields `null: true`: insert that row with NULL first, then set the column once the row it points at exists",
            );
        }
    }
}

/// The column type of a foreign key to a model whose primary key has type `pk`.
///
/// Every primary key type (`auto` = big_integer, string, uuid, big_integer, integer) can be
/// referenced; the foreign key stores the same type, never auto-generated.
fn fk_type(pk: &FieldType) -> FieldType {
    pk.clone()
}
