// Fault drills for the Worker in workerd (Miniflare), real parts only: the built Worker and its
// real TenantAuthority Durable Object, with a fault-injecting proxy object between them
// (faulty-authority.mjs) that the tests tell to throw, answer 503, delay, or route to an empty
// (lost) store. Each drill asserts status codes, reason codes and `allowed`, and that the
// answers recover with nobody intervening but the origin (its heartbeats, or a push where said).
//
// The model's freshness is short (low 6 s, standard 3 s, high 1.5 s) and the isolates reuse a
// confirmation briefly, so that the drills run on real elapsed time in a few seconds each.
// Checks go through isolate 0; the origin pushes through isolate 1 (the isolate that relays a
// push confirms on its next decision whatever the tier, which would hide what is being drilled).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { client, model, origin, startEdge } from './edge.mjs';
import { faults, withFaultyAuthority } from './faulty-authority.mjs';

const FRESHNESS = { low: 6000, standard: 3000, high: 1500 };
const FAST = model((m) => {
  m.freshness = { ...FRESHNESS };
});
// alice's direct admin assignment removed: a revocation (she keeps `read` through group:staff).
const REVOKED = model((m) => {
  m.freshness = { ...FRESHNESS };
  m.assignments = m.assignments.filter((a) => a.principal !== 'user:alice');
});
// alice on doc:roadmap: read is low, write standard, export high; all three through her admin role.
const TIERS = { low: 'read', standard: 'write', high: 'export' };
const REUSE = { CONFIRM_REUSE_MS_STANDARD: '200', CONFIRM_REUSE_MS_LOW: '400' };

const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const until = (at) => sleep(at - Date.now());

/** One check of `tier`'s action for alice: the status, the decision or error, the latency. */
async function ask(c, tier, subject = 'user:alice') {
  const sent = performance.now();
  const r = await c.check(subject, TIERS[tier], 'doc:roadmap');
  const ms = performance.now() - sent;
  const d = r.json ?? {};
  return { status: r.status, allowed: d.allowed, reason: d.reason ?? d.error?.code, epoch: d.epoch, ms, body: r.body };
}

/** Asserts a decision (200) with this `allowed`, reason and, when given, epoch. */
function decided(x, allowed, reason, epoch, what = '') {
  assert.equal(x.status, 200, `${what}: ${x.body}`);
  assert.deepEqual([x.allowed, x.reason], [allowed, reason], `${what}: ${x.body}`);
  if (epoch !== undefined) assert.equal(x.epoch, epoch, `${what}: ${x.body}`);
}

/** Asserts the 503 `authority_unavailable` of a tier that must fail closed. */
function unavailable(x, what = '') {
  assert.equal(x.status, 503, `${what}: ${x.body}`);
  assert.equal(x.reason, 'authority_unavailable', `${what}: ${x.body}`);
  assert.equal(x.allowed, undefined, `${what}: an error answer carries no decision`);
}

/**
 * The origin's heartbeats, as `publish --watch` sends them: a bare watermark at `watermark`,
 * freshly issued, every `every` ms, one after the other; each push's time and answer recorded.
 */
