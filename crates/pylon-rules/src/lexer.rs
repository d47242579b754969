//! The lexer: rule text → tokens, each with the 1-based character column where it starts.
//!
//! Traefik parses rules as Go expressions, so the lexical rules are Go's where they matter:
//! strings are raw (backticks, no escapes, carriage returns dropped) or interpreted (double
//! quotes, Go escape sequences), identifiers are letters, digits and `_`, and whitespace
//! (space, tab, CR, LF) separates tokens.

use crate::ParseError;

/// One token of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// A matcher name (or any other bare word, which the parser then refuses).
    Ident(String),
    /// A string literal, already unquoted and unescaped.
    Str(String),
    /// A number, kept as written, only so that the parser can say it is not a string.
    Number(String),
    LParen,
    RParen,
    Comma,
    And,
    Or,
    Not,
    Eof,
}

impl Token {
    /// How the token reads in an error message ("found …").
    pub(crate) fn describe(&self) -> String {
        match self {
            Token::Ident(name) => format!("`{name}`"),
            Token::Str(s) => format!("the string `{}`", shorten(s)),
            Token::Number(n) => format!("the number `{n}`"),
            Token::LParen => "`(`".to_string(),
            Token::RParen => "`)`".to_string(),
            Token::Comma => "`,`".to_string(),
            Token::And => "`&&`".to_string(),
            Token::Or => "`||`".to_string(),
            Token::Not => "`!`".to_string(),
            Token::Eof => "the end of the rule".to_string(),
        }
    }
}

/// Keeps error messages readable when a string argument is long.
fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

/// A token and the 1-based character column of its first character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spanned {
    pub token: Token,
    pub column: usize,
}

/// Reads tokens one at a time, so that the first error in reading order is the one reported.
pub(crate) struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

impl Lexer {
    pub(crate) fn new(source: &str) -> Self {
        Lexer {
            chars: source.chars().collect(),
            pos: 0,
        }
    }

    /// The next token; [`Token::Eof`] (repeatedly) at the end.
    pub(crate) fn next_token(&mut self) -> Result<Spanned, ParseError> {
        let chars = &self.chars;
        let mut i = self.pos;
        while i < chars.len() && matches!(chars[i], ' ' | '\t' | '\r' | '\n') {
            i += 1;
        }
        let column = i + 1;
        let Some(&c) = chars.get(i) else {
            self.pos = i;
            return Ok(Spanned {
                token: Token::Eof,
                column,
            });
        };
        let token = match c {
            '(' => {
                i += 1;
                Token::LParen
            }
            ')' => {
                i += 1;
                Token::RParen
            }
            ',' => {
                i += 1;
                Token::Comma
            }
            '!' => {
                i += 1;
                Token::Not
            }
            '&' | '|' => {
                if chars.get(i + 1) == Some(&c) {
                    i += 2;
                    if c == '&' {
                        Token::And
                    } else {
                        Token::Or
                    }
                } else {
                    let found = describe_char(chars.get(i + 1).copied());
                    return Err(ParseError::new(
                        column,
                        format!("expected `{c}{c}`, found `{c}` followed by {found}"),
                    ));
                }
            }
            '`' => {
                let (s, next) = raw_string(chars, i)?;
                i = next;
                Token::Str(s)
            }
            '"' => {
                let (s, next) = interpreted_string(chars, i)?;
                i = next;
                Token::Str(s)
            }
            '\'' => {
                return Err(ParseError::new(
                    column,
                    "expected a string in backticks or double quotes, found a single quote"
                        .to_string(),
                ));
            }
            c if c.is_ascii_digit() => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                Token::Number(chars[start..i].iter().collect())
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                Token::Ident(chars[start..i].iter().collect())
            }
            other => {
                return Err(ParseError::new(
                    column,
                    format!(
                        "expected a matcher, `(`, `)`, `,`, `!`, `&&` or `||`, found {}",
                        describe_char(Some(other))
                    ),
                ));
            }
        };
        self.pos = i;
        Ok(Spanned { token, column })
    }
}

/// Splits a whole rule into tokens, ending with [`Token::Eof`].
#[cfg(test)]
pub(crate) fn tokenize(source: &str) -> Result<Vec<Spanned>, ParseError> {
    let mut lexer = Lexer::new(source);
    let mut out = Vec::new();
    loop {
        let t = lexer.next_token()?;
        let eof = t.token == Token::Eof;
        out.push(t);
        if eof {
            return Ok(out);
        }
    }
}

fn describe_char(c: Option<char>) -> String {
    match c {
        None => "the end of the rule".to_string(),
        Some(c) if c.is_whitespace() => "a space".to_string(),
        Some(c) if c.is_control() => format!("the control character {:?}", c),
        Some(c) => format!("`{c}`"),
    }
}

/// A Go raw string: everything up to the next backtick, carriage returns dropped.
fn raw_string(chars: &[char], open: usize) -> Result<(String, usize), ParseError> {
    let mut out = String::new();
    let mut i = open + 1;
    while i < chars.len() {
        match chars[i] {
            '`' => return Ok((out, i + 1)),
            '\r' => {}
            c => out.push(c),
        }
        i += 1;
    }
    Err(ParseError::new(
        open + 1,
        "unterminated string: expected a closing backtick, found the end of the rule".to_string(),
    ))
}

