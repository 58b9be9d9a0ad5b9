//! Decides, from the IR, every cache key of every model and what each write does to which
//! key. The rendered doc comments and `explain` both read this plan, so they can never
//! disagree with each other.

use serde::Serialize;

use heck::ToShoutySnakeCase;

use crate::ir::{Field, ManyToMany, Model, OnDelete, Relation, ReverseKind, Schema};

/// The cache plan of one model.
#[derive(Clone, Debug, Serialize)]
pub struct ModelPlan {
    /// Model name.
    pub model: String,
    /// `<namespace>:<Model>:<digest>`, the start of every key of this model.
    pub key_prefix: String,
    /// The key prefixes of the model's retired digests, evicted by every write during a
    /// rolling deploy.
    pub retired_prefixes: Vec<String>,
    /// How long a rolling deploy may take, in seconds.
    pub rollout_secs: u64,
    /// Named backend the keys live on.
    pub backend: String,
    /// TTL of cached values, in seconds.
    pub ttl_secs: u64,
    /// Every key the model's reads use.
    pub keys: Vec<KeyPlan>,
    /// Every write and the keys it touches.
    pub writes: Vec<WriteEffect>,
}

/// One cache key pattern.
#[derive(Clone, Debug, Serialize)]
pub struct KeyPlan {
    /// The reading method (`get`, `get_by_email`).
    pub read_by: String,
    /// The key pattern, with `<…>` for the variable part.
    pub pattern: String,
    /// What the key caches.
    pub holds: String,
}

/// What one write does to the cache after its transaction commits. Every key listed is
/// locked before commit, which makes any in-flight fill of it fail.
#[derive(Clone, Debug, Serialize)]
pub struct WriteEffect {
    /// The writing method (`insert`, `update`, `delete`).
    pub op: String,
    /// Keys written through with the committed value.
    pub fills: Vec<String>,
    /// Keys refilled from the database after commit (collections).
    pub refills: Vec<String>,
    /// Keys emptied, to be refilled by the next reader.
    pub releases: Vec<String>,
    /// What the database does to other rows, and what it refuses, with what that means for
    /// their keys (cascades, `restrict`).
    pub notes: Vec<String>,
}

/// Plans every model of `schema`.
pub fn plan(schema: &Schema) -> Vec<ModelPlan> {
    schema.models.iter().map(|model| plan_model(schema, model)).collect()
}

/// The key prefix of a model.
pub fn key_prefix(schema: &Schema, model: &Model) -> String {
    format!("{}:{}:{}", schema.namespace, model.name, model.digest)
}

/// Longest relation part of a collection key (see [`collection_name`]): with the longest
/// namespace, model name and digest, and a hashed value, a key stays within memcached's 250
/// bytes.
const MAX_COLLECTION_NAME: usize = 72;

/// The relation part of a collection's key: `<owner model>.<accessor on the owner>`
/// (`Person.books`). Member prefix, owner model and accessor together name one relation
/// (accessors are unique per model), so two collections never share a key. Past
/// [`MAX_COLLECTION_NAME`] characters, its first characters and 16 hex digits of its SHA-256.
pub fn collection_name(owner: &str, accessor: &str) -> String {
    short_name(format!("{owner}.{accessor}"))
}

/// `name`, or past [`MAX_COLLECTION_NAME`] characters its first characters and 16 hex
/// digits of its SHA-256.
fn short_name(name: String) -> String {
    use sha2::{Digest, Sha256};
    if name.len() <= MAX_COLLECTION_NAME {
        return name;
    }
    let hex: String = Sha256::digest(name.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}~{hex}", &name[..MAX_COLLECTION_NAME - 17])
}

/// A cached lookup by unique values: one `unique` field, or one `unique_together` group.
#[derive(Clone, Debug)]
pub struct UniqueLookup<'m> {
    /// The reading method's suffix: `get_by_<method>` (`slug`, `owner_id_and_display_name`).
    pub method: String,
    /// The field part of its key, `uq.<key_field>:<value>`: the field's name, or the
    /// group's names joined by `+` (no field name has one), shortened as collection names.
    pub key_field: String,
    /// The fields, in order.
    pub fields: Vec<&'m Field>,
}

