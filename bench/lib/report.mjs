// The markdown report: one table of figures with edge-authz's advantage over each peer, the
// package's targets (bench/RESULTS.md, "The npm package") next to the measured figures, and notes
// on how each figure was taken.

const TARGETS = {
  throughput: 2_000_000, // checks/s, checkMany
  p50Ns: 1000, // single check p50 < 1 us
  vsCedar: 500, // >= 500x cedar-wasm throughput
  vsCasbin: 50, // >= 50x casbin throughput
  loadMs: 20, // snapshot load < 20 ms
  wasmGzip: 250 * 1024, // wasm < 250 KB gzipped
};
export { TARGETS };

const int = (n) => (n == null || !Number.isFinite(n) ? '—' : Math.round(n).toLocaleString('en-US'));
const fix = (n, d) => (n == null || !Number.isFinite(n) ? '—' : n.toFixed(d));
const us = (ns) => (ns == null ? '—' : ns < 10_000 ? fix(ns / 1000, 3) : ns < 1_000_000 ? fix(ns / 1000, 1) : int(ns / 1000));
const msf = (x) => (x == null ? '—' : x < 10 ? fix(x, 2) : x < 1000 ? fix(x, 1) : int(x));
const mb = (b) => (b == null ? '—' : fix(b / 1048576, 2));
const kb = (b) => (b == null ? '—' : `${int(b)} (${fix(b / 1024, 1)} KB)`);
const times = (x) => (x == null || !Number.isFinite(x) ? '—' : `${x >= 100 ? int(x) : fix(x, x >= 10 ? 1 : 2)}×`);

/** edge's advantage: ratio > 1 means edge-authz is better. */
function adv(edgeV, peerV, higherIsBetter) {
  if (edgeV == null || peerV == null || !Number.isFinite(edgeV) || !Number.isFinite(peerV) || edgeV === 0 || peerV === 0) return null;
  return higherIsBetter ? edgeV / peerV : peerV / edgeV;
}

