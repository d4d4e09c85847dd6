// The JavaScript API of edge-authz (pkg/README.md, docs/javascript.md), over the wasm core's raw
// bindings.
//
// The hot path: a name seen before crosses as its id in the held index (per-evaluator caches,
// emptied whenever the held state changes; the core refuses ids of another index). A new name is
// written straight into the core's input buffer (ASCII by a plain loop, anything else by
// TextEncoder.encodeInto), and the core hands back its id. Either way one call, numbers only. The
// answer is one number (allowed, reason, tier); a grant comes back as dense ids that are turned
// into names through per-evaluator caches, emptied whenever the held state changes. `checkMany`
// writes a whole batch and crosses once. See ARCHITECTURE.md for the measured alternatives.
//
// Every value the caller hands in (arguments, options, contexts, batch entries) is read exactly
// once, as a primitive, before anything is measured, copied into wasm memory or checked for
// liveness: a getter or a Proxy that answers differently on a second read can neither make a copy
// outgrow the room measured for it nor free the evaluator under its own call. Options and
// contexts are read as own properties only. Every error thrown carries a `code`.
import {
  RawEvaluator,
  answer_layout,
  compile_snapshot_raw,
  diff_models_raw,
  inspect_raw,
  key_pair_from_seed,
  sign_watermark_raw,
  validate_model,
} from '../dist/edge_authz.js';
import {
  MAX_ARRAY,
  clockOption,
  coded,
  describe,
  fail,
  hostClock,
  readOptions,
  stringArg,
  stringsOf,
  wellFormed,
} from './args.js';
import {
  host,
  needWasm,
  CHANGED,
  COPY_CONTEXT,
  DECIDED_AT,
  LOG,
  NEEDS,
  NOW,
  PROBE,
  PROBE_MANY,
  PROBE_TOKEN,
  RAW,
  READ_REQUESTS,
} from './internal.js';
import { verifySignature } from './token.js';

// The longest token read (the core's limit, `MAX_TOKEN_BYTES`); a longer one is not copied into
// wasm memory but answered as the core answers any malformed token.
const MAX_TOKEN = 8192;

// The answer word's layout, read from the wasm module (crates/wasm: `answer_layout`) when the
// first evaluator is made, so that this side cannot drift from the Rust side: the reasons and
// tiers by their index in the word, the bit shifts and masks, the flags.
let REASONS = null;
let TIERS;
let ALLOWED;
let REASON_SHIFT;
let REASON_MASK;
let TIER_SHIFT;
let TIER_MASK;
let HAS_GRANT;
let OUT_MOVED;
let NEEDS_CONFIRMATION;
let HAS_CONDITIONS;
let GRANT_WHEN;
let NEEDS_VERIFY;
// Checks by ids (crates/wasm: `check_ids`): the answer of ids the held index no longer answers,
// the mark of a batch field given by id, the id of a well-formed name the index does not hold,
// and a field whose name has no id to keep.
let STALE_IDS;
let ID_FLAG;
let ABSENT;
let NOT_LOOKED;
// A request field that is not a (well-formed) string; the core answers invalid_request.
let NOT_A_STRING;
function readLayout() {
  needWasm();
  if (REASONS !== null) return;
  const l = JSON.parse(answer_layout());
  ({ tiers: TIERS, allowed: ALLOWED, reasonShift: REASON_SHIFT, reasonMask: REASON_MASK } = l);
  ({ tierShift: TIER_SHIFT, tierMask: TIER_MASK, hasGrant: HAS_GRANT, outMoved: OUT_MOVED } = l);
  NOT_A_STRING = l.notAString;
  NEEDS_CONFIRMATION = l.needsConfirmation;
  HAS_CONDITIONS = l.hasConditions;
  GRANT_WHEN = l.grantWhen;
  NEEDS_VERIFY = l.needsVerify;
  STALE_IDS = l.staleIds;
  ID_FLAG = l.idFlag;
  ABSENT = l.absent;
  NOT_LOOKED = l.notLooked;
  REASONS = l.reasons;
}
// Requests per crossing in checkMany: bounds the input buffer whatever the batch size.
const CHUNK = 8192;
// A batch's fields as the name caches give them: ID_FLAG and the id, or 0 (not cached).
const CODES = new Uint32Array(3 * CHUNK);
// Names a cache keeps besides the held index's own (ids of names it does not hold, ABSENT):
// past that, a cache starts again, so a stream of unknown names costs bounded memory.
const EXTRA_NAMES = 4096;
// The longest valid id is 321 bytes (a 64-byte type, ':', a 256-byte name); a UTF-16 string longer
// than that cannot be valid, so it is refused here without being copied (a huge string would
// otherwise cost a huge buffer in wasm memory).
const MAX_FIELD = 64 + 1 + 256;

// Views of the wasm memory; a memory growth detaches them (byteLength 0), so they are renewed.
let U8 = new Uint8Array(0);
let U32 = new Uint32Array(0);
function views() {
  if (U8.byteLength === 0) {
    const buffer = host.wasm.memory.buffer;
    U8 = new Uint8Array(buffer);
    U32 = new Uint32Array(buffer);
  }
}

const encoder = new TextEncoder();
// Writes `s` as UTF-8 at `p`, never at or past `end` (the caller measured room for 3 bytes per
// UTF-16 unit of the same primitive string, so the bound only fails closed should that ever be
// wrong). Returns the bytes written, or NOT_A_STRING for a non-string or a string with lone
// surrogates (which UTF-8 cannot carry: encoding would turn them into U+FFFD and could name
// another id).
function put(p, s, end) {
  if (typeof s !== 'string' || s.length > MAX_FIELD) return NOT_A_STRING;
  const n = s.length;
  if (p + 3 * n > end) return NOT_A_STRING;
  const u8 = U8;
  let i = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) break;
    u8[p + i] = c;
  }
  if (i === n) return n;
  if (!wellFormed(s)) return NOT_A_STRING;
  const { written } = encoder.encodeInto(s.slice(i), u8.subarray(p + i, p + 3 * n));
  return i + written;
}

