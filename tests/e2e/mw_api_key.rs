//! `api_key` through the binary: aPI keys in a header or query parameter, each with an optional consumer name.
