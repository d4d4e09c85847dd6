// @vitest-environment jsdom
import { expect, test } from 'vitest';
import * as api from 'edge-authz';
import { EXPECTED, roundTrip } from './roundtrip.mjs';

test('edge-authz round trip in a jsdom environment', () => {
  expect(typeof window.document).toBe('object');
  expect(roundTrip(api)).toEqual(EXPECTED);
});
