//! The request context as hosts receive it (JSON): `{"now": ms}` or nothing. Shared so that the
//! command line, the npm package and the Worker read contexts identically.

/// Largest `now` accepted: the largest integer a JavaScript number holds exactly.
pub const MAX_NOW: u64 = (1 << 53) - 1;

/// Reads a context. `Ok(None)`: no time given (the host's clock applies). `Err(())`: the context
/// is malformed and the request is `invalid_request`.
#[allow(
    clippy::result_unit_err,
    reason = "a malformed context has one meaning, an `invalid_request`, which the host gives"
)]
pub fn context_now(context: Option<&serde_json::Value>) -> Result<Option<u64>, ()> {
    use serde_json::Value;
    match context {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            if map.keys().any(|k| k != "now") {
                return Err(());
            }
            match map.get("now") {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => match n.as_u64() {
                    Some(v) if v <= MAX_NOW => Ok(Some(v)),
                    _ => Err(()),
                },
                Some(_) => Err(()),
            }
        }
        Some(_) => Err(()),
    }
}
