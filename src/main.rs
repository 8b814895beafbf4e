//! The `kinesis-tail` command: parses the command line, sets up logging, loads the
//! configuration and runs the daemon. Exit codes: 0 ok, 1 configuration error, 2 runtime
//! failure.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::{Parser, Subcommand};
use kinesis_tail::config::{self, Config, Loaded, DEFAULT_CONFIG_PATH, JAVA_AGENT_CONFIG_PATH};
use kinesis_tail::daemon::{self, RunOptions};

const EXIT_CONFIG: u8 = 1;
const EXIT_RUNTIME: u8 = 2;

/// Tails log files and ships their lines to Amazon Kinesis Data Streams and Amazon Data
/// Firehose, losing nothing. Reads the Java Kinesis Agent's agent.json unchanged.
#[derive(Parser, Debug)]
#[command(name = "kinesis-tail", version, about, long_about = None)]
struct Cli {
    /// Configuration file (YAML, or the Java agent's agent.json). Default:
    /// /etc/kinesis-tail/config.yaml, else /etc/aws-kinesis/agent.json.
    #[arg(
        short = 'c',
        long = "configuration",
        global = true,
        value_name = "PATH"
    )]
    configuration: Option<PathBuf>,
    /// Log level (error, warn, info, debug, trace); overrides RUST_LOG.
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Ship what the matching files hold now, wait until it is acknowledged and
    /// checkpointed, then exit.
    #[arg(long, global = true)]
    once: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the agent (the default).
    Run,
    /// Validate the configuration and print the resolved flows; makes no network call.
    Check,
    /// Read lines from stdin, apply a flow's framing and processors, print the records.
    Process {
        /// Index of the flow to use (0-based, as `check` lists them).
        #[arg(long, default_value_t = 0)]
        flow: usize,
        /// The file the input stands for: with `CRI`, its name gives the Kubernetes fields.
        #[arg(long)]
        path: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_CONFIG } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if let Err(e) = init_logging(cli.log_level.as_deref()) {
        eprintln!("kinesis-tail: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let path = config_path(cli.configuration.as_deref());
    match cli.command.unwrap_or(Command::Run) {
        Command::Check => match load(&path) {
            Ok(loaded) => {
                print!("{}", kinesis_tail::cli::check_report(&loaded, &path));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Process {
            flow,
            path: input_path,
        } => {
            let loaded = match load(&path) {
                Ok(l) => l,
                Err(code) => return code,
            };
            let Some(f) = loaded.config.flows.get(flow) else {
                eprintln!(
                    "kinesis-tail: {}: --flow {flow}: the configuration has {} flow(s) (0..{})",
                    path.display(),
                    loaded.config.flows.len(),
                    loaded.config.flows.len().saturating_sub(1)
                );
                return ExitCode::from(EXIT_CONFIG);
            };
            let stats = kinesis_tail::metrics::FlowStats::default();
            let stdin = std::io::stdin();
            let stdout = std::io::stdout();
            match kinesis_tail::cli::run_process_with(
                f,
                input_path.as_deref(),
                kinesis_tail::process::Chain::new(f),
                stdin.lock(),
                stdout.lock(),
                &stats,
            ) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("kinesis-tail: process: {e}");
                    ExitCode::from(EXIT_RUNTIME)
                }
            }
        }
        Command::Run => {
            let loaded = match load(&path) {
                Ok(l) => l,
                Err(code) => return code,
            };
            run(loaded, &path, cli.once)
        }
    }
}

fn run(loaded: Loaded, path: &Path, once: bool) -> ExitCode {
    crash_on_panic();
    warn_if_root();
    tune_malloc();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("kinesis-tail-rt")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    // Handlers are installed before anything starts (and kept across reloads): a signal
    // that arrives early must not fall to its default action, which kills the process.
    let mut signals = {
        let _rt = runtime.enter();
        match Signals::install() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot install signal handlers: {e}");
                return ExitCode::from(EXIT_RUNTIME);
            }
        }
    };
    let mut config = loaded.config;
    loop {
        // SIGHUP: the new configuration is read while the old one runs; only a valid one
        // stops the flows (flushed, checkpointed) and starts them again with it.
        let next: Arc<Mutex<Option<Config>>> = Arc::default();
        let result = runtime.block_on(daemon::run(
            config,
            RunOptions { once },
            signals.next(path.to_path_buf(), Arc::clone(&next)),
        ));
        if let Err(e) = result {
            tracing::error!("{e:#}");
            return ExitCode::from(EXIT_RUNTIME);
        }
        let reloaded = next.lock().unwrap_or_else(|p| p.into_inner()).take();
        match reloaded {
            Some(c) => {
                tracing::info!(
                    "configuration {} reloaded: {} flow(s)",
                    path.display(),
                    c.flows.len()
                );
                config = c;
            }
            None => return ExitCode::SUCCESS,
        }
    }
}

