//! `ferrogrid`: run a configuration, check it, or print the config schema.

use clap::{Parser, Subcommand, ValueEnum};
use ferrogrid_engine::app::{self, RunOptions};
use ferrogrid_engine::remote::Remote;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// jemalloc instead of the system allocator: the ingest path allocates per object on many
/// threads, and glibc malloc took a fifth of its CPU (docs/performance.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Log line format.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// `ferrogrid test` report format.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum ReportFormat {
    /// A line per case, a diff per failure, a summary.
    Text,
    /// JUnit XML, for CI systems.
    Junit,
}

/// `ferrogrid test`: run the cases, print the report; 0 all passed, 1 some failed, 2 not run.
fn test(folder: &std::path::Path, format: ReportFormat) -> ExitCode {
    let report = match actix_rt::System::new().block_on(ferrogrid_engine::cases::run(folder)) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("ferrogrid: {e:#}");
            return ExitCode::from(2);
        }
    };
    match format {
        ReportFormat::Text => print!("{}", report.text()),
        ReportFormat::Junit => match report.junit() {
            Ok(xml) => print!("{xml}"),
            Err(e) => {
                eprintln!("ferrogrid: writing the report: {e:#}");
                return ExitCode::from(2);
            }
        },
    }
    if report.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("ferrogrid: {} of {} case(s) failed in {}", report.failed(), report.cases.len(), folder.display());
        ExitCode::FAILURE
    }
}

#[derive(Debug, Parser)]
#[command(name = "ferrogrid", version, about = "Event-processing pipeline engine (a TDG 1.x re-imagining)")]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value = "text", env = "FERROGRID_LOG_FORMAT")]
    log_format: LogFormat,
    /// Log level or filter (e.g. `info`, `debug`, `ferrogrid_engine=debug`); RUST_LOG overrides it.
    /// Default `info` (`error` for `ferrogrid test`, whose cases mean to fail objects).
    #[arg(long, global = true, env = "FERROGRID_LOG_LEVEL")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a configuration (a folder holding config.yml, or the file itself). When it differs
    /// from the data directory's active configuration, it is recorded as a new version (and the
    /// stored data migrated). Without one, the data directory's active configuration runs.
    Run {
        /// Configuration folder or file.
        config: Option<PathBuf>,
        /// Data directory (storage, admin token).
        #[arg(long, env = "FERROGRID_DATA_DIR", default_value = "./ferrogrid-data")]
        data_dir: PathBuf,
        /// Address to listen on.
        #[arg(long, env = "FERROGRID_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Create a new data directory with zstd-compressed storage: about a third of the disk
        /// per object, at a cost in storing throughput (docs/performance.md). Only when the
        /// directory is created; an existing one keeps what it was created with.
        #[arg(long, env = "FERROGRID_COMPRESS_STORAGE")]
        compress_storage: bool,
        /// Seconds a SIGTERM/SIGINT drain may take in all (outputs' sends in flight, objects in
        /// flight, producers' buffers); what is unfinished then resumes at the next start. Set it
        /// below the orchestrator's grace period (Kubernetes: 30 s).
        #[arg(long, env = "FERROGRID_DRAIN_TIMEOUT", default_value = "25", value_parser = clap::value_parser!(u64).range(1..=3600))]
        drain_timeout: u64,
    },
    /// Load and validate a configuration (model, scripts, references) without running it.
    Check {
        /// Configuration folder or file.
        config: PathBuf,
    },
    /// Run a configuration folder's test cases (FOLDER/tests: function cases in
    /// tests/functions/<function>/<case>.json, flow cases in tests/<case>/) on a temporary store,
    /// with the outputs recording instead of sending. Exits 1 when a case fails, 2 when the folder
    /// cannot be run. The case formats are in docs/testing.md.
    Test {
        /// Configuration folder.
        folder: PathBuf,
        /// Report format: text lines with a diff per failure, or JUnit XML (on stdout).
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
    },
    /// Print the JSON Schema of config.yml.
    Schema,
    /// Apply a configuration folder to a running engine (packed with the files config.yml
    /// includes, checked there, applied without a restart).
    Apply {
        /// Configuration folder or file.
        config: PathBuf,
        /// The engine's base URL.
        #[arg(long, env = "FERROGRID_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// A file holding the bearer token (e.g. DATA_DIR/admin.token).
        #[arg(long, env = "FERROGRID_TOKEN_FILE")]
        token_file: PathBuf,
        /// Only check it and show what would change (the migration plan).
        #[arg(long)]
        dry_run: bool,
    },
    /// Download the active configuration of a running engine into a folder (or a .tar.gz file).
    Pull {
        /// The folder to write into (or a file name ending with .tar.gz).
        out: PathBuf,
        /// The engine's base URL.
        #[arg(long, env = "FERROGRID_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// A file holding the bearer token (e.g. DATA_DIR/admin.token).
        #[arg(long, env = "FERROGRID_TOKEN_FILE")]
        token_file: PathBuf,
    },
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrogrid: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, level: &str) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) => tracing_subscriber::EnvFilter::try_new(&spec).map_err(|e| format!("RUST_LOG \"{spec}\": {e}"))?,
        Err(_) => {
            // A level, or directives (`info,ferrogrid_engine=debug`); a bare word would be read
            // as a target's name and turn every level on for it.
            let level_or_directives =
                level.parse::<tracing_subscriber::filter::LevelFilter>().is_ok() || level.contains('=');
            tracing_subscriber::EnvFilter::try_new(level).ok().filter(|_| level_or_directives).ok_or_else(|| {
                format!("--log-level \"{level}\": error, warn, info, debug, trace or off (or target=level directives)")
            })?
        }
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => {
            builder.json().flatten_event(true).with_current_span(false).init();
            // A panic is a log line too (the engine survives most: an actor restarts, a worker
            // is replaced), not lines of text among the JSON.
            std::panic::set_hook(Box::new(|info| {
                let thread = std::thread::current().name().unwrap_or("unnamed").to_string();
                tracing::error!(thread, panic = %info, "panicked");
            }));
        }
    }
    Ok(())
}

