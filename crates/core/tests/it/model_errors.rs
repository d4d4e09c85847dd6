//! Every model rejection of docs/model.md, "Validation", names the entry and has a stable detail
//! code.
use edge_authz::{Error, Model};
use serde_json::{json, Value};

fn base() -> Value {
    json!({
        "version": 1, "tenant": "acme",
        "actions": {"read": {"tier": "low"}, "write": {"tier": "standard"}},
        "roles": {"viewer": ["read"], "editor": ["read", "write"]},
        "resources": [{"id": "org:acme"}, {"id": "workspace:eng", "parent": "org:acme"}, {"id": "doc:a", "parent": "workspace:eng"}],
        "memberships": [{"member": "user:alice", "group": "group:eng"}, {"member": "group:eng", "group": "group:staff"}],
        "assignments": [{"principal": "group:staff", "role": "viewer", "resource": "org:acme"}],
        "suspended": ["user:mallory"]
    })
}

fn with(f: impl FnOnce(&mut Value)) -> String {
    let mut v = base();
    f(&mut v);
    v.to_string()
}

fn compile(text: &str) -> Result<Vec<String>, Error> {
    let model = Model::from_json(text)?;
    Ok(model.compile()?.warnings)
}

#[test]
fn the_base_model_compiles() {
    assert_eq!(compile(&base().to_string()).unwrap(), Vec::<String>::new());
}

#[test]
fn rejections_name_the_entry() {
    let chain: Vec<Value> = (0..70)
        .map(|i| {
            if i == 0 {
                json!({"id": "r:0"})
            } else {
                json!({"id": format!("r:{i}"), "parent": format!("r:{}", i - 1)})
            }
        })
        .collect();
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("not JSON", "{\"version\": 1,".into(), "invalid_json", ""),
        ("unknown top-level field", with(|v| v["colour"] = json!("red")), "unknown_field", "colour"),
        ("unknown field in a resource", with(|v| v["resources"][1]["parnt"] = json!("org:acme")), "unknown_field", "resources[1]"),
        ("unknown field in an action", with(|v| v["actions"]["read"]["risk"] = json!(1)), "unknown_field", "actions.read"),
        ("unknown field in freshness", with(|v| v["freshness"] = json!({"medium": 5})), "unknown_field", "freshness"),
        ("wrong type", with(|v| v["assignments"][0]["expires_at"] = json!("soon")), "invalid_json", "assignments[0].expires_at"),
        ("negative expiry", with(|v| v["assignments"][0]["expires_at"] = json!(-5)), "invalid_json", "assignments[0].expires_at"),
        ("unknown tier", with(|v| v["actions"]["read"]["tier"] = json!("medium")), "invalid_json", "actions.read.tier"),
        ("model version 2", with(|v| v["version"] = json!(2)), "unsupported_model_version", "version"),
        ("bad tenant", with(|v| v["tenant"] = json!("Acme Corp")), "malformed_id", "tenant"),
        ("malformed member id", with(|v| v["memberships"][0]["member"] = json!("alice")), "malformed_id", "memberships[0]"),
        ("malformed resource id", with(|v| v["resources"][2]["id"] = json!("doc:has space")), "malformed_id", "resources[2]"),
        ("malformed principal", with(|v| v["assignments"][0]["principal"] = json!("Group:staff")), "malformed_id", "assignments[0]"),
        ("malformed suspended id", with(|v| v["suspended"][0] = json!("user:")), "malformed_id", "suspended[0]"),
        ("malformed action name", with(|v| v["actions"]["Read"] = json!({"tier": "low"})), "malformed_id", "actions.Read"),
        ("malformed role name", with(|v| v["roles"]["2fa"] = json!(["read"])), "malformed_id", "roles.2fa"),
        ("role with an undeclared action", with(|v| v["roles"]["viewer"] = json!(["read", "delete"])), "undeclared_action", "roles.viewer"),
        ("assignment with an undeclared role", with(|v| v["assignments"][0]["role"] = json!("owner")), "undeclared_role", "assignments[0]"),
        ("assignment on an undeclared resource", with(|v| v["assignments"][0]["resource"] = json!("org:other")), "undeclared_resource", "assignments[0]"),
        ("undeclared parent", with(|v| v["resources"][2]["parent"] = json!("workspace:ops")), "undeclared_resource", "resources[2]"),
        ("membership in a non-group", with(|v| v["memberships"][0]["group"] = json!("team:eng")), "not_a_group", "memberships[0]"),
        ("duplicate resource", with(|v| v["resources"].as_array_mut().unwrap().push(json!({"id": "doc:a"}))), "duplicate_id", "resources[3]"),
        ("duplicate action key", r#"{"version":1,"tenant":"acme","actions":{"read":{"tier":"low"},"read":{"tier":"high"}}}"#.into(), "duplicate_id", "actions.read"),
        ("duplicate role key", r#"{"version":1,"tenant":"acme","actions":{"read":{"tier":"low"}},"roles":{"v":["read"],"v":["read"]}}"#.into(), "duplicate_id", "roles.v"),
        ("duplicate action in a role", with(|v| v["roles"]["viewer"] = json!(["read", "read"])), "duplicate_id", "roles.viewer[1]"),
        ("duplicate membership", with(|v| v["memberships"].as_array_mut().unwrap().push(json!({"member": "user:alice", "group": "group:eng"}))), "duplicate_id", "memberships[2]"),
        ("duplicate assignment", with(|v| v["assignments"].as_array_mut().unwrap().push(json!({"principal": "group:staff", "role": "viewer", "resource": "org:acme", "expires_at": 5}))), "duplicate_id", "assignments[1]"),
        ("duplicate suspension", with(|v| v["suspended"].as_array_mut().unwrap().push(json!("user:mallory"))), "duplicate_id", "suspended[1]"),
        ("resource cycle", with(|v| v["resources"][0]["parent"] = json!("doc:a")), "resource_cycle", ""),
        ("resource parent of itself", with(|v| v["resources"][0]["parent"] = json!("org:acme")), "resource_cycle", ""),
        ("group cycle", with(|v| v["memberships"].as_array_mut().unwrap().push(json!({"member": "group:staff", "group": "group:eng"}))), "group_cycle", ""),
        ("group member of itself", with(|v| v["memberships"].as_array_mut().unwrap().push(json!({"member": "group:eng", "group": "group:eng"}))), "group_cycle", ""),
        ("zero freshness", with(|v| v["freshness"] = json!({"high": 0})), "invalid_value", "freshness.high"),
        ("hierarchy too deep", with(|v| { v["resources"] = json!(chain); v["assignments"] = json!([]); }), "limit_exceeded", "r:64"),
    ];
    for (name, text, detail, at) in &cases {
        let err = compile(text).map(|_| ()).unwrap_err();
        assert_eq!(err.code(), "invalid_model", "{name}");
        assert_eq!(err.detail(), Some(*detail), "{name}: {err}");
        let Error::InvalidModel(m) = &err else {
            unreachable!()
        };
        assert!(
            m.at.contains(at),
            "{name}: `at` is `{}`, expected it to contain `{at}` ({err})",
            m.at
        );
    }
    println!("model rejections: {} cases", cases.len());
}

#[test]
fn cycles_are_listed() {
    let err = compile(&with(|v| {
        v["memberships"]
            .as_array_mut()
            .unwrap()
            .push(json!({"member": "group:staff", "group": "group:eng"}))
    }))
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("group:eng -> group:staff -> group:eng")
            || text.contains("group:staff -> group:eng -> group:staff"),
        "{text}"
    );
    let err = compile(&with(|v| v["resources"][0]["parent"] = json!("doc:a")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("org:acme")
            && err.contains("workspace:eng")
            && err.contains("doc:a")
            && err.contains("->"),
        "{err}"
    );
}

#[test]
fn many_roles_compile_with_a_warning() {
    let text = with(|v| {
        for i in 0..21 {
            v["roles"][format!("role{i}")] = json!(["read"]);
        }
    });
    let warnings = compile(&text).unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("23 roles"), "{}", warnings[0]);
}

