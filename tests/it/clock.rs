//! Clock skew between origin and edge: with the host's clock set, a message issued more than
//! `MAX_CLOCK_SKEW_MS` in its future is refused (`clock_skew`) and changes nothing; within the
//! tolerance, or in the past, it is taken.
use edge_authz::{compile_snapshot, diff_models, sign_watermark, Evaluator, MAX_CLOCK_SKEW_MS};

use crate::common::{example, revoked, test_key};

#[test]
fn messages_from_past_the_tolerance_are_refused_and_change_nothing() {
    let k = test_key();
    let now = 1_700_000_000_000u64;
    let mut ev = Evaluator::with_keys("acme", vec![k.public_key()]).unwrap();
    ev.set_clock(Some(now));
    let too_far = now + MAX_CLOCK_SKEW_MS + 1;
    let e = ev
        .load_snapshot(&compile_snapshot(&example(), 1, too_far, &k).unwrap())
        .unwrap_err();
    assert_eq!(e.code(), "clock_skew", "{e}");
    assert!(e.to_string().contains("1001 ms ahead"), "{e}");
    assert_eq!(ev.epoch(), None);

    // At the tolerance: taken.
    let edge = now + MAX_CLOCK_SKEW_MS;
    ev.load_snapshot(&compile_snapshot(&example(), 1, edge, &k).unwrap())
        .unwrap();
    let status = ev.status();
    assert_eq!(status.confirmed_at, Some(edge));

    // A delta, a watermark and a heartbeat from too far ahead: refused, nothing moves.
    let delta = diff_models(&example(), &revoked(), 1, 2, too_far, &k)
        .unwrap()
        .bytes;
    assert_eq!(ev.apply_delta(&delta).unwrap_err().code(), "clock_skew");
    for wm in [
        sign_watermark("acme", 2, too_far, None, &k).unwrap(),
        sign_watermark("acme", 1, too_far, None, &k).unwrap(),
    ] {
        assert_eq!(ev.apply_watermark(&wm).unwrap_err().code(), "clock_skew");
    }
    assert_eq!(ev.status(), status);

    // From the past (an origin clock behind): taken; confirmed_at only rises.
    let behind = diff_models(&example(), &revoked(), 1, 2, now - 60_000, &k)
        .unwrap()
        .bytes;
    assert_eq!(ev.apply_delta(&behind).unwrap().epoch, 2);
    assert_eq!(ev.confirmed_at(), Some(edge));

    // No clock: nothing is checked.
    ev.set_clock(None);
    ev.apply_watermark(&sign_watermark("acme", 2, too_far, None, &k).unwrap())
        .unwrap();
    assert_eq!(ev.confirmed_at(), Some(too_far));
}
