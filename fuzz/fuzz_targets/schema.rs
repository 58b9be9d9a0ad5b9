//! The schema loader on arbitrary bytes: it returns a schema or errors, never panics, and every
//! error is located (`fuzz.yaml:<line>:<col>: ...`) and renders.
#![no_main]

use autocache_codegen::validate::load_bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(errors) = load_bytes(data, "fuzz.yaml") {
        assert!(!errors.is_empty());
        for error in errors.iter() {
            let prefix = format!("fuzz.yaml:{}:{}: ", error.line(), error.column());
            assert!(error.line() >= 1 && error.column() >= 1, "{error}");
            assert!(error.to_string().starts_with(&prefix), "{error}");
        }
        let _ = errors.render(80);
    }
});
