//! Generates the sample schema's repositories for PostgreSQL into `OUT_DIR/sample_postgres.rs`: P9
//! times their writes against bare sqlx transactions (`autocache-generated` is SQLite's).

use autocache_codegen::Config;
use autocache_codegen::ir::Dialect;

fn main() {
    if let Err(error) = Config::new().dialect(Dialect::Postgres).compile("../schema.yaml") {
        panic!("autocache-codegen failed for PostgreSQL:\n{error}");
    }
}
