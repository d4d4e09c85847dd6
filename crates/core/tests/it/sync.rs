//! The replica's sync policy (`edge_authz::sync`), natively: what a Worker isolate (and any
//! other replica) does with its authority's answers. The same policy runs in workerd, where the
//! Worker's suites check it end to end; here each rule is pinned on its own.
use edge_authz::authority::Authority;
use edge_authz::sync::{reaches, Head, Replica, Synced};
use edge_authz::{
    compile_snapshot, diff_models, sign_watermark, AssignmentKey, Decision, Evaluator, Reason,
    Request, State, Tier,
};

use crate::common::{example, test_key};

const T0: u64 = 1_000_000;

fn evaluator() -> Evaluator {
    Evaluator::with_keys("acme", vec![test_key().public_key()]).unwrap()
}

/// The example without the staff's viewer grant on org:acme: alice reads org:acme only through
/// it (group:eng, then group:staff), so this revokes her read there.
fn without_staff() -> State {
    let mut s = example();
    s.assignments.remove(&AssignmentKey {
        resource: "org:acme".into(),
        principal: "group:staff".into(),
        role: "viewer".into(),
    });
    s
}

fn alice_reads(r: &Replica, at: u64) -> Decision {
    let d = r
        .evaluator()
        .check(Request::new("user:alice", "read", "org:acme"), at);
    r.guard(d)
}

/// An authority at epoch 1 (the example), and the replica that has caught up with it.
fn caught_up() -> (Authority, Replica) {
    let k = test_key();
    let mut a = Authority::new("acme", vec![k.public_key()]).unwrap();
    a.set_clock(Some(T0));
    a.push(&compile_snapshot(&example(), 1, T0, &k).unwrap())
        .unwrap();
    let mut r = Replica::new(evaluator());
    let msgs = a.catch_up(None);
    assert_eq!(r.catch_up(a.head(), msgs, T0), Synced::Reached);
    (a, r)
}

#[test]
fn a_replica_catches_up_from_nothing_and_from_where_it_stands() {
    let (mut a, mut r) = caught_up();
    assert_eq!(r.head(), Some(a.head()));
    assert!(alice_reads(&r, T0).allowed);
    // The authority takes a revocation: the watermark carries its delta.
    let k = test_key();
    let d = diff_models(&example(), &without_staff(), 1, 2, T0 + 10, &k).unwrap();
    a.push(&sign_watermark("acme", 2, T0 + 10, Some(&d.bytes), &k).unwrap())
        .unwrap();
    // The replica asks with what it holds and gets only what it lacks.
    let lacked = a.catch_up(Some(r.held()));
    assert_eq!(lacked.len(), 1);
    assert_eq!(r.catch_up(a.head(), lacked, T0 + 20), Synced::Reached);
    assert_eq!(r.held().epoch, Some(2));
    assert_eq!(alice_reads(&r, T0 + 20).reason, Reason::NoGrant);
}

#[test]
fn reuse_follows_the_tier_and_its_configured_time() {
    let (_, r) = caught_up();
    // high never reuses; a reuse of 0 never does; the others within their time.
    assert!(!r.may_reuse(Tier::High, 10_000, T0));
    assert!(!r.may_reuse(Tier::Low, 0, T0));
    assert!(r.may_reuse(Tier::Low, 10_000, T0 + 10_000));
    assert!(!r.may_reuse(Tier::Low, 10_000, T0 + 10_001));
    assert!(r.may_reuse(Tier::Standard, 1_000, T0 + 1_000));
    assert!(!r.may_reuse(Tier::Standard, 1_000, T0 + 1_001));
    // A replica that never confirmed reuses nothing.
    let fresh = Replica::new(evaluator());
    assert!(!fresh.ever_confirmed());
    assert!(!fresh.may_reuse(Tier::Low, u64::MAX, T0));
    assert_eq!(fresh.confirmation_age(T0), None);
}

#[test]
fn confirmations_only_move_forward_when_syncs_finish_out_of_order() {
    let (a, mut r) = caught_up();
    // A sync that started later finishes first; the earlier one finishes after it.
    assert_eq!(
        r.catch_up(a.head(), Vec::new(), T0 + 5_000),
        Synced::Reached
    );
    assert_eq!(
        r.catch_up(a.head(), Vec::new(), T0 + 1_000),
        Synced::Reached
    );
    assert_eq!(r.confirmation_age(T0 + 6_000), Some(1_000));
}

/// [`caught_up`], then a revocation (a watermark at 2 carrying its delta) the authority took and
/// the replica has not heard of; the watermark message.
fn revoked_at_the_authority() -> (Authority, Replica, Vec<u8>) {
    let (mut a, r) = caught_up();
    let k = test_key();
    let d = diff_models(&example(), &without_staff(), 1, 2, T0 + 10, &k).unwrap();
    let wm = sign_watermark("acme", 2, T0 + 10, Some(&d.bytes), &k).unwrap();
    a.push(&wm).unwrap();
    (a, r, wm)
}

