//! PATCH (RFC 7644 section 3.5.2): the operations `add`, `replace` and `remove` (in any case, as
//! Entra ID sends `Replace`), with a path (`active`, `name.givenName`,
//! `emails[type eq "work"].value`, `members[value eq "..."]`, an extension's
//! `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`) or without one (the
//! value then holds attributes by name, each name read as a path). The patched resource is then
//! read like a replacement, so the same checks hold.

use serde_json::{Map, Value};

use super::filter::Filter;
use super::path::{bad_path, target, Target};
use super::schema;
use super::{get_ci, key_ci, short, Error, Kind, Res};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OpKind {
    Add,
    Replace,
    Remove,
}

/// One operation of a PatchOp message.
#[derive(Debug)]
pub(super) struct Op {
    op: OpKind,
    path: Option<String>,
    value: Option<Value>,
}

fn syntax(detail: impl Into<String>) -> Error {
    Error::bad("invalidSyntax", detail)
}

/// Reads a PatchOp message.
pub(super) fn parse(body: Value) -> Res<Vec<Op>> {
    let Value::Object(obj) = body else {
        return Err(syntax("a PATCH body must be a JSON object"));
    };
    let listed = get_ci(&obj, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|l| {
            l.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(schema::PATCH_OP))
            })
        });
    if !listed {
        return Err(syntax(format!("`schemas` must list {}", schema::PATCH_OP)));
    }
    let Some(Value::Array(list)) = get_ci(&obj, "Operations") else {
        return Err(syntax("`Operations` must be an array of operations"));
    };
    list.iter()
        .map(|o| {
            let o = o
                .as_object()
                .ok_or_else(|| syntax("each operation must be an object"))?;
            let name = get_ci(o, "op").and_then(Value::as_str).unwrap_or_default();
            let op = match name.to_ascii_lowercase().as_str() {
                "add" => OpKind::Add,
                "replace" => OpKind::Replace,
                "remove" => OpKind::Remove,
                _ => {
                    return Err(syntax(format!(
                        "unknown op `{}` (add, replace or remove)",
                        short(name)
                    )))
                }
            };
            let path = match get_ci(o, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) => Some(p.trim().to_string()).filter(|p| !p.is_empty()),
                Some(_) => return Err(syntax("`path` must be a string")),
            };
            Ok(Op {
                op,
                path,
                value: get_ci(o, "value").cloned(),
            })
        })
        .collect()
}

/// Applies the operations, in order, to a representation (without `id` and `meta`).
pub(super) fn apply(kind: Kind, root: &mut Map<String, Value>, ops: Vec<Op>) -> Res<()> {
    for Op { op, path, value } in ops {
        if let Some(p) = path {
            let t = target(kind, root, &p)?;
            edit(root, op, &t, value)?;
            continue;
        }
        if op == OpKind::Remove {
            return Err(Error::bad("noTarget", "`remove` needs a `path`"));
        }
        let Some(Value::Object(attrs)) = value else {
            return Err(Error::bad(
                "invalidValue",
                "without a `path`, `value` must be an object of attributes",
            ));
        };
        for (k, v) in attrs {
            // Read-only attributes are ignored here, as in a replacement (Okta sends `id`).
            let read_only = ["id", "meta", "schemas"]
                .iter()
                .any(|r| k.eq_ignore_ascii_case(r))
                || (kind == Kind::User && k.eq_ignore_ascii_case("groups"));
            if !read_only {
                let t = target(kind, root, &k)?;
                edit(root, op, &t, Some(v))?;
            }
        }
    }
    Ok(())
}

fn edit(root: &mut Map<String, Value>, op: OpKind, t: &Target, value: Option<Value>) -> Res<()> {
    let (op, value) = match (op, value) {
        (OpKind::Remove, v) => (OpKind::Remove, v),
        // A null value unassigns the attribute (RFC 7643 section 2.5).
        (_, Some(Value::Null)) => (OpKind::Remove, None),
        (op, Some(v)) => (op, Some(v)),
        (_, None) => {
            return Err(Error::bad(
                "invalidValue",
                "`add` and `replace` need a `value`",
            ))
        }
    };
    if let (Some(urn), false) = (&t.ext, op == OpKind::Remove) {
        list_schema(root, urn);
    }
    let Some((last, parents)) = t.keys.split_last() else {
        return Ok(());
    };
    let mut obj = root;
    for k in parents {
        let key = key_ci(obj, k).unwrap_or_else(|| k.clone());
        if op == OpKind::Remove && !obj.contains_key(&key) {
            return Ok(());
        }
        let slot = obj.entry(key).or_insert_with(|| Value::Object(Map::new()));
        if slot.is_null() {
            *slot = Value::Object(Map::new());
        }
        obj = slot
            .as_object_mut()
            .ok_or_else(|| bad_path(format!("`{}` is not a complex attribute", short(k))))?;
    }
    let key = key_ci(obj, last).unwrap_or_else(|| last.clone());
    match (&t.filter, value) {
        (None, value) => plain(obj, key, op, t.multi, value),
        (Some(f), value) => filtered(obj, key, op, f, t.sub.as_deref(), value),
    }
}

