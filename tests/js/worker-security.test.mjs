// The Worker's promises held against hostile callers, in workerd (Miniflare), real parts only: the
// built Worker and its Durable Object, with the fault-injecting proxy (faulty-authority.mjs) where
// the authority must be slow, and the test clock (clocked-worker.mjs) where the host's time must be
// chosen. Each test is an attack that succeeded against an earlier build:
// - a caller's `context.now` moving the edge's clock (freshness, expiry, listings);
// - a revocation acknowledged with 200 and then not enforced by the isolate that relayed it while
//   the authority is slow;
// - anonymous pushes of large bodies with a trusted key id and a wrong signature: slowing the
//   authority, growing the isolate's wasm memory for good, creating a Durable Object per tenant
//   name, while a revocation races through another isolate;
// - a batch parsed before it is counted; a duplicated JSON key; the `Bearer` scheme in another
//   case; a claimed 1 GB body; pushes without the optional PUSH_TOKEN.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { JSON_TYPE, MSGPACK, client, model, origin, startEdge, tempDir } from './edge.mjs';
import { faults, withFaultyAuthority } from './faulty-authority.mjs';
import { arrayHeader, encode, keyIdOf, pack, prefix } from './msgpack.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
// alice's direct admin assignment (read, write, export on workspace:eng and below) runs until here.
const EXPIRES = 4070908800000;
// alice's admin assignment removed: a revocation (she keeps `read` through group:staff).
const REVOKED = model((m) => {
  m.assignments = m.assignments.filter((a) => a.principal !== 'user:alice');
});
const BASE = model();
const TIERS = { low: 'read', standard: 'write', high: 'export' };
const REUSE_MS = { low: 10000, standard: 1000, high: 0 };

function error(r, status, code, what = '') {
  assert.equal(r.status, status, `${what}: ${r.body}`);
  assert.equal(r.json?.error?.code, code, `${what}: ${r.body}`);
}

function decided(r, reason, what = '') {
  assert.equal(r.status, 200, `${what}: ${r.body}`);
  assert.equal(r.json.reason, reason, `${what}: ${r.body}`);
  assert.equal(r.json.allowed, reason === 'granted', `${what}: ${r.body}`);
}

/**
 * A message of `size` bytes as an anonymous caller makes one (tests/js/msgpack.mjs): the right
 * magic, kind and version, a trusted key id, a payload that names `tenant` (then zeros, its
 * length written as a bin32), and a signature of zeros.
 */
function forged(kind, keyId, tenant, size) {
  const parts = { prefix: prefix(kind), keyId, signature: Buffer.alloc(64) };
  const payload = Buffer.alloc(size - pack({ ...parts, payload: Buffer.alloc(0) }, { wide: true }).length);
  Buffer.concat([arrayHeader(4), encode(tenant)]).copy(payload);
  return pack({ ...parts, payload }, { wide: true });
}

/** The Durable Objects' databases under a persistence directory. */
function databases(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (e.name.endsWith('.sqlite')) out.push(path.join(d, e.name));
    }
  };
  walk(dir);
  return out;
}

const wasmMemory = async (c) => (await c.status()).json.edge.wasmMemoryBytes;

