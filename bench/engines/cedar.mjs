// Peer: @cedar-policy/cedar-wasm 4.x (4.13.0), its stateful API.
//
// Choices (the fastest legitimate way a user of cedar-wasm 4.13 would run this model):
// - API: `preparsePolicySet(id, {staticPolicies})` once at load, then `statefulIsAuthorized` per
//   check with `preparsedPolicySetId`. 4.13 preparses and caches policy sets and schemas only
//   (StatefulAuthorizationCall still takes `entities` on every call): there is no way to keep
//   entities inside the wasm instance, so each call passes the entity slice the request needs.
// - No schema and `validateRequest: false`: a schema adds validation work per call and buys nothing
//   here (requests are well-formed by construction).
// - Entity types: the model's `type:name` id becomes `Type::"name"` with the type capitalised
//   (`user:u1` -> `User::"u1"`, `group:g1` -> `Group::"g1"`, `doc:w0-p0-d1` -> `Doc::"w0-p0-d1"`);
//   actions are `Action::"read"`.
// - Policies: one `permit` per assignment, `principal in Group::"g"` for a group principal and
//   `principal == User::"u"` for a member, `action in [Action::"read", ...]` (the role's actions),
//   `resource in Type::"y"`, plus `when { context.now < EXPIRES_AT }` for an expiring one; one
//   `forbid (principal in ..., action, resource);` per `suspended` entry. Passed as
//   `staticPolicies: {id: "policy text", ...}` (a record of one Cedar text per policy): on this
//   workload the first preparse in a process took ~3-4 s that way against ~12 s for the same
//   policies as one text (V8 keeps a single long wasm call in its baseline tier) and ~5-7 s as
//   JSON policy objects; the array-of-texts form fails in 4.13 (every element gets id `policy0`).
// - Entities per call, prepared at load: the entity store a Cedar user keeps next to the engine. For
//   every subject, one entity whose `parents` are ALL its groups, transitively (Cedar accepts a
//   transitively closed parent list; `in` then needs no group entities); for every resource, one
//   entity whose parents are all its ancestors. A check passes [subjectEntity, resourceEntity].
//   (`--cedar-entities full` passes instead the subject and every group it reaches, each with its
//   direct parents, and the resource with each ancestor, leaving the closure to Cedar: slower.)
// - Load (timed) = preparsePolicySet + JSON.parse of the entity document + checkParseEntities of the
//   whole entity set (Cedar's own parse of every entity, once) + building the per-subject and
//   per-resource slices. Generating the policy text and the entity JSON from the model is the
//   analogue of edge-authz's compileSnapshot (the origin's work) and is not timed.
// - `context.now` carries the request time (a Cedar Long).
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
export const name = 'cedar-wasm';

let cedar;
export function importEngine() {
  cedar = require('@cedar-policy/cedar-wasm/nodejs');
  return { version: cedar.getCedarVersion() };
}

export function packageFiles() {
  const dir = path.dirname(require.resolve('@cedar-policy/cedar-wasm/nodejs'));
  return {
    wasm: [path.join(dir, 'cedar_wasm_bg.wasm')],
    glue: [path.join(dir, 'cedar_wasm.js')],
  };
}

const cap = (t) => {
  const T = t.charAt(0).toUpperCase() + t.slice(1);
  return T === 'Action' ? 'Action_' : T; // keep the action entity type unambiguous
};
export function uidOf(id) {
  const i = id.indexOf(':');
  return { type: cap(id.slice(0, i)), id: id.slice(i + 1) };
}
const lit = (uid) => `${uid.type}::${JSON.stringify(uid.id)}`;

/** The origin-side translation (not timed): policy text and the entity document (JSON text). */
export function prepare(model) {
  const lines = [];
  const roleScope = new Map();
  for (const [role, acts] of Object.entries(model.roles)) {
    roleScope.set(role, `[${acts.map((a) => `Action::${JSON.stringify(a)}`).join(', ')}]`);
  }
  for (const a of model.assignments) {
    const p = uidOf(a.principal);
    const pc = a.principal.startsWith('group:') ? `principal in ${lit(p)}` : `principal == ${lit(p)}`;
    const when = a.expires_at != null ? ` when { context.now < ${a.expires_at} }` : '';
    lines.push(`permit (${pc}, action in ${roleScope.get(a.role)}, resource in ${lit(uidOf(a.resource))})${when};`);
  }
  for (const s of model.suspended || []) {
    lines.push(`forbid (principal in ${lit(uidOf(s))}, action, resource);`);
  }
  // Entity document: every subject and group with its direct parents, every resource with its parent.
  const parents = new Map();
  const add = (id) => { if (!parents.has(id)) parents.set(id, []); return parents.get(id); };
  for (const { member, group } of model.memberships || []) { add(member).push(group); add(group); }
  for (const a of model.assignments) add(a.principal);
  for (const s of model.suspended || []) add(s);
  const entities = [];
  for (const [id, ps] of parents) entities.push({ uid: uidOf(id), attrs: {}, parents: ps.map(uidOf) });
  for (const r of model.resources) {
    entities.push({ uid: uidOf(r.id), attrs: {}, parents: r.parent != null ? [uidOf(r.parent)] : [] });
  }
  const staticPolicies = {};
  lines.forEach((text, i) => { staticPolicies[`p${i}`] = text; });
  return { staticPolicies, policyText: lines.join('\n'), entitiesJson: JSON.stringify(entities), policies: lines.length };
}

