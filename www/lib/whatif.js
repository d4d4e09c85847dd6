// What-if: staged changes to a model, and what they would do to effective access.
//
// `applyChanges(model, changes)` returns the staged model (the input is not touched); a change
// that names nothing to remove, or that would not compile, throws with a `code`.
// `impact(api, before, after, changes, now, given?)` compares two preview evaluators (built, or
// `given`: `beforeEvaluator`, `afterEvaluator`, `beforeDirectory`), one per model, under the
// request attributes `given.attrs` (the page's context) at `now`, on
// every (member, action, resource) a change could affect, and returns the decisions that differ:
// revocations (allowed before, denied after) and grants (the reverse). It also asks the package's
// `diffModels` for the delta the origin would publish, and whether it counts as a revocation.
import { Directory, isGroup } from './directory.js';

export const CHANGE_KINDS = {
  add_membership: ['member', 'group'],
  remove_membership: ['member', 'group'],
  add_assignment: ['principal', 'role', 'resource', 'expires_at?'],
  remove_assignment: ['principal', 'role', 'resource'],
  suspend: ['subject'],
  unsuspend: ['subject'],
  set_role: ['role', 'actions'],
  move_resource: ['resource', 'parent'],
  set_condition: ['name', 'condition'],
  set_when: ['principal', 'role', 'resource', 'when?'],
};

function fail(code, message) {
  const e = new Error(message);
  e.code = code;
  return e;
}

/** One line describing a change, for lists and tests. */
export function describe(c) {
  switch (c.kind) {
    case 'add_membership':
      return `add ${c.member} to ${c.group}`;
    case 'remove_membership':
      return `remove ${c.member} from ${c.group}`;
    case 'add_assignment':
      return `assign ${c.role} on ${c.resource} to ${c.principal}` + (c.expires_at ? ` until ${new Date(c.expires_at).toISOString()}` : '');
    case 'remove_assignment':
      return `unassign ${c.role} on ${c.resource} from ${c.principal}`;
    case 'suspend':
      return `suspend ${c.subject}`;
    case 'unsuspend':
      return `lift the suspension of ${c.subject}`;
    case 'set_role':
      return `role ${c.role} = [${c.actions.join(', ')}]`;
    case 'move_resource':
      return `move ${c.resource} under ${c.parent}`;
    case 'set_condition':
      return `condition ${c.name} = ${JSON.stringify(c.condition)}`;
    case 'set_when':
      return c.when
        ? `${c.principal}'s ${c.role} on ${c.resource} holds only when ${c.when}`
        : `${c.principal}'s ${c.role} on ${c.resource} holds unconditionally`;
    default:
      return `unknown change ${c.kind}`;
  }
}

