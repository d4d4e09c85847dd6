//! Identity: the identity providers whose tokens an edge accepts (`issuers`) and the revoked
//! sessions (`sessions`) of docs/model.md, "Tokens and sessions". Name-keyed and the same in a
//! [`crate::State`] and a [`crate::Content`]; read by hand from the model's JSON, which is also
//! its wire form (one JSON text, docs/formats.md), so that every error names its field and the
//! wasm carries no decoder of its own for it.

use std::borrow::Borrow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use crate::error::{ModelError, ModelErrorKind as K};
use crate::id::is_valid_id;
use crate::state::shorten;

/// At most this many issuers in a model.
pub const MAX_ISSUERS: usize = 16;
/// At most this many keys per issuer.
pub const MAX_KEYS: usize = 16;
/// At most this many audiences per issuer (claims mapped: at most the context's 32 keys).
pub const MAX_AUDIENCES: usize = 16;
/// The largest `leeway_s` an issuer may set.
pub const MAX_LEEWAY_S: u64 = 300;
/// The smallest and largest RSA modulus accepted, in bits.
pub const RSA_BITS: (usize, usize) = (2048, 8192);
/// A string of an issuer (name, audience, template, claim name, key id) or a session entry.
pub const MAX_NAME_BYTES: usize = 256;
/// The claim that computes the time since authentication, in seconds.
pub const AUTH_AGE: &str = "@auth_age_s";

/// A token signature algorithm (only asymmetric ones: never `none`, never HMAC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Alg {
    Rs256,
    Es256,
    EdDsa,
}

impl Alg {
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<Alg> {
        match s {
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            "EdDSA" => Some(Alg::EdDsa),
            _ => None,
        }
    }
}

/// A public key of an issuer: its id, algorithm and public parameters (base64url, checked).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Jwk {
    pub kid: Option<String>,
    pub alg: Alg,
    /// RSA: `n` (modulus) and `e` (exponent). EC P-256: `x` and `y`. Ed25519: `x` and empty.
    pub a: String,
    pub b: String,
}

impl Jwk {
    /// The key as JWK JSON (what WebCrypto's `importKey("jwk", ...)` takes), canonical.
    pub fn to_json(&self) -> String {
        let q = crate::wire::json_text::quote;
        let kid = self
            .kid
            .as_deref()
            .map(|k| format!(",\"kid\":{}", q(k)))
            .unwrap_or_default();
        let body = match self.alg {
            Alg::Rs256 => format!("\"kty\":\"RSA\",\"n\":{},\"e\":{}", q(&self.a), q(&self.b)),
            Alg::Es256 => format!(
                "\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":{},\"y\":{}",
                q(&self.a),
                q(&self.b)
            ),
            Alg::EdDsa => format!("\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":{}", q(&self.a)),
        };
        format!("{{{body},\"alg\":\"{}\"{kid}}}", self.alg.as_str())
    }

    /// The decoded public parameters: `(n, e)`, `(x, y)` or `(x, [])`.
    pub fn params(&self) -> (Vec<u8>, Vec<u8>) {
        let d = |s: &str| URL_SAFE_NO_PAD.decode(s).unwrap_or_default();
        (d(&self.a), d(&self.b))
    }
}

/// One identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// Sorted, unique.
    pub audiences: Vec<String>,
    /// In the model's order.
    pub keys: Vec<Jwk>,
    /// The subject template: `{claim}` placeholders, e.g. `user:{sub}`.
    pub subject: String,
    /// `(attribute, claim)`, sorted by attribute; the claim may be [`AUTH_AGE`].
    pub claims: Vec<(String, String)>,
    pub leeway_s: u64,
}

/// A map kept as a vector sorted by key: the few operations identity needs, at a fraction of a
/// `BTreeMap`'s code in the wasm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table<K, V>(Vec<(K, V)>);

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Table(Vec::new())
    }
}

impl<K: Ord, V> Table<K, V> {
    fn find<Q: Ord + ?Sized>(&self, k: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.0.binary_search_by(|(x, _)| x.borrow().cmp(k))
    }

