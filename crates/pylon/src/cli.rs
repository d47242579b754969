//! The command line: `pylon [run] -c FILE`, `pylon check -c FILE`, `pylon schema`,
//! `pylon store seed -c FILE --from FILE`, `pylon ctl …` (the admin API's client).

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The config file used when `-c` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "pylon.yaml";

#[derive(Debug, Parser)]
#[command(
    name = "pylon",
    version,
    about = "Pylon: an API gateway and reverse proxy on Pingora",
    args_conflicts_with_subcommands = false
)]
pub struct Cli {
    /// Config file, or a directory of config files (*.yaml, *.yml, *.toml, *.json) merged.
    #[arg(short = 'c', long = "config", global = true, default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,

    /// Overrides the address of the first listener, e.g. `127.0.0.1:8080` or `[::1]:8080`.
    #[arg(long, global = true)]
    pub bind: Option<SocketAddr>,

    /// Log filter, e.g. `info`, `debug`, `pylon_core=trace` (default: `RUST_LOG`, else `info`).
    #[arg(long, global = true)]
    pub log_level: Option<String>,

    /// Run in the background (Pingora's daemon mode; see `server.pid_file`).
    #[arg(short = 'd', long, global = true)]
    pub daemon: bool,

    /// Take over the listening sockets of a running Pylon (zero-downtime upgrade through
    /// `server.upgrade_sock`).
    #[arg(short = 'u', long, global = true)]
    pub upgrade: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Run,
    /// Validate the config: exit 0 if valid, else print every error and exit 1.
    Check,
    /// Print the JSON Schema of the config file.
    Schema,
    /// The shared config store of a fleet (`config: { store: etcd, … }` in `-c`'s file).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Drive a running Pylon through its admin API (`admin:` section): status, routes,
    /// upstreams, middlewares, the whole config.
    Ctl(CtlArgs),
}

/// `pylon ctl`: where the admin API is, the key, the output format.
#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// The admin API's base URL (plain HTTP).
    #[arg(long, env = "PYLON_ADMIN", default_value = "http://127.0.0.1:9180")]
    pub admin: String,

    /// An API key of `admin.api_keys` (sent as `Authorization: Bearer KEY`).
    #[arg(long, env = "PYLON_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Output: `table` for people, `json` (the API's JSON as is) for scripts, `yaml`
    /// (`config get` and single resources only).
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,

    #[command(subcommand)]
    pub command: CtlCommand,
}

/// How `pylon ctl` prints what the API answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Version, uptime, generation, listeners, counts, config mode, last reload.
    Status,
    /// Routes: `list`, `get NAME`, `add -f FILE`, `rm NAME`.
    Routes {
        #[command(subcommand)]
        command: ResourceCommand,
    },
    /// Upstreams: `list`, `get NAME`, `add -f FILE`, `rm NAME`.
    Upstreams {
        #[command(subcommand)]
        command: ResourceCommand,
    },
    /// Named middlewares: `list`, `get NAME`, `add -f FILE`, `rm NAME`.
    Middlewares {
        #[command(subcommand)]
        command: ResourceCommand,
    },
    /// The whole config: `get`, `apply -f FILE [--dry-run]`.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ResourceCommand {
    /// List them, as running.
    #[command(alias = "ls")]
    List,
    /// Show one, as running.
    Get { name: String },
    /// Create one from a YAML or JSON file (a resource with `name`).
    Add {
        /// The resource file (`.yaml`, `.yml`, `.json`, `.toml`; `-` reads YAML or JSON from stdin).
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Create or replace (PUT) instead of create only (POST; an existing name is 409).
        #[arg(long)]
        replace: bool,
        /// Validate and show the diff; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete one.
    #[command(alias = "delete")]
    Rm {
        name: String,
        /// Validate and show the diff; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the running config (without `admin`): YAML, or JSON with `-o json`.
    Get,
    /// Replace what the API manages with a config file (PUT /api/v1/config).
    Apply {
        /// The config file (`.yaml`, `.yml`, `.json`, `.toml`; `-` reads YAML or JSON from stdin).
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Validate and show the diff; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Fill an empty etcd prefix with a config file's routes, upstreams, middlewares and
    /// error pages.
    ///
    /// They are checked first with this node's file (`-c`) as every node will build them,
    /// and written in one transaction; the file's node-local sections (`server`,
    /// `listeners`, `dns`, `reload`) are not written. A prefix that holds any key is
    /// refused.
    Seed {
        /// The config file (or directory) whose routes, upstreams, middlewares and error
        /// pages to write.
        #[arg(long)]
        from: PathBuf,
    },
}
