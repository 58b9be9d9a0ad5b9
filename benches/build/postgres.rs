//! Generates the sample schema's repositories for PostgreSQL into `OUT_DIR/postgres/`: P9
//! times their writes against bare sqlx transactions (`autocache-generated` is SQLite's).

use std::path::PathBuf;

use autocache_codegen::Config;
use autocache_codegen::ir::Dialect;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    if let Err(error) = Config::new()
        .dialect(Dialect::Postgres)
        .out_dir(out.join("postgres"))
        .compile("../schema.yaml")
    {
        panic!("autocache-codegen failed for PostgreSQL:\n{error}");
    }
    // With an explicit out_dir, compile does not tell cargo to rerun: say it here.
    println!("cargo:rerun-if-changed=../schema.yaml");
}
