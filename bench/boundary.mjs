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
const ev = new api.Evaluator({ tenant: model.tenant, publicKeys: [publicKey], clock: () => NOW });
ev.loadSnapshot(snapshot);
const raw = new glue.RawEvaluator(model.tenant, [publicKey]);
raw.load_snapshot(snapshot);

// The npm benchmark's requests (bench/lib/requests.mjs): seeded, a quarter derived from
// assignments so that nested groups, deep resources and grants are exercised.
const { generateRequests } = await import('./lib/requests.mjs');
const requests = generateRequests(model, 100000, { seed: 7, targeted: 0.25 });
const ctx = { now: NOW };

// The raw input-buffer crossing, without building a decision object: the fields' bytes in the
// input buffer, their lengths in the lengths buffer, a batch of one (how the package asks by
// names), the answer word read back.
const wasmMemory = glue.initSync().memory;
let U8 = new Uint8Array(wasmMemory.buffer);
let U32 = new Uint32Array(wasmMemory.buffer);
const memory = () => {
  if (U8.byteLength === 0) {
    U8 = new Uint8Array(wasmMemory.buffer);
    U32 = new Uint32Array(wasmMemory.buffer);
  }
  return U8;
};
raw.reserve(4096, 1);
const inPtr = raw.input_ptr();
const lensPtr = raw.lens_ptr() >>> 2;
function rawBuffer(q) {
  const u8 = memory();
  let p = inPtr;
  const s = q[0];
  const a = q[1];
  const r = q[2];
  for (let i = 0; i < s.length; i++) u8[p++] = s.charCodeAt(i);
  for (let i = 0; i < a.length; i++) u8[p++] = a.charCodeAt(i);
  for (let i = 0; i < r.length; i++) u8[p++] = r.charCodeAt(i);
  U32[lensPtr] = s.length;
  U32[lensPtr + 1] = a.length;
  U32[lensPtr + 2] = r.length;
  raw.check_many(1, -1, NOW, NOW, -1, -1, false);
  memory();
  return U32[raw.out_ptr() >>> 2];
}

const variants = [
  ['package check()', (q) => ev.check(q[0], q[1], q[2], ctx)],
  ['raw: input buffer', rawBuffer],
  ['raw: wasm-bindgen &str', (q) => raw.check_strs(q[0], q[1], q[2], NOW, NOW)],
  [
    'JSON round trip',
    (q) => JSON.parse(raw.check_json(JSON.stringify({ subject: q[0], action: q[1], resource: q[2], context: ctx }), NOW)),
  ],
];

// The variants must agree on every answer.
for (const q of requests.slice(0, 20000)) {
  const d = ev.check(q[0], q[1], q[2], ctx);
  const words = [rawBuffer(q), raw.check_strs(q[0], q[1], q[2], NOW, NOW)];
  const j = JSON.parse(raw.check_json(JSON.stringify({ subject: q[0], action: q[1], resource: q[2], context: ctx }), NOW));
  if (words.some((w) => (w & 1) !== Number(d.allowed)) || j.allowed !== d.allowed || j.reason !== d.reason) {
    console.error('variants disagree on', q, d, words, j);
    process.exit(1);
  }
  if (d.allowed && JSON.stringify(d.grant) !== JSON.stringify(j.grant)) {
    console.error('grants disagree on', q, d.grant, j.grant);
    process.exit(1);
  }
}

// One round times every variant once over a request set; rounds alternate the variants so that
// the machine's drift (large on these VMs) hits them alike. Medians over the rounds.
const ROUNDS = Number(arg('--rounds', 11));
const warm = requests.slice(0, 1000);
const many = (reqs) => () => ev.checkMany(reqs, ctx);
const all = [
  ...variants.map(([name, fn]) => [name, (reqs) => { for (let i = 0; i < reqs.length; i++) fn(reqs[i]); }]),
  ['package checkMany()', (reqs) => many(reqs)()],
];
function perCheck(run, reqs, repeat) {
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < repeat; k++) run(reqs);
  return Number(process.hrtime.bigint() - t0) / (reqs.length * repeat);
}
const figures = all.map(() => ({ warm: [], cold: [] }));
for (const [, run] of all) perCheck(run, warm, 5); // JIT warm-up
for (let round = 0; round < ROUNDS; round++) {
  all.forEach(([name, run], k) => {
    const slow = name === 'JSON round trip';
    figures[k].warm.push(perCheck(run, warm, slow ? 2 : 20));
    figures[k].cold.push(perCheck(run, slow ? requests.slice(0, 20000) : requests, 1));
  });
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const rows = all.map(([name], k) => [name, median(figures[k].warm), median(figures[k].cold)]);

const allowed = requests.filter((q) => ev.check(q[0], q[1], q[2], ctx).allowed).length;
console.log(`workload: ${users} users, ${model.assignments.length} assignments; ${requests.length} random requests, ${((100 * allowed) / requests.length).toFixed(1)}% allowed`);
console.log(`medians of ${ROUNDS} interleaved rounds`);
console.log('| crossing | ns per check, 1k warm requests | ns per check, 100k random requests |');
console.log('|---|---:|---:|');
for (const [name, warmNs, coldNs] of rows) {
  console.log(`| ${name} | ${warmNs.toFixed(0)} | ${coldNs.toFixed(0)} |`);
}
