// The Markdown report of bench/publish.mjs.

export const TARGETS = {
  revocationP99Ms: 50, // a single revocation acknowledged by both edges, p99
  singleDeltaBytes: 1024, // the delta of a single membership change
};

const int = (n) => (n == null || !Number.isFinite(n) ? '—' : Math.round(n).toLocaleString('en-US'));
const fix = (n, d) => (n == null || !Number.isFinite(n) ? '—' : n.toFixed(d));
const msf = (x) => (x == null || !Number.isFinite(x) ? '—' : Math.abs(x) < 10 ? fix(x, 2) : Math.abs(x) < 1000 ? fix(x, 1) : int(x));
const mark = (b) => (b == null ? '—' : b ? '✅ pass' : '❌ miss');
const kinds = (k) => Object.entries(k ?? {}).map(([n, c]) => `${n} × ${c}`).join(', ') || 'none';

/** `| n | p50 | p99 | max |` cells of a summary (ms). */
const cells = (s) => `${int(s?.n)} | ${msf(s?.p50)} | ${msf(s?.p99)} | ${msf(s?.max)}`;
/** The same for `publish --status` figures ({count, p50Ms, p99Ms, maxMs}). */
const statusCells = (s) => `${int(s?.count)} | ${msf(s?.p50Ms)} | ${msf(s?.p99Ms)} | ${msf(s?.maxMs)}`;
const bytesCells = (s) => (s?.n ? `${int(s.n)} | ${int(s.min)} | ${int(s.p50)} | ${int(s.max)}` : '0 | — | — | —');

