//! The npm package's bindings: a thin, numeric layer over the core that the
//! package's JavaScript (`pkg/src/api.js`) wraps into the package's API (docs/javascript.md).
//!
//! The hot path is shaped for JavaScript callers. A name the caller has seen before crosses as
//! its id in the held index (`check_ids`; a batch's fields each by id or by name); a new name is
//! written by the caller straight into a buffer this side owns (`input`, lengths in `lens`), and
//! its id is handed back in its place. Either way a check crosses the boundary once, with numbers
//! only, and ids are answered only by the index they came from (its serial number). The answer is
//! one `u32` (allowed, reason, tier) and, for a grant, its dense ids in `out`; the JavaScript side
//! turns ids into names through caches that it empties whenever the held state changes. No JSON
//! is built or parsed per check.
//!
//! Errors become JavaScript `Error` objects with a stable `code` (and `detail` for model errors).

use wasm_bindgen::prelude::*;

use edge_authz::authority::receive;
use edge_authz::condition::{Attr, Context};
use edge_authz::peek;
use edge_authz::sync::{Replica, Synced};
use edge_authz::token::Verdicts;
use edge_authz::{
    compile_snapshot, diff_models, inspect, sign_watermark, At, Decision, Error, Evaluator, Limits,
    Looked, MessageKind, Model, PublicKey, Reason, SecretKey, State, Tier, TokenAnswer,
};
use edge_authz_protocol::feed::{self, FeedQuery};
use edge_authz_protocol::{http_status, ErrorAnswer, ErrorBody, PushAnswer, MAX_NOW};

#[wasm_bindgen]
extern "C" {
    /// The host's `Error` class.
    #[wasm_bindgen(js_name = Error)]
    type JsError;

    #[wasm_bindgen(constructor, js_class = "Error")]
    fn new(message: &str) -> JsError;

    #[wasm_bindgen(method, setter = code, js_class = "Error")]
    fn set_code(this: &JsError, code: &str);

    #[wasm_bindgen(method, setter = detail, js_class = "Error")]
    fn set_detail(this: &JsError, detail: &str);
}

fn throw(e: &Error) -> JsValue {
    let err = JsError::new(&e.to_string());
    err.set_code(e.code());
    if let Some(detail) = e.detail() {
        err.set_detail(detail);
    }
    err.into()
}

fn invalid_argument(message: String) -> JsValue {
    throw(&Error::InvalidArgument(message))
}

/// The host's clock was not a whole number of ms from 0 to 2^53 - 1 (the package checks it
/// first; this side fails closed on its own too).
fn invalid_clock() -> JsValue {
    let err = JsError::new("the clock must give a whole number of ms from 0 to 2^53 - 1");
    err.set_code("invalid_clock");
    err.into()
}

/// A JavaScript number that must be a whole number from 0 to 2^53 - 1.
fn whole(name: &str, v: f64) -> Result<u64, JsValue> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= MAX_NOW as f64 {
        Ok(v as u64)
    } else {
        Err(invalid_argument(format!(
            "`{name}` must be a whole number from 0 to 2^53 - 1"
        )))
    }
}

fn model_state(text: &str) -> Result<(State, Vec<String>), JsValue> {
    let compiled = Model::from_json(text)
        .and_then(|m| m.compile())
        .map_err(|e| throw(&Error::InvalidModel(e)))?;
    Ok((compiled.state, compiled.warnings))
}

fn secret(text: &str) -> Result<SecretKey, JsValue> {
    SecretKey::from_base64(text).map_err(|e| throw(&e))
}

fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

// The answer word of a check, defined here only: pkg/src/api.js reads the layout from
// `answer_layout` once, so the two sides cannot drift. Bit 0 allowed, bits 1-4 the reason's
// position in `Reason::ALL`, bits 5-6 the tier (0 none, then `Tier::ALL`'s order from 1), bit 7
// grant ids written to `out`, bit 8 `out` moved (the caller must ask for its new address), bit 9
// (alone) a replica's check that waits for a sync, bit 10 a refusal by conditions whose masks
// follow in `out` (failing conditions, then missing comparisons: two words each, low first),
// bit 11 a grant whose `when` (a condition id) follows its path in `out`, bit 12 (alone) a token
// check that waits for its signature to be verified (`token_pending`), bit 13 (alone) a check by
// ids the held index no longer answers (the caller empties its name caches and asks by names).
pub const ALLOWED: u32 = 1;
pub const REASON_SHIFT: u32 = 1;
pub const REASON_MASK: u32 = 0b1111;
pub const TIER_SHIFT: u32 = 5;
pub const TIER_MASK: u32 = 0b11;
pub const HAS_GRANT: u32 = 1 << 7;
pub const OUT_MOVED: u32 = 1 << 8;
pub const NEEDS_CONFIRMATION: u32 = 1 << 9;
pub const HAS_CONDITIONS: u32 = 1 << 10;
pub const GRANT_WHEN: u32 = 1 << 11;
pub const NEEDS_VERIFY: u32 = 1 << 12;
pub const STALE_IDS: u32 = 1 << 13;

// Ids of looked-up names, as the caller hands them back (`check_ids`, the fields of
// `check_many`): `ID_FLAG` marks a field given by id rather than by its length in `input`;
// `ABSENT` is the id of a well-formed name the index does not hold; `NOT_LOOKED` (in `looked`)
// a field that has no id to keep (malformed, or nothing answers).
pub const ID_FLAG: u32 = 1 << 31;
pub const ABSENT: u32 = (1 << 31) - 2;
pub const NOT_LOOKED: u32 = u32::MAX;

// Every reason and tier fits its bits.
const _: () = assert!(Reason::ALL.len() as u32 <= REASON_MASK + 1);
const _: () = assert!(Tier::ALL.len() as u32 <= TIER_MASK);

fn reason_index(r: Reason) -> u32 {
    Reason::ALL.iter().position(|x| *x == r).unwrap_or(0) as u32
}

fn tier_index(t: Option<Tier>) -> u32 {
    t.and_then(|t| Tier::ALL.iter().position(|x| *x == t))
        .map_or(0, |i| i as u32 + 1)
}