    pub fn get<Q: Ord + ?Sized>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(k)
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|(_, v)| v)
    }

    pub fn contains_key<Q: Ord + ?Sized>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(k).is_ok()
    }

    /// Puts `v` at `k`; the value it replaced, if any.
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        match self.find(&k) {
            Ok(i) => self.0.get_mut(i).map(|e| std::mem::replace(&mut e.1, v)),
            Err(i) => {
                self.0.insert(i, (k, v));
                None
            }
        }
    }

    pub fn remove<Q: Ord + ?Sized>(&mut self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let i = self.find(k).ok()?;
        Some(self.0.remove(i).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn into_keys(self) -> impl Iterator<Item = K> {
        self.0.into_iter().map(|(k, _)| k)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.0.retain(|(k, v)| keep(k, v));
    }
}

/// The issuers and the session revocations of one state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    pub issuers: Table<String, Issuer>,
    /// Revoked session ids (`sid`) to the time (ms) their entry may be dropped.
    pub revoked: Table<String, u64>,
    /// Revoked token families, `(claim, family)`, to the time their entry may be dropped.
    pub families: Table<(String, String), u64>,
    /// Per subject: tokens issued (`iat`) before this time (ms) are refused.
    pub not_before: Table<String, u64>,
}

/// The claim a family revocation reads when it names none.
pub const DEFAULT_FAMILY_CLAIM: &str = "fam";

/// `at.key`, a path in the model's JSON.
#[inline(never)]
fn join(at: &str, key: &str) -> String {
    let mut s = String::with_capacity(at.len() + 1 + key.len());
    s.push_str(at);
    s.push('.');
    s.push_str(key);
    s
}

/// `at[i]`.
#[inline(never)]
fn index(at: &str, i: usize) -> String {
    format!("{at}[{i}]")
}

type R<T> = Result<T, ModelError>;

/// Every refusal of this module: a kind, a path, a fixed sentence (the path says which entry).
#[cold]
#[inline(never)]
fn fail(kind: K, at: String, message: &'static str) -> ModelError {
    ModelError {
        kind,
        at,
        message: message.to_string(),
    }
}

/// A JSON object of the model and its path; its fields read with their paths named on errors.
struct Obj<'v, 'a> {
    m: &'v Map<String, Value>,
    at: &'a str,
}

impl<'v, 'a> Obj<'v, 'a> {
    /// `v` as an object whose fields are among `known` (`unknown_field` names the first other).
    fn new(v: &'v Value, at: &'a str, known: &[&str]) -> R<Self> {
        let m = v
            .as_object()
            .ok_or_else(|| fail(K::InvalidJson, at.to_string(), "expected an object"))?;
        if let Some(k) = m.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(fail(K::UnknownField, join(at, k), "unknown field"));
        }
        Ok(Obj { m, at })
    }

    fn get(&self, key: &str) -> Option<&'v Value> {
        self.m.get(key)
    }

    fn fail(&self, key: &str, kind: K, message: &'static str) -> ModelError {
        fail(kind, join(self.at, key), message)
    }

    fn req(&self, key: &str) -> R<&'v Value> {
        self.get(key)
            .ok_or_else(|| self.fail(key, K::InvalidJson, "missing field"))
    }

    fn name(&self, key: &str) -> R<String> {
        name(self.req(key)?).map_err(|(k, m)| self.fail(key, k, m))
    }

    fn time(&self, key: &str) -> R<u64> {
        self.req(key)?
            .as_u64()
            .ok_or_else(|| self.fail(key, K::InvalidJson, "expected a time in Unix milliseconds"))
    }

    fn list(&self, key: &str) -> R<Option<&'v Vec<Value>>> {
        self.get(key)
            .map(|v| {
                v.as_array()
                    .ok_or_else(|| self.fail(key, K::InvalidJson, "expected an array"))
            })
            .transpose()
    }

    fn object(&self, key: &str) -> R<Option<&'v Map<String, Value>>> {
        self.get(key)
            .map(|v| {
                v.as_object()
                    .ok_or_else(|| self.fail(key, K::InvalidJson, "expected an object"))
            })
            .transpose()
    }

    /// A base64url field: its text and bytes.
    fn b64(&self, key: &str) -> R<(String, Vec<u8>)> {
        let s = self
            .req(key)?
            .as_str()
            .ok_or_else(|| self.fail(key, K::InvalidJson, "expected a base64url string"))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| self.fail(key, K::InvalidValue, "not base64url without padding"))?;
        Ok((s.to_string(), bytes))
    }
}

