//! Renders the IR into Rust source with the handlebars templates under `templates/`.
//! All naming (heck) and type mapping happens here; templates only lay text out.

use std::sync::OnceLock;

use handlebars::{Handlebars, no_escape};
use heck::{ToShoutySnakeCase, ToUpperCamelCase};
use serde_json::{Value, json};

use crate::ir::{Dialect, Field, FieldType, Model, OnDelete, PrimaryKey, RelationKind, ReverseKind, Schema};
use crate::plan::{ModelPlan, WriteEffect, shout};
use crate::{ddl, plan, sql};

/// Rendering failed: a template bug, reported with the template's own position.
#[derive(Debug, thiserror::Error)]
#[error("rendering generated code failed: {0}")]
pub struct RenderError(String);

/// Renders the schema as Rust source (unformatted), in chunks that each parse on their own:
/// the module's items first, then one chunk per model. Formatting can then run per chunk.
pub fn render(schema: &Schema, plans: &[ModelPlan]) -> Result<Vec<String>, RenderError> {
    let engine = engine()?;
    let module = json!({
        "namespace": schema.namespace,
        "db_type": match schema.dialect {
            Dialect::Sqlite => "Sqlite",
            Dialect::Postgres => "Postgres",
            Dialect::Mysql => "MySql",
        },
        "ddl": ddl::statements(schema).iter().map(|s| rust_str(s)).collect::<Vec<_>>(),
    });
    let mut chunks = vec![
        engine
            .render("module", &module)
            .map_err(|e| RenderError(e.to_string()))?,
    ];
    for (model, plan) in schema.models.iter().zip(plans) {
        let context = model_context(schema, model, plan);
        chunks.push(
            engine
                .render("model", &context)
                .map_err(|e| RenderError(e.to_string()))?,
        );
    }
    Ok(chunks)
}

/// The templates, registered (and parsed) once per process.
fn engine() -> Result<&'static Handlebars<'static>, RenderError> {
    static ENGINE: OnceLock<Result<Handlebars<'static>, String>> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| {
        let mut engine = Handlebars::new();
        engine.set_strict_mode(true);
        engine.register_escape_fn(no_escape);
        engine
            .register_template_string("module", include_str!("../templates/module.rs.hbs"))
            .map_err(|e| e.to_string())?;
        engine
            .register_template_string("model", include_str!("../templates/model.rs.hbs"))
            .map_err(|e| e.to_string())?;
        Ok(engine)
    });
    engine.as_ref().map_err(|error| RenderError(error.clone()))
}

/// A Rust string literal.
fn rust_str(s: &str) -> String {
    format!("{s:?}")
}

/// The Rust type of a column's value (without `Option` for nullability).
fn base_type(ty: &FieldType) -> String {
    match ty {
        FieldType::SmallInt => "i16",
        FieldType::Int | FieldType::PositiveInt => "i32",
        FieldType::BigInt => "i64",
        FieldType::Bool => "bool",
        FieldType::Float => "f64",
        FieldType::String { .. } | FieldType::Text | FieldType::Char { .. } => "String",
        FieldType::Bytes => "Vec<u8>",
        FieldType::Uuid => "autocache::sqlx::types::Uuid",
        FieldType::Date => "autocache::sqlx::types::chrono::NaiveDate",
        FieldType::Time => "autocache::sqlx::types::chrono::NaiveTime",
        FieldType::DateTime => "autocache::sqlx::types::chrono::DateTime<autocache::sqlx::types::chrono::Utc>",
        FieldType::Json => "autocache::sqlx::types::JsonValue",
        FieldType::Decimal { .. } => "autocache::sqlx::types::Decimal",
        FieldType::Enum(e) => return e.name.clone(),
    }
    .to_owned()
}

fn rust_type(field: &Field) -> String {
    let base = base_type(&field.ty);
    if field.nullable {
        format!("Option<{base}>")
    } else {
        base
    }
}

