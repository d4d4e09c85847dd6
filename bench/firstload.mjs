// A snapshot's first load in a fresh Node process against its later loads: how much of a first
// load is V8 compiling the wasm as it first runs it, next to what building the index costs
// (`cargo run --release -p edge-authz --example profile_load --features workload`, natively).
//
//   cargo build --release && scripts/build-pkg.sh
//   node bench/firstload.mjs                 # the benchmark workload (10,000 users), 7 processes
//   node bench/firstload.mjs --quick         # a small workload, 2 processes (CI)
//   node bench/firstload.mjs --users N --processes P
//
// Each process (a child of this one, started fresh) imports the package (`edge-authz/node`, the
// wasm compiled lazily as it loads), then loads the same signed snapshot LOADS times into new
// evaluators (their answers to 200 requests compared).
//
// Rows: medians over the processes of the import, the first load, the second, the median of the
// later ones, and first minus later. Exits 1 when a load fails or the evaluators of a process
// disagree on a request.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { workloadModel } from './lib/env.mjs';

const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const LOADS = 6;
const NOW = 1767225600000;

// The child: `--child FILE`, one fresh process.
if (argv[0] === '--child') {
  const t0 = performance.now();
  const api = (await import('../pkg/src/node.mjs'));
  const requireMs = performance.now() - t0;
  const { tenant, publicKey, snapshot, probe } = JSON.parse(readFileSync(argv[1], 'utf8'));
  const bytes = Buffer.from(snapshot, 'base64');
  const loads = [];
  const answers = new Set();
  for (let i = 0; i < LOADS; i++) {
    const ev = new api.Evaluator({ tenant, publicKeys: [publicKey], clock: () => NOW });
    const a = performance.now();
    ev.loadSnapshot(bytes);
    loads.push(performance.now() - a);
    answers.add(JSON.stringify(probe.map((q) => ev.check(q[0], q[1], q[2]).allowed)));
  }
  if (answers.size !== 1) throw new Error('the evaluators of one process answered differently');
  console.log(JSON.stringify({ requireMs, loads }));
  process.exit(0);
}

if (argv.includes('--help')) {
  console.log('node bench/firstload.mjs [--quick] [--users N] [--processes P]');
  process.exit(0);
}
const quick = argv.includes('--quick');
const users = Number(arg('--users', quick ? 1000 : 10000));
const processes = Number(arg('--processes', quick ? 2 : 7));
if (!(users >= 100 && processes >= 1)) {
  console.error('--users must be at least 100 and --processes at least 1');
  process.exit(2);
}

const { model, spec } = workloadModel(users, quick);
const api = await import('../pkg/src/node.mjs');
const { publicKey, secretKey } = api.generateKeyPair();
const snapshot = api.compileSnapshot(model, { epoch: 1, secretKey, issuedAt: NOW });
const { generateRequests } = await import('./lib/requests.mjs');
const probe = generateRequests(model, 200, { seed: 5, targeted: 0.25 });

const dir = mkdtempSync(join(tmpdir(), 'edge-authz-firstload-'));
const rows = [];
try {
  const file = join(dir, 'snapshot.json');
  writeFileSync(file, JSON.stringify({ tenant: model.tenant, publicKey, snapshot: Buffer.from(snapshot).toString('base64'), probe }));
  const here = fileURLToPath(import.meta.url);
  for (let p = 0; p < processes; p++) {
    const r = spawnSync(process.execPath, [here, '--child', file], { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) {
      console.error(`child ${p} failed (status ${r.status}):\n${r.stderr}`);
      process.exit(1);
    }
    rows.push(JSON.parse(r.stdout.trim().split('\n').pop()));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const later = (xs) => median(xs.slice(2));
const fig = (f) => median(rows.map(f));
const figures = [
  ['import the package (the wasm compiled lazily)', fig((r) => r.requireMs)],
  ['first load in the process', fig((r) => r.loads[0])],
  ['second load', fig((r) => r.loads[1])],
  ['later loads (median of the 3rd to the last)', fig((r) => later(r.loads))],
  ['first load minus later load (V8 compiling the wasm as it first runs)', fig((r) => r.loads[0] - later(r.loads))],
];
const out = [];
out.push(`## A snapshot's first load (node bench/firstload.mjs${quick ? ' --quick' : ''})`);
out.push('');
out.push(`${new Date().toISOString().slice(0, 10)}, Node ${process.version}; workload \`edge-authz workload ${spec.join(' ')}\` (${model.memberships.length} memberships, ${model.assignments.length} assignments), snapshot ${snapshot.length} bytes; ${processes} fresh processes, ${LOADS} loads each; medians over the processes, ms.`);
out.push('');
out.push('| figure | ms |');
out.push('|---|---:|');
for (const [name, v] of figures) out.push(`| ${name} | ${v.toFixed(1)} |`);
console.log(out.join('\n'));
