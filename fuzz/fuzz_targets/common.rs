//! What every fuzz target shares: the origin's fixed key, the example model loaded at epoch 1,
//! messages taken as given or re-signed, and a fingerprint of an evaluator (its status and its
//! answers to a fixed set of requests) to prove that a refused input changed nothing.
#![allow(dead_code, reason = "each target uses a part of what the targets share")]

use std::sync::OnceLock;

use edge_authz::{compile_snapshot, sign_raw, Evaluator, KeyPair, MessageKind, Model, Request, SecretKey, State};
use serde_bytes::ByteBuf;

pub const TENANT: &str = "acme";
pub const EXAMPLE: &str = include_str!("../../examples/acme.json");
/// The time of every check: before the example's expiring assignment ends.
pub const NOW: u64 = 1_700_000_000_000;
/// Magic, kind, format version.
const PREFIX_LEN: usize = 8;

pub fn key() -> SecretKey {
    SecretKey::from_seed([7; 32])
}

pub fn public_key() -> String {
    KeyPair::from_seed([7; 32]).public_key
}

pub fn example_state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| {
        Model::from_json(EXAMPLE)
            .and_then(|m| m.compile())
            .map(|c| c.state)
            .unwrap_or_else(|e| panic!("the example does not compile: {e}"))
    })
}

/// The example's snapshot at epoch 1, issued at NOW - 1000.
pub fn example_snapshot() -> &'static [u8] {
    static SNAPSHOT: OnceLock<Vec<u8>> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        compile_snapshot(example_state(), 1, NOW - 1000, &key())
            .unwrap_or_else(|e| panic!("the example does not sign: {e}"))
    })
}

/// An evaluator trusting the fixed key, holding nothing.
pub fn empty() -> Evaluator {
    Evaluator::new(TENANT, &[&public_key()]).unwrap_or_else(|e| panic!("keys: {e}"))
}

/// An evaluator holding the example at epoch 1.
pub fn loaded() -> Evaluator {
    let mut ev = empty();
    if let Err(e) = ev.load_snapshot(example_snapshot()) {
        panic!("the example snapshot does not load: {e}");
    }
    ev
}

/// The message a target feeds: `data[1..]` as given when `data[0]` is even; when it is odd,
/// the payload of the envelope in `data[1..]` signed again with the fixed key, so that the
/// fuzzer reaches past the signature into the payload's decoder.
pub fn message(kind: MessageKind, data: &[u8]) -> Vec<u8> {
    let Some((&mode, rest)) = data.split_first() else {
        return Vec::new();
    };
    if mode & 1 == 0 {
        return rest.to_vec();
    }
    let envelope = rest.get(PREFIX_LEN..).unwrap_or_default();
    match rmp_serde::from_slice::<(String, ByteBuf, ByteBuf)>(envelope) {
        Ok((_, _, payload)) => sign_raw(kind, &payload, &key()),
        // Not an envelope: sign the bytes themselves as a payload.
        Err(_) => sign_raw(kind, rest, &key()),
    }
}

const SUBJECTS: [&str; 5] = [
    "user:alice",
    "user:mallory",
    "group:eng",
    "user:bob",
    "user:x",
];
const ACTIONS: [&str; 4] = ["read", "write", "export", "nope"];
const RESOURCES: [&str; 4] = ["org:acme", "workspace:eng", "doc:roadmap", "doc:none"];

/// The evaluator's status and its answers (with their grants and paths) to every combination
/// of a few subjects, actions and resources, and its listings, as text.
pub fn fingerprint(ev: &Evaluator) -> String {
    let mut out = serde_json::to_string(&ev.status()).unwrap_or_default();
    for s in SUBJECTS {
        for a in ACTIONS {
            out.push_str(&format!(
                "{:?}",
                ev.list_resources(s, a, None, NOW).map_err(|e| e.code())
            ));
            for r in RESOURCES {
                let d = ev.check(Request::new(s, a, r), NOW);
                out.push_str(&serde_json::to_string(&ev.explain(&d)).unwrap_or_default());
            }
        }
    }
    for r in RESOURCES {
        for a in ACTIONS {
            out.push_str(&format!(
                "{:?}",
                ev.list_subjects(r, a, NOW).map_err(|e| e.code())
            ));
        }
    }
    out
}

/// The cheap checks a Worker runs on a push before it reads the body (`peek`, on the message's
/// first bytes) never refuse what the evaluator takes: an accepted `msg` must pass them.
pub fn peek_agrees(kind: MessageKind, msg: &[u8], accepted: bool) {
    let keys = [edge_authz::PublicKey::from_base64(&public_key())
        .unwrap_or_else(|e| panic!("key: {e}"))];
    let head = msg.get(..edge_authz::PEEK_BYTES).unwrap_or(msg);
    let peeked = edge_authz::peek(
        head,
        msg.len(),
        kind,
        TENANT,
        &keys,
        &edge_authz::Limits::default(),
    );
    if accepted {
        if let Err(e) = peeked {
            panic!("peek refused ({e}) a message the evaluator took");
        }
    }
}
