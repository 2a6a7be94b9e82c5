//! The `camwatch` command: parses flags, sets up logging, and calls the library.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use camwatch::capture::Source;
use camwatch::detect::RuleSet;
use camwatch::runtime::config::Config;
use camwatch::runtime::daemon;
use camwatch::runtime::pipeline::{Outputs, Sensor, Summary};
use camwatch::runtime::shutdown::Shutdown;
use camwatch::telemetry::metrics::Metrics;

#[derive(Parser)]
#[command(name = "camwatch", version, about = "Passive network monitor for IP CCTV estates")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr: `text` (colour only on a terminal) or `json` (one object a line,
    /// for journald and log shippers).
    #[arg(long, global = true, value_enum, default_value = "text", env = "CAMWATCH_LOG_FORMAT")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Logs to stderr, filtered by `CAMWATCH_LOG` (default `info`): plain text, coloured only when
/// stderr is a terminal and `NO_COLOR` is unset; or JSON lines.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAMWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
        LogFormat::Text => {
            let colour =
                std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder.with_ansi(colour).init();
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// The daemon: capture, analyse, serve /metrics and raise alerts until stopped.
    #[command(
        after_help = "Examples:\n  camwatch run --config /etc/camwatch/camwatch.yaml\n  camwatch run -i eth1 --listen 127.0.0.1:9477 --events var/events.jsonl --alerts var/alerts.jsonl\n  camwatch run -r site.pcap --listen 127.0.0.1:0\n\nSIGHUP reopens every output file (for logrotate); SIGINT and SIGTERM stop it cleanly."
    )]
    Run(RunArgs),
    /// Analyse capture files with the full pipeline and print a summary.
    #[command(
        after_help = "Examples:\n  camwatch replay capture.pcap\n  camwatch replay -q day1.pcapng day2.pcapng --events events.jsonl --alerts alerts.jsonl --state site.db\n  camwatch replay capture.pcap --metrics-out /var/lib/node_exporter/textfile/camwatch.prom"
    )]
    Replay(ReplayArgs),
    /// Work with rules files.
    #[command(
        after_help = "Examples:\n  camwatch rules check rules/ site-rules.yaml\n  camwatch rules test --require-coverage rules\n  camwatch rules schema > rules/schema.json"
    )]
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Write a synthetic camera-network capture (for demos, tests and benchmarks).
    #[command(
        after_help = "Examples:\n  camwatch synth --out demo.pcap --anomalies all\n  camwatch synth --out big.pcap --cameras 50 --duration 600 --truth truth.json"
    )]
    Synth(SynthArgs),
    /// List the devices in the state database: vendor, model, serial, firmware, destinations.
    #[command(
        after_help = "Examples:\n  camwatch inventory --state /var/lib/camwatch/camwatch.db\n  camwatch inventory --state var/camwatch.db --format csv > devices.csv"
    )]
    Inventory(InventoryArgs),
    /// One device's timeline: identity, firmware, addresses, destinations, events and alerts
    /// with their evidence, ordered by time; --export writes a hand-over bundle.
    #[command(
        after_help = "Examples:\n  camwatch investigate --device 192.168.10.11\n  camwatch investigate -c /etc/camwatch/camwatch.yaml --device e0:ca:3c:7d:fa:6c --since '2026-01-01 22:00' --until '2026-01-02 06:00'\n  camwatch investigate --device 192.168.10.11 --format html > camera.html\n  camwatch investigate --device 192.168.10.11 --export case-2026-117/ && (cd case-2026-117 && sha256sum -c SHA256SUMS)\n\nThe device is named by address (current or past), MAC, serial number or host name."
    )]
    Investigate(InvestigateArgs),
    /// The estate review: vendors under procurement bans, firmware against vulnerable ranges,
    /// destinations outside the site, cloud features, traffic charts (HTML, Markdown or JSON).
    #[command(
        after_help = "Examples:\n  camwatch report --out estate.html\n  camwatch report -c /etc/camwatch/camwatch.yaml --out review.md --format md\n  camwatch report --state var/camwatch.db --alerts var/alerts.jsonl --out - --format json | jq .summary"
    )]
    Report(ReportArgs),
    /// An RFC 8520 MUD file (ietf-mud and ietf-access-control-list JSON) from the destinations a
    /// device, or every device of a model, used while the sensor learned.
    #[command(
        after_help = "Examples:\n  camwatch mud --device 192.168.10.11 --url https://mud.example.org/lobby-cam.json > lobby-cam.json\n  camwatch mud --model DS-2CD2143G2-I --url https://mud.example.org/ds-2cd2143g2-i.json --until 2026-02-01"
    )]
    Mud(MudArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  camwatch completions bash > /etc/bash_completion.d/camwatch\n  camwatch completions zsh > \"${fpath[1]}/_camwatch\""
    )]
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff), generated from this command line's definition.
    #[command(after_help = "Examples:\n  camwatch man > camwatch.1 && man ./camwatch.1")]
    Man,
}

