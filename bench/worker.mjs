#!/usr/bin/env node
// The Cloudflare Worker benchmark: the built Worker (build/, scripts/build-worker.sh) served by
// `wrangler dev` on 127.0.0.1, driven over HTTP/1.1 keep-alive connections from this process.
//
//   node bench/worker.mjs            # the example model, about 2 minutes
//   node bench/worker.mjs --quick    # about 40 s (CI smoke)
//   node bench/worker.mjs --large    # a generated model of a few thousand users instead
//   node bench/worker.mjs --help
//
// Phases: (1) push a signed snapshot; (2)+(3) GET /health (an almost empty Worker round trip) and
// POST /v1/acme/check and check-many for an action of each tier, interleaved in rounds; (4) a
// watermark pushed above the held epoch while checks run: time to the first stale_snapshot per
// tier, then the next snapshot and time to the first allowed answer again; (5) the race: 10,000
// checks racing a watermark push, and no check sent after the push's 200 may be allowed from an
// epoch older than the watermark (low tier: not later than the reuse window after it).
//
// wrangler dev runs the Worker in one isolate. An isolate that relays an accepted push confirms on
// its next decision whatever the tier, so pushes through it never exercise the low tier's reuse
// window. Pushes are therefore also sent through a relay: a second wrangler dev running the same
// build as `<name>-relay`, whose AUTHORITY binding is this Worker's Durable Object (script_name,
// connected by wrangler's dev registry, kept private to this run) -- another isolate, as a push
// landing elsewhere would be in production. --no-relay leaves it out.
// Exit code: 0; 1 when a race or a watermark trial found a violation or an answer differed from the
// reference; 2 on an error (wrangler did not start, a phase ran out of time, ...). Both wrangler
// processes are always stopped (process groups) and their temporary directories removed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { requirePackage } from '../tests/js/pkg.mjs';
import { percentile, fileSizes } from './lib/measure.mjs';
import { hr, makeClient, runLoad } from './worker/client.mjs';
import { startWrangler, stopAll, tempDir, removeTempDir } from './worker/server.mjs';
import { LARGE_DEFAULTS, largeModel, tierActions, pool, allowedPool } from './worker/model.mjs';
import { renderMarkdown } from './worker/report.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');

const HELP = `usage: node bench/worker.mjs [options]
  --quick                 short phases (about 40 s in all)
  --model FILE            model JSON (default: examples/acme.json; its tenant is used)
  --large                 a generated model (${LARGE_DEFAULTS.users} users, ${LARGE_DEFAULTS.groups} groups, ${LARGE_DEFAULTS.assignments} assignments) instead
  --users N --groups N --assignments N   sizes of --large
  --connections N         keep-alive connections of the round-trip phases (default 8)
  --rounds N              rounds of the round-trip phases (default 5; quick 1)
  --seconds S             seconds per workload per round (default 1; quick 1)
  --batch N               requests per check-many (default 100)
  --reuse-low-ms MS       CONFIRM_REUSE_MS_LOW of the Worker (default 500)
  --reuse-standard-ms MS  CONFIRM_REUSE_MS_STANDARD of the Worker (default 1000)
  --log-sample F          LOG_SAMPLE_ALLOWED and LOG_SAMPLE_DENIED (default 0: no decision logs)
  --heartbeat-ms MS       the origin's heartbeat period while checks run (default 1000)
  --trials N              watermark-to-stale trials (default 3; quick 1)
  --race-checks N         checks per race (default 10000; quick 3000)
  --race-connections N    connections of the race (default 32)
  --json FILE             also write the figures as JSON
  --time-limit S          stop everything after S seconds (default 600; quick 180)
  --no-relay              no second wrangler dev relaying pushes through another isolate (all
                          pushes then go through the serving isolate; see the file header)
  --no-empty              no third wrangler dev serving an empty Worker (the baseline of the
                          paired round trips "empty Worker ⇄ check"; GET /health pairs remain)
  --no-build              do not run scripts/build-worker.sh first: measure build/ as it is
  --use-repo-config       run wrangler on the repository's wrangler.toml (its [build] runs at the
                          start and whenever src/ changes) instead of a copy of build/ without [build]
`;

function parseArgs(argv) {
  const o = {};
  const num = (v, k) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${k} needs a non-negative number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    const k = a.replace(/^--/, '');
    switch (a) {
      case '--help': case '-h': o.help = true; break;
      case '--quick': o.quick = true; break;
      case '--large': o.large = true; break;
      case '--model': o.model = val(); break;
      case '--json': o.json = val(); break;
      case '--no-build': o.noBuild = true; break;
      case '--no-relay': o.relay = false; break;
      case '--no-empty': o.empty = false; break;
      case '--use-repo-config': o.useRepoConfig = true; break;
      case '--users': case '--groups': case '--assignments':
        (o.largeSpec ??= {})[k] = num(val(), k); break;
      case '--connections': case '--rounds': case '--seconds': case '--batch': case '--reuse-low-ms':
      case '--reuse-standard-ms': case '--log-sample': case '--heartbeat-ms': case '--trials':
      case '--race-checks': case '--race-connections': case '--time-limit':
        o[k.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = num(val(), k); break;
      default: throw new Error(`unknown option ${a} (see --help)`);
    }
  }
  const q = !!o.quick;
  o.connections ??= 8;
  o.relay ??= true;
  o.empty ??= true;
  o.rounds ??= q ? 1 : 5;
  o.seconds ??= 1;
  o.batch ??= 100;
  o.reuseLowMs ??= 500;
  o.reuseStandardMs ??= 1000;
  o.logSample ??= 0;
  o.heartbeatMs ??= 1000;
  o.trials ??= q ? 1 : 3;
  o.raceChecks ??= q ? 3000 : 10000;
  o.raceConnections ??= 32;
  o.timeLimit ??= q ? 180 : 600;
  if (o.logSample > 1) throw new Error('--log-sample is between 0 and 1');
  if (o.connections < 1 || o.raceConnections < 1 || o.batch < 1) throw new Error('connections and batch must be at least 1');
  if (o.large && o.model) throw new Error('--large and --model exclude each other');
  return o;
}

