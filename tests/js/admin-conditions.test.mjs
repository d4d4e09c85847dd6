// The admin page with conditions (docs/admin.md), in headless Chromium: a model with conditions
// loaded in the page and the same model held by a Worker; the request context editor; decisions
// that name their conditions; tables that answer under the context as the package does; what-if
// showing the revocations a condition change causes, against brute force.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { origin, startEdge, tempDir } from './edge.mjs';
import { launchChromium, openPage } from './hosts.mjs';
import { requirePackage } from './pkg.mjs';

const pkg = requirePackage();
const TOKEN = 'admin-conditions-token';

const MODEL = {
  version: 1,
  tenant: 'acme',
  actions: { read: { tier: 'low' }, export: { tier: 'high', requires: ['mfa_recent'] } },
  roles: { viewer: ['read'], exporter: ['read', 'export'] },
  resources: [{ id: 'org:acme' }, { id: 'workspace:fin', parent: 'org:acme' }, { id: 'doc:q3', parent: 'workspace:fin' }],
  memberships: [{ member: 'user:alice', group: 'group:finance' }],
  assignments: [
    { principal: 'group:finance', role: 'exporter', resource: 'workspace:fin' },
    { principal: 'user:bob', role: 'viewer', resource: 'org:acme', when: 'office' },
    { principal: 'user:carol', role: 'viewer', resource: 'doc:q3' },
  ],
  conditions: {
    office: { attr: 'ip', op: 'in_cidr', value: '10.0.0.0/8' },
    mfa_recent: { attr: 'mfa_age_s', op: '<=', value: 900, step_up: true },
  },
  freshness: { low: 600_000, standard: 600_000, high: 600_000 },
};

let edge;
let browser;
let file;

before(async () => {
  const signer = origin('acme');
  edge = await startEdge({ port: 0, vars: { ORIGIN_PUBLIC_KEYS: signer.keys.publicKey, CHECK_TOKEN: TOKEN } });
  const put = await fetch(`${edge.url}/v1/acme/snapshot`, {
    method: 'PUT',
    headers: { 'content-type': 'application/msgpack' },
    body: signer.snapshot(MODEL, 1),
  });
  assert.equal(put.status, 200, await put.text());
  file = path.join(tempDir('edge-authz-admin-conditions-'), 'conditional.json');
  writeFileSync(file, JSON.stringify(MODEL));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await edge?.dispose();
});

async function adminPage() {
  const { page, problems } = await openPage(browser);
  page.setDefaultTimeout(30_000);
  await page.goto(`${edge.url}/admin/?tenant=acme`);
  await page.waitForSelector('body[data-ready="yes"]');
  return { page, problems };
}

async function setContext(page, attrs) {
  await page.fill('#attrs', attrs === null ? '' : JSON.stringify(attrs));
  await page.dispatchEvent('#attrs', 'change');
}

async function check(page, s, a, r) {
  await page.click('[data-view="check"]');
  await page.fill('#check-subject', s);
  await page.selectOption('#check-action', a);
  await page.fill('#check-resource', r);
  await page.evaluate(() => document.querySelector('#check-out').replaceChildren());
  await page.click('#check-form button[type="submit"]');
  await page.waitForSelector('#check-out .explain');
  return {
    decision: JSON.parse(await page.textContent('#check-out pre.decision')),
    now: Number(await page.getAttribute('#check-out', 'data-now')),
  };
}

/** The subject table the page drew: {resource: {action: text}}. */
const cells = (page) =>
  page.$$eval('#subject-out table.perm tbody tr', (trs) =>
    Object.fromEntries(trs.map((tr) => [tr.dataset.resource, Object.fromEntries([...tr.querySelectorAll('td')].map((td) => [td.dataset.action, td.textContent]))])));

test('a model with conditions in the page: its conditions, the context editor, decisions and tables as the package answers', async () => {
  const { page, problems } = await adminPage();
  await page.setInputFiles('#model-file', file);
  await page.waitForSelector('body[data-loaded="preview"]');
  assert.match(await page.textContent('[data-field="conditions"]'), /office .*in_cidr/);
  assert.equal(await page.textContent('[data-field="requires"]'), 'export: mfa_recent');
  const ev = pkg.Evaluator.preview(MODEL);

  // No context: alice's export needs a step-up, and the page says which and what is missing.
  let { decision, now } = await check(page, 'user:alice', 'export', 'doc:q3');
  assert.deepEqual(decision, ev.check('user:alice', 'export', 'doc:q3', { now }));
  assert.equal(decision.reason, 'step_up_required');
  assert.equal(await page.getAttribute('#check-out .conditions', 'data-conditions'), 'mfa_recent');
  assert.equal(await page.getAttribute('#check-out .conditions', 'data-missing'), 'mfa_age_s');
  // With a recent MFA in the context, granted.
  await setContext(page, { mfa_age_s: 60, ip: '192.0.2.1' });
  ({ decision, now } = await check(page, 'user:alice', 'export', 'doc:q3'));
  assert.deepEqual(decision, ev.check('user:alice', 'export', 'doc:q3', { now, mfa_age_s: 60, ip: '192.0.2.1' }));
  assert.equal(decision.reason, 'granted');
  // bob's grant holds in the office only; the explanation names its condition.
  ({ decision } = await check(page, 'user:bob', 'read', 'doc:q3'));
  assert.equal(decision.reason, 'condition_failed');
  await setContext(page, { ip: '10.1.2.3' });
  ({ decision } = await check(page, 'user:bob', 'read', 'doc:q3'));
  assert.equal(decision.grant.when, 'office');
  assert.match(await page.textContent('#check-out .explain'), /while office holds/);

  // The subject view asks with the context: bob's table, then without one (empty: nothing).
  await page.click('[data-view="subject"]');
  await page.fill('#subject-search', 'user:bob');
  await page.click('#subject-results button[data-id="user:bob"]');
  await page.waitForSelector('#subject-out[data-subject="user:bob"] table.perm');
  const shown = await cells(page);
  const at = { ip: '10.1.2.3', now: Number(await page.getAttribute('#subject-out', 'data-now')) };
  const want = {};
  for (const r of ['doc:q3', 'org:acme', 'workspace:fin']) {
    want[r] = {};
    for (const a of ['export', 'read']) {
      const d = ev.check('user:bob', a, r, at);
      want[r][a] = d.allowed ? `✓ ${d.grant.role}${d.grant.when ? ' ?' : ''}` : d.reason === 'step_up_required' ? '⇡' : d.reason === 'no_grant' ? '·' : '✕';
    }
  }
  assert.deepEqual(shown, want);
  assert.equal(shown['doc:q3'].read, '✓ viewer ?');
  await setContext(page, null);
  await page.waitForFunction(() => /no resources|nothing/i.test(document.querySelector('#subject-out').textContent) || !document.querySelector('#subject-out table.perm'));

  // A context that is not JSON is refused with its code, and the last one stays.
  await page.fill('#attrs', '{"ip": ');
  await page.dispatchEvent('#attrs', 'change');
  await page.waitForSelector('#message.error');
  assert.match(await page.textContent('#message'), /^\[invalid_json\] the request context is not JSON/);
  await page.close();
  ev.free();
  assert.deepEqual(problems, []);
});

