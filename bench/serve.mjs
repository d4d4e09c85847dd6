#!/usr/bin/env node
// The origin service's benchmark: the release command line as a service (`target/release/edge-authz
// serve`, a child process listening on 127.0.0.1) in front of two Workers (build/worker.mjs in
// workerd through Miniflare, each its own Durable Object state, listening on 127.0.0.1), driven
// through its change API over HTTP, with a Markdown report on stdout (progress on stderr).
//
//   node bench/serve.mjs            # a few minutes
//   node bench/serve.mjs --quick    # under about a minute
//   node bench/serve.mjs --help
//
// Phases:
//  1. Grants through the API on the example tenant (`acme`, examples/acme.json with user:bob in
//     group:eng): `add_membership` of distinct new users to group:eng, each answered 200 before the
//     next is sent (sequential); the same from C concurrent clients (the tenant's job takes writes
//     one at a time: the throughput stays, the latency grows); then a few grants each followed at
//     once by a check `{at_least_epoch: EPOCH}` at both edges (read-your-writes).
//  2. Revocations from the API call to its 200 (`enforced: true`: both edges enforce it), with
//     two edges: on `acme` (user:bob out of group:eng, and back in: a grant), and on `big`
//     (bench/publish/models.mjs: a group of 5,000 members holding 5,000 assignments, loaded with
//     PUT /v1/big/model; one member out, and back in).
// Correctness checks: every change answered 200 as what it is (a revocation `revokes: true,
// enforced: true`); a sample of revocations followed at once by a check at both edges that must
// be denied; a sample of grants checked with `{at_least_epoch}` at both edges, which must be
// allowed; no epoch answered twice; the edges at the journal's epoch and digest at the end.
// Exit code: 0; 1 when a correctness check failed (never for a missed target); 2 on an error (a
// process failed, a wait timed out, the time limit passed). The service is stopped by its PID and
// the edges disposed of in every case.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
// Miniflare names the Worker's modules relative to the working directory, and workerd refuses a
// module name with `..`: run from the repository whatever the caller's directory.
process.chdir(repo);

const { percentile } = await import('./lib/measure.mjs');
const { fileInfo, readVersion, withTimeout } = await import('./lib/env.mjs');
const { big, BIG_DEFAULTS, small } = await import('./publish/models.mjs');
const { killServices, startService } = await import('./serve/service.mjs');
const { renderMarkdown, TARGETS } = await import('./serve/report.mjs');

const HELP = `usage: node bench/serve.mjs [options]
  --quick                 fewer repetitions (under about a minute)
  --grants N              sequential grants of phase 1 (default 300; quick 100)
  --concurrency C         clients of the concurrent grants (default 4)
  --concurrent-grants N   grants sent by those clients, shared among them (default 300; quick 100)
  --rounds R              the sequential and concurrent grants as R rounds of a sequential block
                          then a concurrent block, pooled (default 3)
  --ryw N                 grants each followed at once by a check {at_least_epoch} at both edges
                          (default 20; quick 10)
  --revocations N         revocations on acme (user:bob out of group:eng), each followed by the
                          grant back (default 200; quick 50)
  --big-revocations N     revocations on big (one member out of the 5,000), each followed by the
                          grant back (default 100; quick 10)
  --big-members N         members of group:big (default ${BIG_DEFAULTS.members})
  --big-docs N            documents, and assignments of group:big (default ${BIG_DEFAULTS.docs})
  --check-every K         check every K-th revocation and grant at both edges (default 4; quick 2;
                          every revocation of big is checked)
  --warmup N              grants before the measured series of phase 1, and half as many
                          revocation and grant pairs before those of acme (a quarter on big),
                          reported apart (default 20; quick 10)
  --json FILE             also write the figures as JSON
  --bin FILE              the command line to run as the service (default target/release/edge-authz)
  --time-limit S          stop everything after S seconds (default 900; quick 120)
`;

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    const num = (k) => {
      const n = Number(val());
      if (!Number.isInteger(n) || n < 0) throw new Error(`${a} needs a non-negative integer`);
      o[k] = n;
    };
    switch (a) {
      case '--help': case '-h': o.help = true; break;
      case '--quick': o.quick = true; break;
      case '--json': o.json = val(); break;
      case '--bin': o.bin = val(); break;
      case '--grants': num('grants'); break;
      case '--concurrency': num('concurrency'); break;
      case '--rounds': num('rounds'); break;
      case '--concurrent-grants': num('concurrentGrants'); break;
      case '--ryw': num('ryw'); break;
      case '--revocations': num('revocations'); break;
      case '--big-revocations': num('bigRevocations'); break;
      case '--big-members': num('bigMembers'); break;
      case '--big-docs': num('bigDocs'); break;
      case '--check-every': num('checkEvery'); break;
      case '--warmup': num('warmup'); break;
      case '--time-limit': num('timeLimit'); break;
      default: throw new Error(`unknown option ${a} (see --help)`);
    }
  }
  const q = !!o.quick;
  o.grants ??= q ? 100 : 300;
  o.concurrency ??= 4;
  o.rounds ??= 3;
  o.concurrentGrants ??= q ? 100 : 300;
  o.ryw ??= q ? 10 : 20;
  o.revocations ??= q ? 50 : 200;
  o.bigRevocations ??= q ? 10 : 100;
  o.bigMembers ??= BIG_DEFAULTS.members;
  o.bigDocs ??= BIG_DEFAULTS.docs;
  o.checkEvery ??= q ? 2 : 4;
  o.warmup ??= q ? 10 : 20;
  o.timeLimit ??= q ? 120 : 900;
  if (o.grants < 1) throw new Error('--grants must be at least 1');
  if (o.concurrency < 1) throw new Error('--concurrency must be at least 1');
  if (o.rounds < 1) throw new Error('--rounds must be at least 1');
  if (o.revocations < 1) throw new Error('--revocations must be at least 1');
  if (o.checkEvery < 1) throw new Error('--check-every must be at least 1');
  if (o.bigMembers < 2) throw new Error('--big-members must be at least 2');
  if (o.bigDocs < 3) throw new Error('--big-docs must be at least 3');
  return o;
}

