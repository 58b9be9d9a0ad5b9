//! Generates the sample schema's repositories into OUT_DIR for the quickstart, exactly as a
//! user's build script would.

fn main() {
    if let Err(error) = autocache_codegen::compile("schema.yaml") {
        panic!("autocache-codegen failed:\n{error}");
    }
}