test('what-if: a stricter condition and a condition put on a grant show their revocations, as brute force finds them', async () => {
  const { page, problems } = await adminPage();
  await page.setInputFiles('#model-file', file);
  await page.waitForSelector('body[data-loaded="preview"]');
  const attrs = { ip: '10.200.0.1' };
  await setContext(page, attrs);
  await page.click('[data-view="whatif"]');
  await page.selectOption('#stage-kind', 'set_condition');
  await page.fill('#stage-fields [name="name"]', 'office');
  await page.fill('#stage-fields [name="condition"]', '{"attr": "ip", "op": "in_cidr", "value": "10.0.0.0/16"}');
  await page.click('#stage-form button[type="submit"]');
  await page.waitForSelector('#staged li[data-kind="set_condition"]');
  await page.selectOption('#stage-kind', 'set_when');
  await page.fill('#stage-fields [name="principal"]', 'user:carol');
  await page.selectOption('#stage-fields [name="role"]', 'viewer');
  await page.fill('#stage-fields [name="resource"]', 'doc:q3');
  await page.fill('#stage-fields [name="when"]', 'office');
  await page.click('#stage-form button[type="submit"]');
  await page.waitForSelector('#staged li[data-kind="set_when"]');
  await page.waitForSelector('#revocations-count');
  const now = Number(await page.getAttribute('#impact', 'data-now'));
  const after = structuredClone(MODEL);
  after.conditions.office.value = '10.0.0.0/16';
  after.assignments.find((a) => a.principal === 'user:carol').when = 'office';
  // Brute force under the same context.
  const evs = [pkg.Evaluator.preview(MODEL), pkg.Evaluator.preview(after)];
  const revoked = [];
  for (const s of ['user:alice', 'user:bob', 'user:carol']) for (const a of ['export', 'read']) for (const r of ['doc:q3', 'org:acme', 'workspace:fin']) {
    const [b, f] = evs.map((ev) => ev.check(s, a, r, { ...attrs, now }).allowed);
    if (b && !f) revoked.push([s, a, r]);
  }
  evs.forEach((ev) => ev.free());
  assert.deepEqual(revoked.sort(), [
    ['user:bob', 'read', 'doc:q3'], ['user:bob', 'read', 'org:acme'], ['user:bob', 'read', 'workspace:fin'], ['user:carol', 'read', 'doc:q3'],
  ]);
  const rows = await page.$$eval('#impact table.revoke tbody tr', (trs) => trs.map((tr) => [tr.dataset.subject, tr.dataset.action, tr.dataset.resource]));
  assert.deepEqual(rows.sort(), revoked);
  // The origin would publish it as a revocation.
  assert.ok(await page.$('#revokes'));
  await page.close();
  assert.deepEqual(problems, []);
});

test('connected to a Worker holding conditions: the page sends its context, and the Worker judges it', async () => {
  const { page, problems } = await adminPage();
  await page.fill('#worker-token', TOKEN);
  await page.click('#connect');
  await page.waitForSelector('body[data-loaded="worker"]');
  let { decision } = await check(page, 'user:alice', 'export', 'doc:q3');
  assert.equal(decision.reason, 'step_up_required');
  assert.deepEqual(decision.missing, ['mfa_age_s']);
  await setContext(page, { mfa_age_s: 30 });
  ({ decision } = await check(page, 'user:alice', 'export', 'doc:q3'));
  assert.equal(decision.reason, 'granted');
  assert.equal(decision.epoch, 1);
  // The subject view lists with the context (context= on the Worker's listings).
  await setContext(page, { ip: '10.0.0.7' });
  await page.click('[data-view="subject"]');
  await page.fill('#subject-search', 'user:bob');
  await page.press('#subject-search', 'Enter');
  await page.waitForSelector('#subject-out[data-subject="user:bob"] table.perm');
  const shown = await cells(page);
  assert.deepEqual(Object.keys(shown).sort(), ['doc:q3', 'org:acme', 'workspace:fin']);
  assert.equal(shown['org:acme'].read, '✓ viewer ?');
  await page.close();
  assert.deepEqual(problems, []);
});
