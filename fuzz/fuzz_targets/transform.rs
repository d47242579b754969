//! Fuzzes the `transform` middleware's compact parser: any UTF-8 input must parse or be
//! refused with a column inside the input (never a panic), and what parses must print
//! (`Display`) to a string that parses back to the same operations.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pylon_config::middleware::transform::{
    parse_request_ops, parse_response_ops, to_compact, ParseError,
};

/// A refusal points at a character of the input, or just past its end.
fn check_column(input: &str, e: &ParseError) {
    let len = input.chars().count();
    assert!(
        e.column >= 1 && e.column <= len + 1,
        "column {} outside 1..={} for {input:?}: {}",
        e.column,
        len + 1,
        e.message
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    match parse_request_ops(input) {
        Ok(ops) => {
            let printed = to_compact(&ops);
            let again = parse_request_ops(&printed)
                .unwrap_or_else(|e| panic!("{printed:?} (from {input:?}) does not parse: {e}"));
            assert_eq!(again, ops, "round trip of {input:?} via {printed:?}");
        }
        Err(e) => check_column(input, &e),
    }
    match parse_response_ops(input) {
        Ok(ops) => {
            let printed = to_compact(&ops);
            let again = parse_response_ops(&printed)
                .unwrap_or_else(|e| panic!("{printed:?} (from {input:?}) does not parse: {e}"));
            assert_eq!(again, ops, "round trip of {input:?} via {printed:?}");
        }
        Err(e) => check_column(input, &e),
    }
});
