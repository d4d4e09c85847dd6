// Hostile and malformed input through the npm package's JavaScript API, shared by
// hostile.test.mjs (the package loaded with `import`) and hostile.test.cjs (with `require`).
//
// 1. The native hostile catalogue (tests/it/hostile.rs, exported by its test
//    `export_the_catalogue_for_the_js_tests` to target/tmp/hostile-catalogue.json): the evaluator
//    of `edge()` is rebuilt from the same signed messages, every entry must be refused with its
//    code, and leave `status()` and a fixed set of answers exactly as they were.
// 2. Bad input only JavaScript can give: values that are not bytes, options of the wrong types,
//    ids that are not strings, lone surrogates, huge strings, malformed contexts, malformed batch
//    entries, batches over the 8192-request chunk and batches that grow the input buffer, and
//    an evaluator used after `free()`.
'use strict';
const assert = require('node:assert/strict');
const { existsSync, readFileSync } = require('node:fs');
const path = require('node:path');
const { isDeepStrictEqual } = require('node:util');
const { CATALOGUE, REPO_DIR } = require('./pkg.cjs');

const EXAMPLE = JSON.parse(
  readFileSync(path.join(REPO_DIR, 'tests/conformance/models/example.json'), 'utf8'),
);
const NOW = 1500;
const bytes = (b64) => new Uint8Array(Buffer.from(b64, 'base64'));
const asJson = (v) => JSON.parse(JSON.stringify(v));
const SNAKE = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;

/** Calls `f`, which must throw an `Error` whose `code` is `code`; returns the error. */
function throwsCode(f, code, what) {
  let err;
  try {
    f();
  } catch (e) {
    err = e;
  }
  assert.ok(err !== undefined, `${what}: did not throw (expected \`${code}\`)`);
  assert.ok(err instanceof Error, `${what}: threw a non-Error: ${String(err)}`);
  assert.equal(err.code, code, `${what}: code \`${err.code}\` (${err.message}), expected \`${code}\``);
  assert.ok(typeof err.message === 'string' && err.message.length > 0, `${what}: no message`);
  return err;
}

function apply(ev, call, b) {
  switch (call) {
    case 'snapshot':
      return ev.loadSnapshot(b);
    case 'delta':
      return ev.applyDelta(b);
    case 'watermark':
      return ev.applyWatermark(b);
    default:
      throw new Error(`unknown call ${call}`);
  }
}

/** A model with nested groups, long and non-ASCII ids, for the batch tests. */
function richModel(users = 64) {
  const long = (p, i) => `${p}:${'x'.repeat(240)}-${i}`;
  const m = structuredClone(EXAMPLE);
  m.resources.push({ id: 'doc:élan-📄', parent: 'workspace:eng' });
  for (let i = 0; i < 8; i++) m.resources.push({ id: long('doc', i), parent: 'workspace:eng' });
  m.memberships.push({ member: 'group:staff', group: 'group:all' });
  m.memberships.push({ member: 'user:😀', group: 'group:eng' });
  for (let i = 0; i < users; i++) {
    const u = i % 3 === 0 ? `user:ü${i}` : `user:u${i}`;
    m.memberships.push({ member: u, group: `group:g${i % 5}` });
    if (i % 2 === 0) m.memberships.push({ member: `group:g${i % 5}`, group: 'group:eng' });
  }
  m.memberships = m.memberships.filter(
    (x, i, all) => all.findIndex((y) => y.member === x.member && y.group === x.group) === i,
  );
  m.assignments.push({ principal: 'group:all', role: 'editor', resource: long('doc', 3) });
  m.assignments.push({ principal: 'user:\uFFFD', role: 'admin', resource: 'org:acme' });
  m.assignments.push({ principal: 'group:g3', role: 'editor', resource: 'doc:élan-📄' });
  m.suspended.push('user:u7');
  return m;
}

/** Requests over the rich model: granted ones with paths, refusals, and malformed ids. */
function richRequests(m, n) {
  const subjects = [...new Set(m.memberships.map((x) => x.member)), 'user:alice', 'user:bob', 'user:u7', 'user:😀'];
  const resources = m.resources.map((r) => r.id).concat(['doc:missing']);
  const actions = ['read', 'write', 'export', 'delete', 'Bad'];
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push([
      subjects[(i * 7) % subjects.length],
      actions[(i * 3 + (i >> 4)) % actions.length],
      resources[(i * 5 + (i >> 3)) % resources.length],
    ]);
  }
  return out;
}

