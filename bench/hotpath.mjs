// The package's hot path against another build of it, in one process: `check` and `checkMany`
// on the benchmark workload, the same requests through both builds, every answer compared.
//
//   cargo build --release && scripts/build-pkg.sh
//   node bench/hotpath.mjs --base ../other-checkout     # another checkout whose pkg/ is built
//   node bench/hotpath.mjs                              # this build alone
//   node bench/hotpath.mjs --quick                      # small workload, few rounds (CI)
//   node bench/hotpath.mjs --base DIR --instructions    # also cachegrind instruction counts
//
// Rows (medians of interleaved rounds; each build's state loaded from the same snapshot):
//   check, warm            ns per call over the same 1,000 requests, 20 times in turn
//   check p50 / p99        a timer around each call (its own cost subtracted), 20,000 requests
//   check, 100,000         ns per call over 100,000 requests spread over the whole tenant
//   checkMany              ns per check over the 100,000 requests in batches of 1,000
// The `base` column is the other build's, the ratio base / this (above 1: this build is faster).
// Exits 1 when the builds answer any request differently.
//
// `--shares` adds where this build's warm calls spend their time: the child below runs under
// V8's sampling profiler (`node --cpu-prof`, a sample every 50 us) and the samples taken inside
// its loop are split by the function they were in: the wasm core (every `wasm-function[...]`),
// the garbage collector, and each JavaScript function of the package by name.
//
// `--instructions` adds instructions per call counted by cachegrind (valgrind on PATH), which do
// not depend on the machine's load: each build runs N and 6N warm calls (the same 1,000 requests
// in turn, after one pass over all of them) in a child process under
// `valgrind --tool=cachegrind --cache-sim=no`, and the difference of the two totals over 5N is
// the figure; `check` and `checkMany` (batches of 1,000) apart.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { percentile, timerOverheadNs } from './lib/measure.mjs';
import { workloadModel } from './lib/env.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
if (argv.includes('--help')) {
  console.log('node bench/hotpath.mjs [--base DIR] [--quick] [--users N] [--rounds R] [--instructions] [--shares]');
  process.exit(0);
}
// The child of `--instructions`: `--child ENTRY FILE KIND N` loads FILE's snapshot with the
// package at ENTRY, passes over all its requests once, then makes N warm calls of KIND.
if (argv[0] === '--child') {
  const [, entry, file, kind, n] = argv;
  const api = await import(pathToFileURL(entry).href);
  const { tenant, publicKey, snapshot, requests } = JSON.parse(readFileSync(file, 'utf8'));
  const ev = new api.Evaluator({ tenant, publicKeys: [publicKey], clock: () => 1767225600000 });
  ev.loadSnapshot(Buffer.from(snapshot, 'base64'));
  for (const q of requests) ev.check(q[0], q[1], q[2]);
  for (let i = 0; i < requests.length; i += 1000) ev.checkMany(requests.slice(i, i + 1000));
  const warm = requests.slice(0, 1000);
  // Named, so that `--shares` finds the samples taken inside it.
  function warmLoop() {
    let allowed = 0;
    if (kind === 'check') {
      for (let i = 0; i < Number(n); i++) {
        const q = warm[i % 1000];
        if (ev.check(q[0], q[1], q[2]).allowed) allowed++;
      }
    } else {
      for (let i = 0; i < Number(n); i += 1000) for (const d of ev.checkMany(warm)) if (d.allowed) allowed++;
    }
    return allowed;
  }
  const allowed = warmLoop();
  console.log(allowed);
  process.exit(0);
}
const quick = argv.includes('--quick');
const users = Number(arg('--users', quick ? 1000 : 10000));
const ROUNDS = Number(arg('--rounds', quick ? 2 : 7));
const COUNT = quick ? 10000 : 100000;
const NOW = 1767225600000;

const builds = [['this', join(root, 'pkg/src/node.mjs')]];
const baseDir = arg('--base', null);
if (baseDir !== null) {
  const entry = join(resolve(baseDir), 'pkg/src/node.mjs');
  if (!existsSync(join(resolve(baseDir), 'pkg/dist'))) {
    console.error(`${baseDir}: no built package (run scripts/build-pkg.sh there)`);
    process.exit(2);
  }
  builds.push(['base', entry]);
}
const apis = [];
for (const [, entry] of builds) apis.push(await import(pathToFileURL(entry).href));
const { generateRequests } = await import('./lib/requests.mjs');

const { model, spec } = workloadModel(users, quick);