function heartbeats(c, o, watermark, every = 250) {
  const pushes = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const sent = performance.now();
      const issuedAt = Date.now();
      const r = await c.push('watermark', o.watermark(watermark, undefined, issuedAt));
      pushes.push({ sent, issuedAt, ms: performance.now() - sent, status: r.status, code: r.json?.error?.code });
      if (running) await sleep(every);
    }
  })();
  return {
    pushes,
    /** The issued_at of the last heartbeat taken. */
    lastTaken: () => Math.max(...pushes.filter((p) => p.status === 200).map((p) => p.issuedAt)),
    /** Waits for a heartbeat sent after `t` (performance.now()) to be taken (200). */
    async landed(t, timeout = 6000) {
      const deadline = performance.now() + timeout;
      while (!pushes.some((p) => p.sent > t && p.status === 200)) {
        assert.ok(performance.now() < deadline, `no heartbeat taken within ${timeout} ms: ${JSON.stringify(pushes.slice(-5))}`);
        await sleep(20);
      }
    },
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** An edge with two isolates whose AUTHORITY is the faulty proxy in front of the real object. */
async function startDrill(vars = {}, isolates = 2, moreKeys = []) {
  const o = origin();
  const edge = await startEdge({
    vars: { ORIGIN_PUBLIC_KEYS: [o.keys.publicKey, ...moreKeys].join(','), ...REUSE, ...vars },
    isolates,
    ...withFaultyAuthority(),
  });
  return { o, edge, f: faults(edge), c: client(edge), push: client(edge, { isolate: 1 }) };
}

describe('drill 1: the Durable Object unavailable', () => {
  let d;
  let hb;
  // Isolate 2 stays untouched until the outage: an isolate that never reached the authority.
  let fresh;
  before(async () => {
    d = await startDrill({}, 3);
    fresh = client(d.edge, { isolate: 2 });
  });
  after(async () => {
    await hb?.stop();
    await d.edge.dispose();
  });

  test('high fails closed at once, low and standard answer from held state within their bounds, every tier recovers', async () => {
    const { o, f, c, push } = d;
    assert.equal((await push.push('snapshot', o.snapshot(FAST, 1))).status, 200);
    hb = heartbeats(push, o, 1);
    await hb.landed(0);
    for (const tier of ['low', 'standard', 'high']) decided(await ask(c, tier), true, 'granted', 1, `${tier} before`);

    for (const mode of ['throw', 'status']) {
      // The object throws (its stub's fetch rejects), then answers 503 itself.
      await f.set(mode === 'throw' ? { mode } : { mode, status: 503 });
      const down = performance.now();
      const high = await ask(c, 'high');
      unavailable(high, `high, object ${mode}`);
      assert.ok(high.ms < 500, `high took ${high.ms} ms to fail closed`);
      // Past both reuse windows, low and standard try the authority, fail, and answer from the
      // state they hold (the origin's last heartbeat is well within their freshness bounds).
      await sleep(450);
      const failedBefore = (await f.stats()).failed;
      decided(await ask(c, 'low'), true, 'granted', 1, `low, object ${mode}`);
      decided(await ask(c, 'standard'), true, 'granted', 1, `standard, object ${mode}`);
      assert.ok((await f.stats()).failed >= failedBefore + 2, 'low and standard did try the authority');
      unavailable(await ask(c, 'high'), `high again, object ${mode}`);
      // A listing of a high-tier action fails closed as well.
      const list = await c.get('resources?subject=user:alice&action=export');
      assert.deepEqual([list.status, list.json?.error?.code], [503, 'authority_unavailable'], list.body);
      if (mode === 'status') {
        // An isolate that never reached the authority has nothing to answer from, whatever the tier.
        unavailable(await ask(fresh, 'low'), 'low on an isolate that never synced');
        // The held state still obeys the model's freshness: once the origin's last heartbeat that
        // got through is older than standard's bound, standard fails closed and low still answers.
        const last = hb.lastTaken();
        await until(last + FRESHNESS.standard + 300);
        decided(await ask(c, 'standard'), false, 'freshness_exceeded', 1, 'standard past its bound, object down');
        decided(await ask(c, 'low'), true, 'granted', 1, 'low within its bound, object down');
        unavailable(await ask(c, 'high'), 'high, object down');
        assert.ok(Date.now() < last + FRESHNESS.low, 'the machine was too slow for this step');
      }
      // The origin's heartbeats during the outage are refused (503), not lost silently.
      await sleep(300);
      const during = hb.pushes.filter((p) => p.sent > down);
      assert.ok(during.length > 0 && during.every((p) => p.status === 503), JSON.stringify(during));
      // Back: no restart, nothing pushed but the heartbeats the origin sends anyway.
      await f.clear();
      const back = performance.now();
      const first = await ask(c, 'high');
      assert.equal(first.status, 200, `high reaches the authority again at once: ${first.body}`);
      await hb.landed(back);
      for (const tier of ['high', 'standard', 'low']) decided(await ask(c, tier), true, 'granted', 1, `${tier} after ${mode}`);
      // Low and standard confirm again too, each on its own, once their reuse windows pass.
      await sleep(450);
      for (const tier of ['low', 'standard']) decided(await ask(c, tier), true, 'granted', 1, `${tier} after ${mode}, alone`);
    }
    decided(await ask(fresh, 'low'), true, 'granted', 1, 'low on the isolate that never synced, after');
    const status = (await c.status()).json;
    assert.equal(status.authorityError, undefined, JSON.stringify(status.authorityError));
    assert.deepEqual([status.authority.epoch, status.authority.watermark, status.epoch], [1, 1, 1]);
  });
});

describe('drill 2: the Durable Object slow', () => {
  const TIMEOUT = 300;
  const DELAY = 2500;
  let d;
  let hb;
  before(async () => {
    d = await startDrill({ AUTHORITY_TIMEOUT_MS: String(TIMEOUT), CONFIRM_REUSE_MS_LOW: '2000' });
  });
  after(async () => {
    await d.f?.clear().catch(() => {});
    await hb?.stop();
    await d.edge.dispose();
  });

  test('high answers 503 after the timeout, not the delay; low within its reuse answers at once; recovery', async (t) => {
    const { o, f, c, push } = d;
    assert.equal((await push.push('snapshot', o.snapshot(FAST, 1))).status, 200);
    hb = heartbeats(push, o, 1);
    await hb.landed(0);
    for (const tier of ['low', 'standard', 'high']) decided(await ask(c, tier), true, 'granted', 1, `${tier} before`);

    await f.set({ mode: 'delay', ms: DELAY });
    const syncs = async () => (await f.stats()).byPath['/sync'] ?? 0;
    const high = await ask(c, 'high');
    unavailable(high, 'high, slow object');
    assert.ok(high.ms >= TIMEOUT - 50, `high answered in ${high.ms} ms, before the ${TIMEOUT} ms timeout`);
    assert.ok(high.ms < DELAY - 1000, `high answered in ${high.ms} ms: it waited for the ${DELAY} ms delay`);
    // Low confirmed less than its reuse window (2 s) ago: it answers without asking.
    const before = await syncs();
    const low = await ask(c, 'low');
    decided(low, true, 'granted', 1, 'low within its reuse window');
    assert.equal(await syncs(), before, 'low within its reuse window did not go to the authority');
    assert.ok(low.ms < TIMEOUT, `low took ${low.ms} ms`);
    // Standard is past its 200 ms window: it asks, gives up after the timeout, and answers from
    // the state it holds.
    const standard = await ask(c, 'standard');
    decided(standard, true, 'granted', 1, 'standard past its reuse window');
    assert.equal(await syncs(), before + 1, 'standard went to the authority');
    assert.ok(standard.ms >= TIMEOUT - 50 && standard.ms < DELAY - 1000, `standard took ${standard.ms} ms`);
    // A listing of a high-tier action times out the same way.
    const sent = performance.now();
    const list = await c.get('resources?subject=user:alice&action=export');
    assert.deepEqual([list.status, list.json?.error?.code], [503, 'authority_unavailable'], list.body);
    assert.ok(performance.now() - sent < DELAY - 1000);

    const slowFrom = performance.now() - DELAY;
    await f.clear();
    const back = performance.now();
    await hb.landed(back);
    // Pushes wait for the object (no timeout of their own): the origin sees the slowness.
    const slow = hb.pushes.filter((p) => p.sent > slowFrom && p.sent < back).map((p) => Math.round(p.ms));
    t.diagnostic(`heartbeat pushes sent while the object was slow took ${slow.join(', ')} ms`);
    for (const tier of ['high', 'standard', 'low']) {
      const x = await ask(c, tier);
      decided(x, true, 'granted', 1, `${tier} after the delay is removed`);
      assert.ok(x.ms < TIMEOUT, `${tier} took ${x.ms} ms after recovery`);
    }
    const status = (await c.status()).json;
    assert.equal(status.authorityError, undefined, JSON.stringify(status.authorityError));
  });
});

describe('drill 3: the snapshot store lagging, then lost', () => {
  let d;
  // Isolate 2 stays untouched until the store is lost: a fresh isolate.
  let fresh;
  before(async () => {
    d = await startDrill({}, 3);
    fresh = client(d.edge, { isolate: 2 });
  });
  after(() => d.edge.dispose());

  test('a watermark ahead of its delta: every tier refuses until the delta arrives', async () => {
    const { o, c, push } = d;
    assert.equal((await push.push('snapshot', o.snapshot(FAST, 1))).status, 200);
    for (const tier of ['low', 'standard', 'high']) decided(await ask(c, tier), true, 'granted', 1, `${tier} before`);
    const { delta, revokes } = o.delta(FAST, REVOKED, 1, 2);
    assert.equal(revokes, true);
    const wm = await push.push('watermark', o.watermark(2));
    assert.equal(wm.status, 200, wm.body);
    assert.deepEqual([wm.json.watermark, wm.json.epoch], [2, 1]);
    // Past the reuse windows each tier confirms on its own: all refuse, the allowed ones too.
    await sleep(450);
    for (const tier of ['low', 'standard', 'high']) decided(await ask(c, tier), false, 'stale_snapshot', 1, `${tier} while the delta lags`);
    decided(await ask(c, 'low', 'user:bob'), false, 'stale_snapshot', 1, 'bob while the delta lags');
    const list = await c.get('resources?subject=user:alice&action=read');
    assert.deepEqual([list.status, list.json?.error?.code], [503, 'stale_snapshot'], list.body);

    const pushed = await push.push('delta', delta);
    assert.deepEqual([pushed.status, pushed.json?.epoch, pushed.json?.applied], [200, 2, true], pushed.body);
    await sleep(450);
    // At the new epoch, with the revocation applied: alice keeps read through group:staff only.
    const read = await c.check('user:alice', 'read', 'doc:roadmap');
    decided({ ...read.json, status: read.status, body: read.body }, true, 'granted', 2, 'low after the delta');
    assert.equal(read.json.grant.principal, 'group:staff');
    decided(await ask(c, 'standard'), false, 'no_grant', 2, 'standard after the delta');
    decided(await ask(c, 'high'), false, 'no_grant', 2, 'high after the delta');
  });

  test('the store lost: a fresh isolate answers no_snapshot until the origin pushes the snapshot again', async () => {
    const { o, f, c, push } = d;
    await f.set({ store: 'lost' });
    for (const tier of ['low', 'standard', 'high']) decided(await ask(fresh, tier), false, 'no_snapshot', undefined, `fresh isolate, ${tier}, store lost`);
    const st = (await fresh.status()).json;
    assert.deepEqual([st.epoch, st.authority?.epoch, st.authority?.watermark], [null, null, 0], JSON.stringify(st));
    // An isolate that held epoch 2 never answers from anything older.
    await sleep(450);
    for (const tier of ['low', 'standard', 'high']) {
      const x = await ask(c, tier);
      assert.equal(x.status, 200, x.body);
      assert.ok(!x.allowed || x.epoch === 2, `isolate 0 after the loss: ${x.body}`);
    }

    // The origin pushes its latest snapshot again: answers resume at once for the fresh isolate.
    const again = await push.push('snapshot', o.snapshot(REVOKED, 2));
    assert.deepEqual([again.status, again.json?.epoch], [200, 2], again.body);
    const read = await fresh.check('user:alice', 'read', 'doc:roadmap');
    assert.deepEqual([read.status, read.json.allowed, read.json.reason, read.json.epoch, read.json.grant?.principal], [200, true, 'granted', 2, 'group:staff'], read.body);
    decided(await ask(fresh, 'standard'), false, 'no_grant', 2, 'fresh isolate, standard');
    decided(await ask(fresh, 'high'), false, 'no_grant', 2, 'fresh isolate, high');
    decided(await ask(fresh, 'low', 'user:bob'), false, 'no_grant', 2, 'fresh isolate, bob');
    // Isolate 0 held epoch 2 all along: it goes on answering from it, and takes the snapshot
    // pushed again (same epoch and content) for its newer confirmation: its high tier answers at
    // once, and its confirmedAt is the authority's.
    await sleep(450);
    decided(await ask(c, 'low'), true, 'granted', 2, 'isolate 0, low');
    decided(await ask(c, 'high'), false, 'no_grant', 2, 'isolate 0, high');
    const after = await c.status();
    assert.equal(after.json.confirmedAt, after.json.authority.confirmedAt, after.body);
  });
});

describe('drill 4: the origin silent past each tier\'s bound', () => {
  let d;
  before(async () => {
    d = await startDrill();
  });
  after(() => d.edge.dispose());

  test('each tier fails closed as its bound passes, the lower ones still answer; a heartbeat restores all', async () => {
    const { o, c, push } = d;
    const t0 = Date.now();
    assert.equal((await push.push('snapshot', o.snapshot(FAST, 1, t0))).status, 200);
    assert.equal((await push.push('watermark', o.watermark(1, undefined, t0))).status, 200);
    for (const tier of ['low', 'standard', 'high']) decided(await ask(c, tier), true, 'granted', 1, `${tier} at once`);
    const status = (await c.status()).json;
    assert.equal(status.confirmedAt, t0);

    // No heartbeats from here. The isolate keeps reaching the authority (its reuse windows are
    // 200 / 400 ms), which has nothing newer: each tier's bound runs from the origin's t0.
    const MARGIN = 300;
    await until(t0 + FRESHNESS.high + MARGIN);
    decided(await ask(c, 'high'), false, 'freshness_exceeded', 1, 'high past its bound');
    const list = await c.get('resources?subject=user:alice&action=export');
    assert.deepEqual([list.status, list.json?.error?.code], [503, 'freshness_exceeded'], list.body);
    decided(await ask(c, 'standard'), true, 'granted', 1, 'standard within its bound');
    decided(await ask(c, 'low'), true, 'granted', 1, 'low within its bound');
    assert.ok(Date.now() < t0 + FRESHNESS.standard, 'the machine was too slow for this step');

    await until(t0 + FRESHNESS.standard + MARGIN);
    decided(await ask(c, 'high'), false, 'freshness_exceeded', 1, 'high');
    decided(await ask(c, 'standard'), false, 'freshness_exceeded', 1, 'standard past its bound');
    decided(await ask(c, 'low'), true, 'granted', 1, 'low within its bound');
    assert.ok(Date.now() < t0 + FRESHNESS.low, 'the machine was too slow for this step');

    await until(t0 + FRESHNESS.low + MARGIN);
    for (const tier of ['low', 'standard', 'high']) decided(await ask(c, tier), false, 'freshness_exceeded', 1, `${tier} past every bound`);

    // One heartbeat: the same watermark, freshly issued.
    const hb = await push.push('watermark', o.watermark(1));
    assert.deepEqual([hb.status, hb.json?.watermark, hb.json?.epoch], [200, 1, 1], hb.body);
    // Each tier on its own, past its reuse window.
    await sleep(450);
    for (const tier of ['low', 'standard', 'high']) decided(await ask(c, tier), true, 'granted', 1, `${tier} after the heartbeat`);
  });
});

describe('drill 5: clock skew between the origin and the edge', () => {
  let d;
  // A second tenant on the same edge, whose origin's clock runs behind.
  const lagging = origin('lagging');
  before(async () => {
    d = await startDrill({}, 2, [lagging.keys.publicKey]);
  });
  after(() => d.edge.dispose());

  const pick = (s) => ({
    epoch: s.epoch,
    watermark: s.watermark,
    confirmedAt: s.confirmedAt,
    stale: s.stale,
    digest: s.digest,
    authority: s.authority,
  });

  test('500 ms ahead is taken; 5 s ahead is refused (clock_skew) and changes nothing', async () => {
    const { o, c, push } = d;
    assert.equal((await push.push('snapshot', o.snapshot(FAST, 1))).status, 200);
    assert.equal((await push.push('watermark', o.watermark(1))).status, 200);

    const ahead = Date.now() + 500;
    const taken = await push.push('watermark', o.watermark(1, undefined, ahead));
    assert.deepEqual([taken.status, taken.json?.watermark, taken.json?.epoch], [200, 1, 1], taken.body);
    for (const tier of ['high', 'standard', 'low']) decided(await ask(c, tier), true, 'granted', 1, `${tier}, heartbeat 500 ms ahead`);
    const held = pick((await c.status()).json);
    assert.deepEqual([held.epoch, held.watermark, held.confirmedAt, held.authority.confirmedAt], [1, 1, ahead, ahead]);

    // 5 s ahead: a heartbeat, a revocation watermark and a snapshot, each refused.
    const far = () => Date.now() + 5000;
    const refused = [
      ['heartbeat', await push.push('watermark', o.watermark(1, undefined, far()))],
      ['watermark 2', await push.push('watermark', o.watermark(2, undefined, far()))],
      ['snapshot 2', await push.push('snapshot', o.snapshot(FAST, 2, far()))],
    ];
    for (const [what, r] of refused) {
      assert.deepEqual([r.status, r.json?.error?.code], [400, 'clock_skew'], `${what}: ${r.body}`);
    }
    assert.deepEqual(pick((await c.status()).json), held);
    assert.deepEqual(pick((await push.status()).json), held);
    for (const tier of ['high', 'standard', 'low']) decided(await ask(c, tier), true, 'granted', 1, `${tier} after the refusals`);
  });

  test('an origin whose clock is behind by twice the high bound: taken; high fails closed, low answers', async () => {
    const lc = client(d.edge, { tenant: 'lagging' });
    const lpush = client(d.edge, { tenant: 'lagging', isolate: 1 });
    const behind = () => Date.now() - 2 * FRESHNESS.high;
    const m = model((x) => {
      x.tenant = 'lagging';
      x.freshness = { ...FRESHNESS };
    });
    const snap = await lpush.push('snapshot', lagging.snapshot(m, 1, behind()));
    assert.deepEqual([snap.status, snap.json?.epoch], [200, 1], snap.body);
    const wm = await lpush.push('watermark', lagging.watermark(1, undefined, behind()));
    assert.deepEqual([wm.status, wm.json?.watermark], [200, 1], wm.body);
    for (let round = 0; round < 2; round++) {
      decided(await ask(lc, 'high'), false, 'freshness_exceeded', 1, `high, origin behind (round ${round})`);
      decided(await ask(lc, 'low'), true, 'granted', 1, `low, origin behind (round ${round})`);
      // Its next heartbeat, just as late, is taken and changes nothing for high.
      const next = await lpush.push('watermark', lagging.watermark(1, undefined, behind()));
      assert.equal(next.status, 200, next.body);
      await sleep(450);
    }
  });
});