const log = (...a) => console.error('[bench:serve]', ...a);

/** count, p50, p99, max (nearest rank, as `publish --status` computes them), min and mean. */
function summarize(values) {
  const v = values.filter((x) => x != null && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return { n: 0 };
  return {
    n: v.length,
    min: v[0],
    p50: percentile(v, 50),
    p90: percentile(v, 90),
    p99: percentile(v, 99),
    max: v[v.length - 1],
    mean: v.reduce((s, x) => s + x, 0) / v.length,
  };
}

/** The correctness checks: per name, samples and failures (with the first few details). */
class Checks {
  constructor() {
    this.rows = new Map();
  }
  record(name, ok, detail) {
    let r = this.rows.get(name);
    if (!r) this.rows.set(name, (r = { name, samples: 0, failures: 0, details: [] }));
    r.samples++;
    if (!ok) {
      r.failures++;
      if (r.details.length < 5) r.details.push(typeof detail === 'function' ? detail() : detail);
      console.error(`CHECK FAILED: ${name}: ${r.details.at(-1)}`);
    }
    return ok;
  }
  get failed() {
    return [...this.rows.values()].reduce((s, r) => s + r.failures, 0);
  }
  list() {
    return [...this.rows.values()];
  }
}

async function main() {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`error: ${e.message}`);
    return 2;
  }
  if (o.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const tStart = performance.now();
  // Imported here: tests/js/edge.mjs loads the npm package (pkg/) as it starts.
  const helpers = await importHelpers();
  const { client, edges, freePort, originOnDisk } = helpers;
  // --bin: another build of the command line (to compare builds, one run each, a minute apart).
  const BIN = o.bin ? path.resolve(o.bin) : helpers.BIN;
  assert.ok(fs.existsSync(BIN), `${BIN} is missing: cargo build --release`);
  assert.ok(fs.existsSync(path.join(repo, 'build/worker.mjs')), 'build/worker.mjs is missing: scripts/build-worker.sh');

  const checks = new Checks();
  const out = {
    date: new Date().toISOString(),
    command: ['node', 'bench/serve.mjs', ...process.argv.slice(2)].join(' '),
    options: o,
    environment: {
      node: process.version,
      platform: `${os.platform()} ${os.arch()}`,
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      memGiB: os.totalmem() / 2 ** 30,
      loadavgBefore: os.loadavg(),
      bin: fileInfo(BIN),
      worker: fileInfo(path.join(repo, 'build/index_bg.wasm')),
      workerd: readVersion('workerd'),
      miniflare: readVersion('miniflare'),
    },
  };

  // The binary is copied first: a `cargo build` elsewhere in the tree during the run must not
  // swap the service between two measurements.
  const binDir = fs.mkdtempSync(path.join(os.tmpdir(), 'edge-authz-bench-serve-bin-'));
  resources.dirs.push(binDir);
  const bin = path.join(binDir, 'edge-authz');
  fs.copyFileSync(BIN, bin);
  fs.chmodSync(bin, 0o755);
  out.environment.bin.sha256 = crypto.createHash('sha256').update(fs.readFileSync(bin)).digest('hex');

  const origin = await originOnDisk();
  resources.dirs.push(origin.dir);
  // One at a time, so that an edge that started is disposed of even if the next fails to.
  for (let i = 0; i < 2; i++) resources.edges.push(...(await edges(origin.pub, 1)));
  const urls = resources.edges.map((e) => e.url);
  log(`two edges: ${urls.join(', ')}; journals in ${origin.state}`);
  const port = await freePort();
  const t0 = performance.now();
  const svc = await startService(bin, { dir: origin.dir, state: origin.state, secretKey: origin.secretKey, edges: urls, port });
  resources.service = svc;
  out.service = { argv: ['edge-authz', ...svc.argv], pid: svc.pid, startMs: performance.now() - t0 };
  log(`edge-authz serve (pid ${svc.pid}) listening on ${svc.url}`);

  const ctx = {
    o,
    svc,
    checks,
    clients: (tenant) => resources.edges.map((e) => ({ url: e.url, c: client(e, { tenant }) })),
    answered: {},
  };
  out.grants = await phaseGrants(ctx);
  out.revocations = await phaseRevocations(ctx);
  out.big = await phaseBig(ctx);
  for (const [tenant, xs] of Object.entries(ctx.answered)) noEpochTwice(ctx, tenant, xs);
  out.final = {};
  for (const tenant of ['acme', 'big']) out.final[tenant] = await expectConverged(ctx, tenant);
  out.metrics = await scrapeMetrics(svc);
  out.service.stderr = svc.stderr().trim().split('\n').filter((l) => l && !l.includes('listening on')).slice(-200);
  out.service.exit = await svc.stop();
  resources.service = null;
  log(`edge-authz serve stopped: ${JSON.stringify(out.service.exit)}`);
  await cleanup();

  out.environment.loadavgAfter = os.loadavg();
  out.checks = checks.list();
  out.totalSeconds = (performance.now() - tStart) / 1000;
  out.targets = TARGETS;
  process.stdout.write(renderMarkdown(out));
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(out, null, 2) + '\n');
  if (checks.failed > 0) {
    console.error(`error: ${checks.failed} correctness check(s) failed (see the report's Correctness section)`);
    return 1;
  }
  return 0;
}

