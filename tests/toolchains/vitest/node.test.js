// @vitest-environment node
import { expect, test } from 'vitest';
import * as api from 'edge-authz';
import { EXPECTED, roundTrip } from './roundtrip.mjs';

test('edge-authz round trip in a node environment', () => {
  expect(typeof window).toBe('undefined');
  expect(roundTrip(api)).toEqual(EXPECTED);
});
