//! A serde `Deserializer` over the spanned tree: typing errors come out with the position of
//! the innermost offending node and its key path, in the words a user needs
//! (`expected a duration like "30s" …, found "fast"`, `unknown key `adress` in
//! listeners[0], did you mean `address`?`).
//!
//! Strings produced by `${VAR}` substitution are also accepted where a number or boolean is
//! expected, so `weight: ${W}` works in every format.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Error as _, Expected, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, Visitor,
};
use serde::forward_to_deserialize_any;

use crate::node::{index_path, key_path, Entry, Kind, Node, Pos};

/// A typing error, located once it has passed through the node it concerns.
#[derive(Debug)]
pub(crate) struct DeError {
    pub pos: Option<Pos>,
    pub path: Option<String>,
    pub kind: ErrorKind,
    /// For an error inside a string value (a parse error in a transform expression), the
    /// 1-based character column within the string; see [`error_at_column`].
    pub column: Option<usize>,
}

#[derive(Debug)]
pub(crate) enum ErrorKind {
    Message(String),
    /// A key the model does not know; rendered with its map's path once known.
    UnknownKey {
        key: String,
        hint: Option<&'static str>,
    },
    /// Reading a poisoned node: its error was already reported.
    Suppressed,
}

impl DeError {
    fn new(kind: ErrorKind) -> Self {
        DeError {
            pos: None,
            path: None,
            kind,
            column: None,
        }
    }

    /// Sets the position and path unless an inner node already did.
    fn locate(mut self, pos: Pos, path: &str) -> Self {
        if self.pos.is_none() {
            self.pos = Some(pos);
            self.path = Some(path.to_string());
        }
        self
    }

    /// Like `locate`, at a node: an error at a column of a string value points at that
    /// character when the string is written verbatim on one line, else at the value.
    fn locate_at(mut self, node: &Node, path: &str) -> Self {
        let mut pos = node.pos;
        if let (Some(column), Kind::Str(s)) = (self.column.take(), &node.kind) {
            if let Some(content) = s.content {
                pos = Pos {
                    line: content.line,
                    column: content.column + column.saturating_sub(1),
                };
                // The position says it now.
                if let ErrorKind::Message(m) = &mut self.kind {
                    if let Some(stripped) = m.strip_suffix(&format!(" (at character {column})")) {
                        *m = stripped.to_string();
                    }
                }
            }
        }
        self.locate(pos, path)
    }

    /// The message a user reads.
    pub fn message(&self) -> Option<String> {
        match &self.kind {
            ErrorKind::Message(m) => Some(m.clone()),
            ErrorKind::UnknownKey { key, hint } => Some(unknown_key_message(key, "", *hint)),
            ErrorKind::Suppressed => None,
        }
    }
}

/// `unknown key `adress` in listeners[0], did you mean `address`?`
pub(crate) fn unknown_key_message(key: &str, parent: &str, hint: Option<&str>) -> String {
    let mut m = format!("unknown key `{key}`");
    if parent.is_empty() {
        m.push_str(" at the top level");
    } else {
        m.push_str(&format!(" in {parent}"));
    }
    if let Some(hint) = hint {
        m.push_str(&format!(", did you mean `{hint}`?"));
    }
    m
}

/// The closest of `candidates` to `word`, when close enough to be a plausible typo: a small
/// edit distance (transpositions count as one edit) or a strong common prefix.
pub(crate) fn did_you_mean<'c, I: IntoIterator<Item = &'c str>>(
    word: &str,
    candidates: I,
) -> Option<&'c str> {
    let max_edits = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter_map(|c| {
            let edits = strsim::damerau_levenshtein(word, c);
            let similarity = strsim::jaro_winkler(word, c);
            (edits <= max_edits || similarity > 0.85).then_some((edits, similarity, c))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, c)| c)
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message().unwrap_or_default())
    }
}

impl std::error::Error for DeError {}

/// Marks a custom error message as being about character `column` (1-based) of the
/// string being deserialized, so the error points there.
const COLUMN_MARK: char = '\u{1}';