describe('two times: a caller never moves the edge clock', () => {
  for (const allow of [false, true]) {
    test(`ALLOW_CONTEXT_NOW=${allow}: freshness by the host clock alone${allow ? ', now moves expiry only' : ', a request naming its time is refused'}`, async () => {
      const o = origin();
      const vars = { ORIGIN_PUBLIC_KEYS: o.keys.publicKey, ...(allow ? { ALLOW_CONTEXT_NOW: 'true' } : {}) };
      const edge = await startEdge({ vars, clocked: true });
      try {
        const c = client(edge);
        const t = Date.now();
        await edge.setClock(t);
        assert.equal((await c.push('snapshot', o.snapshot(BASE, 1, t))).status, 200);
        decided(await c.check('user:alice', 'export', 'doc:roadmap'), 'granted', 'fresh');
        // A minute of silence from the origin: `high` (5 s) is past its bound whatever the caller says.
        await edge.setClock(t + 60_000);
        decided(await c.check('user:alice', 'export', 'doc:roadmap'), 'freshness_exceeded', 'no context');
        const old = { now: t };
        const lists = [
          `resources?subject=user:alice&action=export&now=${t}`,
          `resources?subject=user:alice&action=export&context=${encodeURIComponent(JSON.stringify(old))}`,
          `subjects?resource=doc:roadmap&action=export&now=${t}`,
        ];
        if (allow) {
          decided(await c.check('user:alice', 'export', 'doc:roadmap', old), 'freshness_exceeded', 'context.now');
          const m = await c.checkMany([['user:alice', 'export', 'doc:roadmap'], ['user:alice', 'write', 'doc:roadmap']], old);
          assert.deepEqual(m.json.decisions.map((d) => [d.allowed, d.reason]), [[false, 'freshness_exceeded'], [false, 'freshness_exceeded']]);
          for (const q of lists) error(await c.get(q), 503, 'freshness_exceeded', q);
        } else {
          error(await c.check('user:alice', 'export', 'doc:roadmap', old), 400, 'invalid_context', 'check');
          error(await c.checkMany([['user:alice', 'export', 'doc:roadmap']], old), 400, 'invalid_context', 'check-many');
          for (const q of lists) error(await c.get(q), 400, 'invalid_context', q);
          // A context without a time is still a context: taken.
          decided(await c.check('user:alice', 'read', 'doc:roadmap', {}), 'granted', 'empty context');
        }
        // Past alice's expiry, with a fresh heartbeat: expired at the host's time; a `now` before
        // the expiry grants it again only where the Worker allows requests to name their time.
        await edge.setClock(EXPIRES + 1000);
        assert.equal((await c.push('watermark', o.watermark(0, undefined, EXPIRES + 500))).status, 200);
        decided(await c.check('user:alice', 'export', 'doc:roadmap'), 'no_grant', 'expired');
        const before = { now: EXPIRES - 1 };
        if (allow) {
          decided(await c.check('user:alice', 'export', 'doc:roadmap', before), 'granted', 'what-if before expiry');
          const r = await c.get(`resources?subject=user:alice&action=export&now=${EXPIRES - 1}`);
          assert.deepEqual(r.json, { resources: ['doc:roadmap', 'workspace:eng'] }, r.body);
        } else {
          error(await c.check('user:alice', 'export', 'doc:roadmap', before), 400, 'invalid_context', 'before expiry');
        }
        assert.deepEqual((await c.get('resources?subject=user:alice&action=export')).json, { resources: [] });
      } finally {
        await edge.dispose();
      }
    });
  }
});

describe('a 200 means enforced: the relaying isolate, with a slow authority', () => {
  test('after a revocation is acknowledged, the isolate that relayed it never answers from the revoked epoch', async () => {
    const o = origin();
    const edge = await startEdge({
      vars: { ORIGIN_PUBLIC_KEYS: o.keys.publicKey, AUTHORITY_TIMEOUT_MS: '1000' },
      isolates: 2,
      ...withFaultyAuthority(),
    });
    try {
      const f = faults(edge);
      const c = client(edge);
      assert.equal((await c.push('snapshot', o.snapshot(BASE, 1))).status, 200);
      for (const tier of Object.keys(TIERS)) decided(await c.check('user:alice', TIERS[tier], 'doc:roadmap'), 'granted', tier);
      // The authority now takes 2.5 s per request, past the isolate's 1 s timeout.
      await f.set({ mode: 'delay', ms: 2500 });
      const revocation = o.watermark(2, o.delta(BASE, REVOKED, 1, 2).delta);
      const r = await c.push('watermark', revocation);
      assert.equal(r.status, 200, r.body);
      assert.equal(r.json.watermark, 2, r.body);
      const answers = [];
      const end = performance.now() + 6000;
      while (performance.now() < end) {
        for (const tier of ['low', 'standard', 'high']) {
          const a = await c.check('user:alice', TIERS[tier], 'doc:roadmap');
          answers.push({ tier, status: a.status, allowed: a.json?.allowed, reason: a.json?.reason ?? a.json?.error?.code, epoch: a.json?.epoch });
        }
      }
      const below = answers.filter((a) => a.allowed && !(a.epoch >= 2));
      assert.deepEqual(below, [], `allowed below the acknowledged watermark: ${JSON.stringify(below.slice(0, 5))}`);
      // `write` and `export` are revoked: never allowed; `read` (kept through group:staff) only from epoch 2.
      assert.ok(answers.every((a) => a.tier === 'low' || !a.allowed), JSON.stringify(answers.filter((a) => a.allowed && a.tier !== 'low')));
      assert.ok(answers.some((a) => a.status === 200), 'no answer at all');
      await f.clear();
    } finally {
      await edge.dispose();
    }
  });
});

