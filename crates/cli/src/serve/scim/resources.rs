//! The requests on `/Users` and `/Groups`: list, get, create, replace, patch and delete, and
//! how each write comes to directory rows and model edits.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::map::{self, Edit};
use super::rep::{self, Projection, View};
use super::schema::{self, MAX_RESULTS};
use super::{
    filter, get_ci, patch, short, Ctx, DirChange, Error, Kind, Outcome, Reply, Request, Res,
    Resource,
};

/// Resources per page when the client does not say.
const DEFAULT_COUNT: i64 = 100;

fn param<'r>(req: &'r Request<'_>, name: &str) -> Option<&'r str> {
    req.query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn int_param(req: &Request<'_>, name: &str, default: i64) -> Res<i64> {
    param(req, name).map_or(Ok(default), |v| {
        v.trim()
            .parse()
            .map_err(|_| Error::bad("invalidValue", format!("`{name}` must be an integer")))
    })
}

fn find<'d>(ctx: &Ctx<'d>, kind: Kind, id: &str) -> Res<&'d Resource> {
    ctx.directory
        .map(kind)
        .get(id)
        .ok_or_else(|| Error::not_found(format!("no {} has the id `{}`", kind.as_str(), short(id))))
}

fn reply(status: u16, body: Option<Value>, etag: Option<String>) -> Reply {
    Reply {
        status,
        body,
        etag,
        location: None,
        allow: None,
    }
}

pub(super) fn list(kind: Kind, req: &Request<'_>, ctx: &Ctx<'_>) -> Res<Outcome> {
    let filter = param(req, "filter")
        .map(|f| filter::parse(f, &|p| filter::resource_path(kind, p)))
        .transpose()?;
    let start = int_param(req, "startIndex", 1)?.max(1);
    let count = int_param(req, "count", DEFAULT_COUNT)?.clamp(0, MAX_RESULTS as i64);
    let proj = Projection::from_query(&req.query);
    let view = View::new(ctx.base, ctx.directory, kind);
    let found: Vec<_> = ctx
        .directory
        .map(kind)
        .iter()
        .filter(|(_, r)| filter.as_ref().is_none_or(|f| f.matches(&r.json)))
        .collect();
    let page: Vec<Value> = found
        .iter()
        .skip(usize::try_from(start - 1).unwrap_or(usize::MAX))
        .take(usize::try_from(count).unwrap_or_default())
        .map(|(id, r)| view.render(kind, id, r, &proj))
        .collect();
    let body = json!({
        "schemas": [schema::LIST],
        "totalResults": found.len(),
        "startIndex": start,
        "itemsPerPage": page.len(),
        "Resources": page,
    });
    Ok(Outcome::Reply(reply(200, Some(body), None)))
}

pub(super) fn get(kind: Kind, id: &str, req: &Request<'_>, ctx: &Ctx<'_>) -> Res<Outcome> {
    let r = find(ctx, kind, id)?;
    let view = View::new(ctx.base, ctx.directory, kind);
    let body = view.render(kind, id, r, &Projection::from_query(&req.query));
    Ok(Outcome::Reply(reply(
        200,
        Some(body),
        Some(rep::etag(r.version)),
    )))
}

fn body(req: &Request<'_>) -> Res<Value> {
    serde_json::from_slice(req.body)
        .map_err(|e| Error::bad("invalidSyntax", format!("the body is not valid JSON: {e}")))
}

/// `If-Match` (RFC 7644 section 3.14): the resource's current ETag, one of a list, or `*`.
fn check_if_match(req: &Request<'_>, r: &Resource) -> Res<()> {
    let Some(want) = req.if_match else {
        return Ok(());
    };
    let current = format!("\"{}\"", r.version);
    let ok = want
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == current);
    if ok {
        return Ok(());
    }
    Err(Error::new(
        412,
        format!(
            "the resource has changed: its version is {}",
            rep::etag(r.version)
        ),
    ))
}

pub(super) fn create(kind: Kind, req: &Request<'_>, ctx: &mut Ctx<'_>) -> Res<Outcome> {
    let rep = rep::read(kind, body(req)?)?;
    let id = (ctx.new_id)();
    if ctx.directory.map(kind).contains_key(&id) {
        return Err(Error::new(500, "a fresh resource id is already taken"));
    }
    write(kind, &id, None, rep, ctx)
}

