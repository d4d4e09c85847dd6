// ORIGIN_PUBLIC_KEYS and typed keys, the built Worker in workerd (Miniflare): typed
// (`edge-authz-public:`) and bare base64 public keys are trusted alike; a secret key there, typed
// (`edge-authz-secret:`), is refused on every /v1 route with 500 `misconfigured`, the message
// naming the variable and `wrong_key_kind` and never echoing the key.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { client, model, origin, startEdge } from './edge.mjs';

const SECRET = 'edge-authz-secret:';

async function withEdge(keys, f) {
  const edge = await startEdge({ vars: { ORIGIN_PUBLIC_KEYS: keys } });
  try {
    await f(edge, client(edge));
  } finally {
    await edge.dispose();
  }
}

describe('ORIGIN_PUBLIC_KEYS: typed and bare keys', () => {
  for (const [name, keys] of [
    ['typed', (o) => o.keys.publicKey],
    ['bare', (o) => o.keys.publicKey.slice('edge-authz-public:'.length)],
    ['typed and bare in one list', (o) => ` ${origin().keys.publicKey.slice(18)} , ${o.keys.publicKey}`],
  ]) {
    test(`${name}: trusted`, async () => {
      const o = origin();
      assert.ok(o.keys.publicKey.startsWith('edge-authz-public:'));
      await withEdge(keys(o), async (edge, c) => {
        const pushed = await c.push('snapshot', o.snapshot(model(), 1));
        assert.equal(pushed.status, 200, pushed.body);
        const d = await c.check('user:alice', 'read', 'doc:roadmap');
        assert.equal(d.status, 200, d.body);
        assert.equal(d.json.allowed, true, d.body);
      });
    });
  }

  for (const [name, keys] of [
    ['a typed secret key', (o) => o.keys.secretKey],
    ['a public key and a typed secret key', (o) => `${o.keys.publicKey},${o.keys.secretKey}`],
  ]) {
    test(`${name}: 500 misconfigured, wrong_key_kind named, the key not echoed, on every /v1 route`, async () => {
      const o = origin();
      const secret = o.keys.secretKey.slice(SECRET.length);
      await withEdge(keys(o), async (edge, c) => {
        for (const res of [
          await c.push('snapshot', o.snapshot(model(), 1)),
          await c.check('user:alice', 'read', 'doc:roadmap'),
          await c.checkMany([['user:alice', 'read', 'doc:roadmap']]),
          await c.status(),
          await c.get('resources?subject=user:alice&action=read'),
        ]) {
          const label = `${res.status} ${res.body}`;
          assert.equal(res.status, 500, label);
          assert.deepEqual(Object.keys(res.json.error).sort(), ['code', 'message'], label);
          assert.equal(res.json.error.code, 'misconfigured', label);
          const m = res.json.error.message;
          assert.match(m, /^ORIGIN_PUBLIC_KEYS: a secret key was given where a public key is expected/, label);
          assert.match(m, /\[wrong_key_kind\]$/, label);
          assert.ok(!res.body.includes(secret), `the answer echoes the secret key: ${label}`);
          assert.ok(!JSON.stringify(res.headers).includes(secret));
        }
        assert.ok(!JSON.stringify(edge.logs).includes(secret), 'the logs echo the secret key');
        assert.equal((await edge.fetch('/health')).status, 200);
      });
    });
  }
});
