//! Generates repositories into OUT_DIR exactly as a user's build script would: the sample
//! schema for the quickstart, and the generator's fixture schemas, which the suite compiles
//! (and runs, where they target SQLite) so every field type is proven end to end. The sample
//! schema is also generated for PostgreSQL (`OUT_DIR/postgres/`) and MySQL/MariaDB
//! (`OUT_DIR/mysql/`), whose scenarios the suite runs against real servers.

use std::path::PathBuf;

use autocache_codegen::Config;
use autocache_codegen::ir::Dialect;

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
    // With an explicit out_dir, compile does not tell cargo to rerun: say it here.
    println!("cargo:rerun-if-changed=schema.yaml");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    for (dialect, dir) in [(Dialect::Postgres, "postgres"), (Dialect::Mysql, "mysql")] {
        if let Err(error) = Config::new()
            .dialect(dialect)
            .out_dir(out.join(dir))
            .compile("schema.yaml")
        {
            panic!("autocache-codegen failed for {dir}:\n{error}");
        }
    }
}
