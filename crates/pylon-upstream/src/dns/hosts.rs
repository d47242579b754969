//! The hosts file (`/etc/hosts` format), parsed by us and re-read when it changes.
//!
//! We parse it ourselves rather than through hickory so that the path is configurable (tests
//! point it at a temporary file) and so that an edit is seen at the next lookup without a
//! restart. Each lookup costs one `stat`; the file is read again only when its modification
//! time, size or inode changed (editors and Kubernetes ConfigMaps replace files by rename,
//! which changes the inode even when the time stamp does not move).
//!
//! Format, as glibc reads it: one address followed by one or more names (the canonical name
//! and its aliases) per line, fields separated by spaces or tabs, `#` starts a comment.
//! Names are matched case-insensitively, a trailing dot ignored. A name listed on several
//! lines collects all their addresses. Lines whose address does not parse (including IPv6
//! addresses with a zone such as `fe80::1%eth0`) are skipped.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

/// What identifies one version of the file: when a lookup sees a different stamp, it re-reads.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode,
        }
    }
}

/// The parsed file: lower-cased name → addresses in file order, without duplicates.
pub(super) type HostsTable = HashMap<String, Vec<IpAddr>>;

#[derive(Debug, Default)]
struct Loaded {
    /// `None` until the first read, and while the file is missing or unreadable.
    stamp: Option<Stamp>,
    table: HostsTable,
    /// The last read error, so that it is logged once rather than at every lookup.
    last_error: Option<String>,
}

/// A hosts file on disk and its last parsed content.
#[derive(Debug)]
pub(super) struct HostsFile {
    path: PathBuf,
    loaded: Mutex<Loaded>,
}

impl HostsFile {
    pub(super) fn new(path: PathBuf) -> HostsFile {
        HostsFile {
            path,
            loaded: Mutex::new(Loaded::default()),
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The addresses listed for `name` (already normalised by [`normalize_name`]), re-reading
    /// the file first if it changed. A missing or unreadable file lists nothing.
    ///
    /// This does blocking file I/O under a lock: a `stat` per call, a read of a few kilobytes
    /// after a change. Lookups happen at start-up and on DNS refreshes, not per request, so
    /// that is cheaper than handing the work to a blocking thread.
    pub(super) fn lookup(&self, name: &str) -> Vec<IpAddr> {
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        self.refresh(&mut loaded);
        loaded.table.get(name).cloned().unwrap_or_default()
    }

    fn refresh(&self, loaded: &mut Loaded) {
        let read = fs::metadata(&self.path).and_then(|meta| {
            let stamp = Stamp::of(&meta);
            if loaded.stamp.as_ref() == Some(&stamp) {
                return Ok(None);
            }
            let bytes = fs::read(&self.path)?;
            Ok(Some((stamp, parse(&String::from_utf8_lossy(&bytes)))))
        });
        match read {
            Ok(None) => {}
            Ok(Some((stamp, table))) => {
                log::debug!("hosts file {}: {} names", self.path.display(), table.len());
                *loaded = Loaded {
                    stamp: Some(stamp),
                    table,
                    last_error: None,
                };
            }
            Err(err) => {
                let message = err.to_string();
                if loaded.last_error.as_ref() != Some(&message) {
                    // A missing file is normal in minimal containers: not worth a warning.
                    if err.kind() == io::ErrorKind::NotFound {
                        log::debug!("hosts file {}: {message}", self.path.display());
                    } else {
                        log::warn!("hosts file {}: {message}", self.path.display());
                    }
                }
                *loaded = Loaded {
                    stamp: None,
                    table: HostsTable::new(),
                    last_error: Some(message),
                };
            }
        }
    }
}

/// Lower-cases `name` and drops one trailing dot: the key used both for the table and for
/// lookups.
pub(super) fn normalize_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Parses hosts-file text into a table. Never fails: bad lines are skipped.
pub(super) fn parse(text: &str) -> HostsTable {
    let mut table = HostsTable::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        let Some(address) = fields.next() else {
            continue;
        };
        let Ok(ip) = address.parse::<IpAddr>() else {
            log::debug!("hosts file: skipping line with address {address:?}");
            continue;
        };
        for name in fields {
            let addrs = table.entry(normalize_name(name)).or_default();
            if !addrs.contains(&ip) {
                addrs.push(ip);
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn parses_names_aliases_comments_and_both_families() {
        let table = parse(
            "# a comment line\n\
             127.0.0.1\tlocalhost\n\
             10.0.0.1   api.internal  api   # trailing comment\n\
             \n   \t\n\
             fd00::1    api.internal\n\
             10.0.0.2   API.Internal. other\n\
             10.0.0.1   api.internal\n\
             not-an-ip  broken.internal\n\
             fe80::1%eth0 zoned.internal\n\
             10.0.0.9\n\
             #10.0.0.3  commented.internal\n",
        );
        assert_eq!(
            table.get("api.internal"),
            Some(&vec![ip("10.0.0.1"), ip("fd00::1"), ip("10.0.0.2")])
        );
        assert_eq!(table.get("api"), Some(&vec![ip("10.0.0.1")]));
        assert_eq!(table.get("other"), Some(&vec![ip("10.0.0.2")]));
        assert_eq!(table.get("localhost"), Some(&vec![ip("127.0.0.1")]));
        assert!(!table.contains_key("broken.internal"));
        assert!(!table.contains_key("zoned.internal"));
        assert!(!table.contains_key("commented.internal"));
        assert_eq!(table.len(), 4);
    }

    #[test]
    fn normalizes_case_and_trailing_dot() {
        assert_eq!(normalize_name("API.Internal."), "api.internal");
        assert_eq!(normalize_name("api"), "api");
    }

    #[test]
    fn a_missing_file_lists_nothing() {
        let hosts = HostsFile::new(PathBuf::from("/nonexistent/pylon/hosts"));
        assert!(hosts.lookup("localhost").is_empty());
    }
}
