//! HTTP requests and responses on a followed TCP stream: bodies that carry identity (ISAPI, ONVIF,
//! magicBox, HNAP) kept up to a bound, and firmware images streamed through SHA-256.

use sha2::{Digest, Sha256};

pub use crate::model::app::{App, BodyIdentity, FirmwareTransfer, HttpTxn, ParseFailure};
use crate::model::event::FlowRecord;
use crate::model::time::Micros;
use crate::proto::{firmware, http, isapi, onvif};

use super::*;

pub(super) fn is_firmware_url(url: &str) -> bool {
    let path = url.split('?').next().unwrap_or(url).to_ascii_lowercase();
    path.contains("updatefirmware")
        || path.contains("upgrade")
        || [".dav", ".bin", ".img", ".pak", ".bin.gz"].iter().any(|ext| path.ends_with(ext))
}

pub(super) fn identity_url(url: &str, body_hint: &[u8]) -> bool {
    let u = url.to_ascii_lowercase();
    u.contains("/isapi/system/deviceinfo")
        || u.contains("/isapi/system/network/ezviz")
        || u.contains("magicbox.cgi")
        || u.contains("onvif")
        || u.contains("/hnap1")
        || contains(body_hint, b"GetDeviceInformation")
}

pub(super) fn new_body(len: Option<u64>, chunked: bool, keep: bool, hash: bool) -> Box<Body> {
    Box::new(Body {
        remaining: if chunked { None } else { len },
        chunked: chunked.then(Box::default),
        keep,
        kept: Vec::new(),
        hasher: hash.then(Sha256::new),
        hashed: 0,
        head: Vec::new(),
        multipart: None,
    })
}

