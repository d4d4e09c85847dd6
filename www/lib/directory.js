// What the page knows about a model's names: members and groups, the resource tree, actions and
// roles, and a search over ids that stays fast with tens of thousands of them. Built once per
// model from its JSON; it never decides anything (decisions come from the package's evaluator).

const isGroup = (id) => id.startsWith('group:');

/** A sorted, de-duplicated array. */
function sorted(set) {
  return [...set].sort();
}

export class Directory {
  /** @param {object} model a model object (docs/model.md), assumed to compile */
  constructor(model) {
    this.tenant = model.tenant;
    // Actions in the model's order (the columns of the permission tables).
    this.actions = Object.entries(model.actions ?? {})
      .map(([name, def]) => ({ name, tier: def?.tier ?? 'standard' }));
    this.roles = new Map(Object.entries(model.roles ?? {}).map(([r, acts]) => [r, [...acts]]));
    // The resource tree, in depth-first order from the roots (children sorted by id).
    this.parent = new Map();
    const children = new Map();
    for (const r of model.resources ?? []) {
      this.parent.set(r.id, r.parent ?? null);
      if (r.parent) {
        if (!children.has(r.parent)) children.set(r.parent, []);
        children.get(r.parent).push(r.id);
      }
    }
    this.children = children;
    this.resources = [];
    this.depth = new Map();
    const roots = sorted([...this.parent].filter(([, p]) => p === null || !this.parent.has(p)).map(([id]) => id));
    const stack = roots.reverse().map((id) => [id, 0]);
    while (stack.length > 0) {
      const [id, d] = stack.pop();
      if (this.depth.has(id)) continue;
      this.depth.set(id, d);
      this.resources.push(id);
      const kids = (children.get(id) ?? []).slice().sort().reverse();
      for (const k of kids) stack.push([k, d + 1]);
    }
    this.order = new Map(this.resources.map((id, i) => [id, i]));
    // Groups: direct members and direct parents.
    this.membersOf = new Map();
    this.groupsOf = new Map();
    const subjects = new Set();
    for (const { member, group } of model.memberships ?? []) {
      if (!this.membersOf.has(group)) this.membersOf.set(group, []);
      this.membersOf.get(group).push(member);
      if (!this.groupsOf.has(member)) this.groupsOf.set(member, []);
      this.groupsOf.get(member).push(group);
      subjects.add(member);
      subjects.add(group);
    }
    this.assignments = (model.assignments ?? []).map((a) => ({ ...a }));
    for (const a of this.assignments) subjects.add(a.principal);
    this.suspended = new Set(model.suspended ?? []);
    for (const s of this.suspended) subjects.add(s);
    this.members = sorted([...subjects].filter((s) => !isGroup(s)));
    this.groups = sorted([...subjects].filter(isGroup));
    this.lower = {
      members: this.members.map((s) => s.toLowerCase()),
      groups: this.groups.map((s) => s.toLowerCase()),
      resources: this.resources.map((s) => s.toLowerCase()),
    };
  }

  /**
   * Up to `limit` ids of `kind` (`members`, `groups` or `resources`) containing `text`
   * (case-insensitive), those starting with it first; all of them (up to `limit`) for no text.
   */
  search(kind, text, limit = 50) {
    const ids = this[kind];
    const lower = this.lower[kind];
    const q = text.trim().toLowerCase();
    if (q === '') return ids.slice(0, limit);
    const first = [];
    const rest = [];
    for (let i = 0; i < lower.length && first.length < limit; i++) {
      const at = lower[i].indexOf(q);
      if (at < 0) continue;
      // A match right after the type's colon counts as a prefix match (`ali` finds user:alice).
      const colon = lower[i].indexOf(':');
      if (at === 0 || at === colon + 1) first.push(ids[i]);
      else if (rest.length < limit) rest.push(ids[i]);
    }
    return first.concat(rest).slice(0, limit);
  }

  /** The resource and its ancestors, from the resource up to its root. */
  ancestors(id) {
    const out = [];
    const seen = new Set();
    for (let r = id; r !== null && r !== undefined && !seen.has(r); r = this.parent.get(r)) {
      seen.add(r);
      out.push(r);
    }
    return out;
  }

  /** The resource and everything below it. */
  subtree(id) {
    const out = [];
    const stack = [id];
    const seen = new Set();
    while (stack.length > 0) {
      const r = stack.pop();
      if (seen.has(r)) continue;
      seen.add(r);
      out.push(r);
      for (const k of this.children.get(r) ?? []) stack.push(k);
    }
    return out;
  }

  /** The members (not groups) of `subject`: itself when it is a member, else every member of the
   * group directly or through nested groups. */
  membersBelow(subject) {
    if (!isGroup(subject)) return [subject];
    const out = new Set();
    const seen = new Set([subject]);
    const stack = [subject];
    while (stack.length > 0) {
      for (const m of this.membersOf.get(stack.pop()) ?? []) {
        if (seen.has(m)) continue;
        seen.add(m);
        if (isGroup(m)) stack.push(m);
        else out.add(m);
      }
    }
    return [...out];
  }

  /** The assignments that apply on `resource`: those on it or on one of its ancestors. */
  assignmentsOn(resource) {
    const chain = new Set(this.ancestors(resource));
    return this.assignments.filter((a) => chain.has(a.resource));
  }
}

export { isGroup };
