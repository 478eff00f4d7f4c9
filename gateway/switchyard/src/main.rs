//! The `switchyard` command: the gateway (`serve`), config checking, and
//! (in `cli/`) the operator commands, thin clients of the running gateway's
//! HTTP API. Only this file and `cli/` parse flags; only this file handles
//! signals; everything else is the library.

mod cli;

use std::path::PathBuf;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use switchyard::config::Config;

/// glibc's allocator spent ~15% of the gateway's CPU under load (bodies of
/// 1 KB allocated and freed across threads); mimalloc handles that pattern well.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "A WebAssembly-extensible event-routing gateway.",
    after_help = "The client commands talk to a running gateway: --server (or SWITCHYARD_SERVER) \
                  says where, --token (or SWITCHYARD_TOKEN) gives an admin token."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the gateway.
    #[command(after_help = "Example:\n  switchyard serve --config /etc/switchyard/switchyard.toml")]
    Serve {
        /// The TOML config file. Without one: 127.0.0.1:8080, data in ./switchyard-data.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Overrides `server.listen` (an IP address and port, e.g. 127.0.0.1:8080).
        #[arg(long, value_parser = parse_listen)]
        listen: Option<std::net::SocketAddr>,
        /// Overrides `server.data_dir`.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Log as JSON lines instead of human-readable text.
        #[arg(long)]
        log_json: bool,
    },
    /// Checks a config file and reports every error in it, naming each key.
    #[command(after_help = "Example:\n  switchyard check-config --config switchyard.toml --no-env")]
    CheckConfig {
        /// The TOML config file to check.
        #[arg(long, short)]
        config: PathBuf,
        /// Accept `env:NAME` secrets whose variable is not set (to check a
        /// config in CI without its real secrets).
        #[arg(long)]
        no_env: bool,
    },
    /// Every destination's depth, lag, in-flight count, DLQ and pause state.
    #[command(after_help = "Example:\n  switchyard status --watch 5s")]
    Status(cli::ops::StatusArgs),
    /// Pauses, resumes or purges a destination.
    #[command(after_help = "Example:\n  switchyard destinations pause billing")]
    Destinations {
        #[command(subcommand)]
        action: cli::ops::DestinationsAction,
    },
    /// Looks at events: list, show one, tail new ones.
    #[command(after_help = "Example:\n  switchyard events tail --topic orders")]
    Events {
        #[command(subcommand)]
        action: cli::ops::EventsAction,
    },
    /// Publishes one event to a topic, from a file or stdin.
    #[command(
        after_help = "Example:\n  echo '{\"id\":1}' | switchyard publish orders --header Idempotency-Key:order-1"
    )]
    Publish(cli::ops::PublishArgs),
    /// Dead-letter queues: list, show, replay, purge.
    #[command(after_help = "Example:\n  switchyard dlq list --destination billing")]
    Dlq {
        #[command(subcommand)]
        action: cli::dlq::DlqAction,
    },
    /// Try a Wasm plugin without a gateway.
    #[command(after_help = "Example:\n  switchyard plugin check route_by_field.wasm")]
    Plugin {
        #[command(subcommand)]
        action: cli::plugin::PluginAction,
    },
    /// Moves a single node's data dir into a JetStream cluster (stop its
    /// gateway first); safe to run again, and resumes where it stopped.
    #[command(
        after_help = "Example:\n  switchyard migrate --from /var/lib/switchyard --config /etc/switchyard/cluster.toml\n\nSee docs/scale-out.md, \"Moving a single node into the cluster\"."
    )]
    Migrate(cli::migrate::MigrateArgs),
    /// Prints a shell completion script.
    #[command(
        after_help = "Example:\n  switchyard completions bash > /etc/bash_completion.d/switchyard"
    )]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            std::process::ExitCode::FAILURE
        }
    }
}

/// Prints an error once: a cause whose text the message already holds (our
/// errors name their source in their message) is not repeated.
fn report(e: &anyhow::Error) {
    let mut shown = e.to_string();
    eprintln!("error: {shown}");
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !shown.contains(&c) {
            eprintln!("  caused by: {c}");
            shown = c;
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
            log_json,
        } => serve(config, listen, data_dir, log_json),
        Command::CheckConfig { config, no_env } => check_config(&config, no_env),
        Command::Status(args) => runtime()?.block_on(cli::ops::status(args)),
        Command::Destinations { action } => runtime()?.block_on(cli::ops::destinations(action)),
        Command::Events { action } => runtime()?.block_on(cli::ops::events(action)),
        Command::Publish(args) => runtime()?.block_on(cli::ops::publish(args)),
        Command::Dlq { action } => runtime()?.block_on(cli::dlq::run(action)),
        Command::Plugin { action } => runtime()?.block_on(cli::plugin::run(action)),
        Command::Migrate(args) => {
            init_logs(false);
            runtime()?.block_on(cli::migrate::run(args))
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "switchyard",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

fn check_config(path: &std::path::Path, no_env: bool) -> anyhow::Result<()> {
    if no_env {
        switchyard_core::secret::allow_unset_env();
    }
    let c = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "{}: ok ({} topics, {} destinations){}",
        path.display(),
        c.topics.len(),
        c.destinations.len(),
        if no_env {
            ", unset env: secrets not checked"
        } else {
            ""
        }
    );
    // What `serve` would warn about at start, said before it runs.
    if c.auth.tokens.is_empty() {
        eprintln!("warning: {}", switchyard::auth::NO_TOKENS_WARNING);
    }
    Ok(())
}

/// `--listen`: a socket address, with an example when it is not one.
fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    s.parse().map_err(|_| {
        format!("{s:?} is not an IP address and port: use e.g. 127.0.0.1:8080 or [::]:8080 (not a host name)")
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,fjall=warn,lsm_tree=warn"));
    // Colour only for a person at a terminal: a log written to a file or a
    // pipe (journald, a collector) must not carry ANSI escape codes.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn serve(
    config: Option<PathBuf>,
    listen: Option<std::net::SocketAddr>,
    data_dir: Option<PathBuf>,
    log_json: bool,
) -> anyhow::Result<()> {
    init_logs(log_json);
    let mut config = match &config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(l) = listen {
        config.server.listen = l;
    }
    if let Some(d) = data_dir {
        config.server.data_dir = d;
    }
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.listen))?;
        let reload = switchyard::Reload::new();
        // Registered before the gateway starts, so no SIGHUP falls to the
        // default action (which ends the process).
        #[cfg(unix)]
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(hup) => {
                tokio::spawn(reload_on_sighup(hup, reload.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot listen for SIGHUP; reload with POST /v1/admin/reload.");
            }
        }
        switchyard::run_with_reload(config, listener, shutdown_signal(), reload).await?;
        Ok(())
    })
}

/// SIGHUP reloads the config file (the library logs what changed).
#[cfg(unix)]
async fn reload_on_sighup(mut hup: tokio::signal::unix::Signal, reload: switchyard::Reload) {
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP received: reloading the config file.");
        let report = reload.request().await;
        if !report.reloaded {
            tracing::warn!(errors = ?report.errors, "SIGHUP reload refused.");
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
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
        _ = ctrl_c => {}
        _ = term => {}
    }
}
