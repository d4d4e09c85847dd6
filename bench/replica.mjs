#!/usr/bin/env node
// The npm package's Replica (pkg/src/replica.js) following the built Worker (build/worker.mjs in
// workerd through Miniflare, listening on 127.0.0.1): what a replica costs over a bare evaluator,
// and how soon a revocation reaches it. A Markdown report on stdout (progress on stderr).
//
//   node bench/replica.mjs            # about a minute
//   node bench/replica.mjs --quick    # well under a minute (CI)
//   node bench/replica.mjs --json FILE
//   node bench/replica.mjs --help
//
// Figures (all from one run; the machine is shared, so compare ratios rather than absolutes):
//  1. A `low` check within its reuse window (reuseMs.low 600,000, follow: false) against a bare
//     Evaluator.check on the same snapshot: ns per call of (a) `ev.check()` in a synchronous loop,
//     (b) `await ev.check()` in an async loop (the same await as a Replica's check), (c) `await
//     replica.check()`, (d) `replica.tryCheck()` in a synchronous loop; median of alternating rounds after a warm-up; (c)/(b) and (c)/(a) against
//     the target "within 10% of a bare check".
//  2. `high` checks (each confirms with the feed, a round trip to the local Worker): latency of
//     sequential checks, p50/p99, and what that adds over a bare check; then rounds of concurrent
//     high checks (Promise.all) with the follower off (follow: false), counting the feed round trips
//     they cause (`status().feed.exchanges`).
//  3. Revocation acknowledged to first denial, per tier: a signed watermark carrying the delta that
//     removes a user's only grant is pushed (its 200 is the acknowledgement, as the publisher sees
//     it); replicas, one per tier so that one tier's confirmation does not refresh another's, check
//     that user continuously (every --poll-ms) before and after; the time from the acknowledgement
//     to the end of the first check answering no_grant. With `follow: true` (the long-poll
//     follower) and `follow: false` (a tier learns only when it confirms: `high` at once,
//     `standard` and `low` once their reuse windows pass). The revocation is pushed at a random
//     moment (uniform over the low window without the follower) so that it lands anywhere in the
//     windows. Heartbeats (bare signed watermarks, every --heartbeat-ms) keep the tiers fresh.
// Correctness checks (exit 1): the replica and the bare evaluator agree; a `low` check within its
// window does not touch the feed; every concurrent high check is granted; after a revocation's
// acknowledgement no `high` check started after it is allowed, no `standard`/`low` check started
// after the acknowledgement plus its reuse window is allowed, and the first denial says no_grant at
// the revocation's epoch (not freshness_exceeded). Targets missed never fail the run. Exit 2 on an
// error (the Worker, a push, the time limit). The Worker is disposed of and replicas closed in every
// case.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { hr, percentile } from './lib/measure.mjs';
import { rng } from './lib/rng.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
// Miniflare names the Worker's modules relative to the working directory, and workerd refuses a
// module name with `..`: run from the repository whatever the caller's directory.
process.chdir(repo);

