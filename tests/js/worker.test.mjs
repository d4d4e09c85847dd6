// The Worker's behaviour in workerd (Miniflare): the revocation path with checks running (a bare
// watermark, then one carrying its delta), the freshness bound of each tier, a restart on the
// same persistence, decision logs and their sampling, and the per-isolate counters.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { client, model, origin, startEdge, tempDir, WHAT_IF } from './edge.mjs';

// The example model, and the same with alice's admin assignment removed (a revocation).
const BEFORE = model();
const REVOKED = model((m) => {
  m.assignments = m.assignments.filter((a) => a.principal !== 'user:alice');
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `check` in `lanes` parallel loops until `stop()` is called; records for every answer when
 * its request was sent and the decision.
 */
function racing(c, lanes, [s, a, r]) {
  const answers = [];
  let running = true;
  const loops = Array.from({ length: lanes }, async () => {
    while (running) {
      const sent = performance.now();
      const res = await c.check(s, a, r);
      answers.push({ sent, status: res.status, d: res.json });
    }
  });
  return {
    answers,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

describe('the revocation path, with checks running', () => {
  let edge;
  let o;
  let c;
  before(async () => {
    o = origin();
    edge = await startEdge({ vars: { ...WHAT_IF, ORIGIN_PUBLIC_KEYS: o.keys.publicKey } });
    c = client(edge);
  });
  after(() => edge.dispose());

  for (const riding of [false, true]) {
    test(riding ? 'a watermark carrying its delta: no window at all' : 'a bare watermark, then the delta', async () => {
      // Epochs: 1 (or 3) before; the revocation is the next epoch.
      const base = riding ? 3 : 1;
      assert.equal((await c.push('snapshot', o.snapshot(BEFORE, base))).status, 200);
      // export is a high-tier action that alice has through her admin assignment.
      const req = ['user:alice', 'export', 'doc:roadmap'];
      assert.equal((await c.check(...req)).json.allowed, true);
      const run = racing(c, 8, req);
      await sleep(150);
      const { delta, revokes } = o.delta(BEFORE, REVOKED, base, base + 1);
      assert.equal(revokes, true);
      const pushed = await c.push('watermark', o.watermark(base + 1, riding ? delta : undefined));
      const acked = performance.now();
      assert.equal(pushed.status, 200, pushed.body);
      assert.deepEqual(
        { watermark: pushed.json.watermark, epoch: pushed.json.epoch },
        { watermark: base + 1, epoch: riding ? base + 1 : base },
      );
      await sleep(150);
      if (!riding) {
        // The window: stale answers, never an allow from the old epoch.
        const during = await c.check(...req);
        assert.equal(during.json.reason, 'stale_snapshot');
        assert.equal((await c.push('delta', delta)).status, 200);
      }
      await sleep(100);
      await run.stop();
      const after = run.answers.filter((x) => x.sent > acked);
      assert.ok(after.length > 10, `only ${after.length} checks after the push`);
      const oldAllows = after.filter((x) => x.d.allowed && x.d.epoch < base + 1);
      assert.deepEqual(oldAllows, [], 'an allow from the old epoch after the watermark was acknowledged');
      assert.ok(run.answers.some((x) => x.sent < acked && x.d.allowed), 'the checks before the push were allowed');
      const reasons = new Set(after.map((x) => x.d.reason));
      if (riding) {
        // The delta applied with the watermark: no stale answers, the revocation at once.
        assert.deepEqual([...reasons], ['no_grant']);
      } else {
        assert.ok(reasons.has('stale_snapshot'), [...reasons].join());
      }
      // Answers resume with the revocation applied; what alice still has through her group stays.
      const now = await c.check(...req);
      assert.deepEqual([now.json.allowed, now.json.reason, now.json.epoch], [false, 'no_grant', base + 1]);
      const read = await c.check('user:alice', 'read', 'doc:roadmap');
      assert.equal(read.json.allowed, true);
      assert.equal(read.json.grant.principal, 'group:staff');
    });
  }
});

describe('freshness per tier: how long an isolate reuses a confirmation', () => {
  let edge;
  let o;
  let c;
  // The origin pushes through another isolate: the one that relays a push confirms at once.
  let origin1;
  const LOW = 1500;
  const STANDARD = 700;
  before(async () => {
    o = origin();
    edge = await startEdge({
      vars: {
        ORIGIN_PUBLIC_KEYS: o.keys.publicKey,
        CONFIRM_REUSE_MS_LOW: String(LOW),
        CONFIRM_REUSE_MS_STANDARD: String(STANDARD),
      },
      isolates: 2,
    });
    c = client(edge);
    origin1 = client(edge, { isolate: 1 });
  });
  after(() => edge.dispose());

  test('high sees a new watermark on the very next request; standard and low within their bounds', async () => {
    // alice: read (low), write (standard), export (high) on doc:roadmap, all through her admin role.
    assert.equal((await origin1.push('snapshot', o.snapshot(BEFORE, 1))).status, 200);
    const at = async (action) => (await c.check('user:alice', action, 'doc:roadmap')).json;
    // Confirm all three tiers now (the export, a high-tier check, confirms last).
    for (const a of ['read', 'write', 'export']) assert.equal((await at(a)).allowed, true);
    let confirmed = performance.now();
    assert.equal((await origin1.push('watermark', o.watermark(2))).status, 200);
    // low and standard may still answer from the confirmation they hold (that is their bound)...
    assert.equal((await at('read')).allowed, true, 'low reuses its recent confirmation');
    assert.equal((await at('write')).allowed, true, 'standard reuses its recent confirmation');
    assert.ok(performance.now() - confirmed < STANDARD, 'the test machine was too slow');
    // ... high never does: the very next request sees the watermark. (Any confirmation renews
    // this isolate's state for every tier.)
    assert.equal((await at('export')).reason, 'stale_snapshot');
    assert.equal((await at('read')).reason, 'stale_snapshot');

    // Standard, on its own: stale once its bound has passed.
    assert.equal((await origin1.push('snapshot', o.snapshot(BEFORE, 2))).status, 200);
    assert.equal((await at('export')).allowed, true);
    confirmed = performance.now();
    assert.equal((await origin1.push('watermark', o.watermark(3))).status, 200);
    assert.equal((await at('write')).allowed, true, 'standard within its bound');
    await sleep(STANDARD + 100 - (performance.now() - confirmed));
    assert.equal((await at('write')).reason, 'stale_snapshot');

    // Low, on its own: the same with its longer bound.
    assert.equal((await origin1.push('snapshot', o.snapshot(BEFORE, 3))).status, 200);
    assert.equal((await at('export')).allowed, true);
    confirmed = performance.now();
    assert.equal((await origin1.push('watermark', o.watermark(4))).status, 200);
    assert.equal((await at('read')).allowed, true, 'low within its bound');
    await sleep(STANDARD + 100 - (performance.now() - confirmed));
    assert.equal((await at('read')).allowed, true, 'low is still within its bound past standard\'s');
    await sleep(LOW + 100 - (performance.now() - confirmed));
    assert.equal((await at('read')).reason, 'stale_snapshot');
    // Lists take the tier of their action: read is low, and its confirmation is now fresh.
    const list = await c.get('resources?subject=user:alice&action=read');
    assert.equal(list.status, 503);
    assert.equal(list.json.error.code, 'stale_snapshot');
  });

  test('the isolate that relays a push answers with it at once, whatever the tier', async () => {
    assert.equal((await c.push('snapshot', o.snapshot(BEFORE, 6))).status, 200);
    assert.equal((await c.check('user:alice', 'read', 'doc:roadmap')).json.epoch, 6);
    assert.equal((await origin1.check('user:alice', 'read', 'doc:roadmap')).json.epoch, 6);
    assert.equal((await c.push('watermark', o.watermark(7))).status, 200);
    assert.equal((await c.check('user:alice', 'read', 'doc:roadmap')).json.reason, 'stale_snapshot');
    // The other isolate confirmed less than its low bound ago: it still answers from epoch 6.
    const other = await origin1.check('user:alice', 'read', 'doc:roadmap');
    assert.deepEqual([other.json.allowed, other.json.epoch], [true, 6]);
  });

  test('a batch takes its strictest tier', async () => {
    assert.equal((await origin1.push('snapshot', o.snapshot(BEFORE, 8))).status, 200);
    const batch = [
      ['user:alice', 'read', 'doc:roadmap'],
      ['user:alice', 'export', 'doc:roadmap'],
    ];
    const ok = await c.checkMany(batch);
    assert.deepEqual(ok.json.decisions.map((d) => d.allowed), [true, true]);
    assert.equal((await origin1.push('watermark', o.watermark(9))).status, 200);
    // The read in the batch would reuse low's confirmation on its own; the export makes the
    // batch confirm, so both see the watermark.
    const next = await c.checkMany(batch);
    assert.deepEqual(next.json.decisions.map((d) => d.reason), ['stale_snapshot', 'stale_snapshot']);
  });
});

describe('restart on the same persistence', () => {
  test('the Worker comes back at the same epoch and watermark and answers identically', async () => {
    const o = origin();
    const persist = tempDir();
    const edge = await startEdge({ vars: { ...WHAT_IF, ORIGIN_PUBLIC_KEYS: o.keys.publicKey }, persist });
    try {
      const c = client(edge);
      const grown = model((m) => m.memberships.push({ member: 'user:bob', group: 'group:eng' }));
      assert.equal((await c.push('snapshot', o.snapshot(BEFORE, 1))).status, 200);
      assert.equal((await c.push('delta', o.delta(BEFORE, grown, 1, 2).delta)).status, 200);
      // A revocation carried by its watermark, then a heartbeat, then a watermark above the
      // epoch: the restarted Worker must also come back stale.
      const revoked = model((m) => {
        m.memberships.push({ member: 'user:bob', group: 'group:eng' });
        m.assignments = m.assignments.filter((a) => a.principal !== 'user:alice');
      });
      assert.equal((await c.push('watermark', o.watermark(3, o.delta(grown, revoked, 2, 3).delta))).status, 200);
      assert.equal((await c.push('watermark', o.watermark(3))).status, 200);
      const requests = [
        ['user:alice', 'export', 'doc:roadmap'],
        ['user:alice', 'read', 'doc:roadmap'],
        ['user:bob', 'read', 'workspace:eng'],
        ['user:mallory', 'read', 'org:acme'],
        ['user:nobody', 'read', 'org:acme'],
      ];
      const context = { now: Date.now() };
      const pick = (s) => ({ epoch: s.epoch, watermark: s.watermark, confirmedAt: s.confirmedAt, digest: s.digest, stale: s.stale, counts: s.counts });
      const answersBefore = (await c.checkMany(requests, context)).json;
      const statusBefore = pick((await c.status()).json);
      assert.equal(statusBefore.epoch, 3);
      await edge.restart();
      assert.deepEqual(pick((await c.status()).json), statusBefore);
      assert.deepEqual((await c.checkMany(requests, context)).json, answersBefore);
      // And again with a watermark above the epoch held: stale before and after a restart.
      assert.equal((await c.push('watermark', o.watermark(5))).status, 200);
      const stale = (await c.checkMany(requests, context)).json;
      assert.ok(stale.decisions.every((d) => d.reason === 'stale_snapshot'));
      await edge.restart();
      assert.deepEqual((await c.checkMany(requests, context)).json, stale);
      assert.equal((await c.status()).json.watermark, 5);
    } finally {
      await edge.dispose();
    }
  });
});

describe('decision logs', () => {
  test('one JSON line per decision with every field; counters for allowed and denied', async () => {
    const o = origin();
    const edge = await startEdge({ vars: { ...WHAT_IF, ORIGIN_PUBLIC_KEYS: o.keys.publicKey } });
    try {
      const c = client(edge);
      await c.push('snapshot', o.snapshot(BEFORE, 1));
      const r = await edge.fetch('/v1/acme/check', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': 'req-123' },
        body: JSON.stringify({ subject: 'user:alice', action: 'read', resource: 'doc:roadmap' }),
      });
      assert.equal(r.headers.get('x-request-id'), 'req-123');
      await c.checkMany([
        ['user:alice', 'export', 'doc:roadmap'],
        ['user:mallory', 'read', 'doc:roadmap'],
        ['user:bob', 'read', 'doc:roadmap'],
      ]);
      const withContext = { ip: '10.1.2.3', now: Date.now() - 1000 };
      await edge.fetch('/v1/acme/check', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': 'req-ctx' },
        body: JSON.stringify({ subject: 'user:alice', action: 'read', resource: 'doc:roadmap', context: withContext }),
      });
      await sleep(300);
      const line = edge.logs.find((l) => l.requestId === 'req-123');
      assert.ok(line, JSON.stringify(edge.logs));
      for (const k of ['ts', 'tenant', 'subject', 'action', 'resource', 'allowed', 'reason', 'epoch', 'watermark', 'tier', 'digest', 'latencyMs', 'requestId']) {
        assert.ok(Object.hasOwn(line, k), `missing ${k}`);
      }
      for (const k of ['request_id', 'latency_ms', 'context']) assert.ok(!Object.hasOwn(line, k), `unexpected ${k}`);
      // The held state's digest, as the status reports it; the context as the request gave it.
      assert.match(line.digest, /^[0-9a-f]{64}$/);
      const ctxLine = edge.logs.find((l) => l.requestId === 'req-ctx');
      assert.deepEqual(ctxLine.context, withContext);
      assert.equal(ctxLine.digest, line.digest);
      assert.deepEqual(
        [line.tenant, line.subject, line.action, line.resource, line.allowed, line.reason, line.epoch, line.watermark, line.tier],
        ['acme', 'user:alice', 'read', 'doc:roadmap', true, 'granted', 1, 0, 'low'],
      );
      const batch = edge.logs.filter((l) => l.index !== undefined);
      assert.deepEqual(batch.map((l) => [l.index, l.reason]), [[0, 'granted'], [1, 'suspended'], [2, 'no_grant']]);
      assert.equal(new Set(batch.map((l) => l.requestId)).size, 1);
      const status = (await c.status()).json;
      assert.equal(status.digest, line.digest);
      assert.deepEqual(status.edge.decisions, { allowed: 3, denied: 2 });
    } finally {
      await edge.dispose();
    }
  });

  test('sampling: allowed and denied at their own rates, counted either way', async () => {
    const o = origin();
    const edge = await startEdge({
      vars: { ...WHAT_IF, ORIGIN_PUBLIC_KEYS: o.keys.publicKey, LOG_SAMPLE_ALLOWED: '0', LOG_SAMPLE_DENIED: '0.5' },
    });
    try {
      const c = client(edge);
      await c.push('snapshot', o.snapshot(BEFORE, 1));
      const allowed = Array.from({ length: 200 }, () => ['user:alice', 'read', 'doc:roadmap']);
      const denied = Array.from({ length: 400 }, () => ['user:bob', 'read', 'doc:roadmap']);
      await c.checkMany([...allowed, ...denied]);
      await sleep(300);
      const logged = edge.logs.filter((l) => l.tenant === 'acme');
      assert.equal(logged.filter((l) => l.allowed).length, 0);
      const n = logged.filter((l) => !l.allowed).length;
      // Binomial(400, 0.5): 200 +- 50 is more than 7 standard deviations.
      assert.ok(n > 150 && n < 250, `${n} of 400 denied decisions logged at 0.5`);
      assert.deepEqual((await c.status()).json.edge.decisions, { allowed: 200, denied: 400 });
    } finally {
      await edge.dispose();
    }
  });
});
