// Property test of how the package reads and copies what callers hand it (pkg/src/api.js): every
// entry point that copies strings into wasm memory, driven by inputs that change between reads
// (getters, Proxies, arrays whose length changes, objects with toString/valueOf), from a seeded
// generator (the same cases on every run; EDGE_AUTHZ_FUZZ_SEED picks another seed, EDGE_AUTHZ_FUZZ_CASES
// another count). For every case:
// - the answer (or the error's code) equals the answer for the values read once, given as plain
//   values to a reference evaluator (or to the same pure function);
// - every error is an Error with a snake_case `code` other than `internal`;
// - no getter or trap value is read more than once, and no toString/valueOf is ever called;
// and, every few cases and at the end, another tenant's evaluator in the same process still
// answers exactly as before and as one built afresh (nothing was written out of bounds).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { importPackage, REPO_DIR } from './pkg.mjs';
import { rng } from '../../bench/lib/rng.mjs';

const api = await importPackage();
const { Evaluator, generateKeyPair, compileSnapshot, diffModels, signWatermark, validateModel, inspect } = api;

const SEED = Number(process.env.EDGE_AUTHZ_FUZZ_SEED ?? 20261202);
const CASES = Number(process.env.EDGE_AUTHZ_FUZZ_CASES ?? 3000);
const NOW = 1_798_000_000_000;
const EXPIRES = 1798761600000; // alice's admin grant in the example model
const SNAKE = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;

const EXAMPLE = JSON.parse(readFileSync(path.join(REPO_DIR, 'tests/conformance/models/example.json'), 'utf8'));
const MODEL = structuredClone(EXAMPLE);
MODEL.resources.push({ id: 'doc:élan-📄', parent: 'workspace:eng' }, { id: `doc:${'€'.repeat(85)}`, parent: 'org:acme' });
MODEL.memberships.push({ member: 'user:😀', group: 'group:eng' }, { member: `user:${'€'.repeat(85)}`, group: 'group:staff' });
const LATER = structuredClone(MODEL);
LATER.assignments.push({ principal: 'user:bob', role: 'editor', resource: 'doc:élan-📄' });

const KEY = generateKeyPair();
const OTHER_KEY = generateKeyPair();
const SNAPSHOT = compileSnapshot(MODEL, { epoch: 1, secretKey: KEY.secretKey, issuedAt: NOW });
const DELTA = diffModels(MODEL, LATER, { baseEpoch: 1, epoch: 2, secretKey: KEY.secretKey, issuedAt: NOW }).delta;
const clock = () => NOW;

function signed(snapshot = SNAPSHOT, tenant = 'acme', key = KEY) {
  const ev = new Evaluator({ tenant, publicKeys: [key.publicKey], clock });
  ev.loadSnapshot(snapshot);
  return ev;
}

// ---- values: specs, materialized as a live (hostile) value or as what one read gives ----------

const IDS = [
  'user:alice', 'user:bob', 'user:mallory', 'user:😀', `user:${'€'.repeat(85)}`, 'group:eng', 'group:staff',
  'doc:roadmap', 'doc:élan-📄', `doc:${'€'.repeat(85)}`, 'org:acme', 'workspace:eng', 'read', 'write', 'export',
  'delete', 'a', 'doc', 'org', '', 'user:\uD800', 'doc:\uDC00x', '€'.repeat(321), `user:${'x'.repeat(316)}`,
  `user:${'x'.repeat(317)}`, '€'.repeat(4000), 'x'.repeat(70_000),
];
const NUMBERS = [NOW, 0, 1, EXPIRES - 1, EXPIRES, 2 ** 53 - 1, 2 ** 53, -1, 1.5, NaN, Infinity, '1500', null, undefined, true];
const EPOCHS = [1, 2, 3, 0, -1, 1.5, 2 ** 60, '2', null, undefined];
const TENANTS = ['acme', 'globex', 'ACME', '€'.repeat(300), 'x'.repeat(5000), 'acme\uD800', 5, null, undefined];
const SECRETS = [KEY.secretKey, OTHER_KEY.secretKey, 'garbage!', '€'.repeat(300), 'acme\uD800', 5, undefined];
const PUBLICS = [KEY.publicKey, OTHER_KEY.publicKey, 'AAAA', '€'.repeat(300), 'k\uD800', 5, null];