/// Every unique lookup of `model`: its unique fields, then its `unique_together` groups.
pub fn unique_lookups(model: &Model) -> Vec<UniqueLookup<'_>> {
    let single = model.fields.iter().filter(|f| f.unique).map(|f| UniqueLookup {
        method: f.name.clone(),
        key_field: f.name.clone(),
        fields: vec![f],
    });
    let groups = model.unique_together.iter().map(|group| {
        let fields: Vec<&Field> = group
            .iter()
            .filter_map(|name| model.fields.iter().find(|f| f.name == *name))
            .collect();
        UniqueLookup {
            method: group.join("_and_"),
            key_field: short_name(group.join("+")),
            fields,
        }
    });
    single.chain(groups).collect()
}

/// A cached lookup of the rows holding some values (a non-unique index): `find_by_<…>`.
#[derive(Clone, Debug)]
pub struct IndexLookup<'m> {
    /// The reading method's suffix: `find_by_<method>` (`last_name`, `customer_id_and_status`).
    pub method: String,
    /// The collection of the rows holding one group of values: key kind
    /// `rows.by.<names joined by +>` (no model name starts lowercase, so no relation's
    /// collection has such a name), its constant `<MODEL>_FIND_BY_<…>`.
    pub collection: CollectionRef,
    /// The fields, in order.
    pub fields: Vec<&'m Field>,
}

/// Every index lookup of `model` (see [`crate::ir::Model::indexes`]).
pub fn index_lookups(model: &Model) -> Vec<IndexLookup<'_>> {
    model
        .indexes
        .iter()
        .map(|group| {
            let fields: Vec<&Field> = group.iter().filter_map(|name| model.key_or_field(name)).collect();
            let method = group.join("_and_");
            IndexLookup {
                collection: CollectionRef {
                    members: model.name.clone(),
                    const_name: shout(&[&model.name, "find_by", &method]),
                    kind: format!("rows.{}", short_name(format!("by.{}", group.join("+")))),
                },
                method,
                fields,
            }
        })
        .collect()
}

/// A collection, as the generated code and its keys name it.
#[derive(Clone, Debug)]
pub struct CollectionRef {
    /// The member model (whose prefix starts the key).
    pub members: String,
    /// The generated constant (`BOOK_BY_AUTHOR`, `BOOK_EDITORS`).
    pub const_name: String,
    /// The key's kind and relation: `rows.Person.books` (the rows), `rel.Book.editors` (ids).
    pub kind: String,
}

/// A many-to-many collection a row is a member of.
#[derive(Debug)]
pub struct Joined<'s> {
    /// The collection (its members are the row's model).
    pub collection: CollectionRef,
    /// The model owning it.
    pub owner: &'s Model,
    /// The join table.
    pub through: &'s str,
    /// Its column pointing at the owner.
    pub owner_column: &'s str,
    /// Its column pointing at the member.
    pub member_column: &'s str,
}

/// Rows of another model that point at a model through a foreign key or one-to-one.
#[derive(Debug)]
pub struct Dependent<'s> {
    /// The referencing model.
    pub source: &'s Model,
    /// Its column.
    pub field: &'s Field,
    /// Its relation (`on_delete` says what deleting the target does to them).
    pub relation: &'s Relation,
}

/// Every cached key beyond its instance and unique keys that holds or depends on a row of
/// one model, derived once from the schema: the generated `FOOTPRINT` and `memberships`
/// encode it (so the runtime plans exactly these keys), `explain` and the doc comments
/// print it.
#[derive(Debug)]
pub struct Footprint<'s> {
    /// Collections holding the row, through one of its own columns (that column first).
    pub memberships: Vec<(&'s Field, CollectionRef)>,
    /// Collections owned by the row: its many-to-many sides and reverse relations.
    pub owned: Vec<CollectionRef>,
    /// Many-to-many collections the row is a member of.
    pub joined: Vec<Joined<'s>>,
    /// Rows of other models pointing at the row.
    pub dependents: Vec<Dependent<'s>>,
}

/// The fields a model's collections sort its rows by (an ordering entry naming a relation
/// stands for its column): the generated `same_order` compares them, and an update that
/// changes none of them re-sorts no collection.
pub fn ordering_fields(model: &Model) -> Vec<String> {
    model
        .ordering
        .iter()
        .filter_map(|(name, _)| {
            model
                .fields
                .iter()
                .find(|f| f.name == *name || f.relation.as_ref().is_some_and(|r| r.name == *name))
                .map(|f| f.name.clone())
        })
        .collect()
}

