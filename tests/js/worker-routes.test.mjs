// The Worker's HTTP API (docs/http.md) route by route, and the bad-input catalogue over
// HTTP, in workerd through Miniflare (edge.mjs's startEdge; one runtime per describe block).
//
// - routes: every route and method (404 not_found, 405 method_not_allowed + Allow), /health,
//   x-request-id, odd tenants in the path (400 invalid_tenant, percent-encoded slashes, `..`),
//   media types (415), JSON bodies (400 invalid_json / invalid_body), the default size limits
//   (413 too_large by Content-Length, by a chunked body with no Content-Length, and the exact
//   limit accepted; 413 batch_too_large), list queries (400 invalid_query), the decision gates
//   over HTTP (no_snapshot, invalid_request, unknown_action, freshness_exceeded) and odd ids;
// - pushes: the success answers of snapshot / delta / watermark, and every refusal (garbage,
//   truncated and bit-flipped signed messages, wrong kinds and versions, signed-but-malformed
//   payloads, forged and cross-tenant messages, rollbacks, replays, conflicts, gaps, digest
//   mismatches, hostile watermarks); after EACH refused push, GET status (epoch, watermark,
//   confirmedAt, digest, stale, counts, the authority's head) and a fixed set of checks, a batch
//   and two listings answer exactly as before (whole JSON compared);
// - bearer token and tenant list: 401 unauthorized (+ www-authenticate) on every read endpoint,
//   push endpoints and /health without a token, 404 unknown_tenant;
// - configured limits: MAX_CHECK_BYTES, MAX_BATCH_BYTES, MAX_BATCH, MAX_SNAPSHOT_BYTES and
//   MAX_MESSAGE_BYTES, each by Content-Length, by a chunked body, and for valid signed messages.
//
// Content-Length is tested two ways: a body whose real size is over the limit (undici sets the
// header), and a header that claims more than the limit on a stream that sends a few bytes and
// then stalls: a 413 then proves the header was checked before the body was read (undici refuses
// a header that disagrees with a body it can measure, so only a stream can lie). Chunked bodies
// are ReadableStreams (`duplex: 'half'`), which Miniflare's dispatchFetch sends without a
// Content-Length (it does allow them); a stream that sends more than the limit and then stalls
// must still get its 413 (the Worker must stop reading at the limit, not buffer to the end).
//
// The checks compared after a refused push always include a `high`-tier action, which makes the
// isolate confirm with the authority (the Durable Object) on every request, and GET status
// always syncs; so a state change in the authority cannot hide behind an isolate's reuse window.
import { describe, test, before, beforeEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ASSETS, EXAMPLE, JSON_TYPE, MSGPACK, client, model, origin, pkg, startEdge, WHAT_IF } from './edge.mjs';
import { REPO_DIR } from './pkg.mjs';
import { issuedAtOf, itemSpans, keyIdOf as keyIdOfMessage, pack, resign, seal, signWith, unpack } from './msgpack.mjs';

// ---------------------------------------------------------------------------------------------
// Helpers

const KIB = 1024;
const MIB = 1024 * 1024;
const enc = new TextEncoder();
const bytes = (s) => enc.encode(s);
const latin1 = (s) => Uint8Array.from(Buffer.from(s, 'latin1'));

/** Asserts an error answer (docs/http.md, "Errors"): status, code, `{error: {code, message}}` and nothing else. */
function assertError(res, status, code, what = '') {
  const label = `${what} -> ${res.status} ${res.body.slice(0, 300)}`;
  assert.equal(res.status, status, label);
  assert.deepEqual(Object.keys(res.json ?? {}), ['error'], label);
  assert.deepEqual(Object.keys(res.json.error).sort(), ['code', 'message'], label);
  assert.equal(res.json.error.code, code, label);
  assert.equal(typeof res.json.error.message, 'string', label);
  assert.ok(res.json.error.message.length > 0, label);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, label);
  assert.ok(res.headers.get('x-request-id'), `${label}: no x-request-id`);
}

function assertOk(res, what = '') {
  assert.equal(res.status, 200, `${what} -> ${res.status} ${res.body.slice(0, 300)}`);
  assert.ok(res.headers.get('x-request-id'), `${what}: no x-request-id`);
  return res.json;
}

