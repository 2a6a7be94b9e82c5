//! The shipped rule packs on the generated camera network: each anomaly raises its rules, on the
//! right device, and a clean network raises none.

use std::collections::BTreeMap;

use camwatch_synth::Anomalies;
use std::process::Command;

use serde_json::Value;

use crate::replay::replay;
use crate::util::*;

fn by_rule(alerts: &[Value]) -> BTreeMap<String, Vec<&Value>> {
    let mut m: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for a in alerts {
        m.entry(a["rule"]["id"].as_str().unwrap().to_string()).or_default().push(a);
    }
    m
}

#[test]
fn shipped_packs_fire_on_the_anomalies_and_only_there() {
    let g = generated(31, Anomalies::all());
    let t = &g.truth;
    let r = replay(&g.pcap, g.dir.path(), &["-q"]);
    let rules = by_rule(&r.alerts);
    let hik_cloud = t.egress.iter().find(|e| e.kind == "cloud" && e.dest_port == 8666).unwrap();
    let dahua_cloud = t.egress.iter().find(|e| e.kind == "cloud" && e.dest_port == 8800).unwrap();
    let one = |id: &str| -> &Value {
        let v = rules.get(id).unwrap_or_else(|| panic!("{id} did not fire: {:?}", rules.keys()));
        assert_eq!(v.len(), 1, "{id}: {v:?}");
        v[0]
    };
    let device = |a: &Value| a["device"]["ip"].as_str().unwrap().to_string();

    for id in ["hikvision-cloud-lookup", "hikvision-cloud-connection", "hikvision-cloud-tls"] {
        let a = one(id);
        assert_eq!(device(a), hik_cloud.device.to_string(), "{id}");
        assert_eq!(a["category"], "cloud");
        assert_eq!(a["device"]["vendor"], "Hikvision");
    }
    assert_eq!(one("hikvision-cloud-connection")["dest_name"], "litedev.hik-connect.com");
    for id in ["dahua-cloud-lookup", "dahua-cloud-connection"] {
        assert_eq!(device(one(id)), dahua_cloud.device.to_string(), "{id}");
    }

    let inject = one("exploit-cve-2021-36260");
    assert_eq!(inject["src_ip"], "192.168.10.50", "the attack came from inside the camera network");
    assert_eq!(inject["device"]["vendor"], "Hikvision");
    assert_eq!(inject["rule"]["severity"], "critical");
    assert!(inject["rule"]["references"].as_array().unwrap().iter().any(|r| r == "CVE-2021-36260"));
    assert!(
        inject["evidence"]["values"]["http.url"].as_str().is_some_and(|u| u.contains("/SDK/webLanguage")),
        "{}",
        inject["evidence"]
    );
    let bypass = one("exploit-cve-2017-7921");
    assert_eq!(bypass["src_ip"], "198.51.100.66");
    assert_eq!(bypass["device"]["vendor"], "Hikvision");

    let up = &t.firmware_uploads[0];
    let changed = one("firmware-changed");
    assert_eq!(device(changed), up.device.to_string());
    assert_eq!(changed["device"]["firmware"], up.new_version.as_str());
    let unapproved = one("firmware-image-unapproved");
    assert_eq!(device(unapproved), up.device.to_string());
    assert_eq!(
        unapproved["evidence"]["values"]["firmware.sha256"],
        up.sha256.as_str(),
        "the image's hash travels"
    );
    assert_eq!(changed["evidence"]["values"]["firmware.version"], up.new_version.as_str());
    // The site names no management host or firmware server, so both transfers are unexpected.
    let pushed = one("firmware-upload-unexpected-host");
    assert_eq!(
        (device(pushed), pushed["src_ip"].as_str()),
        (up.device.to_string(), Some(up.from.to_string().as_str()))
    );
    let tftp = &t.tftp_downloads[0];
    let fetched = one("firmware-download-unexpected-host");
    assert_eq!(
        (device(fetched), fetched["dest_ip"].as_str()),
        (tftp.device.to_string(), Some(tftp.from.to_string().as_str()))
    );

    // The anomalies the generator adds beyond those, each on the device its truth names.
    let event =
        |kind: &str| t.events.iter().find(|e| e.kind == kind).unwrap_or_else(|| panic!("no {kind} in truth"));
    let on = |id: &str, kind: &str| assert_eq!(device(one(id)), event(kind).device.to_string(), "{id}");
    for (id, kind) in [
        ("behaviour-remote-shell", "telnet"),
        ("firmware-downgraded", "downgrade"),
        ("hikvision-sadp-cloud-enabled", "cloud_enabled"),
        ("hikvision-ezviz-enabled", "cloud_enabled"),
        ("hikvision-firmware-cve-2017-7921", "vulnerable_firmware"),
        ("firmware-image-unapproved-download", "tftp_firmware"),
    ] {
        on(id, kind);
    }
    for id in ["exploit-cve-2021-33044", "exploit-cve-2021-33045"] {
        on(id, "dahua_exploit");
        assert_eq!(one(id)["src_ip"], "192.168.10.50");
    }
    let expected = [
        "egress-outside-allowed",
        "hikvision-cloud-lookup",
        "hikvision-cloud-connection",
        "hikvision-cloud-tls",
        "dahua-cloud-lookup",
        "dahua-cloud-connection",
        "exploit-cve-2021-36260",
        "exploit-cve-2017-7921",
        "exploit-cve-2021-33044",
        "exploit-cve-2021-33045",
        "firmware-changed",
        "firmware-downgraded",
        "firmware-image-unapproved",
        "firmware-image-unapproved-download",
        "firmware-upload-unexpected-host",
        "firmware-download-unexpected-host",
        "behaviour-remote-shell",
        "hikvision-sadp-cloud-enabled",
        "hikvision-ezviz-enabled",
        "hikvision-firmware-cve-2017-7921",
    ];
    // camera-to-camera needs the site's `cameras` network (rules/tests/behaviour.yaml covers it).
    let unexpected: Vec<&String> = rules.keys().filter(|k| !expected.contains(&k.as_str())).collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
}

