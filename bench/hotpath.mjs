// The package's hot path against another build of it, in one process: `check` and `checkMany`
// on the benchmark workload, the same requests through both builds, every answer compared.
//
//   cargo build --release && scripts/build-pkg.sh
//   node bench/hotpath.mjs --base ../other-checkout     # another checkout whose pkg/ is built
//   node bench/hotpath.mjs                              # this build alone
//   node bench/hotpath.mjs --quick                      # small workload, few rounds (CI)
//
// Rows (medians of interleaved rounds; each build's state loaded from the same snapshot):
//   check, warm            ns per call over the same 1,000 requests, 20 times in turn
//   check p50 / p99        a timer around each call (its own cost subtracted), 20,000 requests
//   check, 100,000         ns per call over 100,000 requests spread over the whole tenant
//   checkMany              ns per check over the 100,000 requests in batches of 1,000
// The `base` column is the other build's, the ratio base / this (above 1: this build is faster).
// Exits 1 when the builds answer any request differently.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { percentile, timerOverheadNs } from './lib/measure.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
if (argv.includes('--help')) {
  console.log('node bench/hotpath.mjs [--base DIR] [--quick] [--users N] [--rounds R]');
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

const bin = join(root, 'target/release/edge-authz');
if (!existsSync(bin)) execFileSync('cargo', ['build', '--release', '--quiet'], { cwd: root, stdio: 'inherit' });
const spec = quick
  ? ['--users', String(users), '--groups', '60', '--assignments', '1500', '--big-group', '300', '--docs-per-project', '3']
  : ['--users', String(users)];
const model = JSON.parse(execFileSync(bin, ['workload', ...spec], { maxBuffer: 1 << 28 }).toString());

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
const many = median(figures[0][4]);
console.log(`\ncheckMany: ${(1000 / many).toFixed(2)} M checks/s this build${base ? `, ${(1000 / median(figures[1][4])).toFixed(2)} M/s base` : ''}`);
