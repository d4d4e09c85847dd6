//! The three signed message kinds on the wire.
//!
//! Layout: 6 magic bytes `EDGEAZ`, one kind byte (`S` snapshot, `D` delta, `W` watermark), one
//! format version byte, then a MessagePack array `[key_id, signature, payload]`. The Ed25519
//! signature covers the 8-byte prefix followed by the payload bytes, so a message cannot be
//! replayed as another kind or version. The payload is MessagePack (rmp-serde, structs as arrays).

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::content::Content;
use crate::delta::DeltaOps;
use crate::digest::hex;
use crate::keys::{PublicKey, SecretKey};
use crate::Error;

pub const MAGIC: &[u8; 6] = b"EDGEAZ";

/// A payload's conditions (its [`crate::ConditionTables`] or [`crate::ConditionOps`]) are one
/// MessagePack string holding their JSON, read here by hand: conditions are the model's JSON
/// already, and each type decoded through serde costs the wasm its own decoder.
pub(crate) mod json_text {
    use serde_json::Value;

    /// A JSON string literal.
    pub fn quote(s: &str) -> String {
        serde_json::to_string(s).unwrap_or_default()
    }

    /// `[a, b]` of numbers, for each pair.
    pub fn pairs(v: &[(u32, u32)]) -> String {
        let items: Vec<String> = v.iter().map(|(a, b)| format!("[{a},{b}]")).collect();
        format!("[{}]", items.join(","))
    }

    /// `[x, ...]` of strings.
    pub fn strings<'a>(v: impl IntoIterator<Item = &'a String>) -> String {
        let items: Vec<String> = v.into_iter().map(|s| quote(s)).collect();
        format!("[{}]", items.join(","))
    }

    pub fn list(v: &Value) -> Option<&Vec<Value>> {
        v.as_array()
    }

    pub fn string(v: &Value) -> Option<String> {
        v.as_str().map(str::to_owned)
    }

    pub fn u32_of(v: &Value) -> Option<u32> {
        v.as_u64().and_then(|n| u32::try_from(n).ok())
    }

    pub fn pair_list(v: &Value) -> Option<Vec<(u32, u32)>> {
        list(v)?
            .iter()
            .map(|p| match p.as_array()?.as_slice() {
                [a, b] => Some((u32_of(a)?, u32_of(b)?)),
                _ => None,
            })
            .collect()
    }

    pub fn string_list(v: &Value) -> Option<Vec<String>> {
        list(v)?.iter().map(string).collect()
    }

    /// `[[name, text], ...]`.
    pub fn named_texts(v: &Value) -> Option<Vec<(String, String)>> {
        list(v)?
            .iter()
            .map(|p| match p.as_array()?.as_slice() {
                [a, b] => Some((string(a)?, string(b)?)),
                _ => None,
            })
            .collect()
    }

    pub fn named_texts_json(v: &[(String, String)]) -> String {
        let items: Vec<String> = v
            .iter()
            .map(|(a, b)| format!("[{},{}]", quote(a), quote(b)))
            .collect();
        format!("[{}]", items.join(","))
    }
}

/// The format version this build writes when a message needs it: version 2 adds conditions to
/// snapshots and deltas, version 3 token issuers and sessions after them. A message is written
/// at the oldest version that holds it (without either, version 1: the same bytes as before
/// conditions existed), so older edges keep working until a model uses what they lack.
pub const FORMAT_VERSION: u8 = 3;
/// The oldest format version this build reads.
pub const MIN_FORMAT_VERSION: u8 = 1;

/// Size and count limits enforced on every input (docs/limits.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest signed message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Largest model JSON accepted, in bytes.
    pub max_model_bytes: usize,
    /// Most entries in any one table (resources, subjects, memberships, assignments, ...).
    pub max_entries: usize,
    pub max_actions: usize,
    pub max_roles: usize,
    /// Deepest resource hierarchy (a root resource has depth 1).
    pub max_depth: usize,
    /// Most (subject, group) pairs in all group closures together.
    pub max_closure_entries: usize,
    /// Most heap bytes an index may take (its content and its derived arrays, as
    /// `Status::heap_bytes` counts them): the edge's memory budget for one tenant. A larger
    /// state is refused when it is compiled or diffed at the origin, and when it is loaded.
    pub max_index_bytes: usize,
}

