// What a token check costs (docs/javascript.md, `checkToken`), per algorithm, in one process on
// one build: tokens made by the `jose` library (tests/tokens/make.mjs), the model of the shared
// token cases (three issuer keys, sessions), a signed evaluator of the npm package.
//
//   scripts/build-pkg.sh && node bench/tokens.mjs [--tokens N] [--rounds R]
//
// Rows (µs per check, medians of interleaved rounds):
//   check (subject)            `check` of the same request by its subject: no token at all
//   <alg> first                `checkToken` of a token never seen: parse, gate 6, and the
//                              signature verified by the host's WebCrypto (Node's here)
//   <alg> again                the same token again: its verdict cached by fingerprint, so parse
//                              and gate 6 only, the state deciding as always
// The native command line verifies with Rust crates instead: `cargo bench -p edge-authz-protocol
// --features jws --bench tokens` prints those figures.
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const api = await import(join(root, 'pkg/src/node.mjs'));
const { makeCases } = await import(join(root, 'tests/tokens/make.mjs'));

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('--tokens', 300);
const ROUNDS = arg('--rounds', 5);
const ALGS = ['RS256', 'ES256', 'EdDSA'];

const now = Date.now();
const all = await makeCases(now);
const { publicKey, secretKey } = api.generateKeyPair();
const ev = new api.Evaluator({ tenant: 'acme', publicKeys: [publicKey] });
ev.loadSnapshot(api.compileSnapshot(all.model, { epoch: 1, secretKey, issuedAt: now }));

// Fresh tokens per round and algorithm (a token verified once is cached: "first" needs new ones).
async function tokens(alg, n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await all.sign({ sid: `bench-${alg}-${i}-${Math.random()}` }, alg));
  return out;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = new Map();
const record = (name, us) => rows.set(name, [...(rows.get(name) ?? []), us]);

for (let round = 0; round < ROUNDS; round++) {
  {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N * 10; i++) ev.check('user:alice', 'read', 'doc:roadmap');
    record('check (subject)', Number(process.hrtime.bigint() - t0) / 1e3 / (N * 10));
  }
  for (const alg of ALGS) {
    const list = await tokens(alg, N);
    let t0 = process.hrtime.bigint();
    for (const t of list) {
      const d = await ev.checkToken(t, 'read', 'doc:roadmap');
      if (!d.allowed) throw new Error(`${alg}: ${JSON.stringify(d)}`);
    }
    record(`${alg} first`, Number(process.hrtime.bigint() - t0) / 1e3 / N);
    t0 = process.hrtime.bigint();
    for (let k = 0; k < 10; k++) {
      for (const t of list) {
        const d = await ev.checkToken(t, 'read', 'doc:roadmap');
        if (!d.allowed) throw new Error(`${alg}: ${JSON.stringify(d)}`);
      }
    }
    record(`${alg} again`, Number(process.hrtime.bigint() - t0) / 1e3 / (N * 10));
  }
}

console.log(`Node ${process.version}, ${N} tokens per algorithm and round, ${ROUNDS} rounds (medians)`);
console.log('| row | µs per check | × check |');
console.log('|---|---|---|');
const base = median(rows.get('check (subject)'));
for (const [name, xs] of rows) {
  const m = median(xs);
  console.log(`| ${name} | ${m.toFixed(2)} | ${(m / base).toFixed(0)} |`);
}
ev.free();
