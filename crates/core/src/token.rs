//! Tokens: a compact JWS read strictly, and admitted against a state's [`Identity`] (gate 6 of
//! docs/decisions.md): the algorithm, key, issuer, audience and signature, then the times, then
//! the session revocations. The core never verifies a signature itself: the host does (WebCrypto
//! in JavaScript, native code on the command line and in the Worker), through [`Verify`], so
//! that the wasm stays small. Everything else is decided here, the same on every host.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use crate::condition::Attr;
use crate::identity::{Alg, Identity, Issuer, Jwk, Part, AUTH_AGE};
use crate::{is_valid_id, Reason};

/// The largest token read, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8192;

/// Why a token was refused: the detail behind `token_invalid`, `token_expired` and
/// `session_revoked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Not a compact JWS of JSON objects: parts, base64url, JSON, a key twice, too large.
    Malformed,
    /// `alg` is not RS256, ES256 or EdDSA, or not the key's; or a `crit` header.
    Algorithm,
    /// `kid` names no key of the issuer (or names none and the issuer has several).
    Key,
    /// `iss` is missing or not a declared issuer.
    Issuer,
    /// `aud` holds none of the issuer's audiences.
    Audience,
    /// The signature does not verify.
    Signature,
    /// A claim the subject template names is missing, or the subject is not an id.
    Subject,
    /// `exp` has passed (a token without `exp` is `Malformed`).
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// The token's `sid` is revoked.
    SessionRevoked,
    /// The token's family is revoked.
    FamilyRevoked,
    /// The token was issued before its subject's `not_before` (signed out).
    SignedOut,
}

impl Fault {
    pub fn reason(self) -> Reason {
        match self {
            Fault::Expired | Fault::NotYetValid => Reason::TokenExpired,
            Fault::SessionRevoked | Fault::FamilyRevoked | Fault::SignedOut => {
                Reason::SessionRevoked
            }
            _ => Reason::TokenInvalid,
        }
    }

    /// A stable snake_case code for explanations.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Malformed => "malformed",
            Fault::Algorithm => "algorithm",
            Fault::Key => "key",
            Fault::Issuer => "issuer",
            Fault::Audience => "audience",
            Fault::Signature => "signature",
            Fault::Subject => "subject",
            Fault::Expired => "expired",
            Fault::NotYetValid => "not_yet_valid",
            Fault::SessionRevoked => "session_revoked",
            Fault::FamilyRevoked => "family_revoked",
            Fault::SignedOut => "signed_out",
        }
    }
}

/// A JSON object's members. A key twice is refused (RFC 7515 section 5.2 lets a reader refuse
/// it; reading the last would let two parsers disagree about a token), and so is a key written
/// with an escape, which two readers could also read apart.
struct Members(serde_json::Map<String, Value>);

impl Members {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }
}

/// Whether the keys of the JSON object `text` (well formed: serde_json read it) are unique and
/// written without escapes. Only the object's own keys are looked at, not those of the values.
fn plain_unique_keys(text: &str) -> bool {
    let b = text.as_bytes();
    let mut keys: Vec<&[u8]> = Vec::new();
    let (mut depth, mut i, mut expect_key) = (0usize, 0usize, false);
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => {
                let start = i + 1;
                i = start;
                while let Some(&d) = b.get(i) {
                    match d {
                        b'"' => break,
                        b'\\' => i += 2,
                        _ => i += 1,
                    }
                }
                if depth == 1 && expect_key {
                    let key = b.get(start..i).unwrap_or_default();
                    if key.contains(&b'\\') || keys.contains(&key) {
                        return false;
                    }
                    keys.push(key);
                }
                expect_key = false;
            }
            b'{' | b'[' => {
                depth += 1;
                expect_key = depth == 1;
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' => expect_key = depth == 1,
            _ => {}
        }
        i += 1;
    }
    true
}

/// A compact JWS, split and decoded; its signature not yet verified.
pub struct Jws<'t> {
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'t [u8],
    pub signature: Vec<u8>,
    pub alg: Alg,
    pub kid: Option<String>,
    claims: Members,
}

fn part(s: &str) -> Result<Members, Fault> {
    let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| Fault::Malformed)?;
    let text = String::from_utf8(bytes).map_err(|_| Fault::Malformed)?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) if plain_unique_keys(&text) => Ok(Members(m)),
        _ => Err(Fault::Malformed),
    }
}

/// Splits and decodes a compact JWS: three base64url parts, a header and a payload that are JSON
/// objects without a key twice, an asymmetric `alg`, no `crit`.
pub fn parse(token: &str) -> Result<Jws<'_>, Fault> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Fault::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Fault::Malformed);
    };
    let header = part(h)?;
    let claims = part(p)?;
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| Fault::Malformed)?;
    // No extension is understood, so a header that says one must be (`crit`) is refused.
    if header.get("crit").is_some() {
        return Err(Fault::Algorithm);
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Alg::parse)
        .ok_or(Fault::Algorithm)?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(Fault::Malformed),
    };
    let signing_input = token
        .get(..h.len() + 1 + p.len())
        .ok_or(Fault::Malformed)?
        .as_bytes();
    Ok(Jws {
        signing_input,
        signature,
        alg,
        kid,
        claims,
    })
}

