//! `pylon ctl`: the command-line client of the admin API (`docs/admin-api.md`).
//!
//! Tables for people by default, the API's JSON as is with `-o json`. Exit codes: 0 done,
//! 1 the API refused (its error and each validation error on its own line, on stderr) or a
//! bad argument or file, 2 the API could not be reached.

mod client;
mod table;

use crate::cli::{ConfigCommand, CtlArgs, CtlCommand, Output, ResourceCommand};
use client::{Client, Failure, Reply};
use hyper::Method;
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

/// Runs one `pylon ctl` command and reports how it went.
pub fn run(args: &CtlArgs) -> ExitCode {
    let result = Client::new(&args.admin, args.api_key.as_deref())
        .and_then(|client| dispatch(&client, args));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("pylon ctl: {message}");
            ExitCode::FAILURE
        }
        Err(Failure::Unreachable(message)) => {
            eprintln!("pylon ctl: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Api(reply)) => {
            print_api_error(&reply, args.api_key.is_some());
            ExitCode::FAILURE
        }
    }
}

/// The API's error on stderr: status and message, then each error on its own line.
fn print_api_error(reply: &Reply, sent_key: bool) {
    let body = reply.json();
    let message = body["error"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| reply.text().trim().to_string());
    eprintln!("pylon ctl: {} {message}", reply.status);
    if let Some(errors) = body["errors"].as_array() {
        for error in errors {
            match error.as_str() {
                Some(text) => eprintln!("  {text}"),
                None => eprintln!("  {error}"),
            }
        }
    }
    if reply.status == 401 {
        let hint = if sent_key {
            "the API key was refused: check --api-key / PYLON_API_KEY against admin.api_keys"
        } else {
            "the admin API wants credentials: pass --api-key KEY or set PYLON_API_KEY"
        };
        eprintln!("  {hint}");
    }
}

/// The kinds of resources the API manages one by one.
#[derive(Clone, Copy)]
enum Kind {
    Route,
    Upstream,
    Middleware,
}

impl Kind {
    fn section(self) -> &'static str {
        match self {
            Kind::Route => "routes",
            Kind::Upstream => "upstreams",
            Kind::Middleware => "middlewares",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Kind::Route => "route",
            Kind::Upstream => "upstream",
            Kind::Middleware => "middleware",
        }
    }
}

fn dispatch(client: &Client, args: &CtlArgs) -> Result<(), Failure> {
    let output = args.output;
    match &args.command {
        CtlCommand::Status => {
            no_yaml(output, "status")?;
            let reply = client.call(Method::GET, "/api/v1/status", None)?;
            match output {
                Output::Json => print_raw(&reply),
                _ => print!("{}", table::status(&reply.json())),
            }
            Ok(())
        }
        CtlCommand::Routes { command } => resource(client, output, Kind::Route, command),
        CtlCommand::Upstreams { command } => resource(client, output, Kind::Upstream, command),
        CtlCommand::Middlewares { command } => resource(client, output, Kind::Middleware, command),
        CtlCommand::Config { command } => config(client, output, command),
    }
}

fn no_yaml(output: Output, what: &str) -> Result<(), Failure> {
    if output == Output::Yaml {
        return Err(Failure::Usage(format!(
            "-o yaml is not available for {what}: use table or json"
        )));
    }
    Ok(())
}

/// `?dry_run=true` when asked.
fn dry(dry_run: bool) -> &'static str {
    if dry_run {
        "?dry_run=true"
    } else {
        ""
    }
}