fn is_copy(ty: &FieldType) -> bool {
    !matches!(
        ty,
        FieldType::String { .. } | FieldType::Text | FieldType::Char { .. } | FieldType::Bytes | FieldType::Json
    )
}

/// The parameter type and the owned value of a lookup argument `value` of type `ty`.
fn param(ty: &FieldType) -> (String, &'static str) {
    match ty {
        FieldType::String { .. } | FieldType::Text | FieldType::Char { .. } => ("&str".to_owned(), "value.to_owned()"),
        ty if is_copy(ty) => (base_type(ty), "value"),
        ty => (format!("&{}", base_type(ty)), "value.clone()"),
    }
}

/// The expression that binds the value at `place` (a place expression of the column's Rust
/// type, `Option` when `nullable`) to a query: JSON through sqlx's `Json`, decimals at their
/// scale (as text on SQLite), `char` values without trailing spaces, anything else by
/// reference.
pub fn bind_of(dialect: Dialect, ty: &FieldType, place: &str, nullable: bool) -> String {
    let receiver = receiver(place);
    match (ty, nullable) {
        (FieldType::Json, false) => format!("autocache::sqlx::types::Json(&{place})").replace("&*", ""),
        (FieldType::Json, true) => format!("{receiver}.as_ref().map(autocache::sqlx::types::Json)"),
        (FieldType::Decimal { scale, .. }, _) => {
            let at = |value: &str| {
                let value = format!("autocache::codec::decimal_at({value}, {scale})");
                match dialect {
                    Dialect::Sqlite => format!("autocache::sqlx::types::Text({value})"),
                    Dialect::Postgres | Dialect::Mysql => value,
                }
            };
            if nullable {
                format!("{receiver}.map(|value| {})", at("value"))
            } else {
                at(place)
            }
        }
        (FieldType::Char { .. }, false) => format!("{receiver}.trim_end_matches(' ')"),
        (FieldType::Char { .. }, true) => format!("{receiver}.as_deref().map(|value| value.trim_end_matches(' '))"),
        // A dereference binds the reference itself.
        _ => match place.strip_prefix('*') {
            Some(reference) => reference.to_owned(),
            None => format!("&{place}"),
        },
    }
}

/// The text of the (non-null) value at `place` in cache keys: decimals at their scale,
/// `char` values without trailing spaces, anything else as `Display` writes it.
fn key_text(ty: &FieldType, place: &str) -> String {
    match ty {
        FieldType::Decimal { scale, .. } => format!("autocache::codec::decimal_at({place}, {scale}).to_string()"),
        FieldType::Char { .. } => format!("{}.trim_end_matches(' ').to_owned()", receiver(place)),
        _ => format!("{}.to_string()", receiver(place)),
    }
}

/// `place` as the receiver of a method call: in parentheses when it is a dereference.
fn receiver(place: &str) -> String {
    if place.starts_with('*') {
        format!("({place})")
    } else {
        place.to_owned()
    }
}

fn describe(model: &Model, field: &Field) -> String {
    let ty = match &field.ty {
        FieldType::String { max_length } => format!("string, at most {max_length} characters"),
        other => crate::validate::type_key(other),
    };
    let mut doc = format!("Column `{}`: {ty}", field.column);
    if field.nullable {
        doc.push_str(", nullable");
    }
    if field.unique {
        doc.push_str(", unique");
    }
    if field.auto {
        doc.push_str(", assigned by the database");
    }
    match field.set_by_database {
        Some(crate::ir::SetBy::Insert) => doc.push_str(", set to the database's current time on insert"),
        Some(crate::ir::SetBy::EveryWrite) => {
            doc.push_str(", set to the database's current time on insert and every update")
        }
        None => {}
    }
    if let Some(relation) = &field.relation {
        doc.push_str(&format!(
            "; {} `{}` to `{}` (reverse: `{}`)",
            match relation.kind {
                RelationKind::ForeignKey => "foreign key",
                RelationKind::OneToOne => "one-to-one",
            },
            relation.name,
            relation.target,
            relation.related_name
        ));
    }
    if model.key_column().is_some_and(|key| std::ptr::eq(field, key)) {
        doc.push_str("; primary key");
    } else if model.is_key(field) {
        doc.push_str("; part of the primary key");
    }
    doc.push('.');
    doc
}

