// The installed package (fresh.mjs) in headless Chromium: the consumer folder is served over
// http on 127.0.0.1 by a tiny static server, a page maps `edge-authz` to the package's browser
// entry with an import map and runs the round trip (fixtures/roundtrip.mjs); playwright-core
// drives /usr/bin/chromium and reads the results from the page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { EXPECTED } from './fixtures/roundtrip.mjs';
import { freshInstall } from './fresh.mjs';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.cjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.ts': 'text/plain; charset=utf-8',
};

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
let base;
const served = [];

before(async () => {
  const { consumer } = freshInstall();
  await writeFile(path.join(consumer, 'index.html'), PAGE);
  server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const file = path.join(consumer, decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname));
    if (!file.startsWith(consumer + path.sep)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      const type = TYPES[path.extname(file)] ?? 'application/octet-stream';
      served.push([url.pathname, type]);
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
    } catch {
      served.push([url.pathname, 404]);
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
});

test('the round trip in Chromium through an import map to the browser entry', async () => {
  const page = await browser.newPage();
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  await page.goto(`${base}/`);
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
  assert.ok(
    served.some(([p, t]) => p === '/node_modules/edge-authz/dist/edge_authz_bg.wasm' && t === 'application/wasm'),
    JSON.stringify(served),
  );
  assert.deepEqual(served.filter(([, t]) => t === 404), []);
});
