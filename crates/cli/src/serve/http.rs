//! The service's HTTP plumbing: a request's head as read once, bodies under a limit, replies.

use std::io::Read as _;

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
    pub fn read_head(raw: &tiny_http::Request) -> Incoming {
        let url = raw.url();
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        Incoming {
            method: raw.method().as_str().to_ascii_uppercase(),
            path: path.to_string(),
            query: query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
            headers: raw
                .headers()
                .iter()
                .map(|h| {
                    (
                        h.field.as_str().as_str().to_ascii_lowercase(),
                        h.value.as_str().to_string(),
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

/// The body, refused with 413 past `limit` (by its declared length before any of it is read),
/// with 415 for a media type not in `types`.
pub fn body(
    req: &Incoming,
    raw: &mut tiny_http::Request,
    limit: usize,
    types: &[&str],
) -> Result<Vec<u8>, Reply> {
    let kind = req.header("content-type").map(|v| {
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
    let too_large = || {
        Reply::error(
            413,
            "too_large",
            &format!("the body is larger than the limit of {limit} bytes"),
        )
    };
    if raw.body_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    let read = raw.as_reader().take(limit as u64 + 1).read_to_end(&mut out);
    match read {
        Ok(n) if n > limit => Err(too_large()),
        Ok(_) => Ok(out),
        Err(e) => Err(Reply::error(
            400,
            "bad_body",
            &format!("the body could not be read: {e}"),
        )),
    }
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

pub fn send(raw: tiny_http::Request, reply: &Reply) {
    let mut resp =
        tiny_http::Response::from_data(reply.body.clone()).with_status_code(reply.status);
    let mut add = |name: &str, value: &str| {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            resp.add_header(h);
        }
    };
    add("content-type", reply.content_type);
    add("cache-control", "no-store");
    for (k, v) in &reply.headers {
        add(k, v);
    }
    let _ = raw.respond(resp);
}
