//! HTTP plumbing of the Worker: its errors (`{error: {code, message}}`), its configuration (the
//! `[vars]` of `wrangler.toml` and secrets), bearer tokens, CORS for the read endpoints, and
//! request bodies read under a limit.

use serde::Serialize;
use worker::{js_sys, wasm_bindgen, web_sys, Env, Headers, Request, Response};

use edge_authz::{Error, PublicKey, Tier};
use edge_authz_protocol::{http_status, ErrorAnswer, ErrorBody};

/// An error answer: an HTTP status, a stable snake_case code and a message that says what is
/// wrong. Nothing else leaks (no stack, no internal detail).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// `Allow` for 405 answers.
    pub allow: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }

    pub fn bad_body(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "invalid_body", message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(503, "authority_unavailable", message)
    }

    pub fn method(allow: &'static str) -> ApiError {
        ApiError {
            allow: Some(allow),
            ..ApiError::new(
                405,
                "method_not_allowed",
                format!("this path takes {allow}"),
            )
        }
    }

    /// A message or request the core refused: its code, and its status (docs/http.md,
    /// "Errors" and "Push errors").
    pub fn from_core(e: &Error) -> ApiError {
        ApiError::new(http_status(e), e.code(), e.to_string())
    }

    pub fn response(&self, request_id: &str) -> worker::Result<Response> {
        let headers = Headers::new();
        headers.set("content-type", "application/json")?;
        headers.set("x-request-id", request_id)?;
        if self.status == 401 && self.code == "unauthorized" {
            headers.set("www-authenticate", "Bearer")?;
        }
        if let Some(allow) = self.allow {
            headers.set("allow", allow)?;
        }
        let body = serde_json::to_string(&ErrorAnswer {
            error: ErrorBody::new(self.code, &self.message),
        })
        .unwrap_or_default();
        Ok(Response::ok(body)?
            .with_status(self.status)
            .with_headers(headers))
    }
}

/// A JSON answer with the request id.
pub fn json(status: u16, body: &impl Serialize, request_id: &str) -> Result<Response, ApiError> {
    let text = serde_json::to_string(body)
        .map_err(|_| ApiError::new(500, "internal", "an answer could not be written"))?;
    json_text(status, text, request_id).map_err(|e| {
        worker::console_error!("edge-authz: {e}");
        ApiError::new(500, "internal", "internal error")
    })
}

/// A JSON answer, already written, with the request id.
pub fn json_text(status: u16, body: String, request_id: &str) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    headers.set("x-request-id", request_id)?;
    headers.set("cache-control", "no-store")?;
    Ok(Response::ok(body)?
        .with_status(status)
        .with_headers(headers))
}

/// The Worker's configuration, read from its environment once per isolate ([`Config::get`]):
/// an isolate's environment does not change (a new deployment, or `wrangler dev` given another
/// `--var`, starts new isolates), and reading it costs about twenty crossings into JavaScript.
pub struct Config {
    /// `CORS_ORIGINS`, parsed.
    pub cors: CorsOrigins,
    pub keys: String,
    pub token: Option<String>,
    pub tenants: Option<Vec<String>>,
    /// How long an isolate may reuse a confirmation of the watermark, per tier (`high`: never).
    pub reuse_standard_ms: u64,
    pub reuse_low_ms: u64,
    pub sample_allowed: f64,
    pub sample_denied: f64,
    pub max_snapshot_bytes: usize,
    pub max_message_bytes: usize,
    pub max_check_bytes: usize,
    pub max_batch_bytes: usize,
    pub max_batch: usize,
    /// How long a sync with the tenant's Durable Object may take before the isolate treats the
    /// authority as unavailable (`high` fails closed, the other tiers answer from held state).
    pub authority_timeout_ms: u64,
    /// `ALLOW_CONTEXT_NOW=true`: a request may name the time at which expiry is evaluated
    /// (`context.now`, a listing's `now=`); otherwise such a request is refused. Freshness is
    /// judged by the isolate's clock either way.
    pub allow_context_now: bool,
    /// `PUSH_TOKEN`: when set, the push endpoints also need `Authorization: Bearer <PUSH_TOKEN>`
    /// (defense in depth: the messages' signatures remain what authenticates them).
    pub push_token: Option<String>,
    /// `FEED_TOKEN`: the bearer token of the feed (`GET /v1/{tenant}/feed`); `CHECK_TOKEN`
    /// when unset.
    pub feed_token: Option<String>,
}

