//! The matchers: each one's arguments, how they are checked when a rule is parsed, and how
//! a request is tested against them. Semantics are Traefik v3's (`pkg/muxer/http/matcher.go`).

use crate::goregex::GoRegex;
use crate::ip::IpMatch;
use crate::request::{any_query_value, has_query_value, Prepared};
use crate::{ParseError, RequestView};

/// Every matcher name, as documented; names are matched case-insensitively.
pub(crate) const NAMES: [&str; 11] = [
    "Host",
    "HostRegexp",
    "Path",
    "PathPrefix",
    "PathRegexp",
    "Method",
    "Header",
    "HeaderRegexp",
    "Query",
    "QueryRegexp",
    "ClientIP",
];

/// A string argument and the column of its opening quote.
#[derive(Debug, Clone)]
pub(crate) struct Arg {
    pub value: String,
    pub column: usize,
}

/// One compiled matcher.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    Host(HostPattern),
    /// `matches_empty`: whether the regex matches the empty string (see `matches`).
    HostRegexp {
        re: GoRegex,
        matches_empty: bool,
    },
    Path(String),
    PathPrefix(String),
    PathRegexp(GoRegex),
    Method(String),
    Header {
        name: String,
        value: String,
    },
    HeaderRegexp {
        name: String,
        re: GoRegex,
    },
    Query {
        key: String,
        value: String,
    },
    QueryRegexp {
        key: String,
        re: GoRegex,
    },
    ClientIp(IpMatch),
}

/// A `Host` value: exact, `*.suffix` wildcard, or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostExpr {
    /// `*`: any non-empty host.
    Any,
    /// A lowercase host name.
    Exact(String),
    /// `*.example.com` (or `**.example.com`), stored as `example.com`: one or more labels,
    /// then `.example.com`.
    Wildcard(String),
}

impl HostExpr {
    fn new(lower: &str) -> HostExpr {
        if lower == "*" {
            HostExpr::Any
        } else if let Some(suffix) = lower.strip_prefix("**.").or(lower.strip_prefix("*.")) {
            HostExpr::Wildcard(suffix.to_string())
        } else {
            HostExpr::Exact(lower.to_string())
        }
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            HostExpr::Any => true,
            HostExpr::Exact(h) => host == h,
            HostExpr::Wildcard(suffix) => {
                host.len() > suffix.len() + 1
                    && host.ends_with(suffix.as_str())
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
        }
    }
}

/// A `Host` value and, when it ends with a dot, the same value without it: Traefik matches
/// `example.com.` and `example.com` against each other in both directions.
#[derive(Debug, Clone)]
pub(crate) struct HostPattern {
    pub full: HostExpr,
    pub without_dot: Option<HostExpr>,
}

impl HostPattern {
    fn new(value: &str) -> HostPattern {
        let lower = value.to_ascii_lowercase();
        let without_dot = lower.strip_suffix('.').map(HostExpr::new);
        HostPattern {
            full: HostExpr::new(&lower),
            without_dot,
        }
    }

    /// `host` is the canonical (lowercase, port-less) request host.
    pub(crate) fn matches(&self, host: &str) -> bool {
        if host.is_empty() {
            return false;
        }
        self.full.matches(host)
            || self.without_dot.as_ref().is_some_and(|e| e.matches(host))
            || host.strip_suffix('.').is_some_and(|h| self.full.matches(h))
    }
}

/// What a matcher takes, for arity checks and messages.
struct Signature {
    name: &'static str,
    min: usize,
    max: usize,
    takes: &'static str,
}

