// The Worker's limits that tests/js/worker-routes.test.mjs does not already cover (it covers the
// body limits MAX_CHECK_BYTES, MAX_BATCH_BYTES, MAX_BATCH, MAX_SNAPSHOT_BYTES, MAX_MESSAGE_BYTES,
// their defaults and their variables), in workerd through Miniflare (edge.mjs's startEdge):
//
// - MAX_TENANTS (32 per isolate, least recently used dropped): 32 tenants stay decoded, the 33rd
//   drops the least recently used one, which then syncs again from its Durable Object and answers
//   exactly as before (same epoch, digest and decisions; its decision counters start again);
// - a limit variable that is not a number: 500 `misconfigured` naming it, on every /v1 route;
// - a limit variable raised past the core's own limit (64 MiB per message): the authority still
//   refuses a bigger message, 413 `too_large`, state unchanged;
// - a content limit enforced by the authority itself (resource depth 64): a signed snapshot past
//   it, which the origin functions refuse to sign, is 400 `invalid_snapshot` naming the limit,
//   state unchanged;
// - group nesting past MAX_GROUP_DEPTH (255), which only an index build finds (the authority
//   builds each state's index to check it, then keeps only the content): 400 `invalid_snapshot`
//   naming the limit, state unchanged, every isolate answering on from the held epoch;
// - MAX_CLOCK_SKEW_MS (1 s): a push issued further in the authority's future is 400 `clock_skew`.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { client, model, origin, startEdge, WHAT_IF } from './edge.mjs';
import { patchSigned, prefix } from './msgpack.mjs';

const MIB = 1024 * 1024;

/** Asserts an error answer (docs/http.md, "Errors"): status, code, `{error: {code, message}}` and nothing else. */
function assertError(res, status, code, what = '') {
  const label = `${what} -> ${res.status} ${res.body.slice(0, 300)}`;
  assert.equal(res.status, status, label);
  assert.deepEqual(Object.keys(res.json ?? {}), ['error'], label);
  assert.deepEqual(Object.keys(res.json.error).sort(), ['code', 'message'], label);
  assert.equal(res.json.error.code, code, label);
  assert.ok(res.json.error.message.length > 0, label);
  return res.json.error.message;
}

function assertOk(res, what = '') {
  assert.equal(res.status, 200, `${what} -> ${res.status} ${res.body.slice(0, 300)}`);
  return res.json;
}

// Signed messages the origin functions would refuse to produce are made by patching and signing
// again what they do produce (tests/js/msgpack.mjs: `patchSigned`).

/** What must not change after a refused push: status (the authority's head included), a batch
 * with a `high`-tier action (so the isolate confirms with the authority), and a listing. */
async function observe(c) {
  const s = assertOk(await c.status(), 'GET status');
  const { epoch, watermark, confirmedAt, digest, stale, counts, authority } = s;
  const now = (confirmedAt ?? 0) + 1000;
  const many = await c.checkMany(
    [['user:alice', 'read', 'org:acme'], ['user:alice', 'export', 'doc:roadmap'], ['user:bob', 'read', 'org:acme'], ['user:u', 'read', 'doc:top']],
    { now },
  );
  const list = await c.get(`resources?subject=user:alice&action=read&now=${now}`);
  return { status: { epoch, watermark, confirmedAt, digest, stale, counts, authority }, many: [many.status, many.json], list: [list.status, list.json] };
}

// =============================================================================================
describe('MAX_TENANTS: 32 tenants decoded per isolate, the least recently used dropped', () => {
  let edge;
  const o = origin();
  const tenants = Array.from({ length: 33 }, (_, i) => `t${String(i).padStart(2, '0')}`);
  const c = (t) => client(edge, { tenant: t });

  before(async () => {
    edge = await startEdge({ vars: { ...WHAT_IF, ORIGIN_PUBLIC_KEYS: o.keys.publicKey } });
  });
  after(async () => {
    await edge?.dispose();
  });

  test('the 33rd tenant drops the least recently used; it syncs again and answers the same', async () => {
    // Each request is a few ms after the last: the isolate's clock orders the tenants' use.
    const touch = async (res) => {
      const out = await res;
      await sleep(5);
      return out;
    };
    const decisions = async (t) => assertOk(await touch(c(t).status()), `status ${t}`).edge.decisions;
    // t00 and t01 hold a snapshot; the others none (their checks are no_snapshot, counted as denied).
    for (const t of tenants.slice(0, 2)) {
      assert.deepEqual(assertOk(await touch(c(t).push('snapshot', o.snapshot(model((m) => (m.tenant = t)), 1)))), { epoch: 1 });
    }
    const now = Date.now() + 1000;
    const granted = {};
    // 32 tenants, one decision each, in order.
    for (const t of tenants.slice(0, 32)) {
      const d = assertOk(await touch(c(t).check('user:alice', 'read', 'org:acme', { now })), `check ${t}`);
      assert.equal(d.reason, t === 't00' || t === 't01' ? 'granted' : 'no_snapshot', t);
      if (d.allowed) granted[t] = d;
    }
    // All 32 are held: t00's counter is its one decision. Reading t00, then t01, makes them the
    // most recently used; t02 is now the least.
    assert.deepEqual(await decisions('t00'), { allowed: 1, denied: 0 });
    const before01 = assertOk(await touch(c('t01').status()));
    assert.deepEqual(before01.edge.decisions, { allowed: 1, denied: 0 });
    // The 33rd tenant drops t02: read again, it is a new edge with counters from zero (and
    // reading it drops t03 in turn); t00 and t01 were kept.
    assert.equal(assertOk(await touch(c('t32').check('user:alice', 'read', 'org:acme', { now }))).reason, 'no_snapshot');
    assert.deepEqual(await decisions('t02'), { allowed: 0, denied: 0 });
    assert.deepEqual(await decisions('t00'), { allowed: 1, denied: 0 });
    assert.deepEqual(await decisions('t01'), { allowed: 1, denied: 0 });
    // 32 other tenants used after t01 drop it; it then syncs again from its authority and
    // answers exactly as before: same epoch, digest, counts and decision.
    for (const t of [...tenants.slice(2, 32), 't32', 't00']) await touch(c(t).status());
    const again = assertOk(await touch(c('t01').status()));
    assert.deepEqual(again.edge.decisions, { allowed: 0, denied: 0 }, 't01 was dropped');
    assert.deepEqual([again.epoch, again.digest, again.counts], [before01.epoch, before01.digest, before01.counts]);
    assert.deepEqual(assertOk(await c('t01').check('user:alice', 'read', 'org:acme', { now })), granted.t01);
  });
});

