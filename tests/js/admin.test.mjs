// The admin preview page (www/, assembled into build/assets/admin) in headless Chromium, served
// by the real Worker in workerd (Miniflare, listening on 127.0.0.1) as static assets under
// /admin, as wrangler.toml configures it. Every table cell, path and diff the page shows is
// checked against the npm package's own answers, computed here in Node; screenshots of each view
// go to target/admin-screenshots/. No console errors, page errors or failed requests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { EXAMPLE, origin, startEdge, tempDir, ASSETS } from './edge.mjs';
import { launchChromium, openPage, serveStatic } from './hosts.mjs';
import { REPO_DIR, requirePackage } from './pkg.mjs';

const pkg = requirePackage();
const SHOTS = path.join(REPO_DIR, 'target/admin-screenshots');
const TOKEN = 'admin-test-token';
const BIN = path.join(REPO_DIR, 'target/release/edge-authz');

// The example as the Worker holds it for tenant acme: every tier's bound ten minutes, so a slow
// machine never turns a listing into freshness_exceeded (tenant beta's test wants exactly that).
const LONG_LIVED = { ...structuredClone(EXAMPLE), freshness: { low: 600_000, standard: 600_000, high: 600_000 } };

let edge;
let browser;
let signer;
// The same page on another origin (a plain static server), which the Worker's CORS_ORIGINS allows.
let elsewhere;

before(async () => {
  assert.ok(existsSync(path.join(ASSETS, 'admin/index.html')), 'build/assets/admin is missing: run scripts/build-www.sh');
  mkdirSync(SHOTS, { recursive: true });
  elsewhere = await serveStatic(path.join(ASSETS, 'admin'));
  signer = origin('acme');
  edge = await startEdge({
    port: 0,
    vars: { ORIGIN_PUBLIC_KEYS: signer.keys.publicKey, CHECK_TOKEN: TOKEN, CORS_ORIGINS: elsewhere.base },
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
  await elsewhere?.close();
});

/** The page, loaded and ready, with its problems (console errors, failed requests) recorded. */
async function adminPage(query = '') {
  const { page, problems } = await openPage(browser);
  page.setDefaultTimeout(30_000);
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${edge.url}/admin/${query}`);
  await page.waitForSelector('body[data-ready="yes"]');
  return { page, problems };
}

async function loadExample(page) {
  await page.click('#load-example');
  await page.waitForSelector('body[data-loaded="preview"]');
}

const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

/** The table the page drew: {rowId: {action: {allowed, reason, text}}}. */
async function tableOf(page, out, rowKey) {
  return page.$$eval(`#${out} table.perm tbody tr`, (trs, key) => {
    const t = {};
    for (const tr of trs) {
      const cells = {};
      for (const td of tr.querySelectorAll('td')) {
        cells[td.dataset.action] = { allowed: td.dataset.allowed === 'true', reason: td.dataset.reason, text: td.textContent };
      }
      t[tr.dataset[key]] = cells;
    }
    return t;
  }, rowKey);
}

/** The same table from the package: rows are `ids` (those with some action allowed). */
function expectedTable(ev, ids, request, actions, now) {
  const t = {};
  for (const id of ids) {
    t[id] = {};
    for (const a of actions) {
      const d = ev.check(...request(id, a), { now });
      t[id][a] = { allowed: d.allowed, reason: d.reason, text: d.allowed ? `✓ ${d.grant.role}` : d.reason === 'no_grant' ? '·' : '✕' };
    }
  }
  return t;
}

function union(lists) {
  return [...new Set(lists.flat())].sort();
}

async function pathOf(page) {
  return page.$$eval('.explain .path .node', (ns) => ns.map((n) => [n.dataset.kind, n.dataset.id]));
}

async function pickFrom(page, which, text, id) {
  await page.fill(`#${which}-search`, text);
  await page.click(`#${which}-results button[data-id="${id}"]`);
  await page.waitForSelector(`#${which}-out[data-${which}="${id}"]`);
}