const log = (...a) => console.error('[bench:worker]', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nsToMs = (ns) => ns / 1e6;

/** Polls `cond` every 2 ms; false when `timeoutMs` passed first. */
async function waitUntil(cond, timeoutMs) {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(2);
  }
  return true;
}

function summarize(latNs) {
  return {
    p50Ms: nsToMs(percentile(latNs, 50)),
    p90Ms: nsToMs(percentile(latNs, 90)),
    p99Ms: nsToMs(percentile(latNs, 99)),
    p999Ms: nsToMs(percentile(latNs, 99.9)),
    maxMs: latNs.length ? nsToMs(latNs[latNs.length - 1]) : NaN,
  };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const tStart = Date.now();
  const watchdog = startWatchdog(o);
  const origin = makeOrigin(o);
  const pools = requestPools(o, origin);
  const servers = await startServers(o, origin);
  const out = describeRun(o, origin, servers);
  const ctx = connect(o, origin, servers);
  try {
    await phaseSnapshot(ctx, pools, out);
    await phaseRoundTrips(ctx, pools, out);
    await phaseWatermark(ctx, pools, out);
    await phaseRace(ctx, pools, out);
  } finally {
    await shutDown(ctx, servers);
  }
  clearTimeout(watchdog);
  out.environment.loadavgAfter = os.loadavg();
  out.totalSeconds = (Date.now() - tStart) / 1000;

  process.stdout.write(renderMarkdown(out));
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(out, null, 2) + '\n');
  return verdict(o, out);
}

/** Stops wrangler and exits 2 once the run passes --time-limit. */
function startWatchdog(o) {
  const watchdog = setTimeout(() => {
    console.error(`error: the benchmark ran past --time-limit ${o.timeLimit} s; stopping wrangler`);
    stopAll();
    process.exit(2);
  }, o.timeLimit * 1000);
  watchdog.unref();
  return watchdog;
}

// ---- the model, the origin's keys and signing helpers ---------------------------------------

/** The model (checked before anything starts), one action per tier, a fresh origin key pair and
 *  the signing of snapshots and watermarks with it (each issued after the one before). */
function makeOrigin(o) {
  const pkg = requirePackage();
  let model;
  let source;
  if (o.model) {
    model = JSON.parse(fs.readFileSync(o.model, 'utf8'));
    source = o.model;
  } else if (o.large) {
    model = largeModel(o.largeSpec);
    const s = { ...LARGE_DEFAULTS, ...o.largeSpec };
    source = `generated (bench/worker/model.mjs: ${s.users} users, ${s.groups} groups, ${s.assignments} assignments, seed ${s.seed})`;
  } else {
    model = JSON.parse(fs.readFileSync(path.join(repo, 'examples/acme.json'), 'utf8'));
    source = 'examples/acme.json';
  }
  pkg.validateModel(model); // throws invalid_model before anything starts
  const tenant = model.tenant;
  const actions = tierActions(model);
  for (const t of ['low', 'standard', 'high']) if (!actions[t]) throw new Error(`the model declares no action of tier ${t}`);
  const keys = pkg.generateKeyPair();
  let lastIssued = 0;
  const issuedAt = () => (lastIssued = Math.max(Date.now(), lastIssued + 1));
  const sign = {
    snapshot: (epoch) => pkg.compileSnapshot(model, { epoch, secretKey: keys.secretKey, issuedAt: issuedAt() }),
    watermark: (watermark) => pkg.signWatermark({ tenant, watermark, secretKey: keys.secretKey, issuedAt: issuedAt() }),
  };
  log(`model ${source}: ${model.resources.length} resources, ${(model.memberships || []).length} memberships, ${model.assignments.length} assignments; tiers: ${JSON.stringify(actions)}`);
  return { model, source, tenant, actions, keys, sign };
}

// ---- requests ----------------------------------------------------------------------------------

const TIERS = ['low', 'standard', 'high'];
const JSON_TYPE = { 'content-type': 'application/json' };
const MSGPACK = { 'content-type': 'application/msgpack' };
const VIA = { main: 'the serving isolate', relay: 'another isolate (relay)' };

/** The requests of every phase, with the reference's expected answers: per tier, single checks and
 *  check-many batches over a pool, and single checks the model allows (low and high). */