function applyOne(m, c) {
  const same = (a, b, keys) => keys.every((k) => a[k] === b[k]);
  switch (c.kind) {
    case 'add_membership': {
      m.memberships ??= [];
      if (m.memberships.some((x) => same(x, c, ['member', 'group']))) {
        throw fail('no_change', `${c.member} is already a direct member of ${c.group}`);
      }
      m.memberships.push({ member: c.member, group: c.group });
      return;
    }
    case 'remove_membership': {
      const before = (m.memberships ?? []).length;
      m.memberships = (m.memberships ?? []).filter((x) => !same(x, c, ['member', 'group']));
      if (m.memberships.length === before) throw fail('not_found', `${c.member} is not a direct member of ${c.group}`);
      return;
    }
    case 'add_assignment': {
      m.assignments ??= [];
      if (m.assignments.some((x) => same(x, c, ['principal', 'role', 'resource']))) {
        throw fail('no_change', `${c.principal} already holds ${c.role} on ${c.resource}`);
      }
      const a = { principal: c.principal, role: c.role, resource: c.resource };
      if (c.expires_at !== undefined && c.expires_at !== null) a.expires_at = c.expires_at;
      m.assignments.push(a);
      return;
    }
    case 'remove_assignment': {
      const before = (m.assignments ?? []).length;
      m.assignments = (m.assignments ?? []).filter((x) => !same(x, c, ['principal', 'role', 'resource']));
      if (m.assignments.length === before) throw fail('not_found', `${c.principal} holds no ${c.role} on ${c.resource}`);
      return;
    }
    case 'suspend': {
      m.suspended ??= [];
      if (m.suspended.includes(c.subject)) throw fail('no_change', `${c.subject} is already suspended`);
      m.suspended.push(c.subject);
      return;
    }
    case 'unsuspend': {
      if (!(m.suspended ?? []).includes(c.subject)) throw fail('not_found', `${c.subject} is not suspended`);
      m.suspended = m.suspended.filter((s) => s !== c.subject);
      return;
    }
    case 'set_role': {
      if (!m.roles || !Object.hasOwn(m.roles, c.role)) throw fail('not_found', `no role ${c.role}`);
      m.roles[c.role] = [...c.actions];
      return;
    }
    case 'move_resource': {
      const r = (m.resources ?? []).find((x) => x.id === c.resource);
      if (!r) throw fail('not_found', `no resource ${c.resource}`);
      if (r.parent === c.parent) throw fail('no_change', `${c.resource} is already under ${c.parent}`);
      r.parent = c.parent;
      return;
    }
    case 'set_condition': {
      let def = c.condition;
      if (typeof def === 'string') {
        try {
          def = JSON.parse(def);
        } catch (e) {
          throw fail('invalid_json', `the condition is not JSON: ${e.message}`);
        }
        c.condition = def;
      }
      m.conditions ??= {};
      if (JSON.stringify(m.conditions[c.name]) === JSON.stringify(def)) throw fail('no_change', `${c.name} is already that`);
      m.conditions[c.name] = def;
      return;
    }
    case 'set_when': {
      const a = (m.assignments ?? []).find((x) => same(x, c, ['principal', 'role', 'resource']));
      if (!a) throw fail('not_found', `${c.principal} holds no ${c.role} on ${c.resource}`);
      const when = c.when || undefined;
      if (a.when === when) throw fail('no_change', `that is already the assignment's condition`);
      if (when) a.when = when;
      else delete a.when;
      return;
    }
    default:
      throw fail('invalid_change', `unknown change kind ${c.kind}`);
  }
}

/**
 * The model with `changes` applied, checked by compiling it with the package (`api`): an error
 * with `code` (`not_found`, `no_change`, or the package's `invalid_model`) when it does not apply.
 */
export function applyChanges(api, model, changes) {
  const { model: m, evaluator } = stageChanges(api, model, changes);
  evaluator.free();
  return m;
}

/** As `applyChanges`, keeping the staged model's preview evaluator (the caller frees it). */
export function stageChanges(api, model, changes) {
  const m = structuredClone(model);
  for (const c of changes) applyOne(m, c);
  return { model: m, evaluator: api.Evaluator.preview(m) };
}

/** Which (members, actions, resources) a change could affect; `null` is "any". */
function reach(c, dirs) {
  const all = (dir) => dir.actions.map((a) => a.name);
  const actions = new Set(dirs.flatMap(all));
  const members = (p) => new Set(dirs.flatMap((d) => d.membersBelow(p)));
  switch (c.kind) {
    case 'add_membership':
    case 'remove_membership':
      return { subjects: members(c.member), actions, resources: null };
    case 'add_assignment':
    case 'remove_assignment':
      return {
        subjects: members(c.principal),
        actions: new Set(dirs.flatMap((d) => d.roles.get(c.role) ?? [])),
        resources: new Set(dirs.flatMap((d) => d.subtree(c.resource))),
      };
    case 'suspend':
    case 'unsuspend':
      // A suspended group suspends its members (ARCHITECTURE.md, "Choices").
      return { subjects: members(c.subject), actions, resources: null };
    case 'set_role': {
      const before = new Set(dirs[0].roles.get(c.role) ?? []);
      const after = new Set(c.actions);
      const changed = new Set([...before, ...after].filter((a) => before.has(a) !== after.has(a)));
      const subjects = new Set();
      const resources = new Set();
      for (const d of dirs) {
        for (const a of d.assignments) {
          if (a.role !== c.role) continue;
          for (const s of d.membersBelow(a.principal)) subjects.add(s);
          for (const r of d.subtree(a.resource)) resources.add(r);
        }
      }
      return { subjects, actions: changed, resources };
    }
    case 'move_resource':
      return { subjects: null, actions, resources: new Set(dirs.flatMap((d) => d.subtree(c.resource))) };
    case 'set_when':
      return {
        subjects: members(c.principal),
        actions: new Set(dirs.flatMap((d) => d.roles.get(c.role) ?? [])),
        resources: new Set(dirs.flatMap((d) => d.subtree(c.resource))),
      };
    case 'set_condition':
      // A condition may be anywhere: every member, every action, every resource.
      return { subjects: new Set(dirs.flatMap((d) => d.members)), actions, resources: null };
    default:
      return { subjects: null, actions, resources: null };
  }
}

