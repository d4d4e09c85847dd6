//! /ServiceProviderConfig, /ResourceTypes and /Schemas.

use serde_json::json;

use super::*;

#[test]
fn service_provider_config() {
    let mut env = Env::new();
    let b = env.get("ServiceProviderConfig").body.unwrap();
    assert_eq!(
        b["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    assert_eq!(b["patch"]["supported"], true);
    assert_eq!(b["bulk"]["supported"], false);
    assert_eq!(
        b["filter"],
        json!({ "supported": true, "maxResults": 1000 })
    );
    assert_eq!(b["changePassword"]["supported"], false);
    assert_eq!(b["sort"]["supported"], false);
    assert_eq!(b["etag"]["supported"], true);
    let auth = &b["authenticationSchemes"][0];
    assert_eq!(
        (auth["type"].as_str(), auth["name"].as_str()),
        (Some("oauthbearertoken"), Some("OAuth Bearer Token"))
    );
    assert!(auth["description"].is_string());
    assert_eq!(
        b["meta"]["location"],
        format!("{BASE}/ServiceProviderConfig")
    );
}

#[test]
fn resource_types() {
    let mut env = Env::new();
    let b = env.get("ResourceTypes").body.unwrap();
    assert_eq!(
        b["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(b["totalResults"], 2);
    let user = env.get("ResourceTypes/User").body.unwrap();
    assert_eq!(
        user["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ResourceType"])
    );
    assert_eq!(
        (user["endpoint"].as_str(), user["schema"].as_str()),
        (Some("/Users"), Some(USER))
    );
    assert_eq!(
        user["schemaExtensions"],
        json!([{ "schema": ENTERPRISE, "required": false }])
    );
    assert_eq!(b["Resources"][0], user);
    let group = env.get("ResourceTypes/Group").body.unwrap();
    assert_eq!(
        (group["endpoint"].as_str(), group["schema"].as_str()),
        (Some("/Groups"), Some(GROUP))
    );
}

#[test]
fn schemas() {
    let mut env = Env::new();
    let b = env.get("Schemas").body.unwrap();
    let ids: Vec<_> = b["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(USER), json!(GROUP), json!(ENTERPRISE)]);
    let user = env.get(&format!("Schemas/{USER}")).body.unwrap();
    assert_eq!(
        user["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:Schema"])
    );
    let attrs = user["attributes"].as_array().unwrap();
    let user_name = attrs.iter().find(|a| a["name"] == "userName").unwrap();
    assert_eq!(
        user_name,
        &json!({ "name": "userName", "type": "string", "multiValued": false, "required": true,
                 "caseExact": false, "mutability": "readWrite", "returned": "default",
                 "uniqueness": "server" })
    );
    let password = attrs.iter().find(|a| a["name"] == "password").unwrap();
    assert_eq!(
        (
            password["mutability"].as_str(),
            password["returned"].as_str()
        ),
        (Some("writeOnly"), Some("never"))
    );
    let emails = attrs.iter().find(|a| a["name"] == "emails").unwrap();
    assert_eq!(
        (
            emails["multiValued"].as_bool(),
            emails["subAttributes"].as_array().map(Vec::len)
        ),
        (Some(true), Some(4))
    );
    let group = env
        .get(&format!("Schemas/{}", GROUP.to_lowercase()))
        .body
        .unwrap();
    let members = &group["attributes"][1];
    assert_eq!(members["name"], "members");
    assert_eq!(
        members["subAttributes"][1]["referenceTypes"],
        json!(["User", "Group"])
    );
    assert_eq!(group["meta"]["location"], format!("{BASE}/Schemas/{GROUP}"));
}
