/**
 * @jest-environment node
 */
const decisions = require('./decisions.cjs');
const expected = require('./expected.cjs');

test('edge-authz decides in a node environment', () => {
  expect(typeof window).toBe('undefined');
  expect(decisions()).toEqual(expected);
});