/// Default limits; each can be changed by the variable of the same name.
pub const MAX_SNAPSHOT_BYTES: usize = 32 << 20;
pub const MAX_MESSAGE_BYTES: usize = 8 << 20;
pub const MAX_CHECK_BYTES: usize = 16 << 10;
pub const MAX_BATCH_BYTES: usize = 4 << 20;
pub const MAX_BATCH: usize = 10_000;

fn text(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .ok()
        .or_else(|| env.var(name).ok())
        .map(|v| v.to_string())
        .filter(|v| !v.trim().is_empty())
}

fn number<T: std::str::FromStr>(env: &Env, name: &str, default: T) -> Result<T, ApiError> {
    match text(env, name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| {
            ApiError::new(
                500,
                "misconfigured",
                format!("the variable {name} is not a number"),
            )
        }),
    }
}

thread_local! {
    /// The isolate's configuration, once read without an error.
    static CONFIG: std::cell::RefCell<Option<std::rc::Rc<Config>>> =
        const { std::cell::RefCell::new(None) };
}

impl Config {
    /// The isolate's configuration: read from `env` the first time, then kept. A misconfigured
    /// environment is read again on every request (and refused each time).
    pub fn get(env: &Env) -> Result<std::rc::Rc<Config>, ApiError> {
        if let Some(c) = CONFIG.with(|c| c.borrow().clone()) {
            return Ok(c);
        }
        let c = std::rc::Rc::new(Config::read(env)?);
        CONFIG.with(|cell| *cell.borrow_mut() = Some(c.clone()));
        Ok(c)
    }

    pub fn read(env: &Env) -> Result<Config, ApiError> {
        let fraction = |name: &str| -> Result<f64, ApiError> {
            let v: f64 = number(env, name, 1.0)?;
            if (0.0..=1.0).contains(&v) {
                Ok(v)
            } else {
                Err(ApiError::new(
                    500,
                    "misconfigured",
                    format!("the variable {name} must be between 0 and 1"),
                ))
            }
        };
        // Read with the rest, so a malformed list fails every route, not only browsers' requests.
        let cors = CorsOrigins::read(env)?;
        Ok(Config {
            cors,
            keys: text(env, "ORIGIN_PUBLIC_KEYS").unwrap_or_default(),
            token: text(env, "CHECK_TOKEN"),
            tenants: text(env, "TENANTS").map(|t| {
                t.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }),
            reuse_standard_ms: number(env, "CONFIRM_REUSE_MS_STANDARD", 1_000)?,
            reuse_low_ms: number(env, "CONFIRM_REUSE_MS_LOW", 10_000)?,
            sample_allowed: fraction("LOG_SAMPLE_ALLOWED")?,
            sample_denied: fraction("LOG_SAMPLE_DENIED")?,
            max_snapshot_bytes: number(env, "MAX_SNAPSHOT_BYTES", MAX_SNAPSHOT_BYTES)?,
            max_message_bytes: number(env, "MAX_MESSAGE_BYTES", MAX_MESSAGE_BYTES)?,
            max_check_bytes: number(env, "MAX_CHECK_BYTES", MAX_CHECK_BYTES)?,
            max_batch_bytes: number(env, "MAX_BATCH_BYTES", MAX_BATCH_BYTES)?,
            max_batch: number(env, "MAX_BATCH", MAX_BATCH)?,
            authority_timeout_ms: number(env, "AUTHORITY_TIMEOUT_MS", 1_000)?,
            allow_context_now: match text(env, "ALLOW_CONTEXT_NOW").as_deref().map(str::trim) {
                None | Some("false") => false,
                Some("true") => true,
                Some(_) => {
                    return Err(ApiError::new(
                        500,
                        "misconfigured",
                        "the variable ALLOW_CONTEXT_NOW must be `true` or `false`",
                    ))
                }
            },
            push_token: text(env, "PUSH_TOKEN"),
            feed_token: text(env, "FEED_TOKEN"),
        })
    }

