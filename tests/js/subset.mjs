// How the conformance harnesses compare an answer with a case's `expect` (tests/conformance's
// README): an object `expect` compares only the keys it lists, an absent key equals null; anything
// else compares whole. `null` when they match, else what differs.
import { isDeepStrictEqual } from 'node:util';

export function subsetMismatch(expect, actual) {
  if (expect === null || typeof expect !== 'object' || Array.isArray(expect)) {
    return isDeepStrictEqual(expect, actual)
      ? null
      : `expected ${JSON.stringify(expect)}, got ${JSON.stringify(actual)}`;
  }
  const isObject = actual !== null && typeof actual === 'object' && !Array.isArray(actual);
  for (const [k, v] of Object.entries(expect)) {
    const got = isObject && Object.hasOwn(actual, k) ? actual[k] : null;
    if (!isDeepStrictEqual(got, v)) {
      return `\`${k}\`: expected ${JSON.stringify(v)}, got ${JSON.stringify(got)} (whole: ${JSON.stringify(actual)})`;
    }
  }
  return null;
}