/// A signature for the host to verify with `key`.
#[derive(Debug, Clone, Copy)]
pub struct Verify<'a> {
    pub alg: Alg,
    pub key: &'a Jwk,
    pub message: &'a [u8],
    pub signature: &'a [u8],
}

/// A token that passed gate 6: its subject and the attributes its claims give.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    pub subject: String,
    /// The issuer's mapped attributes that the token has (they replace the caller's).
    pub attrs: Vec<(String, Attr)>,
    /// Every attribute the issuer maps: the caller's values for these are dropped, given or not.
    pub mapped: Vec<String>,
}

/// The outcome of gate 6.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    Admitted(Admitted),
    Refused(Fault),
    /// The verifier did not know the signature's validity (an asynchronous host): verify it and
    /// ask again. `key` is the JWK JSON, `message` the signing input, `signature` the bytes.
    Verify {
        alg: Alg,
        key: String,
        message: Vec<u8>,
        signature: Vec<u8>,
    },
}

fn seconds(v: Option<&Value>) -> Option<Option<f64>> {
    match v {
        None => Some(None),
        Some(n) => n.as_f64().filter(|n| n.is_finite()).map(Some),
    }
}

/// The attribute value of a claim: a string, a finite number, a boolean or a list of strings
/// (within the context limits); anything else leaves the attribute absent.
fn attr_of(v: &Value) -> Option<Attr> {
    let a = match v {
        Value::String(s) => Attr::Str(s.clone()),
        Value::Bool(b) => Attr::Bool(*b),
        Value::Number(n) => Attr::Num(n.as_f64()?),
        Value::Array(items) => Attr::List(
            items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()?,
        ),
        _ => return None,
    };
    crate::condition::Context::new([("x".to_string(), a.clone())]).ok()?;
    Some(a)
}

impl Identity {
    /// Gate 6 for `token` at the host's `clock` (ms). `verify` answers whether a signature
    /// verifies, or `None` when it cannot say now (the answer is then [`Admission::Verify`]).
    pub fn admit(
        &self,
        token: &str,
        clock: u64,
        verify: &mut dyn FnMut(&Verify<'_>) -> Option<bool>,
    ) -> Admission {
        match self.admit_inner(token, clock, verify) {
            Ok(a) => a,
            Err(f) => Admission::Refused(f),
        }
    }

    fn admit_inner(
        &self,
        token: &str,
        clock: u64,
        verify: &mut dyn FnMut(&Verify<'_>) -> Option<bool>,
    ) -> Result<Admission, Fault> {
        let jws = parse(token)?;
        let c = &jws.claims;
        let iss = c.get("iss").and_then(Value::as_str).ok_or(Fault::Issuer)?;
        let issuer = self.issuers.get(iss).ok_or(Fault::Issuer)?;
        let key = pick_key(issuer, &jws)?;
        audience(issuer, c.get("aud"))?;
        let v = Verify {
            alg: jws.alg,
            key,
            message: jws.signing_input,
            signature: &jws.signature,
        };
        match verify(&v) {
            Some(true) => {}
            Some(false) => return Err(Fault::Signature),
            None => {
                return Ok(Admission::Verify {
                    alg: jws.alg,
                    key: key.to_json(),
                    message: jws.signing_input.to_vec(),
                    signature: jws.signature.clone(),
                })
            }
        }
        // Times: JWT times are seconds; the clock is ms.
        let now_s = clock as f64 / 1000.0;
        let leeway = issuer.leeway_s as f64;
        let exp = seconds(c.get("exp")).flatten().ok_or(Fault::Malformed)?;
        if now_s >= exp + leeway {
            return Err(Fault::Expired);
        }
        if let Some(nbf) = seconds(c.get("nbf")).ok_or(Fault::Malformed)? {
            if now_s + leeway < nbf {
                return Err(Fault::NotYetValid);
            }
        }
        let iat = seconds(c.get("iat")).ok_or(Fault::Malformed)?;
        let subject = subject_of(issuer, c)?;
        // Sessions: a revoked `sid`, a revoked family, or issued before the subject's sign-out.
        if let Some(Value::String(sid)) = c.get("sid") {
            if self.revoked.contains_key(sid) {
                return Err(Fault::SessionRevoked);
            }
        }
        for (claim, family) in self.families.keys() {
            if c.get(claim).and_then(Value::as_str) == Some(family) {
                return Err(Fault::FamilyRevoked);
            }
        }
        if let Some(nb) = self.not_before.get(&subject) {
            // Without `iat` the token cannot show it came after: refused.
            if iat.is_none_or(|iat| iat * 1000.0 < *nb as f64) {
                return Err(Fault::SignedOut);
            }
        }
        let mut attrs = Vec::new();
        for (attr, claim) in &issuer.claims {
            let value = if claim == AUTH_AGE {
                seconds(c.get("auth_time"))
                    .flatten()
                    .map(|t| (now_s - t).floor())
                    .filter(|age| *age >= 0.0)
                    .map(Attr::Num)
            } else {
                c.get(claim).and_then(attr_of)
            };
            if let Some(v) = value {
                attrs.push((attr.clone(), v));
            }
        }
        Ok(Admission::Admitted(Admitted {
            subject,
            attrs,
            mapped: issuer.claims.iter().map(|(a, _)| a.clone()).collect(),
        }))
    }
}

/// The key a token names: by `kid`, or the issuer's only key; its algorithm must be the token's.
fn pick_key<'i>(issuer: &'i Issuer, jws: &Jws<'_>) -> Result<&'i Jwk, Fault> {
    let key = match &jws.kid {
        Some(kid) => issuer
            .keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid.as_str())),
        None => match issuer.keys.as_slice() {
            [only] => Some(only),
            _ => None,
        },
    }
    .ok_or(Fault::Key)?;
    if key.alg != jws.alg {
        return Err(Fault::Algorithm);
    }
    Ok(key)
}

