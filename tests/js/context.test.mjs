// Contexts through the npm package (docs/decisions.md, "Context"), differentially: thousands of
// random contexts (attribute keys valid and not, every value type, empty and full lists, strings
// of one to four UTF-8 bytes a character up to and past the limit, NaN and Infinity, the reserved
// keys) on a model whose conditions test those attributes. The package reads each context in
// JavaScript and passes the attributes into wasm as bytes; the same request as JSON goes through
// the core's own reader (the protocol crate's `read_context`, as the Worker reads it): the command
// line's `check --model --requests -`, natively. Both must give the same decision, `check` and `checkMany` alike, and the evaluator
// must answer a fixed grid exactly as a fresh one does afterwards (no write past its buffers).
import { test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import assert from 'node:assert/strict';
import { importPackage, REPO_DIR } from './pkg.mjs';
import { rng } from '../../bench/lib/rng.mjs';

const api = await importPackage();
const BIN = `${REPO_DIR}/target/release/edge-authz`;
const NOW = 1_796_212_800_000;
const SEED = Number(process.env.EDGE_AUTHZ_FUZZ_SEED ?? 20261203);
const CASES = Number(process.env.EDGE_AUTHZ_FUZZ_CASES ?? 3000);

const MODEL = {
  version: 1,
  tenant: 'acme',
  actions: { read: { tier: 'low' }, export: { tier: 'high', requires: ['mfa'] } },
  roles: { viewer: ['read'], exporter: ['read', 'export'] },
  resources: [{ id: 'org:acme' }, { id: 'doc:a', parent: 'org:acme' }],
  assignments: [
    { principal: 'user:a', role: 'exporter', resource: 'org:acme', when: 'trusted' },
    { principal: 'user:b', role: 'viewer', resource: 'doc:a', when: 'tagged' },
    { principal: 'user:c', role: 'viewer', resource: 'org:acme', when: 'named' },
  ],
  conditions: {
    mfa: { attr: 'mfa_age_s', op: '<=', value: 900, step_up: true },
    office: { attr: 'ip', op: 'in_cidr', value: ['10.0.0.0/8', '2001:db8::/32'] },
    managed: { attr: 'device', op: 'in', value: ['managed', 'é', '😀'] },
    trusted: { any: ['office', 'managed'] },
    tagged: { attr: 'tags', op: 'contains', value: 'x' },
    named: { all: ['unflagged', 'long'] },
    unflagged: { not: 'flagged' },
    flagged: { attr: 'flagged', op: '==', value: true },
    long: { attr: 'name', op: '!=', value: 'é'.repeat(128) },
  },
};

const KEYS = ['ip', 'device', 'mfa_age_s', 'tags', 'flagged', 'name', 'other', 'now', 'at_least_epoch', 'Bad', '1x', 'a-b', 'k'.repeat(64), 'k'.repeat(65), ''];
const STRINGS = ['10.1.2.3', '2001:db8::1', '::ffff:10.0.0.1', '192.0.2.1', 'managed', 'é', '😀', 'x', '', 'é'.repeat(128), 'é'.repeat(129), 'x'.repeat(256), 'x'.repeat(257), '€'.repeat(85), '€'.repeat(86), '\uD800'];

function value(r) {
  switch (r.below(9)) {
    case 0: return STRINGS[r.below(STRINGS.length)];
    case 1: return [0, 1, 900, 901, -5, 1.5, 1e300, NaN, Infinity, -Infinity][r.below(10)];
    case 2: return r.below(2) === 0;
    case 3: return [];
    case 4: return Array.from({ length: r.below(4) }, () => STRINGS[r.below(STRINGS.length)]);
    case 5: return Array(32 + r.below(2)).fill('x');
    case 6: return [r.below(2) === 0 ? 'x' : 1];
    case 7: return [null, undefined, {}, 5n][r.below(4)];
    default: return NOW;
  }
}

function context(r) {
  if (r.below(20) === 0) return [undefined, null, [], 'x', 5][r.below(5)];
  const c = {};
  const n = r.below(8);
  for (let i = 0; i < n; i++) c[KEYS[r.below(KEYS.length)]] = value(r);
  if (r.below(30) === 0) for (let i = 0; i < 33; i++) c[`k${i}`] = i;
  return c;
}

const REQUESTS = [];
for (const s of ['user:a', 'user:b', 'user:c', 'user:d']) for (const a of ['read', 'export']) for (const res of ['org:acme', 'doc:a']) REQUESTS.push([s, a, res]);

/** The request as a JSON line, or null when the context has no JSON form equal to the
 * JavaScript value (NaN, undefined, a bigint...): JSON hosts cannot send those. */
function jsonLine(q, c) {
  const same = (x) => {
    if (x === undefined || typeof x === 'bigint' || (typeof x === 'number' && !Number.isFinite(x))) return false;
    if (typeof x === 'string') return x.isWellFormed();
    if (Array.isArray(x)) return x.every(same);
    if (x && typeof x === 'object') return Object.values(x).every(same);
    return true;
  };
  if (c !== undefined && !same(c)) return null;
  return JSON.stringify({ subject: q[0], action: q[1], resource: q[2], context: c ?? null });
}

test(`${CASES} random contexts: the package's bytes and the core's JSON reader decide alike`, () => {
  const ev = api.Evaluator.preview(MODEL, { clock: () => NOW });
  const fresh = api.Evaluator.preview(MODEL, { clock: () => NOW });
  const r = rng(SEED);
  const seen = new Set();
  const lines = [];
  const answers = [];
  for (let i = 0; i < CASES; i++) {
    const c = context(r);
    const many = ev.checkMany(REQUESTS, c);
    REQUESTS.forEach((q, k) => {
      const one = ev.check(...q, c);
      assert.deepEqual(many[k], one, `checkMany and check on ${inspect(c)}`);
      seen.add(one.reason);
      const line = jsonLine(q, c);
      if (line !== null) {
        lines.push(line);
        answers.push([one, q, c]);
      }
    });
  }
  // The same requests through the core's JSON reader, in one run of the command line.
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-authz-context-'));
  writeFileSync(path.join(dir, 'model.json'), JSON.stringify(MODEL));
  const out = execFileSync(BIN, ['check', '--model', path.join(dir, 'model.json'), '--now', String(NOW), '--requests', '-'], {
    input: lines.join('\n'),
    maxBuffer: 1 << 28,
  }).toString().trim().split('\n');
  assert.equal(out.length, answers.length);
  answers.forEach(([one, q, c], i) => assert.deepEqual(JSON.parse(out[i]), one, `${q.join(' ')} with ${inspect(c)}`));
  // Every outcome was reached.
  for (const reason of ['granted', 'step_up_required', 'condition_failed', 'no_grant', 'invalid_request']) {
    assert.ok(seen.has(reason), `no ${reason} among ${[...seen]}`);
  }
  // Nothing was written where it should not be: the grid answers as a fresh evaluator's.
  for (const c of [undefined, { ip: '10.0.0.1', mfa_age_s: 5, tags: ['x'], name: 'n' }]) {
    assert.deepEqual(ev.checkMany(REQUESTS, c), fresh.checkMany(REQUESTS, c));
  }
  ev.free();
  fresh.free();
});