// A spec is {leaf: v} | {flip: [spec, spec]} (first read, later reads) | {stringy: string} (an
// object with toString/valueOf) | {array: [spec...], len?: [n1, n2], grow?: true} | {object:
// {key: spec}, proxy?: bool}.
function leafOrFlip(r, pool, flipRate = 0.5) {
  // Half the time the pool's first (valid) value, so that whole calls succeed too.
  const leaf = () => (r.next() < 0.06 ? { stringy: r.pick(IDS) } : { leaf: r.next() < 0.5 ? pool[0] : r.pick(pool) });
  return r.next() < flipRate ? { flip: [leaf(), leaf()] } : leaf();
}

function arraySpec(r, elements) {
  const s = { array: elements, proxy: r.next() < 0.4 };
  const roll = r.next();
  if (roll < 0.15) s.len = [elements.length, r.pick([0, 1, elements.length + 1, 5000, 2 ** 32])];
  else if (roll < 0.3 && elements.length > 0) s.grow = true;
  return s;
}

function objectSpec(r, fields) {
  return { object: fields, proxy: r.next() < 0.4 };
}

function contextSpec(r) {
  const roll = r.next();
  if (roll < 0.15) return { leaf: r.pick([undefined, null, 5, 'now']) };
  const fields = { now: leafOrFlip(r, NUMBERS) };
  if (r.next() < 0.1) fields.extra = { leaf: 1 };
  if (r.next() < 0.1) delete fields.now;
  return objectSpec(r, fields);
}

class Probe {
  constructor() {
    this.reads = [];
    this.coercions = 0;
  }

  // The live value of a spec: every flip counts its reads.
  live(spec) {
    if ('leaf' in spec) return spec.leaf;
    if ('stringy' in spec) return this.stringy(spec.stringy);
    if ('flip' in spec) throw new Error('a flip is installed by its container');
    if ('array' in spec) return this.container([], spec.array, spec);
    return this.container({}, spec.object, spec);
  }

  stringy(s) {
    const bump = () => {
      this.coercions++;
      return s;
    };
    return { toString: bump, valueOf: bump, [Symbol.toPrimitive]: bump };
  }

  // A getter giving the spec's first value, then its later one.
  reader(spec) {
    const counter = { n: 0 };
    this.reads.push(counter);
    const [first, later] = spec.flip.map((s) => this.live(s));
    return () => (counter.n++ === 0 ? first : later);
  }

  container(target, fields, spec) {
    const getters = new Map();
    for (const [k, f] of Object.entries(fields)) {
      if ('flip' in f) getters.set(String(k), this.reader(f));
      else target[k] = this.live(f);
    }
    const isArray = Array.isArray(target);
    if (isArray) target.length = fields.length;
    let lenRead = null;
    if (spec.len) {
      const counter = { n: 0 };
      this.reads.push(counter);
      lenRead = () => (counter.n++ === 0 ? spec.len[0] : spec.len[1]);
    }
    if (spec.grow) {
      // The last element's read makes the array much longer (as a callback that pushes would).
      const last = String(fields.length - 1);
      const inner = getters.get(last) ?? ((v) => () => v)(target[last]);
      getters.set(last, () => {
        const v = inner();
        for (let i = 0; i < 2000; i++) target.push(['€'.repeat(321), '€'.repeat(321), '€'.repeat(321)]);
        return v;
      });
    }
    if (!spec.proxy && !lenRead) {
      for (const [k, g] of getters) Object.defineProperty(target, k, { get: g, enumerable: true, configurable: true });
      return target;
    }
    for (const k of getters.keys()) target[k] = undefined; // own and enumerable, read through the trap
    return new Proxy(target, {
      get: (t, p) => (p === 'length' && lenRead ? lenRead() : getters.has(p) ? getters.get(p)() : t[p]),
    });
  }

