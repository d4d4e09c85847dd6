//! The paths of PATCH operations (RFC 7644 section 3.5.2): `attr`, `attr.sub`,
//! `attr[filter]`, `attr[filter].sub`, each optionally behind its schema's URN, and an
//! extension's attributes behind the extension's URN. A path names an attribute of the
//! resource's schemas, or it is refused (`invalidPath`, `mutability` for read-only ones).

use serde_json::{Map, Value};

use super::filter::{self, Filter};
use super::schema::{self, Attr, Mutability};
use super::{get_ci, key_ci, short, Error, Kind, Res};

/// Where an operation applies.
pub(super) struct Target {
    /// The keys from the resource to the attribute (an extension's URN first for its
    /// attributes; a sub-attribute last when no value filter comes before it).
    pub keys: Vec<String>,
    pub multi: bool,
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter (`value` in `emails[type eq "work"].value`).
    pub sub: Option<String>,
    /// The extension to list in `schemas` when the operation adds to it.
    pub ext: Option<String>,
}

pub(super) fn bad_path(detail: String) -> Error {
    Error::bad("invalidPath", detail)
}

/// Reads a path against the resource `root` (whose `schemas` name its extensions).
pub(super) fn target(kind: Kind, root: &Map<String, Value>, path: &str) -> Res<Target> {
    let (ext, rest, list) = if let Some(rest) = filter::strip_urn(path, schema::urn(kind)) {
        (None, rest, Some(schema::attrs(kind)))
    } else if path
        .get(..4)
        .is_some_and(|u| u.eq_ignore_ascii_case("urn:"))
    {
        let mut known: Vec<String> = get_ci(root, "schemas")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect();
        if kind == Kind::User {
            known.push(schema::ENTERPRISE.to_string());
        }
        if let Some(c) = known.iter().find(|c| c.eq_ignore_ascii_case(path)) {
            let keys = vec![key_ci(root, c).unwrap_or_else(|| c.clone())];
            return Ok(Target {
                keys,
                multi: false,
                filter: None,
                sub: None,
                ext: Some(c.clone()),
            });
        }
        let found = known
            .iter()
            .filter_map(|c| filter::strip_urn(path, c).map(|r| (c, r)))
            .max_by_key(|(c, _)| c.len());
        let Some((c, rest)) = found else {
            return Err(bad_path(format!(
                "`{}` names no schema of this resource",
                short(path)
            )));
        };
        (Some(c.clone()), rest, schema::extension(kind, c))
    } else {
        (None, path, Some(schema::attrs(kind)))
    };
    let end = rest.find(['.', '[']).unwrap_or(rest.len());
    let name = rest.get(..end).unwrap_or_default();
    let mut tail = rest.get(end..).unwrap_or_default();
    let mut filter_text = None;
    if let Some(t) = tail.strip_prefix('[') {
        let close =
            closing(t).ok_or_else(|| bad_path(format!("`{}` has an unclosed `[`", short(path))))?;
        filter_text = t.get(..close);
        tail = t.get(close + 1..).unwrap_or_default();
    }
    let sub = match tail {
        "" => None,
        t => Some(
            t.strip_prefix('.')
                .filter(|s| !s.is_empty() && !s.contains(['.', '[', ']']))
                .ok_or_else(|| {
                    bad_path(format!(
                        "`{}` is not a path this service reads",
                        short(path)
                    ))
                })?,
        ),
    };
    if ext.is_none()
        && ["id", "meta", "schemas"]
            .iter()
            .any(|r| name.eq_ignore_ascii_case(r))
    {
        return Err(Error::bad(
            "mutability",
            format!("`{}` is read-only", short(name)),
        ));
    }
    let attr = match (list, &ext) {
        (Some(l), Some(_)) => schema::find_in(l, name),
        (Some(_), None) => schema::find(kind, name),
        (None, _) => None,
    };
    if attr.is_none() && list.is_some() {
        return Err(bad_path(format!(
            "`{}` is not an attribute of this resource",
            short(name)
        )));
    }
    if name.is_empty() {
        return Err(bad_path(format!("`{}` names no attribute", short(path))));
    }
    if attr.is_some_and(|a| a.mutability == Mutability::ReadOnly) {
        return Err(Error::bad(
            "mutability",
            format!("`{}` is read-only", short(name)),
        ));
    }
    let multi = attr.is_some_and(|a| a.multi);
    let mut keys: Vec<String> = ext
        .iter()
        .map(|c| key_ci(root, c).unwrap_or_else(|| c.clone()))
        .collect();
    keys.push(attr.map_or(name, |a| a.name).to_string());
    let sub = sub.map(|s| sub_name(attr, s));
    let Some(text) = filter_text else {
        if let Some(s) = sub {
            if multi {
                return Err(bad_path(format!(
                    "`{}` is multi-valued: select values with a filter, as in \
                     `emails[type eq \"work\"].value`",
                    short(name)
                )));
            }
            keys.push(s);
            return Ok(Target {
                keys,
                multi: false,
                filter: None,
                sub: None,
                ext,
            });
        }
        return Ok(Target {
            keys,
            multi,
            filter: None,
            sub: None,
            ext,
        });
    };
    if !multi && attr.is_some() {
        return Err(bad_path(format!(
            "`{}` is not multi-valued: it takes no filter",
            short(name)
        )));
    }
    let filter = filter::parse(text, &|p| filter::sub_path(attr, p))?;
    Ok(Target {
        keys,
        multi: true,
        filter: Some(filter),
        sub,
        ext,
    })
}

fn sub_name(attr: Option<&'static Attr>, s: &str) -> String {
    attr.and_then(|a| schema::find_in(a.sub, s))
        .map_or(s, |a| a.name)
        .to_string()
}

/// Where the `]` closing a value filter is, quoted strings aside.
fn closing(t: &str) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in t.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ']' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}
