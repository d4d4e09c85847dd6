#!/usr/bin/env node
// The publisher's propagation benchmark: the release command line (`target/release/edge-authz
// publish`) pushing to two Workers (build/worker.mjs in workerd through Miniflare, each its own
// Durable Object state, listening on 127.0.0.1), with a Markdown report on stdout (progress on
// stderr).
//
//   node bench/publish.mjs            # a few minutes
//   node bench/publish.mjs --quick    # under about a minute
//   node bench/publish.mjs --help
//
// Phases (each its own tenant, so its own journal and its own state at the edges):
//  1. `acme`: one long-running `publish --stdin`; single membership changes written one line at a
//     time, alternating a revocation (user:bob out of group:eng) and a grant (back in), each line
//     written only once the previous change's events are in (revocation: revocation_acknowledged;
//     grant: caught_up of both edges). Then end-to-end visibility: for a few grants, the time from
//     the line's write until a check at each edge answers allowed (polled).
//  2. `oneshot`: whole `edge-authz publish MODEL.json` processes, alternating the model without
//     and with bob: the wall clock of each process (start, journal, pushes, exit).
//  3. `big`: a group of 5,000 members holding 5,000 assignments (bench/publish/models.mjs): its
//     initial snapshot, then cycles of changes through `publish --stdin` (one member out, the
//     group's biggest assignment out, 1,000 members in as one change, and back).
// Correctness checks (a sample of revocations: the user is denied at both edges right after
// revocation_acknowledged; grants become visible; each change is classified as expected; edges
// end on the journal's epoch and digest). Exit code: 0; 1 when a correctness check failed (never
// for a missed speed or size target); 2 on an error (a process failed, a wait timed out, the time
// limit passed). Edges are disposed of and child processes killed in every case.
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
const { killAll, runOnce, StdinPublisher } = await import('./publish/stream.mjs');
const { big, BIG_DEFAULTS, BIGGEST, small } = await import('./publish/models.mjs');
const { renderMarkdown, TARGETS } = await import('./publish/report.mjs');

