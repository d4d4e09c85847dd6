// The page every browser toolchain builds: the package's round trip (roundtrip.mjs, copied in by
// the test) through the default import, its results left on `window` for the test to read.
import * as api from 'edge-authz';
import { roundTrip } from './roundtrip.mjs';

try {
  window.results = roundTrip(api);
} catch (e) {
  window.failure = String((e && e.stack) || e);
}
document.getElementById('out').textContent = JSON.stringify(window.results ?? window.failure);
document.body.dataset.done = 'yes';