/// A Go interpreted string: double quotes, backslash escapes, no raw newline.
fn interpreted_string(chars: &[char], open: usize) -> Result<(String, usize), ParseError> {
    let mut out = String::new();
    // Octal and \x escapes are bytes in Go; collect bytes, then check they form UTF-8.
    let mut bytes: Vec<u8> = Vec::new();
    let mut i = open + 1;
    let flush = |bytes: &mut Vec<u8>, out: &mut String, column: usize| {
        if bytes.is_empty() {
            return Ok(());
        }
        match String::from_utf8(std::mem::take(bytes)) {
            Ok(s) => {
                out.push_str(&s);
                Ok(())
            }
            Err(_) => Err(ParseError::new(
                column,
                "byte escapes in this string do not form valid UTF-8".to_string(),
            )),
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' => {
                flush(&mut bytes, &mut out, open + 1)?;
                return Ok((out, i + 1));
            }
            '\n' => {
                return Err(ParseError::new(
                    i + 1,
                    "unterminated string: expected a closing `\"`, found a line break (use a backtick string for text over several lines)".to_string(),
                ));
            }
            '\\' => {
                let column = i + 1;
                let Some(&e) = chars.get(i + 1) else { break };
                i += 2;
                let simple = match e {
                    'a' => Some('\u{07}'),
                    'b' => Some('\u{08}'),
                    'f' => Some('\u{0c}'),
                    'n' => Some('\n'),
                    'r' => Some('\r'),
                    't' => Some('\t'),
                    'v' => Some('\u{0b}'),
                    '\\' => Some('\\'),
                    '"' => Some('"'),
                    _ => None,
                };
                if let Some(s) = simple {
                    flush(&mut bytes, &mut out, open + 1)?;
                    out.push(s);
                    continue;
                }
                match e {
                    '0'..='7' => {
                        let digits = take_digits(chars, i - 1, 3, 8);
                        let value = digits.and_then(|v| u8::try_from(v).ok());
                        let Some(v) = value else {
                            return Err(ParseError::new(
                                column,
                                "invalid octal escape: expected three octal digits up to \\377"
                                    .to_string(),
                            ));
                        };
                        bytes.push(v);
                        i += 2;
                    }
                    'x' => {
                        let Some(v) = take_digits(chars, i, 2, 16) else {
                            return Err(ParseError::new(
                                column,
                                "invalid \\x escape: expected two hexadecimal digits".to_string(),
                            ));
                        };
                        bytes.push(v as u8);
                        i += 2;
                    }
                    'u' | 'U' => {
                        let n = if e == 'u' { 4 } else { 8 };
                        let ch = take_digits(chars, i, n, 16).and_then(char::from_u32);
                        let Some(ch) = ch else {
                            return Err(ParseError::new(
                                column,
                                format!(
                                    "invalid \\{e} escape: expected {n} hexadecimal digits naming a Unicode code point"
                                ),
                            ));
                        };
                        flush(&mut bytes, &mut out, open + 1)?;
                        out.push(ch);
                        i += n;
                    }
                    other => {
                        return Err(ParseError::new(
                            column,
                            format!(
                                "unknown escape `\\{other}` in a double-quoted string (write `\\\\{other}`, or use a backtick string, which has no escapes)"
                            ),
                        ));
                    }
                }
            }
            c => {
                flush(&mut bytes, &mut out, open + 1)?;
                out.push(c);
                i += 1;
            }
        }
    }
    Err(ParseError::new(
        open + 1,
        "unterminated string: expected a closing `\"`, found the end of the rule".to_string(),
    ))
}

/// Reads exactly `n` digits of `radix` starting at `start`.
fn take_digits(chars: &[char], start: usize, n: usize, radix: u32) -> Option<u32> {
    let mut value: u32 = 0;
    for k in 0..n {
        let d = chars.get(start + k)?.to_digit(radix)?;
        value = value * radix + d;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn toks(s: &str) -> Vec<Token> {
        tokenize(s).unwrap().into_iter().map(|t| t.token).collect()
    }

    #[test]
    fn tokens_and_columns() {
        let t = tokenize("Host(`a`) && !Path(\"/b\")").unwrap();
        let cols: Vec<usize> = t.iter().map(|t| t.column).collect();
        assert_eq!(cols, vec![1, 5, 6, 9, 11, 14, 15, 19, 20, 24, 25]);
        assert_eq!(t[2].token, Token::Str("a".into()));
        assert_eq!(t[8].token, Token::Str("/b".into()));
    }

    #[test]
    fn go_string_escapes() {
        assert_eq!(
            toks(r#""a\"b\\c\n\x41\101\u00e9\U0001F9AD""#)[0],
            Token::Str("a\"b\\c\nAAé🦭".into())
        );
        assert_eq!(toks("`a\\d\r`")[0], Token::Str("a\\d".into()));
    }

    #[test]
    fn lexical_errors_have_columns() {
        let e = tokenize("Host(`a`) & Path(`/`)").unwrap_err();
        assert_eq!(e.column, 11);
        assert!(e.message.contains("expected `&&`"), "{e}");
        let e = tokenize("Host(`a)").unwrap_err();
        assert_eq!(e.column, 6);
        assert!(e.message.contains("unterminated string"), "{e}");
        let e = tokenize(r#"PathRegexp("^/\d+")"#).unwrap_err();
        assert_eq!(e.column, 15);
        assert!(e.message.contains("unknown escape `\\d`"), "{e}");
        let e = tokenize("Host(`é`) # x").unwrap_err();
        assert_eq!(e.column, 11);
        let e = tokenize("Host('a')").unwrap_err();
        assert_eq!(e.column, 6);
        let e = tokenize(r#"Host("\xff")"#).unwrap_err();
        assert!(e.message.contains("UTF-8"), "{e}");
    }
}
