//! Groups: members as memberships, PATCH of members in Okta's and Entra ID's forms, nested
//! groups, renames and deletes, and groups named by externalId.

use serde_json::json;

use super::*;

#[test]
fn create_with_members() {
    let mut env = Env::new();
    let ann = env.user("ann@acme.test");
    let bo = env.user("bo@acme.test");
    let r = env.send(
        "POST",
        "Groups",
        json!({
            "schemas": [GROUP],
            "displayName": "Engineering Team",
            "externalId": "8c2b1f",
            "members": [
                { "value": ann, "display": "Ann" },
                { "value": bo, "type": "User" },
                { "value": ann }
            ]
        }),
    );
    assert_eq!((r.status, r.etag.as_deref()), (201, Some("W/\"1\"")));
    let id = id_of(&r);
    assert_eq!(r.location, Some(format!("{BASE}/Groups/{id}")));
    let b = body(&r);
    assert_eq!(b["meta"]["resourceType"], "Group");
    assert_eq!(
        b["members"],
        json!([
            { "value": ann, "type": "User", "$ref": format!("{BASE}/Users/{ann}"),
              "display": "ann@acme.test" },
            { "value": bo, "type": "User", "$ref": format!("{BASE}/Users/{bo}"),
              "display": "bo@acme.test" }
        ])
    );
    let g = "group:Engineering%20Team";
    assert!(env.memberships().contains(&pair("user:ann@acme.test", g)));
    assert!(env.memberships().contains(&pair("user:bo@acme.test", g)));
    let r = env.get("Groups?filter=displayName eq \"engineering team\"&excludedAttributes=members");
    let b = body(&r);
    assert_eq!(b["totalResults"], 1);
    assert!(b["Resources"][0].get("members").is_none());
    assert_eq!(b["Resources"][0]["displayName"], "Engineering Team");
    let r = env.get(&format!("Groups/{id}?excludedAttributes=members"));
    assert!(body(&r).get("members").is_none());
}

#[test]
fn a_group_without_members_changes_no_model() {
    let mut env = Env::new();
    let body = json!({ "schemas": [GROUP], "displayName": "empty" }).to_string();
    let out = env.call("POST", "Groups", body.as_bytes(), None);
    assert!(matches!(out, Outcome::Write { model: None, .. }), "{out:?}");
}

