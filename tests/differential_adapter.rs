//! Writes, for build.rs, the differential checker's adapter of one schema: Rust source that
//! drives the schema's generated repositories by random operations and compares every
//! cached read they offer with a plain SQL read (see `tests/suite/differential.rs`, which
//! holds everything that does not depend on the schema). Test code only: the user-facing
//! generated code is not changed for it.

use std::fmt::Write as _;

use autocache_codegen::ir::{Field, FieldType, Model, ReverseKind, Schema};
use autocache_codegen::plan::{index_lookups, unique_lookups};
use autocache_codegen::render::bind_of;
use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};

/// The adapter module body for `schema`, whose generated repositories are `include!`d from
/// `repositories` (a path relative to `OUT_DIR`).
pub fn adapter(schema: &Schema, repositories: &str) -> String {
    let mut ops: Vec<Op> = Vec::new();
    for model in &schema.models {
        ops.extend(model_ops(schema, model));
        ops.extend(join_ops(schema, model));
    }
    let mut out = format!(
        "pub mod repositories {{\n    include!(concat!(env!(\"OUT_DIR\"), \"/{repositories}\"));\n}}\n\
         #[allow(unused_imports)]\nuse repositories::*;\n\
         #[allow(unused_imports)]\nuse crate::differential::{{Tally, pick, pick_ids, pick_row, text, date, time, datetime}};\n\
         use autocache::{{Context, Model as _}};\nuse rand::Rng;\nuse rand::rngs::StdRng;\n\n\
         /// The schema's name, as printed in R11 lines.\npub const NAME: &str = \"{}\";\n\n",
        schema.namespace
    );
    out.push_str("/// Creates the schema's tables.\npub async fn create_tables(pool: &sqlx::Pool<Db>) -> Result<(), sqlx::Error> {\n    repositories::create_tables(pool).await\n}\n\n");
    // Loading: a few rounds of one insert per model (later rounds find their targets).
    out.push_str("/// Loads a few rows into every table.\npub async fn load(ctx: &Context<Db>, rng: &mut StdRng) {\n    for _ in 0..3 {\n");
    for (index, op) in ops.iter().enumerate() {
        if op.insert {
            let _ = writeln!(out, "        let _ = op_{index}(ctx, None, rng).await;");
        }
    }
    out.push_str("    }\n}\n\n");
    // The operations.
    for m in &schema.models {
        out.push_str(&filter_fn(schema, m));
    }
    for (index, op) in ops.iter().enumerate() {
        let _ = write!(
            out,
            "/// {}\n#[allow(unused_variables, unused_mut, clippy::all)]\nasync fn op_{index}(ctx: &Context<Db>, tx: Option<&mut autocache::Transaction<'_, Db>>, rng: &mut StdRng) -> autocache::Result<()> {{\n{}\n    Ok(())\n}}\n\n",
            op.name, op.body
        );
    }
    // One random step: an operation, or a transaction of a few that commits or rolls back.
    let writes: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].writes).collect();
    let _ = write!(
        out,
        "/// Runs one random operation (or a transaction of up to three); what it was.\n\
         pub async fn step(ctx: &Context<Db>, rng: &mut StdRng) -> String {{\n\
         \x20   if rng.random_bool(0.15) {{\n\
         \x20       return transaction(ctx, rng).await;\n\
         \x20   }}\n\
         \x20   let op = rng.random_range(0..{count});\n\
         \x20   crate::differential::outcome(OPS[op], &run(ctx, None, rng, op).await)\n\
         }}\n\n\
         /// A transaction of up to three writes that commits, or rolls back (always after a\n\
         /// failed write); what it was.\n\
         async fn transaction(ctx: &Context<Db>, rng: &mut StdRng) -> String {{\n\
         \x20   let mut tx = match ctx.begin().await {{\n\
         \x20       Ok(tx) => tx,\n\
         \x20       Err(error) => return format!(\"begin failed: {{error}}\"),\n\
         \x20   }};\n\
         \x20   let mut done = Vec::new();\n\
         \x20   let mut failed = false;\n\
         \x20   for _ in 0..rng.random_range(1..=3) {{\n\
         \x20       let (op, name) = WRITES[rng.random_range(0..WRITES.len())];\n\
         \x20       let result = run(ctx, Some(&mut tx), rng, op).await;\n\
         \x20       failed = result.is_err();\n\
         \x20       done.push(crate::differential::outcome(name, &result));\n\
         \x20       if failed {{\n\
         \x20           break;\n\
         \x20       }}\n\
         \x20   }}\n\
         \x20   crate::differential::finish(tx, done, !failed && rng.random_bool(0.6)).await\n\
         }}\n\n\
         /// Names of the operations.\npub const OPS: [&str; {count}] = [{names}];\n\n\
         /// The operations that write (those a transaction runs).\nconst WRITES: [(usize, &str); {write_count}] = [{write_list}];\n\n\
         /// Runs operation `op`.\npub async fn run(ctx: &Context<Db>, tx: Option<&mut autocache::Transaction<'_, Db>>, rng: &mut StdRng, op: usize) -> autocache::Result<()> {{\n    match op {{\n",
        count = ops.len(),
        names = ops
            .iter()
            .map(|op| format!("{:?}", op.name))
            .collect::<Vec<_>>()
            .join(", "),
        write_count = writes.len(),
        write_list = writes
            .iter()
            .map(|&i| format!("({i}, {:?})", ops[i].name))
            .collect::<Vec<_>>()
            .join(", "),
    );
    for index in 0..ops.len() {
        let _ = writeln!(out, "        {index} => op_{index}(ctx, tx, rng).await,");
    }
    out.push_str("        _ => unreachable!(\"operation numbers come from OPS\"),\n    }\n}\n\n");
    out.push_str(&check(schema));
    out
}