#[test]
fn a_relayed_push_is_enforced_at_once_and_no_tier_reuses_until_a_later_sync() {
    let (a, mut r, wm) = revoked_at_the_authority();
    assert!(r.may_reuse(Tier::Low, 10_000, T0 + 100));
    r.relayed(wm.clone(), Some(a.head()), T0 + 100);
    // Enforced at once, before the message is applied here: the guard holds its watermark.
    assert!(r.unsettled());
    assert_eq!(alice_reads(&r, T0 + 100).reason, Reason::StaleSnapshot);
    r.settle().unwrap();
    assert!(!r.unsettled());
    assert_eq!(alice_reads(&r, T0 + 100).reason, Reason::NoGrant);
    assert!(!r.may_reuse(Tier::Low, 10_000, T0 + 100));
    // A sync that started before the relay does not lift it; one that started after does.
    r.catch_up(a.head(), Vec::new(), T0 + 50);
    assert!(!r.may_reuse(Tier::Low, 10_000, T0 + 150));
    r.catch_up(a.head(), Vec::new(), T0 + 200);
    assert!(r.may_reuse(Tier::Low, 10_000, T0 + 250));
}

#[test]
fn a_sync_applies_the_relayed_pushes_first_and_a_long_run_of_them_is_bounded() {
    let (mut a, mut r, wm) = revoked_at_the_authority();
    r.relayed(wm.clone(), Some(a.head()), T0 + 100);
    // The authority's answer lacks the relayed message (read before it): the sync applies it.
    assert_eq!(r.catch_up(a.head(), Vec::new(), T0 + 200), Synced::Reached);
    assert!(!r.unsettled());
    assert_eq!(r.held().epoch, Some(2));
    assert_eq!(alice_reads(&r, T0 + 200).reason, Reason::NoGrant);
    // Heartbeats relayed one after another: never more than MAX_RELAYED kept.
    let k = test_key();
    for i in 0..40 {
        let beat = sign_watermark("acme", 2, T0 + 300 + i, None, &k).unwrap();
        a.push(&beat).unwrap();
        r.relayed(beat, Some(a.head()), T0 + 300 + i);
    }
    r.settle().unwrap();
    assert_eq!(r.held().confirmed_at, Some(T0 + 339));
}

#[test]
fn a_relayed_message_that_does_not_apply_still_holds_its_watermark() {
    let (_, mut r) = caught_up();
    let k = test_key();
    // A delta from epoch 5: this replica (at 1) cannot apply it, but the authority answered
    // watermark 6: the guard holds it.
    let d = diff_models(&example(), &without_staff(), 5, 6, T0 + 10, &k).unwrap();
    let answered = Head {
        epoch: Some(6),
        watermark: 6,
        confirmed_at: None,
    };
    r.relayed(d.bytes.clone(), Some(answered), T0 + 100);
    let e = r.settle().unwrap_err();
    assert_eq!(e.code(), "epoch_gap");
    assert!(!r.unsettled());
    let d = alice_reads(&r, T0 + 100);
    assert!(!d.allowed);
    assert_eq!(d.reason, Reason::StaleSnapshot);
    assert_eq!(d.watermark, 6);
    assert!(r.stale_for_listing());
}

#[test]
fn the_guard_refuses_an_allow_below_the_known_watermark_and_passes_the_rest() {
    let (_, mut r) = caught_up();
    let allowed = r
        .evaluator()
        .check(Request::new("user:alice", "read", "org:acme"), T0);
    let denied = r
        .evaluator()
        .check(Request::new("user:bob", "export", "org:acme"), T0);
    assert!(allowed.allowed && !denied.allowed);
    assert_eq!(r.guard(allowed), allowed);
    r.note_head(Head {
        epoch: Some(1),
        watermark: 2,
        confirmed_at: None,
    });
    let g = r.guard(allowed);
    assert_eq!(
        (g.allowed, g.reason, g.grant),
        (false, Reason::StaleSnapshot, None)
    );
    assert_eq!(r.guard(denied), denied);
    // The known head never moves back.
    r.note_head(Head {
        epoch: Some(1),
        watermark: 1,
        confirmed_at: None,
    });
    assert_eq!(r.known_watermark(), 2);
}

#[test]
fn a_replica_on_another_history_is_behind_and_restarts_from_the_snapshot() {
    let (mut a, mut r) = caught_up();
    let k = test_key();
    // The authority moves to a new snapshot at epoch 3: the replica's epoch-1 state does not
    // lead there through deltas it can apply.
    a.push(&compile_snapshot(&without_staff(), 3, T0 + 10, &k).unwrap())
        .unwrap();
    let head = a.head();
    // Asked with what it holds, the authority answers everything from its snapshot; but a
    // replica given nothing does not reach the head.
    assert_eq!(r.catch_up(head, Vec::new(), T0 + 20), Synced::Behind);
    assert!(!reaches(r.evaluator(), &head));
    assert_eq!(
        r.restart(evaluator(), head, a.catch_up(None), T0 + 20, false),
        Synced::Reached
    );
    assert_eq!(r.held().epoch, Some(3));
    assert_eq!(alice_reads(&r, T0 + 20).reason, Reason::NoGrant);
    // A restart that cannot reach the head keeps what it held and notes the head.
    let far = Head {
        epoch: Some(9),
        watermark: 9,
        confirmed_at: None,
    };
    assert_eq!(
        r.restart(evaluator(), far, Vec::new(), T0 + 30, false),
        Synced::Behind
    );
    assert_eq!(r.held().epoch, Some(3));
    assert_eq!(r.known_watermark(), 9);
}