/// A model by name (validated to exist).
pub fn model<'s>(schema: &'s Schema, name: &str) -> &'s Model {
    schema
        .models
        .iter()
        .find(|m| m.name == name)
        .expect("validated: relation targets exist")
}

/// `SHOUTY_SNAKE` parts joined by `_`: the generated constants' names.
pub fn shout(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.to_shouty_snake_case())
        .collect::<Vec<_>>()
        .join("_")
}

/// The collection of `members` rows owned through `accessor` by an `owner` row, holding
/// their primary keys (`ids`) or the rows.
fn collection(members: &str, const_name: String, ids: bool, owner: &str, accessor: &str) -> CollectionRef {
    let kind = if ids { "rel" } else { "rows" };
    CollectionRef {
        members: members.to_owned(),
        const_name,
        kind: format!("{kind}.{}", collection_name(owner, accessor)),
    }
}

/// The footprint of a row of `model` (see [`Footprint`]).
pub fn footprint<'s>(schema: &'s Schema, model: &'s Model) -> Footprint<'s> {
    let memberships = model
        .fields
        .iter()
        .filter_map(|field| {
            let r = field.relation.as_ref()?;
            let name = shout(&[&model.name, "by", &r.name]);
            Some((field, collection(&model.name, name, false, &r.target, &r.related_name)))
        })
        .collect();
    let mut owned = Vec::new();
    let mut joined = Vec::new();
    let mut dependents = Vec::new();
    for m2m in &model.many_to_many {
        let target = self::model(schema, &m2m.target);
        let name = shout(&[&model.name, &m2m.name]);
        owned.push(collection(&target.name, name, true, &model.name, &m2m.name));
        let name = shout(&[&target.name, &m2m.related_name]);
        joined.push(Joined {
            collection: collection(&model.name, name, true, &target.name, &m2m.related_name),
            owner: target,
            through: &m2m.through,
            owner_column: &m2m.target_column,
            member_column: &m2m.source_column,
        });
    }
    for reverse in &model.reverse {
        let source = self::model(schema, &reverse.source);
        match reverse.kind {
            ReverseKind::Collection | ReverseKind::One => {
                let (field, relation) = source
                    .fields
                    .iter()
                    .find_map(|f| Some((f, f.relation.as_ref().filter(|r| r.name == reverse.field)?)))
                    .expect("validated: a reverse relation's field exists");
                let name = shout(&[&source.name, "by", &reverse.field]);
                owned.push(collection(&source.name, name, false, &model.name, &reverse.name));
                dependents.push(Dependent {
                    source,
                    field,
                    relation,
                });
            }
            ReverseKind::ManyToMany => {
                let m2m = source
                    .many_to_many
                    .iter()
                    .find(|m| m.name == reverse.field)
                    .expect("validated: a reverse relation's field exists");
                let name = shout(&[&model.name, &reverse.name]);
                owned.push(collection(&source.name, name, true, &model.name, &reverse.name));
                let name = shout(&[&source.name, &m2m.name]);
                joined.push(Joined {
                    collection: collection(&model.name, name, true, &source.name, &m2m.name),
                    owner: source,
                    through: &m2m.through,
                    owner_column: &m2m.source_column,
                    member_column: &m2m.target_column,
                });
            }
        }
    }
    Footprint {
        memberships,
        owned,
        joined,
        dependents,
    }
}

/// The through model of `m2m` (declared on `source`) and its foreign keys to the source and
/// to the target (validated: exactly one each, its composite key).
pub fn through_keys<'s>(
    schema: &'s Schema,
    source: &Model,
    m2m: &ManyToMany,
) -> Option<(&'s Model, &'s Field, &'s Field)> {
    let through = model(schema, m2m.through_model.as_deref()?);
    let key_to = |to: &str| {
        through
            .fields
            .iter()
            .find(|field| field.relation.as_ref().is_some_and(|r| r.target == to))
    };
    Some((through, key_to(&source.name)?, key_to(&m2m.target)?))
}

