//! The `pylon` binary: parses the command line, loads and validates the config, compiles the
//! first snapshot and hands it to Pingora.

mod cli;
mod engine;
mod reload;

use anyhow::Context;
use arc_swap::ArcSwap;
use clap::Parser;
use cli::{Cli, Command};
use pingora::server::configuration::Opt;
use pylon_core::apply::Applier;
use pylon_core::Snapshot;
use reload::{ConfigSource, ReloadService};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Logs go to `server.error_log` when set (appended, in the foreground and as a daemon),
/// else to stderr. The filter is `--log-level`, else `RUST_LOG`, else `info`.
fn init_logging(level: Option<&str>, error_log: Option<&Path>) -> anyhow::Result<()> {
    let mut builder = match level {
        Some(filter) => {
            let mut b = env_logger::Builder::new();
            b.parse_filters(filter);
            b
        }
        None => env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")),
    };
    if let Some(path) = error_log {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening server.error_log {}", path.display()))?;
        builder.target(env_logger::Target::Pipe(Box::new(file)));
    }
    builder.format_timestamp_millis().init();
    Ok(())
}

fn source(cli: &Cli) -> ConfigSource {
    ConfigSource {
        path: cli.config.clone(),
        bind: cli.bind,
    }
}

/// Loads the config, applies `--bind`, and prints every error if it is invalid; `outcome`
/// tells the user what the errors mean for this command.
fn load(cli: &Cli, outcome: &str) -> Result<pylon_config::Loaded, ExitCode> {
    source(cli).load().map_err(|errors| {
        for error in &errors {
            eprintln!("{error}");
        }
        eprintln!(
            "{}: {} error(s){outcome}",
            cli.config.display(),
            errors.len()
        );
        ExitCode::FAILURE
    })
}

/// Checks that every listener address can be bound, before Pingora starts: Pingora reports
/// a failed bind from inside its service thread and keeps the process alive, which would leave
/// a gateway running that serves nothing. (Skipped on `--upgrade`, which inherits the sockets.)
fn check_listeners(config: &pylon_config::Config) -> Result<(), String> {
    for listener in &config.listeners {
        let addr = listener.address;
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )
        .map_err(|e| format!("listener `{}`: {e}", listener.name))?;
        // As Pingora binds: address reuse on, so connections in TIME_WAIT do not count.
        let bound = socket
            .set_reuse_address(true)
            .and_then(|()| socket.bind(&addr.into()))
            .and_then(|()| socket.listen(1));
        if let Err(e) = bound {
            return Err(format!(
                "listener `{}`: cannot listen on {addr}: {e}",
                listener.name
            ));
        }
    }
    Ok(())
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let loaded = match load(cli, "; nothing was started") {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let config = &loaded.config;
    if !cli.upgrade {
        if let Err(e) = check_listeners(config) {
            eprintln!("{e}; nothing was started");
            return Ok(ExitCode::FAILURE);
        }
    }
    // Bound now, like the listeners are checked: a taken admin port stops the start.
    let admin_listener = match &config.admin {
        Some(admin) if !cli.upgrade => match pylon_admin::bind(admin.listen) {
            Ok(listener) => Some(listener),
            Err(e) => {
                eprintln!(
                    "admin API: cannot listen on {}: {e}; nothing was started",
                    admin.listen
                );
                return Ok(ExitCode::FAILURE);
            }
        },
        _ => None,
    };
    init_logging(cli.log_level.as_deref(), config.server.error_log.as_deref())?;
    let resolver = Arc::new(engine::resolver(&config.dns).map_err(anyhow::Error::msg)?);
    let snapshot = Snapshot::compile(config, 1, &resolver).context("compiling the config")?;
    let shared = Arc::new(ArcSwap::from_pointee(snapshot));
    let opt = Opt {
        upgrade: cli.upgrade,
        daemon: cli.daemon,
        ..Opt::default()
    };
    let applier = Arc::new(Applier::new(shared.clone(), resolver.clone()));
    let mut watched = loaded.files.clone();
    watched.extend(loaded.env_files.iter().cloned());
    let admin = config.admin.as_ref().map(|settings| {
        let store = Arc::new(pylon_admin::FileStore::new(&cli.config, cli.bind));
        let admin =
            pylon_admin::Admin::new(settings, applier.clone(), store, env!("CARGO_PKG_VERSION"));
        pylon_admin::AdminService::new(Arc::new(admin), admin_listener)
    });
    let reload = ReloadService::new(source(cli), applier, config.reload.clone(), watched);
    let server = engine::build_server(config, shared, resolver, reload, admin, opt);
    log::info!(
        "pylon {} serving {}",
        env!("CARGO_PKG_VERSION"),
        cli.config.display()
    );
    server.run_forever()
}

fn check(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = match load(cli, "") {
        Ok(loaded) => loaded.config,
        Err(code) => return Ok(code),
    };
    let resolver = engine::resolver(&config.dns).map_err(anyhow::Error::msg)?;
    Snapshot::compile(&config, 1, &resolver).context("compiling the config")?;
    println!(
        "{}: ok ({} listeners, {} upstreams, {} routes)",
        cli.config.display(),
        config.listeners.len(),
        config.upstreams.len(),
        config.routes.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Schema) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&pylon_config::json_schema())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Check) => check(&cli),
        Some(Command::Run) | None => run(&cli),
    }
}
