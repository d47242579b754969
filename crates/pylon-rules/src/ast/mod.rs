//! The compiled form of a rule: a tree of `&&` / `||` over matchers, with negation pushed
//! down to the matchers (De Morgan), as Traefik builds it. Besides evaluating a request, the
//! tree answers the question the router index asks: which hosts and which path prefixes can
//! a matching request possibly have?

pub(crate) mod matcher;

use crate::request::Prepared;
use crate::RequestView;
use matcher::{HostExpr, Matcher};

/// A rule in negation normal form: `And`/`Or` lists are flat (no `And` directly inside an
/// `And`), and `!` only applies to single matchers.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Leaf { matcher: Matcher, negated: bool },
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Expr {
    pub(crate) fn leaf(matcher: Matcher) -> Expr {
        Expr::Leaf {
            matcher,
            negated: false,
        }
    }

    /// `!self`, with the negation pushed down to the matchers.
    pub(crate) fn negate(self) -> Expr {
        match self {
            Expr::Leaf { matcher, negated } => Expr::Leaf {
                matcher,
                negated: !negated,
            },
            Expr::And(items) => Expr::Or(items.into_iter().map(Expr::negate).collect()),
            Expr::Or(items) => Expr::And(items.into_iter().map(Expr::negate).collect()),
        }
    }

    /// `a && b && …`, flattened.
    pub(crate) fn and(items: Vec<Expr>) -> Expr {
        Self::flat(items, true)
    }

    /// `a || b || …`, flattened.
    pub(crate) fn or(items: Vec<Expr>) -> Expr {
        Self::flat(items, false)
    }

    fn flat(items: Vec<Expr>, is_and: bool) -> Expr {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Expr::And(inner) if is_and => out.extend(inner),
                Expr::Or(inner) if !is_and => out.extend(inner),
                other => out.push(other),
            }
        }
        if out.len() == 1 {
            if let Some(only) = out.pop() {
                return only;
            }
        }
        if is_and {
            Expr::And(out)
        } else {
            Expr::Or(out)
        }
    }

    /// Whether the request matches. Depth is bounded by the parser's nesting limit.
    pub(crate) fn matches<R: RequestView + ?Sized>(&self, p: &Prepared<'_, R>) -> bool {
        match self {
            Expr::Leaf { matcher, negated } => matcher.matches(p) != *negated,
            Expr::And(items) => items.iter().all(|e| e.matches(p)),
            Expr::Or(items) => items.iter().any(|e| e.matches(p)),
        }
    }

    /// What a matching request must look like, as far as host and path go.
    pub(crate) fn requirements(&self) -> Requirements {
        match self {
            Expr::Leaf { negated: true, .. } => Requirements::ANY,
            Expr::Leaf { matcher, .. } => match matcher {
                Matcher::Host(pattern) => {
                    let mut hosts = Vec::new();
                    for expr in std::iter::once(&pattern.full).chain(&pattern.without_dot) {
                        match expr {
                            HostExpr::Any => return Requirements::ANY,
                            HostExpr::Exact(h) => hosts.push(HostKey::Exact(h.clone())),
                            HostExpr::Wildcard(s) => hosts.push(HostKey::Wildcard(s.clone())),
                        }
                    }
                    Requirements {
                        hosts: Some(hosts),
                        paths: None,
                    }
                }
                Matcher::Path(p) => Requirements {
                    hosts: None,
                    paths: Some(vec![PathKey {
                        prefix: p.clone().into_bytes(),
                        exact: true,
                    }]),
                },
                Matcher::PathPrefix(p) => Requirements {
                    hosts: None,
                    paths: Some(vec![PathKey {
                        prefix: p.clone().into_bytes(),
                        exact: false,
                    }]),
                },
                _ => Requirements::ANY,
            },
            // Every item must hold: any one item's requirement is a valid one. Take the
            // most selective of each kind.
            Expr::And(items) => {
                let mut best = Requirements::ANY;
                for item in items {
                    let r = item.requirements();
                    if let Some(h) = r.hosts {
                        if best
                            .hosts
                            .as_ref()
                            .is_none_or(|b| host_score(&h) > host_score(b))
                        {
                            best.hosts = Some(h);
                        }
                    }
                    if let Some(p) = r.paths {
                        if best
                            .paths
                            .as_ref()
                            .is_none_or(|b| path_score(&p) > path_score(b))
                        {
                            best.paths = Some(p);
                        }
                    }
                }
                best
            }
            // One item must hold: the union, if every item has a requirement of that kind.
            Expr::Or(items) => {
                let mut hosts = Some(Vec::new());
                let mut paths = Some(Vec::new());
                for item in items {
                    let r = item.requirements();
                    hosts = union(hosts, r.hosts);
                    paths = union(paths, r.paths);
                }
                Requirements { hosts, paths }
            }
        }
    }

    /// Lowercase values of the `Host` matchers a matching request may have to satisfy
    /// (non-negated ones), in rule order.
    pub(crate) fn hosts(&self, out: &mut Vec<String>) {
        match self {
            Expr::Leaf {
                matcher: Matcher::Host(p),
                negated: false,
            } => out.push(match &p.full {
                HostExpr::Any => "*".to_string(),
                HostExpr::Exact(h) => h.clone(),
                HostExpr::Wildcard(s) => format!("*.{s}"),
            }),
            Expr::Leaf { .. } => {}
            Expr::And(items) | Expr::Or(items) => items.iter().for_each(|e| e.hosts(out)),
        }
    }
}

/// Above this many alternatives, a requirement is dropped (treated as "any"): the index
/// stays small and the route is simply checked more often.
const MAX_KEYS: usize = 64;

fn union<T>(a: Option<Vec<T>>, b: Option<Vec<T>>) -> Option<Vec<T>> {
    let (mut a, b) = (a?, b?);
    a.extend(b);
    (a.len() <= MAX_KEYS).then_some(a)
}

/// Fewer, exact hosts select better than many or wildcard ones.
fn host_score(keys: &[HostKey]) -> (bool, std::cmp::Reverse<usize>) {
    let all_exact = keys.iter().all(|k| matches!(k, HostKey::Exact(_)));
    (all_exact, std::cmp::Reverse(keys.len()))
}

/// Longer shortest prefix selects better; exact paths better than prefixes.
fn path_score(keys: &[PathKey]) -> (usize, bool) {
    let shortest = keys.iter().map(|k| k.prefix.len()).min().unwrap_or(0);
    (shortest, keys.iter().all(|k| k.exact))
}

/// A host a matching request may have (canonical form: lowercase, no port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostKey {
    /// Exactly this host.
    Exact(String),
    /// Any host with at least one label before `.{suffix}`.
    Wildcard(String),
}

/// A routing-path prefix a matching request must have; `exact` when the path must be it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathKey {
    pub prefix: Vec<u8>,
    pub exact: bool,
}

/// For a rule: the request's host is one of `hosts` (when `Some`) and its routing path
/// starts with one of `paths` (when `Some`). `None` means "could be anything".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Requirements {
    pub hosts: Option<Vec<HostKey>>,
    pub paths: Option<Vec<PathKey>>,
}

impl Requirements {
    pub(crate) const ANY: Requirements = Requirements {
        hosts: None,
        paths: None,
    };
}