    /// The trusted keys of `ORIGIN_PUBLIC_KEYS` (comma-separated, typed or bare base64; at least
    /// one). A secret key there is refused (`wrong_key_kind`, named in the message); no message
    /// echoes the variable's text.
    pub fn public_keys(&self) -> Result<Vec<PublicKey>, ApiError> {
        let misconfigured = |m: String| ApiError::new(500, "misconfigured", m);
        let keys = self
            .keys
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(PublicKey::from_base64)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| misconfigured(format!("ORIGIN_PUBLIC_KEYS: {e} [{}]", e.code())))?;
        if keys.is_empty() {
            return Err(misconfigured("ORIGIN_PUBLIC_KEYS lists no key".into()));
        }
        Ok(keys)
    }

    /// How long a confirmation of the watermark may be reused for a decision of this tier.
    pub fn reuse_ms(&self, tier: Tier) -> u64 {
        match tier {
            Tier::High => 0,
            Tier::Standard => self.reuse_standard_ms,
            Tier::Low => self.reuse_low_ms,
        }
    }

    /// The bearer check of the read endpoints, when a `CHECK_TOKEN` is configured.
    pub fn authorize(&self, req: &Request) -> Result<(), ApiError> {
        bearer(req, self.token.as_deref(), "CHECK_TOKEN")
    }

    /// The bearer check of the push endpoints, when a `PUSH_TOKEN` is configured.
    pub fn authorize_push(&self, req: &Request) -> Result<(), ApiError> {
        bearer(req, self.push_token.as_deref(), "PUSH_TOKEN")
    }

    /// The bearer check of the feed: `FEED_TOKEN` when configured, else `CHECK_TOKEN`.
    pub fn authorize_feed(&self, req: &Request) -> Result<(), ApiError> {
        match &self.feed_token {
            Some(t) => bearer(req, Some(t), "FEED_TOKEN"),
            None => self.authorize(req),
        }
    }
}

/// `Authorization: Bearer <token>` when `token` is set. The scheme is matched without regard to
/// case (RFC 7235), the token exactly and in constant time.
fn bearer(req: &Request, token: Option<&str>, name: &str) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Ok(());
    };
    let given = req
        .headers()
        .get("authorization")
        .ok()
        .flatten()
        .unwrap_or_default();
    let presented = bearer_token(&given).unwrap_or("");
    if constant_time_eq(presented.as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(
            401,
            "unauthorized",
            format!("this endpoint needs `Authorization: Bearer <{name}>`"),
        ))
    }
}

/// The token of a `Bearer` credential: the scheme in any case, one space, the token.
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

/// `CORS_ORIGINS`: the origins whose browser pages may call the read endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// Unset or empty: no CORS headers at all.
    Off,
    /// `*`: any origin (answered `access-control-allow-origin: *`).
    Any,
    /// Exact origins, `scheme://host[:port]`, lowercase, default ports dropped.
    List(Vec<String>),
}

impl CorsOrigins {
    pub fn read(env: &Env) -> Result<CorsOrigins, ApiError> {
        match text(env, "CORS_ORIGINS") {
            None => Ok(CorsOrigins::Off),
            Some(v) => CorsOrigins::parse(&v).map_err(|m| {
                ApiError::new(
                    500,
                    "misconfigured",
                    format!("the variable CORS_ORIGINS: {m}"),
                )
            }),
        }
    }

    /// A comma-separated list of origins or `*`; the message says which entry is wrong.
    pub fn parse(v: &str) -> Result<CorsOrigins, String> {
        let mut list = Vec::new();
        let mut any = false;
        for entry in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                any = true;
            } else {
                let o = normalize_origin(entry).ok_or_else(|| {
                    format!(
                        "`{entry}` is not an origin: write `scheme://host` or \
                         `scheme://host:port` (no path, not even a trailing `/`), or `*`"
                    )
                })?;
                if !list.contains(&o) {
                    list.push(o);
                }
            }
        }
        Ok(if any {
            CorsOrigins::Any
        } else if list.is_empty() {
            CorsOrigins::Off
        } else {
            CorsOrigins::List(list)
        })
    }

    /// The `access-control-allow-origin` to answer a request's `Origin` with, when allowed.
    pub fn allow<'o>(&self, origin: &'o str) -> Option<&'o str> {
        match self {
            CorsOrigins::Off => None,
            CorsOrigins::Any => Some("*"),
            CorsOrigins::List(list) => list.iter().any(|o| o == origin).then_some(origin),
        }
    }
}

