//! The middleware pipeline through the binary: named and inline instances, the order of
//! the request and response sides, answers that end the request side, `request_id`,
//! `headers`, and the shared error format.
