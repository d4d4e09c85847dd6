// Peer: casbin (node-casbin 5.x, 5.51.1), enforceSync.
//
// Choices:
// - Model (RBAC without domains): request (sub, obj, act, now); one policy row per assignment
//   `p, principal, resource, role, expires_at` (expires_at empty when absent);
//   `g` = subject -> group membership (transitive, casbin's role manager), `g2` = resource -> parent
//   (transitive), `g3` = role -> action (a role "has" each of its actions).
// - Suspension without a custom function: each `suspended` entry gets a `g` link to the reserved
//   role `__suspended__`, so `g(r.sub, "__suspended__")` is true for a listed subject and for every
//   member, direct or nested, of a listed group.
// - Matcher (casbin's synchronous evaluator short-circuits `&&`): the resource test first (few
//   ancestors, rejects almost every row), then role -> action, then the subject's groups, then
//   expiry; the suspension test last, so it only runs on a row that would grant. (Measured on the
//   default workload: other orders are within noise, 13-17 checks/s either way; the fixed cost per
//   row, a fresh parameter object and an Object.assign with the functions, dominates.)
//     g2(r.obj, p.obj) && g3(p.role, r.act) && g(r.sub, p.sub)
//       && (p.exp == "" || r.now < p.exp) && !g(r.sub, "__suspended__")
//   (`r.now < p.exp` compares a number with the row's numeric string: JavaScript converts the string).
// - Effect `some(where (p.eft == allow))`: an allowed request stops at its first granting row, a
//   denied one scans every row (casbin has no index over policy rows).
// - Load (timed) = newEnforcer(newModelFromString(conf), new StringAdapter(policy CSV)): CSV parse
//   of every p/g/g2/g3 line and the role links. Producing the CSV text from the model is the
//   analogue of compileSnapshot and is not timed. The role managers' hierarchy limit (10 by default)
//   is raised when the model nests deeper.
// - enforceSync per check; checkMany is a loop of enforceSync (casbin's batchEnforce is only async
//   and runs the same per-request enforce).
import { createRequire } from 'node:module';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

const require = createRequire(import.meta.url);
export const name = 'casbin';
let casbin;

export function importEngine() {
  casbin = require('casbin');
  return { version: require('casbin/package.json').version };
}

/**
 * The files Node actually loads for `require('casbin')` (casbin's CommonJS build and its runtime
 * dependencies), listed from require.cache in a child process.
 */
export function packageFiles() {
  const out = execFileSync(process.execPath, ['-e', "require('casbin'); process.stdout.write(JSON.stringify(Object.keys(require.cache)))"], {
    cwd: path.dirname(require.resolve('casbin/package.json')), encoding: 'utf8',
  });
  return { lib: JSON.parse(out).filter((f) => f.includes(`${path.sep}node_modules${path.sep}`)) };
}

export const CONF = `
[request_definition]
r = sub, obj, act, now

[policy_definition]
p = sub, obj, role, exp

[role_definition]
g = _, _
g2 = _, _
g3 = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g2(r.obj, p.obj) && g3(p.role, r.act) && g(r.sub, p.sub) && (p.exp == "" || r.now < p.exp) && !g(r.sub, "__suspended__")
`;

const csvField = (s) => (/[",\s]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

function depth(edges) {
  // longest chain in a child -> parents graph (memoised DFS; cycles are invalid models anyway)
  const ps = new Map();
  for (const [c, p] of edges) { if (!ps.has(c)) ps.set(c, []); ps.get(c).push(p); }
  const memo = new Map();
  const d = (n, guard = 0) => {
    if (memo.has(n)) return memo.get(n);
    if (guard > 10000) return 0;
    let m = 0;
    for (const p of ps.get(n) || []) m = Math.max(m, 1 + d(p, guard + 1));
    memo.set(n, m);
    return m;
  };
  let m = 0;
  for (const c of ps.keys()) m = Math.max(m, d(c));
  return m;
}

/** The origin-side translation (not timed): the model text and the policy CSV. */
export function prepare(model) {
  const lines = [];
  for (const a of model.assignments) {
    lines.push(['p', a.principal, a.resource, a.role, a.expires_at != null ? String(a.expires_at) : '""'].map((x, i) => (i === 4 ? x : csvField(x))).join(', '));
  }
  const gEdges = [];
  for (const { member, group } of model.memberships || []) {
    lines.push(`g, ${csvField(member)}, ${csvField(group)}`);
    gEdges.push([member, group]);
  }
  for (const s of model.suspended || []) {
    lines.push(`g, ${csvField(s)}, __suspended__`);
    gEdges.push([s, '__suspended__']);
  }
  const g2Edges = [];
  for (const r of model.resources) {
    if (r.parent != null) {
      lines.push(`g2, ${csvField(r.id)}, ${csvField(r.parent)}`);
      g2Edges.push([r.id, r.parent]);
    }
  }
  for (const [role, acts] of Object.entries(model.roles)) {
    for (const a of acts) lines.push(`g3, ${csvField(role)}, ${csvField(a)}`);
  }
  return {
    conf: CONF,
    csv: lines.join('\n'),
    rows: lines.length,
    policies: model.assignments.length,
    maxDepth: Math.max(depth(gEdges), depth(g2Edges)),
  };
}

export async function load(prepared, { now } = {}) {
  const m = casbin.newModelFromString(prepared.conf);
  const e = await casbin.newEnforcer(m, new casbin.StringAdapter(prepared.csv));
  if (prepared.maxDepth >= 10) {
    // DefaultRoleManager stops at 10 levels: give each role manager room for the model's nesting.
    for (const ptype of ['g', 'g2', 'g3']) e.setNamedRoleManager(ptype, new casbin.DefaultRoleManager(prepared.maxDepth + 2));
    await e.buildRoleLinks();
  }
  const check = (s, a, r) => e.enforceSync(s, r, a, now);
  return {
    check,
    checkMany: (reqs) => reqs.map((q) => e.enforceSync(q[0], q[2], q[1], now)),
    allowed: (x) => x === true,
    batchApi: 'none synchronous (a loop of enforceSync)',
    info: { policyRows: prepared.policies, totalLines: prepared.rows },
  };
}