pub(super) fn replace(kind: Kind, id: &str, req: &Request<'_>, ctx: &Ctx<'_>) -> Res<Outcome> {
    let old = find(ctx, kind, id)?;
    check_if_match(req, old)?;
    let rep = rep::read(kind, body(req)?)?;
    write(kind, id, Some(old), rep, ctx)
}

pub(super) fn patch(kind: Kind, id: &str, req: &Request<'_>, ctx: &Ctx<'_>) -> Res<Outcome> {
    let old = find(ctx, kind, id)?;
    check_if_match(req, old)?;
    let ops = patch::parse(body(req)?)?;
    let mut work = rep::editable(&old.json);
    patch::apply(kind, &mut work, ops)?;
    let rep = rep::read(kind, Value::Object(work))?;
    write(kind, id, Some(old), rep, ctx)
}

/// A member's kind and subject id; `this` is the group being written (it may not contain
/// itself, which the cycle check reports).
fn member(
    ctx: &Ctx<'_>,
    this: (&str, &str),
    m: &Map<String, Value>,
) -> Res<(String, Kind, String)> {
    let value = get_ci(m, "value")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if value.is_empty() {
        return Err(Error::bad(
            "invalidValue",
            "each member needs a `value`: a User's or Group's id",
        ));
    }
    let (kind, subject) = if value == this.0 {
        (Kind::Group, this.1.to_string())
    } else if let Some(u) = ctx.directory.users.get(value) {
        (Kind::User, stored_subject(ctx, Kind::User, u)?)
    } else if let Some(g) = ctx.directory.groups.get(value) {
        (Kind::Group, stored_subject(ctx, Kind::Group, g)?)
    } else {
        return Err(Error::bad(
            "invalidValue",
            format!(
                "member `{}` is neither a User nor a Group here",
                short(value)
            ),
        ));
    };
    match get_ci(m, "type").and_then(Value::as_str) {
        Some(t) if !t.eq_ignore_ascii_case(kind.as_str()) => Err(Error::bad(
            "invalidValue",
            format!(
                "member `{}` is a {}, not a {}",
                short(value),
                kind.as_str(),
                short(t)
            ),
        )),
        _ => Ok((value.to_string(), kind, subject)),
    }
}

fn stored_subject(ctx: &Ctx<'_>, kind: Kind, r: &Resource) -> Res<String> {
    let empty = Map::new();
    map::subject(kind, r.json.as_object().unwrap_or(&empty), ctx.group_id)
}

/// The member subjects of a stored group (members no longer found are skipped).
fn stored_members(ctx: &Ctx<'_>, json: &Value) -> BTreeSet<String> {
    rep::members(json)
        .filter_map(|m| member(ctx, ("", ""), m).ok())
        .map(|(_, _, s)| s)
        .collect()
}

fn active(rep: &Map<String, Value>) -> bool {
    rep.get("active").and_then(Value::as_bool) != Some(false)
}

/// Another resource of the kind that already has the name this one claims (409 uniqueness).
fn check_unique(kind: Kind, id: &str, rep: &Map<String, Value>, ctx: &Ctx<'_>) -> Res<()> {
    let (attr, case_exact) = match (kind, ctx.group_id) {
        (Kind::User, _) => ("userName", false),
        (Kind::Group, super::GroupIdFrom::DisplayName) => ("displayName", false),
        (Kind::Group, super::GroupIdFrom::ExternalId) => ("externalId", true),
    };
    let Some(name) = rep.get(attr).and_then(Value::as_str) else {
        return Ok(());
    };
    let same = |other: &str| {
        if case_exact {
            other == name
        } else {
            other.to_lowercase() == name.to_lowercase()
        }
    };
    let taken = ctx.directory.map(kind).iter().any(|(other, r)| {
        other != id && r.json.get(attr).and_then(Value::as_str).is_some_and(same)
    });
    if taken {
        return Err(Error {
            status: 409,
            scim_type: Some("uniqueness"),
            detail: format!("another {} has the {attr} `{}`", kind.as_str(), short(name)),
            allow: None,
        });
    }
    Ok(())
}