#[derive(Args)]
struct InventoryArgs {
    /// State database written by `run` or `replay --state`.
    #[arg(long, default_value = "var/camwatch.db")]
    state: PathBuf,
    #[arg(long, value_enum, default_value = "table")]
    format: camwatch::store::inventory::Format,
}

/// Where the review commands read from: the config's outputs, unless named here.
#[derive(Args)]
struct ReviewSources {
    /// Sensor configuration file: its state database, alert journal, event log, evidence
    /// directory and rules are the defaults of the options below.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// State database written by `run` or `replay --state` (default: the config's, var/camwatch.db).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Alert journal (default: the config's, var/alerts.jsonl, when it exists).
    #[arg(long)]
    alerts: Option<PathBuf>,
    /// Rules files or directories, for the firmware findings (default: the config's, else ./rules).
    #[arg(long)]
    rules: Vec<PathBuf>,
}

#[derive(Args)]
struct InvestigateArgs {
    #[command(flatten)]
    sources: ReviewSources,
    /// The device: address (current or past), MAC address, serial number or host name.
    #[arg(long, short = 'd')]
    device: String,
    /// Only what happened at or after this time (RFC 3339, or `2026-01-01 22:00` in UTC).
    #[arg(long)]
    since: Option<String>,
    /// Only what happened at or before this time.
    #[arg(long)]
    until: Option<String>,
    /// Event logs to read, oldest first (default: the config's, var/events.jsonl, when it exists).
    #[arg(long)]
    events: Vec<PathBuf>,
    /// Include the device's flow records from the event log.
    #[arg(long)]
    flows: bool,
    /// Most items in the timeline (the rest are counted).
    #[arg(long, default_value_t = camwatch::review::investigate::DEFAULT_MAX_ITEMS)]
    max_items: usize,
    #[arg(long, value_enum, default_value = "table")]
    format: camwatch::review::investigate::Format,
    /// Write a hand-over bundle here (timeline as JSON, HTML and text, evidence pcaps, SHA256SUMS).
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
    /// Where evidence pcaps are, when not at the path the journal names (default: the config's).
    #[arg(long)]
    evidence: Option<PathBuf>,
}

#[derive(Args)]
struct ReportArgs {
    #[command(flatten)]
    sources: ReviewSources,
    /// Output file (`-` for standard output).
    #[arg(long, short = 'o')]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "html")]
    format: camwatch::review::report::Format,
}

