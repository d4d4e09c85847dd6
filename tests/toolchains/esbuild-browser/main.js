// esbuild does not rewrite `new URL('…', import.meta.url)`, so a browser bundle loads the wasm
// itself: esbuild's file loader (`--loader:.wasm=file`) copies the package's .wasm next to the
// bundle and gives its URL, and the explicit entry takes it.
import * as api from 'edge-authz/init';
import wasmUrl from 'edge-authz/edge_authz_bg.wasm';
import { roundTrip } from './roundtrip.mjs';

try {
  await api.init(wasmUrl);
  window.results = roundTrip(api);
} catch (e) {
  window.failure = String((e && e.stack) || e);
}
document.getElementById('out').textContent = JSON.stringify(window.results ?? window.failure);
document.body.dataset.done = 'yes';
