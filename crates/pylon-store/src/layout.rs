//! Where each resource lives under the prefix: `PREFIX/routes/NAME`,
//! `PREFIX/upstreams/NAME`, `PREFIX/middlewares/NAME`, `PREFIX/error_pages`, and
//! `PREFIX/generation`, the counter every write transaction compares and bumps.

use pylon_config::ResourceKind;

/// The kinds of resources, in the order they are listed.
pub const KINDS: [ResourceKind; 4] = [
    ResourceKind::Route,
    ResourceKind::Upstream,
    ResourceKind::Middleware,
    ResourceKind::ErrorPages,
];

/// What a key under the prefix is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    Resource(ResourceKind, String),
    Generation,
    /// Not part of the layout.
    Unknown,
}

/// The keys of one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    prefix: String,
}

impl Layout {
    /// `prefix` as in `config.prefix` (`/pylon`); a trailing `/` is ignored.
    pub fn new(prefix: &str) -> Layout {
        Layout {
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The start of every key of this layout: `/pylon/` (so `/pylonx` is not included).
    pub fn range(&self) -> String {
        format!("{}/", self.prefix)
    }

    pub fn generation(&self) -> String {
        format!("{}/generation", self.prefix)
    }

    /// The key of a resource: `/pylon/routes/api`; `name` is ignored for `error_pages`.
    pub fn key(&self, kind: ResourceKind, name: &str) -> String {
        if kind.is_named() {
            format!("{}/{}/{name}", self.prefix, kind.segment())
        } else {
            format!("{}/{}", self.prefix, kind.segment())
        }
    }

    /// What `key` is in this layout.
    pub fn parse(&self, key: &str) -> KeyKind {
        let Some(rest) = key
            .strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix('/'))
        else {
            return KeyKind::Unknown;
        };
        if rest == "generation" {
            return KeyKind::Generation;
        }
        for kind in KINDS {
            if kind.is_named() {
                if let Some(name) = rest
                    .strip_prefix(kind.segment())
                    .and_then(|r| r.strip_prefix('/'))
                    .filter(|n| !n.is_empty())
                {
                    return KeyKind::Resource(kind, name.to_string());
                }
            } else if rest == kind.segment() {
                return KeyKind::Resource(kind, String::new());
            }
        }
        KeyKind::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let layout = Layout::new("/pylon/");
        assert_eq!(layout.range(), "/pylon/");
        for kind in KINDS {
            let key = layout.key(kind, "a/b.c");
            let name = if kind.is_named() { "a/b.c" } else { "" };
            assert_eq!(
                layout.parse(&key),
                KeyKind::Resource(kind, name.to_string())
            );
        }
        assert_eq!(layout.key(ResourceKind::Route, "api"), "/pylon/routes/api");
        assert_eq!(layout.parse("/pylon/generation"), KeyKind::Generation);
        assert_eq!(layout.parse("/pylon/routes/"), KeyKind::Unknown);
        assert_eq!(layout.parse("/pylon/routes"), KeyKind::Unknown);
        assert_eq!(layout.parse("/pylon/other/x"), KeyKind::Unknown);
        assert_eq!(layout.parse("/pylonx/routes/a"), KeyKind::Unknown);
    }
}