#[derive(Args)]
struct MudArgs {
    #[command(flatten)]
    sources: ReviewSources,
    /// The device (address, MAC, serial or host name).
    #[arg(long, short = 'd', required_unless_present = "model", conflicts_with = "model")]
    device: Option<String>,
    /// Every device of this model (as the inventory names it).
    #[arg(long)]
    model: Option<String>,
    /// Where the MUD file will be published (`mud-url`; https).
    #[arg(long)]
    url: String,
    /// Learning window: only destinations in use at or after this time.
    #[arg(long)]
    since: Option<String>,
    /// Learning window: only destinations first used at or before this time.
    #[arg(long)]
    until: Option<String>,
    /// Hours a controller may cache the file (1 to 168).
    #[arg(long, default_value_t = 48, value_parser = clap::value_parser!(u8).range(1..=168))]
    cache_validity: u8,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Validate rules files or directories; errors name file, line and column.
    Check {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema of rules files (rules/schema.json is this output).
    Schema,
    /// Run the test cases shipped beside the packs (PATH/tests/*.yaml).
    Test {
        #[arg(default_value = "rules")]
        path: PathBuf,
        /// Fail when a rule has no case that fires it or none that proves it quiet.
        #[arg(long)]
        require_coverage: bool,
    },
}

#[derive(Args)]
struct Common {
    /// Sensor configuration file (YAML).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Rules files or directories (default: the config's `rules`, else ./rules).
    #[arg(long)]
    rules: Vec<PathBuf>,
    /// Alert journal, JSON lines.
    #[arg(long)]
    alerts: Option<PathBuf>,
    /// Event log, EVE-shaped JSON lines.
    #[arg(long)]
    events: Option<PathBuf>,
    /// Packet worker threads.
    #[arg(long)]
    workers: Option<usize>,
    /// State database (SQLite): the inventory is loaded from it and kept up to date.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Write a pcap of each alert's flow to this directory (replay: off without it).
    #[arg(long)]
    evidence: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// Capture live from this interface (repeatable).
    #[arg(long, short = 'i')]
    interface: Vec<String>,
    /// Read this capture file (repeatable); the daemon keeps serving metrics afterwards.
    #[arg(long, short = 'r')]
    read: Vec<PathBuf>,
    /// Address for /metrics and /healthz (port 0 picks a free port; the log says which).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Once capture is open, run as this user (camwatch must start as root).
    #[arg(long)]
    user: Option<String>,
    /// BPF capture filter for live interfaces.
    #[arg(long)]
    filter: Option<String>,
    /// TLS and basic authentication for /metrics, /healthz and /alerts: a web configuration
    /// file in the Prometheus exporter-toolkit's format (as node_exporter's).
    #[arg(long = "web.config.file", value_name = "FILE")]
    web_config: Option<PathBuf>,
    /// Serve the read-only web view under /ui/ (devices, timelines, alerts, evidence) on the
    /// metrics endpoint, with its TLS and authentication.
    #[arg(long)]
    web_view: bool,
}

#[derive(Args)]
struct ReplayArgs {
    #[command(flatten)]
    common: Common,
    /// Capture files (pcap or pcapng).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Write the final metrics here, in the classic Prometheus text format (for node_exporter's
    /// textfile collector; `promtool check metrics` passes it).
    #[arg(long)]
    metrics_out: Option<PathBuf>,
    /// Do not log each alert (the summary still counts them).
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Args)]
struct SynthArgs {
    /// Output pcap file.
    #[arg(long, short = 'o')]
    out: PathBuf,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 6)]
    cameras: usize,
    /// Capture span in seconds.
    #[arg(long, default_value_t = 120)]
    duration: u64,
    /// Anomalies to include, comma-separated: egress, cloud, exploit, upload, firmware,
    /// dahua_exploit, telnet, lateral, downgrade, cloud_enabled, vulnerable_firmware,
    /// tftp_firmware; or all, or none.
    #[arg(long, default_value = "none")]
    anomalies: String,
    /// Size of the upload anomaly in bytes.
    #[arg(long, default_value_t = 3_000_000)]
    upload_bytes: usize,
    /// Size of the firmware image in the firmware-upload anomaly, in bytes.
    #[arg(long, default_value_t = 600_000)]
    firmware_bytes: usize,
    /// Also write the generator's ground truth (JSON) here.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Instead of a site, write a flood of this many new flows (one spoofed TCP SYN each, from
    /// sources across 10.0.0.0/8 to 50 cameras): the benchmark of a sensor's flow table.
    #[arg(long, value_name = "FLOWS", conflicts_with_all = ["anomalies", "truth"])]
    flood: Option<u64>,
    /// SYNs per second of capture time in the flood.
    #[arg(long, default_value_t = 100_000, requires = "flood")]
    flood_rate: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    camwatch::runtime::guard::quiet_repeated_panics();
    let result = match cli.command {
        Command::Run(a) => with_runtime(|| run(a)),
        Command::Replay(a) => with_runtime(|| replay(a)),
        Command::Rules { command: RulesCommand::Check { paths } } => rules_check(&paths),
        Command::Rules { command: RulesCommand::Test { path, require_coverage } } => {
            rules_test(&path, require_coverage)
        }
        Command::Rules { command: RulesCommand::Schema } => std::io::stdout()
            .lock()
            .write_all(RuleSet::json_schema().as_bytes())
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
        Command::Synth(a) => synth(&a),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "camwatch",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
            .render(&mut std::io::stdout().lock())
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
        Command::Investigate(a) => investigate(&a),
        Command::Report(a) => report(&a),
        Command::Mud(a) => mud(&a),
        Command::Inventory(a) => {
            camwatch::store::inventory::print(&a.state, a.format, &mut std::io::stdout().lock())
                .map(|()| ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(2)
        }
    }
}

