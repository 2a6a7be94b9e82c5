//! The review's HTML: one self-contained page per answer (styles inline, charts as inline SVG,
//! no scripts, a Content-Security-Policy that forbids every fetch), so a report can be mailed,
//! archived or opened on an air-gapped machine and looks the same.
//!
//! Everything shown comes from the network (names devices chose, URLs attackers sent): it is
//! escaped here, once, on the way out.

use std::collections::BTreeMap;
use std::fmt::Write;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Bytes for people: `0 B`, `1.5 kB`, `12.0 MB` (powers of 1000, as network tools count).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}

/// Packet time for tables: `2026-01-01 02:00:13` (UTC).
pub fn when(ts: u64) -> String {
    let s = crate::model::time::rfc3339(ts);
    s.get(..19).map_or(s.clone(), |t| t.replacen('T', " ", 1))
}

const STYLE: &str = r#"
:root{--fg:#1d2433;--muted:#5b6475;--line:#d9dee7;--bg:#fff;--band:#f4f6fa;--bad:#b3261e;--badbg:#fdecea;--warn:#8a5a00;--warnbg:#fff4d6;--ok:#1e6b3a;--accent:#2557a7}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:var(--fg);background:var(--bg);margin:0}
header{background:#1d2433;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c8cfdc}
nav{padding:8px 28px;background:var(--band);border-bottom:1px solid var(--line)}
nav a{margin-right:16px;color:var(--accent);text-decoration:none}
main{padding:8px 28px 40px;max-width:1400px}
h2{font-size:18px;margin:28px 0 8px;border-bottom:2px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;width:100%;margin:6px 0 12px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--band);font-weight:600;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.listed td{background:var(--badbg)}
tr.alert td{background:var(--warnbg)}
#table-timeline td:first-child,#table-alerts td:first-child{white-space:nowrap}
.badge{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;font-weight:600;white-space:nowrap}
.badge.listed,.badge.critical,.badge.high,.badge.vulnerable{background:var(--bad);color:#fff}
.badge.medium,.badge.check{background:var(--warnbg);color:var(--warn);border:1px solid #e8c87a}
.badge.low,.badge.info{background:var(--band);color:var(--muted);border:1px solid var(--line)}
.badge.ok{background:#e3f4e8;color:var(--ok)}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:14px 0}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 16px;min-width:170px}
.card .n{font-size:26px;font-weight:700}
.card.bad{border-color:var(--bad)}
.card.bad .n{color:var(--bad)}
.muted{color:var(--muted)}
.small{font-size:12px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--band);padding:0 3px;border-radius:3px;word-break:break-all}
code.addr{white-space:nowrap;word-break:normal}
svg.chart{display:block;max-width:100%;height:auto;margin:6px 0 14px}
svg.chart text{font:12px system-ui,sans-serif;fill:var(--fg)}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
footer{padding:16px 28px;color:var(--muted);font-size:12px;border-top:1px solid var(--line)}
"#;

/// A whole page. `nav` is a list of (href, label); `body` is HTML already escaped.
pub fn page(title: &str, subtitle: &str, nav: &[(&str, &str)], body: &str, footer: &str) -> String {
    let mut out = String::with_capacity(body.len() + 4096);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">");
    // Self-contained, and a page of attacker-chosen strings: nothing may be fetched or run.
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
    );
    let _ = write!(out, "<title>{}</title><style>{STYLE}</style></head><body>", esc(title));
    let _ = write!(out, "<header><h1>{}</h1><p>{}</p></header>", esc(title), esc(subtitle));
    if !nav.is_empty() {
        out.push_str("<nav>");
        for (href, label) in nav {
            let _ = write!(out, "<a href=\"{}\">{}</a>", esc(href), esc(label));
        }
        out.push_str("</nav>");
    }
    out.push_str("<main>");
    out.push_str(body);
    out.push_str("</main>");
    let _ = writeln!(out, "<footer>{}</footer></body></html>", esc(footer));
    out
}

/// A table: header cells (a trailing `#` marks a numeric column) and rows of cells already
/// escaped; `class_of` gives each row its class (`listed` highlights it).
pub fn table(id: &str, headers: &[&str], rows: &[(String, Vec<String>)]) -> String {
    let mut out = String::new();
    let _ = write!(out, "<table id=\"{}\"><thead><tr>", esc(id));
    let numeric: Vec<bool> = headers.iter().map(|h| h.ends_with('#')).collect();
    for h in headers {
        let (label, num) = h.strip_suffix('#').map_or((*h, false), |l| (l, true));
        let _ = write!(out, "<th{}>{}</th>", if num { " class=\"num\"" } else { "" }, esc(label));
    }
    out.push_str("</tr></thead><tbody>");
    for (class, cells) in rows {
        if class.is_empty() {
            out.push_str("<tr>");
        } else {
            let _ = write!(out, "<tr class=\"{}\">", esc(class));
        }
        for (i, c) in cells.iter().enumerate() {
            let num = numeric.get(i).copied().unwrap_or(false);
            let _ = write!(out, "<td{}>{c}</td>", if num { " class=\"num\"" } else { "" });
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

pub fn badge(class: &str, text: &str) -> String {
    format!("<span class=\"badge {}\">{}</span>", esc(class), esc(text))
}

/// Colours of the classes of peer in the traffic chart.
pub const CLASS_COLOURS: &[(&str, &str)] =
    &[("external", "#b3261e"), ("internal", "#2557a7"), ("multicast", "#7b8aa8"), ("broadcast", "#c9a227")];

/// Horizontal bars: one per item (label, value, highlighted), longest first as given.
pub fn bars(id: &str, caption: &str, items: &[(String, u64, bool)], unit: fn(u64) -> String) -> String {
    let max = items.iter().map(|i| i.1).max().unwrap_or(0).max(1);
    let (left, width, row) = (240.0, 460.0, 22.0);
    let h = row * items.len() as f64 + 10.0;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"chart\" id=\"{}\" role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {} {h}\" width=\"{}\" height=\"{h}\">",
        esc(id),
        esc(caption),
        left + width + 110.0,
        left + width + 110.0
    );
    for (i, (label, value, hot)) in items.iter().enumerate() {
        let y = 5.0 + row * i as f64;
        let w = (*value as f64 / max as f64 * width).max(1.0);
        let colour = if *hot { "#b3261e" } else { "#2557a7" };
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect class=\"bar\" x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{colour}\"><title>{}: {}</title></rect><text x=\"{}\" y=\"{}\">{}</text>",
            left - 8.0,
            y + 14.0,
            esc(label),
            row - 6.0,
            esc(label),
            esc(&unit(*value)),
            left + w + 6.0,
            y + 14.0,
            esc(&unit(*value)),
        );
    }
    out.push_str("</svg>");
    out
}

/// Stacked columns over time: `series` maps a bucket start (Unix seconds) to bytes per class.
/// Buckets are hours, or days when there are more than 72 hours.
pub fn traffic_chart(id: &str, series: &BTreeMap<u64, BTreeMap<String, u64>>) -> String {
    let span_hours = match (series.keys().next(), series.keys().next_back()) {
        (Some(a), Some(b)) => (b - a) / 3600 + 1,
        _ => 0,
    };
    let step = if span_hours > 72 { 86_400 } else { 3600 };
    let mut buckets: BTreeMap<u64, BTreeMap<&str, u64>> = BTreeMap::new();
    for (hour, classes) in series {
        let b = buckets.entry(hour / step * step).or_default();
        for (class, bytes) in classes {
            let e = b.entry(class.as_str()).or_default();
            *e = e.saturating_add(*bytes);
        }
    }
    let max = buckets
        .values()
        .map(|c| c.values().fold(0u64, |a, v| a.saturating_add(*v)))
        .max()
        .unwrap_or(0)
        .max(1);
    let (left, top, height, col) =
        (70.0, 10.0, 200.0, (900.0 / buckets.len().max(1) as f64).clamp(4.0, 48.0));
    // Room after the last column for its time label.
    let width = left + col * buckets.len() as f64 + 90.0;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"chart\" id=\"{}\" role=\"img\" aria-label=\"Traffic by class of peer, per {}\" viewBox=\"0 0 {width} {}\" width=\"{width}\" height=\"{}\">",
        esc(id),
        if step == 3600 { "hour" } else { "day" },
        top + height + 40.0,
        top + height + 40.0
    );
    let _ = write!(
        out,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>",
        top + height,
        width - 10.0,
        top + height,
        left - 6.0,
        top + 10.0,
        esc(&bytes(max)),
        left - 6.0,
        top + height
    );
    let label_every = (buckets.len() / 8).max(1);
    for (i, (start, classes)) in buckets.iter().enumerate() {
        let x = left + col * i as f64;
        let mut y = top + height;
        for (class, colour) in CLASS_COLOURS {
            let v = classes.get(class).copied().unwrap_or(0);
            if v == 0 {
                continue;
            }
            let h = (v as f64 / max as f64 * height).max(1.0);
            y -= h;
            let _ = write!(
                out,
                "<rect class=\"bar {class}\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{colour}\"><title>{} {class}: {}</title></rect>",
                x + 1.0,
                col - 2.0,
                esc(&when(start * 1_000_000)),
                esc(&bytes(v))
            );
        }
        if i % label_every == 0 {
            let t = when(start * 1_000_000);
            let label = if step == 3600 {
                t.get(5..16).unwrap_or(&t).to_string()
            } else {
                t.get(..10).unwrap_or(&t).to_string()
            };
            let _ = write!(out, "<text x=\"{:.1}\" y=\"{}\">{}</text>", x, top + height + 16.0, esc(&label));
        }
    }
    out.push_str("</svg><div class=\"legend small\">");
    for (class, colour) in CLASS_COLOURS {
        let _ = write!(out, "<span><i style=\"background:{colour}\"></i>{class}</span>");
    }
    out.push_str("</div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_names_is_text() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
        assert_eq!(esc("a\u{1b}b"), "a\u{fffd}b");
        let t = table("t", &["Name", "Bytes#"], &[("listed".into(), vec![esc("<b>"), bytes(1500)])]);
        assert!(t.contains("<td>&lt;b&gt;</td><td class=\"num\">1.5 kB</td>"), "{t}");
        assert!(t.contains("<tr class=\"listed\">"));
    }

    #[test]
    fn byte_counts_read_as_people_read_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1000), "1.0 kB");
        assert_eq!(bytes(12_345_678), "12.3 MB");
        assert_eq!(bytes(u64::MAX), "18446.7 PB");
    }

    #[test]
    fn the_traffic_chart_draws_one_column_per_bucket_and_days_past_three_days() {
        let mut s: BTreeMap<u64, BTreeMap<String, u64>> = BTreeMap::new();
        for h in 0..5u64 {
            s.entry(1_767_225_600 + h * 3600).or_default().insert("external".into(), 100 * (h + 1));
        }
        let svg = traffic_chart("c", &s);
        assert_eq!(svg.matches("<rect class=\"bar external\"").count(), 5);
        s.entry(1_767_225_600 + 100 * 3600).or_default().insert("internal".into(), 7);
        let svg = traffic_chart("c", &s);
        // Day buckets: the first day's five hours are one column.
        assert_eq!(svg.matches("<rect class=\"bar external\"").count(), 1);
        assert_eq!(svg.matches("<rect class=\"bar internal\"").count(), 1);
        assert!(svg.contains("per day"));
    }
}
