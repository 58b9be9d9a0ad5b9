//! Parsing a schema file: the YAML syntax tree as serde structs (deserialized with
//! `serde_yaml`, unknown keys rejected), plus a [`Positions`] index built in a second pass with
//! `saphyr-parser`'s span-keeping event parser, so that semantic errors can point at the
//! exact key or value they are about.
//!
//! Paths in the index join mapping keys and sequence indexes with dots:
//! `models.Book.fields.author.to`, `models.Book.ordering.0`; the root is the empty path.

use std::collections::HashMap;

use indexmap::IndexMap;
use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Span};
use serde::Deserialize;

use crate::diagnostic::{Diagnostics, SchemaErrors, did_you_mean, line_col, offset_of};

/// Schema files larger than this are rejected before parsing.
pub const MAX_SOURCE_BYTES: usize = 4 * 1024 * 1024;

/// Collections nested deeper than this are rejected (a schema needs about six levels).
pub const MAX_DEPTH: usize = 32;

/// Keys of the top-level mapping.
pub const TOP_LEVEL_KEYS: &[&str] = &["namespace", "database", "rollout", "models"];
/// Keys of a model.
pub const MODEL_KEYS: &[&str] = &[
    "table",
    "backend",
    "ttl",
    "primary_key",
    "fields",
    "ordering",
    "unique_together",
    "near",
    "indexes",
];
/// Keys of a model's `near`.
pub const NEAR_KEYS: &[&str] = &["entries"];
/// Keys of a model's `primary_key`.
pub const PRIMARY_KEY_KEYS: &[&str] = &["name", "type", "max_length"];
/// Keys of a field (which ones apply depends on its `type`).
pub const FIELD_KEYS: &[&str] = &[
    "type",
    "max_length",
    "null",
    "default",
    "unique",
    "column",
    "to",
    "related_name",
    "on_delete",
    "through",
    "precision",
    "scale",
    "values",
    "unsigned",
    "auto_now_add",
    "auto_now",
    "index",
];

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaFile {
    /// Key prefix (default `app`).
    pub namespace: Option<String>,
    /// `sqlite`, `postgres` or `mysql` (default `sqlite`).
    pub database: Option<String>,
    /// How long a rolling deploy may take: seconds, or a number with `s`, `m`, `h` or `d`
    /// (default 15 minutes).
    pub rollout: Option<serde_yaml::Value>,
    /// Models by name, in file order (required, non-empty).
    pub models: Option<IndexMap<String, ModelDef>>,
}

/// One model.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelDef {
    /// Table name (default: the model name in snake_case).
    pub table: Option<String>,
    /// Named cache backend (default `default`).
    pub backend: Option<String>,
    /// Time to live in seconds (default 3600).
    pub ttl: Option<i64>,
    /// Primary key (default `{name: id, type: auto}`).
    pub primary_key: Option<PrimaryKeySpec>,
    /// Fields by name, in file order (required).
    pub fields: Option<IndexMap<String, FieldDef>>,
    /// Field names, `-name` for descending.
    pub ordering: Option<Vec<String>>,
    /// Groups of field names that are unique together.
    pub unique_together: Option<Vec<Vec<String>>>,
    /// Groups of field names with a (non-unique) index and a cached `find_by_…` lookup.
    pub indexes: Option<Vec<Vec<String>>>,
    /// A near cache in each process (default: none).
    pub near: Option<NearDef>,
}

/// `near:` of a model.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NearDef {
    /// How many of the model's values each process keeps (required).
    pub entries: Option<i64>,
}

/// `primary_key:` of a model: a column of its own, or a list of the model's fields.
#[derive(Clone, Debug)]
pub enum PrimaryKeySpec {
    /// `{ name: id, type: auto }`.
    Column(PrimaryKeyDef),
    /// `[student, course]`: fields (or foreign keys) that together identify a row.
    Composite(Vec<String>),
}

impl<'de> Deserialize<'de> for PrimaryKeySpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Spec;

        impl<'de> serde::de::Visitor<'de> for Spec {
            type Value = PrimaryKeySpec;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping (`{ name: id, type: auto }`) or a list of fields (`[student, course]`)")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let def = PrimaryKeyDef::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(PrimaryKeySpec::Column(def))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let parts = Vec::<String>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
                Ok(PrimaryKeySpec::Composite(parts))
            }
        }

        deserializer.deserialize_any(Spec)
    }
}

