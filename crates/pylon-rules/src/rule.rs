//! [`Rule`]: a parsed, compiled rule and its text.

use crate::ast::{Expr, Requirements};
use crate::request::Prepared;
use crate::{parser, ParseError, RequestView};

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    source: String,
    expr: Expr,
}

impl Rule {
    /// Parses and compiles a rule.
    pub fn parse(source: &str) -> Result<Rule, ParseError> {
        Ok(Rule {
            source: source.to_string(),
            expr: parser::parse(source)?,
        })
    }

    /// The rule's text as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the request matches.
    pub fn matches<R: RequestView + ?Sized>(&self, req: &R) -> bool {
        self.expr.matches(&Prepared::new(req))
    }

    /// The priority a route gets when none is configured: the length of the rule text in
    /// bytes, as in Traefik, so that longer (usually more specific) rules are tried first.
    pub fn default_priority(&self) -> i64 {
        i64::try_from(self.source.len()).unwrap_or(i64::MAX)
    }

    /// The values of the rule's non-negated `Host` matchers, lowercased, in rule order
    /// (a wildcard as `*.example.com`, the catch-all as `*`): the names a certificate for
    /// this route would need to cover. Like Traefik's `ParseDomains`.
    pub fn hosts(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.expr.hosts(&mut out);
        out
    }

    pub(crate) fn matches_prepared<R: RequestView + ?Sized>(&self, p: &Prepared<'_, R>) -> bool {
        self.expr.matches(p)
    }

    pub(crate) fn requirements(&self) -> Requirements {
        self.expr.requirements()
    }
}
