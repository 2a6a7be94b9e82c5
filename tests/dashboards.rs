//! The Grafana dashboards (`dashboards/*.json`) and the Prometheus alerting rules for the sensor
//! (`dashboards/prometheus-alerts.yaml`): every dashboard is importable and provisionable as
//! shipped (its data source is the `datasource` variable, nothing is wired to one Grafana's data
//! source), every query filters on the `sensor` variable and uses only documented metrics and
//! labels, every alert links its runbook, promtool accepts the rules and passes their unit tests,
//! and the documented examples of the metrics endpoint use the default listen port.
//! `panel_queries` and `substitute` are shared with the end-to-end test that runs every query
//! against a Prometheus that scraped camwatch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::util;

/// The dashboards' uids; each is also its file name (`<uid>.json`).
const UIDS: [&str; 4] = ["camwatch-overview", "camwatch-device", "camwatch-firmware", "camwatch-sensor"];

/// What every panel, target and query variable names as its data source: the dashboard's own
/// `datasource` variable, so the files work provisioned from disk as well as imported in the UI.
const DS_UID: &str = "${datasource}";

/// The data source of Grafana's built-in "Annotations & Alerts" annotation, the one data source
/// reference that is not the variable (Grafana's own, present in every instance, and re-added by
/// Grafana when missing).
const BUILT_IN_ANNOTATION_DS: (&str, &str) = ("grafana", "-- Grafana --");

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
        // The data source is the `datasource` variable; an import-time data-source input would
        // make the import dialog ask for a data source that nothing uses.
        for i in d["__inputs"].as_array().into_iter().flatten() {
            if i["type"] == "datasource" {
                bad(format!("a data-source input in __inputs, unused with the datasource variable: {i}"));
            }
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

/// Every place a data source is named in `dashboard`, and the problems with them: a value under a
/// `datasource` key must be `{"type": "prometheus", "uid": "${datasource}"}` (a string there is the
/// legacy form naming a data source), except on Grafana's built-in annotation; no `${DS_…}`
/// import input is referenced anywhere; and every link to another dashboard carries the data
/// source along (data links with `${datasource:queryparam}`, dashboard links with their variables).
/// Returns (references seen, problems).
fn data_source_problems(dashboard: &Value) -> (usize, Vec<String>) {
    /// `annotation` says `v` is an entry of `annotations.list`.
    fn walk(v: &Value, path: &str, annotation: bool, seen: &mut usize, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                let builtin = annotation && map.get("builtIn") == Some(&json!(1));
                for (k, x) in map {
                    let here = format!("{path}.{k}");
                    if k == "datasource" {
                        *seen += 1;
                        let want = if builtin {
                            json!({"type": BUILT_IN_ANNOTATION_DS.0, "uid": BUILT_IN_ANNOTATION_DS.1})
                        } else {
                            json!({"type": "prometheus", "uid": DS_UID})
                        };
                        if !(x.is_object() && x["type"] == want["type"] && x["uid"] == want["uid"]) {
                            out.push(format!("{here} is {x}, not {want}"));
                        }
                    }
                    if let Some(u) = x.as_str().filter(|u| k == "url" && u.starts_with("/d/")) {
                        if !u.contains("${datasource:queryparam}") {
                            out.push(format!("{here}: the link {u:?} drops the data source"));
                        }
                    }
                    walk(x, &here, false, seen, out);
                }
            }
            Value::Array(items) => {
                for (i, x) in items.iter().enumerate() {
                    walk(x, &format!("{path}[{i}]"), path == ".annotations.list", seen, out);
                }
            }
            Value::String(s) if s.contains("${DS_") || s.contains("$DS_") => {
                out.push(format!("{path} refers to an import input: {s:?}"));
            }
            _ => {}
        }
    }
    let mut seen = 0;
    let mut out = Vec::new();
    walk(dashboard, "", false, &mut seen, &mut out);
    for l in dashboard["links"].as_array().into_iter().flatten() {
        if l["type"] == "dashboards" && l["includeVars"] != true {
            out.push(format!("the dashboard link {} does not carry the variables", l["title"]));
        }
    }
    (seen, out)
}