const key = (s, a, r) => `${s}\u0000${a}\u0000${r}`;

/**
 * The decisions that `changes` turn around between `before` and `after` (models), at `now`:
 * `{revocations, grants, examined, revokes, deltaBytes, ms}` where each of `revocations` and
 * `grants` is a sorted array of `{subject, action, resource, before, after}` (decisions).
 */
export function impact(api, before, after, changes, now, given = {}) {
  // The page's request attributes, when it has some: both models are asked with them.
  const context = { ...(given.attrs ?? {}), now };
  const started = performance.now();
  const dirs = [given.beforeDirectory ?? new Directory(before), new Directory(after)];
  // Evaluators the caller already holds are used, and left to the caller.
  const evs = [given.beforeEvaluator ?? api.Evaluator.preview(before), given.afterEvaluator ?? api.Evaluator.preview(after)];
  const owned = [!given.beforeEvaluator, !given.afterEvaluator];
  try {
    const changed = new Map();
    let examined = 0;
    const note = (s, a, r) => {
      changed.set(key(s, a, r), [s, a, r]);
    };
    for (const c of changes) {
      const { subjects, actions, resources } = reach(c, dirs);
      if (subjects !== null) {
        for (const s of subjects) {
          if (isGroup(s)) continue;
          for (const a of actions) {
            const [b, f] = evs.map((ev) => new Set(tryList(() => ev.listResources(s, a, { context }))));
            examined += b.size + f.size;
            for (const r of b) if (!f.has(r) && (resources === null || resources.has(r))) note(s, a, r);
            for (const r of f) if (!b.has(r) && (resources === null || resources.has(r))) note(s, a, r);
          }
        }
      } else {
        for (const r of resources) {
          for (const a of actions) {
            const [b, f] = evs.map((ev) => new Set(tryList(() => ev.listSubjects(r, a, { context }))));
            examined += b.size + f.size;
            for (const s of b) if (!f.has(s)) note(s, a, r);
            for (const s of f) if (!b.has(s)) note(s, a, r);
          }
        }
      }
    }
    const requests = [...changed.values()];
    const [db, da] = evs.map((ev) => ev.checkMany(requests, context));
    const revocations = [];
    const grants = [];
    requests.forEach(([subject, action, resource], i) => {
      const row = { subject, action, resource, before: db[i], after: da[i] };
      if (db[i].allowed && !da[i].allowed) revocations.push(row);
      else if (!db[i].allowed && da[i].allowed) grants.push(row);
    });
    const order = (x, y) =>
      x.subject.localeCompare(y.subject) || x.resource.localeCompare(y.resource) || x.action.localeCompare(y.action);
    revocations.sort(order);
    grants.sort(order);
    // What the origin would publish: signed with a throwaway key, only its size and flag matter.
    const { secretKey } = api.generateKeyPair();
    const { delta, revokes } = api.diffModels(before, after, { baseEpoch: 1, epoch: 2, secretKey, issuedAt: now });
    return { revocations, grants, examined, revokes, deltaBytes: delta.length, ms: performance.now() - started };
  } finally {
    evs.forEach((ev, i) => owned[i] && ev.free());
  }
}

/** A listing, or nothing for an id the model does not know (unknown_resource / unknown_action). */
function tryList(f) {
  try {
    return f();
  } catch (e) {
    if (e.code === 'unknown_resource' || e.code === 'unknown_action' || e.code === 'invalid_request') return [];
    throw e;
  }
}
