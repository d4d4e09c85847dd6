//! The tenant authority (the Worker's Durable Object state machine): isolates that replay its
//! catch-up messages reach exactly its state, whatever epoch they start from; rejected pushes
//! change nothing.
use edge_authz::authority::{apply, Authority, Head};
use edge_authz::{compile_snapshot, diff_models, sign_watermark, Evaluator, State};

use crate::common::{example, other_key, revoked, test_key};

fn authority() -> Authority {
    Authority::new("acme", vec![test_key().public_key()]).unwrap()
}

fn isolate() -> Evaluator {
    Evaluator::with_keys("acme", vec![test_key().public_key()]).unwrap()
}

fn with_bob_in_eng(mut s: State) -> State {
    s.memberships
        .insert(("user:bob".to_string(), "group:eng".to_string()));
    s
}

/// Replays the authority's catch-up messages; every one must apply or be a harmless replay.
fn replay(ev: &mut Evaluator, msgs: &[&[u8]]) {
    for m in msgs {
        apply(ev, m).unwrap();
    }
}

/// What an isolate holding `ev` tells the authority when it asks to catch up.
fn held(ev: &Evaluator) -> Option<Head> {
    Some(Head {
        epoch: ev.epoch(),
        watermark: ev.watermark(),
        confirmed_at: ev.confirmed_at(),
    })
}

fn same_state(a: &Authority, ev: &Evaluator) {
    let h = a.head();
    assert_eq!(
        (ev.epoch(), ev.watermark(), ev.confirmed_at()),
        (h.epoch, h.watermark, h.confirmed_at)
    );
}

/// Snapshot 1; grant delta to 2; revocation to 3 riding on watermark 3; heartbeat.
fn history(a: &mut Authority) {
    let k = test_key();
    let s1 = example();
    let s2 = with_bob_in_eng(example());
    let s3 = with_bob_in_eng(revoked());
    a.push_snapshot(&compile_snapshot(&s1, 1, 1_000, &k).unwrap())
        .unwrap();
    a.push_delta(&diff_models(&s1, &s2, 1, 2, 1_100, &k).unwrap().bytes)
        .unwrap();
    let d3 = diff_models(&s2, &s3, 2, 3, 1_200, &k).unwrap();
    assert!(d3.revokes);
    a.push_watermark(&sign_watermark("acme", 3, 1_210, Some(&d3.bytes), &k).unwrap())
        .unwrap();
    a.push_watermark(&sign_watermark("acme", 3, 1_900, None, &k).unwrap())
        .unwrap();
}

#[test]
fn isolates_catch_up_from_nothing_and_from_every_epoch() {
    let mut a = authority();
    history(&mut a);
    let h = a.head();
    assert_eq!(
        (h.epoch, h.watermark, h.confirmed_at),
        (Some(3), 3, Some(1_900))
    );
    let mut fresh = isolate();
    replay(&mut fresh, &a.catch_up(None));
    same_state(&a, &fresh);

    // An isolate that stopped at epoch 1 or 2 replays only what follows.
    let k = test_key();
    let mut at1 = isolate();
    at1.load_snapshot(&compile_snapshot(&example(), 1, 1_000, &k).unwrap())
        .unwrap();
    let suffix = a.catch_up(held(&at1));
    assert!(suffix.len() < a.catch_up(None).len());
    replay(&mut at1, &suffix);
    same_state(&a, &at1);
}

#[test]
fn a_new_snapshot_starts_a_new_log() {
    let mut a = authority();
    history(&mut a);
    let k = test_key();
    let s4 = with_bob_in_eng(revoked());
    let snap4 = compile_snapshot(&s4, 4, 2_000, &k).unwrap();
    a.push_snapshot(&snap4).unwrap();
    assert_eq!(a.log().len(), 1);
    let msgs = a.catch_up(None);
    let snapshots: Vec<&&[u8]> = msgs.iter().filter(|m| m.get(6) == Some(&b'S')).collect();
    assert_eq!(snapshots, vec![&snap4.as_slice()]);
    let mut fresh = isolate();
    replay(&mut fresh, &msgs);
    same_state(&a, &fresh);
    assert_eq!(a.head().epoch, Some(4));
}

#[test]
fn rejected_pushes_change_nothing() {
    let mut a = authority();
    history(&mut a);
    let head = a.head();
    let before: Vec<Vec<u8>> = a.catch_up(None).iter().map(|m| m.to_vec()).collect();
    let k = test_key();
    let bad = [
        // forged: signed by a key the tenant does not trust
        compile_snapshot(&example(), 9, 3_000, &other_key()).unwrap(),
        // a gap: from epoch 7
        diff_models(&example(), &revoked(), 7, 8, 3_000, &k)
            .unwrap()
            .bytes,
        // a rollback
        compile_snapshot(&example(), 1, 3_000, &k).unwrap(),
        b"garbage".to_vec(),
    ];
    for b in &bad {
        let refused = match b.get(6) {
            Some(b'D') => a.push_delta(b).is_err(),
            _ => a.push_snapshot(b).is_err(),
        };
        assert!(refused);
        assert_eq!(a.head(), head);
        let now: Vec<Vec<u8>> = a.catch_up(None).iter().map(|m| m.to_vec()).collect();
        assert_eq!(now, before);
    }
}

