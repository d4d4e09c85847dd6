// CORS on the Worker's read endpoints (`CORS_ORIGINS`), in workerd through Miniflare (edge.mjs's
// startEdge; one runtime per describe block):
// - off (the default): no CORS header on any answer, a preflight OPTIONS is 405 as before;
// - a list of origins: a preflight from a listed origin is 204 with the route's methods, the
//   headers a browser may send and a max-age; from any other origin (or none) it is 405 as
//   before; read answers (200, 401, 405, 503 and 400 alike) to a listed origin carry
//   access-control-allow-origin (that origin), vary: Origin and access-control-expose-headers;
//   answers to other origins carry none; push endpoints never carry any, whatever the origin;
// - `*`: any origin, answered `*`;
// - a malformed list: 500 misconfigured naming CORS_ORIGINS and the entry, on every /v1 route.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EXAMPLE, JSON_TYPE, MSGPACK, origin, startEdge } from './edge.mjs';

const TOKEN = 'cors-test-token';
const ADMIN = 'https://admin.example';
const LOCAL = 'http://localhost:8788';
const AUTH = { authorization: `Bearer ${TOKEN}` };

/** Every read endpoint: [op, method, a request body for it]. */
const READS = [
  ['check', 'POST', JSON.stringify({ subject: 'user:alice', action: 'read', resource: 'org:acme' })],
  ['check-many', 'POST', JSON.stringify({ requests: [['user:alice', 'read', 'org:acme']] })],
  ['resources?subject=user:alice&action=read', 'GET'],
  ['subjects?resource=org:acme&action=read', 'GET'],
  ['status', 'GET'],
];
const PUSHES = [
  ['snapshot', 'PUT'],
  ['delta', 'POST'],
  ['watermark', 'POST'],
];

function read(edge, [op, method, body], headers = {}, tenant = 'acme') {
  return edge.fetch(`/v1/${tenant}/${op}`, {
    method,
    headers: { ...(body ? JSON_TYPE : {}), ...headers },
    ...(body ? { body } : {}),
  });
}

function preflight(edge, path, from, method = 'POST') {
  const headers = { 'access-control-request-method': method, 'access-control-request-headers': 'authorization, content-type' };
  if (from) headers.origin = from;
  return edge.fetch(path, { method: 'OPTIONS', headers });
}

/** The CORS headers of an answer (and vary), by name; absent ones are left out. */
function corsHeaders(res) {
  const out = {};
  for (const [k, v] of res.headers) {
    if (k.startsWith('access-control-') || k === 'vary') out[k] = v;
  }
  return out;
}

/** The headers an answer to an allowed origin carries (`allow` is what it answers it with). */
const ANSWER = (allow) => ({
  'access-control-allow-origin': allow,
  'access-control-expose-headers': 'x-request-id',
  vary: 'Origin',
});

const PREFLIGHT = (allow, methods) => ({
  ...ANSWER(allow),
  'access-control-allow-methods': methods,
  'access-control-allow-headers': 'authorization, content-type, x-request-id',
  'access-control-max-age': '600',
});

function assert405(res, allow, what) {
  assert.equal(res.status, 405, `${what} -> ${res.status} ${res.body.slice(0, 200)}`);
  assert.equal(res.json?.error?.code, 'method_not_allowed', what);
  assert.equal(res.headers.get('allow'), allow, what);
}

const methodOf = (op) => (['resources', 'subjects', 'status'].some((p) => op.startsWith(p)) ? 'GET' : 'POST');

describe('CORS off (the default)', () => {
  let edge;
  const o = origin();
  before(async () => {
    edge = await startEdge({ vars: { ORIGIN_PUBLIC_KEYS: o.keys.publicKey } });
  });
  after(() => edge?.dispose());

  test('no CORS header on any answer; a preflight is 405 method_not_allowed as before', async () => {
    for (const r of READS) {
      const res = await read(edge, r, { origin: ADMIN });
      assert.deepEqual(corsHeaders(res), {}, `${r[0]} ${res.status}`);
      const op = r[0].split('?')[0];
      const pre = await preflight(edge, `/v1/acme/${op}`, ADMIN, methodOf(op));
      assert405(pre, methodOf(op), `OPTIONS ${op}`);
      assert.deepEqual(corsHeaders(pre), {}, `OPTIONS ${op}`);
    }
  });

  test('an empty or blank CORS_ORIGINS is off too', async () => {
    for (const value of ['', '  ', ' , ']) {
      const e = await startEdge({ vars: { ORIGIN_PUBLIC_KEYS: o.keys.publicKey, CORS_ORIGINS: value } });
      try {
        const res = await e.fetch('/v1/acme/status', { headers: { origin: ADMIN } });
        assert.equal(res.status, 200, `${JSON.stringify(value)}: ${res.body}`);
        assert.deepEqual(corsHeaders(res), {}, JSON.stringify(value));
        assert405(await preflight(e, '/v1/acme/status', ADMIN, 'GET'), 'GET', JSON.stringify(value));
      } finally {
        await e.dispose();
      }
    }
  });
});