test('the example: status, the subject view against the package, and an explained cell', async () => {
  const { page, problems } = await adminPage();
  assert.match(await page.textContent('#not-a-boundary'), /not a security boundary/);
  await loadExample(page);
  assert.equal(await page.textContent('#mode'), 'unsigned preview');
  assert.equal(await page.textContent('[data-field="tenant"]'), 'acme');
  assert.match(await page.textContent('[data-field="freshness"]'), /low 300 s, standard 30 s, high 5 s/);
  await pickFrom(page, 'subject', 'ali', 'user:alice');
  const now = Number(await page.getAttribute('#subject-out', 'data-now'));
  const ev = pkg.Evaluator.preview(EXAMPLE);
  const actions = Object.keys(EXAMPLE.actions);
  const rows = union(actions.map((a) => ev.listResources('user:alice', a, { now })));
  const shown = await tableOf(page, 'subject-out', 'resource');
  assert.deepEqual(Object.keys(shown).sort(), rows);
  assert.deepEqual(shown, expectedTable(ev, rows, (r, a) => ['user:alice', a, r], actions, now));
  // The view shows what it showed: alice reads the org through her groups, and is admin of eng.
  assert.equal(shown['org:acme'].read.text, '✓ viewer');
  assert.equal(shown['doc:roadmap'].export.text, '✓ admin');

  await page.click('tr[data-resource="org:acme"] td[data-action="read"]');
  assert.deepEqual(await pathOf(page), [
    ['subject', 'user:alice'],
    ['group', 'group:eng'],
    ['group', 'group:staff'],
    ['role', 'viewer'],
    ['assigned', 'org:acme'],
  ]);
  await page.click('tr[data-resource="doc:roadmap"] td[data-action="export"]');
  assert.deepEqual(await pathOf(page), [
    ['subject', 'user:alice'],
    ['role', 'admin'],
    ['assigned', 'workspace:eng'],
    ['inherited', 'doc:roadmap'],
  ]);
  const shownDecision = JSON.parse(await page.textContent('.explain pre.decision'));
  assert.deepEqual(shownDecision, ev.check('user:alice', 'export', 'doc:roadmap', { now }));
  await shot(page, '1-subject');

  // Another "as of" time redraws the table: after alice's admin assignment expires
  // (4070908800000 is 2099-01-01), only the read through her groups is left.
  await page.fill('#asof', '2099-06-01T00:00:00');
  await page.dispatchEvent('#asof', 'change');
  await page.waitForFunction((t) => document.querySelector('#subject-out').dataset.now !== t, String(now));
  const later = Number(await page.getAttribute('#subject-out', 'data-now'));
  assert.ok(later > 4070908800000);
  const expired = await tableOf(page, 'subject-out', 'resource');
  const laterRows = union(actions.map((a) => ev.listResources('user:alice', a, { now: later })));
  assert.deepEqual(laterRows, ['doc:roadmap', 'org:acme', 'workspace:eng']);
  assert.deepEqual(expired, expectedTable(ev, laterRows, (r, a) => ['user:alice', a, r], actions, later));
  assert.equal(expired['doc:roadmap'].export.reason, 'no_grant');
  await page.fill('#asof', '');
  await page.dispatchEvent('#asof', 'change');

  // A suspended user: no rows, and the reason.
  await pickFrom(page, 'subject', 'mallory', 'user:mallory');
  assert.match(await page.textContent('#subject-out .empty'), /\(suspended\)/);
  await page.close();
  ev.free();
  assert.deepEqual(problems, []);
});

test('the resource view: who can do what on a resource, and the assignments that apply', async () => {
  const { page, problems } = await adminPage();
  await loadExample(page);
  await page.click('[data-view="resource"]');
  await pickFrom(page, 'resource', 'road', 'doc:roadmap');
  const now = Number(await page.getAttribute('#resource-out', 'data-now'));
  const ev = pkg.Evaluator.preview(EXAMPLE);
  const actions = Object.keys(EXAMPLE.actions);
  const rows = union(actions.map((a) => ev.listSubjects('doc:roadmap', a, { now })));
  assert.deepEqual(rows, ['user:alice']);
  const shown = await tableOf(page, 'resource-out', 'subject');
  assert.deepEqual(shown, expectedTable(ev, rows, (s, a) => [s, a, 'doc:roadmap'], actions, now));
  const assignments = await page.$$eval('#resource-out table.assignments tbody tr', (trs) =>
    trs.map((tr) => [...tr.querySelectorAll('td')].slice(0, 4).map((td) => td.textContent)));
  assert.deepEqual(assignments, [
    ['group:staff', 'viewer', 'read', 'org:acme'],
    ['user:alice', 'admin', 'read, write, export', 'workspace:eng'],
  ]);
  await shot(page, '2-resource');
  await page.close();
  ev.free();
  assert.deepEqual(problems, []);
});