#[test]
fn a_clean_camera_network_raises_no_alert_from_any_pack() {
    let g = generated(37, Anomalies::default());
    let r = replay(&g.pcap, g.dir.path(), &["-q"]);
    assert!(r.alerts.is_empty(), "{:?}", by_rule(&r.alerts).keys());
}

#[test]
fn an_approved_image_is_not_alerted() {
    let g = generated(31, Anomalies::all());
    let rules = g.dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    for f in ["firmware.yaml", "site.yaml"] {
        std::fs::copy(rules_dir().join(f), rules.join(f)).unwrap();
    }
    let hashes = rules.join("approved.txt");
    std::fs::write(&hashes, format!("# approved by change 1234\n{}\n", g.truth.firmware_uploads[0].sha256))
        .unwrap();
    std::fs::write(
        rules.join("approved.yaml"),
        "lists:\n  approved_firmware_hashes: { file: approved.txt }\n",
    )
    .unwrap();
    let r = replay(&g.pcap, g.dir.path(), &["-q", "--rules", rules.to_str().unwrap()]);
    let ids: Vec<&str> = r.alerts.iter().map(|a| a["rule"]["id"].as_str().unwrap()).collect();
    assert!(!ids.contains(&"firmware-image-unapproved"), "{ids:?}");
    assert!(ids.contains(&"firmware-changed"), "{ids:?}");
}

#[test]
fn the_packs_own_test_cases_pass() {
    let out = run(bin().args(["rules", "test", "--require-coverage"]).arg(rules_dir()));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(!stdout.contains("FAIL"), "{stdout}");
    let cases = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(cases >= 20, "{stdout}");
    assert!(
        !stdout.contains("no case"),
        "every shipped rule fires in one case and stays quiet in another: {stdout}"
    );
}

