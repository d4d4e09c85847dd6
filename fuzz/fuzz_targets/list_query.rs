//! The Worker's listing query: the `now` and `context` values (the input split at its first
//! newline; a leading `n` or `c` byte on each side says whether that parameter is given), read
//! as the Worker reads them, then both listings of an evaluator holding the example at that
//! time, or the refusal the Worker answers for a malformed time.
#![no_main]
#[path = "common.rs"]
mod common;

use edge_authz_protocol::list_context;
use libfuzzer_sys::fuzz_target;

/// `Some(rest)` when the part starts with its marker byte and the rest is UTF-8 (the Worker's
/// query values are percent-decoded strings).
fn param(part: &[u8], marker: u8) -> Option<&str> {
    match part.split_first() {
        Some((m, rest)) if *m == marker => std::str::from_utf8(rest).ok(),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let (a, b) = match data.iter().position(|x| *x == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let ev = common::loaded();
    match list_context(param(a, b'n'), param(b, b'c')) {
        Ok(c) => {
            let now = c.at(common::NOW);
            for (who, action) in [("user:alice", "read"), ("group:eng", "export")] {
                if let Ok(list) = ev.list_resources(who, action, None, now) {
                    assert!(list.windows(2).all(|w| w[0] < w[1]), "not sorted: {list:?}");
                }
            }
            if let Ok(list) = ev.list_subjects("doc:roadmap", "read", now) {
                assert!(list.windows(2).all(|w| w[0] < w[1]), "not sorted: {list:?}");
            }
        }
        Err(()) => assert_eq!(ev.reject_list().code(), "invalid_request"),
    }
});