/// The answer word's layout as JSON, for the package's JavaScript: `reasons` and `tiers` by
/// their index in the word (`tiers[0]` is null: no tier), the bit shifts and masks, the flags
/// and the marker of a field that is not a string.
#[wasm_bindgen]
pub fn answer_layout() -> String {
    // Written by hand: a serde-derived struct would cost the wasm a serializer of its own.
    let quoted = |names: &mut dyn Iterator<Item = &str>| {
        names
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let reasons = quoted(&mut Reason::ALL.iter().map(|r| r.as_str()));
    let tiers = quoted(&mut Tier::ALL.iter().map(|t| t.as_str()));
    let numbers = [
        ("allowed", ALLOWED),
        ("reasonShift", REASON_SHIFT),
        ("reasonMask", REASON_MASK),
        ("tierShift", TIER_SHIFT),
        ("tierMask", TIER_MASK),
        ("hasGrant", HAS_GRANT),
        ("outMoved", OUT_MOVED),
        ("needsConfirmation", NEEDS_CONFIRMATION),
        ("hasConditions", HAS_CONDITIONS),
        ("grantWhen", GRANT_WHEN),
        ("needsVerify", NEEDS_VERIFY),
        ("staleIds", STALE_IDS),
        ("idFlag", ID_FLAG),
        ("absent", ABSENT),
        ("notLooked", NOT_LOOKED),
        ("notAString", NOT_A_STRING),
    ];
    let mut out = format!("{{\"reasons\":[{reasons}],\"tiers\":[null,{tiers}]");
    for (k, v) in numbers {
        out.push_str(&format!(",\"{k}\":{v}"));
    }
    out.push('}');
    out
}

/// Marks a request whose field was not a string on the JavaScript side.
pub const NOT_A_STRING: u32 = u32::MAX;

/// One tenant's evaluator, as the package's JavaScript drives it.
#[wasm_bindgen]
pub struct RawEvaluator {
    /// The evaluator, as a replica: a plain evaluator is one that never syncs (its guard then
    /// knows no watermark and changes nothing); a `Replica` of the package follows a feed.
    r: Replica,
    /// Its trusted keys, for a replica that starts again from the authority's snapshot (none
    /// for a preview).
    keys: Vec<PublicKey>,
    /// How long a `standard` and a `low` decision may reuse a confirmation (ms).
    reuse: [u64; 2],
    /// Request bytes written by the caller.
    input: Vec<u8>,
    /// Byte lengths of the requests' fields, three per request.
    lens: Vec<u32>,
    /// Answer words and grant ids.
    out: Vec<u32>,
    decisions: Vec<Decision>,
    /// A request's context as the caller encodes it (see `read_context`), the bytes of the
    /// last one read and what they said: a batch, or the same context again, is read once.
    ctx_in: Vec<u8>,
    ctx_bytes: Vec<u8>,
    ctx: Option<Context>,
    /// Token checks: signature verdicts the host gave, by the fingerprint of (algorithm, key,
    /// signed bytes, signature), so a token verified once is not verified again (a verdict is a
    /// fact about bytes, whatever the state: the state decides again on every check).
    verified: Verdicts,
    /// The signature the last token check waits for: its fingerprint and what to verify.
    pending: Option<([u8; 32], TokenAnswer)>,
    /// The last decided token check's subject and, when gate 6 refused it, why.
    token_subject: Option<String>,
    token_error: Option<&'static str>,
    /// The requests of a batch, looked up.
    batch: Vec<Looked>,
}

/// Grows a buffer the caller writes into to hold `n` items at least (to a power of two).
fn grow<T: Default + Clone>(v: &mut Vec<T>, n: usize) {
    if v.len() < n {
        v.resize(n.next_power_of_two(), T::default());
    }
}

/// The context of a request that gives none.
static NO_CONTEXT: Context = Context::EMPTY;

/// Reads a context as pkg/src/api.js encodes it: for each attribute, its key (a byte of length,
/// then the bytes), a tag and the value: 0 a string (two bytes of length, little-endian, then
/// UTF-8), 1 a number (8 bytes, an f64, little-endian), 2 false, 3 true, 4 a list (a byte of
/// count, then each string as tag 0's). `None` for bytes that do not read, or a context outside
/// the limits (docs/decisions.md, "Context").
fn read_context(mut b: &[u8]) -> Option<Context> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (b.get(..n)?, b.get(n..)?);
        *b = rest;
        Some(head)
    }
    fn text(b: &mut &[u8]) -> Option<String> {
        let len = take(b, 2)?;
        let len = u16::from_le_bytes([*len.first()?, *len.get(1)?]) as usize;
        String::from_utf8(take(b, len)?.to_vec()).ok()
    }
    let mut attrs = Vec::new();
    while !b.is_empty() {
        let klen = *take(&mut b, 1)?.first()? as usize;
        let key = String::from_utf8(take(&mut b, klen)?.to_vec()).ok()?;
        let value = match *take(&mut b, 1)?.first()? {
            0 => Attr::Str(text(&mut b)?),
            1 => Attr::Num(f64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?)),
            2 => Attr::Bool(false),
            3 => Attr::Bool(true),
            4 => {
                let n = *take(&mut b, 1)?.first()?;
                Attr::List((0..n).map(|_| text(&mut b)).collect::<Option<_>>()?)
            }
            _ => return None,
        };
        attrs.push((key, value));
    }
    Context::new(attrs).ok()
}

impl RawEvaluator {
    fn wrap(ev: Evaluator, keys: Vec<PublicKey>) -> RawEvaluator {
        RawEvaluator {
            r: Replica::new(ev),
            keys,
            reuse: [0, 0],
            input: vec![0; 4096],
            lens: vec![0; 3 * 64],
            out: Vec::with_capacity(1024),
            decisions: Vec::new(),
            ctx_in: vec![0; 256],
            ctx_bytes: Vec::new(),
            ctx: None,
            verified: Verdicts::default(),
            pending: None,
            token_subject: None,
            token_error: None,
            batch: Vec::new(),
        }
    }

