//! Go RE2 regular expressions, compiled with the `regex` crate.
//!
//! Traefik compiles `HostRegexp`, `PathRegexp`, `HeaderRegexp` and `QueryRegexp` with Go's
//! `regexp` package. The `regex` crate is its close cousin (same linear-time guarantee, mostly
//! the same syntax), but a handful of differences would silently change what a rule matches,
//! so patterns go through [`translate`] first:
//!
//! - A `{` that does not start a repetition (`{n}`, `{n,}`, `{n,m}`) is a literal in Go and an
//!   error in Rust: it is escaped. This keeps Traefik-v2-looking patterns such as
//!   `{domain:[a-z]+}` meaning what they mean in Traefik v3 (literal braces). `}` likewise.
//! - `\d`, `\w`, `\s` and `\b` are ASCII-only in Go and Unicode-aware in Rust: they are
//!   rewritten to their ASCII classes.
//! - Go's octal escapes (`\101`) and `\Q…\E` quoting become their Rust equivalents; escaped
//!   punctuation is always a literal (Rust reads `\<` as a word boundary, Go as `<`).
//! - Inside classes, Rust's set operators (`&&`, `--`, `~~`) and nested `[` are literals in Go.
//! - What Go refuses is refused: stacked repetitions (`a**`), repeat counts above 1000, flags
//!   other than `imsU`, unknown escapes.
//!
//! Matching is unanchored, as Go's `MatchString`. Input that is not UTF-8 is matched with each
//! invalid sequence replaced by U+FFFD, as Go's regexp reads it.

use regex::Regex;

/// A compiled Go-syntax regular expression.
#[derive(Debug, Clone)]
pub(crate) struct GoRegex {
    re: Regex,
}

impl GoRegex {
    /// Compiles a Go-syntax pattern; the error says what is wrong, without a position.
    pub(crate) fn new(pattern: &str) -> Result<GoRegex, String> {
        let translated = translate(pattern)?;
        let re = regex::RegexBuilder::new(&translated)
            .build()
            .map_err(|e| summarize(&e))?;
        Ok(GoRegex { re })
    }

    /// Whether the pattern matches somewhere in `text`.
    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.re.is_match(text)
    }

    /// Like [`GoRegex::is_match`] for bytes that are usually, but not always, UTF-8.
    pub(crate) fn is_match_bytes(&self, bytes: &[u8]) -> bool {
        match std::str::from_utf8(bytes) {
            Ok(s) => self.re.is_match(s),
            Err(_) => self.re.is_match(&String::from_utf8_lossy(bytes)),
        }
    }
}

/// The useful line of a `regex` error (its position refers to the translated pattern).
fn summarize(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(s) => s
            .lines()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or(s)
            .to_string(),
        regex::Error::CompiledTooBig(limit) => {
            format!("the compiled expression is larger than the {limit}-byte limit")
        }
        other => other.to_string(),
    }
}

const MAX_REPEAT: u32 = 1000;

const ASCII_DIGIT: &str = "0-9";
const ASCII_WORD: &str = "0-9A-Za-z_";
const ASCII_SPACE: &str = "\\t\\n\\f\\r ";

/// Rewrites a Go RE2 pattern into an equivalent `regex`-crate pattern (see the module doc).
pub(crate) fn translate(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    // Whether the previous item was a repetition operator (Go refuses to stack them).
    let mut after_repeat = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                i = escape(&chars, i, &mut out, false)?;
                after_repeat = false;
            }
            '[' => {
                i = class(&chars, i, &mut out)?;
                after_repeat = false;
            }
            '*' | '+' | '?' => {
                if after_repeat {
                    return Err(format!("invalid nested repetition operator `{c}`"));
                }
                out.push(c);
                i += 1;
                if chars.get(i) == Some(&'?') {
                    out.push('?');
                    i += 1;
                }
                after_repeat = true;
            }
            '{' => match repeat(&chars, i) {
                Some((end, min, max)) => {
                    if after_repeat {
                        return Err("invalid nested repetition operator `{`".to_string());
                    }
                    if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT) {
                        return Err(format!("invalid repeat count: more than {MAX_REPEAT}"));
                    }
                    if max.is_some_and(|m| m < min) {
                        return Err("invalid repeat count: maximum below minimum".to_string());
                    }
                    out.extend(&chars[i..end]);
                    i = end;
                    if chars.get(i) == Some(&'?') {
                        out.push('?');
                        i += 1;
                    }
                    after_repeat = true;
                }
                None => {
                    out.push_str("\\{");
                    i += 1;
                    after_repeat = false;
                }
            },
            '}' => {
                out.push_str("\\}");
                i += 1;
                after_repeat = false;
            }
            '(' if chars.get(i + 1) == Some(&'?') => {
                i = group_open(&chars, i, &mut out)?;
                after_repeat = false;
            }
            _ => {
                out.push(c);
                i += 1;
                after_repeat = false;
            }
        }
    }
    Ok(out)
}

