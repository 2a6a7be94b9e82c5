//! The estate review read back from what a run kept: the HTML report rendered in headless
//! Chromium, a device's timeline and its hand-over bundle (checked with `sha256sum -c`), MUD
//! files, and the read-only web view in a real browser behind TLS and basic authentication.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use camwatch_synth::Anomalies;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::browser::Browser;
use crate::util::{
    bin, daemon_cmd, generated, read_jsonl, replay_cmd, rules_dir, run, text, tool, Daemon, Generated,
};

/// A replay of a generated site with every anomaly, keeping state, journal, events and evidence.
struct Kept {
    g: Generated,
    state: PathBuf,
    alerts: PathBuf,
    events: PathBuf,
    evidence: PathBuf,
}

fn kept(seed: u64) -> Kept {
    let g = generated(seed, Anomalies::all());
    let d = g.dir.path().to_path_buf();
    let k = Kept {
        state: d.join("state.db"),
        alerts: d.join("alerts.jsonl"),
        events: d.join("events.jsonl"),
        evidence: d.join("evidence"),
        g,
    };
    let o = run(replay_cmd()
        .arg("-q")
        .arg(&k.g.pcap)
        .arg("--state")
        .arg(&k.state)
        .arg("--alerts")
        .arg(&k.alerts)
        .arg("--events")
        .arg(&k.events)
        .arg("--evidence")
        .arg(&k.evidence));
    assert!(o.status.success(), "{}", text(&o.stderr));
    k
}

/// `camwatch <sub> --state … --alerts … --rules …` plus `args`; the output on success.
fn review(k: &Kept, sub: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = bin();
    cmd.arg(sub).arg("--state").arg(&k.state).arg("--alerts").arg(&k.alerts).arg("--rules").arg(rules_dir());
    cmd.args(args);
    run(&mut cmd)
}

fn ok(o: std::process::Output) -> String {
    assert!(o.status.success(), "exit {:?}: {}", o.status, text(&o.stderr));
    text(&o.stdout)
}

