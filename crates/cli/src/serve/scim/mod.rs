//! SCIM 2.0 (RFC 7643, RFC 7644) for the origin service: Users and Groups mapped onto the model.
//!
//! A user is the subject `user:{userName}`; `active: false` suspends it; deleting it removes its
//! memberships and assignments and suspends it. A group is `group:{displayName}` (or
//! `group:{externalId}`, by configuration) and its `members` are memberships. Names that an id
//! cannot hold as they are (whitespace, control characters, `%`) are percent-encoded.
//!
//! This module is pure: [`handle`] takes a request, the current model and directory, and answers
//! either a reply alone (a read, an error) or a write: the new model (when it changes) and the
//! directory rows to store, which the service commits in one transaction with the epoch.
//!
//! What a write does to the model: a user created active is unsuspended (a user deleted and
//! created again comes back), an inactive user is always suspended, and a user turning active
//! again is unsuspended. A rename rewrites the subject in memberships, assignments and
//! suspensions. A group's members are kept in the directory (`{value, type}`, `display` and
//! `$ref` are added when read); the memberships follow the difference between the old and new
//! member lists, so memberships written by hand in the model for people SCIM does not manage
//! stay. Group memberships that would form a cycle are refused. A write that needs to change the
//! model before any model is published is refused (409); one that does not, succeeds.
//!
//! Served: `/Users` and `/Groups` (list with `filter`, `startIndex`, `count`, `attributes`,
//! `excludedAttributes`; create; and by id get, replace, patch, delete, with `If-Match`),
//! `/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas`. Filters are equalities
//! (`attr eq "value"`, joined by `and`). Not served: bulk, sorting, `/Me`, `.search`, passwords
//! (a given password is dropped, never stored).
//!
//! The files: `resources` answers the requests on Users and Groups, `rep` reads and renders their
//! representations, `patch` applies PATCH operations at the paths `path` reads, `filter` reads
//! filters, `map` derives subject ids and edits the model, `schema` holds the schemas and the
//! discovery documents.

use std::collections::BTreeMap;

use edge_authz::Model;
use serde_json::{json, Map, Value};

mod filter;
mod map;
mod patch;
mod path;
mod rep;
mod resources;
mod schema;
#[cfg(test)]
mod tests;

/// How a group's subject id is derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupIdFrom {
    /// `group:{displayName}`.
    DisplayName,
    /// `group:{externalId}` (a group without one is refused).
    ExternalId,
}

/// The two resource types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "User" => Some(Kind::User),
            "Group" => Some(Kind::Group),
            _ => None,
        }
    }
}

/// One stored resource: its full SCIM representation (with `id` and `meta`) and its version
/// (the ETag is `W/"{version}"`).
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub json: Value,
    pub version: u64,
}

/// Every SCIM resource of a tenant, by kind and id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Directory {
    pub users: BTreeMap<String, Resource>,
    pub groups: BTreeMap<String, Resource>,
}

/// A row to store (or remove) in the directory.
#[derive(Debug, Clone, PartialEq)]
pub enum DirChange {
    Put {
        kind: Kind,
        id: String,
        resource: Resource,
    },
    Delete {
        kind: Kind,
        id: String,
    },
}

impl Directory {
    /// Applies stored rows (after the service committed them).
    pub fn apply(&mut self, changes: &[DirChange]) {
        for c in changes {
            match c {
                DirChange::Put { kind, id, resource } => {
                    self.map_mut(*kind).insert(id.clone(), resource.clone());
                }
                DirChange::Delete { kind, id } => {
                    self.map_mut(*kind).remove(id);
                }
            }
        }
    }

    pub fn map(&self, kind: Kind) -> &BTreeMap<String, Resource> {
        match kind {
            Kind::User => &self.users,
            Kind::Group => &self.groups,
        }
    }

    pub fn map_mut(&mut self, kind: Kind) -> &mut BTreeMap<String, Resource> {
        match kind {
            Kind::User => &mut self.users,
            Kind::Group => &mut self.groups,
        }
    }
}

/// A SCIM request, as the service read it.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path's segments after `/scim/v2/{tenant}/` (e.g. `["Users"]`, `["Groups", id]`).
    pub segments: Vec<&'a str>,
    /// The query's pairs, percent-decoded.
    pub query: Vec<(String, String)>,
    pub body: &'a [u8],
    pub if_match: Option<&'a str>,
}

/// What the service needs besides the request.
pub struct Ctx<'a> {
    /// The tenant's current model (`None`: nothing published yet).
    pub model: Option<&'a Model>,
    pub directory: &'a Directory,
    /// Now, in Unix milliseconds (for `meta.created` / `meta.lastModified`).
    pub now_ms: u64,
    /// The absolute base of this tenant's SCIM endpoint, without a trailing slash
    /// (`http://127.0.0.1:8788/scim/v2/acme`), for `meta.location` and `Location`.
    pub base: &'a str,
    pub group_id: GroupIdFrom,
    /// A fresh resource id (unique, opaque).
    pub new_id: &'a mut dyn FnMut() -> String,
}

/// A reply: status, body (SCIM JSON, `application/scim+json`), and headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub etag: Option<String>,
    pub location: Option<String>,
    /// The methods a 405 names in its `Allow` header.
    pub allow: Option<String>,
}