function requestPools(o, { model, tenant, actions }) {
  const POOL = 2000;
  const singles = {};
  const batches = {};
  for (const [k, t] of TIERS.entries()) {
    const p = pool(model, actions[t], POOL, { seed: 7 + k });
    singles[t] = p.reqs.map((q, i) => ({
      method: 'POST', path: `/v1/${tenant}/check`, headers: JSON_TYPE, expected: p.expected[i],
      body: Buffer.from(JSON.stringify({ subject: q[0], action: q[1], resource: q[2] })),
    }));
    batches[t] = [];
    for (let s = 0; s + o.batch <= Math.max(POOL, o.batch) && batches[t].length < 20; s += o.batch) {
      const reqs = [];
      const exp = [];
      for (let j = 0; j < o.batch; j++) {
        reqs.push(p.reqs[(s + j) % POOL]);
        exp.push(p.expected[(s + j) % POOL]);
      }
      batches[t].push({ method: 'POST', path: `/v1/${tenant}/check-many`, headers: JSON_TYPE, expected: exp, body: Buffer.from(JSON.stringify({ requests: reqs })) });
    }
  }
  const allowedSingles = {};
  for (const t of ['low', 'high']) {
    const reqs = allowedPool(model, actions[t], 500, { seed: 99 });
    if (reqs.length === 0) throw new Error(`no request of action ${actions[t]} is allowed by the model: the watermark phases need some`);
    allowedSingles[t] = reqs.map((q) => ({ method: 'POST', path: `/v1/${tenant}/check`, headers: JSON_TYPE, body: Buffer.from(JSON.stringify({ subject: q[0], action: q[1], resource: q[2] })) }));
  }
  return { singles, batches, allowedSingles };
}

// ---- wrangler dev ------------------------------------------------------------------------------

/** The serving wrangler dev and, unless --no-relay, the relay (see the file header); on a failure
 *  to start, whatever started is stopped again. */
async function startServers(o, { keys }) {
  const vars = {
    ORIGIN_PUBLIC_KEYS: keys.publicKey,
    CONFIRM_REUSE_MS_LOW: String(o.reuseLowMs),
    CONFIRM_REUSE_MS_STANDARD: String(o.reuseStandardMs),
    LOG_SAMPLE_ALLOWED: String(o.logSample),
    LOG_SAMPLE_DENIED: String(o.logSample),
  };
  const tW = Date.now();
  const load0 = os.loadavg();
  const registry = tempDir('edge-authz-bench-registry-');
  let server;
  let relay = null;
  let empty = null;
  try {
    server = await startWrangler({ repo, vars, log, registry, build: !o.noBuild, useRepoConfig: !!o.useRepoConfig });
    if (o.relay) relay = await startWrangler({ repo, vars: { ORIGIN_PUBLIC_KEYS: keys.publicKey }, log, registry, relayOf: server });
    if (o.empty) empty = await startWrangler({ repo, log, registry, empty: true });
  } catch (e) {
    if (relay) await relay.stop();
    if (server) await server.stop();
    removeTempDir(registry);
    throw e;
  }
  return { server, relay, empty, registry, load0, wranglerStartS: (Date.now() - tW) / 1000 };
}

/** The report's header: the environment, the options and the model. */
function describeRun(o, { model, source, tenant, actions }, { server, relay, load0, wranglerStartS }) {
  return {
    date: new Date().toISOString(),
    environment: {
      node: process.version, platform: `${os.platform()} ${os.arch()}`, cpus: os.cpus().length, cpu: os.cpus()[0]?.model,
      wrangler: readVersion('wrangler'), workerd: readVersion('workerd'),
      wasm: fs.existsSync(path.join(repo, 'build/index_bg.wasm')) ? fileSizes([path.join(repo, 'build/index_bg.wasm')]) : null,
      wranglerStartS, wranglerReadyS: server.readyS, buildMs: server.prepared.buildMs, buildStamp: server.prepared.stamp,
      relay: relay ? `${relay.url} (pid ${relay.pid}, ready ${relay.readyS.toFixed(1)} s)` : null,
      served: o.useRepoConfig ? 'wrangler.toml of the repository (with [build])' : 'a copy of build/ and of wrangler.toml without [build]',
      loadavgBefore: load0,
    },
    options: o,
    model: {
      source, tenant, actions,
      resources: model.resources.length, memberships: (model.memberships || []).length, assignments: model.assignments.length,
      freshness: model.freshness,
    },
  };
}

/** The clients of every phase and what they share: the epoch the edge holds, pushes (through the
 *  serving isolate or the relay), checks, heartbeats, and the heartbeat loop to stop on the way
 *  out. */