fn browser(insecure: bool) -> Browser {
    assert!(Browser::available(), "chromium and chromedriver are not installed: run scripts/setup");
    let b = if insecure { Browser::start_accepting_any_certificate() } else { Browser::start() };
    b.unwrap_or_else(|e| panic!("{e}"))
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// Cameras the generator made by a vendor Section 889 names, and the others.
fn cameras(g: &Generated) -> (BTreeSet<String>, BTreeSet<String>) {
    let (listed, other): (Vec<_>, Vec<_>) = g
        .truth
        .devices
        .iter()
        .filter(|d| d.role == "camera")
        .partition(|d| d.vendor == "Hikvision" || d.vendor == "Dahua");
    (listed.iter().map(|d| d.ip.to_string()).collect(), other.iter().map(|d| d.ip.to_string()).collect())
}

/// The report as a reader sees it in Chromium: the banned vendors' cameras highlighted, the
/// camera with vulnerable firmware marked, every flow to the internet listed with the bytes
/// the generator sent, charts drawn, and nothing fetched from anywhere.
#[test]
fn the_estate_report_shows_a_reader_banned_vendors_vulnerable_firmware_and_the_internet() {
    let k = kept(51);
    let dir = k.g.dir.path();
    let (listed, other) = cameras(&k.g);
    // A model name is whatever the device (or anyone on the network) says it is.
    let hostile = "<img src=x onerror=\"document.title='pwned'\">";
    {
        let mut store = camwatch::store::Store::open(&k.state).unwrap();
        let mut devices = store.load().unwrap();
        let d = devices.iter_mut().find(|d| other.contains(&d.ip.to_string())).unwrap();
        d.identity.model.as_mut().unwrap().value = hostile.to_string();
        store.save(devices.iter()).unwrap();
    }
    let html = dir.join("report.html");
    ok(review(&k, "report", &["--out", html.to_str().unwrap()]));
    let json: Value =
        serde_json::from_str(&ok(review(&k, "report", &["--out", "-", "--format", "json"]))).unwrap();
    let md = ok(review(&k, "report", &["--out", "-", "--format", "md"]));

    assert!(!listed.is_empty() && !other.is_empty(), "the scenario needs both kinds of camera");
    let vulnerable: Vec<String> =
        k.g.truth
            .events
            .iter()
            .filter(|e| e.kind == "vulnerable_firmware")
            .map(|e| e.device.to_string())
            .collect();
    assert_eq!(vulnerable.len(), 1);

    let b = browser(false);
    b.open(&format!("file://{}", html.display())).unwrap();
    assert_eq!(b.title().unwrap(), "Camera estate review");
    // The hostile name is shown as text, not run.
    assert_eq!(b.count("img").unwrap(), 0);
    assert!(b.text("#table-devices").unwrap().contains(hostile));
    assert!(!md.contains("<img"), "{md}");
    let rows = b.texts("#table-devices tbody tr.listed").unwrap();
    for ip in &listed {
        assert!(rows.iter().any(|r| r.starts_with(&format!("{ip} "))), "{ip} not highlighted in {rows:#?}");
    }
    for ip in &other {
        assert!(
            !rows.iter().any(|r| r.starts_with(&format!("{ip} "))),
            "{ip} (not a listed vendor) highlighted"
        );
    }
    let n_listed = json["summary"]["listed"].as_u64().unwrap();
    assert_eq!(b.text("#card-listed .n").unwrap(), n_listed.to_string());
    assert!(n_listed as usize >= listed.len());
    assert!(md.contains(&format!("**{n_listed} from vendors named in NDAA §889**")), "{md}");

    // The camera the generator gave a version in the CVE-2017-7921 range.
    let all_rows = b.texts("#table-devices tbody tr").unwrap();
    let row = all_rows.iter().find(|r| r.starts_with(&format!("{} ", vulnerable[0]))).unwrap();
    assert!(row.contains("vulnerable") && row.contains("CVE-2017-7921"), "{row}");
    assert_eq!(b.text("#card-vulnerable .n").unwrap(), "1");

    // Every flow to a public address, with the bytes the generator put on the wire.
    let external = b.texts("#table-external tbody tr").unwrap();
    for e in &k.g.truth.egress {
        assert!(
            external
                .iter()
                .any(|r| r.starts_with(&format!("{} ", e.device)) && r.contains(&e.dest.to_string())),
            "{} → {} missing from {external:#?}",
            e.device,
            e.dest
        );
    }
    let mut carried: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for f in
        k.g.truth
            .flows
            .iter()
            .filter(|f| k.g.truth.egress.iter().any(|e| e.device == *f.src.ip() && e.dest == *f.dst.ip()))
    {
        let e = carried.entry((f.src.ip().to_string(), f.dst.ip().to_string())).or_default();
        e.0 += f.bytes_fwd;
        e.1 += f.bytes_rev;
    }
    let mut compared = 0;
    for row in json["external"].as_array().unwrap() {
        let key =
            (row["device"].as_str().unwrap().to_string(), row["destination"].as_str().unwrap().to_string());
        let want = carried
            .get(&key)
            .unwrap_or_else(|| panic!("{key:?} is in the report but not the generator's egress"));
        assert_eq!(
            (row["bytes_sent"].as_u64().unwrap(), row["bytes_received"].as_u64().unwrap()),
            *want,
            "{key:?}"
        );
        compared += 1;
    }
    assert_eq!(compared, carried.len());
    // Charts: one bar per vendor, traffic columns, and the class of peer legend.
    let vendors = json["vendors"].as_array().unwrap().len();
    assert_eq!(b.count("svg#chart-vendors rect.bar").unwrap(), vendors);
    assert!(b.count("svg#chart-traffic rect.bar.external").unwrap() >= 1);
    assert!(b.displayed("svg#chart-traffic").unwrap());
    // Cloud features: the generator's cloud anomalies raise alerts of category cloud.
    assert!(b.count("#table-cloud tbody tr").unwrap() >= 1);
    // Self-contained: the page fetched nothing.
    let fetched = b.script("return performance.getEntriesByType('resource').length").unwrap();
    assert_eq!(fetched, Value::from(0));
    let png = b.screenshot_png().unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "screenshot of {} bytes", png.len());
}

