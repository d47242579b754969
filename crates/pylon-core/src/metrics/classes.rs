//! The fixed label values a request is counted under: its method normalized to a short
//! list and its status reduced to a class, so that recording indexes an array (no hashing)
//! and no client can create series by sending odd methods or statuses.

/// Methods with their own series; every other one counts as `OTHER`.
pub const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "OTHER",
];

/// Status classes; `none` is a request that got no status (the client went away first).
pub const CODES: [&str; 6] = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"];

/// How an upstream attempt failed (`proxy::upstream_error_kind`).
pub const ERROR_KINDS: [&str; 5] = ["connect", "timeout", "reset", "tls", "other"];

/// The index of `method` in [`METHODS`].
#[inline]
pub fn method_index(method: &str) -> usize {
    match method {
        "GET" => 0,
        "HEAD" => 1,
        "POST" => 2,
        "PUT" => 3,
        "DELETE" => 4,
        "PATCH" => 5,
        "OPTIONS" => 6,
        "CONNECT" => 7,
        "TRACE" => 8,
        _ => 9,
    }
}

/// The index of `status`'s class in [`CODES`] (0: no status).
#[inline]
pub fn code_index(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100),
        _ => 0,
    }
}

/// The index of an upstream error kind in [`ERROR_KINDS`].
#[inline]
pub fn error_index(kind: &str) -> usize {
    ERROR_KINDS
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(ERROR_KINDS.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_list_are_other() {
        assert_eq!(METHODS[method_index("GET")], "GET");
        assert_eq!(METHODS[method_index("PATCH")], "PATCH");
        assert_eq!(METHODS[method_index("get")], "OTHER");
        assert_eq!(METHODS[method_index("PROPFIND")], "OTHER");
    }

    #[test]
    fn statuses_are_classes() {
        assert_eq!(CODES[code_index(200)], "2xx");
        assert_eq!(CODES[code_index(101)], "1xx");
        assert_eq!(CODES[code_index(404)], "4xx");
        assert_eq!(CODES[code_index(599)], "5xx");
        assert_eq!(CODES[code_index(0)], "none");
        assert_eq!(CODES[code_index(600)], "none");
    }

    #[test]
    fn unknown_error_kinds_are_other() {
        assert_eq!(ERROR_KINDS[error_index("tls")], "tls");
        assert_eq!(ERROR_KINDS[error_index("weird")], "other");
    }
}