function connect(o, origin, { server, relay, empty }) {
  const { tenant, sign } = origin;
  const control = makeClient({ port: server.port, connections: 2 });
  const load = makeClient({ port: server.port, connections: o.connections });
  const raceClient = makeClient({ port: server.port, connections: o.raceConnections });
  const relayControl = relay ? makeClient({ port: relay.port, connections: 2 }) : null;
  const emptyClient = empty ? makeClient({ port: empty.port, connections: o.connections }) : null;
  const ctx = { o, origin, relay, control, load, raceClient, relayControl, emptyClient, epoch: 0, heartbeatStop: null };
  ctx.push = async (kind, bytes, via = 'main') => {
    const a = await (via === 'relay' ? relayControl : control).send(kind === 'snapshot' ? 'PUT' : 'POST', `/v1/${tenant}/${kind}`, Buffer.from(bytes), MSGPACK);
    if (a.error) throw new Error(`push ${kind} via ${via}: ${a.error}`);
    if (a.status !== 200) throw new Error(`push ${kind} via ${via}: HTTP ${a.status} ${a.text}`);
    return { ...a, json: JSON.parse(a.text), ms: nsToMs(Number(a.t1 - a.t0)), bytes: bytes.length };
  };
  ctx.check = async (q) => {
    const a = await control.send(q.method, q.path, q.body, q.headers);
    if (a.error) throw new Error(`check: ${a.error}`);
    return { ...a, json: JSON.parse(a.text), ms: nsToMs(Number(a.t1 - a.t0)) };
  };
  ctx.heartbeatOnce = (via = 'main') => ctx.push('watermark', sign.watermark(ctx.epoch), via);
  return ctx;
}

/** Stops the heartbeats, closes the clients, stops both wrangler processes and removes their
 *  registry. */
async function shutDown(ctx, { server, relay, empty, registry }) {
  if (ctx.heartbeatStop) await ctx.heartbeatStop().catch(() => {});
  ctx.control.close();
  ctx.load.close();
  ctx.raceClient.close();
  ctx.relayControl?.close();
  ctx.emptyClient?.close();
  if (empty) await empty.stop();
  if (relay) await relay.stop();
  await server.stop();
  removeTempDir(registry);
  log('wrangler dev stopped');
}

// ---- 1. the snapshot ---------------------------------------------------------------------------

async function phaseSnapshot(ctx, { allowedSingles }, out) {
  const { push, check, heartbeatOnce, relay, origin: { sign } } = ctx;
  log('phase 1: snapshot');
  const t0 = hr();
  const snapBytes = sign.snapshot(1);
  const signMs = nsToMs(Number(hr() - t0));
  const sp = await push('snapshot', snapBytes);
  ctx.epoch = 1;
  const first = await check(allowedSingles.high[0]);
  const firstLow = await check(allowedSingles.low[0]);
  if (!first.json.allowed || first.json.epoch !== 1) throw new Error(`the first check after the snapshot: ${first.text}`);
  out.snapshot = { bytes: snapBytes.length, signMs, pushMs: sp.ms, firstCheckMs: first.ms, secondCheckMs: firstLow.ms, answer: first.json };
  log(`snapshot ${snapBytes.length} bytes pushed in ${sp.ms.toFixed(1)} ms; first check ${first.ms.toFixed(1)} ms`);
  if (relay) {
    // The relay reaches the Durable Object once wrangler's dev registry has connected them.
    const end = Date.now() + 20_000;
    for (;;) {
      try {
        const h = await heartbeatOnce('relay');
        if (h.json.epoch !== 1) throw new Error(`the relay's authority holds epoch ${h.json.epoch}, not 1: not the same Durable Object`);
        break;
      } catch (e) {
        if (Date.now() > end || /not the same/.test(e.message)) throw new Error(`the relay does not reach the authority: ${e.message}\n${relay.tail()}`);
        await sleep(200);
      }
    }
    log('the relay reaches the same authority');
  }
}

// ---- 2 + 3. round trips, interleaved in rounds -------------------------------------------------

async function phaseRoundTrips(ctx, pools, out) {
  const { o, relay, load } = ctx;
  const workloads = roundTripWorkloads(o, ctx.origin.actions, pools, ctx.emptyClient);
  const runWorkload = async (w, seconds, record) => {
    const c0 = process.cpuUsage();
    const r = await runLoad(load, { connections: w.conns, durationMs: seconds * 1000, next: w.next, onAnswer: record ? w.onAnswer : undefined });
    const c = process.cpuUsage(c0);
    if (!record) return;
    w.lat.push(r.latNs);
    w.n += r.n;
    w.errors += r.errors;
    w.non2xx += r.non2xx;
    w.elapsedMs += r.elapsedMs;
    w.cpuMs += (c.user + c.system) / 1000;
    w.firstError ??= r.firstError;
  };
  const hb = startHeartbeats(ctx);
  ctx.heartbeatStop = hb.stop;
  log(`phase 2+3: ${workloads.length} workloads × ${o.rounds} rounds × ${o.seconds} s on ${o.connections} connections (and 1) (warm-up first)`);
  for (const w of workloads) await runWorkload(w, o.quick ? 0.2 : 0.4, false);
  for (let r = 0; r < o.rounds; r++) {
    for (const w of workloads) await runWorkload(w, o.seconds, true);
    log(`round ${r + 1}/${o.rounds} done`);
  }
  const hbs = await hb.stop();
  ctx.heartbeatStop = null;
  out.paired = workloads.filter((w) => w.paired).map(pairedFigures);
  out.roundTrips = workloads.filter((w) => !w.paired).map(roundTripFigures);
  out.heartbeats = { ...hbs, via: VIA[relay ? 'relay' : 'main'] };
  for (const r of out.roundTrips) log(`${r.label} (${r.conns} conn): ${r.reqPerSec.toFixed(0)} req/s, p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms, errors ${r.errors}, non-2xx ${r.non2xx}`);
  for (const r of out.paired) log(`paired (${r.conns} conn): ${r.baseline} p50 ${r.health.p50Ms.toFixed(3)} p99 ${r.health.p99Ms.toFixed(3)} ms; check p50 ${r.check.p50Ms.toFixed(3)} p99 ${r.check.p99Ms.toFixed(3)} ms; errors ${r.errors}, non-2xx ${r.non2xx}`);
}

