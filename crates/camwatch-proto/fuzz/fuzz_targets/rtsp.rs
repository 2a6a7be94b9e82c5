//! Fuzz target: RTSP request and response header blocks and interleaved-frame detection.
#![no_main]

use camwatch_proto::rtsp::{is_interleaved_frame, parse_request, parse_response, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A complete header block depends only on the bytes it consumed; what follows it is
    // either another message or interleaved media.
    if let Ok(Parsed::Complete(request, used)) = parse_request(data) {
        assert!(used > 0 && used <= data.len());
        assert_eq!(parse_request(&data[..used]), Ok(Parsed::Complete(request, used)));
        let _ = is_interleaved_frame(&data[used..]);
    }
    if let Ok(Parsed::Complete(response, used)) = parse_response(data) {
        assert!(used > 0 && used <= data.len());
        assert_eq!(parse_response(&data[..used]), Ok(Parsed::Complete(response, used)));
        let _ = is_interleaved_frame(&data[used..]);
    }
    // Interleaved frames never parse as RTSP text.
    if is_interleaved_frame(data) {
        assert!(parse_request(data).is_err() && parse_response(data).is_err());
    }
});