// =============================================================================================
describe('limit variables: not a number is 500 misconfigured on every /v1 route', () => {
  for (const name of ['MAX_CHECK_BYTES', 'MAX_BATCH_BYTES', 'MAX_BATCH', 'MAX_SNAPSHOT_BYTES', 'MAX_MESSAGE_BYTES']) {
    test(`${name}=ten`, async () => {
      const o = origin();
      const edge = await startEdge({ vars: { ...WHAT_IF, ORIGIN_PUBLIC_KEYS: o.keys.publicKey, [name]: 'ten' } });
      try {
        const c = client(edge);
        for (const res of [
          await c.check('user:alice', 'read', 'org:acme'),
          await c.checkMany([['user:alice', 'read', 'org:acme']]),
          await c.status(),
          await c.get('resources?subject=user:alice&action=read'),
          await c.push('snapshot', o.snapshot(model(), 1)),
        ]) {
          const message = assertError(res, 500, 'misconfigured', name);
          assert.equal(message, `the variable ${name} is not a number`);
        }
        assert.equal((await edge.fetch('/health')).status, 200);
      } finally {
        await edge.dispose();
      }
    });
  }
});

// =============================================================================================
describe('limits past the Worker: the authority applies the core limits itself', () => {
  let edge;
  let c;
  const o = origin();

  before(async () => {
    // Body limits raised past the core's 64 MiB per message.
    edge = await startEdge({ vars: { ...WHAT_IF, ORIGIN_PUBLIC_KEYS: o.keys.publicKey, MAX_SNAPSHOT_BYTES: String(100 * MIB), MAX_MESSAGE_BYTES: String(100 * MIB) } });
    c = client(edge);
    assert.deepEqual(assertOk(await c.push('snapshot', o.snapshot(model(), 1))), { epoch: 1 });
  });
  after(async () => {
    await edge?.dispose();
  });

  test('MAX_SNAPSHOT_BYTES raised to 100 MiB: a 64 MiB + 1 snapshot is still 413 too_large, state unchanged', async () => {
    const before = await observe(c);
    const body = new Uint8Array(64 * MIB + 1);
    body.set(prefix('snapshot'));
    const message = assertError(await c.push('snapshot', body), 413, 'too_large', '64 MiB + 1');
    assert.equal(message, `input is ${64 * MIB + 1} bytes, over the limit of ${64 * MIB}`);
    // Exactly 64 MiB is read, and refused for what it is.
    assertError(await c.push('snapshot', body.subarray(0, 64 * MIB)), 400, 'malformed', '64 MiB');
    assert.deepEqual(await observe(c), before);
  });

  test('resource depth 65 in a signed snapshot: 400 invalid_snapshot naming the limit, state unchanged', async () => {
    // r:000 <- r:001 <- ... <- r:063 (64 levels) and r:064 under r:000; r:064's parent is then
    // patched to r:063 (ids are the sorted positions: 0 -> 63), which makes it 65 levels deep.
    const chain = model((m) => {
      for (let i = 0; i < 65; i++) {
        const id = `r:${String(i).padStart(3, '0')}`;
        m.resources.push(i === 0 ? { id } : { id, parent: i === 64 ? 'r:000' : `r:${String(i - 1).padStart(3, '0')}` });
      }
    });
    const entry = (parent) => Buffer.concat([Buffer.from([0x92, 0xa5]), Buffer.from('r:064'), Buffer.from([parent])]);
    // resources sort doc:roadmap, org:acme, r:000, ..., workspace:eng: r:000 is id 2, r:063 is 65.
    const deep = patchSigned(o.snapshot(chain, 2), o.keys.secretKey, entry(2), entry(65));
    const before = await observe(c);
    const message = assertError(await c.push('snapshot', deep), 400, 'invalid_snapshot');
    assert.match(message, /resource `r:064` is 65 levels deep, over the limit of 64/);
    assert.deepEqual(await observe(c), before);
    // The same model without the patch (64 levels) is taken.
    assert.deepEqual(assertOk(await c.push('snapshot', o.snapshot(chain, 2))), { epoch: 2 });
  });
});