async function importHelpers() {
  const pub = await import('../tests/js/publisher.mjs');
  const edge = await import('../tests/js/edge.mjs');
  return { BIN: pub.BIN, edges: pub.edges, freePort: pub.freePort, originOnDisk: pub.originOnDisk, client: edge.client };
}




// ---- changes through the API ----------------------------------------------------------------------

/**
 * One change: POST /v1/{tenant}/changes, then (unless `events: false`) the service's events of it
 * read back: its `issued` (and a revocation's `revocation_acknowledged`), the `pushed` events and
 * any checkpoint issued between the call and the answer. Records the answer's checks.
 */
async function change(ctx, tenant, op, { revokes, what, events = true, request = 'changes' } = {}) {
  const { svc } = ctx;
  const from = svc.events.length;
  const r = request === 'model' ? await svc.putModel(tenant, op) : await svc.changes(tenant, op);
  if (r.status >= 500 || !r.json) throw new Error(`${what}: HTTP ${r.status} ${r.text}`);
  const a = r.json;
  const okAnswer = r.status === 200 && Number.isInteger(a.epoch) && a.revokes === revokes && !a.unchanged && (!revokes || a.enforced === true);
  ctx.checks.record(revokes ? `${what}: answered 200 {revokes: true, enforced: true}` : `${what}: answered 200 {revokes: false}`, okAnswer,
    () => `HTTP ${r.status} ${r.text}`);
  if (r.status === 200) (ctx.answered[tenant] ??= []).push({ epoch: a.epoch, label: request === 'model' ? `PUT /v1/${tenant}/model` : JSON.stringify(op) });
  const x = { status: r.status, epoch: a.epoch, revokes: a.revokes, enforced: a.enforced, ms: r.ms, t0: r.t0, t1: r.t1 };
  if (!events || !okAnswer) return x;
  // The events are printed before the answer is sent, but come through another pipe: wait for them.
  const { ev: issued, index: ii } = await svc.waitEvent((e) => e.event === 'issued' && e.kind !== 'checkpoint' && e.epoch === a.epoch,
    { from, timeoutMs: 10_000, what: `issued event of epoch ${a.epoch}` });
  x.kind = issued.kind;
  x.issuedMs = issued.at - r.t0;
  x.patched = issued.patched === true;
  x.deltaBytes = issued.deltaBytes;
  x.watermarkBytes = issued.watermarkBytes;
  x.snapshotBytes = issued.snapshotBytes;
  let last = ii;
  if (revokes) {
    const { ev: ack, index } = await svc.waitEvent((e) => (e.event === 'revocation_acknowledged' || e.event === 'revocation_unacknowledged') && e.epoch === a.epoch,
      { from: ii, timeoutMs: 10_000, what: `revocation_acknowledged of epoch ${a.epoch}` });
    x.ackEventMs = ack.at - r.t0;
    x.ackServerMs = ack.event === 'revocation_acknowledged' ? ack.ms : null;
    last = index;
  }
  // What was printed from the call to the answer (and just after: the pipe may lag the socket).
  // Events are in arrival order: those up to the answer (2 ms of slack), and at least up to the
  // change's own.
  let end = svc.events.length;
  while (end > last + 1 && svc.events[end - 1].at > r.t1 + 2) end--;
  const window = svc.events.slice(from, end);
  x.pushed = svc.events.slice(ii, end).filter((e) => e.event === 'pushed').map((e) => e.kind);
  const cp = window.find((e) => e.event === 'issued' && e.kind === 'checkpoint');
  x.checkpoint = cp ? { epoch: cp.epoch, snapshotBytes: cp.snapshotBytes, deltasSince: cp.deltasSince } : null;
  x.overBudget = window.some((e) => e.event === 'over_budget' && e.epoch === a.epoch);
  x.lastIndex = last;
  return x;
}

