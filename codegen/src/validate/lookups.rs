//! Lookups beyond the primary key: `unique_together` groups and non-unique indexes (`index:
//! true` and `indexes:` groups), each a cached `get_by_…` or `find_by_…` read.

use std::collections::HashMap;

use super::context::{Column, Kind, ModelInfo, Validator};
use crate::ir::{Field, FieldType, Model};
use crate::parse::{Pos, join};
use crate::type_names::type_key;

impl Validator<'_> {
    /// The model's `unique_together` groups (two or more fields each, none twice in a group).
    pub(super) fn unique_together(
        &mut self,
        info: &ModelInfo<'_>,
        columns: &HashMap<String, Column>,
    ) -> Vec<Vec<String>> {
        let mut groups = Vec::new();
        let path = join(&info.path, "unique_together");
        for (i, group) in info.def.unique_together.iter().flatten().enumerate() {
            let group_path = join(&path, &i.to_string());
            let group_pos = self.p.value_or_up(&group_path);
            if group.len() < 2 {
                self.err(
                    "schema::invalid_unique_together",
                    group_pos,
                    "a `unique_together` group needs at least two fields",
                    "fewer than two fields",
                )
                .set_help("for a single field, use `unique: true` on the field");
                continue;
            }
            let code = "schema::invalid_unique_together";
            if let Some(names) = self.field_group(info, columns, group, &group_path, "`unique_together`", code) {
                groups.push(names);
            }
        }
        groups
    }

    /// The model's non-unique indexes: a group per field with `index: true`, then the
    /// groups of `indexes:` (one or more fields each, foreign keys by either name). Not on
    /// JSON or bytes (no useful equality), not on a unique field alone, each group once.
    pub(super) fn indexes(
        &mut self,
        info: &ModelInfo<'_>,
        columns: &HashMap<String, Column>,
        model: &Model,
    ) -> Vec<Vec<String>> {
        let mut groups: Vec<(Vec<String>, Pos)> = Vec::new();
        for field in &info.fields {
            if field.def.index == Some(true) && matches!(field.kind, Kind::Column(_)) {
                let pos = self.p.key_or_up(&join(&field.path, "index"));
                groups.push((vec![field.name.to_string()], pos));
            }
        }
        let path = join(&info.path, "indexes");
        for (i, group) in info.def.indexes.iter().flatten().enumerate() {
            let group_path = join(&path, &i.to_string());
            let group_pos = self.p.value_or_up(&group_path);
            if group.is_empty() {
                self.err(
                    "schema::invalid_index",
                    group_pos,
                    "an `indexes` group needs at least one field",
                    "empty",
                )
                .set_help("list the fields of the index, e.g. `indexes: [[store, last_name]]`");
                continue;
            }
            if let Some(names) =
                self.field_group(info, columns, group, &group_path, "`indexes`", "schema::invalid_index")
            {
                groups.push((names, group_pos));
            }
        }
        self.indexable(model, groups)
    }

    /// The fields (IR names) of one group of `context` (`unique_together`, `indexes`) at
    /// `group_path`; `None` when a name is unknown or repeated (reported with `code`).
    fn field_group(
        &mut self,
        info: &ModelInfo<'_>,
        columns: &HashMap<String, Column>,
        group: &[String],
        group_path: &str,
        context: &str,
        code: &'static str,
    ) -> Option<Vec<String>> {
        let mut names: Vec<String> = Vec::new();
        let mut ok = true;
        for (j, name) in group.iter().enumerate() {
            let pos = self.p.value_or_up(&join(group_path, &j.to_string()));
            match self.resolve_column(info, columns, name, pos, context) {
                Some((ir_name, _)) if names.contains(&ir_name) => {
                    self.err(
                        code,
                        pos,
                        format!("{context} names `{name}` twice in one group"),
                        "repeated",
                    );
                    ok = false;
                }
                Some((ir_name, _)) => names.push(ir_name),
                None => ok = false,
            }
        }
        ok.then_some(names)
    }

    /// The index groups (each with where it is declared) that may be indexes: not on json or
    /// bytes, not a unique field alone, each once.
    fn indexable(&mut self, model: &Model, groups: Vec<(Vec<String>, Pos)>) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = Vec::new();
        for (group, pos) in groups {
            let fields: Vec<&Field> = group.iter().filter_map(|name| model.key_or_field(name)).collect();
            if let Some(field) = fields
                .iter()
                .find(|f| matches!(f.ty, FieldType::Json | FieldType::Bytes))
            {
                self.err(
                    "schema::invalid_index",
                    pos,
                    format!(
                        "`{}.{}` cannot be indexed: {} values have no useful equality",
                        model.name,
                        field.name,
                        type_key(&field.ty)
                    ),
                    "not indexable",
                )
                .set_help("index another field, or reach the rows through a relation");
                continue;
            }
            if let [field] = fields.as_slice()
                && (field.unique || model.key_column().is_some_and(|key| std::ptr::eq(*field, key)))
            {
                self.err(
                    "schema::invalid_index",
                    pos,
                    format!(
                        "`{}.{}` is unique: it is indexed already, and `get_by_{}` reads it",
                        model.name, field.name, field.name
                    ),
                    "unique already",
                )
                .set_help("remove the index; a unique field's lookup returns at most one row");
                continue;
            }
            if out.contains(&group) {
                self.err(
                    "schema::invalid_index",
                    pos,
                    format!(
                        "the index on `{}` of `{}` is declared twice",
                        group.join("`, `"),
                        model.name
                    ),
                    "repeated",
                )
                .set_help("keep one of them (`index: true` on a field is the same as `indexes: [[field]]`)");
                continue;
            }
            out.push(group);
        }
        out
    }
}