/// A short string (a name, a claim, an id), or what is wrong with it.
fn name(v: &Value) -> Result<String, (K, &'static str)> {
    let s = v.as_str().ok_or((K::InvalidJson, "expected a string"))?;
    if s.is_empty() || s.len() > MAX_NAME_BYTES || s.chars().any(char::is_control) {
        return Err((
            K::InvalidValue,
            "a string of 1 to 256 bytes without control characters",
        ));
    }
    Ok(s.to_string())
}

/// [`name`] of a value at `at`.
fn name_at(v: &Value, at: String) -> R<String> {
    name(v).map_err(|(k, m)| fail(k, at, m))
}

/// Members of a JWK that only a private or symmetric key has: refused, so that a secret is never
/// published to every edge by mistake.
const PRIVATE_MEMBERS: [&str; 9] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"];

fn read_jwk(v: &Value, at: &str) -> R<Jwk> {
    let m = v
        .as_object()
        .ok_or_else(|| fail(K::InvalidJson, at.to_string(), "expected an object"))?;
    let o = Obj { m, at };
    if let Some(p) = PRIVATE_MEMBERS.iter().find(|p| m.contains_key(**p)) {
        return Err(o.fail(
            p,
            K::InvalidValue,
            "a private or symmetric key: issuers take public keys only",
        ));
    }
    let text = |key: &str| m.get(key).and_then(Value::as_str);
    if m.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
        return Err(o.fail("use", K::InvalidValue, "a key's `use` must be `sig`"));
    }
    let kid = match m.get("kid") {
        Some(_) => Some(o.name("kid")?),
        None => None,
    };
    let (alg, a, b) = match (text("kty"), text("crv")) {
        (Some("RSA"), _) => {
            let (n, nb) = o.b64("n")?;
            let (e, eb) = o.b64("e")?;
            let bits = nb
                .iter()
                .position(|b| *b != 0)
                .map_or(0, |i| (nb.len() - i) * 8);
            if !(RSA_BITS.0..=RSA_BITS.1).contains(&bits) {
                return Err(o.fail("n", K::InvalidValue, "an RSA modulus of 2048 to 8192 bits"));
            }
            if eb.is_empty() || eb.len() > 8 {
                return Err(o.fail("e", K::InvalidValue, "an RSA exponent of 1 to 8 bytes"));
            }
            (Alg::Rs256, n, e)
        }
        (Some("EC"), Some("P-256")) => {
            let (x, xb) = o.b64("x")?;
            let (y, yb) = o.b64("y")?;
            if xb.len() != 32 || yb.len() != 32 {
                return Err(fail(
                    K::InvalidValue,
                    at.to_string(),
                    "a P-256 key's `x` and `y` are 32 bytes each",
                ));
            }
            (Alg::Es256, x, y)
        }
        (Some("OKP"), Some("Ed25519")) => {
            let (x, xb) = o.b64("x")?;
            if xb.len() != 32 {
                return Err(o.fail("x", K::InvalidValue, "an Ed25519 key's `x` is 32 bytes"));
            }
            (Alg::EdDsa, x, String::new())
        }
        _ => {
            return Err(fail(
                K::InvalidValue,
                at.to_string(),
                "a key is RSA, EC on P-256 or OKP on Ed25519 (`kty`, `crv`)",
            ))
        }
    };
    if m.get("alg")
        .is_some_and(|named| named.as_str() != Some(alg.as_str()))
    {
        return Err(o.fail(
            "alg",
            K::InvalidValue,
            "not the algorithm of this key (RS256 for RSA, ES256 for P-256, EdDSA for Ed25519)",
        ));
    }
    Ok(Jwk { kid, alg, a, b })
}

/// Whether a subject template's placeholders are claim names, at least one.
fn template_parts(t: &str) -> Option<Vec<Part<'_>>> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let (lit, tail) = rest.split_at(open);
        if lit.contains('}') {
            return None;
        }
        let close = tail.find('}')?;
        let claim = tail.get(1..close)?;
        if claim.is_empty() || claim.contains('{') {
            return None;
        }
        if !lit.is_empty() {
            out.push(Part::Lit(lit));
        }
        out.push(Part::Claim(claim));
        rest = tail.get(close + 1..)?;
    }
    if rest.contains('}') {
        return None;
    }
    if !rest.is_empty() {
        out.push(Part::Lit(rest));
    }
    out.iter()
        .any(|p| matches!(p, Part::Claim(_)))
        .then_some(out)
}