/// One generated operation.
struct Op {
    name: String,
    body: String,
    /// Whether it is an insert (the loader runs those).
    insert: bool,
    /// Whether it writes (a transaction may run it).
    writes: bool,
}

fn model<'s>(schema: &'s Schema, name: &str) -> &'s Model {
    schema.models.iter().find(|m| m.name == name).expect("validated")
}

fn shout(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.to_shouty_snake_case())
        .collect::<Vec<_>>()
        .join("_")
}

/// An expression of a random value of `field` (its Rust type, `Option` included); `None`
/// for a relation whose target has no row yet makes the operation return early, so the
/// expression may contain `?`-like early returns.
fn value(schema: &Schema, field: &Field) -> String {
    let base = match (&field.relation, &field.ty) {
        (Some(relation), _) => {
            let target = model(schema, &relation.target);
            return if field.nullable {
                format!(
                    "if rng.random_bool(0.3) {{ None }} else {{ pick::<{}>(ctx, rng).await }}",
                    target.name
                )
            } else {
                format!(
                    "match pick::<{}>(ctx, rng).await {{ Some(id) => id, None => return Ok(()) }}",
                    target.name
                )
            };
        }
        (None, ty) => scalar(ty, field.unique || field.auto || in_group(schema, field)),
    };
    if field.nullable {
        format!("if rng.random_bool(0.25) {{ None }} else {{ Some({base}) }}")
    } else {
        base
    }
}

/// Whether `field` is part of a `unique_together` group of its model (its values are then
/// drawn from many, so that inserts mostly succeed).
fn in_group(schema: &Schema, field: &Field) -> bool {
    schema
        .models
        .iter()
        .filter(|m| m.fields.iter().any(|f| std::ptr::eq(f, field)))
        .any(|m| m.unique_together.iter().flatten().any(|name| *name == field.name))
}