#[test]
fn a_restored_authority_reaches_the_same_head_and_log() {
    let mut a = authority();
    history(&mut a);
    // What the Durable Object persists: the log, the raising watermark, the latest message.
    let mut stored: Vec<Vec<u8>> = a.log().iter().map(|(_, b)| b.clone()).collect();
    stored.extend(a.raised_by().map(<[u8]>::to_vec));
    stored.extend(a.latest().map(<[u8]>::to_vec));
    let b = Authority::restore(
        "acme",
        vec![test_key().public_key()],
        stored.iter().map(Vec::as_slice),
    )
    .unwrap();
    assert_eq!(b.head(), a.head());
    assert_eq!(b.catch_up(None), a.catch_up(None));
    let mut at1 = isolate();
    at1.load_snapshot(&compile_snapshot(&example(), 1, 1_000, &test_key()).unwrap())
        .unwrap();
    assert_eq!(b.catch_up(held(&at1)), a.catch_up(held(&at1)));
    // A message that is not ours is refused by kind, before decoding.
    let mut c = authority();
    assert_eq!(c.push(b"garbage").unwrap_err().code(), "bad_magic");
    assert_eq!(c.head().epoch, None);
}

/// A watermark whose carried delta did not apply at the authority (a gap) must not apply at an
/// isolate either, whenever the isolate syncs: not when it replays the log up to the delta's
/// base epoch, and not when a heartbeat makes it sync again at that epoch. Every isolate, synced
/// after every step, stays at exactly the authority's head.
#[test]
fn a_skipped_carried_delta_is_skipped_by_isolates_too() {
    let k = test_key();
    let s1 = example();
    let s2 = with_bob_in_eng(example());
    let s3 = revoked();
    let s4 = with_bob_in_eng(revoked());
    let mut a = authority();
    let steps: Vec<Vec<u8>> = vec![
        compile_snapshot(&s1, 1, 1_000, &k).unwrap(),
        diff_models(&s1, &s2, 1, 2, 1_100, &k).unwrap().bytes,
        // Watermark 4 carrying the delta 3 -> 4 while the authority is at 2: skipped there.
        sign_watermark(
            "acme",
            4,
            1_200,
            Some(&diff_models(&s3, &s4, 3, 4, 1_200, &k).unwrap().bytes),
            &k,
        )
        .unwrap(),
        diff_models(&s2, &s3, 2, 3, 1_300, &k).unwrap().bytes,
        // A heartbeat: the isolates at epoch 3 sync again.
        sign_watermark("acme", 4, 1_400, None, &k).unwrap(),
        diff_models(&s3, &s4, 3, 4, 1_500, &k).unwrap().bytes,
    ];
    let mut isolates: Vec<Evaluator> = Vec::new();
    for (i, m) in steps.iter().enumerate() {
        a.push(m).unwrap();
        isolates.push(isolate());
        for ev in &mut isolates {
            let msgs = a.catch_up(held(ev));
            for m in msgs {
                apply(ev, m).unwrap();
            }
            same_state(&a, ev);
        }
        // Nothing to send to an isolate at the head.
        for ev in &isolates {
            assert!(a.catch_up(held(ev)).is_empty(), "step {i}");
        }
    }
    assert_eq!(a.head().epoch, Some(4));
}

/// An authority that lost its store and took the same snapshot again, newly issued: an isolate
/// that holds that epoch from before gets the snapshot again, for its confirmation, and reaches
/// the authority's `confirmed_at` (it would otherwise fail closed until the next heartbeat).
#[test]
fn a_holder_of_the_epoch_gets_a_newer_confirmation_from_the_same_snapshot() {
    let k = test_key();
    let mut before = authority();
    before
        .push_snapshot(&compile_snapshot(&example(), 2, 1_000, &k).unwrap())
        .unwrap();
    let mut ev = isolate();
    replay(&mut ev, &before.catch_up(None));
    assert_eq!(ev.confirmed_at(), Some(1_000));

    let mut lost = authority();
    let again = compile_snapshot(&example(), 2, 5_000, &k).unwrap();
    lost.push_snapshot(&again).unwrap();
    let msgs = lost.catch_up(held(&ev));
    assert_eq!(msgs, vec![again.as_slice()]);
    replay(&mut ev, &msgs);
    same_state(&lost, &ev);
    // Caught up: nothing more to send.
    assert!(lost.catch_up(held(&ev)).is_empty());
}