  // What reading the live value once gives, as plain values.
  static plain(spec) {
    if ('leaf' in spec) return spec.leaf;
    if ('stringy' in spec) return { toString: () => spec.stringy, valueOf: () => spec.stringy };
    if ('flip' in spec) return Probe.plain(spec.flip[0]);
    if ('array' in spec) {
      const n = spec.len ? spec.len[0] : spec.array.length;
      if (!Number.isSafeInteger(n) || n > 2 ** 32 - 1) return { badLength: true };
      return Array.from({ length: n }, (_, i) => (i < spec.array.length ? Probe.plain(spec.array[i]) : undefined));
    }
    return Object.fromEntries(Object.entries(spec.object).map(([k, f]) => [k, Probe.plain(f)]));
  }

  check() {
    const twice = this.reads.filter((c) => c.n > 1).length;
    assert.equal(twice, 0, `${twice} values read more than once`);
    assert.equal(this.coercions, 0, 'a toString/valueOf was called');
  }
}

// ---- outcomes --------------------------------------------------------------------------------

const hex = (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const json = (v) => JSON.parse(JSON.stringify(v, (_, x) => (x instanceof Uint8Array ? hex(x) : x)));

function outcome(f) {
  try {
    return { value: json(f()) };
  } catch (e) {
    assert.ok(e instanceof Error, `threw a non-Error: ${String(e)}`);
    assert.ok(typeof e.code === 'string' && SNAKE.test(e.code), `an Error without a code: ${e.message}`);
    assert.notEqual(e.code, 'internal', `internal: ${e.message} (${e.cause})`);
    return { code: e.code };
  }
}

const PROBES = [
  ['user:alice', 'read', 'doc:roadmap'],
  ['user:alice', 'export', 'doc:élan-📄'],
  ['user:😀', 'read', 'doc:roadmap'],
  [`user:${'€'.repeat(85)}`, 'read', `doc:${'€'.repeat(85)}`],
  ['user:mallory', 'read', 'org:acme'],
  ['group:eng', 'write', 'workspace:eng'],
];

// What an evaluator answers, from top to bottom (used for evaluators a case builds, and for the
// bystander).
function answersOf(ev) {
  return json({
    status: ev.status(),
    checks: PROBES.map((q) => ev.check(...q, { now: NOW })),
    many: ev.checkMany(PROBES),
    resources: outcome(() => ev.listResources('user:alice', 'export')),
    subjects: outcome(() => ev.listSubjects('doc:roadmap', 'read')),
  });
}

// ---- the entry points ------------------------------------------------------------------------

// Each builds a case from the generator: `args` (specs) and `call(ev, ...values)`; the answer for
// the live values must equal the answer for the plain ones. `ev` is the evaluator under test, or
// the reference one for the plain values.
const ENTRIES = {
  check: (r) => ({
    args: [leafOrFlip(r, IDS, 0), leafOrFlip(r, IDS, 0), leafOrFlip(r, IDS, 0), contextSpec(r)],
    call: (ev, s, a, rr, c) => ev.check(s, a, rr, c),
  }),
  checkMany: (r) => {
    const n = r.pick([0, 1, 2, 3, 8, 20, 40]);
    const tuples = Array.from({ length: n }, () => {
      if (r.next() < 0.08) return leafOrFlip(r, [undefined, null, 'user:alice', 5]);
      const len = r.next() < 0.1 ? r.pick([2, 4]) : 3;
      return arraySpec(r, Array.from({ length: len }, () => leafOrFlip(r, IDS, 0.3)));
    });
    return { args: [arraySpec(r, tuples), contextSpec(r)], call: (ev, q, c) => ev.checkMany(q, c) };
  },
  listResources: (r) => {
    const fields = {};
    if (r.next() < 0.5) fields.type = leafOrFlip(r, ['doc', 'org', 'workspace', 'Doc', '€'.repeat(300), 5, null]);
    if (r.next() < 0.5) fields.now = leafOrFlip(r, NUMBERS);
    if (r.next() < 0.4) fields.context = r.next() < 0.3 ? { flip: [contextSpec(r), contextSpec(r)] } : contextSpec(r);
    return {
      args: [{ leaf: r.pick(IDS) }, { leaf: r.pick(['read', 'write', 'export', 'a']) }, objectSpec(r, fields)],
      call: (ev, s, a, o) => ev.listResources(s, a, o),
    };
  },
  listSubjects: (r) => {
    const fields = {};
    if (r.next() < 0.5) fields.now = leafOrFlip(r, NUMBERS);
    if (r.next() < 0.4) fields.context = r.next() < 0.3 ? { flip: [contextSpec(r), contextSpec(r)] } : contextSpec(r);
    return {
      args: [{ leaf: r.pick(IDS) }, { leaf: r.pick(['read', 'write', 'export']) }, objectSpec(r, fields)],
      call: (ev, res, a, o) => ev.listSubjects(res, a, o),
    };
  },
  constructor: (r) => {
    const keys = arraySpec(r, Array.from({ length: r.pick([0, 1, 2]) }, () => leafOrFlip(r, PUBLICS)));
    const fields = { tenant: leafOrFlip(r, TENANTS), publicKeys: r.next() < 0.9 ? keys : leafOrFlip(r, PUBLICS) };
    return {
      args: [objectSpec(r, fields)],
      call: (_, o) => {
        const ev = new Evaluator(o);
        try {
          return { load: outcome(() => ev.loadSnapshot(SNAPSHOT)), answers: answersOf(ev) };
        } finally {
          ev.free();
        }
      },
    };
  },
  preview: (r) => {
    const fields = {};
    for (const k of Object.keys(MODEL)) fields[k] = { leaf: MODEL[k] };
    fields.tenant = leafOrFlip(r, TENANTS);
    const model = r.next() < 0.8 ? objectSpec(r, fields) : { leaf: r.pick([JSON.stringify(MODEL), '{', 5, `{"a":"\uD800"}`]) };
    return {
      args: [model],
      call: (_, m) => {
        const ev = Evaluator.preview(m, { clock });
        try {
          return answersOf(ev);
        } finally {
          ev.free();
        }
      },
    };
  },
  compileSnapshot: (r) => ({
    args: [
      { leaf: r.pick([MODEL, LATER, JSON.stringify(MODEL), 5]) },
      objectSpec(r, { epoch: leafOrFlip(r, EPOCHS), secretKey: leafOrFlip(r, SECRETS), issuedAt: leafOrFlip(r, [NOW, 1, -1, '1']) }),
    ],
    call: (_, m, o) => compileSnapshot(m, o),
  }),
  diffModels: (r) => ({
    args: [
      { leaf: MODEL },
      { leaf: r.pick([MODEL, LATER]) },
      objectSpec(r, {
        baseEpoch: leafOrFlip(r, EPOCHS),
        epoch: leafOrFlip(r, EPOCHS),
        secretKey: leafOrFlip(r, SECRETS),
        issuedAt: { leaf: NOW },
      }),
    ],
    call: (_, b, a, o) => diffModels(b, a, o),
  }),
  signWatermark: (r) => ({
    args: [
      objectSpec(r, {
        tenant: leafOrFlip(r, TENANTS),
        watermark: leafOrFlip(r, EPOCHS),
        secretKey: leafOrFlip(r, SECRETS),
        issuedAt: { leaf: NOW },
        delta: leafOrFlip(r, [undefined, DELTA, 'abc']),
      }),
    ],
    call: (_, o) => signWatermark(o),
  }),
  validateModel: (r) => {
    const fields = {};
    for (const k of Object.keys(MODEL)) fields[k] = { leaf: MODEL[k] };
    fields.tenant = leafOrFlip(r, TENANTS);
    fields.version = leafOrFlip(r, [1, 2, '1']);
    return { args: [objectSpec(r, fields)], call: (_, m) => validateModel(m) };
  },
  inspect: (r) => ({
    args: [
      { leaf: r.pick([SNAPSHOT, DELTA]) },
      objectSpec(r, { publicKeys: arraySpec(r, Array.from({ length: r.pick([0, 1, 2]) }, () => leafOrFlip(r, PUBLICS))) }),
    ],
    call: (_, b, o) => inspect(b, o),
  }),
  messages: (r) => {
    // A byte view that lies about its length, or a fake one.
    const kind = r.pick(['liar', 'fake', 'plain']);
    return {
      args: [{ leaf: kind }, { leaf: r.pick(['snapshot', 'delta']) }],
      call: (_, k, which) => {
        const bytes = which === 'snapshot' ? SNAPSHOT : DELTA;
        const ev = signed(compileSnapshot(MODEL, { epoch: 1, secretKey: KEY.secretKey, issuedAt: NOW - 1 }));
        try {
          let view = bytes;
          if (k === 'liar') {
            view = new (class extends Uint8Array {
              get length() {
                return 1;
              }
              get byteLength() {
                return 1;
              }
            })(bytes.length);
            view.set(bytes);
          } else if (k === 'fake') {
            view = Object.setPrototypeOf({ length: bytes.length }, Uint8Array.prototype);
          }
          const r1 = outcome(() => (which === 'snapshot' ? ev.loadSnapshot(view) : ev.applyDelta(view)));
          return { r1, answers: answersOf(ev) };
        } finally {
          ev.free();
        }
      },
    };
  },
};

// The plain answer of `messages` is by the bytes the view really holds (what the glue copies).
function plainArgs(name, args) {
  if (name === 'messages' && args[0].leaf === 'liar') return [{ leaf: 'plain' }, args[1]];
  return args;
}

test(`copying into wasm memory: ${CASES} seeded cases with values that change between reads`, () => {
  const r = rng(SEED);
  const ev = signed();
  const ref = signed();
  const globexModel = { ...structuredClone(MODEL), tenant: 'globex' };
  const globexSnap = compileSnapshot(globexModel, { epoch: 1, secretKey: OTHER_KEY.secretKey, issuedAt: NOW });
  const bystander = signed(globexSnap, 'globex', OTHER_KEY);
  const bystanderAnswers = answersOf(bystander);
  const intact = (where) => {
    const fresh = signed(globexSnap, 'globex', OTHER_KEY);
    const now = answersOf(bystander);
    assert.ok(isDeepStrictEqual(now, bystanderAnswers), `${where}: another tenant's evaluator changed`);
    assert.ok(isDeepStrictEqual(now, answersOf(fresh)), `${where}: another tenant's evaluator differs from a fresh one`);
    fresh.free();
  };
  const names = Object.keys(ENTRIES);
  const seen = Object.fromEntries(names.map((n) => [n, { cases: 0, errors: 0, flips: 0 }]));
  for (let i = 0; i < CASES; i++) {
    const name = names[i % names.length];
    // A function's arguments are read once by the language: a top-level flip is its first value.
    const { args: specs, call } = ENTRIES[name](r);
    const args = specs.map((s) => ('flip' in s ? s.flip[0] : s));
    const where = `case ${i} (${name}, seed ${SEED})`;
    const probe = new Probe();
    let got;
    let want;
    try {
      const live = args.map((s) => probe.live(s));
      got = outcome(() => call(ev, ...live));
      probe.check();
      const plain = plainArgs(name, args).map((s) => Probe.plain(s));
      want = plain.some((v) => v?.badLength) ? { code: 'invalid_argument' } : outcome(() => call(ref, ...plain));
    } catch (e) {
      e.message = `${where}: ${e.message}`;
      throw e;
    }
    assert.deepEqual(got, want, `${where}: the answer for the live values differs from the one for the values read once`);
    seen[name].cases++;
    if ('code' in got) seen[name].errors++;
    seen[name].flips += probe.reads.length;
    if (i % 100 === 99) intact(where);
  }
  intact('the end');
  assert.deepEqual(answersOf(ev), answersOf(ref), 'the evaluator under test answers as the reference');
  for (const [name, s] of Object.entries(seen)) {
    // (`messages` tries byte views that lie about their length instead.)
    assert.ok(s.cases > 0 && (s.flips > 0 || name === 'messages'), `${name}: ${JSON.stringify(s)}: no values that change were tried`);
    assert.ok(s.errors < s.cases || name === 'messages', `${name}: ${JSON.stringify(s)}: every case failed`);
  }
  ev.free();
  ref.free();
  bystander.free();
});
