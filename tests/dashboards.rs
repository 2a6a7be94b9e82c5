//! The Grafana dashboards (`dashboards/*.json`) and the Prometheus alerting rules for the sensor
//! (`dashboards/prometheus-alerts.yaml`): every dashboard is importable as shipped, every query
//! filters on the `sensor` variable and uses only documented metrics and labels, and promtool
//! accepts the rules and passes their unit tests. `panel_queries` and `substitute` are shared with
//! the end-to-end test that runs every query against a Prometheus that scraped camwatch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::util;

/// The dashboards' uids; each is also its file name (`<uid>.json`).
const UIDS: [&str; 4] = ["camwatch-overview", "camwatch-device", "camwatch-firmware", "camwatch-sensor"];

/// What every panel and target names as its data source: the import-time input.
const DS_UID: &str = "${DS_PROMETHEUS}";

/// What the sensor variable's matcher looks like in every selector.
const SENSOR_MATCHER: (&str, &str, &str) = ("sensor", "=~", "$sensor");

/// One query of one panel.
#[derive(Debug, Clone)]
pub struct PanelQuery {
    /// The dashboard's file name without `.json` (its uid).
    pub dashboard: String,
    pub panel: String,
    pub expr: String,
}

pub fn dashboards_dir() -> PathBuf {
    util::root().join("dashboards")
}

/// Every `*.json` in `dir`, sorted by name, parsed: (file stem, dashboard).
fn dashboards(dir: &Path) -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()));
            (p.file_stem().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect()
}

/// Every panel of a dashboard in order, rows included, and the panels nested in (collapsed)
/// rows after their row.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().map(Vec::as_slice).unwrap_or_default() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Every query of every panel of every dashboard in `dir`, nested panels included. Targets
/// Grafana does not run (`"hide": true`) are left out; a target without an expression panics.
pub fn panel_queries(dir: &Path) -> Vec<PanelQuery> {
    let mut out = Vec::new();
    for (name, d) in dashboards(dir) {
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap_or_default();
            for t in p["targets"].as_array().map(Vec::as_slice).unwrap_or_default() {
                if t["hide"] == json!(true) {
                    continue;
                }
                let expr = t["expr"].as_str().unwrap_or_default().trim();
                assert!(!expr.is_empty(), "{name}: panel {title:?} has a target without an expression: {t}");
                out.push(PanelQuery {
                    dashboard: name.clone(),
                    panel: title.to_string(),
                    expr: expr.to_string(),
                });
            }
        }
    }
    out
}

/// `expr` with Grafana's variables replaced as Grafana would for an instant query over the last
/// five minutes: `sensor` and `device` by the given values, `$__rate_interval` by 1m,
/// `$__interval` by 15s and `$__range` by 5m.
pub fn substitute(expr: &str, sensor: &str, device: &str) -> String {
    // Longer names first: `$__range_s` before `$__range`, `${x}` before `$x`.
    let table = [
        ("${sensor}", sensor),
        ("$sensor", sensor),
        ("${device}", device),
        ("$device", device),
        ("${__rate_interval}", "1m"),
        ("$__rate_interval", "1m"),
        ("${__interval_ms}", "15000"),
        ("$__interval_ms", "15000"),
        ("${__interval}", "15s"),
        ("$__interval", "15s"),
        ("${__range_ms}", "300000"),
        ("$__range_ms", "300000"),
        ("${__range_s}", "300"),
        ("$__range_s", "300"),
        ("${__range}", "5m"),
        ("$__range", "5m"),
    ];
    table.iter().fold(expr.to_string(), |e, (var, value)| e.replace(var, value))
}

// ------------------------------------------------------------------------------------------
// A small PromQL reader: enough to find every metric selector, its matchers, and the label
// lists of `by`, `without`, `on`, `ignoring`, `group_left` and `group_right`.

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    /// `$name` or `${name}`.
    Var(String),
    Number(String),
    Punct(String),
}