test('the check tool: the full decision, at a chosen time', async () => {
  const { page, problems } = await adminPage();
  await loadExample(page);
  await page.click('[data-view="check"]');
  const ev = pkg.Evaluator.preview(EXAMPLE);
  const cases = [
    ['user:mallory', 'read', 'doc:roadmap', '', 'suspended'],
    ['user:alice', 'export', 'doc:roadmap', '2026-06-01T00:00:00', 'granted'],
    // After alice's admin assignment expires (4070908800000 is 2099-01-01).
    ['user:alice', 'export', 'doc:roadmap', '2099-06-01T00:00:00', 'no_grant'],
    ['user:alice', 'read', 'doc:nope', '', 'unknown_resource'],
  ];
  for (const [s, a, r, time, reason] of cases) {
    await page.fill('#check-subject', s);
    await page.selectOption('#check-action', a);
    await page.fill('#check-resource', r);
    await page.fill('#check-time', time);
    await page.click('#check-form button[type="submit"]');
    await page.waitForSelector(`#check-out .explain[data-reason="${reason}"]`);
    const now = Number(await page.getAttribute('#check-out', 'data-now'));
    const shown = JSON.parse(await page.textContent('#check-out pre.decision'));
    assert.deepEqual(shown, ev.check(s, a, r, { now }), `${s} ${a} ${r}`);
    assert.equal(shown.reason, reason);
    if (reason === 'granted') await shot(page, '3-check');
  }
  await page.close();
  ev.free();
  assert.deepEqual(problems, []);
});

/** Every (member, action, resource) whose decision differs between two models, by brute force. */
function bruteDiff(before, after, now) {
  const evs = [pkg.Evaluator.preview(before), pkg.Evaluator.preview(after)];
  const ids = (m, f) => m.flatMap(f);
  const members = union([before, after].map((m) =>
    ids(m.memberships, (x) => [x.member]).concat(ids(m.assignments, (x) => [x.principal]), m.suspended)))
    .filter((s) => !s.startsWith('group:'));
  members.push('user:nobody');
  const resources = union([before, after].map((m) => m.resources.map((r) => r.id)));
  const actions = union([before, after].map((m) => Object.keys(m.actions)));
  const revoked = [];
  const granted = [];
  for (const s of members) for (const a of actions) for (const r of resources) {
    const [b, f] = evs.map((ev) => ev.check(s, a, r, { now }).allowed);
    if (b && !f) revoked.push([s, a, r]);
    if (!b && f) granted.push([s, a, r]);
  }
  for (const ev of evs) ev.free();
  return { revoked, granted };
}

async function stage(page, kind, fields) {
  await page.selectOption('#stage-kind', kind);
  for (const [name, value] of Object.entries(fields)) {
    const sel = `#stage-fields [name="${name}"]`;
    if ((await page.$eval(sel, (el) => el.tagName)) === 'SELECT') await page.selectOption(sel, value);
    else await page.fill(sel, value);
  }
  const before = await page.$$eval('#staged li', (l) => l.length);
  await page.click('#stage-form button[type="submit"]');
  await page.waitForFunction((n) => document.querySelectorAll('#staged li').length === n + 1, before);
}

const diffRows = (page, cls) =>
  page.$$eval(`#impact table.${cls} tbody tr`, (trs) => trs.map((tr) => [tr.dataset.subject, tr.dataset.action, tr.dataset.resource]));

