// The installed package (fresh.mjs) in workerd, through Miniflare. The Worker (fixtures/worker.mjs)
// is bundled the way wrangler bundles a Worker: esbuild with the conditions
// ['workerd', 'worker', 'browser'] (so `edge-authz` resolves to its workerd entry), ESM output,
// target es2024, and every imported `.wasm` left external, renamed `./<sha1>-<name>.wasm` and
// uploaded as a CompiledWasm module (wrangler's default rule), which workerd hands to the
// importer as a `WebAssembly.Module`. The bundling is hosts.mjs's bundleWorker.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Miniflare } from 'miniflare';
import { EXPECTED } from './fixtures/roundtrip.mjs';
import { freshInstall } from './fresh.mjs';
import { bundleWorker } from './hosts.mjs';
import { importPackage } from './pkg.mjs';

const FIXTURE = new URL('./fixtures/worker.mjs', import.meta.url);
const MODEL = JSON.parse(readFileSync(new URL('../conformance/models/example.json', import.meta.url), 'utf8'));

let mf;
let keys;
let wasm;

before(async () => {
  const { consumer } = freshInstall();
  const entry = path.join(consumer, 'worker.mjs');
  copyFileSync(FIXTURE, entry);
  const outdir = path.join(consumer, 'worker-dist');
  const { outfile, wasm: collected } = await bundleWorker({ entry, consumer, outdir });
  assert.equal(collected.length, 1, JSON.stringify(collected));
  wasm = collected[0];

  // The origin side, in Node: a key pair and a signed snapshot handed to the Worker as bindings.
  const { generateKeyPair, compileSnapshot } = await importPackage();
  keys = generateKeyPair();
  const snapshot = compileSnapshot(MODEL, { epoch: 7, secretKey: keys.secretKey, issuedAt: Date.now() });

  mf = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    modules: [
      { type: 'ESModule', path: outfile },
      { type: 'CompiledWasm', path: path.join(outdir, wasm.name) },
    ],
    modulesRoot: outdir,
    compatibilityDate: '2026-04-01',
    bindings: { PUBLIC_KEY: keys.publicKey, SNAPSHOT: Buffer.from(snapshot).toString('base64') },
  });
  await mf.ready;
});

after(async () => {
  await mf?.dispose();
});

test('the bundle resolved edge-authz to its workerd entry and the wasm to a CompiledWasm module', () => {
  assert.equal(wasm.source, path.join(freshInstall().consumer, 'node_modules/edge-authz/dist/edge_authz_bg.wasm'));
  const bundle = readFileSync(path.join(freshInstall().consumer, 'worker-dist/index.js'), 'utf8');
  assert.match(bundle, new RegExp(`from "\\./${wasm.name}"`));
  assert.match(bundle, /src\/workerd\.mjs/, 'the workerd entry is in the bundle');
  assert.doesNotMatch(bundle, /src\/web\.mjs|node:fs/, 'neither the browser nor the Node entry');
});

test('a Worker answers a check from a signed snapshot', async () => {
  const ask = async (subject, action, resource, context) => {
    const res = await mf.dispatchFetch('http://edge.test/check', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ subject, action, resource, context }),
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    return body;
  };
  assert.deepEqual(await ask('user:alice', 'read', 'doc:roadmap'), {
    allowed: true,
    reason: 'granted',
    epoch: 7,
    watermark: 0,
    tier: 'low',
    grant: { principal: 'user:alice', role: 'admin', resource: 'workspace:eng', path: ['user:alice'] },
  });
  assert.deepEqual(await ask('user:mallory', 'read', 'org:acme'), {
    allowed: false,
    reason: 'suspended',
    epoch: 7,
    watermark: 0,
    tier: 'low',
  });
  // A request's `now` moves only expiry: far past the freshness bound of the snapshot's issuedAt,
  // the host's clock still judges freshness (the snapshot was issued just now).
  assert.equal((await ask('group:eng', 'read', 'org:acme', { now: Date.now() + 400_000 })).reason, 'granted');
  assert.equal((await ask('user:alice', 'read', 'doc:roadmap', { now: -1 })).reason, 'invalid_request');
  // The evaluator persists across requests.
  const status = await (await mf.dispatchFetch('http://edge.test/status')).json();
  assert.equal(status.epoch, 7);
  assert.equal(status.tenant, 'acme');
});

test('the full round trip inside workerd', async () => {
  const res = await mf.dispatchFetch('http://edge.test/roundtrip');
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.deepEqual(body, EXPECTED);
});

test('wrangler itself bundles the installed package with no configuration, and the bundle runs', async () => {
  // `wrangler deploy --dry-run` builds exactly what `wrangler deploy` would upload, offline.
  const { consumer } = freshInstall();
  writeFileSync(
    path.join(consumer, 'wrangler.toml'),
    'name = "edge-authz-package-test"\nmain = "worker.mjs"\ncompatibility_date = "2026-04-01"\n',
  );
  const outdir = path.join(consumer, 'wrangler-out');
  const wrangler = new URL('../../node_modules/.bin/wrangler', import.meta.url).pathname;
  execFileSync(wrangler, ['deploy', '--dry-run', '--outdir', outdir], {
    cwd: consumer,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: 'false',
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      WRANGLER_HIDE_BANNER: 'true',
    },
  });
  const files = readdirSync(outdir);
  const wasmFiles = files.filter((f) => f.endsWith('.wasm'));
  assert.equal(wasmFiles.length, 1, files.join(', '));
  assert.ok(files.includes('worker.js'), files.join(', '));
  const bundle = readFileSync(path.join(outdir, 'worker.js'), 'utf8');
  assert.match(bundle, /src\/workerd\.mjs/, 'wrangler picked the workerd entry');

  const { generateKeyPair, compileSnapshot } = await importPackage();
  const k = generateKeyPair();
  const snapshot = compileSnapshot(MODEL, { epoch: 3, secretKey: k.secretKey, issuedAt: Date.now() });
  const built = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    modules: [
      { type: 'ESModule', path: path.join(outdir, 'worker.js') },
      { type: 'CompiledWasm', path: path.join(outdir, wasmFiles[0]) },
    ],
    modulesRoot: outdir,
    compatibilityDate: '2026-04-01',
    bindings: { PUBLIC_KEY: k.publicKey, SNAPSHOT: Buffer.from(snapshot).toString('base64') },
  });
  try {
    const res = await built.dispatchFetch('http://edge.test/check', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ subject: 'user:alice', action: 'read', resource: 'doc:roadmap' }),
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.deepEqual(body, {
      allowed: true,
      reason: 'granted',
      epoch: 3,
      watermark: 0,
      tier: 'low',
      grant: { principal: 'user:alice', role: 'admin', resource: 'workspace:eng', path: ['user:alice'] },
    });
  } finally {
    await built.dispose();
  }
});