/// SIGTERM, SIGINT and SIGHUP.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Completes on SIGTERM or SIGINT, or on SIGHUP once the configuration at `path`
    /// reads as valid (it is put in `next`). An invalid one is logged and the running one
    /// goes on.
    async fn next(&mut self, path: PathBuf, next: Arc<Mutex<Option<Config>>>) {
        loop {
            tokio::select! {
                _ = self.term.recv() => {
                    tracing::info!("SIGTERM received");
                    return;
                }
                _ = self.int.recv() => {
                    tracing::info!("SIGINT received");
                    return;
                }
                _ = self.hup.recv() => {
                    tracing::info!("SIGHUP received: reading {}", path.display());
                    kinesis_tail::notify::sd_notify("RELOADING=1");
                    let p = path.clone();
                    match tokio::task::spawn_blocking(move || load_for_reload(&p)).await {
                        Ok(Ok(None)) => kinesis_tail::notify::sd_notify("READY=1"),
                        Ok(Ok(Some(loaded))) => {
                            for w in &loaded.warnings {
                                tracing::warn!("{w}");
                            }
                            *next.lock().unwrap_or_else(|p| p.into_inner()) = Some(loaded.config);
                            return;
                        }
                        Ok(Err(errors)) => {
                            for e in &errors.0 {
                                tracing::error!("reload: {e}");
                            }
                            tracing::error!(
                                "reload: {} is invalid ({} error(s)); the running configuration goes on",
                                path.display(),
                                errors.0.len()
                            );
                            kinesis_tail::notify::sd_notify("READY=1");
                        }
                        Err(e) => tracing::error!("reload failed: {e}"),
                    }
                }
            }
        }
    }
}

/// The configuration at `path` for a reload; `Ok(None)` when it is valid but
/// `AWS_CA_BUNDLE` became unusable (logged): the new flows would build their clients
/// from it, so the running ones go on.
fn load_for_reload(path: &Path) -> Result<Option<Loaded>, config::ConfigErrors> {
    let loaded = config::load(path)?;
    if let Err(e) = kinesis_tail::aws::ca_bundle_from_env() {
        tracing::error!("reload: {e}; the running configuration goes on");
        return Ok(None);
    }
    Ok(Some(loaded))
}

fn config_path(given: Option<&Path>) -> PathBuf {
    if let Some(p) = given {
        return p.to_path_buf();
    }
    let default = Path::new(DEFAULT_CONFIG_PATH);
    if !default.exists() && Path::new(JAVA_AGENT_CONFIG_PATH).exists() {
        return PathBuf::from(JAVA_AGENT_CONFIG_PATH);
    }
    default.to_path_buf()
}

fn load(path: &Path) -> Result<Loaded, ExitCode> {
    match config::load(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                tracing::warn!("{w}");
            }
            Ok(loaded)
        }
        Err(errors) => {
            eprintln!("kinesis-tail: {} configuration error(s):", errors.0.len());
            for e in &errors.0 {
                eprintln!("  {e}");
            }
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

/// A panic anywhere ends the daemon: logged as an internal error, then `abort`.
///
/// Crash-only on purpose: a panicking delivery task or reader thread caught by the
/// runtime would leave its flow stalled without a word (a batch never acknowledged holds
/// its checkpoint back for ever). Ending the process instead is safe, since checkpoints
/// only cover acknowledged records, and loud: systemd (`Restart=on-failure`) or the
/// container runtime starts it again from the last checkpoint. The release profile builds
/// with `panic = "abort"` to match; this hook gives debug builds the same behaviour.
fn crash_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(
            "internal error, please report it: {info}; stopping (the next start resumes from \
             the last checkpoint)"
        );
        default(info);
        std::process::abort();
    }));
}

fn init_logging(level: Option<&str>) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(l) => EnvFilter::try_new(l).map_err(|e| {
            format!("--log-level {l}: {e} (allowed: error, warn, info, debug, trace)")
        })?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Ok(())
}

/// Files whose presence marks a container: Docker's and Podman's.
const CONTAINER_MARKER_FILES: [&str; 2] = ["/.dockerenv", "/run/.containerenv"];

/// Running as root reads every file and writes checkpoints owned by root; the packages
/// run the agent as its own user. Containers usually run as root in their own namespace.
fn warn_if_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    let in_container = in_container(|p| Path::new(p).exists(), |v| std::env::var_os(v));
    if euid == 0 && !in_container {
        tracing::warn!(
            "running as root; the packaged service runs as the unprivileged user kinesis-tail"
        );
    }
}

/// True inside a container: a marker file exists (`/.dockerenv`, `/run/.containerenv`),
/// or the environment says so (`KUBERNETES_SERVICE_HOST` in a Kubernetes pod, `container`
/// set by systemd-nspawn, Podman, LXC).
fn in_container(
    exists: impl Fn(&str) -> bool,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> bool {
    CONTAINER_MARKER_FILES.iter().any(|f| exists(f))
        || ["KUBERNETES_SERVICE_HOST", "container"]
            .iter()
            .any(|v| env(v).is_some_and(|s| !s.is_empty()))
}

/// Two glibc malloc settings, made before any thread starts:
///
/// - One arena. glibc gives each thread that allocates its own arena (up to eight per
///   core), and each keeps the high-water mark of what its thread once held: the reader's
///   batches, the runtime's request bodies. One arena keeps the peak near what is live
///   (about 2 MiB less at full speed); the few threads here rarely contend for it.
/// - A fixed mmap threshold of 128 KiB. By default glibc raises the threshold each time a
///   mapped block is freed (up to 32 MiB), after which batches, aggregates and request
///   bodies (100 KiB to 1 MiB) come from the heap, whose free space fragments and stays
///   resident. Fixed, every block of 128 KiB or more has its own mapping and goes back to
///   the kernel when freed: about 2 MiB less peak RSS on the plain path and 4 MiB with KPL
///   (30,000-line bench runs), for a few page faults per request.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before the runtime
    // and the readers start, so no other thread is allocating.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_recognised_by_marker_files_and_environment() {
        let none = |_: &str| None;
        assert!(!in_container(|_| false, none));
        assert!(in_container(|f| f == "/.dockerenv", none));
        assert!(in_container(|f| f == "/run/.containerenv", none));
        for var in ["KUBERNETES_SERVICE_HOST", "container"] {
            assert!(in_container(|_| false, |v| (v == var).then(|| "x".into())));
            assert!(!in_container(|_| false, |v| (v == var).then(|| "".into())));
        }
    }
}