/// An expression of a random value of type `ty`: a few values (so orderings tie), many
/// for unique columns (so inserts mostly succeed).
fn scalar(ty: &FieldType, unique: bool) -> String {
    let range = if unique { "0..1_000_000" } else { "0..4" };
    match ty {
        FieldType::SmallInt => format!("rng.random_range({}i16)", if unique { "0..30_000" } else { "0..4" }),
        FieldType::Int | FieldType::PositiveInt => format!("rng.random_range({range}i32)"),
        FieldType::BigInt => format!("rng.random_range({range}i64)"),
        FieldType::Bool => "rng.random_bool(0.5)".into(),
        FieldType::Float => format!("f64::from(rng.random_range({range}i32)) / 2.0"),
        FieldType::String { max_length } => format!("text(rng, {max_length}, {unique})"),
        FieldType::Text => format!("text(rng, 40, {unique})"),
        FieldType::Bytes => "vec![rng.random_range(0..4u8)]".into(),
        FieldType::Uuid => format!("sqlx::types::Uuid::from_u128(rng.random_range({range}u128))"),
        FieldType::Date => "date(rng)".into(),
        FieldType::Time => "time(rng)".into(),
        FieldType::DateTime => "datetime(rng)".into(),
        FieldType::Json => "serde_json::json!({ \"n\": rng.random_range(0..4) })".into(),
        FieldType::Decimal { precision, scale } => {
            let most = 10i64.pow((*precision).min(9)).min(if unique { 1_000_000 } else { 4 });
            format!("autocache::sqlx::types::Decimal::new(rng.random_range(0..{most}i64), {scale})")
        }
        FieldType::Enum(e) => format!("{}::ALL[rng.random_range(0..{})]", e.name, e.values.len()),
        FieldType::Char { length } => format!("text(rng, {length}, {unique})"),
    }
}

/// Whether lookups take values of `ty` by value (as the generated `get_by_<…>` do).
fn is_copy(ty: &FieldType) -> bool {
    !matches!(
        ty,
        FieldType::String { .. } | FieldType::Text | FieldType::Char { .. } | FieldType::Bytes | FieldType::Json
    )
}

/// `<call>` on model `name`'s repository over the transaction if there is one, else over
/// the context.
fn either(name: &str, call: &str) -> String {
    format!(
        "    match tx {{\n        Some(tx) => {{ {name}Repo::new(&*tx).{call}.await?; }}\n        None => {{ {name}Repo::new(ctx).{call}.await?; }}\n    }}"
    )
}

/// The id argument of a repository method taking a primary key of `model`.
fn id_arg(model: &Model, id: &str) -> String {
    match model.key_column().map(|key| &key.ty) {
        Some(FieldType::String { .. } | FieldType::Text) => format!("{id}.as_str()"),
        _ => format!("{id}.clone()"),
    }
}

