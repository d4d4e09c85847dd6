//! A small tenant to drive [`handle`] with: it applies each write as the service would.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod discovery;
mod errors;
mod groups;
mod users;

use edge_authz::Model;
use serde_json::{json, Value};

use super::{handle, Ctx, Directory, GroupIdFrom, Outcome, Reply, Request};

const BASE: &str = "https://origin.example/scim/v2/acme";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// alice is in group:eng, which is in group:staff; both hold roles. mallory is suspended.
const MODEL: &str = r#"{
  "version": 1,
  "tenant": "acme",
  "actions": { "read": { "tier": "low" }, "write": { "tier": "standard" } },
  "roles": { "viewer": ["read"], "editor": ["read", "write"] },
  "resources": [{ "id": "org:acme" }, { "id": "doc:plan", "parent": "org:acme" }],
  "memberships": [
    { "member": "user:alice@acme.test", "group": "group:eng" },
    { "member": "group:eng", "group": "group:staff" }
  ],
  "assignments": [
    { "principal": "group:staff", "role": "viewer", "resource": "org:acme" },
    { "principal": "user:alice@acme.test", "role": "editor", "resource": "doc:plan" }
  ],
  "suspended": ["user:mallory"]
}"#;

struct Env {
    model: Option<Model>,
    dir: Directory,
    next: u64,
    now: u64,
    group_id: GroupIdFrom,
}

impl Env {
    fn new() -> Env {
        Env {
            model: Some(Model::from_json(MODEL).unwrap()),
            dir: Directory::default(),
            next: 0,
            now: 1_767_225_600_000,
            group_id: GroupIdFrom::DisplayName,
        }
    }

    fn empty() -> Env {
        Env {
            model: None,
            ..Env::new()
        }
    }

    fn model(&self) -> &Model {
        self.model.as_ref().unwrap()
    }

    /// The outcome of a request, without applying it.
    fn call(&mut self, method: &str, path: &str, body: &[u8], if_match: Option<&str>) -> Outcome {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        let req = Request {
            method,
            segments: path.split('/').collect(),
            query,
            body,
            if_match,
        };
        let next = &mut self.next;
        let mut new_id = || {
            *next += 1;
            format!("id-{next}")
        };
        let mut ctx = Ctx {
            model: self.model.as_ref(),
            directory: &self.dir,
            now_ms: self.now,
            base: BASE,
            group_id: self.group_id,
            new_id: &mut new_id,
        };
        handle(&req, &mut ctx)
    }

    /// Sends a request and applies its write, as the service does once it is committed. A write
    /// that says its operations is checked: they make its model from the current one, and the
    /// origin's patch of the kept epoch by them is the compiled model's epoch.
    fn raw(&mut self, method: &str, path: &str, body: &[u8], if_match: Option<&str>) -> Reply {
        self.now += 1000;
        match self.call(method, path, body, if_match) {
            Outcome::Reply(r) => r,
            Outcome::Write {
                model,
                ops,
                changes,
                reply,
            } => {
                if let Some(m) = model {
                    assert_ne!(
                        Some(&m),
                        self.model.as_ref(),
                        "a model that does not change"
                    );
                    let (whole, _) = m.prepare().expect("the new model compiles");
                    if let (Some(ops), Some(base)) = (ops, &self.model) {
                        patched_as_compiled(base, &ops, &m, &whole);
                    }
                    self.model = Some(m);
                }
                self.dir.apply(&changes);
                reply
            }
        }
    }

    fn send(&mut self, method: &str, path: &str, body: Value) -> Reply {
        self.raw(method, path, body.to_string().as_bytes(), None)
    }

    fn get(&mut self, path: &str) -> Reply {
        let out = self.call("GET", path, b"", None);
        match out {
            Outcome::Reply(r) => r,
            Outcome::Write { .. } => panic!("a read made a write: GET {path}"),
        }
    }

    /// Creates a user with `userName` and returns its id.
    fn user(&mut self, user_name: &str) -> String {
        let r = self.send(
            "POST",
            "Users",
            json!({ "schemas": [USER], "userName": user_name }),
        );
        assert_eq!(r.status, 201, "{:?}", r.body);
        id_of(&r)
    }

    /// Creates a group with `displayName` and members, and returns its id.
    fn group(&mut self, name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members.iter().map(|m| json!({ "value": m })).collect();
        let body = json!({ "schemas": [GROUP], "displayName": name, "members": members });
        let r = self.send("POST", "Groups", body);
        assert_eq!(r.status, 201, "{:?}", r.body);
        id_of(&r)
    }

    fn patch(&mut self, path: &str, ops: Value) -> Reply {
        self.send(
            "PATCH",
            path,
            json!({ "schemas": [PATCH_OP], "Operations": ops }),
        )
    }

    fn memberships(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self
            .model()
            .memberships
            .iter()
            .map(|m| (m.member.clone(), m.group.clone()))
            .collect();
        v.sort();
        v
    }

    fn suspended(&self, id: &str) -> bool {
        self.model().suspended.iter().any(|s| s == id)
    }

    fn principals(&self) -> Vec<&str> {
        self.model()
            .assignments
            .iter()
            .map(|a| a.principal.as_str())
            .collect()
    }
}

fn id_of(r: &Reply) -> String {
    r.body.as_ref().unwrap()["id"].as_str().unwrap().to_string()
}

fn body(r: &Reply) -> &Value {
    r.body.as_ref().expect("a body")
}

fn pair(member: &str, group: &str) -> (String, String) {
    (member.to_string(), group.to_string())
}

/// An error reply: its status, in the body as a string too, its `scimType`, and the Error
/// schema.
#[track_caller]
fn assert_error(r: &Reply, status: u16, scim_type: Option<&str>) {
    let b = body(r);
    assert_eq!(r.status, status, "{b}");
    assert_eq!(b["schemas"], json!([ERROR]), "{b}");
    assert_eq!(b["status"], json!(status.to_string()), "{b}");
    assert_eq!(b["scimType"].as_str(), scim_type, "{b}");
    assert!(b["detail"].as_str().is_some_and(|d| !d.is_empty()), "{b}");
    assert!(r.etag.is_none() && r.location.is_none());
}

/// `ops` make `model` from `base`, and patching `base`'s epoch with them gives `whole`, the
/// compiled `model`'s (when every operation is of a kind a patch takes).
fn patched_as_compiled(
    base: &Model,
    ops: &[crate::publish::changes::Op],
    model: &Model,
    whole: &edge_authz::Prepared,
) {
    use crate::publish::changes;
    let made = changes::apply(base, ops).expect("the write's operations apply");
    assert_eq!(&made, model, "the write's operations make its model");
    let (kept, _) = base.prepare().expect("the current model compiles");
    let net = changes::net_ops(kept.state(), model, ops).expect("SCIM's operations are patched");
    let patch = kept
        .patch(net)
        .expect("the patch takes a model that compiles");
    assert_eq!(patch.prepared().state(), whole.state());
    assert_eq!(patch.prepared().digest_hex(), whole.digest_hex());
}
