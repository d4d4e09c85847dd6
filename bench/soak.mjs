#!/usr/bin/env node
// The soak: the local Worker (the built Worker under `wrangler dev` on 127.0.0.1, as the main job
// serves it) under a steady mixed load for minutes while the origin keeps changing the tenant.
//
//   node bench/soak.mjs                  # 180 s, 16 connections
//   node bench/soak.mjs --seconds 600 --connections 32
//   node bench/soak.mjs --quick          # 30 s (a test of the soak itself)
//
// The load: single checks over HTTP/1.1 keep-alive connections, an action of every tier (low,
// standard, high: 40/35/25 %), a third of them for the users the origin revokes. The origin,
// meanwhile: a heartbeat every second; every --change-ms a change, alternately a revocation
// (one more user suspended: a watermark carrying its delta) and a grant (the oldest suspension
// lifted: a bare delta), pushed alternately through the serving isolate and through a relay (a
// second `wrangler dev` whose AUTHORITY is this Worker's Durable Object: another isolate).
//
// Every answer is checked:
// - errors: a request that failed or answered other than 200 (target: none);
// - wrong answers: `allowed` differs from the plain JavaScript reference (bench/lib/reference.mjs)
//   on the model of the epoch the answer names (target: none);
// - stale allows: an `allowed` answer for a user whose revocation the Worker had acknowledged
//   (the push's 200) before the check was sent, later than the tier's documented propagation
//   bound (high: none; standard and low: CONFIRM_REUSE_MS_* when the push went through the other
//   isolate), and sent before the suspension was lifted (target: none).
// Prints throughput, latency percentiles (p50, p99, p99.9) overall and per tier, and the counts.
// Exit code 0; 1 when an error, a wrong answer or a stale allow was seen; 2 when it could not run.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { requirePackage } from '../tests/js/pkg.mjs';
import { percentile } from './lib/measure.mjs';
import { buildReference } from './lib/reference.mjs';
import { hr, makeClient, runLoad } from './worker/client.mjs';
import { largeModel, tierActions, allowedPool, pool } from './worker/model.mjs';
import { startWrangler, stopAll, tempDir, removeTempDir } from './worker/server.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const quick = args.includes('--quick');
const o = {
  seconds: opt('seconds', quick ? 30 : 180),
  connections: opt('connections', 16),
  changeMs: opt('change-ms', 2000),
  heartbeatMs: opt('heartbeat-ms', 1000),
  reuseLowMs: opt('reuse-low-ms', 2000),
  reuseStandardMs: opt('reuse-standard-ms', 1000),
  users: opt('users', 5000),
};
const log = (...a) => console.error('[soak]', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TIERS = ['low', 'standard', 'high'];
const JSON_TYPE = { 'content-type': 'application/json' };
const MSGPACK = { 'content-type': 'application/msgpack' };

async function main() {
  const watchdog = setTimeout(() => {
    console.error('error: the soak ran out of time; stopping wrangler');
    stopAll();
    process.exit(2);
  }, (o.seconds + 300) * 1000);
  watchdog.unref();

  const pkg = requirePackage();
  const base = largeModel({ users: o.users });
  pkg.validateModel(base);
  const tenant = base.tenant;
  const actions = tierActions(base);
  const keys = pkg.generateKeyPair();
  let lastIssued = 0;
  const issuedAt = () => (lastIssued = Math.max(Date.now(), lastIssued + 1));

  // The users the origin will revoke: subjects of allowed requests, each with its requests.
  const targets = [];
  const byUser = new Map();
  for (const t of TIERS) {
    for (const q of allowedPool(base, actions[t], 400, { seed: 31 })) {
      if (!byUser.has(q[0])) byUser.set(q[0], []);
      byUser.get(q[0]).push(q);
    }
  }
  for (const [u, qs] of byUser) if (!base.suspended.includes(u) && !u.startsWith('group:')) targets.push({ user: u, reqs: qs });
  if (targets.length < 20) throw new Error(`only ${targets.length} revocable users in the model`);
  const others = TIERS.flatMap((t) => pool(base, actions[t], 2000, { seed: 5 }).reqs);

  // The origin's state: epoch -> model; suspensions by the soak.
  const models = new Map([[1, base]]);
  const refs = new Map();
  const refOf = (epoch) => {
    if (!refs.has(epoch)) {
      if (!models.has(epoch)) return null;
      refs.set(epoch, buildReference(models.get(epoch)));
    }
    return refs.get(epoch);
  };
  let epoch = 1;
  let current = base;

  const vars = {
    ORIGIN_PUBLIC_KEYS: keys.publicKey,
    CONFIRM_REUSE_MS_LOW: String(o.reuseLowMs),
    CONFIRM_REUSE_MS_STANDARD: String(o.reuseStandardMs),
    LOG_SAMPLE_ALLOWED: '0',
    LOG_SAMPLE_DENIED: '0',
  };
  const registry = tempDir('edge-authz-soak-registry-');
  let server;
  let relay;
  try {
    server = await startWrangler({ repo, vars, log, registry, build: !args.includes('--no-build') });
    relay = await startWrangler({ repo, vars: { ORIGIN_PUBLIC_KEYS: keys.publicKey }, log, registry, relayOf: server });
  } catch (e) {
    await server?.stop();
    removeTempDir(registry);
    throw e;
  }
  const control = { main: makeClient({ port: server.port, connections: 2 }), relay: makeClient({ port: relay.port, connections: 2 }) };
  const load = makeClient({ port: server.port, connections: o.connections });
  const pushes = { n: 0, ms: [], failed: 0, firstError: null };
  const push = async (kind, bytes, via) => {
    const a = await control[via].send(kind === 'snapshot' ? 'PUT' : 'POST', `/v1/${tenant}/${kind}`, Buffer.from(bytes), MSGPACK);
    pushes.n++;
    if (a.error || a.status !== 200) {
      pushes.failed++;
      pushes.firstError ??= a.error ?? `${kind} via ${via}: HTTP ${a.status} ${a.text}`;
      return null;
    }
    pushes.ms.push(Number(a.t1 - a.t0) / 1e6);
    return a;
  };

  const revocations = []; // {user, epoch, via, ackNs, liftSentNs}
  const out = { errors: 0, non200: 0, wrong: 0, unverified: 0, staleAllows: 0, firstProblem: null };
  try {
    if (!(await push('snapshot', pkg.compileSnapshot(base, { epoch: 1, secretKey: keys.secretKey, issuedAt: issuedAt() }), 'main'))) throw new Error(pushes.firstError);
    // The relay reaches the Durable Object once wrangler's dev registry has connected them.
    for (let end = Date.now() + 30_000; ; await sleep(250)) {
      const a = await control.relay.send('POST', `/v1/${tenant}/watermark`, Buffer.from(pkg.signWatermark({ tenant, watermark: 1, secretKey: keys.secretKey, issuedAt: issuedAt() })), MSGPACK);
      if (a.status === 200 && JSON.parse(a.text).epoch === 1) break;
      if (Date.now() > end) throw new Error(`the relay does not reach the authority: ${a.error ?? a.text}`);
    }
    log(`${o.users} users; ${targets.length} revocable; ${o.seconds} s on ${o.connections} connections`);

    // ---- the origin ---------------------------------------------------------------------------
    let running = true;
    let nextTarget = 0;
    const suspendedNow = []; // revocation records, oldest first
    const change = async (k) => {
      const via = k % 4 < 2 ? 'relay' : 'main';
      const next = structuredClone(current);
      const revoke = k % 2 === 0 || suspendedNow.length === 0;
      let rec;
      if (revoke) {
        rec = { user: targets[nextTarget++ % targets.length].user, epoch: epoch + 1, via, ackNs: null, liftSentNs: null };
        if (next.suspended.includes(rec.user)) return;
        next.suspended.push(rec.user);
      } else {
        rec = suspendedNow.shift();
        next.suspended = next.suspended.filter((u) => u !== rec.user);
      }
      const d = pkg.diffModels(current, next, { baseEpoch: epoch, epoch: epoch + 1, secretKey: keys.secretKey, issuedAt: issuedAt() });
      if (d.revokes !== revoke) throw new Error(`the origin classified change ${k} as revokes=${d.revokes}`);
      models.set(epoch + 1, next);
      if (revoke) {
        const a = await push('watermark', pkg.signWatermark({ tenant, watermark: epoch + 1, secretKey: keys.secretKey, issuedAt: issuedAt(), delta: d.delta }), via);
        if (a) {
          rec.ackNs = a.t1;
          revocations.push(rec);
          suspendedNow.push(rec);
        }
      } else {
        rec.liftSentNs = hr();
        await push('delta', d.delta, via);
      }
      epoch += 1;
      current = next;
      // Keep the references of recent epochs only.
      for (const e of refs.keys()) if (e < epoch - 20) refs.delete(e);
    };
    const origin = (async () => {
      let k = 0;
      let nextChange = Date.now() + o.changeMs;
      while (running) {
        await sleep(o.heartbeatMs);
        if (!running) break;
        if (Date.now() >= nextChange) {
          await change(k++);
          nextChange += o.changeMs;
        } else {
          await push('watermark', pkg.signWatermark({ tenant, watermark: epoch, secretKey: keys.secretKey, issuedAt: issuedAt() }), k % 2 ? 'main' : 'relay');
        }
      }
      return k;
    })();

    // ---- the load -----------------------------------------------------------------------------
    const sent = [];
    let seq = 0;
    const pick = (i) => {
      const r = (i * 2654435761) % 100;
      const tier = r < 40 ? 'low' : r < 75 ? 'standard' : 'high';
      const forTarget = i % 3 === 0;
      let q;
      if (forTarget) {
        const t = targets[(i >> 2) % Math.min(targets.length, Math.max(4, nextTarget + 2))];
        const own = t.reqs.filter((x) => x[1] === actions[tier]);
        q = own.length ? own[i % own.length] : [t.user, actions[tier], t.reqs[0][2]];
      } else {
        q = others[(seq++ * 7919) % others.length];
        q = [q[0], actions[tier], q[2]];
      }
      return { q, tier };
    };
    const r = await runLoad(load, {
      durationMs: o.seconds * 1000,
      next: (i) => {
        const { q, tier } = pick(i);
        sent[i] = { q, tier };
        return { method: 'POST', path: `/v1/${tenant}/check`, headers: JSON_TYPE, body: Buffer.from(JSON.stringify({ subject: q[0], action: q[1], resource: q[2] })) };
      },
      onAnswer: (i, a) => {
        const s = sent[i];
        s.t0 = a.t0;
        s.ms = a.error ? NaN : Number(a.t1 - a.t0) / 1e6;
        if (a.error || a.status !== 200) {
          out[a.error ? 'errors' : 'non200']++;
          out.firstProblem ??= a.error ?? `HTTP ${a.status}: ${a.text.slice(0, 200)}`;
          return;
        }
        const d = JSON.parse(a.text);
        s.allowed = d.allowed;
        s.epoch = d.epoch;
        s.reason = d.reason;
        const ref = refOf(d.epoch);
        if (!ref || !['granted', 'no_grant', 'suspended'].includes(d.reason)) {
          out.unverified++;
        } else if (ref.allowed(s.q[0], s.q[1], s.q[2], Date.now()) !== d.allowed) {
          out.wrong++;
          out.firstProblem ??= `wrong answer at epoch ${d.epoch}: ${JSON.stringify(s.q)} -> ${a.text}`;
        }
      },
    });
    running = false;
    const changes = await origin;

    // Stale allows: allowed, for a revoked user, sent after the acknowledgement plus the bound
    // and before the lift was sent.
    const bound = (tier, via) => (tier === 'high' || via === 'main' ? 0 : tier === 'standard' ? o.reuseStandardMs : o.reuseLowMs);
    for (const s of sent) {
      if (!s || !s.allowed) continue;
      for (const rev of revocations) {
        if (rev.user !== s.q[0]) continue;
        const from = rev.ackNs + BigInt(Math.round(bound(s.tier, rev.via) * 1e6));
        if (s.t0 > from && (rev.liftSentNs === null || s.t0 < rev.liftSentNs)) {
          out.staleAllows++;
          out.firstProblem ??= `stale allow: ${JSON.stringify(s.q)} (${s.tier}) at epoch ${s.epoch}, sent ${(Number(s.t0 - rev.ackNs) / 1e6).toFixed(1)} ms after the revocation at epoch ${rev.epoch} (via ${rev.via}) was acknowledged`;
        }
      }
    }
    const answered = sent.filter((s) => s && Number.isFinite(s.ms));
    const lat = (xs) => {
      const v = Float64Array.from(xs.map((s) => s.ms)).sort();
      return { n: v.length, p50: percentile(v, 50), p99: percentile(v, 99), p999: percentile(v, 99.9), max: v[v.length - 1] };
    };
    const tiers = Object.fromEntries(TIERS.map((t) => [t, lat(answered.filter((s) => s.tier === t))]));
    const all = lat(answered);
    const denied = answered.filter((s) => !s.allowed);
    const reasons = {};
    for (const s of denied) reasons[s.reason] = (reasons[s.reason] ?? 0) + 1;
    const pms = Float64Array.from(pushes.ms).sort();
    const fmt = (x) => x.toFixed(2);
    const lines = [
      `soak: ${(r.elapsedMs / 1000).toFixed(0)} s, ${o.connections} connections, ${o.users} users; origin: ${changes} changes (${revocations.length} revocations, epoch 1 -> ${epoch}), ${pushes.n} pushes in all (heartbeats every ${o.heartbeatMs} ms), push p50 ${fmt(percentile(pms, 50))} ms, p99 ${fmt(percentile(pms, 99))} ms, failed ${pushes.failed}`,
      '',
      '| | checks | throughput | p50 | p99 | p99.9 | max |',
      '|---|---|---|---|---|---|---|',
      `| all | ${all.n} | ${(all.n / (r.elapsedMs / 1000)).toFixed(0)}/s | ${fmt(all.p50)} ms | ${fmt(all.p99)} ms | ${fmt(all.p999)} ms | ${fmt(all.max)} ms |`,
      ...TIERS.map((t) => `| ${t} (\`${actions[t]}\`) | ${tiers[t].n} | ${(tiers[t].n / (r.elapsedMs / 1000)).toFixed(0)}/s | ${fmt(tiers[t].p50)} ms | ${fmt(tiers[t].p99)} ms | ${fmt(tiers[t].p999)} ms | ${fmt(tiers[t].max)} ms |`),
      '',
      `errors ${out.errors + out.non200} (failed ${out.errors}, non-200 ${out.non200}); wrong answers ${out.wrong} (${all.n - out.unverified} compared with the reference, ${out.unverified} not comparable: ${JSON.stringify(reasons)} among the denials); stale allows ${out.staleAllows}; allowed ${all.n - denied.length}, denied ${denied.length}`,
    ];
    if (out.firstProblem) lines.push('', `first problem: ${out.firstProblem}`);
    if (pushes.firstError) lines.push('', `first failed push: ${pushes.firstError}`);
    console.log(lines.join('\n'));
    fs.mkdirSync(path.join(repo, 'target'), { recursive: true });
    fs.writeFileSync(path.join(repo, 'target/soak.md'), lines.join('\n') + '\n');
    return out.errors + out.non200 + out.wrong + out.staleAllows + pushes.failed > 0 ? 1 : 0;
  } finally {
    load.close();
    control.main.close();
    control.relay.close();
    await relay.stop();
    await server.stop();
    removeTempDir(registry);
  }
}

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { stopAll(); process.exit(2); });
main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`error: ${e.stack ?? e}`);
    stopAll();
    process.exit(2);
  },
);
