// Models and request pools for the Worker benchmark.
// - `largeModel(spec)`: a generated tenant `acme` with the example model's actions, tiers and
//   freshness, a few thousand users in two levels of groups, and a resource tree
//   org -> workspaces -> projects -> documents (seeded: the same model on every machine).
//   `edge-authz workload` (target/release/edge-authz) prints the native benchmark's larger
//   model; pass its output with --model.
// - `tierActions(model)`: one action per tier (read/write/export in the example).
// - `pool(model, action, n, ...)`: requests for one action, with the reference's answer.
import { rng } from '../lib/rng.mjs';
import { generateRequests, requestUniverse } from '../lib/requests.mjs';
import { buildReference } from '../lib/reference.mjs';

export const LARGE_DEFAULTS = { users: 5000, groups: 200, workspaces: 10, projects: 10, docs: 20, assignments: 6000, seed: 11 };

export function largeModel(spec = {}) {
  const s = { ...LARGE_DEFAULTS, ...spec };
  const R = rng(s.seed);
  const resources = [{ id: 'org:acme' }];
  const workspaces = [];
  const projects = [];
  const docs = [];
  for (let w = 0; w < s.workspaces; w++) {
    const ws = `workspace:w${w}`;
    workspaces.push(ws);
    resources.push({ id: ws, parent: 'org:acme' });
    for (let p = 0; p < s.projects; p++) {
      const pr = `project:w${w}-p${p}`;
      projects.push(pr);
      resources.push({ id: pr, parent: ws });
      for (let d = 0; d < s.docs; d++) {
        const doc = `doc:w${w}-p${p}-d${d}`;
        docs.push(doc);
        resources.push({ id: doc, parent: pr });
      }
    }
  }
  // Two levels of groups: departments, and teams inside them; users in 1 to 3 teams.
  const depts = Math.max(1, Math.floor(s.groups / 10));
  const memberships = [];
  const deptIds = Array.from({ length: depts }, (_, i) => `group:dept-${i}`);
  const teamIds = [];
  for (let t = 0; t < s.groups - depts; t++) {
    const id = `group:team-${t}`;
    teamIds.push(id);
    memberships.push({ member: id, group: deptIds[t % depts] });
  }
  memberships.push(...deptIds.map((d) => ({ member: d, group: 'group:everyone' })));
  const users = Array.from({ length: s.users }, (_, i) => `user:u${i}`);
  for (const u of users) {
    const k = 1 + R.below(3);
    const seen = new Set();
    for (let j = 0; j < k; j++) {
      const t = R.pick(teamIds);
      if (seen.has(t)) continue;
      seen.add(t);
      memberships.push({ member: u, group: t });
    }
  }
  const roles = ['viewer', 'commenter', 'editor', 'admin'];
  const assignments = [{ principal: 'group:everyone', role: 'viewer', resource: 'org:acme' }];
  const now = Date.now();
  const seenAssignments = new Set();
  for (let i = 1; i < s.assignments; i++) {
    const x = R.next();
    let principal;
    let resource;
    if (x < 0.3) {
      principal = R.pick(teamIds);
      resource = R.pick(workspaces);
    } else if (x < 0.6) {
      principal = R.pick(teamIds);
      resource = R.pick(projects);
    } else {
      principal = R.pick(users);
      resource = R.pick(docs);
    }
    const a = { principal, role: R.pick(roles), resource };
    const key = `${a.principal} ${a.role} ${a.resource}`;
    if (seenAssignments.has(key)) continue; // the model allows one assignment per triple
    seenAssignments.add(key);
    const e = R.next();
    if (e < 0.05) a.expires_at = now - 86_400_000; // expired a day ago
    else if (e < 0.15) a.expires_at = now + 365 * 86_400_000;
    assignments.push(a);
  }
  const suspended = Array.from({ length: 10 }, () => R.pick(users));
  return {
    version: 1,
    tenant: 'acme',
    actions: {
      read: { tier: 'low' },
      comment: { tier: 'low' },
      write: { tier: 'standard' },
      export: { tier: 'high' },
      delete: { tier: 'high' },
    },
    roles: {
      viewer: ['read'],
      commenter: ['read', 'comment'],
      editor: ['read', 'comment', 'write'],
      admin: ['read', 'comment', 'write', 'export', 'delete'],
    },
    resources,
    memberships,
    assignments,
    suspended: [...new Set(suspended)],
    freshness: { low: 300000, standard: 30000, high: 5000 },
  };
}

/** One action per tier, preferring read/write/export; {low, standard, high} (missing tiers: null). */
export function tierActions(model) {
  const out = { low: null, standard: null, high: null };
  const prefer = { low: 'read', standard: 'write', high: 'export' };
  for (const tier of Object.keys(out)) {
    const names = Object.keys(model.actions).filter((a) => (model.actions[a].tier ?? 'high') === tier).sort();
    out[tier] = names.includes(prefer[tier]) ? prefer[tier] : names[0] ?? null;
  }
  return out;
}

/**
 * n requests for `action` (subjects and resources from the seeded generator of the npm benchmark,
 * half of them derived from assignments), each with the reference's answer at `now`.
 */
export function pool(model, action, n, { seed = 7, now = Date.now() } = {}) {
  const universe = requestUniverse(model);
  const ref = buildReference(model);
  const reqs = generateRequests(model, n, { seed, targeted: 0.5 }, universe).map((q) => [q[0], action, q[2]]);
  const expected = reqs.map((q) => ref.allowed(q[0], q[1], q[2], now));
  return { reqs, expected, ref };
}

/** Requests for `action` that the reference allows (for the watermark and race phases). */
export function allowedPool(model, action, n, opts) {
  const p = pool(model, action, Math.max(n * 4, 200), opts);
  const out = p.reqs.filter((_, i) => p.expected[i]);
  if (out.length === 0) {
    // The generator found none: try every subject of an assignment on its own resource.
    const ref = p.ref;
    const now = opts?.now ?? Date.now();
    const universe = requestUniverse(model);
    outer: for (const u of universe.users) {
      for (const r of universe.resources) {
        if (ref.allowed(u, action, r, now)) out.push([u, action, r]);
        if (out.length >= n) break outer;
      }
    }
  }
  return out.slice(0, n);
}
