//! Fuzz target: digicap.dav headers, firmware version strings and firmware file names.
#![no_main]

use camwatch_proto::firmware::{parse_digicap_header, version_from_filename, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_digicap_header(data);
    let text = String::from_utf8_lossy(data);
    // Split the input so two versions can be compared with each other.
    let (a, b) = text.split_once('\n').unwrap_or((&text, "V5.5.0 build 170725"));
    let (va, vb) = (Version::parse(a), Version::parse(b));
    let _ = va.compare(&vb);
    // compare is antisymmetric and reflexive; a violation is a bug worth a crash.
    assert_eq!(va.compare(&vb), vb.compare(&va).map(std::cmp::Ordering::reverse));
    assert_eq!(va.compare(&va), Some(std::cmp::Ordering::Equal));
    let _ = Version::from_parts(a, Some(b)).to_string();
    let _ = version_from_filename(&text);
});