#[test]
fn every_dashboard_takes_its_data_source_from_the_datasource_variable() {
    let mut problems = Vec::new();
    for (name, d) in dashboards(&dashboards_dir()) {
        let vars = d["templating"]["list"].as_array().cloned().unwrap_or_default();
        let ds: Vec<&Value> = vars.iter().filter(|v| v["name"] == "datasource").collect();
        match ds.as_slice() {
            [v] => {
                // First, so the picker comes first and the variables below can use it. `current`
                // is Grafana's "default", the org's default data source: with none (`{}`) Grafana
                // opens on the first Prometheus data source by name instead.
                if !(v["type"] == "datasource"
                    && v["query"] == "prometheus"
                    && v["label"] == "Data source"
                    && v["multi"] != true
                    && v["includeAll"] != true
                    && v["hide"] == 0
                    && v["current"]["value"] == "default"
                    && v["current"]["text"] == "default"
                    && v["datasource"].is_null()
                    && vars[0]["name"] == "datasource")
                {
                    problems.push(format!(
                        "{name}: the datasource variable is not the first variable, a visible \
                         single-value Prometheus data-source picker starting on the default: {v}"
                    ));
                }
            }
            other => problems.push(format!("{name}: {} variables named datasource", other.len())),
        }
        let (seen, found) = data_source_problems(&d);
        // The built-in annotation, the variables but `datasource`, every panel and target name one.
        if seen < vars.len() + 2 * panel_queries_of(&d) {
            problems.push(format!("{name}: only {seen} data-source references"));
        }
        problems.extend(found.into_iter().map(|p| format!("{name}: {p}")));
    }
    assert!(problems.is_empty(), "dashboards wired to a data source:\n{}", problems.join("\n"));
}

/// How many panels with queries `dashboard` has.
fn panel_queries_of(dashboard: &Value) -> usize {
    panels(dashboard).iter().filter(|p| p["targets"].as_array().is_some_and(|t| !t.is_empty())).count()
}