/// A serde error about character `column` (1-based) of the string value being
/// deserialized: through Pylon's loader it is reported at that character's line and
/// column when the string is written verbatim; through any other deserializer it reads as
/// "… (at character N)".
#[allow(dead_code)] // used by the transform and template parsers
pub fn error_at_column<E: de::Error>(column: usize, message: impl fmt::Display) -> E {
    E::custom(format_args!(
        "{message} (at character {column}){COLUMN_MARK}{column}"
    ))
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        let text = msg.to_string();
        if let Some((message, column)) = text.rsplit_once(COLUMN_MARK) {
            if let Ok(column) = column.parse::<usize>() {
                // The message keeps "(at character N)" only where the position cannot
                // say it (a folded or substituted string); `locate_at` drops it otherwise.
                let mut e = DeError::new(ErrorKind::Message(message.to_string()));
                e.column = Some(column);
                return e;
            }
        }
        DeError::new(ErrorKind::Message(text))
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Self::custom(format_args!(
            "expected {}, found {}",
            expected(exp),
            found(&unexp)
        ))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Self::invalid_type(unexp, exp)
    }

    fn invalid_length(len: usize, exp: &dyn Expected) -> Self {
        Self::custom(format_args!(
            "expected {}, found {len} items",
            expected(exp)
        ))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut m = format!(
            "unknown value `{variant}`, expected one of: {}",
            expected.join(", ")
        );
        if let Some(hint) = did_you_mean(variant, expected.iter().copied()) {
            m.push_str(&format!("; did you mean `{hint}`?"));
        }
        Self::custom(m)
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let hint = did_you_mean(field, expected.iter().copied());
        DeError::new(ErrorKind::UnknownKey {
            key: field.to_string(),
            hint,
        })
    }

    fn missing_field(field: &'static str) -> Self {
        Self::custom(format_args!("missing required key `{field}`"))
    }

    fn duplicate_field(field: &'static str) -> Self {
        Self::custom(format_args!("duplicate key `{field}`"))
    }
}

/// Serde's own expectations in user words (`u32` → `a whole number from 0 to 4294967295`).
fn expected(exp: &dyn Expected) -> String {
    let text = exp.to_string();
    let max = match text.as_str() {
        "u8" => Some(u64::from(u8::MAX)),
        "u16" => Some(u64::from(u16::MAX)),
        "u32" => Some(u64::from(u32::MAX)),
        "u64" | "usize" => Some(u64::MAX),
        _ => None,
    };
    if let Some(max) = max {
        return format!("a whole number from 0 to {max}");
    }
    match text.as_str() {
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a sequence" => "a list".into(),
        "a boolean" => "`true` or `false`".into(),
        t if t.starts_with("struct ") => "a map".into(),
        _ => text,
    }
}

fn found(unexp: &Unexpected<'_>) -> String {
    match unexp {
        Unexpected::Bool(b) => format!("`{b}`"),
        Unexpected::Unsigned(n) => format!("the number {n}"),
        Unexpected::Signed(n) => format!("the number {n}"),
        Unexpected::Float(n) => format!("the number {n}"),
        Unexpected::Str(s) => format!("{s:?}"),
        Unexpected::Unit => "nothing (null)".into(),
        Unexpected::Seq => "a list".into(),
        Unexpected::Map => "a map".into(),
        other => other.to_string(),
    }
}

/// Deserializes one node; `path` is its key path.
pub(crate) struct NodeDe<'de> {
    pub node: &'de Node,
    pub path: String,
}

impl<'de> NodeDe<'de> {
    pub fn new(node: &'de Node, path: String) -> Self {
        NodeDe { node, path }
    }

    /// The substituted string of this node, if it is one.
    fn substituted(&self) -> Option<&'de str> {
        match &self.node.kind {
            Kind::Str(s) if s.substituted => Some(s.value.trim()),
            _ => None,
        }
    }

    /// Runs `f` and locates any error at this node.
    fn run<T>(self, f: impl FnOnce(Self) -> Result<T, DeError>) -> Result<T, DeError> {
        let node = self.node;
        let path = self.path.clone();
        f(self).map_err(|e| e.locate_at(node, &path))
    }

    fn any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            Kind::Null => visitor.visit_unit(),
            Kind::Bool(b) => visitor.visit_bool(*b),
            Kind::Int(i) => visitor.visit_i64(*i),
            Kind::Float(f) => visitor.visit_f64(*f),
            Kind::Str(s) => visitor.visit_borrowed_str(&s.value),
            Kind::Seq(items) => {
                let mut seq = SeqDe {
                    items: items.iter().enumerate(),
                    path: &self.path,
                };
                let value = visitor.visit_seq(&mut seq)?;
                match seq.items.len() {
                    0 => Ok(value),
                    rest => Err(DeError::custom(format_args!(
                        "expected {} items, found {}",
                        items.len() - rest,
                        items.len()
                    ))),
                }
            }
            Kind::Map(entries) => visitor.visit_map(MapDe {
                entries: entries.iter(),
                value: None,
                path: &self.path,
            }),
            Kind::Poisoned => Err(DeError::new(ErrorKind::Suppressed)),
        }
    }

    fn integer<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if let Some(text) = self.substituted() {
            if let Ok(i) = text.parse::<i64>() {
                return visitor.visit_i64(i);
            }
            if let Ok(u) = text.parse::<u64>() {
                return visitor.visit_u64(u);
            }
        }
        self.any(visitor)
    }

    fn float<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if let Some(text) = self.substituted() {
            if let Ok(f) = text.parse::<f64>() {
                return visitor.visit_f64(f);
            }
        }
        self.any(visitor)
    }
}