/// For a through model: the many-to-many collections holding its row's pair (both sides),
/// as key patterns, emptied by every write of the row.
fn pair_keys(schema: &Schema, through: &Model) -> Vec<String> {
    let mut keys = Vec::new();
    for source in &schema.models {
        for m2m in &source.many_to_many {
            let Some((found, source_key, target_key)) = through_keys(schema, source, m2m) else {
                continue;
            };
            if found.name != through.name {
                continue;
            }
            let target = model(schema, &m2m.target);
            keys.push(format!(
                "{}:rel.{}:<{}>",
                key_prefix(schema, target),
                collection_name(&source.name, &m2m.name),
                source_key.name
            ));
            keys.push(format!(
                "{}:rel.{}:<{}>",
                key_prefix(schema, source),
                collection_name(&target.name, &m2m.related_name),
                target_key.name
            ));
        }
    }
    keys
}

/// The collections a row of `model` is a member of through its own columns, as key patterns:
/// the relations' collections of the rows it points at (by their owner's primary key), and
/// The index lookups it is in, by its values.
fn membership_keys(schema: &Schema, model: &Model) -> Vec<String> {
    let prefix = key_prefix(schema, model);
    let relations = footprint(schema, model)
        .memberships
        .into_iter()
        .map(|(field, collection)| {
            let owner = &field.relation.as_ref().expect("a membership is a relation").target;
            format!("{prefix}:{}:<{}> (owner {owner})", collection.kind, field.name)
        });
    let indexes = index_lookups(model).into_iter().map(|lookup| {
        let values: Vec<&str> = lookup.fields.iter().map(|f| f.name.as_str()).collect();
        format!("{prefix}:{}:<{}> (index)", lookup.collection.kind, values.join(", "))
    });
    relations.chain(indexes).collect()
}

/// The kind part of a reverse collection's key: `rows` when it caches the member rows,
/// `rel` (many-to-many) when it caches their primary keys, as the runtime's `key::collection`.
fn collection_kind(kind: ReverseKind) -> &'static str {
    match kind {
        ReverseKind::ManyToMany => "rel",
        ReverseKind::Collection | ReverseKind::One => "rows",
    }
}

