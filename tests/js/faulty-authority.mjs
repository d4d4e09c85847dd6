// A fault-injecting proxy between the Worker and its real Durable Object, for the fault drills
// (worker-faults.test.mjs). Nothing is mocked: a second worker script, `faulty`, defines the
// Durable Object class `FaultyAuthority` that the Worker's AUTHORITY binding points to; each of
// its objects forwards every request it gets (the Worker's `/sync` and `/push`) to the real
// `TenantAuthority` of the built Worker (bound to the proxy as REAL, `scriptName: 'edge0'`),
// named by the request's tenant as the Worker names it, unless the test has set a fault:
// - `{mode: 'throw'}`: the request throws (the stub's fetch rejects: an unreachable object);
// - `{mode: 'status', status: 503}`: answers 503 `authority_unavailable` itself;
// - `{mode: 'delay', ms}`: waits `ms` before forwarding (a slow object);
// - `{store: 'x'}`: forwards to the real object named `tenant + '#x'`, an empty one the first
//   time (a lost store);
// - `paths: ['/sync']` limits a fault to those paths (default: every path).
// The test sets it with `faults(edge).set(fault)` (a POST to the proxy's own fetch handler, which
// shares the module's state with the proxy's objects: one isolate per script in workerd) and
// reads what the proxy saw with `faults(edge).stats()`.
import assert from 'node:assert/strict';
import { JSON_TYPE } from './edge.mjs';

export const PROXY = 'faulty';

const SCRIPT = `
let fault = {};
const stats = { requests: 0, byPath: {}, failed: 0, delayed: 0, forwarded: 0, completed: 0 };
const applies = (path) => !fault.paths || fault.paths.includes(path);

export class FaultyAuthority {
  constructor(ctx, env) {
    this.env = env;
  }
  async fetch(request) {
    const url = new URL(request.url);
    const path = url.pathname;
    stats.requests++;
    stats.byPath[path] = (stats.byPath[path] ?? 0) + 1;
    const f = fault;
    if (f.mode && applies(path)) {
      if (f.mode === 'throw') {
        stats.failed++;
        throw new Error('injected fault: the authority is unreachable');
      }
      if (f.mode === 'status') {
        stats.failed++;
        const body = JSON.stringify({ error: { code: 'authority_unavailable', message: 'injected fault' } });
        return new Response(body, { status: f.status ?? 503, headers: { 'content-type': 'application/json' } });
      }
      if (f.mode === 'delay') {
        stats.delayed++;
        await new Promise((r) => setTimeout(r, f.ms));
      }
    }
    const name = (url.searchParams.get('tenant') ?? '') + (f.store ? '#' + f.store : '');
    stats.forwarded++;
    const answer = await this.env.REAL.get(this.env.REAL.idFromName(name)).fetch(request);
    stats.completed++;
    return answer;
  }
}

export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/fault' && request.method === 'POST') {
      fault = await request.json();
      return Response.json({ fault });
    }
    if (url.pathname === '/stats') return Response.json({ fault, ...stats, byPath: { ...stats.byPath } });
    return new Response('not found', { status: 404 });
  },
};
`;

/** The options of `startEdge` that put the proxy between every isolate and the real object. */
export function withFaultyAuthority() {
  return {
    authority: { className: 'FaultyAuthority', scriptName: PROXY },
    workers: [
      {
        name: PROXY,
        modules: true,
        script: SCRIPT,
        compatibilityDate: '2026-04-01',
        durableObjects: {
          REAL: { className: 'TenantAuthority', scriptName: 'edge0', useSQLite: true },
        },
      },
    ],
  };
}

/** The proxy's controls for an edge started with `withFaultyAuthority()`. */
export function faults(edge) {
  const proxy = edge.worker(PROXY);
  return {
    async set(fault = {}) {
      const r = await proxy.fetch('/fault', { method: 'POST', headers: JSON_TYPE, body: JSON.stringify(fault) });
      assert.equal(r.status, 200, r.body);
    },
    clear() {
      return this.set({});
    },
    async stats() {
      const r = await proxy.fetch('/stats');
      assert.equal(r.status, 200, r.body);
      return r.json;
    },
  };
}