/// How `from_row` reads the field's column: JSON columns through sqlx's `Json`, decimals
/// on SQLite through `Text`, `char` values without their padding.
fn decode_expr(dialect: Dialect, field: &Field) -> String {
    let column = &field.name;
    let through = |wrapper: &str, unwrap: &str| {
        if field.nullable {
            format!("row.try_get::<Option<{wrapper}>, _>(\"{column}\")?.map(|value| {unwrap})")
        } else {
            format!("{{ let value = row.try_get::<{wrapper}, _>(\"{column}\")?; {unwrap} }}")
        }
    };
    match &field.ty {
        FieldType::Json => through(
            "autocache::sqlx::types::Json<autocache::sqlx::types::JsonValue>",
            "value.0",
        ),
        FieldType::Decimal { .. } if dialect == Dialect::Sqlite => through(
            "autocache::sqlx::types::Text<autocache::sqlx::types::Decimal>",
            "value.0",
        ),
        FieldType::Char { .. } => through("String", "value.trim_end_matches(' ').to_owned()"),
        _ => format!("row.try_get(\"{column}\")?"),
    }
}

fn column_context(dialect: Dialect, model: &Model, field: &Field) -> Value {
    json!({
        "rust_name": field.name,
        "rust_type": rust_type(field),
        "doc": describe(model, field),
        "json": field.ty == FieldType::Json,
        "decode": decode_expr(dialect, field),
        "bind": bind_of(dialect, &field.ty, &format!("self.{}", field.name), field.nullable),
        "insert_bind": bind_of(dialect, &field.ty, &format!("self.{}", field.name), field.nullable || field.default.is_some()),
        "insert_type": if field.default.is_some() && !field.nullable { format!("Option<{}>", rust_type(field)) } else { rust_type(field) },
        "default": field.default.as_ref().map(|d| ddl::literal(dialect, d)),
    })
}

fn write_doc(effect: &WriteEffect) -> Vec<String> {
    let mut lines = vec![format!(
        "After commit (keys locked before commit, so no older fill can land):"
    )];
    lines.extend(effect.fills.iter().map(|key| format!("- writes through `{key}`")));
    lines.extend(
        effect
            .refills
            .iter()
            .map(|key| format!("- refills from the database `{key}`")),
    );
    lines.extend(effect.releases.iter().map(|key| format!("- empties `{key}`")));
    lines.extend(effect.notes.iter().map(|note| format!("- {note}")));
    lines
}

