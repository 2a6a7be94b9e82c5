//! The daemon as a library function: `camwatch run` calls [`run`] with the resolved config and a
//! [`Shutdown`]; a test can do the same. Rules reload on SIGHUP and when a rules file changes on
//! disk; active DNS resolves the rules' listed names; sinks deliver from the journal.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::analysis::active_dns::{names, resolve, resolver};
use crate::capture::Source;
use crate::detect::RuleSet;
use crate::model::labels::ResultLabels;
use crate::runtime::config::Config;
use crate::runtime::pipeline::{Outputs, Sensor, Summary};
use crate::runtime::shutdown::Shutdown;
use crate::telemetry::metrics::Metrics;

/// The daemon: captures from `interfaces` (besides the config's) and `read` files, serves
/// `/metrics`, raises and delivers alerts, and reloads rules on SIGHUP or when a rules file
/// changes, until `shutdown` is triggered (SIGINT and SIGTERM trigger it). With only files it
/// keeps serving after they end. Returns once the pipeline has drained and the sinks have made
/// their last attempt.
pub async fn run(
    cfg: Config,
    rule_paths: Vec<PathBuf>,
    extra_interfaces: &[String],
    read: &[PathBuf],
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let mut interfaces = cfg.capture.interfaces.clone();
    interfaces.extend(extra_interfaces.iter().cloned());
    anyhow::ensure!(
        !interfaces.is_empty() || !read.is_empty(),
        "nothing to capture: give --interface IF or --read FILE"
    );
    let rules = load_rules(&rule_paths)?;
    let metrics = Arc::new(Metrics::new(&cfg.sensor));
    let listener = crate::telemetry::server::bind(cfg.outputs.listen).await?;
    let addr = listener.local_addr()?;
    // Read before privileges drop: the key may be readable by root only.
    let web = match &cfg.outputs.web_config {
        Some(path) => crate::telemetry::web::WebConfig::load(path)?,
        None => crate::telemetry::web::WebConfig::default(),
    };
    let tls = web.acceptor().map_err(|e| {
        anyhow::anyhow!("{}: {e:#}", cfg.outputs.web_config.as_deref().unwrap_or(Path::new("")).display())
    })?;
    let auth = web.auth();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let sources = Source::open_all(&interfaces, read, &cfg.capture)?;
    if let Some(user) = &cfg.user {
        crate::runtime::privileges::drop_to(user)?;
    }
    let outputs = Outputs {
        alerts: cfg.outputs.alerts.clone(),
        events: cfg.outputs.events.clone(),
        log_alerts: true,
        state: cfg.outputs.state.clone(),
        evidence: cfg.evidence.enabled.then(|| cfg.evidence.clone()),
    };
    let sensor = Arc::new(Sensor::new(cfg, rules, metrics.clone()).map_err(anyhow::Error::msg)?);
    // Sinks deliver from the journal, so they need one; they start before the first alert.
    let sinks_stop = Shutdown::new();
    let sinks = if sensor.config.sinks.sink_names().is_empty() {
        Vec::new()
    } else {
        let journal = outputs.alerts.clone().ok_or_else(|| {
            anyhow::anyhow!("sinks deliver from the alert journal: set outputs.alerts (or --alerts)")
        })?;
        if let Some(dir) = journal.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::os::unix::fs::OpenOptionsExt::mode(std::fs::OpenOptions::new().create(true).append(true), 0o640)
            .open(&journal)?;
        crate::sink::spawn(
            &sensor.config.sinks,
            journal,
            sensor.config.sensor.clone(),
            Arc::new(metrics.sinks.clone()),
            sensor.journal_written.clone(),
            sinks_stop.subscribe(),
        )?
    };
    spawn_signals(sensor.clone(), rule_paths.clone(), shutdown.clone())?;
    spawn_rules_watch(sensor.clone(), rule_paths);
    if sensor.config.active_dns.enabled {
        start_active_dns(sensor.clone()).await?;
    }

    let server_stop = shutdown.clone();
    let journal = outputs.alerts.clone();
    let view = match (sensor.config.outputs.web_view, &outputs.state) {
        (false, _) => None,
        (true, None) => {
            anyhow::bail!("the web view reads the state database: set outputs.state (or --state)")
        }
        (true, Some(state)) => {
            let s = sensor.clone();
            Some(crate::telemetry::view::WebView {
                state: state.clone(),
                journal: outputs.alerts.clone(),
                events: outputs.events.clone(),
                evidence: outputs.evidence.as_ref().map(|e| e.dir.clone()),
                site: sensor.devices.clone(),
                rules: Arc::new(move || Some(s.rules.load_full())),
            })
        }
    };
    let with_view = view.is_some();
    let server = tokio::spawn(async move {
        let app = crate::telemetry::server::with_auth(
            crate::telemetry::server::router(metrics, journal, view),
            auth,
        );
        crate::telemetry::server::serve(listener, app, tls, async move { server_stop.wait().await }).await
    });
    tracing::info!(
        alerts = ?outputs.alerts, events = ?outputs.events,
        "Serving metrics on {scheme}://{addr}/metrics."
    );
    if with_view {
        tracing::info!("Serving the read-only web view on {scheme}://{addr}/ui/.");
    }

    let (s, st) = (sensor.clone(), shutdown.clone());
    let summary =
        tokio::task::spawn_blocking(move || s.run(sources, &outputs, st.flag(), &AtomicU64::new(0)))
            .await??;
    report_errors(&summary);
    if !shutdown.is_triggered() {
        tracing::info!(
            packets = summary.packets,
            flows = summary.flows,
            devices = summary.devices,
            alerts = summary.alerts.values().sum::<u64>(),
            "Capture files done; still serving metrics until stopped (Ctrl-C)."
        );
        shutdown.wait().await;
    }
    let _ = server.await;
    // The journal is complete: the sinks make a last attempt, bounded by their grace period.
    sinks_stop.trigger();
    for h in sinks {
        let _ = h.await;
    }
    tracing::info!("Stopped.");
    Ok(())
}

