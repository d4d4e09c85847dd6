// edge-authz through its npm package (pkg/, pkg/README.md), the same adapter shape as the peers.
//
// - prepare (not timed: the origin's work): generateKeyPair + compileSnapshot(model, {epoch: 1,
//   secretKey, issuedAt: now}). It runs in a worker thread (its own wasm instance), so that the
//   compiler's use of wasm memory does not hide the evaluator's in the heap figure of the main
//   thread (wasm linear memory never shrinks).
// - load (timed) = new Evaluator({tenant, publicKeys: [publicKey], clock: () => now}) +
//   loadSnapshot(bytes).
// - check = ev.check(s, a, r, {now}); checkMany = ev.checkMany(requests, {now}) (the package's batch
//   API). The clock and `now` are the snapshot's issuedAt, so the freshness gate passes for every
//   tier.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

export const name = 'edge-authz';
const here = path.dirname(fileURLToPath(import.meta.url));
export const DEFAULT_PKG = path.resolve(here, '..', '..', 'pkg');

let edge;
let entry;

export function entryOf(pkgDir) {
  const esm = path.join(pkgDir, 'src', 'node.mjs');
  if (fs.existsSync(esm)) return { kind: 'esm', file: esm };
  if (fs.existsSync(path.join(pkgDir, 'package.json')) || fs.existsSync(path.join(pkgDir, 'index.js'))) {
    return { kind: 'cjs', file: createRequire(path.join(pkgDir, 'noop.js')).resolve(pkgDir) };
  }
  return null;
}

export async function loadModule(e) {
  if (e.kind === 'esm') return await import(pathToFileURL(e.file).href);
  return createRequire(e.file)(e.file);
}

export async function importEngine({ pkgDir = DEFAULT_PKG } = {}) {
  entry = entryOf(pkgDir);
  if (!entry) {
    const err = new Error(`edge-authz package not found at ${pkgDir} (build it with scripts/build-pkg.sh, or pass --edge-pkg DIR, or leave it out with --engines cedar,casbin)`);
    err.code = 'no_pkg';
    throw err;
  }
  edge = await loadModule(entry);
  let version = null;
  try { version = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version; } catch { /* none */ }
  return { version, entry: entry.file, fake: edge.FAKE_FOR_TESTS === true };
}

export function packageFiles({ pkgDir = DEFAULT_PKG } = {}) {
  const wasm = path.join(pkgDir, 'dist', 'edge_authz_bg.wasm');
  const dist = path.join(pkgDir, 'dist');
  const glue = fs.existsSync(dist) ? fs.readdirSync(dist).filter((f) => /\.(m?js|cjs)$/.test(f)).map((f) => path.join(dist, f)) : [];
  return { wasm: fs.existsSync(wasm) ? [wasm] : [], glue };
}

/** Compile in a worker thread (its own wasm instance); returns {bytes, publicKey}. */
export function prepare(model, { now }) {
  return new Promise((resolve, reject) => {
    const w = new Worker(path.join(here, 'edge-compile-worker.mjs'), {
      workerData: { entry, model: JSON.stringify(model), now },
    });
    w.once('message', (m) => (m.error ? reject(Object.assign(new Error(m.error), { code: m.code })) : resolve({ bytes: m.bytes, publicKey: m.publicKey, tenant: model.tenant })));
    w.once('error', reject);
  });
}

export function load(prepared, { now }) {
  const ev = new edge.Evaluator({ tenant: prepared.tenant, publicKeys: [prepared.publicKey], clock: () => now });
  ev.loadSnapshot(prepared.bytes);
  const ctx = { now };
  return {
    check: (s, a, r) => ev.check(s, a, r, ctx),
    checkMany: (reqs) => ev.checkMany(reqs, ctx),
    allowed: (d) => d.allowed === true,
    explain: (d) => d.reason,
    batchApi: 'Evaluator.checkMany',
    info: { snapshotBytes: prepared.bytes.length },
  };
}
