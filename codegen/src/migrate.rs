//! `migrate`: the statements that take a database from one schema version to the next.
//!
//! Models are matched by name, then by table (a model renamed with its `table:` kept), then
//! a removed and an added model with the same columns are a renamed table; fields likewise
//! by name, then by column, then one removed and one added field of the same type are a
//! renamed column. Non-unique indexes (`index: true`, `indexes:`, foreign keys') are
//! created and dropped by the names `ddl` gives them. What it cannot do without losing data, or without rebuilding a SQLite
//! table, it refuses with a reason per change, and writes nothing.

use std::fmt;

use crate::ddl;
use crate::ir::{Dialect, Field, FieldType, Model, Schema};
use crate::sql::quote;

/// A change `migrate` will not make, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `<Model>` or `<Model>.<field>` in the new schema (the old one's for removals).
    pub place: String,
    /// Why, and what to do instead.
    pub reason: String,
}

/// Every change `migrate` refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub Vec<Refusal>);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "migrate refuses {} change(s):", self.0.len())?;
        for refusal in &self.0 {
            writeln!(f, "  {}: {}", refusal.place, refusal.reason)?;
        }
        Ok(())
    }
}

impl std::error::Error for Refused {}

/// The statements that take a `dialect` database created for `old` to `new`.
pub fn migrate(old: &Schema, new: &Schema, dialect: Dialect) -> Result<Vec<String>, Refused> {
    let (mut old, mut new) = (old.clone(), new.clone());
    old.dialect = dialect;
    new.dialect = dialect;
    let pairs = match_models(&old, &new);
    let mut plan = Plan {
        new: &new,
        dialect,
        renamed: pairs.iter().map(|(o, n)| (o.name.clone(), n.name.clone())).collect(),
        renames: Vec::new(),
        statements: Vec::new(),
        refusals: Vec::new(),
    };
    // New tables: models and join tables, created as `ddl` creates them (in its order).
    let mut new_tables: Vec<&str> = Vec::new();
    for model in &new.models {
        match pairs.iter().find(|(_, n)| n.name == model.name) {
            Some((before, _)) => plan.model(before, model),
            None => new_tables.push(&model.table),
        }
    }
    for model in old
        .models
        .iter()
        .filter(|m| !pairs.iter().any(|(o, _)| o.name == m.name))
    {
        plan.refuse(
            &model.name,
            format!(
                "dropping table `{}` deletes its rows: drop it by hand once nothing reads it",
                model.table
            ),
        );
    }
    for model in &new.models {
        for m2m in &model.many_to_many {
            let existed = old
                .models
                .iter()
                .any(|m| m.many_to_many.iter().any(|o| o.through == m2m.through));
            if !existed {
                new_tables.push(&m2m.through);
            }
        }
    }
    let created: Vec<String> = ddl::statements(&new)
        .into_iter()
        .filter(|statement| new_tables.iter().any(|table| is_on(statement, dialect, table)))
        .collect();
    for model in &old.models {
        for m2m in &model.many_to_many {
            if !new
                .models
                .iter()
                .any(|m| m.many_to_many.iter().any(|n| n.through == m2m.through))
            {
                plan.refuse(
                    &format!("{}.{}", model.name, m2m.name),
                    format!(
                        "dropping join table `{}` deletes its pairs: drop it by hand",
                        m2m.through
                    ),
                );
            }
        }
    }
    if plan.refusals.is_empty() {
        // Renamed tables first (new tables may reference them), then new tables (altered
        // ones may reference them).
        Ok(plan.renames.into_iter().chain(created).chain(plan.statements).collect())
    } else {
        Err(Refused(plan.refusals))
    }
}

/// The old and new version of each model present in both.
/// A model's primary key as the database holds it: each column with its type, and whether
/// the database assigns it.
fn key_shape(model: &Model) -> Vec<(String, String, bool)> {
    model
        .key_fields()
        .iter()
        .map(|f| (f.column.clone(), crate::validate::type_key(&f.ty), f.auto))
        .collect()
}