/** The workloads of phases 2 and 3, each with its counters and, for checks, an `onAnswer` that
 *  verifies every decision against the reference (answers gated by freshness or staleness are
 *  counted, not verified). */
function roundTripWorkloads(o, actions, { singles, batches }, emptyClient) {
  const health = { method: 'GET', path: '/health' };
  // The empty Worker's answer: the same wrangler dev and workerd path, no code of ours.
  const nothing = { method: 'GET', path: '/', client: emptyClient };
  const C = o.connections;
  const workloads = [
    { key: 'health', label: 'GET /health', conns: C, tier: null, checks: 0, next: () => health },
    ...TIERS.map((t) => ({ key: `check-${t}`, label: `check \`${actions[t]}\``, conns: C, tier: t, checks: 1, list: singles[t], many: false })),
    ...TIERS.map((t) => ({ key: `many-${t}`, label: `check-many ×${o.batch} \`${actions[t]}\``, conns: C, tier: t, checks: o.batch, list: batches[t], many: true })),
    // One connection: the round trip without queueing behind other requests on 2 cores.
    ...(C > 1 ? [
      { key: 'health-1', label: 'GET /health', conns: 1, tier: null, checks: 0, next: () => health },
      { key: 'check-low-1', label: `check \`${actions.low}\``, conns: 1, tier: 'low', checks: 1, list: singles.low, many: false },
    ] : []),
    ...[...new Set([C, 1])].map((conns) => ({ key: `pair-${conns}`, label: `GET /health ⇄ check \`${actions.low}\``, conns, paired: true, base: health, baseLabel: 'GET /health', tier: 'low', checks: 0, list: singles.low, many: false })),
    // The target's baseline: an empty Worker, one connection to it and one to this Worker, in turn.
    ...(emptyClient ? [{ key: 'pair-empty-1', label: `the empty Worker ⇄ check \`${actions.low}\``, conns: 1, paired: true, base: nothing, baseLabel: 'the empty Worker', tier: 'low', checks: 0, list: singles.low, many: false }] : []),
  ];
  for (const w of workloads) {
    w.lat = [];
    w.n = 0;
    w.errors = 0;
    w.non2xx = 0;
    w.elapsedMs = 0;
    w.cpuMs = 0;
    w.verified = 0;
    w.mismatches = 0;
    w.gated = 0;
    w.reasons = {};
    w.firstError = null;
    w.mismatchExample = null;
    if (w.list) {
      const list = w.list;
      w.next = (i) => list[i % list.length];
      w.onAnswer = (i, a) => {
        if (a.error || a.status !== 200) return;
        const q = list[i % list.length];
        const d = JSON.parse(a.text);
        const ds = w.many ? d.decisions : [d];
        for (let j = 0; j < ds.length; j++) {
          const r = ds[j].reason;
          w.reasons[r] = (w.reasons[r] ?? 0) + 1;
          if (r === 'stale_snapshot' || r === 'freshness_exceeded' || r === 'no_snapshot') {
            w.gated++;
            continue;
          }
          w.verified++;
          const exp = w.many ? q.expected[j] : q.expected;
          if (ds[j].allowed !== exp) {
            w.mismatches++;
            w.mismatchExample ??= { body: q.body.toString(), index: j, expected: exp, got: ds[j] };
          }
        }
      };
    }
  }
  // Paired: the baseline (GET /health, or the empty Worker) and a low-tier check alternate request
  // by request, so both see the same background (the fairest comparison on a shared machine).
  for (const w of workloads.filter((x) => x.paired)) {
    const check = w.onAnswer;
    const lowList = w.list;
    w.pairLat = [[], []];
    const base = w.base;
    w.next = (i) => (i % 2 === 0 ? base : lowList[(i >> 1) % lowList.length]);
    w.onAnswer = (i, a) => {
      if (a.error) return;
      w.pairLat[i % 2].push(Number(a.t1 - a.t0));
      if (i % 2 === 1) check(i >> 1, a);
    };
  }
  return workloads;
}

/** The origin's heartbeats while the round trips run (through the relay when there is one), every
 *  --heartbeat-ms; `stop()` ends them and says how many went out and failed. */
function startHeartbeats({ o, relay, heartbeatOnce }) {
  let on = true;
  let failures = 0;
  let count = 0;
  const loop = (async () => {
    while (on) {
      await sleep(o.heartbeatMs);
      if (!on) break;
      try {
        await heartbeatOnce(relay ? 'relay' : 'main');
        count++;
      } catch (e) {
        failures++;
        log(`heartbeat: ${e.message}`);
      }
    }
  })();
  return { stop: async () => { on = false; await loop; return { count, failures }; } };
}