/// Configure the failpoints named in `FAILPOINTS` (`name=actions;...`, the `fail` crate's
/// syntax). Only a build with the `failpoints` feature (the test build) has them; any other
/// refuses to start with `FAILPOINTS` set rather than run without the faults asked for.
fn setup_failpoints() -> Result<(), String> {
    let Ok(spec) = std::env::var("FAILPOINTS") else { return Ok(()) };
    if !cfg!(feature = "failpoints") {
        return Err("FAILPOINTS is set, but this build has no failpoints (build with --features failpoints)".into());
    }
    for item in spec.split(';').map(str::trim).filter(|item| !item.is_empty()) {
        let (name, actions) =
            item.split_once('=').ok_or_else(|| format!("FAILPOINTS: \"{item}\" is not name=actions"))?;
        fail::cfg(name.trim(), actions.trim()).map_err(|e| format!("FAILPOINTS: {name}: {e}"))?;
        tracing::warn!(failpoint = name.trim(), actions = actions.trim(), "failpoint configured");
    }
    Ok(())
}

fn main() -> ExitCode {
    // The uptime metric counts from here.
    ferrogrid_engine::metrics::started();
    let cli = Cli::parse();
    let quiet = matches!(cli.command, Command::Test { .. });
    let level = cli.log_level.clone().unwrap_or_else(|| if quiet { "error" } else { "info" }.to_string());
    if let Err(e) = init_logging(cli.log_format, &level) {
        eprintln!("ferrogrid: {e}");
        return ExitCode::FAILURE;
    }
    let json_logs = matches!(cli.log_format, LogFormat::Json);
    if let Err(e) = setup_failpoints() {
        eprintln!("ferrogrid: {e}");
        return ExitCode::FAILURE;
    }
    match cli.command {
        Command::Run { config, data_dir, listen, compress_storage, drain_timeout } => {
            let drain_timeout = std::time::Duration::from_secs(drain_timeout);
            let options = RunOptions { config, data_dir, listen, compress_storage, drain_timeout };
            let result = actix_rt::System::new().block_on(app::run(options));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    // Said once: as a JSON line, or also as text for a person at a terminal.
                    if !json_logs {
                        eprintln!("ferrogrid: {e:#}");
                    }
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check { config } => {
            let checked = app::check(&config);
            for w in &checked.warnings {
                println!("warning: {w}");
            }
            let problems = checked.problems;
            if problems.is_empty() {
                println!("ok");
                ExitCode::SUCCESS
            } else {
                for p in &problems {
                    println!("{p}");
                }
                eprintln!("ferrogrid: {} problem(s) in {}", problems.len(), config.display());
                ExitCode::FAILURE
            }
        }
        Command::Test { folder, format } => test(&folder, format),
        Command::Apply { config, url, token_file, dry_run } => {
            finish(ferrogrid_engine::remote::apply(&config, &Remote { url, token_file }, dry_run))
        }
        Command::Pull { out, url, token_file } => {
            finish(ferrogrid_engine::remote::pull(&Remote { url, token_file }, &out))
        }
        Command::Schema => {
            match serde_json::to_string_pretty(ferrogrid_engine::config::schema()) {
                Ok(text) => println!("{text}"),
                Err(e) => {
                    eprintln!("ferrogrid: {e}");
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
    }
}