fn resource(
    client: &Client,
    output: Output,
    kind: Kind,
    command: &ResourceCommand,
) -> Result<(), Failure> {
    let section = kind.section();
    match command {
        ResourceCommand::List => {
            no_yaml(output, "a list")?;
            let reply = client.call(Method::GET, &format!("/api/v1/{section}"), None)?;
            match output {
                Output::Json => print_raw(&reply),
                _ => {
                    let items = reply.json();
                    let items = items.as_array().map(Vec::as_slice).unwrap_or_default();
                    print!(
                        "{}",
                        match kind {
                            Kind::Route => table::routes(items),
                            Kind::Upstream => table::upstreams(items),
                            Kind::Middleware => table::middlewares(items),
                        }
                    );
                }
            }
        }
        ResourceCommand::Get { name } => {
            let reply = client.call(
                Method::GET,
                &format!("/api/v1/{section}/{}", segment(name)?),
                None,
            )?;
            match output {
                Output::Json => print_raw(&reply),
                _ => print!("{}", pylon_config::to_yaml(&reply.json())),
            }
        }
        ResourceCommand::Add {
            file,
            replace,
            dry_run,
        } => {
            let value = read_document(file)?;
            let name = value
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    Failure::Usage(format!(
                        "{}: a {} needs a `name`",
                        file.display(),
                        kind.singular()
                    ))
                })?
                .to_string();
            no_yaml(output, "a write")?;
            let reply = if *replace {
                client.call(
                    Method::PUT,
                    &format!("/api/v1/{section}/{}{}", segment(&name)?, dry(*dry_run)),
                    Some(&value),
                )?
            } else {
                client.call(
                    Method::POST,
                    &format!("/api/v1/{section}{}", dry(*dry_run)),
                    Some(&value),
                )?
            };
            match output {
                Output::Json => print_raw(&reply),
                _ if *dry_run => print!("{}", table::report(&reply.json())),
                _ => {
                    let done = if reply.status == 201 {
                        "created"
                    } else {
                        "replaced"
                    };
                    println!("{} `{name}` {done}", kind.singular());
                    print_changes(&reply);
                }
            }
        }
        ResourceCommand::Rm { name, dry_run } => {
            no_yaml(output, "a write")?;
            let reply = client.call(
                Method::DELETE,
                &format!("/api/v1/{section}/{}{}", segment(name)?, dry(*dry_run)),
                None,
            )?;
            match output {
                Output::Json if !reply.body.is_empty() => print_raw(&reply),
                Output::Json => println!("{{}}"),
                _ if *dry_run => print!("{}", table::report(&reply.json())),
                _ => {
                    println!("{} `{name}` deleted", kind.singular());
                    print_changes(&reply);
                }
            }
        }
    }
    Ok(())
}

fn config(client: &Client, output: Output, command: &ConfigCommand) -> Result<(), Failure> {
    match command {
        ConfigCommand::Get => {
            let reply = client.call(Method::GET, "/api/v1/config", None)?;
            match output {
                Output::Json => print_raw(&reply),
                _ => print!("{}", pylon_config::to_yaml(&reply.json())),
            }
        }
        ConfigCommand::Apply { file, dry_run } => {
            no_yaml(output, "a write")?;
            let value = read_document(file)?;
            let reply = client.call(
                Method::PUT,
                &format!("/api/v1/config{}", dry(*dry_run)),
                Some(&value),
            )?;
            match output {
                Output::Json => print_raw(&reply),
                _ => print!("{}", table::report(&reply.json())),
            }
        }
    }
    Ok(())
}

/// A resource name as one path segment: names with `/`, `?`, `#`, `%` or spaces cannot be
/// sent as they are (the API's names never hold them).
fn segment(name: &str) -> Result<&str, Failure> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| matches!(c, '/' | '?' | '#' | '%') || c.is_whitespace() || c.is_control())
    {
        return Err(Failure::Usage(format!("`{name}` is not a resource name")));
    }
    Ok(name)
}

/// Reads `path` (YAML, JSON or TOML by its extension; `-` is stdin, JSON if it starts with
/// `{`, else YAML) into JSON, as written: no `${VAR}` substitution (the API takes values
/// literally).
fn read_document(path: &Path) -> Result<Value, Failure> {
    let (text, format) = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::Usage(format!("reading stdin: {e}")))?;
        let format = if text.trim_start().starts_with('{') {
            pylon_config::Format::Json
        } else {
            pylon_config::Format::Yaml
        };
        (text, format)
    } else {
        let format = pylon_config::Format::from_path(path).ok_or_else(|| {
            Failure::Usage(format!(
                "{}: unknown file type (use .yaml, .yml, .json or .toml)",
                path.display()
            ))
        })?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
        (text, format)
    };
    pylon_config::parse_value(&text, format, path).map_err(|errors| {
        let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
        Failure::Usage(lines.join("\n"))
    })
}

/// The body as the API sent it, ending with a newline.
fn print_raw(reply: &Reply) {
    let text = reply.text();
    if text.ends_with('\n') {
        print!("{text}");
    } else {
        println!("{text}");
    }
}

fn print_changes(reply: &Reply) {
    if let Some(changes) = &reply.changes {
        println!("changes: {changes}");
    }
}
