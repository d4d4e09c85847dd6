// The package's name caches (docs/javascript.md, "Performance"): a name seen once crosses into
// wasm as its id in the held index from then on. Differentially: every answer an evaluator gives
// from its caches (checks, batches, batches that mix cached and new names) must be the answer a
// fresh evaluator gives by names, for held names, names the state does not hold, malformed ones
// and values that are not strings; after a delta that renumbers every name; after a flood of
// unknown names that fills a cache past its bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { importPackage } from './pkg.mjs';
import { rng } from '../../bench/lib/rng.mjs';

const api = await importPackage();
const NOW = 1_796_212_800_000;
const { publicKey, secretKey } = api.generateKeyPair();

// A tenant of 40 users in 8 nested groups, resources three deep, assignments with and without
// expiry, a suspended user and a conditional grant.
function model(seed, { prefix = 'user:u' } = {}) {
  const r = rng(seed).next;
  const users = Array.from({ length: 40 }, (_, i) => `${prefix}${i}`);
  const groups = Array.from({ length: 8 }, (_, i) => `group:g${i}`);
  const resources = [{ id: 'org:acme' }];
  for (let w = 0; w < 3; w++) {
    resources.push({ id: `workspace:w${w}`, parent: 'org:acme' });
    for (let d = 0; d < 4; d++) resources.push({ id: `doc:w${w}d${d}`, parent: `workspace:w${w}` });
  }
  const memberships = users.map((u) => ({ member: u, group: groups[Math.floor(r() * groups.length)] }));
  for (let g = 1; g < groups.length; g++) memberships.push({ member: groups[g], group: groups[g >> 1] });
  const roles = ['viewer', 'editor', 'admin'];
  const assignments = [];
  for (let i = 0; i < 30; i++) {
    const principals = r() < 0.5 ? users : groups;
    const a = {
      principal: principals[Math.floor(r() * principals.length)],
      role: roles[Math.floor(r() * roles.length)],
      resource: resources[Math.floor(r() * resources.length)].id,
    };
    if (r() < 0.2) a.expires_at = NOW + (r() < 0.5 ? -1000 : 1000);
    if (i === 0) a.when = 'office';
    assignments.push(a);
  }
  return {
    version: 1,
    tenant: 'acme',
    actions: { read: { tier: 'low' }, write: { tier: 'standard' }, export: { tier: 'high' } },
    roles: { viewer: ['read'], editor: ['read', 'write'], admin: ['read', 'write', 'export'] },
    resources,
    memberships,
    assignments: unique(assignments),
    suspended: [users[3]],
    conditions: { office: { attr: 'ip', op: 'in_cidr', value: ['10.0.0.0/8'] } },
  };
}

// Assignments without repeats (a model refuses two of the same principal, role and resource).
function unique(assignments) {
  const seen = new Set();
  return assignments.filter((a) => {
    const k = `${a.principal} ${a.role} ${a.resource}`;
    return !seen.has(k) && seen.add(k);
  });
}

function evaluator(bytes) {
  const ev = new api.Evaluator({ tenant: 'acme', publicKeys: [publicKey], clock: () => NOW });
  ev.loadSnapshot(bytes);
  return ev;
}

// Every field a caller may hand in: held names, names not held, malformed ones, not strings.
function requests(m) {
  const subjects = [
    ...m.memberships.map((x) => x.member).slice(0, 45),
    'group:g0',
    'user:nobody',
    'user:é',
    'nocolon',
    '',
    'user:\ud800',
    `user:${'x'.repeat(400)}`,
    42,
    null,
    undefined,
  ];
  const actions = ['read', 'write', 'export', 'delete', 'Not An Action', 7];
  const resources = [...m.resources.map((x) => x.id), 'doc:nowhere', 'bad id', {}];
  const out = [];
  const r = rng(7).next;
  for (let i = 0; i < 600; i++) {
    const pick = (xs) => xs[Math.floor(r() * xs.length)];
    out.push([pick(subjects), pick(actions), pick(resources)]);
  }
  return out;
}

const contexts = [undefined, { ip: '10.1.2.3' }];