describe('anonymous pushes cost the edge nothing', () => {
  let o;
  let edge;
  let persist;
  let keyId;
  before(async () => {
    o = origin();
    persist = tempDir();
    edge = await startEdge({ vars: { ORIGIN_PUBLIC_KEYS: o.keys.publicKey }, isolates: 2, persist });
    const snap = o.snapshot(BASE, 1);
    keyId = keyIdOf(snap);
    assert.equal((await client(edge, { isolate: 1 }).push('snapshot', snap)).status, 200);
  });
  after(async () => {
    await edge?.dispose();
  });

  test('a flood of 32 MiB bad-signature snapshots: refused, the wasm memory stays small, a racing revocation holds in every isolate', async (t) => {
    const checks = [client(edge), client(edge, { isolate: 1 })];
    const body = forged('S', keyId, 'acme', 32 << 20);
    let flooding = true;
    const refused = {};
    const floods = Array.from({ length: 8 }, async () => {
      while (flooding) {
        const r = await checks[0].push('snapshot', body);
        const code = r.json?.error?.code ?? `http ${r.status}`;
        refused[code] = (refused[code] ?? 0) + 1;
      }
    });
    const answers = [];
    let ack = null;
    let checking = true;
    const askers = checks.map(async (c, isolate) => {
      while (checking) {
        for (const tier of ['low', 'standard', 'high']) {
          const sent = performance.now();
          const a = await c.check('user:alice', TIERS[tier], 'doc:roadmap');
          answers.push({ isolate, tier, sent, status: a.status, allowed: a.json?.allowed, epoch: a.json?.epoch });
        }
      }
    });
    await sleep(1500);
    // The revocation, through isolate 1, while isolate 0 is flooded.
    const r = await checks[1].push('watermark', o.watermark(2, o.delta(BASE, REVOKED, 1, 2).delta));
    assert.equal(r.status, 200, r.body);
    ack = performance.now();
    await sleep(3000);
    flooding = false;
    await Promise.all(floods);
    await sleep(REUSE_MS.standard + 500);
    checking = false;
    await Promise.all(askers);
    assert.deepEqual(Object.keys(refused), ['bad_signature'], JSON.stringify(refused));
    assert.ok(refused.bad_signature >= 8, JSON.stringify(refused));
    // The relaying isolate: nothing allowed below the watermark once acknowledged; another isolate:
    // nothing past its tier's reuse window.
    const late = answers.filter(
      (a) => a.allowed && !(a.epoch >= 2) && a.sent > ack + (a.isolate === 1 ? 0 : REUSE_MS[a.tier]),
    );
    assert.deepEqual(late, [], `allowed below the acknowledged watermark: ${JSON.stringify(late.slice(0, 5))}`);
    assert.ok(answers.filter((a) => a.sent > ack && a.status === 200).length > 10, 'too few answers after the revocation');
    const memory = await wasmMemory(checks[0]);
    t.diagnostic(
      `flood: ${refused.bad_signature} pushes of 32 MiB refused; ${answers.length} checks answered, ` +
        `${answers.filter((a) => a.sent > ack).length} after the revocation, 0 allowed below it; ` +
        `the flooded isolate's wasm memory ${(memory / 2 ** 20).toFixed(1)} MiB`,
    );
    assert.ok(memory < 64 << 20, `the flooded isolate's wasm memory: ${memory} bytes`);
  });

  test('pushes for tenants nobody published create no Durable Object', async () => {
    const c = client(edge);
    // Let the earlier writes settle, then count.
    const before = databases(persist).length;
    assert.ok(before >= 1, 'the published tenant has a database');
    for (let i = 0; i < 25; i++) {
      const tenant = `nobody-${i}`;
      const t = client(edge, { tenant });
      error(await t.push('snapshot', forged('S', keyId, tenant, 4096)), 401, 'bad_signature', tenant);
      error(await t.push('watermark', forged('W', keyId, tenant, 256)), 401, 'bad_signature', tenant);
      // Validly signed, for another tenant.
      error(await t.push('snapshot', o.snapshot(BASE, 1)), 403, 'tenant_mismatch', tenant);
      error(await t.push('delta', forged('D', 'ffffffffffffffff', tenant, 256)), 401, 'unknown_key', tenant);
    }
    await c.status();
    assert.equal(databases(persist).length, before, databases(persist).join('\n'));
  });

  test('a push whose declared sizes do not add up is refused before anything is verified', async () => {
    const c = client(edge);
    const good = o.watermark(1);
    error(await c.push('watermark', Buffer.concat([good, Buffer.from([0])])), 400, 'malformed');
    error(await c.push('watermark', good.subarray(0, good.length - 1)), 400, 'malformed');
    error(await c.push('snapshot', good), 400, 'wrong_kind');
    assert.equal((await c.push('watermark', good)).status, 200);
  });
});