// A request field as the batch reads it: the primitive string itself, or null when it is not a
// string or cannot be a valid id (the core answers invalid_request).
function fieldOf(v) {
  return typeof v === 'string' && v.length <= MAX_FIELD ? v : null;
}

function strLen(s) {
  return typeof s === 'string' && s.length <= MAX_FIELD ? s.length : 0;
}

// A name for the listings: not a string, or not well-formed, becomes '' (invalid_request).
function nameArg(s) {
  return typeof s === 'string' && s.length <= MAX_FIELD && wellFormed(s) ? s : '';
}

// A time a context or a listing's options name: the clock when absent (undefined or null), -1
// when malformed (the core then answers invalid_request).
function timeOf(n, clock) {
  if (n === undefined || n === null) return clock;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : -1;
}

// The epoch the last context read by `readContext` needs at least (-1: none), and its
// attributes: `ctxCount` keys and values, read once (a list copied).
let atLeast = -1;
let ctxCount = 0;
const ctxKeys = [];
const ctxVals = [];

// Context limits (docs/decisions.md, "Context"), as the core checks them.
const MAX_KEYS = 32;
const MAX_KEY = 64;
const MAX_STRING = 256;
const MAX_LIST = 32;
// `[a-z][a-z0-9_]*` of at most MAX_KEY bytes, by a loop (a regular expression costs more here).
function attrKey(k) {
  const n = k.length;
  if (n === 0 || n > MAX_KEY) return false;
  let c = k.charCodeAt(0);
  if (c < 97 || c > 122) return false;
  for (let i = 1; i < n; i++) {
    c = k.charCodeAt(i);
    if (!((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95)) return false;
  }
  return true;
}

// The UTF-8 length of a well-formed string.
function utf8Length(s) {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) n += c < 0x800 ? 1 : c >= 0xd800 && c <= 0xdbff ? (i++, 2) : 2;
  }
  return n;
}

// A string attribute within the limit: at most 85 UTF-16 units are at most 255 bytes, so only
// longer strings are measured.
function attrString(v) {
  return (
    typeof v === 'string' &&
    v.length <= MAX_STRING &&
    wellFormed(v) &&
    (v.length <= 85 || utf8Length(v) <= MAX_STRING)
  );
}

// An attribute's value read once: the string, finite number or boolean itself, a fresh copy of a
// list of strings, or undefined when it is none of those within the limits.
function attrValue(v) {
  switch (typeof v) {
    case 'string':
      return attrString(v) ? v : undefined;
    case 'number':
      return Number.isFinite(v) ? v : undefined;
    case 'boolean':
      return v;
    case 'object': {
      if (!Array.isArray(v)) return undefined;
      const n = v.length;
      if (!(n <= MAX_LIST)) return undefined;
      const out = new Array(n);
      for (let i = 0; i < n; i++) {
        const x = v[i];
        if (!attrString(x)) return undefined;
        out[i] = x;
      }
      return out;
    }
    default:
      return undefined;
  }
}

// A context (docs/decisions.md, "Context"): an object of `now`, `at_least_epoch` and attributes,
// each optional. Returns its time: the clock when absent, -1 when the context is malformed or
// unreadable (a getter or a Proxy trap that throws); leaves the epoch it needs in `atLeast` and
// its attributes in `ctxKeys` / `ctxVals`. Each field is read once.
function readContext(context, clock) {
  atLeast = -1;
  ctxCount = 0;
  if (context === undefined || context === null) return clock;
  if (typeof context !== 'object') return -1;
  let n, e;
  try {
    if (Array.isArray(context)) return -1;
    const keys = Object.keys(context);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      if (k === 'now') n = context.now;
      else if (k === 'at_least_epoch') e = context.at_least_epoch;
      else {
        if (ctxCount === MAX_KEYS || !attrKey(k)) return -1;
        const v = attrValue(context[k]);
        if (v === undefined) return -1;
        ctxKeys[ctxCount] = k;
        ctxVals[ctxCount] = v;
        ctxCount++;
      }
    }
  } catch {
    return -1;
  }
  if (e !== undefined && e !== null) {
    atLeast = timeOf(e, -1);
    if (atLeast < 0) return -1;
  }
  return timeOf(n, clock);
}

// The time of a listing's options: `context` (as check takes it) when given, else `now`.
function listNow(o, clock) {
  atLeast = -1;
  ctxCount = 0;
  return o.context !== undefined ? readContext(o.context, clock) : timeOf(o.now, clock);
}

// A context read once into a fresh plain object (`undefined` when absent), or `[]` (a context the
// core answers invalid_request) when it is malformed: what a Replica hands to its evaluator, maybe
// twice (before and after a sync), without reading the caller's object again.
function copyContext(context) {
  const n = readContext(context, -2);
  if (n === -1) return [];
  const c = {};
  if (n !== -2) c.now = n;
  if (atLeast !== -1) c.at_least_epoch = atLeast;
  for (let i = 0; i < ctxCount; i++) c[ctxKeys[i]] = ctxVals[i];
  return c;
}

const F64 = new DataView(new ArrayBuffer(8));

function modelError(message, cause) {
  const err = fail('invalid_model', message, cause);
  err.detail = 'invalid_json';
  return err;
}