macro_rules! integers {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.run(|d| d.integer(visitor))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.run(|d| d.any(visitor))
    }

    integers!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.run(|d| d.float(visitor))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.run(|d| d.float(visitor))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.run(
            |d| match d.substituted().map(str::to_ascii_lowercase).as_deref() {
                Some("true") => visitor.visit_bool(true),
                Some("false") => visitor.visit_bool(false),
                _ => d.any(visitor),
            },
        )
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // A substitution that came out empty (`${THREADS:-}`) means "not set".
        self.run(|d| match &d.node.kind {
            Kind::Null => visitor.visit_none(),
            Kind::Str(s) if s.substituted && s.value.trim().is_empty() => visitor.visit_none(),
            Kind::Poisoned => Err(DeError::new(ErrorKind::Suppressed)),
            _ => visitor.visit_some(d),
        })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.run(|d| match &d.node.kind {
            Kind::Str(s) => visitor.visit_enum(s.value.as_str().into_deserializer()),
            // An externally tagged value: a map with exactly one key, the variant
            // (`cors: { … }`, `strip_prefix: /api`).
            Kind::Map(entries) => match entries.as_slice() {
                [entry] => visitor.visit_enum(EnumDe {
                    entry,
                    path: &d.path,
                }),
                _ => Err(DeError::custom(format_args!(
                    "expected a map with exactly one key, the type, found {} keys",
                    entries.len()
                ))),
            },
            _ => d.any(visitor),
        })
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        // A settings map written as nothing (`request_id:`) means "all defaults".
        self.run(|d| match &d.node.kind {
            Kind::Null => visitor.visit_map(MapDe {
                entries: [].iter(),
                value: None,
                path: &d.path,
            }),
            _ => d.any(visitor),
        })
    }

    forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
    }
}

struct SeqDe<'de, 'p> {
    items: std::iter::Enumerate<std::slice::Iter<'de, Node>>,
    path: &'p str,
}

impl<'de> SeqAccess<'de> for &mut SeqDe<'de, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some((i, node)) => seed
                .deserialize(NodeDe::new(node, index_path(self.path, i)))
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapDe<'de, 'p> {
    entries: std::slice::Iter<'de, Entry>,
    value: Option<&'de Entry>,
    path: &'p str,
}

impl<'de> MapAccess<'de> for MapDe<'de, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(entry);
        let path = key_path(self.path, &entry.key);
        seed.deserialize(KeyDe { key: &entry.key })
            .map(Some)
            .map_err(|e| {
                let e = match e.kind {
                    ErrorKind::UnknownKey { key, hint } => {
                        DeError::custom(unknown_key_message(&key, self.path, hint))
                    }
                    _ => e,
                };
                e.locate(entry.key_pos, &path)
            })
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(entry) => {
                seed.deserialize(NodeDe::new(&entry.value, key_path(self.path, &entry.key)))
            }
            None => Err(de::Error::custom("value requested before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An enum written as a one-key map: the key names the variant, the value is its content.
struct EnumDe<'de, 'p> {
    entry: &'de Entry,
    path: &'p str,
}

impl<'de> de::EnumAccess<'de> for EnumDe<'de, '_> {
    type Error = DeError;
    type Variant = NodeDe<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, NodeDe<'de>), DeError> {
        let path = key_path(self.path, &self.entry.key);
        let variant = seed
            .deserialize(KeyDe {
                key: &self.entry.key,
            })
            .map_err(|e| e.locate(self.entry.key_pos, &path))?;
        Ok((variant, NodeDe::new(&self.entry.value, path)))
    }
}

impl<'de> de::VariantAccess<'de> for NodeDe<'de> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        // `request_id:` with nothing after it, or `{}`: a variant without settings.
        match &self.node.kind {
            Kind::Null => Ok(()),
            Kind::Map(entries) if entries.is_empty() => Ok(()),
            _ => Err(DeError::custom("takes no settings").locate(self.node.pos, &self.path)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}

/// Deserializes a map key: always a string.
struct KeyDe<'de> {
    key: &'de str,
}

impl<'de> de::Deserializer<'de> for KeyDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_borrowed_str(self.key)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// Types one node as `T`, or returns its error as (position, path, message); `None` as
/// message means the error was already reported (a poisoned node).
pub(crate) fn from_node<'de, T: de::Deserialize<'de>>(
    node: &'de Node,
    path: String,
) -> Result<T, (Pos, String, Option<String>)> {
    T::deserialize(NodeDe::new(node, path.clone())).map_err(|e| {
        let message = e.message();
        (e.pos.unwrap_or(node.pos), e.path.unwrap_or(path), message)
    })
}
