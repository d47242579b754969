//! The `cors` middleware through the binary: what the origin received and what the
//! client received.
