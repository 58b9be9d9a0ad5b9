//! Generates repositories into OUT_DIR exactly as a user's build script would: the sample
//! schema for the quickstart, and the generator's fixture schemas, which the suite compiles
//! (and runs, where they target SQLite) so every field type is proven end to end. The sample
//! schema is also generated for PostgreSQL (`OUT_DIR/sample_postgres.rs`) and MySQL/MariaDB
//! (`OUT_DIR/sample_mysql.rs`), whose scenarios the suite runs against real servers. The
//! differential checker's schemas are generated for each dialect into
//! `OUT_DIR/differential/<db>/`, each with its checker adapter (`<schema>_adapter.rs`). The
//! sample schema's next version (a field added) is generated into `OUT_DIR/rolling/` with
//! its lock file and into `OUT_DIR/rolling_naive/` without, for the rolling-deploy scenario.

use std::path::{Path, PathBuf};

use autocache_codegen::Config;
use autocache_codegen::ir::Dialect;

#[path = "tests/differential_adapter.rs"]
mod differential_adapter;

/// The sample schema's next version, for the rolling-deploy scenario (R12).
const ROLLING: &str = "tests/processes/rolling/sample_v2.yaml";

/// The schemas the differential checker runs on.
const DIFFERENTIAL: [&str; 4] = [
    "schema.yaml",
    "codegen/tests/fixtures/sakila.yaml",
    "codegen/tests/fixtures/breakers.yaml",
    "codegen/tests/fixtures/shop.yaml",
];

fn main() {
    let schemas = [
        "schema.yaml",
        "codegen/tests/fixtures/string_pk.yaml",
        "codegen/tests/fixtures/nullable_fk.yaml",
        "codegen/tests/fixtures/all_types.yaml",
    ];
    if let Err(error) = Config::new().compile_all(&schemas) {
        panic!("autocache-codegen failed:\n{error}");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    // Beside `sample.rs`: `sample_postgres.rs` and `sample_mysql.rs`.
    for dialect in [Dialect::Postgres, Dialect::Mysql] {
        if let Err(error) = Config::new().dialect(dialect).compile("schema.yaml") {
            panic!("autocache-codegen failed for {}:\n{error}", dialect.name());
        }
    }
    // R12: the next version with its lock file (the digests of schema.yaml retired), and the
    // naive control without it (only the current digest).
    for (dir, lock) in [("rolling", true), ("rolling_naive", false)] {
        let mut config = Config::new();
        config.out_dir(out.join(dir));
        if !lock {
            config.lock_file(None::<PathBuf>);
        }
        if let Err(error) = config.compile(ROLLING) {
            panic!("autocache-codegen failed for {dir}:\n{error}");
        }
    }
    println!("cargo:rerun-if-changed=tests/differential_adapter.rs");
    for (dialect, dir) in [
        (Dialect::Sqlite, "sqlite"),
        (Dialect::Postgres, "postgres"),
        (Dialect::Mysql, "mysql"),
    ] {
        let dir = Path::new("differential").join(dir);
        let mut config = Config::new();
        config.dialect(dialect).out_dir(out.join(&dir));
        if let Err(error) = config.compile_all(&DIFFERENTIAL) {
            panic!("autocache-codegen failed for {}:\n{error}", dir.display());
        }
        for path in DIFFERENTIAL {
            let (schema, name) = config.load_named(Path::new(path)).expect("generated above");
            let repositories = dir.join(name);
            let adapter = differential_adapter::adapter(&schema, &repositories.display().to_string());
            let file = out.join(&dir).join(format!("{}_adapter.rs", schema.namespace));
            if std::fs::read_to_string(&file).ok().as_deref() != Some(adapter.as_str()) {
                std::fs::write(&file, adapter).expect("write the checker adapter");
            }
        }
    }
}