const HELP = `usage: node bench/publish.mjs [options]
  --quick               fewer repetitions (under about a minute)
  --changes N           single membership changes of phase 1, alternating revocation and grant
                        (default 200; quick 60)
  --visibility N        grants of phase 1 whose visibility at the edges is polled (default 10; quick 5)
  --poll-ms MS          the polling interval of those checks (default 2)
  --check-every K       check every K-th revocation of phase 1 at both edges (default 4; quick 2)
  --oneshot N           one-shot revocation processes of phase 2, each followed by a grant
                        (default 30; quick 10)
  --cycles N            cycles of phase 3 (default 10; quick 3)
  --big-members N       members of group:big (default ${BIG_DEFAULTS.members})
  --big-docs N          documents, and assignments of group:big (default ${BIG_DEFAULTS.docs})
  --add-members N       members added as one change in phase 3 (default 1000)
  --warmup N            changes of phase 1 before the measured ones, reported apart (default 2)
  --gap-ms MS           quiet time required after each change before the next line (default 10;
                        phase 3: at least 100) so that a change's trailing work (journal, a
                        checkpoint) is not counted in the next one
  --json FILE           also write the figures as JSON
  --time-limit S        stop everything after S seconds (default 900; quick 180)
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
      case '--changes': num('changes'); break;
      case '--visibility': num('visibility'); break;
      case '--poll-ms': num('pollMs'); break;
      case '--check-every': num('checkEvery'); break;
      case '--oneshot': num('oneshot'); break;
      case '--cycles': num('cycles'); break;
      case '--big-members': num('bigMembers'); break;
      case '--big-docs': num('bigDocs'); break;
      case '--add-members': num('addMembers'); break;
      case '--gap-ms': num('gapMs'); break;
      case '--warmup': num('warmup'); break;
      case '--time-limit': num('timeLimit'); break;
      default: throw new Error(`unknown option ${a} (see --help)`);
    }
  }
  const q = !!o.quick;
  o.changes ??= q ? 60 : 200;
  o.visibility ??= q ? 5 : 10;
  o.pollMs ??= 2;
  o.checkEvery ??= q ? 2 : 4;
  o.oneshot ??= q ? 10 : 30;
  o.cycles ??= q ? 3 : 10;
  o.bigMembers ??= BIG_DEFAULTS.members;
  o.bigDocs ??= BIG_DEFAULTS.docs;
  o.addMembers ??= 1000;
  o.gapMs ??= 10;
  o.warmup ??= 2;
  o.timeLimit ??= q ? 180 : 900;
  if (o.changes < 2) throw new Error('--changes must be at least 2');
  if (o.checkEvery < 1) throw new Error('--check-every must be at least 1');
  if (o.bigMembers < o.cycles + 2) throw new Error('--big-members must exceed --cycles + 1');
  if (o.bigDocs < 3) throw new Error('--big-docs must be at least 3');
  if (o.addMembers < 1) throw new Error('--add-members must be at least 1');
  return o;
}

const log = (...a) => console.error('[bench:publish]', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** count, p50, p99, max (nearest rank, as `publish --status` computes them), min and mean. */
export function summarize(values) {
  const v = values.filter((x) => x != null && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return { n: 0 };
  return {
    n: v.length,
    min: v[0],
    p50: percentile(v, 50),
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
      if (r.details.length < 5) r.details.push(detail);
      console.error(`CHECK FAILED: ${name}: ${detail}`);
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
  const { BIN, client, edges, originOnDisk } = await importHelpers();
  assert.ok(fs.existsSync(BIN), `${BIN} is missing: cargo build --release`);
  assert.ok(fs.existsSync(path.join(repo, 'build/worker.mjs')), 'build/worker.mjs is missing: scripts/build-worker.sh');

  const checks = new Checks();
  const out = {
    date: new Date().toISOString(),
    options: o,
    environment: {
      node: process.version,
      platform: `${os.platform()} ${os.arch()}`,
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      loadavgBefore: os.loadavg(),
      bin: fileInfo(BIN),
      worker: fileInfo(path.join(repo, 'build/index_bg.wasm')),
      workerd: readVersion('workerd'),
      miniflare: readVersion('miniflare'),
    },
  };

  const all = resources.edges;
  let origin;
  // The binary is copied first: a `cargo build` elsewhere in the tree during the run must not
  // swap the publisher between two measurements.
  const binDir = fs.mkdtempSync(path.join(os.tmpdir(), 'edge-authz-bench-bin-'));
  resources.dirs.push(binDir);
  const bin = path.join(binDir, 'edge-authz');
  fs.copyFileSync(BIN, bin);
  fs.chmodSync(bin, 0o755);
  out.environment.bin.sha256 = crypto.createHash('sha256').update(fs.readFileSync(bin)).digest('hex');
  try {
    origin = await originOnDisk();
    resources.dirs.push(origin.dir);
    // One at a time, so that an edge that started is disposed of even if the next fails to.
    for (let i = 0; i < 2; i++) all.push(...(await edges(origin.pub, 1)));
    const urls = all.map((e) => e.url);
    log(`two edges: ${urls.join(', ')}; journal ${origin.state}`);
    const ctx = {
      o,
      BIN: bin,
      origin,
      urls,
      checks,
      clients: (tenant) => all.map((e) => ({ url: e.url, c: client(e, { tenant }) })),
      common: (tenant) => ['--state', origin.state, '--secret-key', origin.secretKey, '--tenant', tenant, ...urls.flatMap((u) => ['--edge', u])],
    };
    out.single = await phaseSingle(ctx);
    out.oneshot = await phaseOneshot(ctx);
    out.big = await phaseBig(ctx);
  } finally {
    await cleanup();
  }
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
  return { BIN: pub.BIN, edges: pub.edges, originOnDisk: pub.originOnDisk, client: edge.client };
}




// ---- decisions at the edges ---------------------------------------------------------------------

async function decideAt(c, req) {
  const r = await c.check(...req);
  if (r.status !== 200) throw new Error(`check ${req.join(' ')} at an edge: HTTP ${r.status} ${r.body}`);
  return r.json;
}

/** Right after a revocation's acknowledgement: `req` is denied at every edge. */
async function expectDenied(ctx, tenant, req, name, epoch) {
  for (const { url, c } of ctx.clients(tenant)) {
    const d = await decideAt(c, req);
    ctx.checks.record(name, d.allowed === false, `${url} epoch ${epoch}: ${req.join(' ')} → ${JSON.stringify(d)}`);
  }
}

/**
 * Polls `req` at every edge (every `pollMs`) from now until it is allowed; resolves per edge the
 * time from `t0` to the answer that said allowed (null: not within `timeoutMs`).
 */
function untilAllowed(ctx, tenant, req, t0, { pollMs = 2, timeoutMs = 10_000 } = {}) {
  return Promise.all(ctx.clients(tenant).map(async ({ url, c }) => {
    let polls = 0;
    for (;;) {
      const d = await decideAt(c, req);
      polls++;
      const at = performance.now() - t0;
      if (d.allowed) return { url, ms: at, polls, epoch: d.epoch };
      if (at > timeoutMs) return { url, ms: null, polls, last: d };
      await sleep(pollMs);
    }
  }));
}

async function expectAllowed(ctx, tenant, req, name, t0 = performance.now()) {
  const r = await untilAllowed(ctx, tenant, req, t0, { pollMs: 5, timeoutMs: 10_000 });
  for (const x of r) ctx.checks.record(name, x.ms != null, `${x.url}: ${req.join(' ')} still not allowed after 10 s: ${JSON.stringify(x.last)}`);
  return r;
}

/** Every edge holds the journal's epoch and digest, and is not stale. */
async function expectConverged(ctx, tenant, name) {
  const st = await ctx.origin.status(tenant);
  for (const { url, c } of ctx.clients(tenant)) {
    const r = await c.status();
    const s = r.json ?? {};
    ctx.checks.record(name, r.status === 200 && s.epoch === st.epoch && s.digest === st.digest && s.stale === false,
      `${url}: edge epoch ${s.epoch} digest ${String(s.digest).slice(0, 12)} stale ${s.stale}; journal epoch ${st.epoch} digest ${String(st.digest).slice(0, 12)}`);
  }
  for (const e of st.edges) ctx.checks.record(`${name} (journal: lag 0)`, e.lag === 0, `${e.url}: lag ${e.lag}, lastError ${e.lastError}`);
  return st;
}

function expectKind(ctx, r, kind, what) {
  ctx.checks.record(`${what}: issued as ${kind}`, r.kind === kind, `epoch ${r.epoch} issued as ${r.kind}`);
  if (kind === 'revocation') {
    ctx.checks.record('every revocation acknowledged by both edges', r.acknowledged === true,
      `epoch ${r.epoch}: revocation_unacknowledged ${JSON.stringify(r.missing)}`);
  }
}

async function oneShot(ctx, tenant, file) {
  const r = await runOnce(ctx.BIN, ['publish', '--json', ...ctx.common(tenant), file]);
  if (r.code !== 0 && r.code !== 3) throw new Error(`publish ${file} exited ${r.code} (${r.signal ?? ''})\n${r.stderr}`);
  const issued = r.events.find((e) => e.event === 'issued' && e.kind !== 'checkpoint');
  const ack = r.events.find((e) => e.event === 'revocation_acknowledged');
  return {
    code: r.code,
    wallMs: r.wallMs,
    kind: issued?.kind ?? r.events.find((e) => e.event === 'unchanged')?.event,
    epoch: issued?.epoch,
    snapshotBytes: issued?.snapshotBytes,
    deltaBytes: issued?.deltaBytes,
    watermarkBytes: issued?.watermarkBytes,
    ackMs: ack?.ms ?? null,
    acknowledged: issued?.revokes ? !!ack : null,
    pushed: r.events.filter((e) => e.event === 'pushed').map((e) => ({ edge: e.edge, kind: e.kind, bytes: e.bytes })),
    overBudget: r.events.some((e) => e.event === 'over_budget'),
    pending: r.events.find((e) => e.event === 'done')?.pending ?? null,
  };
}

// ---- phase 1: single membership changes through one publish --stdin --------------------------

async function phaseSingle(ctx) {
  const { o, urls } = ctx;
  const tenant = 'acme';
  const BOB = ['user:bob', 'read', 'doc:roadmap'];
  const REVOKE = { op: 'remove_membership', member: 'user:bob', group: 'group:eng' };
  const GRANT = { op: 'add_membership', member: 'user:bob', group: 'group:eng' };
  log(`phase 1: ${o.changes} single membership changes, then ${o.visibility} grants polled at the edges`);

  const init = await oneShot(ctx, tenant, ctx.origin.write(small(tenant)));
  assert.equal(init.kind, 'initial');
  const pub = new StdinPublisher(ctx.BIN, ctx.common(tenant), { label: 'publish --stdin (acme)' });
  const changes = [];
  const checkpoints = [];
  try {
    for (const url of urls) await pub.waitFor((e) => e.event === 'caught_up' && e.edge === url, { what: `caught_up of ${url} at start` });
    await pub.quiet(50);
    // Warm-up: the run's first changes (the Worker's and the publisher's cold paths), reported
    // apart from the measured ones.
    const warmup = [];
    for (let i = 0; i < o.warmup; i++) {
      const revoke = i % 2 === 0;
      const from = pub.events.length;
      const r = await pub.change(revoke ? REVOKE : GRANT, urls);
      r.revoke = revoke;
      expectKind(ctx, r, revoke ? 'revocation' : 'grant', 'single membership change');
      if (revoke) await expectDenied(ctx, tenant, BOB, 'revoked user denied at both edges right after revocation_acknowledged (single changes)', r.epoch);
      warmup.push(r);
      await pub.settle(from, urls, o.gapMs);
    }
    let revocations = 0;
    const base = o.warmup % 2;
    for (let i = 0; i < o.changes; i++) {
      const revoke = (i + base) % 2 === 0;
      const from = pub.events.length;
      const r = await pub.change(revoke ? REVOKE : GRANT, urls);
      r.revoke = revoke;
      expectKind(ctx, r, revoke ? 'revocation' : 'grant', 'single membership change');
      if (revoke && revocations++ % o.checkEvery === 0) {
        await expectDenied(ctx, tenant, BOB, 'revoked user denied at both edges right after revocation_acknowledged (single changes)', r.epoch);
      }
      changes.push(r);
      const cp = await pub.settle(from, urls, o.gapMs);
      if (cp) checkpoints.push({ ...cp, after: r.epoch });
    }
    // The journal's own figures of this run (read-only while the publisher holds the journal).
    const status = await ctx.origin.status(tenant);

    // End-to-end visibility of grants: write the line, poll a check at each edge until allowed.
    const visibility = [];
    for (let i = 0; i < o.visibility; i++) {
      let from = pub.events.length;
      const rev = await pub.change(REVOKE, urls);
      expectKind(ctx, rev, 'revocation', 'single membership change');
      await expectDenied(ctx, tenant, BOB, 'revoked user denied at both edges right after revocation_acknowledged (single changes)', rev.epoch);
      await pub.settle(from, urls, o.gapMs);
      from = pub.events.length;
      const p = pub.change(GRANT, urls); // writes the line synchronously
      const t0 = performance.now();
      const [seen, g] = await Promise.all([untilAllowed(ctx, tenant, BOB, t0, { pollMs: o.pollMs }), p]);
      for (const x of seen) ctx.checks.record('granted user allowed at both edges (visibility polls)', x.ms != null, `${x.url}: not allowed within 10 s: ${JSON.stringify(x.last)}`);
      expectKind(ctx, g, 'grant', 'single membership change');
      visibility.push({ epoch: g.epoch, edges: seen, caughtUpWallMs: g.caughtUpWallMs });
      await pub.settle(from, urls, o.gapMs);
    }
    const end = await pub.end();
    if (end.code !== 0) throw new Error(`publish --stdin (acme) exited ${JSON.stringify(end)}\n${pub.stderr}`);
    const final = await expectConverged(ctx, tenant, 'edges hold the journal\'s epoch and digest at the end');
    const rev = changes.filter((c) => c.revoke);
    const gr = changes.filter((c) => !c.revoke);
    return {
      initial: init,
      changes: changes.length,
      revocation: {
        ackMs: summarize(rev.map((c) => c.ackMs)),
        ackWallMs: summarize(rev.map((c) => c.ackWallMs)),
        issuedWallMs: summarize(rev.map((c) => c.issuedWallMs)),
        ackAfterIssuedMs: summarize(rev.map((c) => c.ackWallMs - c.issuedWallMs)),
        deltaBytes: summarize(rev.map((c) => c.deltaBytes)),
        watermarkBytes: summarize(rev.map((c) => c.watermarkBytes)),
        pushedKinds: kindCounts(rev),
        overBudget: rev.filter((c) => c.overBudget).length,
        status: status.propagation.lastRun.revocation,
      },
      grant: {
        caughtUpWallMs: summarize(gr.map((c) => c.caughtUpWallMs)),
        perEdgeWallMs: summarize(gr.flatMap((c) => Object.values(c.caughtUp))),
        issuedWallMs: summarize(gr.map((c) => c.issuedWallMs)),
        deltaBytes: summarize(gr.map((c) => c.deltaBytes)),
        watermarkBytes: summarize(gr.map((c) => c.watermarkBytes)),
        pushedKinds: kindCounts(gr),
        overBudget: gr.filter((c) => c.overBudget).length,
        status: status.propagation.lastRun.grant,
      },
      statusRun: status.propagation.lastRun.run,
      statusEdges: status.edges.map((e) => ({ url: e.url, epoch: e.epoch, lag: e.lag })),
      statusEpoch: status.epoch,
      warmup: warmup.map((c) => ({ epoch: c.epoch, kind: c.kind, ackMs: c.ackMs, caughtUpWallMs: c.caughtUpWallMs })),
      visibility: {
        n: visibility.length,
        perEdgeMs: summarize(visibility.flatMap((v) => v.edges.map((e) => e.ms))),
        bothMs: summarize(visibility.map((v) => (v.edges.every((e) => e.ms != null) ? Math.max(...v.edges.map((e) => e.ms)) : null))),
        caughtUpWallMs: summarize(visibility.map((v) => v.caughtUpWallMs)),
        polls: summarize(visibility.flatMap((v) => v.edges.map((e) => e.polls))),
      },
      checkpoints,
      final: { epoch: final.epoch, edges: final.edges.map((e) => ({ url: e.url, lag: e.lag })) },
      stderr: pub.stderr.trim() ? pub.stderr.trim().split('\n').slice(-5) : [],
    };
  } finally {
    pub.kill();
  }
}

function kindCounts(changes) {
  const k = {};
  for (const c of changes) for (const p of c.pushed) k[p.kind] = (k[p.kind] ?? 0) + 1;
  return k;
}

// ---- phase 2: one-shot processes ------------------------------------------------------------------

async function phaseOneshot(ctx) {
  const { o } = ctx;
  const tenant = 'oneshot';
  const BOB = ['user:bob', 'read', 'doc:roadmap'];
  log(`phase 2: ${o.oneshot} one-shot revocations (each followed by a one-shot grant)`);
  const withBob = ctx.origin.write(small(tenant));
  const without = small(tenant);
  without.memberships = without.memberships.filter((x) => x.member !== 'user:bob');
  const withoutBob = ctx.origin.write(without);
  const init = await oneShot(ctx, tenant, withBob);
  assert.equal(init.kind, 'initial');
  const revs = [];
  const grants = [];
  for (let i = 0; i < o.oneshot; i++) {
    const r = await oneShot(ctx, tenant, withoutBob);
    expectKind(ctx, r, 'revocation', 'one-shot publish');
    await expectDenied(ctx, tenant, BOB, 'revoked user denied at both edges right after a one-shot publish exits', r.epoch);
    revs.push(r);
    const g = await oneShot(ctx, tenant, withBob);
    expectKind(ctx, g, 'grant', 'one-shot publish');
    grants.push(g);
  }
  await expectAllowed(ctx, tenant, BOB, 'granted user allowed at both edges (after the last one-shot grant)');
  await expectConverged(ctx, tenant, 'edges hold the journal\'s epoch and digest at the end');
  return {
    initial: init,
    revocation: {
      wallMs: summarize(revs.map((r) => r.wallMs)),
      ackMs: summarize(revs.map((r) => r.ackMs)),
      pushedKinds: kindCounts(revs),
      exit3: revs.filter((r) => r.code === 3).length,
    },
    grant: {
      wallMs: summarize(grants.map((r) => r.wallMs)),
      pushedKinds: kindCounts(grants),
      pending: grants.filter((g) => g.pending?.length).length,
    },
  };
}

// ---- phase 3: the big group ---------------------------------------------------------------------------

async function phaseBig(ctx) {
  const { o, urls } = ctx;
  const tenant = 'big';
  const model = big(tenant, { members: o.bigMembers, docs: o.bigDocs });
  const lastDoc = `doc:d${o.bigDocs - 1}`;
  log(`phase 3: group:big with ${o.bigMembers} members and ${model.assignments.length} assignments, ${model.resources.length} resources; ${o.cycles} cycles`);
  const file = ctx.origin.write(model);
  const init = await oneShot(ctx, tenant, file);
  assert.equal(init.kind, 'initial');
  await expectAllowed(ctx, tenant, ['user:m0', 'write', lastDoc], 'big group: a member allowed after the initial snapshot');

  const pub = new StdinPublisher(ctx.BIN, ctx.common(tenant), { label: 'publish --stdin (big)' });
  const steps = {};
  const STEP_NAMES = {
    removeMember: 'remove one member (revocation)',
    removeBiggest: 'remove the group\'s biggest assignment: editor on the org (revocation)',
    addMany: `add ${o.addMembers.toLocaleString('en-US')} members, one change (grant)`,
    readdMember: 'add the member back (grant)',
    readdBiggest: 'add the biggest assignment back (grant)',
    removeMany: `remove those ${o.addMembers.toLocaleString('en-US')} members, one change (revocation)`,
  };
  const checkpoints = [];
  const gap = Math.max(100, o.gapMs);
  try {
    for (const url of urls) await pub.waitFor((e) => e.event === 'caught_up' && e.edge === url, { what: `caught_up of ${url} at start` });
    await pub.quiet(100);
    const step = async (key, value, kind, after) => {
      const from = pub.events.length;
      const r = await pub.change(value, urls, { timeoutMs: 60_000 });
      expectKind(ctx, r, kind, `big group: ${STEP_NAMES[key]}`);
      await after?.(r);
      (steps[key] ??= []).push(r);
      const cp = await pub.settle(from, urls, gap, { timeoutMs: 60_000 });
      if (cp) checkpoints.push({ ...cp, after: `${STEP_NAMES[key]} (epoch ${r.epoch})` });
      return r;
    };
    for (let c = 0; c < o.cycles; c++) {
      const member = `user:m${c}`;
      const other = `user:m${c + 1}`;
      const added = Array.from({ length: o.addMembers }, (_, i) => `user:c${c}n${i}`);
      await step('removeMember', { op: 'remove_membership', member, group: 'group:big' }, 'revocation', (r) =>
        expectDenied(ctx, tenant, [member, 'read', 'doc:d0'], 'big group: removed member denied at both edges right after revocation_acknowledged', r.epoch));
      await step('removeBiggest', { op: 'remove_assignment', ...BIGGEST }, 'revocation', async (r) => {
        await expectDenied(ctx, tenant, [other, 'write', 'doc:d1'], 'big group: write through the removed org assignment denied at both edges right after revocation_acknowledged', r.epoch);
        await expectDenied(ctx, tenant, [other, 'read', lastDoc], 'big group: read of a document reached only through the removed org assignment denied at both edges', r.epoch);
      });
      await step('addMany', added.map((m) => ({ op: 'add_membership', member: m, group: 'group:big' })), 'grant', (r) =>
        expectAllowed(ctx, tenant, [added[added.length - 1], 'read', 'doc:d0'], 'big group: added members allowed at both edges', r.t0));
      await step('readdMember', { op: 'add_membership', member, group: 'group:big' }, 'grant', (r) =>
        expectAllowed(ctx, tenant, [member, 'read', 'doc:d0'], 'big group: re-added member allowed at both edges', r.t0));
      await step('readdBiggest', { op: 'add_assignment', ...BIGGEST }, 'grant', (r) =>
        expectAllowed(ctx, tenant, [other, 'write', lastDoc], 'big group: re-added org assignment allowed at both edges', r.t0));
      await step('removeMany', added.map((m) => ({ op: 'remove_membership', member: m, group: 'group:big' })), 'revocation', (r) =>
        expectDenied(ctx, tenant, [added[0], 'read', 'doc:d0'], 'big group: removed members denied at both edges right after revocation_acknowledged', r.epoch));
      log(`phase 3: cycle ${c + 1}/${o.cycles} done`);
    }
    const end = await pub.end(60_000);
    if (end.code !== 0) throw new Error(`publish --stdin (big) exited ${JSON.stringify(end)}\n${pub.stderr}`);
    await expectConverged(ctx, tenant, 'edges hold the journal\'s epoch and digest at the end');
  } finally {
    pub.kill();
  }
  const rows = Object.entries(steps).map(([key, rs]) => ({
    key,
    label: STEP_NAMES[key],
    n: rs.length,
    kinds: [...new Set(rs.map((r) => r.kind))],
    ops: summarize(rs.map((r) => r.ops)),
    pushedKinds: kindCounts(rs),
    deltaBytes: summarize(rs.map((r) => r.deltaBytes)),
    watermarkBytes: summarize(rs.map((r) => r.watermarkBytes)),
    snapshotBytes: summarize(rs.map((r) => r.snapshotBytes)),
    issuedWallMs: summarize(rs.map((r) => r.issuedWallMs)),
    ackWallMinusIssued: summarize(rs.map((r) => (r.ackWallMs == null ? null : r.ackWallMs - r.issuedWallMs))),
    ackMs: summarize(rs.map((r) => r.ackMs)),
    caughtUpWallMs: summarize(rs.map((r) => r.caughtUpWallMs)),
    overBudget: rs.filter((r) => r.overBudget).length,
  }));
  return {
    model: { members: o.bigMembers, assignments: model.assignments.length, resources: model.resources.length, docs: o.bigDocs, workspaces: BIG_DEFAULTS.workspaces },
    initial: init,
    steps: rows,
    checkpoints,
  };
}

// ---- run -------------------------------------------------------------------------------------------------

/** What main started: disposed of and removed by cleanup(), on every path out. */
const resources = { edges: [], dirs: [] };
let cleaning = null;
function cleanup() {
  cleaning ??= (async () => {
    killAll();
    await Promise.all(resources.edges.map((e) => withTimeout(e.dispose(), 10_000).catch((err) => log(`dispose ${e.url}: ${err.message}`))));
    for (const d of resources.dirs) fs.rmSync(d, { recursive: true, force: true });
  })();
  return cleaning;
}

let stopping = false;
function stopNow(code, why) {
  if (stopping) return;
  stopping = true;
  console.error(`[bench:publish] ${why}: stopping`);
  withTimeout(cleanup(), 15_000).catch(() => {}).finally(() => process.exit(code));
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => stopNow(130, sig));
process.on('exit', () => killAll());

let limit = 900;
try {
  const argv = process.argv.slice(2);
  const i = argv.indexOf('--time-limit');
  limit = i >= 0 ? Number(argv[i + 1]) || limit : argv.includes('--quick') ? 180 : 900;
} catch {
  // parseArgs reports it
}
setTimeout(() => stopNow(2, `error: the benchmark ran past its time limit (${limit} s)`), limit * 1000).unref();

main().then((code) => process.exit(code), async (e) => {
  if (stopping) return; // the time limit or a signal: stopNow exits
  console.error('error:', (e && e.stack) || e);
  await withTimeout(cleanup(), 15_000).catch(() => {});
  process.exit(2);
});
