//! Representations: reading a client's User or Group (checked against the schema, attribute
//! names in their schema's case, read-only attributes and passwords dropped), and rendering a
//! stored one (`meta`, a user's `groups`, members' `display` and `$ref`, `attributes` and
//! `excludedAttributes`).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::schema::{self, Attr, Mutability, Ty};
use super::{get_ci, short, Directory, Error, Kind, Res, Resource};

/// Reads the representation a client sent (a create, a replace, or a patched resource).
pub(super) fn read(kind: Kind, body: Value) -> Res<Map<String, Value>> {
    let Value::Object(obj) = body else {
        return Err(Error::bad(
            "invalidSyntax",
            format!("a {} must be a JSON object", kind.as_str()),
        ));
    };
    let core = schema::urn(kind);
    let not_strings = || Error::bad("invalidSyntax", "`schemas` must be an array of strings");
    let given = match get_ci(&obj, "schemas") {
        Some(Value::Array(list)) => list,
        Some(_) => return Err(not_strings()),
        None => {
            return Err(Error::bad(
                "invalidSyntax",
                format!("`schemas` must list {core}"),
            ))
        }
    };
    let mut listed: Vec<String> = Vec::new();
    for s in given {
        let s = s.as_str().ok_or_else(not_strings)?;
        let s = if s.eq_ignore_ascii_case(core) {
            core
        } else {
            s
        };
        if !listed.iter().any(|l| l.eq_ignore_ascii_case(s)) {
            listed.push(s.to_string());
        }
    }
    if !listed.iter().any(|s| s == core) {
        return Err(Error::bad(
            "invalidSyntax",
            format!("`schemas` must list {core}"),
        ));
    }
    let mut out = Map::new();
    for (k, v) in obj {
        let skip = ["schemas", "id", "meta"]
            .iter()
            .any(|s| k.eq_ignore_ascii_case(s));
        if v.is_null() || skip {
            continue;
        }
        if let Some(at) = schema::find(kind, &k) {
            if matches!(at.mutability, Mutability::ReadOnly | Mutability::WriteOnly) {
                continue;
            }
            out.insert(at.name.to_string(), check(at, v, at.name)?);
        } else if let Some(urn) = listed.iter().find(|s| s.eq_ignore_ascii_case(&k)) {
            let Value::Object(ext) = v else {
                return Err(Error::bad(
                    "invalidSyntax",
                    format!("`{}` must be an object", short(urn)),
                ));
            };
            let ext = match schema::extension(kind, urn) {
                Some(list) => check_object(list, ext, urn)?,
                None => ext,
            };
            out.insert(urn.clone(), Value::Object(ext));
        } else {
            return Err(Error::bad(
                "invalidSyntax",
                format!(
                    "unknown attribute `{}`: not in the core {} schema, nor an extension listed \
                     in `schemas`",
                    short(&k),
                    kind.as_str()
                ),
            ));
        }
    }
    for at in schema::attrs(kind).iter().filter(|at| at.required) {
        if !out.contains_key(at.name) {
            return Err(Error::bad(
                "invalidValue",
                format!("`{}` is required", at.name),
            ));
        }
    }
    out.insert("schemas".into(), Value::from(listed));
    Ok(out)
}

fn check(at: &'static Attr, v: Value, path: &str) -> Res<Value> {
    if !at.multi {
        return single(at, v, path);
    }
    let items = match v {
        Value::Array(items) => items,
        v @ Value::Object(_) => vec![v],
        _ => {
            return Err(Error::bad(
                "invalidValue",
                format!("`{path}` must be an array"),
            ))
        }
    };
    let checked = items
        .into_iter()
        .filter(|i| !i.is_null())
        .map(|i| single(at, i, path));
    Ok(Value::Array(checked.collect::<Res<_>>()?))
}