#[test]
fn the_data_source_check_catches_wired_data_sources() {
    let ds = json!({"type": "prometheus", "uid": DS_UID});
    let ok = json!({
        "annotations": {"list": [
            {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "type": "dashboard"}
        ]},
        "links": [{"type": "dashboards", "includeVars": true}],
        "templating": {"list": [{"name": "sensor", "datasource": ds}]},
        "panels": [{"datasource": ds, "targets": [{"datasource": ds}], "fieldConfig": {"defaults": {"links": [
            {"url": "/d/camwatch-device/x?${datasource:queryparam}&var-device=${__data.fields.device}"}
        ]}}}]
    });
    assert_eq!(data_source_problems(&ok), (4, vec![]));
    let broken = |pointer: &str, v: Value| {
        let mut d = ok.clone();
        *d.pointer_mut(pointer).unwrap() = v;
        data_source_problems(&d).1.len()
    };
    assert_eq!(broken("/panels/0/datasource/uid", json!("P1809F7CD0C75ACF3")), 1);
    assert_eq!(broken("/panels/0/targets/0/datasource", json!("Prometheus")), 1);
    assert_eq!(broken("/panels/0/targets/0/datasource/uid", json!("${DS_PROMETHEUS}")), 2);
    assert_eq!(broken("/templating/list/0/datasource/type", json!("loki")), 1);
    // Grafana's own data source only on its built-in annotation.
    assert_eq!(broken("/panels/0/datasource", json!({"type": "grafana", "uid": "-- Grafana --"})), 1);
    assert_eq!(broken("/annotations/list/0/builtIn", json!(0)), 1);
    assert_eq!(broken("/annotations/list/0/datasource/uid", json!("grafana")), 1);
    assert_eq!(
        broken("/panels/0/fieldConfig/defaults/links/0/url", json!("/d/camwatch-device/x?var-device=1")),
        1
    );
    assert_eq!(broken("/links/0/includeVars", json!(false)), 1);
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
        for a in ["summary", "description", "runbook_url"] {
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

// ------------------------------------------------------------------------------------------
// Runbooks.

/// GitHub's anchor for a Markdown heading: lower case, punctuation but `-` and `_` dropped,
/// spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || [' ', '-', '_'].contains(c))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of the headings of a Markdown document (outside code blocks).
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut code = false;
    let mut out = BTreeSet::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            code = !code;
        } else if !code && line.starts_with('#') {
            out.insert(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// Problems with the runbook annotations of the rules in `rules`: each alerting rule needs a
/// `runbook_url` (not the free-text `runbook`), an absolute https URL to `doc` (a path in the
/// repository) with an anchor that is one of `doc_anchors`; all of them share one base.
fn runbook_problems(rules: &Value, doc: &str, doc_anchors: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut bases = BTreeSet::new();
    let all = rules["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten());
    for rule in all.filter(|r| r["alert"].is_string()) {
        let name = rule["alert"].as_str().unwrap_or_default();
        let a = &rule["annotations"];
        if !a["runbook"].is_null() {
            problems.push(format!("{name}: a runbook annotation; the name integrations read is runbook_url"));
        }
        let Some(url) = a["runbook_url"].as_str() else {
            problems.push(format!("{name}: no runbook_url annotation"));
            continue;
        };
        if !url.starts_with("https://") || url.contains(char::is_whitespace) || url.contains("{{") {
            problems.push(format!("{name}: runbook_url {url:?} is not an absolute https URL"));
        }
        let (page, fragment) = url.split_once('#').unwrap_or((url, ""));
        match page.strip_suffix(doc) {
            Some(base) if base.ends_with('/') => {
                bases.insert(base.to_string());
            }
            _ => problems.push(format!("{name}: runbook_url {url:?} does not point at {doc}")),
        }
        if fragment.is_empty() || !doc_anchors.contains(fragment) {
            problems.push(format!("{name}: runbook_url {url:?}: {doc} has no heading #{fragment}"));
        }
    }
    if bases.len() > 1 {
        problems.push(format!("runbook URLs with different bases: {bases:?}"));
    }
    problems
}

#[test]
fn every_alerting_rule_links_its_runbook() {
    let dir = dashboards_dir();
    let rules = yaml(&dir.join("prometheus-alerts.yaml"));
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let doc_anchors = anchors(&readme);
    let problems = runbook_problems(&rules, "dashboards/README.md", &doc_anchors);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Each alert has a section of its own, not just some anchor.
    for rule in rules["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()) {
        let name = rule["alert"].as_str().unwrap();
        let url = rule["annotations"]["runbook_url"].as_str().unwrap();
        assert!(
            url.ends_with(&format!("#{}", anchor(name))),
            "{name}: runbook_url {url} is not its own section"
        );
    }
    // promtool compares every annotation, so the tests must expect runbook_url too.
    let tests = std::fs::read_to_string(dir.join("prometheus-alerts.test.yaml")).unwrap();
    assert!(!tests.contains("runbook:"), "prometheus-alerts.test.yaml still expects a runbook annotation");
}

#[test]
fn the_runbook_check_catches_mistakes() {
    let doc_anchors = anchors("# T\n\n## Runbooks\n\n### CamwatchX\n\n```sh\n# not a heading\n```\n");
    assert_eq!(doc_anchors, ["t", "runbooks", "camwatchx"].map(String::from).into());
    assert_eq!(anchor("Importing the dashboards"), "importing-the-dashboards");
    let rules = |annotations: Value| {
        json!({"groups": [{"rules": [
            {"record": "x:y", "expr": "1"},
            {"alert": "CamwatchX", "expr": "1", "annotations": annotations}
        ]}]})
    };
    let check = |a: Value| runbook_problems(&rules(a), "dashboards/README.md", &doc_anchors).len();
    let good = "https://github.com/camwatch/camwatch/blob/main/dashboards/README.md#camwatchx";
    assert_eq!(check(json!({"runbook_url": good})), 0);
    assert_eq!(check(json!({"runbook": "Check the service."})), 2);
    assert_eq!(check(json!({"runbook_url": good, "runbook": "Check the service."})), 1);
    assert_eq!(check(json!({"runbook_url": good.replace("https", "http")})), 1);
    assert_eq!(check(json!({"runbook_url": "dashboards/README.md#camwatchx"})), 2);
    assert_eq!(check(json!({"runbook_url": good.replace("#camwatchx", "#camwatchy")})), 1);
    assert_eq!(check(json!({"runbook_url": good.replace("#camwatchx", "")})), 1);
    assert_eq!(check(json!({"runbook_url": good.replace("README.md", "docs.md")})), 1);
}

// ------------------------------------------------------------------------------------------
// Example ports of the metrics endpoint.

/// An address of camwatch's endpoint in an example: where, what, and its port.
#[derive(Debug, PartialEq)]
struct Example {
    line: usize,
    address: String,
    port: u16,
}

/// The addresses (`host:port`) of camwatch's metrics endpoint that the Markdown `text` gives as
/// examples: in URLs of `/metrics`, `/healthz` and `/alerts/…`; anywhere in a prose sentence,
/// table row or code line about the endpoint (one that mentions listening, `/metrics`,
/// `/healthz`, scraping, `external_url` or an `instance`); and the targets of a scrape job whose
/// name contains camwatch. Port 0 (`--listen 127.0.0.1:0`, a free port) is not an example.
fn endpoint_examples(text: &str) -> Vec<Example> {
    let addr =
        regex::Regex::new(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):([0-9]{1,5})\b")
            .unwrap();
    let url =
        regex::Regex::new(r"https?://(\[[^\]]+\]|[^/\s:\[\]]+):([0-9]+)/(metrics|healthz|alerts)\b").unwrap();
    let sentence_end = regex::Regex::new(r"[.;!?](\s|$)").unwrap();
    let about = |s: &str| {
        let s = s.to_lowercase();
        ["listen", "/metrics", "/healthz", "metrics on", "scrape", "external_url", "instance"]
            .iter()
            .any(|k| s.contains(k))
    };
    // Byte ranges of `text`: code lines, table rows and prose sentences, each with whether it is
    // about the endpoint.
    let mut spans: Vec<(usize, usize, bool)> = Vec::new();
    let sentences = |(start, end): (usize, usize), spans: &mut Vec<(usize, usize, bool)>| {
        let mut from = start;
        for m in sentence_end.find_iter(&text[start..end]) {
            let to = start + m.end();
            spans.push((from, to, about(&text[from..to])));
            from = to;
        }
        if from < end {
            spans.push((from, end, about(&text[from..end])));
        }
    };
    let mut paragraph: Option<(usize, usize)> = None;
    let (mut code, mut job) = (false, String::new());
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let (start, end) = (pos, pos + line.len());
        pos = end;
        let trimmed = line.trim();
        let fence = trimmed.starts_with("```");
        let row = !code && trimmed.starts_with('|');
        if code || fence || row || trimmed.is_empty() {
            if let Some(p) = paragraph.take() {
                sentences(p, &mut spans);
            }
        }
        if fence {
            code = !code;
            job.clear();
        } else if code {
            let item = trimmed.trim_start_matches("- ");
            if let Some(j) = item.strip_prefix("job_name:") {
                job = j.split('#').next().unwrap_or_default().trim().trim_matches(['"', '\'']).to_string();
            }
            let target = item.starts_with("targets:") && job.contains("camwatch");
            spans.push((start, end, target || about(line)));
        } else if row {
            spans.push((start, end, about(line)));
        } else if !trimmed.is_empty() {
            paragraph = Some((paragraph.map_or(start, |p| p.0), end));
        }
    }
    if let Some(p) = paragraph.take() {
        sentences(p, &mut spans);
    }
    let mut out = Vec::new();
    for (start, end, is_about) in spans {
        let re = if is_about { &addr } else { &url };
        for c in re.captures_iter(&text[start..end]) {
            let at = start + c.get(0).map_or(0, |m| m.start());
            let port: u16 = c[2].parse().unwrap_or(u16::MAX);
            if port != 0 {
                out.push(Example {
                    line: text[..at].matches('\n').count() + 1,
                    address: format!("{}:{}", &c[1], &c[2]),
                    port,
                });
            }
        }
    }
    out
}

/// camwatch's default metrics address, from its configuration type.
fn default_listen() -> std::net::SocketAddr {
    camwatch::runtime::config::Config::default().outputs.listen
}

#[test]
fn every_example_of_the_metrics_endpoint_uses_the_default_port() {
    let default = default_listen();
    let port = default.port();
    assert_ne!(port, 0);
    let root = util::root();
    let mut files = vec![root.join("README.md"), dashboards_dir().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut problems = Vec::new();
    let mut counts = BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let rel = f.strip_prefix(&root).unwrap_or(f).display().to_string();
        let examples = endpoint_examples(&text);
        for e in &examples {
            if e.port != port {
                problems.push(format!(
                    "{rel}:{}: {} is not port {port} (the default {default})",
                    e.line, e.address
                ));
            }
        }
        counts.insert(rel, examples.len());
    }
    // The examples the documents are known to have: the demo URL, the defaults and the alert
    // sink's external_url in the README; the default, the scrape targets and the health check in
    // the dashboards' README. A change that drops them all would check nothing.
    assert!(counts["README.md"] >= 3, "examples found: {counts:?}");
    assert!(counts["dashboards/README.md"] >= 4, "examples found: {counts:?}");
    let readme = std::fs::read_to_string(dashboards_dir().join("README.md")).unwrap();
    let scrape = readme.lines().filter(|l| l.trim_start().starts_with("- targets:")).count();
    assert!(scrape >= 1, "dashboards/README.md has no scrape example");
    // The documented default is the configuration's.
    let default_text = default.to_string();
    for f in ["README.md", "dashboards/README.md"] {
        let text = std::fs::read_to_string(root.join(f)).unwrap();
        assert!(text.contains(&default_text), "{f} does not give the default address {default_text}");
    }

    // The rules' tests: the instance of every scraped camwatch series.
    let instance = regex::Regex::new(r#"instance="[^"]*:([0-9]+)""#).unwrap();
    let tests = yaml(&dashboards_dir().join("prometheus-alerts.test.yaml"));
    let mut series = 0;
    for t in tests["tests"].as_array().unwrap() {
        for s in t["input_series"].as_array().into_iter().flatten() {
            let s = s["series"].as_str().unwrap_or_default();
            if !s.contains(r#"job="camwatch""#) {
                continue;
            }
            for c in instance.captures_iter(s) {
                series += 1;
                if c[1].parse::<u16>().ok() != Some(port) {
                    problems.push(format!("prometheus-alerts.test.yaml: {s} is not on port {port}"));
                }
            }
        }
    }
    assert!(series > 0, "no camwatch series with an instance in prometheus-alerts.test.yaml");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_port_check_finds_the_examples() {
    let text = r#"# Title

Served at <http://127.0.0.1:9477/metrics>; Alertmanager at alertmanager:9093.

Metrics on `127.0.0.1:9477`. `--listen 127.0.0.1:0` picks a free port and
the default is `localhost:9999`.

| alert | check |
|---|---|
| down | `curl http://sensor:9898/healthz` |
| other | `siem.example:6514` |

```yaml
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["host:9100"]
  - job_name: camwatch-sensors
    static_configs:
      - targets: ["sensor-1:9477", "[2001:db8::1]:9898"]
sinks:
  alertmanager:
    urls: ["http://alertmanager-a:9093"]
    external_url: "http://camwatch.site-a:9477"
outputs:
  listen: 0.0.0.0:9477
```
"#;
    let got: Vec<(usize, String)> =
        endpoint_examples(text).into_iter().map(|e| (e.line, e.address)).collect();
    // Not the Alertmanager, syslog or node exporter addresses, nor the free port.
    let want = [
        (3, "127.0.0.1:9477"),
        (5, "127.0.0.1:9477"),
        (6, "localhost:9999"),
        (10, "sensor:9898"),
        (20, "sensor-1:9477"),
        (20, "[2001:db8::1]:9898"),
        (24, "camwatch.site-a:9477"),
        (26, "0.0.0.0:9477"),
    ]
    .map(|(l, a)| (l, a.to_string()));
    assert_eq!(got, want);
}
