// Arguments and errors as every part of the package reads and makes them (api.js, replica.js,
// receiver.js): values read once, as primitives; errors with a stable `code`. Not part of the
// public API.

// The largest length of a JavaScript array.
export const MAX_ARRAY = 2 ** 32 - 1;

export function fail(code, message, cause) {
  const e = cause === undefined ? new Error(message) : new Error(message, { cause });
  e.code = code;
  return e;
}

// A thrown value as text, without calling the caller's code beyond an Error's `message` (no
// toString of objects; a revoked Proxy or a throwing getter is described by its type).
export function describe(e) {
  try {
    if (e instanceof Error) {
      const m = e.message;
      if (typeof m === 'string') return m;
    }
  } catch {
    // described by its type below
  }
  return typeof e === 'string' ? e : `a thrown ${typeof e}`;
}

// Every error leaves the package with a stable `code`: the package's and the core's errors have
// one; anything else (a failed allocation, say) becomes `internal`, the original as its `cause`.
export function coded(e) {
  try {
    if (e instanceof Error && Object.hasOwn(e, 'code') && typeof e.code === 'string') return e;
  } catch {
    // not one of ours
  }
  return fail('internal', `edge-authz: ${describe(e)}`, e);
}

export const wellFormed =
  typeof String.prototype.isWellFormed === 'function'
    ? (s) => s.isWellFormed()
    : (s) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:^|[^\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

// The named own properties of an options object, each read once, into a fresh object; inherited
// properties (a polluted Object.prototype) are not options.
export function readOptions(options, keys, what) {
  const o = { __proto__: null };
  if (options === undefined || options === null) return o;
  if (typeof options !== 'object') throw fail('invalid_argument', `${what} must be an object`);
  try {
    for (const k of keys) o[k] = Object.hasOwn(options, k) ? options[k] : undefined;
  } catch (e) {
    throw fail('invalid_argument', `${what} could not be read: ${describe(e)}`, e);
  }
  return o;
}

// An array of strings read once, element by element, into a fresh array (what the glue copies).
export function stringsOf(v, what) {
  let out = null;
  try {
    if (Array.isArray(v)) {
      const n = v.length;
      if (Number.isSafeInteger(n) && n >= 0 && n <= MAX_ARRAY) {
        out = [];
        for (let i = 0; i < n && out !== null; i++) {
          const k = v[i];
          if (typeof k === 'string' && wellFormed(k)) out.push(k);
          else out = null;
        }
      }
    }
  } catch (e) {
    throw fail('invalid_argument', `${what} could not be read: ${describe(e)}`, e);
  }
  if (out === null) throw fail('invalid_argument', `${what} must be an array of base64 strings`);
  return out;
}

export function stringArg(v, name) {
  if (typeof v !== 'string' || !wellFormed(v)) {
    throw fail('invalid_argument', `\`${name}\` must be a string (without lone surrogates)`);
  }
  return v;
}

// The default clock; `Date.now` is looked up at each call, so that a host's fake timers apply.
export const hostClock = () => Date.now();

// The `clock` option: a function returning Unix ms (called at every decision and message), by
// default the host's.
export function clockOption(o) {
  if (o.clock === undefined) return hostClock;
  if (typeof o.clock !== 'function') {
    throw fail('invalid_argument', '`clock` must be a function returning Unix milliseconds');
  }
  return o.clock;
}

// The bytes of `chunks` (Uint8Arrays, `total` bytes in all) in one array.
export function concat(chunks, total) {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