fn lex(expr: &str) -> Vec<Token> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && ident(chars[i]) {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push(Token::Number(chars[start..i].iter().collect()));
        } else if c == '"' || c == '\'' || c == '`' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && c != '`' {
                    i += 1;
                }
                if let Some(&ch) = chars.get(i) {
                    s.push(ch);
                }
                i += 1;
            }
            assert!(i < chars.len(), "unterminated string in {expr}");
            i += 1;
            out.push(Token::Str(s));
        } else if c == '$' {
            i += 1;
            let braced = chars.get(i) == Some(&'{');
            if braced {
                i += 1;
            }
            let start = i;
            while i < chars.len() && ident(chars[i]) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            if braced {
                assert_eq!(chars.get(i), Some(&'}'), "unterminated ${{ in {expr}");
                i += 1;
            }
            assert!(!name.is_empty(), "a bare $ in {expr}");
            out.push(Token::Var(name));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if ["=~", "!=", "!~", "==", ">=", "<="].contains(&two.as_str()) {
                out.push(Token::Punct(two));
                i += 2;
            } else {
                out.push(Token::Punct(c.to_string()));
                i += 1;
            }
        }
    }
    out
}

const KEYWORDS: [&str; 8] = ["and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"];
const LABEL_LIST_KEYWORDS: [&str; 6] = ["by", "without", "on", "ignoring", "group_left", "group_right"];
const AGGREGATORS: [&str; 13] = [
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "limitk",
];

/// A metric selector: the metric, its matchers (label, operator, value), and the range-vector
/// function (`rate`, `increase`, …) it sits directly in, if any.
#[derive(Debug)]
struct Selector {
    metric: String,
    matchers: Vec<(String, String, String)>,
    in_counter_fn: Option<String>,
}

#[derive(Debug, Default)]
struct Parsed {
    selectors: Vec<Selector>,
    /// Labels named in `by (…)`, `on (…)` and the like.
    grouping: BTreeSet<String>,
}

fn parse(expr: &str) -> Parsed {
    let tokens = lex(expr);
    let mut out = Parsed::default();
    let mut counter_fn: Option<String> = None;
    let mut i = 0;
    let punct = |i: usize, p: &str| matches!(tokens.get(i), Some(Token::Punct(x)) if x == p);
    while i < tokens.len() {
        let Token::Ident(name) = &tokens[i] else {
            assert!(!punct(i, "{"), "a selector without a metric name in {expr}");
            i += 1;
            continue;
        };
        if LABEL_LIST_KEYWORDS.contains(&name.as_str()) && punct(i + 1, "(") {
            i += 2;
            while !punct(i, ")") {
                match tokens.get(i) {
                    Some(Token::Ident(l)) => {
                        out.grouping.insert(l.clone());
                    }
                    Some(Token::Punct(p)) if p == "," => {}
                    other => panic!("unexpected {other:?} in the label list of {name} in {expr}"),
                }
                i += 1;
            }
            i += 1;
        } else if punct(i + 1, "(") {
            // A function or an aggregation.
            if ["rate", "irate", "increase"].contains(&name.as_str()) {
                counter_fn = Some(name.clone());
            }
            i += 1;
        } else if KEYWORDS.contains(&name.as_str()) || AGGREGATORS.contains(&name.as_str()) {
            i += 1;
        } else {
            let mut matchers = Vec::new();
            i += 1;
            if punct(i, "{") {
                i += 1;
                while !punct(i, "}") {
                    match (tokens.get(i), tokens.get(i + 1), tokens.get(i + 2)) {
                        (Some(Token::Ident(l)), Some(Token::Punct(op)), Some(Token::Str(v))) => {
                            matchers.push((l.clone(), op.clone(), v.clone()));
                            i += 3;
                        }
                        other => panic!("cannot read the matchers of {name} at {other:?} in {expr}"),
                    }
                    if punct(i, ",") {
                        i += 1;
                    }
                }
                i += 1;
            }
            out.selectors.push(Selector { metric: name.clone(), matchers, in_counter_fn: counter_fn.take() });
        }
    }
    out
}

