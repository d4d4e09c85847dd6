// Tests of the benchmark itself: the reference, the peers' translations (they must agree with the
// reference on every request), the request generator and the whole run (with the stand-in for the
// edge-authz package when pkg/ is not built).   node --test bench/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { spawnSync, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { buildReference } from '../lib/reference.mjs';
import { generateRequests, requestUniverse } from '../lib/requests.mjs';
import { percentile } from '../lib/measure.mjs';
import * as cedar from '../engines/cedar.mjs';
import * as casbin from '../engines/casbin.mjs';
import * as edge from '../engines/edge-authz.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const bench = path.resolve(here, '..');
const repo = path.resolve(bench, '..');
const binary = path.join(repo, 'target', 'release', 'edge-authz');
const NOW = 1767225600000;

/** A hand-made model with every case the semantics distinguish. */
function tricky() {
  return {
    version: 1,
    tenant: 'acme',
    actions: { read: { tier: 'low' }, write: { tier: 'standard' }, export: { tier: 'high' }, pay: { tier: 'high' } },
    roles: { viewer: ['read'], editor: ['read', 'write'], admin: ['read', 'write', 'export'], payer: ['pay'] },
    resources: [
      { id: 'org:acme' },
      { id: 'workspace:eng', parent: 'org:acme' },
      { id: 'workspace:ops', parent: 'org:acme' },
      { id: 'doc:roadmap', parent: 'workspace:eng' },
      { id: 'doc:2024/q3-plan', parent: 'workspace:eng' },
      { id: 'doc:odd"name,with\\chars', parent: 'workspace:ops' },
      { id: 'folder:f1', parent: 'workspace:ops' },
      { id: 'doc:deep', parent: 'folder:f1' },
    ],
    memberships: [
      { member: 'user:alice', group: 'group:eng' },
      { member: 'group:eng', group: 'group:staff' },
      { member: 'group:staff', group: 'group:all' },
      { member: 'user:bob', group: 'group:ops' },
      { member: 'user:carol', group: 'group:contractors' },
      { member: 'group:contractors', group: 'group:eng' },
      { member: 'user:dave', group: 'group:banned' },
      { member: 'user:erin', group: 'group:ops' },
      { member: 'service:ci', group: 'group:eng' },
    ],
    assignments: [
      { principal: 'group:all', role: 'viewer', resource: 'org:acme' },
      { principal: 'group:eng', role: 'editor', resource: 'workspace:eng' },
      { principal: 'user:alice', role: 'admin', resource: 'doc:roadmap', expires_at: NOW + 1 },
      { principal: 'user:alice', role: 'admin', resource: 'doc:2024/q3-plan', expires_at: NOW },
      { principal: 'group:ops', role: 'admin', resource: 'workspace:ops' },
      { principal: 'user:dave', role: 'admin', resource: 'org:acme' },
      { principal: 'user:erin', role: 'payer', resource: 'folder:f1', expires_at: NOW - 1 },
      { principal: 'user:erin', role: 'payer', resource: 'doc:odd"name,with\\chars' },
      { principal: 'user:mallory', role: 'admin', resource: 'org:acme' },
      { principal: 'user:frank', role: 'viewer', resource: 'doc:deep' },
    ],
    suspended: ['user:mallory', 'group:banned'],
    freshness: { low: 300000, standard: 30000, high: 5000 },
  };
}

function allRequests(model) {
  const subjects = ['user:alice', 'user:bob', 'user:carol', 'user:dave', 'user:erin', 'user:mallory', 'user:frank', 'service:ci', 'user:nobody'];
  const out = [];
  for (const s of subjects) for (const a of Object.keys(model.actions)) for (const r of model.resources) out.push([s, a, r.id]);
  return out;
}

test('reference: the semantics of docs/decisions.md, "Gates", on hand-made cases', () => {
  const ref = buildReference(tricky());
  const yes = (s, a, r) => assert.equal(ref.allowed(s, a, r, NOW), true, `${s} ${a} ${r}`);
  const no = (s, a, r) => assert.equal(ref.allowed(s, a, r, NOW), false, `${s} ${a} ${r}`);
  yes('user:alice', 'read', 'doc:deep'); // group:all viewer on org, three groups up
  yes('user:alice', 'write', 'doc:roadmap'); // group:eng editor on the workspace
  no('user:alice', 'write', 'workspace:ops');
  yes('user:alice', 'export', 'doc:roadmap'); // expires at NOW + 1: still valid
  no('user:alice', 'export', 'doc:2024/q3-plan'); // expires at NOW: expired (now < expires_at)
  yes('user:carol', 'write', 'doc:roadmap'); // contractors -> eng
  yes('service:ci', 'write', 'doc:roadmap'); // a non-user member
  no('user:dave', 'read', 'org:acme'); // member of a suspended group, despite an admin grant
  no('user:mallory', 'read', 'doc:roadmap'); // suspended user
  no('user:erin', 'pay', 'doc:deep'); // expired
  yes('user:erin', 'pay', 'doc:odd"name,with\\chars');
  yes('user:erin', 'export', 'doc:deep'); // group:ops admin on workspace:ops
  yes('user:frank', 'read', 'doc:deep'); // a subject with no membership
  no('user:frank', 'read', 'folder:f1'); // grants flow down, not up
  no('user:nobody', 'read', 'org:acme');
  assert.equal(ref.isSuspended('user:dave'), true);
  assert.equal(ref.isSuspended('user:alice'), false);
});