fn model_context(schema: &Schema, model: &Model, plan: &ModelPlan) -> Value {
    let key = key_context(schema.dialect, model);
    let statements = sql::statements(schema.dialect, model);
    let uniques: Vec<Value> = plan::unique_lookups(model)
        .iter()
        .map(|lookup| unique_context(schema.dialect, model, lookup))
        .collect();
    let finders: Vec<Value> = plan::index_lookups(model)
        .iter()
        .map(|lookup| index_context(schema.dialect, model, lookup))
        .collect();
    let relations = relations_context(schema, model);
    let ordering_fields = plan::ordering_fields(model);
    // The row's instance key is its only key of its own (the runtime's
    // `Model::ONLY_INSTANCE_KEY`): no unique or indexed lookups, no collections joined
    // through its own columns, no through-model pairs. Then every key an update touches
    // follows from the primary key unless a many-to-many order must be re-sorted
    // (`Model::UPDATE_LOCKS_FIRST`), and so does an insert's (a new row is in no
    // many-to-many collection), whose key is known before the statement where it can be
    // reserved (`ModelSql::keyed_insert`).
    let empty = |name: &str| relations[name].as_array().is_none_or(Vec::is_empty);
    let only_instance_key = uniques.is_empty() && finders.is_empty() && empty("memberships") && empty("pairs");
    let update_locks_first = only_instance_key && (ordering_fields.is_empty() || empty("joined"));
    let insert_locks_first = only_instance_key && statements.keyed_insert.is_some();
    let write = |op: &str| {
        plan.writes
            .iter()
            .find(|w| w.op == op)
            .map(write_doc)
            .unwrap_or_default()
    };
    json!({
        "name": model.name,
        "repo": format!("{}Repo", model.name),
        "new_name": format!("New{}", model.name),
        "table": model.table,
        "backend": model.backend,
        "ttl_secs": model.ttl_secs,
        "near_entries": model.near_entries,
        "key_prefix": plan.key_prefix,
        "retired_prefixes": plan.retired_prefixes.iter().map(|p| rust_str(p)).collect::<Vec<_>>(),
        "rollout_secs": plan.rollout_secs,
        "pk_name": key["name"],
        "pk_pattern": key["pattern"],
        "pk_auto": key["auto"],
        "id_type": key["ty"],
        "id_param": key["param"],
        "id_arg": key["arg"],
        "id_expr": key["expr"],
        "id_binds": key["binds"],
        "key_binds": key["row_binds"],
        "key_columns": key["columns"],
        "key_struct": key["key_struct"],
        "columns": sql::columns(model).into_iter().map(|f| column_context(schema.dialect, model, f)).collect::<Vec<_>>(),
        "updated": sql::updated(model).into_iter().map(|f| column_context(schema.dialect, model, f)).collect::<Vec<_>>(),
        "inserted": sql::inserted(model).into_iter().map(|f| column_context(schema.dialect, model, f)).collect::<Vec<_>>(),
        "uniques": uniques,
        "finders": finders,
        "sql": {
            "select_by_ids": rust_str(&statements.select_by_ids),
            "select_for_update": rust_str(&statements.select_for_update),
            "insert": rust_str(&statements.insert),
            "keyed_insert": statements.keyed_insert.as_ref().filter(|_| insert_locks_first).map(|keyed| json!({
                "reserve": rust_str(&keyed.reserve),
                "insert": rust_str(&keyed.insert),
            })),
            "update": rust_str(&statements.update),
            "update_returns": statements.update_returns,
            "select_where": rust_str(&statements.select_where),
            "lock_rows": rust_str(&statements.lock_rows),
            "update_set": rust_str(&statements.update_set),
            "where_ids": rust_str(&statements.where_ids),
            "delete": rust_str(&statements.delete),
            "key_from_text": statements.key_from_text.as_ref().filter(|_| only_instance_key).map(|key| rust_str(key)),
        },
        "writes": { "insert": write("insert"), "update": write("update"), "delete": write("delete") },
        "relations": relations,
        "filters": sql::columns(model).into_iter().filter(|f| f.ty != FieldType::Json).flat_map(|f| filter_variants(schema.dialect, f)).collect::<Vec<_>>(),
        "enums": model.fields.iter().filter_map(|f| match &f.ty {
            FieldType::Enum(e) => Some(json!({ "name": e.name, "field": f.name, "count": e.values.len(), "values": e.values })),
            _ => None,
        }).collect::<Vec<_>>(),
        "changes": sql::updated(model).into_iter().map(|f| change_context(schema.dialect, f)).collect::<Vec<_>>(),
        "ordering_fields": ordering_fields,
        "only_instance_key": only_instance_key,
        "update_locks_first": update_locks_first,
    })
}