/// Parses `{n}`, `{n,}` or `{n,m}` at `open`; returns (index after `}`, n, m).
fn repeat(chars: &[char], open: usize) -> Option<(usize, u32, Option<u32>)> {
    let mut i = open + 1;
    let (min, next) = number(chars, i)?;
    i = next;
    let max = match chars.get(i)? {
        '}' => Some(min),
        ',' => {
            i += 1;
            if chars.get(i)? == &'}' {
                None
            } else {
                let (m, next) = number(chars, i)?;
                i = next;
                if chars.get(i)? != &'}' {
                    return None;
                }
                Some(m)
            }
        }
        _ => return None,
    };
    Some((i + 1, min, max))
}

/// A run of decimal digits (saturating, so huge counts still read as "too big").
fn number(chars: &[char], start: usize) -> Option<(u32, usize)> {
    let mut i = start;
    let mut value: u32 = 0;
    while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
        value = value.saturating_mul(10).saturating_add(d);
        i += 1;
    }
    (i > start).then_some((value, i))
}

/// `(?…`: a named group, a non-capturing group or a flag group; only Go's flags pass.
fn group_open(chars: &[char], open: usize, out: &mut String) -> Result<usize, String> {
    let rest = &chars[open + 2..];
    let named = if rest.first() == Some(&'P') && rest.get(1) == Some(&'<') {
        Some(open + 4)
    } else if rest.first() == Some(&'<') {
        Some(open + 3)
    } else {
        None
    };
    if let Some(name_start) = named {
        let Some(close) = chars[name_start..].iter().position(|&c| c == '>') else {
            return Err("invalid named capture: missing `>`".to_string());
        };
        let end = name_start + close + 1;
        out.extend(&chars[open..end]);
        return Ok(end);
    }
    let mut i = open + 2;
    while let Some(&c) = chars.get(i) {
        match c {
            'i' | 'm' | 's' | 'U' | '-' => i += 1,
            ':' | ')' => {
                out.extend(&chars[open..=i]);
                return Ok(i + 1);
            }
            other => {
                return Err(format!(
                    "invalid or unsupported Perl syntax `(?{other}`: Go accepts only the flags i, m, s and U"
                ));
            }
        }
    }
    Err("missing closing `)`".to_string())
}

/// A backslash escape at `at` (outside or inside a class); returns the index after it.
fn escape(chars: &[char], at: usize, out: &mut String, in_class: bool) -> Result<usize, String> {
    let Some(&e) = chars.get(at + 1) else {
        return Err("trailing backslash at end of expression".to_string());
    };
    let next = at + 2;
    match e {
        'd' | 'D' | 'w' | 'W' | 's' | 'S' => {
            let set = match e.to_ascii_lowercase() {
                'd' => ASCII_DIGIT,
                'w' => ASCII_WORD,
                _ => ASCII_SPACE,
            };
            let negated = e.is_ascii_uppercase();
            match (in_class, negated) {
                (true, false) => out.push_str(set),
                (_, true) => {
                    out.push_str("[^");
                    out.push_str(set);
                    out.push(']');
                }
                (false, false) => {
                    out.push('[');
                    out.push_str(set);
                    out.push(']');
                }
            }
            Ok(next)
        }
        'b' | 'B' if !in_class => {
            out.push_str(if e == 'b' { "(?-u:\\b)" } else { "(?-u:\\B)" });
            Ok(next)
        }
        'A' | 'z' if !in_class => {
            out.push('\\');
            out.push(e);
            Ok(next)
        }
        'C' if !in_class => {
            // Go: any byte. The closest a UTF-8 regex gets: any character.
            out.push_str("(?s:.)");
            Ok(next)
        }
        'Q' if !in_class => {
            let body_start = next;
            let mut i = body_start;
            while i < chars.len() && !(chars[i] == '\\' && chars.get(i + 1) == Some(&'E')) {
                i += 1;
            }
            let literal: String = chars[body_start..i].iter().collect();
            out.push_str(&regex::escape(&literal));
            Ok(if i < chars.len() { i + 2 } else { i })
        }
        'E' if !in_class => Ok(next), // a stray \E is ignored by Go
        'a' | 'f' | 't' | 'n' | 'r' | 'v' => {
            out.push('\\');
            out.push(e);
            Ok(next)
        }
        'x' => {
            if chars.get(next) == Some(&'{') {
                let Some(close) = chars[next..].iter().position(|&c| c == '}') else {
                    return Err("invalid escape sequence `\\x{`".to_string());
                };
                out.extend(&chars[at..next + close + 1]);
                Ok(next + close + 1)
            } else {
                let hex = chars.get(next..next + 2).unwrap_or(&[]);
                if hex.len() != 2 || !hex.iter().all(|c| c.is_ascii_hexdigit()) {
                    return Err("invalid escape sequence `\\x`".to_string());
                }
                out.extend(&chars[at..next + 2]);
                Ok(next + 2)
            }
        }
        'p' | 'P' => {
            if chars.get(next) == Some(&'{') {
                let Some(close) = chars[next..].iter().position(|&c| c == '}') else {
                    return Err(format!("invalid character class range `\\{e}{{`"));
                };
                out.extend(&chars[at..next + close + 1]);
                Ok(next + close + 1)
            } else if chars.get(next).is_some() {
                out.extend(&chars[at..next + 1]);
                Ok(next + 1)
            } else {
                Err(format!("invalid character class range `\\{e}`"))
            }
        }
        '0'..='7' => {
            // Go: \0 starts up to three octal digits; \1-\7 need a second octal digit
            // (a single digit would be a backreference, which RE2 does not support).
            let mut i = at + 1;
            let mut value: u32 = 0;
            while i < chars.len() && i < at + 4 && ('0'..='7').contains(&chars[i]) {
                value = value * 8 + chars[i].to_digit(8).unwrap_or(0);
                i += 1;
            }
            if e != '0' && i == at + 2 {
                return Err(format!(
                    "invalid escape sequence `\\{e}`: backreferences are not supported"
                ));
            }
            out.push_str(&format!("\\x{{{value:x}}}"));
            Ok(i)
        }
        c if c.is_ascii_punctuation() => {
            let mut buf = [0u8; 4];
            out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
            Ok(next)
        }
        c => Err(format!("invalid escape sequence `\\{c}`")),
    }
}