    /// Reads the context of the next decision: `len` bytes of `ctx_in`, or none (`len` below
    /// 0). `None` when they do not read (the request is then malformed), else whether the
    /// decision takes `ctx` (false: no context; nothing is touched on that path).
    fn load_context(&mut self, len: i32) -> Option<bool> {
        let Ok(len) = usize::try_from(len) else {
            return Some(false);
        };
        let bytes = self.ctx_in.get(..len)?;
        if self.ctx_bytes != bytes || self.ctx.is_none() {
            self.ctx_bytes.clear();
            self.ctx_bytes.extend_from_slice(bytes);
            self.ctx = read_context(bytes);
        }
        self.ctx.as_ref().map(|_| true)
    }

    /// The context of a decision, as `load_context` said.
    fn context_of(ctx: &Option<Context>, with: bool) -> &Context {
        match ctx {
            Some(c) if with => c,
            _ => &NO_CONTEXT,
        }
    }

    /// Appends a decision's grant ids to `out`; returns its answer word.
    fn encode(ev: &Evaluator, d: &Decision, out: &mut Vec<u32>) -> u32 {
        let mut word = if d.allowed { ALLOWED } else { 0 }
            | reason_index(d.reason) << REASON_SHIFT
            | tier_index(d.tier) << TIER_SHIFT;
        if let (Some(g), Some(ix)) = (&d.grant, ev.index()) {
            let at = out.len();
            out.extend_from_slice(&[0, 0, 0, 0]);
            if let Some((p, role, r)) = ix.grant_ids(g, out) {
                let hops = (out.len() - at - 4) as u32;
                if let Some(head) = out.get_mut(at..at + 4) {
                    head.copy_from_slice(&[p, role, r, hops]);
                }
                word |= HAS_GRANT;
                if let Some(w) = ix.grant_when(g) {
                    out.push(w as u32);
                    word |= GRANT_WHEN;
                }
            } else {
                out.truncate(at);
            }
        }
        if d.reason.is_conditional() {
            let split = |m: u64| [m as u32, (m >> 32) as u32];
            out.extend_from_slice(&split(d.conditions));
            out.extend_from_slice(&split(d.missing));
            word |= HAS_CONDITIONS;
        }
        word
    }

    fn field<'a>(input: &'a [u8], start: &mut usize, len: u32) -> &'a str {
        if len == NOT_A_STRING {
            return "";
        }
        let end = start.saturating_add(len as usize);
        let text = input
            .get(*start..end)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("");
        *start = end;
        text
    }

    /// A time from JavaScript: a whole number from 0 to 2^53 - 1, else `None`.
    fn time(t: f64) -> Option<u64> {
        (t >= 0.0 && t <= MAX_NOW as f64 && t.fract() == 0.0).then_some(t as u64)
    }

    /// The times and needs of a decision: the host's `clock`, `now` (below 0: the context was
    /// malformed) and `at_least_epoch` (below 0: none). `Err` for a clock that is not a time;
    /// `Ok(None)` for a malformed context.
    fn at(clock: f64, now: f64, at_least_epoch: f64) -> Result<Option<At<'static>>, ()> {
        let clock = Self::time(clock).ok_or(())?;
        let at_least = if at_least_epoch < 0.0 {
            Some(None)
        } else {
            Self::time(at_least_epoch).map(Some)
        };
        Ok(Self::time(now).zip(at_least).map(|(now, at_least)| {
            At::clock(clock)
                .with_now(Some(now))
                .with_at_least_epoch(at_least)
        }))
    }
}

impl RawEvaluator {
    /// Whether decision `d`, made at `at`, must wait for a sync (a check with `replica`): by its tier
    /// (`high` for an undeclared action or when nothing is held). A malformed request needs none:
    /// its answer does not depend on the state. The decision is made first and dropped when a
    /// sync must come first, so that the hot path looks the names up once.
    fn must_confirm(&self, d: &Decision, at: &At) -> bool {
        if d.reason == Reason::InvalidRequest {
            return false;
        }
        let tier = d.tier.unwrap_or(Tier::High);
        let reuse = match tier {
            Tier::High => 0,
            Tier::Standard => self.reuse[0],
            Tier::Low => self.reuse[1],
        };
        self.r
            .must_confirm(tier, reuse, at.at_least_epoch, at.clock)
    }

    /// Reads the context and the times, decides the request `looked` up in the index numbered
    /// `serial` (`None` when that index is not held), applies the replica's policy and guard,
    /// and writes the answer to `out`.
    fn decide(
        &mut self,
        (serial, looked): (u64, Looked),
        clock: f64,
        now: f64,
        at_least_epoch: f64,
        ctx: i32,
        replica: bool,
    ) -> Option<u32> {
        let before = self.out.as_ptr();
        self.out.clear();
        let read = self.load_context(ctx);
        let with = read == Some(true);
        let d = match Self::at(clock, now, at_least_epoch) {
            Ok(Some(at)) if read.is_some() => {
                let at = at.with_context(Self::context_of(&self.ctx, with));
                let d = self.r.evaluator().check_looked(serial, looked, at)?;
                if replica && self.must_confirm(&d, &at) {
                    return Some(NEEDS_CONFIRMATION);
                }
                d
            }
            _ => {
                // Ids of an index no longer held are refused whatever the request.
                self.r.evaluator().index_serial().filter(|s| *s == serial)?;
                self.r.evaluator().reject_request()
            }
        };
        let d = self.r.guard(d);
        let word = Self::encode(self.r.evaluator(), &d, &mut self.out);
        Some(if self.out.as_ptr() == before {
            word
        } else {
            word | OUT_MOVED
        })
    }

    /// A field the caller gave by id (`ABSENT`: a well-formed name the index does not hold).
    fn id_of(code: u32) -> Option<u32> {
        (code != ABSENT).then_some(code)
    }

