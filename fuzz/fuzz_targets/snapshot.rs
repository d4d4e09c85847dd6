//! A snapshot message, as given or re-signed, into an evaluator holding the example and into an
//! empty one: a refusal leaves each exactly as it was; whatever loads answers without panicking.
#![no_main]
#[path = "common.rs"]
mod common;

use edge_authz::MessageKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let msg = common::message(MessageKind::Snapshot, data);
    for mut ev in [common::loaded(), common::empty()] {
        let before = common::fingerprint(&ev);
        let outcome = ev.load_snapshot(&msg);
        common::peek_agrees(MessageKind::Snapshot, &msg, outcome.is_ok());
        match outcome {
            Ok(_) => {
                common::fingerprint(&ev);
            }
            Err(_) => assert_eq!(
                common::fingerprint(&ev),
                before,
                "a refused snapshot changed the state"
            ),
        }
    }
});