const HELP = `usage: node bench/replica.mjs [options]
  --quick               small counts and short reuse windows (well under a minute)
  --calls N             calls per variant per round of figure 1 (default 200000; quick 50000)
  --rounds N            alternating rounds of figure 1, each variant once per round in a rotating
                        order (default 15; quick 9)
  --warmup N            warm-up calls per variant before figure 1 (default 200000; quick 50000)
  --high N              sequential high checks of figure 2 (default 500; quick 100)
  --concurrent N        concurrent high checks per round of figure 2 (default 1000)
  --concurrent-rounds N rounds of them (default 5; quick 3)
  --revocations N       revocations per follower mode of figure 3 (default 5; quick 3)
  --reuse-standard MS   reuseMs.standard of figure 3's replicas (default 1000, the package's; quick 200)
  --reuse-low MS        reuseMs.low of figure 3's replicas (default 10000, the package's; quick 1000)
  --poll-ms MS          pause between a figure 3 replica's checks (default 1)
  --heartbeat-ms MS     interval of the heartbeats pushed to the Worker (default 1000)
  --seed N              seed of the revocations' random timing (default 1)
  --json FILE           also write the figures as JSON
  --time-limit S        stop everything after S seconds (default 600; quick 120)
  --help                this text
`;

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    const num = (k, min = 0) => {
      const n = Number(val());
      if (!Number.isSafeInteger(n) || n < min) throw new Error(`${a} needs an integer of at least ${min}`);
      o[k] = n;
    };
    switch (a) {
      case '--help': case '-h': o.help = true; break;
      case '--quick': o.quick = true; break;
      case '--json': o.json = val(); break;
      case '--calls': num('calls', 1); break;
      case '--rounds': num('rounds', 1); break;
      case '--warmup': num('warmup'); break;
      case '--high': num('high', 1); break;
      case '--concurrent': num('concurrent', 1); break;
      case '--concurrent-rounds': num('concurrentRounds', 1); break;
      case '--revocations': num('revocations', 1); break;
      case '--reuse-standard': num('reuseStandard', 0); break;
      case '--reuse-low': num('reuseLow', 0); break;
      case '--poll-ms': num('pollMs', 0); break;
      case '--heartbeat-ms': num('heartbeatMs', 100); break;
      case '--seed': num('seed'); break;
      case '--time-limit': num('timeLimit', 1); break;
      default: throw new Error(`unknown option ${a} (see --help)`);
    }
  }
  const q = !!o.quick;
  o.calls ??= q ? 50000 : 200000;
  o.rounds ??= q ? 9 : 15;
  o.warmup ??= q ? 50000 : 200000;
  o.high ??= q ? 100 : 500;
  o.concurrent ??= 1000;
  o.concurrentRounds ??= q ? 3 : 5;
  o.revocations ??= q ? 3 : 5;
  o.reuseStandard ??= q ? 200 : 1000;
  o.reuseLow ??= q ? 1000 : 10000;
  o.pollMs ??= 1;
  o.heartbeatMs ??= 1000;
  o.seed ??= 1;
  o.timeLimit ??= q ? 120 : 600;
  // The example model's high bound is 5 s: heartbeats must come well within it.
  if (o.heartbeatMs > 2000) throw new Error('--heartbeat-ms must be at most 2000 (the high bound is 5,000 ms)');
  return o;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(`bench/replica.mjs: ${e.message}`);
  process.exit(2);
}
if (opts.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const log = (...a) => console.error('[bench:replica]', ...a);
const { startEdge, origin, model, client, pkg } = await import('../tests/js/edge.mjs');
const { freePort } = await import('../tests/js/publisher.mjs');
const { Evaluator, Replica } = pkg;

const FEED_TOKEN = 'bench-feed-token';
const CHECK_TOKEN = 'bench-check-token';
const RESOURCE = 'doc:roadmap';
const TIERS = ['high', 'standard', 'low'];
const ACTION = { low: 'read', standard: 'write', high: 'export' };
// Figure 1's target: a `low` check within its window within 10% of a bare check.
const LOW_TARGET = 1.1;
// Figure 2's target, "far fewer than 1,000" round trips for 1,000 concurrent checks: at most 1%.
const concurrentTarget = (n) => Math.max(1, Math.floor(n / 100));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const pct = percentile;
const random = rng(opts.seed).next;

const failures = [];
function fail(msg) {
  failures.push(msg);
  log(`CORRECTNESS: ${msg}`);
}
// Comparable decision fields (a Replica and a bare evaluator on the same state answer the same).
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// ---------------------------------------------------------------------------------------------
// The Worker, the origin and the model.

// user:steady: admin of org:acme through group:steady, never revoked (figures 1 and 2).
// user:r{k}: admin of org:acme through group:r{k} only, revoked by removing that membership
// (figure 3), so every tier of theirs goes from granted to no_grant.
const REVOCABLE = 2 * opts.revocations;
const initial = model((m) => {
  m.memberships.push({ member: 'user:steady', group: 'group:steady' });
  m.assignments.push({ principal: 'group:steady', role: 'admin', resource: 'org:acme' });
  for (let k = 0; k < REVOCABLE; k++) {
    m.memberships.push({ member: `user:r${k}`, group: `group:r${k}` });
    m.assignments.push({ principal: `group:r${k}`, role: 'admin', resource: 'org:acme' });
  }
});

const o = origin('acme');
const pub = o.keys.publicKey;
let edge = null;
let edgeUrl = null;
let heartbeat = null;
const replicas = [];
const evaluators = [];
let cleaned = false;

async function cleanup() {
  if (cleaned) return;
  cleaned = true;
  if (heartbeat) clearInterval(heartbeat);
  for (const r of replicas) {
    try {
      r.close();
    } catch {
      // already closed
    }
  }
  for (const ev of evaluators) {
    try {
      ev.free();
    } catch {
      // already freed
    }
  }
  try {
    await chain;
  } catch {
    // a failed push was reported where it happened
  }
  if (edge) await edge.dispose();
}

const watchdog = setTimeout(async () => {
  log(`the time limit (${opts.timeLimit} s) passed: stopping`);
  await cleanup().catch(() => {});
  process.exit(2);
}, opts.timeLimit * 1000);
watchdog.unref();
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, async () => {
    log(`${sig}: stopping`);
    await cleanup().catch(() => {});
    process.exit(130);
  });
}

