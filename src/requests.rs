//! The request shapes the shells read, parsed here once so that every shell reads them the same
//! way and the fuzzers reach them natively (`fuzz/`):
//! - a request line of the command line's `check --requests` (contract section 7);
//! - the bodies of the Worker's `POST /v1/{tenant}/check` and `check-many` (section 6);
//! - the time of the Worker's listings, `GET .../resources` and `.../subjects` (`now=` or
//!   `context=`).

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// One request: subject, action, resource and the context as given (read by
/// [`crate::context_now`]).
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
    let v: Value = serde_json::from_str(line).ok()?;
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
    #[serde(default)]
    pub context: Option<Value>,
}

/// The body of `POST /v1/{tenant}/check-many`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckManyBody {
    pub requests: Vec<(String, String, String)>,
    #[serde(default)]
    pub context: Option<Value>,
}

/// Why a body was refused: it is not JSON (`invalid_json`), or JSON of the wrong shape
/// (`invalid_body`); the text says where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    NotJson(String),
    Shape(String),
}

/// A JSON body as `T`.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| BodyError::NotJson(e.to_string()))?;
    serde_json::from_value(value).map_err(|e| BodyError::Shape(e.to_string()))
}

/// The time of a listing from its query's `now` and `context` values (percent-decoded):
/// `now=<ms>`, or `context=<the JSON context of a check>`, or neither (`Ok(None)`: the host's
/// clock). Anything else, both included, is malformed (`Err(())`: `invalid_request`, as for a
/// check).
#[allow(clippy::result_unit_err)]
pub fn list_time(now: Option<&str>, context: Option<&str>) -> Result<Option<u64>, ()> {
    let context = match (now, context) {
        (None, None) => return Ok(None),
        (Some(n), None) => serde_json::json!({ "now": n.parse::<u64>().map_err(|_| ())? }),
        (None, Some(c)) => serde_json::from_str(c).map_err(|_| ())?,
        (Some(_), Some(_)) => return Err(()),
    };
    crate::context_now(Some(&context))
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
        let m: CheckManyBody = parse_body(br#"{"requests":[["s","a","r"]]}"#).unwrap();
        assert_eq!(m.requests.len(), 1);
        assert!(matches!(
            parse_body::<CheckBody>(b"{"),
            Err(BodyError::NotJson(_))
        ));
        assert!(matches!(
            parse_body::<CheckBody>(br#"{"subject":"s","action":"a","resource":"r","x":1}"#),
            Err(BodyError::Shape(_))
        ));
        assert!(matches!(
            parse_body::<CheckManyBody>(br#"{"requests":[["s","a"]]}"#),
            Err(BodyError::Shape(_))
        ));
    }

    #[test]
    fn list_times() {
        assert_eq!(list_time(None, None), Ok(None));
        assert_eq!(list_time(Some("1700"), None), Ok(Some(1700)));
        assert_eq!(list_time(None, Some(r#"{"now":5}"#)), Ok(Some(5)));
        assert_eq!(list_time(None, Some("{}")), Ok(None));
        assert_eq!(list_time(None, Some("null")), Ok(None));
        for (n, c) in [
            (Some("-1"), None),
            (Some("1.5"), None),
            (Some(""), None),
            (Some("9007199254740992"), None),
            (None, Some(r#"{"now":"5"}"#)),
            (None, Some(r#"{"then":5}"#)),
            (None, Some("[")),
            (Some("5"), Some(r#"{"now":5}"#)),
        ] {
            assert_eq!(list_time(n, c), Err(()), "{n:?} {c:?}");
        }
    }
}