test('what-if: a revocation and a grant, the diff against the package, and the exported model', async () => {
  const { page, problems } = await adminPage();
  await loadExample(page);
  await page.click('[data-view="whatif"]');
  await stage(page, 'remove_membership', { member: 'group:eng', group: 'group:staff' });
  await stage(page, 'add_assignment', { principal: 'user:bob', role: 'editor', resource: 'workspace:eng' });
  await page.waitForSelector('#revocations-count');
  const now = Number(await page.getAttribute('#impact', 'data-now'));
  const after = structuredClone(EXAMPLE);
  after.memberships = after.memberships.filter((m) => !(m.member === 'group:eng' && m.group === 'group:staff'));
  after.assignments.push({ principal: 'user:bob', role: 'editor', resource: 'workspace:eng' });
  const { revoked, granted } = bruteDiff(EXAMPLE, after, now);
  assert.deepEqual(revoked, [['user:alice', 'read', 'org:acme']]);
  assert.equal(granted.length, 4);
  assert.deepEqual((await diffRows(page, 'revoke')).sort(), revoked.sort());
  assert.deepEqual((await diffRows(page, 'grant')).sort(), granted.sort());
  assert.equal(await page.getAttribute('#revocations-count', 'data-n'), String(revoked.length));
  assert.equal(await page.getAttribute('#grants-count', 'data-n'), String(granted.length));
  // Revocations and grants look different.
  const colours = await page.$$eval('#impact tr.revoke, #impact tr.grant', (trs) =>
    [...new Set(trs.map((tr) => getComputedStyle(tr).backgroundColor))]);
  assert.equal(colours.length, 2, colours.join(' '));
  // The package calls it a revocation too, and so would the origin.
  const { secretKey } = pkg.generateKeyPair();
  assert.equal(pkg.diffModels(EXAMPLE, after, { baseEpoch: 1, epoch: 2, secretKey }).revokes, true);
  assert.ok(await page.$('#revokes'));
  await shot(page, '4-whatif');

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
  assert.equal(download.suggestedFilename(), 'acme.staged.json');
  const exported = JSON.parse(readFileSync(await download.path(), 'utf8'));
  assert.deepEqual(exported, after);

  // Unstaging the revocation leaves only the grants.
  await page.click('#staged li[data-kind="remove_membership"] button.unstage');
  await page.waitForFunction(() => document.querySelector('#revocations-count')?.dataset.n === '0');
  assert.deepEqual((await diffRows(page, 'grant')).sort(), granted.sort());
  // A change that does not apply is refused and leaves the staged list as it was.
  await stage(page, 'add_assignment', { principal: 'user:bob', role: 'viewer', resource: 'workspace:eng' });
  await page.selectOption('#stage-kind', 'remove_membership');
  await page.fill('#stage-fields [name="member"]', 'user:nobody');
  await page.fill('#stage-fields [name="group"]', 'group:eng');
  await page.click('#stage-form button[type="submit"]');
  await page.waitForSelector('#message.error');
  assert.match(await page.textContent('#message'), /\[not_found\] user:nobody is not a direct member of group:eng/);
  assert.equal(await page.$$eval('#staged li', (l) => l.length), 2);

  // A role's actions (checkboxes) and a moved resource, against brute force again.
  await page.click('#clear-staged');
  await page.selectOption('#stage-kind', 'set_role');
  await page.selectOption('#stage-fields [name="role"]', 'editor');
  assert.deepEqual(await page.$$eval('#stage-actions input:checked', (cs) => cs.map((c) => c.value)), ['read', 'write']);
  await page.uncheck('#stage-actions input[value="write"]');
  await page.check('#stage-actions input[value="export"]');
  await page.click('#stage-form button[type="submit"]');
  await page.waitForSelector('#staged li[data-kind="set_role"]');
  await stage(page, 'move_resource', { resource: 'doc:roadmap', parent: 'org:acme' });
  await stage(page, 'add_assignment', { principal: 'group:eng', role: 'editor', resource: 'workspace:eng' });
  const when = Number(await page.getAttribute('#impact', 'data-now'));
  const moved = structuredClone(EXAMPLE);
  moved.roles.editor = ['read', 'export'];
  moved.resources.find((r) => r.id === 'doc:roadmap').parent = 'org:acme';
  moved.assignments.push({ principal: 'group:eng', role: 'editor', resource: 'workspace:eng' });
  const diff = bruteDiff(EXAMPLE, moved, when);
  assert.ok(diff.revoked.length > 0);
  assert.deepEqual((await diffRows(page, 'revoke')).sort(), diff.revoked.sort());
  assert.deepEqual((await diffRows(page, 'grant')).sort(), diff.granted.sort());
  await page.close();
  assert.deepEqual(problems, []);
});

