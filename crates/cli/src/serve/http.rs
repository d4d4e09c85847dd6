//! The service's HTTP plumbing: a request's head as read once, bodies under a limit, replies.

use serde_json::{json, Value};
use sha2::Digest as _;

/// A request's method, path, query and headers.
pub struct Incoming {
    pub method: String,
    pub path: String,
    /// Percent-decoded pairs.
    pub query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
}

impl Incoming {
    pub fn read_head(parts: &hyper::http::request::Parts) -> Incoming {
        let path = parts.uri.path().to_string();
        let query = parts.uri.query().unwrap_or_default();
        Incoming {
            method: parts.method.as_str().to_ascii_uppercase(),
            path,
            query: query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
            // A value that is not UTF-8 is kept lossily: it then fails every check it meets
            // (a token, a key) instead of passing for an absent header.
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        }
    }

    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `Authorization: Bearer` token, if any.
    pub fn bearer(&self) -> Option<&str> {
        let v = self.header("authorization")?.trim();
        let (scheme, token) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }

    /// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
    pub fn idempotency_key(&self) -> Result<Option<String>, Reply> {
        match self.header("idempotency-key") {
            None => Ok(None),
            Some(k)
                if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                Ok(Some(k.to_string()))
            }
            Some(_) => Err(Reply::error(
                400,
                "invalid_idempotency_key",
                "an Idempotency-Key is 1 to 255 visible ASCII characters",
            )),
        }
    }

    /// Whether the request has a body (a length above 0, or a chunked one).
    pub fn has_body(&self) -> bool {
        self.header("transfer-encoding").is_some()
            || self
                .header("content-length")
                .is_some_and(|v| v.trim() != "0")
    }

    /// Refuses a body of a media type not in `types` (415), or declared far past `limit` (413)
    /// before any of it is read.
    pub fn body_head(&self, limit: usize, types: &[&str]) -> Result<(), Reply> {
        let kind = self.header("content-type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
        if !kind.as_deref().is_some_and(|k| types.contains(&k)) {
            return Err(Reply::error(
                415,
                "unsupported_media_type",
                &format!("send the body as {}", types.join(" or ")),
            ));
        }
        let declared = self
            .header("content-length")
            .map(|v| v.trim().parse::<u64>());
        match declared {
            Some(Ok(n)) if n > limit as u64 + DRAIN_BYTES => Err(too_large(limit)),
            Some(Err(_)) => Err(Reply::error(
                400,
                "bad_body",
                "the content-length is not a number",
            )),
            _ => Ok(()),
        }
    }
}

/// How much of a body past its limit is read and dropped before the 413 (see `read_body`).
pub const DRAIN_BYTES: u64 = 8 << 20;

pub fn too_large(limit: usize) -> Reply {
    Reply::error(
        413,
        "too_large",
        &format!("the body is larger than the limit of {limit} bytes"),
    )
}

/// `%XX` and `+` decoded; bytes that are not UTF-8 become U+FFFD.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
        match b {
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b),
            },
            b'+' => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The hex SHA-256 of a request's method, path and body: what an `Idempotency-Key` is bound to.
pub fn request_hash(req: &Incoming, body: &[u8]) -> String {
    let mut h = sha2::Sha256::new();
    h.update(req.method.as_bytes());
    h.update([0]);
    h.update(req.path.as_bytes());
    h.update([0]);
    h.update(body);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// An answer to send.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    /// The error's code, for an error.
    pub code: Option<String>,
}

impl Reply {
    pub fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            body: v.to_string().into_bytes(),
            content_type: "application/json",
            headers: Vec::new(),
            code: None,
        }
    }

    pub fn scim(status: u16, v: &Value) -> Reply {
        Reply {
            content_type: "application/scim+json",
            ..Reply::json(status, v)
        }
    }

    pub fn text(status: u16, text: String) -> Reply {
        Reply {
            status,
            body: text.into_bytes(),
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            headers: Vec::new(),
            code: None,
        }
    }

    /// `{"error": {"code", "message"}}`.
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply {
            code: Some(code.to_string()),
            ..Reply::json(
                status,
                &json!({"error": {"code": code, "message": message}}),
            )
        }
    }

    pub fn method(allow: &str) -> Reply {
        Reply::error(
            405,
            "method_not_allowed",
            &format!("this route takes {allow}"),
        )
        .with("allow", allow.to_string())
    }

    pub fn with(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }

    /// The same error as a SCIM error body.
    pub fn into_scim(self) -> Reply {
        if self.content_type == "application/scim+json" {
            return self;
        }
        let v: Value = serde_json::from_slice(&self.body).unwrap_or(Value::Null);
        let detail = v
            .get("error")
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("error");
        let mut r = super::scim_error(self.status, None, detail);
        r.headers = self.headers;
        r.code = self.code;
        r
    }
}

/// The reply as hyper's response.
pub fn response(reply: Reply) -> hyper::Response<http_body_util::Full<hyper::body::Bytes>> {
    let mut resp = hyper::Response::new(http_body_util::Full::new(hyper::body::Bytes::from(
        reply.body,
    )));
    *resp.status_mut() = hyper::StatusCode::from_u16(reply.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    let mut add = |name: &str, value: &str| {
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(value),
        ) {
            h.append(k, v);
        }
    };
    add("content-type", reply.content_type);
    add("cache-control", "no-store");
    for (k, v) in &reply.headers {
        add(k, v);
    }
    resp
}
