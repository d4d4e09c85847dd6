//! The origin's two ways to the next epoch agree: operations patched into the kept epoch
//! ([`super::net_ops`] and `Prepared::patch`) give the state, digest, delta and revocation flag
//! that compiling the model they make gives, every time the patch is taken; the patch refuses
//! every change whose model does not compile; and it is taken for every change of its kinds
//! that compiles.
#![allow(
    clippy::indexing_slicing,
    clippy::expect_used,
    reason = "a test over fixed pools: indexes are in range, a failure stops it loudly"
)]

use edge_authz::{Model, Prepared, SecretKey};
use proptest::prelude::*;
use serde_json::json;

use super::{apply, net_ops, Op};

const USERS: [&str; 4] = ["user:u0", "user:u1", "user:u2", "user:u3"];
const GROUPS: [&str; 4] = ["group:g0", "group:g1", "group:g2", "group:g3"];
/// A tree: `org:o` over two workspaces over two projects, and one loose document.
const RESOURCES: [(&str, Option<&str>); 6] = [
    ("org:o", None),
    ("ws:a", Some("org:o")),
    ("ws:b", Some("org:o")),
    ("project:a1", Some("ws:a")),
    ("project:b1", Some("ws:b")),
    ("doc:loose", None),
];

/// Subjects, including one that is not a valid id.
fn subject() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(&USERS[..]).prop_map(String::from),
        4 => proptest::sample::select(&GROUPS[..]).prop_map(String::from),
        1 => Just("group:new".to_string()),
        1 => Just("nocolon".to_string()),
    ]
}

fn group() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(&GROUPS[..]).prop_map(String::from),
        1 => Just("group:new".to_string()),
        1 => Just("user:u0".to_string()),
        1 => Just("group:".to_string()),
    ]
}

fn resource() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(&RESOURCES[..]).prop_map(|r| r.0.to_string()),
        1 => Just("doc:new".to_string()),
        1 => Just("bad id".to_string()),
    ]
}

fn parent() -> impl Strategy<Value = Option<String>> {
    prop_oneof![1 => Just(None), 4 => resource().prop_map(Some)]
}

fn role() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("viewer".to_string()),
        4 => Just("editor".to_string()),
        1 => Just("ghost".to_string()),
    ]
}

fn expiry() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(1_000)),
        1 => Just(Some(4_000_000_000_000)),
    ]
}

const ISSUERS: [&str; 2] = ["https://a.example/", "https://b.example/"];

/// An issuer as the model writes it; one in five without its keys, which does not compile.
fn issuer(name: &str, complete: bool) -> serde_json::Map<String, serde_json::Value> {
    let mut v = json!({
        "issuer": name,
        "audiences": ["https://api.example"],
        "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]},
        "subject": "user:{sub}",
    });
    if !complete {
        v.as_object_mut().map(|o| o.remove("jwks"));
    }
    match v {
        serde_json::Value::Object(o) => o,
        _ => serde_json::Map::new(),
    }
}

