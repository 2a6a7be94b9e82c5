//! Fuzz target: a rules file through the loader and compiler (YAML, schema, names, globs,
//! regular expressions, version ranges).
#![no_main]

use std::path::PathBuf;

use camwatch::detect::RuleSet;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let _ = RuleSet::compile(&[(PathBuf::from("fuzz.yaml"), text)]);
});
