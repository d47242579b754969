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

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new(ErrorKind::Message(msg.to_string()))
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
        let pos = self.node.pos;
        let path = self.path.clone();
        f(self).map_err(|e| e.locate(pos, &path))
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
            _ => d.any(visitor),
        })
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
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