async function decideAt(c, req, context) {
  const r = await c.check(...req, context);
  if (r.status !== 200) throw new Error(`check ${req.join(' ')} at an edge: HTTP ${r.status} ${r.body}`);
  return r.json;
}

/** Right after a revocation's 200: `req` is denied at every edge (no context). */
async function expectDenied(ctx, tenant, req, name, epoch) {
  for (const { url, c } of ctx.clients(tenant)) {
    const d = await decideAt(c, req);
    ctx.checks.record(name, d.allowed === false, `${url} epoch ${epoch}: ${req.join(' ')} → ${JSON.stringify(d)}`);
  }
}

/** After a grant's 200: `req` with `{at_least_epoch: epoch}` is allowed at every edge; ms of each. */
async function expectAllowedAt(ctx, tenant, req, name, epoch) {
  const out = [];
  for (const { url, c } of ctx.clients(tenant)) {
    const t = performance.now();
    const d = await decideAt(c, req, { at_least_epoch: epoch });
    const ms = performance.now() - t;
    ctx.checks.record(name, d.allowed === true && d.epoch >= epoch, `${url}: ${req.join(' ')} at_least_epoch ${epoch} → ${JSON.stringify(d)}`);
    out.push({ url, ms, epoch: d.epoch, decision: d.decision ?? d.reason ?? null });
  }
  return out;
}