fn plan_model(schema: &Schema, model: &Model) -> ModelPlan {
    let prefix = key_prefix(schema, model);
    // A composite key's text is its parts' texts, comma separated (`<student_id>,<course_id>`).
    let key_names: Vec<&str> = model.key_fields().iter().map(|f| f.name.as_str()).collect();
    let pk = &key_names.join(">,<");
    let pk_key = format!("{prefix}:pk:<{pk}>");
    let unique_keys: Vec<(String, String, String)> = unique_lookups(model)
        .into_iter()
        .map(|lookup| {
            let values: Vec<&str> = lookup.fields.iter().map(|f| f.name.as_str()).collect();
            (
                lookup.method,
                format!("{prefix}:uq.{}:<{}>", lookup.key_field, values.join(", ")),
                values.join("`, `"),
            )
        })
        .collect();
    let mut keys = vec![KeyPlan {
        read_by: "get / get_many".into(),
        pattern: pk_key.clone(),
        holds: format!("the `{}` row, or \"does not exist\"", model.name),
    }];
    keys.extend(unique_keys.iter().map(|(method, pattern, fields)| KeyPlan {
        read_by: format!("get_by_{method}"),
        pattern: pattern.clone(),
        holds: format!(
            "the `{}` of the row with that `{fields}`, or \"does not exist\"",
            key_names.join("`, `")
        ),
    }));
    let new_unique: Vec<String> = unique_keys.iter().map(|(_, pattern, _)| pattern.clone()).collect();
    let old_unique: Vec<String> = unique_keys
        .iter()
        .map(|(_, pattern, _)| format!("{pattern} (old value)"))
        .collect();

    keys.extend(index_lookups(model).into_iter().map(|lookup| {
        let values: Vec<&str> = lookup.fields.iter().map(|f| f.name.as_str()).collect();
        KeyPlan {
            read_by: format!("find_by_{}", lookup.method),
            pattern: format!("{prefix}:{}:<{}>", lookup.collection.kind, values.join(", ")),
            holds: format!("the `{}` rows with those values, in order", model.name),
        }
    }));
    // Collections this model's rows are members of through their own columns.
    let memberships = membership_keys(schema, model);
    // Collections owned by a row of this model, read through its repository.
    for reverse in &model.reverse {
        let members = schema
            .models
            .iter()
            .find(|m| m.name == reverse.source)
            .map(|m| key_prefix(schema, m))
            .unwrap_or_default();
        let holds = match reverse.kind {
            ReverseKind::ManyToMany => "primary keys paired with the row",
            ReverseKind::Collection | ReverseKind::One => "rows related to the row",
        };
        keys.push(KeyPlan {
            read_by: reverse.name.clone(),
            pattern: format!(
                "{members}:{}.{}:<{pk}>",
                collection_kind(reverse.kind),
                collection_name(&model.name, &reverse.name)
            ),
            holds: format!("the `{}` {holds}, in order", reverse.source),
        });
    }
    for m2m in &model.many_to_many {
        let members = schema
            .models
            .iter()
            .find(|m| m.name == m2m.target)
            .map(|m| key_prefix(schema, m))
            .unwrap_or_default();
        keys.push(KeyPlan {
            read_by: m2m.name.clone(),
            pattern: format!("{members}:rel.{}:<{pk}>", collection_name(&model.name, &m2m.name)),
            holds: format!("the `{}` primary keys paired with the row, in order", m2m.target),
        });
    }
    let footprint = footprint(schema, model);
    let joined: Vec<String> = footprint
        .joined
        .iter()
        .map(|j| {
            format!(
                "{prefix}:{}:<each paired {}> (if ordering fields changed)",
                j.collection.kind, j.owner.name
            )
        })
        .collect();
    let mut deleted: Vec<String> = old_unique.iter().map(|k| k.replace(" (old value)", "")).collect();
    deleted.extend(joined.iter().map(|k| k.replace(" (if ordering fields changed)", "")));
    deleted.extend(
        footprint
            .owned
            .iter()
            .map(|c| format!("<{}>:{}:<{pk}> (if any row or pair points at it)", c.members, c.kind)),
    );
    let mut dependent_refills = Vec::new();
    let mut notes = Vec::new();
    for dependent in &footprint.dependents {
        let (source_name, field) = (&dependent.source.name, &dependent.relation.name);
        match dependent.relation.on_delete {
            OnDelete::Cascade => notes.push(format!(
                "deletes each `{source_name}` whose `{field}` is this row (cascade): its keys as `{source_name}Repo::delete` plans them, recursively"
            )),
            OnDelete::SetNull => {
                let rows = format!("each {source_name} whose {field} is this row");
                let source_prefix = key_prefix(schema, dependent.source);
                deleted.push(format!("<{source_name}>:pk:<{rows}> (column set to NULL)"));
                deleted.extend(unique_lookups(dependent.source).into_iter().map(|lookup| {
                    let values: Vec<&str> = lookup.fields.iter().map(|f| f.name.as_str()).collect();
                    format!("{source_prefix}:uq.{}:<{} of {rows}>", lookup.key_field, values.join(", "))
                }));
                // The row stays, its order may change: re-sorted (re-read after commit).
                dependent_refills.extend(
                    self::footprint(schema, dependent.source)
                        .joined
                        .iter()
                        .map(|j| format!("{source_prefix}:{}:<each paired {} of {rows}>", j.collection.kind, j.owner.name)),
                );
                dependent_refills.extend(
                    membership_keys(schema, dependent.source)
                        .into_iter()
                        .map(|key| format!("{key}, of {rows} (set to NULL)")),
                );
            }
            OnDelete::Restrict => notes.push(format!(
                "refused while a `{source_name}` row's `{field}` is this row (restrict): no key changes"
            )),
        }
    }
    let fills_row = || {
        let mut fills = vec![pk_key.clone()];
        fills.extend(new_unique.iter().cloned());
        fills
    };
    let pairs = pair_keys(schema, model);
    deleted.extend(pairs.iter().cloned());
    let update_releases: Vec<String> = old_unique.iter().chain(&pairs).cloned().collect();
    let mut writes = vec![
        WriteEffect {
            op: "insert".into(),
            fills: fills_row(),
            refills: memberships.clone(),
            releases: pairs.clone(),
            notes: Vec::new(),
        },
        WriteEffect {
            op: "update".into(),
            fills: fills_row(),
            // Re-sorted only when an ordering field changed: without any, never.
            refills: memberships
                .iter()
                .map(|k| format!("{k}, old and new owner"))
                .chain(joined.iter().filter(|_| !ordering_fields(model).is_empty()).cloned())
                .collect(),
            releases: update_releases,
            notes: Vec::new(),
        },
        WriteEffect {
            op: "delete".into(),
            fills: vec![format!("{pk_key} (\"does not exist\")")],
            refills: memberships.iter().cloned().chain(dependent_refills).collect(),
            releases: deleted,
            notes,
        },
    ];
    let join_names = model
        .many_to_many
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                m.target.clone(),
                m.related_name.clone(),
                through_keys(schema, model, m),
            )
        })
        .chain(
            model
                .reverse
                .iter()
                .filter(|r| r.kind == ReverseKind::ManyToMany)
                .map(|r| {
                    let source = self::model(schema, &r.source);
                    let m2m = source.many_to_many.iter().find(|m| m.name == r.field);
                    let through = m2m.and_then(|m2m| through_keys(schema, source, m2m));
                    (r.name.clone(), r.source.clone(), r.field.clone(), through)
                }),
        );
    for (name, other, theirs, through) in join_names {
        // With a through model: the changed pairs' rows and their foreign keys' collections.
        let through_keys: Vec<String> = through
            .map(|(through, _, _)| {
                let parts: Vec<&str> = through.key_fields().iter().map(|f| f.name.as_str()).collect();
                let prefix = key_prefix(schema, through);
                let mut keys = vec![format!("{prefix}:pk:<{}>", parts.join(">,<"))];
                keys.extend(membership_keys(schema, through));
                keys
            })
            .unwrap_or_default();
        let other_prefix = schema
            .models
            .iter()
            .find(|m| m.name == other)
            .map(|m| key_prefix(schema, m))
            .unwrap_or_default();
        for op in ["add", "remove", "clear", "set"] {
            writes.push(WriteEffect {
                op: format!("{op}_{name}"),
                fills: Vec::new(),
                refills: vec![
                    format!("{other_prefix}:rel.{}:<{pk}>", collection_name(&model.name, &name)),
                    format!(
                        "{prefix}:rel.{}:<each {other} paired or unpaired>",
                        collection_name(&other, &theirs)
                    ),
                ],
                releases: through_keys.clone(),
                notes: Vec::new(),
            });
        }
    }
    ModelPlan {
        model: model.name.clone(),
        retired_prefixes: model
            .retired
            .iter()
            .map(|digest| format!("{}:{}:{digest}", schema.namespace, model.name))
            .collect(),
        rollout_secs: schema.rollout_secs,
        key_prefix: prefix,
        backend: model.backend.clone(),
        ttl_secs: model.ttl_secs,
        keys,
        writes,
    }
}

