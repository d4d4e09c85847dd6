// The Worker under test in workerd, through Miniflare, shared by the worker*.test.mjs suites.
// - `startEdge({vars, persist, isolates, port})`: the built Worker (build/worker.mjs, the entry
//   wrangler.toml names, with the Rust Worker and the packed admin page it imports;
//   scripts/build-worker.sh) with its Durable Object on SQLite storage, persisted to `persist`
//   when given; `{fetch, logs, restart, dispose}`. `fetch(path, init, isolate = 0)` answers
//   `{status, headers, body, json, bytes}`; `logs` are the decision lines the Worker printed, parsed;
//   `restart()` disposes of the runtime and starts a new one on the same persistence. With
//   `isolates: n`, n copies of the Worker (separate isolates, each with its own memory) share one
//   Durable Object namespace, as a Worker's isolates around the world share it. With
//   `authority` (a Miniflare Durable Object designator, e.g. `{className, scriptName}`), every
//   isolate's AUTHORITY binding points there instead of at the Worker's own TenantAuthority, and
//   `workers` (more Miniflare worker options) run beside the Worker in the same runtime, e.g. a
//   proxy in front of the real TenantAuthority (tests/js/faulty-authority.mjs);
//   `worker(name).fetch(path, init)` reaches one of them and answers as `fetch` does.
//   With `clocked`, each isolate runs tests/js/clocked-worker.mjs in front of the built Worker, and
//   `setClock(ms)` sets the host's clock of every isolate (and so of the Durable Object).
// - `origin()`: a key pair and helpers that sign what the origin would push for a model.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Miniflare } from 'miniflare';
import { REPO_DIR, requirePackage } from './pkg.mjs';

export const pkg = requirePackage();
export const BUILD = path.join(REPO_DIR, 'build/worker.mjs');
// The admin page as scripts/build-www.sh assembles it (the Worker serves it packed, from its modules).
export const ASSETS = path.join(REPO_DIR, 'build/assets');
export const EXAMPLE = JSON.parse(readFileSync(path.join(REPO_DIR, 'examples/acme.json'), 'utf8'));
export const JSON_TYPE = { 'content-type': 'application/json' };
export const MSGPACK = { 'content-type': 'application/msgpack' };
// For suites whose requests name their decision time (`context.now`, a listing's `now=`): a
// Worker refuses such a request unless ALLOW_CONTEXT_NOW is set, and even then the time moves only
// expiry, never the freshness clock (worker-security.test.mjs tests both).
export const WHAT_IF = { ALLOW_CONTEXT_NOW: 'true' };