    /// Decides `count` requests whose fields are in `lens`: a byte length in `input` (whose
    /// field is then looked up, and its id written back in its place for the caller's caches),
    /// or `ID_FLAG` and an id of the index numbered `serial`. 0 when decided; `STALE_IDS` when
    /// ids were given and that index is not held; a replica's `NEEDS_CONFIRMATION`.
    #[allow(
        clippy::too_many_arguments,
        reason = "numbers across the boundary, one call"
    )]
    fn check_many_inner(
        &mut self,
        count: usize,
        serial: f64,
        clock: f64,
        now: f64,
        at_least_epoch: f64,
        ctx: i32,
        replica: bool,
    ) -> u32 {
        self.out.clear();
        let read = self.load_context(ctx);
        let with = read == Some(true);
        let ev = self.r.evaluator();
        let current = ev.index_serial();
        self.batch.clear();
        let mut by_id = false;
        let mut at = 0;
        for i in 0..count {
            let mut l = Looked {
                ids: [None; 3],
                action_ok: true,
                ids_ok: true,
            };
            for (k, id) in l.ids.iter_mut().enumerate() {
                let j = 3 * i + k;
                let len = self.lens.get(j).copied().unwrap_or(NOT_A_STRING);
                let found = if len != NOT_A_STRING && len & ID_FLAG != 0 {
                    by_id = true;
                    Some(Self::id_of(len & !ID_FLAG))
                } else {
                    let name = Self::field(&self.input, &mut at, len);
                    let found = ev.look_up_field(k as u8, name);
                    if let Some(slot) = self.lens.get_mut(j) {
                        *slot = found.map_or(NOT_LOOKED, |id| ID_FLAG | id.unwrap_or(ABSENT));
                    }
                    found
                };
                match found {
                    Some(found) => *id = found,
                    None if k == 1 => l.action_ok = false,
                    None => l.ids_ok = false,
                }
            }
            self.batch.push(l);
        }
        self.decisions.clear();
        match Self::at(clock, now, at_least_epoch) {
            Ok(Some(at)) if read.is_some() => {
                let at = at.with_context(Self::context_of(&self.ctx, with));
                match current {
                    // Nothing answers: the names do not matter.
                    None => self
                        .decisions
                        .extend(self.batch.iter().map(|_| ev.reject_request())),
                    Some(current) => {
                        if by_id && serial != current as f64
                            || !ev.check_many_looked(current, &self.batch, at, &mut self.decisions)
                        {
                            return STALE_IDS;
                        }
                    }
                }
                if replica && self.decisions.iter().any(|d| self.must_confirm(d, &at)) {
                    return NEEDS_CONFIRMATION;
                }
            }
            _ => self
                .decisions
                .extend(self.batch.iter().map(|_| ev.reject_request())),
        }
        self.out.resize(count, 0);
        for (i, d) in self.decisions.iter().enumerate() {
            let word = Self::encode(self.r.evaluator(), &self.r.guard(*d), &mut self.out);
            if let Some(w) = self.out.get_mut(i) {
                *w = word;
            }
        }
        0
    }

    /// Writes one request into `input` as the JavaScript side does, and checks it (for tests of
    /// the bindings from Rust).
    #[doc(hidden)]
    pub fn check_str(
        &mut self,
        s: &str,
        a: &str,
        r: &str,
        clock: f64,
        now: f64,
    ) -> (u32, Vec<u32>) {
        self.write(&[[s, a, r]]);
        self.check_many(1, -1.0, clock, now, -1.0, -1, false);
        let word = self.out.first().copied().unwrap_or(0);
        (word, self.out.get(1..).unwrap_or_default().to_vec())
    }

    /// Writes requests into `input` and `lens`, then `check_many` (for tests of the bindings).
    #[doc(hidden)]
    pub fn check_many_str(&mut self, requests: &[[&str; 3]], clock: f64, now: f64) -> Vec<u32> {
        self.write(requests);
        self.check_many(requests.len(), -1.0, clock, now, -1.0, -1, false);
        self.out.clone()
    }

    /// What the last check by names looked up (for tests of the bindings from Rust).
    #[doc(hidden)]
    pub fn looked(&self) -> [u32; 3] {
        let mut head = [NOT_LOOKED; 3];
        for (h, l) in head.iter_mut().zip(&self.lens) {
            if *l != NOT_LOOKED {
                *h = l & !ID_FLAG;
            }
        }
        head
    }

    /// The held index's serial number, as `table_sizes` gives it (-1 when none).
    #[doc(hidden)]
    pub fn index_serial(&self) -> f64 {
        self.r.evaluator().index_serial().map_or(-1.0, |s| s as f64)
    }

    /// `check_many` of fields each given by name (`Ok`) or by id (`Err`, as the caller's
    /// caches give it) for the index numbered `serial`: the result, the fields as the call left
    /// them (ids written back), and `out` (for tests of the bindings from Rust).
    #[doc(hidden)]
    pub fn check_many_fields(
        &mut self,
        fields: &[Result<&str, u32>],
        serial: f64,
        clock: f64,
    ) -> (u32, Vec<u32>, Vec<u32>) {
        let bytes: usize = fields.iter().map(|f| f.map_or(0, str::len)).sum();
        self.reserve(bytes, fields.len() / 3);
        let mut at = 0;
        for (i, f) in fields.iter().enumerate() {
            let code = match f {
                Ok(name) => {
                    if let Some(dst) = self.input.get_mut(at..at + name.len()) {
                        dst.copy_from_slice(name.as_bytes());
                    }
                    at += name.len();
                    name.len() as u32
                }
                Err(id) => ID_FLAG | id,
            };
            if let Some(slot) = self.lens.get_mut(i) {
                *slot = code;
            }
        }
        let r = self.check_many(fields.len() / 3, serial, clock, clock, -1.0, -1, false);
        let lens = self.lens.get(..fields.len()).unwrap_or_default().to_vec();
        (r, lens, self.out.clone())
    }

    fn write(&mut self, requests: &[[&str; 3]]) {
        let bytes: usize = requests.iter().flatten().map(|f| f.len()).sum();
        self.reserve(bytes, requests.len());
        let mut at = 0;
        let mut lens = Vec::new();
        for field in requests.iter().flatten() {
            if let Some(dst) = self.input.get_mut(at..at + field.len()) {
                dst.copy_from_slice(field.as_bytes());
            }
            at += field.len();
            lens.push(field.len() as u32);
        }
        if let Some(dst) = self.lens.get_mut(..lens.len()) {
            dst.copy_from_slice(&lens);
        }
    }
}

