// A stand-in for the edge-authz npm package (pkg/README.md, the part the benchmark uses), built
// on the benchmark's reference, so that the edge-authz adapter and the whole harness can be tested
// before pkg/ exists:  node bench/run.mjs --quick --edge-pkg bench/fake-edge-pkg
// Not a benchmark subject. FAKE_EDGE_WRONG=1 makes it deny one granted request (tests that a
// mismatch fails the run).
import crypto from 'node:crypto';
import { buildReference } from '../../lib/reference.mjs';

/** Marks this module as the test stand-in: the report labels it and judges no target on it. */
export const FAKE_FOR_TESTS = true;

const pub = (secretKey) => crypto.createHash('sha256').update(secretKey).digest('base64');

export function generateKeyPair() {
  const secretKey = crypto.randomBytes(32).toString('base64');
  return { publicKey: pub(secretKey), secretKey };
}

export function compileSnapshot(model, { epoch, secretKey, issuedAt = Date.now() }) {
  const m = typeof model === 'string' ? JSON.parse(model) : model;
  return new TextEncoder().encode(JSON.stringify({ magic: 'FAKE', tenant: m.tenant, epoch, issuedAt, key: pub(secretKey), model: m }));
}

export class Evaluator {
  constructor({ tenant, publicKeys }) {
    this.tenant = tenant;
    this.keys = new Set(publicKeys);
    this.state = null;
    this.wrong = process.env.FAKE_EDGE_WRONG === '1';
  }
  loadSnapshot(bytes) {
    const s = JSON.parse(new TextDecoder().decode(bytes));
    if (!this.keys.has(s.key)) throw Object.assign(new Error('unknown key'), { code: 'unknown_key' });
    if (s.tenant !== this.tenant) throw Object.assign(new Error('tenant'), { code: 'tenant_mismatch' });
    this.state = { ...s, ref: buildReference(s.model) };
    return { epoch: s.epoch };
  }
  check(subject, action, resource, context = {}) {
    const st = this.state;
    if (!st) return { allowed: false, reason: 'no_snapshot' };
    const now = context.now ?? Date.now();
    const tier = st.model.actions[action]?.tier;
    if (!tier) return { allowed: false, reason: 'unknown_action' };
    const bound = st.model.freshness?.[tier];
    if (bound != null && now - st.issuedAt > bound) return { allowed: false, reason: 'freshness_exceeded' };
    if (st.ref.isSuspended(subject)) return { allowed: false, reason: 'suspended' };
    let ok = st.ref.allowed(subject, action, resource, now);
    if (ok && this.wrong) { this.wrong = false; ok = false; }
    return ok ? { allowed: true, reason: 'granted', epoch: st.epoch } : { allowed: false, reason: 'no_grant', epoch: st.epoch };
  }
  checkMany(requests, context) {
    return requests.map(([s, a, r]) => this.check(s, a, r, context));
  }
}