test('bad models are refused with their code and leave the loaded one in place', async () => {
  const { page, problems } = await adminPage();
  await loadExample(page);
  const dir = tempDir('edge-authz-admin-');
  const broken = path.join(dir, 'broken.json');
  writeFileSync(broken, '{"version": 1,');
  await page.setInputFiles('#model-file', broken);
  await page.waitForSelector('#message.error');
  assert.match(await page.textContent('#message'), /^\[invalid_json\] broken\.json is not JSON/);
  const invalid = path.join(dir, 'invalid.json');
  const bad = structuredClone(EXAMPLE);
  bad.assignments.push({ principal: 'user:x', role: 'nope', resource: 'org:acme' });
  writeFileSync(invalid, JSON.stringify(bad));
  await page.setInputFiles('#model-file', invalid);
  await page.waitForFunction(() => /invalid_model/.test(document.querySelector('#message').textContent));
  assert.match(await page.textContent('#message'), /nope/);
  // Still the example.
  assert.match(await page.textContent('[data-field="source"]'), /examples\/acme\.json$/);
  // A model that compiles with a warning loads, and says so.
  const many = structuredClone(EXAMPLE);
  for (let i = 0; i < 21; i++) many.roles[`role${i}`] = ['read'];
  const warned = path.join(dir, 'many-roles.json');
  writeFileSync(warned, JSON.stringify(many));
  await page.setInputFiles('#model-file', warned);
  await page.waitForSelector('#message.info');
  assert.match(await page.textContent('#message'), /^Loaded many-roles\.json: .* Warnings: .*24 roles/);
  assert.match(await page.textContent('[data-field="counts"]'), /24 roles/);
  await page.close();
  assert.deepEqual(problems, []);
});

test('?model= loads a model at start; ids are shown as text, never as markup', async () => {
  const hostile = structuredClone(EXAMPLE);
  const evil = 'user:<img/src=x/onerror=window.pwned=1>';
  hostile.memberships.push({ member: evil, group: 'group:eng' });
  const dir = tempDir('edge-authz-admin-');
  const file = path.join(dir, 'hostile.json');
  writeFileSync(file, JSON.stringify(hostile));
  const { page, problems } = await adminPage('?model=./examples/acme.json');
  await page.waitForSelector('body[data-loaded="preview"]');
  assert.match(await page.textContent('[data-field="source"]'), /examples\/acme\.json$/);
  // And a URL typed in.
  await page.fill('#model-url', `${edge.url}/admin/examples/acme.json?again`);
  await page.click('#load-url');
  await page.waitForFunction(() => /\?again$/.test(document.querySelector('[data-field="source"]').textContent));
  const dialogs = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    d.dismiss();
  });
  await page.setInputFiles('#model-file', file);
  await page.waitForFunction(() => /hostile\.json/.test(document.querySelector('[data-field="source"]').textContent));
  await pickFrom(page, 'subject', 'img', evil);
  assert.equal(await page.textContent('#subject-out h2'), `${evil}: 3 resources`);
  await page.click('tr[data-resource="org:acme"] td[data-action="read"]');
  assert.equal(await page.getAttribute('.explain .path .node.subject', 'data-id'), evil);
  assert.equal(await page.$$eval('img', (imgs) => imgs.length), 0);
  assert.equal(await page.evaluate(() => window.pwned), undefined);
  assert.deepEqual(dialogs, []);
  await page.close();
  assert.deepEqual(problems, []);
});