#[wasm_bindgen]
impl RawEvaluator {
    /// A signed evaluator for `tenant` trusting Ed25519 public keys (typed or bare base64).
    #[wasm_bindgen(constructor)]
    pub fn new(tenant: &str, public_keys: Vec<String>) -> Result<RawEvaluator, JsValue> {
        let keys = public_keys
            .iter()
            .map(|k| PublicKey::from_base64(k))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| throw(&e))?;
        Evaluator::with_keys(tenant, keys.clone())
            .map(|ev| RawEvaluator::wrap(ev, keys))
            .map_err(|e| throw(&e))
    }

    /// An unsigned preview of a model JSON text.
    pub fn preview(model: &str) -> Result<RawEvaluator, JsValue> {
        let (state, _) = model_state(model)?;
        Evaluator::preview(&state)
            .map(|ev| RawEvaluator::wrap(ev, Vec::new()))
            .map_err(|e| throw(&e))
    }

    /// This host's clock (Unix ms) for the messages that follow: one issued more than a second
    /// after it is refused with `clock_skew` and changes nothing. The package sets it before
    /// every message.
    pub fn set_clock(&mut self, clock: f64) -> Result<(), JsValue> {
        let clock = Self::time(clock).ok_or_else(invalid_clock)?;
        self.r.evaluator_mut().set_clock(Some(clock));
        Ok(())
    }

    /// `[epoch, applied (0 or 1)]`.
    pub fn load_snapshot(&mut self, bytes: &[u8]) -> Result<Vec<f64>, JsValue> {
        let a = self
            .r
            .evaluator_mut()
            .load_snapshot(bytes)
            .map_err(|e| throw(&e))?;
        Ok(vec![a.epoch as f64, f64::from(u8::from(a.applied))])
    }

    /// `[epoch, applied (0 or 1)]`.
    pub fn apply_delta(&mut self, bytes: &[u8]) -> Result<Vec<f64>, JsValue> {
        let a = self
            .r
            .evaluator_mut()
            .apply_delta(bytes)
            .map_err(|e| throw(&e))?;
        Ok(vec![a.epoch as f64, f64::from(u8::from(a.applied))])
    }

    /// The result as JSON, the push answer of a watermark (the protocol crate's `PushAnswer`):
    /// `{watermark, epoch, delta?: {applied, error?: {code, message}}}`.
    pub fn apply_watermark(&mut self, bytes: &[u8]) -> Result<String, JsValue> {
        let w = self
            .r
            .evaluator_mut()
            .apply_watermark(bytes)
            .map_err(|e| throw(&e))?;
        Ok(json(&PushAnswer::from(&w)))
    }

    /// The held epoch, or -1 when nothing is loaded.
    pub fn epoch(&self) -> f64 {
        self.r.evaluator().epoch().map_or(-1.0, |e| e as f64)
    }

    pub fn watermark(&self) -> f64 {
        self.r.evaluator().watermark() as f64
    }

    /// Makes room for `bytes` request bytes and `requests` requests.
    pub fn reserve(&mut self, bytes: usize, requests: usize) {
        grow(&mut self.input, bytes);
        grow(&mut self.lens, requests.saturating_mul(3));
    }

    /// Where the caller writes request bytes (valid until the next `reserve`).
    pub fn input_ptr(&mut self) -> *mut u8 {
        self.input.as_mut_ptr()
    }

    pub fn input_len(&self) -> usize {
        self.input.len()
    }

    /// How many field lengths fit (three per request).
    pub fn lens_len(&self) -> usize {
        self.lens.len()
    }

    /// Where the caller writes field lengths (valid until the next `reserve`).
    pub fn lens_ptr(&mut self) -> *mut u32 {
        self.lens.as_mut_ptr()
    }

    /// Where the answers are (valid until an answer word says `out` moved, or a `check_many`).
    pub fn out_ptr(&self) -> *const u32 {
        self.out.as_ptr()
    }

    /// Decides the request whose fields are ids of the index numbered `serial` (`ABSENT`: a
    /// well-formed name it does not hold), as `check_many` decides it by names, at the host's
    /// `clock`, the request's `now` (below 0: the context was malformed), the epoch it needs at
    /// least (below 0: none) and the context `ctx` bytes long (below 0: none). For a `replica`:
    /// `NEEDS_CONFIRMATION` alone, and nothing decided, when the replica must sync with its
    /// authority first (the core's `Replica::must_confirm`). `STALE_IDS` alone, nothing decided,
    /// when that index is not held. A request by names is a `check_many` of one.
    #[allow(
        clippy::too_many_arguments,
        reason = "numbers across the boundary, one call"
    )]
    pub fn check_ids(
        &mut self,
        s: u32,
        a: u32,
        r: u32,
        serial: f64,
        clock: f64,
        now: f64,
        at_least_epoch: f64,
        ctx: i32,
        replica: bool,
    ) -> u32 {
        let looked = Looked {
            ids: [Self::id_of(s), Self::id_of(a), Self::id_of(r)],
            action_ok: true,
            ids_ok: true,
        };
        let Some(serial) = Self::time(serial) else {
            return STALE_IDS;
        };
        self.decide((serial, looked), clock, now, at_least_epoch, ctx, replica)
            .unwrap_or(STALE_IDS)
    }

    /// Decides `count` requests laid out in `input` and `lens` (see `check_many_inner`: a
    /// field by its length or by an id of the index numbered `serial`). `out` then holds one
    /// answer word per request, followed by the grant ids of the granted ones, in order. The
    /// times and context as `check_ids`; a clock that is not a time fails closed
    /// (`invalid_request`; the package refuses it before). 0; `STALE_IDS` when ids were given and that index is not held; for a
    /// `replica`, `NEEDS_CONFIRMATION`, and nothing decided, when one of the requests needs the
    /// replica to sync with its authority first.
    #[allow(
        clippy::too_many_arguments,
        reason = "numbers across the boundary, one call"
    )]
    pub fn check_many(
        &mut self,
        count: usize,
        serial: f64,
        clock: f64,
        now: f64,
        at_least_epoch: f64,
        ctx: i32,
        replica: bool,
    ) -> u32 {
        self.check_many_inner(count, serial, clock, now, at_least_epoch, ctx, replica)
    }

    /// Decides a request by `token` (docs/javascript.md, `checkToken`) at the times and context
    /// of `check_ids`: the answer word, or `NEEDS_VERIFY` alone when the token's signature must be
    /// verified first (`token_pending`, then `token_verified`, then ask again), or (a replica)
    /// `NEEDS_CONFIRMATION` alone. The token's subject and refusal: `token_subject`,
    /// `token_error`.
    #[allow(
        clippy::too_many_arguments,
        reason = "numbers across the boundary, one call"
    )]
    pub fn check_token(
        &mut self,
        token: &str,
        action: &str,
        resource: &str,
        clock: f64,
        now: f64,
        at_least_epoch: f64,
        ctx: i32,
        replica: bool,
    ) -> u32 {
        let before = self.out.as_ptr();
        self.out.clear();
        self.token_subject = None;
        self.token_error = None;
        let read = self.load_context(ctx);
        let with = read == Some(true);
        let d = match Self::at(clock, now, at_least_epoch) {
            Ok(Some(at)) if read.is_some() => {
                let at = at.with_context(Self::context_of(&self.ctx, with));
                let verified = &self.verified;
                let mut asked = None;
                let mut verify = |v: &edge_authz::token::Verify<'_>| {
                    let f = Verdicts::fingerprint(v);
                    asked = Some(f);
                    verified.get(&f)
                };
                let answer =
                    self.r
                        .evaluator()
                        .check_token(token, action, resource, at, &mut verify);
                match answer {
                    TokenAnswer::Decided(t) => {
                        if replica && self.must_confirm(&t.decision, &at) {
                            return NEEDS_CONFIRMATION;
                        }
                        self.token_subject = t.subject;
                        self.token_error = t.fault.map(edge_authz::token::Fault::as_str);
                        t.decision
                    }
                    pending => {
                        self.pending = asked.map(|f| (f, pending));
                        return NEEDS_VERIFY;
                    }
                }
            }
            _ => self.r.evaluator().reject_request(),
        };
        let guarded = self.r.guard(d);
        if guarded.reason != d.reason {
            // Refused before gate 6 after all (a watermark seen since): no subject.
            self.token_subject = None;
            self.token_error = None;
        }
        let word = Self::encode(self.r.evaluator(), &guarded, &mut self.out);
        if self.out.as_ptr() == before {
            word
        } else {
            word | OUT_MOVED
        }
    }

    /// The signature the last token check waits for, as JSON `{alg, key}` (`key` the JWK to
    /// import), or null.
    pub fn token_pending(&self) -> String {
        match &self.pending {
            Some((_, TokenAnswer::Verify { alg, key, .. })) => {
                format!("{{\"alg\":\"{}\",\"key\":{key}}}", alg.as_str())
            }
            _ => "null".into(),
        }
    }

    /// What the pending signature is over, in one piece: its fingerprint (32 bytes, to hand
    /// back with its verdict), the length of the signed bytes (4 bytes, little-endian), the
    /// signed bytes, then the signature's bytes. Empty when nothing is pending.
    pub fn token_pending_bytes(&self) -> Vec<u8> {
        match &self.pending {
            Some((
                f,
                TokenAnswer::Verify {
                    message, signature, ..
                },
            )) => {
                let mut out = Vec::with_capacity(36 + message.len() + signature.len());
                out.extend_from_slice(f);
                out.extend_from_slice(&(message.len() as u32).to_le_bytes());
                out.extend_from_slice(message);
                out.extend_from_slice(signature);
                out
            }
            _ => Vec::new(),
        }
    }

    /// The host's verdict on the signature of fingerprint `id` (read from `token_pending_bytes`
    /// with the bytes it verified, so that checks interleaving meanwhile cannot swap verdicts):
    /// remembered (a bounded cache) for the checks that follow.
    pub fn token_verified(&mut self, id: &[u8], ok: bool) {
        let Ok(f) = <[u8; 32]>::try_from(id) else {
            return;
        };
        if self.pending.as_ref().is_some_and(|(p, _)| *p == f) {
            self.pending = None;
        }
        self.verified.put(f, ok);
    }

    /// The subject of the last token check that passed gate 6.
    pub fn token_subject(&self) -> Option<String> {
        self.token_subject.clone()
    }

    /// Why gate 6 refused the last token check (`signature`, `audience`, ...).
    pub fn token_error(&self) -> Option<String> {
        self.token_error.map(str::to_owned)
    }

    /// Makes room for a context of `bytes` bytes.
    pub fn ctx_reserve(&mut self, bytes: usize) {
        grow(&mut self.ctx_in, bytes);
    }

    /// Where the caller writes a context (valid until the next `ctx_reserve`).
    pub fn ctx_ptr(&mut self) -> *mut u8 {
        self.ctx_in.as_mut_ptr()
    }

    pub fn ctx_len(&self) -> usize {
        self.ctx_in.len()
    }

    /// The held state's conditions by id, as JSON: `[[name, attribute or null], ...]` (the
    /// attribute a comparison tests). The package names a decision's conditions and missing
    /// attributes from it, and passes only the attributes conditions test.
    pub fn conditions(&self) -> String {
        let list: Vec<(&str, Option<&str>)> = self
            .r
            .evaluator()
            .index()
            .map(|ix| {
                let c = ix.conditions();
                (0..c.len())
                    .filter_map(|i| c.get(i))
                    .map(|c| (c.name.as_str(), c.attr()))
                    .collect()
            })
            .unwrap_or_default();
        json(&list)
    }

    /// A message pushed to a route of `kind` (0 snapshot, 1 delta, 2 watermark), as the
    /// Worker's push routes take it at the host's `clock`: `[status, JSON]`, 200 and the push
    /// answer (the protocol crate's `PushAnswer`), or the refusal's status and its
    /// `{"error": {code, message}}` (docs/http.md, "Push errors"), the state unchanged.
    pub fn push(&mut self, kind: u32, bytes: &[u8], clock: f64) -> Result<Vec<String>, JsValue> {
        let clock = Self::time(clock).ok_or_else(invalid_clock)?;
        let kind = match kind {
            0 => MessageKind::Snapshot,
            1 => MessageKind::Delta,
            _ => MessageKind::Watermark,
        };
        let ev = self.r.evaluator_mut();
        ev.set_clock(Some(clock));
        let head = bytes
            .get(..bytes.len().min(edge_authz::PEEK_BYTES))
            .unwrap_or(bytes);
        let tenant = ev.tenant().to_string();
        let answer = peek(
            head,
            bytes.len(),
            kind,
            &tenant,
            &self.keys,
            &Limits::default(),
        )
        .and_then(|_| receive(ev, bytes));
        Ok(match answer {
            Ok(pushed) => vec!["200".into(), json(&PushAnswer::from(&pushed))],
            Err(e) => vec![
                http_status(&e).to_string(),
                json(&ErrorAnswer {
                    error: ErrorBody::from(&e),
                }),
            ],
        })
    }

    /// A replica's reuse windows: how long a `standard` and a `low` decision may reuse the last
    /// confirmation (ms; 0: never).
    pub fn set_reuse(&mut self, standard: f64, low: f64) -> Result<(), JsValue> {
        self.reuse = [
            whole("reuseMs.standard", standard)?,
            whole("reuseMs.low", low)?,
        ];
        Ok(())
    }

    /// The feed query (without `?`) of what this replica holds, waiting up to `wait_ms`.
    pub fn feed_query(&self, wait_ms: f64) -> Result<String, JsValue> {
        let wait = whole("wait", wait_ms)?.min(feed::MAX_WAIT_MS);
        Ok(FeedQuery::of(Some(self.r.held()), wait).to_query())
    }

    /// Replays a feed answer to a request that started at `started` (the host's clock): 0 the
    /// replica reached the authority's head (the confirmation is recorded), 1 its state does
    /// not lead there (start again: `restart`), 2 the answer stopped at its size limit after
    /// moving the replica (ask again from here), 3 the bytes are not a feed answer (nothing
    /// changed).
    pub fn feed(&mut self, body: &[u8], started: f64) -> Result<u32, JsValue> {
        let started = Self::time(started).ok_or_else(invalid_clock)?;
        let Some(answer) = feed::decode(body) else {
            return Ok(3);
        };
        let before = self.r.evaluator().epoch();
        let synced = self.r.catch_up(answer.head, answer.messages(), started);
        // The rest of a cut answer helps only when this part moved the replica: one that did
        // not apply here would be asked for again, and again.
        let moved = self.r.evaluator().epoch() > before;
        Ok(match synced {
            Synced::Reached => 0,
            Synced::Behind | Synced::Partly if answer.more && moved => 2,
            Synced::Behind | Synced::Partly => 1,
        })
    }

    /// Starts again from a feed answer to a query that named nothing held: 0 reached (the
    /// replica now holds that state), 1 still behind (it keeps what it held, and the head's
    /// watermark holds through its guard), 2 the answer stopped at its size limit and the
    /// replica took what it built (ask the feed again from here, as after `feed`'s 2), 3 not
    /// a feed answer.
    pub fn restart(&mut self, body: &[u8], started: f64) -> Result<u32, JsValue> {
        let started = Self::time(started).ok_or_else(invalid_clock)?;
        let Some(answer) = feed::decode(body) else {
            return Ok(3);
        };
        let tenant = self.r.evaluator().tenant().to_string();
        let fresh = Evaluator::with_keys(&tenant, self.keys.clone()).map_err(|e| throw(&e))?;
        Ok(
            match self
                .r
                .restart(fresh, answer.head, answer.messages(), started, answer.more)
            {
                Synced::Reached => 0,
                Synced::Behind => 1,
                Synced::Partly => 2,
            },
        )
    }

    /// How long ago (ms) the replica last confirmed with its authority; -1 when it never did.
    pub fn confirmation_age(&self, now: f64) -> f64 {
        Self::time(now)
            .and_then(|now| self.r.confirmation_age(now))
            .map_or(-1.0, |a| a as f64)
    }

    /// The authority's head as last reported (JSON `{epoch, watermark, confirmedAt}`), or
    /// `null`.
    pub fn authority_head(&self) -> String {
        json(&self.r.head())
    }

    /// The sizes of the name tables `[subjects, roles, resources]` (for the caller's caches),
    /// then the held index's serial number (low and high word; the ids `check_ids` takes are
    /// its), all 0 when nothing is held (no index has serial 0).
    pub fn table_sizes(&self) -> Vec<u32> {
        self.r.evaluator().index().map_or_else(
            || vec![0; 5],
            |ix| {
                let c = ix.content();
                let serial = ix.serial();
                [c.subjects.len(), c.roles.len(), c.resources.len()]
                    .iter()
                    .map(|n| *n as u32)
                    .chain([serial as u32, (serial >> 32) as u32])
                    .collect()
            },
        )
    }

    /// A name by dense id: kind 0 subject, 1 role, 2 resource.
    pub fn name(&self, kind: u32, id: u32) -> String {
        let Some(ix) = self.r.evaluator().index() else {
            return String::new();
        };
        match kind {
            0 => ix.subject_name(id),
            1 => ix.role_name(id),
            _ => ix.resource_name(id),
        }
        .to_string()
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "numbers across the boundary, one call"
    )]
    pub fn list_resources(
        &mut self,
        subject: &str,
        action: &str,
        type_filter: Option<String>,
        clock: f64,
        now: f64,
        at_least_epoch: f64,
        ctx: i32,
    ) -> Result<Vec<String>, JsValue> {
        let read = self.load_context(ctx);
        let with = read == Some(true);
        let listed = match Self::at(clock, now, at_least_epoch).map_err(|()| invalid_clock())? {
            Some(at) if read.is_some() => self.r.evaluator().list_resources(
                subject,
                action,
                type_filter.as_deref(),
                at.with_context(Self::context_of(&self.ctx, with)),
            ),
            _ => Err(self.r.evaluator().reject_list()),
        };
        listed.map_err(|e| throw(&e))
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "numbers across the boundary, one call"
    )]
    pub fn list_subjects(
        &mut self,
        resource: &str,
        action: &str,
        clock: f64,
        now: f64,
        at_least_epoch: f64,
        ctx: i32,
    ) -> Result<Vec<String>, JsValue> {
        let read = self.load_context(ctx);
        let with = read == Some(true);
        let listed = match Self::at(clock, now, at_least_epoch).map_err(|()| invalid_clock())? {
            Some(at) if read.is_some() => {
                let at = at.with_context(Self::context_of(&self.ctx, with));
                self.r.evaluator().list_subjects(resource, action, at)
            }
            _ => Err(self.r.evaluator().reject_list()),
        };
        listed.map_err(|e| throw(&e))
    }

    /// `status()` as JSON.
    pub fn status(&self) -> String {
        json(&self.r.evaluator().status())
    }
}