/// `primary_key: { … }` of a model.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrimaryKeyDef {
    /// Column and field name (default `id`).
    pub name: Option<String>,
    /// One of `validate::PRIMARY_KEY_TYPES` (default `auto`).
    #[serde(rename = "type")]
    pub ty: Option<String>,
    /// Required for `string`.
    pub max_length: Option<i64>,
}

/// One field.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    /// Field type (required).
    #[serde(rename = "type")]
    pub ty: Option<String>,
    /// Required for `string`.
    pub max_length: Option<i64>,
    /// Whether NULL is allowed (default false).
    pub null: Option<bool>,
    /// Default value for inserts.
    pub default: Option<serde_yaml::Value>,
    /// Whether the column is unique (default false).
    pub unique: Option<bool>,
    /// Column name (default: the field name; `<name>_id` for relations).
    pub column: Option<String>,
    /// Target model of a relation.
    pub to: Option<String>,
    /// Accessor name on the target of a relation.
    pub related_name: Option<String>,
    /// `cascade` (default), `set_null` or `restrict`.
    pub on_delete: Option<String>,
    /// Join table of a many-to-many.
    pub through: Option<String>,
    /// Total digits of a `decimal`.
    pub precision: Option<i64>,
    /// Digits after the point of a `decimal`.
    pub scale: Option<i64>,
    /// The values of an `enum`.
    pub values: Option<Vec<String>>,
    /// Whether an integer may not be negative.
    pub unsigned: Option<bool>,
    /// Whether the database sets a `datetime` to the current time on insert.
    pub auto_now_add: Option<bool>,
    /// Whether the database sets a `datetime` to the current time on insert and update.
    pub auto_now: Option<bool>,
    /// Whether the column has a (non-unique) index and a cached `find_by_<field>` lookup.
    pub index: Option<bool>,
}

/// A place in the source: 1-based line and column (in characters), byte offset and length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    /// 1-based line (0 = unknown: computed from `offset`).
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Byte offset in the source.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
}

impl Pos {
    /// The position of byte `offset` (with `len` bytes) in `source`.
    pub fn at(source: &str, offset: usize, len: usize) -> Pos {
        let (line, column) = line_col(source, offset);
        Pos {
            line,
            column,
            offset,
            len,
        }
    }
}

/// What kind of YAML node sits at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A scalar (string, number, boolean, null).
    Scalar,
    /// A sequence.
    Sequence,
    /// A mapping.
    Mapping,
    /// An alias (`*name`); its content is not indexed.
    Alias,
}

/// What the index knows about one path.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Where the key is (`None` for the root and sequence items).
    pub key: Option<Pos>,
    /// Where the value is.
    pub value: Pos,
    /// What the value is.
    pub kind: NodeKind,
    /// For mappings: every key in file order, duplicates included.
    pub keys: Vec<(String, Pos)>,
}

/// The position index: YAML path → where its key and value are.
#[derive(Clone, Debug, Default)]
pub struct Positions {
    entries: HashMap<String, Entry>,
    /// Whether the document is a plain null scalar (`~`, `null`, or nothing at all).
    root_null: bool,
}

impl Positions {
    /// The entry at `path`.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Where the key of `path` is.
    pub fn key(&self, path: &str) -> Option<Pos> {
        self.entries.get(path).and_then(|e| e.key)
    }

    /// Where the value of `path` is.
    pub fn value(&self, path: &str) -> Option<Pos> {
        self.entries.get(path).map(|e| e.value)
    }

    /// Whether the file has a key at `path`.
    pub fn has(&self, path: &str) -> bool {
        self.entries.contains_key(path)
    }

    /// The keys of the mapping at `path`, in file order, duplicates included.
    pub fn keys(&self, path: &str) -> &[(String, Pos)] {
        self.entries.get(path).map_or(&[], |e| e.keys.as_slice())
    }

    /// The root node.
    pub fn root(&self) -> Pos {
        self.value("").unwrap_or_default()
    }

    /// The key of `path` (or its value, for sequence items), else of the nearest ancestor.
    pub fn key_or_up(&self, path: &str) -> Pos {
        self.nearest(path, |e| e.key.unwrap_or(e.value))
    }

