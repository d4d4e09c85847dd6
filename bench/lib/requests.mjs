// Seeded request generation over a model. Every request is a valid `user:*` subject, a declared
// action and a declared resource. A `targeted` share of the requests is derived from a random
// assignment (a member reached by walking down from its principal, mostly one of the role's actions,
// a resource at or below the assignment's resource) so that the mix holds a healthy share of allowed
// answers; the rest are uniform (user x action x resource). Expired assignments, suspended users and
// actions outside the role make part of the targeted ones denied too.
import { rng } from './rng.mjs';

export function requestUniverse(model) {
  const users = new Set();
  const membersOf = new Map(); // group -> direct members
  for (const { member, group } of model.memberships || []) {
    if (!member.startsWith('group:')) users.add(member);
    if (!membersOf.has(group)) membersOf.set(group, []);
    membersOf.get(group).push(member);
  }
  for (const a of model.assignments) if (!a.principal.startsWith('group:')) users.add(a.principal);
  for (const s of model.suspended || []) if (!s.startsWith('group:')) users.add(s);
  const childrenOf = new Map();
  for (const r of model.resources) {
    if (r.parent == null) continue;
    if (!childrenOf.has(r.parent)) childrenOf.set(r.parent, []);
    childrenOf.get(r.parent).push(r.id);
  }
  return {
    users: [...users].sort(),
    actions: Object.keys(model.actions).sort(),
    resources: model.resources.map((r) => r.id),
    membersOf,
    childrenOf,
  };
}

export function generateRequests(model, n, { seed = 1, targeted = 0.5 } = {}, universe = requestUniverse(model)) {
  const R = rng(seed);
  const { users, actions, resources, membersOf, childrenOf } = universe;
  if (users.length === 0) throw new Error('the model has no user subjects');
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    if (R.next() < targeted && model.assignments.length > 0) {
      const a = R.pick(model.assignments);
      // subject: walk down from the principal to a member that is not a group
      let s = a.principal;
      for (let depth = 0; s.startsWith('group:') && depth < 64; depth++) {
        const m = membersOf.get(s);
        if (!m || m.length === 0) break;
        s = R.pick(m);
      }
      if (s.startsWith('group:')) s = R.pick(users);
      const roleActs = model.roles[a.role];
      const act = R.next() < 0.8 && roleActs.length > 0 ? R.pick(roleActs) : R.pick(actions);
      let res = a.resource;
      for (let depth = 0; depth < 64; depth++) {
        const c = childrenOf.get(res);
        if (!c || c.length === 0 || R.next() < 0.15) break;
        res = R.pick(c);
      }
      out[i] = [s, act, res];
    } else {
      out[i] = [R.pick(users), R.pick(actions), R.pick(resources)];
    }
  }
  return out;
}