// One id: loading again replaces the cached policy set instead of keeping both.
const PSET_ID = 'edge-authz-bench';

/** Load (timed): preparse the policies, parse the entity document, build the per-request slices. */
export function load(prepared, { now, entityMode = 'flat' } = {}) {
  const psetId = PSET_ID;
  const t0 = process.hrtime.bigint();
  const pre = cedar.preparsePolicySet(psetId, { staticPolicies: prepared.staticPolicies });
  if (pre.type !== 'success') throw new Error('cedar preparse failed: ' + JSON.stringify(pre.errors).slice(0, 500));
  const t1 = process.hrtime.bigint();
  const entities = JSON.parse(prepared.entitiesJson);
  const parsed = cedar.checkParseEntities({ entities });
  if (parsed.type !== 'success') throw new Error('cedar entities failed: ' + JSON.stringify(parsed.errors).slice(0, 500));
  const t2 = process.hrtime.bigint();

  // The entity store: key "Type\0id" -> entity; then per-entity slices for requests.
  const byKey = new Map();
  for (const e of entities) byKey.set(e.uid.type + '\u0000' + e.uid.id, e);
  const key = (u) => u.type + '\u0000' + u.id;
  const closure = new Map(); // key -> array of ancestor uids (transitive, cycle-safe)
  function ancestors(k) {
    let out = closure.get(k);
    if (out) return out;
    const seen = new Set([k]);
    out = [];
    const stack = [k];
    while (stack.length) {
      const e = byKey.get(stack.pop());
      if (!e) continue;
      for (const p of e.parents) {
        const pk = key(p);
        if (!seen.has(pk)) { seen.add(pk); out.push(p); stack.push(pk); }
      }
    }
    closure.set(k, out);
    return out;
  }
  const slices = new Map(); // model id -> entity array for that side of a request
  for (const e of entities) {
    const k = key(e.uid);
    const id = e.uid.type + ':' + e.uid.id; // slices are keyed by Cedar uid; see idKey below
    const anc = ancestors(k);
    if (entityMode === 'flat') {
      slices.set(id, [{ uid: e.uid, attrs: {}, parents: anc }]);
    } else {
      slices.set(id, [e, ...anc.map((u) => byKey.get(key(u))).filter(Boolean)]);
    }
  }
  closure.clear();
  const t3 = process.hrtime.bigint();

  // model id -> Cedar uid key, memoised (the id mapping a caller does per request)
  const uidCache = new Map();
  const sliceOf = (id) => {
    let s = uidCache.get(id);
    if (s === undefined) {
      const u = uidOf(id);
      s = slices.get(u.type + ':' + u.id) || [{ uid: u, attrs: {}, parents: [] }];
      uidCache.set(id, s);
    }
    return s;
  };
  const actionUid = new Map();
  const actUid = (a) => {
    let u = actionUid.get(a);
    if (!u) { u = { type: 'Action', id: a }; actionUid.set(a, u); }
    return u;
  };
  const context = { now };
  const check = (s, a, r) => {
    const ps = sliceOf(s);
    const rs = sliceOf(r);
    return cedar.statefulIsAuthorized({
      principal: ps[0].uid,
      action: actUid(a),
      resource: rs[0].uid,
      context,
      preparsedPolicySetId: psetId,
      validateRequest: false,
      entities: ps.concat(rs),
    });
  };
  const allowed = (ans) => {
    if (ans.type !== 'success') throw new Error('cedar error: ' + JSON.stringify(ans.errors).slice(0, 500));
    return ans.response.decision === 'allow';
  };
  return {
    check,
    checkMany: (reqs) => reqs.map((q) => check(q[0], q[1], q[2])),
    allowed,
    batchApi: 'none (a loop of statefulIsAuthorized)',
    loadBreakdownMs: {
      preparsePolicySet: Number(t1 - t0) / 1e6,
      parseEntities: Number(t2 - t1) / 1e6,
      buildSlices: Number(t3 - t2) / 1e6,
    },
    info: { policies: prepared.policies, entities: entities.length, entityMode },
  };
}