    /// The value of `path`, else the key or value of the nearest ancestor.
    pub fn value_or_up(&self, path: &str) -> Pos {
        match self.entries.get(path) {
            Some(e) => e.value,
            None => self.key_or_up(parent(path)),
        }
    }

    fn nearest(&self, mut path: &str, pick: impl Fn(&Entry) -> Pos) -> Pos {
        loop {
            if let Some(e) = self.entries.get(path) {
                return pick(e);
            }
            if path.is_empty() {
                return Pos::default();
            }
            path = parent(path);
        }
    }

    /// A key or value that starts exactly at byte `offset`, if any (used to give serde's
    /// point locations a length).
    pub fn token_at(&self, offset: usize) -> Option<Pos> {
        self.entries
            .values()
            .flat_map(|e| [e.key, Some(e.value)])
            .flatten()
            .filter(|p| p.offset == offset && p.len > 0)
            .min_by_key(|p| p.len)
    }
}

fn parent(path: &str) -> &str {
    path.rfind('.').map_or("", |i| &path[..i])
}

/// Joins a path prefix and a key.
pub fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// A parsed schema: the serde tree and where everything is.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The file as serde structs.
    pub file: SchemaFile,
    /// Where every key and value is.
    pub positions: Positions,
}

/// Parses `source` (read from `file_name`) into the syntax tree and its position index.
pub fn parse_str(source: &str, file_name: &str) -> Result<Parsed, SchemaErrors> {
    let mut diags = Diagnostics::new(file_name, source);
    match parse(source, &mut diags) {
        Some(parsed) => diags.finish(parsed),
        None => Err(diags.into_errors()),
    }
}

/// The error for a schema file whose bytes are not UTF-8, located at the first invalid byte
/// (the report shows the file with U+FFFD in place of the invalid bytes).
pub fn invalid_utf8(bytes: &[u8], error: &std::str::Utf8Error, file_name: &str) -> SchemaErrors {
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        // Shown as UTF-8 it would be a line of NULs: show no source.
        let mut diags = Diagnostics::new(file_name, "");
        diags
            .error(
                "schema::invalid_utf8",
                Pos::at("", 0, 0),
                "the schema file is UTF-16 (it starts with a UTF-16 byte order mark), not UTF-8",
                "UTF-16",
            )
            .set_help("save the file as UTF-8 text");
        return diags.into_errors();
    }
    // The valid prefix is unchanged by the lossy conversion, so offsets into it agree.
    let shown = String::from_utf8_lossy(bytes);
    let offset = error.valid_up_to();
    let mut diags = Diagnostics::new(file_name, &shown);
    let byte = bytes.get(offset).copied().unwrap_or_default();
    diags
        .error(
            "schema::invalid_utf8",
            Pos::at(&shown, offset, char::REPLACEMENT_CHARACTER.len_utf8()),
            format!("the schema file is not valid UTF-8: byte 0x{byte:02x} at offset {offset}"),
            "not UTF-8",
        )
        .set_help("save the file as UTF-8 text");
    diags.into_errors()
}

/// Parses `source` into the syntax tree and its position index, recording errors in `diags`.
///
/// Returns `None` when the file cannot be read as a schema at all (syntax errors, unknown
/// keys, wrong value types, empty file): those are all recorded.
pub fn parse(source: &str, diags: &mut Diagnostics) -> Option<Parsed> {
    if source.len() > MAX_SOURCE_BYTES {
        diags
            .error(
                "schema::too_large",
                Pos::at(source, 0, 0),
                format!(
                    "schema file is too large ({} bytes; the limit is {} bytes)",
                    source.len(),
                    MAX_SOURCE_BYTES
                ),
                "file starts here",
            )
            .set_help("a schema describes models and fields; split generated or data content out of it");
        return None;
    }
    let positions = index(source, diags)?;
    let root = positions.get("").cloned();
    let Some(root) = root.filter(|r| !(r.kind == NodeKind::Scalar && positions.root_null)) else {
        diags
            .error(
                "schema::empty",
                Pos::at(source, 0, 0),
                "schema file is empty: expected a mapping with a `models` key",
                "nothing here",
            )
            .set_help("start with:\nmodels:\n  Person:\n    fields:\n      name: { type: string, max_length: 64 }");
        return None;
    };
    if root.kind != NodeKind::Mapping {
        let found = match root.kind {
            NodeKind::Sequence => "a sequence",
            NodeKind::Alias => "an alias",
            _ => "a scalar",
        };
        diags
            .error(
                "schema::not_a_mapping",
                root.value,
                format!("the schema must be a mapping (with `namespace`, `database` and `models`), found {found}"),
                "expected a mapping",
            )
            .set_help("valid top-level keys: namespace, database, models");
        return None;
    }
    if !check_keys(&positions, diags) {
        return None;
    }
    match serde_yaml::from_str::<SchemaFile>(source) {
        Ok(file) => Some(Parsed { file, positions }),
        Err(e) => {
            serde_error(source, &positions, &e, diags);
            None
        }
    }
}

