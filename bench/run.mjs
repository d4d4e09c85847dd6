#!/usr/bin/env node
// The npm-side benchmark: edge-authz (its npm package) against @cedar-policy/cedar-wasm
// (stateful API) and casbin (enforceSync), in one Node process, on the generated workload, every
// answer checked against the plain JavaScript reference (bench/lib/reference.mjs).
//
//   node bench/run.mjs                 # default workload (edge-authz workload), ~2-3 minutes
//   node bench/run.mjs --quick         # small workload, a few seconds: CI smoke, answers still checked
//   node bench/run.mjs --model FILE    # any model JSON instead of the generated one
//   node bench/run.mjs --json out.json # also write the figures as JSON
//   node bench/run.mjs --help
//
// It re-executes itself with --expose-gc (for the heap figures) unless already given.
// Exit code: 0 when every engine gave the reference's answer to every request, 1 otherwise or on error.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { buildReference } from './lib/reference.mjs';
import { generateRequests, requestUniverse } from './lib/requests.mjs';
import { hr, ms, gc, mem, memDelta, percentile, timerOverheadNs, fileSizes } from './lib/measure.mjs';
import { renderMarkdown } from './lib/report.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');

const HELP = `usage: node bench/run.mjs [options]
  --quick                   small workload and short budgets (CI smoke; answers still checked)
  --model FILE              model JSON (default: the output of \`edge-authz workload\`)
  --binary PATH             edge-authz binary (default: target/release/edge-authz, built if missing)
  --users N --groups N --assignments N --big-group N --docs-per-project N --seed N
                            passed to \`edge-authz workload\`
  --requests N              throughput request set (default 100000; quick 5000)
  --single N                single-check request set (default 20000; quick 2000)
  --now MS                  the fixed request time (default 1767225600000, 2026-01-01)
  --req-seed N              request generator seed (default 7)
  --targeted F              share of requests derived from an assignment (default 0.25)
  --engines LIST            comma list of edge,cedar,casbin (default all three)
  --edge-pkg DIR            the edge-authz npm package (default pkg/)
  --peer-seconds S          time budget of each peer measurement (default 20; quick 1)
  --batch-size N            requests per checkMany call (default 1000)
  --rounds N                edge-authz throughput rounds over the whole set (default 5; quick 2)
  --cedar-entities MODE     flat (default) | full: the entity slice passed to each Cedar call
  --json FILE               also write the results as JSON
`;

