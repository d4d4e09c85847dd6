/**
 * @jest-environment jsdom
 */
// Jest with jsdom resolves the package with the `browser` condition and loads it with `require`.
const decisions = require('./decisions.cjs');
const expected = require('./expected.cjs');

test('edge-authz decides in a jsdom environment', () => {
  expect(typeof window.document).toBe('object');
  expect(decisions()).toEqual(expected);
});
