// `edge-authz impact --json` against the admin page's what-if (www/lib/whatif.js `impact`, run in
// Node through the package) and against brute force: for named edits (a membership or an
// assignment removed, a grant added, a user or a group suspended, an assignment expired, a
// resource or an action removed, a role, a parent, a condition changed) and for random sets of
// the page's changes, the command line's revocations and grants are the page's, with the same
// grants lost and gained, and exactly the (member, action, resource) decisions that differ.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_DIR, requirePackage } from './pkg.mjs';
import { applyChanges, impact } from '../../www/lib/whatif.js';
import { Directory } from '../../www/lib/directory.js';

const pkg = requirePackage();
// EDGE_AUTHZ_BIN: another build of the command line (the pkg subset builds the release one).
const BIN = process.env.EDGE_AUTHZ_BIN ?? path.join(REPO_DIR, 'target/release/edge-authz');
const NOW = Date.UTC(2026, 5, 1);
const DAY = 86_400_000;
const DIR = mkdtempSync(path.join(tmpdir(), 'edge-authz-impact-'));
after(() => rmSync(DIR, { recursive: true, force: true }));

// The example, with more members, nested groups, a second workspace, a condition and expiry.
const ACME = JSON.parse(readFileSync(path.join(REPO_DIR, 'examples/acme.json'), 'utf8'));
const BASE = {
  ...ACME,
  resources: [
    ...ACME.resources,
    { id: 'doc:spec', parent: 'workspace:eng' },
    { id: 'workspace:ops', parent: 'org:acme' },
    { id: 'doc:runbook', parent: 'workspace:ops' },
  ],
  memberships: [
    ...ACME.memberships,
    { member: 'user:bob', group: 'group:eng' },
    { member: 'user:carol', group: 'group:ops' },
    { member: 'group:ops', group: 'group:staff' },
    { member: 'user:dave', group: 'group:ops' },
  ],
  assignments: [
    ...ACME.assignments,
    { principal: 'group:ops', role: 'editor', resource: 'workspace:ops' },
    { principal: 'user:bob', role: 'admin', resource: 'doc:spec', expires_at: NOW + 30 * DAY },
    { principal: 'user:carol', role: 'admin', resource: 'doc:runbook', when: 'office' },
  ],
  conditions: { office: { attr: 'ip', op: 'in_cidr', value: ['10.0.0.0/8'] } },
};
const ATTRS = { ip: '10.1.2.3' };

let files = 0;
function write(model) {
  const file = path.join(DIR, `m${files++}.json`);
  writeFileSync(file, JSON.stringify(model));
  return file;
}

/** `edge-authz impact --json OLD NEW` at NOW: its exit code and report. */
function cli(before, afterModel, attrs, extra = []) {
  const args = ['impact', '--json', '--now', String(NOW), write(before), write(afterModel), ...extra];
  if (attrs) args.push('--context', JSON.stringify(attrs));
  const out = spawnSync(BIN, args, { encoding: 'utf8' });
  assert.ok(out.status === 0 || out.status === 2, `${args.join(' ')}: exit ${out.status}: ${out.stderr}`);
  const report = JSON.parse(out.stdout);
  assert.equal(out.status, report.revoked.length > 0 ? 2 : 0, 'exit code 2 exactly when something is revoked');
  assert.deepEqual(report.counts.revoked, report.revoked.length);
  assert.deepEqual(report.counts.granted, report.granted.length);
  return report;
}

/** Every (member, action, resource) of either model decided by both, with the package. */
function brute(before, afterModel, attrs) {
  const evs = [pkg.Evaluator.preview(before), pkg.Evaluator.preview(afterModel)];
  const dirs = [new Directory(before), new Directory(afterModel)];
  const union = (f) => [...new Set(dirs.flatMap(f))];
  const requests = union((d) => d.members).flatMap((s) =>
    union((d) => d.actions.map((a) => a.name)).flatMap((a) => union((d) => d.resources).map((r) => [s, a, r])),
  );
  const [b, f] = evs.map((ev) => ev.checkMany(requests, { ...attrs, now: NOW }));
  for (const ev of evs) ev.free();
  const line = (req) => req.join(' ');
  return {
    revoked: requests.filter((_, i) => b[i].allowed && !f[i].allowed).map(line).sort(),
    granted: requests.filter((_, i) => !b[i].allowed && f[i].allowed).map(line).sort(),
  };
}

const grantOf = (g) => ({ principal: g.principal, role: g.role, resource: g.resource, path: g.path, when: g.when });
const keyed = (rows, grant) =>
  new Map(rows.map((r) => [`${r.subject} ${r.action} ${r.resource}`, grantOf(grant(r))]));

/**
 * The command line and the page's what-if on the same edit: `changes` staged on `before` by the
 * page (or, for an edit the page cannot stage, `edit` makes the new model and `changes` only
 * name its reach to the page's `impact`). Returns the report.
 */
