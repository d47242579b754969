//! The spanned document tree that YAML, TOML and JSON are all parsed into.
//!
//! Every node remembers where it starts (1-based line and column, in characters), so the
//! typed deserializer, env substitution and validation can all point at the exact spot.
//! The tree is format-neutral: one deserializer and one set of checks serve all formats.

use std::collections::HashMap;

/// Maximum nesting of maps and lists. Real configs stay under ten; the cap keeps the
/// recursive passes over the tree (substitution, deserialization, drop) far from the stack
/// limit whatever the input.
pub(crate) const MAX_DEPTH: usize = 64;

/// A 1-based position in a source file (column counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub const START: Pos = Pos { line: 1, column: 1 };
}

/// A value and where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
    /// A scalar whose env substitution failed: the error is already reported, so anything
    /// that tries to read it fails silently instead of adding a second, confusing error.
    Poisoned,
}

/// A string scalar.
#[derive(Debug, Clone)]
pub(crate) struct Scalar {
    pub value: String,
    /// Where the first character of `value` sits in the source, when the value is the
    /// source text verbatim on one line (no escapes, folding or substitution). Lets errors
    /// inside a string (a rule's parse error) point at the exact character.
    pub content: Option<Pos>,
    /// Whether `${VAR}` substitution produced this value: such a string may stand for a
    /// number or boolean where the model expects one (`weight: ${W}`).
    pub substituted: bool,
}

/// One `key: value` pair of a map.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

impl Node {
    pub fn new(kind: Kind, pos: Pos) -> Node {
        Node { kind, pos }
    }

    pub fn str(value: String, pos: Pos, content: Option<Pos>) -> Node {
        let scalar = Scalar {
            value,
            content,
            substituted: false,
        };
        Node::new(Kind::Str(scalar), pos)
    }

    /// The value under `key`, when this is a map holding it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// The entry under `key`, when this is a map holding it.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    /// The `index`th item, when this is a list that long.
    pub fn item(&self, index: usize) -> Option<&Node> {
        match &self.kind {
            Kind::Seq(items) => items.get(index),
            _ => None,
        }
    }

    /// The string value, when this is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(&s.value),
            _ => None,
        }
    }

    /// Number of nodes in this subtree.
    pub fn size(&self) -> usize {
        1 + match &self.kind {
            Kind::Seq(items) => items.iter().map(Node::size).sum(),
            Kind::Map(entries) => entries.iter().map(|e| e.value.size()).sum(),
            _ => 0,
        }
    }
}

/// Builds a map from entries, reporting duplicate keys as (second key's position, message).
/// Linear in the number of keys.
#[derive(Default)]
pub(crate) struct MapBuilder {
    entries: Vec<Entry>,
    seen: HashMap<String, Pos>,
}

impl MapBuilder {
    /// Checks that `key` is new; returns the error message when it is a duplicate.
    pub fn check_key(&mut self, key: &str, pos: Pos) -> Result<(), String> {
        if let Some(first) = self.seen.get(key) {
            return Err(format!(
                "duplicate key `{key}` (first defined at line {}, column {})",
                first.line, first.column
            ));
        }
        self.seen.insert(key.to_string(), pos);
        Ok(())
    }

    pub fn push(&mut self, key: String, key_pos: Pos, value: Node) {
        self.entries.push(Entry {
            key,
            key_pos,
            value,
        });
    }

    pub fn finish(self, pos: Pos) -> Node {
        Node::new(Kind::Map(self.entries), pos)
    }
}

/// The key path of `key` inside the map at `parent` (`routes[1]` + `rule` → `routes[1].rule`).
/// Keys that are not plain words are quoted: `upstreams["my.app"]`.
pub(crate) fn key_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}

/// The key path of item `index` of the list at `parent`.
pub(crate) fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// Bytes per checkpoint of [`LineIndex`]: a lookup scans at most this many bytes.
const BLOCK: usize = 64;

