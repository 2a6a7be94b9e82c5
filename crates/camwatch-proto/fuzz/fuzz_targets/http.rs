//! Fuzz target: HTTP/1.x request and response header blocks, and the query-string helper.
#![no_main]

use camwatch_proto::http::{parse_request, parse_response, query_param, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A complete header block depends only on the bytes it consumed.
    if let Ok(Parsed::Complete(request, used)) = parse_request(data) {
        assert!(used > 0 && used <= data.len());
        assert_eq!(parse_request(&data[..used]), Ok(Parsed::Complete(request.clone(), used)));
        assert!(request.headers.len() <= 64 && request.url.len() <= 4096);
        let _ = query_param(&request.url, "user");
    }
    if let Ok(Parsed::Complete(response, used)) = parse_response(data) {
        assert!(used > 0 && used <= data.len());
        assert_eq!(parse_response(&data[..used]), Ok(Parsed::Complete(response, used)));
    }
    let text = String::from_utf8_lossy(data);
    let (url, key) = text.split_once('\n').unwrap_or((&text, "a"));
    let _ = query_param(url, key);
});
