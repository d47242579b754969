//! Where a token is read from, and how it is taken out of the request.
//!
//! Sources are tried in the configured order and the first that carries a token is used.
//! A source carrying two (two `Authorization: Bearer` headers, a cookie or parameter given
//! twice) is refused with 400: which one the upstream would read is anyone's guess. An
//! empty cookie or parameter counts as absent.
//!
//! Taking out: a query parameter always goes (before anything logs the request line); the
//! others go unless `forward_token` is set, and even then the sources other than the one
//! used go, so the upstream never receives a token that was not verified.

use http::header::{AUTHORIZATION, COOKIE};
use http::HeaderValue;
use percent_encoding::percent_decode_str;
use pingora::http::RequestHeader;
use pylon_config::middleware::TokenSource;

use super::verify::Failure;
use crate::middleware::transform::{edit_query, QueryEdit};

/// The token of the first source in `sources` that has one, with that source's index.
pub fn find(
    req: &RequestHeader,
    sources: &[TokenSource],
) -> Result<Option<(usize, String)>, Failure> {
    for (i, source) in sources.iter().enumerate() {
        let found = match source {
            TokenSource::Bearer => one(
                req.headers
                    .get_all(AUTHORIZATION)
                    .iter()
                    .filter_map(bearer_token),
                "more than one bearer token",
            )?,
            TokenSource::Cookie(name) => one(
                cookies(req).filter(|(n, _)| n == name).map(|(_, v)| v),
                "the token cookie is given twice",
            )?,
            TokenSource::Query(name) => one(
                query_pairs(req.uri.query())
                    .filter(|(n, _)| n == name)
                    .map(|(_, v)| v),
                "the token parameter is given twice",
            )?,
        };
        match found {
            Some(token) if token.is_empty() => {}
            Some(token) => return Ok(Some((i, token))),
            None => {}
        }
    }
    Ok(None)
}

/// At most one item: a second is a bad request.
fn one(
    mut items: impl Iterator<Item = String>,
    twice: &'static str,
) -> Result<Option<String>, Failure> {
    let first = items.next();
    if items.next().is_some() {
        return Err(Failure::BadRequest(twice));
    }
    Ok(first)
}

/// The token of an `Authorization: Bearer TOKEN` value (the scheme is case-insensitive);
/// `None` for other schemes, which belong to someone else. A value that is not text gives
/// an empty token, refused later as malformed.
fn bearer_token(value: &HeaderValue) -> Option<String> {
    let bytes = value.as_bytes();
    let scheme_end = bytes.iter().position(|b| *b == b' ').unwrap_or(bytes.len());
    if !bytes[..scheme_end].eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let rest = std::str::from_utf8(&bytes[scheme_end..]).unwrap_or("\u{0}");
    Some(rest.trim_matches(' ').to_string())
}

/// Every cookie of every `Cookie` header, as (name, value); a quoted value is unquoted.
fn cookies(req: &RequestHeader) -> impl Iterator<Item = (String, String)> + '_ {
    req.headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            Some((name.trim().to_string(), value.to_string()))
        })
}

/// The query's pairs, decoded (`+` is a space, as in forms).
fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (String, String)> + '_ {
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(move |pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
}

/// Takes the token sources out of the request: every query source; the others unless
/// `forward` is set and the source is the one `used`. Fails only if the request target
/// cannot be rebuilt, and then the request must not go on.
pub fn strip(
    req: &mut RequestHeader,
    sources: &[TokenSource],
    used: Option<usize>,
    forward: bool,
) -> Result<(), Failure> {
    for (i, source) in sources.iter().enumerate() {
        let keep = forward && used == Some(i);
        match source {
            TokenSource::Query(name) => strip_query(req, name)?,
            _ if keep => {}
            TokenSource::Bearer => {
                let others: Vec<HeaderValue> = req
                    .headers
                    .get_all(AUTHORIZATION)
                    .iter()
                    .filter(|v| bearer_token(v).is_none())
                    .cloned()
                    .collect();
                if others.len() != req.headers.get_all(AUTHORIZATION).iter().count() {
                    req.remove_header(&AUTHORIZATION);
                    for v in others {
                        // The values came from this header: re-adding them cannot fail.
                        let _ = req.append_header(AUTHORIZATION, v);
                    }
                }
            }
            TokenSource::Cookie(name) => strip_cookie(req, name),
        }
    }
    Ok(())
}

