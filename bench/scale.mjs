// Scale: how big a tenant compiles, loads and answers, natively, in Node and in workerd, and
// how much memory it takes there.
//
//   node bench/scale.mjs                 # the large tenant the edge is sized for (100,000 users,
//                                        # 5,000 groups, 100,000 documents, 200,000 assignments)
//                                        # and smaller ones
//   node bench/scale.mjs --quick         # small tenants only (a test of the benchmark itself)
//   node bench/scale.mjs --users 200000 --groups 10000 --docs 200000 --assignments 400000
//
// For each tenant: the model JSON from `edge-authz workload`; natively, `edge-authz compile` and
// `edge-authz status` under /usr/bin/time (wall time, peak RSS) and the index's heap estimate;
// in Node, the npm package loading the snapshot (time, the wasm memory after it, a check's
// latency); in workerd (Miniflare), the built Worker taking the snapshot by `PUT .../snapshot`
// (time, then its status's wasmMemoryBytes: the isolate's whole wasm memory, the Durable Object's
// evaluator and the isolate's own both in it) and answering checks. Prints a Markdown table.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(REPO, 'target/release/edge-authz');
const OUT = path.join(REPO, 'target/scale');
// The time the messages are issued at: this run's start, so every check below is within its bounds.
const NOW = Date.now();

const args = process.argv.slice(2);
const flag = (name) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : undefined;
};
const quick = args.includes('--quick');

/** Tenants to measure: {users, groups, docs, assignments}. */
function tenants() {
  if (flag('users')) {
    return [{ users: flag('users'), groups: flag('groups') ?? 5000, docs: flag('docs') ?? 100_000, assignments: flag('assignments') ?? 200_000 }];
  }
  if (quick) return [{ users: 1000, groups: 50, docs: 2000, assignments: 2000 }];
  return [
    { users: 10_000, groups: 500, docs: 10_000, assignments: 20_000 },
    { users: 50_000, groups: 2500, docs: 50_000, assignments: 100_000 },
    { users: 100_000, groups: 5000, docs: 100_000, assignments: 200_000 },
    // The largest of this shape under the edge's memory budget (max_index_bytes, 36 MiB).
    { users: 108_000, groups: 5400, docs: 108_000, assignments: 216_000 },
    // Past it: refused at compile time.
    { users: 120_000, groups: 6000, docs: 120_000, assignments: 240_000 },
    { users: 200_000, groups: 10_000, docs: 200_000, assignments: 400_000 },
  ];
}

const mb = (bytes) => (bytes / 1048576).toFixed(1);