/** Every edge holds the journal's epoch and digest (GET /v1/{tenant}/status of the service). */
async function expectConverged(ctx, tenant) {
  const name = 'edges hold the journal\'s epoch and digest at the end';
  const r = await ctx.svc.request('GET', `/v1/${tenant}/status`);
  if (r.status !== 200) throw new Error(`GET /v1/${tenant}/status: HTTP ${r.status} ${r.text}`);
  const st = r.json;
  for (const { url, c } of ctx.clients(tenant)) {
    const e = await c.status();
    const s = e.json ?? {};
    ctx.checks.record(name, e.status === 200 && s.epoch === st.epoch && s.digest === st.digest && s.stale === false,
      `${tenant} at ${url}: edge epoch ${s.epoch} digest ${String(s.digest).slice(0, 12)} stale ${s.stale}; journal epoch ${st.epoch} digest ${String(st.digest).slice(0, 12)}`);
  }
  for (const e of st.edges) ctx.checks.record(`${name} (the journal: lag 0)`, e.lag === 0, `${tenant} ${e.url}: lag ${e.lag}, lastError ${e.lastError}`);
  return { epoch: st.epoch, watermark: st.watermark, edges: st.edges.map((e) => ({ url: e.url, lag: e.lag })), propagation: st.propagation };
}

/** Every change the service answered 200 for `tenant` had its own epoch. */
function noEpochTwice(ctx, tenant, xs) {
  const seen = new Map();
  for (const x of xs) {
    if (!Number.isInteger(x.epoch)) continue;
    ctx.checks.record('no epoch answered to two changes (every change of the run, per tenant)', !seen.has(x.epoch), `${tenant}: epoch ${x.epoch} answered to ${seen.get(x.epoch)} and ${x.label}`);
    seen.set(x.epoch, x.label);
  }
}

const grantOp = (member, group = 'group:eng') => ({ op: 'add_membership', member, group });
const revokeOp = (member, group = 'group:eng') => ({ op: 'remove_membership', member, group });

function series(xs, wallMs) {
  return {
    n: xs.length,
    wallMs,
    perSecond: xs.length / (wallMs / 1000),
    ms: summarize(xs.map((x) => x.ms)),
    issuedMs: summarize(xs.map((x) => x.issuedMs)),
    afterIssuedMs: summarize(xs.map((x) => (x.issuedMs == null ? null : x.ms - x.issuedMs))),
    ackEventMs: summarize(xs.map((x) => x.ackEventMs)),
    ackServerMs: summarize(xs.map((x) => x.ackServerMs)),
    issuedToAckMs: summarize(xs.map((x) => (x.ackEventMs == null || x.issuedMs == null ? null : x.ackEventMs - x.issuedMs))),
    afterAckMs: summarize(xs.map((x) => (x.ackEventMs == null ? null : x.ms - x.ackEventMs))),
    deltaBytes: summarize(xs.map((x) => x.deltaBytes)),
    watermarkBytes: summarize(xs.map((x) => x.watermarkBytes)),
    notEnforced: xs.filter((x) => x.enforced === false).length,
    checkpoints: xs.filter((x) => x.checkpoint).map((x) => ({ epoch: x.epoch, ms: x.ms, ...x.checkpoint })),
    withoutCheckpoint: summarize(xs.filter((x) => !x.checkpoint).map((x) => x.ms)),
    overBudget: xs.filter((x) => x.overBudget).length,
    patched: xs.filter((x) => x.patched).length,
    pushed: countKinds(xs.flatMap((x) => x.pushed ?? [])),
    samples: xs.map((x) => ({ epoch: x.epoch, ms: round2(x.ms), issuedMs: round2(x.issuedMs), ackEventMs: round2(x.ackEventMs), client: x.client, checkpoint: !!x.checkpoint })),
    slowest: [...xs].sort((a, b) => b.ms - a.ms).slice(0, 3).map((x) => ({ epoch: x.epoch, ms: x.ms, issuedMs: x.issuedMs, ackEventMs: x.ackEventMs, checkpoint: !!x.checkpoint })),
  };
}

const round2 = (x) => (x == null ? null : Math.round(x * 100) / 100);

function countKinds(list) {
  const k = {};
  for (const p of list) k[p] = (k[p] ?? 0) + 1;
  return k;
}

// ---- phase 1: grants ------------------------------------------------------------------------------