/// A camera's night: the timeline is ordered and complete (state, event log and journal), a
/// window narrows it, the MAC finds the same device, and the bundle verifies with
/// `sha256sum -c`, and fails to when a file is changed; evidence changed since its alert is
/// reported as a mismatch.
#[test]
fn a_device_timeline_is_ordered_and_its_bundle_verifies_with_sha256sum() {
    let k = kept(52);
    let journal = read_jsonl(&k.alerts);
    // The device with the most alerts that carry evidence.
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for a in journal.iter().filter(|a| a["status"] == "firing" && a["evidence"]["pcap"].is_string()) {
        *per.entry(a["device"]["ip"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let (device, _) = per.iter().max_by_key(|(_, n)| **n).unwrap();
    let events = k.events.to_str().unwrap();
    let t: Value = serde_json::from_str(&ok(review(
        &k,
        "investigate",
        &["--device", device, "--events", events, "--format", "json"],
    )))
    .unwrap();
    let items = t["items"].as_array().unwrap();
    let times: Vec<String> = items.iter().map(|i| i["timestamp"].as_str().unwrap().to_string()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "not ordered");
    let kinds: BTreeSet<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    for k in ["first_seen", "identity", "firmware", "destination", "alert"] {
        assert!(kinds.contains(k), "no {k} item in {kinds:?}");
    }
    assert!(items.iter().any(|i| i["source"] == "event log"), "nothing from the event log");
    let ids: BTreeSet<&str> = journal
        .iter()
        .filter(|a| a["status"] == "firing" && a["device"]["ip"] == device.as_str())
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    let shown: BTreeSet<&str> =
        items.iter().filter(|i| i["kind"] == "alert").map(|i| i["details"]["id"].as_str().unwrap()).collect();
    assert_eq!(shown, ids);

    // A window of two seconds around one alert holds it and nothing outside the window.
    let alert = items.iter().find(|i| i["kind"] == "alert").unwrap();
    let at = camwatch::review::estate::parse_time(alert["timestamp"].as_str().unwrap()).unwrap();
    let since = camwatch::model::time::rfc3339(at - 1_000_000);
    let until = camwatch::model::time::rfc3339(at + 1_000_000);
    let w: Value = serde_json::from_str(&ok(review(
        &k,
        "investigate",
        &["--device", device, "--events", events, "--since", &since, "--until", &until, "--format", "json"],
    )))
    .unwrap();
    let witems = w["items"].as_array().unwrap();
    assert!(witems.iter().any(|i| i["details"]["id"] == alert["details"]["id"]));
    assert!(witems.len() < items.len());
    for i in witems {
        let ts = i["timestamp"].as_str().unwrap();
        assert!(ts >= since.as_str() && ts <= until.as_str(), "{ts} outside {since}..{until}");
    }
    // The MAC names the same device.
    let mac = t["device"]["mac"].as_str().unwrap();
    let by_mac: Value =
        serde_json::from_str(&ok(review(&k, "investigate", &["--device", mac, "--format", "json"]))).unwrap();
    assert_eq!(by_mac["device"]["ip"], device.as_str());

    // The bundle.
    let bundle = k.g.dir.path().join("bundle");
    let o = review(
        &k,
        "investigate",
        &["--device", device, "--events", events, "--export", bundle.to_str().unwrap()],
    );
    ok(o);
    let sums =
        Command::new(tool("sha256sum")).arg("-c").arg("SHA256SUMS").current_dir(&bundle).output().unwrap();
    assert!(sums.status.success(), "{}{}", text(&sums.stdout), text(&sums.stderr));
    let listed = text(&sums.stdout);
    let pcaps: Vec<_> =
        std::fs::read_dir(bundle.join("evidence")).unwrap().map(|e| e.unwrap().path()).collect();
    let wanted: BTreeSet<&str> = items
        .iter()
        .filter_map(|i| i["evidence"]["pcap"].as_str())
        .map(|p| Path::new(p).file_name().unwrap().to_str().unwrap())
        .collect();
    assert_eq!(pcaps.len(), wanted.len());
    for p in &pcaps {
        let name = format!("evidence/{}: OK", p.file_name().unwrap().to_str().unwrap());
        assert!(listed.contains(&name), "{name} not verified: {listed}");
    }
    for f in ["timeline.json", "timeline.html", "timeline.txt", "README.txt"] {
        assert!(listed.contains(&format!("{f}: OK")), "{f} not in the manifest");
    }
    let readme = std::fs::read_to_string(bundle.join("README.txt")).unwrap();
    assert_eq!(readme.matches("verified against the alert's SHA-256").count(), wanted.len(), "{readme}");
    // The bundle's own timeline links its copies.
    let page = std::fs::read_to_string(bundle.join("timeline.html")).unwrap();
    assert!(page.contains("href=\"evidence/"), "no relative evidence links");
    // A changed file fails the manifest.
    let first = &pcaps[0];
    let mut bytes = std::fs::read(first).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(first, &bytes).unwrap();
    let sums =
        Command::new(tool("sha256sum")).arg("-c").arg("SHA256SUMS").current_dir(&bundle).output().unwrap();
    assert!(!sums.status.success(), "a changed pcap passed: {}", text(&sums.stdout));

    // Evidence changed on the sensor since its alert: the export says so and fails.
    let name = first.file_name().unwrap();
    let original = k.evidence.join(name);
    let mut bytes = std::fs::read(&original).unwrap();
    bytes[last] ^= 0xff;
    std::fs::write(&original, &bytes).unwrap();
    let again = k.g.dir.path().join("bundle2");
    let o = review(&k, "investigate", &["--device", device, "--export", again.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("MISMATCH"), "{}", text(&o.stderr));
    assert!(std::fs::read_to_string(again.join("README.txt")).unwrap().contains("MISMATCH"));
    // An existing, non-empty directory is refused.
    let o = review(&k, "investigate", &["--device", device, "--export", again.to_str().unwrap()]);
    assert!(!o.status.success());
    assert_ne!(sha256(&again.join("README.txt")), "");
}

/// The read-only web view: off by default; when on, behind the endpoint's TLS and basic
/// authentication, a browser sees the estate, follows a device to its timeline, and downloads
/// an alert's evidence byte for byte; anything but GET is refused.
#[test]
fn the_web_view_in_a_browser_behind_tls_and_basic_auth() {
    let g = generated(53, Anomalies::all());
    let d = g.dir.path();
    let (ca, cert, key) = crate::e2e::tls_files(d);
    let hash = bcrypt::hash("view-secret", 4).unwrap();
    std::fs::write(
        d.join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  soc: '{hash}'\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let (alerts, state, events, evidence) =
        (d.join("alerts.jsonl"), d.join("state.db"), d.join("events.jsonl"), d.join("evidence"));
    let mut cw = Daemon::start(
        daemon_cmd()
            .arg("--read")
            .arg(&g.pcap)
            .args(["--alerts", alerts.to_str().unwrap(), "--state", state.to_str().unwrap()])
            .args(["--events", events.to_str().unwrap(), "--evidence", evidence.to_str().unwrap()])
            .arg("--web-view")
            .arg("--web.config.file")
            .arg(d.join("web.yml")),
    );
    let line = cw.wait_for("Serving metrics on https://", Duration::from_secs(60));
    let addr = line[line.find("https://").unwrap() + 8..line.find("/metrics").unwrap()].to_string();
    cw.wait_for("Capture files done", Duration::from_secs(120));
    let base = format!("https://{addr}");

    // Without the password: nothing. With it: the page. Not GET: refused.
    let get = |path: &str, auth: bool| {
        crate::e2e::https_get(&format!("{base}{path}"), &ca, auth.then_some(("soc", "view-secret")))
    };
    assert_eq!(get("/ui/", false).map(|r| r.0), Some(401));
    let (status, body) = get("/ui/", true).unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("Camera estate review"));
    assert_eq!(
        crate::e2e::https_request("POST", &format!("{base}/ui/"), &ca, ("soc", "view-secret")),
        Some(405)
    );
    assert_eq!(get("/ui/evidence/..%2f..%2fetc%2fpasswd", true).map(|r| r.0), Some(404));
    assert_eq!(get("/ui/devices/203.0.113.254", true).map(|r| r.0), Some(404));
    assert_eq!(get("/ui/devices/x?since=%C3%A9%C3%A9%C3%A9", true).map(|r| r.0), Some(400));
    // Evidence is served from inside the evidence directory only: not a journal record naming
    // a file elsewhere, not a link inside the directory that leads out.
    std::os::unix::fs::symlink("/etc/passwd", evidence.join("cafecafe.pcap")).unwrap();
    {
        use std::io::Write;
        let mut j = std::fs::OpenOptions::new().append(true).open(&alerts).unwrap();
        for (id, pcap) in [
            ("deadbeef", "/etc/passwd".to_string()),
            ("cafecafe", evidence.join("cafecafe.pcap").display().to_string()),
        ] {
            writeln!(j, r#"{{"id":"{id}","status":"firing","timestamp":"2026-01-01T00:00:00Z","rule":{{"id":"x"}},"evidence":{{"pcap":"{pcap}"}}}}"#).unwrap();
        }
    }
    assert_eq!(get("/ui/evidence/deadbeef", true).map(|r| r.0), Some(404));
    assert_eq!(get("/ui/evidence/cafecafe", true).map(|r| r.0), Some(404));

    let journal = read_jsonl(&alerts);
    let alert =
        journal.iter().find(|a| a["status"] == "firing" && a["evidence"]["pcap"].is_string()).unwrap();
    let device = alert["device"]["ip"].as_str().unwrap();
    let id = alert["id"].as_str().unwrap();

    let b = browser(true);
    b.open_with_basic_auth(&format!("{base}/ui/"), "soc", "view-secret").unwrap();
    assert_eq!(b.title().unwrap(), "Camera estate review");
    let (listed, _) = cameras(&g);
    let rows = b.texts("#table-devices tbody tr.listed").unwrap();
    assert!(listed.iter().all(|ip| rows.iter().any(|r| r.starts_with(&format!("{ip} ")))), "{rows:#?}");
    // Follow the device's link to its timeline.
    b.click(&format!("#table-devices a[href='/ui/devices/{device}']")).unwrap();
    b.wait_for("#table-timeline", Duration::from_secs(30)).unwrap();
    assert_eq!(b.title().unwrap(), format!("Device {device}"));
    let timeline = b.text("#table-timeline").unwrap();
    assert!(timeline.contains(alert["summary"].as_str().unwrap()), "{timeline}");
    let href = b.attr(&format!("a.evidence[href='/ui/evidence/{id}']"), "href").unwrap();
    assert!(href.is_some(), "no evidence link for {id}");
    // The alerts page links the same evidence.
    b.click("nav a[href='/ui/alerts']").unwrap();
    b.wait_for("#table-alerts", Duration::from_secs(30)).unwrap();
    assert_eq!(
        b.count("#table-alerts tbody tr").unwrap(),
        journal.iter().filter(|a| a["status"] == "firing").count()
    );
    drop(b);

    // The download is the evidence file, byte for byte.
    let pcap =
        crate::e2e::https_bytes(&format!("{base}/ui/evidence/{id}"), &ca, ("soc", "view-secret")).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&pcap)), alert["evidence"]["sha256"].as_str().unwrap());
    let (status, _) = cw.stop();
    assert!(status.success());
}

/// MUD files for a device and for a model hold what the device used, and yanglint accepts them
/// against RFC 8520's and RFC 8519's YANG modules (kept in tests/data/yang).
#[test]
fn mud_files_hold_the_destinations_used_and_validate_against_the_rfc_yang() {
    let k = kept(54);
    let egress = &k.g.truth.egress[0];
    let device = egress.device.to_string();
    let url = "https://mud.example.org/camera.json";
    let mud: Value =
        serde_json::from_str(&ok(review(&k, "mud", &["--device", &device, "--url", url]))).unwrap();
    assert_eq!(mud["ietf-mud:mud"]["mud-url"], url);
    let text_of = mud.to_string();
    // A destination with a name is matched by name, one without by address.
    let store = camwatch::store::Store::open(&k.state).unwrap();
    let devices = store.load().unwrap();
    let dev = devices.iter().find(|d| d.ip.to_string() == device).unwrap();
    let entry = &dev.destinations[&std::net::IpAddr::V4(egress.dest)];
    let expected = match &entry.name {
        Some(n) => format!("\"ietf-acldns:dst-dnsname\":\"{n}\""),
        None => format!("\"destination-ipv4-network\":\"{}/32\"", egress.dest),
    };
    assert!(text_of.contains(&expected), "{expected} not in {text_of}");
    assert!(text_of.contains(&format!("\"port\":{}", egress.dest_port)), "{text_of}");
    let model = mud["ietf-mud:mud"]["model-name"].as_str().unwrap().to_string();
    let by_model: Value =
        serde_json::from_str(&ok(review(&k, "mud", &["--model", &model, "--url", url]))).unwrap();
    let dir = k.g.dir.path();
    for (name, doc) in [("device.json", &mud), ("model.json", &by_model)] {
        let path = dir.join(name);
        std::fs::write(&path, serde_json::to_string_pretty(doc).unwrap()).unwrap();
        let (ok_, out) = crate::yang::validate_mud(&path);
        assert!(ok_, "{name}: {out}");
    }
    // The YANG does not bound mud-version: RFC 8520 says 1.
    assert_eq!(mud["ietf-mud:mud"]["mud-version"], 1);
    // The validator is not a rubber stamp: an action the ACL module does not define, an unknown
    // key, a policy naming a list that does not exist.
    let acl = "ietf-access-control-list:acls";
    let mut broken = [mud.clone(), mud.clone(), mud.clone()];
    broken[0][acl]["acl"][0]["aces"]["ace"][0]["actions"]["forwarding"] = Value::from("allow");
    broken[1]["ietf-mud:mud"]["vendor-cloud"] = Value::from(true);
    broken[2]["ietf-mud:mud"]["from-device-policy"]["access-lists"]["access-list"][0]["name"] =
        Value::from("nope");
    for (i, b) in broken.iter().enumerate() {
        let path = dir.join(format!("broken-{i}.json"));
        std::fs::write(&path, b.to_string()).unwrap();
        assert!(!crate::yang::validate_mud(&path).0, "broken file {i} accepted: {b}");
    }
}