/// A bracketed class at `open`; returns the index after its `]`.
fn class(chars: &[char], open: usize, out: &mut String) -> Result<usize, String> {
    let mut i = open + 1;
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    // A `]` first in the class is a literal.
    if chars.get(i) == Some(&']') {
        out.push_str("\\]");
        i += 1;
    }
    loop {
        let Some(&c) = chars.get(i) else {
            return Err("missing closing `]`".to_string());
        };
        match c {
            ']' => {
                out.push(']');
                return Ok(i + 1);
            }
            '\\' => i = escape(chars, i, out, true)?,
            '[' => {
                if let Some(len) = posix_class(&chars[i..]) {
                    out.extend(&chars[i..i + len]);
                    i += len;
                } else {
                    out.push_str("\\[");
                    i += 1;
                }
            }
            '&' | '~' => {
                out.push('\\');
                out.push(c);
                i += 1;
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                out.push_str("-\\-");
                i += 2;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
}

/// The length of a POSIX class such as `[:alpha:]` or `[:^digit:]` at the start of `s`.
fn posix_class(s: &[char]) -> Option<usize> {
    if s.get(1) != Some(&':') {
        return None;
    }
    let mut i = 2;
    if s.get(i) == Some(&'^') {
        i += 1;
    }
    let name_start = i;
    while s.get(i).is_some_and(|c| c.is_ascii_lowercase()) {
        i += 1;
    }
    (i > name_start && s.get(i) == Some(&':') && s.get(i + 1) == Some(&']')).then_some(i + 2)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn m(p: &str, text: &str) -> bool {
        GoRegex::new(p).unwrap().is_match(text)
    }

    #[test]
    fn literal_braces_as_go() {
        assert_eq!(translate("{domain:[a-z]+}").unwrap(), "\\{domain:[a-z]+\\}");
        assert!(m("http{secure:s?}", "http{secure:}"));
        assert!(m("http{secure:s?}", "http{secure:s}"));
        assert!(!m("http{secure:s?}", "https"));
        assert!(m("^a{2}$", "aa"));
        assert!(m("^a{2,}$", "aaa"));
        assert!(m("^a{1,2}?$", "a"));
        assert!(m("^a{,2}$", "a{,2}"));
        assert!(m("^x{y$", "x{y"));
    }

    #[test]
    fn ascii_perl_classes() {
        assert!(!m("^\\w+$", "café"));
        assert!(m("^\\w+$", "cafe_1"));
        assert!(!m("^\\d$", "٣"));
        assert!(m("^[\\d\\s]+$", "1 2"));
        assert!(m("^[^\\D]$", "7"));
        assert!(!m("\\bé", "é"));
    }

    #[test]
    fn go_escapes_and_classes() {
        assert!(m("^\\101$", "A"));
        assert!(m("^\\0$", "\0"));
        assert!(m("^\\Qa.b\\E$", "a.b"));
        assert!(!m("^\\Qa.b\\E$", "axb"));
        assert!(m("^\\<a\\>$", "<a>"));
        assert!(m("^[a&&b]+$", "a&b"));
        assert!(m("^[+--]$", ","));
        assert!(m("^[[]$", "["));
        assert!(m("^[]a]$", "]"));
        assert!(m("^[[:digit:]]$", "5"));
        assert!(m("^\\x41\\x{42}\\pL\\p{Greek}$", "ABxα"));
        assert!(m("(?i)^ABC$", "abc"));
        assert!(m("^(?P<x>a)(?<y>b)$", "ab"));
    }

    #[test]
    fn go_refusals() {
        for bad in [
            "(", "a**", "a+*", "a{2}{3}", "a{1001}", "a{3,2}", "(?x)a", "\\1", "\\8", "\\q", "\\é",
            "[a", "a\\", "\\x4",
        ] {
            assert!(GoRegex::new(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn invalid_utf8_input_reads_as_replacement_char() {
        let re = GoRegex::new("^a.b$").unwrap();
        assert!(re.is_match_bytes(b"a\xffb"));
        assert!(re.is_match_bytes(b"axb"));
    }
}
