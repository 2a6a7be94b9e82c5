//! Fuzz target: the sensor's config file.
#![no_main]

use std::path::Path;

use camwatch::model::yaml::parse_yaml;
use camwatch::runtime::config::Config;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = parse_yaml::<Config>(Path::new("fuzz.yaml"), &String::from_utf8_lossy(data));
});
