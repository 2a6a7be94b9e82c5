//! `camwatch rules test`: the test cases shipped beside each pack (`rules/tests/*.yaml`), run
//! through the real pipeline: a capture (generated, or a file) and the alerts expected of it.
//!
//! ```yaml
//! cases:
//!   - name: Hik-Connect lookup and connection
//!     capture: { synth: { seed: 7, anomalies: [cloud] } }   # or { file: some.pcap }
//!     expect: { hikvision-cloud-lookup: 1, hikvision-cloud-connection: 1 }
//!     absent: [dahua-cloud-lookup]          # must not fire
//!     only: false                           # true: no rule outside `expect` may fire
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use serde::Deserialize;

use crate::capture::Source;
use crate::detect::RuleSet;
use crate::model::yaml::{read_yaml, FileError};
use crate::runtime::config::Config;
use crate::runtime::pipeline::{Outputs, Sensor};
use crate::telemetry::metrics::Metrics;
use camwatch_synth::{generate, write_pcap, Anomalies, Scenario};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    #[serde(default)]
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub capture: Capture,
    /// Rule id → number of alerts expected.
    #[serde(default)]
    pub expect: BTreeMap<String, u64>,
    /// Rules that must not fire.
    #[serde(default)]
    pub absent: Vec<String>,
    /// No rule outside `expect` may fire.
    #[serde(default)]
    pub only: bool,
    /// Site networks for this case (as a site file would define them), e.g. `cameras`.
    #[serde(default)]
    pub networks: BTreeMap<String, Vec<String>>,
    /// The flow table's bound for this case (`flow.max_flows`), to test the sensor's own alerts.
    #[serde(default)]
    pub max_flows: Option<usize>,
}

/// Exactly one of `synth` (a generated camera network) or `file` (relative to the test file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    #[serde(default)]
    pub synth: Option<SynthSpec>,
    #[serde(default)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthSpec {
    pub seed: u64,
    #[serde(default)]
    pub anomalies: Vec<String>,
    #[serde(default)]
    pub cameras: Option<usize>,
    #[serde(default)]
    pub duration: Option<u64>,
    /// Size of the `upload` anomaly, bytes.
    #[serde(default)]
    pub upload_bytes: Option<usize>,
}

/// One case's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub file: PathBuf,
    pub case: String,
    pub failures: Vec<String>,
    pub alerts: BTreeMap<String, u64>,
}

/// Every case's outcome, and which rules no case fires or proves quiet.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
    pub never_fired: Vec<String>,
    pub never_quiet: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.outcomes.iter().all(|o| o.failures.is_empty())
    }
}

/// Loads the rules under `path` and runs the cases in `path/tests/`.
pub fn run(path: &Path) -> Result<Report, FileError> {
    let sources = RuleSet::read(&[path.to_path_buf()])?;
    let rules = RuleSet::compile(&sources)?;
    let dir = path.join(crate::detect::TESTS_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| FileError::new(&dir, format!("cannot list test cases: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    let known: BTreeSet<&str> = rules.rules.iter().map(|r| r.id.as_str()).collect();
    let mut report = Report::default();
    let mut fired = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for file in files {
        let tf: TestFile = read_yaml(&file)?;
        for case in tf.cases {
            for id in case.expect.keys().chain(case.absent.iter()) {
                if !known.contains(id.as_str()) {
                    return Err(FileError::new(&file, format!("case `{}`: unknown rule `{id}`", case.name)));
                }
            }
            let case_rules = if case.networks.is_empty() {
                rules.clone()
            } else {
                let site = serde_norway::to_string(&serde_json::json!({ "networks": case.networks }))
                    .map_err(|e| FileError::new(&file, e.to_string()))?;
                let mut with_site = sources.clone();
                with_site.push((file.clone(), site));
                RuleSet::compile(&with_site)?
            };
            let alerts = run_case(&file, &case, &case_rules)
                .map_err(|e| FileError::new(&file, format!("case `{}`: {e}", case.name)))?;

            let mut failures = Vec::new();
            for (id, want) in &case.expect {
                let got = alerts.get(id).copied().unwrap_or(0);
                if got != *want {
                    failures.push(format!("{id}: expected {want} alerts, got {got}"));
                }
                if *want > 0 {
                    fired.insert(id.clone());
                } else {
                    quiet.insert(id.clone());
                }
            }
            for id in &case.absent {
                quiet.insert(id.clone());
                if let Some(n) = alerts.get(id) {
                    failures.push(format!("{id}: must not fire, fired {n} times"));
                }
            }
            if case.only {
                for id in &known {
                    if !case.expect.contains_key(*id) {
                        quiet.insert((*id).to_string());
                    }
                }
                for (id, n) in &alerts {
                    if !case.expect.contains_key(id) {
                        failures.push(format!("{id}: not expected, fired {n} times"));
                    }
                }
            }
            report.outcomes.push(Outcome { file: file.clone(), case: case.name, failures, alerts });
        }
    }
    report.never_fired = known.iter().filter(|id| !fired.contains(**id)).map(|s| s.to_string()).collect();
    report.never_quiet = known.iter().filter(|id| !quiet.contains(**id)).map(|s| s.to_string()).collect();
    Ok(report)
}

fn run_case(file: &Path, case: &Case, rules: &RuleSet) -> Result<BTreeMap<String, u64>, String> {
    let mut generated = None;
    let pcap = match (&case.capture.file, &case.capture.synth) {
        (Some(p), None) => file.parent().unwrap_or(Path::new(".")).join(p),
        (None, Some(spec)) => {
            let anomalies = Anomalies::parse_list(&spec.anomalies.join(",")).map_err(|e| e.to_string())?;
            let mut scenario = Scenario { seed: spec.seed, anomalies, ..Scenario::default() };
            if let Some(c) = spec.cameras {
                scenario.cameras = c;
            }
            if let Some(d) = spec.duration {
                scenario.duration_secs = d;
            }
            if let Some(u) = spec.upload_bytes {
                scenario.upload_bytes = u;
            }
            let path = std::env::temp_dir().join(format!(
                "camwatch-rules-test-{}-{}.pcap",
                std::process::id(),
                spec.seed
            ));
            write_pcap(&path, &generate(&scenario)).map_err(|e| e.to_string())?;
            generated = Some(path.clone());
            path
        }
        _ => return Err("capture: give exactly one of `synth` or `file`".into()),
    };
    let result = (|| {
        let mut config = Config::default();
        if let Some(n) = case.max_flows {
            config.flow.max_flows = n;
        }
        let sensor = Sensor::new(config, rules.clone(), Arc::new(Metrics::new("rules-test")))?;
        let source = Source::file(&pcap).map_err(|e| e.to_string())?;
        let summary = sensor
            .run(vec![source], &Outputs::default(), &AtomicBool::new(false), &AtomicU64::new(0))
            .map_err(|e| e.to_string())?;
        if let Some(e) = summary.errors.first() {
            return Err(e.clone());
        }
        Ok(summary.alerts)
    })();
    if let Some(p) = generated {
        let _ = std::fs::remove_file(p);
    }
    result
}
