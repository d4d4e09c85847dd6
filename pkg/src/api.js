// The JavaScript API of edge-authz (contract section 5), over the wasm core's raw bindings.
//
// The hot path: a check writes its three strings straight into the core's input buffer (ASCII by
// a plain loop, anything else by TextEncoder.encodeInto) and makes one call with numbers only. The
// answer is one number (allowed, reason, tier); a grant comes back as dense ids that are turned
// into names through per-evaluator caches, emptied whenever the held state changes. `checkMany`
// writes a whole batch and crosses once. See ARCHITECTURE.md for the measured alternatives.
import {
  RawEvaluator,
  compile_snapshot_raw,
  context_time,
  diff_models_raw,
  inspect_raw,
  key_pair_from_seed,
  sign_watermark_raw,
  validate_model,
} from '../dist/edge_authz.js';
import { host } from './internal.js';

const REASONS = [
  'no_snapshot',
  'invalid_request',
  'stale_snapshot',
  'freshness_exceeded',
  'unknown_action',
  'suspended',
  'unknown_resource',
  'granted',
  'no_grant',
];
const NO_SNAPSHOT = 0;
const TIERS = [null, 'low', 'standard', 'high'];
const HAS_GRANT = 1 << 7;
const OUT_MOVED = 1 << 8;
// A request field that is not a (well-formed) string; the core answers invalid_request.
const NOT_A_STRING = 0xffffffff;
// Requests per crossing in checkMany: bounds the input buffer whatever the batch size.
const CHUNK = 8192;
// The longest valid id is 321 bytes (a 64-byte type, ':', a 256-byte name); a UTF-16 string longer
// than that cannot be valid, so it is refused here without being copied (a huge string would
// otherwise cost a huge buffer in wasm memory).
const MAX_FIELD = 64 + 1 + 256;