// The model as JSON text, a primitive string read once (JSON.stringify reads every field once).
function modelText(model) {
  if (typeof model === 'string') {
    if (!wellFormed(model)) throw modelError('the model text has a lone surrogate, which JSON in UTF-8 cannot carry');
    return model;
  }
  if (model === null || typeof model !== 'object') {
    throw fail('invalid_argument', 'the model must be an object or a JSON string');
  }
  let text;
  try {
    text = JSON.stringify(model);
  } catch (e) {
    throw modelError(`the model cannot be written as JSON: ${describe(e)}`, e);
  }
  if (typeof text !== 'string') throw modelError('the model cannot be written as JSON');
  return text;
}

// The byte views' own getters, so that a subclass or an own property cannot lie about a view's
// length (the glue reads it twice: once to allocate, once to copy).
const getter = (proto, name) => Object.getOwnPropertyDescriptor(proto, name).get;
const TYPED = Object.getPrototypeOf(Uint8Array.prototype);
const TA = [getter(TYPED, 'buffer'), getter(TYPED, 'byteOffset'), getter(TYPED, 'byteLength')];
const DV = [getter(DataView.prototype, 'buffer'), getter(DataView.prototype, 'byteOffset'), getter(DataView.prototype, 'byteLength')];
const AB_LENGTH = getter(ArrayBuffer.prototype, 'byteLength');

// A fresh Uint8Array over the bytes of a typed array, a DataView or an ArrayBuffer.
function bytesOf(bytes, what) {
  try {
    if (ArrayBuffer.isView(bytes)) {
      let g = TA;
      try {
        g[0].call(bytes);
      } catch {
        g = DV;
      }
      return new Uint8Array(g[0].call(bytes), g[1].call(bytes), g[2].call(bytes));
    }
    AB_LENGTH.call(bytes);
    return new Uint8Array(bytes);
  } catch {
    throw fail('invalid_argument', `${what} must be a Uint8Array`);
  }
}

function numberArg(v, name) {
  if (typeof v !== 'number') throw fail('invalid_argument', `\`${name}\` must be a number`);
  return v;
}


function issuedAt(o) {
  return o.issuedAt === undefined ? Date.now() : numberArg(o.issuedAt, 'issuedAt');
}

// The requests of a batch, read once: `length` once, each entry once, its `length` and three
// fields once, into a flat array of primitive strings (null: not a string, the entry's field is
// malformed). An entry that cannot be read (a getter or a Proxy trap that throws) is malformed.
function readRequests(requests) {
  let n;
  try {
    n = Array.isArray(requests) ? requests.length : undefined;
  } catch (e) {
    throw fail('invalid_argument', `the requests could not be read: ${describe(e)}`, e);
  }
  if (n === undefined) throw fail('invalid_argument', 'checkMany takes an array of [subject, action, resource]');
  if (!Number.isSafeInteger(n) || n < 0 || 3 * n > MAX_ARRAY) {
    throw fail('invalid_argument', 'the requests array has no valid length');
  }
  const fields = new Array(3 * n);
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    let s = null;
    let a = null;
    let r = null;
    try {
      const q = requests[i];
      if (Array.isArray(q) && q.length === 3) {
        s = fieldOf(q[0]);
        a = fieldOf(q[1]);
        r = fieldOf(q[2]);
      }
    } catch {
      s = a = r = null;
    }
    fields[j] = s;
    fields[j + 1] = a;
    fields[j + 2] = r;
  }
  return fields;
}

const BUILD = Symbol('edge-authz raw evaluator');

// The `onDecision` option: a function, or null when absent.
function onDecisionOption(o) {
  const f = o.onDecision;
  if (f === undefined || f === null) return null;
  if (typeof f !== 'function') throw fail('invalid_argument', '`onDecision` must be a function');
  return f;
}

// A request field as a decision log entry names it: the string, or null for anything else.
function logged(v) {
  return typeof v === 'string' ? v : null;
}

// A context read once for a logged decision: a fresh plain object (the one the decision is then
// made with, and the entry shows), `undefined` for none, or `[]` when malformed (the core answers
// invalid_request).
function logContext(context) {
  return context === undefined || context === null ? undefined : copyContext(context);
}

/** One tenant's authorization state, answering checks (docs/decisions.md). */
export class Evaluator {
  #raw;
  #clock = hostClock;
  #epoch = null;
  #watermark = 0;
  #names = [[], [], []];
  #inPtr = 0;
  #inLen = 0;
  #lensPtr = 0;
  #lensLen = 0;
  #outPtr = 0;
  // The name caches (docs/javascript.md, "Performance"): subject, action and resource names to
  // their ids in the held index (ABSENT for a well-formed name it does not hold), each kept to
  // `#idLimits`; the index's serial number (the core refuses ids of another index; 0: none).
  #ids = [new Map(), new Map(), new Map()];
  #idLimits = [EXTRA_NAMES, EXTRA_NAMES, EXTRA_NAMES];
  #serial = 0;

  constructor(options, raw, clock, onDecision) {
    try {
      readLayout();
      if (options === BUILD) {
        this.#raw = raw;
        this.#clock = clock;
        this.#logTo(onDecision);
      } else {
        const o = readOptions(options, ['tenant', 'publicKeys', 'clock', 'onDecision'], 'the options');
        const tenant = stringArg(o.tenant, 'tenant');
        const keys = stringsOf(o.publicKeys, '`publicKeys`');
        this.#clock = clockOption(o);
        const log = onDecisionOption(o);
        this.#raw = new RawEvaluator(tenant, keys);
        this.#logTo(log);
      }
      this.#buffers();
      this.#sync();
    } catch (e) {
      throw coded(e);
    }
  }