pub(crate) enum Part<'a> {
    Lit(&'a str),
    Claim(&'a str),
}

impl Issuer {
    pub(crate) fn subject_parts(&self) -> Vec<Part<'_>> {
        template_parts(&self.subject).unwrap_or_default()
    }
}

fn read_issuer(v: &Value, at: &str) -> R<(String, Issuer)> {
    let known = [
        "issuer",
        "audiences",
        "jwks",
        "subject",
        "claims",
        "leeway_s",
    ];
    let o = Obj::new(v, at, &known)?;
    let iss = o.name("issuer")?;
    let mut audiences = std::collections::BTreeSet::new();
    let aud_at = join(at, "audiences");
    let list = o
        .list("audiences")?
        .ok_or_else(|| o.fail("audiences", K::InvalidJson, "missing field"))?;
    for (i, a) in list.iter().enumerate() {
        audiences.insert(name_at(a, index(&aud_at, i))?);
    }
    if audiences.is_empty() || audiences.len() > MAX_AUDIENCES {
        return Err(fail(K::InvalidValue, aud_at, "1 to 16 audiences"));
    }
    let jwks_at = join(at, "jwks");
    let jwks = Obj::new(o.req("jwks")?, &jwks_at, &["keys"])?;
    let keys_at = join(&jwks_at, "keys");
    let list = jwks
        .list("keys")?
        .ok_or_else(|| jwks.fail("keys", K::InvalidJson, "missing field"))?;
    let mut keys: Vec<Jwk> = Vec::new();
    for (i, k) in list.iter().enumerate() {
        let here = index(&keys_at, i);
        let key = read_jwk(k, &here)?;
        if key.kid.is_some() && keys.iter().any(|o| o.kid == key.kid) {
            return Err(fail(
                K::DuplicateId,
                join(&here, "kid"),
                "two keys with the same `kid`",
            ));
        }
        keys.push(key);
    }
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(fail(K::InvalidValue, keys_at, "1 to 16 keys"));
    }
    if keys.len() > 1 && keys.iter().any(|k| k.kid.is_none()) {
        return Err(fail(
            K::InvalidValue,
            keys_at,
            "an issuer with several keys names each with a `kid`",
        ));
    }
    let subject = o.name("subject")?;
    if template_parts(&subject).is_none() {
        return Err(o.fail(
            "subject",
            K::InvalidValue,
            "a subject template names at least one claim, as in `user:{sub}`",
        ));
    }
    let mut claims: Vec<(String, String)> = Vec::new();
    if let Some(c) = o.object("claims")? {
        let c_at = join(at, "claims");
        for (attr, claim) in c {
            let here = join(&c_at, attr);
            if !crate::condition::is_attr_name(attr)
                || crate::condition::RESERVED_KEYS.contains(&attr.as_str())
            {
                return Err(fail(
                    K::MalformedId,
                    here,
                    "an attribute name is [a-z][a-z0-9_]*, not `now` or `at_least_epoch`",
                ));
            }
            let claim = name_at(claim, here)?;
            // In attribute order (a JSON object's keys may come in any order).
            let at = claims
                .binary_search_by(|(a, _)| a.cmp(attr))
                .unwrap_or_else(|i| i);
            claims.insert(at, (attr.clone(), claim));
        }
        if claims.len() > crate::condition::MAX_CONTEXT_KEYS {
            return Err(fail(K::InvalidValue, c_at, "at most 32 claims"));
        }
    }
    let leeway_s = match o.get("leeway_s") {
        None => 0,
        Some(l) => l.as_u64().filter(|s| *s <= MAX_LEEWAY_S).ok_or_else(|| {
            o.fail(
                "leeway_s",
                K::InvalidValue,
                "a number of seconds from 0 to 300",
            )
        })?,
    };
    Ok((
        iss,
        Issuer {
            audiences: audiences.into_iter().collect(),
            keys,
            subject,
            claims,
            leeway_s,
        },
    ))
}

