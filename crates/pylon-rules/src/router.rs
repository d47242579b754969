//! [`Router`]: every route's rule and priority, indexed so that a lookup looks at few routes.
//!
//! **Order.** Routes are ranked once, at build time: higher priority first, and among equal
//! priorities the one declared first. A lookup returns the first route in that order whose
//! rule matches; the index only decides which routes are worth asking.
//!
//! **Index.** Each rule is analysed for what a matching request must have
//! ([`Requirements`]): a host among a finite set (exact names, or `*.suffix` wildcards) and a
//! routing path starting with one of a set of prefixes (from `Path`/`PathPrefix`), as far as
//! its top-level `&&`/`||` structure tells. Routes are filed under
//!
//! - each exact host they require (a hash map), or each wildcard suffix (another map), or the
//!   host-agnostic bucket when the rule does not pin the host;
//! - within that bucket, a radix tree keyed by each path prefix they require (the empty
//!   prefix when the rule does not pin the path).
//!
//! A lookup hashes the request's canonical host (and the host without a trailing dot), walks
//! its dot-separated suffixes against the wildcard map (never longer than the longest
//! registered suffix), and walks the routing path once down each bucket's tree, collecting
//! candidate ids on the stack. Candidates are sorted (ids are ranks) and evaluated in order;
//! the first full match wins. A route is only skipped when its requirements prove it cannot
//! match, so the result is always the one a linear scan in rank order would give.

use crate::ast::{HostKey, PathKey};
use crate::request::Prepared;
use crate::trie::{Candidates, PathTrie};
use crate::{RequestView, Rule};
use std::collections::HashMap;

/// The routing index: every route's compiled rule and priority, organised so that lookup
/// cost hardly grows with the number of routes.
#[derive(Debug)]
pub struct Router<T> {
    /// Routes in rank order: priority descending, then declaration order.
    entries: Vec<Entry<T>>,
    index: Index,
}

#[derive(Debug)]
struct Entry<T> {
    rule: Rule,
    value: T,
}

/// Host maps hash with foldhash rather than SipHash: their keys come from the config, so
/// flooding them is not a client's option, and SipHash was a fifth of a lookup's cost.
type HostMap = HashMap<Box<str>, PathTrie, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
struct Index {
    exact: HostMap,
    wildcard: HostMap,
    /// The longest key in `wildcard`: suffixes of the request host longer than this are
    /// not looked up, which bounds the work a host with many labels can cause.
    longest_wildcard: usize,
    any_host: PathTrie,
}

impl<T> Router<T> {
    /// Builds the index. `entries` are (rule, priority, value) in declaration order; the
    /// highest priority wins, and ties on priority are broken by declaration order (the
    /// route declared first wins).
    pub fn new(entries: Vec<(Rule, i64, T)>) -> Self {
        let mut ranked: Vec<(usize, (Rule, i64, T))> = entries.into_iter().enumerate().collect();
        // Stable sort keeps declaration order among equal priorities.
        ranked.sort_by_key(|(_, (_, priority, _))| std::cmp::Reverse(*priority));

        let mut index = Index::default();
        let mut out = Vec::with_capacity(ranked.len());
        for (rank, (_, (rule, _priority, value))) in ranked.into_iter().enumerate() {
            index.add(rank as u32, &rule);
            out.push(Entry { rule, value });
        }
        Router {
            entries: out,
            index,
        }
    }

    /// The value of the highest-priority route whose rule matches, if any.
    pub fn find<R: RequestView + ?Sized>(&self, req: &R) -> Option<&T> {
        let prepared = Prepared::new(req);
        let mut candidates = Candidates::new();
        self.index
            .collect(&prepared.host, &prepared.path, &mut candidates);
        for &id in candidates.sorted() {
            let entry = &self.entries[id as usize];
            if entry.rule.matches_prepared(&prepared) {
                return Some(&entry.value);
            }
        }
        None
    }

    /// The number of routes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no route.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Index {
    fn add(&mut self, id: u32, rule: &Rule) {
        let req = rule.requirements();
        let everything = [PathKey {
            prefix: Vec::new(),
            exact: false,
        }];
        let paths: &[PathKey] = req.paths.as_deref().unwrap_or(&everything);
        let insert = |trie: &mut PathTrie| {
            for p in paths {
                trie.insert(&p.prefix, p.exact, id);
            }
        };
        match req.hosts {
            None => insert(&mut self.any_host),
            Some(hosts) => {
                for host in hosts {
                    match host {
                        HostKey::Exact(h) => insert(self.exact.entry(h.into()).or_default()),
                        HostKey::Wildcard(s) => {
                            self.longest_wildcard = self.longest_wildcard.max(s.len());
                            insert(self.wildcard.entry(s.into()).or_default());
                        }
                    }
                }
            }
        }
    }

    /// Collects every route the request might match. `host` is canonical, `path` the
    /// routing path.
    fn collect(&self, host: &str, path: &[u8], out: &mut Candidates) {
        let without_dot = host.strip_suffix('.');
        if !self.exact.is_empty() {
            for h in std::iter::once(host).chain(without_dot) {
                if let Some(trie) = self.exact.get(h) {
                    trie.collect(path, out);
                }
            }
        }
        if !self.wildcard.is_empty() {
            for h in std::iter::once(host).chain(without_dot) {
                // Suffixes after each dot, shortest first.
                for (dot, _) in h.rmatch_indices('.') {
                    let suffix = &h[dot + 1..];
                    if suffix.len() > self.longest_wildcard {
                        break;
                    }
                    if let Some(trie) = self.wildcard.get(suffix) {
                        trie.collect(path, out);
                    }
                }
            }
        }
        self.any_host.collect(path, out);
    }
}