fn model_ops(schema: &Schema, m: &Model) -> Vec<Op> {
    let name = &m.name;
    let repo = format!("{name}Repo::new(ctx)");
    let mut ops = Vec::new();
    // insert
    let mut new = String::new();
    // The program sends no value for an auto-increment key or a column the database sets.
    let sent = |f: &&Field| !f.auto && f.set_by_database.is_none();
    // An update changes neither the key nor what the database sets.
    let written: Vec<&Field> = m.fields.iter().filter(sent).filter(|f| !m.is_key(f)).collect();
    for field in m.key_column().into_iter().chain(&m.fields).filter(sent) {
        let mut expr = value(schema, field);
        if field.default.is_some() && !field.nullable {
            expr = format!("if rng.random_bool(0.3) {{ None }} else {{ Some({expr}) }}");
        }
        let _ = writeln!(new, "    let {} = {expr};", field.name);
    }
    let fields: Vec<&str> = m
        .key_column()
        .into_iter()
        .chain(&m.fields)
        .filter(sent)
        .map(|f| f.name.as_str())
        .collect();
    let _ = write!(
        new,
        "    let new = New{name} {{ {} }};\n{}",
        fields.join(", "),
        either(name, "insert(&new)")
    );
    ops.push(Op {
        name: format!("insert {name}"),
        body: new,
        insert: true,
        writes: true,
    });
    // update: one field changed (a move between parents when it is a foreign key)
    let mut update = format!("    let Some(mut row) = pick_row::<{name}>(ctx, rng).await else {{ return Ok(()) }};\n");
    if !written.is_empty() {
        let _ = writeln!(update, "    match rng.random_range(0..{}) {{", written.len());
        for (i, field) in written.iter().enumerate() {
            let _ = writeln!(update, "        {i} => row.{} = {},", field.name, value(schema, field));
        }
        update.push_str("        _ => unreachable!(),\n    }\n");
    }
    update.push_str(&either(name, "update(&row)"));
    ops.push(Op {
        name: format!("update {name}"),
        body: update,
        insert: false,
        writes: true,
    });
    // delete
    let delete = format!(
        "    let Some(id) = pick::<{name}>(ctx, rng).await else {{ return Ok(()) }};\n{}",
        either(name, &format!("delete({})", id_arg(m, "id")))
    );
    ops.push(Op {
        name: format!("delete {name}"),
        body: delete,
        insert: false,
        writes: true,
    });
    // bulk: one condition (see `filter_fn`), or a conjunction or disjunction of two
    let filter = format!(
        "    let filter = match rng.random_range(0..4) {{\n        0 | 1 => filter_{snake}(ctx, rng).await,\n        n => match (filter_{snake}(ctx, rng).await, filter_{snake}(ctx, rng).await) {{\n            (Some(a), Some(b)) if n == 2 => Some({name}Filter::All(vec![a, b])),\n            (Some(a), Some(b)) => Some({name}Filter::Any(vec![a, b])),\n            _ => None,\n        }},\n    }};\n    let Some(filter) = filter else {{ return Ok(()) }};\n",
        snake = name.to_snake_case()
    );
    if !written.is_empty() {
        let mut update_where = filter.clone();
        let _ = writeln!(
            update_where,
            "    let mut changes = {name}Changes::default();\n    match rng.random_range(0..{}) {{",
            written.len()
        );
        for (i, field) in written.iter().enumerate() {
            let _ = writeln!(
                update_where,
                "        {i} => changes.{} = Some({}),",
                field.name,
                value(schema, field)
            );
        }
        update_where.push_str("        _ => unreachable!(),\n    }\n");
        update_where.push_str(&either(name, "update_where(&filter, &changes)"));
        ops.push(Op {
            name: format!("update_where {name}"),
            body: update_where,
            insert: false,
            writes: true,
        });
    }
    let delete_where = format!("{filter}{}", either(name, "delete_where(&filter)"));
    ops.push(Op {
        name: format!("delete_where {name}"),
        body: delete_where,
        insert: false,
        writes: true,
    });
    // evictions (as an LRU would): the row, and each collection it owns
    let mut evict = format!(
        "    let Some(id) = pick::<{name}>(ctx, rng).await else {{ return Ok(()) }};\n    let repo = {repo};\n    repo.evict({}).await?;\n",
        id_arg(m, "id")
    );
    for accessor in accessors(schema, m) {
        let _ = writeln!(evict, "    repo.evict_{}({}).await?;", accessor.name, id_arg(m, "id"));
    }
    ops.push(Op {
        name: format!("evict {name}"),
        body: evict,
        insert: false,
        writes: false,
    });
    ops
}