/** A deterministic pseudo-random byte string. */
function noise(n, seed = 1) {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A body sent chunked (a stream, so no Content-Length) of `total` bytes of `fill`. */
function chunked(total, { fill = 0x20, head = new Uint8Array(0), chunk = 256 * KIB } = {}) {
  let sent = 0;
  return new ReadableStream({
    pull(ctl) {
      if (sent === 0 && head.length) {
        ctl.enqueue(head);
        sent = head.length;
        return;
      }
      if (sent >= total) {
        ctl.close();
        return;
      }
      const n = Math.min(chunk, total - sent);
      ctl.enqueue(new Uint8Array(n).fill(fill));
      sent += n;
    },
  });
}

/** `data` as a chunked body (a stream of small chunks, no Content-Length). */
function streamOf(data, chunk = 100) {
  let i = 0;
  return new ReadableStream({
    pull(ctl) {
      if (i >= data.length) {
        ctl.close();
        return;
      }
      ctl.enqueue(data.slice(i, i + chunk));
      i += chunk;
    },
  });
}

/** Streams that send a few bytes and then stall (for a Content-Length that lies); `release()`
 * errors the ones still open, so that a request the Worker waits on does not outlive its test. */
const stalledControllers = new Set();
function stalled(first = bytes('{"subject"')) {
  let sentFirst = false;
  return new ReadableStream({
    pull(ctl) {
      if (!sentFirst) {
        sentFirst = true;
        stalledControllers.add(ctl);
        ctl.enqueue(first);
        return undefined;
      }
      return new Promise(() => {});
    },
  });
}
function release() {
  for (const ctl of stalledControllers) {
    try {
      ctl.error(new Error('released by the test'));
    } catch {
      // already closed
    }
  }
  stalledControllers.clear();
}

/** A request whose Content-Length claims `claimed` bytes; only the first few ever arrive. */
function lyingInit(method, contentType, claimed) {
  return {
    method,
    headers: { 'content-type': contentType, 'content-length': String(claimed) },
    body: stalled(),
    duplex: 'half',
  };
}

/** `promise`, or a failure when it has not settled after `ms` (a Worker waiting for a body). */
function within(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new assert.AssertionError({ message: `${what}: no answer after ${ms} ms` })), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

// --- Signed messages taken apart and signed again with tests/js/msgpack.mjs (the layout of
// crates/core/src/wire.rs), to build signed but hostile messages the origin functions would never
// produce.

/** The key id a key pair signs under (read from a message it signed). */
const keyIdOf = (o) => keyIdOfMessage(o.snapshot(M1, 1, 1));

/** A signed watermark built here, so that what it carries is not checked by the package:
 * payload [tenant, watermark, issued_at, delta bytes or nil]. */
function craftWatermark(o, { tenant = 'acme', watermark, issuedAt, delta }) {
  return seal('watermark', [tenant, watermark, issuedAt, delta ?? null], { secretKey: o.keys.secretKey, keyId: keyIdOf(o) });
}

function flipBit(message, index, bit) {
  const out = Uint8Array.from(message);
  out[index] ^= 1 << bit;
  return out;
}

// Delta payload [tenant, base_epoch, epoch, issued_at, base_digest, digest, revokes, ops]: where
// its epochs (positive fixints here, one byte each) and its result digest's 32 bytes are.
function deltaLayout(payload) {
  const f = itemSpans(payload);
  assert.equal(f.length, 8, 'delta payload: an array of 8');
  assert.ok(f[1].end - f[1].start === 1 && f[2].end - f[2].start === 1, 'epochs are positive fixints');
  assert.deepEqual([payload[f[5].start], payload[f[5].start + 1]], [0xc4, 32], 'a 32-byte digest');
  return { baseEpoch: f[1].start, epoch: f[2].start, digest: f[5].start + 2 };
}

// Snapshot payload [tenant, epoch, issued_at, content]: where its epoch (a positive fixint) is.
function snapshotLayout(payload) {
  const f = itemSpans(payload);
  assert.equal(f.length, 4, 'snapshot payload: an array of 4');
  assert.equal(f[1].end - f[1].start, 1, 'the epoch is a positive fixint');
  return { epoch: f[1].start };
}

// --- The fixed observation: status, a batch, single checks and two listings, at a `now` tied to
// the state's confirmedAt (so it is deterministic for a given state, inside every freshness bound).

const CHECKS = [
  ['user:alice', 'read', 'org:acme'], // granted through group:staff
  ['user:alice', 'export', 'doc:roadmap'], // granted by admin on workspace:eng; tier high
  ['user:alice', 'write', 'org:acme'], // no_grant
  ['user:bob', 'write', 'doc:roadmap'], // granted from M2 on
  ['user:mallory', 'read', 'org:acme'], // suspended
  ['user:alice', 'read', 'doc:nope'], // unknown_resource
  ['user:alice', 'fly', 'doc:roadmap'], // unknown_action
  ['alice', 'read', 'doc:roadmap'], // invalid_request
  ['user:carol', 'read', 'org:acme'], // no_grant (unknown subject)
];

async function observe(c, { light = false } = {}) {
  const s = await c.status();
  assertOk(s, 'GET status');
  const { tenant, epoch, watermark, confirmedAt, digest, stale, preview, counts, authority } = s.json;
  // Decided with the Worker's clock a second after the state's confirmation (a clocked edge), so
  // that the answers do not depend on how long the suite has run.
  const now = (confirmedAt ?? 0) + 1000;
  await c.setClock(now);
  try {
    const many = await c.checkMany(CHECKS, { now });
    const out = {
      status: { tenant, epoch, watermark, confirmedAt, digest, stale, preview, counts, authority },
      many: { status: many.status, body: many.json },
    };
    if (light) return out;
    out.single = [];
    for (const [sub, act, res] of CHECKS) {
      const r = await c.check(sub, act, res, { now });
      out.single.push({ status: r.status, body: r.json });
    }
    out.lists = [];
    for (const q of [`resources?subject=user:alice&action=write&now=${now}`, `subjects?resource=doc:roadmap&action=read&now=${now}`]) {
      const r = await c.get(q);
      out.lists.push({ status: r.status, body: r.json });
    }
    return out;
  } finally {
    await c.setClock(null);
  }
}

// ---------------------------------------------------------------------------------------------
// The example model and its successors.

const M1 = EXAMPLE;
const M2 = model((m) => m.assignments.push({ principal: 'user:bob', role: 'editor', resource: 'doc:roadmap' }));
const M3 = model((m) => {
  m.assignments.push({ principal: 'user:bob', role: 'editor', resource: 'doc:roadmap' });
  m.suspended.push('user:alice'); // a revocation
});
const OTHER = (m) => model((x) => Object.assign(x, structuredClone(m), { tenant: 'other' }));

const ALICE_READ_ORG = (epoch, watermark) => ({
  allowed: true,
  reason: 'granted',
  epoch,
  watermark,
  tier: 'low',
  grant: { principal: 'group:staff', role: 'viewer', resource: 'org:acme', path: ['user:alice', 'group:eng', 'group:staff'] },
});
const ALICE_EXPORT = (epoch, watermark) => ({
  allowed: true,
  reason: 'granted',
  epoch,
  watermark,
  tier: 'high',
  grant: { principal: 'user:alice', role: 'admin', resource: 'workspace:eng', path: ['user:alice'] },
});

const ROUTES = [
  ['check', 'POST'],
  ['check-many', 'POST'],
  ['resources', 'GET'],
  ['subjects', 'GET'],
  ['snapshot', 'PUT'],
  ['delta', 'POST'],
  ['watermark', 'POST'],
  ['status', 'GET'],
];

// The code of a malformed `now` on a listing: `invalid_request`, as for a check's malformed context.
const BAD_NOW_CODE = 'invalid_request';

// =============================================================================================
describe('routes, methods, paths, bodies and default limits', () => {
  let edge;
  let c;
  const o = origin();
  let issuedAt;

  before(async () => {
    edge = await startEdge({ vars: { ...WHAT_IF, ORIGIN_PUBLIC_KEYS: o.keys.publicKey }, clocked: true });
    c = client(edge);
    issuedAt = Date.now();
    assert.deepEqual(assertOk(await c.push('snapshot', o.snapshot(M1, 1, issuedAt))), { epoch: 1 });
  });
  // Every test decides a second after the snapshot was issued, by the Worker's clock, however
  // long the suite has run (a test that moves the clock puts it back to the real one).
  beforeEach(() => edge.setClock(issuedAt + 1000));
  after(async () => {
    release();
    await edge?.dispose();
  });

  test('GET /health answers 200 {ok: true} (HEAD too); another method is 405 with Allow: GET', async () => {
    const r = await edge.fetch('/health');
    assert.deepEqual(assertOk(r), { ok: true });
    assert.equal((await edge.fetch('/health?probe=1')).status, 200);
    assert.equal((await edge.fetch('/health', { method: 'HEAD' })).status, 200);
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await edge.fetch('/health', { method, ...(method === 'DELETE' ? {} : { body: 'x' }) });
      assertError(res, 405, 'method_not_allowed', `${method} /health`);
      assert.match(res.headers.get('allow') ?? '', /\bGET\b/);
    }
  });

  test('an unknown path is 404 not_found', async () => {
    for (const p of ['/', '/v1', '/v1/', '/v1/acme', '/v1/acme/', '/v1/acme/nope', '/v1/acme/status/', '/v1/acme/check/x',
      '/v2/acme/status', '/V1/acme/status', '/health/', '//health', '/v1/acme/Check', '/v1/acme%2Fstatus',
      '/v1/acme/status%2F', '/v1/acme/check-many/', '/favicon.ico']) {
      assertError(await edge.fetch(p), 404, 'not_found', p);
      assertError(await edge.fetch(p, { method: 'POST', headers: JSON_TYPE, body: '{}' }), 404, 'not_found', `POST ${p}`);
    }
  });

  test('every route refuses the other methods with 405 and its own method in Allow', async () => {
    for (const [op, allow] of ROUTES) {
      for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']) {
        if (method === allow) continue;
        const withBody = !['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(method);
        const res = await edge.fetch(`/v1/acme/${op}`, { method, ...(withBody ? { headers: JSON_TYPE, body: '{}' } : {}) });
        assert.equal(res.status, 405, `${method} ${op}: ${res.status} ${res.body}`);
        assert.equal(res.headers.get('allow'), allow, `${method} ${op}`);
        if (method !== 'HEAD') assertError(res, 405, 'method_not_allowed', `${method} ${op}`);
      }
    }
  });

  test('an odd tenant in the path is 400 invalid_tenant on every route', async () => {
    const odd = ['ACME', 'Acme', 'ac%2Fme', 'ac%2fme', '..%2Facme', 'acme%2F..%2Fother', 'ac.me', '_acme', '-acme', 'ac%20me',
      'ac%00me', 'ac%0Ame', '%C3%A1cme', 'ácme', 'a'.repeat(65), 'ac:me', 'ac%3Fme', ''];
    for (const t of odd) {
      for (const [op, method] of ROUTES) {
        const init = method === 'GET' ? {} : { method, headers: op.startsWith('check') ? JSON_TYPE : MSGPACK, body: op.startsWith('check') ? '{}' : new Uint8Array(8) };
        assertError(await edge.fetch(`/v1/${t}/${op}`, init), 400, 'invalid_tenant', `${method} /v1/${t}/${op}`);
      }
    }
  });

  test('dot segments are resolved before routing and never name a tenant', async () => {
    // `..` and `%2e%2e` are URL dot segments: /v1/../v1/acme/status is /v1/acme/status.
    const s = assertOk(await edge.fetch('/v1/../v1/acme/status'));
    assert.equal(s.tenant, 'acme');
    assertError(await edge.fetch('/v1/%2e%2e/acme/status'), 404, 'not_found');
    assertError(await edge.fetch('/v1/acme/../status'), 404, 'not_found');
  });

  test('the longest tenant (64 characters) is served; a new tenant starts with no snapshot', async () => {
    const long = `t${'x'.repeat(62)}9`;
    const s = assertOk(await edge.fetch(`/v1/${long}/status`));
    assert.equal(s.tenant, long);
    assert.equal(s.epoch, null);
    assert.equal(s.watermark, 0);
    assert.equal(s.confirmedAt, null);
  });

  test('x-request-id: a valid incoming id is echoed on every kind of answer, an invalid one replaced', async () => {
    const rid = 'req-42_A.b:c';
    const answers = [
      await edge.fetch('/health', { headers: { 'x-request-id': rid } }),
      await edge.fetch('/nope', { headers: { 'x-request-id': rid } }),
      await edge.fetch('/v1/acme/check', { headers: { 'x-request-id': rid } }),
      await edge.fetch('/v1/acme/check', { method: 'POST', headers: { ...JSON_TYPE, 'x-request-id': rid }, body: JSON.stringify({ subject: 'user:alice', action: 'read', resource: 'org:acme' }) }),
      await edge.fetch('/v1/acme/check', { method: 'POST', headers: { 'content-type': 'text/plain', 'x-request-id': rid }, body: '{}' }),
      await edge.fetch('/v1/acme/snapshot', { method: 'PUT', headers: { ...MSGPACK, 'x-request-id': rid }, body: o.snapshot(M1, 1, issuedAt) }),
      await edge.fetch('/v1/acme/delta', { method: 'POST', headers: { ...MSGPACK, 'x-request-id': rid }, body: bytes('garbage') }),
      await edge.fetch('/v1/acme/status', { headers: { 'x-request-id': rid } }),
      await edge.fetch('/v1/acme/resources?subject=user:alice&action=read', { headers: { 'x-request-id': rid } }),
    ];
    for (const r of answers) assert.equal(r.headers.get('x-request-id'), rid, `${r.status} ${r.body.slice(0, 100)}`);
    for (const bad of ['has space', 'x'.repeat(65), 'semi;colon', 'quote"d', 'ü-nicode'.normalize()]) {
      let r;
      try {
        r = await edge.fetch('/health', { headers: { 'x-request-id': bad } });
      } catch {
        continue; // a header value undici itself refuses to send
      }
      const got = r.headers.get('x-request-id');
      assert.ok(got && got !== bad, `${bad} -> ${got}`);
      assert.match(got, /^[0-9A-Za-z._:-]{1,64}$/);
    }
    const a = (await edge.fetch('/health')).headers.get('x-request-id');
    const b = (await edge.fetch('/health')).headers.get('x-request-id');
    assert.ok(a && b && a !== b, 'fresh ids differ');
  });

  test('before any snapshot: checks answer no_snapshot (even with a malformed context), lists are 503 no_snapshot', async () => {
    const e = client(edge, { tenant: 'empty' });
    const d = assertOk(await e.check('user:alice', 'read', 'org:acme', { now: Date.now() }));
    assert.deepEqual(d, { allowed: false, reason: 'no_snapshot', epoch: null, watermark: 0, tier: null });
    assert.equal(assertOk(await e.check('alice', 'read', 'org:acme', { now: 'x' })).reason, 'no_snapshot');
    const many = assertOk(await e.checkMany([['user:alice', 'read', 'org:acme'], ['bad', 'x', 'y']]));
    assert.deepEqual(many.decisions.map((x) => x.reason), ['no_snapshot', 'no_snapshot']);
    assertError(await e.get('resources?subject=user:alice&action=read'), 503, 'no_snapshot');
    assertError(await e.get('subjects?resource=org:acme&action=read'), 503, 'no_snapshot');
    const s = assertOk(await e.status());
    assert.equal(s.epoch, null);
    assert.deepEqual(s.actions, {});
  });

  test('check answers 200 with the decision; check-many answers {decisions} in order', async () => {
    const now = issuedAt + 1000;
    assert.deepEqual(assertOk(await c.check('user:alice', 'read', 'org:acme', { now })), ALICE_READ_ORG(1, 0));
    assert.deepEqual(assertOk(await c.check('user:alice', 'export', 'doc:roadmap', { now })), ALICE_EXPORT(1, 0));
    const many = assertOk(await c.checkMany(CHECKS, { now }));
    assert.deepEqual(Object.keys(many), ['decisions']);
    assert.deepEqual(many.decisions.map((d) => d.reason), ['granted', 'granted', 'no_grant', 'no_grant', 'suspended', 'unknown_resource', 'unknown_action', 'invalid_request', 'no_grant']);
    assert.deepEqual(many.decisions[0], ALICE_READ_ORG(1, 0));
    assert.deepEqual(assertOk(await c.checkMany([], { now })), { decisions: [] });
    // no context: the Worker's clock (alice's admin assignment runs until 2099-01-01)
    assert.equal(assertOk(await c.check('user:mallory', 'read', 'org:acme')).reason, 'suspended');
    // `context: null` and `{now: null}` mean "no time given"
    for (const context of [null, { now: null }]) {
      const r = assertOk(await edge.fetch('/v1/acme/check', { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ subject: 'user:alice', action: 'read', resource: 'org:acme', context }) }));
      assert.equal(r.reason, 'granted', JSON.stringify(context));
    }
  });

  test('lists: 200 {resources} / {subjects}, with the type filter', async () => {
    const now = issuedAt + 1000;
    assert.deepEqual(assertOk(await c.get(`resources?subject=user:alice&action=write&now=${now}`)), { resources: ['doc:roadmap', 'workspace:eng'] });
    assert.deepEqual(assertOk(await c.get(`resources?subject=user:alice&action=write&type=doc&now=${now}`)), { resources: ['doc:roadmap'] });
    assert.deepEqual(assertOk(await c.get(`resources?subject=user:mallory&action=read&now=${now}`)), { resources: [] });
    assert.deepEqual(assertOk(await c.get(`subjects?resource=doc:roadmap&action=export&now=${now}`)), { subjects: ['user:alice'] });
    assert.deepEqual(assertOk(await c.get(`subjects?resource=doc:nope&action=read&now=${now}`)), { subjects: [] });
  });

  test('lists refuse with the decision gate: 400 invalid_request / unknown_action, 503 freshness_exceeded', async () => {
    const now = issuedAt + 1000;
    for (const q of ['resources?subject=alice&action=read', 'resources?subject=user:alice&action=READ', 'resources?subject=user:alice&action=read&type=Doc',
      `resources?subject=user:${'x'.repeat(257)}&action=read`, 'subjects?resource=doc%20x&action=read', 'subjects?resource=doc:a%00b&action=read', 'subjects?resource=:x&action=read']) {
      assertError(await c.get(`${q}&now=${now}`), 400, 'invalid_request', q);
    }
    assertError(await c.get(`resources?subject=user:alice&action=fly&now=${now}`), 400, 'unknown_action');
    assertError(await c.get(`subjects?resource=doc:roadmap&action=fly&now=${now}`), 400, 'unknown_action');
    // read is `low` (300 s): ten minutes after the last confirmation, by the Worker's clock, is too
    // late, whatever time the request names
    try {
      await edge.setClock(issuedAt + 600_000);
      assertError(await c.get(`resources?subject=user:alice&action=read&now=${now}`), 503, 'freshness_exceeded');
      assertError(await c.get('resources?subject=user:alice&action=read'), 503, 'freshness_exceeded');
      await edge.setClock(issuedAt + 6_000);
      assertError(await c.get(`subjects?resource=doc:roadmap&action=export&now=${now}`), 503, 'freshness_exceeded');
    } finally {
      await edge.setClock(null);
    }
  });

  test('lists: a missing parameter is 400 invalid_query', async () => {
    for (const q of ['resources', 'resources?subject=user:alice', 'resources?action=read', 'resources?subjects=user:alice&action=read',
      'subjects', 'subjects?resource=doc:roadmap', 'subjects?action=read', 'subjects?subject=user:alice&action=read']) {
      assertError(await c.get(q), 400, 'invalid_query', q);
    }
  });

  test(`lists: a bad \`now\` is 400 ${BAD_NOW_CODE}`, async () => {
    for (const n of ['x', '-1', '1.5', '1e3', '', '%20', '9007199254740992', '99999999999999999999999']) {
      assertError(await c.get(`resources?subject=user:alice&action=read&now=${n}`), 400, BAD_NOW_CODE, `now=${n}`);
      assertError(await c.get(`subjects?resource=doc:roadmap&action=read&now=${n}`), 400, BAD_NOW_CODE, `now=${n}`);
    }
  });

  test('checks: a malformed context is a 200 decision with reason invalid_request', async () => {
    for (const context of [{ now: 'x' }, { now: -1 }, { now: 1.5 }, { now: 2 ** 53 }, { now: 1e300 }, { now: true }, { now: [1] }, { now: {} },
      { extra: null }, { now: 1, extra: {} }, { Extra: 1 }, { l: [1] }, { s: 'x'.repeat(257) },
      Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i])), [], 'x', 1, true]) {
      const r = assertOk(await edge.fetch('/v1/acme/check', { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ subject: 'user:alice', action: 'read', resource: 'org:acme', context }) }));
      assert.deepEqual(r, { allowed: false, reason: 'invalid_request', epoch: 1, watermark: 0, tier: null }, JSON.stringify(context));
      const m = assertOk(await c.checkMany([['user:alice', 'read', 'org:acme'], ['user:bob', 'read', 'org:acme']], context));
      assert.deepEqual(m.decisions.map((d) => d.reason), ['invalid_request', 'invalid_request'], JSON.stringify(context));
    }
  });

  test('checks: odd ids (too long, control characters, whitespace, unicode, dots) are answered, never an error', async () => {
    const now = issuedAt + 1000;
    const invalid = [
      `user:${'a'.repeat(257)}`, `doc:${'é'.repeat(129)}`, 'x'.repeat(100_00), '', 'user:', ':alice', 'User:alice', '9user:a', 'user alice',
      'user:al ice', 'user:al\tice', 'user:al\nice', 'user:a\u0000b', 'user:a\u0007', 'user:a\u007f', 'user:a\u0085b', 'user:a\u2028b',
      'user:a\u00a0b', '..', '../../etc/passwd', 'user', 'ü:x',
    ];
    for (const id of invalid) {
      const asSubject = assertOk(await c.check(id, 'read', 'org:acme', { now }), JSON.stringify(id).slice(0, 50));
      assert.equal(asSubject.reason, 'invalid_request', `subject ${JSON.stringify(id).slice(0, 60)}`);
      const asResource = assertOk(await c.check('user:alice', 'read', id, { now }));
      assert.equal(asResource.reason, 'invalid_request', `resource ${JSON.stringify(id).slice(0, 60)}`);
    }
    for (const action of ['READ', 're ad', '', 'r\u0000', 'x'.repeat(5000), '1read', 'réad']) {
      assert.equal(assertOk(await c.check('user:alice', action, 'org:acme', { now })).reason, 'invalid_request', JSON.stringify(action).slice(0, 40));
    }
    // valid but unknown ids
    const valid = [
      ['user:ålice', 'read', 'org:acme', 'no_grant'],
      ['user:アリス', 'read', 'org:acme', 'no_grant'],
      ['user:😀', 'read', 'org:acme', 'no_grant'],
      [`user:${'a'.repeat(256)}`, 'read', 'org:acme', 'no_grant'],
      ['user:alice', 'read', 'doc:..', 'unknown_resource'],
      ['user:alice', 'read', 'doc:../../etc/passwd', 'unknown_resource'],
      ['user:alice', 'read', 'doc:%2F..%2F', 'unknown_resource'],
      ['user:alice', 'read', `doc:${'é'.repeat(128)}`, 'unknown_resource'],
      ['user:alice', 'read', 'org:acme/', 'unknown_resource'],
    ];
    for (const [s, a, r, reason] of valid) assert.equal(assertOk(await c.check(s, a, r, { now })).reason, reason, `${s} ${r}`);
    // the same through a batch
    const many = assertOk(await c.checkMany([...invalid.map((id) => [id, 'read', 'org:acme']), ...valid.map(([s, a, r]) => [s, a, r])], { now }));
    assert.deepEqual(many.decisions.map((d) => d.reason), [...invalid.map(() => 'invalid_request'), ...valid.map((v) => v[3])]);
  });

  test('check bodies must be application/json (parameters allowed), else 415', async () => {
    const body = JSON.stringify({ subject: 'user:alice', action: 'read', resource: 'org:acme' });
    for (const op of ['check', 'check-many']) {
      const b = op === 'check' ? body : JSON.stringify({ requests: [['user:alice', 'read', 'org:acme']] });
      for (const ct of ['text/plain', 'application/msgpack', 'application/jsonx', 'application/json-seq', 'json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', ' ', 'application/ld+json']) {
        assertError(await edge.fetch(`/v1/acme/${op}`, { method: 'POST', headers: { 'content-type': ct }, body: b }), 415, 'unsupported_media_type', `${op} ${ct}`);
      }
      // no content type at all (a Uint8Array body gets none from undici)
      assertError(await edge.fetch(`/v1/acme/${op}`, { method: 'POST', body: bytes(b) }), 415, 'unsupported_media_type', `${op} none`);
      for (const ct of ['application/json', 'application/json; charset=utf-8', 'Application/JSON', 'application/json;charset=UTF-8', ' application/json ; x=y']) {
        assertOk(await edge.fetch(`/v1/acme/${op}`, { method: 'POST', headers: { 'content-type': ct }, body: b }), `${op} ${ct}`);
      }
    }
  });

  test('check bodies: bad syntax is 400 invalid_json, a wrong shape 400 invalid_body', async () => {
    const post = (op, body) => edge.fetch(`/v1/acme/${op}`, { method: 'POST', headers: JSON_TYPE, body });
    // not JSON at all: whatever the parser met first, the answer is invalid_json
    const wrong = [];
    for (const body of ['', ' ', '{', '}', 'not json', '{"subject": "user:alice",}', "{'subject': 'user:alice'}", '{"subject":"user:alice" "action":"read"}',
      '[1,2', '\u0000', 'nul', '{"subject":"user:\\ud800","action":"read","resource":"org:acme"}', '{"a":1}{"b":2}', '\uFEFF{}',
      '{"requests":[["user:alice","read","org:acme"]],}', '{"requests":[["user:alice","read","org:acme"]]', '{"subject":"user:alice","action":"read","resource":"org:acme"']) {
      for (const op of ['check', 'check-many']) {
        const r = await post(op, body);
        assertError(r, 400, r.json?.error?.code, `${op} ${JSON.stringify(body)}`);
        if (r.json.error.code !== 'invalid_json') wrong.push(`${op} ${JSON.stringify(body)} -> ${r.json.error.code}`);
      }
    }
    assert.deepEqual(wrong, [], 'bodies that are not JSON must be invalid_json');
    assertError(await post('check', Buffer.from(noise(200, 7))), 400, 'invalid_json', 'binary noise');
    const base = { subject: 'user:alice', action: 'read', resource: 'org:acme' };
    for (const b of [null, [], 'x', 1, {}, { subject: 'user:alice' }, { ...base, resource: undefined }, { ...base, subject: 1 }, { ...base, action: null },
      { ...base, resource: ['org:acme'] }, { ...base, extra: true }, { ...base, Subject: 'user:alice' }, { requests: [] }]) {
      assertError(await post('check', JSON.stringify(b)), 400, 'invalid_body', `check ${JSON.stringify(b)}`);
    }
    const ok = ['user:alice', 'read', 'org:acme'];
    for (const b of [null, [], {}, { requests: null }, { requests: {} }, { requests: 'x' }, { requests: [ok.slice(0, 2)] }, { requests: [[...ok, 'x']] },
      { requests: [ok, ['user:alice', 'read', 1]] }, { requests: [ok, null] }, { requests: [{ subject: 'user:alice', action: 'read', resource: 'org:acme' }] },
      { requests: ['user:alice read org:acme'] }, { requests: [[]] }, { requests: [ok], extra: 1 }, { requests: [ok], context: { now: 1 }, more: 2 }, base]) {
      assertError(await post('check-many', JSON.stringify(b)), 400, 'invalid_body', `check-many ${JSON.stringify(b)}`);
    }
  });

  test('default check limit (16 KiB): exactly 16 KiB is answered; one byte more is 413 by Content-Length, chunked, or a lying header', async () => {
    const json = JSON.stringify({ subject: 'user:alice', action: 'read', resource: 'org:acme', context: { now: issuedAt + 1000 } });
    const exact = json + ' '.repeat(16 * KIB - json.length);
    assert.equal(Buffer.byteLength(exact), 16 * KIB);
    assert.deepEqual(assertOk(await edge.fetch('/v1/acme/check', { method: 'POST', headers: JSON_TYPE, body: exact })), ALICE_READ_ORG(1, 0));
    assert.equal(assertOk(await edge.fetch('/v1/acme/check', { method: 'POST', headers: JSON_TYPE, body: chunked(16 * KIB, { head: bytes(json) }), duplex: 'half' })).reason, 'granted');
    assertError(await edge.fetch('/v1/acme/check', { method: 'POST', headers: JSON_TYPE, body: `${exact} ` }), 413, 'too_large', 'by size');
    assertError(await edge.fetch('/v1/acme/check', { method: 'POST', headers: JSON_TYPE, body: chunked(16 * KIB + 1, { head: bytes(json) }), duplex: 'half' }), 413, 'too_large', 'chunked');
    const lie = await edge.fetch('/v1/acme/check', lyingInit('POST', 'application/json', 16 * KIB + 1));
    assertError(lie, 413, 'too_large', 'lying Content-Length');
    assert.match(lie.json.error.message, /16385/);
    // a huge claimed length does not make the Worker wait for the body either (2^32 - 1, and
    // lengths a 32-bit usize does not hold)
    try {
      for (const claimed of [2 ** 32 - 1, 2 ** 32, 10 ** 12, Number.MAX_SAFE_INTEGER]) {
        const res = await within(edge.fetch('/v1/acme/check', lyingInit('POST', 'application/json', claimed)), 3000, `Content-Length: ${claimed}`);
        assertError(res, 413, 'too_large', `Content-Length: ${claimed}`);
      }
    } finally {
      release();
    }
  });

  // 1 MiB (check; limit 16 KiB) or 9 MiB (delta; limit 8 MiB) arrive, then the stream stalls: a
  // Worker that stops reading past the limit answers 413; one that buffers until the end never does.
  for (const [op, headers, size] of [['check', JSON_TYPE, MIB], ['delta', MSGPACK, 9 * MIB]]) {
    test(`${op}: a chunked body is refused once it passes the limit, without waiting for its end`, async () => {
      try {
        const res = await within(
          edge.fetch(`/v1/acme/${op}`, { method: 'POST', headers, body: stalled(new Uint8Array(size).fill(0x20)), duplex: 'half' }),
          3000,
          `${op}: ${size} bytes chunked, then the stream stalls`,
        );
        assertError(res, 413, 'too_large', op);
      } finally {
        release();
      }
    });
  }

  test('default batch limits: 10,000 requests answered, 10,001 is 413 batch_too_large; over 4 MiB is 413 too_large', async () => {
    const now = issuedAt + 1000;
    const req = ['user:alice', 'read', 'org:acme'];
    const full = assertOk(await c.checkMany(Array.from({ length: 10_000 }, () => req), { now }));
    assert.equal(full.decisions.length, 10_000);
    assert.deepEqual(full.decisions[9_999], ALICE_READ_ORG(1, 0));
    assertError(await c.checkMany(Array.from({ length: 10_001 }, () => req), { now }), 413, 'batch_too_large');
    assertError(await c.checkMany(Array.from({ length: 200_000 }, () => req), { now }), 413, 'too_large', '200,000 requests, 5 MB');
    assertError(await edge.fetch('/v1/acme/check-many', { method: 'POST', headers: JSON_TYPE, body: chunked(4 * MIB + 1), duplex: 'half' }), 413, 'too_large', 'chunked');
    assertError(await edge.fetch('/v1/acme/check-many', lyingInit('POST', 'application/json', 4 * MIB + 1)), 413, 'too_large', 'lying Content-Length');
    // exactly 4 MiB of whitespace-padded JSON is read (and answered)
    const small = JSON.stringify({ requests: [req], context: { now } });
    assert.equal(assertOk(await edge.fetch('/v1/acme/check-many', { method: 'POST', headers: JSON_TYPE, body: small + ' '.repeat(4 * MIB - small.length) })).decisions.length, 1);
  });

  test('default push limits: a snapshot over 32 MiB, a delta or watermark over 8 MiB is 413; exactly the limit is read', async () => {
    const before = await observe(c);
    assertError(await edge.fetch('/v1/acme/snapshot', lyingInit('PUT', 'application/msgpack', 32 * MIB + 1)), 413, 'too_large', 'snapshot, lying Content-Length');
    assertError(await edge.fetch('/v1/acme/snapshot', { method: 'PUT', headers: MSGPACK, body: chunked(32 * MIB + 1, { head: o.snapshot(M2, 2), fill: 0 }), duplex: 'half' }), 413, 'too_large', 'snapshot, chunked');
    for (const kind of ['delta', 'watermark']) {
      assertError(await c.push(kind, new Uint8Array(8 * MIB + 1)), 413, 'too_large', `${kind}, by size`);
      assertError(await edge.fetch(`/v1/acme/${kind}`, { method: 'POST', headers: MSGPACK, body: chunked(8 * MIB + 1, { fill: 0 }), duplex: 'half' }), 413, 'too_large', `${kind}, chunked`);
      assertError(await edge.fetch(`/v1/acme/${kind}`, lyingInit('POST', 'application/msgpack', 8 * MIB + 1)), 413, 'too_large', `${kind}, lying Content-Length`);
      // exactly at the limit: read, then refused for what it is
      assertError(await c.push(kind, new Uint8Array(8 * MIB)), 400, 'bad_magic', `${kind}, 8 MiB`);
    }
    assertError(await c.push('snapshot', new Uint8Array(32 * MIB)), 400, 'bad_magic', 'snapshot, 32 MiB');
    assert.deepEqual(await observe(c), before);
  });
});