export function renderMarkdown(out) {
  const rs = out.results;
  const edge = rs.find((r) => r.key === 'edge');
  const peers = rs.filter((r) => r.key !== 'edge');
  const w = out.workload;
  const L = [];
  L.push(`## edge-authz npm benchmark (${out.date.slice(0, 10)}, Node ${out.environment.node}, ${out.environment.cpus} × ${out.environment.cpu ?? 'cpu'})`);
  L.push('');
  L.push(`Workload: \`${w.source}\`: ${int(w.users)} users, ${int(w.resources)} resources, ${int(w.memberships)} memberships, ${int(w.assignments)} assignments (${int(w.expiring)} expiring), ${w.suspended} suspended, ${w.actions} actions, ${w.roles} roles.`);
  L.push(`Requests: ${int(w.throughputRequests)} for throughput (allowed ${fix(w.allowedRatio * 100, 1)}%), ${int(w.singleRequests)} for single checks (allowed ${fix(w.singleAllowedRatio * 100, 1)}%); ${fix(w.targeted * 100, 0)}% derived from assignments, the rest uniform; fixed now = ${w.now}.`);
  L.push('');

  const cols = rs.map((r) => r.engine);
  const advCols = edge ? peers.map((p) => `edge-authz vs ${p.engine}`) : [];
  L.push(`| metric | ${[...cols, ...advCols].join(' | ')} |`);
  L.push(`|---|${[...cols, ...advCols].map(() => '---:').join('|')}|`);
  const row = (label, get, fmt, higherIsBetter) => {
    const cells = rs.map((r) => fmt(get(r)));
    const advs = edge ? peers.map((p) => (higherIsBetter == null ? '' : times(adv(get(edge), get(p), higherIsBetter)))) : [];
    L.push(`| ${label} | ${[...cells, ...advs].join(' | ')} |`);
  };
  row('load, first in the process (ms)', (r) => r.loadMs, msf, false);
  row('load, again (ms)', (r) => r.loadAgainMs, msf, false);
  row('single check p50 (µs, per-call timer)', (r) => r.single.p50Ns, us, false);
  row('single check p99 (µs, per-call timer)', (r) => r.single.p99Ns, us, false);
  row('single check p50 (µs, 100-call blocks)', (r) => r.singleBlocks?.p50Ns, us, false);
  row('single check p99 (µs, 100-call blocks)', (r) => r.singleBlocks?.p99Ns, us, false);
  row('batch throughput (checks/s)', (r) => r.throughput.checksPerSec, int, true);
  row('checks timed: single / throughput', (r) => `${int(r.single.n)} / ${int(r.throughput.n)}${r.throughput.rounds > 1 ? ` × ${r.throughput.rounds}` : ''}`, (x) => x, null);
  row('heap after load (MB, Δ heapUsed + external)', (r) => r.heapBytes, mb, false);
  row('package: wasm or lib, bytes on disk', (r) => r.size.main?.bytes, kb, false);
  row('package: gzipped (-9)', (r) => r.size.main?.gzip, kb, false);
  row('answers checked / mismatches', (r) => `${int(r.verified)} / ${r.mismatches}`, (x) => x, null);
  L.push('');

  if (edge && edge.module?.fake) {
    L.push('edge-authz is the TEST STAND-IN (bench/fake-edge-pkg), not the package: no target is judged.');
    L.push('');
  } else if (edge) {
    L.push('### Targets');
    L.push('');
    L.push('| target | measured | met |');
    L.push('|---|---:|:---:|');
    const ok = (b) => (b == null ? '—' : b ? 'yes' : 'no');
    const t = edge.throughput.checksPerSec;
    L.push(`| checkMany ≥ ${int(TARGETS.throughput)} checks/s | ${int(t)} | ${ok(t >= TARGETS.throughput)} |`);
    const p50 = edge.single.p50Ns;
    const p50b = edge.singleBlocks?.p50Ns;
    L.push(`| single check p50 < 1 µs | ${us(p50)} µs per-call timer${p50b != null ? `, ${us(p50b)} µs in 100-call blocks` : ''} | ${ok(p50 < TARGETS.p50Ns)}${p50b != null ? ` / ${ok(p50b < TARGETS.p50Ns)}` : ''} |`);
    const cedar = peers.find((p) => p.key === 'cedar');
    const casbin = peers.find((p) => p.key === 'casbin');
    if (cedar) {
      const x = adv(t, cedar.throughput.checksPerSec, true);
      L.push(`| ≥ ${TARGETS.vsCedar}× cedar-wasm's throughput | ${times(x)} | ${ok(x >= TARGETS.vsCedar)} |`);
    }
    if (casbin) {
      const x = adv(t, casbin.throughput.checksPerSec, true);
      L.push(`| ≥ ${TARGETS.vsCasbin}× casbin's throughput | ${times(x)} | ${ok(x >= TARGETS.vsCasbin)} |`);
    }
    L.push(`| snapshot load < ${TARGETS.loadMs} ms | ${msf(edge.loadMs)} ms first, ${msf(edge.loadAgainMs)} ms again | ${ok(edge.loadMs < TARGETS.loadMs)} / ${ok(edge.loadAgainMs < TARGETS.loadMs)} |`);
    const gz = edge.size.wasm?.gzip;
    L.push(`| wasm < 250 KB gzipped | ${gz == null ? 'no wasm file' : `${fix(gz / 1024, 1)} KB`} | ${gz == null ? '—' : ok(gz < TARGETS.wasmGzip)} |`);
    L.push('');
  }

  L.push('### Notes');
  L.push('');
  if (edge && peers.length) L.push('- "edge-authz vs X": how many times better edge-authz is (faster, higher throughput, smaller); below 1× it is worse.');
  L.push(`- One Node process, engines one after another (${rs.map((r) => r.engine).join(', ')}); every answer of every engine compared with the plain JS reference (\`bench/lib/reference.mjs\`); ${out.mismatches} mismatches. Run time ${fix(out.totalSeconds, 1)} s.`);
  L.push(`- Load: edge-authz = \`new Evaluator\` + \`loadSnapshot\` (compileSnapshot, the origin's work, not timed); cedar-wasm = preparsePolicySet + entity parse + per-request entity slices; casbin = newEnforcer(model, StringAdapter(policy CSV)). Translating the model into each peer's input (policy text, CSV) is not timed either.`);
  for (const r of rs) {
    if (r.loadBreakdownMs) {
      const br = (b) => Object.entries(b).map(([k, v]) => `${k} ${msf(v)} ms`).join(', ');
      L.push(`- ${r.engine} load breakdown: first ${br(r.loadBreakdownMs)}; again ${br(r.loadAgainBreakdownMs)}.`);
    }
  }
  L.push(`- Single check: \`process.hrtime.bigint()\` around each call (a timer pair costs ~${int(out.environment.timerOverheadNs)} ns here, included, not subtracted), and separately around blocks of 100 consecutive calls (per-call = block / 100; shown when ≥ 20 blocks fit).`);
  L.push(`- Throughput: checkMany in chunks of ${out.options.batchSize}; edge-authz over the whole set, median of ${edge ? edge.throughput.rounds : out.options.rounds} rounds; peers have no synchronous batch API, so their checkMany is a loop of single checks.`);
  const sub = peers.filter((p) => p.throughput.subset || p.single.n < out.workload.singleRequests);
  if (sub.length) {
    L.push(`- Peers too slow for the full sets were timed on a prefix of the same request streams (${out.options.peerSeconds} s budget per measurement; the rate is per second regardless): ${sub.map((p) => `${p.engine} ${int(p.single.n)} single, ${int(p.throughput.n)} throughput (allowed ${fix(p.throughput.allowedRatio * 100, 1)}%)`).join('; ')}.`);
  }
  L.push(`- Heap: \`process.memoryUsage()\` heapUsed + external after vs before the load, both after \`gc()\`${out.environment.exposeGc ? '' : ' (NOT available: run with --expose-gc)'}. wasm linear memory counts in \`external\` (not in \`arrayBuffers\`, which \`external\` already includes) and never shrinks, so a wasm engine's figure is its high-water mark during load. Module import (not in the figure): ${rs.map((r) => `${r.engine} ${mb(r.importMem.total)} MB`).join(', ')}.`);
  L.push(`- Package size: ${rs.map((r) => `${r.engine} = ${r.size.mainKind}${r.size.glue ? ` (JS glue besides: ${int(r.size.glue.bytes)} B, ${int(r.size.glue.gzip)} B gzipped)` : ''}`).join('; ')}.`);
  L.push('');
  return L.join('\n') + '\n';
}
