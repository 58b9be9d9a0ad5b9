//! The validated intermediate representation: names resolved, reverse relations derived.
//! Everything after validation (planning keys, rendering, `explain`, `ddl`) reads only this.

use serde::Serialize;

/// A whole schema, validated.
#[derive(Clone, Debug, Serialize)]
pub struct Schema {
    /// Key prefix shared by every model (`namespace:` in the YAML; default `app`).
    pub namespace: String,
    /// SQL dialect the code is generated for (`database:`; default `sqlite`).
    pub dialect: Dialect,
    /// How long a rolling deploy may take, in seconds (`rollout:`; default 900): while a
    /// process is younger, its writes also evict the keys of its models' retired digests.
    pub rollout_secs: u64,
    /// Models in the order the file declares them.
    pub models: Vec<Model>,
}

/// A SQL dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Dialect {
    /// SQLite (the embedded default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL / MariaDB.
    Mysql,
}

impl Dialect {
    /// The name the schema's `database:` gives it (`sqlite`, `postgres`, `mysql`).
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
        }
    }
}

/// One model (a table, a struct, a repository).
#[derive(Clone, Debug, Serialize)]
pub struct Model {
    /// Name as written in the schema, UpperCamelCase (`Person`).
    pub name: String,
    /// Table name (`table:`; default: the name in snake_case).
    pub table: String,
    /// Named cache backend (`backend:`; default `default`).
    pub backend: String,
    /// Time to live of cached values, in seconds (`ttl:`; default 3600).
    pub ttl_secs: u64,
    /// Entries of the near cache each process keeps (`near: { entries: N }`; 0: none).
    pub near_entries: u64,
    /// Eight hex digits of SHA-256 over everything that shapes the cached bytes; part of
    /// every key, so a schema change never reads old bytes.
    pub digest: String,
    /// Digests of the model's earlier versions whose processes may still run during a
    /// rolling deploy (from the schema's lock file, see [`crate::lock`]; empty without one).
    pub retired: Vec<String>,
    /// The primary key: a column of its own, or several fields together.
    pub primary_key: PrimaryKey,
    /// Every other column, in declaration order (foreign keys included, as `<name>_id`).
    pub fields: Vec<Field>,
    /// Unique indexes over more than one field (single-field ones are `Field::unique`).
    pub unique_together: Vec<Vec<String>>,
    /// Non-unique indexes, each with a cached `find_by_…` lookup: the fields with
    /// `index: true` (one each), then the groups of `indexes:`.
    pub indexes: Vec<Vec<String>>,
    /// Ordering of collections of this model: (field name, descending), then the primary key.
    pub ordering: Vec<(String, bool)>,
    /// Many-to-many relations declared on this model.
    pub many_to_many: Vec<ManyToMany>,
    /// Relations other models declare that point at this model (derived).
    pub reverse: Vec<Reverse>,
}

impl Model {
    /// The field named `name` in the schema: by its field name, or by the name a relation
    /// was declared with (`author` for `author_id`), as `ordering` and `unique_together` name
    /// fields.
    pub fn field_named(&self, name: &str) -> Option<&Field> {
        self.fields
            .iter()
            .find(|f| f.name == name || f.relation.as_ref().is_some_and(|r| r.name == name))
    }

    /// The primary key or field whose field name is `name`, as index groups name them.
    pub fn key_or_field(&self, name: &str) -> Option<&Field> {
        self.key_column()
            .into_iter()
            .chain(&self.fields)
            .find(|f| f.name == name)
    }

    /// The primary key's own column; `None` for a composite key (its parts are fields).
    pub fn key_column(&self) -> Option<&Field> {
        match &self.primary_key {
            PrimaryKey::Column(field) => Some(field),
            PrimaryKey::Composite(_) => None,
        }
    }