/// Feeds a body's next bytes (decoded from chunked coding as they come) to what keeps and
/// hashes it. Returns how many bytes of `input` were the body's.
pub(super) fn feed_body(b: &mut Body, input: &[u8]) -> usize {
    let Body { remaining, chunked, keep, kept, hasher, hashed, head, multipart } = b;
    let mut sink = |data: &[u8]| {
        if *keep {
            let room = BODY_BYTES.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
        if let Some(h) = hasher.as_mut() {
            let mut hash = |part: &[u8]| {
                h.update(part);
                *hashed += part.len() as u64;
                let room = IMAGE_HEAD.saturating_sub(head.len());
                head.extend_from_slice(&part[..part.len().min(room)]);
            };
            match multipart.as_mut() {
                Some(form) => form.feed(data, &mut hash),
                None => hash(data),
            }
        }
    };
    if let Some(d) = chunked {
        return d.feed(input, &mut sink);
    }
    let take = match remaining {
        Some(r) => input.len().min(usize::try_from(*r).unwrap_or(usize::MAX)),
        None => input.len(),
    };
    sink(&input[..take]);
    if let Some(r) = remaining {
        *r -= take as u64;
    }
    take
}

pub(super) fn body_done(b: &Body) -> bool {
    match b.remaining {
        Some(r) => r == 0,
        // Chunked: done at the last chunk's trailer; unknown length: once the kept part is full
        // for an identity body (a transfer is finished at the flow's end).
        None => {
            b.chunked.as_ref().is_some_and(|d| d.done())
                || (b.keep && b.hasher.is_none() && b.kept.len() >= BODY_BYTES)
        }
    }
}

pub(super) fn finish_transfer(transfer: &mut Option<Box<FirmwareTransfer>>, body: Body, completed: bool) {
    let (Some(t), Some(h)) = (transfer.as_mut(), body.hasher) else { return };
    t.size = body.hashed;
    t.sha256 = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    t.completed = completed
        && t.expected_size.is_none_or(|e| e == body.hashed)
        && body.chunked.as_ref().is_none_or(|d| d.done() && !d.broken);
    if let Some(form) = &body.multipart {
        // The form's length is not the file's: complete when the file part ended.
        t.expected_size = None;
        t.completed = form.found && form.done();
        if let Some(name) = form.filename.as_deref() {
            t.filename_version = t.filename_version.take().or_else(|| firmware::version_from_filename(name));
            t.filename = Some(name.to_string());
        }
    }
    t.digicap = firmware::parse_digicap_header(&body.head).ok();
    t.format = firmware::image_format(&body.head);
    t.image = firmware::is_image(t.format, t.size);
}

pub(super) fn body_finished(
    f: &mut AppFlow,
    rec: &FlowRecord,
    to_server: bool,
    body: Body,
    ts: Micros,
    out: &mut Output,
) {
    let hashed = body.hasher.is_some();
    let kept = body.kept.clone();
    if hashed {
        finish_transfer(&mut f.transfer, body, true);
        if let Some(t) = f.transfer.take().filter(|t| t.reportable()) {
            out.events.push(tcp_ctx(rec, ts, App::FirmwareTransfer(t)));
        }
    }
    if to_server {
        // A request body: kept for rules (bounded); identity comes from responses.
        if let Some(txn) = f.pending.last_mut() {
            let cap = kept.len().min(REQUEST_BODY_BYTES);
            txn.request_body = (!kept.is_empty()).then(|| String::from_utf8_lossy(&kept[..cap]).into_owned());
        }
        return;
    }
    if let Some(mut txn) = (!f.pending.is_empty()).then(|| f.pending.remove(0)) {
        txn.identity = body_identity(&txn.request.url, &kept);
        out.events.push(tcp_ctx(rec, ts, App::Http(Box::new(txn))));
    }
}

pub(super) fn body_identity(url: &str, body: &[u8]) -> Option<BodyIdentity> {
    let u = url.to_ascii_lowercase();
    if u.contains("/isapi/system/deviceinfo") {
        return isapi::parse_device_info(body).ok().map(BodyIdentity::IsapiDeviceInfo);
    }
    if u.contains("/isapi/system/network/ezviz") {
        return isapi::parse_ezviz(body).ok().map(BodyIdentity::IsapiEzviz);
    }
    if u.contains("magicbox.cgi") {
        let kv = isapi::parse_magicbox(body);
        return (!kv.is_empty()).then_some(BodyIdentity::DahuaMagicBox(kv));
    }
    if contains(body, b"GetDeviceSettingsResponse") {
        return isapi::parse_hnap_device_settings(body).ok().map(BodyIdentity::DlinkHnap);
    }
    if contains(body, b"GetDeviceInformationResponse") {
        return onvif::parse_device_information(body).ok().map(BodyIdentity::OnvifDeviceInfo);
    }
    None
}

pub(super) fn http_step(
    f: &mut AppFlow,
    rec: &FlowRecord,
    to_server: bool,
    ts: Micros,
    out: &mut Output,
) -> bool {
    if to_server {
        let parsed = http::parse_request(&f.client.buf);
        match parsed {
            Ok(http::Parsed::Complete(req, used)) => {
                f.client.buf.drain(..used.min(f.client.buf.len()));
                f.transactions += 1;
                let len = req.content_length.filter(|n| *n > 0);
                let chunked = req.chunked;
                let has_body = len.is_some() || req.chunked;
                let by_url = has_body
                    && (is_firmware_url(&req.url)
                        || req.http_content_type.as_deref().is_some_and(|c| c.contains("octet-stream"))
                            && len.unwrap_or(0) > 1 << 20);
                // A web page's upload is a form: only its file part is the image. A form to any
                // URL is hashed, and reported when its file is an image by content (a vendor's
                // upgrade page may be named anything: `/cgi-bin/update?ISP_FIRMWARE_SAVE`).
                let form = req
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                    .and_then(|(_, v)| crate::proto::multipart::boundary(v))
                    .filter(|_| has_body);
                let firmware = by_url || form.is_some();
                if firmware {
                    let mut t = transfer("upload", &req, len);
                    t.by_content = !by_url;
                    f.transfer = Some(Box::new(t));
                }
                if f.pending.len() < MAX_TRANSACTIONS {
                    f.pending.push(HttpTxn {
                        request: req,
                        response: None,
                        identity: None,
                        request_body: None,
                    });
                }
                if has_body {
                    // Request bodies are kept (bounded) for rules: exploit payloads live there.
                    // Kept for rules unless it is an upload to a firmware URL (a form to another
                    // URL may carry an exploit as well as a file).
                    let mut body = new_body(len, chunked, !by_url, firmware);
                    body.multipart = form.map(|b| Box::new(crate::proto::multipart::FileExtractor::new(&b)));
                    let used = feed_body(&mut body, &f.client.buf);
                    f.client.buf.drain(..used);
                    if body_done(&body) {
                        body_finished(f, rec, true, *body, ts, out);
                    } else {
                        f.client.body = Some(body);
                    }
                }
                if f.transactions >= MAX_TRANSACTIONS {
                    f.client.done = true;
                }
                true
            }
            Ok(http::Parsed::Incomplete) => false,
            Err(reason) => {
                out.failures.push(ParseFailure { protocol: "http", reason });
                f.kind = Kind::Ignore;
                false
            }
        }
    } else {
        match http::parse_response(&f.server.buf) {
            Ok(http::Parsed::Complete(resp, used)) => {
                f.server.buf.drain(..used.min(f.server.buf.len()));
                let len = resp.content_length.filter(|n| *n > 0);
                let has_body = (len.is_some() || resp.chunked)
                    && resp.status >= 200
                    && resp.status != 204
                    && resp.status != 304;
                let url = f.pending.first().map(|t| t.request.url.clone()).unwrap_or_default();
                let download = has_body
                    && f.pending.first().is_some_and(|t| t.request.http_method == "GET")
                    && (is_firmware_url(&url)
                        || resp.http_content_type.as_deref().is_some_and(|c| c.contains("octet-stream"))
                            && len.unwrap_or(0) > 1 << 20);
                if download {
                    if let Some(t) = f.pending.first() {
                        f.transfer = Some(Box::new(transfer("download", &t.request, len)));
                    }
                }
                if let Some(t) = f.pending.first_mut() {
                    t.response = Some(resp.clone());
                }
                if has_body {
                    let keep = identity_url(&url, &f.server.buf);
                    let mut body = new_body(len, resp.chunked, keep, download);
                    let used = feed_body(&mut body, &f.server.buf);
                    f.server.buf.drain(..used);
                    if body_done(&body) {
                        body_finished(f, rec, false, *body, ts, out);
                    } else {
                        f.server.body = Some(body);
                    }
                } else if !f.pending.is_empty() {
                    let txn = f.pending.remove(0);
                    // A tunnel through a proxy (HTTP CONNECT, answered 2xx): what follows is
                    // the tunnelled protocol, TLS or plaintext before it.
                    let tunnel = txn.request.http_method.eq_ignore_ascii_case("CONNECT")
                        && txn.response.as_ref().is_some_and(|r| (200..300).contains(&r.status));
                    out.events.push(tcp_ctx(rec, ts, App::Http(Box::new(txn))));
                    if tunnel {
                        f.kind = Kind::Preamble;
                        f.server.buf.clear();
                    }
                }
                true
            }
            Ok(http::Parsed::Incomplete) => false,
            Err(reason) => {
                out.failures.push(ParseFailure { protocol: "http", reason });
                f.server.done = true;
                f.server.buf = Vec::new();
                false
            }
        }
    }
}

pub(super) fn transfer(
    direction: &'static str,
    req: &http::HttpRequest,
    len: Option<u64>,
) -> FirmwareTransfer {
    let file = req.url.split('?').next().unwrap_or("").rsplit('/').next().unwrap_or("");
    FirmwareTransfer {
        direction,
        method: req.http_method.clone(),
        url: req.url.clone(),
        hostname: req.hostname.clone(),
        size: 0,
        expected_size: len,
        sha256: String::new(),
        completed: false,
        digicap: None,
        format: None,
        image: false,
        filename_version: firmware::version_from_filename(file),
        filename: None,
        by_content: false,
    }
}