/// `scheme://host[:port]` in the form browsers send in `Origin` (lowercase, no default port),
/// or None when `entry` is not one (a path, a query, user info, an empty host, a bad port).
fn normalize_origin(entry: &str) -> Option<String> {
    let (scheme, rest) = entry.split_once("://")?;
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    // An IPv6 literal is bracketed; otherwise the port follows the last `:`.
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (addr, after) = v6.split_once(']')?;
        let ok = !addr.is_empty()
            && addr
                .chars()
                .all(|c| c.is_ascii_hexdigit() || ":.".contains(c));
        if !ok {
            return None;
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{addr}]"), port)
    } else {
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        };
        let ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c));
        if !ok {
            return None;
        }
        (host.to_string(), port)
    };
    let host = host.to_ascii_lowercase();
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: u32 = p.parse().ok()?;
            if n > 65_535 {
                return None;
            }
            Some(n)
        }
    };
    let default = match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    Some(match port {
        Some(n) if Some(n) != default => format!("{scheme}://{host}:{n}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

/// Refuses a body whose media type is not `want` (415).
fn media_type(req: &Request, want: &str) -> Result<(), ApiError> {
    let media = req
        .headers()
        .get("content-type")
        .ok()
        .flatten()
        .unwrap_or_default();
    let essence = media
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == want {
        Ok(())
    } else {
        Err(ApiError::new(
            415,
            "unsupported_media_type",
            format!("the body must be `{want}`, not `{media}`"),
        ))
    }
}

fn too_large(size: usize, limit: usize) -> ApiError {
    ApiError::new(
        413,
        "too_large",
        format!("the body is {size} bytes, over the limit of {limit}"),
    )
}

/// The body's declared length (`Content-Length`), refused with 413 past `limit` before anything
/// is read.
fn declared_length(req: &Request, limit: usize) -> Result<Option<usize>, ApiError> {
    let len = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    match len {
        Some(len) if len > limit as u64 => {
            Err(too_large(usize::try_from(len).unwrap_or(usize::MAX), limit))
        }
        Some(len) => Ok(usize::try_from(len).ok()),
        None => Ok(None),
    }
}

/// The request's body, refused with 413 past `limit` bytes (by its `Content-Length` before
/// reading anything, and by what arrived otherwise: a chunked body is refused as soon as it passes
/// the limit, never held whole) and with 415 when its media type is not `want`. It is gathered
/// in JavaScript and copied into wasm memory once, at its exact size.
pub async fn body(req: &mut Request, want: &str, limit: usize) -> Result<Vec<u8>, ApiError> {
    Ok(js_body(req, want, limit).await?.to_vec())
}

/// The request's body as a JavaScript `Uint8Array`, never copied into this module's wasm
/// memory (which only grows): the same checks as [`body`]. A push is read this way, so that a
/// body refused by its signature costs the isolate nothing once it is collected.
pub async fn js_body(
    req: &Request,
    want: &str,
    limit: usize,
) -> Result<js_sys::Uint8Array, ApiError> {
    use wasm_bindgen::JsCast;
    use worker::wasm_bindgen_futures::JsFuture;
    media_type(req, want)?;
    let declared = declared_length(req, limit)?;
    let unreadable = || ApiError::bad_body("the body could not be read");
    let Some(stream) = req.inner().body() else {
        return Ok(js_sys::Uint8Array::new_with_length(0));
    };
    if declared.is_some() {
        // A declared length within the limit: read whole by the runtime in one step (HTTP frames
        // the body by that length), and measured again all the same.
        let buf = JsFuture::from(req.inner().array_buffer().map_err(|_| unreadable())?)
            .await
            .map_err(|_| unreadable())?;
        let whole = js_sys::Uint8Array::new(&buf);
        let total = whole.length() as usize;
        if total > limit {
            return Err(too_large(total, limit));
        }
        return Ok(whole);
    }
    let reader: web_sys::ReadableStreamDefaultReader =
        stream.get_reader().dyn_into().map_err(|_| unreadable())?;
    let chunks = js_sys::Array::new();
    let mut total = 0usize;
    loop {
        let step = JsFuture::from(reader.read())
            .await
            .map_err(|_| unreadable())?;
        let done = js_sys::Reflect::get(&step, &"done".into())
            .map_err(|_| unreadable())?
            .as_bool()
            .unwrap_or(true);
        if done {
            break;
        }
        let chunk: js_sys::Uint8Array = js_sys::Reflect::get(&step, &"value".into())
            .map_err(|_| unreadable())?
            .dyn_into()
            .map_err(|_| unreadable())?;
        total = total.saturating_add(chunk.length() as usize);
        if total > limit {
            let _ = reader.cancel();
            return Err(too_large(total, limit));
        }
        chunks.push(&chunk);
    }
    let whole = js_sys::Uint8Array::new_with_length(u32::try_from(total).unwrap_or(u32::MAX));
    let mut at = 0u32;
    for chunk in chunks.iter() {
        let chunk = js_sys::Uint8Array::from(chunk);
        whole.set(&chunk, at);
        at = at.saturating_add(chunk.length());
    }
    Ok(whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_parse() {
        let list = |v: &[&str]| CorsOrigins::List(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(CorsOrigins::parse(""), Ok(CorsOrigins::Off));
        assert_eq!(CorsOrigins::parse(" , "), Ok(CorsOrigins::Off));
        assert_eq!(CorsOrigins::parse("*"), Ok(CorsOrigins::Any));
        assert_eq!(
            CorsOrigins::parse("https://a.example, *"),
            Ok(CorsOrigins::Any)
        );
        assert_eq!(
            CorsOrigins::parse(
                "https://Admin.Example.com, http://localhost:8788,HTTPS://a.example:443,\
                 http://[::1]:3000, http://127.0.0.1:80, https://admin.example.com"
            ),
            Ok(list(&[
                "https://admin.example.com",
                "http://localhost:8788",
                "https://a.example",
                "http://[::1]:3000",
                "http://127.0.0.1",
            ]))
        );
        for bad in [
            "https://a.example/",
            "https://a.example/admin",
            "https://a.example?x=1",
            "https://a.example#x",
            "https://user@a.example",
            "a.example",
            "//a.example",
            "https://",
            "https://:80",
            "https://a.example:",
            "https://a.example:99999",
            "https://a.example:8x",
            "https://[::1",
            "https://[]:80",
            "1http://a.example",
            "https://a.example,null",
            "https://a b.example",
        ] {
            let err = CorsOrigins::parse(bad).err();
            assert!(err.is_some(), "{bad} was accepted");
        }
        assert!(CorsOrigins::parse("https://a.example, https://b.example/x")
            .err()
            .is_some_and(|m| m.contains("`https://b.example/x`")));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for (h, want) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER abc", Some("abc")),
            ("bEaReR abc", Some("abc")),
            ("Bearer  abc", Some(" abc")),
            ("Basic abc", None),
            ("Bearerabc", None),
            ("", None),
        ] {
            assert_eq!(bearer_token(h), want, "{h}");
        }
    }

    #[test]
    fn cors_origins_allow() {
        let Ok(c) = CorsOrigins::parse("https://a.example, http://localhost:8788") else {
            unreachable!()
        };
        assert_eq!(c.allow("https://a.example"), Some("https://a.example"));
        assert_eq!(
            c.allow("http://localhost:8788"),
            Some("http://localhost:8788")
        );
        assert_eq!(c.allow("https://b.example"), None);
        assert_eq!(c.allow("http://a.example"), None);
        assert_eq!(c.allow("https://a.example:8443"), None);
        assert_eq!(c.allow("null"), None);
        assert_eq!(CorsOrigins::Any.allow("https://b.example"), Some("*"));
        assert_eq!(CorsOrigins::Off.allow("https://a.example"), None);
    }
}
