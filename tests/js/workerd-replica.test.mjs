// The package's Replica in a Worker of the user's (the fresh install bundled as wrangler bundles
// it, run in workerd through Miniflare), following the project's Worker (workerd on 127.0.0.1)
// with `follow: false`, under concurrent requests: the isolate's requests share the feed round
// trips their `high` checks need (a confirmation awaited across requests), every one of them is
// answered, and a revocation acknowledged before a burst is enforced on every request of it.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Miniflare } from 'miniflare';
import { EXAMPLE, client, model, origin, startEdge } from './edge.mjs';
import { freshInstall } from './fresh.mjs';
import { bundleWorker } from './hosts.mjs';
import { freePort } from './publisher.mjs';

const FEED = 'feed-token';
const BURST = 200;
const WORKER = `import { Replica } from 'edge-authz';

let replica;
export default {
  async fetch(request, env) {
    replica ??= new Replica({
      tenant: 'acme',
      publicKeys: env.ORIGIN_PUBLIC_KEYS.split(','),
      feed: env.EDGE_URL,
      token: env.FEED_TOKEN,
      follow: false,
    });
    if (request.method === 'GET') return Response.json(replica.status());
    const { subject, action, resource } = await request.json();
    try {
      return Response.json(await replica.check(subject, action, resource));
    } catch (e) {
      return Response.json({ error: e.code, message: e.message }, { status: 503 });
    }
  },
};
`;

const o = origin();
let edge;
let mf;

before(async () => {
  edge = await startEdge({ vars: { ORIGIN_PUBLIC_KEYS: o.keys.publicKey, FEED_TOKEN: FEED }, port: await freePort() });
  assert.equal((await client(edge).push('snapshot', o.snapshot(EXAMPLE, 1))).status, 200);
  const { consumer } = freshInstall();
  const entry = path.join(consumer, 'replica-worker.mjs');
  writeFileSync(entry, WORKER);
  const outdir = path.join(consumer, 'replica-worker-dist');
  const { outfile, wasm } = await bundleWorker({ entry, consumer, outdir });
  assert.equal(wasm.length, 1);
  mf = new Miniflare({
    modules: [
      { type: 'ESModule', path: outfile },
      { type: 'CompiledWasm', path: path.join(outdir, wasm[0].name) },
    ],
    modulesRoot: outdir,
    compatibilityDate: '2026-04-01',
    bindings: { ORIGIN_PUBLIC_KEYS: o.keys.publicKey, EDGE_URL: edge.url, FEED_TOKEN: FEED },
  });
  await mf.ready;
});

after(async () => {
  await mf?.dispose();
  await edge?.dispose();
});

async function ask(subject, action, resource) {
  const res = await mf.dispatchFetch('http://edge.test/', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ subject, action, resource }),
  });
  return { status: res.status, json: await res.json() };
}

async function exchanges() {
  const res = await mf.dispatchFetch('http://edge.test/status');
  return (await res.json()).feed.exchanges;
}

/** BURST requests at once, `high` and `low` in turn: the answers, and the feed round trips. */
async function burst() {
  const before = await exchanges();
  const answers = await Promise.all(
    Array.from({ length: BURST }, (_, i) => ask('user:alice', i % 2 ? 'read' : 'export', 'doc:roadmap')),
  );
  return { answers, trips: (await exchanges()) - before };
}

test('concurrent requests in one isolate share their confirmations; a revocation binds every request after it', async () => {
  assert.equal((await ask('user:alice', 'export', 'doc:roadmap')).json.allowed, true, 'warm: the snapshot held');
  const first = await burst();
  for (const a of first.answers) {
    assert.equal(a.status, 200, JSON.stringify(a.json));
    assert.equal(a.json.allowed, true, JSON.stringify(a.json));
    assert.equal(a.json.epoch, 1);
  }
  // A check never takes an exchange that started before it arrived, so requests that arrive
  // together need two at most (the one in flight and the one queued behind it); requests that
  // reach the isolate in waves need a few more, never one each.
  assert.ok(first.trips >= 1 && first.trips <= 20, `${first.trips} feed round trips for ${BURST / 2} high checks`);

  const next = model((m) => {
    m.assignments = m.assignments.filter((x) => x.principal !== 'user:alice');
    m.memberships = m.memberships.filter((x) => x.member !== 'user:alice');
  });
  const ack = await client(edge).push('watermark', o.watermark(2, o.delta(EXAMPLE, next, 1, 2).delta));
  assert.equal(ack.status, 200, ack.body);
  const second = await burst();
  for (const [i, a] of second.answers.entries()) {
    assert.equal(a.status, 200, JSON.stringify(a.json));
    if (i % 2 === 0) {
      // high: confirmed after the acknowledgement, so denied at the revocation's epoch.
      assert.deepEqual([a.json.allowed, a.json.reason, a.json.epoch], [false, 'no_grant', 2], JSON.stringify(a.json));
    } else {
      // low: from the held state within its window, or from the confirmation a high check of
      // the burst made; never allowed from below the watermark once a confirmation brought it.
      assert.ok(a.json.epoch === 1 || !a.json.allowed, JSON.stringify(a.json));
    }
  }
  assert.ok(second.trips <= 20, `${second.trips} feed round trips`);
});