module.exports = function defineHostileTests(api, test, label) {
  const { Evaluator, generateKeyPair, compileSnapshot, diffModels, signWatermark, inspect } = api;
  const KEY = generateKeyPair();

  /** A signed evaluator holding the example at epoch 1 (confirmed at NOW), at `clock` (NOW). */
  function signedExample(clock = () => NOW) {
    const ev = new Evaluator({ tenant: 'acme', publicKeys: [KEY.publicKey], clock });
    ev.loadSnapshot(compileSnapshot(EXAMPLE, { epoch: 1, secretKey: KEY.secretKey, issuedAt: NOW }));
    return ev;
  }

  const FIXED = [
    ['user:alice', 'read', 'doc:roadmap'],
    ['user:alice', 'export', 'workspace:eng'],
    ['user:bob', 'read', 'org:acme'],
    ['group:eng', 'read', 'org:acme'],
    ['user:mallory', 'read', 'org:acme'],
  ];
  const answers = (ev) => FIXED.map((q) => ev.check(...q, { now: NOW }));

  test(`${label}: the native hostile catalogue is refused with its codes and changes nothing`, async (t) => {
    assert.ok(
      existsSync(CATALOGUE),
      `${CATALOGUE} is missing: run \`cargo test --test it\` first (tests/it/hostile.rs writes it)`,
    );
    const doc = JSON.parse(readFileSync(CATALOGUE, 'utf8'));
    const ev = new Evaluator({ tenant: doc.tenant, publicKeys: [doc.public_key], clock: () => NOW });
    for (const s of doc.setup) apply(ev, s.call, bytes(s.bytes));
    // The rebuilt evaluator answers as the native one did.
    const native = doc.checks.map((c) => ev.check(...c.request, { now: c.now }));
    assert.deepEqual(asJson(native), doc.checks.map((c) => c.decision), 'answers of the rebuilt edge()');
    const status = ev.status();
    assert.equal(status.epoch, 2);
    assert.equal(status.watermark, 2);
    const before = answers(ev);
    assert.ok(doc.entries.length >= 46, `only ${doc.entries.length} entries`);
    for (const e of doc.entries) {
      await t.test(e.name, () => {
        // The package's evaluators have the default limits (the native test lowers max_entries).
        const code = e.code_default_limits ?? e.code;
        throwsCode(() => apply(ev, e.call, bytes(e.bytes)), code, `${e.name} (${e.call})`);
        assert.deepEqual(ev.status(), status, `${e.name}: status changed`);
        assert.deepEqual(answers(ev), before, `${e.name}: answers changed`);
      });
    }
    // Where the codes differ, the native test's lower limit is the reason.
    const differ = doc.entries.filter((e) => (e.code_default_limits ?? e.code) !== e.code);
    assert.ok(differ.every((e) => e.code === 'limit_exceeded'), JSON.stringify(differ.map((e) => e.name)));
    t.diagnostic(`${doc.entries.length} entries; ${differ.length} answered under the default limits: ${differ.map((e) => e.name).join(', ')}`);
    ev.free();
  });

  test(`${label}: bytes that are not a Uint8Array are refused with invalid_argument`, () => {
    const ev = signedExample();
    const status = ev.status();
    const before = answers(ev);
    const bad = [undefined, null, 'EDGEAZS\x01', 123, [69, 68, 71, 69], {}, { length: 3, 0: 1 }, true, Symbol('b')];
    for (const call of ['snapshot', 'delta', 'watermark']) {
      for (const b of bad) {
        throwsCode(() => apply(ev, call, b), 'invalid_argument', `${call}(${String(b)})`);
        assert.deepEqual(ev.status(), status);
      }
    }
    assert.deepEqual(answers(ev), before);
    // A message inside a larger buffer (byteOffset > 0) and as a Node Buffer is read exactly.
    const snap = compileSnapshot(EXAMPLE, { epoch: 2, secretKey: KEY.secretKey, issuedAt: NOW + 1 });
    const big = new Uint8Array(snap.length + 10);
    big.set(snap, 7);
    assert.deepEqual(ev.loadSnapshot(big.subarray(7, 7 + snap.length)), { epoch: 2, applied: true });
    assert.deepEqual(ev.loadSnapshot(Buffer.from(snap)), { epoch: 2, applied: false });
    throwsCode(() => ev.loadSnapshot(big.subarray(6, 6 + snap.length)), 'bad_magic', 'shifted view');
    ev.free();
  });

  test(`${label}: options of the wrong types are refused with a code`, () => {
    const sk = KEY.secretKey;
    const cases = [
      [() => new Evaluator(), 'invalid_argument'],
      [() => new Evaluator(null), 'invalid_argument'],
      [() => new Evaluator('acme'), 'invalid_argument'],
      [() => new Evaluator({ tenant: 5, publicKeys: [KEY.publicKey] }), 'invalid_argument'],
      [() => new Evaluator({ tenant: 'acme' }), 'invalid_argument'],
      [() => new Evaluator({ tenant: 'acme', publicKeys: KEY.publicKey }), 'invalid_argument'],
      [() => new Evaluator({ tenant: 'acme', publicKeys: [5] }), 'invalid_argument'],
      [() => new Evaluator({ tenant: 'acme', publicKeys: [] }), 'invalid_argument'],
      [() => new Evaluator({ tenant: 'acme', publicKeys: ['not base64!'] }), 'invalid_key'],
      [() => new Evaluator({ tenant: 'acme', publicKeys: ['AAAA'] }), 'invalid_key'],
      [() => Evaluator.preview(), 'invalid_argument'],
      [() => Evaluator.preview(5), 'invalid_argument'],
      [() => Evaluator.preview(null), 'invalid_argument'],
      [() => Evaluator.preview('{'), 'invalid_model'],
      [() => Evaluator.preview({ ...EXAMPLE, bogus: 1 }), 'invalid_model'],
      [() => compileSnapshot(EXAMPLE), 'invalid_argument'],
      [() => compileSnapshot(EXAMPLE, 'x'), 'invalid_argument'],
      [() => compileSnapshot(EXAMPLE, { epoch: '1', secretKey: sk }), 'invalid_argument'],
      [() => compileSnapshot(EXAMPLE, { epoch: -1, secretKey: sk }), 'invalid_argument'],
      [() => compileSnapshot(EXAMPLE, { epoch: 1.5, secretKey: sk }), 'invalid_argument'],
      [() => compileSnapshot(EXAMPLE, { epoch: NaN, secretKey: sk }), 'invalid_argument'],
      [() => compileSnapshot(EXAMPLE, { epoch: 2 ** 53, secretKey: sk }), 'invalid_argument'],
      [() => compileSnapshot(EXAMPLE, { epoch: 1, secretKey: 5 }), 'invalid_argument'],
      [() => compileSnapshot(EXAMPLE, { epoch: 1, secretKey: 'garbage!' }), 'invalid_key'],
      [() => compileSnapshot(EXAMPLE, { epoch: 1, secretKey: sk, issuedAt: '1' }), 'invalid_argument'],
      [() => compileSnapshot(EXAMPLE, { epoch: 1, secretKey: sk, issuedAt: -5 }), 'invalid_argument'],
      [() => compileSnapshot(42, { epoch: 1, secretKey: sk }), 'invalid_argument'],
      [() => diffModels(EXAMPLE, EXAMPLE, { baseEpoch: '1', epoch: 2, secretKey: sk }), 'invalid_argument'],
      [() => diffModels(EXAMPLE, EXAMPLE, { baseEpoch: 1, epoch: null, secretKey: sk }), 'invalid_argument'],
      [() => diffModels(EXAMPLE, null, { baseEpoch: 1, epoch: 2, secretKey: sk }), 'invalid_argument'],
      [() => diffModels(EXAMPLE, EXAMPLE), 'invalid_argument'],
      [() => signWatermark(), 'invalid_argument'],
      [() => signWatermark({ tenant: 5, watermark: 1, secretKey: sk }), 'invalid_argument'],
      [() => signWatermark({ tenant: 'acme', watermark: '1', secretKey: sk }), 'invalid_argument'],
      [() => signWatermark({ tenant: 'acme', watermark: 1.5, secretKey: sk }), 'invalid_argument'],
      [() => signWatermark({ tenant: 'acme', watermark: 1, secretKey: sk, delta: 'abc' }), 'invalid_argument'],
      [() => signWatermark({ tenant: 'acme', watermark: 1, secretKey: sk, delta: [1, 2] }), 'invalid_argument'],
      [() => signWatermark({ tenant: 'acme', watermark: 1, secretKey: sk, issuedAt: {} }), 'invalid_argument'],
      [() => inspect('abc'), 'invalid_argument'],
      [() => inspect(new Uint8Array(0), { publicKeys: 'abc' }), 'invalid_argument'],
    ];
    for (const [f, code] of cases) throwsCode(f, code, f.toString());
    const ev = Evaluator.preview(EXAMPLE);
    throwsCode(() => ev.listResources('user:alice', 'read', 'doc'), 'invalid_argument', 'listResources options string');
    throwsCode(() => ev.listSubjects('doc:roadmap', 'read', 5), 'invalid_argument', 'listSubjects options number');
    throwsCode(() => ev.listResources('user:alice', 'read', { type: 5, now: NOW }), 'invalid_request', 'type 5');
    throwsCode(() => ev.listResources('user:alice', 'read', { type: 'Doc', now: NOW }), 'invalid_request', 'type Doc');
    for (const r of [undefined, null, 'x', 5, { length: 1 }]) {
      throwsCode(() => ev.checkMany(r), 'invalid_argument', `checkMany(${String(r)})`);
    }
    assert.deepEqual(ev.listResources('user:alice', 'export', { now: NOW }), ['doc:roadmap', 'workspace:eng']);
    ev.free();
  });

  test(`${label}: ids that are not strings answer invalid_request and never throw`, () => {
    const ev = signedExample();
    const good = ['user:alice', 'read', 'doc:roadmap'];
    const notStrings = [
      undefined, null, 5, 5n, true, {}, [], ['user:alice'], Symbol('s'), new String('user:alice'),
      { toString: () => 'user:alice' }, () => 'user:alice',
    ];
    for (let k = 0; k < 3; k++) {
      for (const v of notStrings) {
        const q = [...good];
        q[k] = v;
        const d = ev.check(...q, { now: NOW });
        assert.equal(d.reason, 'invalid_request', `field ${k} = ${String(v)}`);
        assert.equal(d.allowed, false);
        assert.equal(d.grant, undefined);
        assert.equal(d.epoch, 1);
      }
    }
    assert.equal(ev.check().reason, 'invalid_request');
    assert.equal(ev.check('user:alice').reason, 'invalid_request');
    const many = ev.checkMany(notStrings.map((v) => [v, 'read', 'doc:roadmap']).concat([good]), { now: NOW });
    assert.deepEqual(many.map((d) => d.reason), [...notStrings.map(() => 'invalid_request'), 'granted']);
    for (const v of notStrings) {
      throwsCode(() => ev.listResources(v, 'read', { now: NOW }), 'invalid_request', `listResources(${String(v)})`);
      throwsCode(() => ev.listSubjects(v, 'read', { now: NOW }), 'invalid_request', `listSubjects(${String(v)})`);
      throwsCode(() => ev.listSubjects('doc:roadmap', v, { now: NOW }), 'invalid_request', `listSubjects action ${String(v)}`);
    }
    assert.equal(ev.check(...good, { now: NOW }).reason, 'granted');
    ev.free();
  });

  test(`${label}: lone surrogates are invalid_request, never read as U+FFFD`, () => {
    // The model grants `user:\uFFFD` (what a lone surrogate becomes when encoded as UTF-8) and
    // holds `doc:\uFFFD`: a lone surrogate must not name them.
    const m = structuredClone(EXAMPLE);
    m.resources.push({ id: 'doc:\uFFFD', parent: 'workspace:eng' });
    m.assignments.push({ principal: 'user:\uFFFD', role: 'admin', resource: 'org:acme' });
    m.memberships.push({ member: 'user:😀', group: 'group:eng' });
    const ev = Evaluator.preview(m);
    assert.equal(ev.check('user:\uFFFD', 'read', 'doc:roadmap', { now: NOW }).reason, 'granted');
    assert.equal(ev.check('user:😀', 'read', 'doc:\uFFFD', { now: NOW }).reason, 'granted');
    const lone = ['user:\uD800', 'user:\uDC00', 'user:a\uD83D', 'user:\uDE00a', 'user:\uDE00\uD83D'];
    for (const s of lone) {
      const d = ev.check(s, 'read', 'doc:roadmap', { now: NOW });
      assert.equal(d.reason, 'invalid_request', JSON.stringify(s));
    }
    assert.equal(ev.check('user:alice', 'read\uD800', 'doc:roadmap', { now: NOW }).reason, 'invalid_request');
    assert.equal(ev.check('user:alice', 'read', 'doc:\uDFFF', { now: NOW }).reason, 'invalid_request');
    const many = ev.checkMany(
      [['user:\uD800', 'read', 'doc:roadmap'], ['user:😀', 'read', 'doc:roadmap'], ['user:alice', 'read', 'doc:\uDBFF']],
      { now: NOW },
    );
    assert.deepEqual(many.map((d) => d.reason), ['invalid_request', 'granted', 'invalid_request']);
    assert.deepEqual(many[1].grant.path, ['user:😀', 'group:eng', 'group:staff']);
    ev.free();
  });

  test(`${label}: lists refuse lone surrogates with invalid_request, as check does`, () => {
    const m = structuredClone(EXAMPLE);
    m.resources.push({ id: 'doc:\uFFFD', parent: 'workspace:eng' });
    m.assignments.push({ principal: 'user:\uFFFD', role: 'admin', resource: 'org:acme' });
    const ev = Evaluator.preview(m);
    const now = { now: NOW };
    assert.equal(ev.listResources('user:\uFFFD', 'export', now).length, 4);
    const calls = {
      "listResources('user:\\uD800', 'export')": () => ev.listResources('user:\uD800', 'export', now),
      "listResources('user:alice', 'read\\uD800')": () => ev.listResources('user:alice', 'read\uD800', now),
      "listResources('user:alice', 'read', {type: 'doc\\uD800'})": () =>
        ev.listResources('user:alice', 'read', { type: 'doc\uD800', now: NOW }),
      "listSubjects('doc:\\uDC00', 'read')": () => ev.listSubjects('doc:\uDC00', 'read', now),
      "listSubjects('doc:roadmap', 'read\\uD800')": () => ev.listSubjects('doc:roadmap', 'read\uD800', now),
    };
    const problems = [];
    for (const [what, f] of Object.entries(calls)) {
      try {
        problems.push(`${what} answered ${JSON.stringify(f())} (check answers invalid_request)`);
      } catch (e) {
        if (e.code !== 'invalid_request') problems.push(`${what} threw ${e.code}`);
      }
    }
    assert.deepEqual(problems, []);
    ev.free();
  });

  test(`${label}: huge strings answer invalid_request and leave the evaluator working`, () => {
    const ev = signedExample();
    const before = answers(ev);
    const huge = 'user:' + 'a'.repeat(8_000_000);
    const hugeWide = 'doc:' + 'é'.repeat(2_000_000);
    const hugeAstral = 'user:' + '😀'.repeat(1_000_000);
    const t0 = performance.now();
    assert.equal(ev.check(huge, 'read', 'doc:roadmap', { now: NOW }).reason, 'invalid_request');
    assert.equal(ev.check('user:alice', 'r'.repeat(3_000_000), 'doc:roadmap', { now: NOW }).reason, 'invalid_request');
    assert.equal(ev.check('user:alice', 'read', hugeWide, { now: NOW }).reason, 'invalid_request');
    assert.equal(ev.check(hugeAstral, 'read', hugeWide, { now: NOW }).reason, 'invalid_request');
    // A name of exactly 256 bytes is well formed; 257 is not.
    assert.equal(ev.check('user:' + 'é'.repeat(128), 'read', 'doc:roadmap', { now: NOW }).reason, 'no_grant');
    assert.equal(ev.check('user:' + 'é'.repeat(128) + 'a', 'read', 'doc:roadmap', { now: NOW }).reason, 'invalid_request');
    assert.deepEqual(answers(ev), before, 'answers after huge strings');
    const many = ev.checkMany([FIXED[0], [huge, 'read', 'doc:roadmap'], FIXED[1], ['user:alice', 'read', hugeWide], FIXED[3]], {
      now: NOW,
    });
    assert.deepEqual(many.map((d) => d.reason), ['granted', 'invalid_request', 'granted', 'invalid_request', 'granted']);
    assert.deepEqual([many[0], many[2], many[4]], [before[0], before[1], before[3]]);
    throwsCode(() => ev.listResources(huge, 'read', { now: NOW }), 'invalid_request', 'listResources huge');
    throwsCode(() => ev.listSubjects(hugeWide, 'read', { now: NOW }), 'invalid_request', 'listSubjects huge');
    assert.deepEqual(answers(ev), before, 'answers after huge batches');
    const ms = performance.now() - t0;
    assert.ok(ms < 10_000, `huge strings took ${ms} ms`);
    ev.free();
  });

  test(`${label}: malformed contexts answer invalid_request; absent now is the host clock`, () => {
    let clock = NOW;
    const ev = signedExample(() => clock);
    const q = ['user:alice', 'read', 'doc:roadmap'];
    const many33 = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i]));
    const throwing = { get ip() { throw new Error('no'); } };
    Object.defineProperty(throwing, 'ip', { enumerable: true });
    const malformed = [
      { now: NOW, extra: null },
      { now: NOW, extra: undefined },
      { now: NOW, ip: { v: 4 } },
      { Time: NOW },
      { '1a': 1 },
      { 'bad-key': 1 },
      { ['a'.repeat(65)]: 1 },
      many33,
      { risk: NaN },
      { risk: Infinity },
      { risk: -Infinity },
      { risk: 1n },
      { risk: () => 1 },
      { risk: Symbol('x') },
      { amr: ['pwd', 1] },
      { amr: Array(33).fill('x') },
      { amr: ['\uD800'] },
      { ip: '\uDC00' },
      { ip: 'x'.repeat(257) },
      { ip: '\u00e9'.repeat(129) },
      throwing,
      { now: -1 },
      { now: -NOW },
      { now: 1500.5 },
      { now: 0.1 },
      { now: '1500' },
      { now: NaN },
      { now: Infinity },
      { now: -Infinity },
      { now: 2 ** 53 },
      { now: 1500n },
      { now: true },
      { now: {} },
      { now: [NOW] },
      [NOW],
      'now=1500',
      NOW,
      true,
      () => NOW,
    ];
    for (const c of malformed) {
      const d = ev.check(...q, c);
      assert.equal(d.reason, 'invalid_request', `context ${String(c?.now ?? c)}`);
      assert.equal(d.allowed, false);
      const many = ev.checkMany([q, q], c);
      assert.deepEqual(many.map((x) => x.reason), ['invalid_request', 'invalid_request']);
    }
    // Attributes within the limits are not malformed (the example has no conditions to use them).
    const fine = [
      { ip: '10.0.0.1', managed: true, risk_score: 1.5, amr: ['pwd', 'mfa'] },
      { ['a'.repeat(64)]: 'x'.repeat(256), e: '\u00e9'.repeat(128), l: Array(32).fill('x') },
      Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${i}`, i])),
    ];
    for (const c of fine) assert.equal(ev.check(...q, { ...c, now: NOW }).reason, 'granted', JSON.stringify(c));
    // Lists take `now` in their options; a malformed one is invalid_request.
    for (const now of [-1, 1500.5, '1500', NaN, Infinity, 2 ** 53, 1500n, true, {}]) {
      throwsCode(() => ev.listResources('user:alice', 'read', { now }), 'invalid_request', `listResources now ${String(now)}`);
      throwsCode(() => ev.listSubjects('doc:roadmap', 'read', { now }), 'invalid_request', `listSubjects now ${String(now)}`);
    }
    // Well formed: 0 and 2^53 - 1 are answered by the later gates; `now` moves only expiry
    // (alice's admin grant on the workspace expires at 1798761600000), never freshness.
    const x = ['user:alice', 'export', 'doc:roadmap'];
    assert.equal(ev.check(...q, { now: 0 }).reason, 'granted');
    assert.equal(ev.check(...q, { now: 2 ** 53 - 1 }).reason, 'granted');
    assert.equal(ev.check(...x, { now: 1798761600000 - 1 }).reason, 'granted');
    assert.equal(ev.check(...x, { now: 1798761600000 }).reason, 'no_grant');
    clock = NOW + 300_000;
    assert.equal(ev.check(...q, { now: NOW }).reason, 'granted');
    clock = NOW + 300_001;
    for (const now of [0, NOW, NOW + 300_000, 2 ** 53 - 1]) {
      assert.equal(ev.check(...q, { now }).reason, 'freshness_exceeded', `now ${now}`);
      assert.equal(ev.checkMany([q], { now })[0].reason, 'freshness_exceeded', `checkMany now ${now}`);
      throwsCode(() => ev.listResources('user:alice', 'read', { now }), 'freshness_exceeded', `listResources now ${now}`);
      throwsCode(() => ev.listSubjects('doc:roadmap', 'read', { context: { now } }), 'freshness_exceeded', `listSubjects now ${now}`);
    }
    // Absent or null `now`: the host's clock, for expiry too.
    clock = NOW;
    for (const c of [undefined, null, {}, { now: null }, { now: undefined }]) {
      assert.equal(ev.check(...x, c).reason, 'granted', `context ${JSON.stringify(c)}`);
    }
    ev.free();
    const late = signedExample(() => 1798761600000);
    late.applyWatermark(signWatermark({ tenant: 'acme', watermark: 1, secretKey: KEY.secretKey, issuedAt: 1798761600000 }));
    for (const c of [undefined, null, {}, { now: null }, { now: undefined }]) {
      assert.equal(late.check(...x, c).reason, 'no_grant', `context ${JSON.stringify(c)} at the expiry`);
    }
    assert.equal(late.check(...x, { now: 1798761600000 - 1 }).reason, 'granted');
    late.free();
  });

  test(`${label}: checkMany answers good entries among malformed ones, in order`, () => {
    const m = richModel();
    const ev = Evaluator.preview(m);
    const good = richRequests(m, 40);
    const malformed = [
      undefined, null, 'user:alice', 5, {}, [], ['user:alice', 'read'], ['user:alice', 'read', 'doc:roadmap', 'x'],
      [1, 2, 3], [null, 'read', 'doc:roadmap'], { 0: 'user:alice', 1: 'read', 2: 'doc:roadmap', length: 3 },
      new Array(3), ['user:\uD800', 'read', 'doc:roadmap'],
    ];
    const batch = [];
    const expected = [];
    for (let i = 0; i < good.length; i++) {
      batch.push(good[i], malformed[i % malformed.length]);
      expected.push(ev.check(...good[i], { now: NOW }), undefined);
    }
    const got = ev.checkMany(batch, { now: NOW });
    assert.equal(got.length, batch.length);
    for (let i = 0; i < batch.length; i++) {
      if (i % 2 === 1) {
        assert.equal(got[i].reason, 'invalid_request', `entry ${i}: ${String(batch[i])}`);
        assert.equal(got[i].allowed, false);
        assert.equal(got[i].grant, undefined);
      } else {
        assert.deepEqual(got[i], expected[i], `entry ${i}: ${JSON.stringify(batch[i])}`);
      }
    }
    assert.ok(got.some((d) => d.grant && d.grant.path.length >= 3), 'some grants go through nested groups');
    ev.free();
  });

  test(`${label}: checkMany over more than 8192 requests (chunks) equals check one by one`, () => {
    const m = richModel(400);
    const ev = Evaluator.preview(m);
    const ref = Evaluator.preview(m);
    for (const n of [8191, 8192, 8193, 20_000]) {
      const reqs = richRequests(m, n);
      const got = ev.checkMany(reqs, { now: NOW });
      assert.equal(got.length, n);
      for (let i = 0; i < n; i++) {
        const want = ref.check(...reqs[i], { now: NOW });
        if (!isDeepStrictEqual(got[i], want)) {
          assert.deepEqual(got[i], want, `n = ${n}, request ${i}: ${JSON.stringify(reqs[i])}`);
        }
      }
      const granted = got.filter((d) => d.allowed).length;
      assert.ok(granted > n / 10 && granted < n, `n = ${n}: ${granted} granted`);
    }
    ev.free();
    ref.free();
  });

  test(`${label}: batches whose strings grow the input buffer`, () => {
    const m = richModel(64);
    const ev = Evaluator.preview(m);
    const ref = Evaluator.preview(m);
    const longDocs = m.resources.map((r) => r.id).filter((id) => id.length > 200);
    const subjects = [...new Set(m.memberships.map((x) => x.member))];
    // 600 requests of ~250-byte ids (~450 KB of input), then non-ASCII ones.
    const reqs = [];
    for (let i = 0; i < 600; i++) {
      reqs.push([subjects[i % subjects.length], i % 2 ? 'write' : 'read', longDocs[i % longDocs.length]]);
      if (i % 50 === 0) reqs.push(['user:😀', 'read', 'doc:élan-📄']);
      if (i % 70 === 0) reqs.push(['user:' + 'ü'.repeat(300), 'read', 'doc:' + 'ß'.repeat(100)]);
    }
    const before = ev.status().heapBytes;
    for (let round = 0; round < 2; round++) {
      const got = ev.checkMany(reqs, { now: NOW });
      const want = reqs.map((q) => ref.check(...q, { now: NOW }));
      assert.deepEqual(got, want, `round ${round}`);
      assert.ok(got.filter((d) => d.allowed).length > 100);
    }
    // One check whose strings exceed the input buffer, then a granted check with names.
    assert.equal(ev.check('user:' + 'x'.repeat(5000), 'read', 'x'.repeat(9000), { now: NOW }).reason, 'invalid_request');
    assert.deepEqual(ev.check('user:😀', 'read', longDocs[3], { now: NOW }), ref.check('user:😀', 'read', longDocs[3], { now: NOW }));
    assert.equal(ev.status().heapBytes, before, 'request buffers are not part of the held state');
    ev.free();
    ref.free();
  });

  test(`${label}: a freed evaluator throws coded errors and free() is idempotent`, () => {
    const ev = Evaluator.preview(EXAMPLE);
    ev.free();
    const calls = {
      check: () => ev.check('user:alice', 'read', 'doc:roadmap', { now: NOW }),
      checkMany: () => ev.checkMany([['user:alice', 'read', 'doc:roadmap']], { now: NOW }),
      listResources: () => ev.listResources('user:alice', 'read', { now: NOW }),
      listSubjects: () => ev.listSubjects('doc:roadmap', 'read', { now: NOW }),
      status: () => ev.status(),
      loadSnapshot: () => ev.loadSnapshot(new Uint8Array(4)),
      applyDelta: () => ev.applyDelta(new Uint8Array(4)),
      applyWatermark: () => ev.applyWatermark(new Uint8Array(4)),
    };
    const problems = [];
    for (const [name, f] of Object.entries(calls)) {
      try {
        f();
        problems.push(`${name}: answered after free()`);
      } catch (e) {
        if (!(e instanceof Error)) problems.push(`${name}: threw a non-Error`);
        else if (typeof e.code !== 'string' || !SNAKE.test(e.code)) {
          problems.push(`${name}: Error without a code (code ${e.code}, message "${e.message}")`);
        }
      }
    }
    for (const [name, f] of [['free() again', () => ev.free()], ['[Symbol.dispose]()', () => ev[Symbol.dispose]()]]) {
      try {
        f();
      } catch (e) {
        problems.push(`${name} threw: ${e.message}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  /** A value whose every read is counted: `first` on the first read, `later` after. */
  function flip(first, later) {
    const v = { reads: 0 };
    v.get = () => (v.reads++ === 0 ? first : later);
    return v;
  }

  /** A request tuple whose field `k` reads `first`, then `later` (a getter, or a Proxy). */
  function flipTuple(k, first, later, kind) {
    const f = flip(first, later);
    const q = ['user:alice', 'read', 'doc:roadmap'];
    const once = [...q];
    once[k] = first;
    f.once = once;
    if (kind === 'proxy') {
      return { f, q: new Proxy(q, { get: (t, p) => (p === String(k) ? f.get() : t[p]) }) };
    }
    Object.defineProperty(q, k, { get: f.get, enumerable: true });
    return { f, q };
  }

  /** Another tenant's signed evaluator, and its answers to look at later. */
  function bystander() {
    const m = structuredClone(EXAMPLE);
    m.tenant = 'globex';
    const key = generateKeyPair();
    const ev = new Evaluator({ tenant: 'globex', publicKeys: [key.publicKey], clock: () => NOW });
    ev.loadSnapshot(compileSnapshot(m, { epoch: 1, secretKey: key.secretKey, issuedAt: NOW }));
    const look = () => ({
      status: ev.status(),
      checks: answers(ev),
      many: ev.checkMany(FIXED, { now: NOW }),
      resources: ev.listResources('user:alice', 'read', { now: NOW }),
      subjects: ev.listSubjects('doc:roadmap', 'read', { now: NOW }),
    });
    return { ev, look, before: look() };
  }

  /** The bystander still answers as before, and a new evaluator answers as a fresh one. */
  function intact(b, what) {
    let after;
    try {
      after = b.look();
    } catch (e) {
      assert.fail(`${what}: another tenant's evaluator now throws: ${e.code} ${e.message}`);
    }
    assert.deepEqual(after, b.before, `${what}: another tenant's evaluator changed`);
    let fresh;
    try {
      fresh = signedExample();
    } catch (e) {
      assert.fail(`${what}: a new evaluator fails: ${e.code} ${String(e)}`);
    }
    assert.deepEqual(answers(fresh), answers(signedExample()), `${what}: a new evaluator answers otherwise`);
    fresh.free();
  }

  test(`${label}: the clock option judges freshness; context.now moves only expiry`, () => {
    let clock = NOW;
    const ev = signedExample(() => clock);
    const q = ['user:alice', 'read', 'doc:roadmap'];
    const x = ['user:alice', 'export', 'doc:roadmap'];
    // Without a context the decision is at the clock, not at the machine's time.
    assert.equal(ev.check(...q).reason, 'granted');
    assert.deepEqual(ev.listResources('user:alice', 'export'), ['doc:roadmap', 'workspace:eng']);
    clock = NOW + 300_001;
    for (const c of [undefined, { now: NOW }, { now: 0 }]) {
      assert.equal(ev.check(...q, c).reason, 'freshness_exceeded', JSON.stringify(c));
      assert.equal(ev.checkMany([q], c)[0].reason, 'freshness_exceeded', JSON.stringify(c));
    }
    throwsCode(() => ev.listResources('user:alice', 'read', { now: NOW }), 'freshness_exceeded', 'listResources at an old now');
    throwsCode(() => ev.listSubjects('doc:roadmap', 'read', { context: { now: NOW } }), 'freshness_exceeded', 'listSubjects at an old now');
    clock = NOW;
    assert.equal(ev.check(...x, { now: 1798761600000 }).reason, 'no_grant', 'expired at now');
    assert.equal(ev.check(...x).reason, 'granted', 'not expired at the clock');
    // A preview takes a clock too: the time of expiry when a context names none.
    const p = Evaluator.preview(EXAMPLE, { clock: () => 1798761600000 });
    assert.equal(p.check(...x).reason, 'no_grant');
    assert.equal(p.check(...x, { now: 1798761600000 - 1 }).reason, 'granted');
    p.free();
    ev.free();
  });

  test(`${label}: a clock that is not a function is invalid_argument; a bad reading fails closed with invalid_clock`, () => {
    for (const clock of [null, 5, 'now', {}, [() => NOW], Symbol('c')]) {
      throwsCode(
        () => new Evaluator({ tenant: 'acme', publicKeys: [KEY.publicKey], clock }),
        'invalid_argument',
        `clock ${String(clock)}`,
      );
      throwsCode(() => Evaluator.preview(EXAMPLE, { clock }), 'invalid_argument', `preview clock ${String(clock)}`);
    }
    const snap = compileSnapshot(EXAMPLE, { epoch: 2, secretKey: KEY.secretKey, issuedAt: NOW });
    const readings = [
      -1, 1.5, NaN, Infinity, -Infinity, 2 ** 53, '1500', 1500n, null, undefined, {}, new Number(NOW), true,
    ];
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    const throwers = [() => { throw new Error('no time'); }, () => { throw 'no time'; }, () => { throw revoked.proxy; }];
    for (const bad of [...readings.map((v) => () => v), ...throwers, () => revoked.proxy]) {
      let reading = NOW;
      const ev = signedExample(() => (reading === NOW ? NOW : bad()));
      const status = ev.status();
      reading = 'bad';
      const what = `clock ${String(bad)}`;
      const q = ['user:alice', 'read', 'doc:roadmap'];
      const err = throwsCode(() => ev.check(...q, { now: NOW }), 'invalid_clock', `check, ${what}`);
      assert.ok(typeof err.message === 'string');
      throwsCode(() => ev.checkMany([q]), 'invalid_clock', `checkMany, ${what}`);
      throwsCode(() => ev.listResources('user:alice', 'read', { now: NOW }), 'invalid_clock', `listResources, ${what}`);
      throwsCode(() => ev.listSubjects('doc:roadmap', 'read'), 'invalid_clock', `listSubjects, ${what}`);
      throwsCode(() => ev.loadSnapshot(snap), 'invalid_clock', `loadSnapshot, ${what}`);
      assert.deepEqual(ev.status(), status, `${what}: a refused load changed the status`);
      reading = NOW;
      assert.equal(ev.check(...q).reason, 'granted', `${what}: answers again once the clock reads well`);
      ev.free();
    }
  });

  test(`${label}: a snapshot or heartbeat issued in the clock's future is refused with clock_skew and changes nothing`, () => {
    const YEAR_2100 = 4102444800000;
    const ev = signedExample();
    const status = ev.status();
    const before = answers(ev);
    const sk = KEY.secretKey;
    const future = [
      ['heartbeat in 2100', () => ev.applyWatermark(signWatermark({ tenant: 'acme', watermark: 1, secretKey: sk, issuedAt: YEAR_2100 }))],
      ['watermark in 2100', () => ev.applyWatermark(signWatermark({ tenant: 'acme', watermark: 2, secretKey: sk, issuedAt: YEAR_2100 }))],
      ['snapshot in 2100', () => ev.loadSnapshot(compileSnapshot(EXAMPLE, { epoch: 2, secretKey: sk, issuedAt: YEAR_2100 }))],
      ['delta in 2100', () => ev.applyDelta(diffModels(EXAMPLE, EXAMPLE, { baseEpoch: 1, epoch: 2, secretKey: sk, issuedAt: YEAR_2100 }).delta)],
      ['snapshot 1001 ms ahead', () => ev.loadSnapshot(compileSnapshot(EXAMPLE, { epoch: 2, secretKey: sk, issuedAt: NOW + 1001 }))],
    ];
    for (const [what, f] of future) {
      throwsCode(f, 'clock_skew', what);
      assert.deepEqual(ev.status(), status, `${what}: status changed`);
      assert.equal(ev.status().confirmedAt, NOW);
      assert.deepEqual(answers(ev), before, `${what}: answers changed`);
    }
    // Within the second of tolerance it is taken; freshness still runs from there.
    assert.equal(ev.applyWatermark(signWatermark({ tenant: 'acme', watermark: 1, secretKey: sk, issuedAt: NOW + 1000 })).watermark, 1);
    assert.equal(ev.status().confirmedAt, NOW + 1000);
    ev.free();
  });

  test(`${label}: checkMany reads each tuple once: a field that grows on a second read cannot write out of bounds`, () => {
    const b = bystander();
    const ev = signedExample();
    for (const kind of ['getter', 'proxy']) {
      for (let round = 0; round < 5; round++) {
        const tuples = Array.from({ length: 20 }, (_, i) => flipTuple(i % 3, 'a', '€'.repeat(321), kind));
        const got = ev.checkMany(tuples.map((t) => t.q), { now: NOW });
        const want = tuples.map((t) => ev.check(...t.f.once, { now: NOW }));
        assert.deepEqual(got, want, `${kind} round ${round}: the answers for the values read once`);
        assert.ok(want.some((d) => d.reason === 'invalid_request') && want.some((d) => d.reason === 'unknown_action'));
        assert.deepEqual(tuples.map((t) => t.f.reads), tuples.map(() => 1), `${kind}: each field read once`);
        intact(b, `${kind} round ${round}`);
      }
      // The value read once is the one decided: a good id first, garbage after.
      const tuples = Array.from({ length: 20 }, (_, i) => flipTuple(0, 'user:alice', '€'.repeat(321), kind));
      const got = ev.checkMany(tuples.map((t) => t.q), { now: NOW });
      assert.deepEqual(got, tuples.map(() => ev.check('user:alice', 'read', 'doc:roadmap', { now: NOW })));
    }
    // The batch's length and its entries are read once too.
    let lengthReads = 0;
    const grows = new Proxy([FIXED[0]], {
      get: (t, p) => (p === 'length' ? (lengthReads++ === 0 ? 1 : 50_000) : p === '0' ? t[0] : FIXED[1]),
    });
    assert.deepEqual(ev.checkMany(grows, { now: NOW }), [answers(ev)[0]]);
    assert.equal(lengthReads, 1);
    intact(b, 'a batch whose length grows');
    assert.deepEqual(answers(ev), answers(signedExample()));
    b.ev.free();
    ev.free();
  });

  test(`${label}: every entry point reads its values once (getters and Proxies that change)`, () => {
    const b = bystander();
    const ev = signedExample();
    const big = '€'.repeat(100_000);
    // check: the context's now is read once; 1798761600000 would expire alice's export.
    const ctx = flip(NOW, 1798761600000);
    assert.equal(ev.check('user:alice', 'export', 'doc:roadmap', { get now() { return ctx.get(); } }).reason, 'granted');
    assert.equal(ctx.reads, 1);
    const ctxMany = flip(NOW, 1798761600000);
    const many = ev.checkMany([['user:alice', 'export', 'doc:roadmap']], new Proxy({ now: 0 }, { get: () => ctxMany.get() }));
    assert.equal(many[0].reason, 'granted');
    assert.equal(ctxMany.reads, 1);
    // Listings: options and their context.
    const type = flip('doc', big);
    assert.deepEqual(ev.listResources('user:alice', 'export', { get type() { return type.get(); }, now: NOW }), ['doc:roadmap']);
    assert.equal(type.reads, 1);
    const lnow = flip(NOW, 1798761600000);
    assert.deepEqual(ev.listResources('user:alice', 'export', { get now() { return lnow.get(); } }), ['doc:roadmap', 'workspace:eng']);
    assert.equal(lnow.reads, 1);
    const lctx = flip({ now: NOW }, { now: 1798761600000 });
    assert.deepEqual(ev.listSubjects('doc:roadmap', 'export', { get context() { return lctx.get(); } }), ['user:alice']);
    assert.equal(lctx.reads, 1);
    // The constructor: tenant, keys (the array and its elements), clock.
    const tenant = flip('acme', big);
    const keys = flip(KEY.publicKey, big);
    const keyArray = new Proxy([KEY.publicKey], { get: (t, p) => (p === '0' ? keys.get() : p === 'length' ? 1 : t[p]) });
    const built = new Evaluator({ get tenant() { return tenant.get(); }, publicKeys: keyArray, clock: () => NOW });
    assert.deepEqual([tenant.reads, keys.reads], [1, 1]);
    built.loadSnapshot(compileSnapshot(EXAMPLE, { epoch: 1, secretKey: KEY.secretKey, issuedAt: NOW }));
    assert.deepEqual(answers(built), answers(ev));
    built.free();
    // The origin's functions.
    const model = flip(EXAMPLE, { toJSON: () => big });
    const secret = flip(KEY.secretKey, big);
    const snap = compileSnapshot(EXAMPLE, { epoch: 1, get secretKey() { return secret.get(); }, issuedAt: NOW });
    assert.equal(secret.reads, 1);
    const key2 = flip(KEY.publicKey, big);
    const inspected = inspect(snap, { publicKeys: new Proxy([KEY.publicKey], { get: (t, p) => (p === '0' ? key2.get() : t[p]) }) });
    assert.equal(inspected.signature, 'verified', JSON.stringify(inspected));
    assert.equal(key2.reads, 1);
    const epoch = flip(2, 2 ** 60);
    const { delta } = diffModels(EXAMPLE, EXAMPLE, { baseEpoch: 1, get epoch() { return epoch.get(); }, secretKey: KEY.secretKey, issuedAt: NOW });
    assert.equal(epoch.reads, 1);
    const wm = flip(2, 2 ** 60);
    const carried = signWatermark({ tenant: 'acme', get watermark() { return wm.get(); }, secretKey: KEY.secretKey, issuedAt: NOW, delta });
    assert.equal(wm.reads, 1);
    const preview = Evaluator.preview({ ...EXAMPLE, get tenant() { return model.get() === EXAMPLE ? 'acme' : big; } });
    assert.equal(preview.status().tenant, 'acme');
    assert.equal(model.reads, 1);
    preview.free();
    // A byte view that lies about its length is read by its real one.
    class Liar extends Uint8Array {
      get length() {
        return 1;
      }
      get byteLength() {
        return 1;
      }
    }
    const liar = new Liar(carried.length);
    liar.set(carried);
    assert.deepEqual(ev.applyWatermark(liar), { watermark: 2, epoch: 2, delta: { applied: true } });
    throwsCode(() => ev.loadSnapshot(Object.setPrototypeOf({ length: 3 }, Uint8Array.prototype)), 'invalid_argument', 'a fake Uint8Array');
    intact(b, 'every entry point');
    b.ev.free();
    ev.free();
  });

  test(`${label}: options and contexts are read as own properties, never from Object.prototype`, () => {
    const ev = Evaluator.preview(EXAMPLE, { clock: () => NOW });
    const sk = KEY.secretKey;
    const expected = {
      check: ev.check('user:alice', 'export', 'doc:roadmap', {}),
      list: ev.listResources('user:alice', 'export'),
      listOpts: ev.listResources('user:alice', 'export', {}),
      subjects: ev.listSubjects('doc:roadmap', 'export', {}),
    };
    const polluted = { now: 1798761600000, context: { now: 1798761600000 }, type: 'org', clock: 5, issuedAt: 'x', publicKeys: [KEY.publicKey], delta: 'x' };
    for (const [k, v] of Object.entries(polluted)) Object.prototype[k] = v;
    try {
      assert.deepEqual(ev.check('user:alice', 'export', 'doc:roadmap', {}), expected.check);
      assert.deepEqual(ev.listResources('user:alice', 'export'), expected.list);
      assert.deepEqual(ev.listResources('user:alice', 'export', {}), expected.listOpts);
      assert.deepEqual(ev.listSubjects('doc:roadmap', 'export', {}), expected.subjects);
      const signed = new Evaluator({ tenant: 'acme', publicKeys: [KEY.publicKey] }); // no own clock: Date.now
      const snap = compileSnapshot(EXAMPLE, { epoch: 1, secretKey: sk }); // no own issuedAt: Date.now
      assert.ok(inspect(snap).issuedAt > 1_700_000_000_000, JSON.stringify(inspect(snap)));
      signed.loadSnapshot(snap);
      signed.applyWatermark(signWatermark({ tenant: 'acme', watermark: 1, secretKey: sk }));
      signed.free();
      throwsCode(() => new Evaluator({ tenant: 'acme' }), 'invalid_argument', 'inherited publicKeys');
    } finally {
      for (const k of Object.keys(polluted)) delete Object.prototype[k];
    }
    ev.free();
  });

  test(`${label}: an evaluator freed by a getter of its own call throws freed, with a code`, () => {
    const sk = KEY.secretKey;
    const snap = compileSnapshot(EXAMPLE, { epoch: 2, secretKey: sk, issuedAt: NOW });
    const calls = {
      'check (context getter)': (ev) => ev.check('user:alice', 'read', 'doc:roadmap', { get now() { ev.free(); return NOW; } }),
      'checkMany (field getter)': (ev) => {
        const q = ['user:alice', 'read', 'doc:roadmap'];
        Object.defineProperty(q, 0, { get() { ev.free(); return 'user:alice'; } });
        return ev.checkMany([q, FIXED[1]], { now: NOW });
      },
      'checkMany (Proxy batch)': (ev) => ev.checkMany(new Proxy([FIXED[0]], { get: (t, p) => { ev.free(); return t[p]; } })),
      'listResources (options getter)': (ev) => ev.listResources('user:alice', 'read', { get now() { ev.free(); return NOW; } }),
      'listSubjects (context getter)': (ev) => ev.listSubjects('doc:roadmap', 'read', { context: { get now() { ev.free(); return NOW; } } }),
    };
    const clocked = {
      check: (ev) => ev.check(...FIXED[0]),
      checkMany: (ev) => ev.checkMany(FIXED),
      listResources: (ev) => ev.listResources('user:alice', 'read'),
      listSubjects: (ev) => ev.listSubjects('doc:roadmap', 'read'),
      loadSnapshot: (ev) => ev.loadSnapshot(snap),
      applyDelta: (ev) => ev.applyDelta(snap),
      applyWatermark: (ev) => ev.applyWatermark(snap),
    };
    for (const [what, f] of Object.entries(calls)) {
      const ev = signedExample();
      throwsCode(() => f(ev), 'freed', what);
    }
    for (const [what, f] of Object.entries(clocked)) {
      let ev;
      let armed = false;
      ev = signedExample(() => {
        if (armed) ev.free();
        return NOW;
      });
      armed = true;
      throwsCode(() => f(ev), 'freed', `${what} (clock frees)`);
    }
    const b = bystander();
    intact(b, 'after evaluators freed mid-call');
    b.ev.free();
  });

  test(`${label}: whatever a caller's value throws, the package throws an Error with a code`, () => {
    const ev = signedExample();
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    const throwing = new Proxy({}, { get() { throw new Error('boom'); }, ownKeys() { throw new Error('boom'); }, getOwnPropertyDescriptor() { throw new Error('boom'); } });
    const q = ['user:alice', 'read', 'doc:roadmap'];
    // Checks answer: an unreadable context or entry is invalid_request.
    for (const c of [revoked.proxy, throwing]) {
      assert.equal(ev.check(...q, c).reason, 'invalid_request');
      assert.deepEqual(ev.checkMany([q], c).map((d) => d.reason), ['invalid_request']);
    }
    const bad = ev.checkMany([revoked.proxy, throwing, new Proxy(q, { get() { throw 'x'; } }), q], { now: NOW });
    assert.deepEqual(bad.map((d) => d.reason), ['invalid_request', 'invalid_request', 'invalid_request', 'granted']);
    // Everything else throws coded errors.
    const sk = KEY.secretKey;
    for (const o of [revoked.proxy, throwing]) {
      const cases = [
        ['checkMany', () => ev.checkMany(o)],
        ['constructor', () => new Evaluator(o)],
        ['constructor keys', () => new Evaluator({ tenant: 'acme', publicKeys: new Proxy([], { get() { throw new Error('k'); } }) })],
        ['preview', () => Evaluator.preview(o)],
        ['preview options', () => Evaluator.preview(EXAMPLE, o)],
        ['listResources', () => ev.listResources('user:alice', 'read', o)],
        ['listSubjects', () => ev.listSubjects('doc:roadmap', 'read', o)],
        ['compileSnapshot', () => compileSnapshot(EXAMPLE, o)],
        ['compileSnapshot model', () => compileSnapshot(o, { epoch: 1, secretKey: sk })],
        ['diffModels', () => diffModels(EXAMPLE, EXAMPLE, o)],
        ['signWatermark', () => signWatermark(o)],
        ['inspect', () => inspect(new Uint8Array(4), o)],
        ['loadSnapshot', () => ev.loadSnapshot(o)],
        ['signWatermark delta', () => signWatermark({ tenant: 'acme', watermark: 1, secretKey: sk, delta: o })],
      ];
      for (const [what, f] of cases) {
        try {
          f();
          assert.fail(`${what}: answered`);
        } catch (e) {
          assert.ok(e instanceof Error, `${what}: threw a non-Error`);
          assert.ok(typeof e.code === 'string' && SNAKE.test(e.code), `${what}: no code (${e.message})`);
          assert.notEqual(e.code, 'internal', `${what}: ${e.message}`);
        }
      }
    }
    assert.deepEqual(answers(ev), answers(signedExample()));
    ev.free();
  });

  test(`${label}: calls on a freed evaluator do not touch other evaluators' memory`, () => {
    // A freed evaluator's request buffers go back to the allocator; another evaluator's state
    // may then live there. Calls on the freed one must not write into them.
    const key = generateKeyPair();
    const model = {
      version: 1,
      tenant: 'acme',
      actions: { read: { tier: 'low' } },
      roles: { viewer: ['read'] },
      resources: Array.from({ length: 40 }, (_, i) => ({ id: `doc:d${i}` })),
      memberships: [],
      suspended: [],
      assignments: Array.from({ length: 40 }, (_, i) => ({ principal: `user:u${i}`, role: 'viewer', resource: `doc:d${i}` })),
    };
    const other = new Evaluator({ tenant: 'acme', publicKeys: [key.publicKey], clock: () => NOW });
    const freed = Evaluator.preview(model);
    freed.free();
    other.loadSnapshot(compileSnapshot(model, { epoch: 1, secretKey: key.secretKey, issuedAt: NOW }));
    const look = () => ({
      status: other.status(),
      decisions: model.assignments.map((a) => other.check(a.principal, 'read', a.resource, { now: NOW })),
      subjects: model.resources.map((r) => other.listSubjects(r.id, 'read', { now: NOW })),
      resources: model.assignments.map((a) => other.listResources(a.principal, 'read', { now: NOW })),
    });
    look(); // lists build their indexes lazily (heapBytes grows once)
    const before = look();
    const batch = Array.from({ length: 60 }, () => ['\u00ff'.repeat(7), '\u00ff'.repeat(7), '\u00ff'.repeat(7)]);
    for (let i = 0; i < 3; i++) {
      try {
        freed.checkMany(batch, { now: NOW });
      } catch {}
      try {
        freed.check('\u00ff'.repeat(680), 'x', 'y', { now: NOW });
      } catch {}
    }
    let after;
    try {
      after = look();
    } catch (e) {
      assert.fail(`another evaluator now throws: ${e.code} ${e.message}`);
    }
    const changed = [];
    for (const part of Object.keys(before)) {
      const [b, a] = [before[part], after[part]];
      if (Array.isArray(b)) {
        const i = b.findIndex((x, k) => !isDeepStrictEqual(x, a[k]));
        if (i >= 0) changed.push(`${part}[${i}]: ${JSON.stringify(b[i])} became ${JSON.stringify(a[i])}`);
      } else if (!isDeepStrictEqual(b, a)) {
        changed.push(`${part}: ${JSON.stringify(b)} became ${JSON.stringify(a)}`);
      }
    }
    assert.deepEqual(changed, [], "another evaluator's state changed");
    other.free();
  });
};