/// The metric table of docs/metrics.md: name → (type, every back-quoted word of its labels
/// column, which includes the label names).
fn documented_metrics() -> BTreeMap<String, (String, BTreeSet<String>)> {
    let path = util::root().join("docs/metrics.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        let (name, kind, labels) = (cols[1].trim_matches('`'), cols[2], cols[3]);
        let words = labels.split('`').skip(1).step_by(2).map(str::to_string).collect();
        assert!(out.insert(name.to_string(), (kind.to_string(), words)).is_none(), "{name} twice in docs");
    }
    assert!(out.len() > 20, "read only {} metrics from {}", out.len(), path.display());
    out
}

/// Problems with the metrics and labels one expression uses: undocumented metrics, matchers on
/// labels the metric does not have, grouping by labels none of its metrics has, and rate() or
/// increase() over something that is not a counter.
fn check_expr(expr: &str, docs: &BTreeMap<String, (String, BTreeSet<String>)>) -> Vec<String> {
    let parsed = parse(expr);
    let mut problems = Vec::new();
    // Labels every series has (the scrape adds job and instance), and `up`, Prometheus's own.
    let mut known: BTreeSet<String> = ["sensor", "job", "instance"].map(String::from).into();
    for s in &parsed.selectors {
        if s.metric == "up" {
            continue;
        }
        let Some((kind, labels)) = docs.get(&s.metric) else {
            problems.push(format!("{} is not in docs/metrics.md", s.metric));
            continue;
        };
        known.extend(labels.iter().cloned());
        for (label, _, _) in &s.matchers {
            if !labels.contains(label) && !["sensor", "job", "instance"].contains(&label.as_str()) {
                problems.push(format!("{} has no label {label}", s.metric));
            }
        }
        if let Some(f) = &s.in_counter_fn {
            if kind != "counter" {
                problems.push(format!("{f}() over {}, a {kind}", s.metric));
            }
        }
    }
    for label in &parsed.grouping {
        if !known.contains(label) {
            problems.push(format!("groups by {label}, which none of its metrics has"));
        }
    }
    if !parsed.selectors.iter().any(|s| s.metric.starts_with("camwatch_") || s.metric == "up") {
        problems.push("uses no camwatch metric".into());
    }
    problems
}

fn ds_ok(v: &Value) -> bool {
    v["type"] == "prometheus" && v["uid"] == DS_UID
}

// ------------------------------------------------------------------------------------------

