//! Writers' bearer tokens (`--token-file`): one a line, `TOKEN [tenant=NAME]... [api=API]...`.
//! A token is compared by its SHA-256 against every configured token's, in constant time and
//! without stopping at the first match, so neither its content nor which one matched shows in
//! the time an answer takes.

use std::path::Path;

use sha2::Digest as _;

use super::http::{Incoming, Reply};
use crate::Fail;

/// The shortest token taken: 128 bits of base64 or hex.
const MIN_TOKEN: usize = 16;

/// What a token may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/v1/{tenant}/...`: the change API, the model and the status.
    Changes,
    /// `/scim/v2/{tenant}/...`.
    Scim,
    /// `/metrics`.
    Metrics,
}

impl Api {
    fn parse(s: &str) -> Option<Api> {
        match s {
            "changes" => Some(Api::Changes),
            "scim" => Some(Api::Scim),
            "metrics" => Some(Api::Metrics),
            _ => None,
        }
    }
}

struct Entry {
    digest: [u8; 32],
    /// Empty: every tenant.
    tenants: Vec<String>,
    /// Empty: every API.
    apis: Vec<Api>,
}

pub struct Tokens {
    entries: Vec<Entry>,
}

fn digest(token: &str) -> [u8; 32] {
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// Equal in constant time (for equal lengths, which digests have).
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Tokens {
    pub fn load(path: &Path) -> Result<Tokens, Fail> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Fail(format!(
                "--token-file: cannot read `{}`: {e}",
                path.display()
            ))
        })?;
        Tokens::parse(&text).map_err(|e| Fail(format!("--token-file `{}`: {e}", path.display())))
    }

    /// Reads the file's text; errors name the line, never the token.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let token = words.next().unwrap_or_default();
            if token.len() < MIN_TOKEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "line {}: a token is at least {MIN_TOKEN} visible ASCII characters",
                    n + 1
                ));
            }
            let mut e = Entry {
                digest: digest(token),
                tenants: Vec::new(),
                apis: Vec::new(),
            };
            for w in words {
                match w.split_once('=') {
                    Some(("tenant", t)) if edge_authz::is_valid_tenant(t) => {
                        e.tenants.push(t.into())
                    }
                    Some(("api", a)) => e.apis.push(Api::parse(a).ok_or_else(|| {
                        format!("line {}: api is changes, scim or metrics, not `{a}`", n + 1)
                    })?),
                    // The word is not shown: a second token on the line would be printed.
                    _ => {
                        return Err(format!(
                        "line {}: after the token, only tenant=NAME and api=changes|scim|metrics",
                        n + 1
                    ))
                    }
                }
            }
            entries.push(e);
        }
        if entries.is_empty() {
            return Err("no token in it".into());
        }
        Ok(Tokens { entries })
    }

    /// Whether the request's token may reach `api` (of `tenant`): 401 without a known token,
    /// 403 for a known token not meant for this tenant or API.
    pub fn check(&self, req: &Incoming, tenant: Option<&str>, api: Api) -> Result<(), Reply> {
        let unauthorized = || {
            Reply::error(401, "unauthorized", "a writer's bearer token is required")
                .with("www-authenticate", "Bearer realm=\"edge-authz\"".into())
        };
        let Some(token) = req.bearer() else {
            return Err(unauthorized());
        };
        let d = digest(token);
        let mut found: Option<&Entry> = None;
        for e in &self.entries {
            if same(&e.digest, &d) && found.is_none() {
                found = Some(e);
            }
        }
        let Some(e) = found else {
            return Err(unauthorized());
        };
        // The metrics name every tenant: a token limited to some tenants reaches them only
        // when it names `api=metrics` itself.
        let tenant_ok = match tenant {
            Some(t) => e.tenants.is_empty() || e.tenants.iter().any(|x| x == t),
            None => e.tenants.is_empty() || e.apis.contains(&api),
        };
        if !tenant_ok {
            return Err(Reply::error(
                403,
                "forbidden",
                "this token is not for this tenant",
            ));
        }
        if !(e.apis.is_empty() || e.apis.contains(&api)) {
            return Err(Reply::error(
                403,
                "forbidden",
                "this token is not for this API",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_are_checked_line_by_line() {
        assert!(Tokens::parse("").is_err());
        assert!(Tokens::parse("short").is_err());
        assert!(Tokens::parse("0123456789abcdef api=everything").is_err());
        assert!(Tokens::parse("0123456789abcdef tenant=Bad!").is_err());
        let t =
            Tokens::parse("# writers\n0123456789abcdef tenant=acme api=scim\n\nfedcba9876543210\n");
        assert!(t.is_ok_and(|t| t.entries.len() == 2));
    }

    #[test]
    fn constant_time_equality() {
        let a = digest("0123456789abcdef");
        let b = digest("0123456789abcdeg");
        assert!(same(&a, &a));
        assert!(!same(&a, &b));
    }
}