fn match_models<'a>(old: &'a Schema, new: &'a Schema) -> Vec<(&'a Model, &'a Model)> {
    let mut pairs: Vec<(&Model, &Model)> = Vec::new();
    let unpaired_old = |pairs: &[(&Model, &Model)], m: &Model| !pairs.iter().any(|(o, _)| o.name == m.name);
    for model in &new.models {
        let before = old
            .models
            .iter()
            .find(|o| o.name == model.name)
            .or_else(|| old.models.iter().find(|o| o.table == model.table));
        if let Some(before) = before.filter(|b| unpaired_old(&pairs, b)) {
            pairs.push((before, model));
        }
    }
    let shape = |m: &Model| {
        let mut columns: Vec<(String, String, bool)> = m
            .fields
            .iter()
            .map(|f| (f.column.clone(), crate::validate::type_key(&f.ty), f.nullable))
            .collect();
        columns.sort();
        (key_shape(m), columns)
    };
    let unpaired_new: Vec<&Model> = new
        .models
        .iter()
        .filter(|m| !pairs.iter().any(|(_, n)| n.name == m.name))
        .collect();
    for model in unpaired_new {
        let renamed: Vec<&Model> = old
            .models
            .iter()
            .filter(|o| unpaired_old(&pairs, o) && shape(o) == shape(model))
            .collect();
        if let [before] = renamed.as_slice() {
            pairs.push((before, model));
        }
    }
    pairs
}

/// Whether `statement` (of a schema's `ddl`) creates or alters `table`.
fn is_on(statement: &str, dialect: Dialect, table: &str) -> bool {
    let quoted = quote(dialect, table);
    statement.starts_with(&format!("CREATE TABLE {quoted} "))
        || statement.starts_with(&format!("ALTER TABLE {quoted} "))
        || (statement.starts_with("CREATE INDEX ") && statement.contains(&format!(" ON {quoted} (")))
}

struct Plan<'a> {
    new: &'a Schema,
    dialect: Dialect,
    /// Old model name → new model name, for models in both versions.
    renamed: Vec<(String, String)>,
    /// `ALTER TABLE … RENAME TO`, run first.
    renames: Vec<String>,
    statements: Vec<String>,
    refusals: Vec<Refusal>,
}