// =============================================================================================
describe('pushes: answers, refusals, and state unchanged after every refusal', () => {
  let edge;
  let c;
  const o = origin(); // trusted
  const rotated = origin(); // trusted too (key rotation)
  const other = origin('other'); // trusted for every tenant, signs for tenant `other`
  const stranger = origin(); // not trusted
  const T0 = Date.now();
  let tick = 0;
  const at = () => T0 + ++tick * 10; // strictly increasing issuedAt values

  // The messages of the story, signed once.
  let s1;
  let d12;
  let d23;
  let w3;
  let s3;

  /** `f()` with the Worker's clock at `ms` (its freshness is judged there), then the real clock. */
  async function atClock(ms, f) {
    await edge.setClock(ms);
    try {
      return await f();
    } finally {
      await edge.setClock(null);
    }
  }

  /** Pushes something that must be refused with `status`/`code`, and checks nothing changed. */
  async function refused(kind, body, status, code, { headers = MSGPACK, what = kind, light = false } = {}) {
    const before = await observe(c, { light });
    const res = await c.push(kind, body, headers);
    assertError(res, status, code, what);
    assert.deepEqual(await observe(c, { light }), before, `${what}: the state changed after a refused push`);
    return res;
  }

  before(async () => {
    edge = await startEdge({ vars: { ...WHAT_IF, ORIGIN_PUBLIC_KEYS: ` ${o.keys.publicKey} ,${rotated.keys.publicKey},${other.keys.publicKey}` }, clocked: true });
    c = client(edge);
    s1 = o.snapshot(M1, 1, at());
    d12 = o.delta(M1, M2, 1, 2, at()).delta;
    const r23 = o.delta(M2, M3, 2, 3, at());
    assert.equal(r23.revokes, true);
    d23 = r23.delta;
    s3 = o.snapshot(M3, 3, at());
    w3 = o.watermark(3, d23, at());
  });
  after(async () => {
    release();
    await edge?.dispose();
  });

  test('the message helpers (tests/js/msgpack.mjs) take messages apart and sign exactly as the origin does', () => {
    for (const m of [s1, d12, w3]) assert.deepEqual(resign(m, o.keys.secretKey), m);
    const when = at();
    assert.deepEqual(craftWatermark(o, { watermark: 3, issuedAt: when, delta: d23 }), o.watermark(3, d23, when));
    assert.deepEqual(craftWatermark(o, { watermark: 5, issuedAt: when }), o.watermark(5, undefined, when));
    assert.deepEqual(deltaLayout(unpack(d12).payload), { baseEpoch: 6, epoch: 7, digest: 53 });
    assert.deepEqual(snapshotLayout(unpack(s1).payload), { epoch: 6 });
    // issued_at as a positive fixint, a uint16 and a uint64
    assert.equal(issuedAtOf(o.snapshot(M1, 1, 1)), 1);
    assert.equal(issuedAtOf(o.delta(M1, M2, 1, 2, 300).delta), 300);
    assert.equal(issuedAtOf(o.watermark(3, d23, when)), when);
  });

  test('PUT snapshot answers 200 {epoch}; status and checks show it', async () => {
    const res = await c.push('snapshot', s1);
    assert.deepEqual(assertOk(res), { epoch: 1 });
    const s = assertOk(await c.status());
    assert.equal(s.tenant, 'acme');
    assert.equal(s.epoch, 1);
    assert.equal(s.watermark, 0);
    assert.equal(s.confirmedAt, issuedAtOf(s1));
    assert.match(s.digest, /^[0-9a-f]{64}$/);
    assert.equal(s.stale, false);
    assert.equal(s.preview, false);
    // The declared actions and their tiers, sorted by name (an admin page lists them).
    assert.deepEqual(s.actions, { export: 'high', read: 'low', write: 'standard' });
    assert.deepEqual(Object.keys(s.actions), ['export', 'read', 'write']);
    assert.deepEqual(s.authority, { epoch: 1, watermark: 0, confirmedAt: s.confirmedAt });
    // The isolate's wasm memory: whole 64 KiB pages, at least the loaded state.
    assert.ok(Number.isInteger(s.edge.wasmMemoryBytes / 65536), String(s.edge.wasmMemoryBytes));
    assert.ok(s.edge.wasmMemoryBytes >= s.heapBytes, `${s.edge.wasmMemoryBytes} < ${s.heapBytes}`);
    const now = s.confirmedAt + 1000;
    assert.deepEqual(assertOk(await atClock(now, () => c.check('user:alice', 'read', 'org:acme'))), ALICE_READ_ORG(1, 0));
    assert.equal(assertOk(await atClock(now, () => c.check('user:bob', 'write', 'doc:roadmap'))).reason, 'no_grant');
  });

  test('garbage bodies are 400 bad_magic / malformed on every push endpoint', async () => {
    const cases = [
      [new Uint8Array(0), 'bad_magic'],
      [bytes('hello'), 'bad_magic'],
      [noise(1000, 3), 'bad_magic'],
      [bytes(JSON.stringify(M1)), 'bad_magic'],
      [bytes('EDGEAZ'), 'bad_magic'],
      [bytes('edgeazS\x01'), 'bad_magic'],
      [latin1('EDGEAZX\x01\x93'), 'bad_magic'],
      [new Uint8Array(64), 'bad_magic'],
      [new Uint8Array(64).fill(0xff), 'bad_magic'],
    ];
    for (const [kind, k] of [['snapshot', 'S'], ['delta', 'D'], ['watermark', 'W']]) {
      for (const [body, code] of cases) await refused(kind, body, 400, code, { what: `${kind} ${Buffer.from(body.slice(0, 12)).toString('latin1')}`, light: true });
      for (const tail of ['', '\x93', '\x93\xa0\xc4\x00', '\x90', '\xc1\xc1\xc1', '\x93\xa0\xc4\x00\xc4\x00\x00']) {
        await refused(kind, latin1(`EDGEAZ${k}\x01${tail}`), 400, 'malformed', { what: `${kind} prefix + ${JSON.stringify(tail)}`, light: true });
      }
      // a well-formed envelope with an empty key id, signature and payload: no such key
      await refused(kind, latin1(`EDGEAZ${k}\x01\x93\xa0\xc4\x00\xc4\x00`), 401, 'unknown_key', { what: `${kind} empty envelope`, light: true });
      await refused(kind, Buffer.concat([Buffer.from(`EDGEAZ${k}\x01`), noise(500, 9)]), 400, 'malformed', { what: `${kind} prefix + noise`, light: true });
      await refused(kind, latin1(`EDGEAZ${k}`), 400, 'malformed', { what: `${kind} 7-byte prefix`, light: true });
    }
    // the full check (single checks and listings too) after one of them
    await refused('snapshot', noise(300, 11), 400, 'bad_magic');
  });

  test('pushes must be application/msgpack (parameters allowed), else 415', async () => {
    for (const kind of ['snapshot', 'delta', 'watermark']) {
      const body = { snapshot: s3, delta: d12, watermark: w3 }[kind];
      for (const ct of ['application/json', 'application/octet-stream', 'text/plain', 'application/x-msgpack', 'application/msgpackx', 'msgpack', '']) {
        await refused(kind, body, 415, 'unsupported_media_type', { headers: ct ? { 'content-type': ct } : {}, what: `${kind} as ${ct || 'no type'}`, light: true });
      }
    }
    await refused('delta', d12, 415, 'unsupported_media_type', { headers: JSON_TYPE });
  });

  test('the same snapshot again is 409 already_applied, state unchanged', async () => {
    await refused('snapshot', s1, 409, 'already_applied');
  });

  test('the same content re-signed later is 409 already_applied, state unchanged (confirmedAt too)', async () => {
    await refused('snapshot', o.snapshot(M1, 1, at()), 409, 'already_applied');
  });

  test('the same epoch with other content is 409 epoch_conflict', async () => {
    await refused('snapshot', o.snapshot(M2, 1, at()), 409, 'epoch_conflict');
    await refused('snapshot', rotated.snapshot(M3, 1, at()), 409, 'epoch_conflict', { what: 'rotated key' });
  });

  test('a message of another kind is 400 wrong_kind', async () => {
    await refused('snapshot', d12, 400, 'wrong_kind', { what: 'delta to /snapshot' });
    await refused('snapshot', w3, 400, 'wrong_kind', { what: 'watermark to /snapshot' });
    await refused('delta', s3, 400, 'wrong_kind', { what: 'snapshot to /delta' });
    await refused('delta', w3, 400, 'wrong_kind', { what: 'watermark to /delta' });
    await refused('watermark', d12, 400, 'wrong_kind', { what: 'delta to /watermark' });
    await refused('watermark', s3, 400, 'wrong_kind', { what: 'snapshot to /watermark' });
  });

  test('another format version is 400 unsupported_version, re-signed or not', async () => {
    for (const [kind, m] of [['snapshot', s3], ['delta', d12], ['watermark', w3]]) {
      for (const version of [0, 4, 0xff]) {
        const raw = Uint8Array.from(m);
        raw[7] = version;
        await refused(kind, raw, 400, 'unsupported_version', { what: `${kind} v${version}`, light: true });
        await refused(kind, resign(m, o.keys.secretKey, { version }), 400, 'unsupported_version', { what: `${kind} v${version} signed`, light: true });
      }
    }
    const raw = Uint8Array.from(s3);
    raw[7] = 4;
    await refused('snapshot', raw, 400, 'unsupported_version');
  });

  test('signed but malformed: epoch 0, trailing bytes, a delta to its own base are 400', async () => {
    const sp = unpack(s3).payload;
    const { epoch } = snapshotLayout(sp);
    const zero = Buffer.from(sp);
    zero[epoch] = 0;
    await refused('snapshot', resign(s3, o.keys.secretKey, { payload: zero }), 400, 'invalid_snapshot', { what: 'snapshot at epoch 0' });
    await refused('snapshot', resign(s3, o.keys.secretKey, { payload: Buffer.concat([sp, Buffer.from([0xc0])]) }), 400, 'malformed', { what: 'signed payload + 1 byte' });
    await refused('snapshot', resign(s3, o.keys.secretKey, { payload: sp.subarray(0, sp.length - 1) }), 400, 'malformed', { what: 'signed payload - 1 byte' });
    await refused('snapshot', resign(s3, o.keys.secretKey, { payload: Buffer.from([0x94]) }), 400, 'malformed', { what: 'signed empty array' });
    await refused('snapshot', Buffer.concat([Buffer.from(s3), Buffer.from([0])]), 400, 'malformed', { what: 'envelope + 1 byte' });
    const dp = unpack(d23).payload;
    const layout = deltaLayout(dp);
    const same = Buffer.from(dp);
    same[layout.epoch] = same[layout.baseEpoch];
    await refused('delta', resign(d23, o.keys.secretKey, { payload: same }), 400, 'invalid_delta', { what: 'delta 2 -> 2' });
    await refused('delta', resign(d23, o.keys.secretKey, { payload: Buffer.concat([dp, Buffer.from([0])]) }), 400, 'malformed', { what: 'delta payload + 1 byte' });
  });

  test("a delta whose base or result is not the signed digest is 400 digest_mismatch", async () => {
    // base epoch 1 is held, but the delta starts from another state at that epoch
    await refused('delta', o.delta(M2, M3, 1, 2, at()).delta, 400, 'digest_mismatch', { what: 'wrong base' });
    // the right base, a result digest damaged and signed again
    const dp = Buffer.from(unpack(d12).payload);
    dp[deltaLayout(dp).digest] ^= 0x01;
    await refused('delta', resign(d12, o.keys.secretKey, { payload: dp }), 400, 'digest_mismatch', { what: 'wrong result digest' });
  });

  test('forged messages are 401: unknown_key (an untrusted key), bad_signature (a trusted key id, a wrong signature)', async () => {
    await refused('snapshot', stranger.snapshot(M3, 9, at()), 401, 'unknown_key');
    await refused('delta', stranger.delta(M1, M2, 1, 2, at()).delta, 401, 'unknown_key');
    await refused('watermark', stranger.watermark(9, undefined, at()), 401, 'unknown_key');
    await refused('snapshot', stranger.snapshot(OTHER(M1), 9, at()), 401, 'unknown_key', { what: 'untrusted key, other tenant' });
    for (const [kind, m] of [['snapshot', o.snapshot(M3, 9, at())], ['delta', d12], ['watermark', o.watermark(9, undefined, at())]]) {
      const env = unpack(m);
      const theirs = signWith(stranger.keys.secretKey, Buffer.concat([env.prefix, env.payload]));
      await refused(kind, pack({ ...env, signature: theirs }), 401, 'bad_signature', { what: `${kind} signed by a stranger under a trusted key id` });
      await refused(kind, pack({ ...env, signature: Buffer.alloc(64) }), 401, 'bad_signature', { what: `${kind} zero signature`, light: true });
      // another trusted key's id on this signature
      await refused(kind, pack({ ...env, keyId: unpack(rotated.snapshot(M1, 1)).keyId }), 401, 'bad_signature', { what: `${kind} under the rotated key's id`, light: true });
    }
  });

  test("another tenant's correctly signed message is 403 tenant_mismatch; the same message serves its own tenant", async () => {
    const theirs = other.snapshot(OTHER(M1), 9, at());
    await refused('snapshot', theirs, 403, 'tenant_mismatch', { what: "other's key, tenant other" });
    await refused('snapshot', o.snapshot(OTHER(M3), 9, at()), 403, 'tenant_mismatch', { what: "acme's key, tenant other" });
    await refused('delta', other.delta(OTHER(M1), OTHER(M2), 1, 2, at()).delta, 403, 'tenant_mismatch');
    await refused('watermark', other.watermark(9, undefined, at()), 403, 'tenant_mismatch');
    await refused('watermark', pkg.signWatermark({ tenant: 'other', watermark: 9, secretKey: o.keys.secretKey, issuedAt: at() }), 403, 'tenant_mismatch', { what: "acme's key, watermark for other" });
    // the same bytes are good for tenant `other`, and that changes nothing for acme
    const before = await observe(c);
    assert.deepEqual(assertOk(await client(edge, { tenant: 'other' }).push('snapshot', theirs)), { epoch: 9 });
    assert.equal(assertOk(await client(edge, { tenant: 'other' }).status()).epoch, 9);
    assert.deepEqual(await observe(c), before);
  });

  test('a delta whose base is not the held epoch is 409 epoch_gap', async () => {
    await refused('delta', d23, 409, 'epoch_gap', { what: 'delta 2 -> 3 at epoch 1' });
    await refused('delta', o.delta(M2, M3, 5, 6, at()).delta, 409, 'epoch_gap', { what: 'delta 5 -> 6' });
    await refused('delta', o.delta(M1, M2, 0, 2, at()).delta, 409, 'epoch_gap', { what: 'delta 0 -> 2' });
  });

  test('truncated signed messages are refused (never 200, never 5xx), state unchanged', async () => {
    const before = await observe(c);
    const codes = new Set(['bad_magic', 'malformed', 'unsupported_version', 'wrong_kind', 'unknown_key', 'bad_signature']);
    for (const [kind, m] of [['snapshot', s3], ['delta', d12], ['watermark', w3]]) {
      const lengths = new Set([0, 1, 5, 6, 7, 8, 9, 10, m.length - 1, m.length - 2, m.length - 64, m.length >> 1]);
      for (let n = 11; n < m.length; n += 5) lengths.add(n);
      for (const n of [...lengths].filter((x) => x >= 0 && x < m.length).sort((a, b) => a - b)) {
        const res = await c.push(kind, m.slice(0, n));
        assert.ok(res.status === 400 || res.status === 401, `${kind} cut to ${n} of ${m.length}: ${res.status} ${res.body}`);
        assert.ok(codes.has(res.json?.error?.code), `${kind} cut to ${n}: ${res.body}`);
        assert.deepEqual(await observe(c, { light: true }), { status: before.status, many: before.many }, `${kind} cut to ${n}: state changed`);
      }
    }
    assert.deepEqual(await observe(c), before);
  });

  test('bit-flipped signed messages are refused (never 200, never 5xx), state unchanged', async () => {
    const before = await observe(c);
    const codes = new Set(['bad_magic', 'malformed', 'unsupported_version', 'wrong_kind', 'unknown_key', 'bad_signature', 'tenant_mismatch']);
    // d12 would apply now and s3 would load now: only the flipped bit stops them (a flip in the
    // tenant's name is refused as another tenant's message, 403, before the signature is checked)
    for (const [kind, m] of [['snapshot', s3], ['delta', d12], ['watermark', w3]]) {
      const positions = [];
      for (let i = 0; i < Math.min(m.length, 120); i++) positions.push(i);
      for (let i = 120; i < m.length; i += 3) positions.push(i);
      positions.push(m.length - 1);
      for (const i of positions) {
        const bit = i % 8;
        const res = await c.push(kind, flipBit(m, i, bit));
        const tenantFlip = res.status === 403 && res.json?.error?.code === 'tenant_mismatch';
        assert.ok(res.status === 400 || res.status === 401 || tenantFlip, `${kind} byte ${i} bit ${bit}: ${res.status} ${res.body}`);
        assert.ok(codes.has(res.json?.error?.code), `${kind} byte ${i} bit ${bit}: ${res.body}`);
        assert.deepEqual(await observe(c, { light: true }), { status: before.status, many: before.many }, `${kind} byte ${i} bit ${bit}: state changed`);
      }
    }
    assert.deepEqual(await observe(c), before);
  });

  test('POST delta answers 200 {epoch, applied: true}; the same delta again {applied: false}, state unchanged', async () => {
    const prev = assertOk(await c.status());
    const res = await c.push('delta', d12, { 'content-type': 'application/msgpack; charset=binary' });
    assert.deepEqual(assertOk(res), { epoch: 2, applied: true });
    const s = assertOk(await c.status());
    assert.equal(s.epoch, 2);
    assert.notEqual(s.digest, prev.digest);
    // confirmedAt: the largest issued_at among the applied messages
    assert.equal(s.confirmedAt, Math.max(prev.confirmedAt, issuedAtOf(d12)));
    assert.equal(assertOk(await atClock(s.confirmedAt + 1000, () => c.check('user:bob', 'write', 'doc:roadmap'))).reason, 'granted');
    const before = await observe(c);
    assert.deepEqual(assertOk(await c.push('delta', d12)), { epoch: 2, applied: false });
    assert.deepEqual(await observe(c), before);
  });

  test('older epochs are 409 rollback (snapshot and delta)', async () => {
    await refused('snapshot', s1, 409, 'rollback', { what: 'snapshot 1 at epoch 2' });
    await refused('snapshot', rotated.snapshot(M2, 1, at()), 409, 'rollback', { what: 'another snapshot at epoch 1' });
    await refused('delta', o.delta(M1, M1, 0, 1, at()).delta, 409, 'rollback', { what: 'delta 0 -> 1 at epoch 2' });
  });

  test('hostile watermarks are refused whole: the watermark does not rise', async () => {
    // carrying a forged delta
    await refused('watermark', o.watermark(3, stranger.delta(M2, M3, 2, 3, at()).delta, at()), 401, 'unknown_key', { what: 'carried delta by a stranger' });
    // carrying another tenant's delta
    // the package refuses to sign the rest; built and signed here
    await refused('watermark', craftWatermark(o, { watermark: 3, issuedAt: at(), delta: other.delta(OTHER(M2), OTHER(M3), 2, 3, at()).delta }), 403, 'tenant_mismatch', { what: 'carried delta of tenant other' });
    await refused('watermark', craftWatermark(o, { watermark: 4, issuedAt: at(), delta: d23 }), 400, 'invalid_delta', { what: 'watermark 4 carrying a delta to 3' });
    await refused('watermark', craftWatermark(o, { watermark: 3, issuedAt: at(), delta: s3 }), 400, 'wrong_kind', { what: 'carrying a snapshot' });
    await refused('watermark', craftWatermark(o, { watermark: 3, issuedAt: at(), delta: o.watermark(3, undefined, at()) }), 400, 'wrong_kind', { what: 'carrying a watermark' });
    await refused('watermark', craftWatermark(o, { watermark: 3, issuedAt: at(), delta: bytes('garbage') }), 400, 'bad_magic', { what: 'carrying garbage' });
    await refused('watermark', craftWatermark(o, { watermark: 3, issuedAt: at(), delta: new Uint8Array(0) }), 400, 'bad_magic', { what: 'carrying nothing' });
    await refused('watermark', craftWatermark(o, { watermark: 3, issuedAt: at(), delta: flipBit(d23, d23.length - 3, 0) }), 401, 'bad_signature', { what: 'carrying a damaged delta' });
    await refused('watermark', craftWatermark(o, { watermark: 3, issuedAt: at(), delta: d23.slice(0, 40) }), 400, 'malformed', { what: 'carrying a truncated delta' });
    await refused('watermark', craftWatermark(o, { tenant: 'other', watermark: 3, issuedAt: at(), delta: d23 }), 403, 'tenant_mismatch', { what: 'tenant other carrying our delta' });
  });

  test('POST watermark with its revocation answers 200 {watermark, epoch, delta: {applied: true}}', async () => {
    const prev = assertOk(await c.status());
    assert.deepEqual(assertOk(await c.push('watermark', w3)), { watermark: 3, epoch: 3, delta: { applied: true } });
    const s = assertOk(await c.status());
    assert.equal(s.epoch, 3);
    assert.equal(s.watermark, 3);
    assert.equal(s.stale, false);
    assert.equal(s.confirmedAt, Math.max(prev.confirmedAt, issuedAtOf(w3)));
    assert.equal(assertOk(await atClock(s.confirmedAt + 1000, () => c.check('user:alice', 'export', 'doc:roadmap'))).reason, 'suspended');
    // the delta it carried, alone: already applied
    const before = await observe(c);
    assert.deepEqual(assertOk(await c.push('delta', d23)), { epoch: 3, applied: false });
    assert.deepEqual(assertOk(await c.push('watermark', w3)), { watermark: 3, epoch: 3, delta: { applied: false } });
    assert.deepEqual(await observe(c), before);
  });

  test('after the revocation: the old state is refused everywhere', async () => {
    await refused('delta', d12, 409, 'rollback', { what: 'delta 1 -> 2 at epoch 3' });
    await refused('snapshot', s1, 409, 'rollback');
    await refused('snapshot', o.snapshot(M1, 3, at()), 409, 'epoch_conflict', { what: 'the pre-revocation model at epoch 3' });
    await refused('snapshot', s3, 409, 'already_applied', { what: 'snapshot of the held state' });
  });

  test('heartbeats: 200 {watermark, epoch} without `delta`; only confirmedAt moves; the watermark never falls', async () => {
    const before = assertOk(await c.status());
    const hb = o.watermark(0, undefined, at());
    assert.deepEqual(assertOk(await c.push('watermark', hb)), { watermark: 3, epoch: 3 });
    const s = assertOk(await c.status());
    assert.deepEqual({ ...s, confirmedAt: 0, authority: null, edge: null }, { ...before, confirmedAt: 0, authority: null, edge: null });
    assert.equal(s.confirmedAt, issuedAtOf(hb));
    assert.ok(s.confirmedAt > before.confirmedAt);
    assert.deepEqual(assertOk(await c.push('watermark', rotated.watermark(2, undefined, at()))), { watermark: 3, epoch: 3 });
    assert.equal(assertOk(await c.status()).watermark, 3);
  });

  test('a watermark above the held epoch makes the state stale: checks say stale_snapshot, lists are 503', async () => {
    // the carried delta starts at 6, the edge holds 3: the watermark still applies
    const w7 = o.watermark(7, o.delta(M3, M2, 6, 7, at()).delta, at());
    const res = assertOk(await c.push('watermark', w7));
    assert.equal(res.watermark, 7);
    assert.equal(res.epoch, 3);
    assert.equal(res.delta.applied, false);
    assert.equal(res.delta.error.code, 'epoch_gap');
    const s = assertOk(await c.status());
    assert.equal(s.stale, true);
    assert.equal(s.watermark, 7);
    const now = s.confirmedAt + 1000;
    assert.deepEqual(assertOk(await c.check('user:alice', 'read', 'org:acme', { now })), { allowed: false, reason: 'stale_snapshot', epoch: 3, watermark: 7, tier: 'low' });
    assertError(await c.get(`resources?subject=user:alice&action=read&now=${now}`), 503, 'stale_snapshot');
    assertError(await c.get(`subjects?resource=org:acme&action=read&now=${now}`), 503, 'stale_snapshot');
    // refusals still change nothing while stale
    await refused('snapshot', o.snapshot(M3, 2, at()), 409, 'rollback');
    await refused('delta', o.delta(M3, M2, 5, 6, at()).delta, 409, 'epoch_gap');
    await refused('snapshot', stranger.snapshot(M3, 8, at()), 401, 'unknown_key');
  });

  test('a newer snapshot recovers; a snapshot pushed twice is applied once', async () => {
    const s8 = o.snapshot(M2, 8, at());
    assert.deepEqual(assertOk(await c.push('snapshot', s8)), { epoch: 8 });
    const s = assertOk(await c.status());
    assert.equal(s.epoch, 8);
    assert.equal(s.stale, false);
    assert.deepEqual(assertOk(await atClock(s.confirmedAt + 1000, () => c.check('user:alice', 'read', 'org:acme'))), ALICE_READ_ORG(8, 7));
    await refused('snapshot', s8, 409, 'already_applied');
    await refused('delta', d23, 409, 'rollback');
  });
});