impl Identity {
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
            && self.revoked.is_empty()
            && self.families.is_empty()
            && self.not_before.is_empty()
    }

    /// The number of entries, for limits and `inspect`.
    pub fn len(&self) -> usize {
        self.issuers.len() + self.revoked.len() + self.families.len() + self.not_before.len()
    }

    /// Reads a model's `issuers` and `sessions` (either may be absent). Duplicates are refused.
    pub fn from_model(issuers: Option<&Value>, sessions: Option<&Value>) -> R<Identity> {
        let mut out = Identity::default();
        if let Some(list) = issuers {
            let list = list
                .as_array()
                .ok_or_else(|| fail(K::InvalidJson, "issuers".into(), "expected an array"))?;
            if list.len() > MAX_ISSUERS {
                return Err(fail(
                    K::LimitExceeded,
                    "issuers".into(),
                    "at most 16 issuers",
                ));
            }
            for (i, v) in list.iter().enumerate() {
                let at = index("issuers", i);
                let (iss, issuer) = read_issuer(v, &at)?;
                if out.issuers.insert(iss, issuer).is_some() {
                    return Err(fail(
                        K::DuplicateId,
                        join(&at, "issuer"),
                        "duplicate issuer",
                    ));
                }
            }
        }
        if let Some(s) = sessions {
            out.read_sessions(s, "sessions", false)?;
        }
        Ok(out)
    }

    /// Reads a `sessions` object into this identity; `replace` lets an entry replace one already
    /// there (operations), else a duplicate is refused (a model).
    fn read_sessions(&mut self, v: &Value, at: &str, replace: bool) -> R<()> {
        let o = Obj::new(v, at, &["revoked", "revoked_families", "not_before"])?;
        if let Some(list) = o.list("revoked")? {
            let r_at = join(at, "revoked");
            for (i, e) in list.iter().enumerate() {
                let here = index(&r_at, i);
                let e = Obj::new(e, &here, &["sid", "until"])?;
                let (sid, until) = (e.name("sid")?, e.time("until")?);
                if self.revoked.insert(sid, until).is_some() && !replace {
                    return Err(fail(K::DuplicateId, here, "duplicate revoked session"));
                }
            }
        }
        if let Some(list) = o.list("revoked_families")? {
            let f_at = join(at, "revoked_families");
            for (i, e) in list.iter().enumerate() {
                let here = index(&f_at, i);
                let e = Obj::new(e, &here, &["family", "claim", "until"])?;
                let family = e.name("family")?;
                let claim = match e.get("claim") {
                    Some(_) => e.name("claim")?,
                    None => DEFAULT_FAMILY_CLAIM.to_string(),
                };
                let until = e.time("until")?;
                if self.families.insert((claim, family), until).is_some() && !replace {
                    return Err(fail(K::DuplicateId, here, "duplicate revoked family"));
                }
            }
        }
        if let Some(map) = o.object("not_before")? {
            let n_at = join(at, "not_before");
            let nb = Obj { m: map, at: &n_at };
            for subject in map.keys() {
                if !is_valid_id(subject) {
                    return Err(nb.fail(subject, K::MalformedId, "not a subject id"));
                }
                self.not_before.insert(subject.clone(), nb.time(subject)?);
            }
        }
        Ok(())
    }

    /// Drops the session entries whose `until` is at or before `now` (ms): the origin does
    /// this when it compiles. Whether anything was dropped.
    pub fn drop_expired(&mut self, now: u64) -> bool {
        let before = self.revoked.len() + self.families.len();
        self.revoked.retain(|_, until| *until > now);
        self.families.retain(|_, until| *until > now);
        before != self.revoked.len() + self.families.len()
    }

    /// The model's `issuers` array, canonical.
    pub fn issuers_json(&self) -> String {
        let q = crate::wire::json_text::quote;
        let items: Vec<String> = self
            .issuers
            .iter()
            .map(|(iss, i)| issuer_json(q(iss), i))
            .collect();
        format!("[{}]", items.join(","))
    }

    /// The model's `sessions` object, canonical.
    pub fn sessions_json(&self) -> String {
        let q = crate::wire::json_text::quote;
        let revoked: Vec<String> = self
            .revoked
            .iter()
            .map(|(sid, u)| format!("{{\"sid\":{},\"until\":{u}}}", q(sid)))
            .collect();
        let families: Vec<String> = self
            .families
            .iter()
            .map(|((claim, fam), u)| {
                format!(
                    "{{\"family\":{},\"claim\":{},\"until\":{u}}}",
                    q(fam),
                    q(claim)
                )
            })
            .collect();
        let nb: Vec<String> = self
            .not_before
            .iter()
            .map(|(s, t)| format!("{}:{t}", q(s)))
            .collect();
        format!(
            "{{\"revoked\":[{}],\"revoked_families\":[{}],\"not_before\":{{{}}}}}",
            revoked.join(","),
            families.join(","),
            nb.join(",")
        )
    }

    /// The wire form: `{"issuers": [...], "sessions": {...}}`, canonical (docs/formats.md).
    pub fn to_text(&self) -> String {
        format!(
            "{{\"issuers\":{},\"sessions\":{}}}",
            self.issuers_json(),
            self.sessions_json()
        )
    }

    /// Reads the wire form back.
    pub fn from_text(text: &str) -> Result<Identity, ModelError> {
        let v: Value = serde_json::from_str(text)
            .map_err(|_| fail(K::InvalidJson, "identity".into(), "not JSON"))?;
        let o = Obj::new(&v, "identity", &["issuers", "sessions"])?;
        Identity::from_model(o.get("issuers"), o.get("sessions"))
    }
}