/// How the model's primary key is named, typed, built from a row, bound and spelled in keys:
/// its column's value, or for a composite key the generated `<Model>Key` struct of its
/// parts (`key_struct`), whose `Display` composes the parts' key texts.
fn key_context(dialect: Dialect, model: &Model) -> Value {
    let parts = model.key_fields();
    let binds = |of: &str| -> String {
        parts
            .iter()
            .map(|f| format!(".bind({})", bind_of(dialect, &f.ty, &format!("{of}.{}", f.name), false)))
            .collect()
    };
    let owned = |f: &Field, of: &str| {
        if is_copy(&f.ty) {
            format!("{of}.{}", f.name)
        } else {
            format!("{of}.{}.clone()", f.name)
        }
    };
    match model.key_column() {
        Some(pk) => {
            let (param, arg) = param(&pk.ty);
            json!({
                "name": pk.name,
                "pattern": format!("<{}>", pk.name),
                "auto": pk.auto,
                "ty": base_type(&pk.ty),
                "param": param,
                "arg": arg.replace("value", &pk.name),
                "expr": owned(pk, "self"),
                "binds": ".bind(id)",
                "row_binds": binds("self"),
                "columns": 1,
                "key_struct": null,
            })
        }
        None => {
            let name = format!("{}Key", model.name);
            let texts: Vec<String> = parts
                .iter()
                .map(|f| format!("&{}", key_text(&f.ty, &format!("self.{}", f.name))))
                .collect();
            let fields: Vec<Value> = parts
                .iter()
                .map(|f| json!({ "rust_name": f.name, "rust_type": rust_type(f), "doc": describe(model, f) }))
                .collect();
            let values: Vec<String> = parts
                .iter()
                .map(|f| format!("{}: {}", f.name, owned(f, "self")))
                .collect();
            json!({
                "name": "key",
                "pattern": parts.iter().map(|f| format!("<{}>", f.name)).collect::<Vec<_>>().join(","),
                "auto": false,
                "ty": name,
                "param": name,
                "arg": "key",
                "expr": format!("{name} {{ {} }}", values.join(", ")),
                "binds": binds("id"),
                "row_binds": binds("self"),
                "columns": parts.len(),
                "key_struct": { "name": name, "fields": fields, "text": format!("autocache::key::compose(&[{}])", texts.join(", ")) },
            })
        }
    }
}

/// A unique lookup's `get_by_<…>` method, key and statement, and how `unique_values`
/// spells a row's key text for it.
fn unique_context(dialect: Dialect, model: &Model, lookup: &plan::UniqueLookup<'_>) -> Value {
    let mut context = lookup_context(dialect, &lookup.fields);
    context["method"] = json!(lookup.method);
    context["key_field"] = json!(lookup.key_field);
    context["const_name"] = json!(format!(
        "{}_BY_{}",
        model.name.to_shouty_snake_case(),
        lookup.method.to_shouty_snake_case()
    ));
    context["sql"] = json!(rust_str(&sql::select_by_values(dialect, model, &lookup.fields)));
    context
}

/// An index lookup's `find_by_<…>` method and collection, and how `memberships` spells a
/// row's key text for it and binds its values.
fn index_context(dialect: Dialect, model: &Model, lookup: &plan::IndexLookup<'_>) -> Value {
    let mut context = lookup_context(dialect, &lookup.fields);
    context["method"] = json!(lookup.method);
    context["const_name"] = json!(lookup.collection.const_name);
    context["kind"] = json!(lookup.collection.kind);
    context["name"] = json!(lookup.collection.kind.trim_start_matches("rows."));
    context["sql"] = json!(rust_str(&sql::members_by_values(dialect, model, &lookup.fields)));
    context["row_binds"] = json!(
        lookup
            .fields
            .iter()
            .map(|f| format!(
                ".bind({})",
                bind_of(dialect, &f.ty, &format!("row.{}", f.name), f.nullable)
            ))
            .collect::<String>()
    );
    context
}