/// Converts a serde_yaml error (syntax or type) into a diagnostic at its location.
fn serde_error(source: &str, positions: &Positions, e: &serde_yaml::Error, diags: &mut Diagnostics) {
    let mut message = e.to_string();
    let pos = match e.location() {
        Some(loc) => {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
            let offset = offset_of(source, loc.line(), loc.column());
            positions
                .token_at(offset)
                .unwrap_or_else(|| Pos::at(source, offset, token_len(&source[offset..])))
        }
        None => positions.root(),
    };
    let message = friendly_serde_message(&message);
    diags
        .error("schema::invalid_value", pos, message, "invalid value")
        .set_help("see docs/schema.md for the format");
}

fn too_deep(diags: &mut Diagnostics, pos: Pos) {
    diags
        .error(
            "schema::too_deep",
            pos,
            format!("the schema is nested too deeply (more than {MAX_DEPTH} levels)"),
            "too deep",
        )
        .set_help("a schema needs about six levels: models → model → fields → field → key");
}

/// Help for a YAML syntax error, by the kind of error saphyr reports.
fn syntax_help(info: &str) -> &'static str {
    if info.contains("tab") {
        "indent with spaces: YAML does not allow tabs in indentation"
    } else if info.contains("quoted scalar") {
        "a quoted string is not closed, or continues on a line that is not indented enough: check its quotes"
    } else if info.contains("unknown anchor") {
        "an alias (`*name`) must refer to an anchor (`&name`) defined before it"
    } else {
        "check the indentation and the brackets, braces and quotes around this place"
    }
}

/// Length of the token starting at the beginning of `rest` (up to whitespace or YAML punctuation).
fn token_len(rest: &str) -> usize {
    rest.find(|c: char| c.is_whitespace() || matches!(c, ',' | ':' | '}' | ']' | '#'))
        .unwrap_or(rest.len())
}