    /// The fields holding the primary key, in key order: its column, or the parts of a
    /// composite key.
    pub fn key_fields(&self) -> Vec<&Field> {
        match &self.primary_key {
            PrimaryKey::Column(field) => vec![field],
            PrimaryKey::Composite(parts) => parts
                .iter()
                .filter_map(|part| self.fields.iter().find(|f| f.name == *part))
                .collect(),
        }
    }

    /// Whether `field` is (a part of) the primary key.
    pub fn is_key(&self, field: &Field) -> bool {
        match &self.primary_key {
            PrimaryKey::Column(key) => std::ptr::eq(key, field),
            PrimaryKey::Composite(parts) => parts.contains(&field.name),
        }
    }

    /// The primary key column of a model that relations point at: validation refuses
    /// foreign keys, one-to-ones and many-to-many relations to a model with a composite key.
    pub fn target_key(&self) -> &Field {
        self.key_column()
            .expect("validated: relations point only at models with a single-column key")
    }
}

/// A model's primary key.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrimaryKey {
    /// One column of its own (`primary_key: { name: id, type: auto }`, the default).
    Column(Field),
    /// Several of the model's fields together (`primary_key: [student, course]`), by their
    /// field names (`student_id` for a foreign key), in key order; the generated
    /// `<Model>Key` struct holds their values.
    Composite(Vec<String>),
}

/// One column.
#[derive(Clone, Debug, Serialize)]
pub struct Field {
    /// Rust field name, snake_case (`author_id` for a foreign key named `author`).
    pub name: String,
    /// Column name (`column:`; default: `name`).
    pub column: String,
    /// Value type.
    pub ty: FieldType,
    /// Whether NULL is allowed (`null: true`; default false).
    pub nullable: bool,
    /// Default value for inserts, as a YAML scalar rendered to a SQL literal.
    pub default: Option<DefaultValue>,
    /// Whether the column is unique on its own (`unique: true`); gives `get_by_<name>`.
    pub unique: bool,
    /// For the primary key: generated by the database (auto-increment).
    pub auto: bool,
    /// Whether the value may not be negative (`unsigned: true`): a `CHECK (<column> >= 0)`.
    pub unsigned: bool,
    /// Set when the database writes the value itself (`auto_now_add`, `auto_now`).
    pub set_by_database: Option<SetBy>,
    /// Set when this column is a foreign key or one-to-one.
    pub relation: Option<Relation>,
}

/// When the database sets a `datetime` column to the current time by itself; the program
/// never sends a value for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SetBy {
    /// On insert only (`auto_now_add: true`): when the row was created.
    Insert,
    /// On insert and every update, bulk updates included (`auto_now: true`): when the row
    /// last changed.
    EveryWrite,
}

/// A default value for a column.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum DefaultValue {
    /// Integer literal.
    Int(i64),
    /// Float literal.
    Float(f64),
    /// Boolean literal.
    Bool(bool),
    /// String literal.
    Str(String),
    /// Decimal number, as written (`9.99`); a SQL numeric literal.
    Decimal(String),
    /// The current time (`default: now`, and `auto_now_add` / `auto_now`), as the database
    /// reads its clock.
    Now,
}

/// The value types of columns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// `small_integer`: i16.
    SmallInt,
    /// `integer`: i32.
    Int,
    /// `positive_integer`: i32 with a CHECK (>= 0).
    PositiveInt,
    /// `big_integer` (and `auto` primary keys): i64.
    BigInt,
    /// `boolean`.
    Bool,
    /// `float`: f64.
    Float,
    /// `string` with `max_length`.
    String {
        /// Longest allowed value, in characters.
        max_length: u32,
    },
    /// `text`: unbounded string.
    Text,
    /// `bytes`: `Vec<u8>`.
    Bytes,
    /// `uuid`.
    Uuid,
    /// `date`: chrono::NaiveDate.
    Date,
    /// `time`: chrono::NaiveTime.
    Time,
    /// `datetime`: `chrono::DateTime<Utc>`.
    DateTime,
    /// `json`: serde_json::Value.
    Json,
    /// `decimal` with `precision` and `scale`: rust_decimal's `Decimal`, exact.
    Decimal {
        /// Total digits (1 to 28, what `Decimal` holds exactly).
        precision: u32,
        /// Digits after the decimal point (0 to `precision`).
        scale: u32,
    },
    /// `enum` with listed `values`: a generated Rust enum, stored as its value's text.
    Enum(EnumType),
    /// `char` with `max_length`: fixed-length text; trailing spaces are not significant.
    Char {
        /// Length in characters.
        length: u32,
    },
}