fn signature(canonical: &'static str) -> Signature {
    let (min, max, takes) = match canonical {
        "Host" => (1, 1, "one host name, e.g. Host(`example.com`)"),
        "HostRegexp" => (
            1,
            1,
            "one regular expression, e.g. HostRegexp(`^.+\\.example\\.com$`)",
        ),
        "Path" => (1, 1, "one path, e.g. Path(`/health`)"),
        "PathPrefix" => (1, 1, "one path prefix, e.g. PathPrefix(`/api`)"),
        "PathRegexp" => (
            1,
            1,
            "one regular expression, e.g. PathRegexp(`^/v[0-9]+/`)",
        ),
        "Method" => (1, 1, "one method, e.g. Method(`GET`)"),
        "Header" => (
            2,
            2,
            "a header name and a value, e.g. Header(`X-Env`, `prod`)",
        ),
        "HeaderRegexp" => (
            2,
            2,
            "a header name and a regular expression, e.g. HeaderRegexp(`X-Env`, `^prod`)",
        ),
        "Query" => (
            1,
            2,
            "a key and an optional value, e.g. Query(`mobile`, `true`)",
        ),
        "QueryRegexp" => (
            1,
            2,
            "a key and an optional regular expression, e.g. QueryRegexp(`v`, `^[0-9]+$`)",
        ),
        _ => (
            1,
            1,
            "one IP address or CIDR range, e.g. ClientIP(`10.0.0.0/8`)",
        ),
    };
    Signature {
        name: canonical,
        min,
        max,
        takes,
    }
}

/// The documented spelling of a matcher name, if `name` is one (any case).
pub(crate) fn canonical_name(name: &str) -> Option<&'static str> {
    NAMES.iter().copied().find(|n| n.eq_ignore_ascii_case(name))
}