impl Limits {
    /// No limit at all (for content that is known to have passed them).
    pub(crate) fn unbounded() -> Limits {
        Limits {
            max_message_bytes: usize::MAX,
            max_model_bytes: usize::MAX,
            max_entries: usize::MAX,
            max_actions: usize::MAX,
            max_roles: usize::MAX,
            max_depth: usize::MAX,
            max_closure_entries: usize::MAX,
            max_index_bytes: usize::MAX,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 64 << 20,
            max_model_bytes: 256 << 20,
            max_entries: 4_000_000,
            max_actions: 4096,
            max_roles: 4096,
            max_depth: 64,
            max_closure_entries: 50_000_000,
            max_index_bytes: 36 << 20,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    Snapshot,
    Delta,
    Watermark,
}

impl MessageKind {
    fn byte(self) -> u8 {
        match self {
            Self::Snapshot => b'S',
            Self::Delta => b'D',
            Self::Watermark => b'W',
        }
    }
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            b'S' => Some(Self::Snapshot),
            b'D' => Some(Self::Delta),
            b'W' => Some(Self::Watermark),
            _ => None,
        }
    }
    /// The kind a message's prefix claims (magic bytes and kind byte), without decoding or
    /// verifying anything; `None` when the prefix is not an edge-authz message's.
    pub fn of(bytes: &[u8]) -> Option<MessageKind> {
        match bytes {
            [a, b, c, d, e, f, k, ..] if [*a, *b, *c, *d, *e, *f] == *MAGIC => Self::from_byte(*k),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::Delta => "delta",
            Self::Watermark => "watermark",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotPayload {
    pub tenant: String,
    pub epoch: u64,
    pub issued_at: u64,
    pub content: Content,
}

/// A snapshot's payload written from borrowed content: the same fields in the same order, so
/// the same bytes as [`SnapshotPayload`] (the origin signs its kept content without a copy).
#[derive(Serialize)]
pub(crate) struct SnapshotPayloadRef<'a> {
    pub tenant: &'a str,
    pub epoch: u64,
    pub issued_at: u64,
    pub content: &'a Content,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeltaPayload {
    pub tenant: String,
    pub base_epoch: u64,
    pub epoch: u64,
    pub issued_at: u64,
    pub base_digest: ByteBuf,
    pub digest: ByteBuf,
    pub revokes: bool,
    pub ops: DeltaOps,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WatermarkPayload {
    pub tenant: String,
    pub watermark: u64,
    pub issued_at: u64,
    /// A complete signed delta message (the revocation), or nothing for a heartbeat.
    pub delta: Option<ByteBuf>,
}

const PREFIX_LEN: usize = 8;

fn prefix(kind: MessageKind, version: u8) -> [u8; PREFIX_LEN] {
    let [a, b, c, d, e, f] = *MAGIC;
    [a, b, c, d, e, f, kind.byte(), version]
}

fn malformed(what: &'static str, e: impl std::fmt::Display) -> Error {
    Error::Malformed {
        what,
        detail: e.to_string(),
    }
}

pub(crate) use crate::unpack::decode_exact;

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding plain structs of strings, integers and byte buffers into a Vec cannot fail.
    rmp_serde::to_vec(value).unwrap_or_default()
}

/// Signs a payload into a complete message of format `version`.
pub(crate) fn seal<T: Serialize>(
    kind: MessageKind,
    version: u8,
    payload: &T,
    key: &SecretKey,
) -> Vec<u8> {
    sign_versioned(kind, version, &encode(payload), key)
}

/// A message whose envelope parsed; its signature is not yet checked.
/// It borrows the message's bytes: a large snapshot's payload is not copied.
pub(crate) struct Envelope<'a> {
    pub kind: MessageKind,
    pub key_id: String,
    pub signature: &'a [u8],
    pub payload: &'a [u8],
    pub version: u8,
    prefix: [u8; PREFIX_LEN],
}

pub(crate) fn parse<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Envelope<'a>, Error> {
    if bytes.len() > limits.max_message_bytes {
        return Err(Error::TooLarge {
            size: bytes.len(),
            limit: limits.max_message_bytes,
        });
    }
    let (kind, prefix, rest) = header(bytes)?;
    let EnvelopeHead {
        key_id,
        signature,
        payload_len,
        mut rest,
    } = envelope_head(rest)?;
    let payload =
        take(&mut rest, payload_len).ok_or_else(|| malformed("envelope", "truncated payload"))?;
    if !rest.is_empty() {
        return Err(malformed(
            "envelope",
            format!("{} bytes after the envelope", rest.len()),
        ));
    }
    Ok(Envelope {
        kind,
        key_id: key_id.to_string(),
        signature,
        payload,
        version: prefix.get(7).copied().unwrap_or(0),
        prefix,
    })
}

