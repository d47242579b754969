//! The `pylon` binary: parses the command line, loads and validates the config, compiles the
//! first snapshot and hands it to Pingora.

mod admin_store;
mod cli;
mod ctl;
mod engine;
mod etcd;
mod reload;
mod seed;
mod signals;

use anyhow::Context;
use arc_swap::ArcSwap;
use clap::Parser;
use cli::{Cli, Command, StoreCommand};
use engine::Follow;
use pingora::server::configuration::Opt;
use pylon_core::apply::Applier;
use pylon_core::Snapshot;
use reload::{ConfigSource, ReloadService};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// At exit, how long queued spans get to reach the collector.
const EXIT_SPAN_FLUSH: Duration = Duration::from_secs(2);

#[global_allocator]
static GLOBAL: pylon_alloc::PylonAlloc = pylon_alloc::PylonAlloc;

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
/// tells the user what the errors mean for this command. Also returns the parsed files.
fn load(
    cli: &Cli,
    outcome: &str,
) -> Result<(pylon_config::Parsed, pylon_config::Loaded), ExitCode> {
    source(cli)
        .parse()
        .map_err(|errors| print_errors(&cli.config.display().to_string(), &errors, outcome))
}

/// Prints every error, then how many there were in `what` and what that means.
fn print_errors(what: &str, errors: &[impl std::fmt::Display], outcome: &str) -> ExitCode {
    for error in errors {
        eprintln!("{error}");
    }
    eprintln!("{what}: {} error(s){outcome}", errors.len());
    ExitCode::FAILURE
}

/// With `config.store: etcd`, the config built from the node's files and the prefix read
/// with `read` (the store's settings and what was read, too); else `config` as it is.
fn with_store(
    cli: &Cli,
    parsed: &pylon_config::Parsed,
    config: pylon_config::Config,
    read: impl FnOnce(&pylon_config::StoreConfig) -> Result<pylon_store::Contents, String>,
    outcome: &str,
) -> Result<
    (
        pylon_config::Config,
        Option<(pylon_config::StoreConfig, pylon_store::Contents)>,
    ),
    ExitCode,
> {
    let Some(settings) = config.etcd().cloned() else {
        return Ok((config, None));
    };
    let contents = read(&settings).map_err(|e| {
        eprintln!("{e}{outcome}");
        ExitCode::FAILURE
    })?;
    let what = format!(
        "{} with etcd prefix {}",
        cli.config.display(),
        settings.prefix
    );
    let mut config = contents
        .assemble(parsed)
        .map_err(|errors| print_errors(&what, &errors.0, outcome))?;
    reload::apply_bind(&mut config, cli.bind).map_err(|e| {
        eprintln!("{e}{outcome}");
        ExitCode::FAILURE
    })?;
    Ok((config, Some((settings, contents))))
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
    let (parsed, loaded) = match load(cli, "; nothing was started") {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    if !cli.upgrade {
        if let Err(e) = check_listeners(&loaded.config) {
            eprintln!("{e}; nothing was started");
            return Ok(ExitCode::FAILURE);
        }
    }
    // Bound now, like the listeners are checked: a taken admin port stops the start.
    let admin_listener = match &loaded.config.admin {
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
    let metrics_listener = match loaded.config.metrics.listener {
        Some(addr) if !cli.upgrade && loaded.config.metrics.enabled => {
            match pylon_admin::bind(addr) {
                Ok(listener) => Some(listener),
                Err(e) => {
                    eprintln!("metrics: cannot listen on {addr}: {e}; nothing was started");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        _ => None,
    };
    let error_log = loaded.config.server.error_log.clone();
    init_logging(cli.log_level.as_deref(), error_log.as_deref())?;
    let (config, store) = match with_store(
        cli,
        &parsed,
        loaded.config.clone(),
        etcd::read_at_start,
        "; nothing was started",
    ) {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    let config = &config;
    let resolver = Arc::new(engine::resolver(&config.dns).map_err(anyhow::Error::msg)?);
    // `metrics:` is node-local: the file's, before the first compile makes the series.
    pylon_core::metrics::init(&loaded.config.metrics);
    pylon_core::metrics::register_collector(pylon_core::metrics::dropped_counters);
    let snapshot = Snapshot::compile(config, 1, &resolver).context("compiling the config")?;
    let shared = Arc::new(ArcSwap::from_pointee(snapshot));
    let metrics = loaded
        .config
        .metrics
        .listener
        .filter(|_| loaded.config.metrics.enabled)
        .map(|addr| pylon_admin::MetricsService::new(shared.clone(), addr, metrics_listener));
    let opt = Opt {
        upgrade: cli.upgrade,
        daemon: cli.daemon,
        ..Opt::default()
    };
    let applier = Arc::new(Applier::new(shared.clone(), resolver.clone()));
    // In etcd mode the admin API writes to etcd (the whole fleet gets the change through
    // its watch); else to the node's config files.
    let admin = config.admin.as_ref().map(|settings| {
        let store: Arc<dyn pylon_admin::ConfigStore> = match &store {
            Some((etcd_settings, _)) => Arc::new(admin_store::EtcdConfigStore::new(
                cli.config.clone(),
                parsed.clone(),
                etcd_settings.clone(),
                cli.bind,
            )),
            None => Arc::new(pylon_admin::FileStore::new(&cli.config, cli.bind)),
        };
        let admin =
            pylon_admin::Admin::new(settings, applier.clone(), store, env!("CARGO_PKG_VERSION"));
        pylon_admin::AdminService::new(Arc::new(admin), admin_listener)
    });
    let follow = match store {
        Some((settings, contents)) => {
            log::info!("read {}", etcd::describe(&settings, &contents));
            if contents.is_empty() {
                etcd::log_empty(&settings);
            }
            Follow::Etcd(etcd::EtcdWatch::new(
                parsed,
                settings,
                applier,
                cli.bind,
                contents.revision,
            ))
        }
        None => {
            let mut watched = loaded.files.clone();
            watched.extend(loaded.env_files.iter().cloned());
            Follow::File(ReloadService::new(
                source(cli),
                applier,
                config.reload.clone(),
                watched,
            ))
        }
    };
    let server = engine::build_server(config, shared, resolver, follow, admin, metrics, opt);
    log::info!(
        "pylon {} serving {}",
        env!("CARGO_PKG_VERSION"),
        cli.config.display()
    );
    server.run(pingora::server::RunArgs::default());
    // `run` returns once the engine stopped (SIGTERM, SIGQUIT): the access log lines and
    // spans of the last requests are still queued. The process then exits without running
    // destructors.
    pylon_core::access_log::flush_all();
    pylon_core::tracing::flush_all(EXIT_SPAN_FLUSH);
    std::process::exit(0)
}

fn check(cli: &Cli) -> anyhow::Result<ExitCode> {
    let (parsed, loaded) = match load(cli, "") {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let (config, store) = match with_store(cli, &parsed, loaded.config, etcd::read_once, "") {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    let resolver = engine::resolver(&config.dns).map_err(anyhow::Error::msg)?;
    Snapshot::compile(&config, 1, &resolver).context("compiling the config")?;
    let from = store
        .map(|(settings, contents)| format!("; from {}", etcd::describe(&settings, &contents)))
        .unwrap_or_default();
    println!(
        "{}: ok ({} listeners, {} upstreams, {} routes{from})",
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
        Some(Command::Store {
            command: StoreCommand::Seed { ref from },
        }) => seed::seed(&cli, from),
        Some(Command::Ctl(ref args)) => Ok(ctl::run(args)),
        Some(Command::Run) | None => run(&cli),
    }
}
