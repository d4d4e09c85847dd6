// The one MessagePack reader/writer and signed-message toolkit of the JavaScript tests, for the
// suites that must build what the origin functions never produce (hostile, forged, patched or
// re-signed messages) or read a message's fields without trusting the package to do it.
//
// The layout is crates/core/src/wire.rs's (format version 1):
//   6 magic bytes `EDGEAZ`, one kind byte (`S` snapshot, `D` delta, `W` watermark), one format
//   version byte, then the MessagePack array [key_id (str), signature (bin, 64 bytes), payload
//   (bin)]. The Ed25519 signature covers the 8-byte prefix followed by the payload bytes.
// Payloads are rmp-serde's encoding of the structs in wire.rs, as arrays:
//   snapshot  [tenant, epoch, issued_at, content]
//   delta     [tenant, base_epoch, epoch, issued_at, base_digest, digest, revokes, ops]
//   watermark [tenant, watermark, issued_at, delta message (bin) or nil]
// rmp-serde writes every unsigned integer in its smallest form, strings as fixstr/str8/16/32 and
// byte buffers as bin8/16/32; `encode` below does the same, so that what it writes for the values
// of a payload is byte for byte what the core writes (tests/js/worker-routes.test.mjs checks it
// against the package's own signing functions, tests/js/golden.test.mjs against tests/golden).
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, sign as edSign, verify as edVerify } from 'node:crypto';

export const MAGIC = 'EDGEAZ';
export const FORMAT_VERSION = 1;
export const PREFIX_LEN = 8;
/** The kind byte of each message kind, and back. */
export const KIND_BYTE = { snapshot: 'S', delta: 'D', watermark: 'W' };
const KIND_OF_BYTE = { S: 'snapshot', D: 'delta', W: 'watermark' };
/** Where `issued_at` sits in each kind's payload array. */
const ISSUED_AT_FIELD = { snapshot: 2, delta: 3, watermark: 2 };

// --- MessagePack: the headers and a small encoder and decoder -----------------------------------

