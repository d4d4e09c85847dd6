// The feed and the npm package's Replica, end to end: the built Worker in workerd (Miniflare) on
// 127.0.0.1, the release publisher (`edge-authz publish --stdin`, heartbeats flowing), and
// Replicas in this Node process following the Worker over HTTP.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decode, encode, strHeader } from './msgpack.mjs';
import { EXAMPLE, MSGPACK, client, model, origin, pkg, startEdge, tempDir } from './edge.mjs';
import { freePort, originOnDisk, sleep, startPublisher } from './publisher.mjs';

const { Replica } = pkg;
const FEED = 'feed-token';
const CHECK = 'check-token';

/** A feed answer as a plain object (MessagePack maps come back as pairs). */
function feedAnswer(body) {
  const v = Object.fromEntries(decode(body));
  return { head: Object.fromEntries(v.head), messages: v.messages, more: v.more };
}

async function feed(edge, query = '', token = FEED) {
  const r = await edge.fetch(`/v1/acme/feed${query}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return r;
}

describe('the feed', () => {
  const o = origin();
  let edge;
  let open;
  before(async () => {
    const vars = { ORIGIN_PUBLIC_KEYS: o.keys.publicKey, CHECK_TOKEN: CHECK };
    edge = await startEdge({ vars: { ...vars, FEED_TOKEN: FEED }, port: await freePort() });
    open = await startEdge({ vars, port: await freePort() });
    for (const e of [edge, open]) assert.equal((await client(e).push('snapshot', o.snapshot(EXAMPLE, 1))).status, 200);
  });
  after(async () => {
    await edge?.dispose();
    await open?.dispose();
  });

  test('FEED_TOKEN (else CHECK_TOKEN) guards it; a malformed query is 400 invalid_query; GET only', async () => {
    assert.equal((await feed(edge, '', null)).status, 401);
    assert.equal((await feed(edge, '', CHECK)).status, 401, 'CHECK_TOKEN does not open a feed that has its own token');
    const ok = await feed(edge);
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.headers.get('content-type'), 'application/msgpack');
    assert.equal(ok.headers.get('cache-control'), 'no-store');
    assert.equal((await feed(open, '', CHECK)).status, 200, 'without FEED_TOKEN, CHECK_TOKEN opens it');
    assert.equal((await feed(open, '', null)).status, 401);
    for (const q of ['?after=x', '?after=-1', '?wait=30001', '?watermark=9007199254740992', '?confirmed=1.5']) {
      const r = await feed(edge, q);
      assert.equal(r.status, 400, `${q}: ${r.body}`);
      assert.equal(r.json.error.code, 'invalid_query', q);
    }
    const post = await edge.fetch('/v1/acme/feed', { method: 'POST', headers: { authorization: `Bearer ${FEED}` } });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET');
  });

  test('it answers the head and what a holder lacks, verified by the replica, nothing when it holds it all', async () => {
    const a = feedAnswer(await raw(edge, ''));
    assert.equal(a.head.epoch, 1);
    assert.equal(a.head.watermark, 0);
    assert.equal(a.messages.length, 1, 'the snapshot');
    assert.equal(a.more, false);
    const held = `?after=1&watermark=0&confirmed=${a.head.confirmedAt}`;
    const none = feedAnswer(await raw(edge, held));
    assert.deepEqual(none.head, a.head);
    assert.equal(none.messages.length, 0);
    // A snapshot bytes-for-bytes what the origin signed: the feed relays, never re-signs.
    const ev = new pkg.Evaluator({ tenant: 'acme', publicKeys: [o.keys.publicKey] });
    assert.deepEqual(ev.loadSnapshot(new Uint8Array(a.messages[0])), { epoch: 1, applied: true });
  });

  test('with wait, the request is held until a push moves the head, or until the wait ends', async () => {
    const a = feedAnswer(await raw(edge, ''));
    const held = `after=1&watermark=0&confirmed=${a.head.confirmedAt}`;
    // Nothing new: answered at the end of the wait, empty.
    let t0 = Date.now();
    const idle = feedAnswer(await raw(edge, `?${held}&wait=400`));
    assert.ok(Date.now() - t0 >= 350, `answered after ${Date.now() - t0} ms`);
    assert.equal(idle.messages.length, 0);
    // A delta pushed while it waits: answered at once with it.
    t0 = Date.now();
    const waiting = raw(edge, `?${held}&wait=20000`);
    await sleep(300);
    const m2 = model((m) => m.memberships.push({ member: 'user:bob', group: 'group:eng' }));
    const d = o.delta(EXAMPLE, m2, 1, 2);
    assert.equal((await client(edge).push('delta', d.delta)).status, 200);
    const woke = feedAnswer(await waiting);
    const took = Date.now() - t0;
    assert.ok(took < 5000, `the waiting request was answered ${took} ms after it was sent`);
    assert.equal(woke.head.epoch, 2);
    assert.equal(woke.messages.length, 1, 'the delta');
  });
});

/** The raw bytes of a feed answer from a listening edge. */
async function raw(edge, query) {
  const r = await globalThis.fetch(`${edge.url}/v1/acme/feed${query}`, { headers: { authorization: `Bearer ${FEED}` } });
  assert.equal(r.status, 200, `feed${query}: ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

/** A feed answer's bytes: `{head, messages, more}` as the feed encodes it (a MessagePack map). */
function feedBytes(head, messages, more) {
  const map = (entries) =>
    Buffer.concat([Buffer.from([0x80 | entries.length]), ...entries.flatMap(([k, v]) => [strHeader(Buffer.byteLength(k)), Buffer.from(k), v])]);
  const opt = (v) => (v === null ? encode(null) : encode(v));
  return map([
    ['head', map([['epoch', opt(head.epoch)], ['watermark', encode(head.watermark)], ['confirmedAt', opt(head.confirmedAt)]])],
    ['messages', encode(messages)],
    ['more', encode(more)],
  ]);
}

describe('a feed whose answers are cut at their size limit', () => {
  // An authority in this process, answering as the Worker's (the log after the holder's epoch
  // when it holds it, else the whole log from the snapshot), but cut after `CUT` messages with
  // `more` set, as the feed cuts at 8 MiB: a replica must follow a log longer than one answer.
  const CUT = 2;
  const o = origin();
  let log;
  let head;
  const asked = [];
  const fetch = async (url) => {
    const q = new URL(url).searchParams;
    asked.push(q.toString());
    const after = q.has('after') ? Number(q.get('after')) : null;
    const at = log.findIndex(([e]) => e === after);
    const suffix = (at >= 0 ? log.slice(at + 1) : log).map(([, m]) => m);
    const body = feedBytes(head, suffix.slice(0, CUT), suffix.length > CUT);
    return new Response(body, { status: 200, headers: { 'content-type': 'application/msgpack' } });
  };

  test('a replica on another history starts again from the snapshot in pieces, and reaches the head', async () => {
    // First the replica holds epoch 5 of one history...
    const a5 = o.snapshot(model((m) => m.suspended.push('user:bob')), 5);
    log = [[5, a5]];
    head = { epoch: 5, watermark: 0, confirmedAt: Date.now() };
    const rep = new Replica({ tenant: 'acme', publicKeys: [o.keys.publicKey], feed: 'http://feed.test/v1/acme/feed', fetch, follow: false });
    try {
      await rep.ready();
      assert.equal(rep.status().epoch, 5);
      // ... then the authority holds another: a snapshot at the same epoch, and deltas to 9.
      let state = EXAMPLE;
      log = [[5, o.snapshot(state, 5)]];
      for (let e = 6; e <= 9; e++) {
        const next = { ...state, memberships: [...state.memberships, { member: `user:u${e}`, group: 'group:eng' }] };
        log.push([e, o.delta(state, next, e - 1, e).delta]);
        state = next;
      }
      head = { epoch: 9, watermark: 0, confirmedAt: Date.now() };
      asked.length = 0;
      // A high check confirms first: the feed's pieces bring it to epoch 9.
      const d = await rep.check('user:u9', 'export', 'doc:roadmap');
      assert.deepEqual([d.allowed, d.reason, d.epoch], [false, 'no_grant', 9], JSON.stringify(d));
      const r = await rep.check('user:u9', 'read', 'doc:roadmap');
      assert.deepEqual([r.allowed, r.reason, r.epoch], [true, 'granted', 9], JSON.stringify(r));
      assert.equal(rep.status().epoch, 9);
      // After 5 (its deltas do not apply here), from nothing (the snapshot and one delta, cut),
      // then from 6 (cut again) and from 8.
      assert.deepEqual(asked.map((q) => q.match(/after=\d+/)?.[0] ?? 'from nothing'), ['after=5', 'from nothing', 'after=6', 'after=8']);
      assert.equal((await rep.check('user:bob', 'read', 'doc:roadmap')).reason, 'no_grant', 'the other history: bob is not suspended');
    } finally {
      rep.close();
    }
  });
});

// Ten users, each an admin of the organisation through a group of their own; the freshness bounds
// short so that a cut-off replica's tiers fail closed within seconds.
const USERS = 10;
const FRESHNESS = { low: 6000, standard: 3000, high: 1500 };
function team() {
  return model((m) => {
    m.freshness = FRESHNESS;
    for (let k = 0; k < USERS; k++) {
      m.memberships.push({ member: `user:u${k}`, group: `group:g${k}` });
      m.assignments.push({ principal: `group:g${k}`, role: 'admin', resource: 'org:acme' });
    }
  });
}
const TIER_OF = { read: 'low', write: 'standard', export: 'high' };

describe('a Replica following the Worker while the publisher pushes and heartbeats flow', () => {
  let origin;
  let edge;
  let pub;
  let epochs = 0;
  const replicas = [];
  const follow = (opts = {}) => {
    const r = new Replica({ tenant: 'acme', publicKeys: [origin.pub], feed: edge.url, token: FEED, ...opts });
    replicas.push(r);
    return r;
  };
  /** Sends one `--stdin` line; resolves the `issued` event of its epoch. */
  const change = async (line) => {
    const n = ++epochs;
    pub.child.stdin.write(`${JSON.stringify(line)}\n`);
    return pub.until((e) => e.event === 'issued' && e.epoch === n);
  };

  before(async () => {
    origin = await originOnDisk();
    const port = await freePort();
    edge = await startEdge({
      vars: { ORIGIN_PUBLIC_KEYS: origin.pub, CHECK_TOKEN: CHECK, FEED_TOKEN: FEED },
      port,
      persist: tempDir('edge-authz-replica-'),
    });
    edge.url = `http://127.0.0.1:${port}`;
    pub = startPublisher(origin, [edge], ['--stdin', '--tenant', 'acme', '--heartbeat', '300']);
    await change(team());
    await pub.until((e) => e.event === 'caught_up' && e.epoch === 1);
  });
  after(async () => {
    for (const r of replicas) r.close();
    await pub?.stop();
    await edge?.dispose();
  });

  test('revocations: the very next high check after publish acknowledges is denied, standard and low within their windows; 10,000 racing checks, none allowed below a watermark', async () => {
    const reuse = { standard: 500, low: 2000 };
    const rep = follow({ reuseMs: reuse });
    await rep.ready();
    const windowOf = { high: 0, ...reuse };
    const seen = [];
    const revokedAt = new Map();
    let stop = false;
    const racer = async (seed) => {
      for (let i = seed; !stop; i++) {
        const k = i % USERS;
        const action = ['read', 'write', 'export'][i % 3];
        const started = Date.now();
        const d = await rep.check(`user:u${k}`, action, 'doc:roadmap');
        seen.push({ k, tier: TIER_OF[action], started, d });
      }
    };
    const racers = Array.from({ length: 8 }, (_, i) => racer(i * 7));
    for (let k = 0; k < 5; k++) {
      await sleep(150);
      const issued = await change({ op: 'remove_membership', member: `user:u${k}`, group: `group:g${k}` });
      assert.equal(issued.kind, 'revocation');
      const ack = await pub.until((e) => e.event === 'revocation_acknowledged' && e.epoch === issued.epoch);
      revokedAt.set(k, ack.at);
      const next = await rep.check(`user:u${k}`, 'export', 'doc:roadmap');
      assert.equal(next.allowed, false, `u${k} export right after the acknowledgement: ${JSON.stringify(next)}`);
      assert.ok(next.epoch >= issued.epoch, JSON.stringify(next));
    }
    // Past the longest window, and at least 10,000 checks.
    const until = Date.now() + reuse.low + 500;
    while (Date.now() < until || seen.length < 10_000) await sleep(50);
    stop = true;
    await Promise.all(racers);
    assert.ok(seen.length >= 10_000, `${seen.length} checks`);
    let belowWatermark = 0;
    const late = [];
    for (const { k, tier, started, d } of seen) {
      if (d.allowed && (d.epoch === null || d.epoch < d.watermark)) belowWatermark++;
      const at = revokedAt.get(k);
      if (d.allowed && at !== undefined && started > at + windowOf[tier]) late.push({ k, tier, after: started - at });
    }
    assert.equal(belowWatermark, 0, 'allowed from an epoch below the watermark');
    assert.deepEqual(late, [], 'allowed past the tier\'s window after the revocation was acknowledged');
    const st = rep.status();
    assert.equal(st.feed.connected, true);
    assert.equal(st.epoch, epochs);
  });

  test('at_least_epoch: a grant\'s epoch from publish --json makes the next check granted after the replica asks its feed; an epoch nobody has is pending', async () => {
    // Not following, and a long low window: only a check that needs more asks the feed.
    const rep = follow({ follow: false, reuseMs: { low: 60_000, standard: 60_000 } });
    await rep.ready();
    const REQ = ['user:newcomer', 'read', 'doc:roadmap'];
    assert.equal((await rep.check(...REQ)).reason, 'no_grant');
    const issued = await change({ op: 'add_assignment', principal: 'user:newcomer', role: 'viewer', resource: 'doc:roadmap' });
    assert.equal(issued.kind, 'grant');
    await pub.until((e) => e.event === 'caught_up' && e.epoch === issued.epoch);
    const stale = await rep.check(...REQ);
    assert.equal(stale.reason, 'no_grant', 'within its window the replica answers from what it holds');
    assert.ok(stale.epoch < issued.epoch);
    const d = await rep.check(...REQ, { at_least_epoch: issued.epoch });
    assert.equal(d.allowed, true, JSON.stringify(d));
    assert.equal(d.reason, 'granted');
    assert.equal(d.epoch, issued.epoch);
    const p = await rep.check(...REQ, { at_least_epoch: issued.epoch + 1000 });
    assert.equal(p.reason, 'pending');
    assert.equal(p.allowed, false);
    const many = await rep.checkMany([REQ, ['user:u9', 'export', 'doc:roadmap']], { at_least_epoch: issued.epoch });
    assert.deepEqual(many.map((x) => x.reason), ['granted', 'granted']);
  });

  test('tryCheck: the decision at once when no confirmation is needed, undefined when one is', async () => {
    const rep = follow({ follow: false, reuseMs: { low: 60_000, standard: 0 } });
    await rep.ready();
    const exchanges = rep.status().feed.exchanges;
    const low = rep.tryCheck('user:u9', 'read', 'doc:roadmap');
    assert.deepEqual(low, await rep.check('user:u9', 'read', 'doc:roadmap'));
    assert.equal(low.allowed, true);
    assert.equal(rep.tryCheck('user:u9', 'read', 'doc:roadmap', { now: 'then' }).reason, 'invalid_request');
    assert.equal(rep.status().feed.exchanges, exchanges, 'no round trip for a low check within its window');
    assert.equal(rep.tryCheck('user:u9', 'export', 'doc:roadmap'), undefined, 'high always confirms');
    assert.equal(rep.tryCheck('user:u9', 'write', 'doc:roadmap'), undefined, 'a window of 0 never reuses');
    assert.equal(rep.tryCheck('user:u9', 'read', 'doc:roadmap', { at_least_epoch: 10 ** 6 }), undefined);
    assert.equal(rep.tryCheck('user:u9', 'delete', 'doc:roadmap'), undefined, 'an undeclared action is high');
    rep.close();
    assert.throws(() => rep.tryCheck('user:u9', 'read', 'doc:roadmap'), (e) => e.code === 'closed');
  });

  test('the feed cut: high fails closed at once, standard and low at their bounds; the feed back, all recover without a restart', async () => {
    const rep = follow();
    await rep.ready();
    const ask = (action) => rep.check('user:u9', action, 'doc:roadmap');
    for (const a of ['read', 'write', 'export']) assert.equal((await ask(a)).allowed, true, a);
    const cutAt = Date.now();
    await edge.dispose();
    // High: refused at once, whether the follower has noticed yet or not.
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      await assert.rejects(ask('export'), (e) => e.code === 'authority_unavailable');
      assert.ok(Date.now() - t0 < 1500, `a high check took ${Date.now() - t0} ms to fail`);
    }
    // Standard and low go on from what is held until their bounds pass.
    const firstDenied = {};
    while (Object.keys(firstDenied).length < 2 && Date.now() - cutAt < FRESHNESS.low + 5000) {
      for (const a of ['read', 'write']) {
        const d = await ask(a);
        if (!d.allowed && firstDenied[a] === undefined) {
          assert.equal(d.reason, 'freshness_exceeded', JSON.stringify(d));
          firstDenied[a] = Date.now() - cutAt;
        }
      }
      await sleep(100);
    }
    assert.ok(firstDenied.write > 500 && firstDenied.write <= FRESHNESS.standard + 1500, `standard denied ${firstDenied.write} ms after the cut`);
    assert.ok(firstDenied.read > FRESHNESS.standard && firstDenied.read <= FRESHNESS.low + 1500, `low denied ${firstDenied.read} ms after the cut`);
    assert.equal(rep.status().feed.connected, false);
    // The Worker back, on its port and storage; the publisher's heartbeats reach it again.
    await edge.restart();
    const back = Date.now();
    let ok = false;
    while (!ok && Date.now() - back < 20_000) {
      ok = (await Promise.all(['read', 'write', 'export'].map((a) => ask(a).catch(() => null)))).every((d) => d?.allowed);
      if (!ok) await sleep(200);
    }
    assert.ok(ok, 'every tier answers again once the feed is back');
    assert.equal(rep.status().feed.connected, true);
  });
});

describe('the Worker: a check that needs an epoch its isolate lacks asks the authority first', () => {
  const o = origin();
  let edge;
  before(async () => {
    // Two isolates sharing one authority: pushes go through isolate 1, checks through isolate 0,
    // whose low window (60 s) would otherwise keep it on what it held.
    edge = await startEdge({ vars: { ORIGIN_PUBLIC_KEYS: o.keys.publicKey, CONFIRM_REUSE_MS_LOW: '60000' }, isolates: 2 });
  });
  after(async () => edge?.dispose());

  test('granted with at_least_epoch, pending above the authority, the held answer without it', async () => {
    const pusher = client(edge, { isolate: 1 });
    const checker = client(edge, { isolate: 0 });
    assert.equal((await pusher.push('snapshot', o.snapshot(EXAMPLE, 1))).status, 200);
    const REQ = ['user:bob', 'read', 'doc:roadmap'];
    assert.equal((await checker.check(...REQ)).json.reason, 'no_grant');
    const m2 = model((m) => m.memberships.push({ member: 'user:bob', group: 'group:eng' }));
    assert.equal((await pusher.push('delta', o.delta(EXAMPLE, m2, 1, 2).delta)).status, 200);
    const held = await checker.check(...REQ);
    assert.deepEqual([held.json.reason, held.json.epoch], ['no_grant', 1], 'within its window the isolate answers from what it holds');
    const d = await checker.check(...REQ, { at_least_epoch: 2 });
    assert.deepEqual([d.status, d.json.allowed, d.json.reason, d.json.epoch], [200, true, 'granted', 2]);
    const p = await checker.check(...REQ, { at_least_epoch: 3 });
    assert.deepEqual([p.status, p.json.reason, p.json.epoch], [200, 'pending', 2]);
    const many = await checker.checkMany([REQ, ['user:alice', 'read', 'doc:roadmap']], { at_least_epoch: 3 });
    assert.deepEqual(many.json.decisions.map((x) => x.reason), ['pending', 'pending']);
    const listed = await checker.get(`resources?subject=user:bob&action=read&context=${encodeURIComponent('{"at_least_epoch":3}')}`);
    assert.deepEqual([listed.status, listed.json.error.code], [503, 'pending']);
    const bad = await checker.check(...REQ, { at_least_epoch: -1 });
    assert.equal(bad.json.reason, 'invalid_request');
  });
});
