//! The request shapes the shells read, parsed here once so that every shell reads them the same
//! way and the fuzzers reach them natively (`fuzz/`):
//! - a request line of the command line's `check --requests` (docs/cli.md, "check");
//! - the bodies of the Worker's `POST /v1/{tenant}/check` and `check-many` (docs/http.md, "Checks");
//! - the time of the Worker's listings, `GET .../resources` and `.../subjects` (`now=` or
//!   `context=`).

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// JSON text as a [`Value`], refusing an object that names a key twice. `serde_json::Value`
/// keeps the last of two equal keys, while a gateway in front of an edge may read the first:
/// the two would decide different requests. Every JSON a shell reads goes through this.
pub fn strict_json(text: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let v = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// A JSON value whose objects have no duplicate key (see [`strict_json`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StrictValue(pub Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Strict.deserialize(d).map(StrictValue)
    }
}

/// Reads JSON for its syntax alone: every string decoded (a lone surrogate escape is not JSON),
/// nothing kept.
#[derive(Clone, Copy)]
struct Syntax;

impl<'de> DeserializeSeed<'de> for Syntax {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Syntax {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Syntax)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Syntax)?.is_some() {
            map.next_value_seed(Syntax)?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Strict)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if m.contains_key(&k) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key `{}`",
                    edge_authz::shorten(&k)
                )));
            }
            let v = map.next_value_seed(Strict)?;
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }
}

/// One request: subject, action, resource and the context as given (read by
/// [`crate::read_context`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestLine {
    pub subject: String,
    pub action: String,
    pub resource: String,
    pub context: Option<Value>,
}

/// A request line: `[s, a, r]` or `{"subject", "action", "resource", "context"?}`, nothing
/// else (None: the shell answers it `invalid_request`).
pub fn parse_request_line(line: &str) -> Option<RequestLine> {
    let v = strict_json(line.as_bytes()).ok()?;
    match v {
        Value::Array(items) => match items.as_slice() {
            [Value::String(s), Value::String(a), Value::String(r)] => Some(RequestLine {
                subject: s.clone(),
                action: a.clone(),
                resource: r.clone(),
                context: None,
            }),
            _ => None,
        },
        Value::Object(mut m) => {
            if m.keys()
                .any(|k| !matches!(k.as_str(), "subject" | "action" | "resource" | "context"))
            {
                return None;
            }
            let mut take = |k: &str| match m.remove(k) {
                Some(Value::String(s)) => Some(s),
                _ => None,
            };
            let (subject, action, resource) =
                (take("subject")?, take("action")?, take("resource")?);
            Some(RequestLine {
                subject,
                action,
                resource,
                context: m.remove("context"),
            })
        }
        _ => None,
    }
}

/// The body of `POST /v1/{tenant}/check`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    pub subject: String,
    pub action: String,
    pub resource: String,
    #[serde(default, deserialize_with = "strict_option")]
    pub context: Option<Value>,
}

fn strict_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Ok(match Strict.deserialize(d)? {
        Value::Null => None,
        v => Some(v),
    })
}

/// The body of `POST /v1/{tenant}/authorize`: a token instead of a subject.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeBody {
    pub token: String,
    pub action: String,
    pub resource: String,
    #[serde(default, deserialize_with = "strict_option")]
    pub context: Option<Value>,
}

/// The body of `POST /v1/{tenant}/check-many`.
#[derive(Debug)]
pub struct CheckManyBody {
    pub requests: Vec<(String, String, String)>,
    pub context: Option<Value>,
}

/// Why a body was refused: it is not JSON (`invalid_json`), JSON of the wrong shape
/// (`invalid_body`; a duplicated key is one), or a batch of more requests than allowed (counted
/// as they are read, so a refused batch is never held whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    NotJson(String),
    Shape(String),
    TooMany { limit: usize },
}

/// `invalid_json` when the body is not JSON at all (even where the parser met a wrong shape
/// first: `{"x":1}{`), else `invalid_body`.
fn body_error(bytes: &[u8], e: serde_json::Error) -> BodyError {
    // Where the parser stopped says little (a tuple too long reads as trailing characters): the
    // body is read again for its syntax alone.
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match Syntax.deserialize(&mut de).and_then(|()| de.end()) {
        Err(syntax) => BodyError::NotJson(syntax.to_string()),
        Ok(()) => BodyError::Shape(e.to_string()),
    }
}

/// A JSON body as `T`, read straight from the bytes (no intermediate value); an object that names
/// a field twice is refused.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    serde_json::from_slice(bytes).map_err(|e| body_error(bytes, e))
}

