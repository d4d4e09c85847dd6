// The package's decision log: `onDecision` on `new Evaluator` and `Evaluator.preview`, by require
// and by import. One entry per decision of check, checkMany and checkToken, in the shape of the
// Worker's log lines; the decisions themselves unchanged by a callback, even one that throws.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_DIR, importPackage, requirePackage } from './pkg.mjs';

const EXAMPLE = JSON.parse(readFileSync(path.join(REPO_DIR, 'examples/acme.json'), 'utf8'));
const KEYS = ['event', 'ts', 'tenant', 'subject', 'action', 'resource', 'allowed', 'reason', 'epoch', 'watermark', 'tier', 'digest'];
const T = 1_780_000_000_000;

for (const [how, load] of [
  ['require', async () => requirePackage()],
  ['import', importPackage],
]) {
  test(`${how}: check, checkMany and checkToken each hand their decisions over`, async () => {
    const pkg = await load();
    const entries = [];
    let clock = T;
    const ev = pkg.Evaluator.preview(EXAMPLE, { clock: () => clock, onDecision: (e) => entries.push(e) });
    const digest = ev.status().digest;
    assert.match(digest, /^[0-9a-f]{64}$/);

    const d = ev.check('user:alice', 'read', 'doc:roadmap');
    assert.equal(entries.length, 1);
    assert.deepEqual(Object.keys(entries[0]), KEYS);
    assert.deepEqual(entries[0], {
      event: 'decision',
      ts: T,
      tenant: 'acme',
      subject: 'user:alice',
      action: 'read',
      resource: 'doc:roadmap',
      allowed: true,
      reason: 'granted',
      epoch: 0,
      watermark: 0,
      tier: 'low',
      digest,
    });
    assert.equal(d.allowed, true);

    // A context: read once, copied (the caller's object is not the entry's), `now` included.
    clock = T + 5;
    const context = { now: T - 1, ip: '10.1.2.3', groups: ['a', 'b'] };
    ev.check('user:bob', 'read', 'doc:roadmap', context);
    const e = entries[1];
    assert.deepEqual(e.context, context);
    assert.notEqual(e.context, context);
    assert.notEqual(e.context.groups, context.groups);
    assert.equal(e.ts, T + 5);
    assert.equal(e.reason, 'no_grant');

    // checkMany: one entry per decision, in order, sharing the batch's context.
    entries.length = 0;
    const ds = ev.checkMany(
      [
        ['user:alice', 'export', 'doc:roadmap'],
        ['user:mallory', 'read', 'doc:roadmap'],
        [42, 'read', 'doc:roadmap'],
      ],
      { ip: '10.0.0.1' },
    );
    assert.deepEqual(
      entries.map((x) => [x.subject, x.action, x.reason, x.allowed, x.context]),
      ds.map((x, i) => [['user:alice', 'user:mallory', null][i], ['export', 'read', 'read'][i], x.reason, x.allowed, { ip: '10.0.0.1' }]),
    );
    assert.deepEqual(
      entries.map((x) => x.reason),
      ['granted', 'suspended', 'invalid_request'],
    );

    // A malformed context: invalid_request, the context as given.
    entries.length = 0;
    const bad = { 'Not A Key': 1 };
    assert.equal(ev.check('user:alice', 'read', 'doc:roadmap', bad).reason, 'invalid_request');
    assert.equal(entries[0].context, bad);
    // null is no context.
    ev.check('user:alice', 'read', 'doc:roadmap', null);
    assert.equal(Object.hasOwn(entries[1], 'context'), false);

    // checkToken: marked as a token check; a refused token names no subject.
    entries.length = 0;
    const t = await ev.checkToken('not.a.token', 'read', 'doc:roadmap', { ip: '10.0.0.2' });
    assert.equal(t.reason, 'token_invalid');
    assert.equal(entries.length, 1);
    assert.equal(entries[0].token, true);
    assert.equal(entries[0].subject, '');
    assert.equal(entries[0].reason, 'token_invalid');
    assert.deepEqual(entries[0].context, { ip: '10.0.0.2' });
    ev.free();
  });

  test(`${how}: a signed evaluator's entries follow its state (epoch, digest)`, async () => {
    const pkg = await load();
    const keys = pkg.generateKeyPair();
    const entries = [];
    const ev = new pkg.Evaluator({ tenant: 'acme', publicKeys: [keys.publicKey], onDecision: (e) => entries.push(e) });
    ev.check('user:alice', 'read', 'doc:roadmap');
    assert.equal(entries[0].reason, 'no_snapshot');
    assert.equal(entries[0].epoch, null);
    assert.equal(entries[0].digest, null);
    const issuedAt = Date.now();
    ev.loadSnapshot(pkg.compileSnapshot(EXAMPLE, { epoch: 1, secretKey: keys.secretKey, issuedAt }));
    ev.check('user:bob', 'read', 'doc:roadmap');
    assert.equal(entries[1].epoch, 1);
    assert.equal(entries[1].digest, ev.status().digest);
    const after = structuredClone(EXAMPLE);
    after.assignments.push({ principal: 'user:bob', role: 'viewer', resource: 'doc:roadmap' });
    const { delta } = pkg.diffModels(EXAMPLE, after, { baseEpoch: 1, epoch: 2, secretKey: keys.secretKey, issuedAt });
    ev.applyDelta(delta);
    ev.check('user:bob', 'read', 'doc:roadmap');
    assert.equal(entries[2].epoch, 2);
    assert.equal(entries[2].allowed, true);
    assert.equal(entries[2].digest, ev.status().digest);
    assert.notEqual(entries[2].digest, entries[1].digest);
    ev.free();
  });

  test(`${how}: a callback that throws changes no decision, and is reported once`, async () => {
    const pkg = await load();
    const plain = pkg.Evaluator.preview(EXAMPLE, { clock: () => T });
    let calls = 0;
    const logged = pkg.Evaluator.preview(EXAMPLE, {
      clock: () => T,
      onDecision: () => {
        calls++;
        throw new Error('the log is down');
      },
    });
    const errors = [];
    const original = console.error;
    console.error = (...args) => errors.push(args);
    try {
      const requests = [
        ['user:alice', 'export', 'doc:roadmap'],
        ['user:bob', 'read', 'doc:roadmap'],
        ['user:mallory', 'read', 'doc:roadmap'],
        ['bad id', 'read', 'doc:roadmap'],
      ];
      for (const context of [undefined, null, { now: T + 1 }, { ip: '10.1.2.3' }, { now: -1 }, 'no']) {
        for (const r of requests) assert.deepEqual(logged.check(...r, context), plain.check(...r, context));
        assert.deepEqual(logged.checkMany(requests, context), plain.checkMany(requests, context));
      }
      assert.deepEqual(await logged.checkToken('x', 'read', 'doc:roadmap'), await plain.checkToken('x', 'read', 'doc:roadmap'));
    } finally {
      console.error = original;
    }
    assert.equal(calls, 6 * 8 + 1);
    assert.equal(errors.length, 1);
    assert.match(String(errors[0][0]), /onDecision threw/);
    plain.free();
    logged.free();
  });

  test(`${how}: onDecision must be a function; without one nothing is logged`, async () => {
    const pkg = await load();
    for (const bad of [1, 'log', {}]) {
      assert.throws(() => pkg.Evaluator.preview(EXAMPLE, { onDecision: bad }), { code: 'invalid_argument' });
      assert.throws(() => new pkg.Evaluator({ tenant: 'acme', publicKeys: [], onDecision: bad }), { code: 'invalid_argument' });
      assert.throws(() => new pkg.Replica({ tenant: 'acme', publicKeys: [], feed: 'http://127.0.0.1:9', follow: false, onDecision: bad }), {
        code: 'invalid_argument',
      });
    }
    // null and undefined: no callback.
    for (const none of [null, undefined]) {
      const ev = pkg.Evaluator.preview(EXAMPLE, { onDecision: none });
      assert.equal(ev.check('user:alice', 'read', 'doc:roadmap').allowed, true);
      ev.free();
    }
  });
}