async function phaseGrants(ctx) {
  const { o, svc } = ctx;
  const tenant = 'acme';
  const BOB = ['user:bob', 'read', 'doc:roadmap'];
  log(`phase 1: PUT /v1/acme/model, ${o.grants} sequential grants, ${o.concurrentGrants} from ${o.concurrency} concurrent clients, ${o.ryw} read-your-writes grants`);
  const init = await change(ctx, tenant, small(tenant), { revokes: false, what: 'PUT /v1/acme/model (the example)', request: 'model' });
  ctx.checks.record('PUT /v1/acme/model: an initial epoch', init.kind === 'initial', `issued as ${init.kind}`);
  await expectAllowedAt(ctx, tenant, BOB, 'bob allowed at both edges at the initial epoch', init.epoch);

  const warmup = [];
  for (let i = 0; i < o.warmup; i++) warmup.push(await change(ctx, tenant, grantOp(`user:w${i}`), { revokes: false, what: 'grant (add_membership of a new user)' }));

  // Rounds of a sequential block (each grant sent once the previous one is answered) then a
  // concurrent block (C clients, each sending its next grant once its previous one is answered):
  // both modes see the same model sizes and the same machine, give or take a round.
  const seq = [];
  const conc = [];
  const concCheckpoints = [];
  const blocks = [];
  let seqWall = 0;
  let concWall = 0;
  const share = (n, r) => Math.floor(n / o.rounds) + (r < n % o.rounds ? 1 : 0);
  let si = 0;
  let pi = 0;
  for (let round = 0; round < o.rounds; round++) {
    const ns = share(o.grants, round);
    let t = performance.now();
    for (let k = 0; k < ns; k++, si++) {
      const x = await change(ctx, tenant, grantOp(`user:s${si}`), { revokes: false, what: 'grant (add_membership of a new user)' });
      x.label = `user:s${si}`;
      seq.push(x);
    }
    const sw = performance.now() - t;
    seqWall += sw;
    const nc = share(o.concurrentGrants, round);
    const base = pi;
    let next = 0;
    const from = svc.events.length;
    t = performance.now();
    await Promise.all(Array.from({ length: o.concurrency }, async (_, client) => {
      for (;;) {
        const k = next++;
        if (k >= nc) return;
        const i = base + k;
        const x = await change(ctx, tenant, grantOp(`user:p${i}`), { revokes: false, what: 'grant (add_membership of a new user)', events: false });
        x.label = `user:p${i}`;
        x.client = client;
        conc.push(x);
      }
    }));
    const cw = performance.now() - t;
    concWall += cw;
    pi += nc;
    concCheckpoints.push(...svc.events.slice(from).filter((e) => e.event === 'issued' && e.kind === 'checkpoint' && e.at <= t + cw)
      .map((e) => ({ epoch: e.epoch, snapshotBytes: e.snapshotBytes, deltasSince: e.deltasSince, ms: null })));
    blocks.push({ round, sequential: { n: ns, perSecond: ns / (sw / 1000) }, concurrent: { n: nc, perSecond: nc / (cw / 1000) } });
    log(`phase 1: round ${round + 1}/${o.rounds}: ${ns} sequential grants at ${(ns / (sw / 1000)).toFixed(1)}/s, ${nc} from ${o.concurrency} clients at ${(nc / (cw / 1000)).toFixed(1)}/s`);
  }
  for (let k = 0; k < seq.length; k++) {
    if (k % o.checkEvery === 0 || k === seq.length - 1) {
      await expectAllowedAt(ctx, tenant, [seq[k].label, 'read', 'doc:roadmap'], 'granted user allowed at both edges with {at_least_epoch: EPOCH} (after the series)', seq[k].epoch);
    }
  }
  for (let k = 0; k < conc.length; k++) {
    if (k % o.checkEvery === 0 || k === conc.length - 1) {
      await expectAllowedAt(ctx, tenant, [conc[k].label, 'read', 'doc:roadmap'], 'granted user allowed at both edges with {at_least_epoch: EPOCH} (after the series)', conc[k].epoch);
    }
  }
  // Answers in epoch order: the order the tenant's job took them.
  const byEpoch = [...conc].sort((a, b) => a.epoch - b.epoch);
  const interleaved = byEpoch.reduce((n, x, k) => n + (k > 0 && byEpoch[k - 1].client !== x.client ? 1 : 0), 0);

  // Read-your-writes: a check that names the grant's epoch, sent at once after its 200.
  const ryw = [];
  for (let i = 0; i < o.ryw; i++) {
    const member = `user:r${i}`;
    const x = await change(ctx, tenant, grantOp(member), { revokes: false, what: 'grant (add_membership of a new user)' });
    const seen = await expectAllowedAt(ctx, tenant, [member, 'read', 'doc:roadmap'], 'granted user allowed at both edges with {at_least_epoch: EPOCH} sent right after the 200', x.epoch);
    ryw.push({ ...x, checks: seen });
  }
  return {
    initial: { ms: init.ms, epoch: init.epoch, snapshotBytes: init.snapshotBytes, issuedMs: init.issuedMs, enforced: init.enforced },
    warmup: warmup.map((x) => x.ms),
    rounds: blocks,
    sequential: series(seq, seqWall),
    concurrent: { ...series(conc, concWall), checkpoints: concCheckpoints, clients: o.concurrency, interleaved, perClient: Array.from({ length: o.concurrency }, (_, c) => conc.filter((x) => x.client === c).length) },
    ryw: {
      n: ryw.length,
      grantMs: summarize(ryw.map((x) => x.ms)),
      checkMs: summarize(ryw.flatMap((x) => x.checks.map((c) => c.ms))),
      notEnforced: ryw.filter((x) => x.enforced === false).length,
    },
  };
}