/// What a lookup by the values of `fields` needs: the method's parameters, their binds,
/// the key text of the arguments (`key_value`) and of a row (`value_expr`, `None` when a
/// value is NULL: such a row has no key).
fn lookup_context(dialect: Dialect, fields: &[&Field]) -> Value {
    let params: Vec<Value> = fields
        .iter()
        .map(|f| json!({ "name": f.name, "rust_type": param(&f.ty).0 }))
        .collect();
    let binds: String = fields
        .iter()
        .map(|f| format!(".bind({})", bind_of(dialect, &f.ty, &f.name, false)))
        .collect();
    let arg_texts: Vec<String> = fields.iter().map(|f| key_text(&f.ty, &f.name)).collect();
    let row_texts: Vec<String> = fields
        .iter()
        .map(|f| {
            if f.nullable {
                format!("self.{}.as_ref().map(|value| {})?", f.name, key_text(&f.ty, "*value"))
            } else {
                key_text(&f.ty, &format!("self.{}", f.name))
            }
        })
        .collect();
    let compose = |texts: &[String]| match texts {
        [text] => text.clone(),
        _ => format!(
            "autocache::key::compose(&[{}])",
            texts.iter().map(|t| format!("&{t}")).collect::<Vec<_>>().join(", ")
        ),
    };
    let value_expr = if fields.iter().any(|f| f.nullable) {
        format!("(|| Some({}))()", compose(&row_texts))
    } else {
        format!("Some({})", compose(&row_texts))
    };
    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    json!({
        "fields": names.join("`, `"),
        "placeholders": names.iter().map(|n| format!("<{n}>")).collect::<Vec<_>>().join(","),
        "params": params,
        "binds": binds,
        "key_value": compose(&arg_texts),
        "value_expr": value_expr,
    })
}

/// A column's variants in the model's bulk-write filter: each its declaration, its doc
/// line, its `condition` match arm and its `bind` match arm.
fn filter_variants(dialect: Dialect, field: &Field) -> Vec<Value> {
    let variant = field.name.to_upper_camel_case();
    let name = &field.name;
    let quoted = sql::quote(dialect, &field.column);
    let column = rust_str(&quoted);
    let ty = base_type(&field.ty);
    let bind = bind_of(dialect, &field.ty, "*value", false);
    // `test` is the variant's arm of `Filter::test`: the runtime's `Test` it is.
    let variant_of = |suffix: &str, payload: Option<String>, doc: String, test: String| {
        let decl = match &payload {
            Some(payload) => format!("{variant}{suffix}({payload})"),
            None => format!("{variant}{suffix}"),
        };
        let pattern = match &payload {
            Some(_) if suffix == "In" => format!("Self::{variant}{suffix}(values)"),
            Some(_) => format!("Self::{variant}{suffix}(value)"),
            None => format!("Self::{variant}{suffix}"),
        };
        json!({ "decl": decl, "doc": doc, "test": format!("{pattern} => {test}") })
    };
    let mut variants = vec![
        variant_of(
            "Eq",
            Some(ty.clone()),
            format!("`{name}` equals the value."),
            format!("Test::Compare({column}, Op::Eq, arg({bind}))"),
        ),
        variant_of(
            "In",
            Some(format!("Vec<{ty}>")),
            format!("`{name}` is one of the values (none: matches nothing)."),
            format!("Test::In({column}, values.iter().map(|value| arg({bind})).collect())"),
        ),
    ];
    if field.nullable {
        for (suffix, test, doc) in [("IsNull", "IsNull", "is NULL"), ("NotNull", "NotNull", "is not NULL")] {
            variants.push(variant_of(
                suffix,
                None,
                format!("`{name}` {doc}."),
                format!("Test::{test}({column})"),
            ));
        }
    }
    if field.ty.orderable() {
        // SQLite keeps decimals as text (see `ddl::sql_type`): compare them as numbers.
        let (left, right) = match (&field.ty, dialect) {
            (FieldType::Decimal { .. }, Dialect::Sqlite) => {
                (rust_str(&format!("CAST({quoted} AS REAL)")), "autocache::filter::real")
            }
            _ => (column.clone(), "arg"),
        };
        for (suffix, op, doc) in [
            ("Lt", "Lt", "is less than"),
            ("Le", "Le", "is at most"),
            ("Gt", "Gt", "is greater than"),
            ("Ge", "Ge", "is at least"),
        ] {
            variants.push(variant_of(
                suffix,
                Some(ty.clone()),
                format!("`{name}` {doc} the value (NULL never matches)."),
                format!("Test::Compare({left}, Op::{op}, {right}({bind}))"),
            ));
        }
    }
    variants
}

