//! Field names used by `ordering`, `unique_together`, `indexes` and a composite primary key,
//! resolved to the model's columns (a foreign key by either name; not a many-to-many).

use std::collections::HashMap;

use super::context::{Column, Kind, ModelInfo, Validator, listing};
use crate::diagnostic::closest;
use crate::ir::FieldType;
use crate::parse::Pos;

impl Validator<'_> {
    /// Resolves a field name used in `ordering` / `unique_together`.
    pub(super) fn resolve_column(
        &mut self,
        info: &ModelInfo<'_>,
        columns: &HashMap<String, Column>,
        name: &str,
        pos: Pos,
        context: &str,
    ) -> Option<(String, Option<FieldType>)> {
        match columns.get(name) {
            Some(column) if column.many_to_many => {
                self.err(
                    "schema::invalid_field_reference",
                    pos,
                    format!("{context} cannot use many_to_many `{}.{name}`", info.name),
                    "many_to_many",
                )
                .set_help("only columns of the model itself (fields, foreign keys, the primary key) can be used");
                None
            }
            Some(column) => Some((column.ir_name.clone(), column.ty.clone())),
            None => {
                let mut names: Vec<&str> = Vec::new();
                if let Some(pk) = &info.pk {
                    names.push(&pk.name);
                }
                names.extend(
                    info.fields
                        .iter()
                        .filter(|f| !matches!(f.kind, Kind::ManyToMany))
                        .map(|f| f.name),
                );
                let help = match closest(name, names.iter().copied()) {
                    Some(c) => format!("did you mean `{c}`? fields of `{}`: {}", info.name, listing(&names)),
                    None => format!("fields of `{}`: {}", info.name, listing(&names)),
                };
                self.err(
                    "schema::unknown_field",
                    pos,
                    format!("{context} names unknown field `{name}` of `{}`", info.name),
                    "unknown field",
                )
                .set_help(help);
                None
            }
        }
    }
}
