//! The request context as hosts receive it (JSON): `{"now": ms, "at_least_epoch": n}`, each
//! optional, or nothing. Shared so that the command line, the npm package and the Worker read
//! contexts identically.

/// Largest `now` (and `at_least_epoch`) accepted: the largest integer a JavaScript number holds
/// exactly.
pub const MAX_NOW: u64 = (1 << 53) - 1;

/// What a context says: the request's time (`None`: the host's clock applies), and the epoch it
/// needs at least (docs/decisions.md, "Read your writes").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context {
    pub now: Option<u64>,
    pub at_least_epoch: Option<u64>,
}

impl Context {
    /// The decision's times and needs at the host's `clock`.
    pub fn at(&self, clock: u64) -> edge_authz::At {
        edge_authz::At::clock(clock)
            .with_now(self.now)
            .with_at_least_epoch(self.at_least_epoch)
    }
}

/// Reads a context. `Err(())`: the context is malformed (a field other than `now` and
/// `at_least_epoch`, or one that is not a whole number from 0 to 2^53 - 1) and the request is
/// `invalid_request`. A field that is `null` is absent.
#[allow(
    clippy::result_unit_err,
    reason = "a malformed context has one meaning, an `invalid_request`, which the host gives"
)]
pub fn read_context(context: Option<&serde_json::Value>) -> Result<Context, ()> {
    use serde_json::Value;
    let number = |v: Option<&Value>| match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v <= MAX_NOW => Ok(Some(v)),
            _ => Err(()),
        },
        Some(_) => Err(()),
    };
    match context {
        None | Some(Value::Null) => Ok(Context::default()),
        Some(Value::Object(map)) => {
            if map.keys().any(|k| k != "now" && k != "at_least_epoch") {
                return Err(());
            }
            Ok(Context {
                now: number(map.get("now"))?,
                at_least_epoch: number(map.get("at_least_epoch"))?,
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
                at_least_epoch: Some(7)
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
            json!({"epoch": 3}),
            json!([]),
            json!(3),
        ] {
            assert_eq!(read(bad.clone()), Err(()), "{bad}");
        }
    }
}