// =============================================================================================
describe('bearer token (CHECK_TOKEN) and tenant list (TENANTS)', () => {
  let edge;
  const TOKEN = 'tok-3f9a';
  const o = origin();
  let issuedAt;

  before(async () => {
    edge = await startEdge({ vars: { ...WHAT_IF, ORIGIN_PUBLIC_KEYS: o.keys.publicKey, CHECK_TOKEN: TOKEN, TENANTS: 'acme, other' } });
    issuedAt = Date.now();
    // push endpoints need no token
    assert.deepEqual(assertOk(await client(edge).push('snapshot', o.snapshot(M1, 1, issuedAt))), { epoch: 1 });
  });
  after(async () => {
    release();
    await edge?.dispose();
  });

  const reads = (now) => [
    ['check', { method: 'POST', body: JSON.stringify({ subject: 'user:alice', action: 'read', resource: 'org:acme', context: { now } }), headers: JSON_TYPE }],
    ['check-many', { method: 'POST', body: JSON.stringify({ requests: [['user:alice', 'read', 'org:acme']], context: { now } }), headers: JSON_TYPE }],
    [`resources?subject=user:alice&action=read&now=${now}`, {}],
    [`subjects?resource=org:acme&action=read&now=${now}`, {}],
    ['status', {}],
  ];

  test('read endpoints without the right bearer token are 401 unauthorized with www-authenticate: Bearer', async () => {
    const auths = [undefined, '', 'Bearer', 'Bearer ', `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Bearer  ${TOKEN}`, `Bearer\t${TOKEN}`,
      `Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}`, TOKEN, `Token ${TOKEN}`, `Bearer ${TOKEN.toUpperCase()}`, 'Bearer x', `Bearer ${TOKEN}${TOKEN}`];
    for (const [p, init] of reads(issuedAt + 1000)) {
      for (const a of auths) {
        const headers = { ...(init.headers ?? {}), ...(a === undefined ? {} : { authorization: a }) };
        const res = await edge.fetch(`/v1/acme/${p}`, { ...init, headers });
        assertError(res, 401, 'unauthorized', `${p} with ${JSON.stringify(a)}`);
        assert.equal(res.headers.get('www-authenticate'), 'Bearer', p);
        assert.ok(!res.body.includes(TOKEN), 'the token never leaks');
      }
    }
  });

  test('a refused token is refused before the body is read (no parse error leaks)', async () => {
    for (const [op, body, ct] of [['check', '{not json', 'application/json'], ['check-many', '{"requests": 1}', 'application/json'], ['check', '{}', 'text/plain']]) {
      assertError(await edge.fetch(`/v1/acme/${op}`, { method: 'POST', headers: { 'content-type': ct }, body }), 401, 'unauthorized', op);
    }
  });

  test('the right token opens every read endpoint', async () => {
    const now = issuedAt + 1000;
    const expect = [ALICE_READ_ORG(1, 0), { decisions: [ALICE_READ_ORG(1, 0)] }, { resources: ['doc:roadmap', 'org:acme', 'workspace:eng'] }, { subjects: ['user:alice'] }];
    // the scheme in any case (RFC 7235), the token exactly
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEARer']) {
      const got = [];
      for (const [p, init] of reads(now)) {
        const res = await edge.fetch(`/v1/acme/${p}`, { ...init, headers: { ...(init.headers ?? {}), authorization: `${scheme} ${TOKEN}` } });
        got.push(assertOk(res, `${scheme} ${p}`));
      }
      assert.deepEqual(got.slice(0, 4), expect);
      assert.equal(got[4].epoch, 1);
    }
    const c = client(edge, { token: TOKEN });
    assert.equal(assertOk(await c.status()).tenant, 'acme');
  });

  test('push endpoints and /health need no token (and ignore a wrong one)', async () => {
    const c = client(edge);
    assert.deepEqual(assertOk(await edge.fetch('/health')), { ok: true });
    assert.deepEqual(assertOk(await edge.fetch('/health', { headers: { authorization: 'Bearer nope' } })), { ok: true });
    assert.deepEqual(assertOk(await c.push('delta', o.delta(M1, M2, 1, 2, Date.now()).delta)), { epoch: 2, applied: true });
    assert.deepEqual(assertOk(await c.push('watermark', o.watermark(2, undefined, Date.now()), { ...MSGPACK, authorization: 'Bearer nope' })), { watermark: 2, epoch: 2 });
    assert.deepEqual(assertOk(await c.push('snapshot', o.snapshot(M3, 3, Date.now()))), { epoch: 3 });
    // push refusals are the messages' own errors, never 401 unauthorized
    assertError(await c.push('snapshot', bytes('junk')), 400, 'bad_magic');
    assertError(await c.push('delta', origin().delta(M1, M2, 3, 4).delta), 401, 'unknown_key');
    assert.equal(assertOk(await client(edge, { token: TOKEN }).status()).epoch, 3);
  });

  test('a tenant not in TENANTS is 404 unknown_tenant on every route; listed ones are served', async () => {
    for (const t of ['zeta', 'acm', 'acme2', 'other-x', 'a'.repeat(64)]) {
      for (const [op, method] of ROUTES) {
        const init = method === 'GET' ? {} : { method, headers: op.startsWith('check') ? JSON_TYPE : MSGPACK, body: op.startsWith('check') ? '{}' : new Uint8Array(8) };
        init.headers = { ...(init.headers ?? {}), authorization: `Bearer ${TOKEN}` };
        assertError(await edge.fetch(`/v1/${t}/${op}`, init), 404, 'unknown_tenant', `${method} /v1/${t}/${op}`);
      }
    }
    // an invalid tenant is still 400 invalid_tenant, not unknown_tenant
    assertError(await edge.fetch('/v1/ZETA/status', { headers: { authorization: `Bearer ${TOKEN}` } }), 400, 'invalid_tenant');
    assertError(await edge.fetch('/v1/ac%2Fme/status', { headers: { authorization: `Bearer ${TOKEN}` } }), 400, 'invalid_tenant');
    const s = assertOk(await client(edge, { tenant: 'other', token: TOKEN }).status());
    assert.equal(s.tenant, 'other');
    assert.equal(s.epoch, null);
  });
});