function same(label, before, { changes, edit, attrs }) {
  const afterModel = edit ? edit(structuredClone(before)) : applyChanges(pkg, before, changes);
  const report = cli(before, afterModel, attrs);
  const page = impact(pkg, before, afterModel, changes, NOW, attrs ? { attrs } : {});
  const mine = { revoked: keyed(report.revoked, (r) => r.grant), granted: keyed(report.granted, (r) => r.grant) };
  const theirs = {
    revoked: keyed(page.revocations, (r) => r.before.grant),
    granted: keyed(page.grants, (r) => r.after.grant),
  };
  // The same flips, in the same order (subject, resource, action), with the same grants.
  assert.deepEqual([...mine.revoked.keys()].sort(), [...theirs.revoked.keys()].sort(), `${label}: revoked`);
  assert.deepEqual([...mine.granted.keys()].sort(), [...theirs.granted.keys()].sort(), `${label}: granted`);
  assert.deepEqual(mine, theirs, `${label}: the grants lost and gained`);
  // And exactly the decisions that differ.
  const exact = brute(before, afterModel, attrs);
  assert.deepEqual([...mine.revoked.keys()].sort(), exact.revoked, `${label}: revoked (brute force)`);
  assert.deepEqual([...mine.granted.keys()].sort(), exact.granted, `${label}: granted (brute force)`);
  // The reason of the denying side is the page's too.
  page.revocations.forEach((r, i) => assert.equal(report.revoked.find((x) =>
    x.subject === r.subject && x.action === r.action && x.resource === r.resource).reason, r.after.reason, `${label} ${i}`));
  return report;
}

const named = [
  ['no change', { changes: [], edit: (m) => m }, { revoked: 0, granted: 0 }],
  ['remove a membership', { changes: [{ kind: 'remove_membership', member: 'user:bob', group: 'group:eng' }] }, { revoked: 1, granted: 0 }],
  ['remove an assignment', { changes: [{ kind: 'remove_assignment', principal: 'group:staff', role: 'viewer', resource: 'org:acme' }] }, { revoked: 1, granted: 0 }],
  ['add a grant', { changes: [{ kind: 'add_assignment', principal: 'group:eng', role: 'editor', resource: 'workspace:ops' }] }, { revoked: 0, granted: 1 }],
  ['add a grant that has expired', { changes: [{ kind: 'add_assignment', principal: 'user:dave', role: 'admin', resource: 'org:acme', expires_at: NOW - DAY }] }, { revoked: 0, granted: 0 }],
  ['add a grant that expires later', { changes: [{ kind: 'add_assignment', principal: 'user:dave', role: 'admin', resource: 'org:acme', expires_at: NOW + DAY }] }, { revoked: 0, granted: 1 }],
  ['suspend a user', { changes: [{ kind: 'suspend', subject: 'user:alice' }] }, { revoked: 1, granted: 0 }],
  ['suspend a group', { changes: [{ kind: 'suspend', subject: 'group:ops' }] }, { revoked: 1, granted: 0 }],
  ['lift a suspension', { changes: [{ kind: 'unsuspend', subject: 'user:mallory' }] }, { revoked: 0, granted: 0 }],
  ['a role loses an action', { changes: [{ kind: 'set_role', role: 'editor', actions: ['read'] }] }, { revoked: 1, granted: 0 }],
  ['move a resource', { changes: [{ kind: 'move_resource', resource: 'doc:spec', parent: 'workspace:ops' }] }, { revoked: 1, granted: 1 }],
  ['a stricter condition', { changes: [{ kind: 'set_condition', name: 'office', condition: { attr: 'ip', op: 'in_cidr', value: ['10.9.0.0/16'] } }], attrs: ATTRS }, { revoked: 1, granted: 0 }],
  // Without a context the condition fails; from the office it holds, so nothing flips.
  ['a condition put on a grant', { changes: [{ kind: 'set_when', principal: 'group:ops', role: 'editor', resource: 'workspace:ops', when: 'office' }], attrs: undefined }, { revoked: 1, granted: 0 }],
  ['a condition put on a grant, from the office', { changes: [{ kind: 'set_when', principal: 'group:ops', role: 'editor', resource: 'workspace:ops', when: 'office' }], attrs: ATTRS }, { revoked: 0, granted: 0 }],
  ['a condition lifted from a grant', { changes: [{ kind: 'set_when', principal: 'user:carol', role: 'admin', resource: 'doc:runbook' }], attrs: undefined }, { revoked: 0, granted: 1 }],
  ['a condition lifted from a grant, from the office', { changes: [{ kind: 'set_when', principal: 'user:carol', role: 'admin', resource: 'doc:runbook' }], attrs: ATTRS }, { revoked: 0, granted: 0 }],
  // Edits the page has no change for: the change named is the page's reach of the edit.
  ['expire an assignment', {
    changes: [{ kind: 'remove_assignment', principal: 'user:alice', role: 'admin', resource: 'workspace:eng' }],
    edit: (m) => {
      m.assignments.find((a) => a.principal === 'user:alice').expires_at = NOW;
      return m;
    },
  }, { revoked: 1, granted: 0 }],
  ['time passes (expiry moved before NOW)', {
    changes: [{ kind: 'remove_assignment', principal: 'user:bob', role: 'admin', resource: 'doc:spec' }],
    edit: (m) => {
      m.assignments.find((a) => a.principal === 'user:bob').expires_at = NOW - 1;
      return m;
    },
  }, { revoked: 1, granted: 0 }],
  ['remove a resource', {
    changes: [{ kind: 'move_resource', resource: 'workspace:ops' }],
    edit: (m) => {
      const gone = new Set(['workspace:ops', 'doc:runbook']);
      m.resources = m.resources.filter((r) => !gone.has(r.id));
      m.assignments = m.assignments.filter((a) => !gone.has(a.resource));
      return m;
    },
  }, { revoked: 1, granted: 0 }],
  ['remove an action', {
    changes: [{ kind: 'set_role', role: 'admin', actions: ['read', 'write'] }],
    edit: (m) => {
      delete m.actions.export;
      m.roles = Object.fromEntries(Object.entries(m.roles).map(([r, acts]) => [r, acts.filter((a) => a !== 'export')]));
      return m;
    },
  }, { revoked: 1, granted: 0 }],
  ['several at once', {
    changes: [
      { kind: 'remove_membership', member: 'group:ops', group: 'group:staff' },
      { kind: 'add_membership', member: 'user:erin', group: 'group:eng' },
      { kind: 'suspend', subject: 'user:bob' },
      { kind: 'set_role', role: 'viewer', actions: ['read', 'write'] },
    ],
  }, { revoked: 1, granted: 1 }],
];