/** A paired workload's figures: the two halves' latencies side by side. */
function pairedFigures(w) {
  const [h, c] = w.pairLat.map((l) => {
    const a = Float64Array.from(l);
    a.sort();
    return { n: a.length, ...summarize(a) };
  });
  return {
    key: w.key, baseline: w.baseLabel, conns: w.conns, errors: w.errors, non2xx: w.non2xx, firstError: w.firstError, reqPerSec: w.n / (w.elapsedMs / 1000), health: h, check: c,
    verified: w.verified, mismatches: w.mismatches, gated: w.gated, mismatchExample: w.mismatchExample,
  };
}

/** A workload's figures over all its rounds. */
function roundTripFigures(w) {
  const all = new Float64Array(w.lat.reduce((s, a) => s + a.length, 0));
  let off = 0;
  for (const a of w.lat) {
    all.set(a, off);
    off += a.length;
  }
  all.sort();
  const secs = w.elapsedMs / 1000;
  return {
    key: w.key, label: w.label, conns: w.conns, tier: w.tier, n: w.n, errors: w.errors, non2xx: w.non2xx, firstError: w.firstError,
    reqPerSec: w.n / secs, checksPerSec: w.checks ? (w.n * w.checks) / secs : null, seconds: secs,
    clientCpu: w.cpuMs / w.elapsedMs, ...summarize(all),
    verified: w.verified, mismatches: w.mismatches, gated: w.gated, reasons: w.reasons, mismatchExample: w.mismatchExample,
  };
}

// ---- 4. watermark push -> first stale_snapshot, then the next snapshot -> answers again -------

async function phaseWatermark(ctx, pools, out) {
  const { o, relay } = ctx;
  // Modes: high checks alone, low checks alone, both at once (one isolate serves them all, so a
  // high check's confirmation also brings the watermark to the low checks).
  const via0 = relay ? 'relay' : 'main';
  const modes = [
    { tiers: ['high'], via: via0 },
    { tiers: ['low'], via: via0 },
    { tiers: ['high', 'low'], via: via0 },
    ...(relay ? [{ tiers: ['low'], via: 'main' }] : []),
  ];
  log(`phase 4: ${o.trials} watermark trial(s) × ${modes.length} modes`);
  out.watermark = [];
  for (let trial = 0; trial < o.trials; trial++) {
    for (const mode of modes) await watermarkTrial(ctx, pools, out, trial, mode);
  }
}

/** One trial: checks of `tiers` run while a watermark above the held epoch is pushed `via` an
 *  isolate, until each tier saw stale_snapshot; then the next snapshot, until each is allowed again. */
async function watermarkTrial(ctx, { allowedSingles }, out, trial, { tiers, via }) {
  const { o, load, push, heartbeatOnce, origin: { sign, actions } } = ctx;
  const perStream = Math.max(1, Math.floor(o.connections / 2));
  const E = ctx.epoch;
  const W = E + 1;
  const snapW = sign.snapshot(W);
  await heartbeatOnce(via);
  let stop = false;
  const mark = { wm: null, snap: null };
  const st = {};
  for (const t of tiers) st[t] = { events: [], firstStale: null, resumed: null };
  const record = (t) => (i, a) => {
    if (a.error || a.status !== 200) {
      st[t].events.push({ s: Number(a.t0), r: Number(a.t1), error: a.error ?? `HTTP ${a.status}` });
      return;
    }
    const d = JSON.parse(a.text);
    const e = { s: Number(a.t0), r: Number(a.t1), allowed: d.allowed, reason: d.reason, epoch: d.epoch };
    st[t].events.push(e);
    if (mark.wm != null && e.r > mark.wm && e.reason === 'stale_snapshot' && !st[t].firstStale) st[t].firstStale = e;
    if (mark.snap != null && e.r > mark.snap && e.allowed && e.epoch === W && !st[t].resumed) st[t].resumed = e;
  };
  const settle = (tiers.includes('low') ? o.reuseLowMs : 0) + 200;
  const runs = tiers.map((t) => {
    const list = allowedSingles[t];
    return runLoad(load, { connections: perStream, durationMs: 3 * o.reuseLowMs + 20_000, until: () => stop, next: (i) => list[i % list.length], onAnswer: record(t) });
  });
  // A random delay: the push lands anywhere in the low tier's confirmation cycle.
  await sleep(300 + Math.round(Math.random() * o.reuseLowMs));
  const wp = await push('watermark', sign.watermark(W), via);
  mark.wm = Number(wp.t1);
  const staleSeen = await waitUntil(() => tiers.every((t) => st[t].firstStale) && Number(hr()) > mark.wm + settle * 1e6, o.reuseLowMs + 5000);
  const snp = await push('snapshot', snapW, via);
  mark.snap = Number(snp.t1);
  const resumed = await waitUntil(() => tiers.every((t) => st[t].resumed) && Number(hr()) > mark.snap + settle * 1e6, o.reuseLowMs + 5000);
  stop = true;
  await Promise.all(runs);
  ctx.epoch = W;
  const res = { trial: trial + 1, mode: tiers.join(' + '), via, viaLabel: VIA[via], epoch: E, watermark: W, pushMs: wp.ms, snapshotPushMs: snp.ms, staleSeen, resumed, tiers: {} };
  for (const t of tiers) {
    const ev = st[t].events;
    const old = ev.filter((e) => e.allowed && e.epoch < W);
    const fs_ = st[t].firstStale;
    const rs = st[t].resumed;
    res.tiers[t] = {
      action: actions[t],
      answers: ev.length,
      errors: ev.filter((e) => e.error).length,
      firstStaleMs: fs_ ? nsToMs(fs_.r - mark.wm) : null,
      firstStaleSentMs: fs_ ? nsToMs(fs_.s - mark.wm) : null,
      allowedOldSentAfter: old.filter((e) => e.s > mark.wm).length,
      lastAllowedOldSentMs: old.length ? nsToMs(Math.max(...old.map((e) => e.s)) - mark.wm) : null,
      sentAfterPush: ev.filter((e) => e.s > mark.wm && e.s < mark.snap).length,
      resumeMs: rs ? nsToMs(rs.r - mark.snap) : null,
      resumeSentMs: rs ? nsToMs(rs.s - mark.snap) : null,
    };
  }
  out.watermark.push(res);
  log(`trial ${trial + 1} (${res.mode}, push via ${VIA[via]}): first stale ${tiers.map((t) => `${t} ${res.tiers[t].firstStaleMs?.toFixed(1)} ms`).join(', ')} after the watermark's 200; allowed again ${tiers.map((t) => `${t} ${res.tiers[t].resumeMs?.toFixed(1)} ms`).join(', ')} after the snapshot's`);
  if (!staleSeen || !resumed) throw new Error(`watermark trial ${trial + 1} (${res.mode}): ${!staleSeen ? 'no stale_snapshot answer' : 'answers did not resume'} in time: ${JSON.stringify(res)}`);
}