/** Runs BIN under /usr/bin/time, its stdout to `outFile` (or nowhere): {ms, peakKb}. */
function timedPeak(argv, outFile) {
  const started = process.hrtime.bigint();
  const r = execFileSync('bash', ['-c', `/usr/bin/time -f 'PEAK %M' "$@" 2>&1 >${outFile ? JSON.stringify(outFile) : '/dev/null'} | tail -n 1`, 'x', BIN, ...argv], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const peak = Number(/PEAK (\d+)/.exec(r)?.[1] ?? NaN);
  return { ms, peakKb: peak };
}

async function main() {
  mkdirSync(OUT, { recursive: true });
  execFileSync(BIN, ['keygen', '--out-dir', path.join(OUT, 'keys'), '--force'], { stdio: 'ignore' });
  const secret = path.join(OUT, 'keys/origin.key');
  const pub = readFileSync(path.join(OUT, 'keys/origin.pub'), 'utf8').trim();
  // The package's JavaScript API over its wasm, instantiated here as its workerd entry does
  // (pkg/src/workerd.mjs), so that the instance's memory can be read.
  const { initSync } = await import('../pkg/dist/edge_authz.js');
  const { host, setWasm } = await import('../pkg/src/internal.js');
  setWasm(initSync({ module: new WebAssembly.Module(readFileSync(path.join(REPO, 'pkg/dist/edge_authz_bg.wasm'))) }));
  const pkg = await import('../pkg/src/api.js');
  const { startEdge } = await import('../tests/js/edge.mjs');
  const rows = [];
  for (const t of tenants()) {
    const name = `u${t.users}`;
    const model = path.join(OUT, `${name}.json`);
    const snap = path.join(OUT, `${name}.snap`);
    // 20 workspaces of 10 projects: documents per project.
    const perProject = Math.max(1, Math.round(t.docs / 200));
    const gen = timedPeak(['workload', '--users', String(t.users), '--groups', String(t.groups), '--assignments', String(t.assignments), '--docs-per-project', String(perProject)], model);
    rmSync(snap, { force: true });
    const compile = timedPeak(['compile', model, '--epoch', '1', '--secret-key', secret, '--issued-at', String(NOW), '-o', snap]);
    if (!existsSync(snap)) {
      // Refused at compile time (past the edge's budget): say why.
      const r = spawnSync(BIN, ['compile', model, '--epoch', '1', '--secret-key', secret, '--issued-at', String(NOW), '-o', snap], { encoding: 'utf8' });
      rows.push({ t, modelBytes: readFileSync(model).length, compile, refused: r.stderr.trim() });
      console.error(`refused: ${name}: ${r.stderr.trim()}`);
      continue;
    }
    const statusRun = timedPeak(['status', '--snapshot', snap, '--public-key', path.join(OUT, 'keys/origin.pub')]);
    const status = JSON.parse(execFileSync(BIN, ['status', '--snapshot', snap, '--public-key', path.join(OUT, 'keys/origin.pub')], { encoding: 'utf8', maxBuffer: 1 << 26 }));
    const bytes = readFileSync(snap);
    const modelBytes = readFileSync(model).length;
    // A delta to epoch 2: one new member of one group (a grant), as the origin signs it.
    const m2 = JSON.parse(readFileSync(model, 'utf8'));
    m2.memberships.push({ member: 'user:newcomer', group: m2.memberships[0].group });
    const model2 = path.join(OUT, `${name}.2.json`);
    writeFileSync(model2, JSON.stringify(m2));
    const deltaFile = path.join(OUT, `${name}.delta`);
    execFileSync(BIN, ['diff', model, model2, '--base-epoch', '1', '--epoch', '2', '--secret-key', secret, '--issued-at', String(NOW), '-o', deltaFile]);
    const delta = readFileSync(deltaFile);

    // Node: the package.
    const ev = new pkg.Evaluator({ tenant: 'acme', publicKeys: [pub], clock: () => NOW });
    let t0 = performance.now();
    ev.loadSnapshot(bytes);
    const nodeLoadMs = performance.now() - t0;
    const nodeWasm = host.wasm.memory.buffer.byteLength;
    // Checks of 1,000 distinct requests, 100 rounds (warm).
    const reqs = Array.from({ length: 1000 }, (_, i) => [`user:u${(i * 97) % t.users}`, `doc:w${i % 20}-p${i % 10}-d${i % perProject}`]);
    const context = { now: NOW };
    for (const [s, r] of reqs) ev.check(s, 'read', r, context);
    t0 = performance.now();
    for (let round = 0; round < 100; round++) for (const [s, r] of reqs) ev.check(s, 'read', r, context);
    const nodeCheckUs = ((performance.now() - t0) * 1000) / (100 * reqs.length);
    t0 = performance.now();
    ev.applyDelta(delta);
    const nodeDeltaMs = performance.now() - t0;
    const nodeWasmAfterDelta = host.wasm.memory.buffer.byteLength;
    ev.free();

    // workerd: the Worker.
    const edge = await startEdge({ vars: { ORIGIN_PUBLIC_KEYS: pub, MAX_SNAPSHOT_BYTES: String(256 << 20) } });
    let workerd = { pushMs: NaN, wasm: NaN, checkMs: NaN, status: 0 };
    try {
      t0 = performance.now();
      const put = await edge.fetch('/v1/acme/snapshot', { method: 'PUT', headers: { 'content-type': 'application/msgpack' }, body: bytes });
      workerd.pushMs = performance.now() - t0;
      workerd.status = put.status;
      if (put.status === 200) {
        // The first check loads the snapshot into the isolate's own evaluator.
        t0 = performance.now();
        const c = await edge.fetch('/v1/acme/check', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ subject: 'user:u1', action: 'read', resource: 'doc:w0-p0-d0' }),
        });
        workerd.firstCheckMs = performance.now() - t0;
        if (c.status !== 200) throw new Error(`check: ${c.status} ${c.body}`);
        t0 = performance.now();
        for (let i = 0; i < 50; i++) {
          await edge.fetch('/v1/acme/check', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ subject: `user:u${i}`, action: 'read', resource: `doc:w${i % 20}-p0-d0` }),
          });
        }
        workerd.checkMs = (performance.now() - t0) / 50;
        const st = await edge.fetch('/v1/acme/status');
        workerd.wasm = st.json?.edge?.wasmMemoryBytes ?? NaN;
        // The delta: the Durable Object applies it, then the next check brings the isolate to it.
        t0 = performance.now();
        const pd = await edge.fetch('/v1/acme/delta', { method: 'POST', headers: { 'content-type': 'application/msgpack' }, body: delta });
        if (pd.status !== 200) throw new Error(`delta: ${pd.status} ${pd.body}`);
        const c2 = await edge.fetch('/v1/acme/check', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ subject: 'user:newcomer', action: 'read', resource: 'doc:w0-p0-d0' }),
        });
        workerd.deltaMs = performance.now() - t0;
        if (c2.json?.epoch !== 2) throw new Error(`after the delta: ${c2.status} ${c2.body}`);
        const st2 = await edge.fetch('/v1/acme/status');
        workerd.wasmAfterDelta = st2.json?.edge?.wasmMemoryBytes ?? NaN;
      } else {
        workerd.error = put.json?.error?.code ?? put.body.slice(0, 80);
      }
    } finally {
      await edge.dispose();
    }
    rows.push({ t, modelBytes, gen, compile, statusRun, heap: status.heapBytes, bytes: bytes.length, nodeLoadMs, nodeWasm, nodeCheckUs, nodeDeltaMs, nodeWasmAfterDelta, workerd });
    console.error(`done: ${name}`);
  }
  const lines = [
    '| tenant (users / groups / docs / assignments) | model JSON | compile: time, peak RSS | snapshot | native load: time, peak RSS | index heap | Node: load, wasm memory, check; delta, wasm memory | workerd: PUT snapshot, first check, wasm memory, check; delta, wasm memory |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    if (r.refused) {
      lines.push(
        `| ${r.t.users.toLocaleString('en')} / ${r.t.groups.toLocaleString('en')} / ${r.t.docs.toLocaleString('en')} / ${r.t.assignments.toLocaleString('en')} ` +
          `| ${mb(r.modelBytes)} MB | refused in ${(r.compile.ms / 1000).toFixed(2)} s: ${r.refused.replace(/\|/g, '/')} | | | | | |`,
      );
      continue;
    }
    const w = r.workerd;
    lines.push(
      `| ${r.t.users.toLocaleString('en')} / ${r.t.groups.toLocaleString('en')} / ${r.t.docs.toLocaleString('en')} / ${r.t.assignments.toLocaleString('en')} ` +
        `| ${mb(r.modelBytes)} MB | ${(r.compile.ms / 1000).toFixed(2)} s, ${mb(r.compile.peakKb * 1024)} MB | ${mb(r.bytes)} MB ` +
        `| ${(r.statusRun.ms / 1000).toFixed(2)} s, ${mb(r.statusRun.peakKb * 1024)} MB | ${mb(r.heap)} MB ` +
        `| ${r.nodeLoadMs.toFixed(0)} ms, ${mb(r.nodeWasm)} MB, ${r.nodeCheckUs.toFixed(2)} µs; ${r.nodeDeltaMs.toFixed(0)} ms, ${mb(r.nodeWasmAfterDelta)} MB ` +
        `| ${w.status === 200 ? `${w.pushMs.toFixed(0)} ms, ${w.firstCheckMs.toFixed(0)} ms, ${mb(w.wasm)} MB, ${w.checkMs.toFixed(1)} ms; ${w.deltaMs.toFixed(0)} ms, ${mb(w.wasmAfterDelta)} MB` : `refused ${w.status} ${w.error}`} |`,
    );
  }
  const table = lines.join('\n');
  console.log(table);
  writeFileSync(path.join(OUT, 'report.md'), table + '\n');
}

await main();