test('connected to the Worker: its signed snapshot, status, subject view and check', async () => {
  const { page, problems } = await adminPage('?tenant=acme');
  // Served by the Worker, the page offers that Worker.
  assert.equal(await page.inputValue('#worker-url'), edge.url);
  // A wrong token is refused, and nothing is replaced.
  await page.fill('#worker-token', 'wrong');
  await page.click('#connect');
  await page.waitForSelector('#message.error');
  assert.match(await page.textContent('#message'), /^\[unauthorized\]/);
  assert.equal(await page.$eval('#tabs', (t) => t.hidden), true);
  await page.fill('#worker-token', TOKEN);
  await page.click('#connect');
  await page.waitForSelector('body[data-loaded="worker"]');
  assert.equal(await page.textContent('#mode'), 'signed snapshot');
  assert.equal(await page.textContent('[data-field="epoch"]'), '1');
  assert.equal(await page.textContent('[data-field="stale"]'), 'no');
  assert.match(await page.textContent('[data-field="authority"]'), /^epoch 1, watermark 0, confirmed /);
  // No directory: the id is typed.
  await page.fill('#subject-search', 'user:alice');
  await page.press('#subject-search', 'Enter');
  await page.waitForSelector('#subject-out[data-subject="user:alice"]');
  const now = Number(await page.getAttribute('#subject-out', 'data-now'));
  const ev = pkg.Evaluator.preview(EXAMPLE);
  const actions = Object.keys(EXAMPLE.actions).sort();
  const rows = union(actions.map((a) => ev.listResources('user:alice', a, { now })));
  const shown = await tableOf(page, 'subject-out', 'resource');
  assert.deepEqual(Object.keys(shown).sort(), rows);
  const want = expectedTable(ev, rows, (r, a) => ['user:alice', a, r], actions, now);
  assert.deepEqual(shown, want);
  await shot(page, '5-worker-subject');
  await page.click('[data-view="check"]');
  await page.fill('#check-subject', 'user:alice');
  await page.selectOption('#check-action', 'write');
  await page.fill('#check-resource', 'doc:roadmap');
  await page.click('#check-form button[type="submit"]');
  await page.waitForSelector('#check-out .explain');
  const shownDecision = JSON.parse(await page.textContent('#check-out pre.decision'));
  assert.equal(shownDecision.epoch, 1);
  assert.equal(shownDecision.reason, 'granted');
  assert.deepEqual(shownDecision.grant, ev.check('user:alice', 'write', 'doc:roadmap', { now }).grant);
  await page.click('[data-view="whatif"]');
  assert.equal(await page.$eval('#whatif-unavailable', (p) => p.hidden), false);
  await page.close();
  ev.free();
  // Chromium logs the refused request (the wrong token) itself; nothing else.
  assert.deepEqual(problems, ['console.error: Failed to load resource: the server responded with a status of 401 (Unauthorized)']);
});

test('hosted on another origin, the page reaches the Worker through CORS', async () => {
  const { page, problems } = await openPage(browser);
  await page.goto(`${elsewhere.base}/index.html?tenant=acme&worker=${encodeURIComponent(edge.url)}`);
  await page.waitForSelector('body[data-ready="yes"]');
  assert.equal(await page.inputValue('#worker-url'), edge.url);
  await page.fill('#worker-token', TOKEN);
  await page.click('#connect');
  // The Worker is on another origin than the page: the token goes there once confirmed
  // (tests/js/admin-security.test.mjs).
  await page.click('#confirm-origin');
  await page.waitForSelector('body[data-loaded="worker"]');
  await page.fill('#subject-search', 'user:alice');
  await page.press('#subject-search', 'Enter');
  await page.waitForSelector('#subject-out[data-subject="user:alice"]');
  const shown = await tableOf(page, 'subject-out', 'resource');
  assert.equal(shown['doc:roadmap'].write.text, '✓ admin');
  await page.close();
  assert.deepEqual(problems, []);

  // From an origin the Worker does not list, the browser withholds the answers.
  const other = await serveStatic(path.join(ASSETS, 'admin'));
  try {
    const { page: p2 } = await openPage(browser);
    await p2.goto(`${other.base}/index.html?tenant=acme&worker=${encodeURIComponent(edge.url)}`);
    await p2.waitForSelector('body[data-ready="yes"]');
    await p2.fill('#worker-token', TOKEN);
    await p2.click('#connect');
    await p2.click('#confirm-origin');
    await p2.waitForSelector('#message.error');
    assert.match(await p2.textContent('#message'), /^\[unreachable\] .*CORS_ORIGINS/);
    assert.equal(await p2.$eval('#tabs', (t) => t.hidden), true);
    await p2.close();
  } finally {
    await other.close();
  }
});

