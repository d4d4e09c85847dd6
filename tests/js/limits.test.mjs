// Id length limits through the JS API: the longest valid id (a 64-byte type, ':', a 256-byte
// name: 321 bytes) is answered like any other; anything longer is invalid_request, in check,
// checkMany and the listings, and a huge string is refused without being copied into wasm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Evaluator } from '../../pkg/src/node.mjs';

const type = 't'.repeat(64);
const longest = `${type}:${'n'.repeat(256)}`;
const wide = `${type}:${'é'.repeat(128)}`; // 256 bytes of UTF-8 in 128 UTF-16 units
const model = {
  version: 1,
  tenant: 'acme',
  actions: { ['a'.repeat(128)]: { tier: 'low' } },
  roles: { viewer: ['a'.repeat(128)] },
  resources: [{ id: longest }, { id: wide }],
  memberships: [],
  assignments: [
    { principal: longest, role: 'viewer', resource: longest },
    { principal: wide, role: 'viewer', resource: wide },
  ],
};
const action = 'a'.repeat(128);
const ctx = { now: 1 };

test('the longest valid ids and action are answered', () => {
  const ev = Evaluator.preview(model);
  assert.equal(longest.length, 321);
  const d = ev.check(longest, action, longest, ctx);
  assert.equal(d.reason, 'granted');
  assert.deepEqual(d.grant, { principal: longest, role: 'viewer', resource: longest, path: [longest] });
  assert.equal(ev.check(wide, action, wide, ctx).reason, 'granted');
  const many = ev.checkMany([[longest, action, longest], [wide, action, wide]], ctx);
  assert.deepEqual(many.map((x) => x.reason), ['granted', 'granted']);
  assert.deepEqual(ev.listResources(longest, action, { now: 1 }), [longest]);
  assert.deepEqual(ev.listSubjects(wide, action, { now: 1 }), [wide]);
});

test('one byte more, or a huge string, is invalid_request everywhere', () => {
  const ev = Evaluator.preview(model);
  const tooLong = `${longest}n`;
  const huge = `doc:${'x'.repeat(50_000_000)}`;
  for (const bad of [tooLong, huge, `${type}t:x`]) {
    assert.equal(ev.check(bad, action, longest, ctx).reason, 'invalid_request');
    assert.equal(ev.check(longest, action, bad, ctx).reason, 'invalid_request');
    const many = ev.checkMany([[bad, action, longest], [longest, action, longest]], ctx);
    assert.deepEqual(many.map((x) => x.reason), ['invalid_request', 'granted']);
    assert.throws(() => ev.listResources(bad, action, { now: 1 }), { code: 'invalid_request' });
    assert.throws(() => ev.listSubjects(bad, action, { now: 1 }), { code: 'invalid_request' });
  }
  assert.equal(ev.check(longest, `${action}a`, longest, ctx).reason, 'invalid_request');
});