test('reference: cycle-safe on a (rejected by the compiler, but possible) membership cycle', () => {
  const m = tricky();
  m.memberships.push({ member: 'group:all', group: 'group:eng' });
  const ref = buildReference(m);
  assert.equal(ref.allowed('user:alice', 'read', 'doc:deep', NOW), true);
  assert.equal(ref.allowed('user:bob', 'write', 'doc:roadmap', NOW), false);
});

async function agree(mod, model, requests) {
  mod.importEngine();
  const ref = buildReference(model);
  const eng = await mod.load(mod.prepare(model, { now: NOW }), { now: NOW });
  const bad = [];
  const single = requests.map((q) => eng.allowed(eng.check(q[0], q[1], q[2])));
  const many = eng.checkMany(requests).map((x) => eng.allowed(x));
  requests.forEach((q, i) => {
    const exp = ref.allowed(q[0], q[1], q[2], NOW);
    if (single[i] !== exp || many[i] !== exp) bad.push({ q, exp, single: single[i], many: many[i] });
  });
  return bad;
}

for (const mod of [cedar, casbin]) {
  test(`${mod.name}: agrees with the reference on every request of the hand-made model`, async () => {
    const m = tricky();
    assert.deepEqual(await agree(mod, m, allRequests(m)), []);
  });
}

test('cedar-wasm: the "full" entity mode agrees too', async () => {
  cedar.importEngine();
  const m = tricky();
  const ref = buildReference(m);
  const eng = cedar.load(cedar.prepare(m), { now: NOW, entityMode: 'full' });
  for (const q of allRequests(m)) assert.equal(eng.allowed(eng.check(...q)), ref.allowed(...q, NOW), q.join(' '));
});

test('casbin: deep nesting beyond the default role hierarchy limit of 10', async () => {
  const m = tricky();
  for (let i = 0; i < 14; i++) m.memberships.push({ member: `group:n${i}`, group: `group:n${i + 1}` });
  m.memberships.push({ member: 'user:zed', group: 'group:n0' });
  m.assignments.push({ principal: 'group:n14', role: 'viewer', resource: 'doc:deep' });
  const reqs = [['user:zed', 'read', 'doc:deep'], ['user:zed', 'write', 'doc:deep'], ['user:zed', 'read', 'doc:roadmap']];
  assert.deepEqual(await agree(casbin, m, reqs), []);
  assert.deepEqual(await agree(cedar, m, reqs), []);
});

test('requests: deterministic, valid, and with a healthy allowed share', () => {
  const m = tricky();
  const a = generateRequests(m, 500, { seed: 3 });
  const b = generateRequests(m, 500, { seed: 3 });
  assert.deepEqual(a, b);
  const u = requestUniverse(m);
  const res = new Set(m.resources.map((r) => r.id));
  for (const [s, act, r] of a) {
    assert.ok(!s.startsWith('group:'), s);
    assert.ok(u.users.includes(s));
    assert.ok(act in m.actions);
    assert.ok(res.has(r));
  }
  const ref = buildReference(m);
  const ratio = a.filter((q) => ref.allowed(...q, NOW)).length / a.length;
  assert.ok(ratio > 0.2 && ratio < 0.95, `allowed ratio ${ratio}`);
});

test('percentile: nearest rank', () => {
  const s = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(percentile(s, 50), 5);
  assert.equal(percentile(s, 99), 10);
  assert.equal(percentile(s, 1), 1);
});

// The workload generator is needed: build it when missing (as run.mjs does) rather than skip.
if (!fs.existsSync(binary)) {
  execFileSync('cargo', ['build', '--release', '--quiet'], { cwd: repo, stdio: 'inherit' });
}
const SMALL = ['--users', '300', '--groups', '30', '--assignments', '600', '--big-group', '100', '--docs-per-project', '2', '--seed', '5'];

test('peers agree with the reference on a small generated workload', async () => {
  const m = JSON.parse(execFileSync(binary, ['workload', ...SMALL], { encoding: 'utf8', maxBuffer: 1 << 28 }));
  // some suspension through a group as well (the generator only suspends users)
  m.suspended.push('group:g3');
  const reqs = generateRequests(m, 600, { seed: 11 });
  for (const mod of [cedar, casbin]) assert.deepEqual(await agree(mod, m, reqs), [], mod.name);
});