/// Maps byte offsets and character indexes of one source text to positions, in
/// O(log n + 64) per lookup whatever the line lengths (a one-line 16 MiB file stays fast).
pub(crate) struct LineIndex<'a> {
    src: &'a str,
    /// Byte offset where each line starts.
    starts: Vec<usize>,
    /// Characters before byte `k * BLOCK`, for each block `k`.
    chars_before: Vec<usize>,
}

/// Whether `b` starts a character (is not a UTF-8 continuation byte).
fn starts_char(b: &u8) -> bool {
    b & 0xC0 != 0x80
}

impl<'a> LineIndex<'a> {
    pub fn new(src: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        let mut chars_before = Vec::with_capacity(src.len() / BLOCK + 1);
        let mut count = 0;
        for block in src.as_bytes().chunks(BLOCK) {
            chars_before.push(count);
            count += block.iter().filter(|b| starts_char(b)).count();
        }
        chars_before.push(count);
        LineIndex {
            src,
            starts,
            chars_before,
        }
    }

    /// Number of characters before byte `offset`.
    fn chars_to(&self, offset: usize) -> usize {
        let offset = offset.min(self.src.len());
        let block = offset / BLOCK;
        let base = self.chars_before.get(block).copied().unwrap_or(0);
        base + self.src.as_bytes()[block * BLOCK..offset]
            .iter()
            .filter(|b| starts_char(b))
            .count()
    }

    /// The position of byte offset `offset`.
    pub fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.src.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        Pos {
            line,
            column: self.chars_to(offset) - self.chars_to(start) + 1,
        }
    }

    /// The byte offset of the character with 0-based index `index`.
    pub fn byte_of_char(&self, index: usize) -> Option<usize> {
        let block = self
            .chars_before
            .partition_point(|&c| c <= index)
            .checked_sub(1)?;
        let mut chars = self.chars_before[block];
        let bytes = self.src.as_bytes();
        for (i, b) in bytes.iter().enumerate().skip(block * BLOCK) {
            if starts_char(b) {
                if chars == index {
                    return Some(i);
                }
                chars += 1;
            }
        }
        (chars == index).then_some(bytes.len())
    }

    /// The source text between two byte offsets.
    pub fn slice(&self, start: usize, end: usize) -> Option<&'a str> {
        self.src.get(start..end)
    }
}

/// Where a quoted or plain scalar's content starts, when the raw source text `raw` (the
/// token from its first character, quotes included if `quoted`; trailing text is ignored)
/// shows `value` verbatim on one line.
pub(crate) fn content_pos(raw: &str, value: &str, quoted: bool, start: Pos) -> Option<Pos> {
    if value.contains('\n') {
        return None;
    }
    let verbatim = if quoted {
        let mut chars = raw.chars();
        let quote = chars.next()?;
        // A quote or (in double quotes) a backslash in the value was escaped in the source.
        let escaped = value.contains(quote) || (quote == '"' && value.contains('\\'));
        let rest = chars.as_str();
        !escaped
            && rest
                .strip_prefix(value)
                .is_some_and(|after| after.starts_with(quote))
    } else {
        // Plain scalars have no escapes; a folded multi-line one differs at the fold.
        raw.starts_with(value)
    };
    verbatim.then_some(Pos {
        line: start.line,
        column: start.column + usize::from(quoted),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index() {
        let src = format!("ab\né{}x\n", "ü".repeat(100));
        let idx = LineIndex::new(&src);
        assert_eq!(idx.pos(0), Pos { line: 1, column: 1 });
        assert_eq!(idx.pos(3), Pos { line: 2, column: 1 });
        let x = src.find('x').unwrap_or(0);
        assert_eq!(
            idx.pos(x),
            Pos {
                line: 2,
                column: 102
            }
        );
        assert_eq!(idx.byte_of_char(104), Some(x));
        assert_eq!(idx.byte_of_char(3), Some(3));
        assert_eq!(idx.byte_of_char(4), Some(5));
        assert_eq!(idx.byte_of_char(106), Some(src.len()));
        assert_eq!(idx.byte_of_char(107), None);
    }
}
