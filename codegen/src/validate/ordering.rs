//! `ordering:`: the model's default order, each field once and none of them json.

use std::collections::HashMap;

use super::context::{Column, ModelInfo, Validator};
use crate::ir::FieldType;
use crate::parse::{Pos, join};

impl Validator<'_> {
    /// The declared ordering, with foreign keys named by their column field (`author_id`).
    /// The primary key is not appended: it is the implicit final tie-breaker (default
    /// ordering: empty = primary key ascending), added by whoever builds `ORDER BY`.
    pub(super) fn ordering(&mut self, info: &ModelInfo<'_>, columns: &HashMap<String, Column>) -> Vec<(String, bool)> {
        let mut ordering: Vec<(String, bool)> = Vec::new();
        let path = join(&info.path, "ordering");
        let mut seen: HashMap<String, Pos> = HashMap::new();
        for (i, entry) in info.def.ordering.iter().flatten().enumerate() {
            let pos = self.p.value_or_up(&join(&path, &i.to_string()));
            let (name, descending) = match entry.strip_prefix('-') {
                Some(rest) => (rest, true),
                None => (entry.as_str(), false),
            };
            let Some((ir_name, ty)) = self.resolve_column(info, columns, name, pos, "`ordering`") else {
                continue;
            };
            if ty == Some(FieldType::Json) {
                self.err(
                    "schema::invalid_ordering",
                    pos,
                    format!("`ordering` cannot use json field `{}.{name}`", info.name),
                    "json is not ordered",
                )
                .set_help("json values have no order; order by another field");
                continue;
            }
            if let Some(first) = seen.get(&ir_name) {
                let first = *first;
                self.err(
                    "schema::invalid_ordering",
                    pos,
                    format!("`ordering` names `{name}` twice"),
                    "repeated",
                )
                .add_label(first, "first here")
                .set_help("each field may appear once in `ordering`");
                continue;
            }
            seen.insert(ir_name.clone(), pos);
            ordering.push((ir_name, descending));
        }
        ordering
    }
}
