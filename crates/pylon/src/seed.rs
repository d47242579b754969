//! `pylon store seed -c NODE --from FILE`: fills an empty etcd prefix with FILE's routes,
//! upstreams, middlewares and error pages, so a fleet can start from a config written as a
//! file. (Later changes go through the admin API, which writes with the same transaction.)
//!
//! Before anything is written, FILE's resources are built together with the node's own file
//! exactly as every node will build them, compiled, and read back from the keys they
//! become: a seed a node would refuse is never written.

use std::path::Path;
use std::process::ExitCode;

use pylon_config::{Config, ResourceKind};
use pylon_store::{Change, Contents, Layout};

pub fn seed(cli: &crate::Cli, from: &Path) -> anyhow::Result<ExitCode> {
    const NOTHING: &str = "; nothing was written";
    let (node, loaded) = match crate::load(cli, NOTHING) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let Some(settings) = loaded.config.etcd().cloned() else {
        eprintln!(
            "{}: `pylon store seed` needs a node config with `config: {{ store: etcd, endpoints: [...] }}`{NOTHING}",
            cli.config.display()
        );
        return Ok(ExitCode::FAILURE);
    };
    let shared = match pylon_config::parse_files(from) {
        Ok(parsed) => parsed,
        Err(errors) => {
            let what = from.display().to_string();
            return Ok(crate::print_errors(&what, &errors.0, NOTHING));
        }
    };
    let (merged, left_out) = node.with_shared(&shared);
    let config = match merged.build() {
        Ok(config) => config,
        Err(errors) => {
            let what = format!("{} with {}", from.display(), cli.config.display());
            return Ok(crate::print_errors(&what, &errors.0, NOTHING));
        }
    };
    let resolver = crate::engine::resolver(&config.dns).map_err(anyhow::Error::msg)?;
    if let Err(e) = pylon_core::Snapshot::compile(&config, 1, &resolver) {
        eprintln!("{}: {e}{NOTHING}", from.display());
        return Ok(ExitCode::FAILURE);
    }
    let changes = Change::all_of(&config)?;
    // What the nodes will build from the keys must be what was just checked.
    let layout = Layout::new(&settings.prefix);
    let read_back = Contents::default()
        .with_changes(&layout, &changes)
        .assemble(&node);
    if read_back.map(by_name).as_ref() != Ok(&by_name(config.clone())) {
        anyhow::bail!("the seed does not read back as the config it was made from{NOTHING}");
    }
    let seeded = crate::etcd::on_own_runtime(&settings, async |store| {
        store.seed(&config).await.map_err(|e| e.to_string())
    });
    match seeded {
        Ok(generation) => {
            println!(
                "seeded etcd prefix {} at {} from {}: {} routes, {} upstreams, {} middlewares{}; generation {generation}",
                settings.prefix,
                settings.endpoints.join(", "),
                from.display(),
                config.routes.len(),
                config.upstreams.len(),
                config.middlewares.len(),
                if changes.iter().any(|c| c.kind() == ResourceKind::ErrorPages) {
                    ", error pages"
                } else {
                    ""
                }
            );
            if !left_out.is_empty() {
                println!(
                    "note: `{}` in {} are node-local: not written (each node's own file sets them)",
                    left_out.join("`, `"),
                    from.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Routes in name order: a store lists them by key, a file in the order written.
fn by_name(mut config: Config) -> Config {
    config.routes.sort_by(|a, b| a.name.cmp(&b.name));
    config
}