test('connected to a Worker past the high tier bound: the page shows the edge failing closed', async () => {
  // Tenant beta's snapshot was issued 6 s ago and nothing came since: past high's 5 s bound,
  // within standard's 30 s and low's 300 s.
  const beta = { ...structuredClone(EXAMPLE), tenant: 'beta' };
  const betaSigner = { ...signer, tenant: 'beta' };
  const put = await fetch(`${edge.url}/v1/beta/snapshot`, {
    method: 'PUT',
    headers: { 'content-type': 'application/msgpack' },
    body: betaSigner.snapshot(beta, 1, Date.now() - 6000),
  });
  assert.equal(put.status, 200, await put.text());
  const { page, problems } = await adminPage('?tenant=beta');
  await page.fill('#worker-token', TOKEN);
  await page.click('#connect');
  await page.waitForSelector('body[data-loaded="worker"]');
  await page.fill('#subject-search', 'user:alice');
  await page.press('#subject-search', 'Enter');
  await page.waitForSelector('#subject-out[data-subject="user:alice"]');
  assert.deepEqual(
    await page.$$eval('#subject-out .refused code', (cs) => cs.map((c) => [c.dataset.action, c.dataset.code])),
    [['export', 'freshness_exceeded']],
  );
  const shown = await tableOf(page, 'subject-out', 'resource');
  assert.deepEqual(Object.keys(shown).sort(), ['doc:roadmap', 'org:acme', 'workspace:eng']);
  for (const cells of Object.values(shown)) {
    assert.deepEqual([cells.export.allowed, cells.export.reason, cells.export.text], [false, 'freshness_exceeded', '✕']);
  }
  assert.equal(shown['doc:roadmap'].write.reason, 'granted');
  await shot(page, '6-worker-fail-closed');
  await page.close();
  // Chromium logs each refused listing (503) itself.
  assert.ok(problems.every((p) => /status of 503/.test(p)), problems.join('\n'));
});