function fail(code, message) {
  const e = new Error(message);
  e.code = code;
  return e;
}

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
const wellFormed =
  typeof String.prototype.isWellFormed === 'function'
    ? (s) => s.isWellFormed()
    : (s) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:^|[^\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

// Writes `s` as UTF-8 at `p` (room for 3 bytes per UTF-16 unit is guaranteed by the caller).
// Returns the bytes written, or NOT_A_STRING for a non-string or a string with lone surrogates
// (which UTF-8 cannot carry: encoding would turn them into U+FFFD and could name another id).
function put(p, s) {
  if (typeof s !== 'string' || s.length > MAX_FIELD) return NOT_A_STRING;
  const n = s.length;
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

function strLen(s) {
  return typeof s === 'string' && s.length <= MAX_FIELD ? s.length : 0;
}

// A name for the listings: not a string, or not well-formed, becomes '' (invalid_request).
function nameArg(s) {
  return typeof s === 'string' && s.length <= MAX_FIELD && wellFormed(s) ? s : '';
}

// `now` of a listing's options: `context` (as check takes it) when given, else `now`.
function listNow(o) {
  if (o.context !== undefined) return contextNow(o.context);
  return contextNow(o.now === undefined ? undefined : { now: o.now });
}

// `now` of a context (contract section 3; tests/conformance/README.md): the host's clock when
// absent, -1 when malformed (the core then answers invalid_request).
function contextNow(context) {
  if (context === undefined || context === null) return Date.now();
  if (typeof context !== 'object' || Array.isArray(context)) return -1;
  for (const k in context) {
    if (k !== 'now' || !Object.prototype.hasOwnProperty.call(context, k)) {
      return Object.prototype.hasOwnProperty.call(context, k) ? -1 : slowContextNow(context);
    }
  }
  const n = context.now;
  if (n === undefined || n === null) return Date.now();
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : -1;
}

// Contexts with inherited enumerable fields: read as JSON, like every other host reads them.
function slowContextNow(context) {
  let text;
  try {
    text = JSON.stringify(context);
  } catch {
    return -1;
  }
  const t = context_time(text);
  return t === -1 ? Date.now() : t < 0 ? -1 : t;
}

function modelText(model) {
  if (typeof model === 'string') return model;
  if (model === null || typeof model !== 'object') {
    throw fail('invalid_argument', 'the model must be an object or a JSON string');
  }
  try {
    return JSON.stringify(model);
  } catch (e) {
    const err = fail('invalid_model', `the model cannot be written as JSON: ${e.message}`);
    err.detail = 'invalid_json';
    throw err;
  }
}

function bytesOf(bytes, what) {
  if (bytes instanceof Uint8Array) return bytes;
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  throw fail('invalid_argument', `${what} must be a Uint8Array`);
}

function optionsOf(options, what) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') throw fail('invalid_argument', `${what} must be an object`);
  return options;
}

function numberArg(v, name) {
  if (typeof v !== 'number') throw fail('invalid_argument', `\`${name}\` must be a number`);
  return v;
}

function stringArg(v, name) {
  if (typeof v !== 'string') throw fail('invalid_argument', `\`${name}\` must be a string`);
  return v;
}

function issuedAt(o) {
  return o.issuedAt === undefined ? Date.now() : numberArg(o.issuedAt, 'issuedAt');
}

const BUILD = Symbol('edge-authz raw evaluator');

/** One tenant's authorization state, answering checks (contract section 5). */
export class Evaluator {
  #raw;
  #epoch = null;
  #watermark = 0;
  #names = [[], [], []];
  #inPtr = 0;
  #inLen = 0;
  #lensPtr = 0;
  #lensLen = 0;
  #outPtr = 0;

  constructor(options, raw) {
    if (options === BUILD) {
      this.#raw = raw;
    } else {
      const o = optionsOf(options, 'the options');
      const tenant = stringArg(o.tenant, 'tenant');
      if (!Array.isArray(o.publicKeys) || !o.publicKeys.every((k) => typeof k === 'string')) {
        throw fail('invalid_argument', '`publicKeys` must be an array of base64 strings');
      }
      this.#raw = new RawEvaluator(tenant, o.publicKeys);
    }
    this.#buffers();
    this.#sync();
  }

  /** An unsigned evaluator of a model, for previews and tests (no watermark, no freshness). */
  static preview(model) {
    return new Evaluator(BUILD, RawEvaluator.preview(modelText(model)));
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
    // Preallocated so that filling them at random ids keeps V8's fast (non-dictionary) arrays.
    this.#names = Array.from(this.#raw.table_sizes(), (n) => new Array(n));
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
    const reason = REASONS[(w >>> 1) & 15];
    const d = {
      allowed: (w & 1) === 1,
      reason,
      epoch: ((w >>> 1) & 15) === NO_SNAPSHOT ? null : this.#epoch,
      watermark: this.#watermark,
      tier: TIERS[(w >>> 5) & 3],
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
      for (let i = 0; i < hops; i++) path[i] = this.#name(0, path[i]);
      d.grant = {
        principal: this.#name(0, principal),
        role: this.#name(1, role),
        resource: this.#name(2, resource),
        path,
      };
      this.#next = at + 4 + hops;
    } else {
      this.#next = at;
    }
    return d;
  }
  #next = 0;

  // The raw evaluator, or a coded error once freed (its memory may belong to another one now).
  #live() {
    if (this.#raw === null) throw fail('freed', 'the evaluator was freed');
    return this.#raw;
  }

  /** Loads a signed snapshot. */
  loadSnapshot(bytes) {
    try {
      const [epoch, applied] = this.#live().load_snapshot(bytesOf(bytes, 'the snapshot'));
      return { epoch, applied: applied === 1 };
    } finally {
      this.#sync();
    }
  }

  /** Applies a signed delta on top of the held epoch. */
  applyDelta(bytes) {
    try {
      const [epoch, applied] = this.#live().apply_delta(bytesOf(bytes, 'the delta'));
      return { epoch, applied: applied === 1 };
    } finally {
      this.#sync();
    }
  }

  /** Applies a signed watermark (or heartbeat), with the delta it may carry. */
  applyWatermark(bytes) {
    try {
      return JSON.parse(this.#live().apply_watermark(bytesOf(bytes, 'the watermark')));
    } finally {
      this.#sync();
    }
  }

  /** Decides one request. Never throws for bad input: it answers `invalid_request`. */
  check(subject, action, resource, context) {
    const raw = this.#live();
    const now = contextNow(context);
    const need = 3 * (strLen(subject) + strLen(action) + strLen(resource));
    if (need > this.#inLen) this.#reserve(need, 1);
    views();
    let p = this.#inPtr;
    const ls = put(p, subject);
    if (ls !== NOT_A_STRING) p += ls;
    const la = put(p, action);
    if (la !== NOT_A_STRING) p += la;
    const lr = put(p, resource);
    const w = raw.check(ls, la, lr, now);
    if (w & OUT_MOVED) this.#outPtr = raw.out_ptr();
    if (w & HAS_GRANT) views();
    return this.#decision(w, this.#outPtr >>> 2);
  }

  /** Decides many requests `[subject, action, resource]` at one time, in order. */
  checkMany(requests, context) {
    const raw = this.#live();
    if (!Array.isArray(requests)) {
      throw fail('invalid_argument', 'checkMany takes an array of [subject, action, resource]');
    }
    const now = contextNow(context);
    const out = new Array(requests.length);
    for (let start = 0; start < requests.length; start += CHUNK) {
      const end = Math.min(requests.length, start + CHUNK);
      let need = 0;
      for (let i = start; i < end; i++) {
        const q = requests[i];
        if (Array.isArray(q)) need += 3 * (strLen(q[0]) + strLen(q[1]) + strLen(q[2]));
      }
      this.#reserve(need, end - start);
      views();
      let p = this.#inPtr;
      let l = this.#lensPtr >>> 2;
      const u32 = U32;
      for (let i = start; i < end; i++) {
        const q = requests[i];
        if (Array.isArray(q) && q.length === 3) {
          for (let k = 0; k < 3; k++) {
            const n = put(p, q[k]);
            if (n !== NOT_A_STRING) p += n;
            u32[l++] = n;
          }
        } else {
          u32[l++] = NOT_A_STRING;
          u32[l++] = NOT_A_STRING;
          u32[l++] = NOT_A_STRING;
        }
      }
      raw.check_many(end - start, now);
      this.#outPtr = raw.out_ptr();
      views();
      const words = this.#outPtr >>> 2;
      let at = words + (end - start);
      for (let i = start; i < end; i++) {
        views(); // the previous decision's name lookups may have grown the memory
        out[i] = this.#decision(U32[words + i - start], at);
        at = this.#next;
      }
    }
    return out;
  }

  /** Resources (optionally of one type) on which `subject` may do `action`, sorted. */
  listResources(subject, action, options) {
    const raw = this.#live();
    const o = optionsOf(options, 'the options');
    const type = o.type === undefined || o.type === null ? undefined : nameArg(o.type);
    return raw.list_resources(nameArg(subject), nameArg(action), type, listNow(o));
  }

  /** Members (not groups), not suspended, who may do `action` on `resource`, sorted. */
  listSubjects(resource, action, options) {
    const raw = this.#live();
    const o = optionsOf(options, 'the options');
    return raw.list_subjects(nameArg(resource), nameArg(action), listNow(o));
  }

  /** What the evaluator holds (contract section 5, plus digest, keyIds, freshness, heapBytes). */
  status() {
    return JSON.parse(this.#live().status());
  }

  /** Releases the evaluator's wasm memory now rather than at garbage collection. Calls after
   * this throw `freed`; freeing again does nothing. */
  free() {
    const raw = this.#raw;
    if (raw === null) return;
    this.#raw = null;
    this.#inPtr = this.#inLen = this.#lensPtr = this.#lensLen = this.#outPtr = 0;
    this.#names = [[], [], []];
    raw.free();
  }

  [Symbol.dispose]() {
    this.free();
  }
}

/** A fresh Ed25519 key pair for the origin, as base64 strings. */
export function generateKeyPair() {
  const seed = new Uint8Array(32);
  globalThis.crypto.getRandomValues(seed);
  try {
    const [publicKey, secretKey] = key_pair_from_seed(seed);
    return { publicKey, secretKey };
  } finally {
    seed.fill(0);
  }
}

/** Compiles a model into a signed snapshot at `epoch`. */
export function compileSnapshot(model, options) {
  const o = optionsOf(options, 'the options');
  return compile_snapshot_raw(
    modelText(model),
    numberArg(o.epoch, 'epoch'),
    stringArg(o.secretKey, 'secretKey'),
    issuedAt(o),
  );
}

/** The signed delta from `before` (at `baseEpoch`) to `after` (at `epoch`), and whether it revokes. */
export function diffModels(before, after, options) {
  const o = optionsOf(options, 'the options');
  const out = diff_models_raw(
    modelText(before),
    modelText(after),
    numberArg(o.baseEpoch, 'baseEpoch'),
    numberArg(o.epoch, 'epoch'),
    stringArg(o.secretKey, 'secretKey'),
    issuedAt(o),
  );
  return { delta: out.slice(1), revokes: out[0] === 1 };
}

/** A signed watermark (a heartbeat when it does not rise), optionally carrying a delta. */
export function signWatermark(options) {
  const o = optionsOf(options, 'the options');
  return sign_watermark_raw(
    stringArg(o.tenant, 'tenant'),
    numberArg(o.watermark, 'watermark'),
    stringArg(o.secretKey, 'secretKey'),
    issuedAt(o),
    o.delta === undefined || o.delta === null ? undefined : bytesOf(o.delta, '`delta`'),
  );
}

/** Checks a model; returns its warnings, throws `invalid_model` (with `detail`) when it does not compile. */
export function validateModel(model) {
  return { warnings: validate_model(modelText(model)) };
}

/** A snapshot's, delta's or watermark's header and counts; checks the signature when keys are given. */
export function inspect(bytes, options) {
  const o = optionsOf(options, 'the options');
  const keys = o.publicKeys === undefined ? [] : o.publicKeys;
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) {
    throw fail('invalid_argument', '`publicKeys` must be an array of base64 strings');
  }
  return JSON.parse(inspect_raw(bytesOf(bytes, 'the message'), keys));
}
