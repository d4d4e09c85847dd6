// Loading the wasm asynchronously, for the entries that fetch or are handed it (web.mjs,
// init.mjs): `init(input)` as wasm-bindgen's `web` target takes it, once per page or process.
import glueInit from '../dist/edge_authz.js';
import { fail, describe } from './args.js';
import { host, setWasm } from './internal.js';

let loading = null;

/**
 * Loads the WebAssembly module from `input` (a URL or string to fetch, a `Request`, a `Response`
 * or a promise of one, the module's bytes as an `ArrayBuffer` or typed array, or a compiled
 * `WebAssembly.Module`), or from `fallback()` when `input` is undefined. Resolves once the
 * package is usable; later calls resolve at once (the first input wins). A failure rejects with
 * `wasm_load_failed` and may be tried again.
 */
export function load(input, fallback) {
  if (host.wasm !== null) return Promise.resolve();
  if (loading === null) {
    loading = (async () => {
      try {
        setWasm(await glueInit({ module_or_path: input === undefined ? fallback() : input }));
      } catch (e) {
        loading = null;
        throw fail('wasm_load_failed', `edge-authz: the WebAssembly module did not load: ${describe(e)}`, e);
      }
    })();
  }
  return loading;
}
