//! Turning a request path into a file under the root, without ever leaving it.
//!
//! Two layers: the request path is checked lexically (decoded once; `..`, NUL and
//! backslashes refused), then the file found is canonicalized and must still lie under the
//! canonical root, which catches symlinks pointing outside.

use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;

/// Why a request path cannot name a file.
#[derive(Debug, PartialEq, Eq)]
pub enum BadPath {
    /// A traversal attempt or bytes no file name may hold: 400.
    Refused,
    /// The path is outside `strip_prefix`: not this middleware's file.
    NotUnderPrefix,
}

/// The path relative to the root, as checked segments (`/a/b/` → `["a", "b"]`).
#[derive(Debug, PartialEq, Eq)]
pub struct Relative {
    pub segments: Vec<String>,
    /// The request asked for a directory (`/docs/`).
    pub trailing_slash: bool,
}

impl Relative {
    /// The candidate path under `root` (not yet canonicalized).
    pub fn under(&self, root: &Path) -> PathBuf {
        let mut path = root.to_path_buf();
        path.extend(&self.segments);
        path
    }
}

/// Checks a request path (as sent, still percent-encoded) and splits it into segments.
/// `strip_prefix` (no trailing slash) is removed first.
pub fn relative(raw_path: &str, strip_prefix: Option<&str>) -> Result<Relative, BadPath> {
    let rest = match strip_prefix {
        None => raw_path,
        Some(prefix) => match raw_path.strip_prefix(prefix) {
            // `/assets` must not match `/assetsX`.
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
            _ => return Err(BadPath::NotUnderPrefix),
        },
    };
    // Decoded exactly once: `%252e` stays the literal name `%2e`, never `.`.
    let decoded = percent_decode_str(rest)
        .decode_utf8()
        .map_err(|_| BadPath::Refused)?;
    if decoded.contains(['\0', '\\']) {
        return Err(BadPath::Refused);
    }
    let mut segments = Vec::new();
    // `%2f` decodes to `/` and so separates segments like a plain slash: `..%2f` is
    // caught as a `..` segment below.
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(BadPath::Refused),
            name => segments.push(name.to_string()),
        }
    }
    Ok(Relative {
        segments,
        trailing_slash: decoded.ends_with('/'),
    })
}

/// Whether `path` (canonical) lies under `root` (canonical). Symlinks were resolved by
/// the canonicalization, so a link pointing outside fails here.
pub fn contained(root: &Path, path: &Path) -> bool {
    path.starts_with(root)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn segs(path: &str) -> Vec<String> {
        relative(path, None).unwrap().segments
    }

    #[test]
    fn plain_paths_split_into_segments() {
        assert_eq!(segs("/"), Vec::<String>::new());
        assert_eq!(segs("/a/b.txt"), vec!["a", "b.txt"]);
        assert_eq!(segs("//a/./b"), vec!["a", "b"]);
        assert_eq!(segs("/caf%C3%A9.txt"), vec!["café.txt"]);
        assert!(relative("/docs/", None).unwrap().trailing_slash);
        assert!(!relative("/docs", None).unwrap().trailing_slash);
    }

    #[test]
    fn traversal_and_odd_bytes_are_refused() {
        for bad in [
            "/../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/a/%2E%2E/%2e%2e/etc/passwd",
            "/..%2fetc%2fpasswd",
            "/a/..",
            "/a%5c..%5cb",
            "/a\\b",
            "/a%00.txt",
            "/%ff",
        ] {
            assert_eq!(relative(bad, None), Err(BadPath::Refused), "{bad}");
        }
        // Decoded once: a double-encoded dot is a literal name, not a parent.
        assert_eq!(segs("/%252e%252e/x"), vec!["%2e%2e", "x"]);
    }

    #[test]
    fn strip_prefix_needs_a_segment_boundary() {
        let r = relative("/assets/app.js", Some("/assets")).unwrap();
        assert_eq!(r.segments, vec!["app.js"]);
        assert!(relative("/assets", Some("/assets"))
            .unwrap()
            .segments
            .is_empty());
        assert_eq!(
            relative("/assetsX/app.js", Some("/assets")),
            Err(BadPath::NotUnderPrefix)
        );
        assert_eq!(
            relative("/other", Some("/assets")),
            Err(BadPath::NotUnderPrefix)
        );
    }

    #[test]
    fn containment_is_by_whole_components() {
        assert!(contained(Path::new("/srv/www"), Path::new("/srv/www/a")));
        assert!(contained(Path::new("/srv/www"), Path::new("/srv/www")));
        assert!(!contained(Path::new("/srv/www"), Path::new("/srv/www2/a")));
        assert!(!contained(Path::new("/srv/www"), Path::new("/etc/passwd")));
    }
}
