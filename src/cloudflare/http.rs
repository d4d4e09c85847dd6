//! HTTP plumbing of the Worker: its errors (`{error: {code, message}}`), its configuration (the
//! `[vars]` of `wrangler.toml` and secrets), bearer tokens, and request bodies read under a limit.

use futures_util::StreamExt;
use serde::Serialize;
use worker::{Env, Headers, Request, Response};

use crate::{Error, PublicKey, Tier};

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

    /// A message the evaluator refused: its code, and the status the contract gives it.
    pub fn from_core(e: &Error) -> ApiError {
        let status = match e {
            Error::BadSignature | Error::UnknownKey(_) => 401,
            Error::TenantMismatch { .. } => 403,
            Error::TooLarge { .. } => 413,
            Error::Rollback { .. }
            | Error::EpochGap { .. }
            | Error::EpochConflict(_)
            | Error::AlreadyApplied(_) => 409,
            Error::Refused { reason, .. } => match reason {
                crate::Reason::InvalidRequest | crate::Reason::UnknownAction => 400,
                _ => 503,
            },
            Error::InvalidKey(_) | Error::PreviewMode => 500,
            _ => 400,
        };
        ApiError::new(status, e.code(), e.to_string())
    }

    pub fn response(&self, request_id: &str) -> worker::Result<Response> {
        #[derive(Serialize)]
        struct Body<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
        }
        let headers = Headers::new();
        headers.set("content-type", "application/json")?;
        headers.set("x-request-id", request_id)?;
        if self.status == 401 && self.code == "unauthorized" {
            headers.set("www-authenticate", "Bearer")?;
        }
        if let Some(allow) = self.allow {
            headers.set("allow", allow)?;
        }
        let body = serde_json::to_string(&Body {
            error: Inner {
                code: self.code,
                message: &self.message,
            },
        })
        .unwrap_or_default();
        Ok(Response::ok(body)?
            .with_status(self.status)
            .with_headers(headers))
    }
}

/// A JSON answer with the request id.
pub fn json(status: u16, body: String, request_id: &str) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    headers.set("x-request-id", request_id)?;
    headers.set("cache-control", "no-store")?;
    Ok(Response::ok(body)?
        .with_status(status)
        .with_headers(headers))
}

/// The Worker's configuration, read from its environment on every request (cheap: a few
/// string reads), so a `wrangler dev --var` or a new deployment takes effect at once.
pub struct Config {
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

impl Config {
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
        Ok(Config {
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
        })
    }

    /// The trusted keys of `ORIGIN_PUBLIC_KEYS` (comma-separated base64; at least one).
    pub fn public_keys(&self) -> Result<Vec<PublicKey>, ApiError> {
        let misconfigured = |m: String| ApiError::new(500, "misconfigured", m);
        let keys = self
            .keys
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(PublicKey::from_base64)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| misconfigured(format!("ORIGIN_PUBLIC_KEYS: {e}")))?;
        if keys.is_empty() {
            return Err(misconfigured("ORIGIN_PUBLIC_KEYS lists no key".into()));
        }
        Ok(keys)
    }

    /// How long a confirmation of the watermark may be reused for a decision of this tier.
    pub fn reuse_ms(&self, tier: Tier) -> f64 {
        match tier {
            Tier::High => 0.0,
            Tier::Standard => self.reuse_standard_ms as f64,
            Tier::Low => self.reuse_low_ms as f64,
        }
    }

    /// The bearer check of the read endpoints, when a `CHECK_TOKEN` is configured.
    pub fn authorize(&self, req: &Request) -> Result<(), ApiError> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let given = req
            .headers()
            .get("authorization")
            .ok()
            .flatten()
            .unwrap_or_default();
        let presented = given
            .strip_prefix("Bearer ")
            .or_else(|| given.strip_prefix("bearer "))
            .unwrap_or("");
        if constant_time_eq(presented.as_bytes(), token.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::new(
                401,
                "unauthorized",
                "this endpoint needs `Authorization: Bearer <CHECK_TOKEN>`",
            ))
        }
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

/// The request's body, refused with 413 past `limit` bytes (by its `Content-Length` before
/// reading anything, and by what arrived otherwise) and with 415 when its media type is not
/// `want`.
pub async fn body(req: &mut Request, want: &str, limit: usize) -> Result<Vec<u8>, ApiError> {
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
    if essence != want {
        return Err(ApiError::new(
            415,
            "unsupported_media_type",
            format!("the body must be `{want}`, not `{media}`"),
        ));
    }
    let too_large = |size: usize| {
        ApiError::new(
            413,
            "too_large",
            format!("the body is {size} bytes, over the limit of {limit}"),
        )
    };
    if let Some(len) = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        if len > limit as u64 {
            return Err(too_large(usize::try_from(len).unwrap_or(usize::MAX)));
        }
    }
    // Read as a stream and stop at the limit: a chunked body (no Content-Length) is refused as
    // soon as it passes the limit, never held whole.
    let Ok(mut stream) = req.stream() else {
        return Ok(Vec::new()); // no body at all
    };
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::bad_body("the body could not be read"))?;
        let size = bytes.len().saturating_add(chunk.len());
        if size > limit {
            return Err(too_large(size));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
