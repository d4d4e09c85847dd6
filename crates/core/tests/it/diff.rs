//! `diff` says `revokes` exactly for the changes that can take access away, one kind at a time.
use edge_authz::{diff, Freshness, State, Tier};

use crate::common::{example_json, state_of};

fn base() -> State {
    let mut s = state_of(&example_json());
    s.memberships
        .insert(("user:bob".into(), "group:contractors".into()));
    s
}

fn key(p: &str, r: &str, res: &str) -> edge_authz::AssignmentKey {
    edge_authz::AssignmentKey {
        principal: p.into(),
        role: r.into(),
        resource: res.into(),
    }
}

#[test]
fn every_kind_of_change() {
    type Change = fn(&mut State);
    let cases: Vec<(&str, Change, bool)> = vec![
        ("nothing", |_| {}, false),
        (
            "remove a membership",
            |s| {
                s.memberships
                    .remove(&("user:alice".into(), "group:eng".into()));
            },
            true,
        ),
        (
            "add a membership",
            |s| {
                s.memberships
                    .insert(("user:carol".into(), "group:eng".into()));
            },
            false,
        ),
        (
            "join a suspended group",
            |s| {
                s.suspended.insert("group:contractors".into());
                s.memberships
                    .insert(("user:carol".into(), "group:contractors".into()));
            },
            true,
        ),
        (
            "join a group inside a suspended group",
            |s| {
                s.suspended.insert("group:staff".into());
                s.memberships
                    .insert(("user:carol".into(), "group:eng".into()));
            },
            true,
        ),
        (
            "join a group while someone else is suspended",
            |s| {
                s.memberships
                    .insert(("user:carol".into(), "group:eng".into()));
            },
            false,
        ),
        (
            "remove an assignment",
            |s| {
                s.assignments
                    .remove(&key("group:staff", "viewer", "org:acme"));
            },
            true,
        ),
        (
            "add an assignment",
            |s| {
                s.assignments
                    .insert(key("user:bob", "editor", "doc:roadmap"), None);
            },
            false,
        ),
        (
            "shorten an expiry",
            |s| {
                s.assignments
                    .insert(key("user:alice", "admin", "workspace:eng"), Some(1_000));
            },
            true,
        ),
        (
            "lengthen an expiry",
            |s| {
                s.assignments.insert(
                    key("user:alice", "admin", "workspace:eng"),
                    Some(1_898_761_600_000),
                );
            },
            false,
        ),
        (
            "remove an expiry",
            |s| {
                s.assignments
                    .insert(key("user:alice", "admin", "workspace:eng"), None);
            },
            false,
        ),
        (
            "add an expiry",
            |s| {
                s.assignments
                    .insert(key("group:staff", "viewer", "org:acme"), Some(5));
            },
            true,
        ),
        (
            "role loses an action",
            |s| {
                s.roles.get_mut("editor").unwrap().remove("write");
            },
            true,
        ),
        (
            "role gains an action",
            |s| {
                s.roles.get_mut("viewer").unwrap().insert("write".into());
            },
            false,
        ),
        (
            "add a role",
            |s| {
                s.roles
                    .insert("auditor".into(), ["read".to_string()].into());
            },
            false,
        ),
        (
            "remove a role (and its assignment)",
            |s| {
                s.roles.remove("admin");
                s.assignments
                    .remove(&key("user:alice", "admin", "workspace:eng"));
            },
            true,
        ),
        (
            "move a resource",
            |s| {
                s.resources
                    .insert("doc:roadmap".into(), Some("org:acme".into()));
            },
            true,
        ),
        (
            "add a resource",
            |s| {
                s.resources
                    .insert("doc:new".into(), Some("workspace:eng".into()));
            },
            false,
        ),
        (
            "remove a resource",
            |s| {
                s.resources.remove("doc:roadmap");
            },
            true,
        ),
        (
            "suspend a user",
            |s| {
                s.suspended.insert("user:alice".into());
            },
            true,
        ),
        (
            "lift a suspension",
            |s| {
                s.suspended.remove("user:mallory");
            },
            false,
        ),
        (
            "add an action",
            |s| {
                s.actions.insert("comment".into(), Tier::Low);
            },
            false,
        ),
        (
            "remove an action (and from roles)",
            |s| {
                s.actions.remove("export");
                s.roles.get_mut("admin").unwrap().remove("export");
            },
            true,
        ),
        (
            "action to a stricter tier",
            |s| {
                s.actions.insert("read".into(), Tier::High);
            },
            true,
        ),
        (
            "action to a looser tier",
            |s| {
                s.actions.insert("export".into(), Tier::Low);
            },
            false,
        ),
        (
            "remove a resource and move its child",
            |s| {
                s.resources.remove("workspace:eng");
                s.resources
                    .insert("doc:roadmap".into(), Some("org:acme".into()));
                s.assignments
                    .remove(&key("user:alice", "admin", "workspace:eng"));
            },
            true,
        ),
        (
            "remove a role and a resource with their assignments",
            |s| {
                s.roles.remove("admin");
                s.resources.remove("workspace:eng");
                s.resources.insert("doc:roadmap".into(), None);
                s.assignments
                    .remove(&key("user:alice", "admin", "workspace:eng"));
            },
            true,
        ),
        (
            "replace a subject: one leaves entirely, a new one arrives",
            |s| {
                s.memberships
                    .remove(&("user:bob".into(), "group:contractors".into()));
                s.memberships
                    .insert(("user:zed".into(), "group:contractors".into()));
                s.memberships
                    .insert(("user:aaron".into(), "group:staff".into()));
                s.suspended.insert("service:ci".into());
            },
            true,
        ),
        (
            "shorter freshness bound",
            |s| {
                s.freshness = Freshness {
                    high: 1_000,
                    ..s.freshness
                };
            },
            true,
        ),
        (
            "longer freshness bound",
            |s| {
                s.freshness = Freshness {
                    low: 600_000,
                    ..s.freshness
                };
            },
            false,
        ),
    ];
    for (name, change, revokes) in cases {
        let before = base();
        let mut after = base();
        change(&mut after);
        let d = diff(&before, &after).unwrap();
        assert_eq!(d.revokes, revokes, "{name}");
        assert_eq!(d.ops.is_empty(), name == "nothing", "{name}");
        let mut applied = before.clone();
        edge_authz::apply_ops(&mut applied, &d.ops).unwrap();
        assert_eq!(applied, after, "{name}: applying the ops");
        let in_ids = edge_authz::Content::from_state(&before)
            .unwrap()
            .apply(&d.ops)
            .unwrap();
        assert_eq!(
            in_ids,
            edge_authz::Content::from_state(&after).unwrap(),
            "{name}: applying in ids"
        );
    }
}

#[test]
fn tenants_must_match() {
    let mut other = base();
    other.tenant = "other".into();
    assert_eq!(diff(&base(), &other).unwrap_err().code(), "tenant_mismatch");
}