fn audience(issuer: &Issuer, aud: Option<&Value>) -> Result<(), Fault> {
    let ok = |a: &Value| {
        a.as_str()
            .is_some_and(|a| issuer.audiences.iter().any(|x| x == a))
    };
    let held = match aud {
        Some(Value::Array(list)) => list.iter().any(ok),
        Some(a) => ok(a),
        None => false,
    };
    if held {
        Ok(())
    } else {
        Err(Fault::Audience)
    }
}

/// The subject the issuer's template makes of the claims.
fn subject_of(issuer: &Issuer, c: &Members) -> Result<String, Fault> {
    let mut out = String::new();
    for p in issuer.subject_parts() {
        match p {
            Part::Lit(s) => out.push_str(s),
            Part::Claim(name) => {
                out.push_str(c.get(name).and_then(Value::as_str).ok_or(Fault::Subject)?)
            }
        }
    }
    if is_valid_id(&out) {
        Ok(out)
    } else {
        Err(Fault::Subject)
    }
}

/// Signature verdicts a host remembers, so that a token verified once is not verified again: a
/// verdict is a fact about bytes (algorithm, key, signed bytes, signature), whatever the state,
/// and the state still decides every check. A direct-mapped table of [`Verdicts::SLOTS`] entries
/// by fingerprint (a SHA-256, so uniform); a newer verdict takes an older one's slot.
#[derive(Debug, Clone, Default)]
pub struct Verdicts(Vec<Option<([u8; 32], bool)>>);

impl Verdicts {
    pub const SLOTS: usize = 1024;

    /// The fingerprint of a signature to verify: SHA-256 over its algorithm, key (as JWK JSON),
    /// signed bytes and signature, each but the last ended by its length.
    pub fn fingerprint(v: &Verify<'_>) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(v.alg.as_str());
        for part in [v.key.to_json().as_bytes(), v.message] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.update(v.signature);
        h.finalize().into()
    }

    fn slot(f: &[u8; 32]) -> usize {
        usize::from(u16::from_le_bytes([f[0], f[1]])) % Self::SLOTS
    }

    /// The verdict remembered for fingerprint `f`.
    pub fn get(&self, f: &[u8; 32]) -> Option<bool> {
        match self.0.get(Self::slot(f)) {
            Some(Some((g, ok))) if g == f => Some(*ok),
            _ => None,
        }
    }

    pub fn put(&mut self, f: [u8; 32], ok: bool) {
        if self.0.is_empty() {
            self.0.resize(Self::SLOTS, None);
        }
        if let Some(s) = self.0.get_mut(Self::slot(&f)) {
            *s = Some((f, ok));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::plain_unique_keys;

    #[test]
    fn an_objects_own_keys_are_unique_and_plain() {
        for ok in [
            r#"{}"#,
            r#"{"a":1,"b":{"a":2,"a":3},"c":["a","a"]}"#,
            r#"{"a":"x\"y","b":"\\","c":[{"a":1}],"d":{}}"#,
            r#" { "a" : "b" , "b" : "a" } "#,
        ] {
            assert!(plain_unique_keys(ok), "{ok}");
        }
        for bad in [
            r#"{"a":1,"a":2}"#,
            r#"{"a":{"x":[1,{"y":2}]},"b":"\"","a":3}"#,
            r#"{"\u0061":1}"#,
            r#"{"a\"b":1}"#,
        ] {
            assert!(!plain_unique_keys(bad), "{bad}");
        }
    }
}
