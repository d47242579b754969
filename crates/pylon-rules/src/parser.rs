//! The parser: tokens → compiled [`Expr`].
//!
//! Grammar (`||` binds loosest, then `&&`, then `!`):
//!
//! ```text
//! rule    = or EOF
//! or      = and { "||" and }
//! and     = unary { "&&" unary }
//! unary   = "!" unary | primary
//! primary = "(" or ")" | NAME "(" [ STRING { "," STRING } [ "," ] ] ")"
//! ```
//!
//! Each matcher is checked and compiled as soon as its closing parenthesis is read, so the
//! first error in reading order is the one reported.

use crate::ast::matcher::{self, Arg, Matcher};
use crate::ast::Expr;
use crate::lexer::{Lexer, Spanned, Token};
use crate::ParseError;

/// How deep parentheses and `!` may nest: enough for any hand-written rule, and a bound on
/// the recursion of both the parser and the matcher.
pub(crate) const MAX_DEPTH: usize = 64;

/// Parses and compiles a whole rule.
pub(crate) fn parse(source: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        lexer: Lexer::new(source),
        peeked: None,
        depth: 0,
    };
    let first = p.peek()?;
    if first.token == Token::Eof {
        return Err(ParseError::new(
            first.column,
            "expected a matcher such as Host(`example.com`), found an empty rule".to_string(),
        ));
    }
    let expr = p.or()?;
    let end = p.next()?;
    match end.token {
        Token::Eof => Ok(expr),
        Token::RParen => Err(ParseError::new(
            end.column,
            "expected `&&`, `||` or the end of the rule, found `)` without a matching `(`"
                .to_string(),
        )),
        other => Err(ParseError::new(
            end.column,
            format!(
                "expected `&&`, `||` or the end of the rule, found {}",
                other.describe()
            ),
        )),
    }
}

struct Parser {
    lexer: Lexer,
    peeked: Option<Spanned>,
    depth: usize,
}

impl Parser {
    fn peek(&mut self) -> Result<&Spanned, ParseError> {
        let t = match self.peeked.take() {
            Some(t) => t,
            None => self.lexer.next_token()?,
        };
        Ok(self.peeked.insert(t))
    }