/// `[publicKey, secretKey]` as bare base64 from 32 random bytes the caller drew; pkg/src/api.js
/// writes them typed (`edge-authz-public:`, `edge-authz-secret:`), which costs less wasm than
/// `KeyPair::from_seed`'s typed strings.
#[wasm_bindgen]
pub fn key_pair_from_seed(seed: &[u8]) -> Result<Vec<String>, JsValue> {
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| invalid_argument("a key seed is 32 bytes".into()))?;
    let key = SecretKey::from_seed(seed);
    Ok(vec![key.public_key().to_base64(), key.to_base64()])
}

/// The model's warnings (an `invalid_model` error when it does not compile).
#[wasm_bindgen]
pub fn validate_model(model: &str) -> Result<Vec<String>, JsValue> {
    Ok(model_state(model)?.1)
}

#[wasm_bindgen]
pub fn compile_snapshot_raw(
    model: &str,
    epoch: f64,
    secret_key: &str,
    issued_at: f64,
) -> Result<Vec<u8>, JsValue> {
    let (mut state, _) = model_state(model)?;
    let issued_at = whole("issuedAt", issued_at)?;
    // Session revocations past their `until` are dropped when the origin compiles.
    state.identity.drop_expired(issued_at);
    compile_snapshot(
        &state,
        whole("epoch", epoch)?,
        issued_at,
        &secret(secret_key)?,
    )
    .map_err(|e| throw(&e))
}

