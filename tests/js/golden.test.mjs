// The golden files of format version 1 (tests/golden, see its README) through the npm package
// (pkg/dist, loaded through its exports map), and read independently by tests/js/msgpack.mjs:
// - each committed message is the recorded bytes (SHA-256), has the 8-byte prefix of version 1
//   (crates/core/src/wire.rs), names the recorded key, carries a signature node:crypto verifies
//   with the recorded public key, and a payload whose fields are the recorded ones (tenant,
//   epochs, issued_at, watermark, digests, revokes; a carried delta likewise); tests/js/msgpack.mjs
//   writes those payloads back byte for byte;
// - the package's `inspect` reads from each exactly what golden.json records;
// - the package's origin functions (compileSnapshot, diffModels, signWatermark), given the
//   committed models, key, epochs and times, sign exactly the committed bytes;
// - an `Evaluator` fed the messages in order answers each with the recorded outcome, status and
//   decisions (golden.mjs's `replay`, through the package host of evaluator-hosts.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { importPackage } from './pkg.mjs';
import { packageHost } from './evaluator-hosts.mjs';
import { loadGolden, replay } from './golden.mjs';
import { decode, encode, FORMAT_VERSION, MAGIC, unpack, verifyWith } from './msgpack.mjs';

const pkg = await importPackage();
const golden = loadGolden();
const { manifest, messages, models, publicKey, secretKey, tenant } = golden;
const hex = (b) => Buffer.from(b).toString('hex');

/** A signed message read with tests/js/msgpack.mjs alone; returns its payload's fields. */
function read(bytes, kind, label) {
  const env = unpack(bytes);
  assert.equal(env.prefix.toString('latin1'), `${MAGIC}${kind[0].toUpperCase()}\x01`, `${label}: the 8-byte prefix`);
  assert.equal(env.kind, kind, label);
  assert.equal(env.version, FORMAT_VERSION, label);
  assert.equal(env.keyId, manifest.key.key_id, `${label}: the key id`);
  assert.equal(env.signature.length, 64, label);
  assert.ok(verifyWith(publicKey, Buffer.concat([env.prefix, env.payload]), env.signature), `${label}: the signature`);
  assert.deepEqual(encode(decode(env.payload)), env.payload, `${label}: tests/js/msgpack.mjs writes the payload back as it is`);
  return decode(env.payload);
}

test('the committed messages are the recorded bytes, in format version 1 (read by tests/js/msgpack.mjs)', () => {
  assert.equal(FORMAT_VERSION, manifest.format_version);
  for (const m of messages) {
    const p = read(m.bytes, m.kind, m.file);
    assert.equal(p[0], tenant, `${m.file}: tenant`);
    if (m.kind === 'snapshot') {
      assert.deepEqual(p.slice(1, 3), [m.epoch, m.issued_at], `${m.file}: epoch, issued_at`);
    } else if (m.kind === 'delta') {
      assert.deepEqual([p[1], p[2], p[3], hex(p[4]), hex(p[5]), p[6]], [m.base_epoch, m.epoch, m.issued_at, m.base_digest, m.digest, m.revokes], `${m.file}: base_epoch, epoch, issued_at, base_digest, digest, revokes`);
    } else {
      assert.deepEqual([p[1], p[2]], [m.watermark, m.issued_at], `${m.file}: watermark, issued_at`);
      if (m.carries === null) {
        assert.equal(p[3], null, `${m.file}: a bare watermark`);
      } else {
        const d = read(p[3], 'delta', `${m.file}'s delta`);
        const c = m.carries;
        assert.deepEqual([d[0], d[1], d[2], d[3], hex(d[4]), hex(d[5]), d[6]], [tenant, c.base_epoch, c.epoch, c.issued_at, c.base_digest, c.digest, c.revokes], `${m.file}'s delta`);
      }
    }
  }
});

test("the package's inspect reads what golden.json records", () => {
  for (const m of messages) assert.deepEqual(pkg.inspect(m.bytes, { publicKeys: [publicKey] }), m.inspect, m.file);
});

test("the package's origin functions sign the committed bytes", () => {
  const delta = (from, baseEpoch, epoch, issuedAt) =>
    pkg.diffModels(models[from.before], models[from.after], { baseEpoch, epoch, issuedAt, secretKey }).delta;
  for (const m of messages) {
    let signed;
    if (m.kind === 'snapshot') {
      signed = pkg.compileSnapshot(models[m.made_from.model], { epoch: m.epoch, issuedAt: m.issued_at, secretKey });
    } else if (m.kind === 'delta') {
      signed = delta(m.made_from, m.base_epoch, m.epoch, m.issued_at);
    } else {
      const c = m.carries;
      const carried = c === null ? undefined : delta(c.made_from, c.base_epoch, c.epoch, c.issued_at);
      signed = pkg.signWatermark({ tenant, watermark: m.watermark, issuedAt: m.issued_at, secretKey, delta: carried });
    }
    assert.equal(hex(signed), hex(m.bytes), `${m.file}: signed again by the package`);
  }
});

test('loaded in order, the package answers as golden.json records', async (t) => {
  const host = packageHost({ tenant, publicKeys: [publicKey] });
  try {
    const n = await replay(host, golden);
    t.diagnostic(`golden (package): ${messages.length} messages, ${n} decisions`);
  } finally {
    host.dispose();
  }
});