// One snapshot, signed by the first build, loaded by each.
const { publicKey, secretKey } = apis[0].generateKeyPair();
const snapshot = apis[0].compileSnapshot(model, { epoch: 1, secretKey, issuedAt: NOW });
const evs = apis.map((api) => {
  const ev = new api.Evaluator({ tenant: model.tenant, publicKeys: [publicKey], clock: () => NOW });
  ev.loadSnapshot(snapshot);
  return ev;
});
const requests = generateRequests(model, COUNT, { seed: 7, targeted: 0.25 });
const warm = requests.slice(0, 1000);
const single = generateRequests(model, quick ? 2000 : 20000, { seed: 11, targeted: 0.25 });

// Every answer of every build, by check and by checkMany, the same.
const expected = requests.map((q) => JSON.stringify(evs[0].check(q[0], q[1], q[2])));
let allowed = 0;
for (const [k, ev] of evs.entries()) {
  for (let pass = 0; pass < 2; pass++) {
    // The second pass answers from warm caches.
    for (let i = 0; i < requests.length; i++) {
      const q = requests[i];
      const one = JSON.stringify(ev.check(q[0], q[1], q[2]));
      if (one !== expected[i]) {
        console.error(`${builds[k][0]}: check answers differently on`, q, one, expected[i]);
        process.exit(1);
      }
      if (k === 0 && pass === 0 && JSON.parse(one).allowed) allowed++;
    }
    for (let i = 0; i < requests.length; i += 1000) {
      const ds = ev.checkMany(requests.slice(i, i + 1000));
      for (let j = 0; j < ds.length; j++) {
        if (JSON.stringify(ds[j]) !== expected[i + j]) {
          console.error(`${builds[k][0]}: checkMany answers differently on`, requests[i + j], ds[j], expected[i + j]);
          process.exit(1);
        }
      }
    }
  }
}

function perCheck(ev, reqs, repeat) {
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < repeat; k++) for (let i = 0; i < reqs.length; i++) ev.check(reqs[i][0], reqs[i][1], reqs[i][2]);
  return Number(process.hrtime.bigint() - t0) / (reqs.length * repeat);
}
const overhead = timerOverheadNs();
function timed(ev, reqs) {
  const d = new Float64Array(reqs.length);
  for (let i = 0; i < reqs.length; i++) {
    const q = reqs[i];
    const a = process.hrtime.bigint();
    ev.check(q[0], q[1], q[2]);
    d[i] = Number(process.hrtime.bigint() - a) - overhead;
  }
  d.sort();
  return [percentile(d, 50), percentile(d, 99)];
}
function perBatch(ev, reqs) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < reqs.length; i += 1000) ev.checkMany(reqs.slice(i, i + 1000));
  return Number(process.hrtime.bigint() - t0) / reqs.length;
}

