//! YAML → spanned tree, built from `saphyr-parser` events.
//!
//! Building the tree ourselves (rather than through a YAML loader) lets us reject duplicate
//! keys, cap nesting, and bound alias expansion: a "billion laughs" document fails after
//! [`MAX_ALIAS_NODES`] expanded nodes instead of exhausting memory. Plain scalars are typed
//! with the YAML 1.2 core schema (`true`, `42`, `1.5`, `null`); quoted and block scalars
//! are strings.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

use crate::node::{content_pos, Kind, LineIndex, MapBuilder, Node, Pos, MAX_DEPTH};

/// Nodes that alias expansion (`*name`) may create in one document.
pub(crate) const MAX_ALIAS_NODES: usize = 10_000;

/// A syntax error: where, and what.
pub(crate) type SyntaxError = (Pos, String);

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        map: MapBuilder,
        key: Option<(String, Pos)>,
    },
}

struct Builder<'s> {
    lines: LineIndex<'s>,
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, Node>,
    alias_budget: usize,
}

/// Parses one YAML document. An empty document is `Null`.
pub(crate) fn parse(src: &str) -> Result<Node, SyntaxError> {
    let mut b = Builder {
        lines: LineIndex::new(src),
        stack: Vec::new(),
        root: None,
        anchors: HashMap::new(),
        alias_budget: MAX_ALIAS_NODES,
    };
    let mut parser = Parser::new_from_str(src);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| {
            let m = e.marker();
            (
                Pos {
                    line: m.line(),
                    column: m.col() + 1,
                },
                format!("invalid YAML: {}", e.info()),
            )
        })?;
        if b.event(event, span)? {
            break;
        }
    }
    Ok(b.root.unwrap_or(Node::new(Kind::Null, Pos::START)))
}