#[test]
fn a_restart_cut_at_the_answer_limit_goes_on_from_the_part_it_took() {
    let (mut a, mut r) = caught_up();
    let k = test_key();
    // A new snapshot history at epoch 3, then deltas to epoch 6: the replica (epoch 1) must
    // restart, and the answer is cut after the snapshot and one delta.
    a.push(&compile_snapshot(&example(), 3, T0 + 10, &k).unwrap())
        .unwrap();
    let mut state = example();
    for epoch in 4..=6 {
        let mut next = state.clone();
        next.memberships
            .insert((format!("user:u{epoch}"), "group:eng".into()));
        a.push(
            &diff_models(&state, &next, epoch - 1, epoch, T0 + 10, &k)
                .unwrap()
                .bytes,
        )
        .unwrap();
        state = next;
    }
    let head = a.head();
    let all = a.catch_up(None);
    assert_eq!(all.len(), 4);
    // Uncut, the same part would not do: the replica keeps epoch 1.
    assert_eq!(
        r.restart(evaluator(), head, all[..2].to_vec(), T0 + 20, false),
        Synced::Behind
    );
    assert_eq!(r.held().epoch, Some(1));
    // Cut: it takes epoch 4, records no confirmation, and its guard holds the head.
    let confirmed = r.confirmation_age(T0 + 20);
    assert_eq!(
        r.restart(evaluator(), head, all[..2].to_vec(), T0 + 20, true),
        Synced::Partly
    );
    assert_eq!(r.held().epoch, Some(4));
    assert_eq!(r.confirmation_age(T0 + 20), confirmed);
    assert_eq!(r.known_watermark(), head.watermark);
    // The rest, asked for from there, reaches the head and confirms.
    let rest = a.catch_up(Some(r.held()));
    assert_eq!(rest.len(), 2);
    assert_eq!(r.catch_up(head, rest, T0 + 30), Synced::Reached);
    assert_eq!(r.held().epoch, Some(6));
    assert_eq!(r.confirmation_age(T0 + 30), Some(0));
    // A cut part that leads no further than what is held is not taken.
    a.push(&compile_snapshot(&state, 7, T0 + 40, &k).unwrap())
        .unwrap();
    let older = compile_snapshot(&example(), 5, T0 + 40, &k).unwrap();
    assert_eq!(
        r.restart(evaluator(), a.head(), [older.as_slice()], T0 + 40, true),
        Synced::Behind
    );
    assert_eq!(r.held().epoch, Some(6));
}

#[test]
fn a_tampered_message_from_the_authority_is_skipped_and_judged() {
    let (mut a, mut r) = caught_up();
    let k = test_key();
    let d = diff_models(&example(), &without_staff(), 1, 2, T0 + 10, &k).unwrap();
    a.push(&d.bytes).unwrap();
    let mut forged = d.bytes.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    // The authority is trusted for order, not content: a forged message does not apply.
    assert_eq!(
        r.catch_up(a.head(), [forged.as_slice()], T0 + 20),
        Synced::Behind
    );
    assert_eq!(r.held().epoch, Some(1));
}

#[test]
fn a_decision_confirms_first_when_it_cannot_reuse_needs_a_later_epoch_or_is_past_its_bound() {
    let (_, r) = caught_up();
    let reuse = 10_000;
    // Just confirmed: low and standard reuse it, high never does.
    assert!(!r.must_confirm(Tier::Low, reuse, None, T0 + 1));
    assert!(!r.must_confirm(Tier::Standard, reuse, None, T0 + 1));
    assert!(r.must_confirm(Tier::High, reuse, None, T0 + 1));
    // Past the reuse window; a window of 0 never reuses.
    assert!(r.must_confirm(Tier::Low, reuse, None, T0 + reuse + 1));
    assert!(r.must_confirm(Tier::Low, 0, None, T0 + 1));
    // Read your writes: an epoch above the held one asks the authority; the held one does not.
    assert!(r.must_confirm(Tier::Low, reuse, Some(2), T0 + 1));
    assert!(!r.must_confirm(Tier::Low, reuse, Some(1), T0 + 1));
    // Within a window longer than the tier's freshness bound, but past the bound: the authority
    // may have heard from the origin since.
    let bound = r
        .evaluator()
        .index()
        .unwrap()
        .freshness()
        .bound(Tier::Standard);
    let long = 2 * bound;
    assert!(!r.must_confirm(Tier::Standard, long, None, T0 + bound));
    assert!(r.must_confirm(Tier::Standard, long, None, T0 + bound + 1));
    // A replica that holds nothing always asks.
    assert!(Replica::new(evaluator()).must_confirm(Tier::Low, reuse, None, T0));
}
