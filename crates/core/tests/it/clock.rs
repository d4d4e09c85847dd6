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

mod two_times {
    use edge_authz::{
        compile_snapshot, peek, sign_watermark, At, Evaluator, Limits, MessageKind, Reason,
        Request, MAX_EPOCH, MAX_WATERMARK, PEEK_BYTES,
    };
    use proptest::prelude::*;

    use crate::common::{example, other_key, test_key};

    const ISSUED: u64 = 1_700_000_000_000;
    /// alice's admin assignment on workspace:eng expires here (the example model).
    const EXPIRES: u64 = 1_798_761_600_000;

    fn loaded(issued_at: u64) -> Evaluator {
        let k = test_key();
        let mut ev = Evaluator::with_keys("acme", vec![k.public_key()]).unwrap();
        ev.load_snapshot(&compile_snapshot(&example(), 1, issued_at, &k).unwrap())
            .unwrap();
        ev
    }

    fn export(ev: &Evaluator, at: At) -> Reason {
        ev.check(Request::new("user:alice", "export", "doc:roadmap"), at)
            .reason
    }

    /// A caller's `now` cannot make an old state fresh: the clock alone judges freshness.
    #[test]
    fn now_never_moves_the_clock() {
        let ev = loaded(ISSUED);
        let late = ISSUED + 60_000; // a minute of silence; `high` allows 5 s
        assert_eq!(export(&ev, At::clock(late)), Reason::FreshnessExceeded);
        assert_eq!(
            export(&ev, At::clock(late).with_now(Some(ISSUED))),
            Reason::FreshnessExceeded
        );
        assert_eq!(
            export(&ev, At::clock(ISSUED).with_now(Some(late))),
            Reason::Granted
        );
        let list = |at: At| ev.list_resources("user:alice", "export", None, at);
        assert_eq!(
            list(At::clock(late).with_now(Some(ISSUED)))
                .unwrap_err()
                .code(),
            "freshness_exceeded"
        );
        assert!(list(At::clock(ISSUED)).is_ok());
        assert_eq!(
            ev.list_subjects(
                "doc:roadmap",
                "export",
                At::clock(late).with_now(Some(ISSUED))
            )
            .unwrap_err()
            .code(),
            "freshness_exceeded"
        );
    }

    /// `now` moves expiry, and only expiry.
    #[test]
    fn now_moves_expiry() {
        let ev = loaded(EXPIRES + 1_000);
        let clock = At::clock(EXPIRES + 1_000);
        assert_eq!(export(&ev, clock), Reason::NoGrant);
        assert_eq!(
            export(&ev, clock.with_now(Some(EXPIRES - 1))),
            Reason::Granted
        );
        let mut out = Vec::new();
        ev.check_many(
            &[Request::new("user:alice", "export", "doc:roadmap")],
            clock.with_now(Some(EXPIRES - 1)),
            &mut out,
        );
        assert_eq!(out[0].reason, Reason::Granted);
    }

    proptest! {
        /// For any `now`, the freshness gate's answer depends only on the clock and
        /// `confirmed_at`.
        #[test]
        fn freshness_depends_only_on_the_clock(
            since in 0u64..400_000,
            now in proptest::option::of(0u64..(1u64 << 53)),
            action in prop::sample::select(vec!["read", "write", "export", "undeclared"]),
        ) {
            let ev = loaded(ISSUED);
            let bound = match action {
                "read" => 300_000,
                "write" => 30_000,
                _ => 5_000,
            };
            let at = At::clock(ISSUED + since).with_now(now);
            let d = ev.check(Request::new("user:alice", action, "doc:roadmap"), at);
            prop_assert_eq!(d.reason == Reason::FreshnessExceeded, since > bound, "{:?}", d);
            let without = ev.check(Request::new("user:alice", action, "doc:roadmap"), At::clock(ISSUED + since));
            prop_assert_eq!(
                d.reason == Reason::FreshnessExceeded,
                without.reason == Reason::FreshnessExceeded
            );
        }
    }