// =============================================================================================
describe('MAX_CLOCK_SKEW_MS (1 s): the authority refuses a message issued further in its future', () => {
  let edge;
  let c;
  const o = origin();
  const M2 = model((m) => m.assignments.push({ principal: 'user:bob', role: 'viewer', resource: 'org:acme' }));

  before(async () => {
    edge = await startEdge({ vars: { ...WHAT_IF, ORIGIN_PUBLIC_KEYS: o.keys.publicKey } });
    c = client(edge);
    assert.deepEqual(assertOk(await c.push('snapshot', o.snapshot(model(), 1))), { epoch: 1 });
  });
  after(async () => {
    await edge?.dispose();
  });

  test('snapshot, delta and watermark issued 5 s ahead: 400 clock_skew, state unchanged; issued now: taken', async () => {
    const before = await observe(c);
    const ahead = () => Date.now() + 5_000;
    const delta = o.delta(model(), M2, 1, 2, ahead()).delta;
    for (const [kind, bytes] of [
      ['snapshot', o.snapshot(M2, 2, ahead())],
      ['delta', delta],
      ['watermark', o.watermark(2, delta, ahead())],
      ['watermark', o.watermark(1, undefined, ahead())],
    ]) {
      const message = assertError(await c.push(kind, bytes), 400, 'clock_skew', kind);
      assert.match(message, /ms ahead of this edge's clock .* past the tolerance of 1000 ms/, kind);
    }
    assert.deepEqual(await observe(c), before);
    assert.deepEqual(assertOk(await c.push('delta', o.delta(model(), M2, 1, 2).delta)), { epoch: 2, applied: true });
  });
});

// =============================================================================================
describe('group nesting past MAX_GROUP_DEPTH (255): no isolate answers from it', () => {
  let edge;
  const o = origin();
  const g = (i) => `group:g${String(i).padStart(3, '0')}`;
  // user:u in g001, g000 in g001, ..., g254 in g255: everything at most 255 deep (valid).
  const chain = model((m) => {
    m.memberships.push({ member: 'user:u', group: g(1) });
    for (let i = 1; i < 256; i++) m.memberships.push({ member: g(i - 1), group: g(i) });
    m.resources.push({ id: 'doc:top' });
    m.assignments.push({ principal: g(255), role: 'viewer', resource: 'doc:top' });
  });

  before(async () => {
    edge = await startEdge({ vars: { ...WHAT_IF, ORIGIN_PUBLIC_KEYS: o.keys.publicKey }, isolates: 2 });
  });
  after(async () => {
    await edge?.dispose();
  });

  test('a signed snapshot 256 groups deep: 400 invalid_snapshot naming the limit, nothing changed, answers go on at epoch 1', async () => {
    const c0 = client(edge);
    const c1 = client(edge, { isolate: 1 });
    assert.deepEqual(assertOk(await c0.push('snapshot', o.snapshot(chain, 1))), { epoch: 1 });
    const now = Date.now() + 1000;
    const held = assertOk(await c0.check('user:u', 'read', 'doc:top', { now }));
    assert.equal(held.grant.path.length, 256, 'user:u and 255 groups');
    // Subjects sort group:eng (id 0), group:g000 (1) .. group:g255 (256), group:staff,
    // user:alice, user:mallory, user:u (260); the last membership, (user:u, g001) =
    // [0x92, 0xcd, 0x01, 0x04, 0x02], becomes (user:u, g000): 256 groups deep.
    const deep = patchSigned(o.snapshot(chain, 2), o.keys.secretKey, Buffer.from([0x92, 0xcd, 0x01, 0x04, 0x02]), Buffer.from([0x92, 0xcd, 0x01, 0x04, 0x01]));
    const before = await observe(c0);
    const pushed = await c0.push('snapshot', deep);
    // The authority builds each state's index to check it (then keeps only the content).
    assert.match(assertError(pushed, 400, 'invalid_snapshot'), /over the limit of 255/);
    assert.deepEqual(await observe(c0), before);
    for (const c of [c0, c1]) {
      const d = assertOk(await c.check('user:u', 'read', 'doc:top', { now }));
      assert.deepEqual([d.reason, d.epoch], ['granted', 1]);
      assert.equal(assertOk(await c.check('user:alice', 'export', 'doc:roadmap', { now })).epoch, 1);
    }
  });
});
