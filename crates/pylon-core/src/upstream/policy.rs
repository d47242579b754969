//! What a route may retry, compiled from `retries:` into flags and small lists.

use http::Method;
use pylon_config::{Retries, RetryMethods, RetryOn};

/// Which methods may be retried after the request reached a server.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MethodSet {
    Idempotent,
    All,
    List(Vec<Method>),
}

/// The compiled retry policy of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first try.
    pub attempts: u32,
    pub on_connect_failure: bool,
    pub on_timeout: bool,
    pub on_reset: bool,
    statuses: Vec<u16>,
    methods: MethodSet,
}

impl RetryPolicy {
    pub fn new(retries: &Retries) -> Self {
        let mut policy = RetryPolicy {
            attempts: retries.attempts,
            on_connect_failure: false,
            on_timeout: false,
            on_reset: false,
            statuses: Vec::new(),
            methods: match &retries.methods {
                RetryMethods::Idempotent => MethodSet::Idempotent,
                RetryMethods::All => MethodSet::All,
                RetryMethods::List(list) => MethodSet::List(
                    list.iter()
                        .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
                        .collect(),
                ),
            },
        };
        for on in &retries.on {
            match on {
                RetryOn::ConnectFailure => policy.on_connect_failure = true,
                RetryOn::Timeout => policy.on_timeout = true,
                RetryOn::Reset => policy.on_reset = true,
                RetryOn::Status(code) => policy.statuses.push(*code),
            }
        }
        policy
    }

    /// Whether a request with this method may be sent again after it reached a server.
    /// (A connect failure is retryable for every method: the request never left.)
    pub fn method_allowed(&self, method: &Method) -> bool {
        match &self.methods {
            MethodSet::Idempotent => method.is_idempotent(),
            MethodSet::All => true,
            MethodSet::List(list) => list.contains(method),
        }
    }

    /// Whether a response with this status is retried.
    pub fn retries_status(&self, status: u16) -> bool {
        self.statuses.contains(&status)
    }
}