#[test]
fn every_dashboard_is_importable() {
    let all = dashboards(&dashboards_dir());
    let names: BTreeSet<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, BTreeSet::from(UIDS), "the dashboards in dashboards/");
    let mut problems = Vec::new();
    for (name, d) in &all {
        let mut bad = |msg: String| problems.push(format!("{name}: {msg}"));
        if d["uid"] != json!(name) {
            bad(format!("uid {} is not the file name", d["uid"]));
        }
        if d["schemaVersion"] != 39 {
            bad(format!("schemaVersion {}", d["schemaVersion"]));
        }
        if d["title"].as_str().unwrap_or_default().is_empty() {
            bad("no title".into());
        }
        let input = d["__inputs"].as_array().into_iter().flatten().find(|i| i["name"] == "DS_PROMETHEUS");
        match input {
            Some(i) if i["type"] == "datasource" && i["pluginId"] == "prometheus" => {}
            _ => bad("no DS_PROMETHEUS data-source input in __inputs".into()),
        }
        let requires = d["__requires"].as_array().into_iter().flatten();
        if !requires.clone().any(|r| r["type"] == "datasource" && r["id"] == "prometheus") {
            bad("__requires lacks the prometheus data source".into());
        }
        // Every panel type used is required, so an import into a Grafana without it says so.
        let required: BTreeSet<&str> =
            requires.filter(|r| r["type"] == "panel").filter_map(|r| r["id"].as_str()).collect();

        let vars = d["templating"]["list"].as_array().cloned().unwrap_or_default();
        let var = |n: &str| vars.iter().find(|v| v["name"] == n).cloned().unwrap_or(Value::Null);
        let query =
            |v: &Value| v["query"]["query"].as_str().or(v["query"].as_str()).unwrap_or("").to_string();
        let sensor = var("sensor");
        if !(sensor["type"] == "query"
            && ds_ok(&sensor["datasource"])
            && query(&sensor) == "label_values(camwatch_build_info, sensor)"
            && sensor["multi"] == true
            && sensor["includeAll"] == true
            && sensor["allValue"] == ".*")
        {
            bad(format!("the sensor variable is not a multi/all query of camwatch_build_info: {sensor}"));
        }
        for v in &vars {
            if !v["datasource"].is_null() && !ds_ok(&v["datasource"]) {
                bad(format!("variable {} has data source {}", v["name"], v["datasource"]));
            }
        }
        if name == "camwatch-device" {
            let device = var("device");
            if !(query(&device) == "label_values(camwatch_device_info{sensor=~\"$sensor\"}, device)"
                && ds_ok(&device["datasource"])
                && device["multi"] != true
                && device["includeAll"] != true)
            {
                bad(format!(
                    "the device variable is not a single-value query of camwatch_device_info: {device}"
                ));
            }
        }

        let mut ids = BTreeSet::new();
        let mut cells: BTreeMap<(i64, i64), String> = BTreeMap::new();
        let mut queries = 0;
        let top: BTreeSet<Option<u64>> =
            d["panels"].as_array().into_iter().flatten().map(|p| p["id"].as_u64()).collect();
        for p in panels(d) {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            let kind = p["type"].as_str().unwrap_or_default();
            if !p["id"].is_u64() || !ids.insert(p["id"].as_u64()) {
                bad(format!("panel {title:?}: id {} missing or not unique", p["id"]));
            }
            let g = &p["gridPos"];
            let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| g[k].as_i64().unwrap_or(-1));
            if x < 0 || y < 0 || w <= 0 || h <= 0 || x + w > 24 {
                bad(format!("panel {title:?}: bad gridPos {g}"));
            } else if top.contains(&p["id"].as_u64()) {
                // Panels inside a collapsed row take no room until it opens.
                for cx in x..x + w {
                    for cy in y..y + h {
                        if let Some(other) = cells.insert((cx, cy), title.clone()) {
                            bad(format!("panels {other:?} and {title:?} overlap at ({cx}, {cy})"));
                        }
                    }
                }
            }
            if title.is_empty() {
                bad(format!("panel {} has no title", p["id"]));
            }
            if kind == "row" {
                continue;
            }
            if !required.contains(kind) {
                bad(format!("panel {title:?}: panel type {kind:?} is not in __requires"));
            }
            if !ds_ok(&p["datasource"]) {
                bad(format!("panel {title:?}: data source {}", p["datasource"]));
            }
            let targets = p["targets"].as_array().cloned().unwrap_or_default();
            if targets.is_empty() {
                bad(format!("panel {title:?} has no query"));
            }
            let mut refs = BTreeSet::new();
            for t in &targets {
                queries += 1;
                if !ds_ok(&t["datasource"]) {
                    bad(format!("panel {title:?}: target data source {}", t["datasource"]));
                }
                if !t["refId"].is_string() || !refs.insert(t["refId"].as_str()) {
                    bad(format!("panel {title:?}: refId {} missing or repeated", t["refId"]));
                }
                if t["expr"].as_str().unwrap_or_default().trim().is_empty() {
                    bad(format!("panel {title:?}: a target without an expression"));
                }
            }
        }
        if queries == 0 {
            bad("no queries".into());
        }
    }
    assert!(problems.is_empty(), "dashboards that would not import cleanly:\n{}", problems.join("\n"));
}

