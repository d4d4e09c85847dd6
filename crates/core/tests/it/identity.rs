//! Token issuers and session revocations: the model's errors name their fields, and, as
//! properties over random pairs of identities and random tokens, the diff marks as a revocation
//! every change after which a token admitted before is refused or admitted otherwise (another
//! subject, other attributes), and applying the diff's operations gives the second identity.
//!
//! Signatures here are a stand-in (SHA-256 of the key's `x` and the signed bytes): the real
//! algorithms are tested on the shared token cases (crates/protocol/tests/tokens.rs and the
//! hosts' suites); these properties are about gate 6's other checks and the diff.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use edge_authz::token::{Admission, Verify};
use edge_authz::{Identity, Model, ModelErrorKind};
use proptest::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const CLOCK: u64 = 1_800_000_000_000;
const ISSUERS: [&str; 2] = ["https://a.example/", "https://b.example/"];
const AUDIENCES: [&str; 2] = ["api", "web"];
const SIDS: [&str; 3] = ["s0", "s1", "s2"];
const FAMILIES: [(&str, &str); 3] = [("fam", "f0"), ("fam", "f1"), ("rt", "f0")];
const SUBJECTS: [&str; 2] = ["a", "b"];

fn key_x(k: usize) -> String {
    URL_SAFE_NO_PAD.encode([k as u8 + 1; 32])
}

fn tag(x: &[u8], message: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(x);
    h.update(message);
    h.finalize().to_vec()
}

fn stand_in(v: &Verify<'_>) -> Option<bool> {
    Some(tag(&v.key.params().0, v.message) == v.signature)
}

/// An issuer: which of three keys, audiences, template, claims, leeway (bits and indices).
#[derive(Debug, Clone)]
struct IssuerSpec {
    keys: u8,
    auds: u8,
    email_subject: bool,
    map_amr: bool,
    leeway: bool,
}

#[derive(Debug, Clone)]
struct IdSpec {
    issuers: [Option<IssuerSpec>; 2],
    revoked: [Option<u64>; 3],
    families: [Option<u64>; 3],
    not_before: [Option<u64>; 2],
}

fn issuer_spec() -> impl Strategy<Value = Option<IssuerSpec>> {
    prop::option::weighted(
        0.8,
        (1u8..8, 1u8..4, any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(keys, auds, email_subject, map_amr, leeway)| IssuerSpec {
                keys,
                auds,
                email_subject,
                map_amr,
                leeway,
            },
        ),
    )
}

fn until() -> impl Strategy<Value = Option<u64>> {
    prop::option::of(prop_oneof![Just(1u64), Just(2u64)])
}

fn id_spec() -> impl Strategy<Value = IdSpec> {
    (
        [issuer_spec(), issuer_spec()],
        [until(), until(), until()],
        [until(), until(), until()],
        [
            prop::option::of(prop_oneof![
                Just(1_799_999_000_000u64),
                Just(1_799_999_500_000u64)
            ]),
            prop::option::of(prop_oneof![
                Just(1_799_999_000_000u64),
                Just(1_799_999_500_000u64)
            ]),
        ],
    )
        .prop_map(|(issuers, revoked, families, not_before)| IdSpec {
            issuers,
            revoked,
            families,
            not_before,
        })
}

impl IdSpec {
    fn identity(&self) -> Identity {
        let mut issuers = Vec::new();
        for (i, spec) in self.issuers.iter().enumerate() {
            let Some(s) = spec else { continue };
            let keys: Vec<Value> = (0..3)
                .filter(|k| s.keys & (1 << k) != 0)
                .map(|k| json!({"kty": "OKP", "crv": "Ed25519", "kid": format!("k{k}"), "x": key_x(k)}))
                .collect();
            let auds: Vec<&str> = (0..2)
                .filter(|a| s.auds & (1 << a) != 0)
                .map(|a| AUDIENCES[a])
                .collect();
            let mut claims = json!({"tier": "tier"});
            if s.map_amr {
                claims["amr"] = json!("amr");
            }
            issuers.push(json!({
                "issuer": ISSUERS[i], "audiences": auds, "jwks": {"keys": keys},
                "subject": if s.email_subject { "user:{email}" } else { "user:{sub}" },
                "claims": claims, "leeway_s": if s.leeway { 60 } else { 0 },
            }));
        }
        let revoked: Vec<Value> = SIDS
            .iter()
            .zip(self.revoked)
            .filter_map(|(sid, u)| u.map(|u| json!({"sid": sid, "until": CLOCK + u})))
            .collect();
        let families: Vec<Value> = FAMILIES
            .iter()
            .zip(self.families)
            .filter_map(|((claim, fam), u)| {
                u.map(|u| json!({"family": fam, "claim": claim, "until": CLOCK + u}))
            })
            .collect();
        let mut nb = serde_json::Map::new();
        for (s, t) in SUBJECTS.iter().zip(self.not_before) {
            if let Some(t) = t {
                nb.insert(format!("user:{s}"), json!(t));
            }
        }
        let sessions = json!({"revoked": revoked, "revoked_families": families, "not_before": nb});
        Identity::from_model(Some(&Value::Array(issuers)), Some(&sessions)).unwrap()
    }
}

