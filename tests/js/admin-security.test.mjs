// The admin page's defences, in headless Chromium against the real Worker in workerd (Miniflare,
// listening on 127.0.0.1), which serves it as static assets under /admin with the headers of
// www/_headers (build/assets/_headers):
// - the Content-Security-Policy, frame-ancestors, X-Frame-Options, Referrer-Policy and nosniff
//   headers on every file of the page, and index.html's <meta> policy equal to the header's
//   (without frame-ancestors);
// - the page working in full under that policy with no violation, and refusing an inline script;
// - another origin's page cannot frame it;
// - a `?worker=` link to another origin gets no token (a server here records every request and
//   its Authorization header) until the administrator confirms that origin (the warning's
//   screenshot: target/admin-screenshots/9-cross-origin.png).
// Every server binds 127.0.0.1 and is stopped in `after`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { EXAMPLE, origin, startEdge, tempDir, ASSETS } from './edge.mjs';
import { launchChromium, openPage, serveStatic } from './hosts.mjs';
import { REPO_DIR } from './pkg.mjs';

const TOKEN = 'admin-security-token';
const SHOTS = path.join(REPO_DIR, 'target/admin-screenshots');
const LONG_LIVED = { ...structuredClone(EXAMPLE), freshness: { low: 600_000, standard: 600_000, high: 600_000 } };

let edge;
let browser;
const servers = [];

before(async () => {
  assert.ok(existsSync(path.join(ASSETS, 'admin/index.html')), 'build/assets/admin is missing: run scripts/build-www.sh');
  const signer = origin('acme');
  edge = await startEdge({
    port: 0,
    vars: { ORIGIN_PUBLIC_KEYS: signer.keys.publicKey, CHECK_TOKEN: TOKEN },
  });
  const put = await fetch(`${edge.url}/v1/acme/snapshot`, {
    method: 'PUT',
    headers: { 'content-type': 'application/msgpack' },
    body: signer.snapshot(LONG_LIVED, 1),
  });
  assert.equal(put.status, 200, await put.text());
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await edge?.dispose();
  for (const s of servers) await s.close();
});

/** A CSP header value as a Map directive -> its sources, in order. */
function directives(csp) {
  return new Map(
    csp.split(';').map((d) => d.trim()).filter(Boolean).map((d) => {
      const [name, ...sources] = d.split(/\s+/);
      return [name.toLowerCase(), sources];
    }),
  );
}

/**
 * A stand-in for a Worker on another origin (127.0.0.1, a free port): it records every request
 * (`{method, path, authorization}`), answers CORS preflights for any origin, and answers
 * `/v1/<tenant>/status` as a Worker would.
 */
async function recordingWorker() {
  const requests = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method, path: req.url, authorization: req.headers.authorization ?? null });
    const cors = {
      'access-control-allow-origin': req.headers.origin ?? '*',
      'access-control-allow-headers': 'authorization, content-type',
      'access-control-allow-methods': 'GET, POST',
    };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, cors).end();
      return;
    }
    const status = {
      tenant: 'acme', epoch: 1, watermark: 0, confirmedAt: Date.now(), stale: false,
      freshness: { low: 300_000 }, counts: { members: 0 }, actions: { read: 'low' },
    };
    res.writeHead(200, { ...cors, 'content-type': 'application/json' }).end(JSON.stringify(status));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const s = {
    base: `http://127.0.0.1:${server.address().port}`,
    requests,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
  servers.push(s);
  return s;
}

