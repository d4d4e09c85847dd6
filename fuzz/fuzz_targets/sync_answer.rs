//! What a replica and a publisher read from the other side of a sync or a push. The first byte
//! says which:
//! - `a`: the rest is a push answer as the publisher reads it (`PushAnswer`): read, it writes
//!   back to JSON that reads as the same answer, and the head it names is the answer's own;
//! - `f`: the rest is a feed answer as a replica reads it (`feed::decode`): read, it encodes
//!   to bytes that read as the same answer, and a replica holding nothing that replays it
//!   reaches the head exactly when its evaluator does, never answers "allowed" below the
//!   watermark it knows, and refuses a forged message (every message is verified again).
#![no_main]
#[path = "common.rs"]
mod common;

use edge_authz::sync::{reaches, Replica, Synced};
use edge_authz::Request;
use edge_authz_protocol::{feed, PushAnswer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((b'a', text)) => {
            if let Ok(answer) = serde_json::from_slice::<PushAnswer>(text) {
                let again = serde_json::to_vec(&answer).unwrap_or_else(|e| panic!("{e}"));
                let read: PushAnswer = serde_json::from_slice(&again)
                    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&again)));
                assert_eq!(read, answer);
                if let PushAnswer::Watermark { watermark, epoch, .. } = answer {
                    assert_eq!((answer.head().watermark, answer.head().epoch), (watermark, epoch));
                }
            }
        }
        Some((b'f', body)) => {
            let Some(answer) = feed::decode(body) else {
                return;
            };
            let messages: Vec<&[u8]> = answer.messages().collect();
            let again = feed::encode(answer.head, &messages, usize::MAX)
                .unwrap_or_else(|| panic!("an answer read does not encode"));
            let read = feed::decode(&again).unwrap_or_else(|| panic!("an encoded answer does not read"));
            assert_eq!((read.head, read.messages().collect::<Vec<_>>()), (answer.head, messages.clone()));
            let head = answer.head;
            let mut r = Replica::new(common::empty());
            let synced = r.catch_up(head, messages.iter().copied(), common::NOW);
            assert_eq!(synced == Synced::Reached, reaches(r.evaluator(), &head));
            for (s, a, res) in [
                ("user:alice", "read", "doc:roadmap"),
                ("user:alice", "export", "workspace:eng"),
                ("group:eng", "write", "workspace:eng"),
            ] {
                let d = r.guard(r.evaluator().check(Request::new(s, a, res), common::NOW));
                if d.allowed {
                    assert!(d.epoch.is_some_and(|e| e >= r.known_watermark()), "{d:?}");
                }
            }
        }
        _ => {}
    }
});
