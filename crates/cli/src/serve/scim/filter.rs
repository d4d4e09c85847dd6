//! Filters (RFC 7644 section 3.4.2.2) in the subset identity providers send: equalities
//! `attr eq value`, joined by `and`. Anything else is refused with `invalidFilter`, naming what.
//! The same reader serves the filters of list requests and those inside PATCH paths
//! (`members[value eq "..."]`).

use serde_json::{Map, Value};

use super::schema::{self, Attr};
use super::{get_ci, short, Error, Kind, Res};

/// An attribute path's keys and whether its values compare case-sensitively.
pub(super) type Resolved = (Vec<String>, bool);

/// One `path eq value`.
#[derive(Debug, Clone)]
pub(super) struct Term {
    /// The keys from where the filter applies (a resource, or an element of a multi-valued
    /// attribute) to the compared values; arrays on the way are searched element by element.
    pub keys: Vec<String>,
    pub case_exact: bool,
    pub value: Value,
}

/// Terms that must all hold.
#[derive(Debug, Clone)]
pub(super) struct Filter(pub Vec<Term>);

enum Tok {
    Word(String),
    Lit(Value),
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::bad("invalidFilter", detail)
}

fn tokens(text: &str) -> Res<Vec<Tok>> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut escaped = false;
            let end = chars.by_ref().find_map(|(j, d)| {
                let closes = d == '"' && !escaped;
                escaped = d == '\\' && !escaped;
                closes.then_some(j)
            });
            let lit = end
                .and_then(|end| text.get(start..=end))
                .ok_or_else(|| invalid("a string is not closed"))?;
            let v = serde_json::from_str(lit)
                .map_err(|_| invalid(format!("{} is not a valid string", short(lit))))?;
            out.push(Tok::Lit(v));
        } else if matches!(c, '(' | ')' | '[' | ']') {
            return Err(invalid(
                "parentheses and value filters in brackets are not supported here",
            ));
        } else {
            let mut end = text.len();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_whitespace() || matches!(d, '"' | '(' | ')' | '[' | ']') {
                    end = j;
                    break;
                }
                chars.next();
            }
            let word = text.get(start..end).unwrap_or_default();
            out.push(match serde_json::from_str::<Value>(word) {
                Ok(v) if !v.is_object() && !v.is_array() => Tok::Lit(v),
                _ => Tok::Word(word.to_string()),
            });
        }
    }
    Ok(out)
}