/// The closest matcher name, when `name` looks like a typo of one.
pub(crate) fn suggest(name: &str) -> Option<&'static str> {
    let lower = name.to_lowercase();
    NAMES
        .iter()
        .map(|n| (levenshtein(&lower, &n.to_lowercase()), *n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

impl Matcher {
    /// Checks the arguments of `name` and compiles the matcher.
    ///
    /// `close_column` points at the closing parenthesis, where a missing argument would go.
    pub(crate) fn build(
        name: &'static str,
        args: &[Arg],
        close_column: usize,
    ) -> Result<Matcher, ParseError> {
        let sig = signature(name);
        if args.len() < sig.min {
            let found = match args.len() {
                0 => "no argument".to_string(),
                1 => "1 argument".to_string(),
                n => format!("{n} arguments"),
            };
            return Err(ParseError::new(
                close_column,
                format!("`{}` takes {}, found {found}", sig.name, sig.takes),
            ));
        }
        if args.len() > sig.max {
            return Err(ParseError::new(
                args[sig.max].column,
                format!(
                    "`{}` takes {}, found {} arguments",
                    sig.name,
                    sig.takes,
                    args.len()
                ),
            ));
        }
        // Traefik refuses empty arguments to every matcher.
        if let Some(empty) = args.iter().find(|a| a.value.is_empty()) {
            return Err(ParseError::new(
                empty.column,
                format!("`{}` takes {}, found an empty string", sig.name, sig.takes),
            ));
        }
        let arg = |i: usize| args[i].value.as_str();
        let regex = |i: usize| {
            GoRegex::new(arg(i)).map_err(|e| {
                ParseError::new(
                    args[i].column,
                    format!(
                        "invalid regular expression `{}` in `{}`: {e}",
                        arg(i),
                        sig.name
                    ),
                )
            })
        };
        let ascii = |i: usize| {
            if arg(i).is_ascii() {
                Ok(())
            } else {
                Err(ParseError::new(
                    args[i].column,
                    format!(
                        "`{}` takes ASCII only (write international names in their punycode form, `xn--…`), found `{}`",
                        sig.name,
                        arg(i)
                    ),
                ))
            }
        };
        let path = |i: usize| {
            if arg(i).starts_with('/') {
                Ok(arg(i).to_string())
            } else {
                Err(ParseError::new(
                    args[i].column,
                    format!(
                        "`{}` takes a path starting with `/`, found `{}`",
                        sig.name,
                        arg(i)
                    ),
                ))
            }
        };
        Ok(match name {
            "Host" => {
                ascii(0)?;
                Matcher::Host(HostPattern::new(arg(0)))
            }
            "HostRegexp" => {
                ascii(0)?;
                let re = regex(0)?;
                let matches_empty = re.is_match("");
                Matcher::HostRegexp { re, matches_empty }
            }
            "Path" => Matcher::Path(path(0)?),
            "PathPrefix" => Matcher::PathPrefix(path(0)?),
            "PathRegexp" => Matcher::PathRegexp(regex(0)?),
            "Method" => Matcher::Method(arg(0).to_uppercase()),
            "Header" => Matcher::Header {
                name: arg(0).to_string(),
                value: arg(1).to_string(),
            },
            "HeaderRegexp" => Matcher::HeaderRegexp {
                name: arg(0).to_string(),
                re: regex(1)?,
            },
            "Query" | "QueryRegexp" if args.len() == 1 => Matcher::Query {
                key: arg(0).to_string(),
                value: String::new(),
            },
            "Query" => Matcher::Query {
                key: arg(0).to_string(),
                value: arg(1).to_string(),
            },
            "QueryRegexp" => Matcher::QueryRegexp {
                key: arg(0).to_string(),
                re: regex(1)?,
            },
            _ => Matcher::ClientIp(IpMatch::parse(arg(0)).map_err(|e| {
                ParseError::new(
                    args[0].column,
                    format!("`ClientIP` takes {}, but {e}", sig.takes),
                )
            })?),
        })
    }

    /// Whether the request satisfies this matcher.
    pub(crate) fn matches<R: RequestView + ?Sized>(&self, p: &Prepared<'_, R>) -> bool {
        match self {
            Matcher::Host(pattern) => pattern.matches(&p.host),
            // Traefik also tries the regex on the CNAME-flattened host, which is the empty
            // string when flattening is off: a regex that matches "" matches every request.
            Matcher::HostRegexp { re, matches_empty } => *matches_empty || re.is_match(&p.host),
            Matcher::Path(path) => *p.path == *path.as_bytes(),
            Matcher::PathPrefix(prefix) => p.path.starts_with(prefix.as_bytes()),
            Matcher::PathRegexp(re) => re.is_match_bytes(&p.path),
            Matcher::Method(m) => p.req.method() == m,
            Matcher::Header { name, value } => p
                .req
                .any_header(name, &mut |v: &[u8]| v == value.as_bytes()),
            Matcher::HeaderRegexp { name, re } => {
                p.req.any_header(name, &mut |v: &[u8]| re.is_match_bytes(v))
            }
            Matcher::Query { key, value } => has_query_value(p.req.query(), key, value),
            Matcher::QueryRegexp { key, re } => {
                any_query_value(p.req.query(), key, &mut |v: &[u8]| re.is_match_bytes(v))
            }
            Matcher::ClientIp(ip) => p.req.client_ip().is_some_and(|c| ip.contains(c)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn host_patterns() {
        let p = HostPattern::new("*.Example.com");
        assert!(p.matches("a.example.com"));
        assert!(p.matches("a.b.example.com"));
        assert!(p.matches("a.example.com."));
        assert!(!p.matches("example.com"));
        assert!(!p.matches(".example.com"));
        assert!(!p.matches("aexample.com"));
        let p = HostPattern::new("example.com.");
        assert!(p.matches("example.com"));
        assert!(p.matches("example.com."));
        assert!(!p.matches("example.org."));
        let p = HostPattern::new("**.example.com");
        assert!(p.matches("a.b.example.com"));
        assert!(!p.matches("example.com"));
        let p = HostPattern::new("*");
        assert!(p.matches("localhost"));
        assert!(!p.matches(""));
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("Hots"), Some("Host"));
        assert_eq!(suggest("PathPrefx"), Some("PathPrefix"));
        assert_eq!(suggest("clientip"), Some("ClientIP"));
        assert_eq!(suggest("w"), None);
        assert_eq!(suggest("rulewithnotmatcher"), None);
    }
}