/// The plan of one model as text (the `explain` verb).
pub fn explain(plan: &ModelPlan) -> String {
    let mut out = format!(
        "{} (backend `{}`, ttl {} s)\n  keys:\n",
        plan.model, plan.backend, plan.ttl_secs
    );
    for key in &plan.keys {
        out.push_str(&format!("    {:<18} {}  — {}\n", key.read_by, key.pattern, key.holds));
    }
    if !plan.retired_prefixes.is_empty() {
        out.push_str(&format!(
            "  rolling deploy (for {} s after a process starts): reads go to the database; every write\n  empties its keys instead of writing through, and the same keys under\n",
            plan.rollout_secs
        ));
        for prefix in &plan.retired_prefixes {
            out.push_str(&format!("    {prefix}\n"));
        }
    }
    out.push_str("  writes (keys locked before commit; after commit):\n");
    for write in &plan.writes {
        out.push_str(&format!("    {}\n", write.op));
        for key in &write.fills {
            out.push_str(&format!("      writes through {key}\n"));
        }
        for key in &write.refills {
            out.push_str(&format!("      refills        {key}\n"));
        }
        for key in &write.releases {
            out.push_str(&format!("      empties        {key}\n"));
        }
        for note in &write.notes {
            out.push_str(&format!("      also           {note}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_names_stay_short_and_distinct() {
        assert_eq!(collection_name("Person", "books"), "Person.books");
        let long = "a".repeat(63);
        let (one, two) = (
            collection_name(&"A".repeat(63), &long),
            collection_name(&"A".repeat(62), &long),
        );
        assert_eq!(one.len(), MAX_COLLECTION_NAME);
        assert!(one.contains('~'), "{one}");
        assert_ne!(one, two, "a digest of the whole name keeps cut names apart");
    }
}