/// Token and session operations: revocations with an `until` in the past or the future.
fn identity_op() -> impl Strategy<Value = Op> {
    let until = prop_oneof![Just(1_000u64), Just(4_000_000_000_000u64)];
    let name = proptest::sample::select(&ISSUERS[..]);
    prop_oneof![
        (proptest::sample::select(&["s1", "s2"][..]), until.clone()).prop_map(|(sid, until)| {
            Op::RevokeSession {
                sid: sid.into(),
                until,
            }
        }),
        (proptest::sample::select(&["f1", "f2"][..]), until).prop_map(|(family, until)| {
            Op::RevokeFamily {
                family: family.into(),
                claim: None,
                until,
            }
        }),
        (subject(), prop_oneof![Just(500u64), Just(2_000u64)])
            .prop_map(|(subject, at)| Op::SignOut { subject, at }),
        (name.clone(), proptest::bool::weighted(0.8))
            .prop_map(|(n, ok)| Op::SetIssuer(issuer(n, ok))),
        name.prop_map(|n| Op::RemoveIssuer { issuer: n.into() }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (subject(), group()).prop_map(|(member, group)| Op::AddMembership { member, group }),
        4 => (subject(), group()).prop_map(|(member, group)| Op::RemoveMembership { member, group }),
        3 => (subject(), role(), resource(), expiry(), proptest::bool::weighted(0.1)).prop_map(
            |(principal, role, resource, expires_at, when)| Op::AddAssignment {
                principal, role, resource, expires_at, when: when.then(|| "office".to_string()),
            }
        ),
        3 => (subject(), role(), resource()).prop_map(|(principal, role, resource)| Op::RemoveAssignment { principal, role, resource }),
        2 => subject().prop_map(|subject| Op::Suspend { subject }),
        2 => subject().prop_map(|subject| Op::Unsuspend { subject }),
        1 => (resource(), parent()).prop_map(|(id, parent)| Op::AddResource { id, parent }),
        1 => resource().prop_map(|id| Op::RemoveResource { id }),
        1 => (resource(), parent()).prop_map(|(id, parent)| Op::MoveResource { id, parent }),
        1 => Just(Op::SetRole { role: "viewer".into(), actions: vec!["read".into()] }),
        3 => identity_op(),
    ]
}

/// A model over the pools above: nested groups without a cycle (a group only in a later one),
/// assignments with and without expiries, one under a condition, suspensions, and at times an
/// issuer, a revoked session and a sign-out.
fn model() -> impl Strategy<Value = Model> {
    let membership = (0usize..8, 0usize..4).prop_filter_map(
        "a group in itself or in an earlier one",
        |(m, g)| {
            if m < 4 {
                Some((USERS[m], GROUPS[g]))
            } else {
                (m - 4 < g).then(|| (GROUPS[m - 4], GROUPS[g]))
            }
        },
    );
    let assignment = (0usize..8, 0usize..2, 0usize..6, expiry());
    (
        proptest::collection::btree_set(membership, 0..10),
        proptest::collection::btree_map((0usize..8, 0usize..2, 0usize..6), expiry(), 0..8),
        proptest::collection::btree_set(0usize..8, 0..3),
        proptest::option::of(assignment),
        proptest::bool::ANY,
    )
        .prop_map(|(members, assignments, suspended, conditioned, tokens)| {
            let subject = |i: usize| if i < 4 { USERS[i] } else { GROUPS[i - 4] };
            let roles = ["viewer", "editor"];
            let mut list: Vec<serde_json::Value> = assignments
                .into_iter()
                .map(|((p, r, res), e)| json!({"principal": subject(p), "role": roles[r], "resource": RESOURCES[res].0, "expires_at": e}))
                .collect();
            if let Some((p, r, res, e)) = conditioned {
                let a = json!({"principal": subject(p), "role": roles[r], "resource": RESOURCES[res].0, "expires_at": e, "when": "office"});
                if !list.iter().any(|x| x["principal"] == a["principal"] && x["role"] == a["role"] && x["resource"] == a["resource"]) {
                    list.push(a);
                }
            }
            let mut v = json!({
                "version": 1,
                "tenant": "props",
                "conditions": {"office": {"attr": "ip", "op": "in_cidr", "value": ["10.0.0.0/8"]}},
                "actions": {"read": {"tier": "low"}, "write": {"tier": "high"}},
                "roles": {"viewer": ["read"], "editor": ["read", "write"]},
                "resources": RESOURCES.iter().map(|(id, p)| json!({"id": id, "parent": p})).collect::<Vec<_>>(),
                "memberships": members.iter().map(|(m, g)| json!({"member": m, "group": g})).collect::<Vec<_>>(),
                "assignments": list,
                "suspended": suspended.iter().map(|i| subject(*i)).collect::<Vec<_>>(),
            });
            if tokens {
                v["issuers"] = json!([issuer(ISSUERS[0], true)]);
                v["sessions"] = json!({"revoked": [{"sid": "s1", "until": 4_000_000_000_000u64}], "not_before": {"user:u0": 1_000}});
            }
            Model::from_value(v).expect("the generated model parses")
        })
}

/// Most removals name an entry the model has (`pick` chooses which), so that most changes apply.
fn existing(m: &Model, op: Op, pick: usize) -> Op {
    if pick.is_multiple_of(4) {
        return op;
    }
    let at = |n: usize| pick / 4 % n.max(1);
    match op {
        Op::RemoveMembership { .. } if !m.memberships.is_empty() => {
            let x = &m.memberships[at(m.memberships.len())];
            Op::RemoveMembership {
                member: x.member.clone(),
                group: x.group.clone(),
            }
        }
        Op::RemoveAssignment { .. } if !m.assignments.is_empty() => {
            let x = &m.assignments[at(m.assignments.len())];
            Op::RemoveAssignment {
                principal: x.principal.clone(),
                role: x.role.clone(),
                resource: x.resource.clone(),
            }
        }
        Op::Unsuspend { .. } if !m.suspended.is_empty() => Op::Unsuspend {
            subject: m.suspended[at(m.suspended.len())].clone(),
        },
        op => op,
    }
}

fn prepared(m: &Model) -> Result<Prepared, String> {
    m.prepare().map(|(p, _)| p).map_err(|e| e.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_patched_epoch_is_the_compiled_one(base in model(), ops in proptest::collection::vec((op(), any::<usize>()), 1..4)) {
        let key = SecretKey::from_seed([7; 32]);
        let ops: Vec<Op> = ops.into_iter().map(|(o, pick)| existing(&base, o, pick)).collect();
        let kept = prepared(&base).map_err(TestCaseError::fail)?;
        // A change that does not apply is refused before either way is tried.
        let Ok(changed) = apply(&base, &ops) else { return Ok(()) };
        let compiled = prepared(&changed);
        let Some(net) = net_ops(kept.state(), &changed, &ops) else {
            // Only roles and conditioned assignments fall outside the patch's kinds here; else
            // the changed model's issuers or sessions do not compile.
            let outside = |o: &Op| matches!(o, Op::SetRole { .. } | Op::AddAssignment { when: Some(_), .. });
            prop_assert!(ops.iter().any(outside) || compiled.is_err(), "net_ops declined {:?}", ops);
            return Ok(());
        };
        match (kept.patch(net), compiled) {
            (Ok(patch), Ok(whole)) => {
                prop_assert_eq!(patch.prepared().state(), whole.state());
                prop_assert_eq!(patch.prepared().digest_hex(), whole.digest_hex());
                let by_patch = kept.delta_by(&patch, 3, 4, 99, &key).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let by_diff = kept.delta_to(&whole, 3, 4, 99, &key).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(by_patch.revokes, by_diff.revokes);
                prop_assert_eq!(&by_patch.ops, &by_diff.ops);
                prop_assert_eq!(by_patch.bytes, by_diff.bytes);
                prop_assert_eq!(patch.revokes(), by_diff.revokes);
            }
            (Ok(_), Err(e)) => prop_assert!(false, "patched a change whose model does not compile: {e}"),
            (Err(e), Ok(_)) => {
                // Refused only for an assignment the change touches that holds under a condition.
                let conditioned = kept.state().when.keys().any(|k| ops.iter().any(|o| match o {
                    Op::AddAssignment { principal, role, resource, .. } | Op::RemoveAssignment { principal, role, resource } =>
                        (&k.principal, &k.role, &k.resource) == (principal, role, resource),
                    _ => false,
                }));
                prop_assert!(conditioned, "the patch refused a change that compiles: {e}");
            }
            (Err(_), Err(_)) => {}
        }
    }
}

/// A patch is signed only from the epoch it was made from.
#[test]
fn a_patch_signs_only_from_its_base() -> Result<(), String> {
    let key = SecretKey::from_seed([7; 32]);
    let text = include_str!("../../../../../examples/acme.json");
    let base = Model::from_json(text).map_err(|e| e.to_string())?;
    let kept = prepared(&base)?;
    let ops = [Op::RemoveMembership {
        member: "user:alice".into(),
        group: "group:eng".into(),
    }];
    let changed = apply(&base, &ops)?;
    let net = net_ops(kept.state(), &changed, &ops).ok_or("memberships are patched")?;
    let patch = kept.patch(net).map_err(|e| e.to_string())?;
    assert!(patch.revokes());
    let other = prepared(&changed)?;
    let refused = other.delta_by(&patch, 1, 2, 0, &key);
    assert!(refused.is_err_and(|e| e.to_string().contains("another epoch")));
    assert!(kept.delta_by(&patch, 1, 2, 0, &key).is_ok());
    Ok(())
}
