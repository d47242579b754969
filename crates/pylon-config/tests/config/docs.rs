//! The examples in docs/config.md, docs/upstreams.md, docs/middlewares.md, docs/security.md,
//! docs/observability.md
//! and the README load, and the error example prints
//! what the page shows.

use std::path::Path;

use pylon_config::{load_str, Config, ConfigErrors, Format};

/// The fenced code blocks of docs/config.md, as (language, text).
fn blocks() -> Vec<(String, String)> {
    blocks_of("config.md")
}

/// The fenced code blocks of a page under docs/, as (language, text).
fn blocks_of(page: &str) -> Vec<(String, String)> {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs")
            .join(page),
    )
    .unwrap();
    blocks_in(&page)
}

/// The fenced code blocks of a text, as (language, text).
fn blocks_in(page: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in page.lines() {
        match (line.strip_prefix("```"), current.take()) {
            (Some(lang), None) => current = Some((lang.to_string(), String::new())),
            (Some(_), Some(done)) => out.push(done),
            (None, Some((lang, mut text))) => {
                text.push_str(line);
                text.push('\n');
                current = Some((lang, text));
            }
            (None, None) => {}
        }
    }
    out
}

#[test]
fn complete_examples_load() {
    let blocks = blocks();
    let first = |lang: &str| {
        blocks
            .iter()
            .find(|(l, _)| l == lang)
            .map(|(_, t)| t.clone())
            .unwrap()
    };
    let yaml = load_str(&first("yaml"), Format::Yaml, Path::new("doc.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let toml = load_str(&first("toml"), Format::Toml, Path::new("doc.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let json = load_str(&first("json"), Format::Json, Path::new("doc.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(yaml.routes.len(), 2);
    assert_eq!(toml.routes.len(), 2);
    assert_eq!(json.routes.len(), 2);
    assert_eq!(yaml.upstreams, json.upstreams);
}

#[test]
fn error_example_matches_the_page() {
    let blocks = blocks();
    let at = blocks
        .iter()
        .position(|(l, t)| l == "yaml" && t.contains("adress"))
        .unwrap();
    let errors = load_str(&blocks[at].1, Format::Yaml, Path::new("pylon.yaml")).unwrap_err();
    assert_eq!(format!("{errors}\n"), blocks[at + 1].1);
}

/// Loads a YAML example, adding a listener when it has none. Errors about files the example
/// names (certificates, htpasswd files) are expected on a machine that lacks them; others
/// are not. Environment variables it reads (`${CI_KEY}`) get a placeholder value when
/// unset, so the rest of the example is still checked.
fn load_example(text: &str) -> Result<Config, ConfigErrors> {
    let mut full = String::new();
    if !text.contains("listeners:") {
        full.push_str("listeners:\n  - { name: web, address: \"127.0.0.1:8080\" }\n");
    }
    // `$$` is a literal `$` (regex replacements write `$${name}`): kept as written.
    let var = regex::Regex::new(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}").unwrap();
    full.push_str(&var.replace_all(text, |c: &regex::Captures<'_>| {
        match c.get(1) {
            Some(name) => std::env::var(name.as_str())
                // Long enough for any secret length check (HS512 wants 64 bytes).
                .unwrap_or_else(|_| format!("placeholder-{}-{}", name.as_str(), "x".repeat(64))),
            None => "$$".to_string(),
        }
    }));
    match load_str(&full, Format::Yaml, Path::new("doc.yaml")) {
        Err(errors)
            if errors
                .iter()
                .all(|e| e.message.starts_with("cannot read /")) =>
        {
            Ok(Config::default())
        }
        other => other,
    }
}

/// Every `yaml` block of these pages is a Pylon config (or a piece of one); other programs'
/// YAML (Prometheus, the OpenTelemetry Collector) is fenced as `yml`.
#[test]
fn every_yaml_example_loads() {
    for page in [
        "config.md",
        "upstreams.md",
        "middlewares.md",
        "security.md",
        "observability.md",
    ] {
        let blocks = blocks_of(page);
        let yaml: Vec<_> = blocks.iter().filter(|(l, _)| l == "yaml").collect();
        assert!(yaml.len() > 3, "{page}");
        for (_, text) in yaml {
            if text.contains("adress") {
                continue; // the error example
            }
            if let Err(e) = load_example(text) {
                panic!("{page}: example does not load:\n{text}\n{e}");
            }
        }
    }
}

/// The guide shows load-balancer mode and what it stands for: they load the same.
#[test]
fn load_balancer_mode_example_matches_its_expansion() {
    let blocks = blocks_of("upstreams.md");
    let at = blocks
        .iter()
        .position(|(l, t)| l == "yaml" && t.contains("\nupstream:\n"))
        .unwrap();
    let short = load_example(&blocks[at].1).unwrap();
    let long = load_example(&blocks[at + 1].1).unwrap();
    assert_eq!(short, long);
    assert_eq!(short.routes.len(), 1);
}

#[test]
fn readme_config_example_loads() {
    let blocks = blocks_of("../README.md");
    let yaml: Vec<_> = blocks.iter().filter(|(l, _)| l == "yaml").collect();
    assert_eq!(yaml.len(), 1, "the README shows one config");
    if let Err(e) = load_example(&yaml[0].1) {
        panic!(
            "README: the config example does not load:\n{}\n{e}",
            yaml[0].1
        );
    }
}

/// The fenced blocks under one `## heading` of a page (up to the next `## `).
fn section_blocks(page: &str, heading: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs")
            .join(page),
    )
    .unwrap();
    let start = text
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("{page} has no section {heading}"));
    let rest = &text[start + 1..];
    let section = match rest[3..].find("\n## ") {
        Some(end) => &rest[..end + 3],
        None => rest,
    };
    blocks_in(section)
}

#[test]
fn rate_limit_and_concurrency_limit_examples_in_security_md_load() {
    for heading in ["`rate_limit`", "`concurrency_limit`"] {
        let yaml: Vec<_> = section_blocks("security.md", heading)
            .into_iter()
            .filter(|(l, _)| l == "yaml")
            .collect();
        assert!(
            !yaml.is_empty(),
            "security.md {heading} has no YAML example"
        );
        for (_, text) in yaml {
            if let Err(e) = load_example(&text) {
                panic!("security.md {heading}: example does not load:\n{text}\n{e}");
            }
        }
    }
}