    fn next(&mut self) -> Result<Spanned, ParseError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next_token(),
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut items = vec![self.and()?];
        while self.peek()?.token == Token::Or {
            self.next()?;
            items.push(self.and()?);
        }
        Ok(Expr::or(items))
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut items = vec![self.unary()?];
        while self.peek()?.token == Token::And {
            self.next()?;
            items.push(self.unary()?);
        }
        Ok(Expr::and(items))
    }

    fn enter(&mut self, column: usize) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::new(
                column,
                format!("rule nests `(` and `!` more than {MAX_DEPTH} deep"),
            ));
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let t = self.next()?;
        match t.token {
            Token::Not => {
                self.enter(t.column)?;
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(inner.negate())
            }
            Token::LParen => {
                self.enter(t.column)?;
                let inner = self.or()?;
                let close = self.next()?;
                if close.token != Token::RParen {
                    return Err(ParseError::new(
                        close.column,
                        format!(
                            "expected `)` to close the `(` at column {}, found {}",
                            t.column,
                            close.token.describe()
                        ),
                    ));
                }
                self.depth -= 1;
                Ok(inner)
            }
            Token::Ident(name) => self.call(name, t.column),
            other => Err(ParseError::new(
                t.column,
                format!(
                    "expected a matcher such as Host(`example.com`), `!` or `(`, found {}",
                    other.describe()
                ),
            )),
        }
    }

    fn call(&mut self, name: String, column: usize) -> Result<Expr, ParseError> {
        let Some(canonical) = matcher::canonical_name(&name) else {
            let message = match matcher::suggest(&name) {
                Some(s) => format!("unknown matcher `{name}`, did you mean `{s}`?"),
                None => format!(
                    "unknown matcher `{name}`; the matchers are {}",
                    matcher::NAMES.join(", ")
                ),
            };
            return Err(ParseError::new(column, message));
        };
        let open = self.next()?;
        if open.token != Token::LParen {
            return Err(ParseError::new(
                open.column,
                format!(
                    "expected `(` after matcher name `{name}`, found {}",
                    open.token.describe()
                ),
            ));
        }
        let mut args = Vec::new();
        let close_column = loop {
            let t = self.next()?;
            match t.token {
                Token::RParen => break t.column,
                Token::Str(value) => args.push(Arg {
                    value,
                    column: t.column,
                }),
                other => {
                    return Err(ParseError::new(
                        t.column,
                        format!(
                            "expected a string in backticks or double quotes as argument to `{name}`, found {}",
                            other.describe()
                        ),
                    ));
                }
            }
            let sep = self.next()?;
            match sep.token {
                Token::RParen => break sep.column,
                Token::Comma => {}
                other => {
                    return Err(ParseError::new(
                        sep.column,
                        format!(
                            "expected `,` or `)` after an argument to `{name}`, found {}",
                            other.describe()
                        ),
                    ));
                }
            }
        };
        Matcher::build(canonical, &args, close_column).map(Expr::leaf)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::Rule;

    /// Parses `rule`, expecting an error at `column` whose message contains `needle`.
    fn err(rule: &str, column: usize, needle: &str) {
        let e = Rule::parse(rule).expect_err(rule);
        assert_eq!(e.column, column, "{rule:?}: {e}");
        assert!(e.message.contains(needle), "{rule:?}: {e}");
        assert_eq!(e.to_string(), format!("column {column}: {}", e.message));
    }

    #[test]
    fn structure_errors() {
        err("", 1, "found an empty rule");
        err("   ", 4, "found an empty rule");
        err(
            "Host",
            5,
            "expected `(` after matcher name `Host`, found the end of the rule",
        );
        err(
            "Host && Path(`/`)",
            6,
            "expected `(` after matcher name `Host`, found `&&`",
        );
        err(
            "Host(`a`) &&",
            13,
            "expected a matcher such as Host(`example.com`), `!` or `(`, found the end of the rule",
        );
        err("Host(`a`) || || Path(`/`)", 14, "found `||`");
        err("Host(`a`))", 10, "found `)` without a matching `(`");
        err(
            "(Host(`a`)",
            11,
            "expected `)` to close the `(` at column 1",
        );
        err(
            "((Host(`a`))",
            13,
            "expected `)` to close the `(` at column 1",
        );
        err(
            "Host(`a`) Path(`/`)",
            11,
            "expected `&&`, `||` or the end of the rule, found `Path`",
        );
        err("Host(`a`) & Path(`/`)", 11, "expected `&&`, found `&`");
        err("Host(`a`) | Path(`/`)", 11, "expected `||`, found `|`");
        err("!", 2, "found the end of the rule");
        err("()", 2, "found `)`");
        err("Host(`a`) # comment", 11, "found `#`");
    }

    #[test]
    fn matcher_name_errors() {
        err(
            "Hots(`a`)",
            1,
            "unknown matcher `Hots`, did you mean `Host`?",
        );
        err("PathPrefx(`/`)", 1, "did you mean `PathPrefix`?");
        err(
            "Host(`a`) && w(`b`)",
            14,
            "unknown matcher `w`; the matchers are Host, HostRegexp",
        );
        err(
            "rulewithnotmatcher",
            1,
            "unknown matcher `rulewithnotmatcher`",
        );
    }

    #[test]
    fn argument_errors() {
        err("Host(example.com)", 6, "expected a string in backticks or double quotes as argument to `Host`, found `example`");
        err("Host(1)", 6, "found the number `1`");
        err("Host('a')", 6, "found a single quote");
        err(
            "Host(`a` `b`)",
            10,
            "expected `,` or `)` after an argument to `Host`, found the string `b`",
        );
        err("Host(,)", 6, "found `,`");
        err(
            "Host(`a)",
            6,
            "unterminated string: expected a closing backtick",
        );
        err(
            "Host(\"a)",
            6,
            "unterminated string: expected a closing `\"`",
        );
        err(r#"PathRegexp("^/\d+$")"#, 15, "unknown escape `\\d`");
    }

    #[test]
    fn arity_and_value_errors() {
        err(
            "Host()",
            6,
            "`Host` takes one host name, e.g. Host(`example.com`), found no argument",
        );
        err("Header(`X-A`)", 13, "`Header` takes a header name and a value, e.g. Header(`X-Env`, `prod`), found 1 argument");
        err("Host(`a`, `b`)", 11, "found 2 arguments");
        err("Query(`a`, `b`, `c`)", 17, "found 3 arguments");
        err("Header(``, `v`)", 8, "found an empty string");
        err("Query(`q`, ``)", 12, "found an empty string");
        err(
            "Path(`css`)",
            6,
            "`Path` takes a path starting with `/`, found `css`",
        );
        err(
            "PathPrefix(`css`)",
            12,
            "`PathPrefix` takes a path starting with `/`",
        );
        err("Host(`🦭.com`)", 6, "`Host` takes ASCII only");
        err("HostRegexp(`🦭`)", 12, "`HostRegexp` takes ASCII only");
        err(
            "PathRegexp(`/(css`)",
            12,
            "invalid regular expression `/(css` in `PathRegexp`: unclosed group",
        );
        err(
            "HeaderRegexp(`X`, `a**`)",
            19,
            "invalid nested repetition operator",
        );
        err("QueryRegexp(`q`, `a{1001}`)", 18, "invalid repeat count");
        err(
            "ClientIP(`1`)",
            10,
            "`1` is not an IP address or a CIDR range",
        );
        err(
            "ClientIP(`10.0.0.0/33`)",
            10,
            "`/33` in `10.0.0.0/33` is not a prefix length from 0 to 32",
        );
        // Columns count characters, not bytes.
        err("Method(`é`) && Path(`x`)", 21, "starting with `/`");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}Host(`a`){}", "(".repeat(200), ")".repeat(200));
        err(&deep, 65, "more than 64 deep");
        let nots = format!("{}Host(`a`)", "!".repeat(100));
        err(&nots, 65, "more than 64 deep");
        let ok = format!("{}Host(`a`){}", "(".repeat(64), ")".repeat(64));
        assert!(Rule::parse(&ok).is_ok());
        // Long flat chains do not nest.
        let chain = vec!["Host(`a`)"; 5000].join(" || ");
        assert!(Rule::parse(&chain).is_ok());
    }

    #[test]
    fn accepted_syntax() {
        for rule in [
            "Host(`a`)",
            "host(`a`)",
            "HOST(`a`)",
            "hOsT(`a`)",
            "Host(\"a\")",
            "Host(`a`,)",
            " \t\r\nHost(`a`)\n&&\nPath(`/`) ",
            "!!Host(`a`)",
            "(Host(`a`))",
            "Query(`q`)",
            "QueryRegexp(`q`)",
            "ClientIP(`::1`)",
            "ClientIP(`2001:db8::/32`)",
            "HostRegexp(`{sub:[a-z]+}.example.com`)",
        ] {
            assert!(
                Rule::parse(rule).is_ok(),
                "{rule:?}: {:?}",
                Rule::parse(rule).err()
            );
        }
    }
}