    /// One signed watermark cannot lock a tenant for good: past MAX_WATERMARK it is refused,
    /// by the edge and by the signing function, and changes nothing.
    #[test]
    fn a_watermark_past_the_largest_is_refused() {
        let k = test_key();
        let mut ev = loaded(ISSUED);
        let before = ev.status();
        for w in [MAX_WATERMARK + 1, MAX_EPOCH, u64::MAX] {
            let e = sign_watermark("acme", w, ISSUED, None, &k).unwrap_err();
            assert_eq!(e.code(), "watermark_too_high", "{e}");
            // Signed anyway (by hand): the edge refuses it.
            let payload =
                rmp_serde::to_vec(&("acme", w, ISSUED, None::<serde_bytes::ByteBuf>)).unwrap();
            let msg = edge_authz::sign_raw(MessageKind::Watermark, &payload, &k);
            assert_eq!(
                ev.apply_watermark(&msg).unwrap_err().code(),
                "watermark_too_high"
            );
            assert_eq!(ev.status(), before);
        }
        // At the largest: taken, and a snapshot at it (the recovery) still leaves room.
        ev.apply_watermark(&sign_watermark("acme", MAX_WATERMARK, ISSUED, None, &k).unwrap())
            .unwrap();
        assert_eq!(export(&ev, At::clock(ISSUED)), Reason::StaleSnapshot);
        ev.load_snapshot(&compile_snapshot(&example(), MAX_WATERMARK, ISSUED, &k).unwrap())
            .unwrap();
        assert_eq!(export(&ev, At::clock(ISSUED)), Reason::Granted);
        ev.load_snapshot(&compile_snapshot(&example(), MAX_WATERMARK + 1, ISSUED, &k).unwrap())
            .unwrap();
    }

    #[test]
    fn an_epoch_past_the_largest_is_refused() {
        let k = test_key();
        assert_eq!(
            compile_snapshot(&example(), MAX_EPOCH + 1, ISSUED, &k)
                .unwrap_err()
                .code(),
            "invalid_argument"
        );
        let mut ev = loaded(ISSUED);
        let before = ev.status();
        let hand = |epoch: u64| {
            let c = edge_authz::Content::from_state(&example()).unwrap();
            let payload = rmp_serde::to_vec(&("acme", epoch, ISSUED, c)).unwrap();
            edge_authz::sign_raw(MessageKind::Snapshot, &payload, &k)
        };
        assert_eq!(
            ev.load_snapshot(&hand(MAX_EPOCH + 1)).unwrap_err().code(),
            "invalid_snapshot"
        );
        assert_eq!(ev.status(), before);
        assert!(ev.load_snapshot(&hand(MAX_EPOCH)).is_ok());
    }

    /// The cheap checks a host runs on a message's first bytes before it reads the rest.
    #[test]
    fn peek_refuses_cheaply() {
        let k = test_key();
        let keys = [k.public_key()];
        let msg = compile_snapshot(&example(), 3, ISSUED, &k).unwrap();
        let head = &msg[..PEEK_BYTES.min(msg.len())];
        let limits = Limits::default();
        let p = peek(
            head,
            msg.len(),
            MessageKind::Snapshot,
            "acme",
            &keys,
            &limits,
        )
        .unwrap();
        assert_eq!(p.payload_at + p.payload_len, msg.len());
        // The signature covers the prefix and the payload: verifying them gives the same answer.
        let mut signed = p.prefix.to_vec();
        signed.extend_from_slice(&msg[p.payload_at..]);
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&p.key.to_bytes()).unwrap();
        let sig = ed25519_dalek::Signature::from_bytes(&p.signature);
        assert!(vk.verify_strict(&signed, &sig).is_ok());

        let code =
            |head: &[u8], total: usize, kind, tenant: &str, keys: &[edge_authz::PublicKey]| {
                peek(head, total, kind, tenant, keys, &limits)
                    .unwrap_err()
                    .code()
            };
        assert_eq!(
            code(head, msg.len(), MessageKind::Delta, "acme", &keys),
            "wrong_kind"
        );
        assert_eq!(
            code(head, msg.len(), MessageKind::Snapshot, "other", &keys),
            "tenant_mismatch"
        );
        assert_eq!(
            code(
                head,
                msg.len(),
                MessageKind::Snapshot,
                "acme",
                &[other_key().public_key()]
            ),
            "unknown_key"
        );
        // A declared size that is not the body's: refused before the body is read.
        assert_eq!(
            code(head, msg.len() + 1, MessageKind::Snapshot, "acme", &keys),
            "malformed"
        );
        assert_eq!(
            code(head, msg.len() - 1, MessageKind::Snapshot, "acme", &keys),
            "malformed"
        );
        assert_eq!(
            code(b"GARBAGE!", 8, MessageKind::Snapshot, "acme", &keys),
            "bad_magic"
        );
        let small = Limits {
            max_message_bytes: msg.len() - 1,
            ..Limits::default()
        };
        assert_eq!(
            peek(
                head,
                msg.len(),
                MessageKind::Snapshot,
                "acme",
                &keys,
                &small
            )
            .unwrap_err()
            .code(),
            "too_large"
        );
        // Every prefix of a message short of its header is refused, never a panic.
        for n in 0..head.len().min(120) {
            let _ = peek(
                &msg[..n],
                msg.len(),
                MessageKind::Snapshot,
                "acme",
                &keys,
                &limits,
            );
            let _ = peek(&msg[..n], n, MessageKind::Snapshot, "acme", &keys, &limits);
        }
    }
}