fn issuer_json(iss: String, i: &Issuer) -> String {
    let q = crate::wire::json_text::quote;
    let keys: Vec<String> = i.keys.iter().map(Jwk::to_json).collect();
    let claims: Vec<String> = i
        .claims
        .iter()
        .map(|(a, c)| format!("{}:{}", q(a), q(c)))
        .collect();
    format!(
        "{{\"issuer\":{iss},\"audiences\":{},\"jwks\":{{\"keys\":[{}]}},\"subject\":{},\"claims\":{{{}}},\"leeway_s\":{}}}",
        crate::wire::json_text::strings(&i.audiences),
        keys.join(","),
        q(&i.subject),
        claims.join(","),
        i.leeway_s
    )
}

/// The changes a delta makes to an [`Identity`]: entries set (added or replaced) and removed.
/// On the wire: one string, the JSON `{"set": identity, "del": {...}}` (docs/formats.md).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentityOps {
    pub set: Identity,
    pub del_issuers: Vec<String>,
    pub del_revoked: Vec<String>,
    pub del_families: Vec<(String, String)>,
    pub del_not_before: Vec<String>,
}

impl IdentityOps {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
            && self.del_issuers.is_empty()
            && self.del_revoked.is_empty()
            && self.del_families.is_empty()
            && self.del_not_before.is_empty()
    }

    pub fn to_text(&self) -> String {
        use crate::wire::json_text::{quote, strings};
        let fams: Vec<String> = self
            .del_families
            .iter()
            .map(|(c, f)| format!("[{},{}]", quote(c), quote(f)))
            .collect();
        format!(
            "{{\"set\":{},\"del\":{{\"issuers\":{},\"revoked\":{},\"revoked_families\":[{}],\"not_before\":{}}}}}",
            self.set.to_text(),
            strings(&self.del_issuers),
            strings(&self.del_revoked),
            fams.join(","),
            strings(&self.del_not_before)
        )
    }

    pub fn from_text(text: &str) -> Option<IdentityOps> {
        use crate::wire::json_text as j;
        let v: Value = serde_json::from_str(text).ok()?;
        let m = v.as_object()?;
        let set = m.get("set")?.as_object()?;
        let mut out = IdentityOps {
            set: Identity::from_model(set.get("issuers"), None).ok()?,
            ..IdentityOps::default()
        };
        if let Some(s) = set.get("sessions") {
            out.set.read_sessions(s, "sessions", true).ok()?;
        }
        let del = m.get("del")?;
        out.del_issuers = j::string_list(del.get("issuers")?)?;
        out.del_revoked = j::string_list(del.get("revoked")?)?;
        out.del_families = j::named_texts(del.get("revoked_families")?)?;
        out.del_not_before = j::string_list(del.get("not_before")?)?;
        Some(out)
    }

    /// The counts `inspect` shows.
    pub fn counts(&self) -> [(&'static str, usize); 2] {
        [
            ("identitySet", self.set.len()),
            (
                "identityDel",
                self.del_issuers.len()
                    + self.del_revoked.len()
                    + self.del_families.len()
                    + self.del_not_before.len(),
            ),
        ]
    }
}

fn gone(what: &str, id: &str) -> crate::Error {
    crate::Error::InvalidDelta(format!(
        "the delta removes {what} `{}`, which is not there",
        shorten(id)
    ))
}

