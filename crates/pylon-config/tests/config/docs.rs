//! The examples in docs/config.md load, and the error example prints what the page shows.

use std::path::Path;

use pylon_config::{load_str, Format};

/// The fenced code blocks of the page, as (language, text).
fn blocks() -> Vec<(String, String)> {
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.md"))
            .unwrap();
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