function parseArgs(argv) {
  const o = { workload: {} };
  const num = (v, k) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`--${k} needs a number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--help': case '-h': o.help = true; break;
      case '--quick': o.quick = true; break;
      case '--model': o.model = val(); break;
      case '--binary': o.binary = val(); break;
      case '--users': case '--groups': case '--assignments': case '--big-group': case '--docs-per-project': case '--seed':
        o.workload[a.slice(2)] = num(val(), a.slice(2)); break;
      case '--requests': o.requests = num(val(), 'requests'); break;
      case '--single': o.single = num(val(), 'single'); break;
      case '--now': o.now = num(val(), 'now'); break;
      case '--req-seed': o.reqSeed = num(val(), 'req-seed'); break;
      case '--targeted': o.targeted = num(val(), 'targeted'); break;
      case '--engines': o.engines = val().split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--edge-pkg': o.edgePkg = path.resolve(val()); break;
      case '--peer-seconds': o.peerSeconds = num(val(), 'peer-seconds'); break;
      case '--batch-size': o.batchSize = num(val(), 'batch-size'); break;
      case '--rounds': o.rounds = num(val(), 'rounds'); break;
      case '--cedar-entities': o.cedarEntities = val(); break;
      case '--json': o.json = val(); break;
      default: throw new Error(`unknown option ${a} (see --help)`);
    }
  }
  const q = !!o.quick;
  o.requests ??= q ? 5000 : 100000;
  o.single ??= q ? 2000 : 20000;
  o.now ??= 1767225600000;
  o.reqSeed ??= 7;
  o.targeted ??= 0.25;
  o.engines ??= ['edge', 'cedar', 'casbin'];
  o.peerSeconds ??= q ? 1 : 20;
  o.batchSize ??= 1000;
  o.rounds ??= q ? 2 : 5;
  o.cedarEntities ??= 'flat';
  o.binary ??= path.join(repo, 'target', 'release', 'edge-authz');
  if (q) {
    const d = { users: 1000, groups: 60, assignments: 1500, 'big-group': 300, 'docs-per-project': 3 };
    for (const [k, v] of Object.entries(d)) o.workload[k] ??= v;
  }
  for (const e of o.engines) if (!['edge', 'cedar', 'casbin'].includes(e)) throw new Error(`unknown engine ${e}`);
  if (!['flat', 'full'].includes(o.cedarEntities)) throw new Error('--cedar-entities is flat or full');
  return o;
}

const log = (...a) => console.error('[bench]', ...a);

function getModel(o) {
  if (o.model) return { model: JSON.parse(fs.readFileSync(o.model, 'utf8')), source: o.model };
  if (!fs.existsSync(o.binary)) {
    log(`${o.binary} is missing: cargo build --release`);
    const r = spawnSync('cargo', ['build', '--release'], { cwd: repo, stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error('cargo build --release failed');
  }
  const args = ['workload'];
  for (const [k, v] of Object.entries(o.workload)) args.push(`--${k}`, String(v));
  const text = execFileSync(o.binary, args, { maxBuffer: 1 << 30, encoding: 'utf8' });
  return { model: JSON.parse(text), source: `${path.relative(process.cwd(), o.binary) || o.binary} ${args.join(' ')}` };
}

async function engineModule(key) {
  if (key === 'edge') return await import('./engines/edge-authz.mjs');
  if (key === 'cedar') return await import('./engines/cedar.mjs');
  return await import('./engines/casbin.mjs');
}

function verify(label, engine, requests, results, expected, start, mismatches) {
  let bad = 0;
  for (let i = 0; i < results.length; i++) {
    const got = engine.allowed(results[i]);
    const exp = expected[start + i];
    if (got !== exp) {
      bad++;
      if (mismatches.length < 10) {
        const q = requests[start + i];
        mismatches.push({ phase: label, request: q, expected: exp, got, detail: engine.explain ? engine.explain(results[i]) : undefined });
      }
    }
  }
  return bad;
}

/** Checks per second of `count` single calls, measured on a small pilot. */
function pilotRate(engine, requests, n) {
  const t0 = hr();
  for (let i = 0; i < n; i++) engine.check(requests[i][0], requests[i][1], requests[i][2]);
  return n / (ms(t0, hr()) / 1000);
}

async function benchEngine(key, ctx) {
  const { o, model, single, singleExp, thr, thrExp } = ctx;
  const isEdge = key === 'edge';
  const mod = await engineModule(key);
  const res = { engine: mod.name, key };
  const modOpts = { pkgDir: o.edgePkg };

  gc();
  let m0 = mem();
  let t0 = hr();
  res.module = await mod.importEngine(modOpts);
  res.importMs = ms(t0, hr());
  if (res.module.fake) res.engine += ' (TEST STAND-IN)';
  gc();
  res.importMem = memDelta(m0, mem());

  t0 = hr();
  const prepared = await mod.prepare(model, { now: o.now });
  res.prepareMs = ms(t0, hr());

  // Load twice: the first load in the process (cold: V8 has not yet optimised the engine's wasm or
  // JS) gives the load time and the heap figure; the second (warm) gives the load time of a process
  // that has loaded before (an edge replacing its snapshot); its state serves the checks.
  const loadOpts = { now: o.now, entityMode: o.cedarEntities };
  gc();
  m0 = mem();
  t0 = hr();
  let engine = await mod.load(prepared, loadOpts);
  res.loadMs = ms(t0, hr());
  gc();
  res.loadMem = memDelta(m0, mem());
  res.heapBytes = res.loadMem.total;
  if (engine.loadBreakdownMs) res.loadBreakdownMs = engine.loadBreakdownMs;
  engine = null;
  gc();
  t0 = hr();
  engine = await mod.load(prepared, loadOpts);
  res.loadAgainMs = ms(t0, hr());
  if (engine.loadBreakdownMs) res.loadAgainBreakdownMs = engine.loadBreakdownMs;
  res.batchApi = engine.batchApi;
  res.info = engine.info;
  log(`${res.engine}: loaded in ${res.loadMs.toFixed(1)} ms, again in ${res.loadAgainMs.toFixed(1)} ms (prepare, not timed: ${res.prepareMs.toFixed(0)} ms)`);

  const mismatches = [];
  let mismatchCount = 0;
  let verified = 0;

  // Warm-up (answers checked too).
  const warmN = Math.min(single.length, isEdge ? 5000 : 20);
  {
    const out = new Array(warmN);
    for (let i = 0; i < warmN; i++) out[i] = engine.check(single[i][0], single[i][1], single[i][2]);
    mismatchCount += verify('warm-up', engine, single, out, singleExp, 0, mismatches);
    verified += warmN;
  }

  // How many checks fit the budget (peers only; edge-authz runs the full sets).
  const budget = o.peerSeconds;
  let rate = Infinity;
  if (!isEdge) {
    rate = pilotRate(engine, single, Math.min(single.length, 10));
    log(`${res.engine}: pilot ~${rate.toFixed(0)} checks/s; budget ${budget} s per measurement`);
  }
  const fit = (n) => (isEdge ? n : Math.max(Math.min(n, 10), Math.min(n, Math.floor(rate * budget))));

  // 1. Single-check latency, per call: hrtime.bigint() around each call.
  const nSingle = fit(single.length);
  {
    const lat = new Float64Array(nSingle);
    const out = new Array(nSingle);
    for (let i = 0; i < nSingle; i++) {
      const q = single[i];
      const a = process.hrtime.bigint();
      out[i] = engine.check(q[0], q[1], q[2]);
      const b = process.hrtime.bigint();
      lat[i] = Number(b - a);
    }
    lat.sort();
    res.single = { n: nSingle, p50Ns: percentile(lat, 50), p99Ns: percentile(lat, 99), meanNs: lat.reduce((x, y) => x + y, 0) / nSingle };
    mismatchCount += verify('single', engine, single, out, singleExp, 0, mismatches);
    verified += nSingle;
  }
  // 2. Single-check latency, blocks of B consecutive calls timed together (per-call = block / B):
  //    timer resolution for sub-microsecond checks. Only when there are >= 20 blocks.
  {
    const B = 100;
    const blocks = Math.floor(fit(single.length) / B);
    if (blocks >= 20) {
      const lat = new Float64Array(blocks);
      const out = new Array(blocks * B);
      for (let k = 0; k < blocks; k++) {
        const base = k * B;
        const a = process.hrtime.bigint();
        for (let j = 0; j < B; j++) {
          const q = single[base + j];
          out[base + j] = engine.check(q[0], q[1], q[2]);
        }
        const b = process.hrtime.bigint();
        lat[k] = Number(b - a) / B;
      }
      lat.sort();
      res.singleBlocks = { n: blocks * B, block: B, p50Ns: percentile(lat, 50), p99Ns: percentile(lat, 99) };
      mismatchCount += verify('single-blocks', engine, single, out, singleExp, 0, mismatches);
      verified += blocks * B;
    } else {
      res.singleBlocks = null;
    }
  }

  // 3. Batch throughput: checkMany over the throughput set in chunks of --batch-size.
  {
    const n = fit(thr.length);
    const rounds = isEdge ? Math.max(1, o.rounds) : 1;
    const bs = Math.max(1, o.batchSize);
    const rates = [];
    const batches = [];
    for (let i = 0; i < n; i += bs) batches.push(thr.slice(i, Math.min(n, i + bs)));
    for (let r = 0; r < rounds; r++) {
      const chunks = new Array(batches.length);
      const a = hr();
      for (let k = 0; k < batches.length; k++) chunks[k] = engine.checkMany(batches[k]);
      const secs = ms(a, hr()) / 1000;
      rates.push(n / secs);
      let off = 0;
      for (const c of chunks) {
        mismatchCount += verify(`throughput round ${r + 1}`, engine, thr, c, thrExp, off, mismatches);
        off += c.length;
      }
      verified += n;
    }
    const sorted = [...rates].sort((x, y) => x - y);
    let allowedN = 0;
    for (let i = 0; i < n; i++) if (thrExp[i]) allowedN++;
    res.throughput = {
      n, rounds, batchSize: bs,
      checksPerSec: sorted[Math.floor(sorted.length / 2)], // median round
      bestChecksPerSec: sorted[sorted.length - 1],
      allowedRatio: allowedN / n,
      subset: n < thr.length,
    };
  }
  res.verified = verified;
  res.mismatches = mismatchCount;
  res.mismatchExamples = mismatches;
  log(`${res.engine}: ${res.throughput.checksPerSec.toFixed(0)} checks/s on ${res.throughput.n}; p50 ${(res.single.p50Ns / 1000).toFixed(3)} us; ${verified} answers checked, ${mismatchCount} mismatches`);

  // Sizes on disk.
  const files = mod.packageFiles(modOpts);
  res.size = {};
  if (files.wasm) res.size.wasm = files.wasm.length ? fileSizes(files.wasm) : null;
  if (files.glue) res.size.glue = files.glue.length ? fileSizes(files.glue) : null;
  if (files.lib) res.size.lib = fileSizes(files.lib);
  res.size.main = res.size.wasm ?? res.size.lib ?? null;
  res.size.mainKind = files.wasm ? (res.size.wasm ? 'wasm' : 'wasm (file missing)') : 'lib (JS + runtime deps)';

  engine = null; // drop the state before the next engine
  gc();
  return res;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (typeof globalThis.gc !== 'function' && !process.env.EDGE_AUTHZ_BENCH_CHILD) {
    const r = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
      stdio: 'inherit',
      env: { ...process.env, EDGE_AUTHZ_BENCH_CHILD: '1' },
    });
    return r.status ?? 1;
  }
  if (typeof globalThis.gc !== 'function') log('warning: no --expose-gc: heap figures are without a forced GC');

  const t0 = hr();
  const { model, source } = getModel(o);
  log(`model from ${source}: ${model.resources.length} resources, ${(model.memberships || []).length} memberships, ${model.assignments.length} assignments, ${(model.suspended || []).length} suspended`);
  const ref = buildReference(model);
  const universe = requestUniverse(model);
  const thr = generateRequests(model, o.requests, { seed: o.reqSeed, targeted: o.targeted }, universe);
  const single = generateRequests(model, o.single, { seed: o.reqSeed + 1000003, targeted: o.targeted }, universe);
  const thrExp = thr.map((q) => ref.allowed(q[0], q[1], q[2], o.now));
  const singleExp = single.map((q) => ref.allowed(q[0], q[1], q[2], o.now));
  const allowedRatio = thrExp.filter(Boolean).length / thrExp.length;
  const singleAllowedRatio = singleExp.filter(Boolean).length / singleExp.length;
  log(`${thr.length} throughput requests (allowed ${(allowedRatio * 100).toFixed(1)}%), ${single.length} single-check requests (allowed ${(singleAllowedRatio * 100).toFixed(1)}%)`);

  const ctx = { o, model, single, singleExp, thr, thrExp };
  const results = [];
  const order = ['edge', 'cedar', 'casbin'].filter((e) => o.engines.includes(e));
  for (const key of order) {
    try {
      results.push(await benchEngine(key, ctx));
    } catch (e) {
      if (e.code === 'no_pkg') {
        console.error(`error: ${e.message}`);
        return 1;
      }
      throw e;
    }
  }

  const out = {
    date: new Date().toISOString(),
    environment: {
      node: process.version, platform: `${os.platform()} ${os.arch()}`, cpus: os.cpus().length, cpu: os.cpus()[0]?.model,
      exposeGc: typeof globalThis.gc === 'function', timerOverheadNs: timerOverheadNs(),
    },
    options: { ...o, workload: o.workload },
    workload: {
      source,
      resources: model.resources.length, memberships: (model.memberships || []).length, assignments: model.assignments.length,
      expiring: model.assignments.filter((a) => a.expires_at != null).length, suspended: (model.suspended || []).length,
      actions: Object.keys(model.actions).length, roles: Object.keys(model.roles).length, users: universe.users.length,
      now: o.now, throughputRequests: thr.length, singleRequests: single.length,
      allowedRatio, singleAllowedRatio, targeted: o.targeted,
    },
    results,
    totalSeconds: ms(t0, hr()) / 1000,
  };
  out.mismatches = results.reduce((s, r) => s + r.mismatches, 0);
  const md = renderMarkdown(out);
  process.stdout.write(md);
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(out, (k, v) => (typeof v === 'bigint' ? Number(v) : v), 2) + '\n');
  if (out.mismatches > 0) {
    console.error(`error: ${out.mismatches} answers differ from the reference`);
    for (const r of results) for (const m of r.mismatchExamples) console.error(`  ${r.engine} ${m.phase}: ${JSON.stringify(m.request)} expected ${m.expected} got ${m.got}${m.detail ? ` (${m.detail})` : ''}`);
    return 1;
  }
  return 0;
}

main().then((code) => process.exit(code), (e) => {
  console.error('error:', e && e.stack || e);
  process.exit(1);
});