test('the 10,000-user workload: search, the subject view and what-if (figures printed)', async () => {
  const dir = tempDir('edge-authz-admin-');
  const file = path.join(dir, 'workload.json');
  writeFileSync(file, execFileSync(BIN, ['workload'], { maxBuffer: 64 << 20 }));
  const model = JSON.parse(readFileSync(file, 'utf8'));
  const { page, problems } = await adminPage();
  let t = Date.now();
  await page.setInputFiles('#model-file', file);
  await page.waitForSelector('body[data-loaded="preview"]');
  const loadMs = Date.now() - t;
  // Search: a few keystrokes over 10,000 users.
  t = Date.now();
  for (const text of ['u', 'u1', 'u12', 'u123']) {
    await page.fill('#subject-search', text);
    await page.waitForFunction((q) => {
      const ids = [...document.querySelectorAll('#subject-results button')].map((b) => b.dataset.id);
      return ids.length > 0 && ids.every((id) => id.includes(q));
    }, text);
  }
  assert.equal(await page.getAttribute('#subject-results li:first-child button', 'data-id'), 'user:u123');
  const searchMs = (Date.now() - t) / 4;
  t = Date.now();
  await page.click('#subject-results button[data-id="user:u123"]');
  await page.waitForSelector('#subject-out[data-subject="user:u123"]');
  const clickMs = Date.now() - t;
  const viewMs = Number(await page.getAttribute('#subject-out', 'data-ms'));
  const now = Number(await page.getAttribute('#subject-out', 'data-now'));
  const ev = pkg.Evaluator.preview(model);
  const actions = Object.keys(model.actions);
  const resources = new Set(actions.flatMap((a) => ev.listResources('user:u123', a, { now })));
  const title = await page.textContent('#subject-out h2');
  assert.equal(title, `user:u123: ${resources.size} resources`);
  // The first page of the table against the package.
  const shown = await tableOf(page, 'subject-out', 'resource');
  assert.equal(Object.keys(shown).length, Math.min(200, resources.size));
  for (const r of Object.keys(shown)) assert.ok(resources.has(r), r);
  assert.deepEqual(shown, expectedTable(ev, Object.keys(shown), (r, a) => ['user:u123', a, r], actions, now));
  await shot(page, '7-workload-subject');
  // One cell explained: the path runs from the user to the grant the package finds.
  const first = Object.keys(shown)[0];
  const cellAction = actions.find((a) => shown[first][a].allowed);
  await page.click(`tr[data-resource="${first}"] td[data-action="${cellAction}"]`);
  const want = ev.check('user:u123', cellAction, first, { now });
  const drawn = await pathOf(page);
  assert.deepEqual(drawn.slice(0, want.grant.path.length).map(([, id]) => id), want.grant.path);
  assert.deepEqual(drawn[want.grant.path.length], ['role', want.grant.role]);
  assert.deepEqual(drawn.at(-1)[1], first);

  // The resource view of a document, its first page against the package.
  const doc = 'doc:w3-p4-d5';
  await page.click('[data-view="resource"]');
  t = Date.now();
  await pickFrom(page, 'resource', 'w3-p4-d5', doc);
  const resourceMs = Date.now() - t;
  const rNow = Number(await page.getAttribute('#resource-out', 'data-now'));
  const who = new Set(actions.flatMap((a) => ev.listSubjects(doc, a, { now: rNow })));
  assert.equal(await page.textContent('#resource-out h2'), `${doc}: ${who.size} members may act on it`);
  const byMember = await tableOf(page, 'resource-out', 'subject');
  assert.equal(Object.keys(byMember).length, Math.min(200, who.size));
  assert.deepEqual(byMember, expectedTable(ev, Object.keys(byMember), (m, a) => [m, a, doc], actions, rNow));

  // A check.
  await page.click('[data-view="check"]');
  await page.fill('#check-subject', 'user:u123');
  await page.selectOption('#check-action', 'export');
  await page.fill('#check-resource', doc);
  await page.click('#check-form button[type="submit"]');
  await page.waitForSelector('#check-out .explain');
  const cNow = Number(await page.getAttribute('#check-out', 'data-now'));
  assert.deepEqual(JSON.parse(await page.textContent('#check-out pre.decision')), ev.check('user:u123', 'export', doc, { now: cNow }));

  // What-if: suspend user:u123 (it loses everything it had, nobody else loses anything), and
  // make a newcomer editor of one workspace (a grant on everything below it).
  await page.click('[data-view="whatif"]');
  t = Date.now();
  await stage(page, 'suspend', { subject: 'user:u123' });
  await page.waitForSelector('#revocations-count');
  const whatifMs = Date.now() - t;
  await stage(page, 'add_assignment', { principal: 'user:newcomer', role: 'editor', resource: 'workspace:w7' });
  await page.waitForFunction(() => document.querySelector('#grants-count')?.dataset.n !== '0');
  const impactNow = Number(await page.getAttribute('#impact', 'data-now'));
  let lost = 0;
  for (const a of actions) lost += ev.listResources('user:u123', a, { now: impactNow }).length;
  assert.ok(lost > 500);
  const after = structuredClone(model);
  after.suspended = [...(after.suspended ?? []), 'user:u123'];
  after.assignments.push({ principal: 'user:newcomer', role: 'editor', resource: 'workspace:w7' });
  const evAfter = pkg.Evaluator.preview(after);
  let gained = 0;
  for (const a of actions) gained += evAfter.listResources('user:newcomer', a, { now: impactNow }).length;
  evAfter.free();
  assert.ok(gained > 0);
  assert.equal(await page.getAttribute('#revocations-count', 'data-n'), String(lost));
  assert.equal(await page.getAttribute('#grants-count', 'data-n'), String(gained));
  // The first 500 of each are drawn: u123's losses, the newcomer's gains.
  const revokedRows = await diffRows(page, 'revoke');
  assert.equal(revokedRows.length, 500);
  assert.ok(revokedRows.every(([s]) => s === 'user:u123'));
  const grantedRows = await diffRows(page, 'grant');
  assert.equal(grantedRows.length, Math.min(500, gained));
  assert.ok(grantedRows.every(([s, , r]) => s === 'user:newcomer' && (r === 'workspace:w7' || r.includes('w7-'))));
  await shot(page, '8-workload-whatif');
  ev.free();
  await page.close();
  assert.deepEqual(problems, []);
  console.log(
    `# admin page, 10,000 users (${(readFileSync(file).length / 1e6).toFixed(1)} MB model): load ${loadMs} ms, ` +
      `search ${searchMs.toFixed(0)} ms per keystroke, subject view ${viewMs.toFixed(0)} ms in the page ` +
      `(${clickMs} ms click to drawn, ${resources.size} resources), resource view ${resourceMs} ms click to drawn ` +
      `(${who.size} members), what-if ${whatifMs} ms (suspending u123: ${lost} revocations; then ${gained} grants)`,
  );
});
