//! The schemas this service speaks (RFC 7643 sections 4, 8.7.1 and 8.7.2) and the discovery
//! documents built from them: `/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas`.

use serde_json::{json, Value};

use super::Kind;

pub(super) const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(super) const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub(super) const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub(super) const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub(super) const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub(super) const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const CONFIG: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// Most resources one list answers.
pub(super) const MAX_RESULTS: usize = 1000;

/// An attribute's data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ty {
    Str,
    Bool,
    Complex,
    Ref,
}

/// Whether and when clients may write an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mutability {
    ReadWrite,
    ReadOnly,
    Immutable,
    WriteOnly,
}

/// One attribute definition (RFC 7643 section 7).
#[derive(Debug)]
pub(super) struct Attr {
    pub name: &'static str,
    pub ty: Ty,
    pub multi: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub unique: bool,
    pub sub: &'static [Attr],
    pub refs: &'static [&'static str],
    pub canon: &'static [&'static str],
}

const fn a(name: &'static str, ty: Ty) -> Attr {
    Attr {
        name,
        ty,
        multi: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        unique: false,
        sub: &[],
        refs: &[],
        canon: &[],
    }
}

const fn s(name: &'static str) -> Attr {
    a(name, Ty::Str)
}

/// A multi-valued complex attribute.
const fn many(name: &'static str, sub: &'static [Attr]) -> Attr {
    let mut at = a(name, Ty::Complex);
    at.multi = true;
    at.sub = sub;
    at
}

const fn with(mut at: Attr, mutability: Mutability) -> Attr {
    at.mutability = mutability;
    at
}

const fn reference(name: &'static str, refs: &'static [&'static str]) -> Attr {
    let mut at = a(name, Ty::Ref);
    at.refs = refs;
    at.case_exact = true;
    at
}

const fn canon(mut at: Attr, values: &'static [&'static str]) -> Attr {
    at.canon = values;
    at
}

const fn complex(name: &'static str, sub: &'static [Attr]) -> Attr {
    let mut at = a(name, Ty::Complex);
    at.sub = sub;
    at
}

const NAME: &[Attr] = &[
    s("formatted"),
    s("familyName"),
    s("givenName"),
    s("middleName"),
    s("honorificPrefix"),
    s("honorificSuffix"),
];
const VALUES: &[Attr] = &[s("value"), s("display"), s("type"), a("primary", Ty::Bool)];
const ADDRESSES: &[Attr] = &[
    s("formatted"),
    s("streetAddress"),
    s("locality"),
    s("region"),
    s("postalCode"),
    s("country"),
    s("type"),
    a("primary", Ty::Bool),
];
const USER_GROUPS: &[Attr] = &[
    with(s("value"), Mutability::ReadOnly),
    with(reference("$ref", &["User", "Group"]), Mutability::ReadOnly),
    with(s("display"), Mutability::ReadOnly),
    with(
        canon(s("type"), &["direct", "indirect"]),
        Mutability::ReadOnly,
    ),
];
const USER_NAME: Attr = {
    let mut at = s("userName");
    at.required = true;
    at.unique = true;
    at
};

/// The core User schema's attributes.
pub(super) const USER_ATTRS: &[Attr] = &[
    USER_NAME,
    complex("name", NAME),
    s("displayName"),
    s("nickName"),
    reference("profileUrl", &["external"]),
    s("title"),
    s("userType"),
    s("preferredLanguage"),
    s("locale"),
    s("timezone"),
    a("active", Ty::Bool),
    with(s("password"), Mutability::WriteOnly),
    many("emails", VALUES),
    many("phoneNumbers", VALUES),
    many("ims", VALUES),
    many("photos", VALUES),
    many("addresses", ADDRESSES),
    with(many("groups", USER_GROUPS), Mutability::ReadOnly),
    many("entitlements", VALUES),
    many("roles", VALUES),
    many("x509Certificates", VALUES),
];

const MEMBERS: &[Attr] = &[
    with(s("value"), Mutability::Immutable),
    with(reference("$ref", &["User", "Group"]), Mutability::Immutable),
    with(canon(s("type"), &["User", "Group"]), Mutability::Immutable),
    with(s("display"), Mutability::ReadOnly),
];
const DISPLAY_NAME: Attr = {
    let mut at = s("displayName");
    at.required = true;
    at
};

/// The core Group schema's attributes.
pub(super) const GROUP_ATTRS: &[Attr] = &[DISPLAY_NAME, many("members", MEMBERS)];

const MANAGER: &[Attr] = &[
    s("value"),
    reference("$ref", &["User"]),
    with(s("displayName"), Mutability::ReadOnly),
];

/// The enterprise User extension's attributes.
pub(super) const ENTERPRISE_ATTRS: &[Attr] = &[
    s("employeeNumber"),
    s("costCenter"),
    s("organization"),
    s("division"),
    s("department"),
    complex("manager", MANAGER),
];

/// `externalId`, common to both resource types (RFC 7643 section 3.1).
pub(super) const EXTERNAL_ID: &Attr = &{
    let mut at = s("externalId");
    at.case_exact = true;
    at
};