// ---- 5. the race -------------------------------------------------------------------------------

async function phaseRace(ctx, pools, out) {
  out.race = [];
  const races = ctx.relay
    ? [['high', 'relay'], ['high', 'main'], ['low', 'relay'], ['low', 'main']]
    : [['high', 'main'], ['low', 'main']];
  for (const [t, via] of races) await race(ctx, pools, out, t, via);
}

/** One race: --race-checks checks of tier `t` racing a watermark pushed `via` an isolate (at a
 *  random moment, or at 30% of the checks if that comes first); no check sent after the push's
 *  200 may be allowed from an older epoch (low: not after the reuse window). Then the next
 *  snapshot, and checks until one is allowed at the new epoch. */
async function race(ctx, { allowedSingles }, out, t, via) {
  const { o, raceClient, push, check, heartbeatOnce, origin: { sign, actions } } = ctx;
  log(`phase 5: race, ${o.raceChecks} \`${actions[t]}\` (${t}) checks on ${o.raceConnections} connections, watermark via ${VIA[via]}`);
  const N = o.raceChecks;
  const E = ctx.epoch;
  const W = E + 1;
  const wmBytes = sign.watermark(W);
  await heartbeatOnce(via);
  const S = new Float64Array(N).fill(NaN);
  const R = new Float64Array(N).fill(NaN);
  const allowed = new Uint8Array(N);
  const ep = new Float64Array(N).fill(NaN);
  const reason = new Array(N);
  let errors = 0;
  let firstError = null;
  let pushP = null;
  let pushAtIndex = null;
  const tRace = hr();
  const trigger = (i) => {
    if (pushP) return;
    pushAtIndex = i;
    pushP = push('watermark', wmBytes, via);
    pushP.catch(() => {}); // awaited below
  };
  const pushAt = Math.floor(N * 0.3);
  // A random moment (not a multiple of the reuse window after the heartbeat above), or the
  // 30% mark if that comes first.
  const pushDelayMs = 1000 + Math.round(Math.random() * o.reuseLowMs);
  const timer = setTimeout(() => trigger(null), pushDelayMs);
  const list = allowedSingles[t];
  const r = await runLoad(raceClient, {
    count: N,
    durationMs: 120_000,
    next: (i) => {
      if (i === pushAt) trigger(i);
      return list[i % list.length];
    },
    onAnswer: (i, a) => {
      S[i] = Number(a.t0);
      R[i] = Number(a.t1);
      if (a.error || a.status !== 200) {
        errors++;
        firstError ??= a.error ?? `HTTP ${a.status}: ${a.text}`;
        return;
      }
      const d = JSON.parse(a.text);
      allowed[i] = d.allowed ? 1 : 0;
      ep[i] = d.epoch ?? NaN;
      reason[i] = d.reason;
    },
  });
  clearTimeout(timer);
  trigger(null);
  const wp = await pushP;
  const p200 = Number(wp.t1);
  const win = t === 'high' ? 0 : o.reuseLowMs * 1e6;
  const f = raceFigures({ S, R, allowed, ep, reason }, { N, W, p200, win });
  const res = {
    tier: t, via, viaLabel: VIA[via], action: actions[t], checks: r.n, connections: o.raceConnections, seconds: r.elapsedMs / 1000, errors, firstError,
    pushAtCheck: pushAtIndex, pushSentMs: nsToMs(Number(wp.t0 - tRace)), push200Ms: nsToMs(p200 - Number(tRace)), pushMs: wp.ms,
    windowMs: win / 1e6, inflight: f.inflight, sentAfter: f.sentAfter, sentAfterWindow: f.sentAfterWindow, allowedOld: f.allowedOld, oldAfter: f.oldAfter,
    oldInWindow: f.oldInWindow, violations: f.violations, stale: f.stale, staleAfter: f.staleAfter,
    lastOldSentMs: Number.isFinite(f.lastOldSent) ? nsToMs(f.lastOldSent) : null,
    firstStaleMs: Number.isFinite(f.firstStaleAfter) ? nsToMs(f.firstStaleAfter) : null, other: f.other,
  };
  out.race.push(res);
  // The next snapshot (signed now: its issuedAt is the origin's confirmation), then checks until
  // one is allowed at the new epoch (low: after the reuse window at most).
  const sp2 = await push('snapshot', sign.snapshot(W), via);
  ctx.epoch = W;
  const ts = hr();
  let again = null;
  const resumedOk = await (async () => {
    const end = Date.now() + o.reuseLowMs + 5000;
    while (Date.now() < end) {
      again = await check(allowedSingles[t][0]);
      if (again.json.allowed && again.json.epoch === W) return true;
      await sleep(5);
    }
    return false;
  })();
  res.resumed = { ok: resumedOk, ms: nsToMs(Number(again.t1 - ts)), answer: again.json, snapshotPushMs: sp2.ms };
  log(`race ${t} via ${via}: ${res.checks} checks in ${res.seconds.toFixed(1)} s; ${f.sentAfter} sent after the push's 200; violations ${f.violations}; stale ${f.stale}; allowed again ${resumedOk ? `after ${res.resumed.ms.toFixed(1)} ms` : 'NOT within the bound'}`);
  if (!resumedOk) throw new Error(`race ${t} via ${via}: no allowed answer at epoch ${W} after the snapshot: ${again.text}`);
}