/// The body of `check-many`, refused with [`BodyError::TooMany`] as soon as its list passes
/// `max` requests.
pub fn parse_check_many(bytes: &[u8], max: usize) -> Result<CheckManyBody, BodyError> {
    let over = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let body = BatchSeed { max, over: &over }
        .deserialize(&mut de)
        .and_then(|b| de.end().map(|()| b));
    body.map_err(|e| {
        if over.get() {
            BodyError::TooMany { limit: max }
        } else {
            body_error(bytes, e)
        }
    })
}

struct BatchSeed<'a> {
    max: usize,
    over: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for BatchSeed<'_> {
    type Value = CheckManyBody;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<CheckManyBody, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BatchSeed<'_> {
    type Value = CheckManyBody;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with `requests` and an optional `context`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CheckManyBody, A::Error> {
        use serde::de::Error as _;
        let (mut requests, mut context) = (None, None);
        while let Some(k) = map.next_key::<String>()? {
            match k.as_str() {
                "requests" if requests.is_none() => {
                    requests = Some(map.next_value_seed(Requests {
                        max: self.max,
                        over: self.over,
                    })?)
                }
                "context" if context.is_none() => context = Some(map.next_value_seed(Strict)?),
                "requests" | "context" => {
                    return Err(A::Error::custom(format_args!("duplicate field `{k}`")))
                }
                _ => {
                    return Err(A::Error::unknown_field(
                        &edge_authz::shorten(&k),
                        &["requests", "context"],
                    ))
                }
            }
        }
        Ok(CheckManyBody {
            requests: requests.ok_or_else(|| A::Error::missing_field("requests"))?,
            context: context.filter(|c| !c.is_null()),
        })
    }
}

struct Requests<'a> {
    max: usize,
    over: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for Requests<'_> {
    type Value = Vec<(String, String, String)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Requests<'_> {
    type Value = Vec<(String, String, String)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of [subject, action, resource]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max).min(1024));
        while let Some(q) = seq.next_element()? {
            if out.len() == self.max {
                self.over.set(true);
                return Err(serde::de::Error::custom("too many requests"));
            }
            out.push(q);
        }
        Ok(out)
    }
}