/// The core schema URN of a resource type.
pub(super) fn urn(kind: Kind) -> &'static str {
    match kind {
        Kind::User => USER,
        Kind::Group => GROUP,
    }
}

/// The core attributes of a resource type.
pub(super) fn attrs(kind: Kind) -> &'static [Attr] {
    match kind {
        Kind::User => USER_ATTRS,
        Kind::Group => GROUP_ATTRS,
    }
}

/// The attribute of `list` named `name` (names are case-insensitive).
pub(super) fn find_in(list: &'static [Attr], name: &str) -> Option<&'static Attr> {
    list.iter().find(|at| at.name.eq_ignore_ascii_case(name))
}

/// A core or common attribute of a resource type (not `id` and `meta`).
pub(super) fn find(kind: Kind, name: &str) -> Option<&'static Attr> {
    find_in(attrs(kind), name).or_else(|| {
        EXTERNAL_ID
            .name
            .eq_ignore_ascii_case(name)
            .then_some(EXTERNAL_ID)
    })
}

/// The attributes of a known extension schema.
pub(super) fn extension(kind: Kind, urn: &str) -> Option<&'static [Attr]> {
    (kind == Kind::User && urn.eq_ignore_ascii_case(ENTERPRISE)).then_some(ENTERPRISE_ATTRS)
}

fn meta(base: &str, resource_type: &str, path: &str) -> Value {
    json!({ "resourceType": resource_type, "location": format!("{base}/{path}") })
}

pub(super) fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [CONFIG],
        "documentationUri": "https://www.rfc-editor.org/rfc/rfc7644",
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_RESULTS },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a bearer token in the Authorization header",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
            "primary": true,
        }],
        "meta": meta(base, "ServiceProviderConfig", "ServiceProviderConfig"),
    })
}

pub(super) fn resource_type(kind: Kind, base: &str) -> Value {
    let name = kind.as_str();
    let mut doc = json!({
        "schemas": [RESOURCE_TYPE],
        "id": name,
        "name": name,
        "endpoint": format!("/{name}s"),
        "description": format!("{name}s, mapped onto the model's subjects"),
        "schema": urn(kind),
        "meta": meta(base, "ResourceType", &format!("ResourceTypes/{name}")),
    });
    if let (Kind::User, Some(obj)) = (kind, doc.as_object_mut()) {
        obj.insert(
            "schemaExtensions".into(),
            json!([{ "schema": ENTERPRISE, "required": false }]),
        );
    }
    doc
}

pub(super) fn resource_types(base: &str) -> Vec<Value> {
    vec![
        resource_type(Kind::User, base),
        resource_type(Kind::Group, base),
    ]
}

const SCHEMAS: [(&str, &str, &str, &[Attr]); 3] = [
    (USER, "User", "User Account", USER_ATTRS),
    (GROUP, "Group", "Group", GROUP_ATTRS),
    (
        ENTERPRISE,
        "EnterpriseUser",
        "Enterprise User",
        ENTERPRISE_ATTRS,
    ),
];

pub(super) fn schemas(base: &str) -> Vec<Value> {
    SCHEMAS
        .iter()
        .map(|(id, name, desc, list)| schema_doc(id, name, desc, list, base))
        .collect()
}

/// The schema named by its URN (case-insensitive).
pub(super) fn schema(id: &str, base: &str) -> Option<Value> {
    SCHEMAS
        .iter()
        .find(|(urn, ..)| urn.eq_ignore_ascii_case(id))
        .map(|(id, name, desc, list)| schema_doc(id, name, desc, list, base))
}

fn schema_doc(id: &str, name: &str, desc: &str, list: &[Attr], base: &str) -> Value {
    json!({
        "schemas": [SCHEMA],
        "id": id,
        "name": name,
        "description": desc,
        "attributes": list.iter().map(attr_doc).collect::<Vec<_>>(),
        "meta": meta(base, "Schema", &format!("Schemas/{id}")),
    })
}

fn attr_doc(at: &Attr) -> Value {
    let ty = match at.ty {
        Ty::Str => "string",
        Ty::Bool => "boolean",
        Ty::Complex => "complex",
        Ty::Ref => "reference",
    };
    let mutability = match at.mutability {
        Mutability::ReadWrite => "readWrite",
        Mutability::ReadOnly => "readOnly",
        Mutability::Immutable => "immutable",
        Mutability::WriteOnly => "writeOnly",
    };
    let returned = if at.mutability == Mutability::WriteOnly {
        "never"
    } else {
        "default"
    };
    let mut doc = json!({
        "name": at.name,
        "type": ty,
        "multiValued": at.multi,
        "required": at.required,
        "caseExact": at.case_exact,
        "mutability": mutability,
        "returned": returned,
        "uniqueness": if at.unique { "server" } else { "none" },
    });
    if let Some(obj) = doc.as_object_mut() {
        if !at.sub.is_empty() {
            let sub: Vec<Value> = at.sub.iter().map(attr_doc).collect();
            obj.insert("subAttributes".into(), Value::from(sub));
        }
        if !at.refs.is_empty() {
            obj.insert("referenceTypes".into(), json!(at.refs));
        }
        if !at.canon.is_empty() {
            obj.insert("canonicalValues".into(), json!(at.canon));
        }
    }
    doc
}