test('edge-authz adapter: against the stand-in package (compile in a worker, load, check, checkMany)', async () => {
  const pkgDir = path.join(bench, 'fake-edge-pkg');
  const info = await edge.importEngine({ pkgDir });
  assert.equal(info.fake, true);
  const m = tricky();
  const prepared = await edge.prepare(m, { now: NOW });
  assert.ok(prepared.bytes instanceof Uint8Array);
  const eng = edge.load(prepared, { now: NOW });
  const ref = buildReference(m);
  const reqs = allRequests(m);
  const many = eng.checkMany(reqs);
  reqs.forEach((q, i) => {
    assert.equal(eng.allowed(eng.check(...q)), ref.allowed(...q, NOW), q.join(' '));
    assert.equal(eng.allowed(many[i]), ref.allowed(...q, NOW), q.join(' '));
  });
  await assert.rejects(edge.importEngine({ pkgDir: path.join(os.tmpdir(), 'no-such-edge-pkg') }), (e) => e.code === 'no_pkg');
});

function run(args, env = {}) {
  return spawnSync(process.execPath, [path.join(bench, 'run.mjs'), ...args], {
    cwd: repo, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 26,
  });
}

test('run.mjs --quick end to end (stand-in edge-authz, both peers), table and --json', { timeout: 120000 }, () => {
  const json = path.join(os.tmpdir(), `edge-authz-bench-${process.pid}.json`);
  const r = run(['--quick', ...SMALL, '--requests', '2000', '--single', '600', '--peer-seconds', '0.3', '--edge-pkg', path.join(bench, 'fake-edge-pkg'), '--json', json]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\| batch throughput \(checks\/s\) \|/);
  assert.match(r.stdout, /edge-authz \(TEST STAND-IN\)/);
  assert.match(r.stdout, /\| answers checked \/ mismatches \|/);
  const out = JSON.parse(fs.readFileSync(json, 'utf8'));
  fs.unlinkSync(json);
  assert.equal(out.mismatches, 0);
  assert.deepEqual(out.results.map((x) => x.key), ['edge', 'cedar', 'casbin']);
  for (const x of out.results) {
    assert.ok(x.throughput.checksPerSec > 0);
    assert.ok(x.verified > 0);
  }
  assert.equal(out.environment.exposeGc, true);
});

test('run.mjs exits 1 when an engine gives a wrong answer', { timeout: 60000 }, () => {
  const r = run(['--quick', ...SMALL, '--requests', '500', '--single', '200', '--engines', 'edge', '--edge-pkg', path.join(bench, 'fake-edge-pkg')], { FAKE_EDGE_WRONG: '1' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /differ from the reference/);
});

test('run.mjs --model FILE and a missing package', { timeout: 60000 }, () => {
  const file = path.join(os.tmpdir(), `edge-authz-bench-model-${process.pid}.json`);
  fs.writeFileSync(file, JSON.stringify(tricky()));
  try {
    const ok = run(['--model', file, '--requests', '300', '--single', '100', '--peer-seconds', '0.2', '--rounds', '1', '--engines', 'cedar,casbin']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /cedar-wasm \| casbin \|/);
    const missing = run(['--model', file, '--requests', '10', '--single', '10', '--edge-pkg', path.join(os.tmpdir(), 'no-such-edge-pkg')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /edge-authz package not found/);
  } finally {
    fs.unlinkSync(file);
  }
});

test('conditions.mjs prints its four rows, the rows answering as they should', { timeout: 120000 }, () => {
  const r = spawnSync(process.execPath, [path.join(bench, 'conditions.mjs'), '--users', '400', '--rounds', '1'], {
    cwd: repo, encoding: 'utf8', maxBuffer: 1 << 26,
  });
  assert.equal(r.status, 0, r.stderr);
  const rows = r.stdout.split('\n').filter((l) => /^\| (bare|conditions)/.test(l));
  assert.deepEqual(rows.map((l) => l.split('|')[1].trim()), ['bare', 'bare + context', 'conditions', 'conditions + context']);
  // The shares allowed: a context changes nothing without conditions, and conditions refuse
  // some requests without a context that the context lets through.
  const allowed = rows.map((l) => Number(l.split('|')[2].trim().replace('%', '')));
  assert.equal(allowed[0], allowed[1]);
  assert.ok(allowed[2] < allowed[0] && allowed[3] > allowed[2], r.stdout);
});

test('tokens.mjs prints a row per algorithm, a first check costing more than one whose verdict is known', { timeout: 120000 }, () => {
  const r = spawnSync(process.execPath, [path.join(bench, 'tokens.mjs'), '--tokens', '20', '--rounds', '1'], {
    cwd: repo, encoding: 'utf8', maxBuffer: 1 << 26,
  });
  assert.equal(r.status, 0, r.stderr);
  const rows = new Map(r.stdout.split('\n').filter((l) => /^\| [A-Za-z]/.test(l) && !l.startsWith('| row'))
    .map((l) => [l.split('|')[1].trim(), Number(l.split('|')[2])]));
  assert.deepEqual([...rows.keys()], ['check (subject)', 'RS256 first', 'RS256 again', 'ES256 first', 'ES256 again', 'EdDSA first', 'EdDSA again']);
  for (const v of rows.values()) assert.ok(v > 0, r.stdout);
  for (const alg of ['RS256', 'ES256', 'EdDSA']) assert.ok(rows.get(`${alg} first`) > rows.get(`${alg} again`), r.stdout);
});
