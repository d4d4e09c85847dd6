// What conditions cost a check from JavaScript (docs/decisions.md, "Conditions"): the benchmark
// workload without conditions and with a `when` on 10% of its assignments, each asked the same
// requests with no context and with a five-attribute context, in one process, on one build.
//
//   cargo build --release && scripts/build-pkg.sh && node bench/conditions.mjs [--users N] [--rounds R]
//
// Rows (ns per check: `check` per call over 1,000 warm requests, `checkMany` over 100,000 random
// requests in batches of 1,000; medians of interleaved rounds):
//   bare                        the model without conditions, no context: today's path
//   bare + context              the same, a five-attribute context read and checked in JS;
//                               nothing crosses into wasm (no condition tests an attribute)
//   conditions                  the model with conditions, no context (they fail closed)
//   conditions + context        the model with conditions, the context's attributes passed into
//                               wasm (once per checkMany batch), conditions evaluated
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const api = await import(join(root, 'pkg/src/node.mjs'));
const { generateRequests } = await import('./lib/requests.mjs');

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const bin = join(root, 'target/release/edge-authz');
if (!existsSync(bin)) execFileSync('cargo', ['build', '--release', '--quiet'], { cwd: root, stdio: 'inherit' });
const users = Number(arg('--users', 10000));
const ROUNDS = Number(arg('--rounds', 7));
const NOW = 1767225600000;

const bare = JSON.parse(execFileSync(bin, ['workload', '--users', String(users)], { maxBuffer: 1 << 28 }).toString());
// The same model, five conditions, a `when` on every tenth assignment.
function withConditions(model) {
  const m = structuredClone(model);
  m.conditions = {
    office: { attr: 'ip', op: 'in_cidr', value: ['10.0.0.0/8', '2001:db8::/32'] },
    managed: { attr: 'device', op: 'in', value: ['managed', 'compliant'] },
    low_risk: { attr: 'risk_score', op: '<', value: 50 },
    mfa_recent: { attr: 'mfa_age_s', op: '<=', value: 900, step_up: true },
    trusted: { any: ['office', 'managed'] },
  };
  const names = ['office', 'managed', 'low_risk', 'trusted'];
  m.assignments.forEach((a, i) => {
    if (i % 10 === 0) a.when = names[(i / 10) % names.length];
  });
  return m;
}
const conditional = withConditions(bare);
const context = { ip: '10.1.2.3', device: 'byod', risk_score: 12, mfa_age_s: 60, amr: ['pwd', 'mfa'] };

const { publicKey, secretKey } = api.generateKeyPair();
function load(model) {
  const ev = new api.Evaluator({ tenant: model.tenant, publicKeys: [publicKey], clock: () => NOW });
  ev.loadSnapshot(api.compileSnapshot(model, { epoch: 1, secretKey, issuedAt: NOW }));
  return ev;
}
const evBare = load(bare);
const evCond = load(conditional);
const requests = generateRequests(bare, 100000, { seed: 7, targeted: 0.25 });
const warm = requests.slice(0, 1000);

const rows = [
  ['bare', evBare, undefined],
  ['bare + context', evBare, context],
  ['conditions', evCond, undefined],
  ['conditions + context', evCond, context],
];
// Each row's answers, once: the allowed share, and proof that the rows differ where they should.
const share = rows.map(([, ev, ctx]) => requests.filter((q) => ev.check(q[0], q[1], q[2], ctx).allowed).length / requests.length);
for (const q of requests.slice(0, 5000)) {
  const [a, b] = [evBare.check(q[0], q[1], q[2]), evBare.check(q[0], q[1], q[2], context)];
  const many = evCond.checkMany([q], context)[0];
  const one = evCond.check(q[0], q[1], q[2], context);
  if (a.allowed !== b.allowed || JSON.stringify(many) !== JSON.stringify(one)) {
    console.error('answers disagree on', q, a, b, one, many);
    process.exit(1);
  }
}

function perCheck(ev, ctx, reqs, repeat) {
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < repeat; k++) for (let i = 0; i < reqs.length; i++) ev.check(reqs[i][0], reqs[i][1], reqs[i][2], ctx);
  return Number(process.hrtime.bigint() - t0) / (reqs.length * repeat);
}
function perBatch(ev, ctx, reqs) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < reqs.length; i += 1000) ev.checkMany(reqs.slice(i, i + 1000), ctx);
  return Number(process.hrtime.bigint() - t0) / reqs.length;
}
const figures = rows.map(() => ({ one: [], many: [] }));
for (const [, ev, ctx] of rows) {
  perCheck(ev, ctx, warm, 20);
  perBatch(ev, ctx, requests);
}
for (let round = 0; round < ROUNDS; round++) {
  rows.forEach(([, ev, ctx], k) => {
    figures[k].one.push(perCheck(ev, ctx, warm, 20));
    figures[k].many.push(perBatch(ev, ctx, requests));
  });
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const base = { one: median(figures[0].one), many: median(figures[0].many) };
console.log(`workload: ${users} users, ${bare.assignments.length} assignments (${conditional.assignments.filter((a) => a.when).length} with a condition); ${requests.length} requests; medians of ${ROUNDS} interleaved rounds`);
console.log('| model, context | allowed | check, ns | vs bare | checkMany, ns per check | vs bare | checkMany, M checks/s |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
rows.forEach(([name], k) => {
  const one = median(figures[k].one);
  const many = median(figures[k].many);
  console.log(`| ${name} | ${(100 * share[k]).toFixed(1)}% | ${one.toFixed(0)} | ${(one / base.one).toFixed(2)}x | ${many.toFixed(0)} | ${(many / base.many).toFixed(2)}x | ${(1000 / many).toFixed(2)} |`);
});
