// The plain JavaScript reference: docs/decisions.md, "Gates", gates 6, 8 and 9 only (every
// benchmark request names a declared action and resource; freshness and watermark are out of scope). Written for
// obviousness, not speed: every engine's every answer is compared with it.
//
// allowed(s, a, r, now) is true iff
//   - s is not suspended (listed in `suspended`, or a member, directly or through nested groups, of a
//     listed group), and
//   - some assignment (P, R, Y, expires_at?) has a in roles[R], Y == r or an ancestor of r (via
//     `parent`), P == s or a group containing s transitively, and now < expires_at when set.

export function buildReference(model) {
  const parentsOf = new Map(); // member -> [groups it is directly in]
  for (const { member, group } of model.memberships || []) {
    if (!parentsOf.has(member)) parentsOf.set(member, []);
    parentsOf.get(member).push(group);
  }
  const resourceParent = new Map();
  for (const r of model.resources) resourceParent.set(r.id, r.parent ?? null);
  const roleActions = new Map();
  for (const [role, acts] of Object.entries(model.roles)) roleActions.set(role, new Set(acts));
  const suspended = new Set(model.suspended || []);
  // (principal, resource) -> [{role, expiresAt}]
  const grants = new Map();
  for (const a of model.assignments) {
    const k = a.principal + '\u0000' + a.resource;
    if (!grants.has(k)) grants.set(k, []);
    grants.get(k).push({ role: a.role, expiresAt: a.expires_at ?? null });
  }

  const closureCache = new Map();
  // The subject itself and every group it belongs to, directly or transitively (cycle-safe).
  function selfAndGroups(s) {
    let out = closureCache.get(s);
    if (out) return out;
    const seen = new Set([s]);
    const stack = [s];
    while (stack.length) {
      const x = stack.pop();
      for (const g of parentsOf.get(x) || []) {
        if (!seen.has(g)) { seen.add(g); stack.push(g); }
      }
    }
    out = [...seen];
    closureCache.set(s, out);
    return out;
  }
  function selfAndAncestors(r) {
    const out = [];
    const seen = new Set();
    for (let x = r; x != null && !seen.has(x); x = resourceParent.get(x) ?? null) {
      seen.add(x);
      out.push(x);
    }
    return out;
  }
  function isSuspended(s) {
    for (const x of selfAndGroups(s)) if (suspended.has(x)) return true;
    return false;
  }
  function allowed(s, a, r, now) {
    if (isSuspended(s)) return false;
    const principals = selfAndGroups(s);
    const scopes = selfAndAncestors(r);
    for (const p of principals) {
      for (const y of scopes) {
        const list = grants.get(p + '\u0000' + y);
        if (!list) continue;
        for (const g of list) {
          if (!roleActions.get(g.role)?.has(a)) continue;
          if (g.expiresAt != null && !(now < g.expiresAt)) continue;
          return true;
        }
      }
    }
    return false;
  }
  return { allowed, isSuspended, selfAndGroups, selfAndAncestors };
}
