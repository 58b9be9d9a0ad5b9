//! One model: its settings, table, primary key and fields as first read ([`ModelInfo`]),
//! then its IR built field by field once every model is known (relations need their
//! target's primary key).

use heck::ToSnakeCase;

use super::context::{Column, FieldInfo, Kind, Member, ModelBuild, ModelInfo, ModelParts, Validator};
use super::keys::{DEFAULT_PRIMARY_KEY, pk_field};
use crate::ir::{Field, FieldType, Model, PrimaryKey};
use crate::parse::{ModelDef, PrimaryKeySpec, join};

impl<'a> Validator<'a> {
    /// Reads one model: its name, settings, table, primary key and fields.
    pub(super) fn model_info(&mut self, name: &'a str, def: &'a ModelDef) -> ModelInfo<'a> {
        let path = join("models", name);
        let name_pos = self.p.key_or_up(&path);
        let name_ok = self.check_model_name(name, name_pos);
        let snake = name.to_snake_case();

        let table = match &def.table {
            Some(table) => {
                let pos = self.p.value_or_up(&join(&path, "table"));
                self.check_sql_name(table, pos, "table");
                table.clone()
            }
            None => {
                if name_ok {
                    self.check_derived_length(
                        &snake,
                        name_pos,
                        &format!("table name `{snake}` derived from model `{name}`"),
                        "set `table:` to a shorter name",
                    );
                }
                snake.clone()
            }
        };
        let table_pos = self.p.value(&join(&path, "table")).unwrap_or(name_pos);
        self.register_table(&table, table_pos, format!("model `{name}`"));

        let backend = self.backend(&path, def);
        let ttl = self.ttl(&path, def);
        let near = self.near_entries(&path, def);
        let (pk, pk_pos, pk_implicit) = self.primary_key(name, &path, def);
        let composite = match &def.primary_key {
            Some(PrimaryKeySpec::Composite(parts)) => Some(parts.as_slice()),
            _ => None,
        };
        let fields = self.field_infos(name, &path, def);
        ModelInfo {
            name,
            path,
            def,
            snake,
            table,
            backend,
            ttl,
            near,
            pk,
            composite,
            pk_pos,
            pk_implicit,
            fields,
        }
    }

    /// Reads the `fields:` of model `name` (at `path`); reports a model without any.
    fn field_infos(&mut self, name: &str, path: &str, def: &'a ModelDef) -> Vec<FieldInfo<'a>> {
        let name_pos = self.p.key_or_up(path);
        let mut fields = Vec::new();
        let fields_path = join(path, "fields");
        match &def.fields {
            None => {
                self.err(
                    "schema::missing_fields",
                    name_pos,
                    format!("model `{name}` has no `fields`"),
                    "no `fields:`",
                )
                .set_help(
                    "add `fields:` with at least one field, e.g. `fields: { name: { type: string, max_length: 64 } }`",
                );
            }
            Some(defs) => {
                self.duplicate_keys(&fields_path, "schema::duplicate_field", |k| {
                    format!("duplicate field `{k}` in model `{name}`")
                });
                for (field_name, field_def) in defs {
                    fields.push(self.field_info(name, field_name, &join(&fields_path, field_name), field_def));
                }
            }
        }
        fields
    }

    /// Builds one model's IR (without reverse relations, ordering and digest), its member
    /// names, its orderable columns and the reverse relations it gives its targets.
    pub(super) fn model(&mut self, info: &ModelInfo<'_>, infos: &[ModelInfo<'_>], known: &[&str]) -> ModelParts {
        let mut build = ModelBuild::new(infos, known);
        let pk = info
            .pk
            .clone()
            .unwrap_or_else(|| pk_field(DEFAULT_PRIMARY_KEY, FieldType::BigInt, true));
        // A composite key has no column of its own: its parts are fields.
        if info.composite.is_none() {
            build.members.insert(
                pk.name.clone(),
                Member {
                    pos: info.pk_pos,
                    what: format!("the primary key `{}`", pk.name),
                    reverse: false,
                },
            );
            build.sql_columns.insert(
                pk.column.to_lowercase(),
                (info.pk_pos, format!("the primary key `{}`", pk.name)),
            );
            build.columns.insert(
                pk.name.clone(),
                Column {
                    ir_name: pk.name.clone(),
                    ty: Some(pk.ty.clone()),
                    many_to_many: false,
                },
            );
        }
        for field in &info.fields {
            match &field.kind {
                Kind::Invalid => {
                    let key_pos = self.p.key_or_up(&field.path);
                    self.add_member(&mut build, info, key_pos, field.name, format!("field `{}`", field.name));
                }
                Kind::Column(ty) => self.column_field(info, field, ty, &mut build),
                Kind::Relation(kind) => self.relation_field(info, field, *kind, &mut build),
                Kind::ManyToMany => self.many_to_many_field(info, field, &mut build),
            }
        }
        let primary_key = match info.composite {
            Some(parts) => PrimaryKey::Composite(self.composite_key(info, parts, &build.columns, &build.fields)),
            None => PrimaryKey::Column(pk),
        };
        let model = Model {
            name: info.name.to_string(),
            table: info.table.clone(),
            backend: info.backend.clone(),
            ttl_secs: info.ttl,
            near_entries: info.near,
            digest: String::new(),
            retired: Vec::new(),
            primary_key,
            fields: build.fields,
            unique_together: Vec::new(),
            indexes: Vec::new(),
            ordering: Vec::new(),
            many_to_many: build.many_to_many,
            reverse: Vec::new(),
        };
        (model, build.members, build.columns, build.reverses)
    }

    /// Reads a plain column of `info`: its member name, column and IR field.
    fn column_field(
        &mut self,
        info: &ModelInfo<'_>,
        field: &FieldInfo<'_>,
        ty: &FieldType,
        build: &mut ModelBuild<'_>,
    ) {
        let key_pos = self.p.key_or_up(&field.path);
        let fresh = self.add_member(build, info, key_pos, field.name, format!("field `{}`", field.name));
        build.columns.insert(
            field.name.to_string(),
            Column {
                ir_name: field.name.to_string(),
                ty: Some(ty.clone()),
                many_to_many: false,
            },
        );
        let column = self.column_name(field, field.name.to_string(), &mut build.sql_columns, fresh);
        build.fields.push(Field {
            name: field.name.to_string(),
            column,
            ty: ty.clone(),
            nullable: field.def.null.unwrap_or(false),
            default: field.default.clone(),
            unique: field.def.unique.unwrap_or(false),
            auto: false,
            unsigned: field.def.unsigned.unwrap_or(false),
            set_by_database: field.set_by_database,
            relation: None,
        });
    }
}