fn single(at: &'static Attr, v: Value, path: &str) -> Res<Value> {
    let wrong =
        |what: &str| Error::bad("invalidValue", format!("`{}` must be {what}", short(path)));
    match (at.ty, v) {
        (Ty::Str | Ty::Ref, v @ Value::String(_)) | (Ty::Bool, v @ Value::Bool(_)) => Ok(v),
        (Ty::Bool, Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
        (Ty::Bool, Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
        (Ty::Complex, Value::Object(m)) => Ok(Value::Object(check_object(at.sub, m, path)?)),
        // A bare value for a complex attribute with a `value` (Entra ID sends `manager` so).
        (Ty::Complex, v @ Value::String(_)) if schema::find_in(at.sub, "value").is_some() => {
            Ok(Value::Object(Map::from_iter([("value".to_string(), v)])))
        }
        (Ty::Str | Ty::Ref, _) => Err(wrong("a string")),
        (Ty::Bool, _) => Err(wrong("true or false")),
        (Ty::Complex, _) => Err(wrong("an object")),
    }
}

/// Checks the known sub-attributes of an object and keeps the others as they are.
fn check_object(
    list: &'static [Attr],
    m: Map<String, Value>,
    path: &str,
) -> Res<Map<String, Value>> {
    let mut out = Map::new();
    for (k, v) in m {
        match schema::find_in(list, &k) {
            _ if v.is_null() => {}
            Some(sub) if sub.mutability == Mutability::ReadOnly => {}
            Some(sub) => {
                let v = check(sub, v, &format!("{path}.{}", sub.name))?;
                out.insert(sub.name.to_string(), v);
            }
            None => {
                out.insert(k, v);
            }
        }
    }
    Ok(out)
}

/// A stored representation as a client may edit it: without `id`, `meta` and `groups`.
pub(super) fn editable(json: &Value) -> Map<String, Value> {
    let mut m = json.as_object().cloned().unwrap_or_default();
    for k in ["id", "meta", "groups"] {
        m.remove(k);
    }
    m
}

/// Unix milliseconds as an RFC 3339 time in UTC.
pub(super) fn timestamp(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

/// What rendering needs: the endpoint's base, the directory, and for users the groups each
/// one is a direct member of.
pub(super) struct View<'a> {
    pub base: &'a str,
    pub dir: &'a Directory,
    member_of: BTreeMap<&'a str, Vec<&'a str>>,
}

impl<'a> View<'a> {
    pub fn new(base: &'a str, dir: &'a Directory, kind: Kind) -> Self {
        let mut member_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        if kind == Kind::User {
            for (gid, g) in &dir.groups {
                for m in members(&g.json) {
                    if let Some(v) = m.get("value").and_then(Value::as_str) {
                        member_of.entry(v).or_default().push(gid);
                    }
                }
            }
        }
        View {
            base,
            dir,
            member_of,
        }
    }

    fn display(&self, id: &str) -> Option<(Kind, &'a str)> {
        let (kind, r) = match (self.dir.users.get(id), self.dir.groups.get(id)) {
            (Some(u), _) => (Kind::User, u),
            (None, Some(g)) => (Kind::Group, g),
            (None, None) => return None,
        };
        let name = ["displayName", "userName"]
            .iter()
            .find_map(|k| r.json.get(k).and_then(Value::as_str))
            .unwrap_or_default();
        Some((kind, name))
    }

    /// The representation of a stored resource, as sent to clients.
    pub fn render(&self, kind: Kind, id: &str, r: &Resource, proj: &Projection) -> Value {
        let mut obj = r.json.as_object().cloned().unwrap_or_default();
        obj.insert("id".into(), Value::from(id));
        let mut meta = obj
            .get("meta")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        meta.insert("resourceType".into(), Value::from(kind.as_str()));
        meta.insert("location".into(), Value::from(self.location(kind, id)));
        meta.insert("version".into(), Value::from(etag(r.version)));
        obj.insert("meta".into(), Value::Object(meta));
        if let Some(list) = obj.get_mut("members").and_then(Value::as_array_mut) {
            for m in list.iter_mut().filter_map(Value::as_object_mut) {
                let value = m.get("value").and_then(Value::as_str).unwrap_or_default();
                if let Some((k, name)) = self.display(value) {
                    m.insert("$ref".into(), Value::from(self.location(k, value)));
                    m.insert("display".into(), Value::from(name));
                }
            }
        }
        let groups = self
            .member_of
            .get(id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if kind == Kind::User && !groups.is_empty() {
            let list = groups.iter().map(|g| {
                let mut e = Map::new();
                e.insert("value".into(), Value::from(*g));
                e.insert("$ref".into(), Value::from(self.location(Kind::Group, g)));
                if let Some((_, name)) = self.display(g) {
                    e.insert("display".into(), Value::from(name));
                }
                e.insert("type".into(), Value::from("direct"));
                Value::Object(e)
            });
            obj.insert("groups".into(), Value::Array(list.collect()));
        }
        proj.apply(kind, &mut obj);
        Value::Object(obj)
    }

    pub fn location(&self, kind: Kind, id: &str) -> String {
        format!("{}/{}s/{id}", self.base, kind.as_str())
    }
}

/// The `members` of a stored group.
pub(super) fn members(json: &Value) -> impl Iterator<Item = &Map<String, Value>> {
    json.get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

/// The attributes a read asked for (`attributes`) or left out (`excludedAttributes`).
#[derive(Debug, Default)]
pub(super) struct Projection {
    only: Option<Vec<String>>,
    except: Vec<String>,
}

impl Projection {
    pub fn from_query(query: &[(String, String)]) -> Projection {
        let list = |name: &str| {
            query
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .flat_map(|(_, v)| v.split(','))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        };
        let only = list("attributes");
        Projection {
            only: (!only.is_empty()).then_some(only),
            except: list("excludedAttributes"),
        }
    }

    fn apply(&self, kind: Kind, obj: &mut Map<String, Value>) {
        let core = schema::urn(kind);
        let always = |k: &str| k == "id" || k == "schemas";
        if let Some(only) = &self.only {
            obj.retain(|k, v| {
                let (whole, subs) = requested(only, core, k);
                if !always(k) && !whole {
                    keep_subs(v, &subs, true);
                }
                always(k) || whole || !subs.is_empty()
            });
        }
        obj.retain(|k, v| {
            let (whole, subs) = requested(&self.except, core, k);
            keep_subs(v, &subs, false);
            always(k) || !whole
        });
    }
}

/// Whether `names` asks for the attribute `key` as a whole, and which of its sub-attributes.
fn requested<'n>(names: &'n [String], core: &str, key: &str) -> (bool, Vec<&'n str>) {
    let mut whole = false;
    let mut subs = Vec::new();
    for n in names {
        let n = super::filter::strip_urn(n, core).unwrap_or(n);
        if n.eq_ignore_ascii_case(key) {
            whole = true;
        } else if n
            .get(..key.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(key))
        {
            if let Some(rest) = n.get(key.len()..).and_then(|r| r.strip_prefix(['.', ':'])) {
                subs.push(rest.split('.').next().unwrap_or_default());
            }
        }
    }
    (whole, subs)
}

/// Keeps (or drops) the sub-attributes `subs` of an object, or of each object of an array.
fn keep_subs(v: &mut Value, subs: &[&str], keep: bool) {
    if subs.is_empty() {
        return;
    }
    let filter = |m: &mut Map<String, Value>| {
        m.retain(|k, _| subs.iter().any(|s| s.eq_ignore_ascii_case(k)) == keep);
    };
    match v {
        Value::Object(m) => filter(m),
        Value::Array(items) => items
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .for_each(filter),
        _ => {}
    }
}