// What a fresh evaluator (nothing cached) answers, by names; each request asked once.
const answers = new Map();
function expected(bytes, reqs, context) {
  let memo = answers.get(bytes);
  if (memo === undefined) answers.set(bytes, (memo = new Map()));
  return reqs.map((q) => {
    const key = JSON.stringify([q.map((x) => (x === undefined ? '<undefined>' : x)), context]);
    let d = memo.get(key);
    if (d === undefined) {
      const ev = evaluator(bytes);
      d = JSON.stringify(ev.check(q[0], q[1], q[2], context));
      ev.free();
      memo.set(key, d);
    }
    return d;
  });
}

function assertSame(ev, bytes, reqs, what) {
  for (const context of contexts) {
    const want = expected(bytes, reqs, context);
    // Three passes: the first fills the caches, the later ones answer from them.
    for (let pass = 0; pass < 3; pass++) {
      reqs.forEach((q, i) => assert.equal(JSON.stringify(ev.check(q[0], q[1], q[2], context)), want[i], `${what}, pass ${pass}: check ${JSON.stringify(q)}`));
    }
    // Batches of cached names, of new ones, and of both.
    for (let i = 0; i < reqs.length; i += 97) {
      const got = ev.checkMany(reqs.slice(i, i + 97), context).map((d) => JSON.stringify(d));
      assert.deepEqual(got, want.slice(i, i + 97), `${what}: checkMany from ${i}`);
    }
  }
}

test('answers from the name caches are the answers by names', () => {
  const m = model(1);
  const bytes = api.compileSnapshot(m, { epoch: 1, secretKey, issuedAt: NOW });
  const reqs = requests(m);
  const allowed = reqs.filter((q) => evaluator(bytes).check(q[0], q[1], q[2]).allowed).length;
  assert.ok(allowed > 20 && allowed < reqs.length - 20, `a mix of answers (${allowed} allowed)`);
  assertSame(evaluator(bytes), bytes, reqs, 'one state');
  // A batch first, checks after: the batch fills the caches.
  const ev = evaluator(bytes);
  ev.checkMany(reqs);
  assertSame(ev, bytes, reqs, 'filled by a batch');
});

test('a delta that renumbers every name leaves no id of the old state in use', () => {
  const before = model(1);
  // Users whose names sort first shift every subject's id; memberships and grants change too.
  const after = model(2, { prefix: 'user:a' });
  after.memberships.push(...before.memberships.filter((x) => x.member.startsWith('user:u')).slice(5));
  after.assignments = unique([...after.assignments, ...before.assignments.slice(10)]);
  const snap1 = api.compileSnapshot(before, { epoch: 1, secretKey, issuedAt: NOW });
  const snap2 = api.compileSnapshot(after, { epoch: 2, secretKey, issuedAt: NOW });
  const { delta } = api.diffModels(before, after, { baseEpoch: 1, epoch: 2, secretKey, issuedAt: NOW });
  const reqs = [...requests(before), ...requests(after)];
  const ev = evaluator(snap1);
  assertSame(ev, snap1, reqs, 'epoch 1');
  assert.equal(ev.applyDelta(delta).epoch, 2);
  assertSame(ev, snap2, reqs, 'epoch 2, by delta');
  // And by a snapshot replacing the state.
  const ev2 = evaluator(snap1);
  assertSame(ev2, snap1, reqs.slice(0, 300), 'epoch 1 again');
  ev2.loadSnapshot(snap2);
  assertSame(ev2, snap2, reqs, 'epoch 2, by snapshot');
});

test('a flood of unknown names past the bound of a cache changes no answer', () => {
  const m = model(3);
  const bytes = api.compileSnapshot(m, { epoch: 1, secretKey, issuedAt: NOW });
  const reqs = requests(m).slice(0, 400);
  const ev = evaluator(bytes);
  assertSame(ev, bytes, reqs, 'before');
  // More unknown subjects and resources than a cache keeps (the held names and 4,096 more).
  const flood = Array.from({ length: 6000 }, (_, i) => [`user:flood${i}`, 'read', `doc:flood${i}`]);
  for (const d of ev.checkMany(flood)) assert.equal(d.reason, 'unknown_resource');
  for (const q of flood.slice(0, 2000)) assert.equal(ev.check(q[0], q[1], q[2]).reason, 'unknown_resource');
  assertSame(ev, bytes, reqs, 'after the flood');
});