impl FieldType {
    /// Whether values of this type order the same way on every dialect, so that range
    /// filters apply (MySQL orders an `ENUM` by declaration, the others by text; booleans,
    /// bytes, uuids and JSON have no useful order).
    pub fn orderable(&self) -> bool {
        !matches!(
            self,
            FieldType::Bool | FieldType::Bytes | FieldType::Uuid | FieldType::Json | FieldType::Enum(_)
        )
    }
}

/// The generated Rust enum of an `enum` field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EnumType {
    /// The Rust type name: `<Model><Field>` in UpperCamelCase (`FilmRating`).
    pub name: String,
    /// The values as stored, in declaration order, with their Rust variant names.
    pub values: Vec<EnumValue>,
}

/// One value of an `enum` field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EnumValue {
    /// The value as stored (`PG-13`).
    pub value: String,
    /// Its Rust variant name (`Pg13`).
    pub variant: String,
}

/// A foreign key or one-to-one held by a column.
#[derive(Clone, Debug, Serialize)]
pub struct Relation {
    /// `foreign_key` or `one_to_one`.
    pub kind: RelationKind,
    /// The name the field was declared with (`author`).
    pub name: String,
    /// Target model name (`Person`).
    pub target: String,
    /// Accessor on the target (`books`; default: source model in snake_case, plural for
    /// foreign keys: `<model>_set`).
    pub related_name: String,
    /// What deleting the target does to this row.
    pub on_delete: OnDelete,
}

/// Kinds of column relations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    /// Many rows point at one target; the target gets a collection.
    ForeignKey,
    /// At most one row points at each target (unique column); the target gets an accessor.
    OneToOne,
}

/// `on_delete:` of a relation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDelete {
    /// Delete the referencing rows too (default).
    Cascade,
    /// Set the referencing column to NULL (requires `null: true`).
    SetNull,
    /// Refuse to delete a referenced row.
    Restrict,
}

/// A many-to-many relation through a join table.
#[derive(Clone, Debug, Serialize)]
pub struct ManyToMany {
    /// Accessor on the declaring model (`editors`).
    pub name: String,
    /// Target model (`Person`).
    pub target: String,
    /// Accessor on the target (`edited`; default `<model>_set`).
    pub related_name: String,
    /// Join table (`through:`; default `<table>_<name>`), or the through model's table.
    pub through: String,
    /// The through model (`through:` naming a model): its rows are the pairs, its two
    /// foreign keys (its composite primary key) the join columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub through_model: Option<String>,
    /// Join-table column pointing at the declaring model (`<model>_id`).
    pub source_column: String,
    /// Join-table column pointing at the target (`<target>_id`).
    pub target_column: String,
}

/// A relation seen from its target (derived during validation).
#[derive(Clone, Debug, Serialize)]
pub struct Reverse {
    /// Accessor name on this model (`books`, `volume`, `edited`).
    pub name: String,
    /// The model that declares the relation (`Book`).
    pub source: String,
    /// The declaring field or many-to-many name (`author`, `editors`).
    pub field: String,
    /// What kind of relation it is.
    pub kind: ReverseKind,
}

/// Kinds of reverse relations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReverseKind {
    /// A collection of rows of the source model (reverse foreign key).
    Collection,
    /// At most one row of the source model (reverse one-to-one).
    One,
    /// A collection through a join table (reverse many-to-many).
    ManyToMany,
}