/// The 8-byte prefix (magic, kind, format version) and what follows it.
fn header(bytes: &[u8]) -> Result<(MessageKind, [u8; PREFIX_LEN], &[u8]), Error> {
    let (Some(head), Some(rest)) = (bytes.get(..PREFIX_LEN), bytes.get(PREFIX_LEN..)) else {
        return Err(
            if bytes.starts_with(MAGIC) || MAGIC.starts_with(bytes) && !bytes.is_empty() {
                malformed("message", "truncated header")
            } else {
                Error::BadMagic
            },
        );
    };
    if !head.starts_with(MAGIC) {
        return Err(Error::BadMagic);
    }
    let (kind_byte, version) = (
        head.get(6).copied().unwrap_or(0),
        head.get(7).copied().unwrap_or(0),
    );
    if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(Error::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let kind = MessageKind::from_byte(kind_byte).ok_or_else(|| {
        malformed(
            "message",
            format!("unknown message kind byte 0x{kind_byte:02x}"),
        )
    })?;
    let p =
        <[u8; PREFIX_LEN]>::try_from(head).map_err(|_| malformed("message", "truncated header"))?;
    Ok((kind, p, rest))
}

fn take<'a>(rest: &mut &'a [u8], len: u32) -> Option<&'a [u8]> {
    let len = usize::try_from(len).ok()?;
    let (head, tail) = (rest.get(..len)?, rest.get(len..)?);
    *rest = tail;
    Some(head)
}

/// An envelope up to its payload (see [`envelope_head`]).
struct EnvelopeHead<'a> {
    key_id: &'a str,
    signature: &'a [u8],
    /// The payload's declared length.
    payload_len: u32,
    /// What follows: the payload, then nothing.
    rest: &'a [u8],
}

/// The envelope up to its payload: `[key id, signature, payload]` is a MessagePack array of a
/// string and two binaries; this reads the key id, the signature and the payload's declared
/// length, and returns what follows (the payload, then nothing).
fn envelope_head(mut rest: &[u8]) -> Result<EnvelopeHead<'_>, Error> {
    use rmp::decode::{read_array_len, read_bin_len, read_str_len};
    let bad = |why: &str| malformed("envelope", why.to_string());
    if read_array_len(&mut rest).map_err(|_| bad("expected an array"))? != 3 {
        return Err(bad("expected an array of 3 fields"));
    }
    let len = read_str_len(&mut rest).map_err(|_| bad("expected a key id string"))?;
    let key_id = take(&mut rest, len).ok_or_else(|| bad("truncated key id"))?;
    let key_id = std::str::from_utf8(key_id).map_err(|_| bad("the key id is not UTF-8"))?;
    let len = read_bin_len(&mut rest).map_err(|_| bad("expected signature bytes"))?;
    let signature = take(&mut rest, len).ok_or_else(|| bad("truncated signature"))?;
    let payload_len = read_bin_len(&mut rest).map_err(|_| bad("expected payload bytes"))?;
    Ok(EnvelopeHead {
        key_id,
        signature,
        payload_len,
        rest,
    })
}

/// How many leading bytes of a message [`peek`] needs at most.
pub const PEEK_BYTES: usize = 512;

/// What [`peek`] read from a message's first bytes: enough to refuse it cheaply, and to check
/// its signature without decoding it (the signed bytes are `prefix` then the payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peeked {
    pub kind: MessageKind,
    /// The trusted key that must have signed it.
    pub key: PublicKey,
    pub signature: [u8; 64],
    pub prefix: [u8; PREFIX_LEN],
    /// Where the payload starts in the message, and its length (it runs to the end).
    pub payload_at: usize,
    pub payload_len: usize,
}