describe('CORS_ORIGINS lists origins (with a CHECK_TOKEN)', () => {
  let edge;
  const o = origin();
  before(async () => {
    edge = await startEdge({
      vars: { ORIGIN_PUBLIC_KEYS: o.keys.publicKey, CHECK_TOKEN: TOKEN, CORS_ORIGINS: ` ${ADMIN}, HTTP://LocalHost:8788 ` },
    });
    const res = await edge.fetch('/v1/acme/snapshot', { method: 'PUT', headers: MSGPACK, body: o.snapshot(EXAMPLE, 1) });
    assert.equal(res.status, 200, res.body);
  });
  after(() => edge?.dispose());

  test('a preflight from a listed origin is 204 with the methods and headers a browser may use', async () => {
    for (const from of [ADMIN, LOCAL]) {
      for (const op of ['check', 'check-many']) {
        const res = await preflight(edge, `/v1/acme/${op}`, from, 'POST');
        assert.equal(res.status, 204, `${op}: ${res.body}`);
        assert.equal(res.body, '');
        assert.deepEqual(corsHeaders(res), PREFLIGHT(from, 'POST, OPTIONS'), op);
        assert.ok(res.headers.get('x-request-id'));
      }
      for (const op of ['resources', 'subjects', 'status']) {
        const res = await preflight(edge, `/v1/acme/${op}?x=1`, from, 'GET');
        assert.equal(res.status, 204, `${op}: ${res.body}`);
        assert.deepEqual(corsHeaders(res), PREFLIGHT(from, 'GET, OPTIONS'), op);
      }
    }
    // A preflight carries no credentials: no token needed, and any tenant path is answered.
    assert.equal((await preflight(edge, '/v1/other/status', ADMIN, 'GET')).status, 204);
  });

  test('a preflight from another origin, or without one, is 405 method_not_allowed as before', async () => {
    const others = ['https://evil.example', 'http://admin.example', 'https://admin.example:8443', 'https://admin.example.evil.com',
      'http://localhost:8789', 'null', `${ADMIN}/`, undefined];
    for (const from of others) {
      for (const op of ['check', 'status']) {
        const res = await preflight(edge, `/v1/acme/${op}`, from, methodOf(op));
        assert405(res, methodOf(op), `${from} OPTIONS ${op}`);
        assert.deepEqual(corsHeaders(res), {}, `${from} OPTIONS ${op}`);
      }
    }
  });

  test('read answers to a listed origin carry the CORS headers: 200s', async () => {
    for (const from of [ADMIN, LOCAL]) {
      for (const r of READS) {
        const res = await read(edge, r, { origin: from, ...AUTH });
        assert.equal(res.status, 200, `${r[0]}: ${res.body}`);
        assert.deepEqual(corsHeaders(res), ANSWER(from), r[0]);
        assert.ok(res.headers.get('x-request-id'), r[0]);
      }
    }
    const s = await read(edge, READS[4], { origin: ADMIN, ...AUTH });
    assert.deepEqual(s.json.actions, { export: 'high', read: 'low', write: 'standard' });
  });

  test('read answers to a listed origin carry the CORS headers: errors (401, 400, 405, 503)', async () => {
    for (const r of READS) {
      const res = await read(edge, r, { origin: ADMIN });
      assert.equal(res.status, 401, `${r[0]}: ${res.body}`);
      assert.equal(res.json.error.code, 'unauthorized');
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      assert.deepEqual(corsHeaders(res), ANSWER(ADMIN), `401 ${r[0]}`);
    }
    const bad = await read(edge, ['check', 'POST', '{"subject":1}'], { origin: ADMIN, ...AUTH });
    assert.equal(bad.status, 400, bad.body);
    assert.deepEqual(corsHeaders(bad), ANSWER(ADMIN), '400');
    const wrongMethod = await edge.fetch('/v1/acme/check', { method: 'DELETE', headers: { origin: ADMIN, ...AUTH } });
    assert405(wrongMethod, 'POST', 'DELETE check');
    assert.deepEqual(corsHeaders(wrongMethod), ANSWER(ADMIN), '405');
    const empty = await read(edge, READS[2], { origin: ADMIN, ...AUTH }, 'empty');
    assert.equal(empty.status, 503, empty.body);
    assert.deepEqual(corsHeaders(empty), ANSWER(ADMIN), '503');
  });

  test('read answers to another origin, or to no origin, carry no CORS header', async () => {
    for (const headers of [{ origin: 'https://evil.example' }, { origin: 'null' }, {}]) {
      for (const r of READS) {
        const ok = await read(edge, r, { ...headers, ...AUTH });
        assert.equal(ok.status, 200, ok.body);
        assert.deepEqual(corsHeaders(ok), {}, `${JSON.stringify(headers)} ${r[0]}`);
        const denied = await read(edge, r, headers);
        assert.equal(denied.status, 401, denied.body);
        assert.deepEqual(corsHeaders(denied), {}, `${JSON.stringify(headers)} 401 ${r[0]}`);
      }
    }
  });

  test('push endpoints never carry CORS headers, and their preflights stay 405', async () => {
    const ok = await edge.fetch('/v1/acme/snapshot', { method: 'PUT', headers: { ...MSGPACK, origin: ADMIN }, body: o.snapshot(EXAMPLE, 2) });
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(corsHeaders(ok), {}, 'PUT snapshot 200');
    for (const [op, method] of PUSHES) {
      const res = await edge.fetch(`/v1/acme/${op}`, { method, headers: { ...MSGPACK, origin: ADMIN }, body: new Uint8Array([1, 2, 3]) });
      assert.equal(res.status, 400, `${op}: ${res.body}`);
      assert.deepEqual(corsHeaders(res), {}, op);
      const pre = await preflight(edge, `/v1/acme/${op}`, ADMIN, method);
      assert405(pre, method, `OPTIONS ${op}`);
      assert.deepEqual(corsHeaders(pre), {}, `OPTIONS ${op}`);
    }
    const health = await preflight(edge, '/health', ADMIN, 'GET');
    assert405(health, 'GET, HEAD', 'OPTIONS /health');
    assert.deepEqual(corsHeaders(health), {});
    assert.deepEqual(corsHeaders(await edge.fetch('/health', { headers: { origin: ADMIN } })), {});
  });
});