/** What a race's answers (send and receive times `S`, `R`; `allowed`, epoch `ep`, `reason`) say
 *  against the watermark `W`'s 200 at `p200` and the reuse window `win` (ns): checks in flight
 *  and sent after it, allowed from an older epoch (within the window, or violations), stale. */
function raceFigures({ S, R, allowed, ep, reason }, { N, W, p200, win }) {
  let inflight = 0;
  let sentAfter = 0;
  let sentAfterWindow = 0;
  let oldAfter = 0;
  let oldInWindow = 0;
  let violations = 0;
  let stale = 0;
  let staleAfter = 0;
  let allowedOld = 0;
  let lastOldSent = -Infinity;
  let firstStaleAfter = Infinity;
  const other = {};
  for (let i = 0; i < N; i++) {
    if (Number.isNaN(S[i])) continue;
    const after = S[i] > p200;
    if (S[i] <= p200 && R[i] > p200) inflight++;
    if (after) sentAfter++;
    if (S[i] > p200 + win) sentAfterWindow++;
    const isOld = allowed[i] === 1 && ep[i] < W;
    if (isOld) {
      allowedOld++;
      lastOldSent = Math.max(lastOldSent, S[i] - p200);
    }
    if (after && isOld) {
      oldAfter++;
      if (S[i] > p200 + win) violations++;
      else oldInWindow++;
    }
    if (reason[i] === 'stale_snapshot') {
      stale++;
      if (after) staleAfter++;
      if (R[i] > p200) firstStaleAfter = Math.min(firstStaleAfter, R[i] - p200);
    } else if (reason[i] && !allowed[i]) {
      other[reason[i]] = (other[reason[i]] ?? 0) + 1;
    }
  }
  return { inflight, sentAfter, sentAfterWindow, allowedOld, oldAfter, oldInWindow, violations, stale, staleAfter, lastOldSent, firstStaleAfter, other };
}

// ---- the verdict -------------------------------------------------------------------------------

/** The exit code: 1 when a check sent after a watermark's 200 was allowed from an older epoch
 *  (past the reuse window for the low tier) or an answer differed from the reference, else 0. */
function verdict(o, out) {
  const violations = out.race.reduce((s, r) => s + r.violations, 0);
  const mismatches = [...out.roundTrips, ...out.paired].reduce((s, r) => s + r.mismatches, 0);
  const wmHighAllowed = out.watermark.reduce((s, w) => s + (w.tiers.high?.allowedOldSentAfter ?? 0), 0);
  const wmLowLate = out.watermark.filter((w) => (w.tiers.low?.lastAllowedOldSentMs ?? -Infinity) > o.reuseLowMs).length;
  let code = 0;
  if (violations > 0 || wmHighAllowed > 0 || wmLowLate > 0) {
    console.error(`error: checks sent after a watermark's 200 were allowed from an older epoch: ${violations} in the races, ${wmHighAllowed} high-tier in the trials, ${wmLowLate} low-tier trial(s) past the reuse window`);
    code = 1;
  }
  if (mismatches > 0) {
    console.error(`error: ${mismatches} answers differ from the reference`);
    for (const r of [...out.roundTrips, ...out.paired]) if (r.mismatchExample) console.error(`  ${r.label ?? r.key}: ${JSON.stringify(r.mismatchExample)}`);
    code = 1;
  }
  return code;
}

function readVersion(name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(repo, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`\n[bench:worker] ${sig}: stopping wrangler`);
    stopAll();
    process.exit(130);
  });
}
process.on('exit', () => stopAll());

main().then((code) => process.exit(code), (e) => {
  console.error('error:', (e && e.stack) || e);
  stopAll();
  process.exit(2);
});