  /** An unsigned evaluator of a model, for previews and tests (no watermark, no freshness);
   * `options.clock` as the constructor's (the time of expiry when a context names none),
   * `options.onDecision` too. */
  static preview(model, options) {
    try {
      needWasm();
      const text = modelText(model);
      const o = readOptions(options, ['clock', 'onDecision'], 'the options');
      const clock = clockOption(o);
      const log = onDecisionOption(o);
      return new Evaluator(BUILD, RawEvaluator.preview(text), clock, log);
    } catch (e) {
      throw coded(e);
    }
  }

  // The decision log (docs/javascript.md, "Decision logs"): the `onDecision` callback or null;
  // the held state's tenant and digest, read once per change of the state (null: to be read);
  // the clock of the last decision, recorded by the clock itself only when there is a callback,
  // so that the checks without one run exactly as before; whether the callback threw already.
  #onDecision = null;
  #logState = null;
  #at = 0;
  #threw = false;

  #logTo(f) {
    if (f === null) return;
    this.#onDecision = f;
    const clock = this.#clock;
    this.#clock = () => (this.#at = clock());
  }

  // What the entries of decisions made now carry besides the decision: the clock of the last one,
  // and the held state's tenant and digest (read once per change of the state). Taken before any
  // callback runs: a callback that loads a message or frees the evaluator changes no entry.
  #stamp() {
    let s = this.#logState;
    if (s === null) {
      const raw = this.#raw;
      if (raw === null) return null;
      const st = JSON.parse(raw.status());
      s = this.#logState = { tenant: st.tenant, digest: st.digest };
    }
    return { at: this.#at, tenant: s.tenant, digest: s.digest };
  }

  // Hands one decision to the callback, as the Worker logs it: `context` is the one read for it
  // (`[]` when malformed: then the caller's as given), `token` for a token check. A callback that
  // throws changes nothing: its first error is reported once on the console, later ones ignored.
  #emit(stamp, d, subject, action, resource, context, given, token) {
    if (stamp === null) return;
    const e = { event: 'decision', ts: stamp.at, tenant: stamp.tenant, subject, action, resource };
    if (context !== undefined) e.context = Array.isArray(context) ? given : context;
    e.allowed = d.allowed;
    e.reason = d.reason;
    e.epoch = d.epoch;
    e.watermark = d.watermark;
    e.tier = d.tier;
    e.digest = stamp.digest;
    if (token) e.token = true;
    try {
      this.#onDecision(e);
    } catch (err) {
      if (!this.#threw) {
        this.#threw = true;
        globalThis.console?.error?.('edge-authz: onDecision threw (reported once per evaluator; the decision stands):', err);
      }
    }
  }

  // A check with a callback: the context read once, the decision made with that copy, then logged.
  #checkLogged(subject, action, resource, context) {
    const c = logContext(context);
    const d = this.#check(subject, action, resource, c, false);
    this.#emit(this.#stamp(), d, logged(subject), logged(action), logged(resource), c, context, false);
    return d;
  }

  #checkManyLogged(requests, context) {
    const fields = readRequests(requests);
    const c = logContext(context);
    const ds = this.#checkMany(fields, c, false);
    this.#log(ds, fields, c, context, false, this.#stamp());
    return ds;
  }

  #log(ds, fields, context, given, token, stamp) {
    for (let i = 0; i < ds.length; i++) {
      const d = ds[i];
      const subject = token ? (d.subject ?? '') : logged(fields[3 * i]);
      this.#emit(stamp, d, subject, logged(fields[3 * i + 1]), logged(fields[3 * i + 2]), context, given, token);
    }
  }

  // The host's clock now: a whole number of ms from 0 to 2^53 - 1, else `invalid_clock` (a
  // decision at an unknown time fails closed).
  #time() {
    const clock = this.#clock;
    let t;
    try {
      t = clock();
    } catch (e) {
      throw fail('invalid_clock', `the clock threw: ${describe(e)}`, e);
    }
    if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0) {
      const what = typeof t === 'number' ? String(t) : `a ${typeof t}`;
      throw fail('invalid_clock', `the clock gave ${what}, not a whole number of ms from 0 to 2^53 - 1`);
    }
    return t;
  }

  #buffers() {
    this.#inPtr = this.#raw.input_ptr();
    this.#inLen = this.#raw.input_len();
    this.#lensPtr = this.#raw.lens_ptr();
    this.#lensLen = this.#raw.lens_len();
    this.#outPtr = this.#raw.out_ptr();
  }

  // After any change of the held state: epoch and watermark for decisions, empty name caches.
  #sync() {
    if (this.#raw === null) return;
    const e = this.#raw.epoch();
    this.#epoch = e < 0 ? null : e;
    this.#watermark = this.#raw.watermark();
    this.#logState = null;
    // Preallocated so that filling them at random ids keeps V8's fast (non-dictionary) arrays.
    const sizes = this.#raw.table_sizes();
    this.#names = [new Array(sizes[0]), new Array(sizes[1]), new Array(sizes[2])];
    this.#serial = sizes[3] + sizes[4] * 2 ** 32;
    for (const m of this.#ids) m.clear();
    // Subjects (principals) and resources as many as the index holds; actions a few.
    this.#idLimits = [sizes[0] + EXTRA_NAMES, 256 + EXTRA_NAMES, sizes[2] + EXTRA_NAMES];
    // The conditions by id ([name, attribute or null]), and the attributes they test: only
    // those cross into wasm; without conditions a context crosses not at all.
    this.#conds = JSON.parse(this.#raw.conditions());
    this.#attrs = new Set();
    for (const [, attr] of this.#conds) if (attr !== null) this.#attrs.add(attr);
  }
  #conds = [];
  #attrs = new Set();

  // Writes the attributes of the context last read that a condition tests into the core's
  // context buffer; returns their length in bytes, or -1 for none.
  #putContext(raw) {
    const attrs = this.#attrs;
    if (ctxCount === 0 || attrs.size === 0) return -1;
    let need = 0;
    for (let i = 0; i < ctxCount; i++) {
      if (!attrs.has(ctxKeys[i])) continue;
      const v = ctxVals[i];
      need += 2 + ctxKeys[i].length;
      if (typeof v === 'string') need += 2 + 3 * v.length;
      else if (typeof v === 'number') need += 8;
      else if (typeof v !== 'boolean') {
        need += 1; // the count, even of an empty list
        for (const x of v) need += 2 + 3 * x.length;
      }
    }
    if (need === 0) return -1;
    if (need > this.#ctxLen) {
      raw.ctx_reserve(need);
      this.#ctxLen = raw.ctx_len();
      this.#ctxPtr = raw.ctx_ptr();
    }
    const base = this.#ctxPtr;
    views();
    const u8 = U8;
    let p = base;
    // A string as two bytes of length and its UTF-8: ASCII by a loop, the rest by encodeInto.
    const str = (x) => {
      const n = x.length;
      let i = 0;
      for (; i < n; i++) {
        const c = x.charCodeAt(i);
        if (c > 0x7f) break;
        u8[p + 2 + i] = c;
      }
      let written = n;
      if (i < n) written = i + encoder.encodeInto(x.slice(i), u8.subarray(p + 2 + i, p + 2 + 3 * n)).written;
      u8[p] = written & 0xff;
      u8[p + 1] = written >>> 8;
      p += 2 + written;
    };
    for (let i = 0; i < ctxCount; i++) {
      const k = ctxKeys[i];
      if (!attrs.has(k)) continue;
      u8[p++] = k.length;
      for (let j = 0; j < k.length; j++) u8[p++] = k.charCodeAt(j);
      const v = ctxVals[i];
      if (typeof v === 'string') {
        u8[p++] = 0;
        str(v);
      } else if (typeof v === 'number') {
        u8[p++] = 1;
        F64.setFloat64(0, v, true);
        for (let j = 0; j < 8; j++) u8[p++] = F64.getUint8(j);
      } else if (typeof v === 'boolean') {
        u8[p++] = v ? 3 : 2;
      } else {
        u8[p++] = 4;
        u8[p++] = v.length;
        for (const x of v) str(x);
      }
    }
    return p - base;
  }
  #ctxLen = 0;
  #ctxPtr = 0;

  // Keeps a name's id (`code`: an id, ABSENT, or NOT_LOOKED: nothing to keep) in cache `kind`.
  #learn(kind, name, code) {
    if (code === NOT_LOOKED || typeof name !== 'string') return;
    const m = this.#ids[kind];
    if (m.size >= this.#idLimits[kind]) m.clear();
    m.set(name, code);
  }

  #name(kind, id) {
    const cache = this.#names[kind];
    let n = cache[id];
    if (n === undefined) {
      n = this.#raw.name(kind, id);
      cache[id] = n;
    }
    return n;
  }

  #reserve(bytes, requests) {
    if (bytes > this.#inLen || 3 * requests > this.#lensLen) {
      this.#raw.reserve(bytes, requests);
      this.#buffers();
    }
  }

  // The decision for answer word `w`; its grant ids (if any) start at U32 index `at`.
  // Returns the decision; `this.#next` is the index after its grant ids.
  #decision(w, at) {
    const reason = REASONS[(w >>> REASON_SHIFT) & REASON_MASK];
    const d = {
      allowed: (w & ALLOWED) !== 0,
      reason,
      epoch: reason === 'no_snapshot' ? null : this.#epoch,
      watermark: this.#watermark,
      tier: TIERS[(w >>> TIER_SHIFT) & TIER_MASK],
    };
    if (w & HAS_GRANT) {
      // Every id is read before any name is looked up: a name lookup that misses the cache calls
      // into wasm, which may grow the memory and detach the views.
      const u32 = U32;
      const principal = u32[at];
      const role = u32[at + 1];
      const resource = u32[at + 2];
      const hops = u32[at + 3];
      const path = new Array(hops);
      for (let i = 0; i < hops; i++) path[i] = u32[at + 4 + i];
      at += 4 + hops;
      const when = w & GRANT_WHEN ? u32[at++] : -1;
      for (let i = 0; i < hops; i++) path[i] = this.#name(0, path[i]);
      d.grant = {
        principal: this.#name(0, principal),
        role: this.#name(1, role),
        resource: this.#name(2, resource),
        path,
      };
      if (when !== -1) d.grant.when = this.#conds[when][0];
    }
    if (w & HAS_CONDITIONS) {
      const u32 = U32;
      const [c0, c1, m0, m1] = [u32[at], u32[at + 1], u32[at + 2], u32[at + 3]];
      at += 4;
      // Ids follow the names' order, so the names come out sorted.
      const conditions = [];
      const missing = new Set();
      const conds = this.#conds;
      for (let i = 0; i < conds.length; i++) {
        const bit = i < 32 ? (c0 >>> i) & 1 : (c1 >>> (i - 32)) & 1;
        if (bit) conditions.push(conds[i][0]);
        const m = i < 32 ? (m0 >>> i) & 1 : (m1 >>> (i - 32)) & 1;
        if (m && conds[i][1] !== null) missing.add(conds[i][1]);
      }
      d.conditions = conditions;
      d.missing = [...missing].sort();
    }
    this.#next = at;
    return d;
  }
  #next = 0;

  // The raw evaluator, or a coded error once freed (its memory may belong to another one now).
  // Called after the caller's values are read (their getters may free this evaluator) and before
  // anything is copied: no caller code runs between this and the call into wasm.
  #live() {
    if (this.#raw === null) throw fail('freed', 'the evaluator was freed');
    return this.#raw;
  }

  // A signed message, refused (`clock_skew`) when issued more than a second past the clock.
  #apply(bytes, what, call) {
    try {
      const b = bytesOf(bytes, what);
      const clock = this.#time();
      const raw = this.#live();
      try {
        raw.set_clock(clock);
        return call(raw, b);
      } finally {
        this.#sync();
      }
    } catch (e) {
      throw coded(e);
    }
  }

  /** Loads a signed snapshot. */
  loadSnapshot(bytes) {
    return this.#apply(bytes, 'the snapshot', (raw, b) => {
      const [epoch, applied] = raw.load_snapshot(b);
      return { epoch, applied: applied === 1 };
    });
  }

  /** Applies a signed delta on top of the held epoch. */
  applyDelta(bytes) {
    return this.#apply(bytes, 'the delta', (raw, b) => {
      const [epoch, applied] = raw.apply_delta(b);
      return { epoch, applied: applied === 1 };
    });
  }

  /** Applies a signed watermark (or heartbeat), with the delta it may carry. */
  applyWatermark(bytes) {
    return this.#apply(bytes, 'the watermark', (raw, b) => JSON.parse(raw.apply_watermark(b)));
  }

  /** Decides one request. Never throws for bad input: it answers `invalid_request`. */
  check(subject, action, resource, context) {
    try {
      if (this.#onDecision !== null) return this.#checkLogged(subject, action, resource, context);
      return this.#check(subject, action, resource, context, false);
    } catch (e) {
      throw coded(e);
    }
  }

  // A check; for a replica (`replica`), NEEDS, and nothing decided, when it must sync first.
  #check(subject, action, resource, context, replica) {
    const clock = this.#time();
    const now = readContext(context, clock);
    const least = atLeast;
    const raw = this.#live();
    const ctx = now < 0 || ctxCount === 0 ? -1 : this.#putContext(raw);
    // Names seen before cross as their ids. A Map keyed by the string itself: a non-string is
    // never found, and V8 keeps a string's hash with it.
    const ids = this.#ids;
    const is = ids[0].get(subject);
    const ia = ids[1].get(action);
    const ir = ids[2].get(resource);
    if (is !== undefined && ia !== undefined && ir !== undefined) {
      const w = raw.check_ids(is, ia, ir, this.#serial, clock, now, least, ctx, replica);
      if (w !== STALE_IDS) return this.#answer(w, raw);
      // Not the index the caches were filled from (a change this side missed): start again.
      this.#sync();
    }
    // By names: a batch of one, which hands back the names' ids for the caches.
    const one = [fieldOf(subject), fieldOf(action), fieldOf(resource)];
    const out = [undefined];
    const r = this.#chunk(one, 0, 1, out, clock, now, least, ctx, replica);
    return r === NEEDS ? NEEDS : out[0];
  }

  // A check's answer word as its decision (NEEDS for a replica that must sync first).
  #answer(w, raw) {
    if (w === NEEDS_CONFIRMATION) return NEEDS;
    if (w & OUT_MOVED) this.#outPtr = raw.out_ptr();
    if (w & HAS_GRANT) views();
    return this.#decision(w, this.#outPtr >>> 2);
  }

  /** Decides a request by a token (a compact JWS) instead of a subject: a Promise of the
   * decision, with `subject` once the token passed (docs/javascript.md, `checkToken`). The
   * signature is verified by the host's WebCrypto once per token and key; the held state decides
   * every time. Never rejects for a bad token: it answers `token_invalid`. */
  checkToken(token, action, resource, context) {
    let c;
    try {
      c = context === undefined ? undefined : copyContext(context);
    } catch (e) {
      return Promise.reject(coded(e));
    }
    let p = this.#checkToken(token, action, resource, c, false);
    if (this.#onDecision !== null) {
      p = p.then((d) => {
        this.#log([d], [null, action, resource], context === null ? undefined : c, context, true, this.#stamp());
        return d;
      });
    }
    return p.catch((e) => {
      throw coded(e);
    });
  }

  // A token check: rounds of deciding, each synchronous, until no signature is left to verify.
  // For a replica (`replica`), NEEDS when it must sync first.
  async #checkToken(token, action, resource, context, replica) {
    const t = typeof token === 'string' && token.length <= MAX_TOKEN && wellFormed(token) ? token : '';
    for (let round = 0; round < 4; round++) {
      const d = this.#tokenRound(t, action, resource, context, replica);
      if (d === NEEDS || d !== null) return d;
      const raw = this.#live();
      const { alg, key } = JSON.parse(raw.token_pending());
      // The fingerprint, the signed bytes' length, the signed bytes, the signature.
      const b = raw.token_pending_bytes();
      const id = b.subarray(0, 32);
      const n = (b[32] | (b[33] << 8) | (b[34] << 16) | (b[35] << 24)) >>> 0;
      const ok = await verifySignature(alg, JSON.stringify(key), b.subarray(36, 36 + n), b.subarray(36 + n));
      this.#live().token_verified(id, ok);
    }
    throw fail('token_unverified', 'the token check asked for a signature four times');
  }

  // One synchronous round of a token check: the decision, NEEDS, or null when a signature must
  // be verified first (the core holds what).
  #tokenRound(token, action, resource, context, replica) {
    const clock = this.#time();
    const now = readContext(context, clock);
    const least = atLeast;
    const raw = this.#live();
    const ctx = now < 0 || ctxCount === 0 ? -1 : this.#putContext(raw);
    const w = raw.check_token(token, nameArg(action), nameArg(resource), clock, now, least, ctx, replica);
    if (w === NEEDS_CONFIRMATION) return NEEDS;
    if (w === NEEDS_VERIFY) return null;
    if (w & OUT_MOVED) this.#outPtr = raw.out_ptr();
    views();
    const d = this.#decision(w, this.#outPtr >>> 2);
    const subject = raw.token_subject();
    if (subject !== undefined) d.subject = subject;
    const error = raw.token_error();
    if (error !== undefined) d.tokenError = error;
    return d;
  }

  /** Decides many requests `[subject, action, resource]` at one time, in order. */
  checkMany(requests, context) {
    try {
      if (this.#onDecision !== null) return this.#checkManyLogged(requests, context);
      return this.#checkMany(readRequests(requests), context, false);
    } catch (e) {
      throw coded(e);
    }
  }

  // A batch of requests read by readRequests; NEEDS for a replica that must sync first.
  #checkMany(fields, context, replica) {
    const clock = this.#time();
    const now = readContext(context, clock);
    const least = atLeast;
    const raw = this.#live();
    const ctx = now < 0 || ctxCount === 0 ? -1 : this.#putContext(raw);
    const count = fields.length / 3;
    const out = new Array(count);
    for (let start = 0; start < count; start += CHUNK) {
      const end = Math.min(count, start + CHUNK);
      if (this.#chunk(fields, start, end, out, clock, now, least, ctx, replica) === NEEDS) return NEEDS;
    }
    return out;
  }

  // Decides requests `start` to `end` of a batch's fields (as readRequests reads them) into
  // `out`, with the context already read; NEEDS for a replica that must sync first.
  #chunk(fields, start, end, out, clock, now, least, ctx, replica) {
    const raw = this.#raw;
    const ids = this.#ids;
    for (;;) {
      // Each field by its cached id (CODES), else by its name, measured here and written below.
      let need = 0;
      for (let j = 3 * start, k = 0; j < 3 * end; j++, k = k === 2 ? 0 : k + 1) {
        const f = fields[j];
        const id = f === null ? undefined : ids[k].get(f);
        if (id === undefined) {
          CODES[j - 3 * start] = 0;
          need += strLen(f);
        } else {
          CODES[j - 3 * start] = ID_FLAG | id;
        }
      }
      this.#reserve(3 * need, end - start);
      views();
      let p = this.#inPtr;
      const stop = p + this.#inLen;
      const lens = this.#lensPtr >>> 2;
      let u32 = U32;
      for (let j = 3 * start, l = lens; j < 3 * end; j++, l++) {
        const c = CODES[j - 3 * start];
        if (c !== 0) {
          u32[l] = c;
        } else {
          const n = put(p, fields[j], stop);
          if (n !== NOT_A_STRING) p += n;
          u32[l] = n;
        }
      }
      const r = raw.check_many(end - start, this.#serial, clock, now, least, ctx, replica);
      if (r === NEEDS_CONFIRMATION) return NEEDS;
      if (r === STALE_IDS) {
        // Not the index the caches were filled from (a change this side missed): empty them
        // and ask again, by names.
        this.#sync();
        continue;
      }
      views();
      u32 = U32;
      // The ids the core looked up for the fields given by name, for the caches.
      for (let j = 3 * start, l = lens, k = 0; j < 3 * end; j++, l++, k = k === 2 ? 0 : k + 1) {
        if (CODES[j - 3 * start] === 0) {
          const c = u32[l];
          if (c !== NOT_LOOKED) this.#learn(k, fields[j], (c & ~ID_FLAG) >>> 0);
        }
      }
      this.#outPtr = raw.out_ptr();
      const words = this.#outPtr >>> 2;
      let at = words + (end - start);
      for (let i = start; i < end; i++) {
        views(); // the previous decision's name lookups may have grown the memory
        out[i] = this.#decision(U32[words + i - start], at);
        at = this.#next;
      }
      return out;
    }
  }

  // For the package's Replica (replica.js), which follows an authority with this evaluator.
  // A check through a replica's policy (`replica`, by default) or as a plain check (after a
  // confirmation); a batch as read by readRequests.
  [PROBE](subject, action, resource, context, replica = true) {
    return this.#check(subject, action, resource, context, replica);
  }

  [PROBE_TOKEN](token, action, resource, context, replica = true) {
    return this.#checkToken(token, action, resource, context, replica);
  }

  [PROBE_MANY](fields, context, replica = true) {
    return this.#checkMany(fields, context, replica);
  }

  [RAW]() {
    return this.#live();
  }

  // For the package's Replica: whether decisions are logged (null: not), else what the entries
  // of the decision just made carry; and the log of decisions it made through the probes
  // (`fields` as readRequests reads a batch, `stamp` from DECIDED_AT).
  [DECIDED_AT]() {
    return this.#onDecision === null ? null : this.#stamp();
  }

  [LOG](ds, fields, context, given, token, stamp) {
    this.#log(ds, fields, context, given, token, stamp);
  }

  [CHANGED]() {
    this.#sync();
  }

  [NOW]() {
    return this.#time();
  }

  static [COPY_CONTEXT](context) {
    return copyContext(context);
  }

  static [READ_REQUESTS](requests) {
    return readRequests(requests);
  }

  /** Resources (optionally of one type) on which `subject` may do `action`, sorted. */
  listResources(subject, action, options) {
    try {
      const o = readOptions(options, ['type', 'context', 'now'], 'the options');
      const type = o.type === undefined || o.type === null ? undefined : nameArg(o.type);
      const clock = this.#time();
      const now = listNow(o, clock);
      const least = atLeast;
      const raw = this.#live();
      const ctx = now < 0 || ctxCount === 0 ? -1 : this.#putContext(raw);
      return raw.list_resources(nameArg(subject), nameArg(action), type, clock, now, least, ctx);
    } catch (e) {
      throw coded(e);
    }
  }

  /** Members (not groups), not suspended, who may do `action` on `resource`, sorted. */
  listSubjects(resource, action, options) {
    try {
      const o = readOptions(options, ['context', 'now'], 'the options');
      const clock = this.#time();
      const now = listNow(o, clock);
      const least = atLeast;
      const raw = this.#live();
      const ctx = now < 0 || ctxCount === 0 ? -1 : this.#putContext(raw);
      return raw.list_subjects(nameArg(resource), nameArg(action), clock, now, least, ctx);
    } catch (e) {
      throw coded(e);
    }
  }

  /** What the evaluator holds (docs/decisions.md, "Status"). */
  status() {
    try {
      return JSON.parse(this.#live().status());
    } catch (e) {
      throw coded(e);
    }
  }

  /** Releases the evaluator's wasm memory now rather than at garbage collection. Calls after
   * this throw `freed`; freeing again does nothing. */
  free() {
    const raw = this.#raw;
    if (raw === null) return;
    this.#raw = null;
    this.#inPtr = this.#inLen = this.#lensPtr = this.#lensLen = this.#outPtr = this.#ctxLen = this.#ctxPtr = 0;
    this.#names = [[], [], []];
    raw.free();
  }

  [Symbol.dispose]() {
    this.free();
  }
}

// Fills `bytes` from the host's cryptographic randomness: WebCrypto where it is global (browsers,
// workerd, Node 19 on), else Node's own (`host.nodeCrypto`, set by the Node entry: Node 18).
function randomValues(bytes) {
  const c = globalThis.crypto ?? host.nodeCrypto?.();
  if (typeof c?.getRandomValues !== 'function') {
    throw fail('no_randomness', 'this host has no cryptographic random source (globalThis.crypto.getRandomValues)');
  }
  c.getRandomValues(bytes);
}

/** A fresh Ed25519 key pair for the origin, as typed key strings (`edge-authz-public:`, `edge-authz-secret:`). */
export function generateKeyPair() {
  const seed = new Uint8Array(32);
  try {
    needWasm();
    randomValues(seed);
    const [publicKey, secretKey] = key_pair_from_seed(seed);
    // Typed here, not in the wasm (smaller): docs/formats.md, "Keys and key ids".
    return { publicKey: `edge-authz-public:${publicKey}`, secretKey: `edge-authz-secret:${secretKey}` };
  } catch (e) {
    throw coded(e);
  } finally {
    seed.fill(0);
  }
}

/** Compiles a model into a signed snapshot at `epoch`. */
export function compileSnapshot(model, options) {
  try {
    needWasm();
    const o = readOptions(options, ['epoch', 'secretKey', 'issuedAt'], 'the options');
    return compile_snapshot_raw(
      modelText(model),
      numberArg(o.epoch, 'epoch'),
      stringArg(o.secretKey, 'secretKey'),
      issuedAt(o),
    );
  } catch (e) {
    throw coded(e);
  }
}

/** The signed delta from `before` (at `baseEpoch`) to `after` (at `epoch`), and whether it revokes. */
export function diffModels(before, after, options) {
  try {
    needWasm();
    const o = readOptions(options, ['baseEpoch', 'epoch', 'secretKey', 'issuedAt'], 'the options');
    const out = diff_models_raw(
      modelText(before),
      modelText(after),
      numberArg(o.baseEpoch, 'baseEpoch'),
      numberArg(o.epoch, 'epoch'),
      stringArg(o.secretKey, 'secretKey'),
      issuedAt(o),
    );
    return { delta: out.slice(1), revokes: out[0] === 1 };
  } catch (e) {
    throw coded(e);
  }
}

/** A signed watermark (a heartbeat when it does not rise), optionally carrying a delta. */
export function signWatermark(options) {
  try {
    needWasm();
    const o = readOptions(options, ['tenant', 'watermark', 'secretKey', 'issuedAt', 'delta'], 'the options');
    return sign_watermark_raw(
      stringArg(o.tenant, 'tenant'),
      numberArg(o.watermark, 'watermark'),
      stringArg(o.secretKey, 'secretKey'),
      issuedAt(o),
      o.delta === undefined || o.delta === null ? undefined : bytesOf(o.delta, '`delta`'),
    );
  } catch (e) {
    throw coded(e);
  }
}

/** Checks a model; returns its warnings, throws `invalid_model` (with `detail`) when it does not compile. */
export function validateModel(model) {
  try {
    needWasm();
    return { warnings: validate_model(modelText(model)) };
  } catch (e) {
    throw coded(e);
  }
}

/** A snapshot's, delta's or watermark's header and counts; checks the signature when keys are given. */
export function inspect(bytes, options) {
  try {
    needWasm();
    const b = bytesOf(bytes, 'the message');
    const o = readOptions(options, ['publicKeys'], 'the options');
    const keys = o.publicKeys === undefined ? [] : stringsOf(o.publicKeys, '`publicKeys`');
    return JSON.parse(inspect_raw(b, keys));
  } catch (e) {
    throw coded(e);
  }
}
