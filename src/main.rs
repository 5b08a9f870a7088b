//! The `swf-warden` command line (SPEC, "Command line"). Exit codes: 0 success, 64 invalid
//! usage or configuration (nothing is bound), 1 runtime failure.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

// Per-call allocations are many and small; mimalloc serves them faster than glibc's malloc
// (measured with bench/load.sh). `--features system-allocator` builds with the system's malloc,
// for heap profilers that hook it (heaptrack, valgrind's massif: bench/long_polls.py).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use swf_warden::{cli, config, lifecycle, runtime::Runtime, server};

#[derive(Parser)]
#[command(
    name = "swf-warden",
    version,
    about = "Policy-enforcing SigV4 authorization proxy for Amazon SWF"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    /// Configuration file (runs `serve` when no command is given).
    #[arg(long, global = false)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Serve {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate the configuration and every policy; print every error and warning.
    Check {
        #[arg(long)]
        config: PathBuf,
        /// Print errors only, not warnings.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Show the decision for one request and the statements and conditions behind it.
    Explain {
        #[arg(long)]
        config: PathBuf,
        /// Principal name, as in `[[principal]]`.
        #[arg(long, conflicts_with = "role", required_unless_present = "role")]
        principal: Option<String>,
        /// Role name, as in `[[role]]`: a session of it, with `--tag`s.
        #[arg(long)]
        role: Option<String>,
        /// A role session's tag, `KEY=VALUE` (repeat for several).
        #[arg(long = "tag", value_name = "KEY=VALUE", requires = "role")]
        tag: Vec<String>,
        /// A role session's name (default `explain`).
        #[arg(long, requires = "role")]
        session: Option<String>,
        /// `swf:<Operation>` or a decision pseudo-action such as `swf:ScheduleActivityTask`.
        #[arg(long)]
        action: String,
        /// Domain name (the resource becomes its ARN).
        #[arg(
            long,
            conflicts_with = "resource",
            required_unless_present = "resource"
        )]
        domain: Option<String>,
        /// Resource ARN.
        #[arg(long)]
        resource: Option<String>,
        /// Request context, `KEY=VALUE` (repeat a key for several values).
        #[arg(long = "context", value_name = "KEY=VALUE")]
        context: Vec<String>,
    },
    /// Run policy test cases (TOML); exit 1 if any fails.
    Test {
        #[arg(long)]
        config: PathBuf,
        /// Case files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// The audit log's integrity: signing keys, and verification.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// What a policy change would do: replay recorded calls, diff two configurations,
    /// suggest a least-privilege policy.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Decide recorded calls again under another configuration's policies.
    Replay {
        /// The configuration to replay under.
        #[arg(long)]
        config: PathBuf,
        /// Exit 1 when a call would change this way: widening, narrowing or any.
        #[arg(long, value_name = "CHANGE")]
        fail_on: Option<cli::policy::FailOn>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// How many changed calls of each kind to show.
        #[arg(long, default_value_t = 10)]
        samples: usize,
        /// The audit files, in the order written (`.gz` read as compressed).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Every principal × action × resource whose decision differs between two configurations.
    Diff {
        /// The configuration in force.
        #[arg(long)]
        config: PathBuf,
        /// The candidate.
        #[arg(long)]
        against: PathBuf,
        /// Exit 1 when a cell changes this way: widening, narrowing or any.
        #[arg(long, value_name = "CHANGE")]
        fail_on: Option<cli::policy::FailOn>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A least-privilege policy from the calls recorded for one principal or role.
    Suggest {
        #[arg(long)]
        config: PathBuf,
        /// Principal name, as in `[[principal]]`.
        #[arg(long, conflicts_with = "role", required_unless_present = "role")]
        principal: Option<String>,
        /// Role name, as in `[[role]]` (every session of it).
        #[arg(long)]
        role: Option<String>,
        /// The policy's format: toml or json (IAM JSON).
        #[arg(long, default_value = "toml", value_parser = ["toml", "json"])]
        format: String,
        /// The audit files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Write an Ed25519 key pair for signing checkpoints: ID.key (private) and ID.pub.
    Keygen {
        /// Folder to write the keys to.
        #[arg(long)]
        out: PathBuf,
        /// Key id (`[audit] key_id`, and the checkpoints' `keyId`).
        #[arg(long, default_value = "k1")]
        id: String,
    },
    /// Check audit files for integrity and completeness; exit 0 intact, 1 not.
    Verify {
        /// A checkpoint key's public key, `ID=FILE` (repeat for several).
        #[arg(long = "public-key", value_name = "ID=FILE")]
        public_key: Vec<String>,
        /// A checkpoint line a monitor kept: the log must hold it and go on to it.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// The seq the files begin at, when the log's first files expired (else seq 1).
        #[arg(long, value_name = "SEQ")]
        from: Option<u64>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// The audit files, in any order (rotated files are ordered by `seq`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

const EXIT_USAGE: u8 = 64;

/// How long `serve` waits for its first upstream credentials before giving up.
const CREDENTIALS_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let config_path = match (cli.command, cli.config) {
        (Some(Command::Serve { config }), _) | (None, Some(config)) => config,
        (Some(Command::Check { config, quiet }), _) => {
            return ExitCode::from(cli::check::run(&config, quiet))
        }
        (
            Some(Command::Explain {
                config,
                principal,
                role,
                tag,
                session,
                action,
                domain,
                resource,
                context,
            }),
            _,
        ) => {
            let args = cli::explain::Args {
                config: &config,
                principal: principal.as_deref(),
                role: role.as_deref(),
                session: session.as_deref(),
                tags: &tag,
                action: &action,
                domain: domain.as_deref(),
                resource: resource.as_deref(),
                context: &context,
            };
            return ExitCode::from(cli::explain::run(&args));
        }
        (Some(Command::Test { config, files }), _) => {
            return ExitCode::from(cli::test::run(&config, &files))
        }
        (Some(Command::Audit { command }), _) => {
            return ExitCode::from(match command {
                AuditCommand::Keygen { out, id } => cli::audit::keygen(&out, &id),
                AuditCommand::Verify {
                    public_key,
                    checkpoint,
                    from,
                    json,
                    files,
                } => cli::audit::run_verify(&cli::audit::VerifyArgs {
                    public_keys: &public_key,
                    checkpoint: checkpoint.as_deref(),
                    from,
                    json,
                    files: &files,
                }),
            })
        }
        (Some(Command::Policy { command }), _) => {
            return ExitCode::from(match command {
                PolicyCommand::Replay {
                    config,
                    fail_on,
                    json,
                    samples,
                    files,
                } => cli::policy::replay(&cli::policy::ReplayArgs {
                    config: &config,
                    fail_on,
                    json,
                    samples,
                    files: &files,
                }),
                PolicyCommand::Diff {
                    config,
                    against,
                    fail_on,
                    json,
                } => cli::policy::diff(&config, &against, fail_on, json),
                PolicyCommand::Suggest {
                    config,
                    principal,
                    role,
                    format,
                    files,
                } => cli::policy::suggest(&cli::policy::SuggestArgs {
                    config: &config,
                    principal: principal.as_deref(),
                    role: role.as_deref(),
                    json: format == "json",
                    files: &files,
                }),
            })
        }
        (None, None) => {
            eprintln!(
                "error: --config PATH is required (try `swf-warden serve --config config.toml`)"
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    serve(&config_path)
}

/// The process log (`[log]`) and, with `[tracing]`, the layer that exports the traced
/// calls' spans. The log's filter lets the trace target through whatever the level (so
/// `RUST_LOG` never hides a trace).
fn init_logging(
    log: &config::Log,
    traces: Option<&swf_warden::telemetry::Settings>,
) -> Result<(), String> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    // Access lines go through their own buffer and thread (`access::writer`), in the same
    // format as the rest of the log.
    swf_warden::access::writer::init(log.json);
    // RUST_LOG, when set, overrides the configured level; the traced calls' spans pass
    // whatever the level.
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&log.level));
    // The propagators log what they refuse; callers choose what that is.
    filter = filter.add_directive(
        "opentelemetry-aws=off"
            .parse()
            .map_err(|e| format!("{e}"))?,
    );
    let traces = match traces {
        Some(settings) => {
            let directive = format!("{}=info", swf_warden::telemetry::TARGET);
            filter = filter.add_directive(directive.parse().map_err(|e| format!("{e}"))?);
            // No per-layer filter: beside the global one, tracing-subscriber's per-layer
            // filtering stopped passing the trace spans after the first event it refused
            // (tokio-rs/tracing#2704; tests/e2e/test_tracing.py). The exporter's sampler
            // keeps to the traced calls' spans instead (`telemetry::export`).
            Some(swf_warden::telemetry::init(settings)?)
        }
        None => None,
    };
    // Colours only on a terminal: a log file or collector gets plain text.
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let fmt = if log.json {
        fmt.json()
            .with_current_span(true)
            // The list: a line in a traced call's step names the call, with its trace_id.
            .with_span_list(true)
            .boxed()
    } else {
        fmt.boxed()
    };
    // The log filter outermost: what it refuses never reaches the exporter's own filter.
    tracing_subscriber::registry()
        .with(traces)
        .with(fmt)
        .with(filter)
        .init();
    Ok(())
}

fn serve(path: &std::path::Path) -> ExitCode {
    let config = match config::load(path) {
        Ok(c) => c,
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            let errors = diagnostics.0.iter().filter(|d| d.is_error()).count();
            eprintln!("{errors} error(s) in the configuration; nothing was started");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // The configuration's warnings are logged by `Runtime::start`, each once per process.
    if let Err(e) = init_logging(&config.log, config.tracing.as_ref()) {
        eprintln!("{}: error: [tracing]: {e}", config.path.display());
        return ExitCode::from(EXIT_USAGE);
    }
    let tls = match &config.listen.tls {
        Some((cert, key)) => match swf_warden::tls::acceptor(cert, key) {
            Ok(acceptor) => Some(acceptor),
            Err(e) => {
                eprintln!("{}: error: [listen] TLS: {e}", config.path.display());
                return ExitCode::from(EXIT_USAGE);
            }
        },
        None => None,
    };
    let address = config.listen.address;
    let workers = config.listen.workers.unwrap_or_else(|| {
        // Counts the CPUs this process may use (affinity and cgroup quota included).
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let admin = config.admin;
    let admin_options = admin.map(|a| server::Options::admin(&config.limits, a.max_connections));
    let options = server::Options::proxy(tls, config.listen.h2c, config.limits.clone());
    // This runtime runs signals, reloads and the admin endpoints; calls are served by the
    // worker threads of `server::run_workers`.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let state = match Runtime::start(config) {
            Ok(state) => Arc::new(state),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
        // No port is bound before the upstream credentials are in hand: a provider that is
        // down is a startup error naming it, after a bounded wait.
        let credentials = state.credentials();
        if let Err(e) = credentials.first_attempt(CREDENTIALS_WAIT).await {
            eprintln!(
                "error: upstream credentials from {}: {e}",
                credentials.settings().describe()
            );
            return ExitCode::from(1);
        }
        // Signal handlers are in place before anything is bound or announced, so a signal at
        // any moment after start is handled.
        let shutdown = match Shutdown::install() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot install signal handlers: {e}");
                return ExitCode::from(1);
            }
        };
        if let Err(e) = lifecycle::spawn(state.clone(), shutdown.wait()) {
            eprintln!("error: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
        let listener = match tokio::net::TcpListener::bind(address).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(%address, error = %e, "cannot bind the proxy address");
                return ExitCode::from(1);
            }
        };
        if let (Some(admin), Some(admin_options)) = (admin, admin_options) {
            match tokio::net::TcpListener::bind(admin.address).await {
                Ok(l) => {
                    tokio::spawn(server::run(l, state.clone(), admin_options, shutdown.wait()));
                    tracing::info!(address = %admin.address, max_connections = admin.max_connections, "admin endpoints listening");
                }
                Err(e) => {
                    tracing::error!(address = %admin.address, error = %e, "cannot bind the admin address");
                    return ExitCode::from(1);
                }
            }
        }
        let scheme = if options.tls.is_some() { "https" } else { "http" };
        tracing::info!(address = %listener.local_addr().unwrap_or(address), scheme, workers, "swf-warden listening");
        if let Err(e) =
            server::run_workers(listener, workers, state.clone(), options, shutdown.wait()).await
        {
            tracing::error!(error = %e, "the workers failed");
            swf_warden::access::writer::flush();
            return ExitCode::from(1);
        }
        // Every refusal counted before the exit is on record, under a last checkpoint; then
        // the access lines; then the spans (bounded: a collector that is down waits for none).
        let audited = state
            .audit
            .flush_summaries(true)
            .and_then(|()| state.audit.checkpoint_if_due(true))
            .and_then(|()| state.audit.sync());
        swf_warden::access::writer::flush();
        swf_warden::telemetry::shutdown();
        if let Err(e) = audited {
            tracing::error!(error = %e, "could not flush the audit log");
            return ExitCode::from(1);
        }
        tracing::info!("shut down");
        ExitCode::SUCCESS
    })
}

/// SIGINT and SIGTERM, registered at once and shared by every listener.
struct Shutdown {
    requested: tokio::sync::watch::Receiver<bool>,
}

impl Shutdown {
    fn install() -> std::io::Result<Shutdown> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let (tx, requested) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = interrupt.recv() => {},
            }
            tracing::info!("shutdown requested");
            let _ = tx.send(true);
        });
        Ok(Shutdown { requested })
    }

    /// Completes once shutdown is requested.
    fn wait(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut requested = self.requested.clone();
        async move {
            let _ = requested.wait_for(|r| *r).await;
        }
    }
}
