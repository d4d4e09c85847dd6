// The package's Replica in headless Chromium, following the built Worker (workerd through
// Miniflare on 127.0.0.1) across origins: the page is served by a static server on one port
// (the installed package, fresh.mjs, mapped by an import map to its browser entry), the Worker
// listens on another and allows the page's origin in CORS_ORIGINS, so every feed request is a
// real cross-origin fetch with its preflight. A revocation pushed to the Worker is denied by the
// page's next `high` check; a page whose origin the Worker does not allow gets no feed, and its
// `high` checks fail closed with `authority_unavailable`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EXAMPLE, client, model, origin, startEdge } from './edge.mjs';
import { freshInstall } from './fresh.mjs';
import { launchChromium, openPage, serveStatic } from './hosts.mjs';
import { freePort } from './publisher.mjs';

const FEED = 'browser-feed-token';
const PAGE = `<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <title>edge-authz Replica in the browser</title>
  <link rel="icon" href="data:,">
  <script type="importmap">{"imports": {"edge-authz": "./node_modules/edge-authz/src/web.mjs"}}</script>
  <script type="module">
    import { Replica } from 'edge-authz';
    window.Replica = Replica;
    document.body.dataset.done = 'yes';
  </script>
</head>
<body></body>
</html>
`;
// The requests the revocation denies: alice exports as admin of workspace:eng (doc:roadmap's),
// and reads as that admin and as a member of group:eng (a viewer of org:acme through group:staff).
const EXPORT = ['user:alice', 'export', 'doc:roadmap'];
const READ = ['user:alice', 'read', 'doc:roadmap'];

const o = origin();
let allowed; // the static server whose origin the Worker allows
let other; // the same files from another port: an origin the Worker does not allow
let edge;
let browser;

before(async () => {
  const { consumer } = freshInstall();
  await writeFile(path.join(consumer, 'replica.html'), PAGE);
  allowed = await serveStatic(consumer);
  other = await serveStatic(consumer);
  edge = await startEdge({
    vars: { ORIGIN_PUBLIC_KEYS: o.keys.publicKey, CHECK_TOKEN: 'check-token', FEED_TOKEN: FEED, CORS_ORIGINS: allowed.base },
    port: await freePort(),
  });
  assert.equal((await client(edge).push('snapshot', o.snapshot(EXAMPLE, 1))).status, 200);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await edge?.dispose();
  await allowed?.close();
  await other?.close();
});

/** A page of `server` with `window.replica` following the edge's feed. */
async function replicaPage(server, options = {}) {
  const { page, problems } = await openPage(browser);
  await page.goto(`${server.base}/replica.html`);
  await page.waitForSelector('body[data-done="yes"]', { state: 'attached', timeout: 20_000 });
  await page.evaluate(
    (o) => {
      window.replica = new window.Replica(o);
    },
    { tenant: 'acme', publicKeys: [o.keys.publicKey], feed: edge.url, token: FEED, ...options },
  );
  return { page, problems };
}

/** `replica.check(...req)` in the page: the decision, or `{code}` of the rejection. */
function check(page, req) {
  return page.evaluate((req) => window.replica.check(...req).catch((e) => ({ code: e.code, message: e.message })), req);
}

test('a Replica in Chromium follows the Worker across origins and enforces a revocation at once', async () => {
  const { page, problems } = await replicaPage(allowed);
  await page.evaluate(() => window.replica.ready());
  const before = await check(page, EXPORT);
  assert.equal(before.allowed, true, JSON.stringify(before));
  assert.equal(before.epoch, 1);
  assert.equal(before.tier, 'high');
  assert.equal((await check(page, READ)).allowed, true);

  // The revocation: alice's assignment and membership removed, a watermark carrying the delta,
  // acknowledged (200).
  const next = model((m) => {
    m.assignments = m.assignments.filter((x) => x.principal !== 'user:alice');
    m.memberships = m.memberships.filter((x) => x.member !== 'user:alice');
  });
  const d = o.delta(EXAMPLE, next, 1, 2);
  const ack = await client(edge).push('watermark', o.watermark(2, d.delta));
  assert.equal(ack.status, 200, ack.body);

  // `high` confirms before every decision: denied on the very next check.
  const after = await check(page, EXPORT);
  assert.equal(after.allowed, false, JSON.stringify(after));
  assert.equal(after.reason, 'no_grant');
  assert.equal(after.epoch, 2);
  // The follower's long-poll brought the delta to `low` too (within its window, at the latest).
  const low = await page.evaluate(async (req) => {
    for (let i = 0; i < 200; i++) {
      const d = await window.replica.check(...req);
      if (!d.allowed) return d;
      await new Promise((r) => setTimeout(r, 50));
    }
    return null;
  }, READ);
  assert.equal(low?.reason, 'no_grant', JSON.stringify(low));

  const status = await page.evaluate(() => window.replica.status());
  assert.equal(status.epoch, 2);
  assert.equal(status.watermark, 2);
  assert.ok(status.feed.exchanges >= 2, JSON.stringify(status));
  await page.evaluate(() => window.replica.close());
  await page.close();
  // Chromium reports some feed requests as failed (net::ERR_ABORTED) once the page read their
  // answer in full (the decisions above were made from them), and the long-poll in flight when
  // the replica closed: those aside, nothing failed, no console error, no page error.
  const feedAborted = new RegExp(`^request failed: ${edge.url}/v1/acme/feed\\S* net::ERR_ABORTED$`);
  assert.deepEqual(
    problems.filter((p) => !feedAborted.test(p)),
    [],
  );
  assert.ok(
    allowed.served.some(([p, t]) => p === '/node_modules/edge-authz/dist/edge_authz_bg.wasm' && t === 'application/wasm'),
    JSON.stringify(allowed.served),
  );
});

test('a page from an origin the Worker does not allow gets no feed: high fails closed', async () => {
  const { page, problems } = await replicaPage(other, { follow: false, timeoutMs: 1000 });
  const d = await check(page, EXPORT);
  assert.equal(d.code, 'authority_unavailable', JSON.stringify(d));
  const status = await page.evaluate(() => window.replica.status());
  assert.equal(status.epoch, null, JSON.stringify(status));
  await page.evaluate(() => window.replica.close());
  await page.close();
  // The browser refused the cross-origin answer (not the Worker refusing the token).
  assert.ok(problems.some((p) => /CORS|Access-Control/i.test(p)), JSON.stringify(problems));
});