const rows = ['check, warm (ns)', 'check p50 (ns)', 'check p99 (ns)', `check, ${COUNT} requests (ns)`, 'checkMany (ns per check)'];
const figures = evs.map(() => rows.map(() => []));
for (let round = 0; round < ROUNDS + 1; round++) {
  evs.forEach((ev, k) => {
    const [p50, p99] = timed(ev, single);
    const f = [perCheck(ev, warm, 20), p50, p99, perCheck(ev, requests, 1), perBatch(ev, requests)];
    // Round 0 warms V8 up and is not counted.
    if (round > 0) f.forEach((x, i) => figures[k][i].push(x));
  });
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(
  `workload: ${users} users, ${model.assignments.length} assignments; ${requests.length} requests, ` +
    `${((100 * allowed) / requests.length).toFixed(1)}% allowed; medians of ${ROUNDS} interleaved rounds; ` +
    `answers identical across ${evs.length === 1 ? 'check and checkMany' : 'both builds'}`,
);
const base = evs.length > 1;
console.log(`| figure | this build |${base ? ' base | base / this |' : ''}`);
console.log(`|---|---:|${base ? '---:|---:|' : ''}`);
rows.forEach((name, i) => {
  const a = median(figures[0][i]);
  let line = `| ${name} | ${a.toFixed(0)} |`;
  if (base) {
    const b = median(figures[1][i]);
    line += ` ${b.toFixed(0)} | ${(b / a).toFixed(2)}x |`;
  }
  console.log(line);
});
if (argv.includes('--instructions')) {
  const dir = mkdtempSync(join(tmpdir(), 'edge-authz-hotpath-'));
  try {
    const file = join(dir, 'state.json');
    writeFileSync(file, JSON.stringify({ tenant: model.tenant, publicKey, snapshot: Buffer.from(snapshot).toString('base64'), requests }));
    const N = quick ? 20000 : 40000;
    const spawnValgrind = (entry, kind, n) =>
      // --single-threaded: V8 compiles and collects on the main thread, so that its background
      // threads' work does not come and go with the timing of each run.
      spawnSync('valgrind', ['--tool=cachegrind', '--cache-sim=no', '--cachegrind-out-file=/dev/null', process.execPath, '--single-threaded', fileURLToPath(import.meta.url), '--child', entry, file, kind, String(n)], {
        encoding: 'utf8',
        maxBuffer: 1 << 24,
      }).stderr;
    const ir = (entry, kind, n) => {
      const r = spawnValgrind(entry, kind, n);
      const m = r.match(/I\s+refs:\s+([\d,]+)/);
      if (!m) throw new Error(`no instruction count from valgrind: ${r.slice(-500)}`);
      return Number(m[1].replace(/,/g, ''));
    };
    console.log(`\ninstructions per call (cachegrind, ${5 * N} warm calls: the difference of ${6 * N} and ${N}):`);
    console.log(`| call | this build |${base ? ' base | base / this |' : ''}`);
    console.log(`|---|---:|${base ? '---:|---:|' : ''}`);
    for (const kind of ['check', 'checkMany']) {
      const per = builds.map(([, entry]) => (ir(entry, kind, 6 * N) - ir(entry, kind, N)) / (5 * N));
      console.log(`| ${kind} | ${per[0].toFixed(0)} |${base ? ` ${per[1].toFixed(0)} | ${(per[1] / per[0]).toFixed(2)}x |` : ''}`);
    }
    // The same counts natively (the core in Rust, this checkout only): the profile_check example
    // on the default workload (its own 1,000 requests of the same generator's tenant), warm.
    execFileSync('cargo', ['build', '--release', '--quiet', '-p', 'edge-authz', '--features', 'workload', '--example', 'profile_check'], { cwd: root, stdio: 'inherit' });
    const example = join(root, 'target/release/examples/profile_check');
    const native = (part, total) => {
      const r = spawnSync('valgrind', ['--tool=cachegrind', '--cache-sim=no', '--cachegrind-out-file=/dev/null', example, 'hot'], {
        encoding: 'utf8', maxBuffer: 1 << 24, env: { ...process.env, PART: part, TOTAL: String(total) },
      }).stderr;
      const m = r.match(/I\s+refs:\s+([\d,]+)/);
      if (!m) throw new Error(`no instruction count from valgrind: ${r.slice(-500)}`);
      return Number(m[1].replace(/,/g, ''));
    };
    for (const [label, part] of [['native check (Rust, 10,000-user tenant)', 'check'], ['native check_many', 'many']]) {
      const per = (native(part, 6 * N) - native(part, N)) / (5 * N);
      console.log(`| ${label} | ${per.toFixed(0)} |${base ? ' | |' : ''}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
if (argv.includes('--shares')) {
  const dir = mkdtempSync(join(tmpdir(), 'edge-authz-shares-'));
  try {
    const file = join(dir, 'state.json');
    writeFileSync(file, JSON.stringify({ tenant: model.tenant, publicKey, snapshot: Buffer.from(snapshot).toString('base64'), requests }));
    console.log('\nwhere the time of warm calls goes (V8 sampling profiler, share of the samples inside the loop):');
    for (const kind of ['check', 'checkMany']) {
      const out = join(dir, kind);
      const n = quick ? 200000 : 3000000;
      const r = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${out}`, '--cpu-prof-interval', '50', fileURLToPath(import.meta.url), '--child', builds[0][1], file, kind, String(n)], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`the profiled child failed: ${r.stderr}`);
      const shares = sampleShares(JSON.parse(readFileSync(join(out, readdirSync(out)[0]), 'utf8')), 'warmLoop');
      if (!shares.some(([name]) => name === 'wasm')) throw new Error(`no sample of the loop was in wasm: ${JSON.stringify(shares)}`);
      console.log(`| ${kind} | ${shares.slice(0, 6).map(([name, x]) => `${name} ${(100 * x).toFixed(1)}%`).join(', ')} |`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// The share of a V8 CPU profile's samples taken inside function `within`, by the function they
// were taken in (all of the wasm module's functions as one), largest first.
function sampleShares(profile, within) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map();
  for (const node of profile.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
  const inside = (id) => {
    for (let at = id; at !== undefined; at = parent.get(at)) if (byId.get(at).callFrame.functionName === within) return true;
    return false;
  };
  const counts = new Map();
  let total = 0;
  for (const id of profile.samples) {
    if (!inside(id)) continue;
    const name = byId.get(id).callFrame.functionName;
    const key = name.startsWith('wasm-function') ? 'wasm' : name || '(anonymous)';
    counts.set(key, (counts.get(key) ?? 0) + 1);
    total++;
  }
  return [...counts].map(([k, c]) => [k, c / total]).sort((a, b) => b[1] - a[1]);
}

const many = median(figures[0][4]);
console.log(`\ncheckMany: ${(1000 / many).toFixed(2)} M checks/s this build${base ? `, ${(1000 / median(figures[1][4])).toFixed(2)} M/s base` : ''}`);