export function tempDir(prefix = 'edge-authz-worker-') {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** A key pair and the origin's signing helpers for one tenant. */
export function origin(tenant = 'acme') {
  const keys = pkg.generateKeyPair();
  const now = () => Date.now();
  return {
    keys,
    tenant,
    snapshot: (model, epoch, issuedAt = now()) =>
      pkg.compileSnapshot(model, { epoch, secretKey: keys.secretKey, issuedAt }),
    delta: (before, after, baseEpoch, epoch, issuedAt = now()) =>
      pkg.diffModels(before, after, { baseEpoch, epoch, secretKey: keys.secretKey, issuedAt }),
    watermark: (watermark, delta, issuedAt = now()) =>
      pkg.signWatermark({ tenant, watermark, secretKey: keys.secretKey, issuedAt, delta }),
  };
}

/** A deep copy of the example model with `edit` applied. */
export function model(edit = () => {}) {
  const m = structuredClone(EXAMPLE);
  edit(m);
  return m;
}

export const CLOCKED = path.join(REPO_DIR, 'tests/js/clocked-worker.mjs');

export async function startEdge({ vars = {}, persist, isolates = 1, port, authority, workers = [], clocked = false } = {}) {
  assert.ok(existsSync(BUILD), `${BUILD} is missing: run scripts/build-worker.sh`);
  const logs = [];
  const worker = (i) => ({
    name: `edge${i}`,
    modules: true,
    // With `clocked`, tests/js/clocked-worker.mjs in front of the built Worker: the test sets the
    // host's clock (`edge.setClock`).
    ...(clocked ? { scriptPath: CLOCKED, modulesRoot: REPO_DIR } : { scriptPath: BUILD }),
    // As wrangler.toml has them: the packed admin page (build/admin.bin) as bytes.
    modulesRules: [
      { type: 'ESModule', include: ['**/*.js', '**/*.mjs'] },
      { type: 'CompiledWasm', include: ['**/*.wasm'] },
      { type: 'Data', include: ['**/*.bin'] },
    ],
    compatibilityDate: '2026-04-01',
    durableObjects: {
      AUTHORITY: authority ?? { className: 'TenantAuthority', useSQLite: true, ...(i > 0 ? { scriptName: 'edge0' } : {}) },
    },
    bindings: { CONFIRM_REUSE_MS_STANDARD: '1000', CONFIRM_REUSE_MS_LOW: '10000', ...vars },
  });
  const options = () => ({
    workers: [...Array.from({ length: isolates }, (_, i) => worker(i)), ...workers],
    ...(persist ? { durableObjectsPersist: persist } : {}),
    // With a port, the Worker also listens on 127.0.0.1 (kept across restarts).
    ...(port !== undefined ? { host: '127.0.0.1', port } : {}),
    handleRuntimeStdio(stdout, stderr) {
      let rest = '';
      stdout.on('data', (chunk) => {
        rest += chunk.toString();
        const lines = rest.split('\n');
        rest = lines.pop();
        for (const l of lines) {
          const at = l.indexOf('{"event":"decision"');
          if (at >= 0) logs.push(JSON.parse(l.slice(at)));
        }
      });
      stderr.resume();
    },
  });
  let mf = new Miniflare(options());
  let disposed = false;
  const ready = await mf.ready;
  const answer = async (res) => {
    const bytes = Buffer.from(await res.arrayBuffer());
    const body = bytes.toString('utf8');
    let json;
    try {
      json = JSON.parse(body);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, body, json, bytes };
  };
  const edge = {
    logs,
    /** The listening URL (with `port`), e.g. http://127.0.0.1:8788. */
    url: port !== undefined ? ready.origin : undefined,
    async fetch(p, init = {}, isolate = 0) {
      const url = `http://127.0.0.1${p}`;
      const res = isolate === 0 ? await mf.dispatchFetch(url, init) : await (await mf.getWorker(`edge${isolate}`)).fetch(url, init);
      return answer(res);
    },
    /** With `clocked`: sets every isolate's clock to `ms` (null: the real clock). */
    async setClock(ms) {
      for (let i = 0; i < isolates; i++) {
        const r = await edge.fetch(`/__test/clock?ms=${ms ?? ''}`, {}, i);
        assert.equal(r.status, 200, `the test clock of isolate ${i}: ${r.body}`);
      }
    },
    /** One of `workers` by its name: `fetch(path, init)` answers as `edge.fetch` does. */
    worker(name) {
      return {
        fetch: async (p, init = {}) => answer(await (await mf.getWorker(name)).fetch(`http://127.0.0.1${p}`, init)),
      };
    },
    async restart() {
      if (!disposed) await mf.dispose();
      disposed = false;
      mf = new Miniflare(options());
      await mf.ready;
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await mf.dispose();
    },
  };
  return edge;
}

/** Helpers bound to one edge, tenant and token. */
export function client(edge, { tenant = 'acme', token, isolate = 0 } = {}) {
  const auth = token ? { authorization: `Bearer ${token}` } : {};
  const runtime = edge;
  edge = { fetch: (p, init) => runtime.fetch(p, init, isolate) };
  return {
    push: (kind, bytes, headers = MSGPACK) =>
      edge.fetch(`/v1/${tenant}/${kind}`, {
        method: kind === 'snapshot' ? 'PUT' : 'POST',
        headers,
        body: bytes,
      }),
    check: (subject, action, resource, context) =>
      edge.fetch(`/v1/${tenant}/check`, {
        method: 'POST',
        headers: { ...JSON_TYPE, ...auth },
        body: JSON.stringify(context ? { subject, action, resource, context } : { subject, action, resource }),
      }),
    checkMany: (requests, context) =>
      edge.fetch(`/v1/${tenant}/check-many`, {
        method: 'POST',
        headers: { ...JSON_TYPE, ...auth },
        body: JSON.stringify(context ? { requests, context } : { requests }),
      }),
    status: () => edge.fetch(`/v1/${tenant}/status`, { headers: auth }),
    /** With a `clocked` edge: its clock (every isolate's), `null` for the real one. */
    setClock: (ms) => runtime.setClock(ms),
    get: (p) => edge.fetch(`/v1/${tenant}/${p}`, { headers: auth }),
  };
}
