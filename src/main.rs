//! The `swf-warden` command line (SPEC, "Command line"). Exit codes: 0 success, 64 invalid
//! usage or configuration (nothing is bound), 1 runtime failure.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use swf_warden::{admin, app::App, config, server};

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
}

const EXIT_USAGE: u8 = 64;

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
        (None, None) => {
            eprintln!(
                "error: --config PATH is required (try `swf-warden serve --config config.toml`)"
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    init_logging();
    serve(&config_path)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn serve(path: &std::path::Path) -> ExitCode {
    let config = match config::load(path) {
        Ok(c) => c,
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            eprintln!(
                "{} error(s) in the configuration; nothing was started",
                diagnostics.0.len()
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let address = config.listen.address;
    let admin_address = config.admin;
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
    let app = match App::new(config) {
        Ok(app) => Arc::new(app),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(address).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(%address, error = %e, "cannot bind the proxy address");
                return ExitCode::from(1);
            }
        };
        if let Some(admin_address) = admin_address {
            match tokio::net::TcpListener::bind(admin_address).await {
                Ok(l) => {
                    tokio::spawn(admin::run(l, shutdown_signal()));
                    tracing::info!(address = %admin_address, "admin endpoints listening");
                }
                Err(e) => {
                    tracing::error!(address = %admin_address, error = %e, "cannot bind the admin address");
                    return ExitCode::from(1);
                }
            }
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(address = %listener.local_addr().unwrap_or(address), scheme, "swf-warden listening");
        server::run_with(listener, app, tls, shutdown_signal()).await;
        tracing::info!("shut down");
        ExitCode::SUCCESS
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