function newReplica(options) {
  const r = new Replica({ tenant: 'acme', publicKeys: [pub], feed: edgeUrl, token: FEED_TOKEN, ...options });
  replicas.push(r);
  return r;
}
function closeReplica(r) {
  r.close();
  replicas.splice(replicas.indexOf(r), 1);
}
function newEvaluator(snapshot) {
  const ev = new Evaluator({ tenant: 'acme', publicKeys: [pub] });
  evaluators.push(ev);
  const r = ev.loadSnapshot(snapshot);
  if (!r.applied) throw new Error(`the bare evaluator did not load the snapshot: ${JSON.stringify(r)}`);
  return ev;
}

// Pushes go one at a time (heartbeats never overlap a revocation).
let chain = Promise.resolve();
function serial(f) {
  const p = chain.then(f);
  chain = p.catch(() => {});
  return p;
}
let current = initial;
let epoch = 1;
let watermark = 0;
let heartbeats = 0;
let pushError = null;

async function revoke(k) {
  return serial(async () => {
    const next = structuredClone(current);
    next.memberships = next.memberships.filter((x) => !(x.member === `user:r${k}` && x.group === `group:r${k}`));
    const d = o.delta(current, next, epoch, epoch + 1);
    const bytes = o.watermark(epoch + 1, d.delta);
    const sent = performance.now();
    const r = await client(edge).push('watermark', bytes);
    const ack = performance.now();
    if (r.status !== 200 || r.json?.watermark !== epoch + 1 || r.json?.delta?.applied !== true) {
      throw new Error(`the revocation of user:r${k} was answered ${r.status} ${r.body}`);
    }
    current = next;
    epoch += 1;
    watermark = epoch;
    return { ack, pushMs: ack - sent, epoch };
  });
}

// One heartbeat at once (resolved once the Worker took it), then every --heartbeat-ms.
function startHeartbeats() {
  const beat = () =>
    serial(async () => {
      const r = await client(edge).push('watermark', o.watermark(watermark));
      if (r.status !== 200) throw new Error(`a heartbeat was answered ${r.status} ${r.body}`);
      heartbeats++;
    }).catch((e) => {
      pushError ??= e;
      log(`heartbeat: ${e.message}`);
    });
  heartbeat = setInterval(beat, opts.heartbeatMs);
  return beat();
}

// ---------------------------------------------------------------------------------------------
// Figure 1: a `low` check within its window against a bare check.

