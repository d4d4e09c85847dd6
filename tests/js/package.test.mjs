// The package as a consumer gets it: `npm pack` of pkg/, installed from the tarball into a fresh
// folder (fresh.mjs). Child Node processes there load it with `require('edge-authz')` and with
// `import ... from 'edge-authz'` and run a full origin + edge round trip (fixtures/roundtrip.mjs);
// the repository's tsc type-checks consumer files as CommonJS (.cts) and as ESM (.mts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { EXPECTED } from './fixtures/roundtrip.mjs';
import { freshInstall } from './fresh.mjs';
import { PKG_DIR, REPO_DIR } from './pkg.mjs';

const TSC = path.join(REPO_DIR, 'node_modules/typescript/bin/tsc');

const { packed, consumer } = freshInstall();

function node(file) {
  const out = execFileSync(process.execPath, [file], { cwd: consumer, encoding: 'utf8', timeout: 30_000 });
  return JSON.parse(out);
}

test('the tarball holds exactly the package files', () => {
  const files = packed.files.map((f) => f.path).sort();
  const src = readdirSync(path.join(PKG_DIR, 'src'))
    .filter((f) => /\.(m?js)$/.test(f))
    .map((f) => `src/${f}`);
  const expected = [
    'CHANGELOG.md',
    'LICENSE',
    'README.md',
    'dist/edge_authz.js',
    'dist/edge_authz_bg.wasm',
    'dist/node.cjs',
    'index.d.cts',
    'index.d.ts',
    'package.json',
    ...src,
  ].sort();
  const leaks = files.filter((f) => /(^|\/)(target|tests?|node_modules)\/|\.(rs|tgz|toml|lock)$/.test(f));
  assert.deepEqual(leaks, [], 'nothing from target/, tests or the Rust sources');
  assert.deepEqual(
    { missing: expected.filter((f) => !files.includes(f)), extra: files.filter((f) => !expected.includes(f)) },
    { missing: [], extra: [] },
  );
  const pj = JSON.parse(readFileSync(path.join(consumer, 'node_modules/edge-authz/package.json'), 'utf8'));
  assert.equal(pj.name, 'edge-authz');
  assert.equal(Object.keys(pj.dependencies ?? {}).length, 0, 'no dependencies');
  // What people check before adopting a package.
  assert.equal(pj.license, 'Apache-2.0');
  assert.match(readFileSync(path.join(consumer, 'node_modules/edge-authz/LICENSE'), 'utf8'), /^\s*Apache License\s+Version 2\.0, January 2004/);
  assert.match(readFileSync(path.join(consumer, 'node_modules/edge-authz/CHANGELOG.md'), 'utf8'), /^## Versions and stability$/m);
  assert.equal(pj.engines.node, '>=18', 'the oldest Node the toolchain tests run (tests/toolchains/node18)');
  assert.equal(pj.module, undefined, 'no `module` field sending old bundlers to an entry with top-level await');
});

test('require("edge-authz") in a fresh CommonJS script: a full round trip', () => {
  writeFileSync(
    path.join(consumer, 'roundtrip-cjs.cjs'),
    `'use strict';
const api = require('edge-authz');
import('./roundtrip.mjs').then(({ roundTrip }) => {
  const out = roundTrip(api);
  process.stdout.write(JSON.stringify({ out, resolved: require.resolve('edge-authz'), exports: Object.keys(api).sort() }));
});
`,
  );
  const { out, resolved, exports } = node('roundtrip-cjs.cjs');
  assert.equal(path.relative(consumer, resolved), path.join('node_modules', 'edge-authz', 'dist', 'node.cjs'));
  for (const name of ['Evaluator', 'compileSnapshot', 'diffModels', 'generateKeyPair', 'signWatermark']) {
    assert.ok(exports.includes(name), `exports ${name}`);
  }
  assert.deepEqual(out, EXPECTED);
});

test('import from "edge-authz" in a fresh ESM script: a full round trip, one instance with require', () => {
  writeFileSync(
    path.join(consumer, 'roundtrip-esm.mjs'),
    `import { createRequire } from 'node:module';
import * as api from 'edge-authz';
import { Evaluator } from 'edge-authz';
import { roundTrip } from './roundtrip.mjs';
const out = roundTrip(api);
const required = createRequire(import.meta.url)('edge-authz');
process.stdout.write(JSON.stringify({
  out,
  resolved: import.meta.resolve('edge-authz'),
  sameClass: required.Evaluator === Evaluator,
}));
`,
  );
  const { out, resolved, sameClass } = node('roundtrip-esm.mjs');
  assert.ok(resolved.endsWith('/node_modules/edge-authz/src/node.mjs'), resolved);
  assert.equal(sameClass, true, 'import and require share one Evaluator class');
  assert.deepEqual(out, EXPECTED);
});

test('edge-authz/init: every call throws not_initialized until init(); a failed init rejects with wasm_load_failed and may be tried again', () => {
  writeFileSync(
    path.join(consumer, 'init.mjs'),
    `import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as api from 'edge-authz/init';
const require = createRequire(import.meta.url);
const code = (f) => { try { f(); return 'no error'; } catch (e) { return e.code; } };
const out = {};
out.before = [
  code(() => api.generateKeyPair()),
  code(() => new api.Evaluator({ tenant: 'acme', publicKeys: [] })),
  code(() => api.Evaluator.preview('{}')),
  code(() => api.validateModel('{}')),
  code(() => new api.Replica({ tenant: 'acme', publicKeys: [], feed: 'http://127.0.0.1:9' })),
];
out.bad = await api.init(new Uint8Array([0, 97, 115, 109, 9, 9, 9, 9])).then(() => 'resolved', (e) => e.code);
out.stillBefore = code(() => api.generateKeyPair());
const bytes = readFileSync(require.resolve('edge-authz/edge_authz_bg.wasm'));
out.loaded = await api.init(bytes).then(() => 'resolved', (e) => e.code);
out.keys = api.generateKeyPair().publicKey.length;
out.again = await api.init().then(() => 'resolved', (e) => e.code);
// The other browser entry is the same instance (its top-level init resolves at once).
const web = await import('edge-authz/web');
out.sameAsWeb = web.Evaluator === api.Evaluator;
out.resolved = ['edge-authz/web', 'edge-authz/init', 'edge-authz/node', 'edge-authz/workerd', 'edge-authz/edge-light'].map((s) => import.meta.resolve(s).split('/node_modules/edge-authz/')[1]);
const node = require('edge-authz/node');
out.nodeInit = await node.init().then(() => 'resolved');
out.nodeSame = node.Evaluator === require('edge-authz').Evaluator;
process.stdout.write(JSON.stringify(out));
`,
  );
  const out = node('init.mjs');
  assert.deepEqual(out.before, Array(5).fill('not_initialized'));
  assert.equal(out.bad, 'wasm_load_failed');
  assert.equal(out.stillBefore, 'not_initialized');
  assert.equal(out.loaded, 'resolved');
  assert.equal(out.keys, 62);
  assert.equal(out.again, 'resolved');
  assert.equal(out.sameAsWeb, true);
  assert.deepEqual(out.resolved, ['src/web.mjs', 'src/init.mjs', 'src/node.mjs', 'src/workerd.mjs', 'src/edge-light.mjs']);
  assert.equal(out.nodeInit, 'resolved');
  assert.equal(out.nodeSame, true);
});

// The same consumer code, type-checked as CommonJS (.cts) and as ESM (.mts).
const CONSUMER_TS = `import {
  Evaluator,
  compileSnapshot,
  diffModels,
  generateKeyPair,
  signWatermark,
  type Decision,
  type EdgeAuthzError,
  type ErrorCode,
  type Reason,
  type Status,
  type Tier,
} from 'edge-authz';

const keys: { publicKey: string; secretKey: string } = generateKeyPair();
const model = { version: 1, tenant: 'acme' };
const snapshot: Uint8Array = compileSnapshot(model, { epoch: 1, secretKey: keys.secretKey, issuedAt: 1 });
const ev = new Evaluator({ tenant: 'acme', publicKeys: [keys.publicKey] });
const loaded: { epoch: number; applied: boolean } = ev.loadSnapshot(snapshot);
const d: Decision = ev.check('user:alice', 'read', 'doc:roadmap', { now: 1 });
const reason: Reason = d.reason;
const tier: Tier | null = d.tier;
const path: string[] | undefined = d.grant?.path;
if (d.allowed && d.grant) {
  const principal: string = d.grant.principal;
  void principal;
}
const many: Decision[] = ev.checkMany([['user:alice', 'read', 'doc:roadmap']], { now: 2 });
const { delta, revokes }: { delta: Uint8Array; revokes: boolean } = diffModels(model, JSON.stringify(model), {
  baseEpoch: 1,
  epoch: 2,
  secretKey: keys.secretKey,
});
const applied: { epoch: number; applied: boolean } = ev.applyDelta(delta);
const wm: Uint8Array = signWatermark({ tenant: 'acme', watermark: 2, secretKey: keys.secretKey, delta });
const raised: number = ev.applyWatermark(wm).watermark;
const resources: string[] = ev.listResources('user:alice', 'read', { type: 'doc', now: 3 });
const subjects: string[] = ev.listSubjects('doc:roadmap', 'read');
const status: Status = ev.status();
const epoch: number | null = status.epoch;
const confirmedAt: number | null = status.confirmedAt;
const members: number = status.counts.members;
const flags: [boolean, boolean] = [status.stale, status.preview];
const actionTiers: Record<string, Tier> = status.actions;
const readTier: Tier | undefined = status.actions['read'];
try {
  ev.loadSnapshot(snapshot);
} catch (e) {
  const err = e as EdgeAuthzError;
  const code: ErrorCode = err.code;
  const message: string = err.message;
  const isError: Error = err;
  void [code, message, isError];
}
ev.free();
const preview: Evaluator = Evaluator.preview(model);
void preview;

// @ts-expect-error: a check needs a resource
ev.check('user:alice', 'read');

export { loaded, reason, tier, path, many, revokes, applied, raised, resources, subjects, epoch, confirmedAt, members, flags, actionTiers, readTier };
`;

const NEGATIVE_TS = CONSUMER_TS.replace('// @ts-expect-error: a check needs a resource\n', '');

function tsc(name, file, source, options = {}) {
  writeFileSync(path.join(consumer, file), source);
  const config = `tsconfig.${name}.json`;
  writeFileSync(
    path.join(consumer, config),
    JSON.stringify({
      compilerOptions: {
        module: 'nodenext',
        moduleResolution: 'nodenext',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: [],
        ...options,
      },
      files: [file],
    }),
  );
  const r = spawnSync(process.execPath, [TSC, '-p', config, '--listFiles', '--pretty', 'false'], {
    cwd: consumer,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('TypeScript (strict, module nodenext): a CommonJS consumer (.cts) type-checks against index.d.cts', () => {
  const { status, out } = tsc('cjs', 'consumer.cts', CONSUMER_TS);
  assert.equal(status, 0, out);
  assert.match(out, /node_modules\/edge-authz\/index\.d\.cts$/m, 'resolved through the `require` types');
});

test('TypeScript (strict, module nodenext): an ESM consumer (.mts) type-checks against index.d.ts', () => {
  const { status, out } = tsc('esm', 'consumer.mts', CONSUMER_TS);
  assert.equal(status, 0, out);
  assert.match(out, /node_modules\/edge-authz\/index\.d\.ts$/m, 'resolved through the `import` types');
});

test('TypeScript: every subpath entry has the declarations, init() included', () => {
  const source = `import { init, Evaluator } from 'edge-authz/init';
import * as web from 'edge-authz/web';
import * as node from 'edge-authz/node';
import * as workerd from 'edge-authz/workerd';
import * as edgeLight from 'edge-authz/edge-light';

export async function start(bytes: Uint8Array, url: URL): Promise<boolean> {
  await init(bytes);
  await init(url);
  await init();
  await web.init(fetch(url));
  // @ts-expect-error: init takes no number
  await node.init(42);
  const ev: Evaluator = new workerd.Evaluator({ tenant: 'acme', publicKeys: [] });
  return ev instanceof edgeLight.Evaluator;
}
`;
  const { status, out } = tsc('subpaths', 'subpaths.mts', source);
  assert.equal(status, 0, out);
  for (const f of ['index.d.ts']) assert.match(out, new RegExp(`node_modules/edge-authz/${f.replace('.', '\\.')}$`, 'm'));
});

test('TypeScript: the @ts-expect-error line is needed (without it the check fails)', () => {
  for (const [name, file] of [
    ['negative-cjs', 'negative.cts'],
    ['negative-esm', 'negative.mts'],
  ]) {
    const { status, out } = tsc(name, file, NEGATIVE_TS);
    assert.notEqual(status, 0, `${file} type-checked without the @ts-expect-error line`);
    assert.match(out, new RegExp(`${file.replace('.', '\\.')}\\(\\d+,\\d+\\): error TS2554`), out);
    assert.equal((out.match(/error TS/g) ?? []).length, 1, out);
  }
});

test('TypeScript: the declarations type-check for a consumer targeting ES2022 (no esnext lib)', () => {
  // `module: nodenext` alone implies target esnext; many projects pin an older target, and
  // without @types/node nothing else declares `Symbol.dispose`.
  for (const [name, file] of [
    ['es2022-cjs', 'consumer-es2022.cts'],
    ['es2022-esm', 'consumer-es2022.mts'],
  ]) {
    const { status, out } = tsc(name, file, CONSUMER_TS, { target: 'es2022' });
    assert.equal(status, 0, `${file}:\n${out.split('\n').filter((l) => l.includes('error TS')).join('\n')}`);
  }
});
