// The admin page's what-if logic (www/lib/whatif.js) in Node against brute force: for random
// staged changes, the revocations and grants it reports are exactly the (member, action,
// resource) decisions that differ between the two models, checked one by one with the package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { EXAMPLE } from './edge.mjs';
import { REPO_DIR, requirePackage } from './pkg.mjs';
import { applyChanges, impact } from '../../www/lib/whatif.js';
import { Directory } from '../../www/lib/directory.js';

const pkg = requirePackage();
const NOW = Date.UTC(2026, 5, 1);

/** A small deterministic generator (mulberry32). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function brute(before, after, now) {
  const evs = [pkg.Evaluator.preview(before), pkg.Evaluator.preview(after)];
  const dirs = [new Directory(before), new Directory(after)];
  const members = [...new Set(dirs.flatMap((d) => d.members))];
  const resources = [...new Set(dirs.flatMap((d) => d.resources))];
  const actions = [...new Set(dirs.flatMap((d) => d.actions.map((a) => a.name)))];
  const revoked = [];
  const granted = [];
  const requests = members.flatMap((s) => actions.flatMap((a) => resources.map((r) => [s, a, r])));
  const [b, f] = evs.map((ev) => ev.checkMany(requests, { now }));
  requests.forEach((req, i) => {
    if (b[i].allowed && !f[i].allowed) revoked.push(req.join(' '));
    if (!b[i].allowed && f[i].allowed) granted.push(req.join(' '));
  });
  for (const ev of evs) ev.free();
  return { revoked: revoked.sort(), granted: granted.sort() };
}

/** A random change that applies to `m` (or null when the draw does not fit the model). */
function randomChange(m, dir, pick, rand) {
  const subjects = dir.members.concat(dir.groups, ['user:new']);
  const roles = [...dir.roles.keys()];
  switch (pick(['add_membership', 'remove_membership', 'add_assignment', 'remove_assignment', 'suspend', 'unsuspend', 'set_role', 'move_resource'])) {
    case 'add_membership':
      return { kind: 'add_membership', member: pick(subjects), group: pick(dir.groups.concat(['group:new'])) };
    case 'remove_membership': {
      const x = m.memberships.length ? pick(m.memberships) : null;
      return x && { kind: 'remove_membership', member: x.member, group: x.group };
    }
    case 'add_assignment':
      return {
        kind: 'add_assignment', principal: pick(subjects), role: pick(roles), resource: pick(dir.resources),
        ...(rand() < 0.3 ? { expires_at: NOW + (rand() < 0.5 ? -1 : 1) * 86_400_000 } : {}),
      };
    case 'remove_assignment': {
      const x = m.assignments.length ? pick(m.assignments) : null;
      return x && { kind: 'remove_assignment', principal: x.principal, role: x.role, resource: x.resource };
    }
    case 'suspend':
      return { kind: 'suspend', subject: pick(rand() < 0.3 ? dir.groups : dir.members) };
    case 'unsuspend':
      return m.suspended?.length ? { kind: 'unsuspend', subject: pick(m.suspended) } : null;
    case 'set_role':
      return { kind: 'set_role', role: pick(roles), actions: dir.actions.map((a) => a.name).filter(() => rand() < 0.5) };
    default: {
      const r = pick(dir.resources.filter((id) => dir.parent.get(id)));
      return r && { kind: 'move_resource', resource: r, parent: pick(dir.resources) };
    }
  }
}

function trial(base, seed, maxChanges) {
  const rand = rng(seed);
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const changes = [];
  let model = base;
  const want = 1 + Math.floor(rand() * maxChanges);
  for (let tries = 0; changes.length < want && tries < 20; tries++) {
    const c = randomChange(model, new Directory(model), pick, rand);
    if (!c) continue;
    try {
      model = applyChanges(pkg, base, [...changes, c]);
      changes.push(c);
    } catch (e) {
      // A cycle, or a change that names nothing: refused, as the page refuses it.
      assert.ok(['invalid_model', 'not_found', 'no_change'].includes(e.code), `${e.code}: ${e.message}`);
    }
  }
  const got = impact(pkg, base, model, changes, NOW);
  const exact = brute(base, model, NOW);
  const label = JSON.stringify(changes);
  assert.deepEqual(got.revocations.map((r) => `${r.subject} ${r.action} ${r.resource}`).sort(), exact.revoked, label);
  assert.deepEqual(got.grants.map((r) => `${r.subject} ${r.action} ${r.resource}`).sort(), exact.granted, label);
  for (const r of got.revocations) assert.ok(r.before.allowed && !r.after.allowed && r.before.grant);
  for (const r of got.grants) assert.ok(!r.before.allowed && r.after.allowed && r.after.grant);
  return { staged: changes.length, differ: exact.revoked.length + exact.granted.length > 0 };
}

test('what-if on the example: 300 random sets of changes against brute force', () => {
  const runs = Array.from({ length: 300 }, (_, i) => trial(EXAMPLE, i + 1, 3));
  assert.ok(runs.reduce((n, r) => n + r.staged, 0) >= 300);
  // Most draws change someone's access: the comparison is not of empty lists.
  assert.ok(runs.filter((r) => r.differ).length > 150, String(runs.filter((r) => r.differ).length));
});

test('what-if on a generated workload (nested groups, four levels): 40 random sets', () => {
  const bin = path.join(REPO_DIR, 'target/release/edge-authz');
  const model = JSON.parse(
    execFileSync(bin, ['workload', '--users', '40', '--groups', '20', '--assignments', '60', '--big-group', '10', '--docs-per-project', '1']),
  );
  const runs = Array.from({ length: 40 }, (_, i) => trial(model, 1001 + i, 4));
  assert.ok(runs.reduce((n, r) => n + r.staged, 0) >= 40);
  assert.ok(runs.filter((r) => r.differ).length > 20, String(runs.filter((r) => r.differ).length));
});

test('applyChanges refuses what does not apply and leaves its input alone', () => {
  const copy = structuredClone(EXAMPLE);
  const cases = [
    [{ kind: 'remove_membership', member: 'user:alice', group: 'group:staff' }, 'not_found'],
    [{ kind: 'add_membership', member: 'user:alice', group: 'group:eng' }, 'no_change'],
    [{ kind: 'add_membership', member: 'group:staff', group: 'group:eng' }, 'invalid_model'], // a cycle
    [{ kind: 'add_assignment', principal: 'user:bob', role: 'owner', resource: 'org:acme' }, 'invalid_model'],
    [{ kind: 'set_role', role: 'nope', actions: [] }, 'not_found'],
    [{ kind: 'move_resource', resource: 'org:acme', parent: 'doc:roadmap' }, 'invalid_model'], // a cycle
    [{ kind: 'unsuspend', subject: 'user:alice' }, 'not_found'],
    [{ kind: 'rename', subject: 'user:alice' }, 'invalid_change'],
  ];
  for (const [c, code] of cases) {
    assert.throws(() => applyChanges(pkg, EXAMPLE, [c]), (e) => e.code === code, JSON.stringify(c));
  }
  assert.deepEqual(EXAMPLE, copy);
});