function sized(tags, n) {
  const [t8, t16, t32] = tags;
  if (t8 !== null && n < 0x100) return Buffer.from([t8, n]);
  if (n < 0x10000) return Buffer.from([t16, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = t32;
  b.writeUInt32BE(n, 1);
  return b;
}

/** The header of a binary of `n` bytes: bin8, bin16 or bin32 (always bin32 with `{wide: true}`,
 * a valid but longer form the core never writes). */
export function binHeader(n, { wide = false } = {}) {
  if (!wide) return sized([0xc4, 0xc5, 0xc6], n);
  const b = Buffer.alloc(5);
  b[0] = 0xc6;
  b.writeUInt32BE(n, 1);
  return b;
}

/** The header of a string of `n` UTF-8 bytes: fixstr, str8, str16 or str32. */
export function strHeader(n) {
  if (n < 32) return Buffer.from([0xa0 | n]);
  return sized([0xd9, 0xda, 0xdb], n);
}

/** The header of an array of `n` items: fixarray, array16 or array32. */
export function arrayHeader(n) {
  if (n < 16) return Buffer.from([0x90 | n]);
  return sized([null, 0xdc, 0xdd], n);
}

/** A non-negative integer (a number up to 2^53 - 1, or a BigInt) in its smallest form. */
export function uint(v) {
  const n = BigInt(v);
  assert.ok(n >= 0n && n < 1n << 64n, `uint out of range: ${v}`);
  if (n < 0x80n) return Buffer.from([Number(n)]);
  if (n < 0x100n) return Buffer.from([0xcc, Number(n)]);
  if (n < 0x10000n) return Buffer.from([0xcd, Number(n >> 8n), Number(n & 0xffn)]);
  if (n < 0x100000000n) {
    const b = Buffer.alloc(5);
    b[0] = 0xce;
    b.writeUInt32BE(Number(n), 1);
    return b;
  }
  const b = Buffer.alloc(9);
  b[0] = 0xcf;
  b.writeBigUInt64BE(n, 1);
  return b;
}

/** MessagePack for the values the wire format uses: null, booleans, non-negative integers
 * (numbers or BigInts), strings, byte arrays (bin) and arrays of these. */
export function encode(value) {
  if (value === null || value === undefined) return Buffer.from([0xc0]);
  if (value === false) return Buffer.from([0xc2]);
  if (value === true) return Buffer.from([0xc3]);
  if (typeof value === 'number' || typeof value === 'bigint') return uint(value);
  if (typeof value === 'string') {
    const s = Buffer.from(value, 'utf8');
    return Buffer.concat([strHeader(s.length), s]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([binHeader(value.length), value]);
  if (Array.isArray(value)) return Buffer.concat([arrayHeader(value.length), ...value.map(encode)]);
  throw new TypeError(`encode: no MessagePack form here for ${typeof value}`);
}

/** Reads one MessagePack value at `at`: `{value, end}`. Integers past 2^53 - 1 come back as
 * BigInts, binaries as Buffers, maps as arrays of [key, value] pairs (their order kept). */
export function decodeAt(bytes, at = 0) {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let i = at;
  const need = (n) => {
    if (i + n > b.length) throw new RangeError(`MessagePack: truncated at byte ${i} (need ${n} more)`);
  };
  const u8 = () => (need(1), b[i++]);
  const be = (n) => {
    need(n);
    const v = n === 8 ? b.readBigUInt64BE(i) : BigInt(b.readUIntBE(i, n));
    i += n;
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const bytesOf = (n) => {
    need(n);
    const v = b.subarray(i, i + n);
    i += n;
    return v;
  };
  const items = (n) => Array.from({ length: n }, () => one());
  const pairs = (n) => Array.from({ length: n }, () => [one(), one()]);
  function one() {
    const t = u8();
    if (t < 0x80) return t;
    if (t >= 0xe0) return t - 0x100;
    if ((t & 0xf0) === 0x80) return pairs(t & 0x0f);
    if ((t & 0xf0) === 0x90) return items(t & 0x0f);
    if ((t & 0xe0) === 0xa0) return bytesOf(t & 0x1f).toString('utf8');
    switch (t) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return Buffer.from(bytesOf(be(1)));
      case 0xc5: return Buffer.from(bytesOf(be(2)));
      case 0xc6: return Buffer.from(bytesOf(be(4)));
      case 0xcc: return be(1);
      case 0xcd: return be(2);
      case 0xce: return be(4);
      case 0xcf: return be(8);
      case 0xd0: need(1); return b.readInt8(i++);
      case 0xd1: { need(2); const v = b.readInt16BE(i); i += 2; return v; }
      case 0xd2: { need(4); const v = b.readInt32BE(i); i += 4; return v; }
      case 0xd3: { need(8); const v = b.readBigInt64BE(i); i += 8; return v; }
      case 0xd9: return bytesOf(be(1)).toString('utf8');
      case 0xda: return bytesOf(be(2)).toString('utf8');
      case 0xdb: return bytesOf(be(4)).toString('utf8');
      case 0xdc: return items(be(2));
      case 0xdd: return items(be(4));
      case 0xde: return pairs(be(2));
      case 0xdf: return pairs(be(4));
      default: throw new RangeError(`MessagePack: type byte 0x${t.toString(16)} at ${i - 1} is not used by the wire format`);
    }
  }
  const value = one();
  return { value, end: i };
}

/** Reads exactly one MessagePack value from `bytes` (trailing bytes are an error). */
export function decode(bytes) {
  const { value, end } = decodeAt(bytes, 0);
  assert.equal(end, bytes.length, `MessagePack: ${bytes.length - end} bytes after the value`);
  return value;
}

// --- Signed messages ------------------------------------------------------------------------------

/** The 8-byte prefix of a message of `kind` ('snapshot' | 'delta' | 'watermark', or its byte). */
export function prefix(kind, version = FORMAT_VERSION) {
  const k = KIND_BYTE[kind] ?? kind;
  return Buffer.concat([Buffer.from(MAGIC + k, 'latin1'), Buffer.from([version])]);
}

/** A message taken apart: `{prefix, kind, version, keyId, signature, payload}` (Buffers).
 * Asserts the envelope is the core's: the magic bytes, an array of 3, a str key id, a bin
 * signature, a bin payload that runs to the end. */
export function unpack(message) {
  const b = Buffer.from(message);
  assert.equal(b.subarray(0, 6).toString('latin1'), MAGIC, 'the magic bytes');
  let i = PREFIX_LEN;
  assert.equal(b[i], 0x93, 'envelope: an array of 3');
  i += 1;
  const keyId = decodeAt(b, i);
  assert.equal(typeof keyId.value, 'string', 'envelope: the key id is a string');
  i = keyId.end;
  assert.ok([0xc4, 0xc5, 0xc6].includes(b[i]), 'envelope: the signature is a bin');
  const signature = decodeAt(b, i);
  i = signature.end;
  assert.ok([0xc4, 0xc5, 0xc6].includes(b[i]), 'envelope: the payload is a bin');
  const payload = decodeAt(b, i);
  assert.equal(payload.end, b.length, 'envelope: nothing after the payload');
  return {
    prefix: Buffer.from(b.subarray(0, PREFIX_LEN)),
    kind: KIND_OF_BYTE[String.fromCharCode(b[6])],
    version: b[7],
    keyId: keyId.value,
    signature: signature.value,
    payload: payload.value,
  };
}

/** A message from its parts (the reverse of `unpack`); `{wide: true}` writes the payload's
 * length as a bin32 whatever its size. */
export function pack({ prefix: p, keyId, signature, payload }, { wide = false } = {}) {
  const kid = Buffer.from(keyId, 'utf8');
  return new Uint8Array(
    Buffer.concat([p, arrayHeader(3), strHeader(kid.length), kid, binHeader(signature.length), signature, binHeader(payload.length, { wide }), payload]),
  );
}

/** A key's 32 bytes from its text: typed (`edge-authz-secret:` / `edge-authz-public:` then the
 * base64, as `generateKeyPair` gives it) or bare base64. */
function keyBytes(text) {
  return Buffer.from(text.replace(/^edge-authz-(secret|public):/, ''), 'base64');
}

/** Ed25519 over `data` with a package secret key (the 32-byte seed). */
export function signWith(secretKey, data) {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), keyBytes(secretKey)]);
  return edSign(null, data, createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
}

/** Whether `signature` is a package public key's (its 32 bytes) over `data`. */
export function verifyWith(publicKey, data, signature) {
  const der = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), keyBytes(publicKey)]);
  return edVerify(null, data, createPublicKey({ key: der, format: 'der', type: 'spki' }), signature);
}

