//! JSON → spanned tree, with a small hand-written parser.
//!
//! JSON is nearly a YAML subset, but a dedicated parser gives JSON-shaped syntax errors
//! ("expected `,` or `}`"), exact positions for every value, strict RFC 8259 grammar
//! (surrogate pairs, no tabs-vs-indentation surprises), duplicate-key detection and a
//! nesting cap, in about two hundred lines and no dependency.

use crate::node::{Kind, MapBuilder, Node, Pos, MAX_DEPTH};
use crate::yaml::SyntaxError;

/// Parses one JSON value (surrounded by optional whitespace).
pub(crate) fn parse(src: &str) -> Result<Node, SyntaxError> {
    let mut p = JsonParser {
        src: src.as_bytes(),
        i: 0,
        line: 1,
        column: 1,
    };
    p.skip_ws();
    let node = p.value(0)?;
    p.skip_ws();
    if p.i < p.src.len() {
        return Err(p.error("unexpected text after the JSON value"));
    }
    Ok(node)
}

struct JsonParser<'s> {
    src: &'s [u8],
    i: usize,
    line: usize,
    column: usize,
}

impl JsonParser<'_> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }

    fn error(&self, message: impl Into<String>) -> SyntaxError {
        (self.pos(), format!("invalid JSON: {}", message.into()))
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.i).copied()
    }

    /// Moves past one byte, keeping line and (character) column.
    fn bump(&mut self) {
        if let Some(&b) = self.src.get(self.i) {
            if b == b'\n' {
                self.line += 1;
                self.column = 1;
            } else if b & 0xC0 != 0x80 {
                // Not a UTF-8 continuation byte: a new character.
                self.column += 1;
            }
            self.i += 1;
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.bump();
        }
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), SyntaxError> {
        if self.peek() == Some(byte) {
            self.bump();
            Ok(())
        } else {
            Err(self.error(format!("expected {what}")))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        let at = self.pos();
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => {
                let (value, content) = self.string()?;
                Ok(Node::str(value, at, content))
            }
            Some(b't') => self.word("true", Kind::Bool(true)),
            Some(b'f') => self.word("false", Kind::Bool(false)),
            Some(b'n') => self.word("null", Kind::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("expected a value")),
            None => Err(self.error("unexpected end of input")),
        }
    }

    fn word(&mut self, word: &str, kind: Kind) -> Result<Node, SyntaxError> {
        let at = self.pos();
        if self.src[self.i..].starts_with(word.as_bytes()) {
            for _ in 0..word.len() {
                self.bump();
            }
            Ok(Node::new(kind, at))
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn number(&mut self) -> Result<Node, SyntaxError> {
        let at = self.pos();
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.bump();
        }
        match self.peek() {
            Some(b'0') => self.bump(),
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("expected a digit")),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            integer = false;
            self.bump();
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(self.error("expected a digit after `.`"));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            integer = false;
            self.bump();
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.bump();
            }
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(self.error("expected a digit in the exponent"));
            }
            self.digits();
        }
        // Only ASCII was consumed, so this slice is valid UTF-8.
        let text = std::str::from_utf8(&self.src[start..self.i]).unwrap_or("");
        if integer {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Node::new(Kind::Int(i), at));
            }
        }
        match text.parse::<f64>() {
            Ok(f) => Ok(Node::new(Kind::Float(f), at)),
            Err(_) => Err((at, "invalid JSON: bad number".into())),
        }
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.bump();
        }
    }

    /// Parses a string at `"`; returns its value and, when it has no escapes, the position
    /// of its first character.
    fn string(&mut self) -> Result<(String, Option<Pos>), SyntaxError> {
        self.bump();
        let content = self.pos();
        let mut out = Vec::new();
        let mut escaped = false;
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.bump();
                    break;
                }
                Some(b'\\') => {
                    escaped = true;
                    self.bump();
                    let c = self.escape()?;
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                Some(b) if b < 0x20 => {
                    return Err(self.error("control character in string (escape it)"))
                }
                Some(b) => {
                    out.push(b);
                    self.bump();
                }
            }
        }
        // The input is a &str and escapes add whole characters, so `out` is UTF-8.
        let value = String::from_utf8(out).map_err(|_| self.error("invalid UTF-8 in string"))?;
        Ok((value, (!escaped).then_some(content)))
    }

    fn escape(&mut self) -> Result<char, SyntaxError> {
        let Some(b) = self.peek() else {
            return Err(self.error("unterminated string"));
        };
        self.bump();
        Ok(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4()?;
                if (0xD800..0xDC00).contains(&hi) {
                    if !self.src[self.i..].starts_with(b"\\u") {
                        return Err(self.error("unpaired surrogate in \\u escape"));
                    }
                    self.bump();
                    self.bump();
                    let lo = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(self.error("unpaired surrogate in \\u escape"));
                    }
                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    char::from_u32(c).ok_or_else(|| self.error("invalid \\u escape"))?
                } else {
                    char::from_u32(hi)
                        .ok_or_else(|| self.error("unpaired surrogate in \\u escape"))?
                }
            }
            _ => return Err(self.error("unknown escape")),
        })
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let mut v = 0;
        for _ in 0..4 {
            let d = self
                .peek()
                .and_then(|b| (b as char).to_digit(16))
                .ok_or_else(|| self.error("expected 4 hex digits after \\u"))?;
            v = v * 16 + d;
            self.bump();
        }
        Ok(v)
    }

    fn array(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        let at = self.pos();
        if depth >= MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.bump();
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.bump();
            return Ok(Node::new(Kind::Seq(items), at));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.bump(),
                Some(b']') => {
                    self.bump();
                    return Ok(Node::new(Kind::Seq(items), at));
                }
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        let at = self.pos();
        if depth >= MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.bump();
        let mut map = MapBuilder::default();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.bump();
            return Ok(map.finish(at));
        }
        loop {
            self.skip_ws();
            let key_pos = self.pos();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a key in double quotes"));
            }
            let (key, _) = self.string()?;
            map.check_key(&key, key_pos).map_err(|m| (key_pos, m))?;
            self.skip_ws();
            self.expect(b':', "`:` after the key")?;
            self.skip_ws();
            let value = self.value(depth + 1)?;
            map.push(key, key_pos, value);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.bump(),
                Some(b'}') => {
                    self.bump();
                    return Ok(map.finish(at));
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_positions() {
        let node = parse(
            "{\n  \"a\": [1, -2.5e1, true, null, \"x\\u00e9\\ud83d\\ude00\"],\n\t\"b\": {}\n}",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let a = node.get("a").unwrap_or_else(|| panic!("no a"));
        assert_eq!(a.pos, Pos { line: 2, column: 8 });
        assert_eq!(a.item(4).and_then(Node::as_str), Some("xé😀"));
        assert_eq!(
            node.entry("b").map(|e| e.key_pos),
            Some(Pos { line: 3, column: 2 })
        );
    }

    #[test]
    fn errors() {
        for (src, line, column) in [
            ("{\"a\": 1,}", 1, 9),
            ("{\"a\": 1 \"b\": 2}", 1, 9),
            ("[1, 2", 1, 6),
            ("{\"a\": 1, \"a\": 2}", 1, 10),
            ("\"\\ud800\"", 1, 8),
            ("01", 1, 2),
        ] {
            let err = parse(src).err().unwrap_or_else(|| panic!("{src} parsed"));
            assert_eq!(err.0, Pos { line, column }, "{src}: {}", err.1);
        }
        assert!(parse(&"[".repeat(100_000)).is_err());
    }
}
