//! Decides, from the IR, every cache key of every model and what each write does to which
//! key. The rendered doc comments and `explain` both read this plan, so they can never
//! disagree with each other; what a write does to each kind of key is the planner the
//! runtime's writes execute (`autocache_effects::plan`), here spelled as key patterns.

use autocache_effects::{self as effects, After, Change, Key, PairKey, Step};
use heck::ToShoutySnakeCase;
use serde::Serialize;

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
/// `MAX_COLLECTION_NAME` characters, its first characters and 16 hex digits of its SHA-256.
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
    let own = Patterns {
        instance: pk_key.clone(),
        uniques: unique_keys.iter().map(|(_, pattern, _)| pattern.clone()).collect(),
        memberships: memberships.clone(),
        pairs: pair_keys(schema, model),
        joined: footprint
            .joined
            .iter()
            .map(|j| format!("{prefix}:{}:<each paired {}>", j.collection.kind, j.owner.name))
            .collect(),
        owned: footprint
            .owned
            .iter()
            .map(|c| format!("<{}>:{}:<{pk}>", c.members, c.kind))
            .collect(),
    };
    let reorders = !ordering_fields(model).is_empty();
    let insert = own.effect("insert", &[Change::Written], |_, _, pattern| pattern.to_owned());
    // Re-sorted only when an ordering field changed: without any, never.
    let update_changes: &[Change] = if reorders {
        &[Change::Written, Change::Replaced, Change::Reordered]
    } else {
        &[Change::Written, Change::Replaced]
    };
    let update = own.effect("update", update_changes, |change, kind, pattern| match (change, kind) {
        (_, Key::Memberships) => format!("{pattern}, old and new owner"),
        (Change::Replaced, Key::Uniques) => format!("{pattern} (old value)"),
        (_, Key::Joined) => format!("{pattern} (if ordering fields changed)"),
        _ => pattern.to_owned(),
    });
    let deleted = [Change::Deleted, Change::Orphaned { points_at: true }];
    let mut delete = own.effect("delete", &deleted, |_, kind, pattern| match kind {
        Key::Instance => format!("{pattern} (\"does not exist\")"),
        Key::Owned => format!("{pattern} (if any row or pair points at it)"),
        _ => pattern.to_owned(),
    });
    for dependent in &footprint.dependents {
        let (source_name, field) = (&dependent.source.name, &dependent.relation.name);
        match dependent.relation.on_delete {
            OnDelete::Cascade => {
                delete.notes.push(format!(
                    "deletes each `{source_name}` whose `{field}` is this row (cascade): its keys as `{source_name}Repo::delete` plans them, recursively"
                ));
                continue;
            }
            OnDelete::Restrict => {
                delete.notes.push(format!(
                    "refused while a `{source_name}` row's `{field}` is this row (restrict): no key changes"
                ));
                continue;
            }
            OnDelete::SetNull => {}
        }
        // A changed row: its keys as the planner says, each pattern naming the rows.
        let rows = format!("each {source_name} whose {field} is this row");
        let source_prefix = key_prefix(schema, dependent.source);
        let theirs = Patterns {
            instance: format!("<{source_name}>:pk:<{rows}>"),
            uniques: unique_lookups(dependent.source)
                .into_iter()
                .map(|lookup| {
                    let values: Vec<&str> = lookup.fields.iter().map(|f| f.name.as_str()).collect();
                    format!(
                        "{source_prefix}:uq.{}:<{} of {rows}>",
                        lookup.key_field,
                        values.join(", ")
                    )
                })
                .collect(),
            memberships: membership_keys(schema, dependent.source)
                .into_iter()
                .map(|key| format!("{key}, of {rows}"))
                .collect(),
            pairs: pair_keys(schema, dependent.source)
                .into_iter()
                .map(|key| format!("{key}, of {rows}"))
                .collect(),
            joined: self::footprint(schema, dependent.source)
                .joined
                .iter()
                .map(|j| {
                    format!(
                        "{source_prefix}:{}:<each paired {} of {rows}>",
                        j.collection.kind, j.owner.name
                    )
                })
                .collect(),
            owned: Vec::new(),
        };
        let changed = theirs.effect(
            "",
            effects::dependents(effects::OnDelete::SetNull),
            |_, kind, pattern| match kind {
                Key::Instance => format!("{pattern} (column set to NULL)"),
                Key::Memberships => format!("{pattern} (set to NULL)"),
                _ => pattern.to_owned(),
            },
        );
        delete.absorb(changed);
    }
    let mut writes = vec![insert, update, delete];
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
        let (through_rows, through_collections) = through
            .map(|(through, _, _)| {
                let parts: Vec<&str> = through.key_fields().iter().map(|f| f.name.as_str()).collect();
                let prefix = key_prefix(schema, through);
                (
                    vec![format!("{prefix}:pk:<{}>", parts.join(">,<"))],
                    membership_keys(schema, through),
                )
            })
            .unwrap_or_default();
        let other_prefix = schema
            .models
            .iter()
            .find(|m| m.name == other)
            .map(|m| key_prefix(schema, m))
            .unwrap_or_default();
        let own = format!("{other_prefix}:rel.{}:<{pk}>", collection_name(&model.name, &name));
        let theirs = format!(
            "{prefix}:rel.{}:<each {other} paired or unpaired>",
            collection_name(&other, &theirs)
        );
        for op in ["add", "remove", "clear", "set"] {
            let mut effect = WriteEffect {
                op: format!("{op}_{name}"),
                fills: Vec::new(),
                refills: Vec::new(),
                releases: Vec::new(),
                notes: Vec::new(),
            };
            for &(key, after) in effects::pairing() {
                let patterns = match key {
                    PairKey::Own => std::slice::from_ref(&own),
                    PairKey::Theirs => std::slice::from_ref(&theirs),
                    PairKey::ThroughRows => through_rows.as_slice(),
                    PairKey::ThroughCollections => through_collections.as_slice(),
                };
                effect.list(after).extend(patterns.iter().cloned());
            }
            writes.push(effect);
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

/// A model's key patterns by the planner's kinds of key (see [`autocache_effects::Key`]).
struct Patterns {
    instance: String,
    uniques: Vec<String>,
    memberships: Vec<String>,
    pairs: Vec<String>,
    joined: Vec<String>,
    owned: Vec<String>,
}

impl Patterns {
    /// The patterns of one kind.
    fn of(&self, kind: Key) -> &[String] {
        match kind {
            Key::Instance => std::slice::from_ref(&self.instance),
            Key::Uniques => &self.uniques,
            Key::Memberships => &self.memberships,
            Key::Pairs => &self.pairs,
            Key::Joined => &self.joined,
            Key::Owned => &self.owned,
        }
    }

    /// What write `op` does to these patterns: the planner's steps for `changes`, each
    /// pattern worded by `word(change, kind, pattern)`, listed once. (What depends on the
    /// row beyond its collections, `Step::Dependents`, is the caller's to describe.)
    fn effect(&self, op: &str, changes: &[Change], word: impl Fn(Change, Key, &str) -> String) -> WriteEffect {
        let mut effect = WriteEffect {
            op: op.to_owned(),
            fills: Vec::new(),
            refills: Vec::new(),
            releases: Vec::new(),
            notes: Vec::new(),
        };
        for &change in changes {
            for step in effects::plan(change) {
                let &Step::Key(kind, after) = step else { continue };
                let list = effect.list(after);
                for pattern in self.of(kind) {
                    let worded = word(change, kind, pattern);
                    if !list.contains(&worded) {
                        list.push(worded);
                    }
                }
            }
        }
        effect
    }
}

impl WriteEffect {
    /// The list of keys that become what `after` says.
    fn list(&mut self, after: After) -> &mut Vec<String> {
        match after {
            After::WriteThrough | After::DoesNotExist => &mut self.fills,
            After::Refill => &mut self.refills,
            After::Empty => &mut self.releases,
        }
    }

    /// Adds `other`'s keys and notes to this write's.
    fn absorb(&mut self, other: WriteEffect) {
        self.fills.extend(other.fills);
        self.refills.extend(other.refills);
        self.releases.extend(other.releases);
        self.notes.extend(other.notes);
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
