//! Every error: its status, `scimType` and schema.

use serde_json::json;

use super::*;

#[test]
fn bodies() {
    let mut env = Env::new();
    for raw in [
        &b"{\"schemas\": ["[..],
        b"",
        b"[]",
        b"\"x\"",
        b"{\"userName\": \"x\"}",
    ] {
        assert_error(
            &env.raw("POST", "Users", raw, None),
            400,
            Some("invalidSyntax"),
        );
    }
    let user = |extra: Value| {
        let mut v = json!({ "schemas": [USER], "userName": "x" });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    let cases = [
        (
            json!({ "schemas": [GROUP], "userName": "x" }),
            "invalidSyntax",
        ),
        (json!({ "schemas": USER, "userName": "x" }), "invalidSyntax"),
        (
            json!({ "schemas": [USER, 7], "userName": "x" }),
            "invalidSyntax",
        ),
        (user(json!({ "favoriteColor": "red" })), "invalidSyntax"),
        (
            user(json!({ "urn:example:ext:1.0:User": {} })),
            "invalidSyntax",
        ),
        (user(json!({ ENTERPRISE: "Sales" })), "invalidSyntax"),
        (json!({ "schemas": [USER] }), "invalidValue"),
        (user(json!({ "userName": "" })), "invalidValue"),
        (user(json!({ "userName": 7 })), "invalidValue"),
        (user(json!({ "active": "maybe" })), "invalidValue"),
        (user(json!({ "name": "X" })), "invalidValue"),
        (user(json!({ "name": { "givenName": 7 } })), "invalidValue"),
        (user(json!({ "emails": "x@y" })), "invalidValue"),
        (
            user(json!({ "emails": [{ "value": "x@y", "primary": "yes" }] })),
            "invalidValue",
        ),
    ];
    for (v, scim_type) in cases {
        assert_error(&env.send("POST", "Users", v), 400, Some(scim_type));
    }
    let r = env.send("POST", "Users", user(json!({ "favoriteColor": "red" })));
    let detail = body(&r)["detail"].as_str().unwrap();
    assert!(detail.contains("`favoriteColor`"), "{detail}");
    // An extension listed in `schemas` is kept as given; attribute names take any case.
    let ext = "urn:example:ext:1.0:User";
    let ok = json!({ "schemas": [USER, ext], "USERNAME": "x", ext: { "badge": 7 } });
    let r = env.send("POST", "Users", ok);
    assert_eq!(r.status, 201);
    assert_eq!(
        (&body(&r)["userName"], &body(&r)[ext]),
        (&json!("x"), &json!({ "badge": 7 }))
    );
    let r = env.send("POST", "Groups", json!({ "schemas": [GROUP] }));
    assert_error(&r, 400, Some("invalidValue"));
}

#[test]
fn uniqueness() {
    let mut env = Env::new();
    let id = env.user("Ann@Acme.test");
    assert_error(
        &env.send(
            "POST",
            "Users",
            json!({ "schemas": [USER], "userName": "ann@acme.TEST" }),
        ),
        409,
        Some("uniqueness"),
    );
    let other = env.user("bo");
    let r = env.patch(
        &format!("Users/{other}"),
        json!([{ "op": "replace", "path": "userName", "value": "ANN@acme.test" }]),
    );
    assert_error(&r, 409, Some("uniqueness"));
    // A user may change the case of its own name.
    let r = env.patch(
        &format!("Users/{id}"),
        json!([{ "op": "replace", "path": "userName", "value": "ann@acme.test" }]),
    );
    assert_eq!(r.status, 200);
    env.group("Eng", &[]);
    let r = env.send(
        "POST",
        "Groups",
        json!({ "schemas": [GROUP], "displayName": "eng" }),
    );
    assert_error(&r, 409, Some("uniqueness"));
}

#[test]
fn routes() {
    let mut env = Env::new();
    let id = env.user("ann");
    assert_error(&env.get("Users/nope"), 404, None);
    assert_error(&env.get("Groups/nope"), 404, None);
    assert_error(
        &env.send(
            "PUT",
            "Users/nope",
            json!({ "schemas": [USER], "userName": "x" }),
        ),
        404,
        None,
    );
    assert_error(&env.send("DELETE", "Groups/nope", json!(null)), 404, None);
    assert_error(&env.patch("Users/nope", json!([])), 404, None);
    assert_error(&env.get("Widgets"), 404, None);
    assert_error(&env.get(&format!("Users/{id}/extra")), 404, None);
    assert_error(&env.get(""), 404, None);
    assert_error(&env.get("ResourceTypes/Widget"), 404, None);
    assert_error(&env.get("Schemas/urn:example:nothing"), 404, None);
    assert_error(&env.send("DELETE", "Users", json!(null)), 405, None);
    assert_error(
        &env.send("POST", &format!("Users/{id}"), json!({})),
        405,
        None,
    );
    assert_error(
        &env.send("POST", "ServiceProviderConfig", json!({})),
        405,
        None,
    );
    assert_error(&env.send("PUT", "Schemas", json!({})), 405, None);
    assert_error(&env.get("Me"), 501, None);
    assert_error(&env.send("POST", "Bulk", json!({})), 501, None);
    // Endpoint names and methods in another case, and a trailing slash, still route.
    assert_eq!(env.raw("get", "users/", b"", None).status, 200);
}

#[test]
fn filters_and_paging_parameters() {
    let mut env = Env::new();
    for (q, scim_type) in [
        ("filter=userName co \"a\"", "invalidFilter"),
        (
            "filter=userName eq \"a\" or userName eq \"b\"",
            "invalidFilter",
        ),
        ("filter=not (userName eq \"a\")", "invalidFilter"),
        ("filter=emails[type eq \"work\"]", "invalidFilter"),
        ("filter=favoriteColor eq \"red\"", "invalidFilter"),
        ("filter=name.nickname eq \"a\"", "invalidFilter"),
        ("filter=userName eq \"a", "invalidFilter"),
        ("filter=userName eq a", "invalidFilter"),
        ("filter=userName eq", "invalidFilter"),
        ("filter=userName", "invalidFilter"),
        ("filter=", "invalidFilter"),
        ("filter=userName eq \"a\" and", "invalidFilter"),
        ("filter=userName eq \"a\" \"b\"", "invalidFilter"),
        ("filter=password eq \"a\"", "invalidFilter"),
        ("count=ten", "invalidValue"),
        ("startIndex=1.5", "invalidValue"),
    ] {
        let r = env.get(&format!("Users?{q}"));
        assert_error(&r, 400, Some(scim_type));
    }
    for q in [
        "filter=urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"a\"",
        "filter=meta.created eq \"2026-01-01T00:00:00.000Z\"",
        "filter=id eq \"x\"",
        "filter=USERNAME Eq \"a\" AND active eq false",
        "filter=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq \"Sales\"",
    ] {
        assert_eq!(env.get(&format!("Users?{q}")).status, 200, "{q}");
    }
}

#[test]
fn patches() {
    let mut env = Env::new();
    let id = env.user("ann");
    let path = format!("Users/{id}");
    let bodies = [
        (json!({ "Operations": [] }), "invalidSyntax"),
        (json!({ "schemas": [PATCH_OP] }), "invalidSyntax"),
        (
            json!({ "schemas": [PATCH_OP], "Operations": ["replace"] }),
            "invalidSyntax",
        ),
        (json!([]), "invalidSyntax"),
    ];
    for (b, scim_type) in bodies {
        assert_error(&env.send("PATCH", &path, b), 400, Some(scim_type));
    }
    let ops = [
        (json!({ "op": "move", "path": "title" }), "invalidSyntax"),
        (
            json!({ "op": "replace", "path": 5, "value": "x" }),
            "invalidSyntax",
        ),
        (json!({ "op": "remove" }), "noTarget"),
        (
            json!({ "op": "replace", "path": "emails[type eq \"work\"]", "value": {} }),
            "noTarget",
        ),
        (
            json!({ "op": "replace", "path": "favoriteColor", "value": "red" }),
            "invalidPath",
        ),
        (
            json!({ "op": "replace", "path": "emails.value", "value": "a@b" }),
            "invalidPath",
        ),
        (
            json!({ "op": "replace", "path": "name[givenName eq \"a\"]", "value": "a" }),
            "invalidPath",
        ),
        (
            json!({ "op": "replace", "path": "emails[type eq \"work\"", "value": "a" }),
            "invalidPath",
        ),
        (
            json!({ "op": "replace", "path": "name.givenName.x", "value": "a" }),
            "invalidPath",
        ),
        (
            json!({ "op": "replace", "path": "urn:example:other:User:x", "value": "a" }),
            "invalidPath",
        ),
        (
            json!({ "op": "add", "path": format!("{ENTERPRISE}:shoeSize"), "value": "a" }),
            "invalidPath",
        ),
        (
            json!({ "op": "add", "path": "emails[type co \"w\"].value", "value": "a" }),
            "invalidFilter",
        ),
        (
            json!({ "op": "replace", "path": "id", "value": "x" }),
            "mutability",
        ),
        (
            json!({ "op": "replace", "path": "meta.created", "value": "x" }),
            "mutability",
        ),
        (
            json!({ "op": "add", "path": "groups", "value": [{ "value": "g" }] }),
            "mutability",
        ),
        (
            json!({ "op": "replace", "path": "userName" }),
            "invalidValue",
        ),
        (
            json!({ "op": "remove", "path": "userName" }),
            "invalidValue",
        ),
        (
            json!({ "op": "replace", "path": "active", "value": 1 }),
            "invalidValue",
        ),
        (json!({ "op": "replace", "value": "x" }), "invalidValue"),
    ];
    for (op, scim_type) in ops {
        let r = env.patch(&path, json!([op]));
        assert_error(&r, 400, Some(scim_type));
    }
    assert_error(
        &env.raw("PATCH", &path, b"not json", None),
        400,
        Some("invalidSyntax"),
    );
    // Nothing above changed the user.
    assert_eq!(env.dir.users[&id].version, 1);
}

#[test]
fn no_model_yet() {
    let mut env = Env::empty();
    // Nothing to change in a model: fine.
    let ann = env.user("ann");
    env.group("empty", &[]);
    let detail = "the tenant has no model yet: publish one first";
    for r in [
        env.send(
            "POST",
            "Users",
            json!({ "schemas": [USER], "userName": "bo", "active": false }),
        ),
        env.send(
            "POST",
            "Groups",
            json!({ "schemas": [GROUP], "displayName": "g", "members": [{ "value": ann }] }),
        ),
        env.patch(
            &format!("Users/{ann}"),
            json!([{ "op": "replace", "path": "active", "value": false }]),
        ),
        env.send("DELETE", &format!("Users/{ann}"), json!(null)),
    ] {
        assert_error(&r, 409, None);
        assert_eq!(body(&r)["detail"], detail);
    }
    assert!(env.model.is_none());
    assert_eq!(env.dir.users.len(), 1);
}

#[test]
fn odd_inputs_never_panic() {
    let mut env = Env::new();
    let ann = env.user("ann");
    let g = env.group("g", &[&ann]);
    let pieces = [
        "members", "emails", "name", "userName", "[", "]", ".", "\"", "\\", " eq ", " and ",
        "value", "type", "urn:", ENTERPRISE, USER, ":", "é", "\u{0}", "\u{a0}", "or", "(", "$ref",
        "true", "1e999",
    ];
    // A fixed pseudo-random walk (xorshift) over the pieces.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % n as u64).unwrap()
    };
    for _ in 0..3000 {
        let len = 1 + next(6);
        let text: String = (0..len).map(|_| pieces[next(pieces.len())]).collect();
        let values = [
            json!(null),
            json!("x"),
            json!([{ "value": ann }]),
            json!({ "a": [1, { "b": [] }] }),
            json!(true),
        ];
        let value = values[next(values.len())].clone();
        let op = ["add", "replace", "remove"][next(3)];
        let target = if next(2) == 0 {
            format!("Users/{ann}")
        } else {
            format!("Groups/{g}")
        };
        let r = env.patch(&target, json!([{ "op": op, "path": text, "value": value }]));
        assert!(r.status < 500, "{text:?}: {:?}", r.body);
        let r = env.patch(
            &target,
            json!([{ "op": op, "value": { text.clone(): value } }]),
        );
        assert!(r.status < 500, "{text:?}");
        let r = env.get(&format!(
            "Users?filter={text}&attributes={text}&excludedAttributes={text}"
        ));
        assert!(r.status < 500, "{text:?}");
    }
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    assert_error(
        &env.raw("POST", "Users", deep.as_bytes(), None),
        400,
        Some("invalidSyntax"),
    );
}