pub fn load_rules(paths: &[PathBuf]) -> anyhow::Result<RuleSet> {
    let rules = RuleSet::load(paths)?;
    tracing::info!(rules = rules.rules.len(), files = rules.files.len(), "Rules loaded.");
    Ok(rules)
}

/// Reloads the rules when a rules file changes on disk (checked every two seconds).
fn spawn_rules_watch(sensor: Arc<Sensor>, rule_paths: Vec<PathBuf>) {
    sensor.rules_fingerprint.store(RuleSet::fingerprint(&rule_paths), Ordering::SeqCst);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            if RuleSet::fingerprint(&rule_paths) != sensor.rules_fingerprint.load(Ordering::SeqCst) {
                tracing::info!("Rules changed on disk; reloading.");
                reload(&sensor, &rule_paths);
            }
        }
    });
}

/// Active DNS: a first round of lookups (bounded by `startup_wait`) before capture starts, then
/// refreshes as answers expire, for the plain names in the current rules' lists.
async fn start_active_dns(sensor: Arc<Sensor>) -> anyhow::Result<()> {
    let cfg = sensor.config.active_dns.clone();
    let resolver = Arc::new(resolver(&cfg)?);
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    let startup_wait = cfg.startup_wait;
    tokio::spawn(async move {
        let mut due: std::collections::HashMap<String, std::time::Instant> = Default::default();
        let mut first = Some(first_tx);
        loop {
            let now = std::time::Instant::now();
            let wanted = names(sensor.rules.load().lists.values().flatten(), cfg.max_names);
            due.retain(|n, _| wanted.contains(n));
            let mut set = tokio::task::JoinSet::new();
            for name in wanted.into_iter().filter(|n| due.get(n).is_none_or(|t| *t <= now)) {
                let r = resolver.clone();
                set.spawn(async move { (resolve(&r, &name).await, name) });
            }
            let (mut ok, mut failed) = (0u64, 0u64);
            while let Some(Ok((answer, name))) = set.join_next().await {
                let next = match answer {
                    Some(a) => {
                        ok += 1;
                        let wait = Duration::from_secs(u64::from(a.ttl)).max(cfg.min_refresh);
                        let _ = sensor.resolved.0.try_send(a);
                        wait
                    }
                    None => {
                        failed += 1;
                        cfg.min_refresh
                    }
                };
                due.insert(name, std::time::Instant::now() + next);
            }
            let m = &sensor.metrics.app.active_dns_lookups;
            m.get_or_create(&ResultLabels { result: "ok" }).inc_by(ok);
            m.get_or_create(&ResultLabels { result: "error" }).inc_by(failed);
            if let Some(tx) = first.take() {
                tracing::info!(resolved = ok, failed, "Active DNS: listed names resolved.");
                let _ = tx.send(());
            }
            tokio::time::sleep(cfg.min_refresh.min(Duration::from_secs(60))).await;
        }
    });
    let _ = tokio::time::timeout(startup_wait, first_rx).await;
    Ok(())
}

/// Triggers `shutdown` on SIGINT/SIGTERM; on SIGHUP reopens the output files and reloads rules.
pub fn spawn_signals(
    sensor: Arc<Sensor>,
    rule_paths: Vec<PathBuf>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
                _ = hup.recv() => {
                    // logrotate's postrotate: every output file reopens its path at its next
                    // write or flush (within a second).
                    crate::output::request_reopen();
                    tracing::info!("SIGHUP: output files reopen; rules reload.");
                    reload(&sensor, &rule_paths);
                    continue;
                }
            }
            tracing::info!("Stopping: draining the pipeline and flushing outputs.");
            shutdown.trigger();
        }
    });
    Ok(())
}

fn reload(sensor: &Sensor, paths: &[PathBuf]) {
    // Whatever the outcome, these files have been tried: the watcher waits for the next edit.
    sensor.rules_fingerprint.store(RuleSet::fingerprint(paths), Ordering::SeqCst);
    match RuleSet::load(paths) {
        Ok(rules) => {
            tracing::info!(rules = rules.rules.len(), "Rules reloaded.");
            sensor.swap_rules(rules);
            sensor.metrics.detect.rules_reloads.get_or_create(&ResultLabels { result: "success" }).inc();
        }
        Err(e) => {
            tracing::error!("Rules reload rejected, the running rules stay active: {e}");
            sensor.metrics.detect.rules_reloads.get_or_create(&ResultLabels { result: "failure" }).inc();
        }
    }
}

pub fn report_errors(summary: &Summary) {
    for e in &summary.errors {
        tracing::error!("{e}");
    }
}
