// The installed package (fresh.mjs) in headless Chromium: the consumer folder is served over
// http on 127.0.0.1 by a tiny static server, a page maps `edge-authz` to the package's browser
// entry with an import map and runs the round trip (fixtures/roundtrip.mjs); playwright-core
// drives /usr/bin/chromium and reads the results from the page. The server and the browser come
// from hosts.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EXPECTED } from './fixtures/roundtrip.mjs';
import { freshInstall } from './fresh.mjs';
import { launchChromium, openPage, serveStatic } from './hosts.mjs';

const PAGE = `<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <title>edge-authz in the browser</title>
  <link rel="icon" href="data:,">
  <script type="importmap">{"imports": {"edge-authz": "./node_modules/edge-authz/src/web.mjs"}}</script>
  <script type="module">
    import * as api from 'edge-authz';
    import { roundTrip } from './roundtrip.mjs';
    try {
      window.results = roundTrip(api);
    } catch (e) {
      window.failure = String(e && e.stack || e);
    }
    document.getElementById('out').textContent = JSON.stringify(window.results ?? window.failure);
    document.body.dataset.done = 'yes';
  </script>
</head>
<body><pre id="out"></pre></body>
</html>
`;

let server;
let browser;

before(async () => {
  const { consumer } = freshInstall();
  await writeFile(path.join(consumer, 'index.html'), PAGE);
  server = await serveStatic(consumer);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('the round trip in Chromium through an import map to the browser entry', async () => {
  const { page, problems } = await openPage(browser);
  await page.goto(`${server.base}/`);
  await page.waitForSelector('body[data-done="yes"]', { timeout: 20_000 });
  const failure = await page.evaluate(() => window.failure);
  assert.equal(failure, undefined, failure);
  const results = await page.evaluate(() => window.results);
  const shown = JSON.parse(await page.textContent('#out'));
  await page.close();
  assert.deepEqual(problems, []);
  assert.deepEqual(results, EXPECTED);
  assert.deepEqual(shown, EXPECTED);
  // The wasm was fetched from the package, as application/wasm (streaming compilation).
  const { served } = server;
  assert.ok(
    served.some(([p, t]) => p === '/node_modules/edge-authz/dist/edge_authz_bg.wasm' && t === 'application/wasm'),
    JSON.stringify(served),
  );
  assert.deepEqual(served.filter(([, t]) => t === 404), []);
});
