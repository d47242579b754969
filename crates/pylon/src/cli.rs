//! The command line: `pylon [run] -c FILE`, `pylon check -c FILE`, `pylon schema`,
//! `pylon store seed -c FILE --from FILE`.

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
