//! The XML walker the camera parsers share (SADP, ONVIF and WS-Discovery, ISAPI, HNAP):
//! quick-xml's event reader with local names only (device prefixes vary), no DTD expansion,
//! and bounds on input size, depth, element count, text length and anomalies.

use std::borrow::Cow;

use quick_xml::events::Event;
use quick_xml::reader::Reader;

pub(crate) use super::record::push_anomaly;

/// Largest document read; the rest is cut (anomaly `input_truncated`).
pub(crate) const MAX_INPUT: usize = 64 * 1024;
pub(crate) const MAX_DEPTH: usize = 32;
pub(crate) const MAX_ELEMENTS: usize = 2048;

pub(crate) fn truncate(s: &str, max: usize) -> &str {
    let mut cut = max.min(s.len());
    while cut > 0 && !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.get(..cut).unwrap_or("")
}

/// (local name, text) of elements, in document order.
pub(crate) type Leaves = Vec<(String, String)>;

/// The direct children of a flat document's root (SADP, ISAPI `DeviceInfo`): the root's local
/// name and, in document order, each child's local name and text (at most `text_cap` bytes, at
/// most `max` children).
pub(crate) fn root_leaves(
    input: &[u8],
    anomalies: &mut Vec<&'static str>,
    text_cap: usize,
    max: usize,
) -> Result<(String, Leaves), &'static str> {
    let mut leaves = Vec::new();
    let root = walk_xml(
        input,
        anomalies,
        |_| text_cap,
        |path, text| {
            if let [_, leaf] = path {
                if leaves.len() < max {
                    leaves.push((leaf.clone(), text.to_string()));
                }
            }
        },
    )?;
    Ok((root, leaves))
}

/// Walks an XML document with quick-xml's event reader, calling `on_end(path, text)` when an
/// element closes, with the local names from the root down to it and its own text (entity and
/// character references resolved, trimmed, at most `text_cap(local name)` bytes). Prefixes are
/// dropped, a DTD is never expanded, and only the first root element is read. Returns the
/// root's local name.
pub(crate) fn walk_xml(
    input: &[u8],
    anomalies: &mut Vec<&'static str>,
    text_cap: impl Fn(&str) -> usize,
    mut on_end: impl FnMut(&[String], &str),
) -> Result<String, &'static str> {
    let input = match input.get(..MAX_INPUT) {
        Some(head) => {
            push_anomaly(anomalies, "input_truncated");
            head
        }
        None => input,
    };
    let end = input.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let input = input.get(..end).unwrap_or(input);
    let text: Cow<'_, str> = match std::str::from_utf8(input) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => {
            push_anomaly(anomalies, "invalid_utf8");
            String::from_utf8_lossy(input)
        }
    };
    let doc = text.trim_start_matches('\u{feff}').trim_start();
    if !doc.starts_with('<') {
        return Err("not_xml");
    }
    let mut reader = Reader::from_str(doc);
    // Devices put bare '&' in names ("A&B"); read it as text rather than stop.
    reader.config_mut().allow_dangling_amp = true;
    let mut stack: Vec<String> = Vec::new();
    // Text of each open element, with its cap.
    let mut texts: Vec<(String, usize)> = Vec::new();
    let mut root: Option<String> = None;
    let mut root_closed = false;
    let mut elements = 0usize;
    let mut skipped_depth = 0usize;
    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(_) => {
                if root.is_none() {
                    return Err("not_xml");
                }
                push_anomaly(anomalies, if root_closed { "trailing_data" } else { "malformed_xml" });
                break;
            }
        };
        if root_closed {
            match event {
                Event::Eof => break,
                Event::Text(t) if t.trim().is_empty() => continue,
                Event::Comment(_) | Event::PI(_) => continue,
                _ => {
                    push_anomaly(anomalies, "trailing_data");
                    break;
                }
            }
        }
        match event {
            Event::Start(e) => {
                elements += 1;
                if elements > MAX_ELEMENTS {
                    push_anomaly(anomalies, "too_many_elements");
                    break;
                }
                if skipped_depth > 0 || stack.len() >= MAX_DEPTH {
                    skipped_depth += 1;
                    push_anomaly(anomalies, "too_deep");
                    continue;
                }
                let name = e.local_name().as_ref().to_string();
                if root.is_none() {
                    root = Some(name.clone());
                }
                texts.push((String::new(), text_cap(&name)));
                stack.push(name);
            }
            Event::Empty(e) => {
                elements += 1;
                if elements > MAX_ELEMENTS {
                    push_anomaly(anomalies, "too_many_elements");
                    break;
                }
                if skipped_depth > 0 || stack.len() >= MAX_DEPTH {
                    push_anomaly(anomalies, "too_deep");
                    continue;
                }
                let name = e.local_name().as_ref().to_string();
                let top_level = root.is_none();
                if top_level {
                    root = Some(name.clone());
                }
                stack.push(name);
                on_end(&stack, "");
                stack.pop();
                root_closed = top_level;
            }
            Event::End(_) => {
                if skipped_depth > 0 {
                    skipped_depth -= 1;
                    continue;
                }
                let (text, _) = texts.pop().unwrap_or_default();
                on_end(&stack, text.trim());
                stack.pop();
                root_closed = stack.is_empty();
            }
            Event::Text(t) => {
                // Reader text never holds '&' except a tolerated dangling one.
                if t.contains('&') {
                    push_anomaly(anomalies, "dangling_amp");
                }
                append_text(&mut texts, skipped_depth, &t.xml10_content(), anomalies);
            }
            Event::CData(t) => append_text(&mut texts, skipped_depth, &t.xml10_content(), anomalies),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    Ok(None) => match r.as_ref() {
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "amp" => Some('&'),
                        "apos" => Some('\''),
                        "quot" => Some('"'),
                        _ => None,
                    },
                    Err(_) => None,
                };
                match resolved {
                    Some(c) => {
                        let mut buf = [0u8; 4];
                        append_text(&mut texts, skipped_depth, c.encode_utf8(&mut buf), anomalies);
                    }
                    None => push_anomaly(anomalies, "unknown_entity"),
                }
            }
            Event::DocType(_) => push_anomaly(anomalies, "doctype"),
            Event::Eof => {
                if root.is_none() {
                    return Err("not_xml");
                }
                if !stack.is_empty() {
                    push_anomaly(anomalies, "unclosed_element");
                }
                break;
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    root.ok_or("not_xml")
}

fn append_text(
    texts: &mut [(String, usize)],
    skipped_depth: usize,
    s: &str,
    anomalies: &mut Vec<&'static str>,
) {
    if skipped_depth > 0 {
        return;
    }
    let Some((buf, cap)) = texts.last_mut() else { return };
    let room = cap.saturating_sub(buf.len());
    if s.len() <= room {
        buf.push_str(s);
        return;
    }
    if !s.trim().is_empty() {
        push_anomaly(anomalies, "text_truncated");
    }
    buf.push_str(truncate(s, room));
}
