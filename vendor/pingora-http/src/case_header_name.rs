// Copyright 2026 Cloudflare, Inc.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
// http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

use crate::*;
use bytes::Bytes;
use http::header;

#[derive(Debug, Clone)]
pub struct CaseHeaderName(Bytes);

impl CaseHeaderName {
    pub fn new(name: String) -> Self {
        CaseHeaderName(name.into())
    }
}

impl CaseHeaderName {
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    pub fn from_slice(buf: &[u8]) -> Self {
        CaseHeaderName(Bytes::copy_from_slice(buf))
    }
}

/// A trait that converts into case-sensitive header names.
pub trait IntoCaseHeaderName {
    fn into_case_header_name(self) -> CaseHeaderName;

    /// PYLON PATCH: the parsed name together with the case-preserving one. By default the
    /// case name is parsed, which validates it and, for a name outside the standard set,
    /// allocates its lowercase copy; a caller holding a parsed name skips both.
    fn into_header_names(self) -> Result<(HeaderName, CaseHeaderName)>
    where
        Self: Sized,
    {
        let case_header_name = self.into_case_header_name();
        let header_name: HeaderName = case_header_name
            .as_slice()
            .try_into()
            .or_err(InvalidHTTPHeader, "invalid header name")?;
        Ok((header_name, case_header_name))
    }

    /// PYLON PATCH: the parsed name alone, for a header kept without its case: the
    /// case-preserving half is neither made nor cloned (for a shared name, a reference
    /// count taken and given back for nothing).
    fn into_header_name(self) -> Result<HeaderName>
    where
        Self: Sized,
    {
        Ok(self.into_header_names()?.0)
    }
}

/// PYLON PATCH: a header name parsed once, with the case it is written in on the wire.
/// Adding a header by a prepared name neither parses nor allocates the name again: both
/// halves are shared.
#[derive(Debug, Clone)]
pub struct PreparedHeaderName {
    name: HeaderName,
    case: CaseHeaderName,
}

impl PreparedHeaderName {
    /// Parses `name` (any case); the wire keeps the case it is written in.
    ///
    /// Both halves are made static (see [`intern`]): adding a header by a prepared name then
    /// copies two pointers, where a shared name took and gave back a reference count (an
    /// atomic operation each way) on every use.
    pub fn new(name: &str) -> Result<Self> {
        let parsed = HeaderName::from_bytes(name.as_bytes())
            .or_err(InvalidHTTPHeader, "invalid header name")?;
        Ok(PreparedHeaderName {
            name: static_header_name(parsed),
            case: CaseHeaderName(Bytes::from_static(intern(name).as_bytes())),
        })
    }

    /// A name known at compile time, written as given (`"X-Request-ID"`).
    ///
    /// # Panics
    /// When `name` is not a valid header name.
    pub fn from_static(name: &'static str) -> Self {
        let parsed = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
        PreparedHeaderName {
            name: static_header_name(parsed),
            case: CaseHeaderName(Bytes::from_static(name.as_bytes())),
        }
    }

    /// The parsed (lowercase) name, for lookups.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }
}

/// PYLON PATCH: `name` with its text static (standard names already are; `from_static`
/// gives them their standard form again).
fn static_header_name(name: HeaderName) -> HeaderName {
    // `name` was parsed, so its text is valid and lowercase: `from_static` cannot refuse it.
    HeaderName::from_static(intern(name.as_str()))
}

/// PYLON PATCH: `text`, leaked once per process and shared by every later request for the
/// same text. For header names prepared from configuration: the memory held is the set of
/// distinct names ever prepared (a reload with the same names adds nothing).
pub fn intern(text: &str) -> &'static str {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    static INTERNED: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut interned = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = interned.get(text) {
        return known;
    }
    let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
    interned.insert(leaked);
    leaked
}

impl IntoCaseHeaderName for &PreparedHeaderName {
    fn into_case_header_name(self) -> CaseHeaderName {
        self.case.clone()
    }

    fn into_header_names(self) -> Result<(HeaderName, CaseHeaderName)> {
        Ok((self.name.clone(), self.case.clone()))
    }

    // PYLON PATCH: see the trait.
    fn into_header_name(self) -> Result<HeaderName> {
        Ok(self.name.clone())
    }
}

impl IntoCaseHeaderName for CaseHeaderName {
    fn into_case_header_name(self) -> CaseHeaderName {
        self
    }
}

impl IntoCaseHeaderName for String {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(self.into())
    }
}

impl IntoCaseHeaderName for &'static str {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(self.into())
    }
}

