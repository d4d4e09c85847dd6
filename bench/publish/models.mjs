// The models of bench/publish.mjs: the small one of the single-change phases (the repository's
// example, examples/acme.json, with user:bob in group:eng, under another tenant name when asked)
// and the big-group model.
import { base } from '../../tests/js/publisher.mjs';

/** The example model with user:bob in group:eng (he reads doc:roadmap through group:staff). */
export function small(tenant = 'acme') {
  return base((m) => {
    m.tenant = tenant;
  });
}

export const BIG_DEFAULTS = { members: 5000, docs: 5000, workspaces: 10 };

/**
 * One group, `group:big`, of `members` users (user:m0 ...), and `docs` role assignments of it:
 * `viewer` on doc:d0 ... doc:d{docs-2} and `editor` on org:big, which every document inherits
 * (its biggest assignment: it reaches every resource). Resources: org:big → `workspaces`
 * workspaces → `docs` documents (round robin). doc:d{docs-1} is reached through the org only.
 */
export function big(tenant = 'big', spec = {}) {
  const { members, docs, workspaces } = { ...BIG_DEFAULTS, ...spec };
  const resources = [{ id: 'org:big' }];
  for (let w = 0; w < workspaces; w++) resources.push({ id: `workspace:w${w}`, parent: 'org:big' });
  for (let d = 0; d < docs; d++) resources.push({ id: `doc:d${d}`, parent: `workspace:w${d % workspaces}` });
  const memberships = [];
  for (let i = 0; i < members; i++) memberships.push({ member: `user:m${i}`, group: 'group:big' });
  const assignments = [];
  for (let d = 0; d < docs - 1; d++) assignments.push({ principal: 'group:big', role: 'viewer', resource: `doc:d${d}` });
  assignments.push(BIGGEST);
  return {
    version: 1,
    tenant,
    actions: { read: { tier: 'low' }, write: { tier: 'standard' }, export: { tier: 'high' } },
    roles: { viewer: ['read'], editor: ['read', 'write'], admin: ['read', 'write', 'export'] },
    resources,
    memberships,
    assignments,
    suspended: [],
    freshness: { low: 300000, standard: 30000, high: 5000 },
  };
}

/** The big group's biggest assignment: editor on the org. */
export const BIGGEST = { principal: 'group:big', role: 'editor', resource: 'org:big' };