#[test]
fn the_destination_baseline_survives_a_restart() {
    use camwatch_synth::{generate, write_pcap, Scenario};
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let day_one = Scenario { seed: 41, duration_secs: 90, ..Scenario::default() };
    let day_three = Scenario {
        anomalies: Anomalies { egress: true, ..Anomalies::default() },
        start_unix: day_one.start_unix + 2 * 86_400,
        ..day_one
    };
    let (a, b) = (dir.path().join("a.pcap"), dir.path().join("b.pcap"));
    write_pcap(&a, &generate(&day_one)).unwrap();
    let later = generate(&day_three);
    write_pcap(&b, &later).unwrap();
    let state_arg = state.to_str().unwrap();

    let first = replay(&a, dir.path(), &["-q", "--state", state_arg]);
    assert!(first.alerts.is_empty(), "{:?}", by_rule(&first.alerts).keys());
    // A restart later: the same cameras, one new destination.
    let second = replay(&b, dir.path(), &["-q", "--state", state_arg]);
    let rules = by_rule(&second.alerts);
    let new = rules.get("behaviour-new-destination").unwrap_or_else(|| panic!("{:?}", rules.keys()));
    assert_eq!(new.len(), 1, "{new:?}");
    let egress = &later.truth.egress[0];
    assert_eq!(new[0]["device"]["ip"], egress.device.to_string());
    assert_eq!(new[0]["dest_ip"], egress.dest.to_string());
    // Without the state, every device is new and still learning.
    let fresh = replay(&b, dir.path(), &["-q"]);
    assert!(!fresh.alerts.iter().any(|a| a["rule"]["id"] == "behaviour-new-destination"));
}

/// The committed JSON Schema is what the code generates, and an independent validator
/// (Python's `jsonschema`, installed by scripts/setup) accepts every shipped pack with it and
/// rejects a misspelt key.
#[test]
fn the_json_schema_is_current_and_validates_the_packs() {
    let out = run(bin().args(["rules", "schema"]));
    assert!(out.status.success());
    let committed = std::fs::read_to_string(rules_dir().join("schema.json")).unwrap();
    assert_eq!(
        text(&out.stdout),
        committed,
        "rules/schema.json is stale: run `camwatch rules schema > rules/schema.json`"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "rules:\n  - id: x\n    name: x\n    severity: high\n    category: egress\n    match: { event: flow, wher: {} }\n").unwrap();
    let script = r#"
import sys, json, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
bad = 0
for path in sys.argv[2:]:
    try:
        jsonschema.validate(yaml.safe_load(open(path)) or {}, schema)
        print("valid", path)
    except jsonschema.ValidationError as e:
        print("invalid", path, e.message)
"#;
    let mut packs: Vec<std::path::PathBuf> = Vec::new();
    for sub in [rules_dir(), rules_dir().join("vendors")] {
        for e in std::fs::read_dir(sub).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                packs.push(p);
            }
        }
    }
    assert!(packs.len() >= 7);
    // Debian's python3, where scripts/setup installs python3-jsonschema and python3-yaml.
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3".into()
    } else {
        tool("python3")
    };
    let out = run(Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(rules_dir().join("schema.json"))
        .args(&packs)
        .arg(&bad));
    let report = text(&out.stdout);
    assert!(out.status.success(), "{report}{}", text(&out.stderr));
    for p in &packs {
        assert!(report.lines().any(|l| l == format!("valid {}", p.display())), "{report}");
    }
    assert!(report.lines().any(|l| l.starts_with(&format!("invalid {}", bad.display()))), "{report}");
}

#[test]
fn a_cloud_lookup_alert_names_the_name_looked_up() {
    let g = generated(43, Anomalies { cloud: true, ..Anomalies::default() });
    let r = replay(&g.pcap, g.dir.path(), &["-q"]);
    let lookup = r.alerts.iter().find(|a| a["rule"]["id"] == "hikvision-cloud-lookup").unwrap();
    assert_eq!(lookup["dest_name"], "litedev.hik-connect.com");
    assert!(lookup["summary"].as_str().unwrap().contains("(litedev.hik-connect.com)"), "{lookup}");
}

/// The EVE `alert.signature_id` of each shipped rule is its own: SIEM searches on it must not
/// mix two rules.
#[test]
fn every_shipped_rule_has_its_own_signature_id() {
    let set = camwatch::detect::RuleSet::load(&[rules_dir()]).unwrap_or_else(|e| panic!("{e}"));
    let mut seen = BTreeMap::new();
    for r in &set.rules {
        let sid = camwatch::output::signature_id(&r.id);
        assert!((9_000_000..9_900_000).contains(&sid));
        if let Some(other) = seen.insert(sid, r.id.clone()) {
            panic!("{} and {} share signature_id {sid}", other, r.id);
        }
    }
    assert!(seen.len() >= 60, "{} rules", seen.len());
}