impl IntoCaseHeaderName for HeaderName {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(titled_header_name(&self))
    }

    // PYLON PATCH: already parsed.
    fn into_header_names(self) -> Result<(HeaderName, CaseHeaderName)> {
        let case = CaseHeaderName(titled_header_name(&self));
        Ok((self, case))
    }

    // PYLON PATCH: see the trait.
    fn into_header_name(self) -> Result<HeaderName> {
        Ok(self)
    }
}

impl IntoCaseHeaderName for &HeaderName {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(titled_header_name(self))
    }

    // PYLON PATCH: already parsed.
    fn into_header_names(self) -> Result<(HeaderName, CaseHeaderName)> {
        Ok((self.clone(), CaseHeaderName(titled_header_name(self))))
    }

    // PYLON PATCH: see the trait.
    fn into_header_name(self) -> Result<HeaderName> {
        Ok(self.clone())
    }
}

impl IntoCaseHeaderName for Bytes {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(self)
    }
}

/// PYLON PATCH: a name borrowed from a buffer (a parser's read buffer): parsed in place when
/// the case is not kept, copied only when it is.
impl IntoCaseHeaderName for &[u8] {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(Bytes::copy_from_slice(self))
    }

    fn into_header_name(self) -> Result<HeaderName> {
        HeaderName::from_bytes(self).or_err(InvalidHTTPHeader, "invalid header name")
    }
}

fn titled_header_name(header_name: &HeaderName) -> Bytes {
    titled_header_name_str(header_name).map_or_else(
        || Bytes::copy_from_slice(header_name.as_str().as_bytes()),
        |s| Bytes::from_static(s.as_bytes()),
    )
}

pub(crate) fn titled_header_name_str(header_name: &HeaderName) -> Option<&'static str> {
    Some(match *header_name {
        header::ACCEPT_RANGES => "Accept-Ranges",
        header::AGE => "Age",
        header::CACHE_CONTROL => "Cache-Control",
        header::CONNECTION => "Connection",
        header::CONTENT_TYPE => "Content-Type",
        header::CONTENT_ENCODING => "Content-Encoding",
        header::CONTENT_LENGTH => "Content-Length",
        header::DATE => "Date",
        header::TRANSFER_ENCODING => "Transfer-Encoding",
        header::HOST => "Host",
        header::SERVER => "Server",
        header::SET_COOKIE => "Set-Cookie",
        // TODO: add more const header here to map to their titled case
        // TODO: automatically upper case the first letter?
        _ => {
            return None;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_case_header_name() {
        assert_eq!("FoO".into_case_header_name().as_slice(), b"FoO");
        assert_eq!("FoO".to_string().into_case_header_name().as_slice(), b"FoO");
        assert_eq!(header::SERVER.into_case_header_name().as_slice(), b"Server");
    }

    // PYLON PATCH: prepared names are static and interned.
    #[test]
    fn pylon_patch_prepared_names_are_interned_once() {
        let first = PreparedHeaderName::new("X-Pylon-Test").unwrap();
        let again = PreparedHeaderName::new("X-Pylon-Test").unwrap();
        assert_eq!(first.name().as_str(), "x-pylon-test");
        assert_eq!(first.case.as_slice(), b"X-Pylon-Test");
        // The same text is not leaked twice: both point at one interned copy.
        assert_eq!(
            first.name().as_str().as_ptr(),
            again.name().as_str().as_ptr()
        );
        assert_eq!(
            first.case.as_slice().as_ptr(),
            again.case.as_slice().as_ptr()
        );
        // Standard names keep their standard form.
        assert_eq!(
            PreparedHeaderName::new("Vary").unwrap().name(),
            header::VARY
        );
        assert!(PreparedHeaderName::new("bad name").is_err());
    }

    // PYLON PATCH: the name alone, for headers kept without their case.
    #[test]
    fn pylon_patch_into_header_name_parses_without_the_case_half() {
        let from_slice = (&b"X-Sliced"[..]).into_header_name().unwrap();
        assert_eq!(from_slice.as_str(), "x-sliced");
        assert!((&b"bad name"[..]).into_header_name().is_err());
        assert_eq!(
            (&b"X-Sliced"[..]).into_case_header_name().as_slice(),
            b"X-Sliced"
        );
        let prepared = PreparedHeaderName::from_static("X-Forwarded-For");
        assert_eq!(
            (&prepared).into_header_name().unwrap().as_str(),
            "x-forwarded-for"
        );
        assert_eq!(header::HOST.into_header_name().unwrap(), header::HOST);
        assert_eq!((&header::HOST).into_header_name().unwrap(), header::HOST);
        assert_eq!("X-Str".into_header_name().unwrap().as_str(), "x-str");
    }
}