/** Resolves once `f()` holds (polled), or fails after 10 s. */
async function until(f) {
  for (const end = Date.now() + 10_000; !f(); ) {
    assert.ok(Date.now() < end, `timed out waiting for ${f}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A watched page that also records every CSP violation the document reports. */
async function watchedPage() {
  const { page, problems } = await openPage(browser);
  page.setDefaultTimeout(30_000);
  await page.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.cspViolations.push(
        `${e.effectiveDirective} ${e.blockedURI} (${/frame-ancestors/.test(e.originalPolicy) ? 'header' : 'meta'})`));
  });
  return { page, problems };
}

test('the Worker serves every file of the page with its CSP and framing headers', async () => {
  const files = ['/admin/', '/admin/app.js', '/admin/lib/source.js', '/admin/style.css', '/admin/pkg/src/web.mjs', '/admin/pkg/dist/edge_authz_bg.wasm'];
  let csp;
  for (const file of files) {
    const r = await edge.fetch(file);
    assert.equal(r.status, 200, file);
    const h = r.headers;
    assert.equal(h.get('x-frame-options'), 'DENY', file);
    assert.equal(h.get('referrer-policy'), 'no-referrer', file);
    assert.equal(h.get('x-content-type-options'), 'nosniff', file);
    assert.ok(h.get('content-security-policy'), `${file}: no Content-Security-Policy`);
    csp ??= h.get('content-security-policy');
    assert.equal(h.get('content-security-policy'), csp, file);
  }
  const d = directives(csp);
  assert.deepEqual(d.get('default-src'), ["'none'"]);
  assert.deepEqual(d.get('script-src'), ["'self'", "'wasm-unsafe-eval'"]);
  assert.deepEqual(d.get('style-src'), ["'self'"]);
  assert.deepEqual(d.get('object-src'), ["'none'"]);
  assert.deepEqual(d.get('base-uri'), ["'none'"]);
  assert.deepEqual(d.get('frame-ancestors'), ["'none'"]);
  // A Worker the administrator types: this origin, any https origin, one on this machine over
  // http; never plain http elsewhere.
  assert.deepEqual(d.get('connect-src'), ["'self'", 'https:', 'http://127.0.0.1:*', 'http://localhost:*']);
  for (const sources of d.values()) {
    for (const bad of ["'unsafe-inline'", "'unsafe-eval'", '*', 'http:']) assert.ok(!sources.includes(bad), `${bad} in ${csp}`);
  }

  // index.html's <meta> policy (for static hosts that send no headers) is the same, but for
  // frame-ancestors (a <meta> cannot carry it).
  const html = (await edge.fetch('/admin/')).body;
  const meta = html.match(/<meta http-equiv="Content-Security-Policy" content="([^"]+)">/);
  assert.ok(meta, 'index.html has no <meta> Content-Security-Policy');
  d.delete('frame-ancestors');
  assert.deepEqual(directives(meta[1]), d);
  assert.match(html, /<meta name="referrer" content="no-referrer">/);
  // And nothing inline for the policy to block.
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'an inline <script>');
  assert.doesNotMatch(html, /\sstyle=|\son[a-z]+=|<style/i, 'an inline style or handler');
});

test('under its CSP the page works in full with no violation, and refuses an inline script', async () => {
  const { page, problems } = await watchedPage();
  await page.goto(`${edge.url}/admin/?tenant=acme`);
  await page.waitForSelector('body[data-ready="yes"]');
  // The example compiled in the page (wasm under 'wasm-unsafe-eval'), the subject view and an
  // explained cell, the resource view, the check tool, what-if and its export.
  await page.click('#load-example');
  await page.waitForSelector('body[data-loaded="preview"]');
  await page.fill('#subject-search', 'ali');
  await page.click('#subject-results button[data-id="user:alice"]');
  await page.waitForSelector('#subject-out[data-subject="user:alice"]');
  await page.click('tr[data-resource="doc:roadmap"] td[data-action="export"]');
  await page.waitForSelector('#subject-out .explain .path');
  // The resource tree's indentation is set through the CSSOM, which the policy allows.
  const pad = (r) => page.$eval(`tr[data-resource="${r}"] th`, (th) => parseFloat(getComputedStyle(th).paddingLeft));
  assert.ok((await pad('doc:roadmap')) > (await pad('org:acme')));
  await page.click('[data-view="resource"]');
  await page.fill('#resource-search', 'road');
  await page.click('#resource-results button[data-id="doc:roadmap"]');
  await page.waitForSelector('#resource-out[data-resource="doc:roadmap"]');
  await page.click('[data-view="check"]');
  await page.fill('#check-subject', 'user:alice');
  await page.selectOption('#check-action', 'read');
  await page.fill('#check-resource', 'org:acme');
  await page.click('#check-form button[type="submit"]');
  await page.waitForSelector('#check-out .explain[data-reason="granted"]');
  await page.click('[data-view="whatif"]');
  await page.selectOption('#stage-kind', 'suspend');
  await page.fill('#stage-fields [name="subject"]', 'user:alice');
  await page.click('#stage-form button[type="submit"]');
  await page.waitForSelector('#revocations-count');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
  assert.equal(download.suggestedFilename(), 'acme.staged.json');

  // The Worker that serves the page (same origin): the token goes without a question.
  await page.fill('#worker-token', TOKEN);
  assert.ok(await page.isHidden('#worker-elsewhere'));
  await page.click('#connect');
  await page.waitForSelector('body[data-loaded="worker"]');
  assert.ok(await page.isHidden('#cross-origin'));
  await page.click('[data-view="subject"]');
  await page.fill('#subject-search', 'user:alice');
  await page.press('#subject-search', 'Enter');
  await page.waitForSelector('#subject-out[data-subject="user:alice"]');
  assert.equal(await page.textContent('tr[data-resource="doc:roadmap"] td[data-action="write"]'), '✓ admin');

  assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
  assert.deepEqual(problems, []);

  // The policy is in force: an injected inline script does not run, and both policies (the
  // header's and the <meta>'s) report it.
  await page.evaluate(() => {
    const s = document.createElement('script');
    s.textContent = 'window.inlineRan = true';
    document.head.append(s);
  });
  await page.waitForFunction(() => window.cspViolations.length === 2 || window.inlineRan);
  assert.equal(await page.evaluate(() => window.inlineRan), undefined);
  assert.deepEqual((await page.evaluate(() => window.cspViolations)).sort(),
    ['script-src-elem inline (header)', 'script-src-elem inline (meta)']);
  await page.close();
});

test('a page on another origin cannot frame the admin page', async () => {
  // The framing page, and as a control the same admin page from a static host that sends no
  // headers (its <meta> policy cannot forbid framing): that one loads in its frame.
  const plain = await serveStatic(path.join(ASSETS, 'admin'));
  servers.push(plain);
  const dir = tempDir('edge-authz-admin-frame-');
  writeFileSync(path.join(dir, 'frame.html'),
    `<!doctype html><iframe name="admin" src="${edge.url}/admin/"></iframe>` +
      `<iframe name="control" src="${plain.base}/index.html"></iframe>`);
  const framer = await serveStatic(dir);
  servers.push(framer);
  const { page, problems } = await openPage(browser);
  page.setDefaultTimeout(30_000);
  await page.goto(`${framer.base}/frame.html`);
  await page.frame({ name: 'control' }).waitForSelector('body[data-ready="yes"]');
  await page.waitForFunction(() => document.querySelectorAll('iframe').length === 2);
  await page.waitForLoadState('load');
  const admin = page.frame({ name: 'admin' });
  assert.ok(admin);
  // Chromium blocks the response and shows its error page in the frame: the admin page's
  // document never loaded there.
  assert.equal(admin.url(), 'chrome-error://chromewebdata/');
  assert.ok(problems.includes(`request failed: ${edge.url}/admin/ net::ERR_BLOCKED_BY_RESPONSE`), problems.join('\n'));
  assert.ok(problems.some((p) => /frame-ancestors 'none'/.test(p)), problems.join('\n'));
  await page.close();
});

test('a ?worker= link to another origin gets no token until the administrator confirms it', async () => {
  const other = await recordingWorker();
  const { page, problems } = await watchedPage();
  await page.goto(`${edge.url}/admin/?tenant=acme&worker=${encodeURIComponent(other.base)}`);
  await page.waitForSelector('body[data-ready="yes"]');
  assert.equal(await page.inputValue('#worker-url'), other.base);
  await page.fill('#worker-token', TOKEN);
  await page.click('#connect');
  // Nothing sent: no request at all reaches the other origin.
  await page.waitForTimeout(500);
  assert.deepEqual(other.requests, []);
  // A warning naming the target origin and the page's own.
  await page.waitForSelector('#cross-origin:not([hidden])');
  assert.equal(await page.textContent('#cross-origin-target'), other.base);
  assert.equal(await page.textContent('#cross-origin-self'), edge.url);
  assert.equal(await page.textContent('#confirm-origin'), `Send the token to ${other.base}`);
  // Said from the start, under the Worker row, too.
  assert.ok(await page.isVisible('#worker-elsewhere'));
  assert.equal(await page.textContent('#worker-elsewhere-origin'), other.base);
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, '9-cross-origin.png') });
  // Declined: still nothing sent, and nothing connected.
  await page.click('#cancel-origin');
  assert.equal(await page.$eval('#cross-origin', (d) => d.hidden), true);
  assert.match(await page.textContent('#message'), /token was not sent/);
  assert.equal(await page.$eval('#tabs', (t) => t.hidden), true);
  // Asked again; the URL edited while asked voids the question (it named the other origin).
  await page.click('#connect');
  await page.waitForSelector('#cross-origin:not([hidden])');
  await page.fill('#worker-url', `${other.base}/`);
  assert.equal(await page.$eval('#cross-origin', (d) => d.hidden), true);
  await page.waitForTimeout(300);
  assert.deepEqual(other.requests, []);
  // Plain http to another host is refused outright (the token would travel in clear).
  await page.fill('#worker-url', 'http://worker.example.com');
  await page.click('#connect');
  await page.waitForSelector('#message.error');
  assert.match(await page.textContent('#message'), /^\[insecure_url\] http:\/\/worker\.example\.com is not https/);
  assert.equal(await page.$eval('#cross-origin', (d) => d.hidden), true);

  // Confirmed: now the token goes there.
  await page.fill('#worker-url', other.base);
  await page.click('#connect');
  await page.waitForSelector('#cross-origin:not([hidden])');
  assert.deepEqual(other.requests, []);
  await page.click('#confirm-origin');
  await page.waitForSelector('body[data-loaded="worker"]');
  const gets = () => other.requests.filter((r) => r.method === 'GET');
  assert.ok(gets().length > 0);
  assert.deepEqual(new Set(gets().map((r) => `${r.path} ${r.authorization}`)), new Set([`/v1/acme/status Bearer ${TOKEN}`]));
  // (A preflight carries no token.)
  assert.ok(other.requests.every((r) => r.method === 'GET' || (r.method === 'OPTIONS' && r.authorization === null)));
  // The confirmation holds for that origin until the page is reloaded: no second question.
  const sent = gets().length;
  await page.click('#connect');
  await until(() => gets().length > sent);
  assert.equal(await page.$eval('#cross-origin', (d) => d.hidden), true);

  // A second origin is asked about on its own.
  const third = await recordingWorker();
  await page.fill('#worker-url', third.base);
  await page.click('#connect');
  await page.waitForSelector('#cross-origin:not([hidden])');
  assert.equal(await page.textContent('#cross-origin-target'), third.base);
  await page.waitForTimeout(300);
  assert.deepEqual(third.requests, []);
  await page.click('#cancel-origin');

  assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
  assert.deepEqual(problems, []);
  await page.close();

  // Reloaded, the page asks again.
  const { page: again } = await watchedPage();
  await again.goto(`${edge.url}/admin/?tenant=acme&worker=${encodeURIComponent(other.base)}`);
  await again.waitForSelector('body[data-ready="yes"]');
  await again.fill('#worker-token', TOKEN);
  const before = other.requests.length;
  await again.click('#connect');
  await again.waitForSelector('#cross-origin:not([hidden])');
  assert.equal(other.requests.length, before);
  await again.close();
});