async function figureLow(snapshot) {
  log(`figure 1: low within its window vs a bare check, ${opts.rounds} rounds x ${opts.calls} calls per variant`);
  const ev = newEvaluator(snapshot);
  // A second bare evaluator on the same snapshot, in its own (identical) loop: two evaluators
  // doing the same work differ by a few percent from run to run (where the JIT places the
  // loops, where each instance's memory lies), so the synchronous baseline is the mean of both.
  const ev2 = newEvaluator(snapshot);
  const rep = newReplica({ follow: false, reuseMs: { low: 600000, standard: 1000 } });
  await rep.ready();
  const REQS = [
    ['user:steady', 'read', RESOURCE], // granted (admin through group:steady)
    ['user:alice', 'read', RESOURCE], // granted
    ['user:bob', 'read', RESOURCE], // no_grant
    ['user:mallory', 'read', RESOURCE], // suspended
  ];
  const allowedFlags = [];
  for (const q of REQS) {
    const a = ev.check(...q);
    const b = await rep.check(...q);
    if (!same(a, b)) fail(`figure 1: the replica and the bare evaluator disagree on ${q.join(' ')}: ${JSON.stringify(b)} vs ${JSON.stringify(a)}`);
    if (a.tier !== 'low') fail(`figure 1: ${q.join(' ')} is not a low decision: ${JSON.stringify(a)}`);
    allowedFlags.push(a.allowed);
  }
  const exchangesBefore = rep.status().feed.exchanges;

  const variants = {
    a: (n) => {
      let allowed = 0;
      const t0 = hr();
      for (let i = 0; i < n; i++) {
        const q = REQS[i & 3];
        if (ev.check(q[0], q[1], q[2]).allowed) allowed++;
      }
      return [Number(hr() - t0) / n, allowed];
    },
    e: (n) => {
      let allowed = 0;
      const t0 = hr();
      for (let i = 0; i < n; i++) {
        const q = REQS[i & 3];
        if (ev2.check(q[0], q[1], q[2]).allowed) allowed++;
      }
      return [Number(hr() - t0) / n, allowed];
    },
    b: async (n) => {
      let allowed = 0;
      const t0 = hr();
      for (let i = 0; i < n; i++) {
        const q = REQS[i & 3];
        if ((await ev.check(q[0], q[1], q[2])).allowed) allowed++;
      }
      return [Number(hr() - t0) / n, allowed];
    },
    c: async (n) => {
      let allowed = 0;
      const t0 = hr();
      for (let i = 0; i < n; i++) {
        const q = REQS[i & 3];
        if ((await rep.check(q[0], q[1], q[2])).allowed) allowed++;
      }
      return [Number(hr() - t0) / n, allowed];
    },
    d: (n) => {
      let allowed = 0;
      const t0 = hr();
      for (let i = 0; i < n; i++) {
        const q = REQS[i & 3];
        const d = rep.tryCheck(q[0], q[1], q[2]);
        if (d === undefined) fail('figure 1: tryCheck asked for a confirmation within the window');
        if (d.allowed) allowed++;
      }
      return [Number(hr() - t0) / n, allowed];
    },
  };
  const count = (xs) => xs.filter(Boolean).length;
  const expected = (n) => Math.floor(n / 4) * count(allowedFlags) + count(allowedFlags.slice(0, n % 4));
  const run = async (v, n) => {
    const [ns, allowed] = await variants[v](n);
    if (allowed !== expected(n)) fail(`figure 1: variant (${v}) allowed ${allowed} of ${n} calls, expected ${expected(n)}`);
    return ns;
  };
  for (const v of ['a', 'e', 'b', 'c', 'd']) await run(v, opts.warmup);
  const samples = { a: [], e: [], b: [], c: [], d: [] };
  const orders = [
    ['a', 'e', 'b', 'c', 'd'],
    ['e', 'b', 'c', 'd', 'a'],
    ['b', 'c', 'd', 'a', 'e'],
    ['c', 'd', 'a', 'e', 'b'],
    ['d', 'a', 'e', 'b', 'c'],
  ];
  for (let r = 0; r < opts.rounds; r++) {
    for (const v of orders[r % orders.length]) samples[v].push(await run(v, opts.calls));
    log(`  round ${r + 1}: a ${samples.a.at(-1).toFixed(0)} ns, a′ ${samples.e.at(-1).toFixed(0)} ns, b ${samples.b.at(-1).toFixed(0)} ns, c ${samples.c.at(-1).toFixed(0)} ns, d ${samples.d.at(-1).toFixed(0)} ns`);
  }
  const exchanges = rep.status().feed.exchanges - exchangesBefore;
  if (exchanges !== 0) fail(`figure 1: low checks within their window made ${exchanges} feed round trips`);
  closeReplica(rep);
  const range = (xs) => [Math.min(...xs), Math.max(...xs)];
  const roundRatios = (xs, ys) => {
    const r = xs.map((x, i) => x / ys[i]);
    return { median: median(r), min: Math.min(...r), max: Math.max(...r) };
  };
  const a = median(samples.a);
  const b = median(samples.b);
  const c = median(samples.c);
  const d = median(samples.d);
  const a2 = median(samples.e);
  const base = (a + a2) / 2;
  const syncBase = samples.a.map((x, i) => (x + samples.e[i]) / 2);
  return {
    calls: opts.calls,
    rounds: opts.rounds,
    warmup: opts.warmup,
    nsPerCall: { syncBare: a, syncBare2: a2, syncBase: base, awaitBare: b, replicaLow: c, replicaTry: d },
    samples,
    ratio: { bareOverBare: a2 / a, replicaOverAwaitBare: c / b, replicaOverSyncBare: c / base, tryOverSyncBare: d / base },
    // The same ratios round by round (the variants of one round ran back to back).
    roundRatio: {
      replicaOverAwaitBare: roundRatios(samples.c, samples.b),
      bareOverBare: roundRatios(samples.e, samples.a),
      replicaOverSyncBare: roundRatios(samples.c, syncBase),
      tryOverSyncBare: roundRatios(samples.d, syncBase),
    },
    rangeNs: { syncBare: range(samples.a), syncBare2: range(samples.e), awaitBare: range(samples.b), replicaLow: range(samples.c), replicaTry: range(samples.d) },
    target: LOW_TARGET,
    met: {
      replicaOverAwaitBare: c / b <= LOW_TARGET,
      replicaOverSyncBare: c / base <= LOW_TARGET,
      tryOverSyncBare: d / base <= LOW_TARGET,
    },
    feedRoundTrips: exchanges,
  };
}