// =============================================================================================
describe('configured limits (MAX_* variables)', () => {
  let edge;
  let c;
  const o = origin();
  let issuedAt;
  const LIMITS = { MAX_CHECK_BYTES: '200', MAX_BATCH_BYTES: '600', MAX_BATCH: '3', MAX_SNAPSHOT_BYTES: '1000', MAX_MESSAGE_BYTES: '700' };
  // a model whose signed snapshot is over 1,000 bytes, and whose delta from M1 is over 700
  const BIG = model((m) => {
    for (let i = 0; i < 60; i++) m.resources.push({ id: `doc:file-${String(i).padStart(3, '0')}`, parent: 'workspace:eng' });
  });

  before(async () => {
    edge = await startEdge({ vars: { ...WHAT_IF, ORIGIN_PUBLIC_KEYS: o.keys.publicKey, ...LIMITS }, clocked: true });
    c = client(edge);
    issuedAt = Date.now();
    const s1 = o.snapshot(M1, 1, issuedAt);
    assert.ok(s1.length <= 1000, `the example snapshot is ${s1.length} bytes`);
    assert.deepEqual(assertOk(await c.push('snapshot', s1)), { epoch: 1 });
  });
  after(async () => {
    release();
    await edge?.dispose();
  });

  test('MAX_CHECK_BYTES: at the limit answered, over it 413 (size, chunked, lying header)', async () => {
    const json = JSON.stringify({ subject: 'user:alice', action: 'read', resource: 'org:acme', context: { now: issuedAt + 1000 } });
    const exact = json.padEnd(200, ' ');
    assert.deepEqual(assertOk(await edge.fetch('/v1/acme/check', { method: 'POST', headers: JSON_TYPE, body: exact })), ALICE_READ_ORG(1, 0));
    assertError(await edge.fetch('/v1/acme/check', { method: 'POST', headers: JSON_TYPE, body: `${exact} ` }), 413, 'too_large');
    assertError(await edge.fetch('/v1/acme/check', { method: 'POST', headers: JSON_TYPE, body: chunked(201, { head: bytes(json), chunk: 7 }), duplex: 'half' }), 413, 'too_large', 'chunked');
    assertError(await edge.fetch('/v1/acme/check', lyingInit('POST', 'application/json', 201)), 413, 'too_large', 'lying header');
    // a long id in a body under the limit is a decision, not a 413
    assert.equal(assertOk(await c.check(`user:${'a'.repeat(100)}`, 'read', 'org:acme', { now: issuedAt + 1000 })).reason, 'no_grant');
  });

  test('MAX_BATCH: 3 requests answered, 4 is 413 batch_too_large; MAX_BATCH_BYTES: over 600 bytes is 413 too_large', async () => {
    const now = issuedAt + 1000;
    const r = ['user:alice', 'read', 'org:acme'];
    assert.equal(assertOk(await c.checkMany([r, r, r], { now })).decisions.length, 3);
    const four = await c.checkMany([r, r, r, r], { now });
    assertError(four, 413, 'batch_too_large');
    assert.match(four.json.error.message, /\b3\b/);
    const body = JSON.stringify({ requests: [r], context: { now } });
    assert.equal(assertOk(await edge.fetch('/v1/acme/check-many', { method: 'POST', headers: JSON_TYPE, body: body.padEnd(600, ' ') })).decisions.length, 1);
    assertError(await edge.fetch('/v1/acme/check-many', { method: 'POST', headers: JSON_TYPE, body: body.padEnd(601, ' ') }), 413, 'too_large');
    assertError(await edge.fetch('/v1/acme/check-many', { method: 'POST', headers: JSON_TYPE, body: chunked(601, { head: bytes(body), chunk: 50 }), duplex: 'half' }), 413, 'too_large', 'chunked');
    assertError(await edge.fetch('/v1/acme/check-many', lyingInit('POST', 'application/json', 601)), 413, 'too_large', 'lying header');
    // the size limit applies before the count: 50 short requests in 700 bytes
    assertError(await c.checkMany(Array.from({ length: 50 }, () => ['a:b', 'c', 'd:e']), { now }), 413, 'too_large');
  });

  test('MAX_SNAPSHOT_BYTES / MAX_MESSAGE_BYTES: valid signed messages over them are 413, state unchanged', async () => {
    const before = await observe(c);
    const big = o.snapshot(BIG, 2, Date.now());
    assert.ok(big.length > 1000, `${big.length}`);
    const bigDelta = o.delta(M1, BIG, 1, 2, Date.now()).delta;
    assert.ok(bigDelta.length > 700, `${bigDelta.length}`);
    const bigWatermark = o.watermark(2, bigDelta, Date.now());
    assertError(await c.push('snapshot', big), 413, 'too_large', 'snapshot');
    assertError(await edge.fetch('/v1/acme/snapshot', { method: 'PUT', headers: MSGPACK, body: streamOf(big), duplex: 'half' }), 413, 'too_large', 'snapshot, chunked');
    assertError(await edge.fetch('/v1/acme/snapshot', lyingInit('PUT', 'application/msgpack', 1001)), 413, 'too_large', 'snapshot, lying header');
    assertError(await c.push('delta', bigDelta), 413, 'too_large', 'delta');
    assertError(await edge.fetch('/v1/acme/delta', { method: 'POST', headers: MSGPACK, body: streamOf(bigDelta), duplex: 'half' }), 413, 'too_large', 'delta, chunked');
    assertError(await c.push('watermark', bigWatermark), 413, 'too_large', 'watermark');
    assertError(await edge.fetch('/v1/acme/watermark', lyingInit('POST', 'application/msgpack', 701)), 413, 'too_large', 'watermark, lying header');
    assert.deepEqual(await observe(c), before);
    // under the limits, the same kinds apply (the limit is per kind: a 701..1000-byte snapshot is fine)
    const s2 = o.snapshot(M2, 2, Date.now());
    assert.ok(s2.length <= 1000);
    assert.deepEqual(assertOk(await edge.fetch('/v1/acme/snapshot', { method: 'PUT', headers: MSGPACK, body: streamOf(s2), duplex: 'half' })), { epoch: 2 });
    const d = o.delta(M2, M3, 2, 3, Date.now()).delta;
    assert.ok(d.length <= 700);
    assert.deepEqual(assertOk(await c.push('watermark', o.watermark(3, d, Date.now()))), { watermark: 3, epoch: 3, delta: { applied: true } });
  });
});