/// A token: issuer, audience, key, subject, sid, family claim, iat, exp offset, attributes.
#[derive(Debug, Clone)]
struct TokenSpec {
    iss: usize,
    aud: usize,
    kid: usize,
    sub: usize,
    sid: usize,
    fam: usize,
    iat: usize,
    exp_past: bool,
    amr: bool,
}

fn token_spec() -> impl Strategy<Value = TokenSpec> {
    (
        // Mostly tokens that could be admitted: a known issuer and audience, a key it may have.
        (0usize..2, 0usize..2, 0usize..4, 0usize..2),
        (
            0usize..4,
            0usize..4,
            0usize..3,
            prop::bool::weighted(0.1),
            any::<bool>(),
        ),
    )
        .prop_map(
            |((iss, aud, kid, sub), (sid, fam, iat, exp_past, amr))| TokenSpec {
                iss,
                aud,
                kid,
                sub,
                sid,
                fam,
                iat,
                exp_past,
                amr,
            },
        )
}

impl TokenSpec {
    fn token(&self) -> String {
        let now = CLOCK / 1000;
        let mut header = json!({"alg": "EdDSA"});
        if self.kid < 3 {
            header["kid"] = json!(format!("k{}", self.kid));
        }
        let mut c = json!({
            "iss": ISSUERS.get(self.iss).copied().unwrap_or("https://evil.example/"),
            "aud": AUDIENCES.get(self.aud).copied().unwrap_or("other"),
            "sub": SUBJECTS[self.sub], "email": SUBJECTS[1 - self.sub],
            "exp": if self.exp_past { now - 30 } else { now + 3600 },
            "tier": "gold",
        });
        if let Some(s) = SIDS.get(self.sid) {
            c["sid"] = json!(s);
        }
        if let Some((claim, fam)) = FAMILIES.get(self.fam) {
            c[*claim] = json!(fam);
        }
        if self.iat < 2 {
            // Before or after the not_before values the specs use.
            c["iat"] = json!([1_799_999_200u64, 1_799_999_800u64][self.iat]);
        }
        if self.amr {
            c["amr"] = json!(["pwd", "mfa"]);
        }
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(c.to_string())
        );
        // Signed by the key the header names (k0 when none).
        let x = URL_SAFE_NO_PAD.decode(key_x(self.kid.min(2))).unwrap();
        let sig = tag(&x, signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

fn admit(id: &Identity, token: &str) -> Admission {
    id.admit(token, CLOCK, &mut stand_in)
}

/// One small change of an identity (so that a diff is not a revocation for another reason).
fn mutate(s: &IdSpec, m: (u8, usize, u8)) -> IdSpec {
    let mut s = s.clone();
    let (kind, i, v) = m;
    let flip = |u: &mut Option<u64>| *u = if u.is_some() { None } else { Some(1) };
    match kind % 9 {
        0 => flip(&mut s.revoked[i % 3]),
        1 => s.revoked[i % 3] = s.revoked[i % 3].map(|u| 3 - u),
        2 => flip(&mut s.families[i % 3]),
        3 => {
            let nb = &mut s.not_before[i % 2];
            *nb = match (v % 3, *nb) {
                (0, _) => None,
                (1, _) => Some(1_799_999_000_000),
                _ => Some(1_799_999_500_000),
            };
        }
        4 => {
            s.issuers[i % 2] = match &s.issuers[i % 2] {
                Some(_) => None,
                None => Some(IssuerSpec {
                    keys: 7,
                    auds: 3,
                    email_subject: false,
                    map_amr: true,
                    leeway: false,
                }),
            }
        }
        k => {
            if let Some(is) = &mut s.issuers[i % 2] {
                match k {
                    5 => is.keys = (is.keys ^ (1 << (v % 3))).max(1),
                    6 => is.auds = (is.auds ^ (1 << (v % 2))).max(1),
                    7 => is.email_subject = !is.email_subject,
                    _ => {
                        if v % 2 == 0 {
                            is.map_amr = !is.map_amr;
                        } else {
                            is.leeway = !is.leeway;
                        }
                    }
                }
            }
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    /// Every change after which a token admitted before is refused, or admitted as another
    /// subject or with other attributes, is a revocation; and the operations rebuild `b`.
    #[test]
    fn the_diff_marks_every_change_that_can_deny(a in id_spec(), m in (any::<u8>(), 0usize..6, any::<u8>()), tokens in prop::collection::vec(token_spec(), 1..48)) {
        let b = mutate(&a, m);
        let (a, b) = (a.identity(), b.identity());
        let (ops, revokes) = a.diff(&b);
        prop_assert_eq!(a.apply(&ops).unwrap(), b.clone());
        for t in &tokens {
            let token = t.token();
            let before = admit(&a, &token);
            if matches!(before, Admission::Admitted(_)) && admit(&b, &token) != before {
                prop_assert!(revokes, "{:?} then {:?} for {:?}", before, admit(&b, &token), t);
            }
        }
        // The operations and the identity survive their wire form.
        prop_assert_eq!(Identity::from_text(&b.to_text()).unwrap(), b.clone());
        prop_assert_eq!(edge_authz::IdentityOps::from_text(&ops.to_text()).unwrap(), ops);
    }
}

fn model_with(edit: impl FnOnce(&mut Value)) -> Result<(), (ModelErrorKind, String)> {
    let mut m: Value =
        serde_json::from_str(include_str!("../../../../examples/acme.json")).unwrap();
    m["issuers"] = json!([{
        "issuer": "https://idp.example/", "audiences": ["api"],
        "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": key_x(0)}]},
        "subject": "user:{sub}", "claims": {"amr": "amr", "mfa_age_s": "@auth_age_s"},
    }]);
    m["sessions"] = json!({"revoked": [{"sid": "s", "until": 5}], "not_before": {"user:alice": 1}});
    edit(&mut m);
    Model::from_value(m)
        .and_then(|m| m.compile())
        .map(|_| ())
        .map_err(|e| (e.kind, e.at))
}

#[test]
fn model_errors_name_the_field() {
    use ModelErrorKind as K;
    assert_eq!(model_with(|_| {}), Ok(()));
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Edit, K, &str)> = vec![
        (
            Box::new(|m| m["issuers"][0]["jwks"]["keys"][0]["d"] = json!("secret")),
            K::InvalidValue,
            "issuers[0].jwks.keys[0].d",
        ),
        (
            Box::new(|m| m["issuers"][0]["jwks"]["keys"][0]["x"] = json!("short")),
            K::InvalidValue,
            "issuers[0].jwks.keys[0].x",
        ),
        (
            Box::new(|m| m["issuers"][0]["jwks"]["keys"][0]["x"] = json!("a+b/")),
            K::InvalidValue,
            "issuers[0].jwks.keys[0].x",
        ),
        (
            Box::new(|m| m["issuers"][0]["jwks"]["keys"][0]["alg"] = json!("RS256")),
            K::InvalidValue,
            "issuers[0].jwks.keys[0].alg",
        ),
        (
            Box::new(|m| m["issuers"][0]["jwks"]["keys"][0]["kty"] = json!("oct")),
            K::InvalidValue,
            "issuers[0].jwks.keys[0]",
        ),
        (
            Box::new(|m| m["issuers"][0]["jwks"]["keys"][0]["use"] = json!("enc")),
            K::InvalidValue,
            "issuers[0].jwks.keys[0].use",
        ),
        (
            Box::new(|m| {
                let k = m["issuers"][0]["jwks"]["keys"][0].clone();
                m["issuers"][0]["jwks"]["keys"] = json!([k.clone(), k]);
            }),
            K::DuplicateId,
            "issuers[0].jwks.keys[1].kid",
        ),
        (
            Box::new(|m| m["issuers"][0]["jwks"]["keys"] = json!([])),
            K::InvalidValue,
            "issuers[0].jwks.keys",
        ),
        (
            Box::new(|m| m["issuers"][0]["audiences"] = json!([])),
            K::InvalidValue,
            "issuers[0].audiences",
        ),
        (
            Box::new(|m| m["issuers"][0]["audiences"] = json!(["", "x"])),
            K::InvalidValue,
            "issuers[0].audiences[0]",
        ),
        (
            Box::new(|m| m["issuers"][0]["subject"] = json!("user:alice")),
            K::InvalidValue,
            "issuers[0].subject",
        ),
        (
            Box::new(|m| m["issuers"][0]["subject"] = json!("user:{sub")),
            K::InvalidValue,
            "issuers[0].subject",
        ),
        (
            Box::new(|m| m["issuers"][0]["claims"]["Bad"] = json!("x")),
            K::MalformedId,
            "issuers[0].claims.Bad",
        ),
        (
            Box::new(|m| m["issuers"][0]["claims"]["now"] = json!("x")),
            K::MalformedId,
            "issuers[0].claims.now",
        ),
        (
            Box::new(|m| m["issuers"][0]["leeway_s"] = json!(301)),
            K::InvalidValue,
            "issuers[0].leeway_s",
        ),
        (
            Box::new(|m| m["issuers"][0]["extra"] = json!(1)),
            K::UnknownField,
            "issuers[0].extra",
        ),
        (
            Box::new(|m| {
                let i = m["issuers"][0].clone();
                m["issuers"] = json!([i.clone(), i]);
            }),
            K::DuplicateId,
            "issuers[1].issuer",
        ),
        (
            Box::new(|m| m["issuers"] = json!({})),
            K::InvalidJson,
            "issuers",
        ),
        (
            Box::new(|m| m["sessions"]["revoked"][0]["until"] = json!(-1)),
            K::InvalidJson,
            "sessions.revoked[0].until",
        ),
        (
            Box::new(|m| {
                m["sessions"]["revoked"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("sid")
                    .map(|_| ())
                    .unwrap()
            }),
            K::InvalidJson,
            "sessions.revoked[0].sid",
        ),
        (
            Box::new(|m| {
                m["sessions"]["revoked"] =
                    json!([{"sid": "s", "until": 1}, {"sid": "s", "until": 2}])
            }),
            K::DuplicateId,
            "sessions.revoked[1]",
        ),
        (
            Box::new(|m| {
                m["sessions"]["revoked_families"] = json!([{"family": "f", "until": 1, "why": 1}])
            }),
            K::UnknownField,
            "sessions.revoked_families[0].why",
        ),
        (
            Box::new(|m| m["sessions"]["not_before"] = json!({"alice": 1})),
            K::MalformedId,
            "sessions.not_before.alice",
        ),
        (
            Box::new(|m| m["sessions"]["extra"] = json!([])),
            K::UnknownField,
            "sessions.extra",
        ),
    ];
    for (i, (edit, kind, at)) in cases.into_iter().enumerate() {
        assert_eq!(model_with(edit), Err((kind, at.to_string())), "case {i}");
    }
    // An RSA key of 1024 bits is refused; 2048 bits is taken.
    let n = |bytes: usize| URL_SAFE_NO_PAD.encode(vec![0xc5u8; bytes]);
    let rsa = |bytes| {
        model_with(|m| {
            m["issuers"][0]["jwks"]["keys"][0] =
                json!({"kty": "RSA", "kid": "r", "n": n(bytes), "e": "AQAB"});
        })
    };
    assert_eq!(
        rsa(128),
        Err((K::InvalidValue, "issuers[0].jwks.keys[0].n".to_string()))
    );
    assert_eq!(rsa(256), Ok(()));
}

#[test]
fn a_model_round_trips_its_identity_and_drops_expired_sessions() {
    let mut m: Value =
        serde_json::from_str(include_str!("../../../../examples/acme.json")).unwrap();
    m["issuers"] = json!([{
        "issuer": "https://idp.example/", "audiences": ["web", "api", "api"],
        "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": key_x(0), "alg": "EdDSA", "use": "sig"}]},
        "subject": "user:{sub}", "claims": {"z": "zz", "a": "aa"}, "leeway_s": 5,
    }]);
    m["sessions"] = json!({"revoked": [{"sid": "old", "until": 10}, {"sid": "new", "until": 30}],
        "revoked_families": [{"family": "f", "until": 10}], "not_before": {"user:alice": 7}});
    let mut model = Model::from_value(m).unwrap();
    let state = model.compile().unwrap().state;
    let issuer = state.identity.issuers.get("https://idp.example/").unwrap();
    assert_eq!(issuer.audiences, vec!["api".to_string(), "web".to_string()]);
    assert_eq!(
        issuer.claims,
        vec![("a".into(), "aa".into()), ("z".into(), "zz".into())]
    );
    // Back to JSON and compiled again: the same state.
    let again = Model::from_state(&state).compile().unwrap().state;
    assert_eq!(again, state);
    assert!(model.drop_expired_sessions(20));
    let dropped = model.compile().unwrap().state;
    assert_eq!(dropped.identity.revoked.len(), 1);
    assert!(dropped.identity.families.is_empty());
    assert_eq!(dropped.identity.not_before.len(), 1);
    assert!(!model.drop_expired_sessions(20));
}