#[test]
fn okta_membership_changes() {
    let mut env = Env::new();
    let ann = env.user("ann@acme.test");
    let bo = env.user("bo@acme.test");
    let id = env.group("ops", &[]);
    let path = format!("Groups/{id}");
    let add =
        json!([{ "value": ann, "display": "ann@acme.test" }, { "value": bo, "display": "bo" }]);
    let r = env.patch(
        &path,
        json!([{ "op": "add", "path": "members", "value": add }]),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(env
        .memberships()
        .contains(&pair("user:ann@acme.test", "group:ops")));
    let r = env.patch(
        &path,
        json!([{ "op": "remove", "path": format!("members[value eq \"{ann}\"]") }]),
    );
    assert_eq!(body(&r)["members"].as_array().map(Vec::len), Some(1));
    assert!(!env
        .memberships()
        .contains(&pair("user:ann@acme.test", "group:ops")));
    assert!(env
        .memberships()
        .contains(&pair("user:bo@acme.test", "group:ops")));
    // Okta renames with the id in the value.
    let r = env.patch(
        &path,
        json!([{ "op": "replace", "value": { "id": id, "displayName": "operations" } }]),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(env
        .memberships()
        .contains(&pair("user:bo@acme.test", "group:operations")));
    assert!(!env.memberships().iter().any(|(_, g)| g == "group:ops"));
    // Okta's remove form: `members` with the values to remove.
    let r = env.patch(
        &path,
        json!([{ "op": "remove", "path": "members", "value": [{ "value": bo }] }]),
    );
    assert_eq!(body(&r)["members"], json!([]));
    assert!(!env
        .memberships()
        .iter()
        .any(|(_, g)| g == "group:operations"));
}

#[test]
fn entra_membership_changes() {
    let mut env = Env::new();
    let ann = env.user("ann@acme.test");
    let bo = env.user("bo@acme.test");
    let cy = env.user("cy@acme.test");
    let id = env.group("sales", &[&ann]);
    let path = format!("Groups/{id}");
    // Adding a member already there, and removing one that is not, change nothing.
    let noop = json!({ "schemas": [PATCH_OP], "Operations": [
        { "op": "Add", "path": "members", "value": [{ "value": ann }] },
        { "op": "Remove", "path": "members", "value": [{ "value": cy }] },
        { "op": "Remove", "path": format!("members[value eq \"{bo}\"]") }
    ]});
    let out = env.call("PATCH", &path, noop.to_string().as_bytes(), None);
    assert!(
        matches!(out, Outcome::Reply(Reply { status: 200, .. })),
        "{out:?}"
    );
    let r = env.patch(
        &path,
        json!([
            { "op": "Add", "path": "members", "value": [{ "value": bo }, { "value": cy }] },
            { "op": "Remove", "path": "members", "value": [{ "value": ann }] }
        ]),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let sales: Vec<_> = env
        .memberships()
        .into_iter()
        .filter(|(_, g)| g == "group:sales")
        .collect();
    assert_eq!(
        sales,
        vec![
            pair("user:bo@acme.test", "group:sales"),
            pair("user:cy@acme.test", "group:sales")
        ]
    );
    // Replace the whole list, then remove every member.
    env.patch(
        &path,
        json!([{ "op": "Replace", "path": "members", "value": [{ "value": ann }] }]),
    );
    assert!(env
        .memberships()
        .contains(&pair("user:ann@acme.test", "group:sales")));
    assert!(!env
        .memberships()
        .contains(&pair("user:bo@acme.test", "group:sales")));
    let r = env.patch(&path, json!([{ "op": "remove", "path": "members" }]));
    assert_eq!(r.status, 200);
    assert!(body(&r).get("members").is_none());
    assert!(!env.memberships().iter().any(|(_, g)| g == "group:sales"));
}

#[test]
fn nested_groups_and_cycles() {
    let mut env = Env::new();
    let ann = env.user("ann@acme.test");
    let inner = env.group("inner", &[&ann]);
    let outer = env.group("outer", &[&inner]);
    assert!(env
        .memberships()
        .contains(&pair("group:inner", "group:outer")));
    let b = env.get(&format!("Groups/{outer}")).body.unwrap();
    assert_eq!(b["members"][0]["type"], "Group");
    assert_eq!(b["members"][0]["$ref"], format!("{BASE}/Groups/{inner}"));
    let r = env.patch(
        &format!("Groups/{inner}"),
        json!([{ "op": "add", "path": "members", "value": [{ "value": outer }] }]),
    );
    assert_error(&r, 400, Some("invalidValue"));
    let r = env.patch(
        &format!("Groups/{inner}"),
        json!([{ "op": "add", "path": "members", "value": [{ "value": inner }] }]),
    );
    assert_error(&r, 400, Some("invalidValue"));
    // group:eng is already in group:staff in the model: staff may not join eng.
    let eng = env.group("eng", &[]);
    let r = env.send(
        "POST",
        "Groups",
        json!({ "schemas": [GROUP], "displayName": "staff", "members": [] }),
    );
    let staff = id_of(&r);
    let r = env.patch(
        &format!("Groups/{eng}"),
        json!([{ "op": "add", "path": "members", "value": [{ "value": staff, "type": "Group" }] }]),
    );
    assert_error(&r, 400, Some("invalidValue"));
}

#[test]
fn rename_and_delete_rewrite_the_model() {
    let mut env = Env::new();
    let eng = env.group("eng", &[]);
    let staff = env.group("staff", &[&eng]);
    let r = env.send(
        "PUT",
        &format!("Groups/{eng}"),
        json!({ "schemas": [GROUP], "displayName": "Platform Eng" }),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let pe = "group:Platform%20Eng";
    assert!(env
        .memberships()
        .contains(&pair("user:alice@acme.test", pe)));
    assert!(env.memberships().contains(&pair(pe, "group:staff")));
    let r = env.send(
        "PUT",
        &format!("Groups/{staff}"),
        json!({ "schemas": [GROUP], "displayName": "all", "members": [{ "value": eng }] }),
    );
    assert_eq!(r.status, 200);
    assert!(env.principals().contains(&"group:all"));
    let r = env.send("DELETE", &format!("Groups/{eng}"), json!(null));
    assert_eq!(r.status, 204);
    assert!(!env.memberships().iter().any(|(m, g)| m == pe || g == pe));
    assert!(!env.suspended(pe));
    assert_eq!(env.dir.groups[&staff].json["members"], json!([]));
    let r = env.send("DELETE", &format!("Groups/{staff}"), json!(null));
    assert_eq!(r.status, 204);
    assert!(!env.principals().contains(&"group:all"));
    assert!(env.dir.groups.is_empty());
}

#[test]
fn groups_named_by_external_id() {
    let mut env = Env::new();
    env.group_id = GroupIdFrom::ExternalId;
    let ann = env.user("ann@acme.test");
    let r = env.send(
        "POST",
        "Groups",
        json!({ "schemas": [GROUP], "displayName": "Eng", "members": [{ "value": ann }] }),
    );
    assert_error(&r, 400, Some("invalidValue"));
    let body = json!({ "schemas": [GROUP], "displayName": "Eng", "externalId": "aad-7f3e",
                       "members": [{ "value": ann }] });
    assert_eq!(env.send("POST", "Groups", body.clone()).status, 201);
    assert!(env
        .memberships()
        .contains(&pair("user:ann@acme.test", "group:aad-7f3e")));
    // Display names may repeat here; externalIds may not.
    let mut other = body.clone();
    other["externalId"] = json!("aad-0001");
    assert_eq!(env.send("POST", "Groups", other).status, 201);
    assert_error(&env.send("POST", "Groups", body), 409, Some("uniqueness"));
}

#[test]
fn members_must_exist() {
    let mut env = Env::new();
    let ann = env.user("ann@acme.test");
    let g = env.group("g", &[]);
    for members in [
        json!([{ "value": "nobody" }]),
        json!([{ "value": ann, "type": "Group" }]),
        json!([{ "display": "no value" }]),
        json!("ann"),
    ] {
        let r = env.send(
            "POST",
            "Groups",
            json!({ "schemas": [GROUP], "displayName": "x", "members": members }),
        );
        assert_error(&r, 400, Some("invalidValue"));
    }
    let r = env.patch(
        &format!("Groups/{g}"),
        json!([{ "op": "add", "path": "members", "value": [{ "value": "nobody" }] }]),
    );
    assert_error(&r, 400, Some("invalidValue"));
}