impl Plan<'_> {
    fn refuse(&mut self, place: &str, reason: String) {
        self.refusals.push(Refusal {
            place: place.to_owned(),
            reason,
        });
    }

    fn q(&self, name: &str) -> String {
        quote(self.dialect, name)
    }

    /// The changes of one model present in both versions.
    fn model(&mut self, old: &Model, new: &Model) {
        let table = self.q(&new.table);
        if old.table != new.table {
            self.renames
                .push(format!("ALTER TABLE {} RENAME TO {table}", self.q(&old.table)));
        }
        if key_shape(old) != key_shape(new) {
            self.refuse(
                &new.name,
                "changing the primary key rewrites every row and every reference to it: migrate it by hand".to_owned(),
            );
        }
        let pairs = match_fields(old, new);
        for field in &new.fields {
            match pairs.iter().find(|(_, n)| n.name == field.name) {
                Some((before, _)) => self.field(new, before, field),
                None => self.add_field(new, field),
            }
        }
        for field in old
            .fields
            .iter()
            .filter(|f| !pairs.iter().any(|(o, _)| o.name == f.name))
        {
            self.refuse(
                &format!("{}.{}", old.name, field.name),
                format!(
                    "dropping column `{}` deletes its values: drop it by hand once nothing reads it",
                    field.column
                ),
            );
        }
        let columns = |model: &Model, group: &[String]| -> Vec<String> {
            group
                .iter()
                .filter_map(|name| model.field_named(name))
                .map(|f| f.column.clone())
                .collect()
        };
        let before: Vec<Vec<String>> = old.unique_together.iter().map(|g| columns(old, g)).collect();
        for group in &new.unique_together {
            let group = columns(new, group);
            if !before.contains(&group) {
                self.add_unique(&new.table, &group);
            }
        }
        let after: Vec<Vec<String>> = new.unique_together.iter().map(|g| columns(new, g)).collect();
        if before.iter().any(|group| !after.contains(group)) {
            self.refuse(
                &new.name,
                "dropping a unique_together index needs its name, which the database chose: drop it by hand".to_owned(),
            );
        }
        self.indexes(old, new, &pairs);
    }

    /// Drops the non-unique indexes `new` no longer has (by the names `ddl` gave them in
    /// `old`), then creates the ones it adds.
    fn indexes(&mut self, old: &Model, new: &Model, pairs: &[(&Field, &Field)]) {
        let renamed = |column: &String| {
            pairs
                .iter()
                .find(|(o, _)| o.column == *column)
                .map_or(column.clone(), |(_, n)| n.column.clone())
        };
        let before: Vec<(Vec<String>, Vec<String>)> = ddl::index_groups(old)
            .into_iter()
            .map(|group| (group.iter().map(renamed).collect(), group))
            .collect();
        let after = ddl::index_groups(new);
        let table = self.q(&new.table);
        for (_, group) in before.iter().filter(|(now, _)| !after.contains(now)) {
            let name = self.q(&ddl::index_name(&old.table, &group.join("_")));
            self.statements.push(match self.dialect {
                Dialect::Mysql => format!("DROP INDEX {name} ON {table}"),
                Dialect::Sqlite | Dialect::Postgres => format!("DROP INDEX {name}"),
            });
        }
        for group in after
            .iter()
            .filter(|group| !before.iter().any(|(now, _)| now == *group))
        {
            let unbounded = group.iter().filter_map(|column| {
                let field = new.fields.iter().find(|f| f.column == *column)?;
                let (before, _) = pairs.iter().find(|(_, n)| n.name == field.name)?;
                let was_indexed = before.unique || old.indexes.iter().flatten().any(|name| *name == before.name);
                (self.dialect == Dialect::Mysql && field.ty == FieldType::Text && !was_indexed).then_some(field)
            });
            if let Some(field) = unbounded.into_iter().next() {
                self.refuse(
                    &format!("{}.{}", new.name, field.name),
                    format!(
                        "MySQL indexes a `text` column as VARCHAR(255), which may cut longer values of `{}`: change it by hand",
                        field.column
                    ),
                );
                continue;
            }
            self.statements.push(ddl::create_index(self.dialect, &new.table, group));
        }
    }

    /// `ADD COLUMN`, or why not.
    fn add_field(&mut self, model: &Model, field: &Field) {
        let place = format!("{}.{}", model.name, field.name);
        if self.dialect == Dialect::Sqlite && field.default == Some(crate::ir::DefaultValue::Now) {
            return self.refuse(
                &place,
                format!("SQLite cannot add a column whose default is the current time (`{}`): rebuild the table by hand, or add it with `null: true` and no default", field.column),
            );
        }
        if !field.nullable && field.default.is_none() {
            return self.refuse(
                &place,
                format!("adding NOT NULL column `{}` without a default fails on a table with rows: add it with `null: true` or a `default:`", field.column),
            );
        }
        let mut bare = field.clone();
        let sqlite_unique = self.dialect == Dialect::Sqlite && field.unique;
        if sqlite_unique {
            // SQLite cannot add a UNIQUE column: the column, then a unique index.
            bare.unique = false;
        }
        let mut definition = ddl::column(self.new, model, &bare, false);
        definition.push_str(&ddl::references(self.new, field).unwrap_or_default());
        let table = self.q(&model.table);
        self.statements
            .push(format!("ALTER TABLE {table} ADD COLUMN {definition}"));
        if sqlite_unique {
            self.add_unique(&model.table, std::slice::from_ref(&field.column));
        }
    }

    /// A unique index over `columns`.
    fn add_unique(&mut self, table: &str, columns: &[String]) {
        let name = ddl::short_name(table, &columns.join("_"), "key");
        let list: Vec<String> = columns.iter().map(|c| self.q(c)).collect();
        self.statements.push(match self.dialect {
            Dialect::Sqlite => format!(
                "CREATE UNIQUE INDEX {} ON {} ({})",
                self.q(&name),
                self.q(table),
                list.join(", ")
            ),
            Dialect::Postgres | Dialect::Mysql => format!(
                "ALTER TABLE {} ADD CONSTRAINT {} UNIQUE ({})",
                self.q(table),
                self.q(&name),
                list.join(", ")
            ),
        });
    }

    /// The changes of one field present in both versions.
    fn field(&mut self, model: &Model, old: &Field, new: &Field) {
        let place = format!("{}.{}", model.name, new.name);
        let table = self.q(&model.table);
        if old.column != new.column {
            self.statements.push(format!(
                "ALTER TABLE {table} RENAME COLUMN {} TO {}",
                self.q(&old.column),
                self.q(&new.column)
            ));
        }
        let renamed = |target: &str| {
            self.renamed
                .iter()
                .find(|(o, _)| o == target)
                .map_or(target.to_owned(), |(_, n)| n.clone())
        };
        let relation = |f: &Field, map: bool| {
            f.relation.as_ref().map(|r| {
                let target = if map { renamed(&r.target) } else { r.target.clone() };
                (target, r.on_delete, r.kind)
            })
        };
        if relation(old, true) != relation(new, false) {
            self.refuse(
                &place,
                "changing a relation (its target, on_delete or kind) replaces a foreign key the database named: migrate it by hand".to_owned(),
            );
            return;
        }
        let retyped = old.ty != new.ty;
        if retyped && !widens(&old.ty, &new.ty) {
            return self.refuse(
                &place,
                format!(
                    "changing `{}` from {} to {} may not keep every value: migrate it by hand",
                    new.column,
                    crate::validate::type_key(&old.ty),
                    crate::validate::type_key(&new.ty)
                ),
            );
        }
        if old.nullable && !new.nullable {
            return self.refuse(
                &place,
                format!(
                    "making `{}` NOT NULL fails while a row holds NULL: fill them, then alter it by hand",
                    new.column
                ),
            );
        }
        if old.unique && !new.unique {
            return self.refuse(
                &place,
                "dropping a unique constraint needs its name, which the database chose: drop it by hand".to_owned(),
            );
        }
        let loosened = old.nullable != new.nullable;
        let redefaulted = old.default != new.default;
        if (retyped || loosened || redefaulted) && self.dialect == Dialect::Sqlite {
            return self.refuse(
                &place,
                "SQLite cannot change a column's type, nullability or default in place: rebuild the table by hand"
                    .to_owned(),
            );
        }
        let column = self.q(&new.column);
        match self.dialect {
            Dialect::Postgres => {
                if retyped {
                    let ty = ddl::sql_type(self.dialect, &new.ty, new.unique);
                    self.statements
                        .push(format!("ALTER TABLE {table} ALTER COLUMN {column} TYPE {ty}"));
                }
                if loosened {
                    self.statements
                        .push(format!("ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL"));
                }
                if redefaulted {
                    self.statements.push(match &new.default {
                        Some(value) => format!(
                            "ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT {}",
                            ddl::literal(self.dialect, value)
                        ),
                        None => format!("ALTER TABLE {table} ALTER COLUMN {column} DROP DEFAULT"),
                    });
                }
            }
            Dialect::Mysql if retyped || loosened || redefaulted => {
                // MODIFY restates the whole column; UNIQUE stays as its own index.
                let mut restated = new.clone();
                restated.unique = false;
                let definition = ddl::column(self.new, model, &restated, false);
                let definition = match new.unique {
                    true => definition.replacen(
                        &ddl::sql_type(self.dialect, &new.ty, false),
                        &ddl::sql_type(self.dialect, &new.ty, true),
                        1,
                    ),
                    false => definition,
                };
                self.statements
                    .push(format!("ALTER TABLE {table} MODIFY COLUMN {definition}"));
            }
            Dialect::Mysql | Dialect::Sqlite => {}
        }
        if new.unique && !old.unique {
            self.add_unique(&model.table, std::slice::from_ref(&new.column));
        }
    }
}