// ---------------------------------------------------------------------------------------------
// Figure 2: high checks.

async function figureHigh() {
  log(`figure 2: ${opts.high} sequential high checks, then ${opts.concurrentRounds} x ${opts.concurrent} concurrent`);
  const REQ = ['user:steady', 'export', RESOURCE];
  const rep = newReplica({ follow: false });
  await rep.ready();
  // A bare evaluator on the state the Worker holds, signed now (so fresh for the high bound).
  const ev = newEvaluator(o.snapshot(current, epoch));
  const bareNs = [];
  for (let i = 0; i < 2000; i++) ev.check(...REQ);
  for (let i = 0; i < Math.max(1000, opts.high); i++) {
    const t0 = hr();
    const d = ev.check(...REQ);
    bareNs.push(Number(hr() - t0));
    if (!d.allowed) fail(`figure 2: the bare high check was denied: ${JSON.stringify(d)}`);
  }
  // Warm-up of the round trip (connections, the Worker's code).
  for (let i = 0; i < 20; i++) await rep.check(...REQ);
  const before = rep.status().feed.exchanges;
  const highNs = [];
  for (let i = 0; i < opts.high; i++) {
    const t0 = hr();
    const d = await rep.check(...REQ);
    highNs.push(Number(hr() - t0));
    if (!d.allowed || d.tier !== 'high' || d.epoch !== epoch) fail(`figure 2: high check ${i}: ${JSON.stringify(d)}`);
  }
  const sequentialTrips = rep.status().feed.exchanges - before;
  if (sequentialTrips < opts.high) fail(`figure 2: ${opts.high} high checks made only ${sequentialTrips} feed round trips`);
  bareNs.sort((x, y) => x - y);
  highNs.sort((x, y) => x - y);

  const rounds = [];
  for (let r = 0; r < opts.concurrentRounds; r++) {
    const b = rep.status().feed.exchanges;
    const t0 = performance.now();
    const ds = await Promise.all(Array.from({ length: opts.concurrent }, () => rep.check(...REQ)));
    const wallMs = performance.now() - t0;
    const trips = rep.status().feed.exchanges - b;
    const denied = ds.filter((d) => !d.allowed).length;
    if (denied) fail(`figure 2: ${denied} of ${opts.concurrent} concurrent high checks were denied: ${JSON.stringify(ds.find((d) => !d.allowed))}`);
    rounds.push({ feedRoundTrips: trips, wallMs });
    log(`  concurrent round ${r + 1}: ${trips} feed round trips, ${wallMs.toFixed(1)} ms`);
  }
  closeReplica(rep);
  const trips = rounds.map((x) => x.feedRoundTrips);
  const target = concurrentTarget(opts.concurrent);
  return {
    sequential: {
      checks: opts.high,
      bareNs: { p50: pct(bareNs, 50), p99: pct(bareNs, 99), n: bareNs.length },
      highNs: { p50: pct(highNs, 50), p99: pct(highNs, 99), max: highNs.at(-1) },
      addedNs: { p50: pct(highNs, 50) - pct(bareNs, 50), p99: pct(highNs, 99) - pct(bareNs, 99) },
      feedRoundTrips: sequentialTrips,
    },
    concurrent: {
      checks: opts.concurrent,
      rounds,
      feedRoundTrips: { median: median(trips), max: Math.max(...trips) },
      wallMs: { median: median(rounds.map((x) => x.wallMs)) },
      target,
      met: Math.max(...trips) <= target,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Figure 3: revocation acknowledged to first denial.

// Checks `user` on one replica every pollMs until stopped; every check's start and end.
function poller(rep, tier, state) {
  const seen = [];
  const action = ACTION[tier];
  const done = (async () => {
    while (!state.stop) {
      const user = state.user;
      const start = performance.now();
      let d;
      try {
        d = await rep.check(user, action, RESOURCE);
      } catch (e) {
        d = { error: e.code ?? String(e) };
      }
      const end = performance.now();
      seen.push({ user, start, end, d });
      if (opts.pollMs > 0) await sleep(opts.pollMs);
      else await new Promise((r) => setImmediate(r));
    }
  })();
  return { seen, done };
}

async function figureRevocation(follow, users) {
  const reuse = { standard: opts.reuseStandard, low: opts.reuseLow };
  const windowOf = { high: 0, ...reuse };
  const label = `follow: ${follow}`;
  log(`figure 3 (${label}): ${users.length} revocations, reuseMs ${JSON.stringify(reuse)}`);
  const reps = {};
  for (const t of TIERS) reps[t] = newReplica({ follow, reuseMs: reuse });
  await Promise.all(TIERS.map((t) => reps[t].ready()));
  const firstDenialMs = { high: [], standard: [], low: [] };
  const pushMs = [];
  const checks = { high: 0, standard: 0, low: 0 };
  const violations = { high: 0, standard: 0, low: 0 };
  for (const k of users) {
    const user = `user:r${k}`;
    const state = { user, stop: false };
    const polls = Object.fromEntries(TIERS.map((t) => [t, poller(reps[t], t, state)]));
    // Each tier granted before (the pollers running), then a random wait so that the revocation
    // lands anywhere in the reuse windows (without the follower) or between heartbeats (with it).
    const grantedBy = performance.now() + 10000;
    while (!TIERS.every((t) => polls[t].seen.some((s) => s.d.allowed))) {
      if (performance.now() > grantedBy) throw new Error(`${label}: ${user} was never granted on every tier`);
      await sleep(5);
    }
    await sleep(random() * (follow ? opts.heartbeatMs : Math.max(opts.reuseLow, opts.reuseStandard)));
    const { ack, pushMs: p, epoch: revokedEpoch } = await revoke(k);
    pushMs.push(p);
    // Until every tier denied once, or past the longest window (and a margin).
    const deadline = ack + Math.max(reuse.low, reuse.standard) + 5000;
    const deniedOn = (t) => polls[t].seen.some((s) => s.end >= ack && s.d.allowed === false);
    while (!TIERS.every(deniedOn) && performance.now() < deadline) await sleep(5);
    state.stop = true;
    await Promise.all(TIERS.map((t) => polls[t].done));
    const row = [];
    for (const t of TIERS) {
      const seen = polls[t].seen;
      checks[t] += seen.length;
      for (const s of seen) {
        if (s.d.error) fail(`${label}: a ${t} check of ${user} failed: ${s.d.error}`);
      }
      // The guarantee: no check started after the acknowledgement (plus the tier's window) allowed;
      // `high` strictly, the windows with 1 ms for the replica's millisecond clock.
      const bound = ack + (windowOf[t] ? windowOf[t] + 1 : 0);
      const late = seen.filter((s) => s.d.allowed && s.start > bound);
      violations[t] += late.length;
      if (late.length) {
        fail(`${label}: ${late.length} ${t} checks of ${user} started ${(late[0].start - ack).toFixed(1)} ms after the acknowledgement (window ${windowOf[t]} ms) were allowed: ${JSON.stringify(late[0].d)}`);
      }
      const first = seen.find((s) => s.end >= ack && s.d.allowed === false);
      if (!first) {
        fail(`${label}: ${user} was never denied on ${t} within ${(deadline - ack).toFixed(0)} ms of the acknowledgement`);
        continue;
      }
      if (first.d.reason !== 'no_grant' || first.d.epoch < revokedEpoch) {
        fail(`${label}: the first ${t} denial of ${user} is not the revocation: ${JSON.stringify(first.d)}`);
      }
      firstDenialMs[t].push(first.end - ack);
      row.push(`${t} ${(first.end - ack).toFixed(1)} ms`);
    }
    log(`  ${user} revoked (epoch ${revokedEpoch}, push ${p.toFixed(1)} ms): first denial ${row.join(', ')}`);
  }
  for (const t of TIERS) closeReplica(reps[t]);
  const tiers = {};
  for (const t of TIERS) {
    const xs = firstDenialMs[t];
    tiers[t] = {
      action: ACTION[t],
      windowMs: windowOf[t],
      firstDenialMs: { median: median(xs), max: xs.length ? Math.max(...xs) : NaN, all: xs },
      checks: checks[t],
    };
  }
  return { follow, reuseMs: reuse, revocations: users.length, pushMs: { median: median(pushMs), max: Math.max(...pushMs) }, tiers, violations };
}

// ---------------------------------------------------------------------------------------------
// The report.

const int = (x) => Math.round(x).toLocaleString('en-US');
const fx = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const usOf = (ns) => `${fx(ns / 1000, 2)} µs`;
const msOf = (ns) => `${fx(ns / 1e6, 2)} ms`;
const verdict = (ok) => (ok ? 'met' : '**not met**');

function report(f) {
  const L = [];
  L.push('# Replica benchmark (bench/replica.mjs)');
  L.push('');
  L.push(`${f.meta.node}, ${f.meta.cpus} × ${f.meta.cpuModel}, ${f.meta.platform}; ${f.meta.quick ? '`--quick`' : 'default options'}; load average ${f.meta.loadavg.map((x) => x.toFixed(2)).join(' ')} at the end; ${f.meta.date}.`);
  L.push('The Worker (build/worker.mjs) in workerd through Miniflare on 127.0.0.1, the package from pkg/ (dist/node.cjs), the example model with users added; all figures from this one run. The machine is shared: compare ratios rather than absolutes.');
  L.push('');
  const l = f.low;
  L.push('## 1. A `low` check within its reuse window vs a bare `Evaluator.check`');
  L.push('');
  L.push(`ns per call, median (and range) of ${l.rounds} alternating rounds of ${int(l.calls)} calls each (after ${int(l.warmup)} warm-up calls each); 4 read requests in turn (2 granted, 1 no_grant, 1 suspended); the replica with \`follow: false\`, \`reuseMs.low\` 600,000 (${l.feedRoundTrips} feed round trips during the loops). A ratio is of the medians (the verdict judges it); beside it, the same ratio taken within each round (the variants of a round ran back to back).`);
  L.push('');
  L.push('| figure | measured | target | verdict |');
  L.push('|---|---|---|---|');
  const nsRange = (k) => `${int(l.nsPerCall[k])} ns (rounds ${int(l.rangeNs[k][0])}–${int(l.rangeNs[k][1])})`;
  const ratioRange = (k) => `${fx(l.ratio[k])}× (round by round: median ${fx(l.roundRatio[k].median)}, ${fx(l.roundRatio[k].min)}–${fx(l.roundRatio[k].max)})`;
  L.push(`| (a) \`ev.check()\`, synchronous loop | ${nsRange('syncBare')} | | |`);
  L.push(`| (a′) the same loop on a second bare evaluator | ${nsRange('syncBare2')} | | |`);
  L.push(`| (a′)/(a): two identical bare evaluators (the noise floor) | ${ratioRange('bareOverBare')} | | |`);
  L.push(`| (b) \`await ev.check()\`, async loop | ${nsRange('awaitBare')} | | |`);
  L.push(`| (c) \`await replica.check()\`, \`low\` within its window | ${nsRange('replicaLow')} | | |`);
  L.push(`| (c)/(b): the replica vs a bare check, same await | ${ratioRange('replicaOverAwaitBare')} | ≤ ${fx(LOW_TARGET)}× (within 10% of a bare check) | ${verdict(l.met.replicaOverAwaitBare)} |`);
  L.push(`| (c)/(a,a′): the replica vs a synchronous bare check (the mean of both) | ${ratioRange('replicaOverSyncBare')} | ≤ ${fx(LOW_TARGET)}× (within 10% of a bare check) | ${verdict(l.met.replicaOverSyncBare)} |`);
  L.push(`| (d) \`replica.tryCheck()\`, \`low\` within its window, synchronous loop | ${nsRange('replicaTry')} | | |`);
  L.push(`| (d)/(a,a′): the replica's synchronous path vs a synchronous bare check (the mean of both) | ${ratioRange('tryOverSyncBare')} | ≤ ${fx(LOW_TARGET)}× (within 10% of a bare check) | ${verdict(l.met.tryOverSyncBare)} |`);
  L.push('');
  const h = f.high;
  L.push('## 2. `high` checks: a feed round trip each, shared when concurrent');
  L.push('');
  L.push(`\`user:steady export ${RESOURCE}\`, a replica with \`follow: false\`; heartbeats every ${int(opts.heartbeatMs)} ms. Sequential: ${int(h.sequential.checks)} checks one after another (after 20 warm-up checks), each timed with hrtime; "added" is the replica's percentile minus the bare check's. Concurrent: ${h.concurrent.rounds.length} rounds of ${int(h.concurrent.checks)} checks started together (Promise.all), the difference of \`status().feed.exchanges\`.`);
  L.push('');
  L.push('| figure | measured | target | verdict |');
  L.push('|---|---|---|---|');
  L.push(`| bare \`ev.check()\` (high action), p50 / p99 | ${usOf(h.sequential.bareNs.p50)} / ${usOf(h.sequential.bareNs.p99)} | | |`);
  L.push(`| \`await replica.check()\` \`high\`, sequential, p50 / p99 | ${msOf(h.sequential.highNs.p50)} / ${msOf(h.sequential.highNs.p99)} | | |`);
  L.push(`| added over a bare check, p50 / p99 | ${msOf(h.sequential.addedNs.p50)} / ${msOf(h.sequential.addedNs.p99)} | | |`);
  L.push(`| feed round trips of the ${int(h.sequential.checks)} sequential checks | ${int(h.sequential.feedRoundTrips)} | | |`);
  L.push(`| feed round trips of ${int(h.concurrent.checks)} concurrent \`high\` checks, median / max of ${h.concurrent.rounds.length} rounds | ${int(h.concurrent.feedRoundTrips.median)} / ${int(h.concurrent.feedRoundTrips.max)} | far fewer than ${int(h.concurrent.checks)} (here: ≤ ${int(h.concurrent.target)}) | ${verdict(h.concurrent.met)} |`);
  L.push(`| wall time of ${int(h.concurrent.checks)} concurrent \`high\` checks, median | ${fx(h.concurrent.wallMs.median, 1)} ms | | |`);
  L.push('');
  L.push('## 3. Revocation acknowledged → first denial at a replica');
  L.push('');
  L.push(`A signed watermark carrying the delta that removes the user's only grant, pushed to the Worker; from its 200 (the acknowledgement, as the publisher sees it) to the end of the first check answering \`no_grant\`. One replica per tier (a \`high\` confirmation would otherwise bring the revocation to every tier of the same replica), each checking the user every ${opts.pollMs} ms before and after the push; the push lands at a random moment. A negative figure: the replica denied before the 200 reached the publisher.`);
  L.push('');
  L.push('| replica | tier (action) | reuse window | first denial: median | max | revocations | allowed after ack + window |');
  L.push('|---|---|---|---|---|---|---|');
  for (const r of f.revocation) {
    for (const t of TIERS) {
      const x = r.tiers[t];
      L.push(`| \`follow: ${r.follow}\` | \`${t}\` (${x.action}) | ${x.windowMs ? `${int(x.windowMs)} ms` : 'none'} | ${fx(x.firstDenialMs.median, 1)} ms | ${fx(x.firstDenialMs.max, 1)} ms | ${x.firstDenialMs.all.length} | ${r.violations[t]} |`);
    }
  }
  L.push('');
  L.push(`Revocation push (signed beforehand) to its 200: median ${fx(median(f.revocation.map((r) => r.pushMs.median)), 1)} ms. Heartbeats pushed: ${f.meta.heartbeats}.`);
  L.push('');
  L.push(f.failures.length ? `**${f.failures.length} correctness check(s) failed:**` : 'Correctness checks: all passed.');
  for (const x of f.failures.slice(0, 20)) L.push(`- ${x}`);
  if (f.failures.length > 20) L.push(`- ... and ${f.failures.length - 20} more (all in --json)`);
  L.push('');
  return L.join('\n');
}

// ---------------------------------------------------------------------------------------------

let code = 0;
try {
  const t0 = performance.now();
  const port = await freePort();
  log(`starting the Worker on 127.0.0.1:${port}`);
  edge = await startEdge({ vars: { ORIGIN_PUBLIC_KEYS: pub, FEED_TOKEN, CHECK_TOKEN }, port });
  edgeUrl = `http://127.0.0.1:${port}`;
  const snapshot = o.snapshot(initial, 1);
  const r = await client(edge).push('snapshot', snapshot);
  if (r.status !== 200) throw new Error(`the snapshot push was answered ${r.status} ${r.body}`);

  const low = await figureLow(snapshot);
  // Figure 1 needs none (its low bound is 5 minutes) and runs without their noise; from here on the
  // high tier's 5 s bound needs them.
  await startHeartbeats();
  const high = await figureHigh();
  const revocation = [];
  const users = Array.from({ length: REVOCABLE }, (_, k) => k);
  for (const follow of [true, false]) {
    const f = await figureRevocation(follow, follow ? users.slice(0, opts.revocations) : users.slice(opts.revocations));
    revocation.push(f);
  }
  if (pushError) throw pushError;
  const figures = {
    meta: {
      node: `Node ${process.version}`,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model?.trim() ?? 'unknown CPU',
      platform: `${os.platform()} ${os.arch()}`,
      date: new Date().toISOString(),
      loadavg: os.loadavg(),
      quick: !!opts.quick,
      options: opts,
      heartbeats,
      seconds: (performance.now() - t0) / 1000,
    },
    low,
    high,
    revocation,
    failures,
  };
  process.stdout.write(report(figures));
  process.stdout.write('\n');
  if (opts.json) fs.writeFileSync(opts.json, `${JSON.stringify(figures, null, 2)}\n`);
  log(`done in ${figures.meta.seconds.toFixed(1)} s${failures.length ? `, ${failures.length} correctness check(s) failed` : ''}`);
  if (failures.length) code = 1;
} catch (e) {
  log(`error: ${e.stack ?? e}`);
  code = 2;
} finally {
  await cleanup().catch((e) => {
    log(`cleanup: ${e.message}`);
    code ||= 2;
  });
}
clearTimeout(watchdog);
process.exit(code);
