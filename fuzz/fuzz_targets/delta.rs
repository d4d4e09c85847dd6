//! A delta message, as given or re-signed, into an evaluator holding the example at epoch 1: a
//! refusal leaves it exactly as it was; an applied delta moves the epoch forward and the state
//! answers without panicking.
#![no_main]
#[path = "common.rs"]
mod common;

use edge_authz::MessageKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let msg = common::message(MessageKind::Delta, data);
    let mut ev = common::loaded();
    let before = common::fingerprint(&ev);
    let outcome = ev.apply_delta(&msg);
    common::peek_agrees(MessageKind::Delta, &msg, outcome.is_ok());
    match outcome {
        Ok(a) => {
            assert!(ev.epoch() >= Some(1));
            assert!(a.epoch >= 1);
            common::fingerprint(&ev);
        }
        Err(_) => assert_eq!(
            common::fingerprint(&ev),
            before,
            "a refused delta changed the state"
        ),
    }
});