/// A signed delta; the first byte of the result is 1 when it revokes, the rest is the message.
#[wasm_bindgen]
pub fn diff_models_raw(
    before: &str,
    after: &str,
    base_epoch: f64,
    epoch: f64,
    secret_key: &str,
    issued_at: f64,
) -> Result<Vec<u8>, JsValue> {
    let (before, _) = model_state(before)?;
    let (mut after, _) = model_state(after)?;
    let issued_at = whole("issuedAt", issued_at)?;
    // As the command line's `diff`: `after` is compiled now, its expired sessions dropped.
    after.identity.drop_expired(issued_at);
    let d = diff_models(
        &before,
        &after,
        whole("baseEpoch", base_epoch)?,
        whole("epoch", epoch)?,
        issued_at,
        &secret(secret_key)?,
    )
    .map_err(|e| throw(&e))?;
    let mut out = Vec::with_capacity(d.bytes.len() + 1);
    out.push(u8::from(d.revokes));
    out.extend_from_slice(&d.bytes);
    Ok(out)
}

#[wasm_bindgen]
pub fn sign_watermark_raw(
    tenant: &str,
    watermark: f64,
    secret_key: &str,
    issued_at: f64,
    delta: Option<Vec<u8>>,
) -> Result<Vec<u8>, JsValue> {
    sign_watermark(
        tenant,
        whole("watermark", watermark)?,
        whole("issuedAt", issued_at)?,
        delta.as_deref(),
        &secret(secret_key)?,
    )
    .map_err(|e| throw(&e))
}