/// Reads a filter; `resolve` turns each attribute path into its keys and case sensitivity.
pub(super) fn parse(text: &str, resolve: &dyn Fn(&str) -> Res<Resolved>) -> Res<Filter> {
    let mut toks = tokens(text)?.into_iter();
    let mut terms = Vec::new();
    loop {
        let path = match toks.next() {
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("not") => {
                return Err(invalid(
                    "`not` is not supported (only `eq`, joined by `and`)",
                ))
            }
            Some(Tok::Word(w)) => w,
            Some(Tok::Lit(v)) => return Err(invalid(format!("expected an attribute, not {v}"))),
            None => return Err(invalid("the filter is empty or ends after `and`")),
        };
        let op = match toks.next() {
            Some(Tok::Word(w)) => w.to_ascii_lowercase(),
            _ => {
                return Err(invalid(format!(
                    "expected an operator after `{}`",
                    short(&path)
                )))
            }
        };
        match op.as_str() {
            "eq" => {}
            "ne" | "co" | "sw" | "ew" | "gt" | "ge" | "lt" | "le" | "pr" => {
                return Err(invalid(format!(
                    "the operator `{op}` is not supported (only `eq`)"
                )))
            }
            _ => return Err(invalid(format!("unknown operator `{}`", short(&op)))),
        }
        let value = match toks.next() {
            Some(Tok::Lit(v)) => v,
            Some(Tok::Word(w)) => {
                return Err(invalid(format!(
                    "expected a value after `eq`, not `{}` (strings go in double quotes)",
                    short(&w)
                )))
            }
            None => return Err(invalid("expected a value after `eq`")),
        };
        let (keys, case_exact) = resolve(&path)?;
        terms.push(Term {
            keys,
            case_exact,
            value,
        });
        match toks.next() {
            None => return Ok(Filter(terms)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("and") => {}
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("or") => {
                return Err(invalid("`or` is not supported (only `and`)"))
            }
            Some(_) => return Err(invalid("expected `and` or the end of the filter")),
        }
    }
}

/// The keys and case sensitivity of an attribute path of a resource, for a list's filter:
/// `userName`, `name.familyName`, `emails.value`, `id`, `meta.created`, a path with its schema
/// URN in front (`urn:ietf:params:scim:schemas:core:2.0:User:userName`), or an extension's
/// attribute (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`).
pub(super) fn resource_path(kind: Kind, path: &str) -> Res<Resolved> {
    let core = strip_urn(path, schema::urn(kind));
    let p = core.unwrap_or(path);
    if core.is_none() && p.len() > 4 && p.get(..4).is_some_and(|u| u.eq_ignore_ascii_case("urn:")) {
        let (urn, rest) = p.rsplit_once(':').unwrap_or((p, ""));
        let mut keys = vec![urn.to_string()];
        let mut case_exact = false;
        let mut list = schema::extension(kind, urn);
        for part in rest.split('.') {
            let at = list.and_then(|l| schema::find_in(l, part));
            keys.push(at.map_or(part, |at| at.name).to_string());
            case_exact = at.is_some_and(|at| at.case_exact);
            list = at.map(|at| at.sub);
        }
        return Ok((keys, case_exact));
    }
    let mut parts = p.split('.');
    let top = parts.next().unwrap_or_default();
    let sub = parts.next();
    if parts.next().is_some() {
        return Err(invalid(format!("`{}` is too deep a path", short(p))));
    }
    if top.eq_ignore_ascii_case("id") && sub.is_none() {
        return Ok((vec!["id".into()], true));
    }
    if top.eq_ignore_ascii_case("meta") {
        let keys = ["meta", sub.unwrap_or_default()].map(String::from).to_vec();
        return Ok((keys, true));
    }
    let at = schema::find(kind, top)
        .filter(|at| at.mutability != schema::Mutability::WriteOnly)
        .ok_or_else(|| {
            invalid(format!(
                "{}s have no attribute `{}`",
                kind.as_str(),
                short(top)
            ))
        })?;
    let Some(sub) = sub else {
        return Ok((vec![at.name.to_string()], at.case_exact));
    };
    let s = schema::find_in(at.sub, sub).ok_or_else(|| {
        invalid(format!(
            "`{}` has no sub-attribute `{}`",
            at.name,
            short(sub)
        ))
    })?;
    Ok((vec![at.name.to_string(), s.name.to_string()], s.case_exact))
}

/// The keys and case sensitivity of a sub-attribute of `parent`, inside a value filter.
pub(super) fn sub_path(parent: Option<&'static Attr>, path: &str) -> Res<Resolved> {
    let known = parent.and_then(|p| schema::find_in(p.sub, path));
    let name = known.map_or(path, |at| at.name);
    if name.is_empty() || name.contains('.') {
        return Err(invalid(format!("`{}` is not a sub-attribute", short(path))));
    }
    Ok((
        vec![name.to_string()],
        known.is_some_and(|at| at.case_exact),
    ))
}

/// `path` without `urn` and its colon in front, when it starts with them.
pub(super) fn strip_urn<'p>(path: &'p str, urn: &str) -> Option<&'p str> {
    let head = path.get(..urn.len())?;
    let rest = path.get(urn.len()..)?;
    if head.eq_ignore_ascii_case(urn) {
        rest.strip_prefix(':')
    } else {
        None
    }
}

impl Filter {
    pub fn matches(&self, v: &Value) -> bool {
        self.0.iter().all(|t| {
            let mut found = Vec::new();
            collect(v, &t.keys, &mut found);
            found.iter().any(|x| equal(x, &t.value, t.case_exact))
        })
    }

    /// The element a filter of equalities on single keys describes (`type eq "work"` gives
    /// `{"type": "work"}`), to add when none matches.
    pub fn element(&self) -> Option<Map<String, Value>> {
        let mut out = Map::new();
        for t in &self.0 {
            let [key] = t.keys.as_slice() else {
                return None;
            };
            out.insert(key.clone(), t.value.clone());
        }
        Some(out)
    }
}

fn collect<'v>(v: &'v Value, keys: &[String], out: &mut Vec<&'v Value>) {
    match (v, keys.split_first()) {
        (Value::Array(items), _) => items.iter().for_each(|i| collect(i, keys, out)),
        (Value::Object(m), Some((k, rest))) => {
            if let Some(x) = get_ci(m, k) {
                collect(x, rest, out);
            }
        }
        (_, None) => out.push(v),
        _ => {}
    }
}

fn equal(a: &Value, b: &Value, case_exact: bool) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) if !case_exact => x.to_lowercase() == y.to_lowercase(),
        _ => a == b,
    }
}