describe('CORS_ORIGINS = *', () => {
  let edge;
  const o = origin();
  before(async () => {
    edge = await startEdge({ vars: { ORIGIN_PUBLIC_KEYS: o.keys.publicKey, CHECK_TOKEN: TOKEN, CORS_ORIGINS: '*' } });
  });
  after(() => edge?.dispose());

  test('any origin: preflights are 204 and answers carry access-control-allow-origin: *', async () => {
    for (const from of [ADMIN, 'https://anyone.example:9999', 'null']) {
      const pre = await preflight(edge, '/v1/acme/check', from, 'POST');
      assert.equal(pre.status, 204, pre.body);
      assert.deepEqual(corsHeaders(pre), PREFLIGHT('*', 'POST, OPTIONS'), from);
      for (const r of READS) {
        const denied = await read(edge, r, { origin: from });
        assert.equal(denied.status, 401, denied.body);
        assert.deepEqual(corsHeaders(denied), ANSWER('*'), `${from} 401 ${r[0]}`);
      }
      const s = await read(edge, READS[4], { origin: from, ...AUTH });
      assert.equal(s.status, 200, s.body);
      assert.deepEqual(corsHeaders(s), ANSWER('*'), `${from} status`);
    }
  });

  test('no Origin, no CORS header; push endpoints never', async () => {
    assert.deepEqual(corsHeaders(await read(edge, READS[4], AUTH)), {});
    assert405(await preflight(edge, '/v1/acme/status', undefined, 'GET'), 'GET', 'OPTIONS without Origin');
    const push = await edge.fetch('/v1/acme/snapshot', { method: 'PUT', headers: { ...MSGPACK, origin: ADMIN }, body: o.snapshot(EXAMPLE, 1) });
    assert.equal(push.status, 200, push.body);
    assert.deepEqual(corsHeaders(push), {});
    assert405(await preflight(edge, '/v1/acme/delta', ADMIN, 'POST'), 'POST', 'OPTIONS delta');
  });
});

describe('a malformed CORS_ORIGINS is a configuration error', () => {
  const o = origin();
  for (const [value, entry] of [
    [`${ADMIN}/`, `${ADMIN}/`],
    [`${LOCAL}, https://admin.example/admin`, 'https://admin.example/admin'],
    ['admin.example', 'admin.example'],
  ]) {
    test(`CORS_ORIGINS=${JSON.stringify(value)}: 500 misconfigured naming the entry, on every /v1 route`, async () => {
      const edge = await startEdge({ vars: { ORIGIN_PUBLIC_KEYS: o.keys.publicKey, CORS_ORIGINS: value } });
      try {
        const answers = [
          ...(await Promise.all(READS.map((r) => read(edge, r, { origin: ADMIN })))),
          await read(edge, READS[4]),
          await preflight(edge, '/v1/acme/check', ADMIN, 'POST'),
          await edge.fetch('/v1/acme/snapshot', { method: 'PUT', headers: MSGPACK, body: o.snapshot(EXAMPLE, 1) }),
        ];
        for (const res of answers) {
          assert.equal(res.status, 500, res.body);
          assert.equal(res.json.error.code, 'misconfigured', res.body);
          assert.match(res.json.error.message, /CORS_ORIGINS/);
          assert.ok(res.json.error.message.includes(`\`${entry}\``), res.json.error.message);
          assert.deepEqual(corsHeaders(res), {});
        }
      } finally {
        await edge.dispose();
      }
    });
  }
});