#[test]
fn every_selector_filters_on_the_sensor_variable() {
    let queries = panel_queries(&dashboards_dir());
    assert!(queries.len() >= 40, "only {} queries", queries.len());
    let want = (SENSOR_MATCHER.0.to_string(), SENSOR_MATCHER.1.to_string(), SENSOR_MATCHER.2.to_string());
    let mut problems = Vec::new();
    for q in &queries {
        let parsed = parse(&q.expr);
        for s in &parsed.selectors {
            if !s.matchers.contains(&want) {
                problems.push(format!(
                    "{} / {}: {} lacks sensor=~\"$sensor\" in {}",
                    q.dashboard, q.panel, s.metric, q.expr
                ));
            }
        }
        // Only the device dashboard has a device variable.
        if q.expr.contains("$device") && q.dashboard != "camwatch-device" {
            problems.push(format!("{} / {}: $device outside the device dashboard", q.dashboard, q.panel));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_query_uses_documented_metrics_and_labels() {
    let docs = documented_metrics();
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for q in panel_queries(&dashboards_dir()) {
        for p in check_expr(&q.expr, &docs) {
            problems.push(format!("{} / {}: {p}: {}", q.dashboard, q.panel, q.expr));
        }
        used.extend(parse(&q.expr).selectors.into_iter().map(|s| s.metric));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The dashboards cover what the sensor reports about itself and about the estate.
    for m in [
        "camwatch_device_info",
        "camwatch_device_firmware_vulnerable",
        "camwatch_alerts_active",
        "camwatch_capture_dropped_packets_total",
        "camwatch_alert_delivery_backlog",
        "camwatch_queue_depth",
        "camwatch_evidence_captures_total",
    ] {
        assert!(used.contains(m), "no dashboard shows {m}");
    }
}

#[test]
fn the_query_checks_catch_mistakes() {
    let docs = documented_metrics();
    let bad = |e: &str| check_expr(e, &docs);
    assert!(
        bad(r#"sum by (result) (increase(camwatch_rules_reloads_total{sensor=~"$sensor"}[5m]))"#).is_empty()
    );
    assert_eq!(bad(r#"camwatch_no_such_metric{sensor=~"$sensor"}"#).len(), 1);
    assert_eq!(bad(r#"camwatch_rules_reloads_total{sensor=~"$sensor",reason="failure"}"#).len(), 1);
    assert_eq!(bad(r#"sum by (reason) (camwatch_rules_reloads_total{sensor=~"$sensor"})"#).len(), 1);
    assert_eq!(bad(r#"rate(camwatch_flows_active{sensor=~"$sensor"}[1m])"#).len(), 1);
    assert_eq!(bad("vector(0)").len(), 1);
    let p = parse(r#"a{x="1"} * on(sensor, device) group_left() b or vector(0)"#);
    let metrics: Vec<&str> = p.selectors.iter().map(|s| s.metric.as_str()).collect();
    assert_eq!(metrics, ["a", "b"]);
    assert_eq!(p.grouping, ["device", "sensor"].map(String::from).into());
}

#[test]
fn panel_queries_walk_rows_and_skip_hidden_targets() {
    let dir = tempfile::tempdir().unwrap();
    let target = |expr: &str, hide: bool| json!({"refId": "A", "expr": expr, "hide": hide});
    let d = json!({"panels": [
        {"type": "stat", "title": "top", "targets": [target("a", false), target("hidden", true)]},
        {"type": "row", "title": "collapsed", "collapsed": true, "panels": [
            {"type": "timeseries", "title": "inner", "targets": [target("b", false), target("c", false)]}
        ]},
        {"type": "text", "title": "no queries"}
    ]});
    std::fs::write(dir.path().join("x.json"), d.to_string()).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a dashboard").unwrap();
    let got: Vec<(String, String, String)> =
        panel_queries(dir.path()).into_iter().map(|q| (q.dashboard, q.panel, q.expr)).collect();
    let want = [("x", "top", "a"), ("x", "inner", "b"), ("x", "inner", "c")]
        .map(|(d, p, e)| (d.to_string(), p.to_string(), e.to_string()));
    assert_eq!(got, want);
}

#[test]
fn substitution_leaves_no_grafana_variables() {
    assert_eq!(
        substitute(
            r#"sum(rate(m{sensor=~"$sensor",device="${device}"}[$__rate_interval])) + increase(m[$__range]) + x[$__interval]"#,
            "s1",
            "10.0.0.1"
        ),
        r#"sum(rate(m{sensor=~"s1",device="10.0.0.1"}[1m])) + increase(m[5m]) + x[15s]"#
    );
    for q in panel_queries(&dashboards_dir()) {
        let e = substitute(&q.expr, ".*", "192.0.2.1");
        assert!(!e.contains('$'), "{} / {}: {e}", q.dashboard, q.panel);
    }
}

fn promtool(args: &[&str]) {
    let out = Command::new(util::tool("promtool")).args(args).current_dir(util::root()).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {} failed:\n{text}", args.join(" "));
    assert!(text.contains("SUCCESS"), "promtool {}:\n{text}", args.join(" "));
}

#[test]
fn promtool_checks_the_alerting_rules() {
    promtool(&["check", "rules", "dashboards/prometheus-alerts.yaml"]);
}

#[test]
fn promtool_passes_the_alerting_rules_tests() {
    promtool(&["test", "rules", "dashboards/prometheus-alerts.test.yaml"]);
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_alerting_rule_is_documented_tested_and_uses_documented_metrics() {
    let dir = dashboards_dir();
    let rules = yaml(&dir.join("prometheus-alerts.yaml"));
    let tests = yaml(&dir.join("prometheus-alerts.test.yaml"));
    let docs = documented_metrics();
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let mut names = BTreeSet::new();
    let mut problems = Vec::new();
    for rule in rules["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()) {
        let name = rule["alert"].as_str().unwrap().to_string();
        if !names.insert(name.clone()) {
            problems.push(format!("{name} twice"));
        }
        if !["critical", "warning", "info"].contains(&rule["labels"]["severity"].as_str().unwrap_or("")) {
            problems.push(format!("{name}: severity {}", rule["labels"]["severity"]));
        }
        for a in ["summary", "description", "runbook"] {
            if rule["annotations"][a].as_str().unwrap_or("").trim().is_empty() {
                problems.push(format!("{name}: no {a} annotation"));
            }
        }
        for p in check_expr(rule["expr"].as_str().unwrap(), &docs) {
            problems.push(format!("{name}: {p}"));
        }
        if !readme.contains(&name) {
            problems.push(format!("{name} is not in dashboards/README.md"));
        }
        // A case where it fires and one where it stays quiet.
        let cases: Vec<&Value> = tests["tests"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t["alert_rule_test"].as_array().unwrap())
            .filter(|c| c["alertname"] == json!(name))
            .collect();
        let fires = cases.iter().any(|c| c["exp_alerts"].as_array().is_some_and(|a| !a.is_empty()));
        let quiet = cases.iter().any(|c| c["exp_alerts"].as_array().is_none_or(Vec::is_empty));
        if !fires || !quiet {
            problems.push(format!("{name}: tests where it fires: {fires}, where it stays quiet: {quiet}"));
        }
    }
    for want in [
        "CamwatchSensorDown",
        "CamwatchNoPackets",
        "CamwatchCaptureDrops",
        "CamwatchDecodeErrors",
        "CamwatchAlertDeliveryFailing",
        "CamwatchRulesReloadFailing",
    ] {
        if !names.contains(want) {
            problems.push(format!("no {want} rule"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
