//! Generates repositories into OUT_DIR exactly as a user's build script would: the sample
//! schema for the quickstart, and the generator's fixture schemas, which the suite compiles
//! (and runs, where they target SQLite) so every field type is proven end to end.

fn main() {
    let schemas = [
        "schema.yaml",
        "codegen/tests/fixtures/string_pk.yaml",
        "codegen/tests/fixtures/nullable_fk.yaml",
        "codegen/tests/fixtures/all_types.yaml",
    ];
    if let Err(error) = autocache_codegen::Config::new().compile_all(&schemas) {
        panic!("autocache-codegen failed:\n{error}");
    }
}