/// Whether every value of `from` is a value of `to`, unchanged.
fn widens(from: &FieldType, to: &FieldType) -> bool {
    use FieldType::{BigInt, Int, PositiveInt, SmallInt, String, Text};
    match (from, to) {
        (SmallInt, Int | BigInt) | (Int | PositiveInt, BigInt) | (PositiveInt, Int) => true,
        (String { max_length: a }, String { max_length: b }) => b >= a,
        (String { .. }, Text) => true,
        _ => false,
    }
}

/// The old and new version of each field present in both.
fn match_fields<'a>(old: &'a Model, new: &'a Model) -> Vec<(&'a Field, &'a Field)> {
    let mut pairs: Vec<(&Field, &Field)> = Vec::new();
    for field in &new.fields {
        let before = old
            .fields
            .iter()
            .find(|o| o.name == field.name)
            .or_else(|| old.fields.iter().find(|o| o.column == field.column));
        if let Some(before) = before.filter(|b| !pairs.iter().any(|(o, _)| o.name == b.name)) {
            pairs.push((before, field));
        }
    }
    let removed: Vec<&Field> = old
        .fields
        .iter()
        .filter(|o| !pairs.iter().any(|(p, _)| p.name == o.name))
        .collect();
    let added: Vec<&Field> = new
        .fields
        .iter()
        .filter(|n| !pairs.iter().any(|(_, p)| p.name == n.name))
        .collect();
    for before in &removed {
        let alike = |other: &Field| {
            other.ty == before.ty
                && other.nullable == before.nullable
                && other.relation.is_none() == before.relation.is_none()
        };
        let candidates: Vec<&&Field> = added.iter().filter(|a| alike(a)).collect();
        let rivals = removed
            .iter()
            .filter(|r| candidates.iter().any(|c| c.ty == r.ty))
            .count();
        if let ([after], 1) = (candidates.as_slice(), rivals) {
            pairs.push((before, after));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Schema {
        crate::validate::load(yaml, "t.yaml").expect("a valid schema")
    }

    const OLD: &str = "models:\n  Person:\n    fields:\n      name: { type: string, max_length: 20 }\n      age: { type: integer, null: true }\n";

    #[test]
    fn adds_renames_and_widens() {
        let new = load(
            "models:\n  Person:\n    fields:\n      full_name: { type: string, max_length: 20 }\n      age: { type: big_integer, null: true }\n      email: { type: string, max_length: 50, null: true, unique: true }\n",
        );
        let statements = migrate(&load(OLD), &new, Dialect::Postgres).expect("safe");
        assert_eq!(
            statements,
            [
                "ALTER TABLE \"person\" RENAME COLUMN \"name\" TO \"full_name\"",
                "ALTER TABLE \"person\" ALTER COLUMN \"age\" TYPE BIGINT",
                "ALTER TABLE \"person\" ADD COLUMN \"email\" VARCHAR(50) UNIQUE",
            ]
        );
    }

    #[test]
    fn refuses_what_loses_data_with_reasons() {
        let new = load(
            "models:\n  Person:\n    fields:\n      name: { type: string, max_length: 10 }\n      born: { type: date }\n",
        );
        let refused = migrate(&load(OLD), &new, Dialect::Mysql).expect_err("unsafe");
        let places: Vec<&str> = refused.0.iter().map(|r| r.place.as_str()).collect();
        assert_eq!(places, ["Person.name", "Person.born", "Person.age"], "{refused}");
        assert!(refused.to_string().contains("may not keep every value"), "{refused}");
    }
}