for (const [label, edit, expect] of named) {
  test(`impact: ${label}`, () => {
    for (const attrs of 'attrs' in edit ? [edit.attrs] : [undefined, ATTRS]) {
      const report = same(label, BASE, { ...edit, attrs });
      // Not an empty comparison: at least this many revocations and grants.
      assert.ok(report.revoked.length >= expect.revoked, `${label}: ${JSON.stringify(report.counts)}`);
      assert.ok(report.granted.length >= expect.granted, `${label}: ${JSON.stringify(report.counts)}`);
      if (expect.revoked === 0) assert.equal(report.revoked.length, 0, label);
      if (expect.granted === 0) assert.equal(report.granted.length, 0, label);
    }
  });
}

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

function randomChange(m, rand) {
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const dir = new Directory(m);
  const subjects = dir.members.concat(dir.groups, ['user:new']);
  switch (pick(['add_membership', 'remove_membership', 'add_assignment', 'remove_assignment', 'suspend', 'unsuspend', 'set_role', 'move_resource', 'set_when'])) {
    case 'add_membership':
      return { kind: 'add_membership', member: pick(subjects), group: pick(dir.groups.concat(['group:new'])) };
    case 'remove_membership': {
      const x = pick(m.memberships);
      return x && { kind: 'remove_membership', member: x.member, group: x.group };
    }
    case 'add_assignment':
      return {
        kind: 'add_assignment', principal: pick(subjects), role: pick([...dir.roles.keys()]), resource: pick(dir.resources),
        ...(rand() < 0.3 ? { expires_at: NOW + (rand() < 0.5 ? -1 : 1) * DAY } : {}),
      };
    case 'remove_assignment': {
      const x = pick(m.assignments);
      return x && { kind: 'remove_assignment', principal: x.principal, role: x.role, resource: x.resource };
    }
    case 'suspend':
      return { kind: 'suspend', subject: pick(rand() < 0.3 ? dir.groups : dir.members) };
    case 'unsuspend':
      return m.suspended?.length ? { kind: 'unsuspend', subject: pick(m.suspended) } : null;
    case 'set_role':
      return { kind: 'set_role', role: pick([...dir.roles.keys()]), actions: dir.actions.map((a) => a.name).filter(() => rand() < 0.5) };
    case 'set_when': {
      const x = pick(m.assignments);
      return x && { kind: 'set_when', principal: x.principal, role: x.role, resource: x.resource, when: x.when ? undefined : 'office' };
    }
    default: {
      const r = pick(dir.resources.filter((id) => dir.parent.get(id)));
      return r && { kind: 'move_resource', resource: r, parent: pick(dir.resources) };
    }
  }
}

test('impact: 60 random sets of the page\'s changes, as the page and brute force find them', () => {
  let differ = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const rand = rng(seed);
    const changes = [];
    let model = BASE;
    for (let tries = 0; changes.length < 1 + (seed % 3) && tries < 20; tries++) {
      const c = randomChange(model, rand);
      if (!c) continue;
      try {
        model = applyChanges(pkg, BASE, [...changes, c]);
        changes.push(c);
      } catch (e) {
        assert.ok(['invalid_model', 'not_found', 'no_change'].includes(e.code), `${e.code}: ${e.message}`);
      }
    }
    const attrs = seed % 2 ? ATTRS : undefined;
    const report = same(`seed ${seed}: ${JSON.stringify(changes)}`, BASE, { changes, attrs });
    if (report.revoked.length + report.granted.length > 0) differ++;
  }
  assert.ok(differ > 30, `only ${differ} of 60 sets changed anyone's access`);
});
