// The Markdown report of bench/serve.mjs.

export const TARGETS = {
  revocationP99Ms: 50, // a single revocation, API call → 200 enforced at both edges, p99 (the publisher's target)
};

const int = (n) => (n == null || !Number.isFinite(n) ? '—' : Math.round(n).toLocaleString('en-US'));
const fix = (n, d) => (n == null || !Number.isFinite(n) ? '—' : n.toFixed(d));
const msf = (x) => (x == null || !Number.isFinite(x) ? '—' : Math.abs(x) < 10 ? fix(x, 2) : Math.abs(x) < 1000 ? fix(x, 1) : int(x));
const kinds = (k) => Object.entries(k ?? {}).map(([n, c]) => `${n} × ${c}`).join(', ') || 'none';
/** `n | p50 | p90 | p99 | max` cells of a summary (ms). */
const cells = (s) => `${int(s?.n)} | ${msf(s?.p50)} | ${msf(s?.p90)} | ${msf(s?.p99)} | ${msf(s?.max)}`;
const met = (v, t) => (v == null || !Number.isFinite(v) ? '—' : v < t ? '**met**' : '**not met**');

export function renderMarkdown(out) {
  const e = out.environment;
  const o = out.options;
  const L = [];
  const la = (x) => (x ? x.map((v) => fix(v, 2)).join(' ') : '—');
  L.push(`## edge-authz origin service benchmark (${out.date.slice(0, 10)}${o.quick ? ', --quick' : ''})`);
  L.push('');
  L.push(`Command: \`${out.command}\`. Machine: ${e.cpus} CPUs (${e.cpu ?? '?'}), ${fix(e.memGiB, 0)} GiB, ${e.platform}, Node ${e.node}; load average before / after: ${la(e.loadavgBefore)} / ${la(e.loadavgAfter)}. Run time ${fix(out.totalSeconds, 1)} s.`);
  L.push('');
  L.push(`Service: \`${e.bin?.path}\` (${int(e.bin?.bytes)} bytes, built ${e.bin?.mtime?.slice(0, 19)}, sha256 ${e.bin?.sha256?.slice(0, 12)}, run from a copy) as \`edge-authz serve --json --listen 127.0.0.1:PORT --state DIR --secret-key KEY --token-file FILE --edge URL1 --edge URL2\` (every other option at its default: \`--ack-timeout 10000\`, \`--threads 32\`, \`--checkpoint-every 256\`), pid ${out.service.pid}, listening ${msf(out.service.startMs)} ms after its spawn. Edges: two Workers (\`build/worker.mjs\`, wasm ${int(e.worker?.bytes)} bytes) in workerd ${e.workerd ?? '?'} through Miniflare ${e.miniflare ?? '?'}, each its own Durable Object state, each listening on 127.0.0.1. Client: this Node process, HTTP/1.1 keep-alive (\`node:http\`), \`Authorization: Bearer\`. Times in ms, from the request written to the whole answer read.`);
  L.push('');

  // ---- 1
  const g = out.grants;
  const s = g.sequential;
  const c = g.concurrent;
  L.push('### 1. Grants through the API (tenant `acme`, the example model)');
  L.push('');
  L.push(`\`POST /v1/acme/changes\` with \`{"op":"add_membership","member":"user:NEW","group":"group:eng"}\`, a new user each time, each answered 200 \`{"revokes": false}\`, after ${g.warmup.length} warm-up grants (not counted: the first ${msf(g.warmup[0])} ms, their median ${msf(median(g.warmup))} ms). The initial \`PUT /v1/acme/model\` (the service's first request: the tenant's job starts, opens a new journal and probes both edges, which hear from it for the first time): ${msf(g.initial.ms)} ms, \`issued\` at ${msf(g.initial.issuedMs)} (epoch ${g.initial.epoch}, ${int(g.initial.snapshotBytes)}-byte snapshot).`);
  L.push('');
  L.push(`The two series run as ${g.rounds.length} rounds of a sequential block then a concurrent block (pooled below), so that both see the same model sizes (group:eng grows by one member a grant) and the same machine; changes/s per round, sequential / concurrent: ${g.rounds.map((x) => `${fix(x.sequential.perSecond, 0)} / ${fix(x.concurrent.perSecond, 0)}`).join(', ')}.`);
  L.push('');
  L.push('| series | changes | wall s | **changes/s** | p50 | p90 | p99 | max |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  L.push(`| sequential: one client, the next grant once the previous one is answered | ${int(s.n)} | ${fix(s.wallMs / 1000, 2)} | **${fix(s.perSecond, 1)}** | ${msf(s.ms.p50)} | ${msf(s.ms.p90)} | ${msf(s.ms.p99)} | ${msf(s.ms.max)} |`);
  L.push(`| concurrent: ${c.clients} clients, each its next grant once its previous one is answered | ${int(c.n)} | ${fix(c.wallMs / 1000, 2)} | **${fix(c.perSecond, 1)}** | ${msf(c.ms.p50)} | ${msf(c.ms.p90)} | ${msf(c.ms.p99)} | ${msf(c.ms.max)} |`);
  L.push('');
  L.push(`Serialization: with ${c.clients} clients the tenant's job still takes one write at a time: ${fix(c.perSecond / s.perSecond, 2)}× the sequential throughput, while a call's p50 is ${fix(c.ms.p50 / s.ms.p50, 2)}× the sequential one (it waits behind the other clients' writes). In epoch order, consecutive answers went to different clients ${int(c.interleaved)} times out of ${int(c.n - 1)} (grants per client: ${c.perClient.join(', ')}); no epoch was answered to two changes (see the checks).`);
  L.push('');
  L.push(`Where a sequential grant's time goes: call → the \`issued\` event read (the change parsed, applied, the model compiled, the epoch signed and committed to the journal) p50 ${msf(s.issuedMs.p50)} / p99 ${msf(s.issuedMs.p99)}; \`issued\` → the 200 (one push of the delta to both edges at once, the journal's record of each edge's answer, the job's end) p50 ${msf(s.afterIssuedMs.p50)} / p99 ${msf(s.afterIssuedMs.p99)}. Delta ${int(s.deltaBytes.p50)} bytes at p50. Answered \`enforced: false\` (an edge had not applied it yet): ${s.notEnforced} sequential, ${c.notEnforced} concurrent. Pushes reported (sequential): ${kinds(s.pushed)}.${checkpointText(s.checkpoints.concat(c.checkpoints), 'grants')}`);
  L.push('');
  const r = g.ryw;
  L.push(`Read-your-writes: ${int(r.n)} grants, each followed at once by \`POST /v1/acme/check\` of the new user with \`{"context": {"at_least_epoch": EPOCH}}\` at both edges: all allowed (see the checks); the check took p50 ${msf(r.checkMs.p50)} / max ${msf(r.checkMs.max)} ms (n = ${int(r.checkMs.n)}); ${r.notEnforced} of these grants were answered \`enforced: false\`.`);
  L.push('');

  // ---- 2
  const a = out.revocations;
  const b = out.big;
  L.push('### 2. Revocations: the API call → its 200 `{"revokes": true, "enforced": true}`, two edges');
  L.push('');
  L.push(`\`acme\` (the example grown by phase 1: ${int(a.model.memberships)} memberships, epoch ${int(a.model.epoch)}): \`{"op":"remove_membership","member":"user:bob","group":"group:eng"}\` then the \`add_membership\` back (a grant), alternating, ${a.warmup.length} warm-up pairs first. \`big\`: \`group:big\` with ${int(b.model.members)} members holding ${int(b.model.assignments)} assignments (bench/publish/models.mjs \`big()\`; ${int(b.model.resources)} resources), loaded with \`PUT /v1/big/model\` (${int(b.model.bodyBytes)}-byte body: ${msf(b.initial.ms)} ms to its 200, \`issued\` at ${msf(b.initial.issuedMs)}, ${int(b.initial.snapshotBytes)}-byte snapshot); one member out, then back in, ${b.warmup.length} warm-up pair(s) first. Each change is sent once the previous one is answered (and, for a sample, checked at both edges).`);
  L.push('');
  L.push('| change | n | p50 | p90 | p99 | max |');
  L.push('|---|---:|---:|---:|---:|---:|');
  L.push(`| **acme: revocation** (remove user:bob from group:eng) | ${cells(a.revocation.ms)} |`);
  L.push(`| acme: grant (user:bob back) | ${cells(a.grant.ms)} |`);
  L.push(`| **big: revocation** (remove one of ${int(b.model.members)} members) | ${cells(b.revocation.ms)} |`);
  L.push(`| big: grant (the member back) | ${cells(b.grant.ms)} |`);
  L.push('');
  L.push('Where a revocation\'s time goes (from the service\'s `--json` events, read on its stdout with their arrival time in this process; p50 / p99):');
  L.push('');
  L.push('| tenant | call → `issued` read (parse, apply, compile, sign, journal commit) | `issued` → `revocation_acknowledged` read (push the watermark carrying the delta to both edges, record their answers) | `revocation_acknowledged` → 200 (the job\'s end, the checkpoint query, the reply) | `revocation_acknowledged.ms` (the service\'s clock, from the request\'s arrival) | delta / watermark bytes p50 |');
  L.push('|---|---:|---:|---:|---:|---:|');
  for (const [name, x] of [['acme', a.revocation], ['big', b.revocation]]) {
    L.push(`| ${name} | ${msf(x.issuedMs.p50)} / ${msf(x.issuedMs.p99)} | ${msf(x.issuedToAckMs.p50)} / ${msf(x.issuedToAckMs.p99)} | ${msf(x.afterAckMs.p50)} / ${msf(x.afterAckMs.p99)} | ${msf(x.ackServerMs.p50)} / ${msf(x.ackServerMs.p99)} | ${int(x.deltaBytes.p50)} / ${int(x.watermarkBytes.p50)} |`);
  }
  L.push('');
  L.push(`Grants in the same alternation: call → \`issued\` p50 ${msf(a.grant.issuedMs.p50)} (acme), ${msf(b.grant.issuedMs.p50)} (big). Slowest revocations (acme): ${a.revocation.slowest.map(slow).join('; ')}; (big): ${b.revocation.slowest.map(slow).join('; ')}. Pushes reported for the revocations: acme ${kinds(a.revocation.pushed)}; big ${kinds(b.revocation.pushed)}. Over the publisher's budget: ${a.revocation.overBudget + a.grant.overBudget} (acme), ${b.revocation.overBudget + b.grant.overBudget} (big). Epochs patched into the kept one rather than compiled from the whole model: ${a.revocation.patched + a.grant.patched} of ${a.revocation.n + a.grant.n} (acme), ${b.revocation.patched + b.grant.patched} of ${b.revocation.n + b.grant.n} (big).${checkpointText([...a.revocation.checkpoints, ...a.grant.checkpoints], 'acme changes')}${checkpointText([...b.revocation.checkpoints, ...b.grant.checkpoints], 'big changes')}`);
  if (a.revocation.checkpoints.length) {
    L.push('');
    L.push(`Without the changes that carried a checkpoint: acme revocations p50 ${msf(a.revocation.withoutCheckpoint.p50)} / p99 ${msf(a.revocation.withoutCheckpoint.p99)} / max ${msf(a.revocation.withoutCheckpoint.max)} (n = ${int(a.revocation.withoutCheckpoint.n)}).`);
  }
  L.push('');

  // ---- targets
  const T = out.targets;
  L.push('### Target');
  L.push('');
  L.push('| target | measured | |');
  L.push('|---|---:|:---:|');
  L.push(`| a single revocation, API call → 200 enforced at both edges: p99 < ${T.revocationP99Ms} ms, example tenant (\`acme\`) | ${msf(a.revocation.ms.p99)} ms (n = ${int(a.revocation.ms.n)}) | ${met(a.revocation.ms.p99, T.revocationP99Ms)} |`);
  L.push(`| the same in the ${int(b.model.members)}-member group (\`big\`) | ${msf(b.revocation.ms.p99)} ms (n = ${int(b.revocation.ms.n)}${b.revocation.ms.n < 100 ? ': p99 is the maximum' : ''}) | ${met(b.revocation.ms.p99, T.revocationP99Ms)} |`);
  L.push('');

  // ---- the service's own figures
  const m = out.metrics ?? {};
  const prop = Object.entries(m.propagation ?? {});
  if (prop.length) {
    L.push('### The service\'s own figures (`GET /metrics` at the end)');
    L.push('');
    L.push('| tenant, direction | acknowledgements (per edge) | mean s |');
    L.push('|---|---:|---:|');
    for (const [k, v] of prop) L.push(`| ${k} | ${int(v.count)} | ${v.count ? fix(v.sum / v.count, 4) : '—'} |`);
    const bad = Object.entries(m.requests ?? {}).filter(([k]) => !/ (200|202)$/.test(k));
    L.push('');
    L.push(`Requests not answered 200 or 202: ${bad.length ? bad.map(([k, v]) => `${k} × ${v}`).join(', ') : 'none'}.`);
    L.push('');
  }

  // ---- correctness
  const failed = out.checks.reduce((n, x) => n + x.failures, 0);
  L.push(`### Correctness checks (${failed === 0 ? 'all passed' : `**${failed} FAILED**: exit code 1`})`);
  L.push('');
  L.push('| check | samples | failures |');
  L.push('|---|---:|---:|');
  for (const x of out.checks) L.push(`| ${x.name} | ${int(x.samples)} | ${x.failures ? `**${x.failures}**: ${x.details.map((d) => `\`${String(d).replace(/\|/g, '\\|')}\``).join('; ')}` : 0} |`);
  L.push('');
  const err = out.service.stderr ?? [];
  const budget = err.filter((l) => /over its budget/.test(l));
  const other = err.filter((l) => !/over its budget/.test(l));
  L.push(`The service: stopped by its pid with SIGTERM at the end (${JSON.stringify(out.service.exit)}). Its standard error, besides its start line: ${err.length ? [budget.length ? `${budget.length} \`over its budget\` warning(s) (e.g. \`${budget.at(-1)}\`)` : '', ...other.slice(-3).map((l) => `\`${l}\``)].filter(Boolean).join('; ') : 'nothing'}.`);
  L.push('');

  L.push('### Notes');
  L.push('');
  L.push('- Everything on one machine: this Node process (the client, the edges\' Miniflare hosts, the checks), two workerd processes and the service. The edges are local: the figures are the service\'s and the Worker\'s own costs (HTTP on loopback, signatures, Durable Object storage, the journal\'s SQLite writes with `synchronous = FULL`), not network latency.');
  L.push('- Percentiles are nearest-rank; with fewer than 100 samples p99 is the maximum. On a shared machine the figures move with its load (the load averages above): compare the figures of one run with each other.');
  L.push('- The event timings are the arrival of the service\'s stdout lines in this process, which may trail the socket by a fraction of a millisecond; `revocation_acknowledged.ms` is the service\'s own whole milliseconds from the moment its request thread read the body to both edges\' answers.');
  L.push(`- Correctness: every ${o.checkEvery === 1 ? '' : `${ordinal(o.checkEvery)} `}revocation on acme and every revocation on big is followed at once by a check at both edges (no context) that must be denied; grants are checked with \`{"at_least_epoch": EPOCH}\` at both edges (the sequential and concurrent series after the series, every ${o.checkEvery === 1 ? '' : `${ordinal(o.checkEvery)} `}grant; the read-your-writes grants and the grants back of the revocation series right after their 200), which must be allowed at that epoch or later. The script exits 1 only when such a check fails; a missed target is only marked.`);
  L.push('');
  return L.join('\n') + '\n';
}

function median(xs) {
  const v = [...(xs ?? [])].sort((p, q) => p - q);
  return v.length ? v[Math.floor((v.length - 1) / 2)] : null;
}

function slow(x) {
  return `${msf(x.ms)} ms (epoch ${x.epoch}; \`issued\` at ${msf(x.issuedMs)}, acknowledged at ${msf(x.ackEventMs)}${x.checkpoint ? '; a checkpoint before its answer' : ''})`;
}

function checkpointText(list, what) {
  if (!list.length) return '';
  return ` Checkpoints issued before the answer of ${what} (the service issues one, a snapshot-only epoch pushed to both edges, once ${'`--checkpoint-every`'} deltas have accumulated, and answers the change that crossed the count only after it): ${list.map((c) => `epoch ${c.epoch} (${int(c.snapshotBytes)}-byte snapshot after ${int(c.deltasSince)} deltas${c.ms == null ? ', during the concurrent series' : `; that change took ${msf(c.ms)} ms`})`).join(', ')}.`;
}

function ordinal(n) {
  const t = n % 100;
  if (t >= 11 && t <= 13) return `${n}th`;
  return `${n}${['th', 'st', 'nd', 'rd'][n % 10] ?? 'th'}`;
}