fn with_runtime<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    f: impl FnOnce() -> F,
) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("camwatch-io")
        .build()?;
    rt.block_on(f())
}

/// Config file (or defaults) with command-line overrides applied.
fn load(common: &Common) -> anyhow::Result<(Config, Vec<PathBuf>)> {
    let mut cfg = match &common.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(w) = common.workers {
        anyhow::ensure!((1..=64).contains(&w), "--workers must be between 1 and 64");
        cfg.workers = w;
    }
    let rule_paths = if common.rules.is_empty() { cfg.rules.clone() } else { common.rules.clone() };
    Ok((cfg, rule_paths))
}

async fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let (mut cfg, rule_paths) = load(&a.common)?;
    if let Some(l) = a.listen {
        cfg.outputs.listen = l;
    }
    if a.user.is_some() {
        cfg.user = a.user.clone();
    }
    if a.filter.is_some() {
        cfg.capture.filter = a.filter.clone();
    }
    if a.web_view {
        cfg.outputs.web_view = true;
    }
    if a.web_config.is_some() {
        cfg.outputs.web_config = a.web_config.clone();
    }
    if a.common.alerts.is_some() {
        cfg.outputs.alerts = a.common.alerts.clone();
    }
    if a.common.events.is_some() {
        cfg.outputs.events = a.common.events.clone();
    }
    if let Some(dir) = &a.common.evidence {
        cfg.evidence.dir = dir.clone();
        cfg.evidence.enabled = true;
    }
    if a.common.state.is_some() {
        cfg.outputs.state = a.common.state.clone();
    }
    let shutdown = Shutdown::new();
    daemon::run(cfg, rule_paths, &a.interface, &a.read, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

async fn replay(a: ReplayArgs) -> anyhow::Result<ExitCode> {
    let (cfg, rule_paths) = load(&a.common)?;
    let rules = daemon::load_rules(&rule_paths)?;
    let metrics = Arc::new(Metrics::new(&cfg.sensor));
    let sources = Source::open_all(&[], &a.files, &cfg.capture)?;
    let total: u64 = a.files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    let outputs = Outputs {
        alerts: a.common.alerts.clone(),
        events: a.common.events.clone(),
        log_alerts: !a.quiet,
        state: a.common.state.clone(),
        evidence: a.common.evidence.as_ref().map(|dir| camwatch::alert::evidence::EvidenceConfig {
            enabled: true,
            dir: dir.clone(),
            ..cfg.evidence.clone()
        }),
    };
    let sensor = Arc::new(Sensor::new(cfg, rules, metrics.clone()).map_err(anyhow::Error::msg)?);
    let stop = Shutdown::new();
    daemon::spawn_signals(sensor.clone(), rule_paths, stop.clone())?;

    let progress = Arc::new(AtomicU64::new(0));
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (b, p) = (bar.clone(), progress.clone());
    let ticker = tokio::spawn(async move {
        loop {
            b.set_position(p.load(Ordering::Relaxed));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let (s, st, pr) = (sensor.clone(), stop.clone(), progress.clone());
    let summary = tokio::task::spawn_blocking(move || s.run(sources, &outputs, st.flag(), &pr)).await??;
    ticker.abort();
    bar.finish_and_clear();
    daemon::report_errors(&summary);
    if let Some(path) = &a.metrics_out {
        // The classic text format: what node_exporter's textfile collector and promtool read.
        write_file(path, metrics.encode_text().as_bytes())?;
    }
    print_summary(&summary)?;
    Ok(if summary.errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn write_file(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, data).map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", path.display()))
}

fn print_summary(s: &Summary) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "packets  {}", s.packets)?;
    writeln!(out, "bytes    {}", s.bytes)?;
    writeln!(out, "flows    {}", s.flows)?;
    writeln!(out, "devices  {}", s.devices)?;
    writeln!(out, "alerts   {} ({} suppressed)", s.alerts.values().sum::<u64>(), s.suppressed)?;
    for (rule, n) in &s.alerts {
        writeln!(out, "  {n:>6}  {rule}")?;
    }
    Ok(())
}

fn rules_check(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    match RuleSet::load(paths) {
        Ok(rules) => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "ok: {} rules, {} networks in {} files",
                rules.rules.len(),
                rules.networks.len(),
                rules.files.len()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let mut err = std::io::stderr().lock();
            writeln!(err, "{e}")?;
            Ok(ExitCode::from(1))
        }
    }
}

fn rules_test(path: &Path, require_coverage: bool) -> anyhow::Result<ExitCode> {
    let report = camwatch::runtime::rules_test::run(path)?;
    let mut out = std::io::stdout().lock();
    for o in &report.outcomes {
        let status = if o.failures.is_empty() { "ok  " } else { "FAIL" };
        writeln!(out, "{status} {} :: {}", o.file.display(), o.case)?;
        for f in &o.failures {
            writeln!(out, "       {f}")?;
        }
    }
    for id in &report.never_fired {
        writeln!(out, "no case fires {id}")?;
    }
    for id in &report.never_quiet {
        writeln!(out, "no case proves {id} quiet")?;
    }
    let failed = report.outcomes.iter().filter(|o| !o.failures.is_empty()).count();
    writeln!(out, "{} passed, {failed} failed", report.outcomes.len() - failed)?;
    let coverage_ok = !require_coverage || (report.never_fired.is_empty() && report.never_quiet.is_empty());
    Ok(if report.passed() && coverage_ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The review's inputs: options, else the config's outputs (the journal only when it exists).
struct Resolved {
    cfg: Config,
    state: PathBuf,
    alerts: Option<PathBuf>,
}

fn review_sources(s: &ReviewSources) -> anyhow::Result<(Resolved, camwatch::review::Estate)> {
    let cfg = match &s.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let state =
        s.state.clone().or_else(|| cfg.outputs.state.clone()).unwrap_or_else(|| "var/camwatch.db".into());
    let alerts = s.alerts.clone().or_else(|| cfg.outputs.alerts.clone().filter(|p| p.is_file()));
    let rule_paths = if s.rules.is_empty() { cfg.rules.clone() } else { s.rules.clone() };
    let rules = match RuleSet::load(&rule_paths) {
        Ok(r) => Some(Arc::new(r)),
        Err(e) if s.rules.is_empty() => {
            tracing::warn!("No firmware findings: the rules could not be read ({e}).");
            None
        }
        Err(e) => anyhow::bail!("{e}"),
    };
    let site = camwatch::model::netset::resolve(&cfg.devices.networks)
        .map_err(|e| anyhow::anyhow!("devices.networks: {e}"))?;
    let estate = camwatch::review::Estate::load(&state, alerts.as_deref(), rules, site)?;
    if estate.alerts_skipped > 0 {
        tracing::warn!(
            "{}: {} lines were not alert records.",
            alerts.as_deref().unwrap_or(Path::new("")).display(),
            estate.alerts_skipped
        );
    }
    Ok((Resolved { cfg, state, alerts }, estate))
}

fn time_arg(name: &str, v: &Option<String>) -> anyhow::Result<Option<u64>> {
    v.as_deref()
        .map(|s| {
            camwatch::review::estate::parse_time(s).ok_or_else(|| {
                anyhow::anyhow!("--{name} {s:?}: not a time (RFC 3339, or `2026-01-01 22:00` in UTC)")
            })
        })
        .transpose()
}

fn wall_micros() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

fn investigate(a: &InvestigateArgs) -> anyhow::Result<ExitCode> {
    use camwatch::review::investigate;
    let (r, estate) = review_sources(&a.sources)?;
    let events = if a.events.is_empty() {
        r.cfg.outputs.events.clone().filter(|p| p.is_file()).into_iter().collect()
    } else {
        a.events.clone()
    };
    let query = investigate::Query {
        since: time_arg("since", &a.since)?,
        until: time_arg("until", &a.until)?,
        events,
        flows: a.flows,
        max_items: a.max_items,
    };
    let timeline = investigate::build(&estate, &a.device, &query)?;
    if let Some(dir) = &a.export {
        let evidence = a.evidence.clone().unwrap_or_else(|| r.cfg.evidence.dir.clone());
        let done = investigate::export(&timeline, dir, Some(&evidence))?;
        let mut err = std::io::stderr().lock();
        writeln!(
            err,
            "Wrote {} ({} files; verify with `sha256sum -c SHA256SUMS` there).",
            dir.display(),
            done.files.len() + 1
        )?;
        for (id, status) in &done.evidence {
            writeln!(err, "  evidence of alert {id}: {status}")?;
        }
        let bad = done.evidence.iter().any(|(_, s)| s.starts_with("MISMATCH"));
        return Ok(if bad { ExitCode::from(1) } else { ExitCode::SUCCESS });
    }
    std::io::stdout().lock().write_all(investigate::render(&timeline, a.format)?.as_bytes())?;
    let _ = r.state;
    let _ = r.alerts;
    Ok(ExitCode::SUCCESS)
}

fn report(a: &ReportArgs) -> anyhow::Result<ExitCode> {
    use camwatch::review::report;
    let (_, estate) = review_sources(&a.sources)?;
    let r = report::build(&estate, wall_micros());
    let text = report::render(&r, a.format)?;
    if a.out.as_os_str() == "-" {
        std::io::stdout().lock().write_all(text.as_bytes())?;
    } else {
        write_file(&a.out, text.as_bytes())?;
        tracing::info!(
            devices = r.summary.devices,
            listed = r.summary.listed,
            vulnerable = r.summary.vulnerable,
            "Wrote {}.",
            a.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn mud(a: &MudArgs) -> anyhow::Result<ExitCode> {
    use camwatch::review::mud;
    let (_, estate) = review_sources(&a.sources)?;
    let (devices, title): (Vec<_>, String) = match (&a.device, &a.model) {
        (Some(d), _) => {
            let dev = estate.find(d)?;
            let title = match dev.model() {
                Some(m) => format!("{m} at {}", dev.ip),
                None => format!("device {}", dev.ip),
            };
            (vec![dev], title)
        }
        (None, Some(m)) => {
            let list: Vec<_> = estate
                .devices
                .iter()
                .filter(|d| d.model().is_some_and(|x| x.eq_ignore_ascii_case(m)))
                .collect();
            anyhow::ensure!(!list.is_empty(), "no device of model {m:?} in {}", estate.state.display());
            (list, format!("model {m}"))
        }
        (None, None) => anyhow::bail!("name a --device or a --model"),
    };
    let opts = mud::Options {
        site: estate.site.clone(),
        url: a.url.clone(),
        since: time_arg("since", &a.since)?,
        until: time_arg("until", &a.until)?,
        now: wall_micros(),
        cache_validity: a.cache_validity,
    };
    let doc = mud::build(&devices, &title, &opts)?;
    std::io::stdout().lock().write_all((serde_json::to_string_pretty(&doc)? + "\n").as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn synth(a: &SynthArgs) -> anyhow::Result<ExitCode> {
    use camwatch_synth::{generate, write_flood, write_pcap, Anomalies, Scenario};
    if let Some(flows) = a.flood {
        let n = write_flood(&a.out, flows, a.flood_rate)?;
        tracing::info!(packets = n, "Wrote a flood of {n} new flows to {}.", a.out.display());
        return Ok(ExitCode::SUCCESS);
    }
    let scenario = Scenario {
        seed: a.seed,
        cameras: a.cameras,
        duration_secs: a.duration,
        anomalies: Anomalies::parse_list(&a.anomalies)?,
        upload_bytes: a.upload_bytes,
        firmware_bytes: a.firmware_bytes,
        ..Scenario::default()
    };
    let cap = generate(&scenario);
    write_pcap(&a.out, &cap)?;
    if let Some(t) = &a.truth {
        write_file(t, serde_json::to_string_pretty(&cap.truth)?.as_bytes())?;
    }
    tracing::info!(packets = cap.truth.packets, bytes = cap.truth.bytes, "Wrote {}.", a.out.display());
    Ok(ExitCode::SUCCESS)
}