#[test]
fn model_json_round_trips() {
    let model = Model::from_json(&base().to_string()).unwrap();
    let state = model.compile().unwrap().state;
    let again = Model::from_state(&state);
    let text = serde_json::to_string(&again).unwrap();
    assert_eq!(
        Model::from_json(&text).unwrap().compile().unwrap().state,
        state
    );
    // Interned content turns back into the same state (how a loaded snapshot is exported).
    let content = edge_authz::Content::from_state(&state).unwrap();
    assert_eq!(content.to_state("acme"), state);
}

#[test]
fn hostile_model_json() {
    // Deep nesting is refused by the parser's depth limit, not by a stack overflow.
    let deep = format!(
        "{{\"version\": 1, \"tenant\": \"acme\", \"resources\": {}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let err = compile(&deep).unwrap_err();
    assert_eq!(err.detail(), Some("invalid_json"), "{err}");
    // Oversized input is refused before parsing.
    let limits = edge_authz::Limits {
        max_model_bytes: 1_000,
        ..Default::default()
    };
    let big = with(|v| {
        v["suspended"] = json!((0..200).map(|i| format!("user:u{i}")).collect::<Vec<_>>())
    });
    let err = Model::from_json_limited(&big, &limits).unwrap_err();
    assert_eq!(err.kind.code(), "limit_exceeded", "{err}");
    // Not UTF-8 text, a number instead of an object, an empty document.
    for text in ["", "42", "null", "[]", "\"model\""] {
        assert_eq!(
            compile(text).unwrap_err().detail(),
            Some("invalid_json"),
            "{text:?}"
        );
    }
    // A 257-byte name and an id with a control character.
    let long = format!("user:{}", "x".repeat(257));
    assert_eq!(
        compile(&with(|v| v["suspended"][0] = json!(long)))
            .unwrap_err()
            .detail(),
        Some("malformed_id")
    );
    assert_eq!(
        compile(&with(|v| v["suspended"][0] = json!("user:a\u{0}b")))
            .unwrap_err()
            .detail(),
        Some("malformed_id")
    );
}

#[test]
fn closure_limit_is_enforced_when_compiling() {
    // A chain of 40 nested groups with 40 members each: 40 * 40 * 20 closure entries on average.
    let mut v = base();
    let mut ms = Vec::new();
    for g in 1..40 {
        ms.push(json!({"member": format!("group:g{g}"), "group": format!("group:g{}", g - 1)}));
        for u in 0..40 {
            ms.push(json!({"member": format!("user:u{g}-{u}"), "group": format!("group:g{g}")}));
        }
    }
    v["memberships"] = json!(ms);
    let model = Model::from_json(&v.to_string()).unwrap();
    assert!(model.compile().is_ok());
    let limits = edge_authz::Limits {
        max_closure_entries: 10_000,
        ..Default::default()
    };
    let err = model.compile_limited(&limits).unwrap_err();
    assert_eq!(err.kind.code(), "limit_exceeded", "{err}");
    assert!(err.message.contains("closures"), "{err}");
}