/// The context of a listing from its query's `now` and `context` values (percent-decoded):
/// `now=<ms>`, or `context=<the JSON context of a check>`, or neither (the host's clock, no
/// epoch needed). Anything else, both included, is malformed (`Err(())`: `invalid_request`, as
/// for a check).
#[allow(
    clippy::result_unit_err,
    reason = "a malformed time has one meaning, an `invalid_request`, which the host gives"
)]
pub fn list_context(now: Option<&str>, context: Option<&str>) -> Result<crate::Context, ()> {
    let context = match (now, context) {
        (None, None) => return Ok(crate::Context::default()),
        (Some(n), None) => serde_json::json!({ "now": n.parse::<u64>().map_err(|_| ())? }),
        (None, Some(c)) => strict_json(c.as_bytes()).map_err(|_| ())?,
        (Some(_), Some(_)) => return Err(()),
    };
    crate::read_context(Some(&context))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        let l = parse_request_line(r#"["user:a","read","doc:x"]"#).unwrap();
        assert_eq!((l.subject.as_str(), l.context), ("user:a", None));
        let l = parse_request_line(
            r#"{"subject":"user:a","action":"read","resource":"doc:x","context":{"now":5}}"#,
        )
        .unwrap();
        assert_eq!(l.context, Some(serde_json::json!({"now": 5})));
        for bad in [
            "",
            "[",
            r#"["user:a","read"]"#,
            r#"["user:a","read","doc:x","extra"]"#,
            r#"["user:a","read",1]"#,
            r#"{"subject":"user:a","action":"read"}"#,
            r#"{"subject":"user:a","action":"read","resource":"doc:x","more":1}"#,
            r#"{"subject":1,"action":"read","resource":"doc:x"}"#,
            "42",
            "null",
        ] {
            assert_eq!(parse_request_line(bad), None, "{bad}");
        }
    }

    #[test]
    fn bodies() {
        let b: CheckBody = parse_body(br#"{"subject":"s","action":"a","resource":"r"}"#).unwrap();
        assert_eq!(b.subject, "s");
        let m = parse_check_many(br#"{"requests":[["s","a","r"]]}"#, 1).unwrap();
        assert_eq!((m.requests.len(), m.context), (1, None));
        let m = parse_check_many(br#"{"context":{"now":1},"requests":[]}"#, 1).unwrap();
        assert_eq!(m.context, Some(serde_json::json!({"now": 1})));
        assert!(matches!(
            parse_body::<CheckBody>(b"{"),
            Err(BodyError::NotJson(_))
        ));
        assert!(matches!(
            parse_body::<CheckBody>(br#"{"subject":"s","action":"a","resource":"r","x":1}"#),
            Err(BodyError::Shape(_))
        ));
        assert!(matches!(
            parse_check_many(br#"{"requests":[["s","a","r","x"]]}"#, 10),
            Err(BodyError::Shape(_))
        ));
        for bad in [
            &br#"{"requests":[["s","a"]]}"#[..],
            br#"{"requests":[["s","a","r"]],"x":1}"#,
            br#"{"context":{}}"#,
            br#"[]"#,
        ] {
            assert!(
                matches!(parse_check_many(bad, 10), Err(BodyError::Shape(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        for not_json in [
            &br#"{"requests":[["s","a","r"]]"#[..],
            br#"{"a":1}{"b":2}"#,
            br#"{"requests":[["s","a"]],}"#,
            br#"{"subject":"user:\ud800","action":"read","resource":"org:acme"}"#,
            // A number JSON cannot hold, as a context attribute: the body is not JSON.
            br#"{"subject":"s","action":"a","resource":"r","context":{"x":1e400}}"#,
        ] {
            assert!(matches!(
                parse_check_many(not_json, 10),
                Err(BodyError::NotJson(_))
            ));
            assert!(matches!(
                parse_body::<CheckBody>(not_json),
                Err(BodyError::NotJson(_))
            ));
        }
    }

    /// A key named twice could be read one way by a gateway and another by the edge: refused
    /// everywhere, at any depth.
    #[test]
    fn duplicate_keys() {
        for bad in [
            &br#"{"subject":"user:a","subject":"user:b","action":"read","resource":"doc:x"}"#[..],
            br#"{"subject":"user:a","action":"read","resource":"doc:x","context":{"now":1,"now":2}}"#,
        ] {
            assert!(matches!(
                parse_body::<CheckBody>(bad),
                Err(BodyError::Shape(_))
            ));
        }
        for bad in [
            &br#"{"requests":[],"requests":[["s","a","r"]]}"#[..],
            br#"{"requests":[],"context":{"a":{"b":1,"b":2}}}"#,
        ] {
            assert!(matches!(
                parse_check_many(bad, 10),
                Err(BodyError::Shape(_))
            ));
        }
        assert_eq!(
            parse_request_line(
                r#"{"subject":"user:a","subject":"user:b","action":"r","resource":"d:x"}"#
            ),
            None
        );
        assert_eq!(list_context(None, Some(r#"{"now":1,"now":2}"#)), Err(()));
        assert!(strict_json(br#"[{"a":1},{"a":2}]"#).is_ok());
        assert!(strict_json(br#"{"a":1} x"#).is_err());
    }

    /// A batch is counted as it is read: one entry past the limit is refused, whatever follows.
    #[test]
    fn batches_are_counted_as_they_are_read() {
        let body = |n: usize, tail: &str| {
            let items = vec![r#"["s","a","r"]"#; n].join(",");
            format!(r#"{{"requests":[{items}{tail}]}}"#)
        };
        assert_eq!(
            parse_check_many(body(3, "").as_bytes(), 3).map(|b| b.requests.len()),
            Ok(3)
        );
        assert_eq!(
            parse_check_many(body(4, "").as_bytes(), 3).map(|b| b.requests.len()),
            Err(BodyError::TooMany { limit: 3 })
        );
        // Past the limit the rest is not even read: malformed JSON after it changes nothing.
        assert_eq!(
            parse_check_many(body(4, ",[[[").as_bytes(), 3).map(|b| b.requests.len()),
            Err(BodyError::TooMany { limit: 3 })
        );
    }

    #[test]
    fn list_times() {
        let now = |n, c| list_context(n, c).map(|c| c.now);
        assert_eq!(now(None, None), Ok(None));
        assert_eq!(now(Some("1700"), None), Ok(Some(1700)));
        assert_eq!(now(None, Some(r#"{"now":5}"#)), Ok(Some(5)));
        assert_eq!(now(None, Some("{}")), Ok(None));
        assert_eq!(now(None, Some("null")), Ok(None));
        assert_eq!(
            list_context(None, Some(r#"{"at_least_epoch":4}"#)).map(|c| c.at_least_epoch),
            Ok(Some(4))
        );
        // Attributes beside the times: a listing's context is a check's.
        assert_eq!(
            list_context(None, Some(r#"{"ip":"10.0.0.1","now":5}"#)).map(|c| c.now),
            Ok(Some(5))
        );
        for (n, c) in [
            (Some("-1"), None),
            (Some("1.5"), None),
            (Some(""), None),
            (Some("9007199254740992"), None),
            (None, Some(r#"{"now":"5"}"#)),
            (None, Some(r#"{"Then":5}"#)),
            (None, Some(r#"{"then":null}"#)),
            (None, Some("[")),
            (Some("5"), Some(r#"{"now":5}"#)),
        ] {
            assert_eq!(list_context(n, c), Err(()), "{n:?} {c:?}");
        }
    }
}
