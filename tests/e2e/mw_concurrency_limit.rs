//! `concurrency_limit` through the binary: at most N requests in flight per key; the excess waits, then 503.