/// `filter_<model>`: one random condition of `m`'s bulk filter: a set of primary keys, a
/// foreign key's value, a range of an orderable column, or NULL / not NULL; `None` when a
/// foreign key's target has no row.
fn filter_fn(schema: &Schema, m: &Model) -> String {
    let name = &m.name;
    // A set of primary keys (of a composite key: rows sharing its first part's values).
    let first = m.key_fields()[0];
    let ids = match m.key_column() {
        Some(_) => "pick_ids::<{name}>(ctx, rng, 3).await".replace("{name}", name),
        None => format!(
            "pick_ids::<{name}>(ctx, rng, 3).await.into_iter().map(|id| id.{}).collect()",
            first.name
        ),
    };
    let mut arms = vec![format!(
        "Some({name}Filter::{}In({ids}))",
        first.name.to_upper_camel_case()
    )];
    for field in m.key_column().into_iter().chain(&m.fields) {
        let variant = field.name.to_upper_camel_case();
        if let Some(relation) = &field.relation {
            arms.push(format!(
                "pick::<{}>(ctx, rng).await.map({name}Filter::{variant}Eq)",
                model(schema, &relation.target).name
            ));
        } else if field.ty.orderable() && field.ty != FieldType::Json {
            arms.push(format!(
                "{{ let value = {}; Some(match rng.random_range(0..4) {{ 0 => {name}Filter::{variant}Lt(value), 1 => {name}Filter::{variant}Le(value), 2 => {name}Filter::{variant}Gt(value), _ => {name}Filter::{variant}Ge(value) }}) }}",
                scalar(&field.ty, false)
            ));
        }
        if field.nullable {
            arms.push(format!(
                "Some(if rng.random_bool(0.5) {{ {name}Filter::{variant}IsNull }} else {{ {name}Filter::{variant}NotNull }})"
            ));
        }
    }
    let mut out = format!(
        "/// One random condition on `{name}` rows.\n#[allow(unused_variables, clippy::all)]\nasync fn filter_{}(ctx: &Context<Db>, rng: &mut StdRng) -> Option<{name}Filter> {{\n    match rng.random_range(0..{}) {{\n",
        name.to_snake_case(),
        arms.len()
    );
    for (i, arm) in arms.iter().enumerate() {
        let _ = writeln!(out, "        {i} => {arm},");
    }
    out.push_str("        _ => unreachable!(),\n    }\n}\n\n");
    out
}

/// Many-to-many writes on each side of each relation `m` declares.
fn join_ops(schema: &Schema, m: &Model) -> Vec<Op> {
    let mut ops = Vec::new();
    for m2m in &m.many_to_many {
        let target = model(schema, &m2m.target);
        for (this, other, accessor) in [(m, target, &m2m.name), (target, m, &m2m.related_name)] {
            let (s, o) = (&this.name, &other.name);
            let head = format!(
                "    let Some(id) = pick::<{s}>(ctx, rng).await else {{ return Ok(()) }};\n    let others = pick_ids::<{o}>(ctx, rng, 2).await;\n"
            );
            let id = id_arg(this, "id");
            for (verb, call) in [
                ("add", format!("add_{accessor}({id}, &others)")),
                ("remove", format!("remove_{accessor}({id}, &others)")),
                ("set", format!("set_{accessor}({id}, &others)")),
                ("clear", format!("clear_{accessor}({id})")),
            ] {
                let body = format!("{head}{}", either(s, &call));
                ops.push(Op {
                    name: format!("{verb}_{accessor} {s}"),
                    body,
                    insert: false,
                    writes: true,
                });
            }
        }
    }
    ops
}

/// A collection read a model's repository offers.
struct Accessor {
    /// The method (`books`).
    name: String,
    /// The member model.
    members: String,
    /// The collection constant.
    collection: String,
    /// Whether it reads at most one row (a reverse one-to-one).
    one: bool,
}

/// Every collection read of `m`'s repository.
fn accessors(schema: &Schema, m: &Model) -> Vec<Accessor> {
    let mut out: Vec<Accessor> = m
        .many_to_many
        .iter()
        .map(|m2m| Accessor {
            name: m2m.name.clone(),
            members: m2m.target.clone(),
            collection: shout(&[&m.name, &m2m.name]),
            one: false,
        })
        .collect();
    for reverse in &m.reverse {
        let source = model(schema, &reverse.source);
        out.push(match reverse.kind {
            ReverseKind::ManyToMany => Accessor {
                name: reverse.name.clone(),
                members: source.name.clone(),
                collection: shout(&[&m.name, &reverse.name]),
                one: false,
            },
            ReverseKind::Collection | ReverseKind::One => Accessor {
                name: reverse.name.clone(),
                members: source.name.clone(),
                collection: shout(&[&source.name, "by", &reverse.field]),
                one: reverse.kind == ReverseKind::One,
            },
        });
    }
    out
}