// ---- phase 2: revocations on acme --------------------------------------------------------------

async function phaseRevocations(ctx) {
  const { o } = ctx;
  const tenant = 'acme';
  const BOB = ['user:bob', 'read', 'doc:roadmap'];
  log(`phase 2: ${o.revocations} revocations of user:bob in group:eng (acme), each followed by the grant back`);
  const m = await ctx.svc.request('GET', `/v1/${tenant}/model`);
  if (m.status !== 200) throw new Error(`GET /v1/${tenant}/model: HTTP ${m.status} ${m.text}`);
  const model = { epoch: m.json.epoch, memberships: m.json.model.memberships.length, bytes: Buffer.byteLength(JSON.stringify(m.json.model)) };
  const pair = async (list, k, check) => {
    const r = await change(ctx, tenant, revokeOp('user:bob'), { revokes: true, what: 'revocation (remove_membership)' });
    r.label = `revocation ${k}`;
    if (check) await expectDenied(ctx, tenant, BOB, 'revoked user denied at both edges right after the 200 (acme)', r.epoch);
    const g = await change(ctx, tenant, grantOp('user:bob'), { revokes: false, what: 'grant (add_membership of a new user)' });
    g.label = `grant ${k}`;
    if (check) await expectAllowedAt(ctx, tenant, BOB, 'granted user allowed at both edges with {at_least_epoch: EPOCH} sent right after the 200', g.epoch);
    list.push([r, g]);
  };
  const warm = [];
  for (let i = 0; i < Math.ceil(o.warmup / 2); i++) await pair(warm, `w${i}`, true);
  const pairs = [];
  const t = performance.now();
  for (let i = 0; i < o.revocations; i++) await pair(pairs, i, i % o.checkEvery === 0 || i === o.revocations - 1);
  const wall = performance.now() - t;
  return {
    model,
    warmup: warm.map(([r, g]) => ({ revocation: r.ms, grant: g.ms })),
    revocation: series(pairs.map(([r]) => r), wall),
    grant: series(pairs.map(([, g]) => g), wall),
  };
}

// ---- phase 3: the big group ----------------------------------------------------------------------

