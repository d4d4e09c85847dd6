//! Users: create, read, list, replace, patch (Okta and Entra ID bodies), delete, and what each
//! does to the model.

use serde_json::json;

use super::*;

fn okta_alice() -> Value {
    json!({
        "schemas": [USER],
        "userName": "alice@acme.test",
        "name": { "givenName": "Alice", "familyName": "Liddell" },
        "emails": [{ "primary": true, "value": "alice@acme.test", "type": "work" }],
        "displayName": "Alice Liddell",
        "locale": "en-US",
        "externalId": "00u1abcd2EFGH3ijk4x7",
        "groups": [],
        "password": "hunter2-hunter2",
        "active": true
    })
}

#[test]
fn create_then_get() {
    let mut env = Env::new();
    let out = env.call("POST", "Users", okta_alice().to_string().as_bytes(), None);
    // alice is active already: only the directory changes.
    let Outcome::Write {
        model: None,
        changes,
        reply,
        ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(changes.len(), 1);
    assert_eq!(reply.status, 201);
    assert_eq!(
        reply.location.as_deref(),
        Some(format!("{BASE}/Users/id-1").as_str())
    );
    assert_eq!(reply.etag.as_deref(), Some("W/\"1\""));
    let b = body(&reply);
    assert_eq!(b["id"], "id-1");
    assert_eq!(b["userName"], "alice@acme.test");
    assert_eq!(b["name"]["givenName"], "Alice");
    assert!(b.get("password").is_none() && b.get("groups").is_none());
    assert_eq!(b["meta"]["resourceType"], "User");
    assert_eq!(b["meta"]["created"], "2026-01-01T00:00:00.000Z");
    assert_eq!(b["meta"]["lastModified"], "2026-01-01T00:00:00.000Z");
    assert_eq!(b["meta"]["location"], format!("{BASE}/Users/id-1"));
    assert_eq!(b["meta"]["version"], "W/\"1\"");

    let id = env.user_from(okta_alice());
    let got = env.get(&format!("Users/{id}"));
    assert_eq!(got.status, 200);
    assert_eq!(got.etag.as_deref(), Some("W/\"1\""));
    assert_eq!(body(&got)["emails"][0]["value"], "alice@acme.test");
    assert_eq!(body(&got)["schemas"], json!([USER]));
}

impl Env {
    fn user_from(&mut self, v: Value) -> String {
        let r = self.send("POST", "Users", v);
        assert_eq!(r.status, 201, "{:?}", r.body);
        id_of(&r)
    }
}

#[test]
fn a_given_id_and_meta_are_ignored() {
    let mut env = Env::new();
    let mut v = okta_alice();
    v["id"] = json!("mine");
    v["meta"] = json!({ "resourceType": "User", "created": "1999-01-01T00:00:00Z" });
    let id = env.user_from(v);
    assert_eq!(id, "id-1");
    let got = env.get("Users/id-1");
    assert_eq!(body(&got)["meta"]["created"], "2026-01-01T00:00:01.000Z");
}

#[test]
fn entra_create_with_the_enterprise_extension() {
    let mut env = Env::new();
    let id = env.user_from(json!({
        "schemas": [USER, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
        "active": true,
        "addresses": [{ "primary": true, "type": "work", "formatted": "1 Main St" }],
        "displayName": "Test User",
        "emails": [{ "primary": true, "type": "work", "value": "Test_User@acme.test" }],
        "meta": { "resourceType": "User" },
        "name": { "familyName": "User", "givenName": "Test" },
        "roles": [],
        "title": "Manager",
        ENTERPRISE: { "department": "Sales", "manager": { "value": "mgr-1" } }
    }));
    let b = env.get(&format!("Users/{id}")).body.unwrap();
    assert_eq!(b[ENTERPRISE]["department"], "Sales");
    assert_eq!(b["schemas"], json!([USER, ENTERPRISE]));
    assert_eq!(b["addresses"][0]["primary"], true);
}

#[test]
fn list_filter_and_paging() {
    let mut env = Env::new();
    for n in 0..5 {
        env.user(&format!("user{n}@acme.test"));
    }
    let alice = env.user_from(okta_alice());
    let r = env.get("Users?filter=userName eq \"ALICE@acme.TEST\"");
    let b = body(&r);
    assert_eq!(
        b["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(
        (b["totalResults"].as_u64(), b["itemsPerPage"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(b["Resources"][0]["id"], json!(alice));
    // externalId is case-exact.
    let r = env.get("Users?filter=externalId eq \"00u1abcd2efgh3ijk4x7\"");
    assert_eq!(body(&r)["totalResults"], 0);
    let r = env.get("Users?filter=externalId eq \"00u1abcd2EFGH3ijk4x7\"&attributes=userName");
    assert_eq!(
        body(&r)["Resources"][0],
        json!({ "id": alice, "schemas": [USER], "userName": "alice@acme.test" })
    );
    let r = env.get("Users?filter=emails.value eq \"alice@acme.test\" and active eq true");
    assert_eq!(body(&r)["totalResults"], 1);

    let r = env.get("Users?startIndex=2&count=2");
    let b = body(&r);
    assert_eq!(b["totalResults"], 6);
    assert_eq!(
        (b["startIndex"].as_u64(), b["itemsPerPage"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(b["Resources"][0]["userName"], "user1@acme.test");
    let b = env.get("Users?startIndex=0&count=-3").body.unwrap();
    assert_eq!(
        (b["startIndex"].as_u64(), b["itemsPerPage"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(b["totalResults"], 6);
    let b = env.get("Users?startIndex=6&count=5000").body.unwrap();
    assert_eq!(b["itemsPerPage"], 1);
    let b = env.get("Users?startIndex=99").body.unwrap();
    assert_eq!(
        (
            b["itemsPerPage"].as_u64(),
            b["Resources"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );
    let b = env
        .get("Users?excludedAttributes=emails,name.familyName,meta")
        .body
        .unwrap();
    let a = &b["Resources"][5];
    assert!(a.get("emails").is_none() && a.get("meta").is_none());
    assert_eq!(a["name"], json!({ "givenName": "Alice" }));
}

#[test]
fn inactive_on_create_suspends_and_delete_then_recreate_unsuspends() {
    let mut env = Env::new();
    let id = env.user_from(json!({ "schemas": [USER], "userName": "bob", "active": false }));
    assert!(env.suspended("user:bob"));
    let r = env.send("DELETE", &format!("Users/{id}"), json!(null));
    assert_eq!((r.status, r.body.is_none()), (204, true));
    assert!(env.suspended("user:bob"));
    env.user("bob");
    assert!(!env.suspended("user:bob"));
    // A user suspended by hand in the model comes back with its creation as active.
    env.user("mallory");
    assert!(!env.suspended("user:mallory"));
}

#[test]
fn okta_deactivate_and_reactivate() {
    let mut env = Env::new();
    let id = env.user_from(okta_alice());
    let path = format!("Users/{id}");
    let r = env.patch(
        &path,
        json!([{ "op": "replace", "value": { "id": id, "active": false } }]),
    );
    assert_eq!((r.status, body(&r)["active"].as_bool()), (200, Some(false)));
    assert_eq!(r.etag.as_deref(), Some("W/\"2\""));
    assert!(env.suspended("user:alice@acme.test"));
    // Memberships and assignments stay: suspension is what denies.
    assert!(env.principals().contains(&"user:alice@acme.test"));
    let r = env.patch(
        &path,
        json!([{ "op": "replace", "value": { "active": true } }]),
    );
    assert_eq!(r.status, 200);
    assert!(!env.suspended("user:alice@acme.test"));
    // Okta's password change is taken and dropped.
    let r = env.patch(
        &path,
        json!([{ "op": "replace", "value": { "password": "n3w-secret!" } }]),
    );
    assert_eq!(r.status, 200);
    assert!(env.dir.users[&id].json.get("password").is_none());
}

#[test]
fn entra_patch() {
    let mut env = Env::new();
    let id = env.user_from(okta_alice());
    let r = env.patch(
        &format!("Users/{id}"),
        json!([
            { "op": "Replace", "path": "active", "value": "False" },
            { "op": "Add", "path": "emails[type eq \"home\"].value", "value": "alice@home.test" },
            { "op": "Replace", "path": "emails[type eq \"work\"].value",
              "value": "a.liddell@acme.test" },
            { "op": "Replace", "path": "name.givenName", "value": "Alicia" },
            { "op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "Research" },
            { "op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": "id-9" },
            { "op": "Replace",
              "value": { "displayName": "Alicia Liddell", "name.familyName": "L.", "title": "CTO" } },
            { "op": "Remove", "path": "locale" }
        ]),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let b = body(&r);
    assert_eq!(b["active"], false);
    assert!(env.suspended("user:alice@acme.test"));
    assert_eq!(b["emails"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        b["emails"][0],
        json!({ "primary": true, "value": "a.liddell@acme.test", "type": "work" })
    );
    assert_eq!(
        b["emails"][1],
        json!({ "type": "home", "value": "alice@home.test" })
    );
    assert_eq!(
        b["name"],
        json!({ "givenName": "Alicia", "familyName": "L." })
    );
    assert_eq!(
        b[ENTERPRISE],
        json!({ "department": "Research", "manager": { "value": "id-9" } })
    );
    assert_eq!(b["schemas"], json!([USER, ENTERPRISE]));
    assert_eq!(
        (b["displayName"].as_str(), b["title"].as_str()),
        (Some("Alicia Liddell"), Some("CTO"))
    );
    assert!(b.get("locale").is_none());
    // Removing what is not there is no error, and nothing changes.
    let out = env.call(
        "PATCH",
        &format!("Users/{id}"),
        json!({ "schemas": [PATCH_OP], "Operations": [
            { "op": "remove", "path": "nickName" },
            { "op": "remove", "path": "emails[type eq \"other\"]" },
            { "op": "remove", "path": format!("{ENTERPRISE}:costCenter") }
        ]})
        .to_string()
        .as_bytes(),
        None,
    );
    let Outcome::Reply(r) = out else {
        panic!("{out:?}")
    };
    assert_eq!((r.status, r.etag.as_deref()), (200, Some("W/\"2\"")));
}

#[test]
fn replace_keeps_id_and_created() {
    let mut env = Env::new();
    let id = env.user_from(okta_alice());
    let created = env.get(&format!("Users/{id}")).body.unwrap()["meta"]["created"].clone();
    let r = env.send(
        "PUT",
        &format!("Users/{id}"),
        json!({ "schemas": [USER], "id": "other", "userName": "alice@acme.test", "active": true,
                "meta": { "created": "2000-01-01T00:00:00Z" }, "groups": [{ "value": "x" }] }),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let b = body(&r);
    assert_eq!(
        (b["id"].as_str(), &b["meta"]["created"]),
        (Some(id.as_str()), &created)
    );
    assert_ne!(b["meta"]["lastModified"], created);
    assert_eq!(b["meta"]["version"], "W/\"2\"");
    // What the replacement left out is gone.
    assert!(b.get("emails").is_none() && b.get("name").is_none());
    // The same replacement again changes nothing.
    let again = json!({ "schemas": [USER], "userName": "alice@acme.test", "active": true });
    let out = env.call(
        "PUT",
        &format!("Users/{id}"),
        again.to_string().as_bytes(),
        None,
    );
    assert!(
        matches!(out, Outcome::Reply(Reply { status: 200, .. })),
        "{out:?}"
    );
}

#[test]
fn rename_rewrites_the_model() {
    let mut env = Env::new();
    let id = env.user_from(okta_alice());
    let eng = env.group("eng", &[&id]);
    env.patch(
        &format!("Users/{id}"),
        json!([{ "op": "replace", "value": { "active": false } }]),
    );
    let r = env.patch(
        &format!("Users/{id}"),
        json!([{ "op": "replace", "path": "userName", "value": "Alice Smith" }]),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let new = "user:Alice%20Smith";
    assert!(env.memberships().contains(&pair(new, "group:eng")));
    assert!(!env
        .memberships()
        .iter()
        .any(|(m, _)| m == "user:alice@acme.test"));
    assert!(env.principals().contains(&new));
    assert!(env.suspended(new) && !env.suspended("user:alice@acme.test"));
    // The group's member is the same resource, shown under its new name.
    let g = env.get(&format!("Groups/{eng}")).body.unwrap();
    assert_eq!(g["members"][0]["display"], "Alice Liddell");
    let u = env.get(&format!("Users/{id}")).body.unwrap();
    assert_eq!(
        u["groups"],
        json!([{ "value": eng, "$ref": format!("{BASE}/Groups/{eng}"), "display": "eng",
                 "type": "direct" }])
    );
}

#[test]
fn delete_removes_grants_and_suspends() {
    let mut env = Env::new();
    let id = env.user_from(okta_alice());
    let eng = env.group("eng", &[&id]);
    let r = env.send("DELETE", &format!("Users/{id}"), json!(null));
    assert_eq!(r.status, 204);
    assert!(!env
        .memberships()
        .iter()
        .any(|(m, _)| m == "user:alice@acme.test"));
    assert!(!env.principals().contains(&"user:alice@acme.test"));
    assert!(env.suspended("user:alice@acme.test"));
    assert!(env.dir.users.is_empty());
    let g = &env.dir.groups[&eng];
    assert_eq!((g.json["members"].clone(), g.version), (json!([]), 2));
    assert_error(&env.get(&format!("Users/{id}")), 404, None);
}

#[test]
fn names_are_percent_encoded() {
    let mut env = Env::new();
    for (name, subject) in [
        ("Jane Doe", "user:Jane%20Doe"),
        ("100%", "user:100%25"),
        ("tab\there", "user:tab%09here"),
        ("nbsp\u{a0}é", "user:nbsp%C2%A0é"),
    ] {
        let id = env.user_from(json!({ "schemas": [USER], "userName": name, "active": false }));
        assert!(env.suspended(subject), "{name}");
        assert_eq!(
            env.get(&format!("Users/{id}")).body.unwrap()["userName"],
            name
        );
    }
    let r = env.send(
        "POST",
        "Users",
        json!({ "schemas": [USER], "userName": "x".repeat(256) }),
    );
    assert_eq!(r.status, 201);
    // 255 bytes, then one space: 257 once encoded.
    let long = format!("{} ", "y".repeat(254));
    let r = env.send(
        "POST",
        "Users",
        json!({ "schemas": [USER], "userName": long }),
    );
    assert_error(&r, 400, Some("invalidValue"));
}

#[test]
fn if_match() {
    let mut env = Env::new();
    let id = env.user_from(okta_alice());
    let path = format!("Users/{id}");
    let op = json!([{ "op": "replace", "path": "title", "value": "Dr" }]);
    let body = json!({ "schemas": [PATCH_OP], "Operations": op });
    let body = body.to_string();
    let r = env.raw("PATCH", &path, body.as_bytes(), Some("W/\"1\""));
    assert_eq!(r.etag.as_deref(), Some("W/\"2\""));
    let r = env.raw("PATCH", &path, body.as_bytes(), Some("W/\"1\""));
    assert_error(&r, 412, None);
    let put = json!({ "schemas": [USER], "userName": "alice@acme.test" }).to_string();
    assert_error(
        &env.raw("PUT", &path, put.as_bytes(), Some("\"7\", W/\"1\"")),
        412,
        None,
    );
    assert_error(&env.raw("DELETE", &path, b"", Some("W/\"1\"")), 412, None);
    assert_eq!(
        env.raw("PUT", &path, put.as_bytes(), Some("\"5\", W/\"2\""))
            .status,
        200
    );
    assert_eq!(env.raw("DELETE", &path, b"", Some("*")).status, 204);
}

#[test]
fn reads_never_write() {
    let mut env = Env::new();
    let id = env.user_from(okta_alice());
    let g = env.group("eng", &[&id]);
    for path in [
        "Users".to_string(),
        format!("Users/{id}"),
        format!("Groups/{g}?excludedAttributes=members"),
        "Groups?filter=displayName eq \"ENG\"".into(),
        "ServiceProviderConfig".into(),
        "ResourceTypes".into(),
        "Schemas".into(),
        "Users/nope".into(),
    ] {
        let out = env.call("GET", &path, b"", None);
        assert!(matches!(out, Outcome::Reply(_)), "{path}: {out:?}");
    }
}