/** A complete signed message of `kind` over `payload` (bytes, or values for `encode`). */
export function seal(kind, payload, { secretKey, keyId, version = FORMAT_VERSION }) {
  const p = prefix(kind, version);
  const body = payload instanceof Uint8Array ? Buffer.from(payload) : encode(payload);
  return pack({ prefix: p, keyId, payload: body, signature: signWith(secretKey, Buffer.concat([p, body])) });
}

/** `message` with its payload and/or format version replaced, signed again with `secretKey`. */
export function resign(message, secretKey, { payload, version } = {}) {
  const env = unpack(message);
  const p = Buffer.from(env.prefix);
  if (version !== undefined) p[7] = version;
  const body = payload ?? env.payload;
  return pack({ ...env, prefix: p, payload: body, signature: signWith(secretKey, Buffer.concat([p, body])) });
}

/** `message` with the one occurrence of `from` in its payload replaced by `to`, signed again. */
export function patchSigned(message, secretKey, from, to) {
  const { payload } = unpack(message);
  const at = payload.indexOf(from);
  assert.ok(at >= 0, 'the bytes to patch are in the payload');
  assert.equal(payload.indexOf(from, at + 1), -1, 'the bytes to patch occur once');
  return resign(message, secretKey, { payload: Buffer.concat([payload.subarray(0, at), to, payload.subarray(at + from.length)]) });
}

/** The key id a message names. */
export const keyIdOf = (message) => unpack(message).keyId;

/** A message's payload decoded (an array, as wire.rs's structs are written). */
export const payloadOf = (message) => decode(unpack(message).payload);

/** The `issued_at` of a message, read from its payload. */
export function issuedAtOf(message) {
  const env = unpack(message);
  return decode(env.payload)[ISSUED_AT_FIELD[env.kind]];
}

/** Where each item of a MessagePack array starts and ends in `bytes`: `[{start, end}]` (the
 * fields of a payload, for tests that patch one in place). */
export function itemSpans(bytes) {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let n;
  let i;
  if ((b[0] & 0xf0) === 0x90) [n, i] = [b[0] & 0x0f, 1];
  else if (b[0] === 0xdc) [n, i] = [b.readUInt16BE(1), 3];
  else if (b[0] === 0xdd) [n, i] = [b.readUInt32BE(1), 5];
  else throw new RangeError(`MessagePack: not an array (type byte 0x${b[0]?.toString(16)})`);
  const spans = [];
  for (let k = 0; k < n; k++) {
    const { end } = decodeAt(b, i);
    spans.push({ start: i, end });
    i = end;
  }
  return spans;
}
