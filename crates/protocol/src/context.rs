//! The request context as hosts receive it (JSON): `{"now": ms, "at_least_epoch": n, ...}`,
//! each optional, with the request's attributes beside them, or nothing. Shared so that the command line, the npm package and the Worker read
//! contexts identically.

/// Largest `now` (and `at_least_epoch`) accepted: the largest integer a JavaScript number holds
/// exactly.
pub const MAX_NOW: u64 = (1 << 53) - 1;

/// What a context says: the request's time (`None`: the host's clock applies), the epoch it
/// needs at least (docs/decisions.md, "Read your writes"), and its attributes, which conditions
/// test (docs/model.md, "Conditions").
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    pub now: Option<u64>,
    pub at_least_epoch: Option<u64>,
    pub attrs: edge_authz::condition::Context,
}

impl Context {
    /// The decision's times, needs and attributes at the host's `clock`.
    pub fn at(&self, clock: u64) -> edge_authz::At<'_> {
        edge_authz::At::clock(clock)
            .with_now(self.now)
            .with_at_least_epoch(self.at_least_epoch)
            .with_context(&self.attrs)
    }
}

/// Reads a context. `Err(())`: the context is malformed and the request is `invalid_request`:
/// `now` or `at_least_epoch` not a whole number from 0 to 2^53 - 1 (`null` is absent), or an
/// attribute outside docs/decisions.md, "Context": a key that is not `[a-z][a-z0-9_]*` of at most
/// 64 bytes, more than 32 keys, a value that is not a string of at most 256 bytes, a finite
/// number, a boolean or a list of at most 32 such strings.
#[allow(
    clippy::result_unit_err,
    reason = "a malformed context has one meaning, an `invalid_request`, which the host gives"
)]
pub fn read_context(context: Option<&serde_json::Value>) -> Result<Context, ()> {
    use edge_authz::condition::Attr;
    use serde_json::Value;
    let number = |v: Option<&Value>| match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v <= MAX_NOW => Ok(Some(v)),
            _ => Err(()),
        },
        Some(_) => Err(()),
    };
    let attr = |v: &Value| -> Result<Attr, ()> {
        Ok(match v {
            Value::String(s) => Attr::Str(s.clone()),
            Value::Number(n) => Attr::Num(n.as_f64().ok_or(())?),
            Value::Bool(b) => Attr::Bool(*b),
            Value::Array(items) => Attr::List(
                items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned).ok_or(()))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Null | Value::Object(_) => return Err(()),
        })
    };
    match context {
        None | Some(Value::Null) => Ok(Context::default()),
        Some(Value::Object(map)) => {
            let attrs = map
                .iter()
                .filter(|(k, _)| !edge_authz::condition::RESERVED_KEYS.contains(&k.as_str()))
                .map(|(k, v)| Ok((k.clone(), attr(v)?)))
                .collect::<Result<Vec<_>, ()>>()?;
            Ok(Context {
                now: number(map.get("now"))?,
                at_least_epoch: number(map.get("at_least_epoch"))?,
                attrs: edge_authz::condition::Context::new(attrs).map_err(|_| ())?,
            })
        }
        Some(_) => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_context_names_a_time_and_an_epoch_or_neither() {
        let read = |v: serde_json::Value| read_context(Some(&v));
        assert_eq!(read_context(None), Ok(Context::default()));
        assert_eq!(read(json!(null)), Ok(Context::default()));
        assert_eq!(read(json!({})), Ok(Context::default()));
        assert_eq!(
            read(json!({"now": 5, "at_least_epoch": 7})),
            Ok(Context {
                now: Some(5),
                at_least_epoch: Some(7),
                ..Context::default()
            })
        );
        assert_eq!(
            read(json!({"at_least_epoch": null})),
            Ok(Context::default())
        );
        for bad in [
            json!({"at_least_epoch": -1}),
            json!({"at_least_epoch": 1.5}),
            json!({"at_least_epoch": "3"}),
            json!({"at_least_epoch": MAX_NOW + 1}),
            json!({"Epoch": 3}),
            json!({"flag": null}),
            json!({"nested": {"a": 1}}),
            json!({"list": [1, 2]}),
            json!({"s": "x".repeat(257)}),
            json!({"list": vec!["a"; 33]}),
            json!({"bad-key": 1}),
            json!([]),
            json!(3),
        ] {
            assert_eq!(read(bad.clone()), Err(()), "{bad}");
        }
        let many: serde_json::Map<String, serde_json::Value> =
            (0..33).map(|i| (format!("k{i}"), json!(i))).collect();
        assert_eq!(read(serde_json::Value::Object(many)), Err(()));
        let ok = read(json!({"ip": "10.0.0.1", "mfa_age_s": 60, "managed": true,
                             "amr": ["pwd", "mfa"], "s": "x".repeat(256), "now": 9}))
        .unwrap();
        assert_eq!(ok.now, Some(9));
        assert_eq!(
            ok.attrs.get("amr"),
            Some(&edge_authz::condition::Attr::List(vec![
                "pwd".into(),
                "mfa".into()
            ]))
        );
        assert_eq!(
            ok.attrs.get("mfa_age_s"),
            Some(&edge_authz::condition::Attr::Num(60.0))
        );
    }
}
