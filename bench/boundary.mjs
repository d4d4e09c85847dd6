// How a check should cross the JavaScript/wasm boundary: measures the alternatives on the
// benchmark workload, in one process, on the same wasm build.
//
//   BOUNDARY=1 scripts/build-pkg.sh && node bench/boundary.mjs [--users N]
//
// Rows:
//   package check()         the package's path: strings written into the core's input buffer,
//                           one call with numbers, decision object built in JS (names cached)
//   package checkMany()     the same, a batch per crossing
//   raw: input buffer       only the crossing of the package's path (answer word, no object)
//   raw: wasm-bindgen &str  wasm-bindgen's string passing (3 strings copied per call), answer word
//   JSON round trip         request as JSON in, explained decision as JSON out, JSON.parse
import { execFileSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const variant = join(root, 'target/pkg-boundary');
if (!existsSync(join(variant, 'dist/edge_authz_bg.wasm'))) {
  console.error('build the variant first: BOUNDARY=1 scripts/build-pkg.sh');
  process.exit(1);
}
const glue = await import(join(variant, 'dist/edge_authz.js'));
const { setWasm } = await import(join(variant, 'src/internal.js'));
setWasm(glue.initSync({ module: readFileSync(join(variant, 'dist/edge_authz_bg.wasm')) }));
const api = await import(join(variant, 'src/api.js'));

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const bin = join(root, 'target/release/edge-authz');
if (!existsSync(bin)) execFileSync('cargo', ['build', '--release', '--quiet'], { cwd: root, stdio: 'inherit' });
const users = Number(arg('--users', 10000));
const model = JSON.parse(
  execFileSync(bin, ['workload', '--users', String(users)], { maxBuffer: 1 << 28 }).toString(),
);

const NOW = 1767225600000;
const { publicKey, secretKey } = api.generateKeyPair();
const snapshot = api.compileSnapshot(model, { epoch: 1, secretKey, issuedAt: NOW });
const ev = new api.Evaluator({ tenant: model.tenant, publicKeys: [publicKey] });
ev.loadSnapshot(snapshot);
const raw = new glue.RawEvaluator(model.tenant, [publicKey]);
raw.load_snapshot(snapshot);

// Seeded requests: users x actions x resources.
let seed = 42;
const rnd = (n) => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed % n;
};
const actions = Object.keys(model.actions);
const resources = model.resources.map((r) => r.id);
const requests = Array.from({ length: 100000 }, () => [
  `user:u${rnd(users)}`,
  actions[rnd(actions.length)],
  resources[rnd(resources.length)],
]);
const ctx = { now: NOW };

// The raw input-buffer crossing, without building a decision object.
const wasmMemory = glue.initSync().memory;
let U8 = new Uint8Array(wasmMemory.buffer);
const memory = () => (U8.byteLength === 0 ? (U8 = new Uint8Array(wasmMemory.buffer)) : U8);
raw.reserve(4096, 1);
const inPtr = raw.input_ptr();
function rawBuffer([s, a, r]) {
  const u8 = memory();
  let p = inPtr;
  for (const x of [s, a, r]) {
    for (let i = 0; i < x.length; i++) u8[p++] = x.charCodeAt(i);
  }
  return raw.check(s.length, a.length, r.length, NOW);
}

const variants = [
  ['package check()', (q) => ev.check(q[0], q[1], q[2], ctx)],
  ['raw: input buffer', rawBuffer],
  ['raw: wasm-bindgen &str', (q) => raw.check_strs(q[0], q[1], q[2], NOW)],
  [
    'JSON round trip',
    (q) => JSON.parse(raw.check_json(JSON.stringify({ subject: q[0], action: q[1], resource: q[2], context: ctx }))),
  ],
];

// The variants must agree on every answer.
for (const q of requests.slice(0, 20000)) {
  const d = ev.check(q[0], q[1], q[2], ctx);
  const words = [rawBuffer(q), raw.check_strs(q[0], q[1], q[2], NOW)];
  const j = JSON.parse(raw.check_json(JSON.stringify({ subject: q[0], action: q[1], resource: q[2], context: ctx })));
  if (words.some((w) => (w & 1) !== Number(d.allowed)) || j.allowed !== d.allowed || j.reason !== d.reason) {
    console.error('variants disagree on', q, d, words, j);
    process.exit(1);
  }
  if (d.allowed && JSON.stringify(d.grant) !== JSON.stringify(j.grant)) {
    console.error('grants disagree on', q, d.grant, j.grant);
    process.exit(1);
  }
}

function time(fn, reqs, rounds = 5) {
  const per = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < reqs.length; i++) fn(reqs[i]);
    per.push(Number(process.hrtime.bigint() - t0) / reqs.length);
  }
  per.sort((a, b) => a - b);
  return per[Math.floor(rounds / 2)];
}

const warm = requests.slice(0, 1000);
const rows = [];
for (const [name, fn] of variants) {
  time(fn, warm, 3);
  rows.push([name, time(fn, warm), time(fn, requests, 3)]);
}
// checkMany: the whole batch per crossing.
const many = (reqs) => () => ev.checkMany(reqs, ctx);
const batchNs = (reqs) => {
  const per = [];
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    many(reqs)();
    per.push(Number(process.hrtime.bigint() - t0) / reqs.length);
  }
  return per.sort((a, b) => a - b)[2];
};
many(warm)();
rows.push(['package checkMany()', batchNs(warm), batchNs(requests)]);

const allowed = requests.filter((q) => ev.check(q[0], q[1], q[2], ctx).allowed).length;
console.log(`workload: ${users} users, ${model.assignments.length} assignments; ${requests.length} random requests, ${((100 * allowed) / requests.length).toFixed(1)}% allowed`);
console.log('| crossing | ns per check, 1k warm requests | ns per check, 100k random requests |');
console.log('|---|---:|---:|');
for (const [name, warmNs, coldNs] of rows) {
  console.log(`| ${name} | ${warmNs.toFixed(0)} | ${coldNs.toFixed(0)} |`);
}