/// `check`: every cached read of every model compared with a plain read.
fn check(schema: &Schema) -> String {
    let mut out = String::from(
        "/// Compares every cached read the repositories offer with a plain SQL read.\n#[allow(clippy::all, unused_variables)]\npub async fn check(ctx: &Context<Db>, tally: &mut Tally) {\n",
    );
    for m in &schema.models {
        let name = &m.name;
        let _ = writeln!(
            out,
            "    let rows = crate::differential::check_rows::<{name}>(ctx, tally).await;\n    let repo = {name}Repo::new(ctx);"
        );
        for lookup in unique_lookups(m) {
            // The row's values, skipping rows with a NULL one (they have no key).
            let mut values = String::new();
            let mut args = Vec::new();
            for (i, field) in lookup.fields.iter().enumerate() {
                if field.nullable {
                    let _ = write!(values, "let Some(v{i}) = &row.{} else {{ continue }}; ", field.name);
                } else {
                    let _ = write!(values, "let v{i} = &row.{}; ", field.name);
                }
                args.push(match field.ty {
                    FieldType::String { .. } | FieldType::Text | FieldType::Char { .. } => format!("v{i}.as_str()"),
                    ref ty if is_copy(ty) => format!("v{i}.clone()"),
                    _ => format!("v{i}"),
                });
            }
            let _ = writeln!(
                out,
                "    for row in &rows {{\n        {values}\n        tally.compare(|| format!(\"{name}::get_by_{f}({{:?}})\", row.id()), repo.get_by_{f}({}).await, Some(row.clone()));\n    }}",
                args.join(", "),
                f = lookup.method
            );
        }
        for lookup in index_lookups(m) {
            // The rows holding each row's values, skipping rows with a NULL one.
            let mut values = String::new();
            let (mut args, mut binds) = (Vec::new(), String::new());
            for (i, field) in lookup.fields.iter().enumerate() {
                if field.nullable {
                    let _ = write!(values, "let Some(v{i}) = &row.{} else {{ continue }}; ", field.name);
                } else {
                    let _ = write!(values, "let v{i} = &row.{}; ", field.name);
                }
                args.push(match field.ty {
                    FieldType::String { .. } | FieldType::Text | FieldType::Char { .. } => format!("v{i}.as_str()"),
                    ref ty if is_copy(ty) => format!("v{i}.clone()"),
                    _ => format!("v{i}"),
                });
                let _ = write!(
                    binds,
                    ".bind({})",
                    bind_of(schema.dialect, &field.ty, &format!("*v{i}"), false)
                );
            }
            let _ = writeln!(
                out,
                "    for row in &rows {{\n        {values}\n        let plain = crate::differential::rows_of::<{name}>(ctx, sqlx::query({collection}.select){binds}).await;\n        tally.compare(|| format!(\"{name}::find_by_{f}({{:?}})\", row.id()), repo.find_by_{f}({}).await, plain);\n    }}",
                args.join(", "),
                collection = lookup.collection.const_name,
                f = lookup.method
            );
        }
        for accessor in accessors(schema, m) {
            let (members, reader, collection) = (&accessor.members, &accessor.name, &accessor.collection);
            let read = if accessor.one {
                format!(
                    "repo.{reader}({}).await.map(|one| one.into_iter().collect::<Vec<_>>())",
                    id_arg(m, "row.id()")
                )
            } else {
                format!("repo.{reader}({}).await", id_arg(m, "row.id()"))
            };
            let _ = writeln!(
                out,
                "    for row in &rows {{\n        let plain = crate::differential::members::<{members}, _>(ctx, &{collection}, row.id().clone()).await;\n        tally.compare(|| format!(\"{name}Repo::{reader}({{}})\", row.id()), {read}, plain);\n    }}"
            );
        }
    }
    out.push_str("}\n");
    out
}