fn plain(
    obj: &mut Map<String, Value>,
    key: String,
    op: OpKind,
    multi: bool,
    value: Option<Value>,
) -> Res<()> {
    match (op, obj.get_mut(&key), value) {
        (OpKind::Remove, Some(Value::Array(list)), Some(v)) => {
            let gone = items(v);
            list.retain(|e| !gone.iter().any(|g| same_item(e, g)));
        }
        (OpKind::Remove, ..) => {
            obj.remove(&key);
        }
        (OpKind::Add, Some(Value::Array(list)), Some(v)) => {
            for item in items(v) {
                if !list.iter().any(|e| same_item(e, &item)) {
                    list.push(item);
                }
            }
        }
        (_, Some(Value::Object(cur)), Some(Value::Object(m))) if !multi => merge(cur, m),
        (_, _, Some(v)) if multi => {
            let mut list: Vec<Value> = Vec::new();
            for item in items(v) {
                if !list.iter().any(|e| same_item(e, &item)) {
                    list.push(item);
                }
            }
            obj.insert(key, Value::Array(list));
        }
        (_, _, Some(v)) => {
            obj.insert(key, v);
        }
        (_, _, None) => {}
    }
    Ok(())
}

fn filtered(
    obj: &mut Map<String, Value>,
    key: String,
    op: OpKind,
    f: &Filter,
    sub: Option<&str>,
    value: Option<Value>,
) -> Res<()> {
    let slot = match obj.get(&key) {
        Some(Value::Array(_)) => obj.get_mut(&key),
        Some(_) => return Err(bad_path(format!("`{}` is not multi-valued", short(&key)))),
        None if op == OpKind::Remove => return Ok(()),
        None => Some(
            obj.entry(key.clone())
                .or_insert_with(|| Value::Array(Vec::new())),
        ),
    };
    let Some(Value::Array(list)) = slot else {
        return Ok(());
    };
    let Some(v) = value.filter(|_| op != OpKind::Remove) else {
        match sub {
            None => list.retain(|e| !f.matches(e)),
            Some(s) => {
                for m in list
                    .iter_mut()
                    .filter(|e| f.matches(e))
                    .filter_map(Value::as_object_mut)
                {
                    if let Some(k) = key_ci(m, s) {
                        m.remove(&k);
                    }
                }
            }
        }
        return Ok(());
    };
    let not_object = || {
        Error::bad(
            "invalidValue",
            format!("`{}` holds objects: the value must be one", short(&key)),
        )
    };
    let mut hit = false;
    for e in list.iter_mut().filter(|e| f.matches(e)) {
        hit = true;
        match (sub, e) {
            (Some(s), Value::Object(m)) => {
                m.insert(key_ci(m, s).unwrap_or_else(|| s.to_string()), v.clone());
            }
            (None, Value::Object(m)) if op == OpKind::Add => {
                merge(m, v.as_object().cloned().ok_or_else(not_object)?);
            }
            (None, e) => *e = v.clone(),
            (Some(_), _) => return Err(not_object()),
        }
    }
    if hit {
        return Ok(());
    }
    // No value matches: add one that does (Entra ID adds `emails[type eq "work"].value` so).
    match (f.element(), sub, op) {
        (Some(mut el), Some(s), _) => {
            el.insert(s.to_string(), v);
            list.push(Value::Object(el));
        }
        (Some(mut el), None, OpKind::Add) => {
            merge(&mut el, v.as_object().cloned().ok_or_else(not_object)?);
            list.push(Value::Object(el));
        }
        _ => {
            return Err(Error::bad(
                "noTarget",
                format!("no value of `{}` matches the filter", short(&key)),
            ))
        }
    }
    Ok(())
}

/// The values an operation on a multi-valued attribute carries: an array's, or the one.
fn items(v: Value) -> Vec<Value> {
    match v {
        Value::Array(list) => list.into_iter().filter(|v| !v.is_null()).collect(),
        v => vec![v],
    }
}

/// Values of a multi-valued attribute are the same when their `value`s are (members by id).
fn same_item(a: &Value, b: &Value) -> bool {
    let value = |v: &Value| v.as_object().and_then(|m| get_ci(m, "value")).cloned();
    match (value(a), value(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn merge(cur: &mut Map<String, Value>, m: Map<String, Value>) {
    for (k, v) in m {
        let key = key_ci(cur, &k).unwrap_or(k);
        if v.is_null() {
            cur.remove(&key);
        } else {
            cur.insert(key, v);
        }
    }
}

fn list_schema(root: &mut Map<String, Value>, urn: &str) {
    let key = key_ci(root, "schemas").unwrap_or_else(|| "schemas".to_string());
    if let Some(list) = root
        .entry(key)
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
    {
        if !list
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)))
        {
            list.push(Value::from(urn));
        }
    }
}
