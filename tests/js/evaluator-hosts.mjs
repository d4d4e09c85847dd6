// The hosts an evaluator runs in, behind one small interface, for the suites that must give the
// same answers everywhere: the conformance runner (conformance-runner.mjs) and the golden files
// (golden.mjs). A host holds one tenant's evaluator, trusting the given keys:
//
//   name                      'package' | 'Worker', for test titles and failure messages
//   can                       {preview}: whether it can hold an unsigned preview evaluator
//   setClock(ms | null)       the host's clock for what follows (null: the machine's clock)
//   preview(model)            replaces the evaluator with an unsigned preview (when can.preview)
//   loadSnapshot(bytes)       {epoch, applied}
//   applyDelta(bytes)         {epoch, applied}
//   applyWatermark(bytes)     {watermark, epoch, delta}: delta null (none carried), 'applied',
//                             'already_applied', or the code that kept it from applying
//   check(s, a, r, context?)  a decision, as JSON
//   checkMany(reqs, context?) the decisions of [[s, a, r], ...], as JSON
//   listResources(s, a, {type?, context?}), listSubjects(r, a, {context?})   ids
//   status()                  the core's status (camelCase, crates/core/src/evaluator.rs)
//   dispose()
//
// Every method may be awaited. A refusal throws an Error whose `code` is the core's error code
// (crates/core/src/error.rs). `context` is passed on exactly as given (undefined: none).
import { importPackage } from './pkg.mjs';
import { payloadOf } from './msgpack.mjs';

const pkg = await importPackage();

/** A carried delta's outcome (`{applied, error?: {code, message}}`, the package and the Worker alike), as one string. */
function carried(delta) {
  if (delta === undefined || delta === null) return null;
  if (delta.applied) return 'applied';
  return delta.error?.code ?? 'already_applied';
}

/** The npm package (pkg/dist through its exports map): an `Evaluator` whose `clock` option
 * reads the clock set here. */
export function packageHost({ tenant, publicKeys }) {
  let at = null;
  const clock = () => at ?? Date.now();
  let ev = new pkg.Evaluator({ tenant, publicKeys, clock });
  return {
    name: 'package',
    can: { preview: true },
    setClock(ms) {
      at = ms;
    },
    preview(model) {
      const next = pkg.Evaluator.preview(model, { clock });
      ev.free();
      ev = next;
    },
    loadSnapshot: (bytes) => ev.loadSnapshot(bytes),
    applyDelta: (bytes) => ev.applyDelta(bytes),
    applyWatermark(bytes) {
      const r = ev.applyWatermark(bytes);
      return { watermark: r.watermark, epoch: r.epoch, delta: carried(r.delta) };
    },
    check: (s, a, r, context) => ev.check(s, a, r, context),
    checkMany: (requests, context) => ev.checkMany(requests, context),
    listResources: (s, a, options) => ev.listResources(s, a, options),
    listSubjects: (r, a, options) => ev.listSubjects(r, a, options),
    status: () => ev.status(),
    dispose() {
      ev.free();
    },
  };
}

class HttpRefusal extends Error {
  constructor(res) {
    const code = res.json?.error?.code ?? `http_${res.status}`;
    super(`${res.status} ${code}: ${res.json?.error?.message ?? res.body.slice(0, 300)}`);
    this.code = code;
    this.status = res.status;
  }
}

function answer(res) {
  if (res.status !== 200) throw new HttpRefusal(res);
  return res.json;
}

/**
 * The built Worker in workerd (edge.mjs's startEdge), a fresh runtime for this host: pushes
 * through `PUT snapshot` / `POST delta` / `POST watermark`, checks through `POST check` and
 * `POST check-many`, listings through `GET resources` / `GET subjects` with the context as the
 * `context` query parameter, `GET status`. Its clock is the test clock of clocked-worker.mjs (every
 * isolate's and the Durable Object's). It confirms with its Durable Object on every request
 * (CONFIRM_REUSE_MS_* = 0), so its answers are the authority's state's, and it takes a request's
 * `context.now` (ALLOW_CONTEXT_NOW), as the package does. Answers are read as the package gives
 * them: a snapshot push answers `{epoch}` (so `applied: true`), and 409 `already_applied` for the
 * epoch and content it holds (the package's `{epoch, applied: false}`); `status()` leaves out
 * `edge` (this isolate's counters and memory), which no other host has.
 * With `isolates: 2`, reads alternate between two isolates sharing the Durable Object.
 */
export async function workerHost({ tenant, publicKeys, isolates = 1, vars = {} }) {
  // Imported here: the package's suites never start Miniflare.
  const { MSGPACK, JSON_TYPE, startEdge } = await import('./edge.mjs');
  const edge = await startEdge({
    vars: {
      ORIGIN_PUBLIC_KEYS: publicKeys.join(','),
      CONFIRM_REUSE_MS_STANDARD: '0',
      CONFIRM_REUSE_MS_LOW: '0',
      ALLOW_CONTEXT_NOW: 'true',
      ...vars,
    },
    clocked: true,
    isolates,
  });
  const base = `/v1/${encodeURIComponent(tenant)}`;
  let turn = 0;
  const reader = () => turn++ % isolates;
  const push = async (kind, bytes) =>
    answer(await edge.fetch(`${base}/${kind}`, { method: kind === 'snapshot' ? 'PUT' : 'POST', headers: MSGPACK, body: bytes }));
  const post = async (route, body) =>
    answer(await edge.fetch(`${base}/${route}`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify(body) }, reader()));
  const list = async (route, query, context) => {
    const q = new URLSearchParams(query);
    if (context !== undefined) q.set('context', JSON.stringify(context));
    return answer(await edge.fetch(`${base}/${route}?${q}`, {}, reader()));
  };
  return {
    name: 'Worker',
    can: { preview: false },
    edge,
    setClock: (ms) => edge.setClock(ms),
    preview() {
      throw new Error('a Worker holds signed state only: it has no preview evaluator');
    },
    async loadSnapshot(bytes) {
      try {
        const r = await push('snapshot', bytes);
        return { epoch: r.epoch, applied: true };
      } catch (e) {
        if (e.code !== 'already_applied') throw e;
        return { epoch: payloadOf(bytes)[1], applied: false };
      }
    },
    applyDelta: (bytes) => push('delta', bytes),
    async applyWatermark(bytes) {
      const r = await push('watermark', bytes);
      return { watermark: r.watermark, epoch: r.epoch, delta: carried(r.delta) };
    },
    check: (subject, action, resource, context) =>
      post('check', context === undefined ? { subject, action, resource } : { subject, action, resource, context }),
    async checkMany(requests, context) {
      const r = await post('check-many', context === undefined ? { requests } : { requests, context });
      return r.decisions;
    },
    async listResources(subject, action, { type, context } = {}) {
      const r = await list('resources', { subject, action, ...(typeof type === 'string' ? { type } : {}) }, context);
      return r.resources;
    },
    async listSubjects(resource, action, { context } = {}) {
      const r = await list('subjects', { resource, action }, context);
      return r.subjects;
    },
    async status() {
      const { edge: _isolate, ...status } = answer(await edge.fetch(`${base}/status`, {}, reader()));
      return status;
    },
    dispose: () => edge.dispose(),
  };
}
