// The markdown report of bench/worker.mjs: round trips per workload, the low-tier target, the
// watermark trials and the race, with notes on how each figure was taken.

const int = (n) => (n == null || !Number.isFinite(n) ? '—' : Math.round(n).toLocaleString('en-US'));
const fix = (n, d) => (n == null || !Number.isFinite(n) ? '—' : n.toFixed(d));
const msf = (x) => (x == null || !Number.isFinite(x) ? '—' : Math.abs(x) < 10 ? fix(x, 2) : Math.abs(x) < 1000 ? fix(x, 1) : int(x));
const pct = (x) => (x == null || !Number.isFinite(x) ? '—' : `${fix(x * 100, 0)}%`);
const ok = (b) => (b == null ? '—' : b ? 'yes' : 'NO');

export const TARGETS = {
  lowOverHealthP99Ms: 1, // a low-tier check adds < 1 ms p99 over an empty Worker's round trip
  lowOverEmptyP50Ms: 0.5, // and < 0.5 ms p50 (paired with the empty Worker, one connection)
  raceViolations: 0,
};

export function renderMarkdown(out) {
  const e = out.environment;
  const m = out.model;
  const o = out.options;
  const L = [];
  L.push(`## edge-authz Worker benchmark (${out.date.slice(0, 10)}, wrangler ${e.wrangler} dev / workerd ${e.workerd}, Node ${e.node}, ${e.cpus} × ${e.cpu ?? 'cpu'})`);
  L.push('');
  L.push(`Model: \`${m.source}\` (tenant \`${m.tenant}\`): ${int(m.resources)} resources, ${int(m.memberships)} memberships, ${int(m.assignments)} assignments; actions per tier: low \`${m.actions.low}\`, standard \`${m.actions.standard}\`, high \`${m.actions.high}\`; freshness ${JSON.stringify(m.freshness)}.`);
  const la = (x) => (x ? x.map((v) => fix(v, 2)).join(' ') : '—');
  L.push(`Served: ${e.served}${e.relay ? `; relay: ${e.relay}` : ''}${e.buildMs != null ? `; scripts/build-worker.sh took ${fix(e.buildMs / 1000, 1)} s first` : ''}${e.buildStamp ? ` (build stamp ${e.buildStamp.slice(0, 12)})` : ''}. Load average before / after: ${la(e.loadavgBefore)} / ${la(e.loadavgAfter)}.`);
  L.push(`Worker: build/index_bg.wasm ${e.wasm ? `${int(e.wasm.bytes)} bytes (${int(e.wasm.gzip)} gzipped)` : 'missing'}; vars CONFIRM_REUSE_MS_LOW=${o.reuseLowMs}, CONFIRM_REUSE_MS_STANDARD=${o.reuseStandardMs}, LOG_SAMPLE_ALLOWED/DENIED=${o.logSample}; wrangler answered ${fix(e.wranglerReadyS, 1)} s after its start.`);
  L.push('');

  const s = out.snapshot;
  L.push('### 1. Snapshot');
  L.push('');
  L.push('| step | figure |');
  L.push('|---|---:|');
  L.push(`| signed snapshot (compileSnapshot, the origin's work) | ${int(s.bytes)} bytes, ${msf(s.signMs)} ms |`);
  L.push(`| PUT /snapshot round trip (Durable Object verifies and stores it) | ${msf(s.pushMs)} ms |`);
  L.push(`| first check after it (the isolate syncs and decodes the snapshot) | ${msf(s.firstCheckMs)} ms |`);
  L.push(`| second check | ${msf(s.secondCheckMs)} ms |`);
  L.push('');

  L.push(`### 2-3. Round trips (${o.connections} keep-alive connections, and 1; ${o.rounds} round${o.rounds > 1 ? 's' : ''} × ${o.seconds} s per workload, interleaved)`);
  L.push('');
  L.push('| workload | tier | connections | requests | req/s | checks/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | client CPU | errors / non-2xx | answers checked / mismatches |');
  L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of out.roundTrips) {
    const checked = r.tier ? `${int(r.verified)} / ${r.mismatches}${r.gated ? ` (${int(r.gated)} gated)` : ''}` : '—';
    L.push(`| ${r.label} | ${r.tier ?? '—'} | ${r.conns} | ${int(r.n)} | ${int(r.reqPerSec)} | ${r.checksPerSec == null ? '—' : int(r.checksPerSec)} | ${msf(r.p50Ms)} | ${msf(r.p90Ms)} | ${msf(r.p99Ms)} | ${msf(r.p999Ms)} | ${msf(r.maxMs)} | ${pct(r.clientCpu)} | ${r.errors} / ${r.non2xx} | ${checked} |`);
  }
  L.push('');
  const h = out.roundTrips.find((r) => r.key === 'health');
  const low = out.roundTrips.find((r) => r.key === 'check-low');
  const std = out.roundTrips.find((r) => r.key === 'check-standard');
  const high = out.roundTrips.find((r) => r.key === 'check-high');
  const h1 = out.roundTrips.find((r) => r.key === 'health-1');
  const low1 = out.roundTrips.find((r) => r.key === 'check-low-1');
  const dP99 = low.p99Ms - h.p99Ms;
  if (out.paired?.length) {
    L.push('Paired: a baseline (GET /health of this Worker, or an empty Worker served by a third wrangler dev: the same proxy and workerd, no code of ours) and the low-tier check alternate request by request, so both see the same background load (the fairest comparison here):');
    L.push('');
    L.push('| baseline | connections | requests (baseline / check) | baseline p50 | check p50 | Δ p50 | baseline p90 | check p90 | baseline p99 | check p99 | **Δ p99** | baseline p99.9 | check p99.9 | errors / non-2xx | answers checked / mismatches |');
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const p of out.paired) {
      L.push(`| ${p.baseline ?? 'GET /health'} | ${p.conns} | ${int(p.health.n)} / ${int(p.check.n)} | ${msf(p.health.p50Ms)} | ${msf(p.check.p50Ms)} | ${msf(p.check.p50Ms - p.health.p50Ms)} | ${msf(p.health.p90Ms)} | ${msf(p.check.p90Ms)} | ${msf(p.health.p99Ms)} | ${msf(p.check.p99Ms)} | **${msf(p.check.p99Ms - p.health.p99Ms)}** | ${msf(p.health.p999Ms)} | ${msf(p.check.p999Ms)} | ${p.errors} / ${p.non2xx} | ${int(p.verified)} / ${p.mismatches} |`);
    }
    L.push('');
  }
  L.push('Separate workloads, over GET /health at the same number of connections (same client, same run):');
  L.push('');
  L.push('| check | connections | p50 − health p50 (ms) | p99 − health p99 (ms) | req/s ÷ health req/s |');
  L.push('|---|---:|---:|---:|---:|');
  for (const r of [low, std, high]) L.push(`| ${r.label} (${r.tier}) | ${r.conns} | ${msf(r.p50Ms - h.p50Ms)} | ${msf(r.p99Ms - h.p99Ms)} | ${fix(r.reqPerSec / h.reqPerSec, 2)} |`);
  if (h1 && low1) L.push(`| ${low1.label} (low) | 1 | ${msf(low1.p50Ms - h1.p50Ms)} | ${msf(low1.p99Ms - h1.p99Ms)} | ${fix(low1.reqPerSec / h1.reqPerSec, 2)} |`);
  L.push('');

  L.push(`### 4. Watermark push → first stale_snapshot (${Math.max(1, Math.floor(o.connections / 2))} connections per tier of checks)`);
  L.push('');
  L.push('A signed watermark one above the held epoch, no delta, pushed while allowed checks run; then the snapshot at that epoch, through the same path. Pushed through *another isolate* (the relay: a second wrangler dev whose AUTHORITY is this Worker\'s Durable Object) or through *the serving isolate* (which then confirms on its next decision, whatever the tier). Times in ms from the moment the push\'s 200 was received (t = 0); "sent at" < 0: the request was already in flight.');
  L.push('');
  L.push('| trial | checks running | push through | tier | watermark push (ms) | first stale_snapshot answered at | its request sent at | allowed older-epoch answers to requests sent after t = 0 | last allowed older-epoch request sent at | snapshot push → first allowed at the new epoch |');
  L.push('|---|---|---|---|---:|---:|---:|---:|---:|---:|');
  for (const w of out.watermark) {
    for (const [t, x] of Object.entries(w.tiers)) {
      L.push(`| ${w.trial} | ${w.mode} | ${w.viaLabel} | ${t} \`${x.action}\` | ${msf(w.pushMs)} | ${msf(x.firstStaleMs)} | ${msf(x.firstStaleSentMs)} | ${x.allowedOldSentAfter} of ${int(x.sentAfterPush)} | ${msf(x.lastAllowedOldSentMs)} | ${msf(x.resumeMs)} |`);
    }
  }
  L.push('');

  L.push(`### 5. The race (${int(o.raceChecks)} checks per tier on ${o.raceConnections} connections; the watermark push starts at check ${int(Math.floor(o.raceChecks * 0.3))} or at a random moment 1 to ${fix(1 + o.reuseLowMs / 1000, 1)} s in, whichever comes first)`);
  L.push('');
  L.push('| tier | watermark through | checks | s | push 200 at (ms) | in flight at push 200 | sent after push 200 | allowed older than the watermark, sent after push 200 | … inside the reuse window | … beyond it: violations | last allowed older-epoch request sent at (ms after push 200) | first stale_snapshot answered at (ms after push 200) | stale_snapshot answers (to requests sent after push 200) | other denials | errors | next snapshot → allowed again (ms) |');
  L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of out.race) {
    const oth = Object.entries(r.other).map(([k, v]) => `${k} ${v}`).join(', ') || '0';
    L.push(`| ${r.tier} \`${r.action}\` (window ${int(r.windowMs)} ms) | ${r.viaLabel} | ${int(r.checks)} | ${fix(r.seconds, 1)} | ${msf(r.push200Ms)} | ${int(r.inflight)} | ${int(r.sentAfter)} | ${int(r.oldAfter)} | ${int(r.oldInWindow)} | **${int(r.violations)}** | ${msf(r.lastOldSentMs)} | ${msf(r.firstStaleMs)} | ${int(r.stale)} (${int(r.staleAfter)}) | ${oth} | ${r.errors} | ${r.resumed?.ok ? msf(r.resumed.ms) : 'no'} |`);
  }
  L.push('');

  L.push('### Targets');
  L.push('');
  L.push('| target | measured | met |');
  L.push('|---|---:|:---:|');
  for (const p of out.paired ?? []) {
    const base = p.baseline ?? 'GET /health';
    const d = p.check.p99Ms - p.health.p99Ms;
    if (base !== 'GET /health') {
      const d50 = p.check.p50Ms - p.health.p50Ms;
      L.push(`| low-tier check p50 − ${base} p50 < ${TARGETS.lowOverEmptyP50Ms} ms, paired, ${p.conns} connection${p.conns > 1 ? 's' : ''} | ${msf(d50)} ms (${msf(p.check.p50Ms)} − ${msf(p.health.p50Ms)}) | ${ok(d50 < TARGETS.lowOverEmptyP50Ms)} |`);
    }
    L.push(`| low-tier check p99 − ${base} p99 < ${TARGETS.lowOverHealthP99Ms} ms, paired, ${p.conns} connection${p.conns > 1 ? 's' : ''} | ${msf(d)} ms (${msf(p.check.p99Ms)} − ${msf(p.health.p99Ms)}) | ${ok(d < TARGETS.lowOverHealthP99Ms)} |`);
  }
  L.push(`| the same, separate workloads, ${low.conns} connections | ${msf(dP99)} ms (${msf(low.p99Ms)} − ${msf(h.p99Ms)}) | ${ok(dP99 < TARGETS.lowOverHealthP99Ms)} |`);
  if (h1 && low1) {
    const d1 = low1.p99Ms - h1.p99Ms;
    L.push(`| the same, separate workloads, 1 connection | ${msf(d1)} ms (${msf(low1.p99Ms)} − ${msf(h1.p99Ms)}) | ${ok(d1 < TARGETS.lowOverHealthP99Ms)} |`);
  }
  const highWm = out.watermark.reduce((a, w) => a + (w.tiers.high?.allowedOldSentAfter ?? 0), 0);
  const lowWm = out.watermark.filter((w) => w.tiers.low).map((w) => w.tiers.low.lastAllowedOldSentMs).filter((x) => x != null);
  L.push(`| high tier: no allowed older-epoch answer to a request sent after the watermark's 200 (trials) | ${highWm} | ${ok(highWm === 0)} |`);
  if (lowWm.length) {
    const worst = Math.max(...lowWm);
    L.push(`| low tier: allowed older-epoch answers only to requests sent ≤ ${o.reuseLowMs} ms after the watermark's 200 (trials) | last one sent at ${msf(worst)} ms | ${ok(worst <= o.reuseLowMs)} |`);
  }
  for (const r of out.race) {
    const judged = r.sentAfterWindow > 0;
    L.push(`| race, ${r.tier}, watermark through ${r.viaLabel}: violations = 0 | ${r.violations} (of ${int(r.sentAfterWindow)} checks sent ${r.windowMs ? `more than ${int(r.windowMs)} ms ` : ''}after push 200) | ${judged ? ok(r.violations === 0) : 'not judged: no check sent after'} |`);
  }
  L.push('');

  L.push('### Notes');
  L.push('');
  L.push(`- One client process on the same machine as wrangler dev (wrangler's Node process and two workerd processes: its proxy and the Worker with its Durable Object; the relay is a second such set, idle but for the pushes sent through it). Each request crosses wrangler's local proxy, so GET /health is the baseline for "an almost empty Worker round trip"; differences and ratios within one run are the meaningful figures.`);
  L.push(`- Latency: \`process.hrtime.bigint()\` from just before the request's body is written to the end of the answer's body; one request outstanding per connection (Node \`http\`, keep-alive Agent). Percentiles over every request of every round. Client CPU: this process's CPU time ÷ wall time of the workload.`);
  L.push(`- Answers checked: every decision compared with the plain JS reference (\`bench/lib/reference.mjs\`); "gated" decisions (stale_snapshot, freshness_exceeded) are not compared.`);
  L.push(`- The origin's heartbeat (a signed watermark at the held epoch) was pushed through ${out.heartbeats.via} every ${o.heartbeatMs} ms during the round trips (${out.heartbeats.count} pushes, ${out.heartbeats.failures} failed): the example's high-tier freshness is ${m.freshness?.high ?? '?'} ms. A high-tier check confirms with the Durable Object on every request; low and standard reuse a confirmation for CONFIRM_REUSE_MS_LOW / _STANDARD.`);
  L.push(`- Watermark trials and races: the requests are ones the model allows; a violation is an answer \`allowed\` with an epoch below the watermark to a request sent after the push's 200 was received (low tier: sent later than ${o.reuseLowMs} ms after it). Send times are taken just before the request is written, so "sent after" is conservative.`);
  L.push(`- Run time ${fix(out.totalSeconds, 1)} s.`);
  L.push('');
  return L.join('\n') + '\n';
}