/// What a request comes to. (Made once per request and moved: the size of the model inline does
/// not matter.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// A read, or an error: nothing to store.
    Reply(Reply),
    /// A write: the new model when the write changes it, the directory rows, and the reply to
    /// send once they are committed (and, for a revocation, enforced).
    Write {
        model: Option<Model>,
        /// The change API's operations that make `model` from the current one, when known:
        /// the origin patches its kept epoch with them instead of compiling `model`.
        ops: Option<Vec<crate::publish::changes::Op>>,
        changes: Vec<DirChange>,
        reply: Reply,
    },
}

/// Answers one SCIM request.
pub fn handle(req: &Request<'_>, ctx: &mut Ctx<'_>) -> Outcome {
    route(req, ctx).unwrap_or_else(|e| Outcome::Reply(e.reply()))
}

fn route(req: &Request<'_>, ctx: &mut Ctx<'_>) -> Res<Outcome> {
    let method = req.method.to_ascii_uppercase();
    let m = method.as_str();
    let segs: Vec<&str> = req
        .segments
        .iter()
        .copied()
        .filter(|s| !s.is_empty())
        .collect();
    let kind = segs
        .first()
        .and_then(|s| match s.to_ascii_lowercase().as_str() {
            "users" => Some(Kind::User),
            "groups" => Some(Kind::Group),
            _ => None,
        });
    if let Some(kind) = kind {
        return match (segs.get(1..).unwrap_or_default(), m) {
            ([], "GET") => resources::list(kind, req, ctx),
            ([], "POST") => resources::create(kind, req, ctx),
            ([], _) => Err(not_allowed(m, "GET, POST")),
            ([".search"], _) => Err(Error::new(
                501,
                "this service does not support .search: list with GET and a filter",
            )),
            ([id], "GET") => resources::get(kind, id, req, ctx),
            ([id], "PUT") => resources::replace(kind, id, req, ctx),
            ([id], "PATCH") => resources::patch(kind, id, req, ctx),
            ([id], "DELETE") => resources::delete(kind, id, req, ctx),
            ([_], _) => Err(not_allowed(m, "GET, PUT, PATCH, DELETE")),
            _ => Err(no_endpoint(&segs)),
        };
    }
    let first = segs.first().map(|s| s.to_ascii_lowercase());
    let base = ctx.base;
    let body = match (first.as_deref(), segs.get(1..).unwrap_or_default()) {
        (Some("me" | "bulk" | ".search"), _) => {
            return Err(Error::new(
                501,
                "this service does not support /Me, /Bulk or .search",
            ))
        }
        (Some("serviceproviderconfig"), []) => schema::service_provider_config(base),
        (Some("resourcetypes"), []) => list_of(schema::resource_types(base)),
        (Some("resourcetypes"), [name]) => Kind::parse(name)
            .map(|k| schema::resource_type(k, base))
            .ok_or_else(|| Error::not_found(format!("no resource type `{}`", short(name))))?,
        (Some("schemas"), []) => list_of(schema::schemas(base)),
        (Some("schemas"), [urn]) => schema::schema(urn, base)
            .ok_or_else(|| Error::not_found(format!("no schema `{}`", short(urn))))?,
        _ => return Err(no_endpoint(&segs)),
    };
    if m != "GET" {
        return Err(not_allowed(m, "GET"));
    }
    Ok(Outcome::Reply(Reply {
        status: 200,
        body: Some(body),
        etag: None,
        location: None,
        allow: None,
    }))
}

/// A ListResponse of every item (the discovery endpoints do not page).
fn list_of(items: Vec<Value>) -> Value {
    json!({
        "schemas": [schema::LIST],
        "totalResults": items.len(),
        "startIndex": 1,
        "itemsPerPage": items.len(),
        "Resources": items,
    })
}

/// A SCIM error (RFC 7644 section 3.12): its status, its `scimType` when one applies, and a
/// detail for people.
#[derive(Debug, Clone, PartialEq)]
struct Error {
    status: u16,
    scim_type: Option<&'static str>,
    detail: String,
    allow: Option<String>,
}

type Res<T> = Result<T, Error>;

impl Error {
    fn new(status: u16, detail: impl Into<String>) -> Self {
        Error {
            status,
            scim_type: None,
            detail: detail.into(),
            allow: None,
        }
    }

    /// A 400 with its `scimType`.
    fn bad(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Error {
            status: 400,
            scim_type: Some(scim_type),
            detail: detail.into(),
            allow: None,
        }
    }

    fn not_found(detail: impl Into<String>) -> Self {
        Error::new(404, detail)
    }

    fn reply(self) -> Reply {
        let mut body = json!({
            "schemas": [schema::ERROR],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(obj)) = (self.scim_type, body.as_object_mut()) {
            obj.insert("scimType".into(), Value::from(t));
        }
        Reply {
            status: self.status,
            body: Some(body),
            etag: None,
            location: None,
            allow: self.allow,
        }
    }
}

fn not_allowed(method: &str, allowed: &str) -> Error {
    Error {
        allow: Some(allowed.to_string()),
        ..Error::new(
            405,
            format!("{} is not allowed here (allowed: {allowed})", short(method)),
        )
    }
}

fn no_endpoint(segs: &[&str]) -> Error {
    Error::not_found(format!("no SCIM endpoint at `/{}`", short(&segs.join("/"))))
}

/// Client text quoted in a detail, cut to a readable length.
fn short(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", s.get(..end).unwrap_or_default())
}

/// The key of `map` that names `name`: SCIM attribute names are case-insensitive.
fn key_ci(map: &Map<String, Value>, name: &str) -> Option<String> {
    if map.contains_key(name) {
        return Some(name.to_string());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// The value of the attribute `name` of `map`, its case aside.
fn get_ci<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}
