// Browser entry with an explicit start (`edge-authz/init`): nothing is loaded at import, and no
// top-level await, for toolchains whose targets lack it; `await init()` (the wasm next to the
// glue) or `await init(input)` (a URL, a Response, bytes or a WebAssembly.Module: wherever the
// application serves or bundles the file) before the first call. Until then every call throws
// `not_initialized`.
import { load } from './load.js';

/** Loads the WebAssembly module (see load.js for `input`); resolves once the package is usable. */
export function init(input) {
  return load(input, () => new URL('../dist/edge_authz_bg.wasm', import.meta.url));
}

export * from './api.js';
export * from './replica.js';
export * from './receiver.js';
