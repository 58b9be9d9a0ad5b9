//! The whole generator: a schema that loads must plan, render and format (an error there is a
//! generator bug), and nothing panics.
#![no_main]

use autocache_codegen::validate::load_bytes;
use autocache_codegen::{format, plan, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(schema) = load_bytes(data, "fuzz.yaml") else {
        return;
    };
    let plans = plan::plan(&schema);
    let source = render::render(&schema, &plans).expect("a valid schema renders");
    let code = format::format(&source, "fuzz.yaml").expect("rendered code parses");
    assert!(code.contains("@generated"));
});