/// A create, replace or patch: the new representation `rep` of resource `id`.
fn write(
    kind: Kind,
    id: &str,
    old: Option<&Resource>,
    mut rep: Map<String, Value>,
    ctx: &Ctx<'_>,
) -> Res<Outcome> {
    check_unique(kind, id, &rep, ctx)?;
    let subject = map::subject(kind, &rep, ctx.group_id)?;
    let old_rep = old.map(|o| rep::editable(&o.json));
    let old_subject = old_rep
        .as_ref()
        .and_then(|r| map::subject(kind, r, ctx.group_id).ok());
    let mut edit = Edit::new(ctx.model);
    if let Some(o) = &old_subject {
        edit.rename(o, &subject)?;
    }
    match kind {
        Kind::User => match (old_rep.as_ref().map(active), active(&rep)) {
            (_, false) => edit.suspend(&subject)?,
            (None | Some(false), true) => edit.unsuspend(&subject)?,
            (Some(true), true) => {}
        },
        Kind::Group => {
            let mut stored = Vec::new();
            let mut now = BTreeSet::new();
            let list = rep.get("members").and_then(Value::as_array);
            for m in list.into_iter().flatten().filter_map(Value::as_object) {
                let (value, k, s) = member(ctx, (id, &subject), m)?;
                if now.insert(s) {
                    stored.push(json!({ "value": value, "type": k.as_str() }));
                }
            }
            let before = old
                .map(|o| stored_members(ctx, &o.json))
                .unwrap_or_default();
            for gone in before.difference(&now) {
                edit.remove_membership(gone, &subject)?;
            }
            for new in now.difference(&before) {
                edit.add_membership(new, &subject)?;
            }
            if rep.contains_key("members") {
                rep.insert("members".into(), Value::from(stored));
            }
        }
    }
    let (model, ops) = edit.finish()?;
    let view = View::new(ctx.base, ctx.directory, kind);
    if let (Some(o), None) = (old, &model) {
        if old_rep.as_ref() == Some(&rep) {
            let body = view.render(kind, id, o, &Projection::default());
            return Ok(Outcome::Reply(reply(
                200,
                Some(body),
                Some(rep::etag(o.version)),
            )));
        }
    }
    let now = rep::timestamp(ctx.now_ms);
    let created = old
        .and_then(|o| o.json.pointer("/meta/created").cloned())
        .unwrap_or_else(|| Value::from(now.as_str()));
    rep.insert("id".into(), Value::from(id));
    rep.insert(
        "meta".into(),
        json!({ "resourceType": kind.as_str(), "created": created, "lastModified": now }),
    );
    let resource = Resource {
        json: Value::Object(rep),
        version: old.map_or(1, |o| o.version.saturating_add(1)),
    };
    let body = view.render(kind, id, &resource, &Projection::default());
    let reply = Reply {
        status: if old.is_some() { 200 } else { 201 },
        body: Some(body),
        etag: Some(rep::etag(resource.version)),
        location: old.is_none().then(|| view.location(kind, id)),
        allow: None,
    };
    let changes = vec![DirChange::Put {
        kind,
        id: id.to_string(),
        resource,
    }];
    Ok(Outcome::Write {
        model,
        ops,
        changes,
        reply,
    })
}

pub(super) fn delete(kind: Kind, id: &str, req: &Request<'_>, ctx: &Ctx<'_>) -> Res<Outcome> {
    let old = find(ctx, kind, id)?;
    check_if_match(req, old)?;
    let mut edit = Edit::new(ctx.model);
    if let Ok(subject) = stored_subject(ctx, kind, old) {
        edit.remove_subject(&subject)?;
        if kind == Kind::User {
            edit.suspend(&subject)?;
        }
    }
    let (model, ops) = edit.finish()?;
    let mut changes = vec![DirChange::Delete {
        kind,
        id: id.to_string(),
    }];
    let now = rep::timestamp(ctx.now_ms);
    for (gid, g) in &ctx.directory.groups {
        let holds = |m: &Value| m.get("value").and_then(Value::as_str) == Some(id);
        let Some(list) = g.json.get("members").and_then(Value::as_array) else {
            continue;
        };
        if gid == id || !list.iter().any(holds) {
            continue;
        }
        let mut json = g.json.clone();
        if let Some(obj) = json.as_object_mut() {
            let kept: Vec<Value> = list.iter().filter(|m| !holds(m)).cloned().collect();
            obj.insert("members".into(), Value::from(kept));
        }
        if let Some(meta) = json.get_mut("meta").and_then(Value::as_object_mut) {
            meta.insert("lastModified".into(), Value::from(now.as_str()));
        }
        changes.push(DirChange::Put {
            kind: Kind::Group,
            id: gid.clone(),
            resource: Resource {
                json,
                version: g.version.saturating_add(1),
            },
        });
    }
    Ok(Outcome::Write {
        model,
        ops,
        changes,
        reply: reply(204, None, None),
    })
}