fn friendly_serde_message(message: &str) -> String {
    const REPLACEMENTS: &[(&str, &str)] = &[
        ("expected i64", "expected an integer"),
        ("expected struct SchemaFile", "expected a mapping"),
        ("expected struct ModelDef", "expected a mapping (a model)"),
        (
            "expected struct FieldDef",
            "expected a mapping (a field, e.g. `{ type: integer }`)",
        ),
        (
            "expected struct PrimaryKeyDef",
            "expected a mapping (`{ name: id, type: auto }`)",
        ),
        ("expected a map", "expected a mapping"),
        ("invalid type: unit value", "invalid type: null"),
        ("invalid type: map", "invalid type: mapping"),
    ];
    // Integers beyond 64 bits: serde_yaml says "invalid type: integer `N` as u128, expected i64".
    let mut message = message.to_string();
    for wide in [" as u128", " as i128"] {
        if let Some(i) = message.find(wide) {
            message.replace_range(i..i + wide.len(), "");
            if message.ends_with(", expected i64") {
                let start = message.find("invalid type: integer").unwrap_or(message.len());
                let end = message.len() - ", expected i64".len();
                let number = message[start..end]
                    .trim_start_matches("invalid type: integer ")
                    .to_string();
                message.replace_range(
                    start..,
                    &format!("integer {number} is out of range (expected a 64-bit integer)"),
                );
            }
        }
    }
    // One pass, so that a replacement is never replaced again ("a mapping" contains "a map").
    let mut out = String::with_capacity(message.len());
    let mut rest = message.as_str();
    'outer: while let Some(c) = rest.chars().next() {
        for (from, to) in REPLACEMENTS {
            if let Some(after) = rest.strip_prefix(from) {
                out.push_str(to);
                rest = after;
                continue 'outer;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Reports unknown and duplicate keys in every struct-like mapping (all of them, with
/// suggestions); returns false if there was any.
fn check_keys(positions: &Positions, diags: &mut Diagnostics) -> bool {
    let before = diags.count();
    let is_map = |path: &str| positions.get(path).is_some_and(|e| e.kind == NodeKind::Mapping);
    check_mapping(positions, "", "at the top level", TOP_LEVEL_KEYS, diags);
    if is_map("models") {
        for (model, _) in positions.keys("models") {
            let model_path = join("models", model);
            if !is_map(&model_path) {
                continue;
            }
            check_mapping(
                positions,
                &model_path,
                &format!("in model `{model}`"),
                MODEL_KEYS,
                diags,
            );
            let pk_path = join(&model_path, "primary_key");
            if is_map(&pk_path) {
                let context = format!("in the primary key of `{model}`");
                check_mapping(positions, &pk_path, &context, PRIMARY_KEY_KEYS, diags);
            }
            let near_path = join(&model_path, "near");
            if is_map(&near_path) {
                let context = format!("in the near cache of `{model}`");
                check_mapping(positions, &near_path, &context, NEAR_KEYS, diags);
            }
            let fields_path = join(&model_path, "fields");
            if is_map(&fields_path) {
                for (field, _) in positions.keys(&fields_path) {
                    let field_path = join(&fields_path, field);
                    if is_map(&field_path) {
                        let context = format!("in field `{model}.{field}`");
                        check_mapping(positions, &field_path, &context, FIELD_KEYS, diags);
                    }
                }
            }
        }
    }
    diags.count() == before
}

fn check_mapping(positions: &Positions, path: &str, context: &str, valid: &[&str], diags: &mut Diagnostics) {
    let mut seen: HashMap<&str, Pos> = HashMap::new();
    for (key, pos) in positions.keys(path) {
        if !valid.contains(&key.as_str()) {
            let help = if key == "<<" {
                Some("YAML merge keys (`<<`) are not supported; write the keys out".to_string())
            } else {
                did_you_mean(key, valid.iter().copied(), || None)
            };
            let help = match help {
                Some(h) => format!("{h}\nvalid keys {context}: {}", valid.join(", ")),
                None => format!("valid keys {context}: {}", valid.join(", ")),
            };
            diags
                .error(
                    "schema::unknown_key",
                    *pos,
                    format!("unknown key `{key}` {context}"),
                    "unknown key",
                )
                .set_help(help);
        }
        if let Some(first) = seen.get(key.as_str()) {
            diags
                .error(
                    "schema::duplicate_key",
                    *pos,
                    format!("duplicate key `{key}` {context}"),
                    "duplicate key",
                )
                .add_label(*first, "first given here")
                .set_help("each key may appear once; remove one of them");
        } else {
            seen.insert(key, *pos);
        }
    }
}

/// Character index → byte offset, for saphyr's character-based markers.
struct Offsets {
    /// Byte offset of every character, plus the end; empty when the source is ASCII.
    bytes: Vec<usize>,
    len: usize,
}

impl Offsets {
    fn new(source: &str) -> Offsets {
        let bytes = if source.is_ascii() {
            Vec::new()
        } else {
            source
                .char_indices()
                .map(|(i, _)| i)
                .chain(std::iter::once(source.len()))
                .collect()
        };
        Offsets {
            bytes,
            len: source.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        if self.bytes.is_empty() {
            char_index.min(self.len)
        } else {
            self.bytes.get(char_index).copied().unwrap_or(self.len)
        }
    }

    fn pos(&self, start: Marker, end: Marker) -> Pos {
        let offset = self.byte(start.index());
        let end = self.byte(end.index()).max(offset);
        Pos {
            line: start.line(),
            column: start.col() + 1,
            offset,
            len: end - offset,
        }
    }
}

/// A collection being read.
struct Frame {
    path: String,
    kind: NodeKind,
    /// A flow collection (`[...]` or `{...}`) rather than a block one.
    flow: bool,
    start: Marker,
    last_end: Marker,
    pending_key: Option<(String, Pos)>,
    next_index: usize,
    keys: Vec<(String, Pos)>,
}

struct Indexer {
    offsets: Offsets,
    stack: Vec<Frame>,
    positions: Positions,
}

impl Indexer {
    /// Path of a node that starts now (in the current top frame).
    fn child_path(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(frame) => match (&frame.kind, &frame.pending_key) {
                (NodeKind::Mapping, Some((key, _))) => join(&frame.path, key),
                (NodeKind::Mapping, None) => join(&frame.path, "?"),
                _ => join(&frame.path, &frame.next_index.to_string()),
            },
        }
    }

    /// A node has been read completely: attach it to its parent.
    fn attach(&mut self, kind: NodeKind, text: Option<&str>, start: Marker, end: Marker, keys: Vec<(String, Pos)>) {
        let value = self.offsets.pos(start, end);
        let path = self.child_path();
        let Some(frame) = self.stack.last_mut() else {
            self.positions.entries.insert(
                path,
                Entry {
                    key: None,
                    value,
                    kind,
                    keys,
                },
            );
            return;
        };
        if end.index() > frame.last_end.index() {
            frame.last_end = end;
        }
        let key = match frame.kind {
            NodeKind::Mapping => match frame.pending_key.take() {
                None => {
                    // This node is a key; complex keys (collections) get a placeholder name.
                    frame.pending_key = Some((text.unwrap_or("?").to_string(), value));
                    return;
                }
                Some((name, key_pos)) => {
                    frame.keys.push((name, key_pos));
                    Some(key_pos)
                }
            },
            _ => {
                frame.next_index += 1;
                None
            }
        };
        self.positions.entries.insert(path, Entry { key, value, kind, keys });
    }
}

/// Builds the position index; `Ok(None)`-like `None` results have their error recorded.
/// Returns an index without a root entry for a file with no document.
fn index(source: &str, diags: &mut Diagnostics) -> Option<Positions> {
    let mut ix = Indexer {
        offsets: Offsets::new(source),
        stack: Vec::new(),
        positions: Positions::default(),
    };
    let mut parser = Parser::new_from_str(source);
    let mut documents = 0;
    while let Some(next) = parser.next_event() {
        let (event, span): (Event, Span) = match next {
            Ok(event) => event,
            Err(e) => {
                let pos = ix.offsets.pos(*e.marker(), *e.marker());
                let pos = Pos {
                    len: token_len(&source[pos.offset..]).max(1),
                    ..pos
                };
                if e.info().contains("recursion limit") {
                    // saphyr's own nesting limit, reached while it looks ahead of our MAX_DEPTH.
                    too_deep(diags, pos);
                    return None;
                }
                let error = diags.error(
                    "schema::syntax",
                    pos,
                    format!("YAML syntax error: {}", e.info()),
                    "here",
                );
                error.set_help(syntax_help(e.info()));
                // The innermost `[` or `{` still open is often the real culprit.
                if let Some(frame) = ix.stack.iter().rev().find(|f| f.flow) {
                    let open = ix.offsets.pos(frame.start, frame.start);
                    let (bracket, closer) = if frame.kind == NodeKind::Mapping {
                        ('{', '}')
                    } else {
                        ('[', ']')
                    };
                    if open.offset < pos.offset {
                        error.add_label(
                            Pos { len: 1, ..open },
                            format!("this `{bracket}` is not closed by a `{closer}` before the error"),
                        );
                    }
                }
                return None;
            }
        };
        match event {
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    let pos = ix.offsets.pos(span.start, span.end);
                    diags
                        .error(
                            "schema::multiple_documents",
                            pos,
                            "a schema file holds one YAML document; found a second one",
                            "second document starts here",
                        )
                        .set_help("remove the `---` separator and merge the documents");
                    return None;
                }
            }
            Event::Scalar(text, style, ..) => {
                if ix.stack.is_empty() {
                    ix.positions.root_null =
                        style == ScalarStyle::Plain && matches!(&*text, "" | "~" | "null" | "Null" | "NULL");
                }
                ix.attach(NodeKind::Scalar, Some(&text), span.start, span.end, Vec::new());
            }
            Event::Alias(_) => ix.attach(NodeKind::Alias, Some("*"), span.start, span.end, Vec::new()),
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if ix.stack.len() >= MAX_DEPTH {
                    too_deep(diags, ix.offsets.pos(span.start, span.end));
                    return None;
                }
                let kind = if matches!(event, Event::MappingStart(..)) {
                    NodeKind::Mapping
                } else {
                    NodeKind::Sequence
                };
                let path = ix.child_path();
                let opener = source.as_bytes().get(ix.offsets.byte(span.start.index()));
                ix.stack.push(Frame {
                    path,
                    kind,
                    flow: matches!(opener, Some(b'[' | b'{')),
                    start: span.start,
                    last_end: span.end,
                    pending_key: None,
                    next_index: 0,
                    keys: Vec::new(),
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let Some(frame) = ix.stack.pop() else { continue };
                // Flow collections end at their bracket; block ones at their last child.
                let end = if span.is_empty() { frame.last_end } else { span.end };
                ix.attach(frame.kind, None, frame.start, end, frame.keys);
            }
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    Some(ix.positions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(src: &str) -> Positions {
        let mut diags = Diagnostics::new("t.yaml", src);
        let p = index(src, &mut diags).expect("indexes");
        assert!(!diags.has_errors());
        p
    }

    fn text(src: &str, pos: Pos) -> &str {
        &src[pos.offset..pos.offset + pos.len]
    }

    #[test]
    fn indexes_keys_and_values() {
        let src = "models:\n  Book:\n    fields:\n      author: { type: foreign_key, to: Persön }\n    ordering: [-rank, title]\n  Émile:\n    ttl: 5\n";
        let p = positions(src);
        let to = "models.Book.fields.author.to";
        assert_eq!(text(src, p.key(to).unwrap()), "to");
        assert_eq!(text(src, p.value(to).unwrap()), "Persön");
        assert_eq!(p.value(to).unwrap().line, 4);
        assert_eq!(p.value(to).unwrap().column, 40);
        assert_eq!(text(src, p.value("models.Book.ordering.1").unwrap()), "title");
        assert_eq!(text(src, p.value("models.Book.ordering").unwrap()), "[-rank, title]");
        assert_eq!(text(src, p.value("models.Émile.ttl").unwrap()), "5");
        assert_eq!(p.value("models.Émile.ttl").unwrap().column, 10);
        let keys: Vec<_> = p.keys("models").iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["Book", "Émile"]);
        assert_eq!(
            text(src, p.value("models.Book.fields.author").unwrap()),
            "{ type: foreign_key, to: Persön }"
        );
        // Block mappings end at their last child, not at the next key.
        assert!(text(src, p.value("models.Book").unwrap()).ends_with("[-rank, title]"));
        // Fallbacks walk up the path.
        assert_eq!(text(src, p.key_or_up("models.Book.fields.author.nope")), "author");
    }

    #[test]
    fn keeps_duplicate_keys() {
        let src = "models:\n  A: {fields: {}}\n  A: {fields: {}}\n";
        let p = positions(src);
        let keys = p.keys("models");
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].1.line, 3);
    }

    #[test]
    fn empty_and_odd_files_are_errors() {
        for src in [
            "",
            "# only a comment\n",
            "---\n",
            "~",
            "- a\n",
            "just text",
            "a: [1\n",
            "a: 1\n---\nb: 2\n",
        ] {
            let result = parse_str(src, "t.yaml");
            assert!(result.is_err(), "{src:?} should fail");
        }
    }

    #[test]
    fn too_deep_and_too_large() {
        let deep = format!("models: {}{}", "[".repeat(10_000), "]".repeat(10_000));
        let err = parse_str(&deep, "t.yaml").unwrap_err();
        // saphyr's own recursion limit may trigger first: reported the same way.
        assert_eq!(err.errors()[0].code(), "schema::too_deep");
        let deep = format!("models: {}{}", "[".repeat(40), "]".repeat(40));
        let err = parse_str(&deep, "t.yaml").unwrap_err();
        assert_eq!(err.errors()[0].code(), "schema::too_deep");
        let large = format!("models: {{}}\n# {}\n", "x".repeat(MAX_SOURCE_BYTES));
        let err = parse_str(&large, "t.yaml").unwrap_err();
        assert_eq!(err.errors()[0].code(), "schema::too_large");
    }
}