describe('bodies, tokens and sizes', () => {
  let o;
  let edge;
  before(async () => {
    o = origin();
    edge = await startEdge({
      vars: { ORIGIN_PUBLIC_KEYS: o.keys.publicKey, CHECK_TOKEN: 'read-secret', PUSH_TOKEN: 'push-secret' },
      port: 0,
    });
  });
  after(async () => {
    await edge?.dispose();
  });
  const push = (kind, bytes, auth) =>
    edge.fetch(`/v1/acme/${kind}`, { method: kind === 'snapshot' ? 'PUT' : 'POST', headers: { ...MSGPACK, ...(auth ? { authorization: auth } : {}) }, body: bytes });

  test('PUSH_TOKEN: pushes without it are refused, with it taken', async () => {
    const snap = o.snapshot(BASE, 1);
    error(await push('snapshot', snap), 401, 'unauthorized', 'no token');
    error(await push('snapshot', snap, 'Bearer wrong'), 401, 'unauthorized', 'wrong token');
    error(await push('snapshot', snap, 'Bearer read-secret'), 401, 'unauthorized', 'the read token');
    assert.equal((await push('snapshot', snap, 'bearer push-secret')).status, 200);
  });

  test('the Bearer scheme in any case', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
      const r = await edge.fetch('/v1/acme/check', {
        method: 'POST',
        headers: { ...JSON_TYPE, authorization: `${scheme} read-secret` },
        body: JSON.stringify({ subject: 'user:alice', action: 'read', resource: 'doc:roadmap' }),
      });
      decided(r, 'granted', scheme);
    }
    const r = await edge.fetch('/v1/acme/status', { headers: { authorization: 'Basic read-secret' } });
    error(r, 401, 'unauthorized');
  });

  test('a duplicated JSON key is refused, at any depth', async () => {
    const auth = { ...JSON_TYPE, authorization: 'Bearer read-secret' };
    for (const [p, body] of [
      ['check', '{"subject":"user:mallory","subject":"user:alice","action":"read","resource":"doc:roadmap"}'],
      ['check', '{"subject":"user:alice","action":"read","resource":"doc:roadmap","context":{"a":1,"a":2}}'],
      ['check-many', '{"requests":[["user:alice","read","doc:roadmap"]],"requests":[]}'],
      ['check-many', '{"requests":[],"context":{"x":{"y":1,"y":2}}}'],
    ]) {
      error(await edge.fetch(`/v1/acme/${p}`, { method: 'POST', headers: auth, body }), 400, 'invalid_body', body);
    }
  });

  test('a batch is counted as it is read: a 4 MiB batch costs the isolate little wasm memory', async (t) => {
    const c = client(edge, { token: 'read-secret' });
    const before = await wasmMemory(c);
    const empty = `{"requests":[${'[],'.repeat(((4 << 20) - 20) / 3 - 1)}[]]}`;
    const many = `{"requests":[${'["a","b","c"],'.repeat(((4 << 20) - 20) / 14 - 1)}["a","b","c"]]}`;
    for (let i = 0; i < 4; i++) {
      const auth = { ...JSON_TYPE, authorization: 'Bearer read-secret' };
      error(await edge.fetch('/v1/acme/check-many', { method: 'POST', headers: auth, body: empty }), 400, 'invalid_body', 'empty entries');
      error(await edge.fetch('/v1/acme/check-many', { method: 'POST', headers: auth, body: many }), 413, 'batch_too_large', 'too many');
    }
    const grown = (await wasmMemory(c)) - before;
    t.diagnostic(`eight refused 4 MiB batches grew the wasm memory by ${(grown / 2 ** 20).toFixed(1)} MiB`);
    assert.ok(grown < 12 << 20, `the wasm memory grew by ${grown} bytes`);
  });

  test('a claimed 1 GB body is refused at once, before it is sent', async () => {
    const { port } = new URL(edge.url);
    const answer = await new Promise((resolve, reject) => {
      const s = net.connect(Number(port), '127.0.0.1', () => {
        s.write(
          'PUT /v1/acme/snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/msgpack\r\n' +
            'Authorization: Bearer push-secret\r\nContent-Length: 1000000000\r\n\r\n',
        );
      });
      let got = '';
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`no answer within 5 s (got ${JSON.stringify(got)})`));
      }, 5000);
      s.on('data', (d) => {
        got += d.toString('latin1');
        if (got.includes('\r\n\r\n')) {
          clearTimeout(timer);
          s.destroy();
          resolve(got);
        }
      });
      s.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 413 /, answer);
  });
});
