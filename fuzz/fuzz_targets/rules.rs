//! Fuzz target: a rules file through the loader and compiler (YAML, schema, names, globs,
//! regular expressions, version ranges).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    camwatch::runtime::fuzzing::run("rules", data);
});