fn strip_query(req: &mut RequestHeader, name: &str) -> Result<(), Failure> {
    let Some(query) = req.uri.query() else {
        return Ok(());
    };
    if !query_pairs(Some(query)).any(|(n, _)| n == name) {
        return Ok(());
    }
    let rest = edit_query(Some(query), QueryEdit::Delete(name));
    let target = match rest {
        Some(q) => format!("{}?{q}", req.uri.path()),
        None => req.uri.path().to_string(),
    };
    let mut parts = req.uri.clone().into_parts();
    parts.path_and_query = http::uri::PathAndQuery::try_from(target).ok();
    match http::Uri::from_parts(parts) {
        Ok(uri) if parts_ok(&uri, name) => {
            req.set_uri(uri);
            Ok(())
        }
        _ => Err(Failure::BadRequest("the request target cannot be read")),
    }
}

/// The rebuilt target no longer carries the parameter.
fn parts_ok(uri: &http::Uri, name: &str) -> bool {
    !query_pairs(uri.query()).any(|(n, _)| n == name)
}

/// Removes cookie `name` from every `Cookie` header, dropping headers left empty.
fn strip_cookie(req: &mut RequestHeader, name: &str) {
    let values: Vec<String> = req
        .headers
        .get_all(COOKIE)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let is_token = |pair: &str| pair.split_once('=').is_some_and(|(n, _)| n.trim() == name);
    if !values.iter().any(|v| v.split(';').any(is_token)) {
        return;
    }
    req.remove_header(&COOKIE);
    for value in values {
        let kept: Vec<&str> = value
            .split(';')
            .filter(|p| !is_token(p))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if !kept.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
                let _ = req.append_header(COOKIE, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req(target: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", target.as_bytes(), None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    fn all() -> Vec<TokenSource> {
        vec![
            TokenSource::Bearer,
            TokenSource::Cookie("session".into()),
            TokenSource::Query("access_token".into()),
        ]
    }

    #[test]
    fn the_first_source_with_a_token_wins() {
        let r = req(
            "/x?access_token=q",
            &[
                ("Cookie", "a=1; session=c"),
                ("Authorization", "bearer  h "),
            ],
        );
        assert_eq!(find(&r, &all()).unwrap(), Some((0, "h".into())));
        let r = req("/x?access_token=q%2E1", &[("Cookie", "a=1; session=\"c\"")]);
        assert_eq!(find(&r, &all()).unwrap(), Some((1, "c".into())));
        let r = req("/x?access_token=q%2E1", &[("Authorization", "Basic dTpw")]);
        assert_eq!(find(&r, &all()).unwrap(), Some((2, "q.1".into())));
        let r = req("/x?access_token=&y=1", &[("Cookie", "session=")]);
        assert_eq!(find(&r, &all()).unwrap(), None);
    }

    #[test]
    fn a_token_given_twice_is_a_bad_request() {
        let r = req(
            "/",
            &[("Authorization", "Bearer a"), ("Authorization", "Bearer b")],
        );
        assert!(matches!(find(&r, &all()), Err(Failure::BadRequest(_))));
        let r = req("/", &[("Cookie", "session=a"), ("Cookie", "session=b")]);
        assert!(matches!(find(&r, &all()), Err(Failure::BadRequest(_))));
        let r = req("/?access_token=a&access_token=b", &[]);
        assert!(matches!(find(&r, &all()), Err(Failure::BadRequest(_))));
    }

    #[test]
    fn sources_are_taken_out() {
        let headers = [
            ("Authorization", "Bearer h"),
            ("Authorization", "Basic dTpw"),
            ("Cookie", "a=1; session=c; b=2"),
            ("Cookie", "session=d"),
        ];
        let mut r = req("/p?x=1&access_token=q&access_token=r&y=2", &headers);
        strip(&mut r, &all(), Some(0), false).unwrap();
        assert_eq!(r.uri.to_string(), "/p?x=1&y=2");
        let auth: Vec<_> = r.headers.get_all(AUTHORIZATION).iter().collect();
        assert_eq!(auth, ["Basic dTpw"]);
        let cookies: Vec<_> = r.headers.get_all(COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1; b=2"]);

        // Forwarded: the source used stays, the others (and the query) go.
        let mut r = req("/p?access_token=q", &headers);
        strip(&mut r, &all(), Some(0), true).unwrap();
        assert_eq!(r.uri.to_string(), "/p");
        assert_eq!(r.headers.get_all(AUTHORIZATION).iter().count(), 2);
        assert_eq!(r.headers.get_all(COOKIE).iter().count(), 1);
    }
}
