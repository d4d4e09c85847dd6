//! A watermark message (a heartbeat, or one carrying a delta), as given or re-signed, into an
//! evaluator holding the example at epoch 1: a refusal leaves it exactly as it was; an accepted
//! one never lowers the watermark.
#![no_main]
#[path = "common.rs"]
mod common;

use edge_authz::MessageKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let msg = common::message(MessageKind::Watermark, data);
    let mut ev = common::loaded();
    let before = common::fingerprint(&ev);
    let watermark = ev.watermark();
    let outcome = ev.apply_watermark(&msg);
    common::peek_agrees(MessageKind::Watermark, &msg, outcome.is_ok());
    match outcome {
        Ok(_) => {
            assert!(ev.watermark() >= watermark, "the watermark went down");
            common::fingerprint(&ev);
        }
        Err(_) => assert_eq!(
            common::fingerprint(&ev),
            before,
            "a refused watermark changed the state"
        ),
    }
});