fn pos(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

impl Builder<'_> {
    /// Handles one event; true at the end of the stream.
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<bool, SyntaxError> {
        let at = pos(&span);
        match event {
            Event::StreamEnd => return Ok(true),
            Event::DocumentStart(_) if self.root.is_some() => {
                return Err((
                    at,
                    "a config file holds one YAML document; remove the second `---`".into(),
                ));
            }
            Event::Nothing | Event::StreamStart | Event::DocumentStart(_) | Event::DocumentEnd => {}
            Event::Scalar(value, style, anchor, tag) => {
                // A scalar where a map expects its key is the key, kept as written.
                if let Some(Frame::Map {
                    map,
                    key: key @ None,
                    ..
                }) = self.stack.last_mut()
                {
                    map.check_key(&value, at).map_err(|m| (at, m))?;
                    *key = Some((value.into_owned(), at));
                    return Ok(false);
                }
                let node = self.scalar(value.into_owned(), style, tag.as_deref(), &span, at)?;
                self.complete(node, anchor)?;
            }
            Event::SequenceStart(anchor, _) => {
                self.open(at)?;
                self.stack.push(Frame::Seq {
                    pos: at,
                    anchor,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(anchor, _) => {
                self.open(at)?;
                self.stack.push(Frame::Map {
                    pos: at,
                    anchor,
                    map: MapBuilder::default(),
                    key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq { pos, anchor, items }) => {
                    self.complete(Node::new(Kind::Seq(items), pos), anchor)?
                }
                Some(Frame::Map {
                    pos, anchor, map, ..
                }) => self.complete(map.finish(pos), anchor)?,
                None => return Err((at, "invalid YAML: unbalanced collection".into())),
            },
            Event::Alias(id) => {
                self.check_value_position(at)?;
                let Some(target) = self.anchors.get(&id) else {
                    return Err((at, "invalid YAML: alias to an unknown anchor".into()));
                };
                let size = target.size();
                if size > self.alias_budget {
                    return Err((
                        at,
                        format!("YAML aliases expand to more than {MAX_ALIAS_NODES} values; write the values out"),
                    ));
                }
                self.alias_budget -= size;
                let node = target.clone();
                self.complete(node, 0)?;
            }
        }
        Ok(false)
    }

    /// Checks that a collection may start here: not as a map key, not too deep.
    fn open(&self, at: Pos) -> Result<(), SyntaxError> {
        self.check_value_position(at)?;
        if self.stack.len() >= MAX_DEPTH {
            return Err((at, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn check_value_position(&self, at: Pos) -> Result<(), SyntaxError> {
        match self.stack.last() {
            Some(Frame::Map { key: None, .. }) => {
                Err((at, "map keys must be plain strings".into()))
            }
            _ => Ok(()),
        }
    }

    /// Attaches a finished node to its parent (or makes it the root).
    fn complete(&mut self, node: Node, anchor: usize) -> Result<(), SyntaxError> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { map, key, .. }) => match key.take() {
                Some((k, key_pos)) => map.push(k, key_pos, node),
                None => return Err((node.pos, "map keys must be plain strings".into())),
            },
        }
        Ok(())
    }

    fn scalar(
        &self,
        value: String,
        style: ScalarStyle,
        tag: Option<&Tag>,
        span: &Span,
        at: Pos,
    ) -> Result<Node, SyntaxError> {
        if let Some(tag) = tag {
            let core = tag.is_yaml_core_schema();
            match tag.suffix.as_str() {
                "str" if core => return Ok(self.string(value, style, span, at)),
                "int" | "float" | "bool" | "null" if core => {}
                _ => return Err((at, format!("unsupported YAML tag `{tag}`"))),
            }
        }
        if style != ScalarStyle::Plain {
            return Ok(self.string(value, style, span, at));
        }
        match resolve_plain(&value) {
            Some(kind) => Ok(Node::new(kind, at)),
            None => Ok(self.string(value, style, span, at)),
        }
    }

    fn string(&self, value: String, style: ScalarStyle, span: &Span, at: Pos) -> Node {
        let quoted = matches!(style, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted);
        let content = match style {
            ScalarStyle::Plain | ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                let start = self.lines.byte_of_char(span.start.index());
                let end = self.lines.byte_of_char(span.end.index());
                match (start, end) {
                    (Some(s), Some(e)) if s <= e => self
                        .lines
                        .slice(s, e)
                        .and_then(|raw| content_pos(raw, &value, quoted, at)),
                    _ => None,
                }
            }
            ScalarStyle::Literal | ScalarStyle::Folded => None,
        };
        Node::str(value, at, content)
    }
}

/// Types a plain scalar by the YAML 1.2 core schema; `None` means it is a string.
fn resolve_plain(v: &str) -> Option<Kind> {
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Kind::Null),
        "true" | "True" | "TRUE" => return Some(Kind::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Kind::Bool(false)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Some(Kind::Float(f64::INFINITY))
        }
        "-.inf" | "-.Inf" | "-.INF" => return Some(Kind::Float(f64::NEG_INFINITY)),
        ".nan" | ".NaN" | ".NAN" => return Some(Kind::Float(f64::NAN)),
        _ => {}
    }
    if let Some(hex) = v.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok().map(Kind::Int);
    }
    if let Some(oct) = v.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok().map(Kind::Int);
    }
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Some(match v.parse::<i64>() {
            Ok(i) => Kind::Int(i),
            Err(_) => Kind::Float(v.parse::<f64>().ok()?),
        });
    }
    let float_chars = digits
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if float_chars && digits.bytes().any(|b| b.is_ascii_digit()) && !digits.starts_with(['e', 'E'])
    {
        return v.parse::<f64>().ok().map(Kind::Float);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_schema() {
        assert!(matches!(resolve_plain("42"), Some(Kind::Int(42))));
        assert!(matches!(resolve_plain("-7"), Some(Kind::Int(-7))));
        assert!(matches!(resolve_plain("0x1f"), Some(Kind::Int(31))));
        assert!(matches!(resolve_plain("1.5"), Some(Kind::Float(_))));
        assert!(matches!(resolve_plain("1e3"), Some(Kind::Float(_))));
        assert!(matches!(resolve_plain("true"), Some(Kind::Bool(true))));
        assert!(matches!(resolve_plain("~"), Some(Kind::Null)));
        for s in [
            "30s",
            "127.0.0.1:80",
            "e5",
            "-",
            "1.2.3",
            "yes",
            "inf",
            "nan",
        ] {
            assert!(resolve_plain(s).is_none(), "{s}");
        }
    }
}