/// A column in the model's bulk-update changes.
fn change_context(dialect: Dialect, field: &Field) -> Value {
    json!({
        "field": field.name,
        "column": rust_str(&sql::quote(dialect, &field.column)),
        "rust_type": rust_type(field),
        "bind": bind_of(dialect, &field.ty, "*value", field.nullable),
    })
}

fn info(model: &str) -> String {
    format!("<{model} as autocache::Model>::INFO")
}

/// Everything about relations a model's template needs: the collections whose members are
/// this model, its memberships and footprint (both from [`plan::footprint`], which
/// `explain` prints too), and its repository's relation methods.
fn relations_context(schema: &Schema, model: &Model) -> Value {
    let dialect = schema.dialect;
    let footprint = plan::footprint(schema, model);
    let mut collections = Vec::new();
    let mut join_sides = Vec::new();
    for (field, collection) in &footprint.memberships {
        let relation = field.relation.as_ref().expect("a membership is a relation");
        collections.push(json!({
            "const_name": collection.const_name,
            "name": relation.related_name,
            "key": plan::collection_name(&relation.target, &relation.related_name),
            "members": model.name,
            "holds": "Rows",
            "sql": rust_str(&sql::members_by_column(dialect, model, &field.column)),
        }));
    }
    let memberships: Vec<Value> = footprint
        .memberships
        .iter()
        .map(|(field, collection)| json!({ "const_name": collection.const_name, "field": field.name, "nullable": field.nullable }))
        .collect();
    for m2m in &model.many_to_many {
        let target = plan::model(schema, &m2m.target);
        let own = shout(&[&model.name, &m2m.name]);
        let theirs = shout(&[&target.name, &m2m.related_name]);
        collections.push(json!({
            "const_name": own,
            "name": m2m.name,
            "key": plan::collection_name(&model.name, &m2m.name),
            "members": target.name,
            "holds": "Ids",
            "sql": rust_str(&sql::members_through(dialect, target, &m2m.through, &m2m.target_column, &m2m.source_column)),
        }));
        collections.push(json!({
            "const_name": theirs,
            "name": m2m.related_name,
            "key": plan::collection_name(&target.name, &m2m.related_name),
            "members": model.name,
            "holds": "Ids",
            "sql": rust_str(&sql::members_through(dialect, model, &m2m.through, &m2m.source_column, &m2m.target_column)),
        }));
        let keys = plan::through_keys(schema, model, m2m);
        for (side, this, other, own, theirs, first) in [
            (
                format!("{own}_SIDE"),
                &m2m.source_column,
                &m2m.target_column,
                &own,
                &theirs,
                true,
            ),
            (
                format!("{theirs}_SIDE"),
                &m2m.target_column,
                &m2m.source_column,
                &theirs,
                &own,
                false,
            ),
        ] {
            let [insert, delete, select] = sql::join_side(dialect, &m2m.through, this, other);
            let through = keys.map(|(through, source_key, target_key)| {
                let (this_key, other_key) = if first {
                    (source_key, target_key)
                } else {
                    (target_key, source_key)
                };
                let rows =
                    |key: &Field| shout(&[&through.name, "by", &key.relation.as_ref().expect("a foreign key").name]);
                let this_first =
                    matches!(&through.primary_key, PrimaryKey::Composite(parts) if parts[0] == this_key.name);
                json!({
                    "const_name": format!("{side}_THROUGH"), "model": through.name, "info": info(&through.name),
                    "this_first": this_first, "own": rows(this_key), "theirs": rows(other_key),
                })
            });
            join_sides.push(json!({
                "const_name": side, "insert": rust_str(&insert), "delete": rust_str(&delete),
                "select": rust_str(&select), "own": own, "theirs": theirs, "through": through,
            }));
        }
    }

    // The footprint: keys that depend on a row of this model.
    let owned: Vec<Value> = footprint
        .owned
        .iter()
        .map(|c| json!({ "info": info(&c.members), "collection": c.const_name }))
        .collect();
    let joined: Vec<Value> = footprint
        .joined
        .iter()
        .map(|j| {
            let sql = sql::texts_where(
                dialect,
                j.through,
                (j.owner_column, &j.owner.target_key().ty),
                (j.member_column, &model.target_key().ty),
            );
            let members = sql::members_through_text(
                dialect,
                model,
                j.through,
                (j.member_column, j.owner_column),
                &j.owner.target_key().ty,
            );
            json!({ "collection": j.collection.const_name, "sql": rust_str(&sql), "members": rust_str(&members) })
        })
        .collect();
    // Restrict dependents are left out: the database refuses the delete while they exist.
    let dependents: Vec<Value> = footprint
        .dependents
        .iter()
        .filter_map(|d| {
            let on_delete = match d.relation.on_delete {
                OnDelete::Cascade => "Cascade",
                OnDelete::SetNull => "SetNull",
                OnDelete::Restrict => return None,
            };
            Some(json!({
                "model": d.source.name,
                "sql": rust_str(&sql::rows_where_text(dialect, d.source, (&d.field.column, &d.field.ty))),
                "on_delete": on_delete,
            }))
        })
        .collect();
    // The repository's relation methods.
    let mut readers = Vec::new();
    let mut joins = Vec::new();
    for m2m in &model.many_to_many {
        joins.push(json!({ "name": m2m.name, "key": plan::collection_name(&model.name, &m2m.name), "members": m2m.target, "collection": shout(&[&model.name, &m2m.name]), "side": format!("{}_SIDE", shout(&[&model.name, &m2m.name])) }));
    }
    for reverse in &model.reverse {
        let source = plan::model(schema, &reverse.source);
        match reverse.kind {
            ReverseKind::Collection | ReverseKind::One => {
                let relation = source
                    .fields
                    .iter()
                    .find_map(|f| f.relation.as_ref().filter(|r| r.name == reverse.field))
                    .expect("validated");
                readers.push(json!({
                    "name": reverse.name,
                    "key": plan::collection_name(&model.name, &reverse.name),
                    "members": source.name,
                    "collection": shout(&[&source.name, "by", &reverse.field]),
                    "one": reverse.kind == ReverseKind::One || relation.kind == RelationKind::OneToOne,
                    "field": reverse.field,
                }));
            }
            ReverseKind::ManyToMany => {
                let collection = shout(&[&model.name, &reverse.name]);
                joins.push(json!({ "name": reverse.name, "key": plan::collection_name(&model.name, &reverse.name), "members": source.name, "side": format!("{collection}_SIDE"), "collection": collection }));
            }
        }
    }
    let forward: Vec<Value> = model
        .fields
        .iter()
        .filter_map(|field| {
            let relation = field.relation.as_ref()?;
            Some(json!({ "name": relation.name, "target": relation.target, "field": field.name, "nullable": field.nullable }))
        })
        .collect();
    // A through model's row: the two many-to-many collections holding its pair.
    let pairs: Vec<Value> = schema
        .models
        .iter()
        .flat_map(|source| source.many_to_many.iter().map(move |m2m| (source, m2m)))
        .filter(|(_, m2m)| m2m.through_model.as_deref() == Some(&model.name))
        .filter_map(|(source, m2m)| {
            let (_, source_key, target_key) = plan::through_keys(schema, source, m2m)?;
            let target = plan::model(schema, &m2m.target);
            Some([
                json!({ "info": info(&target.name), "collection": shout(&[&source.name, &m2m.name]), "field": source_key.name }),
                json!({ "info": info(&source.name), "collection": shout(&[&target.name, &m2m.related_name]), "field": target_key.name }),
            ])
        })
        .flatten()
        .collect();
    json!({
        "pairs": pairs,
        "collections": collections,
        "memberships": memberships,
        "join_sides": join_sides,
        "owned": owned,
        "joined": joined,
        "dependents": dependents,
        "readers": readers,
        "joins": joins,
        "forward": forward,
    })
}