impl Identity {
    /// Applies `ops` strictly: every removed entry must be there. Removals first, then sets.
    pub fn apply(&self, ops: &IdentityOps) -> Result<Identity, crate::Error> {
        let mut out = self.clone();
        for i in &ops.del_issuers {
            out.issuers.remove(i).ok_or_else(|| gone("issuer", i))?;
        }
        for s in &ops.del_revoked {
            out.revoked
                .remove(s)
                .ok_or_else(|| gone("revoked session", s))?;
        }
        for f in &ops.del_families {
            out.families
                .remove(f)
                .ok_or_else(|| gone("revoked family", &f.1))?;
        }
        for s in &ops.del_not_before {
            out.not_before
                .remove(s)
                .ok_or_else(|| gone("not_before of", s))?;
        }
        let s = &ops.set;
        for (k, v) in s.issuers.iter() {
            out.issuers.insert(k.clone(), v.clone());
        }
        for (k, v) in s.revoked.iter() {
            out.revoked.insert(k.clone(), *v);
        }
        for (k, v) in s.families.iter() {
            out.families.insert(k.clone(), *v);
        }
        for (k, v) in s.not_before.iter() {
            out.not_before.insert(k.clone(), *v);
        }
        Ok(out)
    }

    /// The operations that turn `self` into `after`, and whether they can refuse a token this
    /// state accepts (a revocation): a session or family revoked or kept longer, a `not_before`
    /// set or raised, an issuer removed, or changed in a way other than adding keys or
    /// audiences or widening its leeway.
    pub fn diff(&self, after: &Identity) -> (IdentityOps, bool) {
        let mut ops = IdentityOps::default();
        let mut revokes = false;
        for (iss, old) in self.issuers.iter() {
            match after.issuers.get(iss) {
                None => {
                    ops.del_issuers.push(iss.clone());
                    revokes = true;
                }
                Some(new) if new != old => {
                    revokes |= !widens(old, new);
                    ops.set.issuers.insert(iss.clone(), new.clone());
                }
                Some(_) => {}
            }
        }
        for (iss, new) in after.issuers.iter() {
            if !self.issuers.contains_key(iss) {
                ops.set.issuers.insert(iss.clone(), new.clone());
            }
        }
        revokes |= diff_map(
            &self.revoked,
            &after.revoked,
            &mut ops.set.revoked,
            &mut ops.del_revoked,
        );
        revokes |= diff_map(
            &self.families,
            &after.families,
            &mut ops.set.families,
            &mut ops.del_families,
        );
        revokes |= diff_map(
            &self.not_before,
            &after.not_before,
            &mut ops.set.not_before,
            &mut ops.del_not_before,
        );
        (ops, revokes)
    }
}

/// Whether `new` accepts every token `old` does: the same subject and claims, every old key and
/// audience kept, a leeway at least as wide, and a single key not joined by others.
fn widens(old: &Issuer, new: &Issuer) -> bool {
    old.subject == new.subject
        && old.claims == new.claims
        && new.leeway_s >= old.leeway_s
        && old.audiences.iter().all(|a| new.audiences.contains(a))
        && old.keys.iter().all(|k| new.keys.contains(k))
        // A token without `kid` is taken only while the issuer has one key: a second key
        // refuses it.
        && (old.keys.len() != 1 || new.keys.len() == 1)
}

/// Sets and deletions between two maps whose larger value is the stricter one (a revocation kept
/// longer, a later `not_before`); whether any entry is new or rose.
fn diff_map<K: Ord + Clone>(
    before: &Table<K, u64>,
    after: &Table<K, u64>,
    set: &mut Table<K, u64>,
    del: &mut Vec<K>,
) -> bool {
    let mut rises = false;
    for (k, v) in after.iter() {
        match before.get(k) {
            Some(old) if old == v => {}
            old => {
                rises |= old.is_none_or(|o| v > o);
                set.insert(k.clone(), *v);
            }
        }
    }
    del.extend(before.keys().filter(|k| !after.contains_key(*k)).cloned());
    rises
}

/// On the wire: one MessagePack string holding [`Identity::to_text`].
impl serde::Serialize for Identity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_text())
    }
}

impl<'de> serde::Deserialize<'de> for Identity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Identity::from_text(&text).map_err(serde::de::Error::custom)
    }
}

/// On the wire: one MessagePack string holding [`IdentityOps::to_text`].
impl serde::Serialize for IdentityOps {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_text())
    }
}

impl<'de> serde::Deserialize<'de> for IdentityOps {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        IdentityOps::from_text(&text)
            .ok_or_else(|| serde::de::Error::custom("malformed identity operations"))
    }
}