export function renderMarkdown(out) {
  const e = out.environment;
  const o = out.options;
  const L = [];
  const la = (x) => (x ? x.map((v) => fix(v, 2)).join(' ') : '—');
  L.push(`## edge-authz publisher propagation benchmark (${out.date.slice(0, 10)}${o.quick ? ', --quick' : ''}, Node ${e.node}, ${e.cpus} × ${e.cpu ?? 'cpu'})`);
  L.push('');
  L.push(`Publisher: \`${e.bin?.path}\` (${int(e.bin?.bytes)} bytes, built ${e.bin?.mtime?.slice(0, 19)}). Edges: two Workers (\`build/worker.mjs\`, wasm ${int(e.worker?.bytes)} bytes) in workerd ${e.workerd ?? '?'} through Miniflare ${e.miniflare ?? '?'}, each its own Durable Object state, each listening on 127.0.0.1; the publisher pushes to them over HTTP. Load average before / after: ${la(e.loadavgBefore)} / ${la(e.loadavgAfter)}. Run time ${fix(out.totalSeconds, 1)} s.`);
  L.push('');

  // ---- 1
  const s = out.single;
  L.push(`### 1. Single membership changes: one \`publish --stdin\`, ${int(s.changes)} changes (tenant \`acme\`, the example model)`);
  L.push('');
  L.push(`Alternating \`{"op":"remove_membership","member":"user:bob","group":"group:eng"}\` (a revocation) and the \`add_membership\` back (a grant), one line at a time after ${o.warmup} warm-up changes: a line is written once the previous change's events are in and the publisher has been quiet for ${o.gapMs} ms. Times in ms.`);
  L.push('');
  L.push('| figure | n | p50 | p99 | max |');
  L.push('|---|---:|---:|---:|---:|');
  L.push(`| **revocation: line read → both edges enforce it** (\`revocation_acknowledged.ms\`, the publisher's clock) | ${cells(s.revocation.ackMs)} |`);
  L.push(`| revocation: line written → \`revocation_acknowledged\` read (this process's clock) | ${cells(s.revocation.ackWallMs)} |`);
  L.push(`| revocation: change → enforced, per edge (\`publish --status\` lastRun.revocation: the run's changes, warm-up included) | ${statusCells(s.revocation.status)} |`);
  L.push(`| revocation: line written → \`issued\` read (origin's work: model, diff, signatures, journal) | ${cells(s.revocation.issuedWallMs)} |`);
  L.push(`| **grant: change → applied, per edge** (\`publish --status\` lastRun.grant: the run's changes, warm-up included) | ${statusCells(s.grant.status)} |`);
  L.push(`| grant: line written → both edges' \`caught_up\` read | ${cells(s.grant.caughtUpWallMs)} |`);
  L.push(`| grant: line written → each edge's \`caught_up\` read | ${cells(s.grant.perEdgeWallMs)} |`);
  L.push(`| grant: line written → \`issued\` read | ${cells(s.grant.issuedWallMs)} |`);
  L.push('');
  L.push('| bytes | n | min | p50 | max |');
  L.push('|---|---:|---:|---:|---:|');
  L.push(`| revocation: delta | ${bytesCells(s.revocation.deltaBytes)} |`);
  L.push(`| revocation: watermark carrying that delta (what is pushed) | ${bytesCells(s.revocation.watermarkBytes)} |`);
  L.push(`| grant: delta (what is pushed) | ${bytesCells(s.grant.deltaBytes)} |`);
  L.push('');
  L.push(`Messages pushed (per edge): revocations ${kinds(s.revocation.pushedKinds)}; grants ${kinds(s.grant.pushedKinds)}. Jobs over the publisher's budget: ${s.revocation.overBudget + s.grant.overBudget}. Checkpoints: ${s.checkpoints.length}. Warm-up, not counted above (the run's first changes): ${s.warmup.map((c) => `${c.kind} ${msf(c.kind === 'revocation' ? c.ackMs : c.caughtUpWallMs)} ms`).join(', ') || 'none'}.`);
  L.push('');
  L.push(`Journal (\`publish --status --json\`) right after the measured changes, the publisher still running: epoch ${s.statusEpoch}, edges' lag ${s.statusEdges.map((e) => e.lag).join(' and ')}; at the end of the phase: epoch ${s.final.epoch}, lag ${s.final.edges.map((e) => e.lag).join(' and ')}.`);
  L.push('');
  const v = s.visibility;
  L.push(`End-to-end visibility of ${int(v.n)} grants (each after a revocation of the same membership): a check \`user:bob read doc:roadmap\` polled at each edge every ${o.pollMs} ms from the moment the line is written (${msf(v.polls?.p50)} polls per edge at p50, ${msf(v.polls?.max)} at most${v.polls?.p50 <= 1 ? ': the first check, sent as the line was written, usually answered allowed already: it waited at the edge until the push had been applied' : ''}).`);
  L.push('');
  L.push('| figure | n | p50 | p99 | max |');
  L.push('|---|---:|---:|---:|---:|');
  L.push(`| line written → first allowed answer, per edge | ${cells(v.perEdgeMs)} |`);
  L.push(`| line written → allowed at both edges | ${cells(v.bothMs)} |`);
  L.push(`| line written → both \`caught_up\` read (the same grants) | ${cells(v.caughtUpWallMs)} |`);
  L.push('');

  // ---- 2
  const w = out.oneshot;
  L.push(`### 2. One-shot processes: \`edge-authz publish MODEL.json\`, ${int(w.revocation.wallMs.n)} revocations and as many grants (tenant \`oneshot\`)`);
  L.push('');
  L.push('The whole process: spawn → exit, including the process start, the key, the journal (open, lock, read the latest epoch), the model, the diff, and the pushes (the process starts from the record in the journal of where each edge stands). Times in ms.');
  L.push('');
  L.push('| figure | n | p50 | p99 | max |');
  L.push('|---|---:|---:|---:|---:|');
  L.push(`| **revocation: process wall clock** | ${cells(w.revocation.wallMs)} |`);
  L.push(`| revocation: \`revocation_acknowledged.ms\` (from the start of \`run\`) | ${cells(w.revocation.ackMs)} |`);
  L.push(`| grant: process wall clock | ${cells(w.grant.wallMs)} |`);
  L.push('');
  const silent = !w.revocation.pushedKinds?.watermark ? ' (no `pushed` event at all: the publisher does not report a watermark pushed to an edge it had not heard from earlier in the same process, see Notes)' : '';
  L.push(`Messages pushed (per edge, as the publisher's \`pushed\` events report them): revocations ${kinds(w.revocation.pushedKinds)}${silent}; grants ${kinds(w.grant.pushedKinds)}. Exit code 3 (unacknowledged): ${w.revocation.exit3}; grants left pending: ${w.grant.pending}. Initial publish: ${int(w.initial.snapshotBytes)}-byte snapshot, ${msf(w.initial.wallMs)} ms.`);
  L.push('');

  // ---- 3
  const b = out.big;
  L.push(`### 3. The big group: \`group:big\` with ${int(b.model.members)} members and ${int(b.model.assignments)} assignments (tenant \`big\`)`);
  L.push('');
  L.push(`Resources: org:big → ${int(b.model.workspaces)} workspaces → ${int(b.model.docs)} documents (${int(b.model.resources)} in all). Assignments of the group: \`viewer\` on ${int(b.model.docs - 1)} documents and \`editor\` on org:big (which every document inherits: its biggest assignment).`);
  L.push('');
  const bi = b.initial;
  L.push(`Initial publish (one-shot process): **snapshot ${int(bi.snapshotBytes)} bytes**, pushed as ${kinds(countKinds(bi.pushed))}, process wall clock ${msf(bi.wallMs)} ms${bi.overBudget ? ' (over the publisher\'s budget)' : ''}.`);
  L.push('');
  L.push(`Then ${int(o.cycles)} cycles of six changes through one \`publish --stdin\`, each line written once the previous change's events are in and the publisher has been quiet for ${Math.max(100, o.gapMs)} ms. "To acknowledgement": a revocation's \`revocation_acknowledged.ms\` (line read → both edges enforce it, the publisher's clock); for a grant, line written → both edges' \`caught_up\` read (this process's clock). "Origin's work": line written → \`issued\` read. Times in ms, p50 / p99 / max${o.cycles < 100 ? ` (with ${o.cycles} samples p99 is the maximum)` : ''}.`);
  L.push('');
  L.push('| change | n | ops | issued as | pushed (per edge) | delta bytes p50 (max) | watermark bytes p50 (max) | origin\'s work p50 / p99 | to acknowledgement p50 / p99 / max | both `caught_up` (wall) p50 / p99 | over budget |');
  L.push('|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of b.steps) {
    const revoke = r.kinds.includes('revocation');
    const ack = revoke ? r.ackMs : r.caughtUpWallMs;
    L.push(`| ${r.label} | ${r.n} | ${int(r.ops.p50)} | ${r.kinds.join(', ')} | ${kinds(r.pushedKinds)} | ${int(r.deltaBytes.p50)} (${int(r.deltaBytes.max)}) | ${r.watermarkBytes.n ? `${int(r.watermarkBytes.p50)} (${int(r.watermarkBytes.max)})` : '—'} | ${msf(r.issuedWallMs.p50)} / ${msf(r.issuedWallMs.p99)} | **${msf(ack.p50)}** / ${msf(ack.p99)} / ${msf(ack.max)} | ${msf(r.caughtUpWallMs.p50)} / ${msf(r.caughtUpWallMs.p99)} | ${r.overBudget} |`);
  }
  L.push('');
  const rm = b.steps.find((r) => r.key === 'removeMember');
  if (rm?.ackMs?.n) {
    const pushMs = rm.ackWallMinusIssued;
    L.push(`Where a single-member revocation's time goes in this tenant: line written → \`issued\` (the publisher's work before anything is sent: apply the operation, compile the whole model, its content digest, the full signed snapshot of the new epoch, the diff, the journal transaction with the model and the snapshot) ${msf(rm.issuedWallMs.p50)} ms at p50, against ${msf(out.single.revocation.issuedWallMs.p50)} ms for the example model; \`issued\` → \`revocation_acknowledged\` (the pushes of a ${int(rm.watermarkBytes.p50)}-byte watermark to both edges and the journal's record of their answers) ${msf(pushMs?.p50)} ms at p50, against ${msf(out.single.revocation.ackAfterIssuedMs?.p50)} ms for the example model.`);
    L.push('');
  }
  if (b.checkpoints.length) {
    L.push(`Checkpoints issued by the publisher during the cycles (a snapshot-only epoch once the deltas since the last one outweigh the snapshot and 256 KiB): ${b.checkpoints.map((c) => `epoch ${c.epoch} after ${c.after}: ${int(c.snapshotBytes)}-byte snapshot (${c.deltasSince} deltas, ${int(c.deltaBytesSince)} bytes since), pushed as ${kinds(countKinds(c.pushed))}, both edges caught up ${msf(c.caughtUpMs)} ms after it was issued`).join('; ')}. They run after a change has been acknowledged and are not counted in any change's figures.`);
  } else {
    L.push('No checkpoint was issued during the cycles.');
  }
  L.push('');

  // ---- targets
  const T = out.targets;
  const revP99 = s.revocation.ackMs.p99;
  const singleDeltas = [s.revocation.deltaBytes.max, s.grant.deltaBytes.max];
  const bigSingle = b.steps.filter((r) => ['removeMember', 'readdMember'].includes(r.key));
  const bigSingleMax = Math.max(...bigSingle.map((r) => r.deltaBytes.max ?? 0));
  const deltaMax = Math.max(...singleDeltas.filter((x) => x != null));
  const snapshotsPushed = b.steps.reduce((n, r) => n + (r.pushedKinds.snapshot ?? 0), 0);
  L.push('### Targets');
  L.push('');
  L.push('| target | measured | |');
  L.push('|---|---:|:---:|');
  L.push(`| a single revocation acknowledged by both edges: p99 < ${T.revocationP99Ms} ms (\`revocation_acknowledged.ms\`, phase 1) | ${msf(revP99)} ms (n = ${int(s.revocation.ackMs.n)}) | ${mark(revP99 < T.revocationP99Ms)} |`);
  L.push(`| the same, this process's clock (line written → event read) | ${msf(s.revocation.ackWallMs.p99)} ms | ${mark(s.revocation.ackWallMs.p99 < T.revocationP99Ms)} |`);
  const bigRev = b.steps.find((r) => r.key === 'removeMember');
  if (bigRev) L.push(`| the same 50 ms target for a single-member revocation in the ${int(b.model.members)}-member group (phase 3; informative, ${bigRev.n} samples) | ${msf(bigRev.ackMs.p99)} ms | ${mark(bigRev.ackMs.p99 < T.revocationP99Ms)} |`);
  L.push(`| a single membership change's delta < ${int(T.singleDeltaBytes)} bytes (max, phase 1) | ${int(deltaMax)} bytes | ${mark(deltaMax < T.singleDeltaBytes)} |`);
  L.push(`| the same in the ${int(b.model.members)}-member group (max, phase 3) | ${int(bigSingleMax)} bytes | ${mark(bigSingleMax < T.singleDeltaBytes)} |`);
  L.push(`| big group: every change pushed as a delta or watermark, never a snapshot (phase 3, checkpoints aside) | ${snapshotsPushed} snapshot pushes | ${mark(snapshotsPushed === 0)} |`);
  L.push('');

  // ---- correctness
  const failed = out.checks.reduce((n, c) => n + c.failures, 0);
  L.push(`### Correctness checks (${failed === 0 ? 'all passed' : `**${failed} FAILED**: exit code 1`})`);
  L.push('');
  L.push('| check | samples | failures |');
  L.push('|---|---:|---:|');
  for (const c of out.checks) L.push(`| ${c.name} | ${int(c.samples)} | ${c.failures ? `**${c.failures}**: ${c.details.map((d) => `\`${String(d).replace(/\|/g, '\\|')}\``).join('; ')}` : 0} |`);
  L.push('');

  L.push('### Notes');
  L.push('');
  L.push('- Everything on one machine: this Node process (the edges\' Miniflare hosts and the checks), two workerd processes and the publisher. The edges are local, so the figures are the publisher\'s and the Worker\'s own costs (HTTP on loopback, signature checks, Durable Object storage, journal writes with `synchronous = FULL`), not network latency.');
  L.push('- `revocation_acknowledged.ms` and the `--status` figures are the publisher\'s whole milliseconds from the moment its reader thread got the line (`changed_at`) to the edge\'s answer; the wall-clock figures are `performance.now()` in this process from just before the line is written to the arrival of the event\'s line on the child\'s stdout. `--status` counts one acknowledgement per edge (2 per change).');
  L.push('- Percentiles are nearest-rank (as `publish --status` computes them). On a shared machine the figures move with its load (the header gives the load average before and after the run): compare figures of one run with each other rather than across runs.');
  L.push('- `revocation_acknowledged` is printed after the journal has recorded every edge\'s answer (one SQLite transaction per edge), while `--status` counts from the moment the answers were in: the event\'s figure is the larger by those writes.');
  if (!w.revocation.pushedKinds?.watermark) {
    L.push('- The publisher\'s `pushed` events leave out every watermark-kind push to an edge whose position was unknown when the round started (`before` is None, so `p.head != before.unwrap_or(p.head)` is always false): in a one-shot process the revocation\'s watermark, which carries the delta, is pushed and acknowledged but never reported as pushed (its bytes are missing from the events); the same holds for the first round of a `--stdin` / `--watch` run.');
  }
  L.push(`- Correctness: every ${o.checkEvery === 1 ? '' : `${ordinal(o.checkEvery)} `}revocation of phase 1, every visibility revocation, every one-shot revocation and every revocation of phase 3 is followed at once by a check at both edges that must be denied; grants are polled until allowed (10 s limit). The script exits 1 only when one of these checks fails; a missed target is only marked.`);
  L.push('');
  return L.join('\n') + '\n';
}

function ordinal(n) {
  const t = n % 100;
  if (t >= 11 && t <= 13) return `${n}th`;
  return `${n}${['th', 'st', 'nd', 'rd'][n % 10] ?? 'th'}`;
}

function countKinds(pushed) {
  const k = {};
  for (const p of pushed ?? []) k[p.kind] = (k[p.kind] ?? 0) + 1;
  return k;
}