describe('the admin page is served by the Worker itself, not by static assets (crates/worker/entry.mjs)', () => {
  let edge;
  const page = readdirSync(path.join(ASSETS, 'admin'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(path.join(ASSETS, 'admin'), path.join(e.parentPath ?? e.path, e.name)).split(path.sep).join('/'));
  before(async () => {
    edge = await startEdge({ vars: { ORIGIN_PUBLIC_KEYS: origin().keys.publicKey } });
  });
  after(async () => {
    await edge?.dispose();
  });

  test('wrangler.toml names the entry and has no static assets, whose router every request would pass', () => {
    const toml = readFileSync(path.join(REPO_DIR, 'wrangler.toml'), 'utf8');
    assert.match(toml, /^main = "build\/worker\.mjs"$/m);
    assert.doesNotMatch(toml, /^\[assets\]/m);
    assert.doesNotMatch(toml, /run_worker_first/);
  });

  test('every file of the assembled page, byte for byte, with its media type, ETag and the page headers', async () => {
    assert.ok(page.length > 10 && page.includes('index.html') && page.includes('pkg/dist/edge_authz_bg.wasm'), page.join());
    const types = { html: 'text/html', js: 'text/javascript', mjs: 'text/javascript', css: 'text/css', json: 'application/json', wasm: 'application/wasm' };
    const etags = new Set();
    for (const name of page) {
      const url = name === 'index.html' ? '/admin/' : `/admin/${name}`;
      const r = await edge.fetch(url);
      assert.equal(r.status, 200, url);
      const want = readFileSync(path.join(ASSETS, 'admin', name));
      assert.ok(r.bytes.equals(want), `${url}: not the file's bytes`);
      assert.equal(r.headers.get('content-type').split(';')[0], types[name.split('.').pop()], url);
      assert.equal(r.headers.get('x-frame-options'), 'DENY', url);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff', url);
      assert.match(r.headers.get('content-security-policy'), /frame-ancestors 'none'/, url);
      assert.match(r.headers.get('etag'), /^"[A-Za-z0-9_-]{22}"$/, url);
      etags.add(r.headers.get('etag'));
    }
    assert.equal(etags.size, page.length, 'two files share an ETag');
  });

  test('revalidation answers 304 for the current ETag and 200 for another', async () => {
    const first = await edge.fetch('/admin/app.js');
    const etag = first.headers.get('etag');
    for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const r = await edge.fetch('/admin/app.js', { headers: { 'if-none-match': inm } });
      assert.equal(r.status, 304, inm);
      assert.equal(r.body, '');
      assert.equal(r.headers.get('etag'), etag);
      assert.equal(r.headers.get('x-frame-options'), 'DENY');
    }
    assert.equal((await edge.fetch('/admin/app.js', { headers: { 'if-none-match': '"other"' } })).status, 200);
  });

  test('/admin and /admin/index.html redirect to /admin/ with the query; HEAD, other methods, unknown files', async () => {
    for (const p of ['/admin', '/admin/index.html']) {
      const r = await edge.fetch(`${p}?tenant=acme`, { redirect: 'manual' });
      assert.equal(r.status, 307, p);
      assert.equal(r.headers.get('location'), '/admin/?tenant=acme', p);
    }
    const head = await edge.fetch('/admin/', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(head.headers.get('content-type'), 'text/html; charset=utf-8');
    const post = await edge.fetch('/admin/', { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    for (const p of ['/admin/nope.js', '/admin/lib/', '/admin/%61pp.js', '/admin//app.js', '/admin/app.js/']) {
      const r = await edge.fetch(p);
      assert.equal(r.status, 404, p);
      assert.equal(r.headers.get('x-frame-options'), 'DENY', p);
    }
    // Dot segments are resolved before the path is read: this one leaves /admin, and no file of the
    // repository is anywhere to be served.
    const up = await edge.fetch('/admin/../wrangler.toml');
    assert.equal(up.status, 404);
    assert.doesNotMatch(up.body, /compatibility_date/);
  });

  test('every other path is the API\'s, /administrator and /v1 among them', async () => {
    const status = await edge.fetch('/v1/acme/status');
    assert.equal(status.status, 200, status.body);
    assert.equal(status.json.tenant, 'acme');
    assert.ok(status.headers.get('x-request-id'));
    assert.deepEqual(assertOk(await edge.fetch('/health')), { ok: true });
    for (const p of ['/administrator', '/adminx/app.js', '/v1/admin']) {
      const r = await edge.fetch(p);
      assert.ok(r.json?.error?.code, `${p}: not the API's error (${r.status} ${r.body.slice(0, 80)})`);
      assert.equal(r.headers.get('x-frame-options'), null, p);
    }
    // A tenant named admin is the API's too.
    assert.equal((await edge.fetch('/v1/admin/status')).json.tenant, 'admin');
  });
});