/// A message's header and counts as JSON; the signature is checked when keys are given.
#[wasm_bindgen]
pub fn inspect_raw(bytes: &[u8], public_keys: Vec<String>) -> Result<String, JsValue> {
    let keys = public_keys
        .iter()
        .map(|k| PublicKey::from_base64(k))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| throw(&e))?;
    inspect(bytes, &keys, &Limits::default())
        .map(|i| json(&i))
        .map_err(|e| throw(&e))
}

/// The alternatives to the scratch-buffer crossing, measured by bench/boundary.mjs.
#[cfg(feature = "bench-boundary")]
#[wasm_bindgen]
impl RawEvaluator {
    /// wasm-bindgen's own string passing: three strings copied in per call.
    pub fn check_strs(&mut self, s: &str, a: &str, r: &str, clock: f64, now: f64) -> u32 {
        self.out.clear();
        let d = match Self::at(clock, now, -1.0) {
            Ok(Some(at)) => self
                .r
                .evaluator()
                .check(edge_authz::Request::new(s, a, r), at),
            _ => self.r.evaluator().reject_request(),
        };
        Self::encode(self.r.evaluator(), &d, &mut self.out)
    }

    /// A JSON round trip: the request as JSON in, the explained decision as JSON out.
    pub fn check_json(&self, request: &str, clock: f64) -> String {
        #[derive(serde::Deserialize)]
        struct Req {
            subject: String,
            action: String,
            resource: String,
            context: Option<serde_json::Value>,
        }
        let clock = Self::time(clock);
        let d = match (serde_json::from_str::<Req>(request), clock) {
            (Ok(q), Some(clock)) => match edge_authz_protocol::read_context(q.context.as_ref()) {
                Ok(c) => self.r.evaluator().check(
                    edge_authz::Request::new(&q.subject, &q.action, &q.resource),
                    c.at(clock),
                ),
                Err(()) => self.r.evaluator().reject_request(),
            },
            _ => self.r.evaluator().reject_request(),
        };
        json(&self.r.evaluator().explain(&d))
    }
}