/// The cheap checks of a message of `total` bytes whose first bytes are `head` (at least
/// [`PEEK_BYTES`] of them, or the whole message): its size, magic bytes, kind, format version,
/// a trusted key id, a 64-byte signature, a payload whose declared length ends exactly at
/// `total`, and a payload that names `tenant` first. Nothing is decoded and nothing verified:
/// a host runs these before it reads a large body, then checks the signature (the Worker does,
/// with the runtime's own Ed25519, so that a refused body never enters its wasm memory).
pub fn peek(
    head: &[u8],
    total: usize,
    kind: MessageKind,
    tenant: &str,
    keys: &[PublicKey],
    limits: &Limits,
) -> Result<Peeked, Error> {
    if total > limits.max_message_bytes {
        return Err(Error::TooLarge {
            size: total,
            limit: limits.max_message_bytes,
        });
    }
    let head = head.get(..total.min(head.len())).unwrap_or(head);
    let truncated = || malformed("envelope", "truncated header");
    // Not even the magic bytes and a known kind: not an edge-authz message at all.
    match MessageKind::of(head) {
        None => return Err(Error::BadMagic),
        Some(found) if found != kind => {
            return Err(Error::WrongKind {
                expected: kind.as_str(),
                found: found.as_str(),
            })
        }
        Some(_) => {}
    }
    let (_, prefix, rest) = header(head)?;
    let EnvelopeHead {
        key_id,
        signature,
        payload_len,
        rest: mut payload,
    } = envelope_head(rest).map_err(|e| {
        // A header cut short by `head` is not a malformed message: the caller gave too little.
        if head.len() < total {
            truncated()
        } else {
            e
        }
    })?;
    let payload_at = head.len() - payload.len();
    let payload_len = payload_len as usize;
    if payload_at.checked_add(payload_len) != Some(total) {
        return Err(malformed(
            "envelope",
            format!(
                "the payload is declared as {payload_len} bytes, the message holds {}",
                total.saturating_sub(payload_at)
            ),
        ));
    }
    let key = keys
        .iter()
        .find(|k| k.id() == key_id)
        .cloned()
        .ok_or_else(|| Error::UnknownKey(crate::state::shorten(key_id)))?;
    let signature = <[u8; 64]>::try_from(signature).map_err(|_| Error::BadSignature)?;
    // The payload is an array whose first field is the tenant.
    let named = (|| {
        rmp::decode::read_array_len(&mut payload).ok()?;
        let len = rmp::decode::read_str_len(&mut payload).ok()?;
        take(&mut payload, len)
    })();
    match named {
        Some(t) if t == tenant.as_bytes() => {}
        Some(t) => {
            return Err(Error::TenantMismatch {
                expected: tenant.to_string(),
                found: crate::state::shorten(&String::from_utf8_lossy(t)),
            })
        }
        None => {
            return Err(malformed(
                kind.as_str(),
                "the payload does not name a tenant",
            ))
        }
    }
    Ok(Peeked {
        kind,
        key,
        signature,
        prefix,
        payload_at,
        payload_len,
    })
}

impl Envelope<'_> {
    pub fn expect(self, kind: MessageKind) -> Result<Self, Error> {
        if self.kind == kind {
            Ok(self)
        } else {
            Err(Error::WrongKind {
                expected: kind.as_str(),
                found: self.kind.as_str(),
            })
        }
    }

    /// Checks the signature against the trusted keys.
    pub fn verify(&self, keys: &[PublicKey]) -> Result<(), Error> {
        let key = keys
            .iter()
            .find(|k| k.id() == self.key_id)
            .ok_or_else(|| Error::UnknownKey(crate::state::shorten(&self.key_id)))?;
        let mut signed = Vec::with_capacity(PREFIX_LEN + self.payload.len());
        signed.extend_from_slice(&self.prefix);
        signed.extend_from_slice(self.payload);
        if key.verify(&signed, self.signature) {
            Ok(())
        } else {
            Err(Error::BadSignature)
        }
    }
}

pub(crate) fn digest_bytes(b: &ByteBuf, what: &'static str) -> Result<[u8; 32], Error> {
    <[u8; 32]>::try_from(b.as_slice()).map_err(|_| malformed(what, "a digest must be 32 bytes"))
}

/// Header and counts of a message, for `edge-authz inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    pub kind: MessageKind,
    pub format_version: u8,
    pub bytes: usize,
    pub key_id: String,
    /// `verified`, `bad_signature`, `unknown_key` or `not_checked` (no key given).
    pub signature: &'static str,
    pub tenant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_epoch: Option<u64>,
    pub issued_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watermark: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revokes: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_digest: Option<String>,
    pub counts: std::collections::BTreeMap<&'static str, usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<Box<Inspection>>,
}

