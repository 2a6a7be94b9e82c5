//! Fuzz target: HTTP/1.x request and response header blocks, and the query-string helper.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    camwatch_proto::fuzzing::run("http", data);
});