async function phaseBig(ctx) {
  const { o } = ctx;
  const tenant = 'big';
  const model = big(tenant, { members: o.bigMembers, docs: o.bigDocs });
  const lastDoc = `doc:d${o.bigDocs - 1}`;
  const bodyBytes = Buffer.byteLength(JSON.stringify(model));
  log(`phase 3: PUT /v1/big/model (group:big: ${o.bigMembers} members, ${model.assignments.length} assignments; ${bodyBytes} bytes), ${o.bigRevocations} revocations of one member`);
  const init = await change(ctx, tenant, model, { revokes: false, what: 'PUT /v1/big/model (the 5,000 x 5,000 group)', request: 'model' });
  ctx.checks.record('PUT /v1/big/model: an initial epoch', init.kind === 'initial', `issued as ${init.kind}`);
  await expectAllowedAt(ctx, tenant, ['user:m0', 'write', lastDoc], 'big group: a member allowed at both edges at the initial epoch', init.epoch);
  const pair = async (list, c) => {
    const member = `user:m${c % o.bigMembers}`;
    const r = await change(ctx, tenant, revokeOp(member, 'group:big'), { revokes: true, what: 'big group: revocation (remove_membership)' });
    r.label = `revocation ${c}`;
    await expectDenied(ctx, tenant, [member, 'read', 'doc:d0'], 'big group: removed member denied at both edges right after the 200', r.epoch);
    const g = await change(ctx, tenant, grantOp(member, 'group:big'), { revokes: false, what: 'big group: grant (add_membership)' });
    g.label = `grant ${c}`;
    if (c % o.checkEvery === 0) await expectAllowedAt(ctx, tenant, [member, 'read', 'doc:d0'], 'big group: re-added member allowed at both edges with {at_least_epoch: EPOCH}', g.epoch);
    list.push([r, g]);
  };
  const warm = [];
  for (let i = 0; i < Math.max(1, Math.ceil(o.warmup / 4)); i++) await pair(warm, o.bigMembers - 1 - i);
  const pairs = [];
  const t = performance.now();
  for (let c = 0; c < o.bigRevocations; c++) {
    await pair(pairs, c);
    if ((c + 1) % 10 === 0) log(`phase 3: ${c + 1}/${o.bigRevocations}`);
  }
  const wall = performance.now() - t;
  return {
    model: { members: o.bigMembers, assignments: model.assignments.length, resources: model.resources.length, docs: o.bigDocs, bodyBytes },
    initial: { ms: init.ms, epoch: init.epoch, snapshotBytes: init.snapshotBytes, issuedMs: init.issuedMs, enforced: init.enforced },
    warmup: warm.map(([r, g]) => ({ revocation: r.ms, grant: g.ms })),
    revocation: series(pairs.map(([r]) => r), wall),
    grant: series(pairs.map(([, g]) => g), wall),
  };
}

/** The service's own view (GET /metrics): its propagation histograms and request counts. */
async function scrapeMetrics(svc) {
  const r = await svc.request('GET', '/metrics');
  if (r.status !== 200) return { status: r.status };
  const out = { propagation: {}, requests: {} };
  for (const line of r.text.split('\n')) {
    let m = line.match(/^edge_authz_propagation_seconds_(sum|count)\{tenant="([^"]+)",direction="([^"]+)"\} ([0-9.e+-]+)$/);
    if (m) {
      const k = `${m[2]} ${m[3]}`;
      (out.propagation[k] ??= {})[m[1]] = Number(m[4]);
      continue;
    }
    m = line.match(/^edge_authz_requests_total\{api="([^"]+)",tenant="([^"]*)",method="([^"]+)",status="(\d+)"\} (\d+)$/);
    if (m) out.requests[`${m[1]} ${m[2]} ${m[3]} ${m[4]}`] = Number(m[5]);
  }
  return out;
}

// ---- run ------------------------------------------------------------------------------------------

/** What main started: stopped, disposed of and removed by cleanup(), on every path out. */
const resources = { service: null, edges: [], dirs: [] };
let cleaning = null;
function cleanup() {
  cleaning ??= (async () => {
    if (resources.service) {
      const svc = resources.service;
      resources.service = null;
      await withTimeout(svc.stop(3_000), 10_000).catch((err) => log(`stop pid ${svc.pid}: ${err.message}`));
    }
    killServices();
    await Promise.all(resources.edges.map((e) => withTimeout(e.dispose(), 10_000).catch((err) => log(`dispose ${e.url}: ${err.message}`))));
    resources.edges = [];
    for (const d of resources.dirs) fs.rmSync(d, { recursive: true, force: true });
  })();
  return cleaning;
}

let stopping = false;
function stopNow(code, why) {
  if (stopping) return;
  stopping = true;
  console.error(`[bench:serve] ${why}: stopping`);
  withTimeout(cleanup(), 15_000).catch(() => {}).finally(() => process.exit(code));
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => stopNow(130, sig));
// The last resort: whatever happened, no service outlives this process.
process.on('exit', () => killServices());

let limit = 900;
{
  const argv = process.argv.slice(2);
  const i = argv.indexOf('--time-limit');
  limit = i >= 0 ? Number(argv[i + 1]) || limit : argv.includes('--quick') ? 120 : 900;
}
setTimeout(() => stopNow(2, `error: the benchmark ran past its time limit (${limit} s)`), limit * 1000).unref();

main().then((code) => process.exit(code), async (e) => {
  if (stopping) return; // the time limit or a signal: stopNow exits
  console.error('error:', (e && e.stack) || e);
  await withTimeout(cleanup(), 15_000).catch(() => {});
  process.exit(2);
});
