//! TOML → spanned tree, through the `toml` crate's spanned document API (`DeTable`).
//!
//! TOML's parser already rejects duplicate keys and caps nesting; it reports several syntax
//! errors at once, which we pass on. Map entries are put back in source order.

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::node::{content_pos, Entry, Kind, LineIndex, Node};
use crate::yaml::SyntaxError;

/// Parses a TOML document.
pub(crate) fn parse(src: &str) -> Result<Node, Vec<SyntaxError>> {
    let lines = LineIndex::new(src);
    let (table, errors) = DeTable::parse_recoverable(src);
    if !errors.is_empty() {
        return Err(errors
            .iter()
            .map(|e| {
                let pos = lines.pos(e.span().map_or(0, |s| s.start));
                (pos, format!("invalid TOML: {}", e.message().trim_end()))
            })
            .collect());
    }
    let span = table.span();
    Ok(convert_table(&lines, table.into_inner(), span.start))
}

fn convert_table(lines: &LineIndex<'_>, table: DeTable<'_>, start: usize) -> Node {
    let mut entries: Vec<(usize, Entry)> = table
        .into_iter()
        .map(|(key, value)| {
            let key_start = key.span().start;
            let entry = Entry {
                key: key.into_inner().into_owned(),
                key_pos: lines.pos(key_start),
                value: convert(lines, value),
            };
            (key_start, entry)
        })
        .collect();
    entries.sort_by_key(|(start, _)| *start);
    Node::new(
        Kind::Map(entries.into_iter().map(|(_, e)| e).collect()),
        lines.pos(start),
    )
}

fn convert(lines: &LineIndex<'_>, value: Spanned<DeValue<'_>>) -> Node {
    let span = value.span();
    let at = lines.pos(span.start);
    match value.into_inner() {
        DeValue::String(s) => {
            let raw = lines.slice(span.start, span.end).unwrap_or("");
            // Only single-line basic or literal strings map 1:1 onto the source.
            let simple = (raw.starts_with('"') || raw.starts_with('\''))
                && !raw.starts_with("\"\"\"")
                && !raw.starts_with("'''");
            let content = if simple {
                content_pos(raw, &s, true, at)
            } else {
                None
            };
            Node::str(s.into_owned(), at, content)
        }
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(v) => Node::new(Kind::Int(v), at),
            Err(_) => Node::new(Kind::Float(i.as_str().parse().unwrap_or(f64::NAN)), at),
        },
        DeValue::Float(f) => Node::new(Kind::Float(parse_float(f.as_str())), at),
        DeValue::Boolean(b) => Node::new(Kind::Bool(b), at),
        DeValue::Datetime(d) => Node::str(d.to_string(), at, None),
        DeValue::Array(items) => Node::new(
            Kind::Seq(items.into_iter().map(|v| convert(lines, v)).collect()),
            at,
        ),
        DeValue::Table(t) => convert_table(lines, t, span.start),
    }
}

fn parse_float(text: &str) -> f64 {
    match text.trim_start_matches('+') {
        "inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        "nan" | "-nan" => f64::NAN,
        t => t.parse().unwrap_or(f64::NAN),
    }
}