/// Decodes any message without trusting it. With keys, also says whether its signature verifies.
pub fn inspect(bytes: &[u8], keys: &[PublicKey], limits: &Limits) -> Result<Inspection, Error> {
    let env = parse(bytes, limits)?;
    let signature = if keys.is_empty() {
        "not_checked"
    } else {
        match env.verify(keys) {
            Ok(()) => "verified",
            Err(e) => e.code(),
        }
    };
    let mut out = Inspection {
        kind: env.kind,
        format_version: env.version,
        bytes: bytes.len(),
        key_id: crate::state::shorten(&env.key_id),
        signature,
        tenant: String::new(),
        epoch: None,
        base_epoch: None,
        issued_at: 0,
        watermark: None,
        revokes: None,
        digest: None,
        base_digest: None,
        counts: Default::default(),
        delta: None,
    };
    match env.kind {
        MessageKind::Snapshot => {
            let p: SnapshotPayload = decode_exact(env.payload, "snapshot")?;
            let c = &p.content;
            out.tenant = p.tenant;
            out.epoch = Some(p.epoch);
            out.issued_at = p.issued_at;
            out.digest = Some(hex(&crate::digest::digest(c)));
            let counts = [
                ("actions", c.actions.len()),
                ("roles", c.roles.len()),
                ("resources", c.resources.len()),
                ("subjects", c.subjects.len()),
                ("memberships", c.memberships.len()),
                ("assignments", c.assignments.len()),
                ("suspended", c.suspended.len()),
            ]
            .into_iter()
            .chain(
                [("conditions", c.conditional.conditions.len())]
                    .into_iter()
                    .filter(|_| !c.conditional.is_empty()),
            )
            .chain(
                [
                    ("issuers", c.identity.issuers.len()),
                    ("revokedSessions", c.identity.revoked.len()),
                    ("revokedFamilies", c.identity.families.len()),
                    ("notBefore", c.identity.not_before.len()),
                ]
                .into_iter()
                .filter(|_| !c.identity.is_empty()),
            );
            out.counts = crate::state::map_of(counts);
        }
        MessageKind::Delta => {
            let p: DeltaPayload = decode_exact(env.payload, "delta")?;
            out.tenant = p.tenant;
            out.epoch = Some(p.epoch);
            out.base_epoch = Some(p.base_epoch);
            out.issued_at = p.issued_at;
            out.revokes = Some(p.revokes);
            out.digest = Some(hex(&p.digest));
            out.base_digest = Some(hex(&p.base_digest));
            out.counts = p.ops.counts();
        }
        MessageKind::Watermark => {
            let p: WatermarkPayload = decode_exact(env.payload, "watermark")?;
            out.tenant = p.tenant;
            out.watermark = Some(p.watermark);
            out.issued_at = p.issued_at;
            if let Some(d) = p.delta {
                // What rides on a watermark must be a delta (never another watermark: no recursion).
                parse(&d, limits)?.expect(MessageKind::Delta)?;
                out.delta = Some(Box::new(inspect(&d, keys, limits)?));
            }
        }
    }
    Ok(out)
}

/// Signs arbitrary payload bytes as a message of `kind`. For tests, fuzzers and tools that must
/// produce signed but otherwise hostile messages; the origin functions never need it.
#[doc(hidden)]
pub fn sign_raw(kind: MessageKind, payload: &[u8], key: &SecretKey) -> Vec<u8> {
    sign_versioned(kind, FORMAT_VERSION, payload, key)
}

/// [`sign_raw`] at a given format version.
#[doc(hidden)]
pub fn sign_versioned(kind: MessageKind, version: u8, payload: &[u8], key: &SecretKey) -> Vec<u8> {
    let p = prefix(kind, version);
    let mut signed = p.to_vec();
    signed.extend_from_slice(payload);
    let sig = key.sign(&signed);
    let env = (
        key.public_key().id().to_string(),
        ByteBuf::from(sig.to_vec()),
        ByteBuf::from(payload.to_vec()),
    );
    let mut out = p.to_vec();
    out.extend_from_slice(&encode(&env));
    out
}
